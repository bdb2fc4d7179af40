"""What `/metrics` shows: figures read from the database at scrape time, so every replica
agrees, and counters of this process's own traffic (Slack API calls, webhook requests)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bot.errors import StorageUnavailableError
from storage.metrics_queries import NotificationTiming, OperationalFigures

log = logging.getLogger(__name__)

# Seconds after its deadline a notification went out; on time or early counts as 0.
LATENESS_BUCKETS: tuple[float, ...] = (0.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


def webhook_outcome(status: int) -> str:
    """A webhook answer's status as a word: accepted, unauthorized, rejected (bad input),
    unavailable (webhooks disabled or the database down) or error."""
    if status < 400:
        return "accepted"
    if status in (401, 403):
        return "unauthorized"
    if status == 503:
        return "unavailable"
    return "rejected" if status < 500 else "error"


class TrafficMetrics:
    """Counters of this process's Slack API calls and webhook requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.slack_calls = Counter(
            "warroom_slack_api_calls",
            "Slack Web API calls made, by method",
            ["method"],
            registry=registry,
        )
        self.slack_errors = Counter(
            "warroom_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error code",
            ["method", "error"],
            registry=registry,
        )
        self.webhook_requests = Counter(
            "warroom_webhook_requests",
            "Requests to the /webhooks/* routes, by route and outcome",
            ["route", "outcome"],
            registry=registry,
        )

    def count_slack_call(self, method: str, error: str | None) -> None:
        """One Web API call; `error` is Slack's error code when it failed."""
        self.slack_calls.labels(method=method).inc()
        if error is not None:
            self.slack_errors.labels(method=method, error=error).inc()

    def count_webhook(self, route: str, status: int) -> None:
        self.webhook_requests.labels(route=route, outcome=webhook_outcome(status)).inc()


class DatabaseCollector(Collector):
    """Reads the stored figures at each scrape (one short query per family) and the
    scheduler's pending jobs. When the database does not answer, `warroom_database_up` is 0
    and the database-backed families are left out rather than shown as zero."""

    def __init__(
        self, *, read: Callable[[], OperationalFigures], jobs_pending: Callable[[], int]
    ) -> None:
        self._read = read
        self._jobs_pending = jobs_pending

    def collect(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "warroom_scheduler_jobs_pending", "Jobs waiting in this process's scheduler"
        )
        jobs.add_metric([], self._jobs_pending())
        yield jobs
        up = GaugeMetricFamily("warroom_database_up", "1 when the database answered the scrape")
        try:
            figures = self._read()
        except StorageUnavailableError as error:
            log.warning("metrics: the database did not answer: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(figures)


def families(figures: OperationalFigures) -> Iterable[Metric]:
    """The database-backed metric families for one reading."""
    declared = CounterMetricFamily(
        "warroom_incidents_declared",
        "Incidents declared (drills excluded), by type and severity",
        labels=["type", "severity"],
    )
    for incident_type, severity, count in figures.declared:
        declared.add_metric([incident_type, severity], count)
    yield declared

    open_incidents = GaugeMetricFamily(
        "warroom_incidents_open",
        "Incidents not yet resolved (drills excluded), by severity",
        labels=["severity"],
    )
    for severity, count in figures.open_by_severity:
        open_incidents.add_metric([severity], count)
    yield open_incidents

    received = CounterMetricFamily(
        "warroom_alerts_received", "Alerts received on the webhooks, by source", labels=["source"]
    )
    deduplicated = CounterMetricFamily(
        "warroom_alerts_deduplicated",
        "Alerts received that repeated one already recorded, by source",
        labels=["source"],
    )
    for source, count, new in figures.alerts_by_source:
        received.add_metric([source], count)
        deduplicated.add_metric([source], count - new)
    yield received
    yield deduplicated

    yield lateness_histogram(figures.notifications)
    late = CounterMetricFamily(
        "warroom_notifications_late",
        "Stakeholder messages sent after their deadline, or escalated unsent at it",
    )
    late.add_metric([], sum(1 for n in figures.notifications if n.outcome == "late"))
    yield late

    containment = GaugeMetricFamily(
        "warroom_containment_actions",
        "Containment actions by state (proposed, succeeded, failed, rejected, manual_done…)",
        labels=["state"],
    )
    for state, count in figures.containment_by_state:
        containment.add_metric([state], count)
    yield containment


def lateness_histogram(
    notifications: Sequence[NotificationTiming],
    buckets: Sequence[float] = LATENESS_BUCKETS,
) -> HistogramMetricFamily:
    """How late sent notifications went out, against their deadline, in seconds."""
    lateness = [max(n.late_by_seconds, 0.0) for n in notifications if n.late_by_seconds is not None]
    cumulative = [
        (repr(float(bound)), float(sum(1 for value in lateness if value <= bound)))
        for bound in buckets
    ]
    cumulative.append(("+Inf", float(len(lateness))))
    histogram = HistogramMetricFamily(
        "warroom_notification_lateness_seconds",
        "Seconds after its deadline each stakeholder message was sent (0 when on time)",
    )
    histogram.add_metric([], cumulative, sum_value=sum(lateness))
    return histogram


def register_metrics(
    registry: CollectorRegistry,
    *,
    read: Callable[[], OperationalFigures],
    jobs_pending: Callable[[], int],
) -> TrafficMetrics:
    """Put the database collector and the traffic counters into the app's registry."""
    registry.register(DatabaseCollector(read=read, jobs_pending=jobs_pending))
    return TrafficMetrics(registry)
