"""Audience messages: one template per audience, redacted on the way out when external.

`render_audience_message` renders `templates/audiences/<audience>.json.j2` with plain
dicts and, for an audience outside the company, runs the redaction pass twice:

* on the inputs (incident text, facts, update text) before rendering, so a template's
  `clip` can never cut a secret or an email in half and leave the part it keeps unmatched;
* on every string Slack displays in the rendered message (`redact_message`, which also
  covers a message a person edited by hand), so an override template that
  shows something the built-in ones do not (a mention, a reporter id) is still covered.
  Escaped mentions (`&lt;@U1&gt;`) count as mentions there, and text is clipped again
  afterwards because a role name is longer than the mention it replaces.

The configured contact point (`AudienceFacts.contact`) is the one string exempt from
redaction: it is published on purpose (GDPR Art. 33(3)(b) asks for it), and it is usually
an email address or phone number that the pass would otherwise hide.
"""

from __future__ import annotations

import functools
import re
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from bot.domain.channel_names import clip
from bot.domain.incident import Incident, RoleHolder
from bot.domain.redaction import is_external, redact
from bot.domain.vocabulary import (
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    Role,
    Severity,
)
from bot.emulator.blockkit import (
    MAX_BUTTON_TEXT,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    check_message,
)
from bot.presenters import incident_context
from bot.rendering import Renderer, escape_mrkdwn

# Keys whose string values Slack shows to readers (text objects, fallbacks, link targets).
_DISPLAYED_KEYS = frozenset({"text", "alt_text", "title", "fallback", "pretext", "footer", "url"})
_ESCAPED_MENTION = re.compile(r"&lt;@(?P<user>[UW][A-Z0-9]+)(?:\|[^&]*)?&gt;")


@dataclass(frozen=True)
class AudienceFacts:
    """What an audience message may say beyond the incident record."""

    containment: tuple[str, ...] = ()  # status lines, e.g. "Safe mode: carried out"
    timeline: tuple[tuple[datetime, str], ...] = ()  # recent (when, summary), oldest first
    decisions_needed: tuple[str, ...] = ()  # e.g. "Approve model shutdown for support-v2"
    evidence: tuple[str, ...] = ()  # log / alert excerpt lines (technical audience)
    latest_update: str | None = None  # the last /incident update text, if any
    contact: str = ""  # regulatory/DPO contact point from config


def render_audience_message(
    renderer: Renderer,
    *,
    audience: Audience,
    incident: Incident,
    facts: AudienceFacts,
    tier: NotificationTier | None = None,
    due_at: datetime | None = None,
    update_text: str | None = None,
    update_author_id: str | None = None,
) -> dict[str, Any]:
    """The Block Kit message for one audience: a planned notice (tier set) or a status update
    (update_text set), redacted when the audience is external."""
    external = is_external(audience.value)
    scrub = _Scrubber(incident, facts.contact) if external else None
    kind = "update" if update_text is not None else "notice"
    context: dict[str, Any] = {
        "incident": incident_context(incident),
        "audience": {
            "name": audience.value,
            "label": audience.label,
            "external": external,
        },
        "kind": kind,
        "tier": {"name": tier.value, "label": tier.label} if tier else None,
        "due_at": due_at,
        "update": (
            {"text": update_text, "author_id": update_author_id} if kind == "update" else None
        ),
        "facts": _facts_context(facts),
    }
    if scrub is not None:
        contact = context["facts"].pop("contact")
        context = scrub.tree(context)
        context["facts"]["contact"] = contact
    name = f"audiences/{audience.value}"
    message = renderer.render(name, **context)
    if not isinstance(message, dict):
        raise ValueError(f"template {name} must produce a JSON object")
    return redact_message(message, incident=incident, audience=audience, contact=facts.contact)


def redact_message(
    message: dict[str, Any], *, incident: Incident, audience: Audience, contact: str = ""
) -> dict[str, Any]:
    """The rendered message as the audience may see it: every displayed string redacted (and
    clipped back to its limit) when the audience is external, unchanged otherwise."""
    if not is_external(audience.value):
        return message
    return _Scrubber(incident, contact).message(message)


