"""The `warroom` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.errors import ConfigurationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warroom", description="Slack incident response for production AI systems."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve Slack requests and webhooks")
    serve.add_argument(
        "--socket-mode",
        action="store_true",
        help="talk to Slack over Socket Mode (needs SLACK_APP_TOKEN)",
    )
    serve.add_argument("--host", help="listen address (default WARROOM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default WARROOM_PORT or 3000)")

    demo = commands.add_parser("demo", help="play a whole incident offline against an emulator")
    demo.add_argument("--out", type=Path, help="folder for the transcript (default: a new one)")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply every migration")

    check = commands.add_parser("check-config", help="validate the settings and YAML file")
    check.add_argument("file", nargs="?", type=Path, help="YAML file (default WARROOM_CONFIG)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one warroom command; configuration errors print one line and exit 2."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.command == "demo" else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("alembic", "httpx", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            from bot.serve import run_serve

            return run_serve(socket_mode=args.socket_mode, host=args.host, port=args.port)
        if args.command == "demo":
            from bot.demo import run_demo

            return run_demo(out=args.out)
        if args.command == "db":
            return _db_upgrade()
        if args.command == "check-config":
            return _check_config(args.file)
    except ConfigurationError as error:
        print(f"warroom: {error}", file=sys.stderr)
        return 2
    return 1


def _db_upgrade() -> int:
    from bot.settings import load_settings
    from storage.db import build_engine, upgrade

    settings = load_settings()
    engine = build_engine(settings.database_url)
    try:
        upgrade(engine)
    except Exception as error:
        raise ConfigurationError(f"DATABASE_URL: migration failed: {_first_line(error)}") from None
    finally:
        engine.dispose()
    print("database is at the newest migration")
    return 0


def _check_config(file: Path | None) -> int:
    from bot.config import load_config
    from bot.settings import load_settings

    settings = load_settings()
    config = load_config(file or settings.warroom_config)
    rota = sum(1 for people in config.roles.model_dump().values() if people)
    audiences = sum(1 for channels in config.audiences.model_dump().values() if channels)
    print(f"configuration is valid: {rota} roles on call, {audiences} audiences with channels")
    return 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    raise SystemExit(main())
