"""The `warroom` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.domain.vocabulary import Severity, parse_severity
from bot.errors import ConfigurationError

if TYPE_CHECKING:
    from bot.config import WarroomConfig
    from bot.domain.classification import Classification
    from bot.settings import Settings


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

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="check an incident's audit chain and name the first broken entry"
    )
    verify.add_argument("number", type=_incident_number, help="the incident number, e.g. 12")

    postmortem = commands.add_parser(
        "postmortem", help="print the newest version of an incident's postmortem (Markdown)"
    )
    postmortem.add_argument("number", type=_incident_number, help="the incident number, e.g. 12")
    postmortem.add_argument("--out", type=Path, help="write it to this file instead of stdout")

    runbook = commands.add_parser(
        "runbook", help="print the team's runbook (Markdown) rendered from the configuration"
    )
    runbook.add_argument("--out", type=Path, help="write it to this file instead of stdout")

    drill = commands.add_parser(
        "drill",
        help="play a drill scenario against a running warroom (`warroom drill --help`)",
        add_help=False,
    )
    drill.add_argument("rest", nargs=argparse.REMAINDER)
    check = commands.add_parser(
        "check-config",
        help="validate the settings and YAML file and print what warroom would do",
    )
    check.add_argument("file", nargs="?", type=Path, help="YAML file (default WARROOM_CONFIG)")

    classify = commands.add_parser(
        "classify", help="print the type, severity and taxonomy warroom would assign to a text"
    )
    classify.add_argument("text", nargs="*", metavar="TEXT", help="the incident's title")
    classify.add_argument(
        "--severity", type=_severity, help="base severity (critical…low or sev1…sev4)"
    )
    classify.add_argument(
        "--indicator",
        action="append",
        default=[],
        metavar="NAME",
        help="an indicator from an alert, e.g. system_prompt_leak (repeatable)",
    )
    classify.add_argument(
        "--personal-data", action="store_true", help="the incident involves personal data"
    )
    classify.add_argument("--json", action="store_true", help="print one JSON object")
    classify.add_argument(
        "--file",
        type=Path,
        help='JSON Lines of {"title": …, "description": …}; prints one JSON object per line',
    )
    return parser


def _severity(text: str) -> Severity:
    severity = parse_severity(text)
    if severity is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not critical, high, medium, low or sev1…4")
    return severity


def _incident_number(text: str) -> int:
    number = text.removeprefix("#")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not an incident number")
    return int(number)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one warroom command; configuration errors print one line and exit 2."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["drill"]:
        # Its own parser (options of its own, `--help` included) in bot/drill_cli.py.
        from bot.drill_cli import main as run_drill

        return run_drill(arguments[1:])
    args = _parser().parse_args(arguments)
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
        if args.command == "audit":
            return _audit_verify(args.number)
        if args.command == "check-config":
            return _check_config(args.file)
        if args.command == "postmortem":
            return _postmortem(args.number, args.out)
        if args.command == "runbook":
            return _runbook(args.out)
        if args.command == "classify":
            return _classify(args)
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


def _audit_verify(number: int) -> int:
    """Exit 0 when the chain is intact, 1 when broken, 2 when there is no such incident."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.clock import SystemClock
    from bot.errors import NotFoundError
    from bot.services.audit import AuditService
    from bot.settings import load_settings
    from storage.db import build_engine, is_up_to_date
    from storage.unit_of_work import UnitOfWorkFactory

    engine = build_engine(load_settings().database_url)
    try:
        if not is_up_to_date(engine):
            raise ConfigurationError(
                "DATABASE_URL: the database is not at the newest migration "
                "(run `warroom db upgrade`)"
            )
        check = AuditService(uow=UnitOfWorkFactory(engine), clock=SystemClock()).verify(number)
    except NotFoundError as error:
        print(f"warroom: {error.user_message}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:
        raise ConfigurationError(f"DATABASE_URL: {_first_line(error)}") from None
    finally:
        engine.dispose()
    if not check.ok:
        print(
            f"incident #{number}: audit chain broken at entry {check.first_broken_seq}: "
            f"{check.reason}"
        )
        return 1
    entries = "entry" if check.count == 1 else "entries"
    print(f"incident #{number}: audit chain of {check.count} {entries} is intact")
    return 0


def _postmortem(number: int, out: Path | None) -> int:
    """Print (or write to `out`) the newest stored version; exit 2 when there is none."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.errors import NotFoundError
    from bot.services.postmortem import read_latest
    from bot.settings import load_settings
    from storage.db import build_engine, is_up_to_date
    from storage.unit_of_work import UnitOfWorkFactory

    engine = build_engine(load_settings().database_url)
    try:
        if not is_up_to_date(engine):
            raise ConfigurationError(
                "DATABASE_URL: the database is not at the newest migration "
                "(run `warroom db upgrade`)"
            )
        stored = read_latest(UnitOfWorkFactory(engine), number)
    except NotFoundError as error:
        print(f"warroom: {error.user_message}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:
        raise ConfigurationError(f"DATABASE_URL: {_first_line(error)}") from None
    finally:
        engine.dispose()
    return _write_out(
        stored.markdown + "\n",
        out,
        done=f"incident #{number}: postmortem version {stored.version} written to {out}",
    )


def _check_config(file: Path | None) -> int:
    from bot.config import load_config
    from bot.settings import load_settings

    settings = load_settings()
    config = load_config(file or settings.warroom_config)
    rota = sum(1 for people in config.roles.model_dump().values() if people)
    audiences = sum(1 for channels in config.audiences.model_dump().values() if channels)
    if config.templates_dir is not None:
        from bot.audience_messages import render_override_problems
        from bot.rendering import Renderer

        problems = render_override_problems(Renderer(extra_dir=config.templates_dir))
        if problems:
            raise ConfigurationError(f"templates_dir: {problems[0]}")
    print(f"configuration is valid: {rota} roles on call, {audiences} audiences with channels")
    for line in _what_would_happen(settings, config):
        print(line)
    return 0


def _what_would_happen(settings: Settings, config: WarroomConfig) -> list[str]:
    """The configuration read back as what warroom will do with it."""
    import os

    from bot.domain.containment import DEFAULT_ROLES, ContainmentAction
    from bot.domain.regulatory import describe_duration
    from bot.domain.vocabulary import Audience, NotificationTier, Role, Severity
    from bot.logging_setup import header_variables

    def ids(values: Sequence[str]) -> str:
        return ", ".join(values)

    with_channels = [a for a in Audience if config.audiences.channels(a)]
    without = [a.value for a in Audience if not config.audiences.channels(a)]
    lines = ["", "audiences (who is told, and where):"]
    lines += [f"  {a.value}: {ids(config.audiences.channels(a))}" for a in with_channels]
    if without:
        lines.append(f"  without a channel (their messages cannot be sent): {ids(without)}")
    lines += ["", "rota (the first is paged on declaration):"]
    for role in Role:
        people: list[str] = getattr(config.roles, role.value)
        lines.append(f"  {role.value}: {ids(people) if people else 'nobody on call'}")
    containment = config.containment
    lines += ["", "containment actions:"]
    for action in ContainmentAction:
        endpoint = containment.actions.get(action.value)
        how = f"{endpoint.method} {endpoint.url}" if endpoint else "manual"
        extra = ", two-person rule" if action.value in containment.two_person else ""
        lines.append(f"  {action.value}: {how} (by the {DEFAULT_ROLES[action].value}{extra})")
    approvers = ids(containment.approvers) or "nobody else"
    lines.append(f"  approved by: the incident commander and {approvers}")
    lines += ["", "recovery systems:"]
    if not config.recovery.systems:
        lines.append("  none configured: every system is restored by hand")
    for name, system in sorted(config.recovery.systems.items()):
        restore = f"{system.restore.method} {system.restore.url}" if system.restore else "manual"
        checks = len(config.recovery.checks_for(name))
        lines.append(f"  {name}: restore {restore}, {checks} validation checks")
    stages = ", ".join(f"{stage}%" for stage in config.recovery.stages)
    lines.append(f"  staged restoration: {stages}")
    deadlines = ", ".join(
        f"{tier.value} {describe_duration(config.deadlines.for_tier(tier))}"
        for tier in NotificationTier
    )
    cadence = ", ".join(
        f"{severity.value} {describe_duration(config.cadence.for_severity(severity))}"
        for severity in Severity
    )
    sending = "sent as drafted" if config.notifications.auto_send else "handed to the commander"
    lines += [
        "",
        f"deadlines: {deadlines}; a due message is {sending}",
        f"status-update cadence: {cadence}",
    ]
    regulatory = config.regulatory
    gdpr = f"on ({describe_duration(regulatory.gdpr_window)})" if regulatory.gdpr_enabled else "off"
    lines.append(
        f"regulatory clocks: GDPR Art. 33 {gdpr}, EU AI Act Art. 73 "
        + ("on" if regulatory.ai_act_enabled else "off")
    )
    webhooks = (
        "enabled" if settings.warroom_webhook_token else "disabled (no WARROOM_WEBHOOK_TOKEN)"
    )
    lines += ["", f"webhooks: {webhooks}"]
    for name in header_variables(config):
        state = "set" if os.environ.get(name) else "NOT SET: calls will fail"
        lines.append(f"header variable ${{{name}}}: {state}")
    return lines


def _runbook(out: Path | None) -> int:
    """Print (or write to `out`) the runbook rendered from the configuration."""
    from datetime import UTC, datetime

    from bot.config import load_config
    from bot.rendering import Renderer
    from bot.runbook import render_runbook
    from bot.settings import load_settings

    config = load_config(load_settings().warroom_config)
    text = render_runbook(
        Renderer(extra_dir=config.templates_dir), config, generated_at=datetime.now(UTC)
    )
    return _write_out(text, out, done=f"runbook written to {out}")


class _BadInput(ValueError):
    """A classify input that cannot be read; the message names where."""


@dataclass(frozen=True)
class _ToClassify:
    title: str
    description: str = ""
    indicators: tuple[str, ...] = ()
    severity: Severity | None = None
    personal_data: bool = False


def _classify(args: argparse.Namespace) -> int:
    from bot.classifier import build_classifier, packaged_taxonomy

    text = " ".join(args.text).strip()
    if args.file is not None and text:
        print("warroom: classify takes TEXT or --file, not both", file=sys.stderr)
        return 2
    if args.file is None and not text:
        print("warroom: classify needs TEXT or --file", file=sys.stderr)
        return 2
    try:
        items = _read_classify_lines(args.file) if args.file is not None else [_ToClassify(text)]
    except _BadInput as error:
        print(f"warroom: {error}", file=sys.stderr)
        return 2
    from bot.config import load_config
    from bot.settings import load_settings

    config = load_config(load_settings().warroom_config)
    classifier = build_classifier(config.classification)
    for item in items:
        result = classifier.classify(
            title=item.title,
            description=item.description,
            indicators=[*args.indicator, *item.indicators],
            base_severity=item.severity or args.severity,
            personal_data=args.personal_data or item.personal_data,
        )
        if args.json or args.file is not None:
            print(json.dumps(_classification_json(result), ensure_ascii=False))
        else:
            print(_classification_text(result, packaged_taxonomy().names))
    return 0


def _read_classify_lines(path: Path) -> list[_ToClassify]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise _BadInput(f"{path}: cannot be read ({_first_line(error)})") from None
    return [
        _classify_item(line, where=f"{path}, line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def _classify_item(line: str, *, where: str) -> _ToClassify:
    """One JSON Lines record; keys other than the documented ones are ignored."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _BadInput(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise _BadInput(f"{where}: expected a JSON object with a 'title'")
    title, description = record.get("title"), record.get("description", "")
    if not isinstance(title, str) or not title.strip():
        raise _BadInput(f"{where}: 'title' must be a non-empty string")
    if not isinstance(description, str):
        raise _BadInput(f"{where}: 'description' must be a string")
    indicators = record.get("indicators", [])
    if not isinstance(indicators, list) or not all(isinstance(i, str) for i in indicators):
        raise _BadInput(f"{where}: 'indicators' must be a list of strings")
    severity = None
    if record.get("severity") is not None:
        severity = parse_severity(str(record["severity"]))
        if severity is None:
            raise _BadInput(f"{where}: 'severity' must be critical, high, medium or low")
    personal_data = record.get("personal_data", False)
    if not isinstance(personal_data, bool):
        raise _BadInput(f"{where}: 'personal_data' must be true or false")
    return _ToClassify(title, description, tuple(indicators), severity, personal_data)


def _classification_json(result: Classification) -> dict[str, Any]:
    return {
        "type": result.incident_type.value,
        "severity": result.severity.value,
        "confidence": result.confidence,
        "indicators": list(result.indicators),
        "atlas": list(result.atlas),
        "owasp": list(result.owasp),
    }


def _classification_text(result: Classification, names: Mapping[str, str]) -> str:
    def named(ids: Sequence[str]) -> str:
        return "; ".join(f"{i} {names.get(i, '')}".strip() for i in ids) or "none"

    rows = (
        ("type", result.incident_type.value),
        ("severity", result.severity.value),
        ("confidence", f"{result.confidence:.2f} ({result.method})"),
        ("indicators", ", ".join(result.indicators) or "none"),
        ("atlas", named(result.atlas)),
        ("owasp", named(result.owasp)),
        ("why", result.explanation),
    )
    return "\n".join(f"{label:<11}{value}" for label, value in rows)


def _write_out(text: str, out: Path | None, *, done: str) -> int:
    """Write a document to `out` (saying so) or to standard output; the exit status."""
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"warroom: {out}: cannot be written ({error.strerror})", file=sys.stderr)
        return 2
    print(done)
    return 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    raise SystemExit(main())
