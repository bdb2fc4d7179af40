"""The tamper-evident audit log and preserved evidence, as plain data and pure functions.

Each audit entry carries the hash of the entry before it, so changing, removing or
reordering an entry breaks the chain from that entry on. Cutting off the newest entries
cannot be seen from the chain alone; that needs its head hash kept elsewhere.

Hash of an entry (`entry_hash`): the lowercase hex SHA-256 of the UTF-8 bytes of the
canonical JSON (`canonical_json`) of this object::

    {"action": "approved", "actor": "U0COMMANDER", "at": "2026-11-26T12:00:00.000000Z",
     "detail": {...}, "incident_id": 7, "prev_hash": "<64 hex>", "seq": 3}

Canonical JSON: keys sorted at every level, no whitespace (separators "," and ":"),
non-ASCII characters escaped as \\uXXXX, NaN and Infinity refused. Times are UTC,
ISO-8601 with exactly six fractional digits and a "Z". The first entry of an incident
(seq 1) has `GENESIS_HASH` as its prev_hash. An evidence digest is the SHA-256 of the
canonical JSON of its content; its size is the length of those bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

GENESIS_HASH = "0" * 64


class AuditAction(StrEnum):
    DECLARED = "declared"
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUSED = "refused"
    EXECUTED = "executed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    EVIDENCE_PRESERVED = "evidence_preserved"
    STATE_CHANGED = "state_changed"
    SEVERITY_CHANGED = "severity_changed"
    ROLE_ASSIGNED = "role_assigned"
    FLAGGED = "flagged"
    NOTIFICATION_SENT = "notification_sent"
    NOTIFICATION_SKIPPED = "notification_skipped"
    NOTIFICATION_EDITED = "notification_edited"
    NOTIFICATION_ESCALATED = "notification_escalated"
    STATUS_UPDATE = "status_update"
    REGULATORY_CLOCK_STARTED = "regulatory_clock_started"
    REGULATORY_SUBMITTED = "regulatory_submitted"
    RECOVERY_STARTED = "recovery_started"
    RECOVERY_STEP = "recovery_step"
    RECOVERY_HELD = "recovery_held"
    RECOVERY_COMPLETED = "recovery_completed"
    MONITORING_STARTED = "monitoring_started"
    REOPENED = "reopened"
    # root-cause analysis and the lessons it feeds back into detection
    RCA_ANALYSED = "rca_analysed"
    RCA_CONFIRMED = "rca_confirmed"
    RCA_CORRECTED = "rca_corrected"
    RULE_PROPOSED = "rule_proposed"
    RULE_APPLIED = "rule_applied"
    RULE_DISMISSED = "rule_dismissed"


@dataclass(frozen=True)
class AuditNote:
    """What an entry is to say, before it is chained (seq and hashes come from the head)."""

    incident_id: int
    actor: str
    action: AuditAction
    detail: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class AuditEntry:
    incident_id: int
    seq: int
    at: datetime
    actor: str
    action: AuditAction
    detail: dict[str, Any]  # JSON types only
    prev_hash: str
    hash: str

    def content_hash(self) -> str:
        """The hash this entry's content calls for (equal to `hash` unless tampered with)."""
        return entry_hash(
            incident_id=self.incident_id,
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            detail=self.detail,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    count: int
    first_broken_seq: int | None = None
    reason: str | None = None


def canonical_json(value: Any) -> bytes:
    """The one byte encoding warroom hashes (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("utf-8")


def utc_timestamp(at: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z, e.g. 2026-11-26T12:00:00.000000Z."""
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given; audit times are UTC-aware")
    return at.astimezone(UTC)


def json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plain JSON copy of `value`, exactly as it reads back after storage."""
    loaded = json.loads(canonical_json(value))
    if not isinstance(loaded, dict):
        raise TypeError("expected a JSON object")
    return loaded


def entry_hash(
    *,
    incident_id: int,
    seq: int,
    at: datetime,
    actor: str,
    action: AuditAction | str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 hex of the entry's canonical JSON, previous hash included."""
    payload = {
        "action": str(action),
        "actor": actor,
        "at": utc_timestamp(at),
        "detail": detail,
        "incident_id": incident_id,
        "prev_hash": prev_hash,
        "seq": seq,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def next_entry(
    head: AuditEntry | None,
    *,
    incident_id: int,
    actor: str,
    action: AuditAction,
    detail: Mapping[str, Any],
    at: datetime,
) -> AuditEntry:
    """The entry that follows `head` (None: the incident's first entry)."""
    seq, prev_hash = (1, GENESIS_HASH) if head is None else (head.seq + 1, head.hash)
    plain = json_object(detail)
    at = _utc(at)
    return AuditEntry(
        incident_id=incident_id,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        detail=plain,
        prev_hash=prev_hash,
        hash=entry_hash(
            incident_id=incident_id,
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            detail=plain,
            prev_hash=prev_hash,
        ),
    )


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Check one incident's chain and name the first entry that breaks it.

    Entries are taken in seq order whatever order they come in: seq is hashed, so the
    order cannot be changed without breaking a hash.
    """
    ordered = sorted(entries, key=lambda entry: entry.seq)
    count = len(ordered)
    prev_hash, expected = GENESIS_HASH, 1
    incident_id = ordered[0].incident_id if ordered else None
    for entry in ordered:
        reason = _break_in(entry, expected=expected, prev_hash=prev_hash, incident_id=incident_id)
        if reason is not None:
            broken = min(entry.seq, expected)
            return ChainCheck(ok=False, count=count, first_broken_seq=broken, reason=reason)
        prev_hash, expected = entry.hash, expected + 1
    return ChainCheck(ok=True, count=count)


def _break_in(
    entry: AuditEntry, *, expected: int, prev_hash: str, incident_id: int | None
) -> str | None:
    if entry.seq < expected:
        return f"entry {entry.seq} appears more than once"
    if entry.seq > expected:
        if expected == 1:
            return f"entry 1 missing (the chain starts at entry {entry.seq})"
        return f"entry {expected} missing (seq jumps from {expected - 1} to {entry.seq})"
    if entry.incident_id != incident_id:
        return f"entry {entry.seq}: belongs to another incident (id {entry.incident_id})"
    if entry.content_hash() != entry.hash:
        return f"entry {entry.seq}: hash does not match its content"
    if entry.prev_hash != prev_hash:
        if entry.seq == 1:
            return "entry 1: prev_hash is not the genesis hash"
        return f"entry {entry.seq}: prev_hash does not match entry {entry.seq - 1}"
    return None


# -- evidence ------------------------------------------------------------------------------


class EvidenceKind(StrEnum):
    INCIDENT_RECORD = "incident_record"
    ALERTS = "alerts"
    WAR_ROOM_MESSAGES = "war_room_messages"


@dataclass(frozen=True)
class EvidenceRecord:
    id: int
    incident_id: int
    kind: EvidenceKind
    taken_at: datetime
    reason: str
    content: dict[str, Any]  # JSON types only
    sha256: str
    size: int

    def is_intact(self) -> bool:
        """True when the content still has the digest taken when it was preserved."""
        sha256, size = evidence_digest(self.content)
        return (sha256, size) == (self.sha256, self.size)


def evidence_digest(content: Mapping[str, Any]) -> tuple[str, int]:
    """SHA-256 hex and byte size of the content's canonical JSON."""
    encoded = canonical_json(content)
    return hashlib.sha256(encoded).hexdigest(), len(encoded)


def to_json_value(value: Any) -> JsonValue:
    """Dataclasses, enums, tuples and aware datetimes as plain JSON values."""
    if isinstance(value, Enum):
        return to_json_value(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return utc_timestamp(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value")
