"""SQLAlchemy 2.0 typed tables. Timestamps are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware datetime, also on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; warroom stores UTC-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class CounterRow(Base):
    """Named sequences without gaps; the row lock serialises concurrent declarations."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class WorkerRow(Base):
    """A running warroom process, beating while it lives; what it claimed is taken over
    by the others soon after it stops."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime] = mapped_column(index=True)


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    incident_type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reporter_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    affected_systems: Mapped[list[str]] = mapped_column(default=list)
    personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    public_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    # The EU AI Act Art. 73 case when flagged as a serious incident.
    ai_act_case: Mapped[str | None] = mapped_column(String(16))
    # How warroom classified it: matched indicators, taxonomy ids, confidence, explanation.
    indicators: Mapped[list[str]] = mapped_column(default=list)
    atlas: Mapped[list[str]] = mapped_column(default=list)
    owasp: Mapped[list[str]] = mapped_column(default=list)
    confidence: Mapped[float | None] = mapped_column(Float)
    classified_by: Mapped[str] = mapped_column(String(20), default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    channel_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    channel_name: Mapped[str | None] = mapped_column(String(80))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    declared_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    war_room_opened_at: Mapped[datetime | None]
    # Lets one worker at a time open the war room; a stale lease is taken over after a crash.
    war_room_lease_until: Mapped[datetime | None]
    # The worker holding the lease: once it stops beating, another may finish the opening.
    war_room_lease_by: Mapped[str | None] = mapped_column(String(40))

    roles: Mapped[list[RoleAssignmentRow]] = relationship(
        back_populates="incident", order_by="RoleAssignmentRow.id", lazy="selectin"
    )


class RoleAssignmentRow(Base):
    """The current holder of each role on an incident; history is in the timeline."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("incident_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str] = mapped_column(String(32))
    assigned_by: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime]

    incident: Mapped[IncidentRow] = relationship(back_populates="roles")


class TimelineEventRow(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboundMessageRow(Base):
    """A Slack side effect of an incident, claimed before it is made so it is made once."""

    __tablename__ = "outbound_messages"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime]
    # The worker (process) holding the claim: when it stops beating, the claim is taken
    # over at once rather than when it grows stale.
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    sent_at: Mapped[datetime | None]


