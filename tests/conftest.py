"""Shared fixtures: a real database, the Slack emulator, and warroom served over HTTP."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bot.app import Warroom, create_app
from bot.config import WarroomConfig, parse_config
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SIGNING_SECRET, SlackSender
from bot.server import BackgroundServer
from bot.settings import Settings
from storage.db import build_engine, upgrade

POSTGRES_URL = os.environ.get(
    "WARROOM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

TEST_CONFIG = {
    "channel_prefix": "inc",
    "roles": {
        "incident_commander": ["U0COMMANDER"],
        "ai_safety_lead": ["U0SAFETY"],
        "security_analyst": ["U0SECURITY"],
        "data_scientist": ["U0DATA"],
        "communications_lead": ["U0COMMS"],
        "legal_advisor": ["U0LEGAL"],
    },
    "audiences": {"executive_team": ["C0EXEC"]},
    "announce_channel": "C0ANNOUNCE",
}


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'warroom.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _postgres_reachable() -> str | None:
    try:
        probe = create_engine(POSTGRES_URL)
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
        probe.dispose()
        return None
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A fresh schema in the test PostgreSQL, dropped afterwards."""
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10
    )
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each storage test runs on a real SQLite file and on a real PostgreSQL server."""
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@pytest.fixture
def config() -> WarroomConfig:
    return parse_config(TEST_CONFIG)


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator() as running:
        running.state.add_channel("incidents", channel_id="C0ANNOUNCE")
        running.state.add_channel("exec-incidents", channel_id="C0EXEC")
        yield running


def make_settings(
    emulator: SlackEmulator, database_url: str = "sqlite://", **overrides: Any
) -> Settings:
    return Settings.model_validate(
        {
            "slack_bot_token": "xoxb-test-token",
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": emulator.api_url,
            "database_url": database_url,
            **overrides,
        }
    )


class ServedWarroom:
    """warroom served over real HTTP against the emulator, plus a signed-request sender."""

    def __init__(self, app: Warroom, server: BackgroundServer, sender: SlackSender) -> None:
        self.app = app
        self.server = server
        self.slack = sender

    def wait_for(self, condition: Callable[[], object], timeout: float = 10.0) -> None:
        """Wait for lazy listeners (which run after the ack) to finish their Slack calls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise AssertionError("condition not met in time")


@pytest.fixture
def served(
    emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> Iterator[ServedWarroom]:
    app = create_app(make_settings(emulator), config, engine=sqlite_engine)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("cmd"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()
