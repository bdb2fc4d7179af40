"""Delivers each planned audience message once, at its deadline or when a person says so.

The database decides who sends: a message is claimed with a conditional update before it is
sent, and each of its channels is claimed in the outbound ledger. A worker that dies between
the claim and the send leaves a stale claim; whoever takes it over first looks in the channel
for the message's delivery marker (Slack message metadata) and only posts when it is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.audience_messages import AudienceFacts, redact_message, render_audience_message
from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.drills import audience_channels, is_drill
from bot.domain.incident import Incident
from bot.domain.ledger import Claim
from bot.domain.notifications import (
    NotificationRecord,
    NotificationState,
    deadline_outcome,
)
from bot.domain.vocabulary import Role
from bot.errors import ExternalServiceError, PermissionDeniedError, UserError
from bot.logging_setup import log_context
from bot.pacing import ChannelPacer
from bot.presenters import incident_context, notification_context
from bot.rendering import Renderer
from bot.services.history import record_change
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# A send claimed longer ago than this belongs to a worker that died.
STALE_SEND = timedelta(minutes=2)
# Slack refused it this often: given up, and the war room is told.
MAX_SEND_ATTEMPTS = 10
# Who may send, edit or skip a planned message besides the approvers of containment.
MESSAGE_OWNERS = (Role.COMMUNICATIONS_LEAD, Role.INCIDENT_COMMANDER)
_N = NotificationState


@dataclass(frozen=True)
class Delivery:
    """What one attempt to send a planned message did."""

    notification: NotificationRecord
    sent: bool
    detail: str = ""


class NotificationService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        pacer: ChannelPacer,
        containment_lines: Callable[[int], list[str]],
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._pacer = pacer
        self._containment_lines = containment_lines
        self._on_change = on_change

    # -- at the deadline -----------------------------------------------------------------

    def run_due(self) -> int:
        """Send (or escalate) every message whose deadline has come; how many were handled."""
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            due = uow.notifications.due_ids(now=now, stale_before=now - STALE_SEND)
        handled = 0
        for notification_id in due:
            try:
                handled += self.fire(notification_id)
            except ExternalServiceError as error:
                log.warning("notification %d not sent yet: %s", notification_id, error)
        return handled

    def fire(self, notification_id: int) -> bool:
        """The deadline of one message: send it (auto_send) or hand it to the commander."""
        if self._config.notifications.auto_send:
            return self.deliver(notification_id, by="warroom").sent
        return self._escalate(notification_id)

    def deliver(self, notification_id: int, *, by: str, by_hand: bool = False) -> Delivery:
        """Send the message to every channel of its audience, once. Timers send only what is
        due; a person (`by_hand`) may send an open message early, or one escalated to them."""
        now = self._clock.now()
        with self._uow() as uow:
            won = uow.notifications.claim(
                notification_id,
                now=now,
                stale_before=now - STALE_SEND,
                from_states=(_N.PENDING, _N.ESCALATED) if by_hand else (_N.PENDING,),
                due_by=None if by_hand else now,
            )
            record = uow.notifications.get(notification_id)
            if record is None:
                raise UserError("That message is no longer planned.")
            if not won:
                return Delivery(record, sent=False, detail=_why_not(record))
            incident = _incident(uow, record.incident_id)
            channels = audience_channels(
                self._config.audiences.channels(record.audience),
                drill_channel=self._config.drill_channel,
                incident=incident,
            )
            # When a crashed worker's claim is taken over, its post may be in the channel
            # already: look back to when it claimed, before this claim overwrites that time.
            previously = {
                channel: uow.outbound.claimed_at(record.incident_id, _delivery_key(record, channel))
                for channel in channels
            }
            claims = {
                channel: uow.outbound.claim(
                    record.incident_id,
                    _delivery_key(record, channel),
                    now=now,
                    stale_before=now - STALE_SEND,
                    max_attempts=MAX_SEND_ATTEMPTS,
                )
                for channel in channels
            }
            uow.commit()
        # Read outside the claim's transaction, which holds SQLite's one write lock.
        with self._uow(read_only=True) as uow:
            facts = self._facts(uow, incident)
        with log_context(incident=incident.number):
            return self._post_all(record, incident, facts, claims, previously, by=by, now=now)

    def _post_all(
        self,
        record: NotificationRecord,
        incident: Incident,
        facts: AudienceFacts,
        claims: dict[str, Claim],
        previously: dict[str, datetime | None],
        *,
        by: str,
        now: datetime,
    ) -> Delivery:
        """Post to every claimed channel, then record the outcome (or give the claim back)."""
        channels = list(claims)
        if not channels:
            return self._unconfigured(record, drill=is_drill(incident))
        message = self.render(record, incident, facts)
        posted: dict[str, str | None] = {}
        try:
            for channel, claim in claims.items():
                posted[channel] = self._post(
                    record, channel, claim, message, since=previously.get(channel) or now
                )
        except ExternalServiceError as error:
            self._failed(record, posted, channel, str(error))
            raise
        if any(claim is Claim.BUSY for claim in claims.values()):
            # Another worker holds one channel right now; it finishes, the row is retried.
            self._release(record, posted, error="a channel was busy")
            return Delivery(record, sent=False, detail="busy")
        return Delivery(self._settle(record, incident, posted, by=by), sent=True)

    def _post(
        self,
        record: NotificationRecord,
        channel: str,
        claim: Claim,
        message: dict[str, Any],
        *,
        since: datetime,
    ) -> str | None:
        """Post to one channel if this worker holds it; the ts, or None when nothing was due."""
        if claim in (Claim.DONE, Claim.EXHAUSTED, Claim.BUSY):
            return None
        marker = _marker(record.incident_id, _delivery_key(record, channel))
        if claim is Claim.RECOVERED:
            # A minute of slack for clocks that disagree between replicas and Slack.
            found = self._slack.find_marked(channel, marker, since=since - timedelta(minutes=1))
            if found is not None:
                return found
        self._pacer.wait_turn(channel)
        return self._slack.post(channel, message, marker=marker)

    def _settle(
        self,
        record: NotificationRecord,
        incident: Incident,
        posted: dict[str, str | None],
        *,
        by: str,
    ) -> NotificationRecord:
        now = self._clock.now()
        outcome = deadline_outcome(
            record.due_at, now, grace=self._config.notifications.on_time_grace
        )
        if record.state is _N.ESCALATED or record.outcome is not None:
            outcome = record.outcome or outcome
        with self._uow() as uow:
            for channel, ts in posted.items():
                if ts is not None:
                    uow.outbound.mark_sent(
                        record.incident_id,
                        _delivery_key(record, channel),
                        now=now,
                        channel_id=channel,
                        ts=ts,
                    )
            uow.notifications.mark_sent(record.id, now=now, outcome=outcome, by=by)
            record_change(
                uow,
                record.incident_id,
                AuditAction.NOTIFICATION_SENT,
                actor=by,
                now=now,
                summary=(
                    f"{record.audience.label} told ({record.tier.value}, {outcome.value}"
                    f"{', sent by hand' if by != 'warroom' else ''})"
                ),
                data={
                    "audience": record.audience.value,
                    "tier": record.tier.value,
                    "due_at": record.due_at.isoformat(),
                    "outcome": outcome.value,
                    "channels": sorted(posted),
                },
            )
            settled = uow.notifications.get(record.id)
            uow.commit()
        assert settled is not None
        self._refresh_draft(settled, incident)
        return settled

    def _failed(
        self,
        record: NotificationRecord,
        posted: dict[str, str | None],
        channel: str,
        error: str,
    ) -> None:
        with self._uow() as uow:
            uow.outbound.mark_failed(
                record.incident_id, _delivery_key(record, channel), error=error
            )
            uow.commit()
        self._release(record, posted, error=error)

    def _release(
        self, record: NotificationRecord, posted: dict[str, str | None], *, error: str
    ) -> None:
        """Hand the message back for another try, keeping what was posted."""
        now = self._clock.now()
        back_to = _N.ESCALATED if record.state is _N.ESCALATED else _N.PENDING
        with self._uow() as uow:
            for channel, ts in posted.items():
                if ts is not None:
                    uow.outbound.mark_sent(
                        record.incident_id,
                        _delivery_key(record, channel),
                        now=now,
                        channel_id=channel,
                        ts=ts,
                    )
            current = uow.notifications.get(record.id)
            if current is not None and current.attempts >= MAX_SEND_ATTEMPTS:
                uow.notifications.give_up(record.id, error=error)
                log.error(
                    "gave up on the %s message to %s for incident id %d: %s",
                    record.tier.value,
                    record.audience.value,
                    record.incident_id,
                    error,
                )
            else:
                uow.notifications.release(record.id, back_to=back_to, error=error)
            uow.commit()

    def _unconfigured(self, record: NotificationRecord, *, drill: bool = False) -> Delivery:
        error = f"no channel is configured for {record.audience.value} (audiences in the config)"
        if drill:
            error = "a drill, and no drill_channel is configured: sent to no one"
        with self._uow() as uow:
            uow.notifications.give_up(record.id, error=error)
            uow.commit()
        log.error("incident id %d: %s", record.incident_id, error)
        return Delivery(record, sent=False, detail=error)

    def _escalate(self, notification_id: int) -> bool:
        """auto_send is off: the commander decides, in the war room; the deadline is missed."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.notifications.escalate(notification_id, now=now):
                return False
            record = uow.notifications.get(notification_id)
            assert record is not None
            incident = _incident(uow, record.incident_id)
            record_change(
                uow,
                record.incident_id,
                AuditAction.NOTIFICATION_ESCALATED,
                actor="warroom",
                now=now,
                summary=f"{record.audience.label} message due and unsent: over to the commander",
                data={"audience": record.audience.value, "tier": record.tier.value},
            )
            uow.commit()
        self._refresh_draft(record, incident)
        if incident.channel_id:
            self._slack.post(
                incident.channel_id,
                self._renderer.render(
                    "notifications/escalation",
                    incident=incident_context(incident),
                    notification=notification_context(record),
                    commander_id=incident.holder(Role.INCIDENT_COMMANDER),
                ),
            )
        return True

    # -- by hand -------------------------------------------------------------------------

    def send_now(self, notification_id: int, *, user_id: str) -> Delivery:
        """The Send now button: send an open message at once."""
        self._check_owner(notification_id, user_id)
        delivery = self.deliver(notification_id, by=user_id, by_hand=True)
        if not delivery.sent:
            raise UserError(f"Not sent: {delivery.detail}.")
        return delivery

    def skip(self, notification_id: int, *, user_id: str, reason: str) -> NotificationRecord:
        """Decide, with a reason, that a planned message should not go out."""
        reason = reason.strip()
        if not reason:
            raise UserError("Say why the message is skipped; the reason goes in the record.")
        self._check_owner(notification_id, user_id)
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.notifications.skip(notification_id, by=user_id, reason=reason, now=now):
                current = uow.notifications.get(notification_id)
                raise UserError(
                    f"That message is already {current.state.value if current else 'gone'}."
                )
            record = uow.notifications.get(notification_id)
            assert record is not None
            record_change(
                uow,
                record.incident_id,
                AuditAction.NOTIFICATION_SKIPPED,
                actor=user_id,
                now=now,
                summary=f"{record.audience.label} message skipped: {reason}",
                data={
                    "audience": record.audience.value,
                    "tier": record.tier.value,
                    "reason": reason,
                },
            )
            uow.commit()
        return record

    def edit(self, notification_id: int, *, user_id: str, text: str) -> NotificationRecord:
        """Replace the template's words for this one message (still redacted when external)."""
        text = text.strip()
        if not text:
            raise UserError("The message cannot be empty; use Skip to not send it.")
        self._check_owner(notification_id, user_id)
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.notifications.set_edited_text(notification_id, text=text, by=user_id):
                raise UserError("That message was sent or skipped meanwhile.")
            record = uow.notifications.get(notification_id)
            assert record is not None
            record_change(
                uow,
                record.incident_id,
                AuditAction.NOTIFICATION_EDITED,
                actor=user_id,
                now=now,
                summary=f"{record.audience.label} message edited",
                data={"audience": record.audience.value, "tier": record.tier.value},
            )
            uow.commit()
        return record

    def refresh(self, notification_id: int) -> None:
        """Re-render the message's draft and the card after a decision made in an ack."""
        with self._uow(read_only=True) as uow:
            record = uow.notifications.get(notification_id)
            if record is None:
                return
            incident = _incident(uow, record.incident_id)
        self._refresh_draft(record, incident)

    def check_owner(self, notification_id: int, user_id: str) -> None:
        """Refuse anyone but the communications lead, the commander and the approvers."""
        self._check_owner(notification_id, user_id)

    def edit_form(self, notification_id: int, *, user_id: str) -> dict[str, Any]:
        """The modal to edit a planned message, filled with what would be sent now."""
        self._check_owner(notification_id, user_id)
        record, incident, facts = self._load(notification_id)
        return self._renderer.render(
            "notifications/edit_modal",
            notification=notification_context(record),
            text=record.edited_text or _plain_text(self.render(record, incident, facts)),
        )

    def skip_form(self, notification_id: int, *, user_id: str) -> dict[str, Any]:
        self._check_owner(notification_id, user_id)
        record, _, _ = self._load(notification_id)
        return self._renderer.render(
            "notifications/skip_modal", notification=notification_context(record)
        )

    def _check_owner(self, notification_id: int, user_id: str) -> None:
        with self._uow(read_only=True) as uow:
            record = uow.notifications.get(notification_id)
            if record is None:
                raise UserError("That message is no longer planned.")
            incident = _incident(uow, record.incident_id)
        owners = {incident.holder(role) for role in MESSAGE_OWNERS}
        owners |= set(self._config.containment.approvers)
        if user_id not in owners:
            raise PermissionDeniedError(
                "Only the communications lead or the incident commander decides what is sent."
            )

    # -- drafts in the war room ----------------------------------------------------------

    def post_drafts(self, incident_id: int) -> int:
        """Post a draft of every open planned message that has none yet, for the
        communications lead to send, edit or skip; how many were posted."""
        with self._uow(read_only=True) as uow:
            incident = _incident(uow, incident_id)
            records = [
                n
                for n in uow.notifications.list_for(incident_id)
                if n.draft_ts is None and n.state.is_open
            ]
            facts = self._facts(uow, incident) if records else AudienceFacts()
        if incident.channel_id is None:
            return 0
        posted = 0
        for record in records:
            posted += self._post_draft(record, incident, facts)
        return posted

    def _post_draft(
        self, record: NotificationRecord, incident: Incident, facts: AudienceFacts
    ) -> bool:
        assert incident.channel_id is not None
        channel = incident.channel_id
        key = f"draft:{record.id}"
        now = self._clock.now()
        with self._uow() as uow:
            claim = uow.outbound.claim(
                incident.id,
                key,
                now=now,
                stale_before=now - STALE_SEND,
                max_attempts=MAX_SEND_ATTEMPTS,
            )
            uow.commit()
        if claim not in (Claim.CLAIMED, Claim.RECOVERED):
            return False
        ts = (
            self._slack.find_marked(channel, _marker(incident.id, key), since=now - STALE_SEND * 6)
            if (claim is Claim.RECOVERED)
            else None
        )
        try:
            ts = ts or self._slack.post(
                channel, self.draft(record, incident, facts), marker=_marker(incident.id, key)
            )
        except ExternalServiceError as error:
            with self._uow() as uow:
                uow.outbound.mark_failed(incident.id, key, error=str(error))
                uow.commit()
            raise
        with self._uow() as uow:
            uow.outbound.mark_sent(incident.id, key, now=now, channel_id=channel, ts=ts)
            uow.notifications.set_draft(record.id, channel_id=channel, ts=ts)
            uow.commit()
        return True

    def draft(
        self, record: NotificationRecord, incident: Incident, facts: AudienceFacts
    ) -> dict[str, Any]:
        """The war-room message showing a planned message, its deadline and its buttons."""
        preview = self.render(record, incident, facts)
        return self._renderer.render(
            "notifications/draft",
            incident=incident_context(incident),
            notification=notification_context(record),
            preview_blocks=preview.get("blocks", [])[:40],
            preview_text=preview.get("text", ""),
            channels=audience_channels(
                self._config.audiences.channels(record.audience),
                drill_channel=self._config.drill_channel,
                incident=incident,
            ),
            comms_lead_id=incident.holder(Role.COMMUNICATIONS_LEAD),
            auto_send=self._config.notifications.auto_send,
        )

    def _refresh_draft(self, record: NotificationRecord, incident: Incident) -> None:
        """Show the draft's new state (sent, skipped, escalated, edited) where it was posted,
        and the deadline's on the card."""
        if self._on_change is not None:
            try:
                self._on_change(incident.id)
            except ExternalServiceError as error:
                log.warning("card of incident #%d not updated: %s", incident.number, error)
        # The row as it stands now (the caller's copy predates the change being shown).
        with self._uow(read_only=True) as uow:
            current = uow.notifications.get(record.id)
            if current is None or current.draft_channel_id is None or current.draft_ts is None:
                return
            facts = self._facts(uow, incident)
        try:
            self._slack.update(
                current.draft_channel_id, current.draft_ts, self.draft(current, incident, facts)
            )
        except ExternalServiceError as error:
            log.warning("draft of notification %d not updated: %s", record.id, error)

    # -- rendering -----------------------------------------------------------------------

    def render(
        self, record: NotificationRecord, incident: Incident, facts: AudienceFacts
    ) -> dict[str, Any]:
        """What the audience receives: its template, or a person's edited words; redacted
        when the audience is outside the company."""
        if record.edited_text is not None:
            message = self._renderer.render(
                "notifications/edited_message",
                incident=incident_context(incident),
                notification=notification_context(record),
                text=record.edited_text,
            )
            return redact_message(message, incident=incident, audience=record.audience)
        return render_audience_message(
            self._renderer,
            audience=record.audience,
            incident=incident,
            facts=facts,
            tier=record.tier,
            due_at=record.due_at,
        )

    def facts(self, incident_id: int) -> AudienceFacts:
        with self._uow(read_only=True) as uow:
            return self._facts(uow, _incident(uow, incident_id))

    def _facts(self, uow: UnitOfWork, incident: Incident) -> AudienceFacts:
        events = uow.timeline.list_for(incident.id)
        updates = [e for e in events if e["kind"] == AuditAction.STATUS_UPDATE.value]
        evidence = [e["summary"] for e in events if e["kind"] in ("alerts_received", "classified")]
        containment = self._containment_lines(incident.id)
        return AudienceFacts(
            containment=tuple(containment),
            timeline=tuple((e["occurred_at"], e["summary"]) for e in events[-8:]),
            decisions_needed=tuple(line for line in containment if "awaiting" in line.lower()),
            evidence=tuple(evidence[-10:]),
            latest_update=updates[-1]["data"].get("text") if updates else None,
            contact=self._config.regulatory.contact,
        )

    def _load(self, notification_id: int) -> tuple[NotificationRecord, Incident, AudienceFacts]:
        with self._uow(read_only=True) as uow:
            record = uow.notifications.get(notification_id)
            if record is None:
                raise UserError("That message is no longer planned.")
            incident = _incident(uow, record.incident_id)
            return record, incident, self._facts(uow, incident)


