"""Delivers each planned audience message once, at its deadline or when a person says so.

The database decides who sends: a message is claimed with a conditional update before it is
sent, and each of its channels is claimed in the outbound ledger. A worker that dies between
the claim and the send leaves a stale claim; whoever takes it over first looks in the channel
for the message's delivery marker (Slack message metadata) and only posts when it is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from bot.audience_messages import AudienceFacts, redact_message, render_audience_message
from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.drills import audience_channels, is_drill
from bot.domain.incident import Incident
from bot.domain.ledger import Claim
from bot.domain.notifications import (
    DeadlineOutcome,
    NotificationRecord,
    NotificationState,
    deadline_outcome,
)
from bot.domain.vocabulary import Role
from bot.draft_refresher import DraftRefresher
from bot.errors import ExternalServiceError, PermissionDeniedError, UserError
from bot.logging_setup import ContextCarryingExecutor, log_context
from bot.pacing import ChannelPacer
from bot.presenters import incident_context, notification_context
from bot.rendering import Renderer
from bot.services.history import Change, record_change, record_changes
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory
    from storage.worker_repositories import ClaimHolder

log = logging.getLogger(__name__)

# A send claimed longer ago than this belongs to a worker that died.
STALE_SEND = timedelta(minutes=2)
# Slack refused it this often: given up, and the war room is told.
MAX_SEND_ATTEMPTS = 10
# Who may send, edit or skip a planned message besides the approvers of containment.
MESSAGE_OWNERS = (Role.COMMUNICATIONS_LEAD, Role.INCIDENT_COMMANDER)
# Due messages sent with one claim and one settle transaction.
SEND_BATCH = 32
# Tries at recording a batch's posts (each a whole transaction) before giving up.
SETTLE_ATTEMPTS = 3
# Posts of a batch in flight to Slack at once.
POST_THREADS = 32
# While timed messages wait to be sent, drafts and cards are redrawn after them, but no
# later than this after the send: a deadline outranks the war room's picture of it.
REDRAW_MAX_LAG = timedelta(seconds=60)
_N = NotificationState


@dataclass(frozen=True)
class Delivery:
    """What one attempt to send a planned message did."""

    notification: NotificationRecord
    sent: bool
    detail: str = ""


@dataclass(frozen=True)
class _Claimed:
    """A message this worker took for sending, with its channels' ledger claims."""

    record: NotificationRecord
    incident: Incident
    claims: dict[str, Claim]
    previously: dict[str, datetime | None]


