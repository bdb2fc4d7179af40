"""The `/incident` slash command: parse, call the workflow, reply; slow work after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain.commands import (
    USAGE,
    AssignRole,
    ChangeSeverity,
    DeclareNow,
    IncidentCommand,
    ListIncidents,
    OpenDeclareModal,
    PostUpdate,
    ProposeContainment,
    ResolveIncident,
    SetContainmentTarget,
    SetFlag,
    ShowHelp,
    ShowStatus,
    parse_command,
)
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource
from bot.errors import UserError
from bot.ids import SLASH_COMMAND
from bot.services.workflow import FollowUp, IncidentWorkflow, OpenDeclareForm, OpenWarRoom
from handlers.replies import FOLLOW_UP, replying_to_errors

HELP = [
    (USAGE["declare"].split(" [", 1)[0], "open the declaration form"),
    (
        "/incident declare <severity> <title…> [type:<type>] [model:<name>]",
        "declare at once; warroom infers the type unless you give one",
    ),
    (USAGE["status"], "in a war room: the card, roles and clocks"),
    (USAGE["list"], "the open incidents"),
    (USAGE["role"], "in a war room: hand a role to someone"),
    (USAGE["severity"], "in a war room: change the severity"),
    (USAGE["resolve"], "in a war room: mark the incident resolved"),
    (USAGE["contain"], "in a war room: propose containment, or aim an action at a target"),
    (USAGE["update"], "in a war room: a status update for every audience told so far"),
    (
        USAGE["flag"],
        "in a war room: personal data, public-facing, or an EU AI Act serious incident",
    ),
    (USAGE["rca"], "in a war room: root-cause analysis, posted as a causal chain to confirm"),
    (USAGE["recover"], "in a war room: the recovery plan, with validation and staged restoration"),
    (USAGE["postmortem"], "in a war room: build the lessons-learned document (a new version)"),
    (USAGE["rules"], "the detection and classification rules in force, lessons included"),
    (USAGE["drill"], "the drill scenarios, or start one: a practice incident marked DRILL"),
    (USAGE["help"], "this list"),
]


_WITH_FOLLOW_UP = (
    OpenDeclareModal,
    DeclareNow,
    AssignRole,
    ChangeSeverity,
    ResolveIncident,
    ProposeContainment,
    SetContainmentTarget,
    PostUpdate,
    SetFlag,
)


def declaration_from(command: dict[str, Any], parsed: DeclareNow) -> Declaration:
    return Declaration(
        title=parsed.title,
        severity=parsed.severity,
        reporter_id=command["user_id"],
        source=IncidentSource.SLASH_COMMAND,
        # Same trigger_id = the same command delivered again: it must not declare twice.
        dedup_key=f"slash:{command['trigger_id']}",
        incident_type=parsed.incident_type,
        affected_systems=(parsed.model,) if parsed.model else (),
    )


def register(app: App, workflow: IncidentWorkflow) -> None:
    def answer_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        with replying_to_errors(ack, workflow):
            reply, follow_up = _answer(parse_command(command.get("text", "")), command, workflow)
            context[FOLLOW_UP] = follow_up
            ack(**reply)

    def finish_command(context: BoltContext, respond: Respond) -> None:
        follow_up = context.get(FOLLOW_UP)
        if follow_up is not None:
            with replying_to_errors(respond, workflow):
                workflow.follow_up(follow_up)

    def answered_in_ack(command: dict[str, Any]) -> bool:
        try:
            parsed = parse_command(command.get("text", ""))
        except UserError:
            return True
        return not (isinstance(parsed, _WITH_FOLLOW_UP) or workflow.answers(parsed))

    # Reads (help, list, status) and usage errors are answered in the ack alone; only commands
    # with Slack work to do pay for a lazy listener. The reads are matched first: Bolt builds
    # every listener argument for each matcher it tries, and they are the hot path.
    app.command(SLASH_COMMAND, matchers=[answered_in_ack])(answer_command)
    app.command(SLASH_COMMAND)(ack=answer_command, lazy=[finish_command])


def _answer(
    parsed: IncidentCommand, command: dict[str, Any], workflow: IncidentWorkflow
) -> tuple[dict[str, Any], FollowUp | object | None]:
    """Inside Slack's 3 seconds: read, or store the change (in arrival order), and reply."""
    channel_id, user_id = command.get("channel_id", ""), command["user_id"]
    match parsed:
        case ShowHelp():
            return workflow.help_message(HELP), None
        case ListIncidents():
            return workflow.list_message(), None
        case ShowStatus():
            incident = workflow.incidents.get_in_war_room_or_raise(channel_id)
            return workflow.status_message(incident), None
        case OpenDeclareModal():
            return {}, OpenDeclareForm(
                trigger_id=command["trigger_id"], origin_channel_id=channel_id
            )
        case DeclareNow():
            result = workflow.declare(declaration_from(command, parsed))
            return workflow.declaring_message(result), OpenWarRoom(result.incident.id)
        case AssignRole(role=role, user_id=assignee):
            return {}, workflow.assign_role(
                channel_id=channel_id, role=role, user_id=assignee, actor_id=user_id
            )
        case ChangeSeverity(severity=severity):
            incident = workflow.incidents.get_in_war_room_or_raise(channel_id)
            return {}, workflow.change_severity(
                incident_id=incident.id, severity=severity, actor_id=user_id
            )
        case ResolveIncident():
            incident = workflow.incidents.get_in_war_room_or_raise(channel_id)
            return {}, workflow.resolve(incident_id=incident.id, actor_id=user_id)
        case ProposeContainment():
            return {}, workflow.propose_containment(channel_id=channel_id, actor_id=user_id)
        case SetContainmentTarget(action=action, target=target):
            return {}, workflow.set_containment_target(
                channel_id=channel_id, action=action, target=target, actor_id=user_id
            )
        case PostUpdate(text=text):
            return {}, workflow.post_update(channel_id=channel_id, text=text, actor_id=user_id)
        case SetFlag(personal_data=personal, public_facing=public, ai_act_case=case):
            return {}, workflow.set_flags(
                channel_id=channel_id,
                personal_data=personal,
                public_facing=public,
                ai_act_case=case,
                actor_id=user_id,
            )
        case _:
            # Capabilities that registered their own sub-commands (rca, recover, postmortem…).
            return workflow.answer(parsed, command)
