"""Buttons and menus on the incident card: the change is stored in the ack, Slack after it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.vocabulary import parse_severity
from bot.errors import UserError
from bot.ids import ActionId
from bot.services.workflow import IncidentWorkflow
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, reply_later, replying_to_errors


def _incident_id(raw: str) -> int:
    try:
        return int(raw.split(":", 1)[0])
    except ValueError:
        raise UserError("This control belongs to a card warroom no longer understands.") from None


def register(app: App, workflow: IncidentWorkflow) -> None:
    send_later = reply_later(workflow)

    def show_status(ack: Ack, action: dict[str, Any], context: BoltContext) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            incident = workflow.incidents.get(_incident_id(action.get("value", "")))
            context[REPLY_LATER] = workflow.status_message(incident)

    def change_severity(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            value = action.get("selected_option", {}).get("value", "")
            severity = parse_severity(value.split(":", 1)[-1])
            if severity is None:
                raise UserError(f"`{value}` is not a severity.")
            context[FOLLOW_UP] = workflow.change_severity(
                incident_id=_incident_id(value), severity=severity, actor_id=body["user"]["id"]
            )

    def resolve(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            context[FOLLOW_UP] = workflow.resolve(
                incident_id=_incident_id(action.get("value", "")), actor_id=body["user"]["id"]
            )

    app.action(ActionId.CARD_STATUS.value)(ack=show_status, lazy=[send_later])
    app.action(ActionId.CARD_SEVERITY.value)(ack=change_severity, lazy=[send_later])
    app.action(ActionId.CARD_RESOLVE.value)(ack=resolve, lazy=[send_later])
