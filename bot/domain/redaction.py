"""The redaction pass for messages that leave the war room (issue 5).

Anything sent to an external audience (affected users, customer support leads, the PR team,
a regulator) goes through `redact` first. It replaces personal data and credentials with
readable placeholders and Slack mentions with the person's role, and counts what it did.

Decisions, so nobody has to rediscover them:

* Passes run in a fixed order (PEM blocks, Slack link forms, mentions, emails, secrets, IP
  addresses, phones). A replacement is never looked at again by a later pass, so an email
  inside a token or an IP inside a placeholder cannot be redacted twice.
* UUIDs are kept: in incident text they are request or trace ids, and support needs them.
  (Every hyphen-separated part of a UUID is shorter than 16 characters, which is what the
  high-entropy rule asks for, so they pass without a special case.)
* Any dotted quad whose octets are all ≤ 255 is an IPv4 address, so a bare four-part version
  string ("1.2.3.4") is redacted too. Written as "v1.2.3.4" it is kept.
* Phones need a leading "+country" code or a North American layout ((415) 555-0132,
  415-555-0132, 415.555.0132). Bare digit runs are kept: they are ids, timestamps or counts
  far more often than phone numbers.
* `key=` / `token:` style assignments keep the label and hide the value, but only when the
  value looks like a credential (it has a digit or is ≥ 16 characters, or the label is a
  password or secret), so "Key: the model drifted" reads as before.
* A Slack link `<url|label>` whose URL carries a token-like query parameter becomes
  "[secret link]" as a whole (the label is often the URL itself); other links are kept.
* Long (≥ 32) hex/base64 runs count as secrets when they mix letters and digits and have a
  stretch of ≥ 16 characters without a separator, which spares model names such as
  "support-bot-v2" and long hyphenated identifiers. Git commit hashes are redacted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.domain.vocabulary import Role

EMAIL = "email"
PHONE = "phone"
IP_ADDRESS = "ip_address"
SECRET = "secret"
MENTION = "mention"

EXTERNAL_AUDIENCES = frozenset(
    {"affected_users", "customer_support_leads", "pr_team", "regulatory_body"}
)

_EMAIL_TEXT = "[email]"
_PHONE_TEXT = "[phone]"
_IP_TEXT = "[ip address]"
_SECRET_TEXT = "[secret]"
_SECRET_LINK_TEXT = "[secret link]"
_UNKNOWN_PERSON = "a responder"


@dataclass(frozen=True)
class Redacted:
    """The redacted text and how many things of each kind were replaced."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def is_external(audience_value: str) -> bool:
    """True for the audiences outside the company, whose messages must be redacted."""
    return audience_value in EXTERNAL_AUDIENCES


# --- patterns -------------------------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
    re.DOTALL,
)
_SLACK_MAILTO = re.compile(r"<mailto:[^>|]+(?:\|[^>]*)?>")
_SLACK_TEL = re.compile(r"<tel:[^>|]+(?:\|[^>]*)?>")
_SLACK_MENTION = re.compile(r"<@(?P<user>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_LINK = re.compile(r"<(?P<url>https?://[^>|\s]+)(?:\|[^>]*)?>")
_SECRET_QUERY = re.compile(
    r"[?&;](?:[\w.-]*[_.-])?(?:token|key|apikey|signature|sig|secret|password)=",
    re.IGNORECASE,
)

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)

_BEARER = re.compile(r"\b(?P<keep>[Bb]earer\s+)[A-Za-z0-9._~+/=-]{16,}")
_TOKEN_FORMATS = re.compile(
    r"""(?<![\w-])(?:
        xox[abposr]-[A-Za-z0-9-]{10,}               # Slack bot/user/app tokens
      | xapp-[A-Za-z0-9-]{10,}                      # Slack app-level tokens
      | (?:AKIA|ASIA)[A-Z0-9]{16}                   # AWS access key ids
      | gh[pousr]_[A-Za-z0-9]{30,}                  # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,}                # GitHub fine-grained tokens
      | sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}        # OpenAI / Anthropic keys
      | AIza[0-9A-Za-z_-]{35}                       # Google API keys
      | (?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,} # Stripe keys
      | eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}  # JWTs
    )(?![\w-])""",
    re.VERBOSE,
)
_ASSIGNMENT = re.compile(
    r"(?<![\w.-])(?P<label>(?:[\w.-]*[_.-])?"
    r"(?P<word>api_?key|key|token|secret|password|passwd|pwd|signature|sig|credentials?))"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?P<value>[^\s\"'&,;<>()\[\]]+)",
    re.IGNORECASE,
)
_ALWAYS_SECRET_WORDS = frozenset(
    {"secret", "password", "passwd", "pwd", "credential", "credentials"}
)
_HIGH_ENTROPY = re.compile(r"(?<![\w/+=.-])[A-Za-z0-9+/_=-]{32,}(?![\w/+=-])")
_SEPARATORS = re.compile(r"[-_/+=]")

_H = r"[0-9A-Fa-f]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_BODY = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV6 = re.compile(
    rf"""(?<![\w:.])(?:
        (?:{_H}:){{7}}{_H}
      | ::ffff:{_IPV4_BODY}
      | (?:{_H}:){{1,6}}:{_H}
      | (?:{_H}:){{1,5}}(?::{_H}){{1,2}}
      | (?:{_H}:){{1,4}}(?::{_H}){{1,3}}
      | (?:{_H}:){{1,3}}(?::{_H}){{1,4}}
      | (?:{_H}:){{1,2}}(?::{_H}){{1,5}}
      | {_H}:(?::{_H}){{1,6}}
      | :(?::{_H}){{1,7}}
    )(?:%[0-9A-Za-z]+)?(?![\w:]|\.\d)""",
    re.VERBOSE,
)
_IPV4 = re.compile(rf"(?<![\w.]){_IPV4_BODY}(?!\w|\.\d)")

_PHONE_NANP = re.compile(
    r"(?<![\w+])(?:\+?1[ .-]?)?"
    r"(?:\(\d{3}\)[ ]?\d{3}[.-]|\d{3}(?P<sep>[.-])\d{3}(?P=sep))\d{4}(?![\w]|[.-]\d)"
)
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}"
    r"(?:(?P<sep>[ .-])(?:\(\d{1,4}\)[ ]?)?\d{1,5}(?:(?P=sep)\d{1,8}){1,5}|\d{7,14})"
    r"(?![\w]|[.-]\d)"
)


