"""Drills: load scenarios, start one, play its injects through the real alert pipeline, and
score the team at the end.

The drill's incident is declared by its first alert inject, exactly as a monitor's alert
declares one; the alert's drill marker makes it a `drill` incident (see bot.domain.drills).
Which injects were played is kept as timeline events, so a restart or a second replica plays
each one once (alerts are deduplicated by their time, messages by the outbound ledger).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bot.alert_payloads import GenericAlert, PayloadError, parse_payload
from bot.clock import Clock
from bot.config import CONTAINMENT_ACTIONS, Duration, WarroomConfig, parse_duration
from bot.containment_executor import ExecutionResult
from bot.domain.anomaly import parse_samples
from bot.domain.containment import ContainmentAction
from bot.domain.drills import (
    ContainmentDone,
    DeadlineDone,
    DrillRecord,
    DrillScore,
    Inject,
    InjectKind,
    MetricSeries,
    Scenario,
    Targets,
    alert_body,
    drill_marker,
    is_drill,
    is_valid_scenario_name,
    metric_samples,
    parse_marker,
    score_drill,
)
from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentSource, IncidentType
from bot.errors import ConfigurationError, NotFoundError, UserError
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.alerts import AlertService
from bot.services.anomalies import AnomalyService
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from bot.services.containment import ActionRunner, ExecutionOutcome
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

STARTED, INJECTED, REPORTED = "drill_started", "drill_inject", "drill_report"
DRILL_ACTOR = "drill"
DRILL_JOB_ID = "warroom:drill-injects"
DRILL_INTERVAL = timedelta(seconds=15)


# -- the YAML format (bot/data/scenarios/README.md) --------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertInjectFile(_Strict):
    """The fields of warroom's generic alert a scenario may set (the drill sets the rest)."""

    title: str = Field(min_length=1, max_length=280)
    description: str = ""
    severity: str = "high"
    indicators: list[str] = []
    model: str | None = None
    systems: list[str] = []
    metrics: dict[str, float] = {}
    evidence: Any = None


class WarmupFile(_Strict):
    """A normal stretch before the series' own values, so the detector has a baseline."""

    value: float
    spread: float = Field(default=0.0, ge=0)
    samples: int = Field(default=30, ge=1, le=400)

    def values(self) -> list[float]:
        wobble = (-1.0, 0.0, 1.0, 0.0)
        return [self.value + self.spread * wobble[i % 4] for i in range(self.samples)]


class SeriesFile(_Strict):
    model: str = Field(min_length=1, max_length=100)
    metric: str = Field(min_length=1, max_length=100)
    every: Duration = timedelta(minutes=1)
    warmup: WarmupFile | None = None
    values: list[float] = Field(min_length=1, max_length=500)


def _parse_offset(value: Any) -> timedelta:
    """An inject's offset from the drill's start: 0 or a duration like 90s, 5m."""
    if value in (0, "0") or (isinstance(value, str) and value.strip() in ("0s", "0m", "0h")):
        return timedelta(0)
    return parse_duration(value)


Offset = Annotated[timedelta, BeforeValidator(_parse_offset)]


