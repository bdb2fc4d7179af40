"""Containment buttons. Deciding is guarded in one place: `only_approvers`, a listener
middleware that refuses (ephemeral, audited) anyone but the commander and the approvers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond

from bot.errors import UserError
from bot.ids import ActionId
from bot.services.containment import Decision
from bot.services.workflow import CarryOut, IncidentWorkflow, PublishProposal
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, reply_later, replying_to_errors


def _number(action: dict[str, Any]) -> int:
    try:
        return int(str(action.get("value", "")))
    except ValueError:
        raise UserError(
            "This button belongs to a proposal warroom no longer understands."
        ) from None


def register(app: App, workflow: IncidentWorkflow) -> None:
    service = workflow.containment.containment

    def only_approvers(
        body: dict[str, Any], respond: Respond, next_: Callable[[], None]
    ) -> BoltResponse | None:
        action = body["actions"][0]
        try:
            number = _number(action)
            if action["action_id"] == ActionId.CONTAIN_APPROVE_ALL:
                incident_id = service.incident_of(proposal_id=number)
            else:
                incident_id = service.incident_of(action_id=number)
            service.check_approver(
                incident_id, body["user"]["id"], attempted=str(action["action_id"])
            )
        except UserError as refusal:
            respond(**workflow.user_error(refusal.user_message), replace_original=False)
            # Answering here (instead of calling next) acks the click and stops the listener.
            return BoltResponse(status=200, body="")
        next_()
        return None

    send_later = reply_later(workflow)

    def on_click(operation: Callable[[int, str], Decision]) -> Callable[..., None]:
        """An ack function: one service call on the clicked id; Slack work after the ack."""

        def answer(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            with replying_to_errors(keep_reply(context), workflow):
                decision = operation(_number(action), body["user"]["id"])
                context[REPLY_LATER] = workflow.notice(decision.message)
                context[FOLLOW_UP] = CarryOut(decision)

        return answer

    def propose_from_card(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            context[FOLLOW_UP] = PublishProposal(
                service.propose(_number(action), actor=body["user"]["id"])
            )

    guarded = [only_approvers]
    clicks: list[tuple[ActionId, Callable[[int, str], Decision], bool]] = [
        (ActionId.CONTAIN_APPROVE, lambda n, u: service.decide(n, user_id=u, approve=True), True),
        (ActionId.CONTAIN_REJECT, lambda n, u: service.decide(n, user_id=u, approve=False), True),
        (ActionId.CONTAIN_APPROVE_ALL, lambda n, u: service.approve_all(n, user_id=u), True),
        (ActionId.CONTAIN_RETRY, lambda n, u: service.retry(n, user_id=u), True),
        (ActionId.CONTAIN_MARK_DONE, lambda n, u: service.mark_done(n, user_id=u), False),
    ]
    for action_id, operation, needs_approver in clicks:
        app.action(action_id.value, middleware=guarded if needs_approver else [])(
            ack=on_click(operation), lazy=[send_later]
        )
    app.action(ActionId.CARD_CONTAIN.value)(ack=propose_from_card, lazy=[send_later])
