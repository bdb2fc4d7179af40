"""Structured logs: one JSON object a line, tagged with incident and request, and never a
configured secret or a token-shaped string, whatever the code logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import parse_config
from bot.logging_setup import (
    MASK,
    SecretMasker,
    configure_logging,
    configured_secrets,
    log_context,
)
from bot.settings import Settings

pytestmark = pytest.mark.unit

BOT_TOKEN = "xoxb-1111-2222-abcdefFAKEbot"
SIGNING_SECRET = "fake-signing-secret-8c1f0e"
APP_TOKEN = "xapp-1-A111-222-fakeappsecret"
WEBHOOK_TOKEN = "wh-fake-token-77aa19"
DB_PASSWORD = "db-pa55-fake"
GATEWAY_TOKEN = "gw-fake-credential-42x"
RECOVERY_TOKEN = "rc-fake-credential-43y"
SECRETS = (
    BOT_TOKEN,
    SIGNING_SECRET,
    APP_TOKEN,
    WEBHOOK_TOKEN,
    DB_PASSWORD,
    GATEWAY_TOKEN,
    RECOVERY_TOKEN,
)


def settings() -> Settings:
    return Settings.model_validate(
        {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_app_token": APP_TOKEN,
            "warroom_webhook_token": WEBHOOK_TOKEN,
            "database_url": f"postgresql+psycopg://warroom:{DB_PASSWORD}@db:5432/warroom",
        }
    )


CONFIG = parse_config(
    {
        "containment": {
            "actions": {
                "safe_mode": {
                    "url": "https://gateway.example/models/{model}/safe-mode",
                    "headers": {"Authorization": "Bearer ${GATEWAY_TOKEN}"},
                }
            }
        },
        "recovery": {
            "systems": {
                "support-bot": {
                    "restore": {
                        "url": "https://gateway.example/models/{system}/restore",
                        "headers": {"X-Api-Key": "${RECOVERY_TOKEN}"},
                    }
                }
            }
        },
    }
)
ENVIRON = {"GATEWAY_TOKEN": GATEWAY_TOKEN, "RECOVERY_TOKEN": RECOVERY_TOKEN}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """warroom's logging as `serve` sets it up, written to a buffer; the root logger's
    handlers are put back afterwards (pytest's own capture lives there)."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(settings(), CONFIG, stream=stream, environ=ENVIRON)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_configured_secret_is_known_to_the_masker() -> None:
    assert set(configured_secrets(settings(), CONFIG, ENVIRON)) == set(SECRETS)


def test_logs_carry_no_configured_secret_however_they_are_logged(captured: io.StringIO) -> None:
    log = logging.getLogger("warroom.test")
    for secret in SECRETS:
        log.info("calling with %s", secret)
        log.warning(f"inline {secret} in an f-string")
        log.error("in a mapping: %s", {"token": secret})
    try:
        raise RuntimeError(f"Slack refused {BOT_TOKEN} and {SIGNING_SECRET}")
    except RuntimeError:
        log.exception("the call failed")
    server_log = logging.getLogger("uvicorn.error")
    # Servers started by other tests may have quietened or disabled it; as `serve` runs it:
    saved = (server_log.level, server_log.propagate, server_log.disabled)
    server_log.setLevel(logging.INFO)
    server_log.propagate, server_log.disabled = True, False
    try:
        server_log.info("header Authorization: Bearer %s", GATEWAY_TOKEN)
    finally:
        server_log.setLevel(saved[0])
        server_log.propagate, server_log.disabled = saved[1], saved[2]

    output = captured.getvalue()
    # Threads left by other tests may log meanwhile: count only this test's loggers.
    ours = [line for line in lines(captured) if line["logger"] in ("warroom.test", "uvicorn.error")]
    assert len(ours) == 3 * len(SECRETS) + 2
    for secret in SECRETS:
        assert secret not in output
    assert MASK in output
    failed = [line for line in lines(captured) if line["message"] == "the call failed"]
    assert "RuntimeError" in str(failed[0]["exception"])


def test_token_shapes_are_masked_even_when_not_configured() -> None:
    masker = SecretMasker()
    text = (
        "xoxb-9999-8888-unconfigured xoxp-1-2-3-userish xapp-1-B2-333-zzz "
        "Authorization: Bearer abc123def456ghi "
        "postgresql://warroom:hunter2@db/warroom "
        "api_key=sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c password: s3cretvalue "
        "https://hooks.slack.com/services/T000/B000/XXXX"
    )
    masked = masker.mask(text)
    for leaked in (
        "unconfigured",
        "userish",
        "333-zzz",
        "abc123def456ghi",
        "hunter2",
        "4f9a8b7c6d5e",
        "s3cretvalue",
        "B000/XXXX",
    ):
        assert leaked not in masked, masked
    assert "missing or wrong bearer token" == masker.mask("missing or wrong bearer token")


def test_a_line_is_json_with_incident_and_request_id(captured: io.StringIO) -> None:
    log = logging.getLogger("warroom.test")
    with log_context(incident=12, request_id="req-7"):
        log.info("war room opened")
    log.info("between requests")
    first, second = lines(captured)
    assert first["message"] == "war room opened"
    assert first["incident"] == 12 and first["request_id"] == "req-7"
    assert first["level"] == "info" and first["logger"] == "warroom.test"
    assert str(first["ts"]).endswith("+00:00")
    assert "incident" not in second and "request_id" not in second


def test_short_configured_values_are_not_masked_into_noise() -> None:
    masker = SecretMasker(["s", "abc"])
    assert masker.mask("status is fine") == "status is fine"


def test_work_handed_to_the_listener_pool_keeps_the_request_and_incident_tags() -> None:
    from bot.logging_setup import ContextCarryingExecutor, incident_var, log_context, request_id_var

    with ContextCarryingExecutor(max_workers=2) as pool:
        with log_context(incident=12, request_id="req-1"):
            tagged = pool.submit(lambda: (incident_var.get(), request_id_var.get())).result()
        untagged = pool.submit(lambda: (incident_var.get(), request_id_var.get())).result()
    assert tagged == (12, "req-1")
    assert untagged == (None, None)
