"""This process's heartbeat in the database, and the takeover of what dead processes held.

A send claim is taken over when it grows stale (minutes: an honest send can be that slow)
or, sooner, when the process holding it has stopped beating. Every running warroom beats
every BEAT_INTERVAL; one silent for DEAD_AFTER is dead, and the next beat of any live one
hands the messages it was sending to this process's sending threads."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from bot.clock import Clock
from storage.worker_repositories import ClaimHolder

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

BEAT_INTERVAL = timedelta(seconds=2)
# Five missed beats: long enough for a stalled database or a busy interpreter, short next
# to the deadlines it protects.
DEAD_AFTER = timedelta(seconds=10)
# A worker silent this long held nothing that is not stale by now: its row goes.
FORGET_AFTER = timedelta(days=1)


def new_worker_id() -> str:
    """Unique per process start, readable in the database: host, pid, a random part."""
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class WorkerHeartbeat:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        on_orphans: Callable[[list[int]], None] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._on_orphans = on_orphans
        self.worker_id = worker_id or new_worker_id()
        self._host = socket.gethostname()[:200]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beating = False

    def holder(self) -> ClaimHolder | None:
        """Who claims, for repositories: None until this process beats, so that nobody
        could take a claim it makes for a worker that never said it was alive."""
        if not self._beating:
            return None
        return ClaimHolder(self.worker_id, dead_before=self._clock.now() - DEAD_AFTER)

    def others_alive(self) -> bool:
        """Whether another warroom process is beating on this database right now."""
        dead_before = self._clock.now() - DEAD_AFTER
        with self._uow(read_only=True) as uow:
            return bool(uow.workers.alive(dead_before=dead_before, besides=self.worker_id))

    def start(self) -> None:
        """Register (the first beat, before any claim names this worker) and keep beating."""
        if self._thread is not None:
            return
        self.beat()
        self._beating = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="warroom-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop beating and say so: what this process still holds (a send that outlasted
        the stop) is another's at its next beat."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=BEAT_INTERVAL.total_seconds() * 2)
        self._beating = False
        try:
            with self._uow() as uow:
                # A beat older than any live worker's, dead to every clock that agrees
                # with ours within DEAD_AFTER.
                uow.workers.sign_off(self.worker_id, dead_since=self._clock.now() - DEAD_AFTER * 2)
                uow.commit()
        except SQLAlchemyError as error:
            log.warning("could not sign worker %s off: %s", self.worker_id, error)

    def beat(self) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            uow.workers.beat(self.worker_id, host=self._host, now=now)
            uow.workers.prune(silent_since=now - FORGET_AFTER)
            uow.commit()

    def take_over(self) -> list[int]:
        """Hand the messages dead workers were sending to `on_orphans`; their ids."""
        holder = self.holder()
        if holder is None or self._on_orphans is None:
            return []
        with self._uow(read_only=True) as uow:
            orphans = uow.notifications.orphaned_ids(holder)
        if orphans:
            log.warning(
                "taking over %d messages from workers silent for %s",
                len(orphans),
                DEAD_AFTER,
            )
            self._on_orphans(orphans)
        return orphans

    def _run(self) -> None:
        while not self._stop.wait(BEAT_INTERVAL.total_seconds()):
            try:
                self.beat()
            except SQLAlchemyError as error:
                # A missed beat is not fatal; five in a row make this worker look dead,
                # and then a survivor sends what it held (its delivery markers stop a
                # second post of what this one had already posted).
                log.warning("heartbeat of worker %s failed: %s", self.worker_id, error)
                continue
            try:
                self.take_over()
            except Exception:
                # Whatever sending the orphans raised, this thread must go on beating: a
                # live worker that stops beating has its own claims taken from it.
                log.exception("taking over a dead worker's messages failed")
