"""In-memory Slack workspace behind the emulator: channels, messages, pins, views, users.

Each Web API method is a function of (state, params) that returns the JSON answer real Slack
would give, including its documented error codes. Everything is guarded by one lock because
the HTTP server answers requests on several threads.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.blockkit import MAX_VIEW_BYTES, check_message, check_view

TEAM_ID = "T0EMULATOR"
TEAM_NAME = "Warroom Emulator"
TEAM_URL = "https://warroom-emulator.slack.com/"
BOT_USER_ID = "U0WARROOMBOT"
BOT_ID = "B0WARROOM"
BOT_NAME = "warroom"
GENERAL_CHANNEL_ID = "C0GENERAL"
APP_ID = "A0WARROOM"

MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250
MAX_PINS = 100
_CHANNEL_NAME_CHARS = re.compile(r"[a-z0-9_-]+")


@dataclass(frozen=True)
class RecordedCall:
    """One request the emulator answered: method, parsed params, wall time, HTTP status."""

    method: str
    params: dict[str, Any]
    at: float
    status: int
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack would have answered ok: true."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class ValidationFailure:
    """A payload the Block Kit checks refused, with the problems found."""

    method: str
    problems: list[str]
    params: dict[str, Any]


class ApiError(Exception):
    """Raised inside a method handler to answer {"ok": false, "error": code}."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Message:
    ts: str
    user: str
    text: str
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: dict[str, Any] | None = None
    edit_count: int = 0
    edited_ts: str | None = None
    pinned_at: int | None = None
    replies: list[str] = field(default_factory=list)
    # reaction name -> the users who added it, in order
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[dict[str, Any]] | None = None

    def to_api(self, channel_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text}
        if self.user == BOT_USER_ID:
            out.update({"bot_id": BOT_ID, "app_id": APP_ID})
        out.update({"ts": self.ts, "team": TEAM_ID})
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
            if self.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        if self.replies:
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1]
        if self.edited_ts is not None:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.pinned_at is not None:
            out["pinned_to"] = [channel_id]
        if any(self.reactions.values()):
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
                if users
            ]
        if self.files:
            out["files"] = copy.deepcopy(self.files)
        return out


@dataclass
class _Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_archived: bool = False
    is_general: bool = False
    dm_user: str | None = None
    topic: dict[str, Any] = field(default_factory=dict)
    purpose: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    messages: list[_Message] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    canvas_id: str | None = None

    def find(self, ts: str) -> _Message | None:
        for message in self.messages:
            if message.ts == ts:
                return message
        return None

    def to_api(self) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.dm_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_mpim,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "creator": self.creator,
            "is_member": BOT_USER_ID in self.members,
            "topic": dict(self.topic),
            "purpose": dict(self.purpose),
            "previous_names": [],
            "updated": self.created * 1000,
        }


def _str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _bool(params: dict[str, Any], key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int(params: dict[str, Any], key: str, default: int) -> int:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError("invalid_arguments") from None


def _json_field(params: dict[str, Any], key: str) -> Any:
    # Form bodies carry structured fields as JSON strings; JSON bodies carry them as-is.
    value = params.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(f"invalid_{key}_format" if key == "blocks" else "invalid_json") from None
    return value


def _id_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(part).strip() for part in value if str(part).strip()]
    return [str(value)]


def _is_user_id(value: str) -> bool:
    return len(value) > 1 and value[0] in "UW" and value[1:].isalnum()


def _ts_float(ts: str | None, default: float) -> float:
    if ts is None or ts == "":
        return default
    try:
        return float(ts)
    except ValueError:
        raise ApiError("invalid_ts_oldest") from None


Handler = Callable[["WorkspaceState", dict[str, Any]], dict[str, Any]]
_METHODS: dict[str, Handler] = {}


def _method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _METHODS[name] = fn
        return fn

    return register


