"""`warroom demo`: a scripted incident, offline, through the real HTTP endpoints.

The bot runs against the bundled Slack emulator on an embedded SQLite file; every step is a
correctly signed Slack request. Deadlines are not waited for: the bot's clock (and the
emulator's) is the demo's, which a step moves forward before running the deadline sweep.
Incident #1 runs from declaration through containment, stakeholder messages, root cause and
recovery to its postmortem, whose newest version lands in the output folder as
`postmortem-incident-1.md`. Last, the `prompt-leak` drill is played end to end (its injects
land as the demo moves the clock through their offsets, the team contains it and tells
#drills in time); its postmortem and its drill report land as `postmortem-drill.md` and
`drill-report.md`. Later capabilities add steps to `demo_script()`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.app import Warroom, create_app
from bot.config import WarroomConfig, parse_config
from bot.domain.drills import Inject, InjectKind, is_drill
from bot.domain.incident import Incident
from bot.domain.notifications import NotificationRecord, NotificationState
from bot.domain.reminders import ReminderKind
from bot.domain.vocabulary import Audience, NotificationTier
from bot.emulator.gateway import ModelGateway
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import TEAM_ID, SlackSender, declare_form_values
from bot.emulator.state import GENERAL_CHANNEL_ID, WorkspaceState
from bot.emulator.transcript import render_blocks, write_transcript
from bot.ids import ActionId, BlockId, CallbackId
from bot.server import BackgroundServer
from bot.services.drills import packaged_scenarios
from bot.services.postmortem import read_latest
from bot.settings import Settings
from storage.db import build_engine, upgrade
from storage.unit_of_work import UnitOfWorkFactory

PEOPLE = {
    "U0DEMOREPORTER": "Riya Patel (on-call SRE)",
    "U0DEMOIC": "Marcus Lee (incident commander)",
    "U0DEMOSAFETY": "Ana Souza (AI safety lead)",
    "U0DEMOSAFETY2": "Jonas Berg (AI safety, second)",
    "U0DEMOSEC": "Priya Nair (security analyst)",
    "U0DEMODATA": "Chen Wei (data scientist)",
    "U0DEMOCOMMS": "Sam Okafor (communications lead)",
    "U0DEMOLEGAL": "Elena Rossi (legal advisor)",
}

# The channel each audience's messages go to. Affected users, customer support leads, the PR
# team and the regulator are outside the war room's trust: what they get is redacted.
AUDIENCE_CHANNELS = {
    Audience.EXECUTIVE_TEAM: "exec-incidents",
    Audience.SECURITY_TEAM: "security-team",
    Audience.LEGAL_TEAM: "legal-team",
    Audience.COMMUNICATIONS_TEAM: "communications-team",
    Audience.DATA_PROTECTION_OFFICER: "data-protection-officer",
    Audience.PR_TEAM: "pr-team",
    Audience.AFFECTED_USERS: "affected-users",
    Audience.CUSTOMER_SUPPORT_LEADS: "customer-support-leads",
    Audience.TECHNICAL_TEAM: "technical-team",
    Audience.REGULATORY_BODY: "regulatory-body",
}
DEMO_CONTACT = "Data protection office, privacy@example.com"


class DemoClock:
    """warroom's clock and the emulator's: real time plus however far the demo has jumped, so
    deadlines 15 minutes to 24 hours away come due in a second (and Slack's timestamps in
    the transcript agree with what warroom says)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        return time.time() + self._offset.total_seconds()

    def move_to(self, moment: datetime) -> None:
        """Jump forward to `moment`; never back (Slack timestamps only grow)."""
        self._offset = max(self._offset, moment - datetime.now(UTC))


@dataclass
class DemoContext:
    """What a step can use: the served bot, the emulator and the signed-request sender."""

    app: Warroom
    emulator: SlackEmulator
    slack: SlackSender
    general_channel: str
    gateway: ModelGateway | None = None
    webhook_token: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    war_room: str = ""
    clock: DemoClock = field(default_factory=DemoClock)
    incident_id: int = 0  # incident #1's database id
    drill_room: str = ""  # the drill's war room
    drill_id: int = 0  # the drill's incident id
    drill_number: int = 0

    def webhook(self, step: str, route: str, body: Any) -> httpx.Response:
        """POST to a /webhooks route as a monitor would, with the bearer token."""
        response = self.slack.http.post(
            f"/webhooks/{route}",
            json=body,
            headers={"Authorization": f"Bearer {self.webhook_token}"},
        )
        self.record(step, f"POST /webhooks/{route}", response, accept=(202,))
        return response

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 20) -> None:
        """Wait for work that runs after Slack's ack (war-room opening, card updates)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise RuntimeError(f"demo: timed out waiting for {what}")

    def record(
        self, step: str, request: str, response: httpx.Response, accept: tuple[int, ...] = (200,)
    ) -> None:
        body: Any = response.text
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
        self.log.append(
            {"step": step, "request": request, "status": response.status_code, "reply": body}
        )
        if response.status_code not in accept:
            raise RuntimeError(f"demo: {step} answered HTTP {response.status_code}: {body}")

    def command(
        self, step: str, text: str, *, user: str, channel: str, full: bool = False
    ) -> httpx.Response:
        """A signed `/incident` command; `full` keeps the whole reply (its blocks) for
        replies.md, not only its one-line text."""
        response = self.slack.command(text, user_id=user, channel_id=channel)
        self.record(step, f"/incident {text}", response)
        if full:
            self.log[-1]["full"] = True
        return response

    def click(
        self,
        step: str,
        label: str,
        *,
        action_id: str,
        value: str,
        user: str,
        message_ts: str | None = None,
        channel: str | None = None,
    ) -> httpx.Response:
        """A signed button click in the war room (incident #1's unless `channel`). With
        `message_ts`, what warroom answers through the response_url (replacing the message
        clicked) lands in the transcript."""
        room = channel or self.war_room
        previous = self.slack.response_url
        if message_ts is not None:
            self.slack.response_url = self.emulator.response_url(
                f"click-{message_ts}", channel=room, user=user, message_ts=message_ts
            )
        try:
            if message_ts is None:
                response = self.slack.click(
                    action_id=action_id, value=value, channel_id=room, user_id=user
                )
            else:
                response = self.slack.click(
                    action_id=action_id,
                    value=value,
                    channel_id=room,
                    user_id=user,
                    message_ts=message_ts,
                )
        finally:
            self.slack.response_url = previous
        self.record(step, f"button: {label}", response)
        return response

    def note(self, step: str, what: str, lines: list[str]) -> None:
        """Something no one typed (the demo moving the clock): for replies.md."""
        self.log.append({"step": step, "note": what, "lines": lines})

    def say(self, step: str, text: str, *, user: str) -> str:
        """A person writes in incident #1's war room (a plain message, no command: warroom
        reads it when it builds the postmortem); returns the message's ts."""
        ts = self.emulator.state.add_message(self.war_room, text, user=user)
        self.log.append({"step": step, "said": text, "who": user})
        return ts

    def react(self, step: str, ts: str, reaction: str, *, user: str, author: str) -> None:
        """Someone reacts to a war-room message: Slack shows the reaction and delivers
        `reaction_added` to warroom through the Events API, signed."""
        self.emulator.state.add_reaction(self.war_room, ts, reaction, user=user)
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item_user": author,
            "item": {"type": "message", "channel": self.war_room, "ts": ts},
            "event_ts": f"{self.clock.timestamp():.6f}",
        }
        body = json.dumps(
            {
                "token": "demo",
                "team_id": TEAM_ID,
                "api_app_id": "A0WARROOM",
                "type": "event_callback",
                "event_id": f"Ev{secrets.token_hex(6).upper()}",
                "event_time": int(self.clock.timestamp()),
                "event": event,
            }
        )
        response = self.slack.post(
            body, self.slack.signed_headers(body, content_type="application/json")
        )
        self.record(step, f"event: reaction_added :{reaction}:", response)
        self.log[-1]["ack"] = "(acknowledged; warroom keeps the mark for the postmortem)"

    def war_room_messages(self) -> list[dict[str, Any]]:
        return self.emulator.state.messages(self.war_room)

    def notifications(self) -> list[NotificationRecord]:
        """Incident #1's planned audience messages, as stored."""
        with self.app.communications.uow(read_only=True) as uow:
            return uow.notifications.list_for(self.incident_id)

    def card_calls(self) -> int:
        return len([c for c in self.emulator.calls("chat.update") if c.status == 200])