def _delivery_key(record: NotificationRecord, channel: str) -> str:
    # The same key the critical alarm uses for the executive alert, so that message and the
    # planned executive message can never both be posted.
    return f"notify:{record.audience.value}:{record.tier.value}:{channel}"


def _marker(incident_id: int, key: str) -> str:
    """A delivery marker unique across incidents (ledger keys are unique per incident)."""
    return f"incident:{incident_id}:{key}"


def _incident(uow: UnitOfWork, incident_id: int) -> Incident:
    incident = uow.incidents.get(incident_id)
    if incident is None:
        raise LookupError(f"no incident with id {incident_id}")
    return incident


def _why_not(record: NotificationRecord) -> str:
    if record.state is _N.SENDING:
        return "it is being sent right now"
    if record.state is _N.PENDING:
        return "it is not due yet"
    return f"it is already {record.state.value}"


def _plain_text(message: dict[str, Any]) -> str:
    """The words of a rendered message, for a person to edit."""
    parts: list[str] = []
    for block in message.get("blocks", []):
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            parts.append(str(text["text"]))
        for field in block.get("fields", []) or []:
            if isinstance(field, dict) and field.get("text"):
                parts.append(str(field["text"]))
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
                parts.append(str(element.get("text", "")))
    return "\n\n".join(parts) or str(message.get("text", ""))
