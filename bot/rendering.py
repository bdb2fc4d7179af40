"""One sandboxed Jinja2 environment that turns templates/*.j2 into Block Kit JSON."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.domain.channel_names import clip
from bot.ids import ActionId, BlockId, CallbackId


def escape_mrkdwn(text: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    # Three replaces (& first) cost a tenth of str.translate, which maps every character
    # through a dict; every line of every rendered message goes through here.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# `<@U123>` or, as slash-command text carries it, `<@U123|name>`: both notify the same person.
_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]+)(?:\|[^&<>]*)?&gt;")


def escape_mrkdwn_keep_mentions(text: Any) -> str:
    """Escape like `escape_mrkdwn`, but let user mentions through (they notify nobody new)."""
    return _ESCAPED_MENTION.sub(r"<@\1>", escape_mrkdwn(text))


def slack_date(moment: datetime, style: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def chunks(text: Any, size: int) -> list[str]:
    """Text cut into pieces of at most `size` characters, at line ends where possible, for
    messages longer than one section may hold."""
    remaining = str(text)
    pieces: list[str] = []
    while len(remaining) > size:
        cut = remaining.rfind("\n", 0, size)
        cut = cut if cut > size // 2 else size
        pieces.append(remaining[:cut])
        remaining = remaining[cut:].lstrip("\n")
    if remaining or not pieces:
        pieces.append(remaining)
    return pieces


# Renderings `render_same` keeps (by template and key).
_SAME_KEPT = 16


def _parsed(template: str, text: str) -> dict[str, Any]:
    try:
        rendered: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"template {template} produced invalid JSON: {error}") from error
    return rendered


class Renderer:
    """Renders a named template with plain data into a dict of Block Kit JSON."""

    def __init__(self, *, extra_dir: Path | None = None) -> None:
        loaders: list[Any] = [PackageLoader("templates", "")]
        if extra_dir is not None:
            loaders.insert(0, FileSystemLoader(str(extra_dir)))
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters["mrkdwn"] = escape_mrkdwn
        self._env.filters["mrkdwn_mentions"] = escape_mrkdwn_keep_mentions
        self._env.filters["clip"] = clip
        self._env.filters["slack_date"] = slack_date
        self._env.filters["chunks"] = chunks
        self._env.globals["action"] = {member.name: member.value for member in ActionId}
        self._env.globals["action_ids"] = self._env.globals["action"]
        self._env.filters["format_mention"] = lambda user_id: f"<@{user_id}>"
        self._env.globals["block"] = {member.name: member.value for member in BlockId}
        self._env.globals["callback"] = {member.name: member.value for member in CallbackId}
        self._same: OrderedDict[tuple[str, Hashable], str] = OrderedDict()
        self._same_lock = threading.Lock()

    def render(self, template: str, **context: Any) -> dict[str, Any]:
        """The template's JSON output as a dict; the template name is without `.json.j2`."""
        return _parsed(template, self._env.get_template(f"{template}.json.j2").render(**context))

    def render_same(
        self, template: str, key: Hashable, context: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """`render` for a caller whose context is a pure function of `key`: the text is
        rendered once per key (a few kept) and parsed afresh for each caller, who may change
        the dict it gets."""
        with self._same_lock:
            text = self._same.get((template, key))
            if text is not None:
                self._same.move_to_end((template, key))
        if text is None:
            text = self._env.get_template(f"{template}.json.j2").render(**context())
            with self._same_lock:
                self._same[(template, key)] = text
                while len(self._same) > _SAME_KEPT:
                    self._same.popitem(last=False)
        return _parsed(template, text)

    def template_names(self) -> list[str]:
        """Every Block Kit template the environment knows."""
        return sorted(
            name.removesuffix(".json.j2")
            for name in self._env.list_templates()
            if name.endswith(".json.j2")
        )

    def render_text(self, template: str, **context: Any) -> str:
        """A text template's output as it stands (Markdown, say); the name is the file's
        without `.j2`, e.g. `postmortem.md`. Overrides in `templates_dir` win, as for JSON."""
        return self._env.get_template(f"{template}.j2").render(**context)