DemoStep = tuple[str, Callable[[DemoContext], None]]


def _declare(ctx: DemoContext) -> None:
    ctx.command(
        "A responder declares a critical incident",
        "declare critical Support assistant follows instructions hidden in uploaded PDFs "
        "type:prompt_injection model:support-assistant-v3",
        user="U0DEMOREPORTER",
        channel=ctx.general_channel,
    )
    ctx.wait_until(_war_room_opened(ctx, 1), "incident #1's war room")
    incident = ctx.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    ctx.war_room = incident.channel_id
    ctx.incident_id = incident.id


def _war_room_opened(ctx: DemoContext, number: int) -> Callable[[], bool]:
    def opened() -> bool:
        return any(
            i.number == number and i.war_room_opened_at is not None
            for i in ctx.app.workflow.incidents.list_open()
        )

    return opened


def _status(ctx: DemoContext) -> None:
    ctx.command(
        "The commander asks for the status",
        "status",
        user="U0DEMOIC",
        channel=ctx.war_room,
        full=True,
    )


def _hand_over_role(ctx: DemoContext) -> None:
    before = ctx.card_calls()
    ctx.command(
        "The AI safety lead role is handed over",
        "role safety <@U0DEMOSAFETY2|jonas>",
        user="U0DEMOIC",
        channel=ctx.war_room,
    )
    ctx.wait_until(lambda: ctx.card_calls() > before, "the card to show the new role")


def _severity(ctx: DemoContext) -> None:
    before = ctx.card_calls()
    ctx.command(
        "The commander lowers the severity once the model is in safe mode",
        "severity high",
        user="U0DEMOIC",
        channel=ctx.war_room,
    )
    ctx.wait_until(lambda: ctx.card_calls() > before, "the card to show the new severity")


def _declare_with_form(ctx: DemoContext) -> None:
    ctx.command(
        "A data scientist opens the declaration form",
        "declare",
        user="U0DEMODATA",
        channel=ctx.general_channel,
    )
    ctx.wait_until(lambda: ctx.emulator.state.views(), "the declaration form")
    view = ctx.emulator.state.views()[-1]
    values = declare_form_values(
        title="Fraud model drifting",
        severity="medium",
        description="Approval rate up 9 points since Tuesday's feature pipeline change.",
        affected="fraud-scorer-v7, feature-pipeline",
        flags=("personal_data",),
    )
    response = ctx.slack.submit_view(
        view, json.loads(json.dumps(values)), user_id="U0DEMODATA", view_id=view.get("id", "V0DEMO")
    )
    ctx.record("The form is submitted", "view_submission: declare_incident_modal", response)
    ctx.wait_until(_war_room_opened(ctx, 2), "incident #2's war room")


def _list(ctx: DemoContext) -> None:
    ctx.command(
        "Someone lists the open incidents",
        "list",
        user="U0DEMOREPORTER",
        channel=ctx.general_channel,
    )


def _resolve(ctx: DemoContext) -> None:
    before = ctx.card_calls()
    ctx.command(
        "The commander resolves incident #1", "resolve", user="U0DEMOIC", channel=ctx.war_room
    )
    ctx.wait_until(lambda: ctx.card_calls() > before, "the card to show the incident resolved")


def _misuse(ctx: DemoContext) -> None:
    ctx.command(
        "A command that needs a war room, used elsewhere",
        "severity low",
        user="U0DEMOREPORTER",
        channel=ctx.general_channel,
    )


def _alertmanager_body(severity: str) -> dict[str, Any]:
    labels = {
        "alertname": "SystemPromptLeak",
        "model": "support-bot-v2",
        "service": "support-chat",
        "severity": severity,
        "indicator": "system_prompt_leak",
        "team": "ai-platform",
    }
    return {
        "version": "4",
        "groupKey": '{}/{team="ai-platform"}:{alertname="SystemPromptLeak"}',
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": "SystemPromptLeak"},
        "commonLabels": labels,
        "commonAnnotations": {
            "summary": "support-bot-v2 is leaking its system prompt",
            "description": "The canary string from the system prompt appeared in 14 replies "
            "in 5 minutes.",
        },
        "externalURL": "http://alertmanager.internal:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "support-bot-v2 is leaking its system prompt"},
                "startsAt": "2026-11-26T09:30:00Z"
                if severity == "warning"
                else "2026-11-26T09:41:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=llm_guard_leaks",
                "fingerprint": f"leak-{severity}",
            }
        ],
    }


def _alert_declares(ctx: DemoContext) -> None:
    ctx.webhook(
        "Alertmanager reports a system-prompt leak", "alertmanager", _alertmanager_body("warning")
    )
    ctx.wait_until(_war_room_opened(ctx, 3), "incident #3's war room (from the alert)")


def _alert_repeats(ctx: DemoContext) -> None:
    ctx.webhook(
        "Alertmanager repeats the group (deduplicated)",
        "alertmanager",
        _alertmanager_body("warning"),
    )


def _alert_escalates(ctx: DemoContext) -> None:
    before = ctx.card_calls()
    ctx.webhook(
        "A critical alert in the same group escalates",
        "alertmanager",
        _alertmanager_body("critical"),
    )
    ctx.wait_until(lambda: ctx.card_calls() > before, "the escalated card")


def _anomaly(ctx: DemoContext) -> None:
    calm = [
        {
            "model": "answer-engine",
            "metric": "factuality_score",
            "value": 0.92 + 0.01 * ((i * 7) % 5 - 2) / 2,
            "timestamp": 1_795_000_000 + i,
        }
        for i in range(40)
    ]
    ctx.webhook("A model monitor streams factuality scores", "metrics", {"samples": calm})
    drop = [
        {
            "model": "answer-engine",
            "metric": "factuality_score",
            "value": value,
            "timestamp": 1_795_000_100 + i,
        }
        for i, value in enumerate((0.61, 0.58, 0.6))
    ]
    ctx.webhook("Factuality drops and stays down", "metrics", {"samples": drop})
    ctx.wait_until(_war_room_opened(ctx, 4), "incident #4's war room (from the anomaly)")


