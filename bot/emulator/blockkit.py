"""Offline Block Kit validation: slack_sdk's own validators plus the limits it misses.

slack_sdk.models silently drops unknown keys, coerces types and returns None for unknown
block types, so every payload is parsed, re-serialised and compared with the input; the
remaining Slack limits that slack_sdk does not encode are checked by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ATTACHMENTS = 100
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_MODAL_TEXT = 24
MAX_TEXT_INPUT_LENGTH = 3000
MAX_VIEW_BYTES = 250_000

# Elements that carry no action_id; everything else placed in an actions block, a section
# accessory or an input block is interactive.
_NON_INTERACTIVE_ELEMENTS = frozenset({"image"})


def check_message(payload: dict[str, Any], *, require_action_ids: bool = True) -> list[str]:
    """Return the problems in a chat.postMessage/postEphemeral/update payload (empty = valid)."""
    problems: list[str] = []
    blocks = _decode(payload.get("blocks"), "blocks", problems)
    attachments = _decode(payload.get("attachments"), "attachments", problems)
    if blocks is not None:
        if not isinstance(blocks, list):
            problems.append("blocks: must be a JSON array")
        elif blocks:
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip():
                problems.append(
                    "text: a non-empty top-level text fallback is required when blocks are sent"
                )
            problems.extend(
                _check_blocks(blocks, "blocks", MAX_MESSAGE_BLOCKS, "message", require_action_ids)
            )
    if attachments is not None:
        if not isinstance(attachments, list):
            problems.append("attachments: must be a JSON array")
        else:
            if len(attachments) > MAX_ATTACHMENTS:
                problems.append(
                    f"attachments: {len(attachments)} attachments, at most {MAX_ATTACHMENTS}"
                )
            for i, attachment in enumerate(attachments):
                if not isinstance(attachment, dict):
                    problems.append(f"attachments[{i}]: must be an object")
                    continue
                inner = attachment.get("blocks")
                if isinstance(inner, list) and inner:
                    where = f"attachments[{i}].blocks"
                    problems.extend(
                        _check_blocks(
                            inner, where, MAX_MESSAGE_BLOCKS, "message", require_action_ids
                        )
                    )
    return problems


def check_view(view: dict[str, Any], *, require_action_ids: bool = True) -> list[str]:
    """Return the problems in a views.open/update/push/publish view (empty = valid)."""
    problems: list[str] = []
    if not isinstance(view, dict):
        return ["view: must be a JSON object"]
    size = len(json.dumps(view, ensure_ascii=False).encode("utf-8"))
    if size > MAX_VIEW_BYTES:
        problems.append(f"view: {size} bytes of JSON, at most {MAX_VIEW_BYTES}")
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        problems.append(f"type: must be 'modal' or 'home', got {view_type!r}")

    # The blocks are checked one by one below (better messages); slack_sdk only sees the
    # view's own fields here, with a placeholder block so its 1..100 rule is satisfied.
    shell = {k: v for k, v in view.items() if k != "blocks"}
    shell["blocks"] = [{"type": "divider"}]
    try:
        rebuilt = View(**shell).to_dict()
    except SlackObjectFormationError as e:
        problems.append(f"view: {e}")
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        problems.append(f"view: not understood by slack_sdk ({e})")
    else:
        rebuilt.pop("blocks", None)
        shell.pop("blocks")
        problems.extend(_diff(shell, rebuilt, "view"))

    if view_type == "modal":
        if "title" not in view:
            problems.append("title: a modal needs a title")
        for key in ("title", "submit", "close"):
            problems.extend(_plain_text_limit(view.get(key), key, MAX_MODAL_TEXT))

    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append("blocks: a view needs a blocks array")
        return problems
    if not blocks:
        problems.append("blocks: a view needs at least one block")
    problems.extend(_check_blocks(blocks, "blocks", MAX_VIEW_BLOCKS, "view", require_action_ids))
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if view_type == "modal" and has_input and "submit" not in view:
        problems.append("submit: a modal with input blocks needs a submit button")
    return problems


def _decode(value: Any, name: str, problems: list[str]) -> Any:
    # Form-encoded calls carry blocks/attachments as JSON strings.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            problems.append(f"{name}: not valid JSON")
            return None
    return value


def _check_blocks(
    blocks: list[Any], where: str, limit: int, surface: str, require_action_ids: bool
) -> list[str]:
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"{where}: {len(blocks)} blocks, at most {limit} in a {surface}")
    seen_block_ids: dict[str, int] = {}
    for i, block in enumerate(blocks):
        path = f"{where}[{i}]"
        if not isinstance(block, dict):
            problems.append(f"{path}: must be an object")
            continue
        problems.extend(_sdk_roundtrip(block, path))
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                problems.append(
                    f"{path}: block_id {block_id!r} repeats {where}[{seen_block_ids[block_id]}]"
                )
            else:
                seen_block_ids[block_id] = i
        problems.extend(_check_block(block, path, require_action_ids))
    return problems


def _sdk_roundtrip(block: dict[str, Any], path: str) -> list[str]:
    kind = block.get("type")
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [f"{path}: unknown block type {kind!r}"]
        rebuilt = parsed.to_dict()
    except SlackObjectFormationError as e:
        return [f"{path} ({kind}): {e}"]
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        return [f"{path} ({kind}): not understood by slack_sdk ({e})"]
    return _diff(block, rebuilt, path)


def _diff(given: Any, rebuilt: Any, path: str) -> list[str]:
    """List where slack_sdk's normalised form differs from what was sent."""
    if isinstance(given, dict):
        if rebuilt is None:
            return [f"{path}: unknown element type {given.get('type')!r}"]
        if not isinstance(rebuilt, dict):
            return [f"{path}: object became {type(rebuilt).__name__}"]
        problems: list[str] = []
        for key, value in given.items():
            sub = f"{path}.{key}"
            if key not in rebuilt:
                if value is None:
                    problems.append(f"{sub}: null is not allowed")
                elif value in ("", [], {}):
                    problems.append(f"{sub}: empty value is not allowed")
                else:
                    problems.append(f"{sub}: unknown or unsupported key")
            else:
                problems.extend(_diff(value, rebuilt[key], sub))
        for key in rebuilt.keys() - given.keys():
            # Only slack_sdk's coercions add keys (e.g. a bare string becoming a text object).
            problems.append(f"{path}.{key}: missing (slack_sdk had to fill it in)")
        return problems
    if isinstance(given, list):
        if not isinstance(rebuilt, list):
            return [f"{path}: array became {type(rebuilt).__name__}"]
        if len(given) != len(rebuilt):
            return [f"{path}: {len(given)} items became {len(rebuilt)}"]
        problems = []
        for i, (a, b) in enumerate(zip(given, rebuilt, strict=True)):
            problems.extend(_diff(a, b, f"{path}[{i}]"))
        return problems
    if isinstance(rebuilt, dict):
        return [f"{path}: a {type(given).__name__} where an object is expected"]
    if _same_scalar(given, rebuilt):
        return []
    return [f"{path}: {given!r} was read as {rebuilt!r}"]


