"""Buttons and forms of stakeholder communications: the drafts' Send now / Edit / Skip, the
status-update reminder's Snooze / Dismiss, and a legal report's Mark submitted. Who may act
is checked inside the ack; Slack work (sending, opening a form, re-rendering) runs after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain.notifications import NotificationRecord
from bot.errors import UserError
from bot.ids import ActionId, BlockId, CallbackId
from bot.services.workflow import (
    IncidentWorkflow,
    OpenMessageForm,
    RefreshDraft,
    RefreshReport,
    SendNow,
)
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, reply_later, replying_to_errors


def _id(raw: Any) -> int:
    try:
        return int(str(raw).split(":", 1)[0])
    except ValueError:
        raise UserError("This button belongs to a message warroom no longer understands.") from None


def _typed(view: dict[str, Any], block: BlockId, action: ActionId) -> str:
    value = view["state"]["values"].get(block.value, {}).get(action.value, {}).get("value")
    return str(value or "")


def register(app: App, workflow: IncidentWorkflow) -> None:
    messages = workflow.communications.notifications
    reminders = workflow.communications.reminders
    regulatory = workflow.communications.regulatory
    send_later = reply_later(workflow)

    def send_now(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            notification_id, user_id = _id(action.get("value")), body["user"]["id"]
            messages.check_owner(notification_id, user_id)
            context[FOLLOW_UP] = SendNow(notification_id, user_id)

    def open_form(kind: str) -> Any:
        def answer(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            with replying_to_errors(keep_reply(context), workflow):
                notification_id, user_id = _id(action.get("value")), body["user"]["id"]
                messages.check_owner(notification_id, user_id)
                context[FOLLOW_UP] = OpenMessageForm(
                    kind=kind,
                    notification_id=notification_id,
                    user_id=user_id,
                    trigger_id=body["trigger_id"],
                )

        return answer

    def save_form(
        block: BlockId, action: ActionId, decide: Callable[[int, str, str], NotificationRecord]
    ) -> Callable[..., None]:
        """A form's submission: one service call in the ack; errors shown on the field."""

        def answer(
            ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            typed = _typed(view, block, action)
            try:
                record = decide(_id(view.get("private_metadata")), body["user"]["id"], typed)
            except UserError as error:
                ack(response_action="errors", errors={block.value: error.user_message})
                return
            ack()
            context[FOLLOW_UP] = RefreshDraft(record.id)

        return answer

    save_edit = save_form(
        BlockId.NOTIFY_EDIT_TEXT,
        ActionId.NOTIFY_EDIT_TEXT,
        lambda n, u, text: messages.edit(n, user_id=u, text=text),
    )
    save_skip = save_form(
        BlockId.NOTIFY_SKIP_REASON,
        ActionId.NOTIFY_SKIP_REASON,
        lambda n, u, reason: messages.skip(n, user_id=u, reason=reason),
    )

    def follow_view(context: BoltContext) -> None:
        if FOLLOW_UP in context:
            workflow.follow_up(context[FOLLOW_UP])

    def snooze(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            reminder_id, _, minutes = str(action.get("value", "")).partition(":")
            context[REPLACE] = reminders.snooze(
                _id(reminder_id), minutes=_id(minutes or "0"), user_id=body["user"]["id"]
            )

    def dismiss(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            context[REPLACE] = reminders.dismiss(
                _id(action.get("value")), user_id=body["user"]["id"]
            )

    def replace_reminder(context: BoltContext, respond: Respond) -> None:
        if REPLACE in context:
            respond(**context[REPLACE], replace_original=True)
        elif REPLY_LATER in context:
            respond(**context[REPLY_LATER], replace_original=False)

    def mark_submitted(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            record = regulatory.mark_submitted(_id(action.get("value")), user_id=body["user"]["id"])
            context[FOLLOW_UP] = RefreshReport(record.id)

    app.action(ActionId.NOTIFY_SEND_NOW.value)(ack=send_now, lazy=[send_later])
    app.action(ActionId.NOTIFY_EDIT.value)(ack=open_form("edit"), lazy=[send_later])
    app.action(ActionId.NOTIFY_SKIP.value)(ack=open_form("skip"), lazy=[send_later])
    app.view(CallbackId.NOTIFY_EDIT_MODAL.value)(ack=save_edit, lazy=[follow_view])
    app.view(CallbackId.NOTIFY_SKIP_MODAL.value)(ack=save_skip, lazy=[follow_view])
    for snooze_id in (ActionId.CADENCE_SNOOZE, ActionId.CADENCE_SNOOZE_LONG):
        app.action(snooze_id.value)(ack=snooze, lazy=[replace_reminder])
    app.action(ActionId.CADENCE_DISMISS.value)(ack=dismiss, lazy=[replace_reminder])
    app.action(ActionId.REGULATORY_MARK_SUBMITTED.value)(ack=mark_submitted, lazy=[send_later])


# Where an ack function leaves the reminder message that replaces the one clicked.
REPLACE = "warroom_replace_message"
