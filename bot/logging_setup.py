"""Structured logs: one JSON object a line, tagged with the incident and the HTTP request
being handled, and never a configured secret or anything shaped like a token."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from bot.config import WarroomConfig
    from bot.settings import Settings

T = TypeVar("T")
MASK = "***"
# Shorter values are not worth masking: they would blank out ordinary words in every line.
MIN_SECRET_LENGTH = 6
CHATTY_LOGGERS = ("alembic", "httpx", "apscheduler", "slack_sdk", "slack_bolt", "urllib3")

request_id_var: ContextVar[str | None] = ContextVar("warroom_request_id", default=None)
incident_var: ContextVar[int | None] = ContextVar("warroom_incident", default=None)


@contextmanager
def log_context(*, incident: int | None = None, request_id: str | None = None) -> Iterator[None]:
    """Tag every log line inside the block with the incident number and/or request id."""
    incident_token = incident_var.set(incident) if incident is not None else None
    request_token = request_id_var.set(request_id) if request_id is not None else None
    try:
        yield
    finally:
        if request_token is not None:
            request_id_var.reset(request_token)
        if incident_token is not None:
            incident_var.reset(incident_token)


def tag_incident(number: int) -> None:
    """Tag the rest of the current context's log lines with the incident, once a request
    turns out to be about one (a command in its war room). Each Slack request is served in
    a context of its own (`bot.app.ScopedApp`), so the tag ends with it."""
    incident_var.set(number)


class ContextCarryingExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's context, so the work Bolt
    runs after the ack logs with the request id (and incident) of the request it serves."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


# Shapes of credentials that must not reach a log even when nobody configured them here.
_TOKEN_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{6,}"), MASK),  # Slack bot/user/… tokens
    (re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), MASK),  # Slack app-level tokens
    (re.compile(r"\bxoxe\.xox[bp]-[A-Za-z0-9-]{6,}"), MASK),  # Slack refresh tokens
    (re.compile(r"https://hooks\.slack\.com/[A-Za-z0-9/_-]+"), "https://hooks.slack.com/" + MASK),
    (re.compile(r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), MASK),  # JWT
    # Bearer credentials (with a digit, so "bearer authentication" stays readable)
    (re.compile(r"(?i)\b(bearer)\s+(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # user:password@ in URLs (database URLs, proxies)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s/]+@"), r"\1:" + MASK + "@"),
    # key=value and "key": "value" where the key names a credential
    (
        re.compile(
            r"(?i)\b([\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|signature|credential)s?"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{4,})"
        ),
        r"\1" + MASK,
    ),
)


class SecretMasker:
    """Replaces the configured secrets and common token shapes in text with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(values, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def mask(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        for pattern, replacement in _TOKEN_SHAPES:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Masks a record's message and exception text before any handler formats it."""

    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.masker.mask(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, incident, request id, error."""

    def __init__(self, masker: SecretMasker | None = None) -> None:
        super().__init__()
        self.masker = masker or SecretMasker()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        incident = getattr(record, "incident", None) or incident_var.get()
        if incident is not None:
            entry["incident"] = incident
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # Masked again here: a record that reached this handler without the filter (a
        # handler added later, say) still leaves no secret.
        return self.masker.mask(json.dumps(entry, ensure_ascii=False, default=str))


def configured_secrets(
    settings: Settings, config: WarroomConfig | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret value warroom knows of: Slack tokens, the signing secret, the webhook
    token, the database password, and the environment variables the containment and
    recovery headers name as ${NAME}."""
    environ = os.environ if environ is None else environ
    secrets = [
        value.get_secret_value()
        for value in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.warroom_webhook_token,
        )
        if value is not None
    ]
    password = re.search(r"://[^:/@]+:([^@/]+)@", settings.database_url)
    if password:
        secrets.append(password.group(1))
    if config is not None:
        secrets += [environ[name] for name in header_variables(config) if environ.get(name)]
    return secrets


def header_variables(config: WarroomConfig) -> list[str]:
    """The ${NAME} environment variables the configuration's HTTP headers refer to."""
    headers: list[dict[str, str]] = [e.headers for e in config.containment.actions.values()]
    for system in config.recovery.systems.values():
        headers += [e.headers for e in (system.restore, system.stage) if e is not None]
        headers += [check.headers for check in system.checks or ()]
    headers += [check.headers for check in config.recovery.default_checks]
    names: list[str] = []
    for header in headers:
        for text in header.values():
            names += re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
    return sorted(set(names))


def configure_logging(
    settings: Settings,
    config: WarroomConfig | None = None,
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send every log record, as one masked JSON line, to stderr (or `stream`); replaces
    the root logger's handlers and returns the new one."""
    masker = SecretMasker(configured_secrets(settings, config, environ))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(masker))
    handler.addFilter(RedactingFilter(masker))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
