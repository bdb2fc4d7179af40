"""Group commit: callers arriving during a write share the next batch; each gets its own
answer or its own error."""

from __future__ import annotations

import threading

import pytest

from bot.group_commit import GroupCommit


class Recorder:
    """A writer that records its batches and can be held inside a write."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def write(self, jobs: list[int]) -> list[int | BaseException]:
        self.batches.append(list(jobs))
        self.entered.set()
        assert self.release.wait(10)
        return [ValueError(f"job {job}") if job < 0 else job * 10 for job in jobs]


def test_a_lone_caller_writes_its_own_batch() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write, max_batch=8)

    assert commit.run(3) == 30
    assert recorder.batches == [[3]]
    assert commit.batches == 1


def while_one_is_written(
    commit: GroupCommit[int, int], recorder: Recorder, later: list[int]
) -> dict[int, object]:
    """Hold job 1 inside the writer, queue `later` behind it, then let everything finish;
    what each later caller got (its result, or its error's text)."""
    recorder.release.clear()
    first = threading.Thread(target=commit.run, args=(1,))
    first.start()
    assert recorder.entered.wait(5)
    answers: dict[int, object] = {}

    def call(job: int) -> None:
        try:
            answers[job] = commit.run(job)
        except ValueError as error:
            answers[job] = str(error)

    callers = [threading.Thread(target=call, args=(job,)) for job in later]
    for thread in callers:
        thread.start()
    while len(commit._queue) < len(later):  # all of them queued behind the write in hand
        threading.Event().wait(0.001)
    recorder.release.set()
    for thread in [first, *callers]:
        thread.join(5)
    return answers


def test_callers_arriving_during_a_write_share_the_next_batch() -> None:
    recorder = Recorder()
    answers = while_one_is_written(GroupCommit(recorder.write, max_batch=8), recorder, [2, 3, 4])

    assert recorder.batches == [[1], [2, 3, 4]]
    assert answers == {2: 20, 3: 30, 4: 40}


def test_a_batch_holds_at_most_max_batch_jobs() -> None:
    recorder = Recorder()
    while_one_is_written(GroupCommit(recorder.write, max_batch=2), recorder, [2, 3, 4, 5, 6])

    assert recorder.batches[0] == [1]
    assert all(len(batch) <= 2 for batch in recorder.batches)
    assert sorted(job for batch in recorder.batches for job in batch) == [1, 2, 3, 4, 5, 6]


def test_each_caller_gets_its_own_error() -> None:
    recorder = Recorder()
    answers = while_one_is_written(GroupCommit(recorder.write, max_batch=8), recorder, [2, -3, 4])

    assert answers == {2: 20, -3: "job -3", 4: 40}


def test_a_writer_that_raises_fails_the_whole_batch_and_the_next_caller_still_writes() -> None:
    calls: list[list[int]] = []

    def write(jobs: list[int]) -> list[int | BaseException]:
        calls.append(jobs)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return list(jobs)

    commit = GroupCommit(write, max_batch=8)
    with pytest.raises(RuntimeError, match="disk full"):
        commit.run(1)
    assert commit.run(2) == 2


def test_a_writer_giving_the_wrong_number_of_outcomes_is_an_error() -> None:
    commit: GroupCommit[int, int] = GroupCommit(lambda jobs: [], max_batch=8)
    with pytest.raises(RuntimeError, match="0 outcomes for 1 jobs"):
        commit.run(1)


def test_load_is_the_share_of_the_window_spent_writing_the_batch_in_hand_included() -> None:
    now = [100.0]
    recorder = Recorder()
    commit = GroupCommit(recorder.write, max_batch=8, monotonic=lambda: now[0])
    assert commit.load(1.0) == 0.0
    recorder.release.clear()
    writer = threading.Thread(target=commit.run, args=(1,))
    writer.start()
    assert recorder.entered.wait(5)  # writing since 100.0
    now[0] = 100.25
    assert commit.load(1.0) == pytest.approx(0.25)
    assert commit.load(0.1) == pytest.approx(1.0)
    recorder.release.set()
    writer.join(5)  # written from 100.0 to 100.25
    now[0] = 100.5
    assert commit.load(1.0) == pytest.approx(0.25)
    assert commit.load(0.5) == pytest.approx(0.5)
    assert commit.load(0.2) == 0.0
    now[0] = 200.0
    assert commit.load(1.0) == 0.0


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GroupCommit(lambda jobs: list(jobs), max_batch=0)
