"""The Slack work after alert deliveries (war rooms, escalation notices, summaries), on one
thread that lets the recording of alerts go first.

Opening a war room is ~20 Slack calls and ~100 ms of interpreter time. Run from the request
threads, fifty of them during a storm took most of the process from the deliveries still
waiting to be recorded, and senders waited seconds for their 202. Here they wait for ingest to
pause (`IDLE_GAP` without a delivery being recorded), or at most `MAX_DEFER` after the oldest
waiting delivery, so a sustained storm still gets its war rooms every few seconds. Deliveries
that queued up meanwhile are followed up together: one summary pass for all their groups.

The queue is only a faster way to the work: a crash loses what was queued, and the sweeps
finish it (war rooms still opening every 30 s, summaries every minute).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.errors import ExternalServiceError
from bot.services.alerts import Ingested

log = logging.getLogger(__name__)

# How long ingest must have been quiet before the follow-ups run.
IDLE_GAP = 0.1
# The longest a delivery's follow-up waits for that quiet.
MAX_DEFER = 5.0


def merged(outcomes: list[Ingested]) -> Ingested:
    """Several deliveries' outcomes as one: every declaration, escalation and group, once."""
    together = Ingested()
    for outcome in outcomes:
        together.received += outcome.received
        together.new += outcome.new
        together.declared.extend(outcome.declared)
        together.escalations.extend(outcome.escalations)
        together.groups.extend(g for g in outcome.groups if g not in together.groups)
        together.reopen_prompts.extend(outcome.reopen_prompts)
    return together


class AlertFollowUps:
    def __init__(
        self,
        follow_up: Callable[[Ingested], None],
        *,
        ingest_quiet_for: Callable[[], float],
        idle_gap: float = IDLE_GAP,
        max_defer: float = MAX_DEFER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._follow_up = follow_up
        self._ingest_quiet_for = ingest_quiet_for
        self._idle_gap = idle_gap
        self._max_defer = max_defer
        self._monotonic = monotonic
        self._changed = threading.Condition()
        self._waiting: list[Ingested] = []
        self._oldest_at = 0.0
        self._in_hand = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, outcome: Ingested) -> None:
        """Queue a recorded delivery's follow-up; the thread starts with the first."""
        with self._changed:
            if self._closed:
                return  # shutting down: the sweeps will do it
            if not self._waiting:
                self._oldest_at = self._monotonic()
            self._waiting.append(outcome)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="warroom-alert-follow-ups", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in hand; False if that took too long."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._waiting and not self._in_hand, timeout=timeout
            )

    def close(self, timeout: float = 10.0) -> None:
        """Finish the follow-up in hand; what is still queued is left to the sweeps."""
        with self._changed:
            self._closed = True
            self._waiting.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._closed and not self._due():
                    self._changed.wait(self._pause())
                if self._closed:
                    return
                outcomes, self._waiting = self._waiting, []
                self._in_hand = len(outcomes)
            try:
                self._follow_up(merged(outcomes))
            except ExternalServiceError as error:
                # The alerts are stored; the sweeps reopen war rooms and re-send summaries.
                log.warning("Slack follow-up of %d deliveries failed: %s", len(outcomes), error)
            except Exception:
                log.exception("the follow-up of %d deliveries failed", len(outcomes))
            finally:
                with self._changed:
                    self._in_hand = 0
                    self._changed.notify_all()

    def _due(self) -> bool:
        if not self._waiting:
            return False
        waited = self._monotonic() - self._oldest_at
        return waited >= self._max_defer or self._ingest_quiet_for() >= self._idle_gap

    def _pause(self) -> float | None:
        """How long to sleep before looking again (None: until something is queued)."""
        if not self._waiting:
            return None
        until_quiet = self._idle_gap - self._ingest_quiet_for()
        until_overdue = self._max_defer - (self._monotonic() - self._oldest_at)
        return max(0.005, min(until_quiet, until_overdue))
