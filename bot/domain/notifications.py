"""Who is told about an incident, how soon, and whether they were told in time.

The plan is a pure function of the incident. Each rule names an audience, a tier and the
reason the audience is told; a message is due at the moment the plan is made (declaration,
or the change that added it) plus the tier's deadline (by default immediate 15 minutes,
urgent 1 hour, standard 24 hours):

    condition              immediate                                urgent
    critical               executive, security, legal, communications
    personal data          data protection officer                  affected users
    public facing          PR team                                  customer support leads
    regulatory clock       -                                        regulatory body
    every incident         standard: technical team

The regulatory body is urgent, not immediate: legal (told immediately at critical) and the
data protection officer (told immediately when personal data is involved) must vet what is
filed first, and an hour still leaves most of even the shortest statutory clock (24 hours
for an early warning under NIS2, 72 hours under GDPR) once it is counted. It is not standard
because a 24-hour plan deadline could consume such a clock entirely.

One message per (audience, tier), and one tier per audience in a plan: an audience that
qualifies for two tiers keeps only the earlier one.

Replanning (after a severity change or a newly set flag) returns only what is new, with
deadlines counted from the change. An audience already planned or sent at the same or an
earlier tier gets nothing. An audience planned only at a later tier that now qualifies for an
earlier one gets a new, earlier message; the later message stays, since it may already be
sent and the earlier one supersedes it in urgency, not in content. Nothing is withdrawn when
an incident is downgraded or a flag is cleared: telling people is not undone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.incident import Incident
from bot.domain.vocabulary import Audience, NotificationTier, Severity

_TIER_ORDER = tuple(NotificationTier)


def _tier_rank(tier: NotificationTier) -> int:
    """0 for immediate, 1 for urgent, 2 for standard: smaller is sooner."""
    return _TIER_ORDER.index(tier)


@dataclass(frozen=True)
class TierDeadlines:
    """How long after the plan is made each tier's message is due."""

    immediate: timedelta = timedelta(minutes=15)
    urgent: timedelta = timedelta(hours=1)
    standard: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        for tier in NotificationTier:
            if self.for_tier(tier) <= timedelta(0):
                raise ValueError(f"the {tier} deadline must be positive")

    @classmethod
    def from_lookup(cls, lookup: Callable[[NotificationTier], timedelta]) -> TierDeadlines:
        """From any tier → deadline function, such as the configuration's `for_tier`."""
        return cls(
            immediate=lookup(NotificationTier.IMMEDIATE),
            urgent=lookup(NotificationTier.URGENT),
            standard=lookup(NotificationTier.STANDARD),
        )

    def for_tier(self, tier: NotificationTier) -> timedelta:
        deadline: timedelta = getattr(self, tier.value)
        return deadline


@dataclass(frozen=True)
class PlannedMessage:
    """One message the plan asks for: who, how soon, by when, and why."""

    audience: Audience
    tier: NotificationTier
    due_at: datetime
    reason: str


@dataclass(frozen=True)
class ExistingNotification:
    """A notification already recorded for the incident, pending or sent."""

    audience: Audience
    tier: NotificationTier
    due_at: datetime | None = None
    sent_at: datetime | None = None


class DeadlineOutcome(StrEnum):
    MET = "met"
    LATE = "late"


class NotificationState(StrEnum):
    PENDING = "pending"  # planned, waiting for its deadline or a person
    SENDING = "sending"  # claimed by one worker, which is sending it now
    SENT = "sent"
    SKIPPED = "skipped"  # a person decided it should not go, with a reason
    ESCALATED = "escalated"  # due and unsent with auto_send off: the commander decides
    FAILED = "failed"  # Slack refused it too often; given up and reported

    @property
    def is_open(self) -> bool:
        """Still to be sent or decided."""
        return self in (NotificationState.PENDING, NotificationState.ESCALATED)


@dataclass(frozen=True)
class NotificationRecord:
    """A planned message as stored: its deadline, where it stands, and who decided what."""

    id: int
    incident_id: int
    audience: Audience
    tier: NotificationTier
    state: NotificationState
    due_at: datetime
    created_at: datetime
    sent_at: datetime | None = None
    outcome: DeadlineOutcome | None = None
    reason: str = ""
    decided_by: str | None = None
    skip_reason: str | None = None
    edited_text: str | None = None
    draft_channel_id: str | None = None
    draft_ts: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class _Rule:
    audience: Audience
    tier: NotificationTier
    applies: Callable[[Incident, bool], bool]
    reason: str


def _critical(incident: Incident, _: bool) -> bool:
    return incident.severity is Severity.CRITICAL


def _personal(incident: Incident, _: bool) -> bool:
    return incident.personal_data


