"""`GET /metrics` after a scripted incident: declared over a signed slash command, one
stakeholder message sent late, alerts repeated, a drill left out; figures read from the rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from bot.app import Warroom, create_app
from bot.config import parse_config
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender
from bot.metrics import lateness_histogram, webhook_outcome
from bot.server import BackgroundServer
from storage.metrics_queries import NotificationTiming
from tests.conftest import TEST_CONFIG, ServedWarroom, make_settings

pytestmark = pytest.mark.integration

WEBHOOK_TOKEN = "metrics-webhook-token-1234"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class SteppedClock:
    """A clock the test moves forward by hand."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(T0)


@pytest.fixture
def served_at(
    emulator: SlackEmulator, sqlite_engine: Engine, clock: SteppedClock
) -> Iterator[ServedWarroom]:
    config = parse_config(
        {**TEST_CONFIG, "audiences": {"executive_team": ["C0EXEC"], "security_team": ["C0SEC"]}}
    )
    emulator.state.add_channel("security", channel_id="C0SEC")
    settings = make_settings(emulator, warroom_webhook_token=WEBHOOK_TOKEN)
    app: Warroom = create_app(settings, config, engine=sqlite_engine, clock=clock)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("cmd"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, found by name and exact labels."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric == name and dict(re.findall(r'(\w+)="([^"]*)"', rest)) == labels:
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def post_alert(served: ServedWarroom, *, token: str = WEBHOOK_TOKEN) -> httpx.Response:
    return httpx.post(
        f"{served.server.url}/webhooks/generic",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "title": "Support bot answers with other customers' emails",
            "severity": "high",
            "indicators": ["pii_exposure"],
            "model": "support-bot-v2",
            "fingerprint": "support-bot-v2:pii",
        },
        timeout=30,
    )


def test_metrics_after_a_scripted_incident(
    served_at: ServedWarroom, emulator: SlackEmulator, clock: SteppedClock
) -> None:
    served = served_at
    response = served.slack.command(
        "declare critical Support bot leaks customer data type:data_leak"
    )
    assert response.status_code == 200
    served.wait_for(lambda: emulator.calls("pins.add"))
    # Twenty minutes on, the 15-minute security-team message goes out: late.
    served.wait_for(lambda: served.app.communications.deadlines(1))
    clock.moment = T0 + timedelta(minutes=20)
    served.app.communications.sweep()
    # The same alert twice: one new, one duplicate; and one request without the token.
    assert post_alert(served).status_code == 202
    assert post_alert(served).status_code == 202
    assert post_alert(served, token="wrong").status_code == 401
    served.wait_for(lambda: len(emulator.calls("pins.add")) >= 2)  # the alert's war room
    # A drill is practice: it shows in no incident figure.
    served.app.workflow.declare(
        Declaration(
            title="Drill: jailbreak campaign",
            severity=Severity.HIGH,
            reporter_id="U0COMMANDER",
            source=IncidentSource.DRILL,
            dedup_key="drill:1",
        )
    )

    scrape = httpx.get(f"{served.server.url}/metrics", timeout=30)
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text

    assert sample(text, "warroom_incidents_declared_total", type="data_leak", severity="critical")
    assert (
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("warroom_incidents_declared_total{")
        )
        == 2
    )  # the slash command and the alert; not the drill
    assert sample(text, "warroom_incidents_open", severity="critical") == 1
    assert sample(text, "warroom_alerts_received_total", source="generic_webhook") == 2
    assert sample(text, "warroom_alerts_deduplicated_total", source="generic_webhook") == 1
    assert sample(text, "warroom_notifications_late_total") >= 1
    assert sample(text, "warroom_notification_lateness_seconds_bucket", le="60.0") == 0
    assert sample(text, "warroom_notification_lateness_seconds_bucket", le="300.0") >= 1
    assert sample(text, "warroom_containment_actions", state="proposed") >= 1
    assert (
        sample(
            text, "warroom_webhook_requests_total", route="/webhooks/generic", outcome="accepted"
        )
        == 2
    )
    assert (
        sample(
            text,
            "warroom_webhook_requests_total",
            route="/webhooks/generic",
            outcome="unauthorized",
        )
        == 1
    )
    # Every Web API call the emulator answered was counted (the alert opened a second room).
    created = len(emulator.calls("conversations.create"))
    assert sample(text, "warroom_slack_api_calls_total", method="conversations.create") == created
    assert sample(text, "warroom_slack_api_calls_total", method="chat.postMessage") >= 2
    assert "# TYPE warroom_slack_api_errors_total counter" in text
    assert sample(text, "warroom_scheduler_jobs_pending") >= 3
    assert sample(text, "warroom_database_up") == 1
    assert WEBHOOK_TOKEN not in text


def test_metrics_agree_across_replicas(
    served_at: ServedWarroom, emulator: SlackEmulator, sqlite_engine: Engine, clock: SteppedClock
) -> None:
    """A second replica on the same database reports the same stored figures."""
    served_at.slack.command("declare high Support bot answers slowly")
    served_at.wait_for(lambda: emulator.calls("pins.add"))
    other = create_app(make_settings(emulator), served_at.app.config, engine=sqlite_engine)
    server = BackgroundServer(other.asgi).start()
    try:
        texts = [
            httpx.get(f"{url}/metrics", timeout=30).text
            for url in (served_at.server.url, server.url)
        ]
    finally:
        server.stop()
        other.close()
    figures = [
        sorted(line for line in text.splitlines() if line.startswith("warroom_incidents_"))
        for text in texts
    ]
    assert figures[0] == figures[1] and figures[0]


def test_a_request_id_is_echoed_and_healthz_reports_the_scheduler(
    served_at: ServedWarroom,
) -> None:
    response = httpx.get(f"{served_at.server.url}/healthz", headers={"X-Request-Id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    assert response.json() == {"status": "ok", "database": "ok", "scheduler": "stopped"}
    served_at.app.scheduler.start()
    assert httpx.get(f"{served_at.server.url}/healthz").json()["scheduler"] == "running"
    assert httpx.get(f"{served_at.server.url}/healthz").headers["x-request-id"]


def test_lateness_counts_early_and_on_time_sends_as_zero() -> None:
    histogram = lateness_histogram(
        [
            NotificationTiming(-30.0, "met"),
            NotificationTiming(45.0, "met"),
            NotificationTiming(700.0, "late"),
            NotificationTiming(None, "late"),  # escalated unsent: late, but no send time
        ]
    )
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["0.0"] == 1 and buckets["60.0"] == 2 and buckets["900.0"] == 3
    assert buckets["+Inf"] == 3


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(202, "accepted"), (400, "rejected"), (401, "unauthorized"), (503, "unavailable")],
)
def test_webhook_outcomes_name_the_status(status: int, outcome: str) -> None:
    assert webhook_outcome(status) == outcome
