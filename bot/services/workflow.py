"""What the handlers call: a change stored inside the ack, its Slack follow-up after it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.domain.containment import ContainmentAction
from bot.domain.incident import Declaration, Incident
from bot.domain.vocabulary import AiActCase, Role, Severity
from bot.errors import UserError
from bot.ids import FLAG_PERSONAL_DATA, FLAG_PUBLIC_FACING, LET_WARROOM_DECIDE
from bot.logging_setup import log_context
from bot.presenters import incident_context, summary_context, vocabulary_context
from bot.rendering import Renderer
from bot.services.communications import Communications
from bot.services.containment import Decision, State
from bot.services.containment_flow import ContainmentFlow
from bot.services.incidents import (
    DeclarationResult,
    FlagChange,
    IncidentService,
    RoleChange,
    SeverityChange,
    StateChange,
)
from bot.services.status_updates import StatusUpdate
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway


@dataclass(frozen=True)
class OpenDeclareForm:
    trigger_id: str
    origin_channel_id: str


@dataclass(frozen=True)
class OpenWarRoom:
    incident_id: int


@dataclass(frozen=True)
class PublishProposal:
    proposal_id: int


@dataclass(frozen=True)
class CarryOut:
    decision: Decision


@dataclass(frozen=True)
class SendNow:
    notification_id: int
    user_id: str


@dataclass(frozen=True)
class OpenMessageForm:
    kind: str  # "edit" or "skip"
    notification_id: int
    user_id: str
    trigger_id: str


@dataclass(frozen=True)
class RefreshDraft:
    notification_id: int


@dataclass(frozen=True)
class RefreshReport:
    clock_id: int


FollowUp = (
    OpenDeclareForm
    | OpenWarRoom
    | RoleChange
    | SeverityChange
    | StateChange
    | PublishProposal
    | CarryOut
    | FlagChange
    | StatusUpdate
    | SendNow
    | OpenMessageForm
    | RefreshDraft
    | RefreshReport
)

CommandAnswer = Callable[[Any, dict[str, Any]], tuple[dict[str, Any], Any]]

# Slack allows 50 blocks a message: a heading, 40 incidents and an "and N more" line.
LIST_LIMIT = 40


@dataclass
class IncidentWorkflow:
    incidents: IncidentService
    war_rooms: WarRoomService
    renderer: Renderer
    slack: SlackGateway
    containment: ContainmentFlow
    communications: Communications
    # Capabilities register their own follow-ups and sub-commands (see `extend`), so each
    # lives in its own modules instead of growing this one.
    _follow_ups: dict[type, Callable[[Any], None]] = field(default_factory=dict)
    _commands: dict[type, CommandAnswer] = field(default_factory=dict)

    def extend_follow_up(self, kind: type, run: Callable[[Any], None]) -> None:
        """Run `run(work)` for follow-ups of this type."""
        self._follow_ups[kind] = run

    def extend_command(self, kind: type, answer: CommandAnswer) -> None:
        """Answer parsed sub-commands of this type: `answer(parsed, slash_command)` returns the
        ack reply and an optional follow-up, inside Slack's 3 seconds."""
        self._commands[kind] = answer

    def answers(self, parsed: object) -> bool:
        return type(parsed) in self._commands

    def answer(
        self, parsed: object, command: dict[str, Any]
    ) -> tuple[dict[str, Any], object | None]:
        answer = self._commands.get(type(parsed))
        if answer is None:
            raise UserError("That command is not available in this warroom.")
        return answer(parsed, command)

    def declare(self, declaration: Declaration) -> DeclarationResult:
        """Store the incident (once per request); the war room opens after the ack."""
        return self.incidents.declare(declaration)

    def assign_role(
        self, *, channel_id: str, role: Role, user_id: str, actor_id: str
    ) -> RoleChange:
        """Record the hand-over now; `follow_up` tells Slack after the ack."""
        incident = self.incidents.get_in_war_room_or_raise(channel_id)
        return self.incidents.assign_role(
            incident_id=incident.id, role=role, user_id=user_id, actor_id=actor_id
        )

    def change_severity(
        self, *, incident_id: int, severity: Severity, actor_id: str
    ) -> SeverityChange:
        return self.incidents.change_severity(
            incident_id=incident_id, severity=severity, actor_id=actor_id
        )

    def propose_containment(self, *, channel_id: str, actor_id: str) -> PublishProposal:
        incident = self.incidents.get_in_war_room_or_raise(channel_id)
        return PublishProposal(self.containment.containment.propose(incident.id, actor=actor_id))

    def set_containment_target(
        self, *, channel_id: str, action: ContainmentAction, target: str, actor_id: str
    ) -> PublishProposal:
        incident = self.incidents.get_in_war_room_or_raise(channel_id)
        service = self.containment.containment
        proposal = service.latest_proposal(incident.id)
        match = [
            a for a in proposal.actions if a.kind == action.value and a.state == State.PROPOSED
        ]
        if not match:
            raise UserError(f"The open proposal has no pending {action.label} to aim.")
        service.set_target(match[0].id, target=target, user_id=actor_id)
        return PublishProposal(proposal.id)

    def resolve(self, *, incident_id: int, actor_id: str) -> StateChange:
        return self.incidents.resolve(incident_id=incident_id, actor_id=actor_id)

    def set_flags(
        self,
        *,
        channel_id: str,
        personal_data: bool,
        public_facing: bool,
        ai_act_case: AiActCase | None,
        actor_id: str,
    ) -> FlagChange:
        incident = self.incidents.get_in_war_room_or_raise(channel_id)
        return self.incidents.set_flags(
            incident_id=incident.id,
            personal_data=personal_data,
            public_facing=public_facing,
            ai_act_case=ai_act_case,
            actor_id=actor_id,
        )

    def post_update(self, *, channel_id: str, text: str, actor_id: str) -> StatusUpdate:
        incident = self.incidents.get_in_war_room_or_raise(channel_id)
        return self.communications.updates.record(incident=incident, text=text, author_id=actor_id)

    def after_opening(self, incident_id: int) -> None:
        """Once the war room is open: containment for a critical incident, then the message
        drafts, legal report drafts and deadline timers."""
        self.containment.auto_propose(incident_id)
        self.communications.after_change(incident_id)

    def follow_up(self, work: FollowUp | object) -> None:
        """The Slack side of a change already stored: runs after Slack's 3-second ack; its
        log lines carry the incident's number."""
        incident = getattr(work, "incident", None)
        with log_context(incident=incident.number if isinstance(incident, Incident) else None):
            self._follow_up(work)

    def _follow_up(self, work: FollowUp | object) -> None:
        match work:
            case OpenDeclareForm(trigger_id=trigger_id, origin_channel_id=origin):
                self.open_declare_modal(trigger_id=trigger_id, origin_channel_id=origin)
            case OpenWarRoom(incident_id=incident_id):
                self.war_rooms.open_war_room(incident_id)
                self.after_opening(incident_id)
            case PublishProposal(proposal_id=proposal_id):
                self.containment.publish(proposal_id)
            case CarryOut(decision=decision):
                self.containment.carry_out(decision)
            case RoleChange(incident=incident, role=role, user_id=user_id):
                self.war_rooms.invite(incident, [user_id])
                self.war_rooms.refresh_card(incident.id)
                self.war_rooms.post_notice(
                    incident,
                    {
                        "kind": "role_assigned",
                        "role_label": role.label,
                        "user_id": user_id,
                        "previous_id": work.previous_id,
                        "actor_id": work.actor_id,
                    },
                )
                self.war_rooms.send_checklist(incident, role, user_id)
            case SeverityChange(incident=incident, previous=previous, actor_id=actor_id):
                self.war_rooms.refresh_card(incident.id)
                self.war_rooms.post_notice(
                    incident,
                    {
                        "kind": "severity_changed",
                        "previous": previous.value,
                        "actor_id": actor_id,
                    },
                )
                if incident.severity is Severity.CRITICAL:
                    self.war_rooms.raise_critical_alarm(incident.id)
                    self.containment.auto_propose(incident.id)
                self.communications.after_change(incident.id)
            case FlagChange(incident=incident, flags=flags, actor_id=actor_id):
                self.war_rooms.refresh_card(incident.id)
                self.war_rooms.post_notice(
                    incident, {"kind": "flagged", "flags": list(flags), "actor_id": actor_id}
                )
                self.communications.after_change(incident.id)
            case StatusUpdate():
                fan_out = self.communications.updates.fan_out(work)
                self.communications.reminders.close_cadence_reminder(
                    work.incident.id, actor_id=work.author_id
                )
                self.war_rooms.post_notice(
                    work.incident,
                    {
                        "kind": "status_update",
                        "actor_id": work.author_id,
                        "text": work.text,
                        "told": [a.label for a in fan_out.told],
                        "failed": [a.label for a in fan_out.failed + fan_out.unconfigured],
                    },
                )
            case SendNow(notification_id=notification_id, user_id=user_id):
                self.communications.notifications.send_now(notification_id, user_id=user_id)
            case OpenMessageForm(kind="edit", notification_id=notification_id, user_id=user_id):
                self.slack.open_view(
                    work.trigger_id,
                    self.communications.notifications.edit_form(notification_id, user_id=user_id),
                )
            case OpenMessageForm(notification_id=notification_id, user_id=user_id):
                self.slack.open_view(
                    work.trigger_id,
                    self.communications.notifications.skip_form(notification_id, user_id=user_id),
                )
            case RefreshDraft(notification_id=notification_id):
                self.communications.notifications.refresh(notification_id)
            case RefreshReport(clock_id=clock_id):
                self.communications.regulatory.refresh_report(clock_id)
            case _ if type(work) in self._follow_ups:
                self._follow_ups[type(work)](work)
            case StateChange(incident=incident, actor_id=actor_id):
                self.war_rooms.refresh_card(incident.id)
                self.war_rooms.post_notice(
                    incident, {"kind": incident.state.value, "actor_id": actor_id}
                )

    # -- replies ----------------------------------------------------------------------

    def help_message(self, commands: list[tuple[str, str]]) -> dict[str, Any]:
        return self.renderer.render("help", commands=commands)

    def list_message(self) -> dict[str, Any]:
        incidents, total = self.incidents.list_open_summaries(limit=LIST_LIMIT)
        # Read every time; rendered again only when what was read changed.
        return self.renderer.render_same(
            "incident_list",
            (tuple(incidents), total),
            lambda: {"incidents": [summary_context(i) for i in incidents], "total": total},
        )

    def status_message(self, incident: Incident) -> dict[str, Any]:
        status = self.incidents.status(incident.id)
        return self.renderer.render(
            "status",
            incident=incident_context(status.incident),
            deadlines=self.communications.deadlines(incident.id),
            timeline_count=status.timeline_count,
            containment=self.containment.status_lines(incident.id),
        )

    def declaring_message(self, result: DeclarationResult) -> dict[str, Any]:
        return self.renderer.render(
            "declaring", incident=incident_context(result.incident), created=result.created
        )

    def open_declare_modal(self, *, trigger_id: str, origin_channel_id: str) -> None:
        """Show the declaration form; the trigger is only valid for 3 seconds."""
        metadata = json.dumps({"channel_id": origin_channel_id})
        self.slack.open_view(trigger_id, self.declare_modal(private_metadata=metadata))

    def declare_modal(self, *, private_metadata: str) -> dict[str, Any]:
        return self.renderer.render(
            "declare_modal",
            private_metadata=private_metadata,
            let_warroom_decide=LET_WARROOM_DECIDE,
            flag_personal_data=FLAG_PERSONAL_DATA,
            flag_public_facing=FLAG_PUBLIC_FACING,
            **vocabulary_context(),
        )

    def declared_modal(self, result: DeclarationResult) -> dict[str, Any]:
        return self.renderer.render(
            "declared_modal", incident=incident_context(result.incident), created=result.created
        )

    def notice(self, message: str) -> dict[str, Any]:
        """An ephemeral answer that is not an error."""
        return self.renderer.render("ephemeral_notice", message=message)

    def user_error(self, message: str, usage: str | None = None) -> dict[str, Any]:
        return self.renderer.render("user_error", message=message, usage=usage)
