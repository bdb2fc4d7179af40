"""The outcome of claiming a side effect before making it (see the outbound message ledger)."""

from __future__ import annotations

from enum import StrEnum


class Claim(StrEnum):
    CLAIMED = "claimed"  # go ahead and make it
    # go ahead, but a worker that died holding it may have made it: look for it first
    RECOVERED = "recovered"
    DONE = "done"  # already made
    BUSY = "busy"  # another worker is making it right now
    EXHAUSTED = "exhausted"  # failed too often; warroom has given up on it
