"""The Slack work after alert deliveries (war rooms, escalation notices, summaries), on one
thread that lets the recording of alerts go first.

Opening a war room is ~20 Slack calls and ~100 ms of interpreter time. Run from the request
threads, fifty of them during a storm took most of the process from the deliveries still
waiting to be recorded, and senders waited seconds for their 202. Here they wait while ingest
is saturated (its writer busy more than `BUSY_LOAD` of the last `LOAD_WINDOW`), at most
`MAX_DEFER` after the oldest waiting delivery, so a sustained storm still gets its war rooms
every few seconds; steady traffic below saturation waits for nothing. Deliveries that queued
up meanwhile are followed up together: one summary pass for all their groups.

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

# Ingest is saturated while its writer was busy more than this share of the last window.
BUSY_LOAD = 0.5
LOAD_WINDOW = 0.25
# The longest a delivery's follow-up waits for ingest to stop being saturated.
MAX_DEFER = 5.0
# How often a waiting follow-up looks at the load again.
RECHECK = 0.05


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


def one_war_room_at_a_time(together: Ingested) -> list[Ingested]:
    """The follow-up in parts of one new war room each, so a storm that starts meanwhile
    waits behind one war room, not behind all of them. Escalations, reopen prompts and
    summaries come with the last part: by then every war room they talk to is open."""
    if len(together.declared) <= 1:
        return [together]
    last = Ingested(
        received=together.received,
        new=together.new,
        declared=together.declared[-1:],
        escalations=together.escalations,
        groups=together.groups,
        reopen_prompts=together.reopen_prompts,
    )
    return [Ingested(declared=[incident_id]) for incident_id in together.declared[:-1]] + [last]


class AlertFollowUps:
    def __init__(
        self,
        follow_up: Callable[[Ingested], None],
        *,
        ingest_load: Callable[[float], float],
        max_defer: float = MAX_DEFER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._follow_up = follow_up
        self._ingest_load = ingest_load
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
                while not self._closed and not (self._waiting and self._turn(self._oldest_at)):
                    self._changed.wait(self._pause(self._oldest_at) if self._waiting else None)
                if self._closed:
                    return
                outcomes, self._waiting = self._waiting, []
                taken_since, self._in_hand = self._oldest_at, len(outcomes)
            try:
                for index, part in enumerate(one_war_room_at_a_time(merged(outcomes))):
                    if index and not self._wait_turn(taken_since):
                        return  # closing: the sweeps open the rest
                    self._run(part, len(outcomes))
            finally:
                with self._changed:
                    self._in_hand = 0
                    self._changed.notify_all()

    def _run(self, part: Ingested, deliveries: int) -> None:
        try:
            self._follow_up(part)
        except ExternalServiceError as error:
            # The alerts are stored; the sweeps reopen war rooms and re-send summaries.
            log.warning("Slack follow-up of %d deliveries failed: %s", deliveries, error)
        except Exception:
            log.exception("the follow-up of %d deliveries failed", deliveries)

    def _turn(self, since: float) -> bool:
        """Whether work waiting since `since` may run now: ingest is not saturated (judged
        over a whole window, so a storm's first delivery is not mistaken for a lone one), or
        the work has waited long enough."""
        waited = self._monotonic() - since
        if waited >= self._max_defer:
            return True
        return waited >= LOAD_WINDOW and self._ingest_load(LOAD_WINDOW) <= BUSY_LOAD

    def _wait_turn(self, since: float) -> bool:
        """Wait for `_turn`; False when closing."""
        with self._changed:
            while not self._closed and not self._turn(since):
                self._changed.wait(self._pause(since))
            return not self._closed

    def _pause(self, since: float) -> float:
        until_overdue = self._max_defer - (self._monotonic() - since)
        return max(0.005, min(RECHECK, until_overdue))
