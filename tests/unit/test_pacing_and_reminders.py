"""The per-channel pace and the reminder schedule: pure timing, no I/O."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.domain.reminders import ReminderKind, cadence_reminder, notification_reminder
from bot.domain.vocabulary import NotificationTier, Severity
from bot.errors import ConfigurationError
from bot.pacing import ChannelPacer

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_posts_to_one_channel_are_spaced_and_other_channels_do_not_wait() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(1.0, monotonic=fake.monotonic, sleep=fake.sleep)
    assert [pacer.wait_turn("C1") for _ in range(3)] == [0.0, 1.0, 1.0]
    assert pacer.wait_turn("C2") == 0.0
    fake.now += 5
    assert pacer.wait_turn("C1") == 0.0


def test_a_zero_pace_never_waits() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(0, monotonic=fake.monotonic, sleep=fake.sleep)
    assert {pacer.wait_turn("C1") for _ in range(5)} == {0.0}
    assert fake.slept == []


def test_the_notification_reminder_falls_at_the_configured_fraction() -> None:
    reminder = notification_reminder(
        tier=NotificationTier.IMMEDIATE,
        planned_at=T0,
        due_at=T0 + timedelta(minutes=15),
        fraction=0.5,
    )
    assert reminder.kind is ReminderKind.NOTIFICATION
    assert reminder.due_at == T0 + timedelta(minutes=7, seconds=30)
    assert reminder.key == "notify:immediate:20261126T091500.000000"
    # two batches planned within one second each keep their own reminder
    later = notification_reminder(
        tier=NotificationTier.IMMEDIATE,
        planned_at=T0 + timedelta(milliseconds=300),
        due_at=T0 + timedelta(minutes=15, milliseconds=300),
        fraction=0.5,
    )
    assert later.key != reminder.key


def test_cadence_intervals_come_from_the_configuration_by_severity() -> None:
    config = parse_config({"cadence": {"critical": "10m"}})
    assert config.cadence.for_severity(Severity.CRITICAL) == timedelta(minutes=10)
    assert config.cadence.for_severity(Severity.HIGH) == timedelta(hours=1)
    assert config.cadence.for_severity(Severity.MEDIUM) == timedelta(hours=4)
    assert config.cadence.for_severity(Severity.LOW) == timedelta(hours=24)
    reminder = cadence_reminder(after=T0, interval=timedelta(minutes=10))
    assert reminder.due_at == T0 + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"notifications": {"reminder_at": 1.5}}, "notifications.reminder_at"),
        ({"notifications": {"channel_pace": -1}}, "notifications.channel_pace"),
        ({"notifications": {"sms": True}}, "unknown key 'notifications.sms'"),
        ({"cadence": {"critical": "soon"}}, "cadence.critical"),
        ({"regulatory": {"reminders": [0.5, 2]}}, "regulatory.reminders"),
        ({"regulatory": {"ai_act": {"death": "0d"}}}, "regulatory.ai_act.death"),
    ],
)
def test_bad_communication_settings_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_config(section)
    assert message in str(raised.value)


def test_a_channels_turn_is_held_while_its_post_is_made() -> None:
    pacer = ChannelPacer(0.01)
    inside: list[str] = []
    overlaps: list[bool] = []
    guard = threading.Lock()

    def post(channel: str) -> None:
        with pacer.turn(channel):
            with guard:
                overlaps.append(channel in inside)
                inside.append(channel)
            time.sleep(0.005)  # the post's round trip to Slack
            with guard:
                inside.remove(channel)

    threads = [threading.Thread(target=post, args=("C1",)) for _ in range(8)]
    threads += [threading.Thread(target=post, args=("C2",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert overlaps == [False] * 10


def test_the_next_turn_comes_an_interval_after_a_slow_post_was_answered() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(1.0, monotonic=fake.monotonic, sleep=fake.sleep)
    with pacer.turn("C1") as waited:
        assert waited == 0.0
        fake.now += 0.4  # Slack took 400 ms to answer
    with pacer.turn("C1") as waited:
        assert waited == pytest.approx(1.0)  # not 0.6: the interval counts from the answer
