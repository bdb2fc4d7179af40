"""The YAML configuration file (`warroom.yml`): rota, audiences, deadlines, containment."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from bot.classification_settings import ClassificationSettings
from bot.detection_settings import DetectionSettings
from bot.domain.channel_names import is_valid_prefix
from bot.domain.regulatory import RegulatoryRules
from bot.domain.vocabulary import AiActCase, Audience, NotificationTier, Role, Severity
from bot.errors import ConfigurationError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
CONTAINMENT_ACTIONS = (
    "model_shutdown",
    "safe_mode",
    "access_revocation",
    "mfa_enforcement",
    "data_isolation",
    "network_isolation",
    "circuit_breaker",
)


def parse_duration(value: Any) -> timedelta:
    """`90s`, `15m`, `1h`, `3d` (or a timedelta, or seconds as a number) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"'{value}' is not a duration like 90s, 15m, 1h or 24h")
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(**{_UNITS[unit]: amount})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _check_ids(values: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    for value in values:
        if not pattern.match(value):
            raise ValueError(f"'{value}' is not a Slack {what} id")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleRota(_Strict):
    """Role → Slack user ids on call for it; the first is primary."""

    incident_commander: list[str] = []
    ai_safety_lead: list[str] = []
    security_analyst: list[str] = []
    data_scientist: list[str] = []
    communications_lead: list[str] = []
    legal_advisor: list[str] = []

    @field_validator("*")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        return _check_ids(value, _USER_ID, "user")

    def primary(self, role: Role) -> str | None:
        """The primary on-call person for the role, if the rota names one."""
        people: list[str] = getattr(self, role.value)
        return people[0] if people else None


class Audiences(_Strict):
    """Audience → Slack channel ids that receive its messages."""

    executive_team: list[str] = []
    security_team: list[str] = []
    legal_team: list[str] = []
    communications_team: list[str] = []
    data_protection_officer: list[str] = []
    pr_team: list[str] = []
    affected_users: list[str] = []
    customer_support_leads: list[str] = []
    technical_team: list[str] = []
    regulatory_body: list[str] = []

    @field_validator("*")
    @classmethod
    def _channel_ids(cls, value: list[str]) -> list[str]:
        return _check_ids(value, _CHANNEL_ID, "channel")

    def channels(self, audience: Audience) -> list[str]:
        """The channel ids for one audience."""
        return list(getattr(self, audience.value))


class Deadlines(_Strict):
    immediate: Duration = timedelta(minutes=15)
    urgent: Duration = timedelta(hours=1)
    standard: Duration = timedelta(hours=24)

    def for_tier(self, tier: NotificationTier) -> timedelta:
        """How long after declaration a message of this tier is due."""
        due: timedelta = getattr(self, tier.value)
        return due


class ContainmentEndpoint(_Strict):
    """An HTTP endpoint that carries out one containment action.

    `url` may name `{model}` and `{system}` (the incident's first affected system, or a target
    set by hand) and `{incident}` (the incident number); no other placeholder is accepted.

    Secrets never live in the YAML: a header value refers to environment variables as
    `${ENV_NAME}`, read when the call is made. A header named like a credential (Authorization,
    Cookie, or a name containing auth, token, key, secret, passw, signature, credential or
    session) must be exactly `${NAME}`, optionally after one scheme word (`Bearer ${TOKEN}`).
    Any other header may hold plain text such as `application/json`, but not text that looks
    like a secret: 16 or more letters, digits and `+/=_.-` in a row mixing letters and digits.
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    headers: dict[str, str] = {}
    timeout: Duration = timedelta(seconds=10)
    retries: int = Field(default=3, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        known = ("model", "system", "incident")
        for name in re.findall(r"\{([^{}]*)\}", value):
            if name not in known:
                raise ValueError(
                    f"unknown placeholder '{{{name}}}'; known: "
                    + ", ".join(f"{{{field}}}" for field in known)
                )
        if re.search(r"[{}]", re.sub(r"\{[a-z]+\}", "", value)):
            raise ValueError("unbalanced brace; placeholders are written {model}")
        return value

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        placeholder = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
        credential = re.compile(
            r"authorization|cookie|auth|token|key|secret|passw|signature|credential|session",
            re.IGNORECASE,
        )
        for name, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise ValueError(f"'{name}' is not a header name")
            if name.lower() == "idempotency-key":
                raise ValueError("header 'Idempotency-Key' is set by warroom, one per action")
            literal = re.sub(placeholder, "", text)
            if "$" in literal:
                raise ValueError(f"header '{name}': write environment variables as ${{NAME}}")
            if credential.search(name) and not re.fullmatch(
                rf"(?:[A-Za-z][A-Za-z0-9-]* )?{placeholder}", text
            ):
                raise ValueError(
                    f"header '{name}' carries a credential: write it as ${{ENV_NAME}} "
                    "(for example 'Bearer ${GATEWAY_TOKEN}'), never the secret itself"
                )
            for run in re.findall(r"[A-Za-z0-9+/=_.-]{16,}", literal):
                if re.search(r"[A-Za-z]", run) and re.search(r"[0-9]", run):
                    raise ValueError(
                        f"header '{name}' looks like it holds a secret; put it in an "
                        "environment variable and write ${ENV_NAME}"
                    )
        return value

    def url_fields(self) -> frozenset[str]:
        """The placeholders the URL needs filled: some of `model`, `system`, `incident`."""
        return frozenset(re.findall(r"\{([a-z]+)\}", self.url))


class Containment(_Strict):
    approvers: list[str] = []
    actions: dict[str, ContainmentEndpoint] = {}
    two_person: list[str] = []
    proposal_ttl: Duration = timedelta(minutes=30)

    @field_validator("approvers")
    @classmethod
    def _approver_ids(cls, value: list[str]) -> list[str]:
        return _check_ids(value, _USER_ID, "user")

    @field_validator("actions")
    @classmethod
    def _known_actions(
        cls, value: dict[str, ContainmentEndpoint]
    ) -> dict[str, ContainmentEndpoint]:
        cls._check_action_names(list(value))
        return value

    @field_validator("two_person")
    @classmethod
    def _known_two_person(cls, value: list[str]) -> list[str]:
        cls._check_action_names(value)
        return value

    @staticmethod
    def _check_action_names(names: list[str]) -> None:
        for name in names:
            if name not in CONTAINMENT_ACTIONS:
                raise ValueError(
                    f"unknown action '{name}'; known: {', '.join(CONTAINMENT_ACTIONS)}"
                )


class Notifications(_Strict):
    """How planned audience messages are delivered.

    `auto_send`: at the deadline an unsent message is sent from its template (true) or handed
    to the incident commander to decide (false). `reminder_at`: the fraction of a tier's time
    at which the communications lead is reminded of a pending message (0.5: 7.5 minutes into
    the 15-minute tier). `channel_pace`: the least seconds between two warroom messages to one
    audience channel, to stay inside Slack's one message per second per channel (0 turns
    pacing off). `on_time_grace`: a message sent this long after its deadline still counts as
    met (the timer that sends it at the deadline needs a moment).
    """

    auto_send: bool = True
    reminder_at: float = Field(default=0.5, gt=0, lt=1)
    channel_pace: float = Field(default=1.0, ge=0, le=60)
    on_time_grace: Duration = timedelta(minutes=1)


class Cadence(_Strict):
    """How often the communications lead is reminded to post a status update, by severity."""

    critical: Duration = timedelta(minutes=30)
    high: Duration = timedelta(hours=1)
    medium: Duration = timedelta(hours=4)
    low: Duration = timedelta(hours=24)

    def for_severity(self, severity: Severity) -> timedelta:
        """The update interval for an incident of this severity."""
        interval: timedelta = getattr(self, severity.value)
        return interval


class AiActDeadlines(_Strict):
    """EU AI Act Art. 73 reporting windows, counted from awareness."""

    serious: Duration = timedelta(days=15)
    death: Duration = timedelta(days=10)
    widespread: Duration = timedelta(days=2)

    def for_case(self, case: AiActCase) -> timedelta:
        window: timedelta = getattr(self, case.value)
        return window


class Regulatory(_Strict):
    """The legal clocks: their windows and when the legal advisor is reminded.

    `reminders` are fractions of the window (0.5 is half-way); `final_reminder` is a time
    before the deadline. A clock can be switched off where it does not apply (for example the
    EU AI Act for a system that is not high-risk).
    """

    gdpr_enabled: bool = True
    gdpr_window: Duration = timedelta(hours=72)
    ai_act_enabled: bool = True
    ai_act: AiActDeadlines = Field(default_factory=AiActDeadlines)
    reminders: list[float] = [0.5, 0.75, 0.9]
    final_reminder: Duration = timedelta(hours=24)
    contact: str = ""

    @field_validator("reminders")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        for fraction in value:
            if not 0 < fraction < 1:
                raise ValueError(f"{fraction} is not a fraction between 0 and 1")
        return sorted(set(value))

    def to_rules(self) -> RegulatoryRules:
        """The clocks' rules as the domain takes them (the contact goes to the report)."""
        return RegulatoryRules(
            gdpr_enabled=self.gdpr_enabled,
            gdpr_window=self.gdpr_window,
            ai_act_enabled=self.ai_act_enabled,
            ai_act_windows={case: self.ai_act.for_case(case) for case in AiActCase},
            reminders=tuple(self.reminders),
            final_reminder=self.final_reminder,
        )


