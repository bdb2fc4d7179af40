"""The sending threads' queue: batches of what has queued up, each id once, nothing taken
before start or after close."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bot.delivery_queue import DeliveryQueue


class Sender:
    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self._hold = hold
        self._lock = threading.Lock()

    def __call__(self, ids: Sequence[int]) -> None:
        self.started.set()
        if self._hold is not None:
            assert self._hold.wait(10)
        with self._lock:
            self.batches.append(list(ids))


def test_nothing_is_taken_before_start_so_the_timer_sends_itself() -> None:
    queue = DeliveryQueue(Sender())
    assert queue.submit(1) is False
    assert not queue.busy()


def test_what_queues_up_while_a_batch_is_sent_goes_out_as_one_batch_each_id_once() -> None:
    hold = threading.Event()
    sender = Sender(hold)
    queue = DeliveryQueue(sender, workers=1, batch=50, settle_time=0)
    queue.start()
    try:
        assert queue.submit(1)
        assert sender.started.wait(10)  # the only thread is busy with [1]
        for notification_id in (2, 3, 3, 4, 2):
            assert queue.submit(notification_id)
        assert queue.busy()
        hold.set()
        assert queue.wait_idle(timeout=10)
    finally:
        queue.close()
    assert sender.batches == [[1], [2, 3, 4]]
    assert not queue.busy()


def test_batches_are_capped() -> None:
    hold = threading.Event()
    sender = Sender(hold)
    queue = DeliveryQueue(sender, workers=1, batch=3)
    queue.start()
    try:
        queue.submit(0)
        assert sender.started.wait(10)
        for notification_id in range(1, 8):
            queue.submit(notification_id)
        hold.set()
        assert queue.wait_idle(timeout=10)
    finally:
        queue.close()
    assert sender.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_a_failing_batch_is_logged_and_the_threads_go_on() -> None:
    sent: list[list[int]] = []

    def send(ids: Sequence[int]) -> None:
        if 13 in ids:
            raise RuntimeError("database went away")
        sent.append(list(ids))

    queue = DeliveryQueue(send, workers=1)
    queue.start()
    try:
        queue.submit(13)
        assert queue.wait_idle(timeout=10)
        queue.submit(14)
        assert queue.wait_idle(timeout=10)
    finally:
        queue.close()
    assert sent == [[14]]


def test_after_close_nothing_is_taken() -> None:
    queue = DeliveryQueue(Sender(), workers=2)
    queue.start()
    queue.close()
    assert queue.submit(1) is False


def test_it_stays_busy_a_moment_after_a_send_so_redraws_wait_out_a_trickle() -> None:
    clock = [10.0]
    queue = DeliveryQueue(Sender(), workers=1, settle_time=0.5, monotonic=lambda: clock[0])
    assert not queue.busy()
    queue.start()
    try:
        queue.submit(1)
        assert queue.wait_idle(timeout=10)
        assert queue.busy()  # sent at 10.0
        clock[0] = 10.4
        assert queue.busy()
        clock[0] = 10.5
        assert not queue.busy()
    finally:
        queue.close()
