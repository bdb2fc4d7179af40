"""`/incident rca` and `/incident rules`; the causal chain's Confirm / Correct and the rule
proposals' Apply / Dismiss. Who may decide is checked in one place per kind of button, a
listener middleware that refuses (ephemeral, audited) everyone else; forms open and messages
change after the ack."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond

from bot.domain.commands import RunRca, ShowRules
from bot.domain.rca import FormError
from bot.errors import UserError
from bot.ids import ActionId, BlockId, CallbackId
from bot.services.rca import OpenRcaCorrection, OpenRcaForm, PublishRca, RcaDecided, RcaService
from bot.services.rules import RuleDecided, RulesService
from bot.services.workflow import IncidentWorkflow
from handlers.replies import FOLLOW_UP, REPLY_LATER, keep_reply, reply_later, replying_to_errors

Inputs = Mapping[str, tuple[BlockId, ActionId]]

FACT_INPUTS: Inputs = {
    "model": (BlockId.RCA_MODEL, ActionId.RCA_MODEL),
    "model_version": (BlockId.RCA_MODEL_VERSION, ActionId.RCA_MODEL_VERSION),
    "last_trained": (BlockId.RCA_LAST_TRAINED, ActionId.RCA_LAST_TRAINED),
    "training_data": (BlockId.RCA_TRAINING_DATA, ActionId.RCA_TRAINING_DATA),
    "changes": (BlockId.RCA_CHANGES, ActionId.RCA_CHANGES),
    "drift_score": (BlockId.RCA_DRIFT_SCORE, ActionId.RCA_DRIFT_SCORE),
    "adversarial_score": (BlockId.RCA_ADVERSARIAL_SCORE, ActionId.RCA_ADVERSARIAL_SCORE),
    "suspected_trigger": (BlockId.RCA_SUSPECTED_TRIGGER, ActionId.RCA_SUSPECTED_TRIGGER),
    "external_factors": (BlockId.RCA_EXTERNAL_FACTORS, ActionId.RCA_EXTERNAL_FACTORS),
}
CORRECTION_INPUTS: Inputs = {
    "trigger": (BlockId.RCA_FIX_TRIGGER, ActionId.RCA_FIX_TRIGGER),
    "primary_cause": (BlockId.RCA_FIX_PRIMARY, ActionId.RCA_FIX_PRIMARY),
    "primary_type": (BlockId.RCA_FIX_TYPE, ActionId.RCA_FIX_TYPE),
    "contributing_factors": (BlockId.RCA_FIX_FACTORS, ActionId.RCA_FIX_FACTORS),
}


def _number(raw: Any) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise UserError("This belongs to an analysis warroom no longer understands.") from None


def form_values(view: dict[str, Any], inputs: Inputs) -> dict[str, str]:
    """What was typed, picked or chosen in each field of a submitted modal."""
    state = view.get("state", {}).get("values", {})
    values: dict[str, str] = {}
    for name, (block, action) in inputs.items():
        element = state.get(block.value, {}).get(action.value, {})
        chosen = element.get("selected_option") or {}
        value = element.get("value") or element.get("selected_date") or chosen.get("value")
        values[name] = str(value or "")
    return values


def register(app: App, workflow: IncidentWorkflow, *, rca: RcaService, rules: RulesService) -> None:
    def run_rca(parsed: RunRca, command: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        incident = workflow.incidents.get_in_war_room_or_raise(command.get("channel_id", ""))
        return {}, OpenRcaForm(trigger_id=command["trigger_id"], incident_id=incident.id)

    def show_rules(parsed: ShowRules, command: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        return rules.rules_message(), None

    workflow.extend_command(RunRca, run_rca)
    workflow.extend_command(ShowRules, show_rules)
    workflow.extend_follow_up(OpenRcaForm, rca.open_facts_form)
    workflow.extend_follow_up(PublishRca, lambda work: rca.publish(work.analysis_id))
    workflow.extend_follow_up(OpenRcaCorrection, rca.open_correction_form)
    workflow.extend_follow_up(RcaDecided, rca.after_decision)
    workflow.extend_follow_up(RuleDecided, lambda work: rules.refresh_message(work.proposal_id))

    def only(check: Callable[..., None]) -> Callable[..., BoltResponse | None]:
        """A middleware letting through only those `check` accepts for the clicked id."""

        def middleware(
            body: dict[str, Any], respond: Respond, next_: Callable[[], None]
        ) -> BoltResponse | None:
            action = body["actions"][0]
            try:
                check(
                    _number(action.get("value")),
                    body["user"]["id"],
                    attempted=str(action["action_id"]),
                )
            except UserError as refusal:
                respond(**workflow.user_error(refusal.user_message), replace_original=False)
                # Answering here (instead of calling next) acks the click and stops the listener.
                return BoltResponse(status=200, body="")
            next_()
            return None

        return middleware

    send_later = reply_later(workflow)

    def confirm(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            decided = rca.confirm(_number(action.get("value")), user_id=body["user"]["id"])
            context[REPLY_LATER] = workflow.notice(decided.message)
            context[FOLLOW_UP] = decided

    def open_correction(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        with replying_to_errors(keep_reply(context), workflow):
            context[FOLLOW_UP] = OpenRcaCorrection(
                trigger_id=body["trigger_id"],
                analysis_id=_number(action.get("value")),
                user_id=body["user"]["id"],
            )

    def on_proposal(decide: Callable[..., RuleDecided]) -> Callable[..., None]:
        def answer(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            with replying_to_errors(keep_reply(context), workflow):
                decided = decide(_number(action.get("value")), user_id=body["user"]["id"])
                context[REPLY_LATER] = workflow.notice(decided.message)
                context[FOLLOW_UP] = decided

        return answer

    def on_submit(
        inputs: Inputs, submit: Callable[[int, dict[str, str], str], object]
    ) -> Callable[..., None]:
        """A view-submission ack: errors go back to the field they belong to."""
        first_block = next(iter(inputs.values()))[0].value

        def answer(
            ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            try:
                work = submit(
                    _number(view.get("private_metadata")),
                    form_values(view, inputs),
                    body["user"]["id"],
                )
            except FormError as error:
                ack(
                    response_action="errors",
                    errors={inputs[error.field][0].value: error.user_message},
                )
                return
            except UserError as error:
                ack(response_action="errors", errors={first_block: error.user_message})
                return
            ack()
            context[FOLLOW_UP] = work

        return answer

    def follow_view(context: BoltContext) -> None:
        if FOLLOW_UP in context:
            workflow.follow_up(context[FOLLOW_UP])

    app.view(CallbackId.RCA_FACTS_MODAL.value)(
        ack=on_submit(FACT_INPUTS, lambda n, form, user: rca.analyse(n, form=form, actor_id=user)),
        lazy=[follow_view],
    )
    app.view(CallbackId.RCA_CORRECT_MODAL.value)(
        ack=on_submit(
            CORRECTION_INPUTS, lambda n, form, user: rca.correct(n, form=form, user_id=user)
        ),
        lazy=[follow_view],
    )
    confirmers = [only(rca.check_confirmer)]
    app.action(ActionId.RCA_CONFIRM.value, middleware=confirmers)(ack=confirm, lazy=[send_later])
    app.action(ActionId.RCA_CORRECT.value, middleware=confirmers)(
        ack=open_correction, lazy=[send_later]
    )
    deciders = [only(rules.check_decider)]
    app.action(ActionId.RULE_APPLY.value, middleware=deciders)(
        ack=on_proposal(rules.apply), lazy=[send_later]
    )
    app.action(ActionId.RULE_DISMISS.value, middleware=deciders)(
        ack=on_proposal(rules.dismiss), lazy=[send_later]
    )