class WorkspaceState:
    """One fake Slack workspace; `handle()` answers Web API calls against it."""

    def __init__(
        self, clock: Callable[[], float] = time.time, *, seed_general: bool = True
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._channels: dict[str, _Channel] = {}
        self._dms: dict[str, str] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._calls: list[RecordedCall] = []
        self._failures: list[ValidationFailure] = []
        self._response_urls: dict[str, dict[str, str | None]] = {}
        self._channel_seq = itertools.count(1)
        self._dm_seq = itertools.count(1)
        self._view_seq = itertools.count(1)
        self._last_ts_micro = 0
        # Canvases and uploaded files; `disable_canvases` makes the workspace refuse canvases.
        self._canvases: dict[str, dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._file_seq = itertools.count(1)
        self.canvases_enabled = True
        self.channel_canvases_enabled = True
        self.add_user(BOT_USER_ID, BOT_NAME, "Warroom", is_bot=True)
        if seed_general:
            # Every workspace has #general and every human is in it; slash commands in
            # fixtures come from there, so ephemeral answers must find it. The bot is not a
            # member (as on Slack) but may post via chat:write.public.
            self.add_channel("general", channel_id=GENERAL_CHANNEL_ID, bot_is_member=False)
            self._channels[GENERAL_CHANNEL_ID].is_general = True

    # ----- seeding -------------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, real_name: str | None = None, *, is_bot: bool = False
    ) -> dict[str, Any]:
        """Register a user so users.info and transcripts show a real name."""
        full_name = real_name or name
        profile: dict[str, Any] = {
            "real_name": full_name,
            "real_name_normalized": full_name,
            "display_name": name,
            "display_name_normalized": name,
            "team": TEAM_ID,
        }
        if is_bot:
            profile["bot_id"] = BOT_ID
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": False,
            "real_name": full_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(self._clock()),
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_is_member: bool = True,
    ) -> str:
        """Create a pre-existing channel (e.g. where slash commands come from); returns its id."""
        with self._lock:
            cid = channel_id or self._new_channel_id()
            member_list = [BOT_USER_ID] if bot_is_member else []
            member_list += [m for m in members if m not in member_list]
            self._channels[cid] = _Channel(
                id=cid,
                name=name,
                created=int(self._clock()),
                creator=member_list[0] if member_list else BOT_USER_ID,
                is_private=is_private,
                topic=self._text_meta(""),
                purpose=self._text_meta(""),
                members=member_list,
            )
            return cid

    def add_message(
        self, channel: str, text: str, *, user: str = "U0HUMAN", thread_ts: str | None = None
    ) -> str:
        """Put a message from someone else into a channel; returns its ts."""
        with self._lock:
            ch = self._require_channel(channel)
            message = _Message(ts=self._next_ts(), user=user, text=text, thread_ts=thread_ts)
            self._append(ch, message)
            return message.ts

    def register_response_url(
        self,
        key: str,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
    ) -> None:
        """Tie a response_url key to a channel/user so respond() shows up in transcripts."""
        with self._lock:
            self._response_urls[key] = {"channel": channel, "user": user, "message_ts": message_ts}

    def add_reaction(self, channel: str, ts: str, name: str, *, user: str = "U0HUMAN") -> None:
        """Someone reacts to a message with `name` (e.g. pushpin), as if in the Slack client."""
        with self._lock:
            message = self._require_channel(channel).find(ts)
            if message is None:
                raise KeyError(f"no message {ts!r} in {channel!r}")
            users = message.reactions.setdefault(name, [])
            if user not in users:
                users.append(user)

    def disable_canvases(self, *, channel_canvases_only: bool = False) -> None:
        """Make the workspace refuse canvases, as a plan or an admin setting would: channel
        canvases only (`team_tier_cannot_create_channel_canvases`), or every canvas
        (`canvas_disabled_user_team`)."""
        with self._lock:
            self.channel_canvases_enabled = False
            if not channel_canvases_only:
                self.canvases_enabled = False

    def canvases(self) -> list[dict[str, Any]]:
        """Every canvas created: id, title, markdown, channel_id, kind, access, edits."""
        with self._lock:
            return copy.deepcopy(list(self._canvases.values()))

    def files(self) -> list[dict[str, Any]]:
        """Every file uploaded: id, name, title, content (text), channels, permalink."""
        with self._lock:
            return [
                {key: value for key, value in f.items() if key != "data"}
                | {"content": bytes(f.get("data", b"")).decode("utf-8", "replace")}
                for f in self._files.values()
            ]

    def receive_upload(self, file_id: str, data: bytes) -> bool:
        """The bytes POSTed to an upload URL from files.getUploadURLExternal."""
        with self._lock:
            record = self._files.get(file_id)
            if record is None:
                return False
            record["data"] = data
            return True

    # ----- accessors -----------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        """Every conversation, with id, name, topic, purpose, members, pins and flags."""
        with self._lock:
            return [self._summary(ch) for ch in self._channels.values()]

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        """The channel called `name` (leading # optional), or None."""
        with self._lock:
            ch = self._by_name(name.lstrip("#"))
            return self._summary(ch) if ch else None

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages (thread replies included) oldest first, as last edited, plus edit_count."""
        with self._lock:
            ch = self._require_channel(channel)
            out = []
            for message in ch.messages:
                item = message.to_api(ch.id)
                item["edit_count"] = message.edit_count
                item["pinned"] = message.pinned_at is not None
                out.append(item)
            return out

    def ephemerals(self, channel: str) -> list[dict[str, Any]]:
        """Ephemeral messages sent in a channel, oldest first, each with its target user."""
        with self._lock:
            return copy.deepcopy(self._require_channel(channel).ephemerals)

    def dm_channel(self, user_id: str) -> str | None:
        """The DM channel id opened with a user, if any."""
        with self._lock:
            return self._dms.get(user_id)

    def views(self) -> list[dict[str, Any]]:
        """Every view opened or pushed, in its latest version."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def users(self) -> dict[str, dict[str, Any]]:
        """Known users by id."""
        with self._lock:
            return copy.deepcopy(self._users)

    def user_name(self, user_id: str) -> str:
        """Display name for a user id (the id itself when unknown)."""
        with self._lock:
            user = self._users.get(user_id)
            return str(user["name"]) if user else user_id

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded calls in arrival order, optionally only one method's."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def reset_calls(self) -> None:
        """Forget recorded calls and validation failures (state is kept)."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()

    def record(self, call: RecordedCall) -> None:
        """Append a call to the log."""
        with self._lock:
            self._calls.append(call)

    def validation_failures(self) -> list[ValidationFailure]:
        """Payloads refused with invalid_blocks / view_too_large."""
        with self._lock:
            return list(self._failures)

    # ----- dispatch ------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one Web API call as Slack would (never raises for API errors)."""
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            try:
                return handler(self, params)
            except ApiError as e:
                return {"ok": False, "error": e.error, **e.extra}

    def handle_response_url(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply a respond() post; mirrored into the channel when the key was registered."""
        with self._lock:
            problems = check_message(payload) if payload.get("blocks") else []
            if problems:
                self._failures.append(ValidationFailure("response_url", problems, payload))
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            target = self._response_urls.get(key)
            if not target or not target.get("channel"):
                return {"ok": True}
            ch = self._channels.get(str(target["channel"]))
            if ch is None:
                return {"ok": True}
            try:
                blocks = _json_field(payload, "blocks")
            except ApiError as e:
                return {"ok": False, "error": e.error}
            text = _str(payload, "text") or ""
            original = target.get("message_ts")
            if payload.get("delete_original") and original:
                ch.messages = [m for m in ch.messages if m.ts != original]
            elif payload.get("replace_original") and original and ch.find(original):
                message = ch.find(original)
                assert message is not None
                message.text, message.blocks = text, blocks
                message.edit_count += 1
                message.edited_ts = self._next_ts()
            elif payload.get("response_type") == "in_channel":
                self._append(
                    ch, _Message(ts=self._next_ts(), user=BOT_USER_ID, text=text, blocks=blocks)
                )
            else:
                ch.ephemerals.append(
                    {
                        "ts": self._next_ts(),
                        "user": target.get("user"),
                        "text": text,
                        "blocks": blocks,
                        "via": "response_url",
                    }
                )
            return {"ok": True}

    # ----- internals -----------------------------------------------------------------

    def _next_ts(self) -> str:
        micro = int(self._clock() * 1_000_000)
        micro = max(micro, self._last_ts_micro + 1)
        self._last_ts_micro = micro
        return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"

    def _new_channel_id(self) -> str:
        while True:
            cid = f"C{next(self._channel_seq):09d}"
            if cid not in self._channels:
                return cid

    def _text_meta(self, value: str, creator: str = "") -> dict[str, Any]:
        return {"value": value, "creator": creator, "last_set": int(self._clock()) if value else 0}

    def _by_name(self, name: str) -> _Channel | None:
        for ch in self._channels.values():
            if ch.name == name and not ch.is_im:
                return ch
        return None

    def _require_channel(self, ref: str) -> _Channel:
        ch = self._channels.get(ref) or self._by_name(ref.lstrip("#"))
        if ch is None:
            raise KeyError(f"no channel {ref!r}")
        return ch

    def _summary(self, ch: _Channel) -> dict[str, Any]:
        return {
            "id": ch.id,
            "name": ch.name,
            "is_private": ch.is_private,
            "is_im": ch.is_im,
            "is_mpim": ch.is_mpim,
            "is_archived": ch.is_archived,
            "is_general": ch.is_general,
            "dm_user": ch.dm_user,
            "created": ch.created,
            "creator": ch.creator,
            "topic": ch.topic.get("value", ""),
            "purpose": ch.purpose.get("value", ""),
            "members": list(ch.members),
            "pins": list(ch.pins),
        }

    def _append(self, ch: _Channel, message: _Message) -> None:
        ch.messages.append(message)
        if message.thread_ts and message.thread_ts != message.ts:
            parent = ch.find(message.thread_ts)
            if parent is not None:
                parent.replies.append(message.ts)

    def _channel_param(self, params: dict[str, Any], key: str = "channel") -> _Channel:
        cid = _str(params, key)
        if not cid:
            raise ApiError("channel_not_found")
        ch = self._channels.get(cid)
        # A bot cannot see private channels it is not in; Slack says channel_not_found.
        if ch is None or (ch.is_private and BOT_USER_ID not in ch.members):
            raise ApiError("channel_not_found")
        return ch

    def _postable_channel(self, params: dict[str, Any]) -> _Channel:
        ref = _str(params, "channel")
        if not ref:
            raise ApiError("channel_not_found")
        if _is_user_id(ref):
            # Posting to a user id lands in the DM with that user, as on real Slack.
            return self._open_dm(ref)[0]
        ch = self._channels.get(ref) or self._by_name(ref.lstrip("#"))
        if ch is None:
            raise ApiError("channel_not_found")
        if ch.is_archived:
            raise ApiError("is_archived")
        if BOT_USER_ID not in ch.members and (ch.is_private or ch.is_mpim or ch.is_im):
            raise ApiError("not_in_channel")
        return ch

    def _open_dm(self, user_id: str) -> tuple[_Channel, bool]:
        existing = self._dms.get(user_id)
        if existing is not None:
            return self._channels[existing], True
        cid = f"D{next(self._dm_seq):09d}"
        ch = _Channel(
            id=cid,
            name=f"dm-{user_id}",
            created=int(self._clock()),
            creator=BOT_USER_ID,
            is_im=True,
            dm_user=user_id,
            members=[BOT_USER_ID, user_id],
        )
        self._channels[cid] = ch
        self._dms[user_id] = cid
        return ch, False

    def _message_content(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        blocks = _json_field(params, "blocks")
        attachments = _json_field(params, "attachments")
        text = _str(params, "text")
        problems = check_message({**params, "blocks": blocks, "attachments": attachments})
        if problems:
            self._failures.append(ValidationFailure(method, problems, copy.deepcopy(params)))
            raise ApiError(
                "invalid_blocks", errors=problems, response_metadata={"messages": problems}
            )
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        return {"text": text, "blocks": blocks, "attachments": attachments}

    def _view_param(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        view = _json_field(params, "view")
        if not isinstance(view, dict):
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: view"]},
            )
        problems = check_view(view)
        if problems:
            self._failures.append(ValidationFailure(method, problems, copy.deepcopy(params)))
            too_large = len(json.dumps(view).encode("utf-8")) > MAX_VIEW_BYTES
            raise ApiError(
                "view_too_large" if too_large else "invalid_blocks",
                errors=problems,
                response_metadata={"messages": problems},
            )
        return view

    def _store_view(
        self,
        view: dict[str, Any],
        *,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        vid = view_id or f"V{next(self._view_seq):09d}"
        stamp = self._next_ts()
        stored = {
            "id": vid,
            "team_id": TEAM_ID,
            "type": view.get("type", "modal"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{stamp}.{hashlib.sha1(vid.encode() + stamp.encode()).hexdigest()[:8]}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or vid,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        for key in ("title", "submit", "close"):
            if key in view:
                stored[key] = copy.deepcopy(view[key])
        self._views[vid] = stored
        return copy.deepcopy(stored)


# ----- auth ------------------------------------------------------------------------------


@_method("auth.test")
def _auth_test(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": TEAM_URL,
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


# ----- conversations ---------------------------------------------------------------------


@_method("conversations.create")
def _create(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    name = _str(params, "name") or ""
    if not name:
        raise ApiError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise ApiError("invalid_name_maxlength")
    if not _CHANNEL_NAME_CHARS.fullmatch(name):
        raise ApiError("invalid_name_specials")
    if not name.strip("-_"):
        raise ApiError("invalid_name_punctuation")
    # Archived channels keep their names, so they stay taken.
    if state._by_name(name) is not None:
        raise ApiError("name_taken")
    ch = _Channel(
        id=state._new_channel_id(),
        name=name,
        created=int(state._clock()),
        creator=BOT_USER_ID,
        is_private=_bool(params, "is_private"),
        topic=state._text_meta(""),
        purpose=state._text_meta(""),
        members=[BOT_USER_ID],
    )
    state._channels[ch.id] = ch
    return {"ok": True, "channel": ch.to_api()}


@_method("conversations.invite")
def _invite(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    if ch.is_archived:
        raise ApiError("is_archived")
    if ch.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    users = _id_list(params.get("users"))
    if not users:
        raise ApiError("no_user")
    for user in users:
        if user == BOT_USER_ID:
            raise ApiError("cant_invite_self")
        if not _is_user_id(user):
            raise ApiError("user_not_found")
    new = [u for u in dict.fromkeys(users) if u not in ch.members]
    if not new:
        raise ApiError("already_in_channel")
    ch.members.extend(new)
    return {"ok": True, "channel": ch.to_api()}


@_method("conversations.join")
def _join(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    if ch.is_private or ch.is_im or ch.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise ApiError("is_archived")
    answer: dict[str, Any] = {"ok": True}
    if BOT_USER_ID in ch.members:
        answer["warning"] = "already_in_channel"
        answer["response_metadata"] = {"warnings": ["already_in_channel"]}
    else:
        ch.members.append(BOT_USER_ID)
    answer["channel"] = ch.to_api()
    return answer


def _set_text_meta(state: WorkspaceState, params: dict[str, Any], attr: str) -> dict[str, Any]:
    ch = state._channel_param(params)
    if ch.is_archived:
        raise ApiError("is_archived")
    if ch.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    value = _str(params, attr) or ""
    if len(value) > MAX_TOPIC:
        raise ApiError("too_long")
    setattr(ch, attr, state._text_meta(value, BOT_USER_ID))
    return {"ok": True, "channel": ch.to_api()}


@_method("conversations.setTopic")
def _set_topic(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    return _set_text_meta(state, params, "topic")


@_method("conversations.setPurpose")
def _set_purpose(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    return _set_text_meta(state, params, "purpose")


@_method("conversations.archive")
def _archive(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    if ch.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise ApiError("already_archived")
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    ch.is_archived = True
    return {"ok": True}


@_method("conversations.info")
def _info(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    channel = ch.to_api()
    if not ch.is_im:
        channel["num_members"] = len(ch.members)
    return {"ok": True, "channel": channel}


@_method("conversations.list")
def _list(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    types = set(_id_list(params.get("types")) or ["public_channel"])
    exclude_archived = _bool(params, "exclude_archived")
    out = []
    for ch in state._channels.values():
        kind = (
            "im"
            if ch.is_im
            else "mpim"
            if ch.is_mpim
            else "private_channel"
            if ch.is_private
            else "public_channel"
        )
        if kind not in types or (exclude_archived and ch.is_archived):
            continue
        if kind != "public_channel" and BOT_USER_ID not in ch.members:
            continue
        item = ch.to_api()
        if not ch.is_im:
            item["num_members"] = len(ch.members)
        out.append(item)
    limit = _int(params, "limit", 100)
    return {"ok": True, "channels": out[:limit], "response_metadata": {"next_cursor": ""}}


@_method("conversations.members")
def _members(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    return {"ok": True, "members": list(ch.members), "response_metadata": {"next_cursor": ""}}


def _window(messages: list[_Message], params: dict[str, Any]) -> list[_Message]:
    oldest = _ts_float(_str(params, "oldest"), 0.0)
    latest = _ts_float(_str(params, "latest"), float("inf"))
    inclusive = _bool(params, "inclusive")
    picked = []
    for m in messages:
        t = float(m.ts)
        if inclusive:
            if oldest <= t <= latest:
                picked.append(m)
        elif oldest < t < latest:
            picked.append(m)
    return picked


def _page(
    messages: list[_Message], params: dict[str, Any], limit: int
) -> tuple[list[_Message], str]:
    """One page of `messages` from the `cursor` on, and the cursor of the next page ("" at the
    end). Cursors are opaque to clients, like Slack's (base64 of `next_ts:<ts>`)."""
    start = 0
    cursor = _str(params, "cursor")
    if cursor:
        try:
            kind, _, ts = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        except ValueError:
            raise ApiError("invalid_cursor") from None
        start = next((i for i, m in enumerate(messages) if m.ts == ts), -1)
        if kind != "next_ts" or start < 0:
            raise ApiError("invalid_cursor")
    page = messages[start : start + limit]
    if start + limit >= len(messages):
        return page, ""
    following = messages[start + limit].ts
    return page, base64.b64encode(f"next_ts:{following}".encode()).decode()


@_method("conversations.history")
def _history(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    limit = max(1, min(_int(params, "limit", 100), 999))
    top_level = [
        m for m in ch.messages if m.thread_ts is None or m.thread_ts == m.ts or m.reply_broadcast
    ]
    picked = list(reversed(_window(top_level, params)))
    page, next_cursor = _page(picked, params, limit)
    return {
        "ok": True,
        "messages": [m.to_api(ch.id) for m in page],
        "has_more": bool(next_cursor),
        "pin_count": len(ch.pins),
        "response_metadata": {"next_cursor": next_cursor},
    }


@_method("conversations.replies")
def _replies(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    ts = _str(params, "ts")
    if not ts:
        raise ApiError("invalid_arguments")
    parent = ch.find(ts)
    if parent is None:
        raise ApiError("thread_not_found")
    root = parent.thread_ts or parent.ts
    thread = [m for m in ch.messages if m.ts == root or m.thread_ts == root]
    limit = max(1, min(_int(params, "limit", 1000), 1000))
    picked = _window(thread, params) if ("oldest" in params or "latest" in params) else thread
    page, next_cursor = _page(picked, params, limit)
    return {
        "ok": True,
        "messages": [m.to_api(ch.id) for m in page],
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }


@_method("conversations.open")
def _open(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    existing_id = _str(params, "channel")
    if existing_id:
        ch = state._channels.get(existing_id)
        if ch is None or not (ch.is_im or ch.is_mpim):
            raise ApiError("channel_not_found")
        return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": ch.id}}
    users = [u for u in dict.fromkeys(_id_list(params.get("users"))) if u != BOT_USER_ID]
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 8:
        raise ApiError("too_many_users")
    for user in users:
        if not _is_user_id(user):
            raise ApiError("user_not_found")
    if len(users) == 1:
        ch, was_open = state._open_dm(users[0])
    else:
        name = "mpdm-" + "--".join([BOT_NAME, *(state.user_name(u) for u in users)]) + "-1"
        found = state._by_name(name)
        was_open = found is not None
        if found is None:
            found = _Channel(
                id=f"G{next(state._channel_seq):09d}",
                name=name,
                created=int(state._clock()),
                creator=BOT_USER_ID,
                is_mpim=True,
                members=[BOT_USER_ID, *users],
                topic=state._text_meta(""),
                purpose=state._text_meta(""),
            )
            state._channels[found.id] = found
        ch = found
    channel = ch.to_api() if _bool(params, "return_im") else {"id": ch.id}
    answer: dict[str, Any] = {"ok": True, "channel": channel}
    if was_open:
        answer.update({"no_op": True, "already_open": True})
    return answer


# ----- chat ------------------------------------------------------------------------------


@_method("chat.postMessage")
def _post_message(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._postable_channel(params)
    content = state._message_content("chat.postMessage", params)
    thread_ts = _str(params, "thread_ts") or None
    if thread_ts:
        parent = ch.find(thread_ts)
        # Replying to a reply threads onto the same root, as Slack does.
        if parent is not None and parent.thread_ts:
            thread_ts = parent.thread_ts
    metadata = _json_field(params, "metadata")
    message = _Message(
        ts=state._next_ts(),
        user=BOT_USER_ID,
        text=content["text"] or "",
        blocks=content["blocks"],
        attachments=content["attachments"],
        thread_ts=thread_ts,
        reply_broadcast=bool(thread_ts) and _bool(params, "reply_broadcast"),
        metadata=metadata if isinstance(metadata, dict) else None,
    )
    if thread_ts:
        parent = ch.find(thread_ts)
        if parent is not None and parent.thread_ts is None:
            parent.thread_ts = parent.ts
    state._append(ch, message)
    return {"ok": True, "channel": ch.id, "ts": message.ts, "message": message.to_api(ch.id)}


@_method("chat.postEphemeral")
def _post_ephemeral(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    user = _str(params, "user")
    if not user:
        raise ApiError("user_not_found")
    ch = state._postable_channel(params)
    if user not in ch.members and not ch.is_general:
        raise ApiError("user_not_in_channel")
    content = state._message_content("chat.postEphemeral", params)
    ts = state._next_ts()
    ch.ephemerals.append(
        {
            "ts": ts,
            "user": user,
            "text": content["text"] or "",
            "blocks": content["blocks"],
            "attachments": content["attachments"],
            "thread_ts": _str(params, "thread_ts"),
        }
    )
    return {"ok": True, "message_ts": ts}


@_method("chat.update")
def _update(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    ts = _str(params, "ts")
    message = ch.find(ts) if ts else None
    if message is None:
        raise ApiError("message_not_found")
    if message.user != BOT_USER_ID:
        raise ApiError("cant_update_message")
    content = state._message_content("chat.update", params)
    # Fields left out keep their old value; an explicit empty value clears it.
    if "text" in params:
        message.text = content["text"] or ""
    if "blocks" in params:
        message.blocks = content["blocks"] or None
    if "attachments" in params:
        message.attachments = content["attachments"] or None
    message.edit_count += 1
    message.edited_ts = state._next_ts()
    return {
        "ok": True,
        "channel": ch.id,
        "ts": message.ts,
        "text": message.text,
        "message": message.to_api(ch.id),
    }


@_method("chat.getPermalink")
def _permalink(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    ts = _str(params, "message_ts")
    message = ch.find(ts) if ts else None
    if message is None:
        raise ApiError("message_not_found")
    link = f"{TEAM_URL}archives/{ch.id}/p{message.ts.replace('.', '')}"
    if message.thread_ts and message.thread_ts != message.ts:
        link += f"?thread_ts={message.thread_ts}&cid={ch.id}"
    return {"ok": True, "channel": ch.id, "permalink": link}


# ----- pins ------------------------------------------------------------------------------


@_method("pins.add")
def _pin(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    ts = _str(params, "timestamp")
    if not ts:
        raise ApiError("no_item_specified")
    message = ch.find(ts)
    if message is None:
        raise ApiError("message_not_found")
    if message.pinned_at is not None:
        raise ApiError("already_pinned")
    if len(ch.pins) >= MAX_PINS:
        raise ApiError("too_many_pins")
    message.pinned_at = int(state._clock())
    ch.pins.append(ts)
    return {"ok": True}


@_method("pins.list")
def _pins(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params)
    items = []
    for ts in reversed(ch.pins):
        message = ch.find(ts)
        if message is None:
            continue
        items.append(
            {
                "type": "message",
                "created": message.pinned_at,
                "created_by": BOT_USER_ID,
                "channel": ch.id,
                "message": message.to_api(ch.id),
            }
        )
    return {"ok": True, "items": items}


# ----- views -----------------------------------------------------------------------------


def _require_trigger(params: dict[str, Any]) -> None:
    if not _str(params, "trigger_id") and not _str(params, "interactivity_pointer"):
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
        )


def _check_external_id(state: WorkspaceState, view: dict[str, Any], own: str | None) -> None:
    external = view.get("external_id")
    if not external:
        return
    for vid, stored in state._views.items():
        if vid != own and stored.get("external_id") == external:
            raise ApiError("duplicate_external_id")


@_method("views.open")
def _views_open(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    _require_trigger(params)
    view = state._view_param("views.open", params)
    _check_external_id(state, view, None)
    return {"ok": True, "view": state._store_view(view)}


@_method("views.push")
def _views_push(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    _require_trigger(params)
    view = state._view_param("views.push", params)
    _check_external_id(state, view, None)
    return {"ok": True, "view": state._store_view(view)}


@_method("views.update")
def _views_update(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    view_id = _str(params, "view_id")
    external_id = _str(params, "external_id")
    if not view_id and not external_id:
        raise ApiError("invalid_arguments")
    current = state._views.get(view_id) if view_id else None
    if current is None and external_id:
        current = next(
            (v for v in state._views.values() if v.get("external_id") == external_id), None
        )
    if current is None:
        raise ApiError("not_found")
    expected_hash = _str(params, "hash")
    if expected_hash and expected_hash != current["hash"]:
        raise ApiError("hash_conflict")
    view = state._view_param("views.update", params)
    _check_external_id(state, view, current["id"])
    return {
        "ok": True,
        "view": state._store_view(
            view,
            view_id=current["id"],
            root=current["root_view_id"],
            previous=current["previous_view_id"],
        ),
    }


# ----- users -----------------------------------------------------------------------------


@_method("users.info")
def _users_info(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    user_id = _str(params, "user") or ""
    known = state._users.get(user_id)
    if known is not None:
        return {"ok": True, "user": copy.deepcopy(known)}
    if not _is_user_id(user_id):
        raise ApiError("user_not_found")
    name = f"user-{user_id[1:].lower()}"
    real_name = f"User {user_id}"
    return {"ok": True, "user": state.add_user(user_id, name, real_name)}


# ----- reactions -------------------------------------------------------------------------


def _reaction_target(state: WorkspaceState, params: dict[str, Any]) -> tuple[_Channel, _Message]:
    ch = state._channel_param(params)
    ts = _str(params, "timestamp")
    if not ts:
        raise ApiError("no_item_specified")
    message = ch.find(ts)
    if message is None:
        raise ApiError("message_not_found")
    return ch, message


@_method("reactions.add")
def _reactions_add(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    _, message = _reaction_target(state, params)
    name = (_str(params, "name") or "").strip(":")
    if not name:
        raise ApiError("invalid_name")
    users = message.reactions.setdefault(name, [])
    if BOT_USER_ID in users:
        raise ApiError("already_reacted")
    users.append(BOT_USER_ID)
    return {"ok": True}


@_method("reactions.remove")
def _reactions_remove(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    _, message = _reaction_target(state, params)
    users = message.reactions.get((_str(params, "name") or "").strip(":"), [])
    if BOT_USER_ID not in users:
        raise ApiError("no_reaction")
    users.remove(BOT_USER_ID)
    return {"ok": True}


@_method("reactions.get")
def _reactions_get(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch, message = _reaction_target(state, params)
    return {"ok": True, "type": "message", "channel": ch.id, "message": message.to_api(ch.id)}


# ----- canvases --------------------------------------------------------------------------


def _canvas_markdown(params: dict[str, Any]) -> str:
    content = _json_field(params, "document_content")
    if content is None:
        return ""
    if not isinstance(content, dict) or content.get("type") != "markdown":
        raise ApiError("invalid_arguments")
    markdown = str(content.get("markdown", ""))
    if len(markdown) > 1_048_576:
        raise ApiError("canvas_creation_failed")
    return markdown


def _new_canvas(
    state: WorkspaceState, params: dict[str, Any], *, kind: str, channel: _Channel | None
) -> dict[str, Any]:
    canvas_id = f"F{next(state._file_seq):010d}"
    state._canvases[canvas_id] = {
        "id": canvas_id,
        "kind": kind,
        "title": _str(params, "title") or "",
        "markdown": _canvas_markdown(params),
        "channel_id": channel.id if channel else None,
        "access": {channel.id: "write"} if channel else {},
        "edits": 0,
    }
    return {"ok": True, "canvas_id": canvas_id}


@_method("conversations.canvases.create")
def _channel_canvas_create(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    ch = state._channel_param(params, "channel_id")
    if not state.canvases_enabled:
        raise ApiError("canvas_disabled_user_team")
    if not state.channel_canvases_enabled:
        raise ApiError("team_tier_cannot_create_channel_canvases")
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    if ch.canvas_id is not None:
        raise ApiError("channel_canvas_already_exists")
    answer = _new_canvas(state, params, kind="channel", channel=ch)
    ch.canvas_id = answer["canvas_id"]
    return answer


@_method("canvases.create")
def _canvas_create(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    if not state.canvases_enabled:
        raise ApiError("canvas_disabled_user_team")
    channel = state._channel_param(params, "channel_id") if _str(params, "channel_id") else None
    if channel is not None and BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    return _new_canvas(state, params, kind="standalone", channel=channel)


@_method("canvases.edit")
def _canvas_edit(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    canvas = state._canvases.get(_str(params, "canvas_id") or "")
    if canvas is None:
        raise ApiError("canvas_not_found")
    if not state.canvases_enabled:
        raise ApiError("canvas_disabled_user_team")
    changes = _json_field(params, "changes")
    if not isinstance(changes, list) or not changes:
        raise ApiError("invalid_arguments")
    for change in changes:
        if not isinstance(change, dict) or change.get("operation") not in (
            "replace",
            "insert_at_end",
        ):
            raise ApiError("invalid_arguments")
        markdown = _canvas_markdown(change)
        if change["operation"] == "replace" and not change.get("section_id"):
            canvas["markdown"] = markdown
        else:
            canvas["markdown"] += markdown
    canvas["edits"] += 1
    return {"ok": True}


@_method("canvases.access.set")
def _canvas_access_set(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    canvas = state._canvases.get(_str(params, "canvas_id") or "")
    if canvas is None:
        raise ApiError("canvas_not_found")
    level = _str(params, "access_level") or ""
    if level not in ("read", "write"):
        raise ApiError("invalid_arguments")
    channel_ids = _id_list(params.get("channel_ids"))
    user_ids = _id_list(params.get("user_ids"))
    if not channel_ids and not user_ids:
        raise ApiError("invalid_arguments")
    for channel_id in channel_ids:
        state._channel_param({"channel": channel_id})
        canvas["access"][channel_id] = level
    for user_id in user_ids:
        canvas["access"][user_id] = level
    return {"ok": True}


# ----- files (the upload flow of files_upload_v2) ----------------------------------------


@_method("files.getUploadURLExternal")
def _upload_url(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    filename = _str(params, "filename")
    if not filename:
        raise ApiError("invalid_arguments")
    length = _int(params, "length", 0)
    if length <= 0:
        raise ApiError("invalid_arguments")
    file_id = f"F{next(state._file_seq):010d}"
    state._files[file_id] = {"id": file_id, "name": filename, "length": length, "data": b""}
    # The server swaps in its own address; Slack's is https://files.slack.com/upload/v1/…
    return {"ok": True, "file_id": file_id, "upload_url": f"/upload/{file_id}"}


@_method("files.completeUploadExternal")
def _complete_upload(state: WorkspaceState, params: dict[str, Any]) -> dict[str, Any]:
    items = _json_field(params, "files")
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments")
    channel = (
        state._postable_channel({"channel": params["channel_id"]})
        if _str(params, "channel_id")
        else None
    )
    done = []
    for item in items:
        record = state._files.get(str(item.get("id", ""))) if isinstance(item, dict) else None
        if record is None or not record.get("data"):
            raise ApiError("file_not_found")
        record["title"] = str(item.get("title") or record["name"])
        record["permalink"] = f"{TEAM_URL}files/{BOT_USER_ID}/{record['id']}/{record['name']}"
        record["channels"] = [channel.id] if channel else []
        done.append(
            {
                "id": record["id"],
                "name": record["name"],
                "title": record["title"],
                "size": len(record["data"]),
                "permalink": record["permalink"],
                "url_private": record["permalink"],
            }
        )
    if channel is not None:
        message = _Message(
            ts=state._next_ts(),
            user=BOT_USER_ID,
            text=_str(params, "initial_comment") or "",
            files=copy.deepcopy(done),
        )
        state._append(channel, message)
    return {"ok": True, "files": done}


def known_methods() -> list[str]:
    """Web API methods the emulator implements."""
    return sorted(_METHODS)
