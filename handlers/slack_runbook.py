"""`/incident runbook`: the ack says it is coming; the runbook is published after it."""

from __future__ import annotations

from typing import Any

from bot.domain.commands import ShowRunbook
from bot.runbook import PublishRunbook, RunbookPublisher
from bot.services.workflow import IncidentWorkflow


def register(workflow: IncidentWorkflow, runbook: RunbookPublisher) -> None:
    def answer(_: ShowRunbook, command: dict[str, Any]) -> tuple[dict[str, Any], PublishRunbook]:
        reply = workflow.notice(
            "Rendering the runbook from the live configuration; it will appear in this "
            "channel in a moment."
        )
        return reply, PublishRunbook(
            channel_id=command.get("channel_id", ""), user_id=command["user_id"]
        )

    workflow.extend_command(ShowRunbook, answer)
    workflow.extend_follow_up(PublishRunbook, runbook.publish)