# --- the pass --------------------------------------------------------------------------------

_Piece = tuple[str, bool]  # text, and whether it is a replacement no later pass may touch
_Replace = Callable[[re.Match[str]], str | None]


def redact(text: str, *, role_of: Mapping[str, Role] | None = None) -> Redacted:
    """Replace emails, phones, IP addresses, secrets and Slack mentions with placeholders."""
    roles = role_of or {}
    counts: dict[str, int] = {}
    pieces: list[_Piece] = [(text, False)]

    def run(pattern: re.Pattern[str], kind: str, replace: _Replace) -> None:
        nonlocal pieces
        pieces = _substitute(pieces, pattern, replace, kind, counts)

    def fixed(placeholder: str) -> _Replace:
        return lambda _m: placeholder

    def mention(m: re.Match[str]) -> str:
        role = roles.get(m["user"])
        return f"the {role.label}" if role is not None else _UNKNOWN_PERSON

    run(_PEM, SECRET, fixed(_SECRET_TEXT))
    run(_SLACK_MAILTO, EMAIL, fixed(_EMAIL_TEXT))
    run(_SLACK_TEL, PHONE, fixed(_PHONE_TEXT))
    run(_SLACK_MENTION, MENTION, mention)
    run(_SLACK_LINK, SECRET, _secret_link)
    run(_EMAIL_RE, EMAIL, fixed(_EMAIL_TEXT))
    run(_BEARER, SECRET, lambda m: m["keep"] + _SECRET_TEXT)
    run(_TOKEN_FORMATS, SECRET, fixed(_SECRET_TEXT))
    run(_ASSIGNMENT, SECRET, _assignment)
    run(_HIGH_ENTROPY, SECRET, _high_entropy)
    run(_IPV6, IP_ADDRESS, fixed(_IP_TEXT))
    run(_IPV4, IP_ADDRESS, fixed(_IP_TEXT))
    run(_PHONE_NANP, PHONE, fixed(_PHONE_TEXT))
    run(_PHONE_INTL, PHONE, _international_phone)
    return Redacted(text="".join(piece for piece, _ in pieces), counts=counts)


def _substitute(
    pieces: list[_Piece],
    pattern: re.Pattern[str],
    replace: _Replace,
    kind: str,
    counts: dict[str, int],
) -> list[_Piece]:
    out: list[_Piece] = []
    for piece, done in pieces:
        if done:
            out.append((piece, True))
            continue
        start = 0
        for match in pattern.finditer(piece):
            replacement = replace(match)
            if replacement is None:
                continue
            if match.start() > start:
                out.append((piece[start : match.start()], False))
            out.append((replacement, True))
            counts[kind] = counts.get(kind, 0) + 1
            start = match.end()
        if start < len(piece):
            out.append((piece[start:], False))
    return out


def _secret_link(m: re.Match[str]) -> str | None:
    return _SECRET_LINK_TEXT if _SECRET_QUERY.search(m["url"]) else None


def _assignment(m: re.Match[str]) -> str | None:
    value = m["value"]
    credential_like = (
        m["word"].lower() in _ALWAYS_SECRET_WORDS
        or any(c.isdigit() for c in value)
        or len(value) >= 16
    )
    return f"{m['label']}{m['sep']}{_SECRET_TEXT}" if credential_like else None


def _high_entropy(m: re.Match[str]) -> str | None:
    value = m.group()
    has_letters = any(c.isalpha() for c in value)
    has_digits = any(c.isdigit() for c in value)
    longest_run = max(len(part) for part in _SEPARATORS.split(value))
    return _SECRET_TEXT if has_letters and has_digits and longest_run >= 16 else None


def _international_phone(m: re.Match[str]) -> str | None:
    digits = sum(c.isdigit() for c in m.group())
    return _PHONE_TEXT if 8 <= digits <= 15 else None
