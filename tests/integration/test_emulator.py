"""The Slack emulator driven by the real slack_sdk WebClient over HTTP (no mocks)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from bot.emulator import BOT_USER_ID, GENERAL_CHANNEL_ID, SlackEmulator, write_transcript

pytestmark = pytest.mark.integration


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emu:
        yield emu


@pytest.fixture
def client(emulator: SlackEmulator) -> WebClient:
    return WebClient(token="xoxb-test", base_url=emulator.api_url)


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return str(info.value.response["error"])


def incident_blocks(title: str = "SEV1: latency") -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Status:* investigating"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "ack",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                }
            ],
        },
    ]


def post_raw(url: str, body: bytes, content_type: str, token: str = "xoxb-raw") -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


# ----- channels --------------------------------------------------------------------------


def test_a_new_channel_has_the_bot_as_its_only_member(
    client: WebClient, emulator: SlackEmulator
) -> None:
    created = client.conversations_create(name="inc-42-latency", is_private=True)
    channel = created["channel"]
    assert channel["id"].startswith("C")
    assert channel["name"] == "inc-42-latency"
    assert channel["is_private"] is True
    assert channel["creator"] == BOT_USER_ID
    summary = emulator.state.channel_by_name("#inc-42-latency")
    assert summary is not None
    assert (summary["id"], summary["members"]) == (channel["id"], [BOT_USER_ID])


def test_auth_test_names_the_bot(client: WebClient) -> None:
    answer = client.auth_test()
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == (
        "T0EMULATOR",
        BOT_USER_ID,
        "B0WARROOM",
    )


def test_taken_channel_name_is_refused(client: WebClient) -> None:
    client.conversations_create(name="inc-1")
    assert error_of(lambda: client.conversations_create(name="inc-1")) == "name_taken"


def test_archived_channel_names_stay_taken(client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-old")["channel"]["id"]
    client.conversations_archive(channel=channel_id)
    assert error_of(lambda: client.conversations_create(name="inc-old")) == "name_taken"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("Incident 42", "invalid_name_specials"),
        ("inc.42", "invalid_name_specials"),
        ("INC-42", "invalid_name_specials"),
        ("--", "invalid_name_punctuation"),
    ],
)
def test_channel_names_follow_slack_rules(client: WebClient, name: str, error: str) -> None:
    assert error_of(lambda: client.conversations_create(name=name)) == error


def test_an_80_character_name_is_accepted(client: WebClient) -> None:
    assert client.conversations_create(name="a" * 80)["ok"]


def test_invite_topic_purpose_pin_update_and_history_work_together(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = client.conversations_create(name="inc-7", is_private=True)["channel"]["id"]
    client.conversations_invite(channel=channel_id, users=["U100", "U200"])
    assert client.conversations_setTopic(channel=channel_id, topic="SEV1 | IC <@U100>")["ok"]
    client.conversations_setPurpose(channel=channel_id, purpose="Latency incident")
    first = client.chat_postMessage(
        channel=channel_id, text="Incident declared", blocks=incident_blocks()
    )
    second = client.chat_postMessage(channel=channel_id, text="Update 1")
    client.pins_add(channel=channel_id, timestamp=first["ts"])
    client.chat_update(
        channel=channel_id,
        ts=first["ts"],
        text="Incident resolved",
        blocks=incident_blocks("Resolved"),
    )

    info = client.conversations_info(channel=channel_id)["channel"]
    assert info["topic"]["value"] == "SEV1 | IC <@U100>"
    assert info["purpose"]["value"] == "Latency incident"
    assert info["num_members"] == 3

    history = client.conversations_history(channel=channel_id)
    assert [m["ts"] for m in history["messages"]] == [second["ts"], first["ts"]]
    assert history["has_more"] is False
    assert history["messages"][1]["text"] == "Incident resolved"
    assert history["messages"][1]["edited"]["user"] == BOT_USER_ID
    assert client.conversations_history(channel=channel_id, limit=1)["has_more"] is True
    assert client.conversations_history(channel=channel_id, oldest=first["ts"])["messages"] == [
        history["messages"][0]
    ]

    pinned = client.pins_list(channel=channel_id)["items"]
    assert [item["message"]["ts"] for item in pinned] == [first["ts"]]
    assert error_of(lambda: client.pins_add(channel=channel_id, timestamp=first["ts"])) == (
        "already_pinned"
    )

    [stored_first, stored_second] = emulator.state.messages(channel_id)
    assert stored_first["edit_count"] == 1
    assert stored_first["pinned"] is True
    assert stored_first["blocks"][0]["text"]["text"] == "Resolved"
    assert stored_second["edit_count"] == 0
    summary = emulator.state.channel_by_name("inc-7")
    assert summary is not None
    assert summary["members"] == [BOT_USER_ID, "U100", "U200"]
    assert summary["pins"] == [first["ts"]]


def test_invite_reports_slack_errors(client: WebClient, emulator: SlackEmulator) -> None:
    channel_id = client.conversations_create(name="inc-8")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users="U1")
    assert error_of(lambda: client.conversations_invite(channel=channel_id, users="U1")) == (
        "already_in_channel"
    )
    # Some new and some present: the new ones are added.
    assert client.conversations_invite(channel=channel_id, users="U1,U2")["ok"]
    assert error_of(lambda: client.conversations_invite(channel=channel_id, users=BOT_USER_ID)) == (
        "cant_invite_self"
    )
    assert error_of(lambda: client.conversations_invite(channel=channel_id, users="C123")) == (
        "user_not_found"
    )
    assert error_of(lambda: client.conversations_invite(channel="C999", users="U1")) == (
        "channel_not_found"
    )
    outside = emulator.state.add_channel("random", bot_is_member=False)
    assert error_of(lambda: client.conversations_invite(channel=outside, users="U1")) == (
        "not_in_channel"
    )
    client.conversations_join(channel=outside)
    assert client.conversations_invite(channel=outside, users="U1")["ok"]


def test_topic_over_250_characters_is_too_long(client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-9")["channel"]["id"]
    assert error_of(lambda: client.conversations_setTopic(channel=channel_id, topic="x" * 251)) == (
        "too_long"
    )


def test_update_of_a_missing_message_is_message_not_found(client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-10")["channel"]["id"]
    assert error_of(lambda: client.chat_update(channel=channel_id, ts="1.000001", text="x")) == (
        "message_not_found"
    )


def test_posting_needs_text_or_blocks_and_a_visible_channel(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = client.conversations_create(name="inc-11")["channel"]["id"]
    with pytest.warns(UserWarning):  # slack_sdk warns about the missing text, then sends
        assert error_of(lambda: client.chat_postMessage(channel=channel_id)) == "no_text"
    assert error_of(lambda: client.chat_postMessage(channel="C404", text="x")) == (
        "channel_not_found"
    )
    public = emulator.state.add_channel("announcements", bot_is_member=False)
    assert client.chat_postMessage(channel=public, text="chat:write.public")["ok"]


def test_threads_stay_out_of_history_but_show_in_replies(client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-12")["channel"]["id"]
    root = client.chat_postMessage(channel=channel_id, text="root")["ts"]
    reply = client.chat_postMessage(channel=channel_id, text="reply", thread_ts=root)["ts"]
    history = client.conversations_history(channel=channel_id)["messages"]
    assert [m["ts"] for m in history] == [root]
    assert history[0]["reply_count"] == 1
    replies = client.conversations_replies(channel=channel_id, ts=root)["messages"]
    assert [m["ts"] for m in replies] == [root, reply]


def test_ephemeral_messages_are_kept_out_of_history(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = client.conversations_create(name="inc-13")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users="U5")
    answer = client.chat_postEphemeral(channel=channel_id, user="U5", text="only you")
    assert answer["message_ts"]
    assert client.conversations_history(channel=channel_id)["messages"] == []
    assert [e["user"] for e in emulator.state.ephemerals(channel_id)] == ["U5"]
    assert error_of(lambda: client.chat_postEphemeral(channel=channel_id, user="U6", text="x")) == (
        "user_not_in_channel"
    )


def test_posting_to_a_user_id_lands_in_their_dm(client: WebClient, emulator: SlackEmulator) -> None:
    answer = client.chat_postMessage(channel="U777", text="You are the incident commander")
    dm = emulator.state.dm_channel("U777")
    assert dm is not None and dm.startswith("D")
    assert answer["channel"] == dm
    assert client.conversations_open(users="U777")["channel"]["id"] == dm
    assert [m["text"] for m in emulator.state.messages(dm)] == ["You are the incident commander"]


def test_general_exists_and_everyone_can_get_ephemerals_there(client: WebClient) -> None:
    # Slash commands in fixtures come from #general; the bot answers there ephemerally.
    info = client.conversations_info(channel=GENERAL_CHANNEL_ID)["channel"]
    assert (info["name"], info["is_general"], info["is_member"]) == ("general", True, False)
    assert client.chat_postEphemeral(channel=GENERAL_CHANNEL_ID, user="U0ANY", text="hi")["ok"]
    assert error_of(lambda: client.conversations_history(channel=GENERAL_CHANNEL_ID)) == (
        "not_in_channel"
    )


def test_permalinks_point_at_the_message(client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-14")["channel"]["id"]
    ts = client.chat_postMessage(channel=channel_id, text="x")["ts"]
    link = client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"]
    assert link.endswith(f"/archives/{channel_id}/p{ts.replace('.', '')}")


def test_users_info_answers_for_seeded_and_unknown_users(
    client: WebClient, emulator: SlackEmulator
) -> None:
    emulator.state.add_user("U42", "ada", "Ada Lovelace")
    assert client.users_info(user="U42")["user"]["real_name"] == "Ada Lovelace"
    assert client.users_info(user="W9")["user"]["tz"] == "Etc/UTC"
    assert error_of(lambda: client.users_info(user="nobody")) == "user_not_found"


# ----- encodings, auth, recording --------------------------------------------------------


def test_slack_sdk_form_and_json_bodies_are_both_parsed(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = client.conversations_create(name="inc-20", is_private=True)["channel"]["id"]
    client.conversations_invite(channel=channel_id, users=["U1", "U2"])
    client.chat_postMessage(channel=channel_id, text="x", blocks=incident_blocks())
    [create] = emulator.calls("conversations.create")
    [invite] = emulator.calls("conversations.invite")
    [post] = emulator.calls("chat.postMessage")
    # slack_sdk sends these two form-encoded (booleans as "1", lists comma-joined)...
    assert create.params == {"name": "inc-20", "is_private": "1"}
    assert invite.params["users"] == "U1,U2"
    # ...and chat.postMessage as JSON, with blocks as a real list.
    assert post.params["blocks"] == incident_blocks()


def test_form_encoded_blocks_arrive_as_json_strings_and_are_decoded(
    emulator: SlackEmulator,
) -> None:
    channel_id = emulator.state.add_channel("ops")
    form = urllib.parse.urlencode(
        {"channel": channel_id, "text": "x", "blocks": json.dumps(incident_blocks())}
    ).encode()
    answer = post_raw(
        emulator.api_url + "chat.postMessage", form, "application/x-www-form-urlencoded"
    )
    assert answer["ok"], answer
    assert emulator.calls("chat.postMessage")[0].params["blocks"] == incident_blocks()
    assert emulator.state.messages(channel_id)[0]["blocks"] == incident_blocks()


def test_calls_without_a_token_are_not_authed(emulator: SlackEmulator) -> None:
    anonymous = WebClient(base_url=emulator.api_url)
    assert error_of(anonymous.auth_test) == "not_authed"
    wrong = WebClient(token="xoxa-nope", base_url=emulator.api_url)
    assert error_of(wrong.auth_test) == "invalid_auth"
    form = urllib.parse.urlencode({"token": "xoxp-user"}).encode()
    request = urllib.request.Request(emulator.api_url + "auth.test", data=form)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["ok"] is True


def test_unknown_methods_are_refused_and_recorded(
    client: WebClient, emulator: SlackEmulator
) -> None:
    assert error_of(lambda: client.api_call("reactions.explode")) == "unknown_method"
    assert [c.method for c in emulator.calls()] == ["reactions.explode"]


def test_reset_calls_forgets_the_log_but_keeps_the_workspace(
    client: WebClient, emulator: SlackEmulator
) -> None:
    client.conversations_create(name="inc-21")
    emulator.reset_calls()
    assert emulator.calls() == []
    assert emulator.state.channel_by_name("inc-21") is not None


def test_response_url_posts_are_recorded_and_mirrored(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = client.conversations_create(name="inc-22")["channel"]["id"]
    url = emulator.response_url("cmd-1", channel=channel_id, user="U9")
    WebhookClient(url).send(text="Only you can see this")
    WebhookClient(url).send(text="Everyone sees this", response_type="in_channel")
    [first, second] = emulator.calls("response_url")
    assert first.params["text"] == "Only you can see this"
    assert first.status == 200 and first.ok
    assert [e["text"] for e in emulator.state.ephemerals(channel_id)] == ["Only you can see this"]
    assert [m["text"] for m in emulator.state.messages(channel_id)] == ["Everyone sees this"]
    assert second.params["response_url_key"] == "cmd-1"


def test_latency_is_added_to_every_call() -> None:
    with SlackEmulator(latency=0.05) as slow:
        client = WebClient(token="xoxb-test", base_url=slow.api_url)
        started = time.monotonic()
        client.auth_test()
        assert time.monotonic() - started >= 0.05


# ----- faults ----------------------------------------------------------------------------


def test_rate_limited_create_is_retried_and_succeeds(emulator: SlackEmulator) -> None:
    # RateLimitErrorRetryHandler sleeps int(Retry-After) + random() s, so 0 keeps this < 1 s.
    emulator.inject_fault("conversations.create", status=429, retry_after=0, times=1)
    client = WebClient(
        token="xoxb-test",
        base_url=emulator.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    started = time.monotonic()
    assert client.conversations_create(name="inc-30")["ok"]
    assert time.monotonic() - started < 2
    assert [c.status for c in emulator.calls("conversations.create")] == [429, 200]
    assert emulator.calls("conversations.create")[0].response["error"] == "ratelimited"


def test_rate_limit_without_a_retry_handler_surfaces_retry_after(
    client: WebClient, emulator: SlackEmulator
) -> None:
    emulator.inject_fault("conversations.create", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.conversations_create(name="inc-31")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] == "7"
    # The fault was used up: the next call goes through.
    assert client.conversations_create(name="inc-31")["ok"]


def test_server_error_raises_without_a_server_error_retry_handler(
    client: WebClient, emulator: SlackEmulator
) -> None:
    emulator.inject_fault("chat.postMessage", status=500, retry_after=None)
    channel_id = emulator.state.add_channel("ops")
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=channel_id, text="x")
    assert info.value.response.status_code == 500
    assert info.value.response["error"] == "internal_error"


def test_server_error_is_retried_by_the_server_error_retry_handler(
    emulator: SlackEmulator,
) -> None:
    emulator.inject_fault("chat.postMessage", status=500, retry_after=None)
    channel_id = emulator.state.add_channel("ops")
    client = WebClient(
        token="xoxb-test",
        base_url=emulator.api_url,
        retry_handlers=[
            ServerErrorRetryHandler(
                max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
            )
        ],
    )
    assert client.chat_postMessage(channel=channel_id, text="x")["ok"]
    assert [c.status for c in emulator.calls("chat.postMessage")] == [500, 200]


# ----- Block Kit and views -----------------------------------------------------------------


def test_invalid_blocks_are_refused_with_slacks_error(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = emulator.state.add_channel("ops")
    bad = [{"type": "header", "text": {"type": "mrkdwn", "text": "*not allowed*"}}]
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=channel_id, text="x", blocks=bad)
    assert info.value.response["error"] == "invalid_blocks"
    assert any("plain_text" in e for e in info.value.response["errors"])
    [failure] = emulator.validation_failures()
    assert failure.method == "chat.postMessage"
    assert emulator.state.messages(channel_id) == []


def test_blocks_without_a_text_fallback_are_refused(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = emulator.state.add_channel("ops")
    with pytest.warns(UserWarning):  # slack_sdk itself only warns
        error = error_of(
            lambda: client.chat_postMessage(channel=channel_id, blocks=incident_blocks())
        )
    assert error == "invalid_blocks"


def test_a_valid_message_leaves_no_validation_failures(
    client: WebClient, emulator: SlackEmulator
) -> None:
    channel_id = emulator.state.add_channel("ops")
    client.chat_postMessage(channel=channel_id, text="x", blocks=incident_blocks())
    assert emulator.validation_failures() == []


MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "external_id": "declare-1",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_views_open_stores_the_view_and_update_replaces_it(
    client: WebClient, emulator: SlackEmulator
) -> None:
    assert error_of(lambda: client.views_open(trigger_id="", view=MODAL)) == "invalid_arguments"
    opened = client.views_open(trigger_id="123.456.abc", view=MODAL)["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    assert opened["callback_id"] == "declare"
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Declared"}}
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert error_of(
        lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)
    ) == ("hash_conflict")
    by_external = client.views_update(external_id="declare-1", view=MODAL)["view"]
    assert by_external["id"] == opened["id"]
    assert error_of(lambda: client.views_update(view_id="V404", view=MODAL)) == "not_found"
    [stored] = emulator.state.views()
    assert stored["title"]["text"] == "Declare incident"


def test_a_modal_with_inputs_but_no_submit_is_refused(client: WebClient) -> None:
    view = {k: v for k, v in MODAL.items() if k != "submit"}
    assert error_of(lambda: client.views_open(trigger_id="1.2.3", view=view)) == "invalid_blocks"


# ----- transcript --------------------------------------------------------------------------


def test_transcript_has_one_file_per_conversation_and_every_call(
    client: WebClient, emulator: SlackEmulator, tmp_path: Path
) -> None:
    emulator.state.add_user("U100", "ada", "Ada Lovelace")
    channel_id = client.conversations_create(name="inc-50")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users="U100")
    client.conversations_setTopic(channel=channel_id, topic="SEV1")
    ts = client.chat_postMessage(
        channel=channel_id, text="Incident declared", blocks=incident_blocks()
    )["ts"]
    client.pins_add(channel=channel_id, timestamp=ts)
    for n in (1, 2):
        client.chat_update(
            channel=channel_id,
            ts=ts,
            text=f"Update {n}",
            blocks=[
                *incident_blocks(f"Update {n}"),
                {"type": "divider"},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "by warroom"}]},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "Details"},
                    "fields": [{"type": "mrkdwn", "text": "*Severity*\nSEV1"}],
                },
            ],
        )
    client.chat_postEphemeral(channel=channel_id, user="U100", text="Psst")
    client.chat_postMessage(channel="U100", text="You are IC")

    paths = write_transcript(emulator, tmp_path)

    assert sorted(p.name for p in paths) == [
        "calls.jsonl",
        "dm-U100.md",
        "general.md",
        "inc-50.md",
    ]
    channel_md = (tmp_path / "inc-50.md").read_text()
    assert "## Update 2" in channel_md
    assert "(edited 2 times)" in channel_md
    assert "pinned" in channel_md
    assert "[Acknowledge]" in channel_md
    assert "\n---\n" in channel_md
    assert "_by warroom_" in channel_md
    assert "- *Severity*" in channel_md
    assert "> Update 2" in channel_md
    assert "**Topic:** SEV1" in channel_md
    assert "(only visible to @ada)" in channel_md
    assert channel_md.index("Psst") > channel_md.index("Update 2")
    assert "You are IC" in (tmp_path / "dm-U100.md").read_text()
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(lines) == len(emulator.calls())
    assert json.loads(lines[0])["method"] == "conversations.create"
