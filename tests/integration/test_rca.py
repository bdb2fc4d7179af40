"""Root-cause analysis and lessons learned through signed Slack requests to the served app,
against the Slack emulator and a real database: `/incident rca` opens the facts form, the
submitted facts post the causal chain, Confirm posts rule proposals, Apply by the commander
changes the next classification (and the detector's thresholds) without a restart, and
`/incident rules` lists what was applied. People who may not decide are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from bot.app import create_app
from bot.clock import SystemClock
from bot.config import WarroomConfig
from bot.domain.incident import Incident
from bot.domain.rca import RcaState
from bot.domain.rule_proposals import ProposalKind, ProposalState
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender
from bot.ids import ActionId, BlockId, CallbackId
from bot.rendering import Renderer
from bot.server import BackgroundServer
from bot.services.rca import RcaService
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import ServedWarroom, make_settings

pytestmark = pytest.mark.integration

TOKEN = "webhook-secret"


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


NOW = datetime.now(UTC).replace(second=0, microsecond=0)


class Served(ServedWarroom):
    def __init__(self, *args: Any, emulator: SlackEmulator) -> None:
        super().__init__(*args)
        self.emulator = emulator
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def webhook(self, route: str, body: Any) -> httpx.Response:
        response = self.http.post(
            f"/webhooks/{route}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 202, response.text
        return response

    def incidents(self) -> list[Incident]:
        return self.app.workflow.incidents.list_open()

    def wait_for_war_room(self, count: int) -> Incident:
        self.wait_for(lambda: len([i for i in self.incidents() if i.war_room_opened_at]) >= count)
        newest = max(self.incidents(), key=lambda i: i.number)
        assert newest.channel_id is not None
        return newest

    def messages(self, channel: str, prefix: str) -> list[dict[str, Any]]:
        return [m for m in self.emulator.state.messages(channel) if m["text"].startswith(prefix)]

    def replies(self) -> str:
        return dump([c.params for c in self.emulator.calls("response_url")])

    def uow(self) -> Any:
        return UnitOfWorkFactory(self.app.engine)(read_only=True)

    def rca(self) -> RcaService:
        """The service the postmortem reads, over the same database."""
        workflow = self.app.workflow
        return RcaService(
            uow=UnitOfWorkFactory(self.app.engine),
            clock=SystemClock(),
            config=self.app.config,
            renderer=Renderer(),
            slack=workflow.slack,
            war_rooms=workflow.war_rooms,
            rules=None,  # type: ignore[arg-type]  # confirmed() needs no rules
        )


@pytest.fixture
def served(
    emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> Iterator[Served]:
    settings = make_settings(emulator, warroom_webhook_token=TOKEN)
    app = create_app(settings, config, engine=sqlite_engine)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("rca"))
    running = Served(app, server, sender, emulator=emulator)
    yield running
    running.http.close()
    sender.close()
    server.stop()
    app.close()


def probe_alert(fingerprint: str, *, minutes_ago: int = 10) -> dict[str, Any]:
    return {
        "title": "Probe alarm on vision-v3",
        "severity": "high",
        "indicators": ["gradient_probe"],
        "model": "vision-v3",
        "metrics": {"adversarial_score": 0.91},
        "fingerprint": fingerprint,
        "occurred_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
    }


def form_state(view: dict[str, Any], **typed: str) -> dict[str, Any]:
    """`view.state.values` as Slack sends them: what the form was pre-filled with, and what
    the person typed over it (by block id)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind, block_id = element["type"], block["block_id"]
        if kind == "datepicker":
            state = {
                "type": kind,
                "selected_date": typed.get(block_id, element.get("initial_date")),
            }
        elif kind == "static_select":
            chosen = typed.get(block_id)
            option = {"value": chosen} if chosen else element.get("initial_option")
            state = {"type": kind, "selected_option": option}
        else:
            state = {"type": kind, "value": typed.get(block_id, element.get("initial_value"))}
        values[block_id] = {element["action_id"]: state}
    return values


def button(message: dict[str, Any], action_id: str) -> str:
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button")


def opened_form(served: Served, callback: CallbackId) -> dict[str, Any]:
    """The form the last command or click opened."""
    served.wait_for(
        lambda: [v for v in served.emulator.state.views() if v["callback_id"] == callback]
    )
    return [v for v in served.emulator.state.views() if v["callback_id"] == callback][-1]