def _proposal_button(ctx: DemoContext, label: str, channel: str | None = None) -> str:
    """The Approve button's value for one action on the war room's containment proposal."""
    proposals = [
        m
        for m in ctx.emulator.state.messages(channel or ctx.war_room)
        if m["text"].startswith("Containment proposed")
    ]
    blocks = proposals[-1]["blocks"]
    for index, block in enumerate(blocks):
        if block["type"] == "section" and f"*{label}*" in block["text"]["text"]:
            return str(blocks[index + 1]["elements"][0]["value"])
    raise RuntimeError(f"demo: no {label} on the containment proposal")


def _containment_refused(ctx: DemoContext) -> None:
    ctx.wait_until(
        lambda: any(
            m["text"].startswith("Containment proposed")
            for m in ctx.emulator.state.messages(ctx.war_room)
        ),
        "the critical incident's containment proposal",
    )
    button = _proposal_button(ctx, "Model shutdown")
    response = ctx.slack.click(
        action_id=ActionId.CONTAIN_APPROVE,
        value=button,
        channel_id=ctx.war_room,
        user_id="U0DEMOREPORTER",
    )
    ctx.record(
        "Someone who is not an approver clicks Approve (refused)",
        "button: Approve model shutdown",
        response,
    )
    ctx.wait_until(
        lambda: any(
            "Only the incident commander" in json.dumps(c.params)
            for c in ctx.emulator.calls("response_url")
        ),
        "the refusal",
    )


def _containment_approved(ctx: DemoContext) -> None:
    button = _proposal_button(ctx, "Model shutdown")
    response = ctx.slack.click(
        action_id=ActionId.CONTAIN_APPROVE,
        value=button,
        channel_id=ctx.war_room,
        user_id="U0DEMOIC",
    )
    ctx.record(
        "The commander approves the model shutdown", "button: Approve model shutdown", response
    )
    ctx.wait_until(
        lambda: ctx.gateway is not None and ctx.gateway.calls, "the model gateway to be called"
    )
    ctx.wait_until(
        lambda: ctx.app.workflow.incidents.get(1).state.value == "contained",
        "incident #1 to be contained",
    )


# -- stakeholder communications on incident #1 ----------------------------------------------


def _draft(ctx: DemoContext, audience: Audience) -> dict[str, Any] | None:
    """The war-room draft of incident #1's message to one audience, if posted yet."""
    heading = f"for the {audience.label} (incident #1)"
    for message in ctx.war_room_messages():
        if message["text"].startswith("Draft") and heading in message["text"]:
            return message
    return None


def _draft_posted(ctx: DemoContext, audience: Audience) -> Callable[[], bool]:
    return lambda: _draft(ctx, audience) is not None


def _draft_button(ctx: DemoContext, audience: Audience, action_id: str) -> str:
    ctx.wait_until(_draft_posted(ctx, audience), f"the {audience.label}'s draft")
    draft = _draft(ctx, audience)
    assert draft is not None
    for block in draft["blocks"]:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise RuntimeError(f"demo: no {action_id} button on the {audience.label}'s draft")


def _draft_says(ctx: DemoContext, audience: Audience, words: str) -> Callable[[], bool]:
    return lambda: words in json.dumps(_draft(ctx, audience) or {})


def _send_draft_now(ctx: DemoContext) -> None:
    audience = Audience.SECURITY_TEAM
    ctx.click(
        "The communications lead sends the security team's draft now (see #security-team)",
        "Send now (Security team draft)",
        action_id=ActionId.NOTIFY_SEND_NOW,
        value=_draft_button(ctx, audience, ActionId.NOTIFY_SEND_NOW),
        user="U0DEMOCOMMS",
    )
    ctx.wait_until(_draft_says(ctx, audience, "Sent "), "the security team's draft to show it sent")


def _skip_draft(ctx: DemoContext) -> None:
    audience = Audience.COMMUNICATIONS_TEAM
    opened = len(ctx.emulator.state.views())
    ctx.click(
        "The communications lead skips the communications team's draft; a form asks why",
        "Skip (Communications team draft)",
        action_id=ActionId.NOTIFY_SKIP,
        value=_draft_button(ctx, audience, ActionId.NOTIFY_SKIP),
        user="U0DEMOCOMMS",
    )
    ctx.wait_until(lambda: len(ctx.emulator.state.views()) > opened, "the skip form")
    view = ctx.emulator.state.views()[-1]
    assert view["callback_id"] == CallbackId.NOTIFY_SKIP_MODAL
    reason = (
        "The communications team is already in this war room with me; "
        "a separate brief would only repeat it."
    )
    values = {
        BlockId.NOTIFY_SKIP_REASON.value: {
            ActionId.NOTIFY_SKIP_REASON.value: {"type": "plain_text_input", "value": reason}
        }
    }
    response = ctx.slack.submit_view(view, values, user_id="U0DEMOCOMMS", view_id=view["id"])
    ctx.record(
        "The skip form is submitted with the reason",
        "view_submission: notification_skip_modal",
        response,
    )
    ctx.wait_until(_draft_says(ctx, audience, "Skipped by"), "the draft to show it skipped")


def _report_message(ctx: DemoContext) -> dict[str, Any] | None:
    """The draft GDPR report the flag puts in incident #1's war room, if posted yet."""
    for message in ctx.war_room_messages():
        if message["text"].startswith("GDPR personal data breach notification for incident #1"):
            return message
    return None


def _flag_personal_data(ctx: DemoContext) -> None:
    ctx.command(
        "The security analyst finds customer data in the injected replies: the GDPR clock starts",
        "flag personal-data",
        user="U0DEMOSEC",
        channel=ctx.war_room,
    )
    ctx.wait_until(lambda: _report_message(ctx), "the GDPR clock's draft report")
    for audience in (
        Audience.DATA_PROTECTION_OFFICER,
        Audience.AFFECTED_USERS,
        Audience.REGULATORY_BODY,
    ):
        ctx.wait_until(_draft_posted(ctx, audience), f"the {audience.label}'s draft")


def _jump(ctx: DemoContext, step: str, moment: datetime, what: str) -> None:
    """Move warroom's clock to `moment` and run its deadline sweep, as the 15-second
    background job would; note what it sent and which reminders it gave."""
    before = {n.id: n.state for n in ctx.notifications()}
    posted = len(ctx.war_room_messages())
    declared = ctx.app.workflow.incidents.get(ctx.incident_id).declared_at
    ctx.clock.move_to(moment)
    ctx.app.communications.sweep()
    lines = [
        f"Incident #1's {n.tier.value} message sent to the {n.audience.label} "
        f"({n.outcome.value if n.outcome else 'no outcome'})"
        for n in ctx.notifications()
        if n.state is NotificationState.SENT and before.get(n.id) is not n.state
    ]
    lines += [
        f"Posted in incident #1's war room: {_first_line(m)}"
        for m in ctx.war_room_messages()[posted:]
        if not m["text"].startswith("Draft")
    ]
    elapsed = moment - declared
    hours, rest = divmod(int(elapsed.total_seconds()), 3600)
    since = f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"
    ctx.note(step, f"{what} ({since} after the declaration, {moment:%Y-%m-%d %H:%M:%S} UTC)", lines)


