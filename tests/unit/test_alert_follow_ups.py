"""The alert follow-up thread: behind ingest, never longer than MAX_DEFER, merged, resilient."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.alert_follow_ups import AlertFollowUps, merged, one_war_room_at_a_time
from bot.errors import ExternalServiceError
from bot.services.alerts import Ingested, ReopenPrompt

PROMPT = ReopenPrompt(incident_id=7, alert_title="drift", declared=())


class Ingest:
    """Stands in for the alert writer: its load, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.busy = True

    def monotonic(self) -> float:
        return self.now

    def load(self, window: float) -> float:
        return 0.95 if self.busy else 0.1


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
        recorded, ingest_load=ingest.load, max_defer=5.0, monotonic=ingest.monotonic
    )
    yield queue
    queue.close()


def test_outcomes_merge_into_one_follow_up() -> None:
    together = merged(
        [
            Ingested(received=20, new=20, declared=[1], groups=[10]),
            Ingested(received=20, new=5, groups=[10, 11], reopen_prompts=[PROMPT]),
            Ingested(received=3, new=0, declared=[2], groups=[12]),
        ]
    )
    assert (together.received, together.new) == (43, 25)
    assert together.declared == [1, 2]
    assert together.groups == [10, 11, 12]
    assert together.reopen_prompts == [PROMPT]


def test_the_follow_up_waits_while_ingest_is_saturated_and_runs_once_it_is_not(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    follow_ups.submit(Ingested(declared=[1], groups=[10]))
    follow_ups.submit(Ingested(groups=[10, 11]))
    ingest.now += 1.0
    assert not follow_ups.wait_idle(0.1)  # held back: the writer is busy 95 % of the time
    assert recorded.calls == []

    ingest.busy = False

    assert follow_ups.wait_idle(5)
    assert len(recorded.calls) == 1  # both deliveries, followed up together
    assert recorded.calls[0].declared == [1]
    assert recorded.calls[0].groups == [10, 11]


def test_a_lone_delivery_waits_one_load_window_to_tell_it_from_a_storms_first(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    ingest.busy = False
    follow_ups.submit(Ingested(declared=[1]))
    assert not follow_ups.wait_idle(0.1)
    ingest.now += 0.25
    assert follow_ups.wait_idle(5)
    assert [call.declared for call in recorded.calls] == [[1]]


def test_war_rooms_open_one_at_a_time_and_wait_again_if_a_storm_starts(
    ingest: Ingest, recorded: Recorded
) -> None:
    ingest.busy = False
    ingest.now += 1.0
    opened_first = threading.Event()

    def first_opens(outcome: Ingested) -> None:
        recorded(outcome)
        ingest.busy = True  # a storm begins while the first war room opens
        opened_first.set()

    follow_ups = AlertFollowUps(first_opens, ingest_load=ingest.load, monotonic=ingest.monotonic)
    follow_ups.submit(
        Ingested(declared=[1, 2, 3], groups=[10], escalations=[], reopen_prompts=[PROMPT])
    )
    ingest.now += 0.3
    assert opened_first.wait(5)
    assert not follow_ups.wait_idle(0.1)
    assert [call.declared for call in recorded.calls] == [[1]]

    ingest.now += 5.0  # overdue: the rest go even though the storm goes on
    assert follow_ups.wait_idle(5)
    assert [call.declared for call in recorded.calls] == [[1], [2], [3]]
    assert recorded.calls[-1].groups == [10] and recorded.calls[-1].reopen_prompts == [PROMPT]
    follow_ups.close()


def test_a_follow_up_with_one_new_war_room_is_not_split() -> None:
    one = Ingested(declared=[4], groups=[1, 2])
    assert one_war_room_at_a_time(one) == [one]
    assert one_war_room_at_a_time(Ingested(groups=[1])) == [Ingested(groups=[1])]


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
    ingest.busy = False
    failures = [ExternalServiceError("Slack is down"), RuntimeError("a bug"), None]
    for incident_id, failure in enumerate(failures, start=1):
        recorded.fail_next = failure
        follow_ups.submit(Ingested(declared=[incident_id]))
        ingest.now += 1.0
        assert follow_ups.wait_idle(5)

    assert [call.declared for call in recorded.calls] == [[1], [2], [3]]


def test_after_close_nothing_more_runs(
    ingest: Ingest, recorded: Recorded, follow_ups: AlertFollowUps
) -> None:
    follow_ups.submit(Ingested(declared=[1]))  # held back: ingest is busy
    follow_ups.close()
    ingest.busy = False
    ingest.now += 10.0
    follow_ups.submit(Ingested(declared=[2]))

    assert follow_ups.wait_idle(1)
    assert not recorded.ran.wait(0.1)
    assert recorded.calls == []  # the sweeps open those war rooms
