"""The team's incident-response runbook, rendered from the live configuration and the same
domain tables the bot acts on, so the document cannot drift from what warroom does.

`runbook_context` asks the domain rather than restating it: the escalation matrix is what
`plan_notifications` plans for sample incidents, and the containment policy is what
`propose_containment` proposes for each type and severity."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.classifier import packaged_rules
from bot.config import ContainmentEndpoint, WarroomConfig
from bot.domain.alerts import parse_alert_severity
from bot.domain.anomaly import family_severity
from bot.domain.classification import (
    PERSONAL_DATA_FLOOR,
    PERSONAL_DATA_TYPES,
    SEVERITY_BANDS,
    SEVERITY_POINTS,
)
from bot.domain.containment import (
    DEFAULT_ROLES,
    EMERGENCIES,
    ContainmentAction,
    propose_containment,
)
from bot.domain.incident import Incident
from bot.domain.notifications import TierDeadlines, plan_notifications
from bot.domain.regulatory import describe_duration
from bot.domain.roles import RESPONSIBILITIES
from bot.domain.vocabulary import (
    AiActCase,
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    Role,
    Severity,
)
from bot.errors import ExternalServiceError
from bot.rendering import Renderer
from bot.slack_gateway import SlackGateway

TEMPLATE = "runbook.md"
TITLE = "Incident-response runbook"
FILENAME = "warroom-runbook.md"

# What each severity means for the people declaring one: the seed's definitions.
SEVERITY_DEFINITIONS: Mapping[Severity, str] = {
    Severity.CRITICAL: "Active harm at scale: personal data leaving, a model attacking or "
    "deceiving users, an intruder inside, a safety failure in production. Every minute counts.",
    Severity.HIGH: "Confirmed harm or a working attack with limited reach: a successful "
    "jailbreak campaign, a poisoned model in serving, extraction in progress.",
    Severity.MEDIUM: "Degraded or suspicious behaviour with no confirmed harm yet: drift, "
    "rising refusals or hallucinations, probing that has not succeeded.",
    Severity.LOW: "Background activity or a minor defect: isolated attempts, small quality "
    "regressions, something to track rather than fight.",
}

# The monitors' own severity words warroom understands in alert labels.
_MONITOR_WORDS = ("page", "error", "major", "warning", "warn", "minor", "info", "none")

ACTION_SHORT: Mapping[ContainmentAction, str] = {
    ContainmentAction.ACCESS_REVOCATION: "AR",
    ContainmentAction.CIRCUIT_BREAKER: "CB",
    ContainmentAction.DATA_ISOLATION: "DI",
    ContainmentAction.MFA_ENFORCEMENT: "MFA",
    ContainmentAction.SAFE_MODE: "SM",
    ContainmentAction.MODEL_SHUTDOWN: "SD",
    ContainmentAction.NETWORK_ISOLATION: "NI",
}

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PublishRunbook:
    """The follow-up of `/incident runbook`: publish it into the channel it was asked in."""

    channel_id: str
    user_id: str


def sample_incident(
    *,
    incident_type: IncidentType = IncidentType.UNKNOWN_AI_INCIDENT,
    severity: Severity = Severity.MEDIUM,
    personal_data: bool = False,
    public_facing: bool = False,
) -> Incident:
    """A stand-in incident to ask the domain what it would do."""
    return Incident(
        id=0,
        number=0,
        title="runbook sample",
        description="",
        incident_type=incident_type,
        severity=severity,
        state=IncidentState.DECLARED,
        reporter_id="runbook",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=_EPOCH,
        updated_at=_EPOCH,
        personal_data=personal_data,
        public_facing=public_facing,
    )


def _people(user_ids: Sequence[str], mention: Callable[[str], str]) -> str:
    return ", ".join(mention(u) for u in user_ids) if user_ids else "nobody configured"


def _activation(config: WarroomConfig) -> dict[str, Any]:
    modifiers = {**packaged_rules().modifiers, **config.classification.severity_modifiers}
    detection = config.detection
    return {
        "severities": [
            {
                "name": severity.value,
                "alias": f"sev{severity.rank}",
                "definition": SEVERITY_DEFINITIONS[severity],
                "points": f"{SEVERITY_POINTS[severity]:g}",
            }
            for severity in Severity
        ],
        "bands": [f"≥ {floor:g} {severity.value}" for floor, severity in SEVERITY_BANDS],
        "modifiers": [
            {"type": kind.value, "modifier": f"{value:g}"}
            for kind, value in sorted(modifiers.items(), key=lambda item: -item[1])
            if value != 1.0
        ],
        "personal_data_floor": PERSONAL_DATA_FLOOR.value,
        "personal_data_types": sorted(kind.value for kind in PERSONAL_DATA_TYPES),
        "monitor_words": [
            {"word": word, "severity": severity.value}
            for word in _MONITOR_WORDS
            if (severity := parse_alert_severity(word)) is not None
        ],
        "detection": {
            "z_threshold": f"{detection.z_threshold:g}",
            "sustain": detection.sustain_samples,
            "warmup": detection.warmup_samples,
            "psi_threshold": f"{detection.psi_threshold:g}",
            "psi_bands": " / ".join(f"{band:g}" for band in detection.psi_bands),
        },
        "metrics": [
            {
                "name": name,
                "family": spec.family.value,
                "indicator": spec.indicator,
                "direction": spec.bad_direction.value,
                "type": spec.incident_type.value,
                "severity": (spec.severity or family_severity(spec.family)).value,
                "limit": "—" if spec.limit is None else f"{spec.limit:g}",
            }
            for name, spec in sorted(detection.metric_table().items())
        ],
    }


def _escalation(config: WarroomConfig, mention: Callable[[str], str]) -> dict[str, Any]:
    deadlines = TierDeadlines.from_lookup(config.deadlines.for_tier)
    # (condition, personal data, public facing, a regulatory clock running)
    conditions = (
        ("no flag", False, False, False),
        ("personal data", True, False, False),
        ("public facing", False, True, False),
        ("regulatory clock running", False, False, True),
    )
    rows = []
    for severity in Severity:
        for label, personal, public, regulatory in conditions:
            plan = plan_notifications(
                sample_incident(severity=severity, personal_data=personal, public_facing=public),
                deadlines=deadlines,
                regulatory_clock=regulatory,
            )
            by_tier = {
                tier: [m.audience.label for m in plan if m.tier is tier]
                for tier in NotificationTier
            }
            rows.append(
                {
                    "severity": severity.value,
                    "condition": label,
                    "tiers": {
                        tier.value: ", ".join(names) or "—" for tier, names in by_tier.items()
                    },
                }
            )
    commander = config.roles.incident_commander
    return {
        "rows": rows,
        "paged": [
            {"role": role.label, "who": _people(getattr(config.roles, role.value)[:1], mention)}
            for role in Role
        ],
        "commander": _people(commander[:1], mention),
        "executive_channels": config.audiences.channels(Audience.EXECUTIVE_TEAM),
        "announce_channel": config.announce_channel,
    }


def _communications(config: WarroomConfig) -> dict[str, Any]:
    notifications = config.notifications
    return {
        "tiers": [
            {"tier": tier.label, "deadline": describe_duration(config.deadlines.for_tier(tier))}
            for tier in NotificationTier
        ],
        "audiences": [
            {
                "label": audience.label,
                "template": f"audiences/{audience.value}.json.j2",
                "channels": config.audiences.channels(audience),
            }
            for audience in Audience
        ],
        "templates_dir": str(config.templates_dir) if config.templates_dir else None,
        "auto_send": notifications.auto_send,
        "reminder_percent": f"{notifications.reminder_at * 100:g}",
        "grace": describe_duration(notifications.on_time_grace),
        "pace": f"{notifications.channel_pace:g}",
        "cadence": [
            {"severity": s.value, "every": describe_duration(config.cadence.for_severity(s))}
            for s in Severity
        ],
        "drill_channel": config.drill_channel,
    }


def _endpoint(endpoint: ContainmentEndpoint | None) -> str:
    if endpoint is None:
        return "manual (a person marks it done)"
    return f"`{endpoint.method} {endpoint.url}`"


def _containment(config: WarroomConfig, mention: Callable[[str], str]) -> dict[str, Any]:
    matrix = []
    for kind in IncidentType:
        cells = {}
        for severity in reversed(Severity):
            plan = propose_containment(
                sample_incident(incident_type=kind, severity=severity), now=_EPOCH
            )
            cells[severity.value] = " ".join(
                ACTION_SHORT[a.kind] + ("!" if a.emergency else "") for a in plan.actions
            )
        matrix.append({"type": kind.value, "cells": cells})
    settings = config.containment
    return {
        "matrix": matrix,
        "severities": [s.value for s in reversed(Severity)],
        "legend": [
            {"short": short, "label": action.label} for action, short in ACTION_SHORT.items()
        ],
        "emergencies": [
            {"type": kind.value, "action": action.label} for kind, action in EMERGENCIES.items()
        ],
        "actions": [
            {
                "label": action.label,
                "role": DEFAULT_ROLES[action].label,
                "endpoint": _endpoint(settings.actions.get(action.value)),
                "two_person": action.value in settings.two_person,
            }
            for action in ContainmentAction
        ],
        "approvers": ", ".join(mention(u) for u in settings.approvers),
        "proposal_ttl": describe_duration(settings.proposal_ttl),
    }


def _recovery(config: WarroomConfig) -> dict[str, Any]:
    recovery = config.recovery

    def checks(names: Sequence[Any]) -> list[str]:
        return [
            check.name + (" (manual)" if check.manual else f" (`{check.method} {check.url}`)")
            for check in names
        ]

    return {
        "stages": " → ".join(f"{stage}%" for stage in recovery.stages),
        "systems": [
            {
                "name": name,
                "restore": _endpoint(system.restore),
                "stage": _endpoint(system.stage),
                "checks": checks(recovery.checks_for(name)),
            }
            for name, system in sorted(recovery.systems.items())
        ],
        "default_checks": checks(recovery.default_checks),
        "monitoring_window": describe_duration(recovery.monitoring_window),
        "monitoring_percent": f"{recovery.monitoring_factor * 100:g}",
        "checkin": describe_duration(recovery.checkin_interval),
    }


def _post_incident(config: WarroomConfig) -> dict[str, Any]:
    regulatory = config.regulatory
    return {
        "publish": config.postmortem.publish,
        "gdpr": {
            "enabled": regulatory.gdpr_enabled,
            "window": describe_duration(regulatory.gdpr_window),
        },
        "ai_act": {
            "enabled": regulatory.ai_act_enabled,
            "cases": [
                {"label": case.label, "window": describe_duration(regulatory.ai_act.for_case(case))}
                for case in AiActCase
            ],
        },
        "reminders": [f"{fraction * 100:g}%" for fraction in regulatory.reminders],
        "final_reminder": describe_duration(regulatory.final_reminder),
        "contact": regulatory.contact,
        "rca": {
            "change_window": describe_duration(config.rca.change_window),
            "drift_threshold": f"{config.rca.drift_threshold:g}",
        },
    }


def _roles(config: WarroomConfig, mention: Callable[[str], str]) -> list[dict[str, Any]]:
    return [
        {
            "label": role.label,
            "short": role.short,
            "responsibilities": list(RESPONSIBILITIES[role]),
            "primary": _people(getattr(config.roles, role.value)[:1], mention),
            "backups": _people(getattr(config.roles, role.value)[1:], mention)
            if len(getattr(config.roles, role.value)) > 1
            else "none",
        }
        for role in Role
    ]


def _at(user_id: str) -> str:
    return f"@{user_id}"


def runbook_context(
    config: WarroomConfig,
    *,
    generated_at: datetime,
    mention: Callable[[str], str] = _at,
) -> dict[str, Any]:
    """Plain data for `runbook.md.j2`, all of it read from the configuration and the domain."""
    return {
        "generated_at": generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "channel_prefix": config.channel_prefix,
        "private_channels": config.private_channels,
        "activation": _activation(config),
        "escalation": _escalation(config, mention),
        "communications": _communications(config),
        "containment": _containment(config, mention),
        "recovery": _recovery(config),
        "post_incident": _post_incident(config),
        "roles": _roles(config, mention),
    }


def render_runbook(
    renderer: Renderer,
    config: WarroomConfig,
    *,
    generated_at: datetime,
    mention: Callable[[str], str] = _at,
) -> str:
    """The runbook as Markdown (overridable by a `runbook.md.j2` in `templates_dir`)."""
    context = runbook_context(config, generated_at=generated_at, mention=mention)
    return renderer.render_text(TEMPLATE, **context).strip() + "\n"


def _canvas_mention(user_id: str) -> str:
    return f"![](@{user_id})"


class RunbookPublisher:
    """Puts the runbook into a channel: a canvas tabbed in it, else a Markdown file, as
    `postmortem.publish` says for documents (`auto`, `canvas` or `file`)."""

    def __init__(
        self,
        *,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._now = now

    def publish(self, work: PublishRunbook) -> None:
        """Publish it into the channel; a canvas's link goes to the person who asked (a
        shared file announces itself)."""
        mode = self._config.postmortem.publish
        now = self._now()
        if mode != "file":
            markdown = render_runbook(
                self._renderer, self._config, generated_at=now, mention=_canvas_mention
            )
            answer = self._slack.create_canvas(
                title=TITLE, markdown=markdown, channel_id=work.channel_id
            )
            if answer.get("ok", True) and answer.get("canvas_id"):
                workspace = self._slack.workspace()
                link = f"{workspace['url'].rstrip('/')}/docs/{workspace['team_id']}/"
                link += str(answer["canvas_id"])
                self._tell(work, f"The runbook is in a canvas in this channel: <{link}|{TITLE}>.")
                return
            if mode == "canvas":
                raise ExternalServiceError(
                    f"Slack refused the runbook canvas ({answer.get('error')}); "
                    "`warroom runbook` prints it"
                )
        self._slack.upload_text_file(
            work.channel_id,
            filename=FILENAME,
            title=TITLE,
            content=render_runbook(self._renderer, self._config, generated_at=now),
            comment="The team's incident-response runbook, rendered from warroom's live "
            "configuration (Markdown).",
        )

    def _tell(self, work: PublishRunbook, text: str) -> None:
        message = self._renderer.render("ephemeral_notice", message=text)
        self._slack.post_ephemeral(work.channel_id, work.user_id, message)
