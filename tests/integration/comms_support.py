"""Shared set-up for the communications tests: every audience has a channel in the emulator."""

from __future__ import annotations

from typing import Any

from bot.app import Warroom, create_app
from bot.config import WarroomConfig, parse_config
from bot.domain.incident import Declaration, Incident
from bot.domain.vocabulary import AiActCase, Audience, IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.services.workflow import OpenWarRoom
from tests.conftest import TEST_CONFIG, make_settings

AUDIENCE_CHANNELS = {
    audience: f"C0{audience.value.upper().replace('_', '')[:9]}" for audience in Audience
}


def comms_config(**overrides: Any) -> WarroomConfig:
    return parse_config(
        {
            **TEST_CONFIG,
            "audiences": {a.value: [channel] for a, channel in AUDIENCE_CHANNELS.items()},
            "notifications": {"channel_pace": 0},
            "regulatory": {"contact": "dpo@example.com"},
            **overrides,
        }
    )


def add_audience_channels(emulator: SlackEmulator) -> None:
    for audience, channel in AUDIENCE_CHANNELS.items():
        emulator.state.add_channel(audience.value.replace("_", "-"), channel_id=channel)


def build(emulator: SlackEmulator, engine: Any, config: WarroomConfig) -> Warroom:
    return create_app(make_settings(emulator), config, engine=engine)


def declare_and_open(
    app: Warroom,
    *,
    title: str = "Support bot leaks customer emails",
    severity: Severity = Severity.CRITICAL,
    personal_data: bool = False,
    public_facing: bool = False,
    ai_act_case: AiActCase | None = None,
    key: str = "comms:1",
) -> Incident:
    result = app.workflow.declare(
        Declaration(
            title=title,
            severity=severity,
            reporter_id="U0REPORTER",
            source=IncidentSource.SLASH_COMMAND,
            dedup_key=key,
            description=(
                "The bot answered with jane.doe@example.com and a key "
                "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c."
            ),
            affected_systems=("support-bot-v2",),
            personal_data=personal_data,
            public_facing=public_facing,
            ai_act_case=ai_act_case,
        )
    )
    app.workflow.follow_up(OpenWarRoom(result.incident.id))
    return app.workflow.incidents.get(result.incident.id)


def audience_posts(emulator: SlackEmulator, audience: Audience) -> list[dict[str, Any]]:
    return emulator.state.messages(AUDIENCE_CHANNELS[audience])
