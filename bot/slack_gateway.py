"""The Slack Web API as warroom uses it: one place that knows method names and error codes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse

from bot.errors import ExternalServiceError

log = logging.getLogger(__name__)


class ChannelNameTakenError(Exception):
    """conversations.create said `name_taken`."""


# The metadata event type of warroom's own messages that carry a delivery marker.
MARKER_EVENT = "warroom_delivery"


def build_web_client(*, token: str, base_url: str) -> WebClient:
    """A WebClient that retries 429s after Retry-After, 5xx and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=5),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _error_code(error: SlackApiError) -> str:
    data = error.response.data if error.response is not None else None
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "unknown_error"


# Told of every Web API call `_call` makes: the method ("chat.postMessage") and Slack's error
# code when it failed (None when it succeeded).
CallObserver = Callable[[str, str | None], None]


def _ignore_call(method: str, error: str | None) -> None:
    return None


class SlackGateway:
    def __init__(self, client: WebClient, *, on_call: CallObserver = _ignore_call) -> None:
        self.client = client
        self._on_call = on_call
        self._dm_channels: dict[str, str] = {}

    def _call(
        self, method: Callable[..., SlackResponse], tolerate: tuple[str, ...] = (), **kwargs: Any
    ) -> dict[str, Any]:
        name = method.__name__.replace("_", ".")  # conversations_canvases_create → dotted
        try:
            response = method(**kwargs)
        except SlackApiError as error:
            code = _error_code(error)
            self._on_call(name, code)
            if code in tolerate:
                return {"ok": False, "error": code}
            raise ExternalServiceError(f"Slack {name} failed: {code}") from error
        except (SlackRequestError, OSError):
            self._on_call(name, "connection_error")
            raise
        self._on_call(name, None)
        data = response.data
        return data if isinstance(data, dict) else {}

    def create_channel(self, name: str, *, private: bool) -> str:
        """Create a channel and return its id; ChannelNameTakenError when the name is used."""
        result = self._call(
            self.client.conversations_create,
            tolerate=("name_taken",),
            name=name,
            is_private=private,
        )
        if result.get("error") == "name_taken":
            raise ChannelNameTakenError(name)
        return str(result["channel"]["id"])

    def set_topic(self, channel_id: str, topic: str) -> None:
        self._call(self.client.conversations_setTopic, channel=channel_id, topic=topic)

    def set_purpose(self, channel_id: str, purpose: str) -> None:
        self._call(self.client.conversations_setPurpose, channel=channel_id, purpose=purpose)

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        """Invite people; those already in the channel are no error."""
        if user_ids:
            self._call(
                self.client.conversations_invite,
                tolerate=("already_in_channel", "cant_invite_self"),
                channel=channel_id,
                users=user_ids,
            )

    def post(self, channel_id: str, message: dict[str, Any], *, marker: str | None = None) -> str:
        """Post a rendered message; returns its ts. A `marker` travels as message metadata,
        so a worker that lost track of whether it posted can look for it (`find_marked`)."""
        extra: dict[str, Any] = {}
        if marker is not None:
            extra["metadata"] = {"event_type": MARKER_EVENT, "event_payload": {"key": marker}}
        result = self._call(
            self.client.chat_postMessage, channel=channel_id, **_message_fields(message), **extra
        )
        return str(result["ts"])

    def find_marked(
        self, channel_id: str, marker: str, *, since: datetime, max_pages: int = 25
    ) -> str | None:
        """The ts of a message warroom posted with this marker since then, if it can tell:
        every page of the channel's history back to `since` (a busy audience channel can take
        hundreds of messages in the minutes a crashed worker's claim takes to go stale), up to
        `max_pages` pages of 200."""
        cursor: str | None = None
        for _ in range(max_pages):
            result = self._call(
                self.client.conversations_history,
                tolerate=("not_in_channel", "channel_not_found"),
                channel=channel_id,
                oldest=f"{since.timestamp():.6f}",
                include_all_metadata=True,
                limit=200,
                **({"cursor": cursor} if cursor else {}),
            )
            if not result.get("ok", True):
                return None
            for message in result.get("messages", []):
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == MARKER_EVENT and payload.get("key") == marker:
                    return str(message["ts"])
            cursor = (result.get("response_metadata") or {}).get("next_cursor") or None
            if not result.get("has_more") or cursor is None:
                return None
        log.warning("no marker %s in %d pages of %s; posting again", marker, max_pages, channel_id)
        return None

    def update(self, channel_id: str, ts: str, message: dict[str, Any]) -> None:
        self._call(self.client.chat_update, channel=channel_id, ts=ts, **_message_fields(message))

    def pin(self, channel_id: str, ts: str) -> None:
        self._call(
            self.client.pins_add, tolerate=("already_pinned",), channel=channel_id, timestamp=ts
        )

    def open_dm(self, user_id: str) -> str:
        """The id of the bot's direct-message channel with a person. Asked of Slack once per
        person: it does not change, and every war room of an alert storm DMs the same
        on-call people (conversations.open is Tier 3, about 50 calls a minute)."""
        channel = self._dm_channels.get(user_id)
        if channel is None:
            result = self._call(self.client.conversations_open, users=user_id)
            channel = self._dm_channels[user_id] = str(result["channel"]["id"])
        return channel

    def forget_dm(self, user_id: str) -> None:
        """Ask Slack again next time (a post to the remembered channel failed)."""
        self._dm_channels.pop(user_id, None)

    def post_ephemeral(self, channel_id: str, user_id: str, message: dict[str, Any]) -> None:
        self._call(
            self.client.chat_postEphemeral,
            channel=channel_id,
            user=user_id,
            **_message_fields(message),
        )

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call(self.client.views_open, trigger_id=trigger_id, view=view)

    def history(self, channel_id: str, limit: int = 200) -> tuple[list[dict[str, Any]], str | None]:
        """The channel's latest top-level messages, newest first, and Slack's error code
        instead when the bot may not read it (`not_in_channel`, `channel_not_found`)."""
        result = self._call(
            self.client.conversations_history,
            tolerate=("not_in_channel", "channel_not_found"),
            channel=channel_id,
            limit=limit,
        )
        if not result.get("ok", True):
            return [], str(result["error"])
        return [dict(message) for message in result.get("messages", [])], None

    # -- the postmortem: a whole war room read, canvases, a Markdown file ---------------

    # Why Slack may refuse a canvas: the plan or an admin setting, a channel canvas that
    # exists already, a canvas deleted since. The postmortem then tries its next way.
    CANVAS_REFUSALS = (
        "canvas_disabled_user_team",
        "team_tier_cannot_create_channel_canvases",
        "channel_canvas_already_exists",
        "channel_canvas_creation_failed",
        "canvas_creation_failed",
        "canvas_tab_creation_failed",
        "free_team_canvas_tab_already_exists",
        "free_teams_cannot_create_non_tabbed_canvases",
        "canvas_not_found",
        "canvas_editing_failed",
        "restricted_action",
        "not_in_channel",
        "missing_scope",
        "not_allowed_token_type",
        "access_denied",
        "unknown_method",
    )

    def workspace(self) -> dict[str, str]:
        """The workspace's address (`url`, `https://team.slack.com/`) and `team_id`, for
        links, and the bot's own `user_id`."""
        result = self._call(self.client.auth_test)
        return {
            "url": str(result.get("url") or "https://slack.com/"),
            "team_id": str(result.get("team_id") or ""),
            "user_id": str(result.get("user_id") or ""),
        }

    def message_pages(
        self, channel_id: str, *, thread_ts: str | None = None, page_size: int = 200
    ) -> tuple[str | None, Iterator[list[dict[str, Any]]]]:
        """Every top-level message of a channel, newest first (or every message of one
        thread, oldest first), a page at a time, following Slack's cursors; the client's
        retry handler waits out 429s. First the error code when the bot may not read it
        (`not_in_channel`, `channel_not_found`, `thread_not_found`): then there are no pages."""
        method = (
            self.client.conversations_replies if thread_ts else self.client.conversations_history
        )
        arguments: dict[str, Any] = {"channel": channel_id, "limit": page_size}
        if thread_ts:
            arguments["ts"] = thread_ts
        try:
            first = method(**arguments)
        except SlackApiError as error:
            code = _error_code(error)
            if code in ("not_in_channel", "channel_not_found", "thread_not_found"):
                return code, iter(())
            raise ExternalServiceError(f"Slack {method.__name__} failed: {code}") from error

        def pages() -> Iterator[list[dict[str, Any]]]:
            try:
                # A SlackResponse iterates over itself, then over each next_cursor's page.
                for page in first:
                    yield [dict(message) for message in page.get("messages", [])]
            except SlackApiError as error:
                code = _error_code(error)
                raise ExternalServiceError(f"Slack {method.__name__} failed: {code}") from error

        return None, pages()

    def pinned_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The messages pinned in a channel (none when the bot may not see them)."""
        result = self._call(
            self.client.pins_list,
            tolerate=("not_in_channel", "channel_not_found"),
            channel=channel_id,
        )
        return [
            dict(item["message"])
            for item in result.get("items", [])
            if item.get("type") == "message" and item.get("message")
        ]

    def create_channel_canvas(
        self, channel_id: str, *, title: str, markdown: str
    ) -> dict[str, Any]:
        """The channel's own canvas: Slack's answer, ok false with the reason when refused."""
        return self._call(
            self.client.conversations_canvases_create,
            tolerate=self.CANVAS_REFUSALS,
            channel_id=channel_id,
            title=title,
            document_content={"type": "markdown", "markdown": markdown},
        )

    def create_canvas(self, *, title: str, markdown: str, channel_id: str) -> dict[str, Any]:
        """A canvas tabbed in the channel (so its members can open it); ok false if refused."""
        return self._call(
            self.client.canvases_create,
            tolerate=self.CANVAS_REFUSALS,
            title=title,
            channel_id=channel_id,
            document_content={"type": "markdown", "markdown": markdown},
        )

    def replace_canvas(self, canvas_id: str, markdown: str) -> dict[str, Any]:
        """Replace a canvas's whole content; ok false when refused (deleted, say)."""
        return self._call(
            self.client.canvases_edit,
            tolerate=self.CANVAS_REFUSALS,
            canvas_id=canvas_id,
            changes=[
                {
                    "operation": "replace",
                    "document_content": {"type": "markdown", "markdown": markdown},
                }
            ],
        )

    def upload_text_file(
        self, channel_id: str, *, filename: str, title: str, content: str, comment: str
    ) -> dict[str, Any]:
        """Share a text file in the channel (files_upload_v2: upload URL, upload, complete);
        returns the file's id and permalink."""
        try:
            result = self.client.files_upload_v2(
                channel=channel_id,
                filename=filename,
                title=title,
                content=content.encode("utf-8"),
                initial_comment=comment,
            )
        except SlackApiError as error:
            raise ExternalServiceError(f"Slack file upload failed: {_error_code(error)}") from error
        except SlackRequestError as error:
            raise ExternalServiceError(f"Slack file upload failed: {error}") from error
        file = dict(result.get("file") or {})
        return {"id": str(file.get("id", "")), "permalink": str(file.get("permalink", ""))}


def _message_fields(message: dict[str, Any]) -> dict[str, Any]:
    """Only the fields chat.* accepts from a rendered template."""
    return {key: message[key] for key in ("text", "blocks") if key in message}