def render_override_problems(renderer: Renderer) -> list[str]:
    """Render every audience template with a sample incident and report what fails (bad JSON,
    undefined variables, invalid Block Kit via check_message) — used by `warroom check-config`
    to vet a templates_dir of overrides. Empty list when all is well."""
    return [problem for audience in Audience for problem in _first_problems(renderer, audience)]


def _first_problems(renderer: Renderer, audience: Audience) -> list[str]:
    """The problems of the first failing sample case of one template: enough to act on."""
    name = f"audiences/{audience.value}"
    for sample, incident, facts in _samples():
        for kind in ("notice", "update"):
            found = _problems_of(
                renderer, audience, incident, facts, kind, f"{name} ({kind}, {sample})"
            )
            if found:
                return found
    return []


def _problems_of(
    renderer: Renderer,
    audience: Audience,
    incident: Incident,
    facts: AudienceFacts,
    kind: str,
    where: str,
) -> list[str]:
    try:
        message = render_audience_message(
            renderer,
            audience=audience,
            incident=incident,
            facts=facts,
            tier=NotificationTier.URGENT if kind == "notice" else None,
            due_at=incident.declared_at + timedelta(hours=1) if kind == "notice" else None,
            update_text=_SAMPLE_UPDATE if kind == "update" else None,
            update_author_id="U0SAMPLECOMMS" if kind == "update" else None,
        )
    # An override is somebody's template code: whatever Python error it raises while
    # rendering (a `%d` of a string, a missing key) is a problem to report, not a crash.
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as error:
        return [f"{where}: {_describe_error(error)}"]
    found = [f"{where}: {problem}" for problem in check_message(message)]
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        found.append(f"{where}: text: a non-empty top-level text is required")
    return found


def _describe_error(error: Exception) -> str:
    """The error with the template file and line it came from, when Jinja recorded them."""
    text = str(error)
    if "StrictUndefined" in text:
        # `tojson` of a missing name or field: json names the type, not the variable.
        text = f"an undefined variable or field was used ({text})"
    if isinstance(error, TemplateSyntaxError):
        return f"{type(error).__name__}: {text} (line {error.lineno})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.endswith(".j2")]
    line = f" (line {frames[-1].lineno} of {Path(frames[-1].filename).name})" if frames else ""
    return f"{type(error).__name__}: {text}{line}"


def _facts_context(facts: AudienceFacts) -> dict[str, Any]:
    return {
        "containment": list(facts.containment),
        "timeline": [{"at": at, "summary": summary} for at, summary in facts.timeline],
        "decisions_needed": list(facts.decisions_needed),
        "evidence": list(facts.evidence),
        "latest_update": facts.latest_update,
        "contact": facts.contact,
    }


@functools.lru_cache(maxsize=8192)
def _redacted(text: str, roles: tuple[tuple[str, Role], ...]) -> str:
    # One incident's title, description and timeline recur in every external message it
    # sends, and redaction is a pure function of the text and who holds which role.
    return redact(text, role_of=dict(roles)).text


