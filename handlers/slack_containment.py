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
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, replying_to_errors


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

    def reply_later(context: BoltContext, respond: Respond) -> None:
        if REPLY_LATER in context:
            respond(**context[REPLY_LATER], replace_original=False)
        if FOLLOW_UP in context:
            with replying_to_errors(respond, workflow):
                workflow.follow_up(context[FOLLOW_UP])

    def decide(approve: bool) -> Callable[..., None]:
        def answer(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            with replying_to_errors(keep_reply(context), workflow):
                action_id = _number(action)
                decision = service.decide(action_id, user_id=body["user"]["id"], approve=approve)
                proposal_id = service.proposal_of(action_id)
                context[REPLY_LATER] = workflow.notice(decision.message)
                context[FOLLOW_UP] = CarryOut(proposal_id, decision)

        return answer

    def approve_all(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            proposal_id = _number(action)
            decision = service.approve_all(proposal_id, user_id=body["user"]["id"])
            context[REPLY_LATER] = workflow.notice(decision.message)
            context[FOLLOW_UP] = CarryOut(proposal_id, decision)

    def retry(ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            action_id = _number(action)
            if not service.retry(action_id, user_id=body["user"]["id"]):
                raise UserError("Only a failed action can be retried.")
            context[FOLLOW_UP] = CarryOut(service.proposal_of(action_id), _run(action_id))

    def mark_done(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            action_id = _number(action)
            context[REPLY_LATER] = workflow.notice(
                service.mark_done(action_id, user_id=body["user"]["id"])
            )
            context[FOLLOW_UP] = CarryOut(service.proposal_of(action_id), _run())

    def propose_from_card(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            incident = workflow.incidents.get(_number(action))
            context[FOLLOW_UP] = PublishProposal(
                service.propose(incident.id, actor=body["user"]["id"])
            )

    guarded = [only_approvers]
    app.action(ActionId.CONTAIN_APPROVE.value, middleware=guarded)(
        ack=decide(approve=True), lazy=[reply_later]
    )
    app.action(ActionId.CONTAIN_REJECT.value, middleware=guarded)(
        ack=decide(approve=False), lazy=[reply_later]
    )
    app.action(ActionId.CONTAIN_APPROVE_ALL.value, middleware=guarded)(
        ack=approve_all, lazy=[reply_later]
    )
    app.action(ActionId.CONTAIN_RETRY.value, middleware=guarded)(ack=retry, lazy=[reply_later])
    app.action(ActionId.CONTAIN_MARK_DONE.value)(ack=mark_done, lazy=[reply_later])
    app.action(ActionId.CARD_CONTAIN.value)(ack=propose_from_card, lazy=[reply_later])


def _run(*action_ids: int) -> Decision:
    """A decision that only runs the given actions (a retry, or none after a manual step)."""
    return Decision(tuple(action_ids), "")
