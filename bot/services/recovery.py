"""`/incident recover`: restore each affected system, validate it, and give capability back
in stages, each stage approved by the commander and gated by the validation before it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.incident import Incident
from bot.domain.recovery import (
    PlanState,
    StepKind,
    StepState,
    SystemRecovery,
    next_step,
    plan_recovery,
    state_on_reaching,
)
from bot.domain.vocabulary import IncidentState, Role
from bot.errors import PermissionDeniedError, UserError
from bot.presenters import incident_context
from bot.recovery_runner import RecoveryRunner
from bot.rendering import Renderer
from bot.services.history import record_change
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.recovery_repositories import PlanRecord, StepRecord
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# With no affected system named, the plan is for the incident's system as a whole, by hand.
UNNAMED_SYSTEM = "the affected system"
# Who may pass or fail a manual check besides those who approve changes.
CHECKERS = (Role.INCIDENT_COMMANDER, Role.AI_SAFETY_LEAD, Role.DATA_SCIENTIST)
_STATE_EMOJI = {
    StepState.PENDING: ":white_circle:",
    StepState.AWAITING_APPROVAL: ":raised_hand:",
    StepState.AWAITING_PERSON: ":raised_hand:",
    StepState.RUNNING: ":hourglass_flowing_sand:",
    StepState.DONE: ":white_check_mark:",
    StepState.PASSED: ":white_check_mark:",
    StepState.FAILED: ":x:",
}


@dataclass(frozen=True)
class RecoveryStarted:
    """The plan exists (made now or before); its message and first steps come after the ack."""

    plan_id: int
    created: bool


@dataclass(frozen=True)
class RecoveryDecision:
    """A step decided in the ack (approved, marked, retried); running it comes after."""

    plan_id: int
    step_id: int
    message: str


class RecoveryService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        runner: RecoveryRunner,
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._runner = runner

    # -- in the ack ----------------------------------------------------------------------

    def start(self, incident_id: int, *, actor_id: str) -> RecoveryStarted:
        """Make the plan, once: a second `/incident recover` shows the plan in progress."""
        now = self._clock.now()
        with self._uow() as uow:
            incident = _incident(uow, incident_id)
            if not incident.state.is_open:
                raise UserError(f"Incident #{incident.number} is {incident.state.value}.")
            existing = uow.recovery.open_plan(incident_id)
            if existing is not None:
                return RecoveryStarted(plan_id=existing.id, created=False)
            latest = uow.recovery.latest_plan(incident_id)
            if latest is not None and latest.completed_at is not None:
                raise UserError(
                    f"Recovery of incident #{incident.number} is already complete "
                    f"({latest.completed_at:%Y-%m-%d %H:%M} UTC); `/incident resolve` when "
                    "you are satisfied."
                )
            specs = plan_recovery(self._systems(incident), stages=self._config.recovery.stages)
            plan_id = uow.recovery.add_plan(
                incident_id,
                specs,
                created_by=actor_id,
                now=now,
                incident_number=incident.number,
            )
            record_change(
                uow,
                incident_id,
                AuditAction.RECOVERY_STARTED,
                actor=actor_id,
                now=now,
                summary=f"Recovery plan: {len(specs)} steps for "
                + ", ".join(sorted({s.system for s in specs})),
                data={"plan_id": plan_id, "steps": len(specs)},
            )
            uow.commit()
        return RecoveryStarted(plan_id=plan_id, created=True)

    def approve(self, step_id: int, *, user_id: str) -> RecoveryDecision:
        """The commander approves a change (restore or stage) that calls an endpoint."""
        step, incident = self._step_and_incident(step_id)
        self._check(incident, user_id, change=True)
        with self._uow() as uow:
            if not uow.recovery.move_step(
                step_id,
                from_states=(StepState.AWAITING_APPROVAL,),
                to=StepState.RUNNING,
                now=self._clock.now(),
                approved_by=user_id,
            ):
                raise UserError("That step is not waiting for approval any more.")
            self._record_step(uow, step, f"approved by <@{user_id}>", actor=user_id)
            uow.commit()
        return RecoveryDecision(step.plan_id, step_id, f"Approved: {step.title}.")

    def mark(self, step_id: int, *, user_id: str, passed: bool) -> RecoveryDecision:
        """A person says a manual step is done, or a manual check passed or failed."""
        step, incident = self._step_and_incident(step_id)
        self._check(incident, user_id, change=step.kind is not StepKind.VALIDATE)
        if step.kind is not StepKind.VALIDATE and not passed:
            raise UserError("A manual change is marked done; if it cannot be done, say why here.")
        outcome = (
            (StepState.PASSED if passed else StepState.FAILED)
            if step.kind is StepKind.VALIDATE
            else StepState.DONE
        )
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.recovery.move_step(
                step_id,
                from_states=(StepState.AWAITING_PERSON,),
                to=outcome,
                now=now,
                approved_by=user_id,
                result={"by": user_id, "detail": "marked by hand"},
            ):
                raise UserError("That step is not waiting for anyone any more.")
            self._record_step(uow, step, f"{outcome.value} (<@{user_id}>)", actor=user_id)
            if outcome is StepState.FAILED:
                self._hold(uow, step, detail=f"<@{user_id}> marked it failed", actor=user_id)
            uow.commit()
        return RecoveryDecision(step.plan_id, step_id, f"{step.title}: {outcome.value}.")

    def retry(self, step_id: int, *, user_id: str) -> RecoveryDecision:
        """Run a failed step again (after fixing what failed)."""
        step, incident = self._step_and_incident(step_id)
        self._check(incident, user_id, change=True)
        with self._uow() as uow:
            if not uow.recovery.move_step(
                step_id,
                from_states=(StepState.FAILED,),
                to=StepState.PENDING,
                now=self._clock.now(),
            ):
                raise UserError("That step has not failed.")
            uow.recovery.set_plan_state(step.plan_id, PlanState.IN_PROGRESS)
            self._record_step(uow, step, f"retried by <@{user_id}>", actor=user_id)
            uow.commit()
        return RecoveryDecision(step.plan_id, step_id, f"Retrying: {step.title}.")

    # -- after the ack -------------------------------------------------------------------

    def carry_out(self, step_id: int) -> None:
        """Call an approved step's endpoint; the step is done or failed, then the plan moves."""
        with self._uow(read_only=True) as uow:
            step = uow.recovery.step(step_id)
            incident = _incident(uow, step.incident_id) if step else None
        if step is None or incident is None or step.state is not StepState.RUNNING:
            return
        if step.kind is StepKind.VALIDATE:
            self._run_check(step, incident)
            return
        result = self._runner.change(
            system=step.system,
            kind=step.kind,
            percent=step.stage_percent,
            incident_number=incident.number,
            idempotency_key=step.idempotency_key,
        )
        detail = result.error or f"HTTP {result.status_code} in {result.latency_ms:.0f} ms"
        with self._uow() as uow:
            uow.recovery.move_step(
                step.id,
                from_states=(StepState.RUNNING,),
                to=StepState.DONE if result.ok else StepState.FAILED,
                now=self._clock.now(),
                result={"ok": result.ok, "status": result.status_code, "detail": detail},
            )
            self._record_step(uow, step, f"{'done' if result.ok else 'failed'}: {detail}")
            if not result.ok:
                self._hold(uow, step, detail=detail)
            uow.commit()

    def advance(self, plan_id: int) -> PlanState:
        """Move the plan as far as it can go by itself: run due checks, reach the next step
        that needs a person, hold at a failure, or complete; then show where it stands."""
        while True:
            with self._uow() as uow:
                plan = uow.recovery.plan(plan_id)
                if plan is None:
                    raise UserError("That recovery plan no longer exists.")
                steps = uow.recovery.steps(plan_id)
                current = next_step([s.as_step() for s in steps])
                if current is None:
                    state = self._complete(uow, plan)
                    uow.commit()
                    break
                record = next(s for s in steps if s.id == current.id)
                if current.state is StepState.PENDING:
                    reached = state_on_reaching(current)
                    uow.recovery.move_step(
                        current.id,
                        from_states=(StepState.PENDING,),
                        to=reached,
                        now=self._clock.now(),
                    )
                    uow.commit()
                    if reached is StepState.RUNNING:
                        self.carry_out(current.id)
                        continue
                    state = PlanState.IN_PROGRESS
                    break
                if current.state is StepState.RUNNING and record.kind is StepKind.VALIDATE:
                    uow.commit()
                    self.carry_out(current.id)
                    continue
                state = PlanState.HELD if current.state is StepState.FAILED else plan.state
                uow.commit()
                break
        self.publish(plan_id)
        return state

    def publish(self, plan_id: int) -> None:
        """Post the plan in the war room, or update the message that shows it."""
        with self._uow(read_only=True) as uow:
            plan = uow.recovery.plan(plan_id)
            assert plan is not None
            incident = _incident(uow, plan.incident_id)
            message = self.render(plan, uow.recovery.steps(plan_id), incident)
        if incident.channel_id is None:
            return
        if plan.channel_id and plan.message_ts:
            self._slack.update(plan.channel_id, plan.message_ts, message)
            return
        ts = self._slack.post(incident.channel_id, message)
        with self._uow() as uow:
            uow.recovery.set_plan_message(plan_id, channel_id=incident.channel_id, ts=ts)
            uow.commit()

    def render(
        self, plan: PlanRecord, steps: list[StepRecord], incident: Incident
    ) -> dict[str, Any]:
        current = next_step([s.as_step() for s in steps])
        return self._renderer.render(
            "recovery/plan",
            incident=incident_context(incident),
            plan={
                "id": plan.id,
                "state": plan.state.value,
                "done": sum(1 for s in steps if s.state.settled),
                "total": len(steps),
            },
            steps=[_step_context(s, current_id=current.id if current else None) for s in steps],
            commander_id=incident.holder(Role.INCIDENT_COMMANDER),
        )

    # -- plumbing ------------------------------------------------------------------------

    def _run_check(self, step: StepRecord, incident: Incident) -> None:
        check = dict(step.spec.get("check") or {})
        verdict = self._runner.check(check, system=step.system, incident_number=incident.number)
        with self._uow() as uow:
            uow.recovery.move_step(
                step.id,
                from_states=(StepState.RUNNING,),
                to=StepState.PASSED if verdict.passed else StepState.FAILED,
                now=self._clock.now(),
                result={"ok": verdict.passed, "detail": verdict.detail},
            )
            self._record_step(
                uow, step, f"{'passed' if verdict.passed else 'failed'}: {verdict.detail}"
            )
            if not verdict.passed:
                self._hold(uow, step, detail=verdict.detail)
            uow.commit()

    def _hold(
        self, uow: UnitOfWork, step: StepRecord, *, detail: str, actor: str = "warroom"
    ) -> None:
        uow.recovery.set_plan_state(step.plan_id, PlanState.HELD)
        record_change(
            uow,
            step.incident_id,
            AuditAction.RECOVERY_HELD,
            actor=actor,
            now=self._clock.now(),
            summary=f"Recovery held at “{step.title}”: {detail}",
            data={"plan_id": step.plan_id, "step": step.seq, "detail": detail},
        )

    def _complete(self, uow: UnitOfWork, plan: PlanRecord) -> PlanState:
        if plan.state is PlanState.COMPLETED:
            return PlanState.COMPLETED
        now = self._clock.now()
        uow.recovery.set_plan_state(plan.id, PlanState.COMPLETED, completed_at=now)
        incident = _incident(uow, plan.incident_id)
        for state in (IncidentState.DECLARED, IncidentState.CONTAINED):
            if incident.state is state:
                uow.incidents.move_state(
                    incident.id, to=IncidentState.RECOVERING, when=state, now=now
                )
        record_change(
            uow,
            plan.incident_id,
            AuditAction.RECOVERY_COMPLETED,
            actor="warroom",
            now=now,
            summary="Recovery complete: every system restored, validated and at full capability",
            data={"plan_id": plan.id},
        )
        return PlanState.COMPLETED

    def _record_step(
        self, uow: UnitOfWork, step: StepRecord, what: str, *, actor: str = "warroom"
    ) -> None:
        record_change(
            uow,
            step.incident_id,
            AuditAction.RECOVERY_STEP,
            actor=actor,
            now=self._clock.now(),
            summary=f"Recovery step {step.seq} “{step.title}”: {what}",
            data={"plan_id": step.plan_id, "step": step.seq, "system": step.system},
        )

    def _systems(self, incident: Incident) -> list[SystemRecovery]:
        names = list(incident.affected_systems) or [UNNAMED_SYSTEM]
        systems = []
        for name in names:
            settings = self._config.recovery.system(name)
            checks = [
                {
                    "name": check.name,
                    "url": check.url,
                    "method": check.method,
                    "status": check.status,
                    "json_field": check.json_field,
                    "equals": check.equals,
                    "headers": dict(check.headers),
                    "timeout_seconds": check.timeout.total_seconds(),
                }
                for check in self._config.recovery.checks_for(name)
            ]
            systems.append(
                SystemRecovery(
                    name=name,
                    restore_manual=settings.restore is None,
                    stage_manual=settings.stage is None,
                    checks=checks,
                )
            )
        return systems

    def _step_and_incident(self, step_id: int) -> tuple[StepRecord, Incident]:
        with self._uow(read_only=True) as uow:
            step = uow.recovery.step(step_id)
            if step is None:
                raise UserError("That recovery step no longer exists.")
            return step, _incident(uow, step.incident_id)

    def _check(self, incident: Incident, user_id: str, *, change: bool) -> None:
        allowed = {incident.holder(Role.INCIDENT_COMMANDER), *self._config.containment.approvers}
        if not change:
            allowed |= {incident.holder(role) for role in CHECKERS}
        if user_id not in allowed:
            who = (
                "the incident commander"
                if change
                else "the commander, AI safety lead or data scientist"
            )
            raise PermissionDeniedError(f"Only {who} decides this recovery step.")

    def prompt_reopen(self, incident_id: int, alert_title: str, declared: list[int]) -> None:
        """Ask the war room of a resolved incident whether a related alert means it is back."""
        with self._uow(read_only=True) as uow:
            incident = _incident(uow, incident_id)
            numbers = [uow.incidents.get(i) for i in declared]
        if incident.channel_id is None:
            return
        self._slack.post(
            incident.channel_id,
            self._renderer.render(
                "recovery/reopen_prompt",
                incident=incident_context(incident),
                alert_title=alert_title,
                new_incident_number=next((i.number for i in numbers if i is not None), None),
                commander_id=incident.holder(Role.INCIDENT_COMMANDER),
            ),
        )

    def check_reopen(self, incident_id: int, user_id: str) -> None:
        """Only the commander (or an approver) re-opens an incident."""
        with self._uow(read_only=True) as uow:
            incident = _incident(uow, incident_id)
        self._check(incident, user_id, change=True)

    def open_plan_id(self, incident_id: int) -> int | None:
        with self._uow(read_only=True) as uow:
            plan = uow.recovery.latest_plan(incident_id)
        return plan.id if plan else None


def _incident(uow: UnitOfWork, incident_id: int) -> Incident:
    incident = uow.incidents.get(incident_id)
    if incident is None:
        raise LookupError(f"no incident with id {incident_id}")
    return incident


def _step_context(step: StepRecord, *, current_id: int | None) -> dict[str, Any]:
    return {
        "id": step.id,
        "button_value": str(step.id),
        "seq": step.seq,
        "system": step.system,
        "kind": step.kind.value,
        "title": step.title,
        "state": step.state.value,
        "emoji": _STATE_EMOJI[step.state],
        "manual": step.manual,
        "current": step.id == current_id,
        "detail": str(step.result.get("detail", "")),
        "approved_by": step.approved_by,
    }
