"""The incident life cycle: which state changes are allowed."""

from __future__ import annotations

from bot.domain.vocabulary import IncidentState
from bot.errors import InvalidTransitionError

_NEXT: dict[IncidentState, frozenset[IncidentState]] = {
    IncidentState.DECLARED: frozenset(
        {IncidentState.CONTAINED, IncidentState.RECOVERING, IncidentState.RESOLVED}
    ),
    IncidentState.CONTAINED: frozenset({IncidentState.RECOVERING, IncidentState.RESOLVED}),
    IncidentState.RECOVERING: frozenset({IncidentState.RESOLVED}),
    # Re-opened when a related alert fires during enhanced monitoring.
    IncidentState.RESOLVED: frozenset({IncidentState.CLOSED, IncidentState.DECLARED}),
    IncidentState.CLOSED: frozenset(),
}


def check_transition(current: IncidentState, target: IncidentState) -> None:
    """Raise InvalidTransitionError unless the incident may move from `current` to `target`."""
    if target not in _NEXT[current]:
        raise InvalidTransitionError(
            f"The incident is {current.value}; it cannot become {target.value}."
        )
