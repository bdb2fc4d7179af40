"""Keeps warroom's posts to one channel at most one per interval, in arrival order.

Slack allows about one message per second per channel and answers bursts with 429s. When many
incidents come due at once for one audience channel, their messages queue here per channel
(a queue, not a digest: every audience still gets its own message per incident, and one
incident's message is never held back by another channel's queue). The limit is per process;
across replicas Slack's 429 with Retry-After, which the Web API client honours, is the backstop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ChannelPacer:
    def __init__(
        self,
        interval_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._channel_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def turn(self, channel_id: str) -> Iterator[float]:
        """Wait for the channel's turn and hold it while the block posts: one channel's
        posts leave one at a time however many threads send, each an interval after the
        last was answered. Yields the seconds waited."""
        if self._interval <= 0:
            yield 0.0
            return
        with self._lock:
            channel_lock = self._channel_locks.setdefault(channel_id, threading.Lock())
        with channel_lock:
            try:
                yield self.wait_turn(channel_id)
            finally:
                # The next post leaves a full interval after this one is answered: one that
                # was held up on its way (a busy process, a retry) is not followed closely.
                with self._lock:
                    self._next_slot[channel_id] = max(
                        self._next_slot.get(channel_id, 0.0), self._monotonic() + self._interval
                    )

    def wait_turn(self, channel_id: str) -> float:
        """Block until this channel may take another message; the seconds waited."""
        if self._interval <= 0:
            return 0.0
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next_slot.get(channel_id, now))
            self._next_slot[channel_id] = slot + self._interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait
