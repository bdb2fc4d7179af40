from __future__ import annotations

import pytest

from bot.domain.channel_names import (
    MAX_CHANNEL_NAME,
    clip,
    is_valid_channel_name,
    war_room_channel_name,
)

pytestmark = pytest.mark.unit


def test_name_is_prefix_number_and_slug() -> None:
    name = war_room_channel_name(prefix="inc", number=7, title="Support Bot: leaks PII!")
    assert name == "inc-7-support-bot-leaks-pii"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Утечка данных клиентов", "inc-3-utechka-dannykh-klientov"),
        ("Café déjà vu", "inc-3-cafe-deja-vu"),
        ("模型泄露", "inc-3-mo-xing-xie-lu"),
        ("🔥🔥🔥", "inc-3"),
        ("   ", "inc-3"),
        ("snake_case_title", "inc-3-snake_case_title"),
    ],
)
def test_non_ascii_titles_are_slugged_sensibly(title: str, expected: str) -> None:
    assert war_room_channel_name(prefix="inc", number=3, title=title) == expected


def test_long_titles_fit_in_80_characters_at_a_word_boundary() -> None:
    title = "prompt injection through uploaded documents " * 6
    name = war_room_channel_name(prefix="incident", number=123456, title=title)
    assert len(name) <= MAX_CHANNEL_NAME
    assert is_valid_channel_name(name)
    assert not name.endswith("-")


def test_retry_after_name_taken_adds_a_suffix_and_stays_in_limits() -> None:
    title = "x" * 200
    first = war_room_channel_name(prefix="inc", number=9, title=title)
    second = war_room_channel_name(prefix="inc", number=9, title=title, attempt=1)
    assert first != second
    assert second.endswith("-2")
    assert len(second) <= MAX_CHANNEL_NAME
    assert is_valid_channel_name(second)


def test_every_generated_name_is_valid_for_slack() -> None:
    titles = ["A/B test", "x" * 500, "ÆØÅ æøå", "tab\tand\nnewline", "UPPER lower", "a--b__c"]
    for attempt in range(3):
        for title in titles:
            assert is_valid_channel_name(
                war_room_channel_name(prefix="ai-inc", number=42, title=title, attempt=attempt)
            )


def test_clip_marks_what_it_cut() -> None:
    assert clip("short", 10) == "short"
    clipped = clip("a" * 300, 250)
    assert len(clipped) == 250
    assert clipped.endswith("…")