class Rca(_Strict):
    """Thresholds of the root-cause analyses (the seed's values by default).

    `drift_threshold`: a drift (PSI) score above it is a `model_drift` finding (high).
    `adversarial_threshold`: an adversarial score above it is an `adversarial_attack` finding
    (critical). `stale_training_days`: training older than this is `stale_training_data`
    (medium). `change_window`: deploys and config changes this long before the first alert
    are suspects. `similar_prompts` / `few_principals`: that many near-identical prompts from
    at most that many users or keys is a campaign. `precision_burst`: high-precision queries
    from one key in the incident's alerts that count as an extraction burst.
    """

    drift_threshold: float = Field(default=0.15, gt=0)
    adversarial_threshold: float = Field(default=0.7, gt=0, le=1)
    stale_training_days: int = Field(default=90, gt=0)
    change_window: Duration = timedelta(hours=2)
    similar_prompts: int = Field(default=20, gt=1)
    few_principals: int = Field(default=3, gt=0)
    precision_burst: int = Field(default=100, gt=0)


class RecoveryCheck(_Strict):
    """One validation of a recovered system: an HTTP check (`url`, expected `status`, and
    optionally a JSON field that must equal a value) or, without a URL, a manual check a
    person passes or fails with a button."""

    name: str = Field(min_length=1, max_length=120)
    url: str | None = None
    method: Literal["GET", "POST", "HEAD"] = "GET"
    status: int = Field(default=200, ge=100, le=599)
    json_field: str | None = None  # dotted path, e.g. "checks.guardrails"
    equals: str | int | float | bool | None = None
    headers: dict[str, str] = {}
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            ContainmentEndpoint(url=value)  # same placeholder and scheme rules
        return value

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        ContainmentEndpoint(url="https://example.invalid/", headers=value)
        return value

    @property
    def manual(self) -> bool:
        return self.url is None


