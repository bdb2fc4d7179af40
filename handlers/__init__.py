"""Thin adapters between Slack / HTTP and warroom's services."""

from __future__ import annotations

from slack_bolt import App

from bot.services.workflow import IncidentWorkflow
from handlers import (
    slack_actions,
    slack_commands,
    slack_containment,
    slack_notifications,
    slack_views,
)


def register_slack_listeners(app: App, workflow: IncidentWorkflow) -> None:
    """Every Slack listener, module by module."""
    slack_commands.register(app, workflow)
    slack_views.register(app, workflow)
    slack_actions.register(app, workflow)
    slack_containment.register(app, workflow)
    slack_notifications.register(app, workflow)
