"""`warroom serve`: validate everything, migrate SQLite, then serve until stopped."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.app import create_app
from bot.config import load_config
from bot.errors import ConfigurationError
from bot.logging_setup import configure_logging
from bot.server import serve_forever
from bot.settings import load_settings
from bot.slack_gateway import build_web_client
from storage.db import build_engine, is_sqlite, is_up_to_date, normalise_url, upgrade

log = logging.getLogger(__name__)


def prepare_database(url: str) -> Engine:
    """An engine on a database at the newest migration; SQLite is migrated in place."""
    engine = build_engine(url)
    try:
        if is_sqlite(normalise_url(url)):
            upgrade(engine)
        elif not is_up_to_date(engine):
            raise ConfigurationError(
                "DATABASE_URL: the database is not at the newest migration; "
                "run `warroom db upgrade` first"
            )
    except SQLAlchemyError as error:
        engine.dispose()
        reason = str(error.orig if hasattr(error, "orig") else error).strip().splitlines()[0]
        raise ConfigurationError(f"DATABASE_URL: cannot use the database ({reason})") from None
    return engine


def check_slack(client: WebClient, api_url: str) -> None:
    """Fail at start, in one line, when Slack is unreachable or refuses the token."""
    sdk_log = logging.getLogger("slack_sdk")
    level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)  # the one line below says it all
    try:
        client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error") if error.response else "unknown"
        raise ConfigurationError(f"SLACK_BOT_TOKEN: Slack refused it ({code})") from None
    except (SlackClientError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigurationError(
            f"SLACK_API_URL: cannot reach Slack at {api_url} ({reason})"
        ) from None
    finally:
        sdk_log.setLevel(level)


def run_serve(*, socket_mode: bool, host: str | None, port: int | None) -> int:
    settings = load_settings()
    settings.require_for_serving(socket_mode=socket_mode)
    config = load_config(settings.warroom_config)
    # From here on every log line is JSON, tagged and with the secrets just read masked.
    configure_logging(settings, config)
    assert settings.slack_bot_token is not None
    client = build_web_client(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    check_slack(client, settings.slack_api_url)
    engine = prepare_database(settings.database_url)
    log.info("database ready at the newest migration")
    app = create_app(settings, config, engine=engine, web_client=client, socket_mode=socket_mode)
    app.start_background_work()
    handler = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert settings.slack_app_token is not None
        handler = SocketModeHandler(app.bolt, settings.slack_app_token.get_secret_value())
        handler.connect()  # type: ignore[no-untyped-call]
        log.info("connected to Slack over Socket Mode")
    try:
        serve_forever(
            app.asgi,
            host=host or settings.warroom_host,
            port=port if port is not None else settings.warroom_port,
        )
    finally:
        if handler is not None:
            handler.close()  # type: ignore[no-untyped-call]
        app.close()
        log.info("stopped; work in progress was finished")
    return 0