class NotificationRow(Base):
    """One audience's message of one tier for an incident: planned, then sent (or skipped).

    The row exists before anything is sent; the conditional update of `state` from pending
    to sending is the claim that lets exactly one worker send it.
    """

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("incident_id", "audience", "tier"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    # met or late, against due_at; set when sent, or when escalated unsent at the deadline.
    outcome: Mapped[str | None] = mapped_column(String(8))
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Who sent it by hand, skipped it or edited it ("warroom" when sent at the deadline).
    decided_by: Mapped[str | None] = mapped_column(String(32))
    skip_reason: Mapped[str | None] = mapped_column(Text)
    edited_text: Mapped[str | None] = mapped_column(Text)
    draft_channel_id: Mapped[str | None] = mapped_column(String(32))
    draft_ts: Mapped[str | None] = mapped_column(String(32))
    # The state the draft in the war room last showed: a draft whose row moved on since is
    # re-rendered by the sweep, so a refresh lost in a crash is only late.
    draft_state: Mapped[str | None] = mapped_column(String(16))


class ReminderRow(Base):
    """A timed nudge to a person (a pending message, a status update, a legal clock)."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RegulatoryClockRow(Base):
    """A legal reporting deadline running for an incident, until the report is submitted."""

    __tablename__ = "regulatory_clocks"
    __table_args__ = (UniqueConstraint("incident_id", "regime"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    regime: Mapped[str] = mapped_column(String(24))
    case: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None]
    report_channel_id: Mapped[str | None] = mapped_column(String(32))
    report_ts: Mapped[str | None] = mapped_column(String(32))


class AlertDeliveryRow(Base):
    """One webhook request body, kept as received: it is evidence."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    alert_count: Mapped[int] = mapped_column(Integer)
    new_alerts: Mapped[int] = mapped_column(Integer)


class AlertGroupRow(Base):
    """Alerts that belong together (an Alertmanager group, a fingerprint) and their incident."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(512), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    # Bumped each time the group opens a new incident after the previous one was resolved.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    # Alerts not yet summarised in the war room (at most one summary a minute per group).
    pending_firing: Mapped[int] = mapped_column(Integer, default=0)
    pending_resolved: Mapped[int] = mapped_column(Integer, default=0)
    last_summary_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("alert_deliveries.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(
        ForeignKey("alert_groups.id", ondelete="CASCADE"), index=True
    )
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    received_at: Mapped[datetime]
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)


class MetricBaselineRow(Base):
    """The anomaly detector's learned baseline for one metric of one model."""

    __tablename__ = "metric_baselines"
    __table_args__ = (UniqueConstraint("model", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class AuditEntryRow(Base):
    """One link of an incident's hash-chained audit log. Rows are only ever inserted; the
    unique (incident, seq) makes two writers unable to take the same place in the chain."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("incident_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No cascade: an incident with an audit trail cannot be deleted from under it.
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class EvidenceRow(Base):
    """What warroom knew at a moment (incident, alerts, war-room messages), with its digest."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    taken_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class ContainmentProposalRow(Base):
    """A set of containment actions put to the commander, open until it expires."""

    __tablename__ = "containment_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    proposed_by: Mapped[str] = mapped_column(String(32))
    proposed_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    residual: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ContainmentActionRow(Base):
    """One proposed action: approvals, then exactly one execution, then its result."""

    __tablename__ = "containment_actions"
    __table_args__ = (UniqueConstraint("proposal_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("containment_proposals.id", ondelete="CASCADE")
    )
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    # Sent as Idempotency-Key: unique, so one action is carried out once whatever happens.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    target: Mapped[str] = mapped_column(Text)
    # A model or system a person named when the incident named none.
    target_override: Mapped[str | None] = mapped_column(String(200))
    target_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    expected_impact: Mapped[str] = mapped_column(Text)
    atlas: Mapped[list[str]] = mapped_column(default=list)
    approvals_needed: Mapped[int] = mapped_column(Integer, default=1)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class ContainmentDecisionRow(Base):
    """One person's approval or rejection of one action (once per person)."""

    __tablename__ = "containment_decisions"
    __table_args__ = (UniqueConstraint("action_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("containment_actions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime]


class RcaAnalysisRow(Base):
    """One root-cause analysis: the facts given, the findings, the causal chain; responders
    confirm or correct it, and the newest confirmed version is what the postmortem uses."""

    __tablename__ = "rca_analyses"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    chain: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    confirmed_by: Mapped[str | None] = mapped_column(String(32))
    confirmed_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))


class RuleProposalRow(Base):
    """A detection or classification change learned from an incident: proposed, then applied
    (taking effect without a restart) or dismissed."""

    __tablename__ = "rule_proposals"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))


class RecoveryPlanRow(Base):
    """The recovery of an incident's systems: restore, validate, restore capability in stages."""

    __tablename__ = "recovery_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))


class RecoveryStepRow(Base):
    """One step of a recovery plan, in order; a step runs only after the one before passed."""

    __tablename__ = "recovery_steps"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("recovery_plans.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    stage_percent: Mapped[int | None] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16))
    # Sent as Idempotency-Key when the step calls an endpoint: one step, one call.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    approved_by: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class MonitoringWindowRow(Base):
    """Enhanced monitoring after resolution: tighter thresholds for the affected models and
    a prompt to re-open if a related alert fires before it ends."""

    __tablename__ = "monitoring_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), unique=True
    )
    started_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    models: Mapped[list[str]] = mapped_column(default=list)
    reopen_prompted_at: Mapped[datetime | None]


class PostmortemRow(Base):
    """One build of the lessons-learned document; rebuilding makes a new version."""

    __tablename__ = "postmortems"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    markdown: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    built_by: Mapped[str] = mapped_column(String(32))
    built_at: Mapped[datetime]
    published_via: Mapped[str | None] = mapped_column(String(24))
    canvas_id: Mapped[str | None] = mapped_column(String(32))
    file_id: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(Text)


class MessageMarkRow(Base):
    """A 📌 or ✅ reaction on a war-room message, captured as it happens."""

    __tablename__ = "message_marks"
    __table_args__ = (UniqueConstraint("channel_id", "message_ts", "reaction", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str] = mapped_column(String(32))
    reaction: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    marked_at: Mapped[datetime]


class LessonRow(Base):
    """One responder's answers to what went well, what went badly and where we got lucky."""

    __tablename__ = "lessons"
    __table_args__ = (UniqueConstraint("incident_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    went_well: Mapped[str] = mapped_column(Text, default="")
    went_badly: Mapped[str] = mapped_column(Text, default="")
    got_lucky: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime]
