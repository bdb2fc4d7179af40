"""`/incident drill [<scenario>]` and the drill report at `/incident resolve`."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.domain.commands import RunDrill
from bot.domain.vocabulary import IncidentState
from bot.services.drills import DrillService, DrillStarting
from bot.services.incidents import StateChange
from bot.services.workflow import IncidentWorkflow


def register(app: App, workflow: IncidentWorkflow, drills: DrillService) -> None:
    def answer_drill(parsed: RunDrill, command: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        if parsed.scenario is None:
            return drills.scenarios_message(), None
        starting = drills.start(
            parsed.scenario, actor_id=command["user_id"], channel_id=command.get("channel_id", "")
        )
        return drills.starting_message(starting), starting

    def begin(work: DrillStarting) -> None:
        drills.begin(work)

    def after_state_change(work: StateChange) -> None:
        # What the workflow does for every state change, then the drill's report at resolve.
        incident = work.incident
        workflow.war_rooms.refresh_card(incident.id)
        workflow.war_rooms.post_notice(
            incident, {"kind": incident.state.value, "actor_id": work.actor_id}
        )
        if incident.state is IncidentState.RESOLVED:
            drills.finish(incident.id)

    workflow.extend_command(RunDrill, answer_drill)
    workflow.extend_follow_up(DrillStarting, begin)
    workflow.extend_follow_up(StateChange, after_state_change)
