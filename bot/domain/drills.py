"""Drills: practice incidents played from a scenario, and the score the team earned.

A drill is an ordinary incident whose source is `drill`. Its alerts carry a marker (a
fingerprint or model name `drill:<scenario>:<run>:…`), so whatever path they arrive by (a
webhook from `warroom drill`, or `/incident drill` playing them in-process) they declare a
drill, never a real incident. Scoring reads a plain record of what happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.incident import Declaration, Incident
from bot.domain.vocabulary import Audience, IncidentSource, IncidentType

DRILL_TAG = "drill"
TITLE_MARK = "[DRILL]"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_RUN = re.compile(r"^[a-z0-9]{4,32}$")
_MARKER = re.compile(r"^drill:(?P<scenario>[a-z0-9][a-z0-9-]{0,47}):(?P<run>[a-z0-9]{4,32})(?::|$)")


def is_valid_scenario_name(name: str) -> bool:
    """Scenario names are lowercase words joined by hyphens (they go into keys and URLs)."""
    return bool(_NAME.match(name))


def is_drill(incident: Incident) -> bool:
    """True for a practice incident: it notifies no real audience and starts no legal clock."""
    return incident.source is IncidentSource.DRILL


def audience_channels(
    configured: list[str], *, drill_channel: str | None, incident: Incident
) -> list[str]:
    """Where an audience's message goes: its configured channels, or for a drill only the
    drill channel (none when unset), never a real audience."""
    if is_drill(incident):
        return [drill_channel] if drill_channel else []
    return configured


def drill_marker(scenario: str, run: str) -> str:
    """The fingerprint every generic alert of one drill run shares: one group, one incident."""
    if not is_valid_scenario_name(scenario) or not _RUN.match(run):
        raise ValueError(f"not a drill scenario and run: {scenario!r}, {run!r}")
    return f"{DRILL_TAG}:{scenario}:{run}"


def drill_model(scenario: str, run: str, model: str) -> str:
    """A model name for a drill's metric samples: its own baselines, never the real model's."""
    return f"{drill_marker(scenario, run)}:{model}"


def parse_marker(text: str | None) -> tuple[str, str] | None:
    """(scenario, run) from a drill fingerprint, model name or dedup key, else None."""
    if not text:
        return None
    found = _MARKER.match(text)
    return (found.group("scenario"), found.group("run")) if found else None


def drill_of_alert(fingerprint: str, model: str | None, systems: tuple[str, ...]) -> str | None:
    """The drill marker an alert carries, if it belongs to a drill."""
    for text in (fingerprint, model, *systems):
        parsed = parse_marker(text)
        if parsed is not None:
            return drill_marker(*parsed)
    return None


def marked_title(title: str) -> str:
    """The title with the DRILL mark in front (once): it shows in the channel name, the card,
    every message and the postmortem."""
    return title if title.startswith(TITLE_MARK) else f"{TITLE_MARK} {title}"


def as_drill(declaration: Declaration, marker: str) -> Declaration:
    """A declaration turned into its drill: marked, sourced `drill`, one incident per run."""
    return replace(
        declaration,
        title=marked_title(declaration.title),
        source=IncidentSource.DRILL,
        dedup_key=marker,
    )


# -- scenarios -------------------------------------------------------------------------


class InjectKind(StrEnum):
    ALERT = "alert"  # posted to /webhooks/generic
    METRICS = "metrics"  # a series posted to /webhooks/metrics
    MESSAGE = "message"  # what the facilitator says in the war room


@dataclass(frozen=True)
class MetricSeries:
    model: str
    metric: str
    every: timedelta
    values: tuple[float, ...]


@dataclass(frozen=True)
class Inject:
    at: timedelta
    kind: InjectKind
    alert: dict[str, Any] = field(default_factory=dict)
    series: MetricSeries | None = None
    text: str = ""


@dataclass(frozen=True)
class Targets:
    declare_within: timedelta
    contain_within: timedelta
    resolve_within: timedelta | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    injects: tuple[Inject, ...]
    expected_type: IncidentType
    expected_containment: tuple[str, ...]
    targets: Targets
    learning_goals: tuple[str, ...] = ()

    def due(self, *, started_at: datetime, now: datetime, played: set[int]) -> list[int]:
        """Indexes of injects whose time has come and that were not played yet."""
        return [
            index
            for index, inject in enumerate(self.injects)
            if index not in played and started_at + inject.at <= now
        ]


def alert_body(inject: Inject, *, scenario: str, run: str, at: datetime) -> dict[str, Any]:
    """The generic-webhook body of an alert inject, marked as this drill's."""
    body = dict(inject.alert)
    body["title"] = marked_title(str(body["title"]))
    body["fingerprint"] = drill_marker(scenario, run)
    body["source"] = "warroom-drill"
    body["occurred_at"] = at.isoformat()
    return body


def metric_samples(
    series: MetricSeries, *, scenario: str, run: str, at: datetime
) -> dict[str, Any]:
    """The /webhooks/metrics body of a series ending at `at`, under the drill's model name."""
    count = len(series.values)
    return {
        "samples": [
            {
                "model": drill_model(scenario, run, series.model),
                "metric": series.metric,
                "value": value,
                "timestamp": (at - series.every * (count - 1 - i)).isoformat(),
            }
            for i, value in enumerate(series.values)
        ]
    }


# -- scoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainmentDone:
    kind: str
    state: str
    approved_at: datetime | None