def run_rca(served: Served, incident: Incident, user: str, **typed: str) -> dict[str, Any]:
    """`/incident rca`, the form, the submission; the chain message posted in the war room."""
    channel = incident.channel_id or ""
    before = len(served.emulator.state.views())
    ack = served.slack.command("rca", channel_id=channel, user_id=user)
    assert ack.status_code == 200
    served.wait_for(lambda: len(served.emulator.state.views()) > before)
    view = served.emulator.state.views()[-1]
    assert view["callback_id"] == CallbackId.RCA_FACTS_MODAL
    chains = len(served.messages(channel, "Root-cause analysis"))
    done = served.slack.submit_view(
        view, form_state(view, **typed), user_id=user, view_id=view["id"]
    )
    assert done.status_code == 200 and not done.content
    served.wait_for(lambda: len(served.messages(channel, "Root-cause analysis")) > chains)
    return served.messages(channel, "Root-cause analysis")[-1]


def proposal_states(
    served: Served, incident_id: int
) -> dict[str, tuple[ProposalKind, ProposalState]]:
    with served.uow() as uow:
        return {p.key: (p.kind, p.state) for p in uow.rule_proposals.for_incident(incident_id)}


def audit_actions(served: Served, incident_id: int) -> list[str]:
    with served.uow() as uow:
        return [e.action.value for e in uow.audit.entries(incident_id)]