def _first_line(message: dict[str, Any]) -> str:
    """A message's first line of words, Slack's date tokens shown as their UTC fallback."""
    blocks = message.get("blocks") or []
    text = blocks[0].get("text", {}).get("text", "") if blocks else ""
    text = re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text or message["text"])
    return text.split("\n", 1)[0]


def _latest_due(ctx: DemoContext, tier: NotificationTier) -> datetime:
    return max(n.due_at for n in ctx.notifications() if n.tier is tier)


def _reminded(ctx: DemoContext) -> None:
    with ctx.app.communications.uow(read_only=True) as uow:
        reminders = uow.reminders.pending(ctx.incident_id, ReminderKind.NOTIFICATION)
    half_way = max(
        r.due_at for r in reminders if r.data.get("tier") == NotificationTier.IMMEDIATE.value
    )
    _jump(
        ctx,
        "Half-way to the 15-minute deadline, the communications lead is reminded",
        half_way + timedelta(seconds=1),
        "The demo moves the clock half-way to the immediate tier's deadline",
    )


def _immediate_deadline(ctx: DemoContext) -> None:
    _jump(
        ctx,
        "The 15-minute deadline: warroom sends what is still unsent",
        _latest_due(ctx, NotificationTier.IMMEDIATE) + timedelta(seconds=1),
        "The demo moves the clock to the immediate tier's deadline",
    )


def _urgent_deadline(ctx: DemoContext) -> None:
    _jump(
        ctx,
        "The 1-hour deadline: affected users and the regulator are told, redacted",
        _latest_due(ctx, NotificationTier.URGENT) + timedelta(seconds=1),
        "The demo moves the clock to the urgent tier's deadline",
    )
    ctx.wait_until(lambda: _cadence_reminder(ctx), "the status-update reminder")


def _cadence_reminder(ctx: DemoContext) -> dict[str, Any] | None:
    reminders = [m for m in ctx.war_room_messages() if "status update is due" in m["text"]]
    return reminders[-1] if reminders else None


STATUS_UPDATE = (
    "The support assistant stays shut down. A customer, jane.doe@example.com, reported "
    "replies that quoted other customers' email addresses; our security analyst has found 37 "
    "affected conversations and is checking for more. Next update within the hour."
)


def _status_update(ctx: DemoContext) -> None:
    ctx.command(
        "The communications lead answers the reminder with a status update "
        "(see #security-team, and #affected-users for the redacted copy)",
        f"update {STATUS_UPDATE}",
        user="U0DEMOCOMMS",
        channel=ctx.war_room,
    )
    ctx.wait_until(
        lambda: any("Status update from" in m["text"] for m in ctx.war_room_messages()),
        "the update's fan-out",
    )


def _standard_deadline(ctx: DemoContext) -> None:
    _jump(
        ctx,
        "The 24-hour deadline: the technical team gets its brief",
        _latest_due(ctx, NotificationTier.STANDARD) + timedelta(seconds=1),
        "The demo moves the clock to the standard tier's deadline",
    )


