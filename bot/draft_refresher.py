"""Brings the war room's view of timed sends up to date off the sending threads.

After a timed send the message's draft in the war room (its state, its buttons) and the
pinned card (its deadlines) must show the send. Doing that on the sending thread doubles the
cost of every send, and in a storm the same card is redrawn for each of its incident's
messages. Here each send only asks; one thread redraws an incident's card once for every send
asked since, and its drafts, sends first: while messages are waiting to go out it waits, up
to `max_lag` seconds from the oldest ask. What a crash loses the deadline sweep redraws (a
draft records the state it shows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# notification id -> the message as sent (reused for the draft's preview), or None to render.
Previews = dict[int, dict[str, Any] | None]
RefreshIncident = Callable[[int, Previews], None]


@dataclass
class _Asked:
    since: float
    previews: Previews = field(default_factory=dict)


class DraftRefresher:
    def __init__(
        self,
        refresh: RefreshIncident,
        *,
        busy: Callable[[], bool],
        max_lag: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh = refresh
        self._busy = busy
        self._max_lag = max_lag
        self._monotonic = monotonic
        self._asked: OrderedDict[int, _Asked] = OrderedDict()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        self._closing = False
        self._redrawing = 0

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        with self._changed:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._work, name="warroom-drafts", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Redraw what was asked (sends have stopped, so without waiting for them), for at
        most `timeout` seconds, then stop; anything left is redrawn by the next sweep."""
        with self._changed:
            if not self._running:
                return
            self._closing = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._changed:
            self._running = self._closing = False
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is asked or being redrawn; False if that took too long."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._asked and not self._redrawing, timeout=timeout
            )

    def request(
        self, incident_id: int, notification_id: int, preview: dict[str, Any] | None = None
    ) -> bool:
        """Ask for the incident's card and this message's draft to be redrawn; False when
        no thread is running to do it (the caller redraws them itself)."""
        with self._changed:
            if not self._running or self._closing:
                return False
            asked = self._asked.get(incident_id)
            if asked is None:
                asked = self._asked[incident_id] = _Asked(since=self._monotonic())
            if preview is not None or notification_id not in asked.previews:
                asked.previews[notification_id] = preview
            self._changed.notify()
        return True

    def _work(self) -> None:
        while True:
            with self._changed:
                while self._running and not self._closing and not self._asked:
                    self._changed.wait()
                if not self._running or (self._closing and not self._asked):
                    return
                incident_id, oldest = next(iter(self._asked.items()))
                waiting = self._monotonic() - oldest.since < self._max_lag
                if not self._closing and waiting and self._busy():
                    # Sends first; asks keep gathering per incident meanwhile.
                    self._changed.wait(0.05)
                    continue
                del self._asked[incident_id]
                self._redrawing += 1
            try:
                self._run(incident_id, oldest.previews)
            finally:
                with self._changed:
                    self._redrawing -= 1
                    self._changed.notify_all()

    def _run(self, incident_id: int, previews: Previews) -> None:
        try:
            self._refresh(incident_id, previews)
        except Exception:
            # The drafts keep their old state; the sweep redraws them.
            log.exception("redrawing the drafts of incident id %d failed", incident_id)