def _public(incident: Incident, _: bool) -> bool:
    return incident.public_facing


def _regulatory(_: Incident, regulatory_clock: bool) -> bool:
    return regulatory_clock


def _always(_: Incident, __: bool) -> bool:
    return True


_I, _U, _S = NotificationTier.IMMEDIATE, NotificationTier.URGENT, NotificationTier.STANDARD
_A = Audience

_RULES: tuple[_Rule, ...] = (
    _Rule(_A.EXECUTIVE_TEAM, _I, _critical,
          "A critical incident needs executive decisions on risk, spend and disclosure."),
    _Rule(_A.SECURITY_TEAM, _I, _critical,
          "A critical incident may be an active attack that security must help contain."),
    _Rule(_A.LEGAL_TEAM, _I, _critical,
          "A critical incident may carry legal liability and reporting duties."),
    _Rule(_A.COMMUNICATIONS_TEAM, _I, _critical,
          "A critical incident may become public and needs one prepared voice."),
    _Rule(_A.DATA_PROTECTION_OFFICER, _I, _personal,
          "Personal data is involved, so the data protection officer must assess the breach."),
    _Rule(_A.AFFECTED_USERS, _U, _personal,
          "Personal data is involved, so the people it belongs to must be told."),
    _Rule(_A.PR_TEAM, _I, _public,
          "The incident is visible to the public, so PR must be ready before the press is."),
    _Rule(_A.CUSTOMER_SUPPORT_LEADS, _U, _public,
          "The incident is visible to customers, so support must be ready for their questions."),
    _Rule(_A.REGULATORY_BODY, _U, _regulatory,
          "A regulatory reporting clock applies, so the regulator must be notified in time."),
    _Rule(_A.TECHNICAL_TEAM, _S, _always,
          "Every incident is reported to the technical team for follow-up and learning."),
)  # fmt: skip


def _wanted(incident: Incident, regulatory_clock: bool) -> list[_Rule]:
    """The rules that apply, one per audience at its earliest tier, soonest tier first."""
    best: dict[Audience, _Rule] = {}
    for rule in _RULES:
        if not rule.applies(incident, regulatory_clock):
            continue
        held = best.get(rule.audience)
        if held is None or _tier_rank(rule.tier) < _tier_rank(held.tier):
            best[rule.audience] = rule
    return sorted(best.values(), key=lambda rule: _tier_rank(rule.tier))


def _message(rule: _Rule, start: datetime, deadlines: TierDeadlines) -> PlannedMessage:
    return PlannedMessage(
        audience=rule.audience,
        tier=rule.tier,
        due_at=start + deadlines.for_tier(rule.tier),
        reason=rule.reason,
    )


def plan_notifications(
    incident: Incident, *, deadlines: TierDeadlines, regulatory_clock: bool = False
) -> tuple[PlannedMessage, ...]:
    """Every message the incident calls for, due from its declaration, soonest tier first."""
    return tuple(
        _message(rule, incident.declared_at, deadlines)
        for rule in _wanted(incident, regulatory_clock)
    )


def replan(
    previous: Sequence[PlannedMessage | ExistingNotification],
    incident: Incident,
    *,
    changed_at: datetime,
    deadlines: TierDeadlines,
    regulatory_clock: bool = False,
) -> tuple[PlannedMessage, ...]:
    """Only the messages the changed incident newly calls for, due from `changed_at`.

    An audience already planned or sent at the same or an earlier tier is skipped; one held
    only at a later tier gets a new, earlier message (the later one is left as it is).
    """
    earliest: dict[Audience, int] = {}
    for notice in previous:
        rank = _tier_rank(notice.tier)
        earliest[notice.audience] = min(rank, earliest.get(notice.audience, rank))
    return tuple(
        _message(rule, changed_at, deadlines)
        for rule in _wanted(incident, regulatory_clock)
        if _tier_rank(rule.tier) < earliest.get(rule.audience, len(_TIER_ORDER))
    )


def unconfigured(
    plan: Iterable[PlannedMessage | ExistingNotification],
    channels: Mapping[Audience, Sequence[str]],
) -> tuple[Audience, ...]:
    """Audiences in the plan with no channel to send to, once each, in plan order."""
    missing: list[Audience] = []
    for notice in plan:
        if not channels.get(notice.audience) and notice.audience not in missing:
            missing.append(notice.audience)
    return tuple(missing)


def deadline_outcome(
    due_at: datetime, sent_at: datetime, *, grace: timedelta = timedelta(0)
) -> DeadlineOutcome:
    """Met when sent by the deadline (plus the grace a timer needs to fire), late after it."""
    return DeadlineOutcome.MET if sent_at <= due_at + grace else DeadlineOutcome.LATE
