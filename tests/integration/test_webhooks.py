"""The alert webhooks over real HTTP: auth, limits, validation, grouping, escalation."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.app import create_app
from bot.config import WarroomConfig
from bot.domain.vocabulary import IncidentState, Severity
from bot.emulator.server import SlackEmulator
from bot.server import BackgroundServer
from storage.models import AlertDeliveryRow, AlertRow
from tests.conftest import ServedWarroom, make_settings

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "alert-payloads"
TOKEN = "webhook-secret"


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (PAYLOADS / f"alertmanager-v4-prometheus-msteams-{name}.json").read_text()
    )
    return loaded


class Webhooks:
    def __init__(self, served: ServedWarroom) -> None:
        self.served = served
        self.http = httpx.Client(base_url=served.server.url, timeout=30)

    def post(
        self,
        route: str,
        body: Any,
        *,
        token: str | None = TOKEN,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        content = raw if raw is not None else json.dumps(body).encode()
        return self.http.post(
            f"/webhooks/{route}",
            content=content,
            headers={"Content-Type": "application/json", **sent},
        )

    def counts(self) -> tuple[int, int, int]:
        engine = self.served.app.engine
        with engine.connect() as connection:
            alerts = connection.scalar(select(func.count()).select_from(AlertRow)) or 0
            deliveries = connection.scalar(select(func.count()).select_from(AlertDeliveryRow)) or 0
        return alerts, deliveries, len(self.served.app.workflow.incidents.list_open())


@pytest.fixture
def hooks(emulator: SlackEmulator, engine: Engine, config: WarroomConfig) -> Iterator[Webhooks]:
    """warroom with webhooks enabled, on SQLite and on PostgreSQL."""
    from bot.emulator.signed_requests import SlackSender

    settings = make_settings(emulator, warroom_webhook_token=TOKEN)
    app = create_app(settings, config, engine=engine)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("hooks"))
    served = ServedWarroom(app, server, sender)
    yield Webhooks(served)
    server.stop()
    app.close()


def generic(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Support bot leaking its system prompt",
        "severity": "high",
        "indicators": ["system_prompt_leak"],
        "model": "support-bot-v2",
        "fingerprint": "support-bot-v2:leak",
        **fields,
    }


def opened(hooks: Webhooks, number: int = 1) -> bool:
    return any(
        i.number == number and i.war_room_opened_at is not None
        for i in hooks.served.app.workflow.incidents.list_open()
    )


@pytest.mark.parametrize(
    "name", ["prom_post_request", "prom_post_request_2_alerts", "card-grafana-inspired-payload"]
)
def test_real_alertmanager_payloads_declare_one_incident_each(
    hooks: Webhooks, emulator: SlackEmulator, name: str
) -> None:
    body = payload(name)
    response = hooks.post("alertmanager", body)
    assert response.status_code == 202, response.text
    assert response.json()["alerts"] == len(body["alerts"])
    hooks.served.wait_for(lambda: opened(hooks))
    alerts, deliveries, incidents = hooks.counts()
    assert (alerts, deliveries, incidents) == (len(body["alerts"]), 1, 1)
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    assert incident.source.value == "alertmanager"
    assert emulator.validation_failures() == []


def test_each_alert_is_kept_as_its_sender_wrote_it(hooks: Webhooks, engine: Engine) -> None:
    body = payload("prom_post_request_2_alerts")
    body["alerts"][0]["annotations"]["note"] = "ünïcode kept"
    body["alerts"][0]["silencedBy"] = ["a field warroom does not know"]
    assert hooks.post("alertmanager", body).status_code == 202

    with engine.connect() as db:
        kept = [row.raw for row in db.execute(select(AlertRow.raw).order_by(AlertRow.id))]
    group = {key: value for key, value in body.items() if key != "alerts"}
    assert kept == [{"alert": sent, "group": group} for sent in body["alerts"]]


def test_a_repeated_group_delivery_is_accepted_and_declares_nothing_more(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    body = payload("card-grafana-inspired-payload")
    assert hooks.post("alertmanager", body).status_code == 202
    again = hooks.post("alertmanager", body)
    assert again.status_code == 202
    assert again.json()["duplicates"] == len(body["alerts"])
    hooks.served.wait_for(lambda: opened(hooks))
    assert hooks.counts() == (3, 2, 1)
    assert len([c for c in emulator.calls("conversations.create") if c.ok]) == 1


def test_concurrent_deliveries_of_one_group_declare_one_incident(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    base = payload("card-grafana-inspired-payload")
    statuses: list[int] = []

    def deliver(i: int) -> None:
        body = copy.deepcopy(base)
        body["alerts"][0]["fingerprint"] = f"extra-{i}"  # each delivery also brings a new alert
        statuses.append(hooks.post("alertmanager", body).status_code)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 8
    hooks.served.wait_for(lambda: opened(hooks))
    alerts, deliveries, incidents = hooks.counts()
    assert (deliveries, incidents) == (8, 1)
    assert alerts == 8 + 2  # one new first alert per delivery plus the two shared ones


def test_a_higher_severity_alert_escalates_and_says_so(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    assert hooks.post("generic", generic(severity="medium")).status_code == 202
    hooks.served.wait_for(lambda: opened(hooks))
    worse = generic(severity="critical", occurred_at="2026-11-26T10:00:00Z")
    assert hooks.post("generic", worse).status_code == 202
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    assert incident.severity is Severity.CRITICAL
    assert incident.channel_id is not None
    hooks.served.wait_for(
        lambda: any("Escalated" in m["text"] for m in emulator.state.messages(incident.channel_id))
    )
    hooks.served.wait_for(lambda: emulator.state.messages("C0EXEC"))
    # the escalation re-planned the messages: critical audiences are due from the alert

    def planned() -> dict[str, Any]:
        with hooks.served.app.workflow.incidents._uow(read_only=True) as uow:
            return {n.audience.value: n for n in uow.notifications.list_for(incident.id)}

    # the alert is recorded as the executive message just after it is posted
    hooks.served.wait_for(lambda: planned()["executive_team"].state.value == "sent")
    assert {"security_team", "legal_team", "communications_team"} <= set(planned())


def test_a_resolved_alert_is_announced_but_does_not_resolve(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    body = payload("prom_post_request")
    hooks.post("alertmanager", body)
    hooks.served.wait_for(lambda: opened(hooks))
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    # the first summary is due a minute after the war room opened: let the clock pass it
    with hooks.served.app.engine.begin() as connection:
        from storage.models import AlertGroupRow

        connection.execute(AlertGroupRow.__table__.update().values(last_summary_at=None))
    resolved = copy.deepcopy(body)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    assert hooks.post("alertmanager", resolved).status_code == 202
    assert incident.channel_id is not None
    hooks.served.wait_for(
        lambda: any("1 resolved" in m["text"] for m in emulator.state.messages(incident.channel_id))
    )
    assert hooks.served.app.workflow.incidents.get(incident.id).state is IncidentState.DECLARED


def test_the_war_room_gets_at_most_one_summary_a_minute_per_group(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    hooks.post("generic", generic())
    hooks.served.wait_for(lambda: opened(hooks))
    for minute in range(5):
        hooks.post("generic", generic(occurred_at=f"2026-11-26T10:0{minute}:00Z"))
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    follow_ups = hooks.served.app.alert_follow_ups
    assert follow_ups is not None and follow_ups.wait_idle(10)  # every summary pass is over
    summaries = [
        m for m in emulator.state.messages(incident.channel_id) if "new alert" in m["text"]
    ]
    assert summaries == []  # the card told the first; the rest wait for the minute to pass
    assert hooks.served.app.alerts.post_summaries() == 0


@pytest.mark.parametrize(
    ("headers_token", "status"),
    [(None, 401), ("wrong", 401), (TOKEN + "x", 401)],
)
def test_missing_or_wrong_token_is_401_and_nothing_is_written(
    hooks: Webhooks, headers_token: str | None, status: int
) -> None:
    response = hooks.post("generic", generic(), token=headers_token)
    assert response.status_code == status
    assert hooks.counts() == (0, 0, 0)


def test_without_a_configured_token_webhooks_answer_503(
    emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> None:
    app = create_app(make_settings(emulator), config, engine=sqlite_engine)
    server = BackgroundServer(app.asgi).start()
    try:
        response = httpx.post(
            f"{server.url}/webhooks/generic",
            json=generic(),
            headers={"Authorization": "Bearer anything"},
        )
    finally:
        server.stop()
        app.close()
    assert response.status_code == 503
    assert "WARROOM_WEBHOOK_TOKEN" in response.json()["error"]


def test_a_body_over_one_mebibyte_is_413(hooks: Webhooks) -> None:
    big = generic(evidence="x" * (1024 * 1024))
    assert hooks.post("generic", big).status_code == 413
    assert hooks.counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("route", "body", "pointer"),
    [
        ("generic", {"description": "no title"}, "title: Field required"),
        ("generic", generic(severity="apocalyptic"), "severity:"),
        ("generic", generic(status="maybe"), "status:"),
        ("generic", generic(metrics={"latency": "slow"}), "metrics.latency:"),
        ("generic", generic(surprise=1), "surprise: Extra inputs are not permitted"),
        ("alertmanager", {"status": "firing", "alerts": []}, "alerts:"),
        (
            "alertmanager",
            {"status": "firing", "alerts": [{"labels": {}}]},
            "alerts[0].startsAt: Field required",
        ),
        ("alertmanager", {**payload("prom_post_request"), "version": "3"}, "version:"),
        ("grafana", {"status": "firing"}, "alerts: Field required"),
    ],
)
def test_invalid_payloads_are_400_pointing_at_the_field(
    hooks: Webhooks, route: str, body: Any, pointer: str
) -> None:
    response = hooks.post(route, body)
    assert response.status_code == 400
    assert pointer in response.json()["error"]
    assert hooks.counts() == (0, 0, 0)


def test_malformed_json_is_400(hooks: Webhooks) -> None:
    response = hooks.post("generic", None, raw=b'{"title": ')
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_the_generic_schema_is_published(hooks: Webhooks) -> None:
    schema = hooks.http.get("/webhooks/generic/schema").json()
    assert schema["required"] == ["title"]
    assert {
        "title",
        "description",
        "severity",
        "indicators",
        "model",
        "systems",
        "source",
        "fingerprint",
        "status",
        "occurred_at",
        "metrics",
        "evidence",
    } <= set(schema["properties"])


def test_a_grafana_delivery_declares(hooks: Webhooks) -> None:
    body = {
        **payload("card-grafana-inspired-payload"),
        "orgId": 1,
        "title": "[FIRING:3]",
        "state": "alerting",
        "message": "3 alerts",
    }
    response = hooks.post("grafana", body)
    assert response.status_code == 202
    hooks.served.wait_for(lambda: opened(hooks))
    assert hooks.served.app.workflow.incidents.list_open()[0].source.value == "grafana"


def test_database_loss_is_503_so_the_sender_retries(
    emulator: SlackEmulator, config: WarroomConfig
) -> None:
    from storage.db import build_engine

    settings = make_settings(emulator, warroom_webhook_token=TOKEN)
    broken = build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings, config, engine=broken)
    server = BackgroundServer(app.asgi).start()
    try:
        response = httpx.post(
            f"{server.url}/webhooks/generic",
            json=generic(),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    finally:
        server.stop()
        app.close()
    assert response.status_code == 503


def samples(
    metric: str, values: list[float], *, model: str = "support-bot-v2", start: int = 0
) -> list[dict[str, Any]]:
    return [
        {"model": model, "metric": metric, "value": value, "timestamp": 1_795_000_000 + start + i}
        for i, value in enumerate(values)
    ]


def test_a_sustained_drop_in_factuality_declares_a_hallucination_incident(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    import random

    noise = random.Random(7)
    calm = [0.92 + noise.gauss(0, 0.01) for _ in range(60)]
    warm = hooks.post("metrics", {"samples": samples("factuality_score", calm)})
    assert warm.status_code == 202, warm.text
    assert warm.json()["anomalies"] == []
    drop = hooks.post("metrics", samples("factuality_score", [0.55, 0.54, 0.56, 0.53], start=100))
    assert drop.status_code == 202
    [anomaly] = drop.json()["anomalies"]
    assert anomaly["indicators"] == ["factuality_drop"]
    assert drop.json()["incidents_declared"] == 1
    hooks.served.wait_for(lambda: opened(hooks))
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    assert incident.incident_type.value == "hallucination_cascade"
    assert incident.source.value == "anomaly_detector"
    assert "factuality_drop" in incident.indicators


def test_security_anomalies_are_critical(hooks: Webhooks) -> None:
    hooks.post("metrics", samples("adversarial_score", [0.1, 0.2, 0.91]))
    incident = hooks.served.app.workflow.incidents.list_open()[0]
    assert incident.severity is Severity.CRITICAL


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"model": "m", "metric": "latency"}, "value: is required"),
        (
            [{"model": "m", "metric": "latency", "value": 1}, {"model": "m", "metric": "x"}],
            "samples[1].value",
        ),
        ([], "samples:"),
        ({"model": "m", "metric": "latency", "value": "fast"}, "value"),
    ],
)
def test_bad_samples_are_400_pointing_at_the_field(
    hooks: Webhooks, body: Any, pointer: str
) -> None:
    response = hooks.post("metrics", body)
    assert response.status_code == 400
    assert pointer in response.json()["error"]
    assert hooks.counts() == (0, 0, 0)


def test_nan_is_refused(hooks: Webhooks) -> None:
    response = hooks.post("metrics", None, raw=b'{"model": "m", "metric": "latency", "value": NaN}')
    assert response.status_code == 400
    assert "value" in response.json()["error"]


def test_a_war_room_slack_refuses_keeps_its_summary_and_the_others_get_theirs(
    hooks: Webhooks, emulator: SlackEmulator
) -> None:
    import io
    import logging

    from bot.logging_setup import JsonFormatter
    from storage.models import AlertGroupRow

    for n in (1, 2):
        hooks.post("generic", generic(title=f"Leak {n}", fingerprint=f"leak-{n}"))
        hooks.served.wait_for(lambda n=n: opened(hooks, n))  # type: ignore[misc]
        hooks.post(
            "generic",
            generic(title=f"Leak {n}", fingerprint=f"leak-{n}", occurred_at="2026-11-26T10:05:00Z"),
        )
    # The deliveries' own summary passes (they find the groups told this minute) are over.
    follow_ups = hooks.served.app.alert_follow_ups
    assert follow_ups is not None and follow_ups.wait_idle(10)
    with hooks.served.app.engine.begin() as connection:
        connection.execute(AlertGroupRow.__table__.update().values(last_summary_at=None))
    rooms = {i.number: i.channel_id for i in hooks.served.app.workflow.incidents.list_open()}

    def summaries(number: int) -> int:
        channel = rooms[number]
        assert channel is not None
        return sum("new alert" in m["text"] for m in emulator.state.messages(channel))

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.services.alerts")
    logger.addHandler(handler)
    emulator.inject_fault("chat.postMessage", status=500, times=3)  # the first, retries and all
    try:
        assert hooks.served.app.alerts.post_summaries() == 1
    finally:
        logger.removeHandler(handler)
    told = {number: summaries(number) for number in rooms}
    assert sorted(told.values()) == [0, 1]
    refused = next(number for number, count in told.items() if count == 0)
    warnings = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [w["incident"] for w in warnings if "not posted yet" in w["message"]] == [refused]
    assert hooks.served.app.alerts.post_summaries() == 1  # kept, and told on the next pass
    assert summaries(refused) == 1
