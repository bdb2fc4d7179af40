"""`warroom demo`: a scripted incident, offline, through the real HTTP endpoints.

The bot runs against the bundled Slack emulator on an embedded SQLite file; every step is a
correctly signed Slack request. Later capabilities add steps to `demo_script()`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bot.app import Warroom, create_app
from bot.config import WarroomConfig, parse_config
from bot.emulator.gateway import ModelGateway
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender, declare_form_values
from bot.emulator.state import GENERAL_CHANNEL_ID
from bot.emulator.transcript import write_transcript
from bot.ids import ActionId
from bot.server import BackgroundServer
from bot.settings import Settings
from storage.db import build_engine, upgrade

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

    def command(self, step: str, text: str, *, user: str, channel: str) -> httpx.Response:
        response = self.slack.command(text, user_id=user, channel_id=channel)
        self.record(step, f"/incident {text}", response)
        return response

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


def _war_room_opened(ctx: DemoContext, number: int) -> Callable[[], bool]:
    def opened() -> bool:
        return any(
            i.number == number and i.war_room_opened_at is not None
            for i in ctx.app.workflow.incidents.list_open()
        )

    return opened


def _status(ctx: DemoContext) -> None:
    ctx.command(
        "The commander asks for the status", "status", user="U0DEMOIC", channel=ctx.war_room
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


def _proposal_button(ctx: DemoContext, label: str) -> str:
    """The Approve button's value for one action on the war room's containment proposal."""
    proposals = [
        m
        for m in ctx.emulator.state.messages(ctx.war_room)
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
        ("resolve", _resolve),
        ("alert", _alert_declares),
        ("alert-repeat", _alert_repeats),
        ("alert-escalates", _alert_escalates),
        ("anomaly", _anomaly),
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
            "roles": {
                "incident_commander": ["U0DEMOIC"],
                "ai_safety_lead": ["U0DEMOSAFETY"],
                "security_analyst": ["U0DEMOSEC"],
                "data_scientist": ["U0DEMODATA"],
                "communications_lead": ["U0DEMOCOMMS"],
                "legal_advisor": ["U0DEMOLEGAL"],
            },
            "audiences": {"executive_team": [state.add_channel("exec-incidents")]},
            "containment": {
                "actions": {
                    kind: {"url": f"{gateway_url}/models/{{model}}/{kind.replace('_', '-')}"}
                    for kind in ("model_shutdown", "safe_mode", "circuit_breaker")
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
    with SlackEmulator() as emulator, ModelGateway() as gateway:
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
        app = create_app(settings, config, engine=engine)
        server = BackgroundServer(app.asgi).start()
        sender = SlackSender(server.url, response_url=emulator.response_url("demo"), secret=secret)
        ctx = DemoContext(
            app=app,
            emulator=emulator,
            slack=sender,
            general_channel=general,
            webhook_token=webhook_token,
            gateway=gateway,
        )
        try:
            for name, step in demo_script():
                if not quiet:
                    print(f"· {name}")
                step(ctx)
            time.sleep(0.2)  # let the last lazy listener's Slack calls land in the transcript
        finally:
            sender.close()
            server.stop()
            app.close()
        write_transcript(emulator, folder)
        _write_replies(ctx.log, folder / "replies.md")
    if not quiet:
        print(f"demo finished: transcript in {folder.resolve()}")
    return 0


def _write_replies(log: list[dict[str, Any]], path: Path) -> None:
    """What each person typed and the reply only they saw."""
    lines = ["# What each responder typed and saw", ""]
    for entry in log:
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
            f"> {text}" if text else "> (acknowledged; the answer follows in Slack)",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
