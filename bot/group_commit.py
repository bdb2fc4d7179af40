"""Group commit: callers that arrive while a batch is being written share the next one.

Under an alert storm every delivery used to pay for its own transaction: a dozen statements
and an fsync, one writer at a time. Here the first caller to find nobody writing becomes the
writer for everything queued so far (itself included); the others wait for their result. A
caller still gets its answer only after the batch holding its job has committed, so an
acknowledged job is as durable as before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

# How long written batches are remembered for `load`: longer than any window asked of it.
_KEPT_FOR = 10.0

Job = TypeVar("Job")
Result = TypeVar("Result")


class _Pending(Generic[Job, Result]):
    __slots__ = ("job", "done", "outcome")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.done = False
        self.outcome: Result | BaseException | None = None


class GroupCommit(Generic[Job, Result]):
    """Runs `write` over batches of at most `max_batch` jobs, one batch at a time."""

    def __init__(
        self,
        # Gives, for each job of a batch and in order, its result or what it raised.
        write: Callable[[list[Job]], list[Result | BaseException]],
        *,
        max_batch: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: deque[_Pending[Job, Result]] = deque()
        self._writing = False
        self._monotonic = monotonic
        self._writing_since = 0.0
        # (start, end) of the batches written lately, oldest first; for `load`.
        self._recent: deque[tuple[float, float]] = deque()
        self.batches = 0  # written so far; the benchmark reports jobs per batch

    def load(self, window: float) -> float:
        """The share of the last `window` seconds spent writing (0 to 1), the batch in hand
        included: near 1 while callers queue for the writer."""
        with self._changed:
            now = self._monotonic()
            since = now - window
            busy = sum(end - max(start, since) for start, end in self._recent if end > since)
            if self._writing:
                busy += now - max(self._writing_since, since)
            return min(1.0, busy / window) if window > 0 else 0.0

    def run(self, job: Job) -> Result:
        """The job's result once its batch has been written; raises what the writer gave it."""
        pending: _Pending[Job, Result] = _Pending(job)
        with self._changed:
            self._queue.append(pending)
        while True:
            with self._changed:
                while not pending.done and self._writing:
                    self._changed.wait()
                if pending.done:
                    return self._settled(pending)
                self._writing = True
                self._writing_since = self._monotonic()
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))
                ]
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Pending[Job, Result]]) -> None:
        outcomes: list[Result | BaseException]
        try:
            outcomes = self._write([pending.job for pending in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(
                    f"the writer gave {len(outcomes)} outcomes for {len(batch)} jobs"
                )
        except BaseException as error:
            outcomes = [error] * len(batch)
        with self._changed:
            for pending, outcome in zip(batch, outcomes, strict=True):
                pending.outcome, pending.done = outcome, True
            self._writing = False
            ended = self._monotonic()
            self._recent.append((self._writing_since, ended))
            while self._recent and self._recent[0][1] < ended - _KEPT_FOR:
                self._recent.popleft()
            self.batches += 1
            self._changed.notify_all()

    @staticmethod
    def _settled(pending: _Pending[Job, Result]) -> Result:
        outcome = pending.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]