class RecoverySystem(_Strict):
    """How one system is recovered: `restore` and `stage` endpoints (without them the step is
    manual) and the checks that validate it after the restore and after every stage."""

    restore: ContainmentEndpoint | None = None
    stage: ContainmentEndpoint | None = None
    checks: list[RecoveryCheck] | None = None


class Recovery(_Strict):
    """Recovery plans, staged restoration, and enhanced monitoring after resolution."""

    stages: list[int] = [10, 50, 100]
    systems: dict[str, RecoverySystem] = {}
    default_checks: list[RecoveryCheck] = Field(
        default_factory=lambda: [
            RecoveryCheck(name="Spot-check the model's answers against the incident's examples")
        ]
    )
    monitoring_window: Duration = timedelta(hours=48)
    monitoring_factor: float = Field(default=0.67, gt=0, le=1)
    checkin_interval: Duration = timedelta(hours=8)

    @field_validator("stages")
    @classmethod
    def _rising_to_100(cls, value: list[int]) -> list[int]:
        if not value or value[-1] != 100:
            raise ValueError("the last stage must be 100 (full capability)")
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] <= 0:
            raise ValueError("stages must rise from above 0 to 100, e.g. [10, 50, 100]")
        return value

    def system(self, name: str) -> RecoverySystem:
        """The system's configuration; an unconfigured system is recovered by hand."""
        return self.systems.get(name) or RecoverySystem()

    def checks_for(self, name: str) -> list[RecoveryCheck]:
        checks = self.system(name).checks
        return list(self.default_checks if checks is None else checks)


class Postmortem(_Strict):
    """Where the lessons-learned document goes: a canvas in the war room when the workspace
    has canvases, else a Markdown file (`auto`); or always one of them."""

    publish: Literal["auto", "canvas", "file"] = "auto"


class WarroomConfig(_Strict):
    """The whole configuration file; every key is optional."""

    channel_prefix: str = "inc"
    private_channels: bool = False
    announce_channel: str | None = None
    # Where a drill's stakeholder messages go instead of the real audiences.
    drill_channel: str | None = None
    roles: RoleRota = Field(default_factory=RoleRota)
    audiences: Audiences = Field(default_factory=Audiences)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    containment: Containment = Field(default_factory=Containment)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    classification: ClassificationSettings = Field(default_factory=ClassificationSettings)
    notifications: Notifications = Field(default_factory=Notifications)
    cadence: Cadence = Field(default_factory=Cadence)
    regulatory: Regulatory = Field(default_factory=Regulatory)
    rca: Rca = Field(default_factory=Rca)
    recovery: Recovery = Field(default_factory=Recovery)
    postmortem: Postmortem = Field(default_factory=Postmortem)
    templates_dir: Path | None = None

    @field_validator("channel_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not is_valid_prefix(value):
            raise ValueError("must be 1-20 characters of a-z, 0-9, - and _")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"'{value}' is not a directory")
        return value

    @field_validator("announce_channel", "drill_channel")
    @classmethod
    def _announce(cls, value: str | None) -> str | None:
        if value is not None:
            _check_ids([value], _CHANNEL_ID, "channel")
        return value


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{where}'"
    return f"{source}: {where}: {first['msg']}"


def parse_config(data: Any, *, source: str = "configuration") -> WarroomConfig:
    """Validate a parsed YAML document; one line naming the first problem if wrong."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: the top level must be a mapping of keys")
    try:
        return WarroomConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigurationError(_describe(error, source)) from None


def load_config(path: Path | None) -> WarroomConfig:
    """Read the YAML file at `path`, or `warroom.yml` if present, else the built-in defaults."""
    if path is None:
        default = Path("warroom.yml")
        if not default.exists():
            return WarroomConfig()
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{path}: not valid YAML{where}") from None
    return parse_config(data, source=str(path))