def _dismiss_cadence(ctx: DemoContext) -> None:
    reminder = _cadence_reminder(ctx)
    assert reminder is not None
    dismiss = next(
        element
        for block in reminder["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == ActionId.CADENCE_DISMISS
    )
    ctx.click(
        "The communications lead dismisses the status-update reminder",
        "Dismiss (status update reminder)",
        action_id=ActionId.CADENCE_DISMISS,
        value=str(dismiss["value"]),
        user="U0DEMOCOMMS",
        message_ts=reminder["ts"],
    )
    ctx.wait_until(
        lambda: "Dismissed by" in json.dumps(_cadence_reminder(ctx)), "the reminder dismissed"
    )


def _deadlines(ctx: DemoContext) -> None:
    ctx.command(
        "The commander checks every deadline",
        "status",
        user="U0DEMOIC",
        channel=ctx.war_room,
        full=True,
    )


def _gdpr_submitted(ctx: DemoContext) -> None:
    report = _report_message(ctx)
    assert report is not None
    button = next(
        element
        for block in report["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == ActionId.REGULATORY_MARK_SUBMITTED
    )
    ctx.click(
        "The legal advisor files the GDPR notification and marks it submitted",
        "Mark submitted (GDPR report)",
        action_id=ActionId.REGULATORY_MARK_SUBMITTED,
        value=str(button["value"]),
        user="U0DEMOLEGAL",
    )
    ctx.wait_until(
        lambda: "Submitted by" in json.dumps(_report_message(ctx)), "the report marked submitted"
    )


# -- root cause, recovery and the postmortem of incident #1 ----------------------------------


def _latest(ctx: DemoContext, prefix: str) -> dict[str, Any] | None:
    """The newest war-room message whose text starts with `prefix`, if posted yet."""
    found = [m for m in ctx.war_room_messages() if m["text"].startswith(prefix)]
    return found[-1] if found else None


def _posted(ctx: DemoContext, prefix: str, what: str) -> dict[str, Any]:
    ctx.wait_until(lambda: _latest(ctx, prefix), what)
    message = _latest(ctx, prefix)
    assert message is not None
    return message


def _button(message: dict[str, Any], action_id: str) -> str:
    """The value of the button `action_id` on a message."""
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise RuntimeError(f"demo: no {action_id} button on “{message['text'][:80]}”")


def _opened_view(ctx: DemoContext, before: int, callback: CallbackId, what: str) -> dict[str, Any]:
    ctx.wait_until(lambda: len(ctx.emulator.state.views()) > before, what)
    view = ctx.emulator.state.views()[-1]
    assert view["callback_id"] == callback, view["callback_id"]
    return view


def _form_state(view: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """`view.state.values` as Slack sends them: what the form was pre-filled with, and what
    the person typed over it (by block id)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        if element["type"] == "datepicker":
            state = {
                "type": "datepicker",
                "selected_date": typed.get(block_id, element.get("initial_date")),
            }
        else:
            state = {
                "type": element["type"],
                "value": typed.get(block_id, element.get("initial_value")),
            }
        values[block_id] = {element["action_id"]: state}
    return values


FINDING = (
    "Found the payload: page 3 of the uploaded PDF carries instructions in white 1-pt text "
    "telling the assistant to quote earlier customers' tickets in its replies. Checking "
    "whether any reply leaked customer data."
)


def _finding_pinned(ctx: DemoContext) -> None:
    ts = ctx.say("The security analyst reports what she found", FINDING, user="U0DEMOSEC")
    ctx.react(
        "The commander marks the finding with :pushpin: (it goes into the postmortem's timeline)",
        ts,
        "pushpin",
        user="U0DEMOIC",
        author="U0DEMOSEC",
    )

    def marked() -> bool:
        with ctx.app.communications.uow(read_only=True) as uow:
            return any(m.message_ts == ts for m in uow.marks.for_incident(ctx.incident_id))

    ctx.wait_until(marked, "warroom to keep the :pushpin: mark")


def _rca(ctx: DemoContext) -> None:
    opened = len(ctx.emulator.state.views())
    ctx.command(
        "The data scientist starts the root-cause analysis; a form asks for the facts",
        "rca",
        user="U0DEMODATA",
        channel=ctx.war_room,
    )
    view = _opened_view(ctx, opened, CallbackId.RCA_FACTS_MODAL, "the root-cause facts form")
    declared = ctx.app.workflow.incidents.get(ctx.incident_id).declared_at
    deploy = declared - timedelta(minutes=35)
    typed = {
        BlockId.RCA_MODEL_VERSION.value: "3.4.0",
        BlockId.RCA_LAST_TRAINED.value: (declared.date() - timedelta(days=41)).isoformat(),
        BlockId.RCA_TRAINING_DATA.value: "Support tickets and help-centre articles, 2023-2026",
        BlockId.RCA_CHANGES.value: f"{deploy:%Y-%m-%d %H:%M} deploy support-assistant-v3.4: "
        "the full text of uploaded PDFs goes into the prompt",
        BlockId.RCA_ADVERSARIAL_SCORE.value: "0.94",
        BlockId.RCA_SUSPECTED_TRIGGER.value: "A customer uploaded a PDF whose page 3 hides "
        "instructions in white 1-pt text",
        BlockId.RCA_EXTERNAL_FACTORS.value: "A forum post showing how to hide instructions in "
        "PDFs circulated the day before",
    }
    response = ctx.slack.submit_view(
        view, _form_state(view, typed), user_id="U0DEMODATA", view_id=view["id"]
    )
    ctx.record(
        "The facts are submitted (the adversarial score is the input filter's, replayed on the "
        "PDFs); warroom posts the causal chain",
        "view_submission: rca_facts_modal",
        response,
    )
    _posted(ctx, "Root-cause analysis of incident #1", "the causal chain")


def _rca_confirmed(ctx: DemoContext) -> None:
    chain = _posted(ctx, "Root-cause analysis of incident #1", "the causal chain")
    ctx.click(
        "The AI safety lead confirms the root cause; warroom proposes what it teaches",
        "Confirm (root cause)",
        action_id=ActionId.RCA_CONFIRM,
        value=_button(chain, ActionId.RCA_CONFIRM),
        user="U0DEMOSAFETY2",
        message_ts=chain["ts"],
    )
    ctx.wait_until(
        lambda: "Confirmed by" in json.dumps(_latest(ctx, "Root-cause analysis of incident #1")),
        "the causal chain to show it confirmed",
    )
    _posted(ctx, "Rule proposal from incident #1", "the rule proposal")


def _rule_applied(ctx: DemoContext) -> None:
    proposal = _posted(ctx, "Rule proposal from incident #1", "the rule proposal")
    ctx.click(
        "The commander applies the proposed rule",
        "Apply (rule proposal)",
        action_id=ActionId.RULE_APPLY,
        value=_button(proposal, ActionId.RULE_APPLY),
        user="U0DEMOIC",
        message_ts=proposal["ts"],
    )
    ctx.wait_until(
        lambda: "Applied by" in json.dumps(_latest(ctx, "Rule proposal from incident #1")),
        "the proposal to show it applied",
    )


def _rules(ctx: DemoContext) -> None:
    ctx.command(
        "Anyone can list the rules in force, the lesson just applied among them",
        "rules",
        user="U0DEMODATA",
        channel=ctx.war_room,
        full=True,
    )


PLAN = "Recovery for incident #1"


def _recover(ctx: DemoContext) -> None:
    ctx.command(
        "The commander starts the recovery plan: restore, then 10 %, 50 % and 100 % of "
        "traffic, each checked",
        "recover",
        user="U0DEMOIC",
        channel=ctx.war_room,
    )
    _posted(ctx, PLAN, "the recovery plan")


def _plan_click(ctx: DemoContext, step: str, label: str, action_id: str, user: str) -> None:
    """Click the plan's current button; wait for the plan to move (warroom runs the gateway
    calls and the HTTP check after the ack, then updates the plan in place)."""
    plan = _posted(ctx, PLAN, "the recovery plan")
    before = plan["text"]
    ctx.click(
        step,
        label,
        action_id=action_id,
        value=_button(plan, action_id),
        user=user,
        message_ts=plan["ts"],
    )
    ctx.wait_until(
        lambda: (_latest(ctx, PLAN) or {}).get("text") != before,
        f"the recovery plan to move on after “{label}”",
    )


def _approve(ctx: DemoContext, what: str) -> None:
    _plan_click(
        ctx,
        f"The commander approves: {what} (warroom calls the gateway, then its health check "
        "runs by itself)",
        f"Approve ({what})",
        ActionId.RECOVERY_APPROVE,
        "U0DEMOIC",
    )


def _red_team_passed(ctx: DemoContext, when: str) -> None:
    _plan_click(
        ctx,
        f"The AI safety lead runs the red-team PDFs {when}: all refused",
        f"Passed (red-team check {when})",
        ActionId.RECOVERY_PASS,
        "U0DEMOSAFETY2",
    )


ALT_TEXT = (
    "I failed the red-team check at 10 %, so the plan is held: 39 of 40 PDFs were refused, "
    "but one hides its instructions in an image's alt text, which the sanitiser does not "
    "strip yet. Fixing the sanitiser, then I'll run the set again."
)


def _recovery_restore(ctx: DemoContext) -> None:
    _approve(ctx, "restore the model")
    _red_team_passed(ctx, "after the restore")


def _recovery_held(ctx: DemoContext) -> None:
    _approve(ctx, "10 % of traffic")
    _plan_click(
        ctx,
        "At 10 % one red-team PDF still gets an answer: the AI safety lead fails the check and "
        "the plan is held",
        "Failed (red-team check at 10 %)",
        ActionId.RECOVERY_FAIL,
        "U0DEMOSAFETY2",
    )
    ctx.say("The AI safety lead says why", ALT_TEXT, user="U0DEMOSAFETY2")


def _recovery_retried(ctx: DemoContext) -> None:
    _plan_click(
        ctx,
        "With the sanitiser fixed, the commander retries the failed check",
        "Retry (red-team check at 10 %)",
        ActionId.RECOVERY_RETRY,
        "U0DEMOIC",
    )
    _red_team_passed(ctx, "again at 10 %")


def _recovery_complete(ctx: DemoContext) -> None:
    for percent in (50, 100):
        _approve(ctx, f"{percent} % of traffic")
        _red_team_passed(ctx, f"at {percent} %")
    ctx.wait_until(
        lambda: ctx.app.workflow.incidents.get(ctx.incident_id).state.value == "recovering",
        "incident #1 to be recovering",
    )


def _action_item(ctx: DemoContext) -> None:
    due = ctx.clock.now().date() + timedelta(days=14)
    ctx.say(
        "The data scientist writes down an action item, with an owner and a due date",
        "action item: <@U0DEMOSAFETY2> add the hidden-text and alt-text PDFs to the red-team "
        f"suite that gates every support-assistant release, due {due.isoformat()}",
        user="U0DEMODATA",
    )


def _build_postmortem(ctx: DemoContext, step: str, version: int) -> None:
    ctx.command(step, "postmortem", user="U0DEMOIC", channel=ctx.war_room)
    _posted(
        ctx,
        f"Postmortem of incident #1, version {version} is ready",
        f"version {version} of the postmortem",
    )


def _postmortem(ctx: DemoContext) -> None:
    _build_postmortem(
        ctx,
        "The commander builds the postmortem: warroom reads the war room and its record, "
        "publishes a canvas and pins the announcement",
        1,
    )


LESSONS = {
    BlockId.LESSONS_WENT_WELL: "Containment took seconds: the shutdown was approved straight "
    "from warroom's proposal, and every stakeholder deadline was met.",
    BlockId.LESSONS_WENT_BADLY: "Nothing scored the assistant's inputs while it ran: we "
    "computed the adversarial score only afterwards. The first red-team run also missed "
    "instructions hidden in alt text.",
    BlockId.LESSONS_GOT_LUCKY: "A customer reported the leaked addresses; someone using the "
    "trick quietly could have gone on for days.",
}


def _lessons(ctx: DemoContext) -> None:
    prompt = _posted(ctx, "Lessons learned for incident #1", "the lessons prompt")
    opened = len(ctx.emulator.state.views())
    ctx.click(
        "The AI safety lead answers the lessons prompt; a form asks three questions",
        "Share lessons",
        action_id=ActionId.POSTMORTEM_SHARE_LESSONS,
        value=_button(prompt, ActionId.POSTMORTEM_SHARE_LESSONS),
        user="U0DEMOSAFETY2",
        message_ts=prompt["ts"],
    )
    view = _opened_view(ctx, opened, CallbackId.LESSONS_MODAL, "the lessons form")
    actions = {
        BlockId.LESSONS_WENT_WELL: ActionId.LESSONS_WENT_WELL,
        BlockId.LESSONS_WENT_BADLY: ActionId.LESSONS_WENT_BADLY,
        BlockId.LESSONS_GOT_LUCKY: ActionId.LESSONS_GOT_LUCKY,
    }
    values = {
        block.value: {actions[block].value: {"type": "plain_text_input", "value": text}}
        for block, text in LESSONS.items()
    }
    response = ctx.slack.submit_view(view, values, user_id="U0DEMOSAFETY2", view_id=view["id"])
    ctx.record("The lessons are shared", "view_submission: postmortem_lessons_modal", response)
    ctx.wait_until(
        lambda: any("Thank you" in e["text"] for e in ctx.emulator.state.ephemerals(ctx.war_room)),
        "the thanks for the lessons",
    )


def _postmortem_again(ctx: DemoContext) -> None:
    _build_postmortem(
        ctx, "The commander builds version 2 of the postmortem, with the lessons in it", 2
    )


# -- a drill, played end to end ------------------------------------------------------------

DRILL = "prompt-leak"
FACILITATOR = "U0DEMOSAFETY"


def _drill(ctx: DemoContext) -> Incident | None:
    """The drill's incident once its war room is open."""
    for incident in ctx.app.workflow.incidents.list_open():
        if is_drill(incident) and incident.war_room_opened_at is not None:
            return incident
    return None


def _drill_messages(ctx: DemoContext) -> list[dict[str, Any]]:
    return ctx.emulator.state.messages(ctx.drill_room)


def _drill_latest(ctx: DemoContext, prefix: str) -> dict[str, Any] | None:
    found = [m for m in _drill_messages(ctx) if m["text"].startswith(prefix)]
    return found[-1] if found else None


def _drill_posted(ctx: DemoContext, prefix: str, what: str) -> dict[str, Any]:
    ctx.wait_until(lambda: _drill_latest(ctx, prefix), what)
    message = _drill_latest(ctx, prefix)
    assert message is not None
    return message


def _drill_started_at(ctx: DemoContext) -> datetime | None:
    with ctx.app.communications.uow(read_only=True) as uow:
        events = uow.timeline.list_for(ctx.drill_id)
    started = [e for e in events if e["kind"] == "drill_started"]
    return datetime.fromisoformat(str(started[0]["data"]["started_at"])) if started else None


def _drill_scenarios(ctx: DemoContext) -> None:
    ctx.command(
        "Drill: the AI safety lead, as facilitator, lists the drill scenarios",
        "drill",
        user=FACILITATOR,
        channel=ctx.general_channel,
        full=True,
    )


def _drill_start(ctx: DemoContext) -> None:
    ctx.command(
        f"Drill: she starts `{DRILL}`; its first alert declares a practice incident marked "
        "DRILL and opens its war room",
        f"drill {DRILL}",
        user=FACILITATOR,
        channel=ctx.general_channel,
        full=True,
    )
    ctx.wait_until(lambda: _drill(ctx), "the drill's war room")
    incident = _drill(ctx)
    assert incident is not None and incident.channel_id is not None
    ctx.drill_room, ctx.drill_id = incident.channel_id, incident.id
    ctx.drill_number = incident.number
    _drill_posted(ctx, "DRILL: ", "the drill's briefing")
    ctx.wait_until(lambda: _drill_started_at(ctx), "the drill's start in the record")


def _drill_jump(ctx: DemoContext, step: str, moment: datetime, what: str) -> None:
    """Move the clock to `moment`; play the drill's injects now due (as the drill job does
    every 15 s) and run the deadline sweep; note what came of it."""
    started = _drill_started_at(ctx)
    drills = ctx.app.drills
    assert started is not None and drills is not None
    room, sent = len(_drill_messages(ctx)), len(_drills_channel(ctx))
    ctx.clock.move_to(moment)
    played = drills.play_due(ctx.drill_id)
    ctx.app.communications.sweep()
    lines = [f"{played} drill inject(s) played"] if played else []
    lines += [
        f"Posted in the drill's war room: {_first_line(m)}" for m in _drill_messages(ctx)[room:]
    ]
    lines += [f"Posted in #drills: {_first_line(m)}" for m in _drills_channel(ctx)[sent:]]
    minutes = int((moment - started).total_seconds() // 60)
    ctx.note(step, f"{what} ({minutes} min into the drill)", lines)


def _drill_inject(ctx: DemoContext, step: str, minutes: int) -> None:
    started = _drill_started_at(ctx)
    assert started is not None
    _drill_jump(
        ctx,
        step,
        started + timedelta(minutes=minutes),
        "The demo moves the clock to the scenario's next inject",
    )


def _drills_channel(ctx: DemoContext) -> list[dict[str, Any]]:
    channel = ctx.emulator.state.channel_by_name("drills")
    assert channel is not None
    return ctx.emulator.state.messages(channel["id"])


def _drill_notifications(ctx: DemoContext) -> list[NotificationRecord]:
    with ctx.app.communications.uow(read_only=True) as uow:
        return uow.notifications.list_for(ctx.drill_id)


def _drill_contain(ctx: DemoContext) -> None:
    ctx.command(
        "Drill: the commander asks warroom to propose containment",
        "contain",
        user="U0DEMOIC",
        channel=ctx.drill_room,
    )
    _drill_posted(ctx, "Containment proposed", "the drill's containment proposal")
    ctx.click(
        "Drill: the commander approves safe mode (rehearsed: no endpoint is called)",
        "Approve safe mode",
        action_id=ActionId.CONTAIN_APPROVE,
        value=_proposal_button(ctx, "Safe mode", ctx.drill_room),
        user="U0DEMOIC",
        channel=ctx.drill_room,
    )
    ctx.wait_until(
        lambda: ctx.app.workflow.incidents.get(ctx.drill_id).state.value == "contained",
        "the drill to be contained",
    )


def _drill_draft(ctx: DemoContext, audience: Audience) -> dict[str, Any] | None:
    """The drill war room's draft of the message to one audience, if posted yet."""
    heading = f"for the {audience.label} (incident #{ctx.drill_number})"
    for message in _drill_messages(ctx):
        if message["text"].startswith("Draft") and heading in message["text"]:
            return message
    return None


def _drill_public(ctx: DemoContext) -> None:
    ctx.command(
        "Drill: the leak is public, so the commander flags it: PR and the support leads "
        "must be told",
        "flag public",
        user="U0DEMOIC",
        channel=ctx.drill_room,
    )
    for audience in (Audience.PR_TEAM, Audience.CUSTOMER_SUPPORT_LEADS):
        ctx.wait_until(_drill_draft_posted(ctx, audience), f"the drill's {audience.label} draft")


def _drill_draft_posted(ctx: DemoContext, audience: Audience) -> Callable[[], bool]:
    return lambda: _drill_draft(ctx, audience) is not None


def _drill_send_now(ctx: DemoContext) -> None:
    audience = Audience.PR_TEAM
    draft = _drill_draft(ctx, audience)
    assert draft is not None
    ctx.click(
        "Drill: the communications lead sends the PR team's draft now (it goes to #drills only)",
        "Send now (PR team draft, drill)",
        action_id=ActionId.NOTIFY_SEND_NOW,
        value=_button(draft, ActionId.NOTIFY_SEND_NOW),
        user="U0DEMOCOMMS",
        channel=ctx.drill_room,
    )
    ctx.wait_until(
        lambda: "Sent " in json.dumps(_drill_draft(ctx, audience) or {}),
        "the drill's PR draft to show it sent",
    )


def _drill_injects_after(ctx: DemoContext, offset: timedelta) -> list[tuple[int, Inject]]:
    """The scenario's injects after `offset` into the drill, numbered from 1."""
    scenario = packaged_scenarios()[DRILL]
    return [(i, inject) for i, inject in enumerate(scenario.injects, 1) if inject.at > offset]


def _drill_play(ctx: DemoContext, number: int, inject: Inject) -> None:
    started = _drill_started_at(ctx)
    assert started is not None
    minutes = int(inject.at.total_seconds() // 60)
    what = {InjectKind.ALERT: "an alert", InjectKind.METRICS: "a metric series"}.get(
        inject.kind, "the facilitator's message"
    )
    _drill_jump(
        ctx,
        f"Drill: {minutes} minutes in, inject {number}: {what}",
        started + inject.at,
        "The demo moves the clock to the scenario's next inject",
    )


def _drill_screenshot(ctx: DemoContext) -> None:
    """The first inject after the opening alert (a customer's screenshot goes public)."""
    number, inject = _drill_injects_after(ctx, timedelta(0))[0]
    _drill_play(ctx, number, inject)


def _drill_injects(ctx: DemoContext) -> None:
    """The rest of the scenario, each inject at its offset; every one must land."""
    played = _drill_injects_after(ctx, timedelta(0))[0][1].at
    for number, inject in _drill_injects_after(ctx, played):
        _drill_play(ctx, number, inject)
    with ctx.app.communications.uow(read_only=True) as uow:
        events = [e["kind"] for e in uow.timeline.list_for(ctx.drill_id)]
    injects = len(packaged_scenarios()[DRILL].injects)
    if events.count("drill_inject") != injects:
        raise RuntimeError(f"demo: {events.count('drill_inject')} of {injects} injects played")


def _drill_deadline(ctx: DemoContext) -> None:
    due = max(n.due_at for n in _drill_notifications(ctx) if n.tier is NotificationTier.URGENT)
    _drill_jump(
        ctx,
        "Drill: the 1-hour deadline: the support leads' message goes out (to #drills only)",
        due + timedelta(seconds=1),
        "The demo moves the clock to the drill's urgent deadline",
    )


def _drill_resolve(ctx: DemoContext) -> None:
    ctx.command(
        "Drill: the commander resolves the drill; warroom scores it and posts the report",
        "resolve",
        user="U0DEMOIC",
        channel=ctx.drill_room,
    )
    _drill_posted(ctx, "DRILL report", "the drill report")


def _drill_postmortem(ctx: DemoContext) -> None:
    ctx.command(
        "Drill: the commander builds the drill's postmortem; the drill report closes it",
        "postmortem",
        user="U0DEMOIC",
        channel=ctx.drill_room,
    )
    _drill_posted(
        ctx,
        f"Postmortem of incident #{ctx.drill_number}, version 1 is ready",
        "the drill's postmortem",
    )


def _write_drill(ctx: DemoContext, folder: Path) -> None:
    """The drill's postmortem and its report, side by side with incident #1's."""
    if not ctx.drill_number or ctx.app.drills is None:
        return
    stored = read_latest(UnitOfWorkFactory(ctx.app.engine), ctx.drill_number)
    (folder / "postmortem-drill.md").write_text(stored.markdown + "\n", encoding="utf-8")
    report = ctx.app.drills.report_markdown(ctx.drill_id)
    assert report is not None
    (folder / "drill-report.md").write_text(report.strip() + "\n", encoding="utf-8")


def _write_postmortem(app: Warroom, path: Path) -> None:
    """The newest version of incident #1's postmortem, as `warroom postmortem 1 --out` writes
    it."""
    stored = read_latest(UnitOfWorkFactory(app.engine), 1)
    path.write_text(stored.markdown + "\n", encoding="utf-8")


def demo_script() -> list[DemoStep]:
    """The steps in order; each capability appends its own."""
    return [
        ("declare", _declare),
        ("status", _status),
        ("role", _hand_over_role),
        ("severity", _severity),
        ("declare-with-form", _declare_with_form),
        ("list", _list),
        ("misuse", _misuse),
        ("containment-refused", _containment_refused),
        ("containment-approved", _containment_approved),
        ("finding-pinned", _finding_pinned),
        ("draft-send-now", _send_draft_now),
        ("draft-skip", _skip_draft),
        ("flag-personal-data", _flag_personal_data),
        ("reminder-half-way", _reminded),
        ("deadline-15-min", _immediate_deadline),
        ("deadline-1-h", _urgent_deadline),
        ("status-update", _status_update),
        ("deadline-24-h", _standard_deadline),
        ("cadence-dismiss", _dismiss_cadence),
        ("deadlines", _deadlines),
        ("gdpr-submitted", _gdpr_submitted),
        ("rca", _rca),
        ("rca-confirmed", _rca_confirmed),
        ("rule-applied", _rule_applied),
        ("rules", _rules),
        ("recover", _recover),
        ("recovery-restore", _recovery_restore),
        ("recovery-held", _recovery_held),
        ("recovery-retried", _recovery_retried),
        ("recovery-complete", _recovery_complete),
        ("action-item", _action_item),
        ("resolve", _resolve),
        ("postmortem", _postmortem),
        ("lessons", _lessons),
        ("postmortem-v2", _postmortem_again),
        ("alert", _alert_declares),
        ("alert-repeat", _alert_repeats),
        ("alert-escalates", _alert_escalates),
        ("anomaly", _anomaly),
        ("drill-scenarios", _drill_scenarios),
        ("drill-start", _drill_start),
        ("drill-contain", _drill_contain),
        ("drill-screenshot", _drill_screenshot),
        ("drill-public", _drill_public),
        ("drill-send-now", _drill_send_now),
        ("drill-injects", _drill_injects),
        ("drill-deadline", _drill_deadline),
        ("drill-resolve", _drill_resolve),
        ("drill-postmortem", _drill_postmortem),
    ]


def demo_config(emulator: SlackEmulator, gateway_url: str) -> tuple[WarroomConfig, str]:
    """A rota of demo people and audience channels that exist in the emulator."""
    state = emulator.state
    for user_id, name in PEOPLE.items():
        state.add_user(user_id, name=name.split()[0].lower(), real_name=name)
    general = GENERAL_CHANNEL_ID
    config = parse_config(
        {
            "channel_prefix": "inc",
            "announce_channel": state.add_channel("incidents"),
            # A drill's stakeholder messages go here, never to a real audience.
            "drill_channel": state.add_channel("drills"),
            "roles": {
                "incident_commander": ["U0DEMOIC"],
                "ai_safety_lead": ["U0DEMOSAFETY"],
                "security_analyst": ["U0DEMOSEC"],
                "data_scientist": ["U0DEMODATA"],
                "communications_lead": ["U0DEMOCOMMS"],
                "legal_advisor": ["U0DEMOLEGAL"],
            },
            "audiences": {
                audience.value: [state.add_channel(name)]
                for audience, name in AUDIENCE_CHANNELS.items()
            },
            "notifications": {"channel_pace": 0},
            "regulatory": {"contact": DEMO_CONTACT},
            "containment": {
                "actions": {
                    kind: {"url": f"{gateway_url}/models/{{model}}/{kind.replace('_', '-')}"}
                    for kind in ("model_shutdown", "safe_mode", "circuit_breaker")
                },
            },
            # Incident #1's model comes back through the same gateway: restored, then given
            # 10 %, 50 % and 100 % of traffic, checked after each (the demo gateway answers
            # every call with {"done": true}; the red-team run is a person's judgement).
            "recovery": {
                "stages": [10, 50, 100],
                "systems": {
                    "support-assistant-v3": {
                        "restore": {"url": f"{gateway_url}/models/{{system}}/restore"},
                        "stage": {"url": f"{gateway_url}/models/{{system}}/traffic"},
                        "checks": [
                            {
                                "name": "gateway health",
                                "url": f"{gateway_url}/models/{{system}}/health",
                                "json_field": "done",
                                "equals": True,
                            },
                            {"name": "red-team PDFs with hidden instructions are refused"},
                        ],
                    }
                },
            },
        },
        source="demo configuration",
    )
    return config, general


def run_demo(*, out: Path | None = None, quiet: bool = False) -> int:
    folder = out or Path(f"warroom-demo-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    folder.mkdir(parents=True, exist_ok=True)
    secret, webhook_token = secrets.token_hex(16), secrets.token_hex(16)
    clock = DemoClock()
    with (
        SlackEmulator(state=WorkspaceState(clock.timestamp)) as emulator,
        ModelGateway() as gateway,
    ):
        config, general = demo_config(emulator, gateway.url)
        settings = Settings(
            slack_bot_token="xoxb-demo",
            slack_signing_secret=secret,
            slack_api_url=emulator.api_url,
            database_url=f"sqlite:///{(folder / 'warroom-demo.db').resolve()}",
            warroom_webhook_token=webhook_token,
        )
        engine = build_engine(settings.database_url)
        upgrade(engine)
        app = create_app(settings, config, engine=engine, clock=clock)
        server = BackgroundServer(app.asgi).start()
        sender = SlackSender(server.url, response_url=emulator.response_url("demo"), secret=secret)
        ctx = DemoContext(
            app=app,
            emulator=emulator,
            slack=sender,
            general_channel=general,
            webhook_token=webhook_token,
            gateway=gateway,
            clock=clock,
        )
        try:
            for name, step in demo_script():
                if not quiet:
                    print(f"· {name}")
                step(ctx)
            time.sleep(0.2)  # let the last lazy listener's Slack calls land in the transcript
            _write_postmortem(app, folder / "postmortem-incident-1.md")
            _write_drill(ctx, folder)
        finally:
            sender.close()
            server.stop()
            app.close()
        write_transcript(emulator, folder)
        _write_replies(ctx.log, folder / "replies.md")
        refused = emulator.validation_failures()
    if refused:
        problems = "; ".join(f"{f.method}: {', '.join(f.problems)}" for f in refused)
        raise RuntimeError(f"demo: Slack would refuse {len(refused)} message(s): {problems}")
    if not quiet:
        print(f"demo finished: transcript in {folder.resolve()}")
    return 0


_ACKNOWLEDGED = "(acknowledged; the answer follows in Slack)"


def _write_replies(log: list[dict[str, Any]], path: Path) -> None:
    """What each person typed and the reply only they saw."""
    lines = ["# What each responder typed and saw", ""]
    for entry in log:
        if "said" in entry:
            lines += [
                f"## {entry['step']}",
                f"_{PEOPLE[entry['who']]} writes in the war room:_",
                "",
            ]
            lines += [f"> {line}" for line in entry["said"].splitlines()]
            lines.append("")
            continue
        if "note" in entry:
            lines += [
                f"## {entry['step']}",
                f"_{entry['note']}; warroom's deadline sweep runs._",
                "",
            ]
            lines += [f"> {line}" for line in entry["lines"]] or ["> (nothing came due)"]
            lines.append("")
            continue
        reply = entry["reply"]
        text = reply.get("text", "") if isinstance(reply, dict) else str(reply)
        if isinstance(reply, dict) and reply.get("response_action") == "update":
            text = reply["view"]["blocks"][0]["text"]["text"]
        elif isinstance(reply, dict) and reply.get("status") == "accepted":
            text = ", ".join(
                f"{key} {reply[key]}"
                for key in ("alerts", "new", "duplicates", "incidents_declared")
            )
            if reply.get("anomalies"):
                text += "; anomaly: " + "; ".join(a["title"] for a in reply["anomalies"])
        lines += [
            f"## {entry['step']}",
            f"`{entry['request']}` → HTTP {entry['status']}",
            "",
            f"> {text}" if text else f"> {entry.get('ack', _ACKNOWLEDGED)}",
            "",
        ]
        if entry.get("full") and isinstance(reply, dict):
            for block_line in render_blocks(reply.get("blocks")):
                lines += [f"> {line}".rstrip() for line in block_line.split("\n")]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
