"""Opens and keeps up an incident's war room in Slack; every side effect is claimed first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.channel_names import war_room_channel_name
from bot.domain.drills import audience_channels, is_drill
from bot.domain.incident import Incident
from bot.domain.ledger import Claim
from bot.domain.vocabulary import Audience, NotificationTier, Role, Severity
from bot.errors import ExternalServiceError
from bot.logging_setup import log_context
from bot.presenters import incident_context, role_context, vocabulary_context
from bot.rendering import Renderer
from bot.services.deadline_view import incident_deadlines
from bot.slack_gateway import ChannelNameTakenError, SlackGateway

if TYPE_CHECKING:
    from bot.services.audit import EvidenceService
    from storage.unit_of_work import UnitOfWorkFactory
    from storage.worker_repositories import ClaimHolder

log = logging.getLogger(__name__)
T = TypeVar("T")

WAR_ROOM_LEASE = timedelta(minutes=5)
# A claimed side effect older than this is taken to belong to a worker that died.
STALE_CLAIM = timedelta(minutes=10)
MAX_NAME_ATTEMPTS = 20
# A message that failed this often (the sweep retries every 30 s) is given up and logged.
MAX_ATTEMPTS = 10


class WarRoomService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        evidence: EvidenceService | None = None,
        holder: Callable[[], ClaimHolder | None] = lambda: None,
    ) -> None:
        self._uow = uow
        # Names this process in its lease and claims, so that another finishes a war room it
        # was opening soon after it dies (bot.worker_heartbeat); None before it beats.
        self._holder = holder
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._evidence = evidence

    # -- opening -------------------------------------------------------------------------

    def open_war_room(self, incident_id: int) -> bool:
        """Run the opening steps that have not run yet; False if another worker is on it."""
        with log_context(incident=self._incident(incident_id).number):
            return self._open_war_room(incident_id)

    def _open_war_room(self, incident_id: int) -> bool:
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.incidents.take_war_room_lease(
                incident_id, now=now, until=now + WAR_ROOM_LEASE, holder=self._holder()
            ):
                return False
            uow.commit()
        try:
            incident, settled = self._open_steps(incident_id)
        except Exception:
            self._release_lease(incident_id)
            raise
        if not settled:
            self._release_lease(incident_id)
            return False
        with self._uow() as uow:
            uow.incidents.mark_war_room_opened(incident_id, now=self._clock.now())
            uow.timeline.add(
                incident_id,
                kind="war_room_opened",
                actor_id="warroom",
                summary=f"War room <#{incident.channel_id}> opened",
                now=self._clock.now(),
                data={"channel_id": incident.channel_id},
            )
            uow.commit()
        self._preserve_evidence(incident_id)
        return True

    def _preserve_evidence(self, incident_id: int) -> None:
        """Snapshot what is known at declaration (record, alerts, first messages), once."""
        if self._evidence is None:
            return
        try:
            self._evidence.preserve(incident_id, reason="declared")
        except Exception:
            # The war room is open; missing evidence is logged loudly rather than undoing it.
            log.exception("could not preserve evidence for incident id %d", incident_id)

    def _open_steps(self, incident_id: int) -> tuple[Incident, bool]:
        """Channel, then card (each needs the one before); then the messages, each tried even
        when another fails, so a broken announce channel cannot hold back the executives."""
        incident = self._ensure_channel(incident_id)
        settled = self._prepare_channel(incident)
        incident, card_settled = self._post_card(incident)
        settled &= card_settled
        messages = [self._send_checklists, self._announce]
        if incident.severity is Severity.CRITICAL:
            messages.append(self._raise_critical_alarm)
        settled &= _attempt_each(lambda send: send(incident), messages)
        return incident, settled

    def _release_lease(self, incident_id: int) -> None:
        with self._uow() as uow:
            uow.incidents.release_war_room_lease(incident_id)
            uow.commit()

    def open_pending_war_rooms(self) -> int:
        """Finish opening every war room a crash or a Slack outage left half-open."""
        with self._uow(read_only=True) as uow:
            pending = uow.incidents.list_without_war_room()
        opened = 0
        for incident_id in pending:
            try:
                opened += self.open_war_room(incident_id)
            except ExternalServiceError as error:
                log.warning("war room for incident id %d still not open: %s", incident_id, error)
        return opened

    def _ensure_channel(self, incident_id: int) -> Incident:
        incident = self._incident(incident_id)
        if incident.channel_id:
            return incident
        for attempt in range(MAX_NAME_ATTEMPTS):
            name = war_room_channel_name(
                prefix=self._config.channel_prefix,
                number=incident.number,
                title=incident.title,
                attempt=attempt,
            )
            try:
                channel_id = self._slack.create_channel(name, private=self._config.private_channels)
            except ChannelNameTakenError:
                continue
            with self._uow() as uow:
                uow.incidents.set_channel(incident_id, channel_id=channel_id, channel_name=name)
                uow.timeline.add(
                    incident_id,
                    kind="channel_created",
                    actor_id="warroom",
                    summary=f"Channel #{name} created",
                    now=self._clock.now(),
                    data={"channel_id": channel_id, "name": name},
                )
                uow.commit()
            return self._incident(incident_id)
        raise ExternalServiceError(
            f"no free channel name for incident #{incident.number} after {MAX_NAME_ATTEMPTS} tries"
        )

    def _prepare_channel(self, incident: Incident) -> bool:
        channel = _channel(incident)
        texts = self._renderer.render("channel_texts", incident=incident_context(incident))
        topic, purpose = texts["topic"], texts["purpose"]
        people = _people(incident)
        return all(
            [
                self._once(incident, "topic", lambda: self._slack.set_topic(channel, topic)),
                self._once(incident, "purpose", lambda: self._slack.set_purpose(channel, purpose)),
                self._once(incident, "invite", lambda: self._slack.invite(channel, people)),
            ]
        )

    def _post_card(self, incident: Incident) -> tuple[Incident, bool]:
        channel = _channel(incident)

        def post() -> tuple[str, str]:
            ts = self._slack.post(channel, self.render_card(incident))
            with self._uow() as uow:
                uow.incidents.set_card(incident.id, card_ts=ts)
                uow.commit()
            return channel, ts

        settled = self._once(incident, "card", post)
        incident = self._incident(incident.id)
        if incident.card_ts is None:
            return incident, False
        card_ts = incident.card_ts
        settled &= self._once(incident, "pin", lambda: self._slack.pin(channel, card_ts))
        return incident, settled

    def _send_checklists(self, incident: Incident) -> bool:
        """Every role holder's checklist, claimed in one transaction and recorded in another:
        six DMs should not take twelve turns at SQLite's one writer during an alert storm."""
        return self._once_each(
            incident,
            {
                _checklist_key(holder.role, holder.user_id): partial(
                    self._dm, holder.user_id, self._checklist(incident, holder.role)
                )
                for holder in incident.roles
            },
        )

    def _checklist(self, incident: Incident, role: Role) -> dict[str, Any]:
        return self._renderer.render(
            "role_checklist", incident=incident_context(incident), role=role_context(role)
        )

    def send_checklist(self, incident: Incident, role: Role, user_id: str) -> bool:
        """DM the role holder the role's responsibilities, once per role and person."""
        message = self._checklist(incident, role)
        return self._once(
            incident, _checklist_key(role, user_id), lambda: self._dm(user_id, message)
        )

    def _announce(self, incident: Incident) -> bool:
        channel = (
            self._config.drill_channel if is_drill(incident) else self._config.announce_channel
        )
        if channel is None:
            return True
        message = self._renderer.render("announcement", incident=incident_context(incident))
        return self._post_once(incident, "announce", channel, message)

    def raise_critical_alarm(self, incident_id: int) -> None:
        """Urgent DM to the commander and the executive alert, once per incident."""
        self._raise_critical_alarm(self._incident(incident_id))

    def _raise_critical_alarm(self, incident: Incident) -> bool:
        commander = incident.holder(Role.INCIDENT_COMMANDER)
        context = incident_context(incident)
        settled = True
        if commander is not None:
            dm = self._renderer.render("urgent_commander_dm", incident=context)
            settled = self._once(
                incident, f"urgent_dm:{commander}", lambda: self._dm(commander, dm)
            )
        channels = audience_channels(
            self._config.audiences.channels(Audience.EXECUTIVE_TEAM),
            drill_channel=self._config.drill_channel,
            incident=incident,
        )
        if not channels:
            return settled
        alert = self._renderer.render("executive_alert", incident=context, commander_id=commander)
        posted = _attempt_each(
            lambda channel: self._post_once(
                incident, f"notify:executive_team:immediate:{channel}", channel, alert
            ),
            channels,
        )
        if not posted:
            return False
        now = self._clock.now()
        with self._uow() as uow:
            uow.notifications.record_sent(
                incident.id,
                Audience.EXECUTIVE_TEAM,
                NotificationTier.IMMEDIATE,
                due_at=incident.declared_at
                + self._config.deadlines.for_tier(NotificationTier.IMMEDIATE),
                now=now,
            )
            uow.commit()
        if incident.card_ts is not None:
            # The card lists the deadlines: show this one as sent.
            try:
                self.refresh_card(incident.id)
            except ExternalServiceError as error:
                log.warning("card of incident #%d not refreshed: %s", incident.number, error)
        return settled

    # -- keeping up ----------------------------------------------------------------------

    def render_card(self, incident: Incident) -> dict[str, Any]:
        with self._uow(read_only=True) as uow:
            deadlines = incident_deadlines(
                uow, incident.id, config=self._config, now=self._clock.now()
            )
            document = uow.postmortems.latest(incident.id)
        postmortem = (
            {
                "version": document.version,
                "via": document.published_via,
                "permalink": document.permalink,
                "built_at": document.built_at,
            }
            if document is not None
            else None
        )
        return self._renderer.render(
            "incident_card",
            incident=incident_context(incident),
            deadlines=deadlines,
            postmortem=postmortem,
            **vocabulary_context(),
        )

    def refresh_card(self, incident_id: int) -> None:
        """Re-render the pinned card after a change."""
        incident = self._incident(incident_id)
        if incident.channel_id and incident.card_ts:
            self._slack.update(incident.channel_id, incident.card_ts, self.render_card(incident))

    def post_notice(self, incident: Incident, event: dict[str, Any]) -> None:
        """Tell the war room what changed."""
        if incident.channel_id:
            message = self._renderer.render(
                "war_room_notice", incident=incident_context(incident), event=event
            )
            self._slack.post(incident.channel_id, message)

    def post_alert_summary(self, incident: Incident, summary: dict[str, Any]) -> None:
        """One war-room message for a group's alerts since the last one."""
        if incident.channel_id:
            message = self._renderer.render(
                "alert_summary", incident=incident_context(incident), summary=summary
            )
            self._slack.post(incident.channel_id, message)

    def invite(self, incident: Incident, user_ids: list[str]) -> None:
        if incident.channel_id:
            self._slack.invite(incident.channel_id, user_ids)

    def post_once(
        self, incident: Incident, key: str, channel: str, message: dict[str, Any]
    ) -> bool:
        """Post a message named by `key` unless it was posted already; True once settled."""
        return self._post_once(incident, key, channel, message)

    def sent(self, incident_id: int, key: str) -> dict[str, str | None] | None:
        """Where the message named by `key` went, once it was posted."""
        with self._uow(read_only=True) as uow:
            return uow.outbound.sent(incident_id, key)

    # -- plumbing ------------------------------------------------------------------------

    def _incident(self, incident_id: int) -> Incident:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise LookupError(f"no incident with id {incident_id}")
        return incident

    def _dm(self, user_id: str, message: dict[str, Any]) -> tuple[str, str]:
        channel = self._slack.open_dm(user_id)
        try:
            return channel, self._slack.post(channel, message)
        except ExternalServiceError:
            self._slack.forget_dm(user_id)
            raise

    def _post_once(
        self, incident: Incident, key: str, channel: str, message: dict[str, Any]
    ) -> bool:
        return self._once(incident, key, lambda: (channel, self._slack.post(channel, message)))

    def _once(self, incident: Incident, key: str, action: Callable[[], object]) -> bool:
        """Make a side effect unless it was made already. True when it is settled (made now,
        made before, or given up after MAX_ATTEMPTS); False while another worker holds it."""
        return self._once_each(incident, {key: action})

    def _once_each(self, incident: Incident, actions: dict[str, Callable[[], object]]) -> bool:
        """`_once` for several side effects: one claim transaction, the actions in order
        (each tried even when another fails), one record. An action that posts returns its
        channel and ts. Raises the first Slack failure after recording the rest."""
        now = self._clock.now()
        with self._uow() as uow:
            claims = uow.outbound.claim_many(
                [(incident.id, key) for key in actions],
                now=now,
                stale_before=now - STALE_CLAIM,
                max_attempts=MAX_ATTEMPTS,
                holder=self._holder(),
            )
            uow.commit()
        settled = True
        sent: list[tuple[int, str, str | None, str | None]] = []
        failed: dict[str, Exception] = {}
        try:
            for key, action in actions.items():
                claim = claims[(incident.id, key)][0]
                if claim is Claim.EXHAUSTED:
                    _gave_up(incident, key)
                    continue
                if claim not in (Claim.CLAIMED, Claim.RECOVERED):
                    settled &= claim is Claim.DONE
                    continue
                try:
                    result = action()
                except ExternalServiceError as error:
                    failed[key] = error
                    continue
                except Exception as error:
                    failed[key] = error
                    raise
                channel, ts = result if isinstance(result, tuple) else (incident.channel_id, None)
                sent.append((incident.id, key, channel, ts))
        finally:
            with self._uow() as uow:
                uow.outbound.mark_many_sent(sent, now=self._clock.now())
                for key, problem in failed.items():
                    uow.outbound.mark_failed(incident.id, key, error=str(problem))
                uow.commit()
        if failed:
            raise next(iter(failed.values()))
        return settled


def _gave_up(incident: Incident, key: str) -> None:
    log.error(
        "gave up on %s for incident #%d after %d attempts", key, incident.number, MAX_ATTEMPTS
    )


def _checklist_key(role: Role, user_id: str) -> str:
    return f"checklist:{role.value}:{user_id}"


def _attempt_each(step: Callable[[T], bool], items: Iterable[T]) -> bool:
    """Run the step for every item even when some fail; then raise the first failure."""
    settled = True
    failures: list[ExternalServiceError] = []
    for item in items:
        try:
            settled &= step(item)
        except ExternalServiceError as error:
            failures.append(error)
    if failures:
        raise failures[0]
    return settled


def _channel(incident: Incident) -> str:
    if incident.channel_id is None:
        raise LookupError(f"incident #{incident.number} has no channel yet")
    return incident.channel_id


def _people(incident: Incident) -> list[str]:
    """The reporter (when a person declared it) and every role holder, each once."""
    people: list[str] = []
    if incident.reporter_id.startswith(("U", "W")):
        people.append(incident.reporter_id)
    for holder in incident.roles:
        if holder.user_id not in people:
            people.append(holder.user_id)
    return people