def _same_scalar(given: Any, rebuilt: Any) -> bool:
    if type(given) is type(rebuilt):
        return bool(given == rebuilt)
    # slack_sdk stringifies numbers it documents as strings (number_input min/max);
    # Slack itself accepts either, so that is not a problem.
    if isinstance(given, int | float) and not isinstance(given, bool) and isinstance(rebuilt, str):
        return str(given) == rebuilt
    return False


def _text(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("text")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


def _plain_text_limit(obj: Any, path: str, limit: int) -> list[str]:
    if obj is None:
        return []
    problems: list[str] = []
    if not isinstance(obj, dict) or obj.get("type") != "plain_text":
        problems.append(f"{path}: must be a plain_text object")
    text = _text(obj)
    if text is not None and len(text) > limit:
        problems.append(f"{path}: {len(text)} characters, at most {limit}")
    return problems


def _check_block(block: dict[str, Any], path: str, require_action_ids: bool) -> list[str]:
    kind = block.get("type")
    problems: list[str] = []
    if kind == "header":
        problems.extend(_plain_text_limit(block.get("text"), f"{path}.text", MAX_HEADER_TEXT))
    elif kind == "section":
        text = _text(block.get("text"))
        if text is not None and len(text) > MAX_SECTION_TEXT:
            problems.append(f"{path}.text: {len(text)} characters, at most {MAX_SECTION_TEXT}")
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"{path}.fields: {len(fields)} fields, at most {MAX_SECTION_FIELDS}"
                )
            for j, field in enumerate(fields):
                field_text = _text(field)
                if field_text is not None and len(field_text) > MAX_FIELD_TEXT:
                    problems.append(
                        f"{path}.fields[{j}]: {len(field_text)} chars, at most {MAX_FIELD_TEXT}"
                    )
        accessory = block.get("accessory")
        if accessory is not None:
            problems.extend(
                _check_elements([accessory], f"{path}.accessory", require_action_ids, single=True)
            )
    elif kind == "actions":
        elements = block.get("elements")
        if isinstance(elements, list):
            problems.extend(_check_elements(elements, f"{path}.elements", require_action_ids))
    elif kind == "input":
        element = block.get("element")
        if element is not None:
            problems.extend(
                _check_elements([element], f"{path}.element", require_action_ids, single=True)
            )
    return problems


def _check_elements(
    elements: Iterable[Any], path: str, require_action_ids: bool, *, single: bool = False
) -> list[str]:
    problems: list[str] = []
    seen_action_ids: set[str] = set()
    for j, element in enumerate(elements):
        where = path if single else f"{path}[{j}]"
        if not isinstance(element, dict):
            problems.append(f"{where}: must be an object")
            continue
        kind = element.get("type")
        if kind in _NON_INTERACTIVE_ELEMENTS:
            continue
        action_id = element.get("action_id")
        if not isinstance(action_id, str) or not action_id:
            # Slack generates a random action_id when it is missing (Block Kit Builder exports
            # omit it), but a bot cannot route actions or read state.values without one.
            if require_action_ids:
                problems.append(f"{where} ({kind}): interactive element without an action_id")
        elif action_id in seen_action_ids:
            problems.append(f"{where}: action_id {action_id!r} repeats within the block")
        else:
            seen_action_ids.add(action_id)
        if kind == "button":
            label = _text(element.get("text"))
            if not label:
                problems.append(f"{where}.text: a button needs a non-empty label")
            elif len(label) > MAX_BUTTON_TEXT:
                problems.append(f"{where}.text: {len(label)} characters, at most {MAX_BUTTON_TEXT}")
        if kind == "plain_text_input":
            for key in ("max_length", "min_length"):
                value = element.get(key)
                if isinstance(value, int) and value > MAX_TEXT_INPUT_LENGTH:
                    problems.append(f"{where}.{key}: {value}, at most {MAX_TEXT_INPUT_LENGTH}")
    return problems
