"""Containment: propose by policy, let only the allowed people decide, carry each approved
action out exactly once, and move the incident to `contained` when everything is in effect."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.containment import (
    ActionOutcome,
    AtlasMitigation,
    ContainmentAction,
    ContainmentPlan,
    ProposedAction,
    assess_residual_risk,
    propose_containment,
)
from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentState, Role
from bot.errors import NotFoundError, UserError
from bot.services.history import record_change

if TYPE_CHECKING:
    from bot.services.audit import EvidenceService
    from storage.repositories import ContainmentActionRecord, ContainmentProposalRecord
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class PermissionDeniedError(UserError):
    """Someone who may not decide on containment tried to."""


class ExecutionOutcome(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def response_excerpt(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def breaker_open(self) -> bool: ...


class ActionRunner(Protocol):
    """What carries an action out over HTTP (see bot/containment_executor.py)."""

    def has_endpoint(self, action: ContainmentAction) -> bool: ...

    def missing_fields(self, action: ContainmentAction, incident: Incident) -> set[str]: ...

    def execute(
        self,
        action: ContainmentAction,
        incident: Incident,
        *,
        idempotency_key: str,
        target: str | None = None,
    ) -> ExecutionOutcome: ...


class State:
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    MANUAL_OPEN = "manual_open"
    MANUAL_DONE = "manual_done"


_OUTCOME = {
    State.PROPOSED: ActionOutcome.PENDING,
    State.APPROVED: ActionOutcome.PENDING,
    State.EXECUTING: ActionOutcome.PENDING,
    State.SUCCEEDED: ActionOutcome.SUCCEEDED,
    State.FAILED: ActionOutcome.FAILED,
    State.REJECTED: ActionOutcome.REJECTED,
    State.EXPIRED: ActionOutcome.REJECTED,
    State.MANUAL_OPEN: ActionOutcome.MANUAL_OPEN,
    State.MANUAL_DONE: ActionOutcome.MANUAL_DONE,
}
_IN_EFFECT = (State.SUCCEEDED, State.MANUAL_DONE)
_SET_ASIDE = (State.REJECTED, State.EXPIRED)


@dataclass(frozen=True)
class Decision:
    """What one click did: its proposal, the action ids now due to run, what to tell the
    clicker."""

    proposal_id: int
    to_execute: tuple[int, ...]
    message: str


class ContainmentService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        config: WarroomConfig,
        runner: ActionRunner,
        evidence: EvidenceService | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._config = config
        self._runner = runner
        self._evidence = evidence

    # -- proposing -----------------------------------------------------------------------

    def propose(self, incident_id: int, *, actor: str) -> int:
        """Store the policy's plan as a proposal awaiting decisions; returns its id."""
        now = self._clock.now()
        with self._uow() as uow:
            incident = uow.incidents.get(incident_id)
            if incident is None:
                raise NotFoundError(f"There is no incident with id {incident_id}.")
            if not incident.state.is_open:
                raise UserError(f"Incident #{incident.number} is {incident.state.value}.")
            plan = propose_containment(incident, now=now)
            proposal_id = uow.containment.add_proposal(
                incident_id,
                proposed_by=actor,
                now=now,
                expires_at=now + self._config.containment.proposal_ttl,
            )
            for action in plan.actions:
                self._add_action(uow, proposal_id, incident, action, now)
            uow.audit.append(
                incident_id,
                actor=actor,
                action=AuditAction.PROPOSED,
                now=now,
                detail={"proposal": proposal_id, "actions": [a.kind.value for a in plan.actions]},
            )
            uow.timeline.add(
                incident_id,
                kind="containment_proposed",
                actor_id=actor,
                now=now,
                summary=f"Containment proposed: {', '.join(a.kind.label for a in plan.actions)}",
                data={"proposal": proposal_id},
            )
            uow.commit()
        return proposal_id

    def _add_action(
        self,
        uow: UnitOfWork,
        proposal_id: int,
        incident: Incident,
        action: ProposedAction,
        now: Any,
    ) -> None:
        manual = not self._runner.has_endpoint(action.kind)
        missing = set() if manual else self._runner.missing_fields(action.kind, incident)
        uow.containment.add_action(
            proposal_id,
            incident.id,
            now=now,
            kind=action.kind.value,
            state=State.PROPOSED,
            idempotency_key=f"warroom-{incident.number}-{action.key}-{uuid.uuid4().hex[:12]}",
            target=action.target,
            target_needed=action.target_needed or bool(missing),
            manual=manual,
            emergency=action.emergency,
            role=action.default_role.value,
            reason=action.reason,
            expected_impact=action.expected_impact,
            atlas=[f"{m.id} {m.name}" for m in action.atlas_mitigations],
            approvals_needed=2 if action.kind.value in self._config.containment.two_person else 1,
        )

    def find_latest_proposal(self, incident_id: int) -> ContainmentProposalRecord | None:
        with self._uow(read_only=True) as uow:
            return uow.containment.latest_proposal(incident_id)

    def record_message(self, proposal_id: int, *, channel_id: str, ts: str) -> None:
        """Where the proposal was posted, so later changes update it in place."""
        with self._uow() as uow:
            uow.containment.set_message(proposal_id, channel_id=channel_id, ts=ts)
            uow.commit()

    def latest_proposal(self, incident_id: int) -> ContainmentProposalRecord:
        proposal = self.find_latest_proposal(incident_id)
        if proposal is None:
            raise UserError("There is no containment proposal yet: run `/incident contain`.")
        return proposal

    def incident_of(self, *, action_id: int | None = None, proposal_id: int | None = None) -> int:
        """The incident an action or a proposal belongs to."""
        if action_id is not None:
            return self._action(action_id).incident_id
        assert proposal_id is not None
        return self.proposal(proposal_id).incident_id

    def proposal(self, proposal_id: int) -> ContainmentProposalRecord:
        with self._uow(read_only=True) as uow:
            proposal = uow.containment.proposal(proposal_id)
        if proposal is None:
            raise NotFoundError("That containment proposal no longer exists.")
        return proposal

    # -- deciding ------------------------------------------------------------------------

    def approvers(self, incident: Incident) -> list[str]:
        """Who may decide: the incident's commander and the configured approvers."""
        people = [incident.holder(Role.INCIDENT_COMMANDER)]
        people += self._config.containment.approvers
        return list(dict.fromkeys(p for p in people if p))

    def check_approver(self, incident_id: int, user_id: str, *, attempted: str) -> None:
        """The role guard: raise PermissionDeniedError (audited) unless `user_id` may decide."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        allowed = self.approvers(incident)
        if user_id in allowed:
            return
        now = self._clock.now()
        with self._uow() as uow:
            uow.audit.append(
                incident.id,
                actor=user_id,
                action=AuditAction.REFUSED,
                now=now,
                detail={"attempted": attempted},
            )
            uow.commit()
        who = ", ".join(f"<@{p}>" for p in allowed) or "nobody (no commander assigned)"
        raise PermissionDeniedError(
            f"Only the incident commander and the configured approvers may decide on "
            f"containment: {who}."
        )

    def decide(self, action_id: int, *, user_id: str, approve: bool) -> Decision:
        """Record one approval or rejection; returns the actions now due to run."""
        now = self._clock.now()
        with self._uow() as uow:
            action, proposal = self._open_action(uow, action_id, now)
            if approve and action.target_needed:
                raise UserError(
                    f"{_label(action.kind)} needs a target first (the incident names no model "
                    "or system): set it with `/incident contain target <action> <name>`."
                )
            if not uow.containment.record_decision(
                action_id, user_id=user_id, decision="approve" if approve else "reject", now=now
            ):
                return Decision(proposal.id, (), f"You already decided on {_label(action.kind)}.")
            if not approve:
                uow.containment.move(action_id, to=State.REJECTED, when=(State.PROPOSED,), now=now)
                message = f"{_label(action.kind)} rejected."
                due: tuple[int, ...] = ()
            else:
                approvals = len(action.approvers) + 1
                if approvals < action.approvals_needed:
                    message = (
                        f"{_label(action.kind)} needs a second approver (two-person rule); "
                        "your approval is recorded."
                    )
                    due = ()
                else:
                    target = State.MANUAL_OPEN if action.manual else State.APPROVED
                    moved = uow.containment.move(
                        action_id, to=target, when=(State.PROPOSED,), now=now
                    )
                    due = (action_id,) if moved and not action.manual else ()
                    message = f"{_label(action.kind)} approved" + (
                        f"; it is a manual step for the {Role(action.role).label}."
                        if action.manual
                        else "; carrying it out."
                    )
            uow.audit.append(
                action.incident_id,
                actor=user_id,
                action=AuditAction.APPROVED if approve else AuditAction.REJECTED,
                now=now,
                detail={"action": action.kind, "action_id": action_id, "proposal": proposal.id},
            )
            uow.commit()
        return Decision(proposal.id, due, message)

    def approve_all(self, proposal_id: int, *, user_id: str) -> Decision:
        """Approve every action still open in the proposal (skips those needing a target)."""
        due: list[int] = []
        skipped: list[str] = []
        for action in self.proposal(proposal_id).actions:
            if action.state != State.PROPOSED or user_id in action.approvers:
                continue
            if action.target_needed:
                skipped.append(_label(action.kind))
                continue
            due += self.decide(action.id, user_id=user_id, approve=True).to_execute
        message = "Approved every open action."
        if skipped:
            message += f" Needing a target first: {', '.join(skipped)}."
        return Decision(proposal_id, tuple(due), message)

    def set_target(self, action_id: int, *, target: str, user_id: str) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            self._open_action(uow, action_id, now)
            uow.containment.set_target(action_id, target=target, now=now)
            uow.commit()

    def _open_action(
        self, uow: UnitOfWork, action_id: int, now: Any
    ) -> tuple[ContainmentActionRecord, ContainmentProposalRecord]:
        action = uow.containment.action(action_id)
        if action is None:
            raise NotFoundError("That containment action no longer exists.")
        proposal = uow.containment.proposal(action.proposal_id)
        assert proposal is not None
        if action.state == State.PROPOSED and now >= proposal.expires_at:
            uow.containment.move(action_id, to=State.EXPIRED, when=(State.PROPOSED,), now=now)
            uow.audit.append(
                action.incident_id,
                actor="warroom",
                action=AuditAction.EXPIRED,
                now=now,
                detail={"action": action.kind, "action_id": action_id},
            )
            uow.commit()
            raise UserError(
                f"This proposal expired at {proposal.expires_at:%H:%M} UTC. "
                "Run `/incident contain` to propose again."
            )
        if action.state != State.PROPOSED:
            raise UserError(f"{_label(action.kind)} is already {action.state.replace('_', ' ')}.")
        return action, proposal

    def _action(self, action_id: int) -> ContainmentActionRecord:
        with self._uow(read_only=True) as uow:
            action = uow.containment.action(action_id)
        if action is None:
            raise NotFoundError("That containment action no longer exists.")
        return action

    # -- carrying out --------------------------------------------------------------------

    def execute(self, action_id: int) -> bool:
        """Carry out an approved action, once whatever the clicks; True if this call ran it."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.containment.move(
                action_id, to=State.EXECUTING, when=(State.APPROVED,), now=now
            ):
                return False
            action = uow.containment.action(action_id)
            assert action is not None
            uow.audit.append(
                action.incident_id,
                actor="warroom",
                action=AuditAction.EXECUTED,
                now=now,
                detail={"action": action.kind, "idempotency_key": action.idempotency_key},
            )
            incident = uow.incidents.get(action.incident_id)
            uow.commit()
        assert incident is not None
        if self._evidence is not None:
            self._evidence.preserve(incident.id, reason=f"before containment: {action.kind}")
        result = self._runner.execute(
            ContainmentAction(action.kind),
            incident,
            idempotency_key=action.idempotency_key,
            target=action.target_override,
        )
        outcome = {
            "ok": result.ok,
            "status_code": result.status_code,
            "latency_ms": round(result.latency_ms, 1),
            "response": result.response_excerpt,
            "error": result.error,
            "attempts": result.attempts,
            "breaker_open": result.breaker_open,
        }
        done = self._clock.now()
        with self._uow() as uow:
            uow.containment.move(
                action_id,
                to=State.SUCCEEDED if result.ok else State.FAILED,
                when=(State.EXECUTING,),
                now=done,
                result=outcome,
            )
            uow.audit.append(
                action.incident_id,
                actor="warroom",
                action=AuditAction.SUCCEEDED if result.ok else AuditAction.FAILED,
                now=done,
                detail={"action": action.kind, **outcome},
            )
            uow.timeline.add(
                action.incident_id,
                kind="containment_executed",
                actor_id="warroom",
                now=done,
                summary=f"{_label(action.kind)} "
                + ("succeeded" if result.ok else f"failed: {result.error or result.status_code}"),
                data={"action": action.kind, **outcome},
            )
            uow.commit()
        return True

    def retry(self, action_id: int, *, user_id: str) -> Decision:
        """Put a failed action back to approved so it runs again (same idempotency key)."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.containment.move(
                action_id, to=State.APPROVED, when=(State.FAILED,), now=now
            ):
                raise UserError("Only a failed action can be retried.")
            uow.commit()
        action = self._action(action_id)
        return Decision(action.proposal_id, (action_id,), f"Retrying {_label(action.kind)}.")

    def mark_done(self, action_id: int, *, user_id: str) -> Decision:
        now = self._clock.now()
        with self._uow() as uow:
            action = uow.containment.action(action_id)
            if action is None:
                raise NotFoundError("That containment action no longer exists.")
            if not uow.containment.move(
                action_id, to=State.MANUAL_DONE, when=(State.MANUAL_OPEN,), now=now
            ):
                raise UserError(f"{_label(action.kind)} is not an open manual step.")
            uow.audit.append(
                action.incident_id,
                actor=user_id,
                action=AuditAction.SUCCEEDED,
                now=now,
                detail={"action": action.kind, "manual": True},
            )
            uow.commit()
        return Decision(action.proposal_id, (), f"{_label(action.kind)} marked done.")

    def settle(self, proposal_id: int) -> bool:
        """Assess residual risk; move the incident to `contained` once everything approved is
        in effect. True when this call contained it."""
        now = self._clock.now()
        with self._uow() as uow:
            # Read inside the write transaction: two settles racing see each other's result.
            proposal = uow.containment.proposal(proposal_id)
            if proposal is None:
                raise NotFoundError("That containment proposal no longer exists.")
            incident = uow.incidents.get(proposal.incident_id)
            assert incident is not None
            results = {ContainmentAction(a.kind): _OUTCOME[a.state] for a in proposal.actions}
            residual = assess_residual_risk(incident, _plan(proposal, incident), results)
            uow.containment.set_residual(
                proposal_id,
                {
                    "level": residual.level.value,
                    "uncovered": list(residual.uncovered),
                    "summary": residual.summary,
                },
            )
            contained = _all_in_effect(proposal.actions)
            changed = contained and uow.incidents.move_state(
                incident.id, to=IncidentState.CONTAINED, when=IncidentState.DECLARED, now=now
            )
            if changed:
                record_change(
                    uow,
                    incident.id,
                    AuditAction.STATE_CHANGED,
                    actor="warroom",
                    now=now,
                    summary="State declared → contained (every approved action in effect)",
                    data={"from": "declared", "to": "contained"},
                )
            uow.commit()
        return changed


def _all_in_effect(actions: Sequence[ContainmentActionRecord]) -> bool:
    live = [a for a in actions if a.state not in _SET_ASIDE]
    return bool(live) and all(a.state in _IN_EFFECT for a in live)


def _label(kind: str) -> str:
    return ContainmentAction(kind).label


def _plan(proposal: ContainmentProposalRecord, incident: Incident) -> ContainmentPlan:
    def mitigation(text: str) -> AtlasMitigation:
        ident, _, name = text.partition(" ")
        return AtlasMitigation(id=ident, name=name)

    return ContainmentPlan(
        incident_id=incident.id,
        incident_number=incident.number,
        actions=tuple(
            ProposedAction(
                kind=ContainmentAction(a.kind),
                target=a.target,
                reason=a.reason,
                expected_impact=a.expected_impact,
                atlas_mitigations=tuple(mitigation(m) for m in a.atlas),
                default_role=Role(a.role),
                order=index,
                key=a.kind,
                emergency=a.emergency,
                target_needed=a.target_needed,
            )
            for index, a in enumerate(proposal.actions)
        ),
        proposed_at=proposal.proposed_at,
        summary="",
    )
