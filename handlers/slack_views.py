"""The declaration form's submission."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.incident import Declaration
from bot.domain.vocabulary import (
    IncidentSource,
    parse_ai_act_case,
    parse_incident_type,
    parse_severity,
)
from bot.errors import ExternalServiceError, UserError
from bot.ids import FLAG_PERSONAL_DATA, FLAG_PUBLIC_FACING, ActionId, BlockId, CallbackId
from bot.services.workflow import IncidentWorkflow, OpenWarRoom
from handlers.replies import FOLLOW_UP

log = logging.getLogger(__name__)


class FieldError(UserError):
    """A form answer that cannot be used; `block_id` is where Slack shows the message."""

    def __init__(self, block_id: BlockId, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id


def _value(values: dict[str, Any], block: BlockId, action: ActionId) -> Any:
    return values.get(block.value, {}).get(action.value, {})


def declaration_from_view(view: dict[str, Any], user_id: str) -> Declaration:
    """The form's answers as a declaration; UserError names a bad field."""
    values = view.get("state", {}).get("values", {})
    title = _value(values, BlockId.DECLARE_TITLE, ActionId.DECLARE_TITLE).get("value") or ""
    if not title.strip():
        raise FieldError(BlockId.DECLARE_TITLE, "Give the incident a title.")
    severity_option = (
        _value(values, BlockId.DECLARE_SEVERITY, ActionId.DECLARE_SEVERITY).get("selected_option")
        or {}
    )
    severity = parse_severity(severity_option.get("value", ""))
    if severity is None:
        raise FieldError(BlockId.DECLARE_SEVERITY, "Choose a severity.")
    type_option = (
        _value(values, BlockId.DECLARE_TYPE, ActionId.DECLARE_TYPE).get("selected_option") or {}
    )
    incident_type = parse_incident_type(type_option.get("value", ""))
    affected = _value(values, BlockId.DECLARE_AFFECTED, ActionId.DECLARE_AFFECTED).get("value")
    flags = {
        option.get("value")
        for option in _value(values, BlockId.DECLARE_FLAGS, ActionId.DECLARE_FLAGS).get(
            "selected_options"
        )
        or []
    }
    ai_act_option = (
        _value(values, BlockId.DECLARE_AI_ACT, ActionId.DECLARE_AI_ACT).get("selected_option") or {}
    )
    ai_act_case = parse_ai_act_case(ai_act_option.get("value", ""))
    description = _value(values, BlockId.DECLARE_DESCRIPTION, ActionId.DECLARE_DESCRIPTION)
    return Declaration(
        title=" ".join(title.split()),
        severity=severity,
        reporter_id=user_id,
        source=IncidentSource.MODAL,
        # A double-submitted form carries the same view id: one incident, not two.
        dedup_key=f"view:{view['id']}",
        description=(description.get("value") or "").strip(),
        incident_type=incident_type,
        affected_systems=tuple(
            part.strip() for part in (affected or "").split(",") if part.strip()
        ),
        personal_data=FLAG_PERSONAL_DATA in flags,
        public_facing=FLAG_PUBLIC_FACING in flags,
        ai_act_case=ai_act_case,
    )


def register(app: App, workflow: IncidentWorkflow) -> None:
    def answer_submission(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        try:
            declaration = declaration_from_view(body["view"], body["user"]["id"])
        except FieldError as error:
            ack(response_action="errors", errors={error.block_id.value: error.user_message})
            return
        result = workflow.declare(declaration)
        context[FOLLOW_UP] = OpenWarRoom(result.incident.id)
        ack(response_action="update", view=workflow.declared_modal(result))

    def open_war_room(context: BoltContext) -> None:
        follow_up = context.get(FOLLOW_UP)
        if follow_up is None:
            return
        try:
            workflow.follow_up(follow_up)
        except ExternalServiceError as error:
            log.warning("war room not opened yet, the sweep will retry: %s", error)

    app.view(CallbackId.DECLARE_MODAL.value)(ack=answer_submission, lazy=[open_war_room])
