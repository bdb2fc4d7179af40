"""Readable Markdown transcripts of an emulated workspace, one file per conversation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.emulator.server import SlackEmulator
from bot.emulator.state import BOT_USER_ID, WorkspaceState

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def write_transcript(state_or_emulator: WorkspaceState | SlackEmulator, folder: Path) -> list[Path]:
    """Write <channel>.md per conversation plus calls.jsonl into folder; return the paths."""
    state = (
        state_or_emulator.state
        if isinstance(state_or_emulator, SlackEmulator)
        else state_or_emulator
    )
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used_names: set[str] = set()
    for channel in state.channels():
        stem = _file_stem(channel, used_names)
        path = folder / f"{stem}.md"
        path.write_text(_render_channel(state, channel), encoding="utf-8")
        written.append(path)
    calls_path = folder / "calls.jsonl"
    with calls_path.open("w", encoding="utf-8") as out:
        for call in state.calls():
            record = {
                "at": call.at,
                "method": call.method,
                "status": call.status,
                "params": call.params,
                "response": call.response,
            }
            out.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    written.append(calls_path)
    return written


def render_blocks(blocks: list[Any] | None) -> list[str]:
    """Block Kit blocks as Markdown lines (header, sections, context, buttons, dividers)."""
    lines: list[str] = []
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        rendered = _render_block(block)
        if rendered:
            lines.extend(rendered)
            lines.append("")
    return lines


def _file_stem(channel: dict[str, Any], used: set[str]) -> str:
    base = f"dm-{channel['dm_user']}" if channel.get("dm_user") else str(channel["name"])
    stem = _UNSAFE_FILE_CHARS.sub("-", base).strip("-") or str(channel["id"])
    # Two channels can only share a stem after sanitising; keep both files.
    if stem in used:
        stem = f"{stem}-{channel['id']}"
    used.add(stem)
    return stem


def _when(ts: str | None) -> str:
    if not ts:
        return "?"
    try:
        moment = datetime.fromtimestamp(float(ts), tz=UTC)
    except (ValueError, OverflowError):
        return ts
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _who(state: WorkspaceState, user_id: str | None) -> str:
    if not user_id:
        return "unknown"
    name = state.user_name(user_id)
    suffix = " (bot)" if user_id == BOT_USER_ID else ""
    return f"@{name}{suffix}" if name != user_id else user_id


def _render_channel(state: WorkspaceState, channel: dict[str, Any]) -> str:
    if channel.get("dm_user"):
        title = f"# DM with {_who(state, channel['dm_user'])}"
    else:
        kind = "private channel" if channel["is_private"] else "channel"
        title = f"# #{channel['name']} ({kind} {channel['id']})"
    lines = [title, ""]
    if channel.get("is_archived"):
        lines += ["_archived_", ""]
    if channel.get("topic"):
        lines += [f"**Topic:** {channel['topic']}", ""]
    if channel.get("purpose"):
        lines += [f"**Purpose:** {channel['purpose']}", ""]
    members = ", ".join(_who(state, m) for m in channel.get("members", []))
    lines += [f"**Members:** {members or 'none'}", ""]

    messages = state.messages(channel["id"])
    lines += ["## Messages", ""]
    if not messages:
        lines += ["_no messages_", ""]
    for message in messages:
        lines += _render_message(state, message)

    ephemerals = state.ephemerals(channel["id"])
    if ephemerals:
        lines += ["## Ephemeral messages", ""]
        for eph in ephemerals:
            heading = (
                f"**{_when(eph.get('ts'))} · {_who(state, BOT_USER_ID)}** "
                f"(only visible to {_who(state, eph.get('user'))})"
            )
            lines += [heading, ""]
            lines += _render_body(eph.get("text"), eph.get("blocks"))
    return "\n".join(lines).rstrip() + "\n"


def _render_message(state: WorkspaceState, message: dict[str, Any]) -> list[str]:
    marks = []
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != message.get("ts"):
        marks.append(f"↳ reply in thread {thread_ts}")
    if message.get("edit_count"):
        count = message["edit_count"]
        marks.append(f"(edited {count} time{'s' if count != 1 else ''})")
    if message.get("pinned"):
        marks.append("📌 pinned")
    if message.get("reply_count"):
        replies = message["reply_count"]
        marks.append(f"{replies} repl{'ies' if replies != 1 else 'y'}")
    # Bold rather than a heading so header blocks (## …) stay the most prominent lines.
    heading = f"**{_when(message.get('ts'))} · {_who(state, message.get('user'))}**"
    if marks:
        heading += " " + " ".join(marks)
    lines = [heading, "", f"<sub>ts {message.get('ts')}</sub>", ""]
    lines += _render_body(message.get("text"), message.get("blocks"))
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict):
            fallback = attachment.get("fallback") or attachment.get("text")
            if fallback:
                lines += [f"> attachment: {fallback}", ""]
            lines += render_blocks(attachment.get("blocks"))
    return lines


def _render_body(text: Any, blocks: Any) -> list[str]:
    lines: list[str] = []
    if text:
        quoted = "\n".join(f"> {line}" for line in str(text).splitlines())
        lines += ["Fallback text:", "", quoted, ""]
    if isinstance(blocks, list) and blocks:
        lines += render_blocks(blocks)
    return lines


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj) if obj is not None else ""


def _element(element: Any) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        style = f" ({element['style']})" if element.get("style") else ""
        return f"[{_text(element.get('text'))}]{style}"
    if kind == "image":
        return f"![{element.get('alt_text', '')}]({element.get('image_url', '')})"
    if kind in ("plain_text", "mrkdwn"):
        return _text(element)
    if kind == "overflow":
        return "[⋯]"
    placeholder = _text(element.get("placeholder")) or str(kind)
    initial = element.get("initial_option")
    if isinstance(initial, dict):
        placeholder = _text(initial.get("text"))
    return f"[{placeholder} ▾]"


def _rich_text(node: Any) -> str:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "text":
            return str(node.get("text", ""))
        if kind == "link":
            return str(node.get("text") or node.get("url", ""))
        if kind == "user":
            return f"<@{node.get('user_id', '')}>"
        if kind == "channel":
            return f"<#{node.get('channel_id', '')}>"
        if kind == "emoji":
            return f":{node.get('name', '')}:"
        inner = "".join(_rich_text(child) for child in node.get("elements", []))
        if kind == "rich_text_list":
            return "\n".join(f"- {_rich_text(child)}" for child in node.get("elements", []))
        if kind == "rich_text_preformatted":
            return f"\n```\n{inner}\n```\n"
        if kind == "rich_text_quote":
            return f"> {inner}"
        return inner
    return ""


def _render_block(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"## {_text(block.get('text'))}"]
    if kind == "divider":
        return ["---"]
    if kind == "section":
        text = _text(block.get("text")) if block.get("text") else ""
        accessory = block.get("accessory")
        if accessory:
            text = f"{text} {_element(accessory)}".strip()
        lines = [text] if text else []
        fields = [f"- {_text(field)}" for field in block.get("fields") or []]
        if fields:
            lines += ["", *fields] if lines else fields
        return lines
    if kind == "context":
        parts = [_element(e) for e in block.get("elements") or []]
        return [f"_{' · '.join(p for p in parts if p)}_"]
    if kind == "actions":
        return [" ".join(_element(e) for e in block.get("elements") or [])]
    if kind == "input":
        optional = " (optional)" if block.get("optional") else ""
        return [f"**{_text(block.get('label'))}**{optional}: {_element(block.get('element'))}"]
    if kind == "image":
        return [f"![{block.get('alt_text', '')}]({block.get('image_url', '')})"]
    if kind == "markdown":
        return [str(block.get("text", ""))]
    if kind == "rich_text":
        return [_rich_text(block)]
    return [f"_[{kind} block]_"]
