"""Hands due messages from their timers to a few sending threads, in batches.

When a thousand incidents' messages come due in the same minute, sending each from its own
timer thread costs a claim transaction, a facts read and a settle transaction per message.
Here the timers only enqueue the row's id; each sending thread takes what has queued up (up
to `batch`) and sends it with one claim and one settle transaction for the lot. The queue is
only a faster way to reach the rows: a crash loses what was queued, and the rows, still
pending, are sent by the deadline sweep or the restarted timers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

_STOP = -1


class DeliveryQueue:
    def __init__(
        self,
        send_batch: Callable[[Sequence[int]], object],
        *,
        workers: int = 4,
        batch: int = 32,
        settle_time: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send_batch = send_batch
        self._workers = workers
        self._batch = batch
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._queued: set[int] = set()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._running = False
        # Due messages arrive in trickles during a storm: between two, the queue is briefly
        # empty but not idle.
        self._settle_time = settle_time
        self._monotonic = monotonic
        self._last_send = -settle_time

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            self._threads = [
                threading.Thread(target=self._work, name=f"warroom-send-{n}", daemon=True)
                for n in range(self._workers)
            ]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking work; each thread finishes the batch it holds. What is still queued
        stays pending in the database."""
        with self._lock:
            if not self._running:
                return
            self._running = False
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def submit(self, notification_id: int) -> bool:
        """Queue a due message for sending; False when no thread is running to send it."""
        with self._lock:
            if not self._running:
                return False
            if notification_id in self._queued:
                return True
            self._queued.add(notification_id)
        self._queue.put(notification_id)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being sent; False if that took too long."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not self._queued and not self._in_flight, timeout=timeout
            )

    def busy(self) -> bool:
        """Whether messages are queued, being sent, or were sent a moment ago."""
        with self._lock:
            recent = self._monotonic() - self._last_send < self._settle_time
            return bool(self._queued) or self._in_flight > 0 or recent

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first == _STOP:
                return
            ids = [first]
            stop = False
            while len(ids) < self._batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more == _STOP:
                    stop = True
                    break
                ids.append(more)
            with self._lock:
                self._queued.difference_update(ids)
                self._in_flight += 1
            try:
                self._send_batch(ids)
            except Exception:
                # The rows stay pending or claimed; the sweep sends them.
                log.exception("sending a batch of %d due messages failed", len(ids))
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._last_send = self._monotonic()
                    self._lock.notify_all()
            if stop:
                return