def test_rca_to_applied_lesson_changes_the_next_classification(served: Served) -> None:
    outside = served.slack.command("rca", channel_id="C0GENERAL", user_id="U0DATA")
    assert "war-room channel" in dump(outside.json())
    served.webhook("generic", probe_alert("vision-v3:probe-1"))
    incident = served.wait_for_war_room(1)
    channel = incident.channel_id or ""
    assert incident.incident_type.value != "adversarial_attack"
    assert "gradient_probe" not in incident.indicators

    # The form is pre-filled from the alert; a bad score is refused on its own field.
    served.slack.command("rca", channel_id=channel, user_id="U0DATA")
    view = opened_form(served, CallbackId.RCA_FACTS_MODAL)
    prefilled = form_state(view)
    assert prefilled[BlockId.RCA_MODEL][ActionId.RCA_MODEL]["value"] == "vision-v3"
    adversarial = prefilled[BlockId.RCA_ADVERSARIAL_SCORE][ActionId.RCA_ADVERSARIAL_SCORE]
    assert adversarial["value"] == "0.91"
    bad = served.slack.submit_view(
        view, form_state(view, rca_adversarial_score="very"), user_id="U0DATA", view_id=view["id"]
    )
    assert bad.json()["response_action"] == "errors"
    assert BlockId.RCA_ADVERSARIAL_SCORE.value in bad.json()["errors"]
    deploy_at = NOW - timedelta(minutes=30)
    done = served.slack.submit_view(
        view,
        form_state(view, rca_changes=f"{deploy_at:%Y-%m-%d %H:%M} deploy vision-v3.2"),
        user_id="U0DATA",
        view_id=view["id"],
    )
    assert done.status_code == 200 and not done.content
    served.wait_for(lambda: served.messages(channel, "Root-cause analysis"))
    [chain] = served.messages(channel, "Root-cause analysis")
    text = dump(chain)
    assert "Primary cause* · Adversarial attack" in text
    assert "deploy vision-v3.2" in text  # the trigger: the change 20 min before the alert
    assert served.rca().confirmed(incident.id) is None

    # Someone who may not confirm is refused, and it is audited.
    value = button(chain, ActionId.RCA_CONFIRM)
    served.slack.click(
        action_id=ActionId.RCA_CONFIRM, value=value, channel_id=channel, user_id="U0STRANGER"
    )
    served.wait_for(lambda: "may confirm or correct the root cause" in served.replies())
    assert served.rca().confirmed(incident.id) is None
    assert "refused" in audit_actions(served, incident.id)

    # The data scientist confirms: the message says so, the proposals are posted.
    for _ in range(2):  # a double click confirms once
        served.slack.click(
            action_id=ActionId.RCA_CONFIRM, value=value, channel_id=channel, user_id="U0DATA"
        )
    served.wait_for(lambda: served.messages(channel, "Rule proposal"))
    served.wait_for(
        lambda: "Confirmed by <@U0DATA>" in dump(served.messages(channel, "Root-cause")[0])
    )
    confirmed = served.rca().confirmed(incident.id)
    assert confirmed is not None
    assert confirmed["version"] == 1 and confirmed["confirmed_by"] == "U0DATA"
    assert confirmed["primary_cause"]["incident_type"] == "adversarial_attack"
    assert {"trigger", "contributing_factors", "recommendations", "findings"} <= set(confirmed)
    assert audit_actions(served, incident.id).count("rca_confirmed") == 1
    proposals = proposal_states(served, incident.id)
    mapping_key = "indicator:gradient_probe:adversarial_attack"
    assert proposals[mapping_key] == (ProposalKind.INDICATOR_MAPPING, ProposalState.PROPOSED)
    assert ("gap:vision-v3:adversarial_score") in proposals
    served.wait_for(lambda: len(served.messages(channel, "Rule proposal")) == len(proposals))
    [message] = [
        m for m in served.messages(channel, "Rule proposal") if "gradient_probe" in m["text"]
    ]

    # Only the commander and the AI safety lead may apply; the data scientist may not.
    apply = button(message, ActionId.RULE_APPLY)
    served.slack.click(
        action_id=ActionId.RULE_APPLY, value=apply, channel_id=channel, user_id="U0DATA"
    )
    served.wait_for(lambda: "may apply or dismiss a rule proposal" in served.replies())
    assert proposal_states(served, incident.id)[mapping_key][1] is ProposalState.PROPOSED
    for _ in range(2):  # applying twice is once
        served.slack.click(
            action_id=ActionId.RULE_APPLY, value=apply, channel_id=channel, user_id="U0COMMANDER"
        )
    served.wait_for(
        lambda: proposal_states(served, incident.id)[mapping_key][1] is ProposalState.APPLIED
    )
    served.wait_for(
        lambda: "Applied by <@U0COMMANDER>" in dump(served.messages(channel, "Rule proposal"))
    )
    served.wait_for(lambda: "already applied" in served.replies())
    assert audit_actions(served, incident.id).count("rule_applied") == 1

    # The AI safety lead dismisses the monitoring gap: recorded, never in force.
    [gap] = [m for m in served.messages(channel, "Rule proposal") if "Monitor `" in m["text"]]
    served.slack.click(
        action_id=ActionId.RULE_DISMISS,
        value=button(gap, ActionId.RULE_DISMISS),
        channel_id=channel,
        user_id="U0SAFETY",
    )
    gap_key = "gap:vision-v3:adversarial_score"
    served.wait_for(
        lambda: proposal_states(served, incident.id)[gap_key][1] is ProposalState.DISMISSED
    )
    served.wait_for(
        lambda: "Dismissed by <@U0SAFETY>" in dump(served.messages(channel, "Rule proposal"))
    )
    assert "rule_dismissed" in audit_actions(served, incident.id)

    # A similar incident is now classified by the lesson, without a restart.
    served.webhook("generic", probe_alert("vision-v3:probe-2", minutes_ago=1))
    similar = served.wait_for_war_room(2)
    assert similar.id != incident.id
    assert similar.incident_type.value == "adversarial_attack"
    assert "gradient_probe" in similar.indicators

    # Another replica, or warroom after a restart, loads the lesson from the database.
    replica = create_app(
        make_settings(served.emulator), served.app.config, engine=served.app.engine
    )
    try:
        again = replica.classifier.classify(title="Probe alarm", indicators=("gradient_probe",))
        assert again.incident_type.value == "adversarial_attack"
    finally:
        replica.close()

    # `/incident rules` lists the applied rule.
    listing = served.slack.command("rules", channel_id="C0GENERAL", user_id="U0REPORTER")
    body = dump(listing.json())
    assert ":bulb:`gradient_probe`" in body
    assert "Classify indicator `gradient_probe` as adversarial attack" in body
    assert "Monitoring to add" not in body
    assert served.emulator.validation_failures() == []


