"""A local fake of the Slack Web API for the demo and the tests (stdlib + slack_sdk only)."""

from bot.emulator.blockkit import check_message, check_view
from bot.emulator.server import SlackEmulator
from bot.emulator.state import (
    BOT_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    TEAM_ID,
    RecordedCall,
    ValidationFailure,
    WorkspaceState,
)
from bot.emulator.transcript import write_transcript

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "GENERAL_CHANNEL_ID",
    "TEAM_ID",
    "RecordedCall",
    "SlackEmulator",
    "ValidationFailure",
    "WorkspaceState",
    "check_message",
    "check_view",
    "write_transcript",
]