@dataclass(frozen=True)
class DeadlineDone:
    audience: str
    tier: str
    due_at: datetime
    sent_at: datetime | None
    state: str


@dataclass(frozen=True)
class DrillRecord:
    """What happened in one drill, as plain data."""

    first_inject_at: datetime
    declared_at: datetime
    incident_type: IncidentType
    containment: tuple[ContainmentDone, ...]
    deadlines: tuple[DeadlineDone, ...]
    resolved_at: datetime | None
    ended_at: datetime
    regulatory_clocks: int = 0
    grace: timedelta = timedelta(minutes=1)


class CheckResult(StrEnum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"


@dataclass(frozen=True)
class Check:
    name: str
    result: CheckResult
    detail: str

    @property
    def passed(self) -> bool:
        return self.result is CheckResult.MET


@dataclass(frozen=True)
class DrillScore:
    scenario: str
    checks: tuple[Check, ...]

    @property
    def earned(self) -> int:
        return sum(1 for check in self.checks if check.passed)

    @property
    def possible(self) -> int:
        return len(self.checks)

    @property
    def percent(self) -> int:
        return round(100 * self.earned / self.possible) if self.possible else 100

    @property
    def misses(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


_APPROVED_STATES = ("approved", "executing", "succeeded", "manual_open", "manual_done")


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def score_drill(scenario: Scenario, record: DrillRecord) -> DrillScore:
    """Each target of the scenario, met or missed, with what happened in words."""
    targets = scenario.targets
    checks = [_declare_check(targets, record), _classify_check(scenario, record)]
    checks += _containment_checks(scenario, record)
    checks += _deadline_checks(record)
    if record.regulatory_clocks:
        checks.append(
            Check(
                "No regulatory clock",
                CheckResult.MISSED,
                f"{record.regulatory_clocks} regulatory clock(s) started for a drill",
            )
        )
    if targets.resolve_within is not None:
        checks.append(_resolve_check(targets.resolve_within, record))
    return DrillScore(scenario=scenario.name, checks=tuple(checks))


def _declare_check(targets: Targets, record: DrillRecord) -> Check:
    took = max(record.declared_at - record.first_inject_at, timedelta(0))
    ok = took <= targets.declare_within
    return Check(
        "Time to declare",
        CheckResult.MET if ok else CheckResult.MISSED,
        f"declared {_minutes(took)} after the first inject "
        f"(target {_minutes(targets.declare_within)})",
    )


def _classify_check(scenario: Scenario, record: DrillRecord) -> Check:
    if record.incident_type is scenario.expected_type:
        return Check(
            "Classification", CheckResult.MET, f"classified {scenario.expected_type.label}"
        )
    return Check(
        "Classification",
        CheckResult.MISSED,
        f"classified {record.incident_type.label}; the scenario is {scenario.expected_type.label}",
    )


def _containment_checks(scenario: Scenario, record: DrillRecord) -> list[Check]:
    checks = []
    limit = record.declared_at + scenario.targets.contain_within
    for kind in scenario.expected_containment:
        label = kind.replace("_", " ")
        done = [c for c in record.containment if c.kind == kind and c.state in _APPROVED_STATES]
        name = f"Containment: {label}"
        if not done:
            checks.append(Check(name, CheckResult.MISSED, f"{label} was never approved"))
            continue
        when = min((c.approved_at for c in done if c.approved_at), default=None)
        if when is not None and when > limit:
            checks.append(
                Check(
                    name,
                    CheckResult.MISSED,
                    f"{label} approved {_minutes(when - record.declared_at)} after declaring "
                    f"(target {_minutes(scenario.targets.contain_within)})",
                )
            )
            continue
        took = f" {_minutes(when - record.declared_at)} after declaring" if when else ""
        checks.append(Check(name, CheckResult.MET, f"{label} approved{took}"))
    return checks


def _deadline_checks(record: DrillRecord) -> list[Check]:
    checks = []
    for deadline in sorted(record.deadlines, key=lambda d: (d.due_at, d.audience)):
        name = f"Deadline: {_audience_label(deadline.audience)} ({deadline.tier})"
        if deadline.sent_at is not None:
            late = deadline.sent_at - deadline.due_at
            if late <= record.grace:
                checks.append(Check(name, CheckResult.MET, "sent on time"))
            else:
                checks.append(Check(name, CheckResult.MISSED, f"sent {_minutes(late)} late"))
        elif deadline.due_at > record.ended_at + record.grace:
            continue  # not due yet when the drill ended: nothing to score
        elif deadline.state == "skipped":
            checks.append(Check(name, CheckResult.MISSED, "skipped, never sent"))
        else:
            checks.append(
                Check(name, CheckResult.PENDING, f"not sent ({deadline.state}) by the end")
            )
    return checks


def _resolve_check(limit: timedelta, record: DrillRecord) -> Check:
    if record.resolved_at is None:
        return Check("Resolution", CheckResult.PENDING, "not resolved")
    took = record.resolved_at - record.declared_at
    ok = took <= limit
    return Check(
        "Resolution",
        CheckResult.MET if ok else CheckResult.MISSED,
        f"resolved {_minutes(took)} after declaring (target {_minutes(limit)})",
    )


def _audience_label(value: str) -> str:
    """The audience as people read it ("PR team"), its raw name if it is not one we know."""
    try:
        return Audience(value).label
    except ValueError:
        return value.replace("_", " ")