def test_a_correction_becomes_the_confirmed_version_and_others_may_not_correct(
    served: Served,
) -> None:
    served.webhook("generic", probe_alert("vision-v3:probe-9"))
    incident = served.wait_for_war_room(1)
    channel = incident.channel_id or ""
    chain = run_rca(served, incident, "U0SAFETY")
    value = button(chain, ActionId.RCA_CORRECT)

    served.slack.click(
        action_id=ActionId.RCA_CORRECT, value=value, channel_id=channel, user_id="U0COMMS"
    )
    served.wait_for(lambda: "may confirm or correct the root cause" in served.replies())
    served.slack.click(
        action_id=ActionId.RCA_CORRECT, value=value, channel_id=channel, user_id="U0SAFETY"
    )
    view = opened_form(served, CallbackId.RCA_CORRECT_MODAL)
    corrected = form_state(
        view,
        rca_fix_primary="A poisoned fine-tuning batch from a partner",
        rca_fix_type="data_poisoning",
    )
    refused = served.slack.submit_view(view, corrected, user_id="U0STRANGER", view_id=view["id"])
    assert refused.json()["response_action"] == "errors"
    done = served.slack.submit_view(view, corrected, user_id="U0SAFETY", view_id=view["id"])
    assert done.status_code == 200 and not done.content

    served.wait_for(lambda: len(served.messages(channel, "Root-cause analysis")) == 2)
    served.wait_for(
        lambda: "Replaced by version 2" in dump(served.messages(channel, "Root-cause")[0])
    )
    latest = served.messages(channel, "Root-cause analysis")[1]
    assert "Confirmed by <@U0SAFETY>" in dump(latest)
    confirmed = served.rca().confirmed(incident.id)
    assert confirmed is not None and confirmed["version"] == 2
    assert confirmed["primary_cause"]["summary"] == "A poisoned fine-tuning batch from a partner"
    assert confirmed["primary_cause"]["incident_type"] == "data_poisoning"
    with served.uow() as uow:
        states = [v.state for v in uow.rca.versions(incident.id)]
    assert states == [RcaState.SUPERSEDED, RcaState.CONFIRMED]
    proposals = proposal_states(served, incident.id)
    assert "indicator:gradient_probe:data_poisoning" in proposals
    assert "rca_corrected" in audit_actions(served, incident.id)
    # The superseded version cannot be confirmed any more.
    served.slack.click(
        action_id=ActionId.RCA_CONFIRM, value=value, channel_id=channel, user_id="U0SAFETY"
    )
    served.wait_for(lambda: "replaced by a correction" in served.replies())
    assert served.emulator.validation_failures() == []


def test_an_applied_threshold_changes_detection_without_a_restart(served: Served) -> None:
    def sample(value: float) -> list[dict[str, Any]]:
        response = served.webhook(
            "metrics", {"model": "ocr-v1", "metric": "adversarial_score", "value": value}
        )
        return list(response.json()["anomalies"])

    assert len(sample(0.75)) == 1  # over the 0.7 limit: an incident
    incident = served.wait_for_war_room(1)
    channel = incident.channel_id or ""
    chain = run_rca(served, incident, "U0COMMANDER")
    assert "Adversarial attack" in dump(chain)
    served.slack.click(
        action_id=ActionId.RCA_CONFIRM,
        value=button(chain, ActionId.RCA_CONFIRM),
        channel_id=channel,
        user_id="U0COMMANDER",
    )
    served.wait_for(
        lambda: any("limit was 0.7" in m["text"] for m in served.messages(channel, "Rule proposal"))
    )
    assert sample(0.5) == [] and sample(0.69) == []  # below the limit in force
    [message] = [m for m in served.messages(channel, "Rule proposal") if "limit was" in m["text"]]
    served.slack.click(
        action_id=ActionId.RULE_APPLY,
        value=button(message, ActionId.RULE_APPLY),
        channel_id=channel,
        user_id="U0SAFETY",
    )
    served.wait_for(
        lambda: (
            proposal_states(served, incident.id)["threshold:ocr-v1:adversarial_score:limit"][1]
            is ProposalState.APPLIED
        )
    )
    assert sample(0.5) == []
    [flagged] = sample(0.69)  # 0.69 is over the tightened limit of 0.63
    assert flagged["limit"] == 0.63
    listing = dump(served.slack.command("rules", user_id="U0REPORTER").json())
    assert "Tightened for a model" in listing and "ocr-v1" in listing
    assert served.emulator.validation_failures() == []
