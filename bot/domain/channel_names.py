"""War-room channel names: `<prefix>-<number>-<slug>`, within Slack's naming rules."""

from __future__ import annotations

import re

from slugify import slugify

MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250
_NOT_ALLOWED = r"[^a-z0-9_-]+"
_VALID = re.compile(r"^[a-z0-9_-]{1,80}$")


def slug_title(title: str, *, max_length: int) -> str:
    """A lowercase ASCII slug of the title; non-Latin scripts are transliterated."""
    return slugify(
        title,
        max_length=max(max_length, 0),
        word_boundary=True,
        separator="-",
        regex_pattern=_NOT_ALLOWED,
    )


def war_room_channel_name(*, prefix: str, number: int, title: str, attempt: int = 0) -> str:
    """The channel name for an incident; `attempt` > 0 adds a suffix after `name_taken`."""
    head = f"{prefix}-{number}"
    suffix = f"-{attempt + 1}" if attempt else ""
    room_for_slug = MAX_CHANNEL_NAME - len(head) - len(suffix) - 1
    slug = slug_title(title, max_length=room_for_slug)
    name = f"{head}-{slug}{suffix}" if slug else f"{head}{suffix}"
    return name[:MAX_CHANNEL_NAME]


def is_valid_channel_name(name: str) -> bool:
    """True when Slack would accept the name."""
    return bool(_VALID.match(name))


def is_valid_prefix(prefix: str) -> bool:
    """A prefix leaves room for the number and a slug."""
    return bool(_VALID.match(prefix)) and len(prefix) <= 20


def clip(text: str, limit: int) -> str:
    """Text cut to `limit` characters with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
