from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_config, parse_config, parse_duration
from bot.domain.vocabulary import Audience, NotificationTier, Role
from bot.errors import ConfigurationError
from bot.settings import load_settings

pytestmark = pytest.mark.unit

DESIGN_EXAMPLE = """
channel_prefix: inc
roles:
  incident_commander: [U0COMMANDER]
  ai_safety_lead: [U0SAFETY]
  security_analyst: [U0SECURITY]
  data_scientist: [U0DATA]
  communications_lead: [U0COMMS]
  legal_advisor: [U0LEGAL]
audiences:
  executive_team: [C0EXEC]
  security_team: [C0SEC]
  legal_team: [C0LEGAL]
  communications_team: [C0COMMS]
  data_protection_officer: [C0DPO]
  pr_team: [C0PR]
  affected_users: [C0USERS]
  customer_support_leads: [C0SUPPORT]
  technical_team: [C0TECH]
  regulatory_body: [C0REG]
deadlines:
  immediate: 15m
  urgent: 1h
  standard: 24h
containment:
  approvers: []
  actions:
    model_shutdown: {method: POST, url: "https://gateway.example/models/{model}/disable"}
    safe_mode:      {method: POST, url: "https://gateway.example/models/{model}/safe-mode"}
"""


def test_the_design_example_is_a_valid_configuration(tmp_path: Path) -> None:
    path = tmp_path / "warroom.yml"
    path.write_text(DESIGN_EXAMPLE)
    config = load_config(path)
    assert config.roles.primary(Role.INCIDENT_COMMANDER) == "U0COMMANDER"
    assert config.audiences.channels(Audience.EXECUTIVE_TEAM) == ["C0EXEC"]
    assert config.deadlines.for_tier(NotificationTier.URGENT) == timedelta(hours=1)
    assert config.containment.actions["safe_mode"].method == "POST"


def test_every_key_is_optional() -> None:
    config = parse_config(None)
    assert config.channel_prefix == "inc"
    assert config.roles.primary(Role.LEGAL_ADVISOR) is None
    assert config.deadlines.immediate == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"chanel_prefix": "x"}, "unknown key 'chanel_prefix'"),
        ({"roles": {"incident_comander": ["U1AA"]}}, "unknown key 'roles.incident_comander'"),
        ({"deadlines": {"immediate": "soon"}}, "deadlines.immediate"),
        ({"roles": {"data_scientist": ["bob"]}}, "'bob' is not a Slack user id"),
        ({"audiences": {"pr_team": ["#pr"]}}, "'#pr' is not a Slack channel id"),
        ({"channel_prefix": "Incidents!"}, "channel_prefix"),
        ({"containment": {"actions": {"nuke": {"url": "https://x"}}}}, "unknown action 'nuke'"),
        ([1, 2], "top level must be a mapping"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_config(data, source="warroom.yml")
    text = str(raised.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("warroom.yml: ")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "warroom.yml"
    path.write_text("roles:\n  incident_commander: [U1\n")
    with pytest.raises(ConfigurationError, match="not valid YAML at line"):
        load_config(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_config(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("3d", timedelta(days=3)),
        (60, timedelta(minutes=1)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0m", "15", "1w", "-5m", "fast"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_settings_defaults() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///warroom.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert (settings.warroom_host, settings.warroom_port) == ("127.0.0.1", 3000)


def test_settings_read_the_design_names() -> None:
    settings = load_settings({"SLACK_API_URL": "http://127.0.0.1:9/api", "WARROOM_PORT": "8080"})
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.warroom_port == 8080


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN: "),
        ({"SLACK_APP_TOKEN": "xoxb-x"}, "SLACK_APP_TOKEN: "),
        ({"WARROOM_PORT": "eighty"}, "WARROOM_PORT: "),
        ({"SLACK_API_URL": "slack.com"}, "SLACK_API_URL: "),
    ],
)
def test_malformed_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(environ)
    assert str(raised.value).startswith(message)


def test_serving_needs_its_secrets() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(ConfigurationError, match="^SLACK_SIGNING_SECRET is not set"):
        settings.require_for_serving(socket_mode=False)
    with pytest.raises(ConfigurationError, match="^SLACK_APP_TOKEN is not set"):
        settings.require_for_serving(socket_mode=True)
    with pytest.raises(ConfigurationError, match="^SLACK_BOT_TOKEN is not set"):
        load_settings({}).require_for_serving(socket_mode=False)
