"""`/incident update`: one status update, told to every audience already told of the incident."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.audience_messages import render_audience_message
from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.drills import audience_channels
from bot.domain.incident import Incident
from bot.domain.vocabulary import Audience
from bot.errors import ExternalServiceError, UserError
from bot.pacing import ChannelPacer
from bot.rendering import Renderer
from bot.services.deadline_planner import DeadlinePlanner
from bot.services.history import record_change
from bot.services.notifications import NotificationService
from bot.services.war_room import WarRoomService

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWorkFactory

MAX_UPDATE_LENGTH = 2800


@dataclass(frozen=True)
class StatusUpdate:
    """An update stored in the ack; the fan-out runs after it."""

    incident: Incident
    update_id: str
    text: str
    author_id: str
    audiences: tuple[Audience, ...]


@dataclass(frozen=True)
class FanOut:
    """Where an update went, and where it could not go."""

    told: tuple[Audience, ...]
    failed: tuple[Audience, ...]
    unconfigured: tuple[Audience, ...]


class StatusUpdateService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        planner: DeadlinePlanner,
        notifications: NotificationService,
        war_rooms: WarRoomService,
        pacer: ChannelPacer,
    ) -> None:
        self._uow = uow
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._planner = planner
        self._notifications = notifications
        self._war_rooms = war_rooms
        self._pacer = pacer

    def record(self, *, incident: Incident, text: str, author_id: str) -> StatusUpdate:
        """Store the update and restart the update cadence; nothing is sent yet."""
        text = text.strip()
        if not text:
            raise UserError("Say what changed: `/incident update <text>`.")
        if len(text) > MAX_UPDATE_LENGTH:
            raise UserError(
                f"An update holds at most {MAX_UPDATE_LENGTH} characters "
                f"(this one has {len(text)}); split it in two."
            )
        if not incident.state.is_open:
            raise UserError(f"Incident #{incident.number} is {incident.state.value}.")
        update_id = uuid.uuid4().hex[:12]
        now = self._clock.now()
        with self._uow() as uow:
            audiences = tuple(uow.notifications.notified_audiences(incident.id))
            record_change(
                uow,
                incident.id,
                AuditAction.STATUS_UPDATE,
                actor=author_id,
                now=now,
                summary=f"Status update: {_shortened(text)}",
                data={
                    "text": text,
                    "update_id": update_id,
                    "audiences": [a.value for a in audiences],
                },
            )
            self._planner.reset_cadence(uow, incident, after=now)
            uow.commit()
        return StatusUpdate(
            incident=incident,
            update_id=update_id,
            text=text,
            author_id=author_id,
            audiences=audiences,
        )

    def fan_out(self, update: StatusUpdate) -> FanOut:
        """Send the update to each audience through its template (redacted where external),
        once per channel even if this runs twice."""
        incident = update.incident
        facts = self._notifications.facts(incident.id)
        told: list[Audience] = []
        failed: list[Audience] = []
        unconfigured: list[Audience] = []
        for audience in update.audiences:
            # A drill's updates go to the drill channel, never to the real audience.
            channels = audience_channels(
                self._config.audiences.channels(audience),
                drill_channel=self._config.drill_channel,
                incident=incident,
            )
            if not channels:
                unconfigured.append(audience)
                continue
            message = render_audience_message(
                self._renderer,
                audience=audience,
                incident=incident,
                facts=facts,
                update_text=update.text,
                update_author_id=update.author_id,
            )
            try:
                for channel in channels:
                    with self._pacer.turn(channel):
                        self._war_rooms.post_once(
                            incident,
                            f"update:{update.update_id}:{audience.value}:{channel}",
                            channel,
                            message,
                        )
                told.append(audience)
            except ExternalServiceError:
                failed.append(audience)
        return FanOut(told=tuple(told), failed=tuple(failed), unconfigured=tuple(unconfigured))


def _shortened(text: str, limit: int = 200) -> str:
    """The update for the timeline line, cut at a word with an ellipsis (the whole text is
    kept in the event's data)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