class InjectFile(_Strict):
    at: Offset = timedelta(0)
    alert: AlertInjectFile | None = None
    metrics: SeriesFile | None = None
    message: str | None = Field(default=None, min_length=1, max_length=2500)

    @model_validator(mode="after")
    def _exactly_one(self) -> InjectFile:
        given = [k for k in ("alert", "metrics", "message") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an inject is exactly one of alert, metrics or message")
        return self


class ExpectedFile(_Strict):
    type: IncidentType
    containment: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_actions(self) -> ExpectedFile:
        for kind in self.containment:
            if kind not in CONTAINMENT_ACTIONS:
                raise ValueError(f"unknown containment action '{kind}'")
        return self


class TargetsFile(_Strict):
    declare_within: Duration
    contain_within: Duration
    resolve_within: Duration | None = None


class ScenarioFile(_Strict):
    name: str
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    learning_goals: list[str] = []
    expected: ExpectedFile
    targets: TargetsFile
    injects: list[InjectFile] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _playable(self) -> ScenarioFile:
        if not is_valid_scenario_name(self.name):
            raise ValueError("name: lowercase letters, digits and hyphens, at most 48")
        offsets = [i.at for i in self.injects]
        if offsets != sorted(offsets):
            raise ValueError("injects must be in time order")
        if self.injects[0].alert is None:
            raise ValueError("the first inject must be an alert: it declares the drill")
        return self

    def to_scenario(self) -> Scenario:
        return Scenario(
            name=self.name,
            title=self.title,
            description=self.description.strip(),
            injects=tuple(_inject(i) for i in self.injects),
            expected_type=self.expected.type,
            expected_containment=tuple(self.expected.containment),
            targets=Targets(
                declare_within=self.targets.declare_within,
                contain_within=self.targets.contain_within,
                resolve_within=self.targets.resolve_within,
            ),
            learning_goals=tuple(self.learning_goals),
        )


def _inject(item: InjectFile) -> Inject:
    at = item.at
    if item.alert is not None:
        body = item.alert.model_dump(exclude_none=True)
        return Inject(at=at, kind=InjectKind.ALERT, alert=body)
    if item.metrics is not None:
        series = MetricSeries(
            model=item.metrics.model,
            metric=item.metrics.metric,
            every=item.metrics.every,
            values=tuple(
                (item.metrics.warmup.values() if item.metrics.warmup else []) + item.metrics.values
            ),
        )
        return Inject(at=at, kind=InjectKind.METRICS, series=series)
    return Inject(at=at, kind=InjectKind.MESSAGE, text=item.message or "")


def parse_scenario(text: str, *, source: str) -> Scenario:
    """A scenario from its YAML; ConfigurationError names the file and the field."""
    try:
        data = yaml.safe_load(text)
        scenario = ScenarioFile.model_validate(data).to_scenario()
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{source}: not YAML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "scenario"
        raise ConfigurationError(f"{source}: {where}: {first['msg']}") from None
    for inject in scenario.injects:
        if inject.kind is InjectKind.ALERT:
            # The body must pass the same schema the webhook applies.
            probe = alert_body(inject, scenario=scenario.name, run="check", at=_EPOCH)
            try:
                GenericAlert.model_validate(probe)
            except ValidationError as error:
                message = error.errors()[0]["msg"]
                raise ConfigurationError(f"{source}: alert inject: {message}") from None
    return scenario


_EPOCH = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


@cache
def packaged_scenarios() -> dict[str, Scenario]:
    """Every scenario shipped in bot/data/scenarios, by name."""
    folder = resources.files("bot").joinpath("data", "scenarios")
    found: dict[str, Scenario] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        scenario = parse_scenario(entry.read_text(encoding="utf-8"), source=entry.name)
        if entry.name.rsplit(".", 1)[0] != scenario.name:
            raise ConfigurationError(f"{entry.name}: name must match the file name")
        found[scenario.name] = scenario
    return found


# -- what the handlers carry across the ack ----------------------------------------------


@dataclass(frozen=True)
class DrillStarting:
    scenario: str
    run: str
    actor_id: str
    channel_id: str


@dataclass(frozen=True)
class DrillReport:
    incident: Incident
    scenario: Scenario
    score: DrillScore


class DrillSafeRunner:
    """Containment in a drill is rehearsed, never carried out: no endpoint is called."""

    def __init__(self, runner: ActionRunner) -> None:
        self._runner = runner

    def has_endpoint(self, action: ContainmentAction) -> bool:
        return self._runner.has_endpoint(action)

    def missing_fields(self, action: ContainmentAction, incident: Incident) -> set[str]:
        if is_drill(incident):
            return set()
        return self._runner.missing_fields(action, incident)

    def execute(
        self,
        action: ContainmentAction,
        incident: Incident,
        *,
        idempotency_key: str,
        target: str | None = None,
    ) -> ExecutionOutcome:
        if is_drill(incident):
            return ExecutionResult(
                ok=True,
                status_code=None,
                latency_ms=0.0,
                response_excerpt="drill: simulated, no endpoint called",
                error=None,
                attempts=0,
            )
        return self._runner.execute(
            action, incident, idempotency_key=idempotency_key, target=target
        )


class DrillService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        config: WarroomConfig,
        renderer: Renderer,
        slack: SlackGateway,
        war_rooms: WarRoomService,
        alerts: AlertService,
        anomalies: AnomalyService,
        scenarios: Mapping[str, Scenario] | None = None,
        new_run: Callable[[], str] = lambda: uuid.uuid4().hex[:8],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._config = config
        self._renderer = renderer
        self._slack = slack
        self._war_rooms = war_rooms
        self._alerts = alerts
        self._anomalies = anomalies
        self._scenarios = scenarios
        self._new_run = new_run

    @property
    def scenarios(self) -> Mapping[str, Scenario]:
        return self._scenarios if self._scenarios is not None else packaged_scenarios()

    def get_scenario_or_raise(self, name: str) -> Scenario:
        scenario = self.scenarios.get(name)
        if scenario is None:
            known = ", ".join(sorted(self.scenarios))
            raise NotFoundError(f"There is no drill scenario `{name}`. Scenarios: {known}.")
        return scenario

    # -- /incident drill ---------------------------------------------------------------

    def scenarios_message(self) -> dict[str, Any]:
        return self._renderer.render(
            "drills/scenarios",
            scenarios=[_scenario_context(s) for s in self.scenarios.values()],
            drill_channel=self._config.drill_channel,
        )

    def start(self, name: str, *, actor_id: str, channel_id: str) -> DrillStarting:
        """Inside the ack: check the scenario; the drill begins after it."""
        self.get_scenario_or_raise(name)
        return DrillStarting(
            scenario=name, run=self._new_run(), actor_id=actor_id, channel_id=channel_id
        )

    def starting_message(self, work: DrillStarting) -> dict[str, Any]:
        return self._renderer.render(
            "drills/starting",
            scenario=_scenario_context(self.get_scenario_or_raise(work.scenario)),
            run=work.run,
            drill_channel=self._config.drill_channel,
        )

    def begin(self, work: DrillStarting) -> Incident:
        """Play the opening alert (which declares the drill and opens its war room), record
        the start, brief the war room, and play whatever else is due."""
        scenario = self.get_scenario_or_raise(work.scenario)
        started_at = self._clock.now()
        marker = drill_marker(scenario.name, work.run)
        self._play(scenario, work.run, 0, started_at, incident=None)
        with self._uow() as uow:
            incident = uow.incidents.get_by_dedup_key(marker)
            if incident is None:
                raise UserError("The drill's opening alert declared no incident.")
            uow.timeline.add(
                incident.id,
                kind=STARTED,
                actor_id=work.actor_id,
                summary=f"Drill `{scenario.name}` started by <@{work.actor_id}>",
                now=started_at,
                data={
                    "scenario": scenario.name,
                    "run": work.run,
                    "started_at": started_at.isoformat(),
                    "origin_channel_id": work.channel_id,
                },
            )
            uow.timeline.add(
                incident.id,
                kind=INJECTED,
                actor_id=DRILL_ACTOR,
                summary=f"Drill inject 1 of {len(scenario.injects)}",
                now=started_at,
                data={"index": 0},
            )
            uow.commit()
        incident = self._incident(incident.id)
        if incident.channel_id:
            self._war_rooms.post_once(
                incident,
                "drill:briefing",
                incident.channel_id,
                self._renderer.render(
                    "drills/briefing",
                    incident=incident_context(incident),
                    scenario=_scenario_context(scenario),
                    drill_channel=self._config.drill_channel,
                ),
            )
        self.play_due(incident.id)
        return incident

    def play_due(self, incident_id: int | None = None) -> int:
        """Play every inject whose time has come, in open drills (or just one); the count."""
        played = 0
        with self._uow(read_only=True) as uow:
            incidents = (
                [i for i in uow.incidents.list_open() if is_drill(i)]
                if incident_id is None
                else [i for i in (uow.incidents.get(incident_id),) if i and i.state.is_open]
            )
            plans = [(i, _progress(uow, i.id)) for i in incidents]
        now = self._clock.now()
        for incident, progress in plans:
            if progress is None:
                continue  # declared over HTTP by `warroom drill`: the runner plays it
            name, run, started_at, done = progress
            scenario = self.scenarios.get(name)
            if scenario is None:
                continue
            for index in scenario.due(started_at=started_at, now=now, played=done):
                at = started_at + scenario.injects[index].at
                with self._uow() as uow:
                    uow.timeline.add(
                        incident.id,
                        kind=INJECTED,
                        actor_id=DRILL_ACTOR,
                        summary=f"Drill inject {index + 1} of {len(scenario.injects)}",
                        now=now,
                        data={"index": index},
                    )
                    uow.commit()
                self._play(scenario, run, index, at, incident=self._incident(incident.id))
                played += 1
        return played

    def _play(
        self, scenario: Scenario, run: str, index: int, at: datetime, *, incident: Incident | None
    ) -> None:
        inject = scenario.injects[index]
        if inject.kind is InjectKind.ALERT:
            body = alert_body(inject, scenario=scenario.name, run=run, at=at)
            try:
                alerts = parse_payload(IncidentSource.GENERIC_WEBHOOK, body, now=at)
            except PayloadError as error:
                raise UserError(f"Drill inject {index + 1}: {error.user_message}") from None
            self._alerts.follow_up(
                self._alerts.ingest(IncidentSource.GENERIC_WEBHOOK, alerts, body)
            )
        elif inject.kind is InjectKind.METRICS:
            assert inject.series is not None
            payload = metric_samples(inject.series, scenario=scenario.name, run=run, at=at)
            observed = self._anomalies.observe(parse_samples(payload, received_at=at), payload)
            self._alerts.follow_up(observed.alerts)
        elif incident is not None and incident.channel_id:
            self._war_rooms.post_once(
                incident,
                f"drill:inject:{index}",
                incident.channel_id,
                self._renderer.render(
                    "drills/inject",
                    incident=incident_context(incident),
                    text=inject.text,
                    index=index + 1,
                    total=len(scenario.injects),
                ),
            )

    # -- the report --------------------------------------------------------------------

    def record(self, incident_id: int) -> tuple[Scenario, DrillRecord] | None:
        """What happened in this drill, as plain data; None if it is not a known drill."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
            if incident is None or not is_drill(incident):
                return None
            parsed = parse_marker(uow.incidents.dedup_key(incident_id))
            scenario = self.scenarios.get(parsed[0]) if parsed else None
            if scenario is None:
                return None
            progress = _progress(uow, incident_id)
            first_alert = uow.alerts.first_alert_at(incident_id)
            starts = [t for t in (progress[2] if progress else None, first_alert) if t]
            first = min(starts, default=incident.declared_at)
            approvals = _approval_times(uow, incident_id)
            containment = tuple(
                ContainmentDone(kind=a.kind, state=a.state, approved_at=approvals.get(a.id))
                for a in uow.containment.actions_for(incident_id)
            )
            deadlines = tuple(
                DeadlineDone(
                    audience=n.audience.value,
                    tier=n.tier.value,
                    due_at=n.due_at,
                    sent_at=n.sent_at,
                    state=n.state.value,
                )
                for n in uow.notifications.list_for(incident_id)
            )
            clocks = len(uow.clocks.list_for(incident_id))
        return scenario, DrillRecord(
            first_inject_at=first,
            declared_at=incident.declared_at,
            incident_type=incident.incident_type,
            containment=containment,
            deadlines=deadlines,
            resolved_at=incident.resolved_at,
            ended_at=incident.resolved_at or self._clock.now(),
            regulatory_clocks=clocks,
            grace=self._config.notifications.on_time_grace,
        )

    def report(self, incident_id: int) -> DrillReport | None:
        found = self.record(incident_id)
        if found is None:
            return None
        scenario, record = found
        return DrillReport(
            incident=self._incident(incident_id),
            scenario=scenario,
            score=score_drill(scenario, record),
        )

    def finish(self, incident_id: int) -> DrillReport | None:
        """At resolve: score the drill, keep the score in the timeline, post the report."""
        report = self.report(incident_id)
        if report is None:
            return None
        score = report.score
        with self._uow() as uow:
            uow.timeline.add(
                incident_id,
                kind=REPORTED,
                actor_id=DRILL_ACTOR,
                summary=f"Drill scored {score.earned}/{score.possible} ({score.percent}%)",
                now=self._clock.now(),
                data={
                    "scenario": score.scenario,
                    "earned": score.earned,
                    "possible": score.possible,
                    "misses": [f"{c.name}: {c.detail}" for c in score.misses],
                },
            )
            uow.commit()
        incident = report.incident
        if incident.channel_id:
            self._war_rooms.post_once(
                incident, "drill:report", incident.channel_id, self.report_message(report)
            )
        return report

    def report_message(self, report: DrillReport) -> dict[str, Any]:
        return self._renderer.render("drills/report", **_report_context(report))

    def report_markdown(self, incident_id: int) -> str | None:
        """The drill report as Markdown for the postmortem; None for a real incident."""
        report = self.report(incident_id)
        if report is None:
            return None
        return self._renderer.render_text("drills/report.md", **_report_context(report))

    def _incident(self, incident_id: int) -> Incident:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        return incident


def _progress(uow: UnitOfWork, incident_id: int) -> tuple[str, str, datetime, set[int]] | None:
    """(scenario, run, started at, injects played) of a drill started in-process."""
    events = uow.timeline.list_for(incident_id)
    started = next((e for e in events if e["kind"] == STARTED), None)
    if started is None:
        return None
    data = started["data"]
    played = {int(e["data"]["index"]) for e in events if e["kind"] == INJECTED}
    return (
        str(data["scenario"]),
        str(data["run"]),
        datetime.fromisoformat(str(data["started_at"])),
        played,
    )


def _approval_times(uow: UnitOfWork, incident_id: int) -> dict[int, datetime]:
    """When each containment action received its (last) approval, from the audit chain."""
    times: dict[int, datetime] = {}
    for entry in uow.audit.entries(incident_id):
        action_id = entry.detail.get("action_id")
        if entry.action.value == "approved" and isinstance(action_id, int):
            times[action_id] = entry.at
    return times


def _scenario_context(scenario: Scenario) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "title": scenario.title,
        "description": scenario.description,
        "learning_goals": list(scenario.learning_goals),
        "injects": len(scenario.injects),
        "minutes": int(scenario.injects[-1].at.total_seconds() // 60),
        "expected_type": scenario.expected_type.label,
    }


def _report_context(report: DrillReport) -> dict[str, Any]:
    score = report.score
    return {
        "incident": incident_context(report.incident),
        "scenario": _scenario_context(report.scenario),
        "earned": score.earned,
        "possible": score.possible,
        "percent": score.percent,
        "checks": [
            {"name": c.name, "result": c.result.value, "passed": c.passed, "detail": c.detail}
            for c in score.checks
        ],
        "misses": [{"name": c.name, "detail": c.detail} for c in score.misses],
    }