class _Scrubber:
    """The redaction pass for one external message: role names for mentions, contact kept."""

    def __init__(self, incident: Incident, contact: str) -> None:
        self._roles = tuple(sorted((h.user_id, h.role) for h in incident.roles))
        kept = {contact, escape_mrkdwn(contact)} if contact.strip() else set()
        # Longest first, so the escaped form is not half-replaced by the raw one.
        self._kept = sorted(kept, key=len, reverse=True)

    def text(self, text: str) -> str:
        for i, kept in enumerate(self._kept):
            text = text.replace(kept, f"\x00{i}\x00")
        text = _ESCAPED_MENTION.sub(r"<@\g<user>>", text)
        text = _redacted(text, self._roles)
        for i, kept in enumerate(self._kept):
            text = text.replace(f"\x00{i}\x00", kept)
        return text

    def tree(self, value: Any) -> Any:
        """Every string in a template context, redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.tree(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.tree(item) for item in value]
        return value

    def message(self, message: dict[str, Any]) -> dict[str, Any]:
        """Every displayed string of a rendered message, redacted and clipped to its limit."""
        scrubbed: dict[str, Any] = self._node(message, MAX_SECTION_TEXT)
        return scrubbed

    def _node(self, node: Any, limit: int) -> Any:
        if isinstance(node, list):
            return [self._node(item, limit) for item in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        out: dict[str, Any] = {}
        for key, value in node.items():
            inner = _limit_inside(kind, key, limit)
            if key in _DISPLAYED_KEYS and isinstance(value, str):
                # A link target is redacted but never clipped: a cut URL is a broken one.
                text = self.text(value)
                out[key] = text if key == "url" else clip(text, inner)
            else:
                out[key] = self._node(value, inner)
        return out


def _limit_inside(kind: Any, key: str, limit: int) -> int:
    """The length limit for text found under `key` of a block or element of type `kind`."""
    if kind == "header" and key == "text":
        return MAX_HEADER_TEXT
    if kind == "button" and key == "text":
        return MAX_BUTTON_TEXT
    if key == "fields":
        return MAX_FIELD_TEXT
    return limit


# --- the sample incidents that vet override templates ---------------------------------------

_SAMPLE_AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
_SAMPLE_UPDATE = "Safe mode is on for support-v2; <@U0SAMPLEIC> is confirming the scope."


def _samples() -> list[tuple[str, Incident, AudienceFacts]]:
    typical = Incident(
        id=1,
        number=42,
        title="Support bot reveals its system prompt",
        description="Customers saw the system prompt after a crafted message.",
        incident_type=IncidentType.PROMPT_INJECTION,
        severity=Severity.CRITICAL,
        state=IncidentState.DECLARED,
        reporter_id="U0SAMPLEREP",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=_SAMPLE_AT,
        updated_at=_SAMPLE_AT,
        affected_systems=("support-v2",),
        personal_data=True,
        public_facing=True,
        indicators=("system_prompt_leak",),
        atlas=("AML.T0051",),
        owasp=("LLM01:2025",),
        confidence=0.9,
        classified_by="rules",
        explanation="Rules matched system_prompt_leak.",
        channel_id="C0SAMPLEWAR",
        channel_name="inc-42-support-bot",
        roles=(
            RoleHolder(Role.INCIDENT_COMMANDER, "U0SAMPLEIC"),
            RoleHolder(Role.COMMUNICATIONS_LEAD, "U0SAMPLECOMMS"),
        ),
    )
    facts = AudienceFacts(
        containment=("Safe mode: carried out",),
        timeline=((_SAMPLE_AT, "Incident declared"),),
        decisions_needed=("Approve model shutdown for support-v2",),
        evidence=("2026-01-15T09:29:58Z WARN prompt matched system_prompt_leak",),
        latest_update="We are investigating an issue with our support assistant.",
        contact="Data protection officer, dpo@example.com",
    )
    long_text = "<b>&</b> <!channel> " * 400
    stress = replace(
        typical,
        title=long_text[:500],
        description=long_text,
        affected_systems=tuple(f"model-{i}-" * 10 for i in range(40)),
        indicators=tuple(f"indicator_{i}" for i in range(60)),
        explanation=long_text,
        state=IncidentState.RESOLVED,
        resolved_at=_SAMPLE_AT,
        channel_id=None,
        roles=(),
        confidence=None,
    )
    stress_facts = AudienceFacts(
        containment=tuple(long_text[:200] for _ in range(40)),
        timeline=tuple((_SAMPLE_AT, long_text[:300]) for _ in range(40)),
        decisions_needed=tuple(long_text[:200] for _ in range(20)),
        evidence=tuple(long_text[:300] for _ in range(100)),
        latest_update=long_text,
        contact="",
    )
    return [("typical incident", typical, facts), ("long text", stress, stress_facts)]
