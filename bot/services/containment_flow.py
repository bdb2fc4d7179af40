"""The Slack side of containment: post the proposal, update it in place, run what is due."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.domain.containment import ContainmentAction
from bot.domain.vocabulary import Role, Severity
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.containment import ContainmentService, Decision, State
from bot.services.incidents import IncidentService
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from bot.domain.incident import Incident
    from storage.repositories import ContainmentActionRecord, ContainmentProposalRecord

_STATE_LABELS = {
    State.PROPOSED: "awaiting a decision",
    State.APPROVED: "approved, starting",
    State.EXECUTING: "running",
    State.SUCCEEDED: "done",
    State.FAILED: "failed",
    State.REJECTED: "rejected",
    State.EXPIRED: "expired",
    State.MANUAL_OPEN: "approved, to be done by hand",
    State.MANUAL_DONE: "done by hand",
}


@dataclass
class ContainmentFlow:
    containment: ContainmentService
    incidents: IncidentService
    war_rooms: WarRoomService
    renderer: Renderer
    slack: SlackGateway

    def propose(self, incident_id: int, *, actor: str) -> int:
        """Store a proposal and post it in the war room."""
        proposal_id = self.containment.propose(incident_id, actor=actor)
        self.publish(proposal_id)
        return proposal_id

    def auto_propose(self, incident_id: int) -> None:
        """Critical incidents get their containment proposal (emergencies first) at once."""
        incident = self.incidents.get(incident_id)
        if incident.severity is Severity.CRITICAL and incident.state.is_open:
            if self.containment.find_latest_proposal(incident_id) is not None:
                return
            self.propose(incident_id, actor="warroom")

    def publish(self, proposal_id: int) -> None:
        """Post the proposal, or re-render it in place after a change."""
        proposal = self.containment.proposal(proposal_id)
        incident = self.incidents.get(proposal.incident_id)
        if not incident.channel_id:
            return
        message = self.renderer.render(
            "containment_proposal",
            incident=incident_context(incident),
            proposal=self.proposal_context(proposal, incident),
        )
        if proposal.message_ts and proposal.channel_id:
            self.slack.update(proposal.channel_id, proposal.message_ts, message)
            return
        ts = self.slack.post(incident.channel_id, message)
        self.containment.record_message(proposal_id, channel_id=incident.channel_id, ts=ts)

    def carry_out(self, decision: Decision) -> None:
        """Run the actions a decision made due, settle the incident, refresh what people see."""
        for action_id in decision.to_execute:
            self.containment.execute(action_id)
        self.settle(decision.proposal_id)

    def settle(self, proposal_id: int) -> None:
        if self.containment.settle(proposal_id):
            incident = self.incidents.get(self.containment.proposal(proposal_id).incident_id)
            self.war_rooms.refresh_card(incident.id)
            self.war_rooms.post_notice(incident, {"kind": "contained", "actor_id": "warroom"})
        self.publish(proposal_id)

    def status_lines(self, incident_id: int) -> list[str]:
        """The latest proposal's actions and where each stands, for `/incident status`."""
        proposal = self.containment.find_latest_proposal(incident_id)
        if proposal is None:
            return []
        return [
            f"{ContainmentAction(a.kind).label}: {_STATE_LABELS.get(a.state, a.state)}"
            + (
                f" ({len(a.approvers)} of {a.approvals_needed} approvals)"
                if a.state == State.PROPOSED and a.approvals_needed > 1
                else ""
            )
            for a in proposal.actions
        ]

    def proposal_context(
        self, proposal: ContainmentProposalRecord, incident: Incident
    ) -> dict[str, Any]:
        return {
            "id": proposal.id,
            "proposed_by": proposal.proposed_by,
            "expires_at": proposal.expires_at,
            "approvers": self.containment.approvers(incident),
            "residual": proposal.residual,
            "actions": [_action_context(action) for action in proposal.actions],
        }


def _action_context(action: ContainmentActionRecord) -> dict[str, Any]:
    decided = []
    if action.approvers:
        decided.append("Approved by " + ", ".join(f"<@{u}>" for u in action.approvers))
    if action.rejected_by:
        decided.append("Rejected by " + ", ".join(f"<@{u}>" for u in action.rejected_by))
    result = action.result
    result_line = ""
    if result:
        if result.get("breaker_open"):
            result_line = "not called: the endpoint's circuit breaker is open"
        elif result.get("ok"):
            result_line = f"HTTP {result.get('status_code')} in {result.get('latency_ms')} ms"
        else:
            result_line = f"failed after {result.get('attempts')} attempts: " + str(
                result.get("error") or f"HTTP {result.get('status_code')}"
            )
    return {
        "id": action.id,
        "kind": action.kind,
        "label": ContainmentAction(action.kind).label,
        "state": action.state,
        "state_label": _STATE_LABELS.get(action.state, action.state),
        "target": action.target_override or action.target,
        "target_needed": action.target_needed,
        "manual": action.manual,
        "emergency": action.emergency,
        "role_label": Role(action.role).label,
        "reason": action.reason,
        "impact": action.expected_impact,
        "atlas": list(action.atlas),
        "approvals_needed": action.approvals_needed,
        "approvers": list(action.approvers),
        "decided": "; ".join(decided),
        "result_line": result_line,
    }
