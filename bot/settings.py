"""Settings from the environment, validated once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigurationError


class Settings(BaseSettings):
    """Every environment variable in DESIGN.md; names are the variables' own."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///warroom.db"
    warroom_config: Path | None = None
    warroom_webhook_token: SecretStr | None = None
    warroom_host: str = "127.0.0.1"
    warroom_port: int = Field(default=3000, ge=0, le=65535)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    def require_for_serving(self, *, socket_mode: bool) -> None:
        """Raise ConfigurationError naming the first secret `serve` needs and lacks."""
        if self.slack_bot_token is None:
            raise ConfigurationError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        if socket_mode and self.slack_app_token is None:
            raise ConfigurationError("SLACK_APP_TOKEN is not set (needed by --socket-mode, xapp-…)")
        if not socket_mode and self.slack_signing_secret is None:
            raise ConfigurationError(
                "SLACK_SIGNING_SECRET is not set (it verifies every request from Slack)"
            )


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (or a given mapping), one clear error if wrong."""
    try:
        if environ is None:
            return Settings()
        lowered = {key.lower(): value for key, value in environ.items()}
        fields = {name: lowered[name] for name in Settings.model_fields if name in lowered}
        return Settings.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigurationError(f"{name}: {first['msg']}") from None