@dataclass(frozen=True)
class _Posted:
    """A message posted (or found posted) to its channels, not yet recorded."""

    record: NotificationRecord
    incident: Incident
    posted: dict[str, str | None]
    message: dict[str, Any]


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
        sends_waiting: Callable[[], bool] = lambda: False,
        holder: Callable[[], ClaimHolder | None] = lambda: None,
    ) -> None:
        self._uow = uow
        # Names this process in its claims, so that others take them over soon after it
        # dies (bot.worker_heartbeat); None before it beats.
        self._holder = holder
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._pacer = pacer
        self._containment_lines = containment_lines
        self._on_change = on_change
        self._posters = ContextCarryingExecutor(
            max_workers=POST_THREADS, thread_name_prefix="warroom-post"
        )
        # Redraws drafts and cards after timed sends once started (start_background_work);
        # until then, and for a person's decisions, they are redrawn at once.
        self.drafts = DraftRefresher(
            self._redraw, busy=sends_waiting, max_lag=REDRAW_MAX_LAG.total_seconds()
        )

    def close(self) -> None:
        self._posters.shutdown(wait=True)

    # -- at the deadline -----------------------------------------------------------------

    def due_now(self, *, limit: int = 500) -> list[int]:
        """Messages whose deadline has come and that nobody is sending, soonest first."""
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            return uow.notifications.due_ids(
                now=now, stale_before=now - STALE_SEND, holder=self._holder(), limit=limit
            )

    def run_due(self) -> int:
        """Send (or escalate) every message whose deadline has come; how many were handled."""
        due = self.due_now()
        return sum(
            self.fire_due(due[start : start + SEND_BATCH])
            for start in range(0, len(due), SEND_BATCH)
        )

    def fire(self, notification_id: int) -> bool:
        """The deadline of one message: send it (auto_send) or hand it to the commander."""
        return self.fire_due([notification_id]) == 1

    def fire_due(self, notification_ids: Sequence[int]) -> int:
        """The deadline of each message: send them, as one batch (auto_send), or hand each
        to the commander; how many were handled. Slack's refusals are logged and left to the
        sweep."""
        if self._config.notifications.auto_send:
            return sum(delivery.sent for delivery in self.deliver_due(notification_ids))
        escalated = 0
        for notification_id in notification_ids:
            try:
                escalated += self._escalate(notification_id)
            except ExternalServiceError as error:
                log.warning(
                    "notification %d escalated, notice not posted: %s", notification_id, error
                )
        return escalated

    def deliver_due(self, notification_ids: Sequence[int]) -> list[Delivery]:
        """Send due messages at their deadline: one claim transaction and one settle
        transaction for the batch, the audience facts read once per incident, and the war
        room's drafts and card redrawn after, off this thread when the refresher runs."""
        deliveries: list[Delivery] = []
        notification_ids = list(dict.fromkeys(notification_ids))  # each once, in order
        results = self._deliver(notification_ids, by="warroom", by_hand=False)
        for notification_id, result in zip(notification_ids, results, strict=True):
            if isinstance(result, Delivery):
                deliveries.append(result)
            elif isinstance(result, UserError):  # the others were logged as they failed
                log.warning("notification %d not sent: %s", notification_id, result)
        return deliveries

    def deliver(self, notification_id: int, *, by: str, by_hand: bool = False) -> Delivery:
        """Send the message to every channel of its audience, once. Timers send only what is
        due; a person (`by_hand`) may send an open message early, or one escalated to them."""
        result = self._deliver([notification_id], by=by, by_hand=by_hand)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _deliver(
        self, notification_ids: Sequence[int], *, by: str, by_hand: bool
    ) -> list[Delivery | Exception]:
        now = self._clock.now()
        claimed = self._claim(notification_ids, now=now, by_hand=by_hand)
        incidents = {c.incident.id: c.incident for c in claimed if isinstance(c, _Claimed)}
        # Read outside the claim's transaction, which holds SQLite's one write lock.
        with self._uow(read_only=True) as uow:
            facts = self._facts_many(uow, list(incidents.values()))

        def attempt(item: _Claimed | Delivery | Exception) -> _Posted | Delivery | Exception:
            if not isinstance(item, _Claimed):
                return item
            with log_context(incident=item.incident.number):
                try:
                    return self._post_all(item, facts[item.incident.id], now=now)
                except ExternalServiceError as error:
                    log.warning(
                        "notification %d not sent yet (the sweep retries): %s",
                        item.record.id,
                        error,
                    )
                    return error
                except Exception as error:
                    # Not the batch's fault: the others are still settled. This one stays
                    # claimed, and whoever takes it over looks for its marker first.
                    log.exception("notification %d: sending failed", item.record.id)
                    return error

        # Each post waits on Slack (~100 ms away): a batch's posts wait side by side.
        outcomes = (
            list(self._posters.map(attempt, claimed))
            if len(claimed) > 1
            else [attempt(item) for item in claimed]
        )
        posts = [outcome for outcome in outcomes if isinstance(outcome, _Posted)]
        settled = self._settle(posts, by=by) if posts else {}
        for post in posts:
            self._show(settled[post.record.id], post.incident, post.message, now_please=by_hand)
        return [
            Delivery(settled[outcome.record.id], sent=True)
            if isinstance(outcome, _Posted)
            else outcome
            for outcome in outcomes
        ]

    def _claim(
        self, notification_ids: Sequence[int], *, now: datetime, by_hand: bool
    ) -> list[_Claimed | Delivery | Exception]:
        """Take each message for sending and claim its channels in the outbound ledger, in
        one transaction; what was not taken says why."""
        refused: dict[int, Delivery | Exception] = {}
        taken: dict[int, tuple[NotificationRecord, Incident, list[str]]] = {}
        with self._uow() as uow:
            won = uow.notifications.claim_many(
                notification_ids,
                now=now,
                stale_before=now - STALE_SEND,
                holder=self._holder(),
                from_states=(_N.PENDING, _N.ESCALATED) if by_hand else (_N.PENDING,),
                due_by=None if by_hand else now,
            )
            records = uow.notifications.get_many(notification_ids)
            incidents = uow.incidents.get_many(records[i].incident_id for i in won)
            for notification_id in notification_ids:
                record = records.get(notification_id)
                if record is None:
                    refused[notification_id] = UserError("That message is no longer planned.")
                elif notification_id not in won:
                    refused[notification_id] = Delivery(record, sent=False, detail=_why_not(record))
                else:
                    incident = incidents[record.incident_id]
                    channels = audience_channels(
                        self._config.audiences.channels(record.audience),
                        drill_channel=self._config.drill_channel,
                        incident=incident,
                    )
                    taken[notification_id] = (record, incident, channels)
            # `before` is when a crashed worker claimed a channel, if one did: its post may
            # be there already, so the marker search looks back to then.
            ledger = uow.outbound.claim_many(
                [
                    (record.incident_id, _delivery_key(record, channel))
                    for record, _, channels in taken.values()
                    for channel in channels
                ],
                now=now,
                stale_before=now - STALE_SEND,
                holder=self._holder(),
                max_attempts=MAX_SEND_ATTEMPTS,
            )
            uow.commit()
        claimed: list[_Claimed | Delivery | Exception] = []
        for notification_id in notification_ids:
            if notification_id not in taken:
                claimed.append(refused[notification_id])
                continue
            record, incident, channels = taken[notification_id]
            keys = {
                channel: (record.incident_id, _delivery_key(record, channel))
                for channel in channels
            }
            claimed.append(
                _Claimed(
                    record,
                    incident,
                    claims={channel: ledger[key][0] for channel, key in keys.items()},
                    previously={channel: ledger[key][1] for channel, key in keys.items()},
                )
            )
        return claimed

    def _post_all(
        self, item: _Claimed, facts: AudienceFacts, *, now: datetime
    ) -> _Posted | Delivery:
        """Post to every claimed channel; what was posted, to be settled (or the claim given
        back, and why)."""
        record, claims = item.record, item.claims
        channels = list(claims)
        if not channels:
            return self._unconfigured(record, drill=is_drill(item.incident))
        message = self.render(record, item.incident, facts)
        posted: dict[str, str | None] = {}
        try:
            for channel, claim in claims.items():
                posted[channel] = self._post(
                    record, channel, claim, message, since=item.previously.get(channel) or now
                )
        except ExternalServiceError as error:
            self._failed(record, posted, channel, str(error))
            raise
        if any(claim is Claim.BUSY for claim in claims.values()):
            # Another worker holds one channel right now; it finishes, the row is retried.
            self._release(record, posted, error="a channel was busy")
            return Delivery(record, sent=False, detail="busy")
        return _Posted(record, item.incident, posted, message)

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
        with self._pacer.turn(channel):
            return self._slack.post(channel, message, marker=marker)

    def _settle(self, posts: Sequence[_Posted], *, by: str) -> dict[int, NotificationRecord]:
        """Record what was posted, in one transaction: the ledger, the rows (met or late),
        the timeline and the audit log. The rows as they stand after, by id."""
        now = self._clock.now()
        grace = self._config.notifications.on_time_grace
        outcomes: dict[int, DeadlineOutcome] = {}
        for post in posts:
            record = post.record
            outcome = deadline_outcome(record.due_at, now, grace=grace)
            if record.state is _N.ESCALATED or record.outcome is not None:
                outcome = record.outcome or outcome
            outcomes[record.id] = outcome
        for _ in range(SETTLE_ATTEMPTS - 1):
            try:
                return self._record_sent(posts, outcomes, now=now, by=by)
            except OperationalError as error:
                # The posts are in Slack: recording them must outlast a deadlock or a
                # dropped connection (PostgreSQL picks a victim among crossing writers).
                log.warning("recording %d sends failed (%s); trying again", len(posts), error)
        return self._record_sent(posts, outcomes, now=now, by=by)

    def _record_sent(
        self,
        posts: Sequence[_Posted],
        outcomes: dict[int, DeadlineOutcome],
        *,
        now: datetime,
        by: str,
    ) -> dict[int, NotificationRecord]:
        with self._uow() as uow:
            uow.outbound.mark_many_sent(
                [
                    (post.record.incident_id, _delivery_key(post.record, channel), channel, ts)
                    for post in posts
                    for channel, ts in post.posted.items()
                    if ts is not None
                ],
                now=now,
            )
            uow.notifications.mark_many_sent(outcomes, now=now, by=by)
            record_changes(
                uow,
                [
                    Change(
                        incident_id=post.record.incident_id,
                        action=AuditAction.NOTIFICATION_SENT,
                        actor=by,
                        now=now,
                        summary=(
                            f"{post.record.audience.label} told ({post.record.tier.value}, "
                            f"{outcomes[post.record.id].value}"
                            f"{', sent by hand' if by != 'warroom' else ''})"
                        ),
                        data={
                            "audience": post.record.audience.value,
                            "tier": post.record.tier.value,
                            "due_at": post.record.due_at.isoformat(),
                            "outcome": outcomes[post.record.id].value,
                            "channels": sorted(post.posted),
                        },
                    )
                    for post in posts
                ],
            )
            settled = uow.notifications.get_many(post.record.id for post in posts)
            uow.commit()
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
        # The claim has moved the row to sending; only an escalation sets the outcome before
        # a send, so it tells an escalated message (the commander's to decide) from a pending one.
        escalated = record.state is _N.ESCALATED or record.outcome is not None
        back_to = _N.ESCALATED if escalated else _N.PENDING
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
        if incident.channel_id is None or not records:
            return 0
        channel = incident.channel_id
        keys = {record.id: f"draft:{record.id}" for record in records}
        now = self._clock.now()
        # One claim transaction for all the drafts and one record of what was posted: a war
        # room's ten drafts should not take twenty turns at SQLite's one writer.
        with self._uow() as uow:
            claims = uow.outbound.claim_many(
                [(incident.id, key) for key in keys.values()],
                now=now,
                stale_before=now - STALE_SEND,
                holder=self._holder(),
                max_attempts=MAX_SEND_ATTEMPTS,
            )
            uow.commit()
        mine = [
            record
            for record in records
            if claims[(incident.id, keys[record.id])][0] in (Claim.CLAIMED, Claim.RECOVERED)
        ]
        posted: dict[int, str] = {}
        try:
            for record in mine:
                claim, before = claims[(incident.id, keys[record.id])]
                marker = _marker(incident.id, keys[record.id])
                found = (
                    self._slack.find_marked(
                        channel, marker, since=(before or now) - timedelta(minutes=1)
                    )
                    if claim is Claim.RECOVERED
                    else None
                )
                posted[record.id] = found or self._slack.post(
                    channel, self.draft(record, incident, facts), marker=marker
                )
        except ExternalServiceError as error:
            # The rest are given back at once, for the sweep to try again.
            with self._uow() as uow:
                for record in mine:
                    if record.id not in posted:
                        uow.outbound.mark_failed(incident.id, keys[record.id], error=str(error))
                uow.commit()
            raise
        finally:
            if posted:
                with self._uow() as uow:
                    uow.outbound.mark_many_sent(
                        [(incident.id, keys[i], channel, ts) for i, ts in posted.items()], now=now
                    )
                    by_id = {record.id: record for record in records}
                    for notification_id, ts in posted.items():
                        uow.notifications.set_draft(
                            notification_id,
                            channel_id=channel,
                            ts=ts,
                            shows=by_id[notification_id].state,
                        )
                    uow.commit()
        return len(posted)

    def draft(
        self,
        record: NotificationRecord,
        incident: Incident,
        facts: AudienceFacts,
        *,
        preview: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The war-room message showing a planned message, its deadline and its buttons;
        `preview` is the message as sent, when it was."""
        if preview is None:
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

    def _show(
        self,
        record: NotificationRecord,
        incident: Incident,
        sent: dict[str, Any],
        *,
        now_please: bool,
    ) -> None:
        """After a send: the draft and the card show it, at once for a person's click, else
        through the refresher."""
        if now_please or not self.drafts.request(incident.id, record.id, sent):
            self._refresh_draft(record, incident, preview=sent)

    def _refresh_draft(
        self,
        record: NotificationRecord,
        incident: Incident,
        *,
        preview: dict[str, Any] | None = None,
    ) -> None:
        """Show the draft's new state (sent, skipped, escalated, edited) where it was posted,
        and the deadline's on the card."""
        self._redraw(incident.id, {record.id: preview}, incident=incident)

    def _redraw(
        self,
        incident_id: int,
        previews: dict[int, dict[str, Any] | None],
        *,
        incident: Incident | None = None,
    ) -> None:
        """Redraw the incident's card once, and the drafts of these messages as their rows
        stand now; record what each draft shows."""
        if self._on_change is not None:
            try:
                self._on_change(incident_id)
            except ExternalServiceError as error:
                log.warning("card of incident id %d not updated: %s", incident_id, error)
        # The rows as they stand now (the callers' copies predate the change being shown).
        with self._uow(read_only=True) as uow:
            if incident is None:
                incident = _incident(uow, incident_id)
            current = [
                row
                for row in uow.notifications.get_many(previews).values()
                if row.draft_channel_id is not None and row.draft_ts is not None
            ]
            unsent = any(previews.get(row.id) is None for row in current)
            facts = self._facts(uow, incident) if unsent else AudienceFacts()
        shown: dict[int, NotificationState] = {}
        for row in current:
            assert row.draft_channel_id is not None and row.draft_ts is not None
            message = self.draft(row, incident, facts, preview=previews.get(row.id))
            try:
                self._slack.update(row.draft_channel_id, row.draft_ts, message)
            except ExternalServiceError as error:
                log.warning("draft of notification %d not updated: %s", row.id, error)
                continue
            shown[row.id] = row.state
        if shown:
            with self._uow() as uow:
                uow.notifications.mark_drafts_shown(shown)
                uow.commit()

    def redraw_stale_drafts(self) -> int:
        """Redraw drafts showing a state their row has left (a redraw a crash lost, or one
        still waiting); how many incidents were asked or redrawn."""
        with self._uow(read_only=True) as uow:
            stale = uow.notifications.stale_drafts()
        by_incident: dict[int, dict[int, dict[str, Any] | None]] = {}
        for notification_id, incident_id in stale:
            by_incident.setdefault(incident_id, {})[notification_id] = None
        for incident_id, previews in by_incident.items():
            if self.drafts.running:
                for notification_id in previews:
                    self.drafts.request(incident_id, notification_id)
                continue
            try:
                self._redraw(incident_id, previews)
            except ExternalServiceError as error:
                log.warning("drafts of incident id %d not redrawn: %s", incident_id, error)
        return len(by_incident)

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
        return self._facts_many(uow, [incident])[incident.id]

    def _facts_many(
        self, uow: UnitOfWork, incidents: Sequence[Incident]
    ) -> dict[int, AudienceFacts]:
        """What the audience templates say of each incident beyond its fields: containment,
        the latest events, evidence, the latest update; their timelines read together."""
        ids = [incident.id for incident in incidents]
        timelines = uow.timeline.list_for_many(ids)
        contained = uow.containment.proposed_for(ids)
        return {
            incident_id: self._facts_of(
                timelines[incident_id],
                self._containment_lines(incident_id) if incident_id in contained else [],
            )
            for incident_id in ids
        }

    def _facts_of(self, events: list[dict[str, Any]], containment: list[str]) -> AudienceFacts:
        updates = [e for e in events if e["kind"] == AuditAction.STATUS_UPDATE.value]
        evidence = [e["summary"] for e in events if e["kind"] in ("alerts_received", "classified")]
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
