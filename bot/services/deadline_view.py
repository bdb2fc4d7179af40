"""An incident's deadlines as `/incident status` and the card show them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.config import WarroomConfig
from bot.domain.regulatory import describe_clock
from bot.presenters import deadline_lines
from bot.regulatory_presenters import clock_context

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork


def incident_deadlines(
    uow: UnitOfWork, incident_id: int, *, config: WarroomConfig, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Every planned message (audience, due, where it stands) and every legal clock."""
    notifications = uow.notifications.list_for(incident_id)
    channels = {a: config.audiences.channels(a) for a in {n.audience for n in notifications}}
    return {
        "messages": deadline_lines(notifications, channels=channels),
        "clocks": [
            clock_context(
                describe_clock(
                    regime=c.regime, case=c.case, started_at=c.started_at, due_at=c.due_at
                ),
                now=now,
                submitted_by=c.submitted_by,
                submitted_at=c.submitted_at,
            )
            for c in uow.clocks.list_for(incident_id)
        ],
    }
