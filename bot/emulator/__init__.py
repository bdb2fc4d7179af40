"""A local fake of Slack, Web API and Socket Mode, for the demo and tests (stdlib + slack_sdk)."""

from bot.emulator.blockkit import check_message, check_view
from bot.emulator.server import SlackEmulator
from bot.emulator.socket_mode import SocketModeServer
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
    "SocketModeServer",
    "ValidationFailure",
    "WorkspaceState",
    "check_message",
    "check_view",
    "write_transcript",
]
