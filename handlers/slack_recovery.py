"""`/incident recover` and the recovery plan's buttons: decided in the ack, run after it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.commands import StartRecovery
from bot.errors import UserError
from bot.ids import ActionId
from bot.services.recovery import RecoveryDecision, RecoveryService, RecoveryStarted
from bot.services.workflow import IncidentWorkflow
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, reply_later, replying_to_errors


def _step_id(action: dict[str, Any]) -> int:
    try:
        return int(str(action.get("value", "")))
    except ValueError:
        raise UserError("This button belongs to a plan warroom no longer understands.") from None


def register(app: App, workflow: IncidentWorkflow, recovery: RecoveryService) -> None:
    def answer_recover(
        _: StartRecovery, command: dict[str, Any]
    ) -> tuple[dict[str, Any], RecoveryStarted]:
        incident = workflow.incidents.get_in_war_room_or_raise(command.get("channel_id", ""))
        started = recovery.start(incident.id, actor_id=command["user_id"])
        return {}, started

    def run_started(work: RecoveryStarted) -> None:
        recovery.advance(work.plan_id)

    def run_decision(work: RecoveryDecision) -> None:
        recovery.carry_out(work.step_id)
        recovery.advance(work.plan_id)

    workflow.extend_command(StartRecovery, answer_recover)
    workflow.extend_follow_up(RecoveryStarted, run_started)
    workflow.extend_follow_up(RecoveryDecision, run_decision)

    def on_click(decide: Any) -> Any:
        def answer(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            with replying_to_errors(keep_reply(context), workflow):
                decision = decide(_step_id(action), body["user"]["id"])
                context[REPLY_LATER] = workflow.notice(decision.message)
                context[FOLLOW_UP] = decision

        return answer

    send_later = reply_later(workflow)
    clicks = {
        ActionId.RECOVERY_APPROVE: lambda s, u: recovery.approve(s, user_id=u),
        ActionId.RECOVERY_PASS: lambda s, u: recovery.mark(s, user_id=u, passed=True),
        ActionId.RECOVERY_FAIL: lambda s, u: recovery.mark(s, user_id=u, passed=False),
        ActionId.RECOVERY_RETRY: lambda s, u: recovery.retry(s, user_id=u),
    }
    for action_id, decide in clicks.items():
        app.action(action_id.value)(ack=on_click(decide), lazy=[send_later])

    def reopen(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            incident_id, user_id = _step_id(action), body["user"]["id"]
            recovery.check_reopen(incident_id, user_id)
            context[FOLLOW_UP] = workflow.incidents.reopen(
                incident_id=incident_id, actor_id=user_id
            )

    app.action(ActionId.RECOVERY_REOPEN.value)(ack=reopen, lazy=[send_later])
