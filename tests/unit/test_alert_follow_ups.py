"""The alert follow-up thread: behind ingest, never longer than MAX_DEFER, merged, resilient."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.alert_follow_ups import AlertFollowUps, merged
from bot.errors import ExternalServiceError
from bot.services.alerts import Ingested


class Ingest:
    """Stands in for the alert writer: busy or quiet since a moment, on a clock we move."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.busy = True
        self.quiet_since = self.now

    def monotonic(self) -> float:
        return self.now

    def quiet_for(self) -> float:
        return 0.0 if self.busy else self.now - self.quiet_since

    def go_quiet(self, seconds: float) -> None:
        self.busy = False
        self.quiet_since = self.now
        self.now += seconds


class Recorded:
    def __init__(self) -> None:
        self.calls: list[Ingested] = []
        self.fail_next: Exception | None = None
        self.ran = threading.Event()

    def __call__(self, outcome: Ingested) -> None:
        self.calls.append(outcome)
        self.ran.set()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error


@pytest.fixture
def ingest() -> Ingest:
    return Ingest()


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def follow_ups(ingest: Ingest, recorded: Recorded) -> Iterator[AlertFollowUps]:
    queue = AlertFollowUps(
        recorded, ingest_quiet_for=ingest.quiet_for, max_defer=5.0, monotonic=ingest.monotonic
    )
    yield queue
    queue.close()


def test_outcomes_merge_into_one_follow_up() -> None:
    together = merged(
        [
            Ingested(received=20, new=20, declared=[1], groups=[10]),
            Ingested(received=20, new=5, groups=[10, 11], reopen_prompts=[(7, "drift")]),
            Ingested(received=3, new=0, declared=[2], groups=[12]),
        ]
    )
    assert (together.received, together.new) == (43, 25)
    assert together.declared == [1, 2]
    assert together.groups == [10, 11, 12]
    assert together.reopen_prompts == [(7, "drift")]


def test_the_follow_up_waits_while_ingest_is_busy_and_runs_once_it_is_quiet(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    follow_ups.submit(Ingested(declared=[1], groups=[10]))
    follow_ups.submit(Ingested(groups=[10, 11]))
    assert not follow_ups.wait_idle(0.1)  # held back: deliveries are being recorded
    assert recorded.calls == []

    ingest.go_quiet(0.2)

    assert follow_ups.wait_idle(5)
    assert len(recorded.calls) == 1  # both deliveries, followed up together
    assert recorded.calls[0].declared == [1]
    assert recorded.calls[0].groups == [10, 11]


def test_a_sustained_storm_still_gets_its_follow_ups_after_max_defer(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    follow_ups.submit(Ingested(declared=[1]))
    assert not follow_ups.wait_idle(0.1)

    ingest.now += 4.9
    assert not follow_ups.wait_idle(0.1)
    ingest.now += 0.2  # 5.1 s after the delivery, ingest still busy

    assert follow_ups.wait_idle(5)
    assert [call.declared for call in recorded.calls] == [[1]]


def test_a_failed_follow_up_does_not_stop_the_next(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    ingest.go_quiet(1.0)
    recorded.fail_next = ExternalServiceError("Slack is down")
    follow_ups.submit(Ingested(declared=[1]))
    assert follow_ups.wait_idle(5)
    recorded.fail_next = RuntimeError("a bug")
    follow_ups.submit(Ingested(declared=[2]))
    assert follow_ups.wait_idle(5)
    follow_ups.submit(Ingested(declared=[3]))
    assert follow_ups.wait_idle(5)

    assert [call.declared for call in recorded.calls] == [[1], [2], [3]]


def test_after_close_nothing_more_runs(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    follow_ups.submit(Ingested(declared=[1]))  # held back: ingest is busy
    follow_ups.close()
    ingest.go_quiet(10.0)
    follow_ups.submit(Ingested(declared=[2]))

    assert follow_ups.wait_idle(1)
    assert not recorded.ran.wait(0.1)
    assert recorded.calls == []  # the sweeps open those war rooms
