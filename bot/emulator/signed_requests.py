"""Correctly signed Slack requests, as Slack would send them to /slack/events (tests, demo)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0EMULATOR"
_counter = itertools.count(1)


def new_trigger_id() -> str:
    return f"{next(_counter)}.{int(time.time())}.trigger"


class SlackSender:
    """Posts slash commands, button clicks and view submissions to a running warroom."""

    def __init__(self, base_url: str, *, response_url: str, secret: str = SIGNING_SECRET) -> None:
        self.base_url = base_url
        self.response_url = response_url
        self.verifier = SignatureVerifier(secret)
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def signed_headers(
        self,
        body: str,
        *,
        content_type: str,
        timestamp: int | None = None,
        retry_num: int | None = None,
    ) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(self.verifier.generate_signature(timestamp=ts, body=body)),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return headers

    def post(self, body: str, headers: dict[str, str]) -> httpx.Response:
        return self.http.post("/slack/events", content=body.encode(), headers=headers)

    def command_body(
        self,
        text: str,
        *,
        user_id: str = "U0REPORTER",
        channel_id: str = "C0GENERAL",
        trigger_id: str | None = None,
    ) -> str:
        return urlencode(
            {
                "token": "deprecated",
                "team_id": TEAM_ID,
                "team_domain": "emulator",
                "channel_id": channel_id,
                "channel_name": "general",
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": "/incident",
                "text": text,
                "api_app_id": "A0WARROOM",
                "response_url": self.response_url,
                "trigger_id": trigger_id or new_trigger_id(),
            }
        )

    def command(
        self,
        text: str,
        *,
        user_id: str = "U0REPORTER",
        channel_id: str = "C0GENERAL",
        trigger_id: str | None = None,
        retry_num: int | None = None,
    ) -> httpx.Response:
        body = self.command_body(
            text, user_id=user_id, channel_id=channel_id, trigger_id=trigger_id
        )
        return self.post(
            body,
            self.signed_headers(
                body, content_type="application/x-www-form-urlencoded", retry_num=retry_num
            ),
        )

    def interactive(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(
            body, self.signed_headers(body, content_type="application/x-www-form-urlencoded")
        )

    def click(
        self,
        *,
        action_id: str,
        value: str,
        channel_id: str,
        user_id: str = "U0REPORTER",
        block_id: str = "b",
        selected_option: dict[str, Any] | None = None,
        message_ts: str = "1700000000.000100",
    ) -> httpx.Response:
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": str(time.time()),
        }
        if selected_option is not None:
            action.update(type="static_select", selected_option=selected_option)
        else:
            action.update(type="button", value=value)
        return self.interactive(
            {
                "type": "block_actions",
                "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
                "team": {"id": TEAM_ID, "domain": "emulator"},
                "api_app_id": "A0WARROOM",
                "trigger_id": new_trigger_id(),
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel_id,
                },
                "channel": {"id": channel_id, "name": "war-room"},
                "message": {"ts": message_ts, "text": "card"},
                "response_url": self.response_url,
                "actions": [action],
            }
        )

    def submit_view(
        self,
        view: dict[str, Any],
        values: dict[str, Any],
        *,
        user_id: str = "U0REPORTER",
        view_id: str = "V0DECLARE1",
    ) -> httpx.Response:
        return self.interactive(
            {
                "type": "view_submission",
                "team": {"id": TEAM_ID, "domain": "emulator"},
                "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
                "api_app_id": "A0WARROOM",
                "trigger_id": new_trigger_id(),
                "view": {
                    **view,
                    "id": view_id,
                    "team_id": TEAM_ID,
                    "hash": "h1",
                    "state": {"values": values},
                },
                "response_urls": [],
            }
        )


def declare_form_values(
    *,
    title: str,
    severity: str | None,
    kind: str = "let_warroom_decide",
    description: str = "",
    affected: str = "",
    flags: tuple[str, ...] = (),
    ai_act: str | None = None,
) -> dict[str, Any]:
    """`view.state.values` as Slack sends them when someone fills in the declaration form."""
    from bot.ids import ActionId, BlockId

    def text_input(value: str) -> dict[str, Any]:
        return {"type": "plain_text_input", "value": value}

    def select(value: str) -> dict[str, Any]:
        return {"type": "static_select", "selected_option": {"value": value}}

    values: dict[str, Any] = {
        BlockId.DECLARE_TITLE.value: {ActionId.DECLARE_TITLE.value: text_input(title)},
        BlockId.DECLARE_DESCRIPTION.value: {
            ActionId.DECLARE_DESCRIPTION.value: text_input(description)
        },
        BlockId.DECLARE_TYPE.value: {ActionId.DECLARE_TYPE.value: select(kind)},
        BlockId.DECLARE_AFFECTED.value: {ActionId.DECLARE_AFFECTED.value: text_input(affected)},
        BlockId.DECLARE_FLAGS.value: {
            ActionId.DECLARE_FLAGS.value: {
                "type": "checkboxes",
                "selected_options": [{"value": flag} for flag in flags],
            }
        },
    }
    if severity is not None:
        values[BlockId.DECLARE_SEVERITY.value] = {ActionId.DECLARE_SEVERITY.value: select(severity)}
    if ai_act is not None:
        values[BlockId.DECLARE_AI_ACT.value] = {ActionId.DECLARE_AI_ACT.value: select(ai_act)}
    return values
