"""The postmortem's listeners: `/incident postmortem`, 📌/✅ reactions in war rooms, and the
"Share lessons" button with its form. Slow work (reading the channel, publishing, opening
the form) runs after the ack."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.commands import BuildPostmortem
from bot.errors import UserError
from bot.ids import ActionId, BlockId, CallbackId
from bot.services.postmortem import (
    LessonsShared,
    OpenLessonsForm,
    PostmortemBuild,
    PostmortemService,
)
from bot.services.workflow import IncidentWorkflow
from handlers.replies import FOLLOW_UP, keep_reply, reply_later, replying_to_errors


def _incident_id(raw: Any) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise UserError("This button belongs to a message warroom no longer understands.") from None


def _answer(view: dict[str, Any], block: BlockId, action: ActionId) -> str:
    value = view["state"]["values"].get(block.value, {}).get(action.value, {}).get("value")
    return str(value or "")


def register(app: App, workflow: IncidentWorkflow, postmortems: PostmortemService) -> None:
    def answer_command(
        parsed: BuildPostmortem, command: dict[str, Any]
    ) -> tuple[dict[str, Any], PostmortemBuild]:
        incident, build = postmortems.request_build(
            channel_id=command.get("channel_id", ""), actor_id=command["user_id"]
        )
        return postmortems.building_message(incident), build

    workflow.extend_command(BuildPostmortem, answer_command)
    workflow.extend_follow_up(PostmortemBuild, postmortems.run)
    workflow.extend_follow_up(OpenLessonsForm, postmortems.open_lessons_form)
    workflow.extend_follow_up(LessonsShared, postmortems.thank)

    def on_reaction(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message" or not event.get("user"):
            return
        change = (
            postmortems.record_mark
            if event.get("type") == "reaction_added"
            else postmortems.remove_mark
        )
        change(
            channel_id=str(item.get("channel", "")),
            message_ts=str(item.get("ts", "")),
            reaction=str(event.get("reaction", "")),
            user_id=str(event["user"]),
        )

    def share_lessons(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            context[FOLLOW_UP] = OpenLessonsForm(
                incident_id=_incident_id(action.get("value")),
                user_id=body["user"]["id"],
                trigger_id=body["trigger_id"],
            )

    def save_lessons(
        ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            context[FOLLOW_UP] = postmortems.save_lessons(
                incident_id=_incident_id(metadata.get("incident_id")),
                user_id=body["user"]["id"],
                went_well=_answer(view, BlockId.LESSONS_WENT_WELL, ActionId.LESSONS_WENT_WELL),
                went_badly=_answer(view, BlockId.LESSONS_WENT_BADLY, ActionId.LESSONS_WENT_BADLY),
                got_lucky=_answer(view, BlockId.LESSONS_GOT_LUCKY, ActionId.LESSONS_GOT_LUCKY),
            )
        except (UserError, ValueError) as error:
            message = error.user_message if isinstance(error, UserError) else "Unreadable form."
            ack(response_action="errors", errors={BlockId.LESSONS_WENT_WELL.value: message})
            return
        ack()

    def after_view(context: BoltContext) -> None:
        if FOLLOW_UP in context:
            workflow.follow_up(context[FOLLOW_UP])

    for event in ("reaction_added", "reaction_removed"):
        app.event(event)(on_reaction)
    app.action(ActionId.POSTMORTEM_SHARE_LESSONS.value)(
        ack=share_lessons, lazy=[reply_later(workflow)]
    )
    app.view(CallbackId.LESSONS_MODAL.value)(ack=save_lessons, lazy=[after_view])
