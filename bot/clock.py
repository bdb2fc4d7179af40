"""Time as warroom reads it: always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock (freezegun controls it in tests)."""

    def now(self) -> datetime:
        return datetime.now(UTC)
