"""The redraws after timed sends: one per incident for every ask since, sends first up to
the lag limit, and what is asked before a close still drawn."""

from __future__ import annotations

import threading
from typing import Any

from bot.draft_refresher import DraftRefresher, Previews


class Redraws:
    def __init__(self) -> None:
        self.done: list[tuple[int, Previews]] = []
        self.lock = threading.Lock()

    def __call__(self, incident_id: int, previews: Previews) -> None:
        with self.lock:
            self.done.append((incident_id, dict(previews)))


class Busy:
    """Sends waiting, as the sending queue reports it; says when it was asked."""

    def __init__(self, busy: bool) -> None:
        self.busy = busy
        self.asked = threading.Event()

    def __call__(self) -> bool:
        self.asked.set()
        return self.busy


def test_without_a_running_thread_the_caller_redraws_itself() -> None:
    refresher = DraftRefresher(Redraws(), busy=lambda: False)
    assert refresher.request(1, 10) is False


def test_asks_for_one_incident_are_drawn_once_and_keep_the_sent_message() -> None:
    redraws = Redraws()
    busy = Busy(True)
    clock = [0.0]
    refresher = DraftRefresher(redraws, busy=busy, max_lag=60, monotonic=lambda: clock[0])
    refresher.start()
    try:
        sent: dict[str, Any] = {"text": "as sent"}
        assert refresher.request(7, 70, sent)
        assert refresher.request(7, 71)
        assert refresher.request(7, 70)  # a later ask without the message keeps it
        assert refresher.request(8, 80)
        assert busy.asked.wait(10)  # it looked, saw sends waiting, and held back
        assert redraws.done == []
        busy.busy = False
        assert refresher.wait_idle(timeout=10)
    finally:
        refresher.close()
    assert redraws.done == [(7, {70: sent, 71: None}), (8, {80: None})]


def test_sends_go_first_only_up_to_the_lag_limit() -> None:
    redraws = Redraws()
    busy = Busy(True)
    clock = [100.0]
    refresher = DraftRefresher(redraws, busy=busy, max_lag=30, monotonic=lambda: clock[0])
    refresher.start()
    try:
        refresher.request(1, 10)
        assert busy.asked.wait(10)
        assert redraws.done == []
        clock[0] = 130.0  # the ask is 30 s old: drawn although sends are still waiting
        assert refresher.wait_idle(timeout=10)
    finally:
        refresher.close()
    assert redraws.done == [(1, {10: None})]


def test_close_draws_what_was_asked_without_waiting_for_sends() -> None:
    redraws = Redraws()
    busy = Busy(True)
    refresher = DraftRefresher(redraws, busy=busy, max_lag=3600)
    refresher.start()
    refresher.request(1, 10)
    refresher.request(2, 20)
    assert busy.asked.wait(10)
    refresher.close(timeout=10)
    assert [incident for incident, _ in redraws.done] == [1, 2]
    assert refresher.request(3, 30) is False


def test_a_failed_redraw_is_logged_and_the_thread_goes_on() -> None:
    drawn: list[int] = []

    def redraw(incident_id: int, previews: Previews) -> None:
        if incident_id == 1:
            raise RuntimeError("Slack is down")
        drawn.append(incident_id)

    refresher = DraftRefresher(redraw, busy=lambda: False)
    refresher.start()
    try:
        refresher.request(1, 10)
        assert refresher.wait_idle(timeout=10)
        refresher.request(2, 20)
        assert refresher.wait_idle(timeout=10)
    finally:
        refresher.close()
    assert drawn == [2]
