"""Buttons and menus on the incident card."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.vocabulary import parse_severity
from bot.errors import UserError
from bot.ids import ActionId
from bot.services.workflow import IncidentWorkflow
from handlers.replies import replying_to_errors


def _incident_id(action: dict[str, Any]) -> int:
    raw = action.get("value") or action.get("selected_option", {}).get("value", "")
    try:
        return int(str(raw).split(":", 1)[0])
    except ValueError:
        raise UserError("This button belongs to a card warroom no longer understands.") from None


def register(app: App, workflow: IncidentWorkflow) -> None:
    def ack_only(ack: Ack) -> None:
        ack()

    def show_status(action: dict[str, Any], respond: Respond) -> None:
        with replying_to_errors(respond, workflow):
            incident = workflow.incidents.get(_incident_id(action))
            respond(**workflow.status_message(incident), replace_original=False)

    def change_severity(action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        with replying_to_errors(respond, workflow):
            value = action.get("selected_option", {}).get("value", "")
            severity = parse_severity(value.split(":", 1)[-1])
            if severity is None:
                raise UserError(f"`{value}` is not a severity.")
            workflow.change_severity(
                incident_id=_incident_id(action), severity=severity, actor_id=body["user"]["id"]
            )

    def resolve(action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        with replying_to_errors(respond, workflow):
            workflow.resolve(incident_id=_incident_id(action), actor_id=body["user"]["id"])

    app.action(ActionId.CARD_STATUS.value)(ack=ack_only, lazy=[show_status])
    app.action(ActionId.CARD_SEVERITY.value)(ack=ack_only, lazy=[change_severity])
    app.action(ActionId.CARD_RESOLVE.value)(ack=ack_only, lazy=[resolve])
