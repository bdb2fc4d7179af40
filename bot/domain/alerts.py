"""Alerts from monitors, as warroom understands them whatever system sent them."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.vocabulary import IncidentSource, IncidentType, Severity, parse_severity


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


# Monitoring systems' own severity words, on top of warroom's four and sev1…sev4.
_MONITOR_SEVERITIES = {
    "page": Severity.CRITICAL,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "minor": Severity.MEDIUM,
    "info": Severity.LOW,
    "informational": Severity.LOW,
    "none": Severity.LOW,
}


def parse_alert_severity(word: str) -> Severity | None:
    """warroom's severity for a monitor's word (critical/high/warning/info, sev1…, ours)."""
    return parse_severity(word) or _MONITOR_SEVERITIES.get(word.strip().lower())


# Both are asked once per alert, of the few words a group's labels repeat: remembered.
@functools.lru_cache(maxsize=1024)
def alert_severity(word: str | None, *, default: Severity = Severity.MEDIUM) -> Severity:
    """The severity a label names, or `default` when it names none or an unknown one."""
    return (parse_alert_severity(word) if word else None) or default


@functools.lru_cache(maxsize=1024)
def split_indicators(*values: str | None) -> tuple[str, ...]:
    """Indicators from comma-separated label values, normalised, each once, in order."""
    seen: dict[str, None] = {}
    for value in values:
        for part in (value or "").split(","):
            word = part.strip().lower().replace("-", "_").replace(" ", "_")
            if word:
                seen[word] = None
    return tuple(seen)


def stable_hash(*parts: str) -> str:
    """A short stable fingerprint of the parts (for senders that send none)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class Alert:
    """One alert: a fingerprint, the group it belongs to, and what it says."""

    source: IncidentSource
    fingerprint: str
    group_key: str
    status: AlertStatus
    title: str
    severity: Severity
    starts_at: datetime
    description: str = ""
    indicators: tuple[str, ...] = ()
    model: str | None = None
    systems: tuple[str, ...] = ()
    link: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    # Set when the sender already knows (the anomaly detector); otherwise classified.
    incident_type: IncidentType | None = None

    @property
    def dedup_key(self) -> str:
        """The same alert delivered again (Alertmanager repeats whole groups) has this key."""
        return stable_hash(
            self.source.value, self.fingerprint, self.status.value, self.starts_at.isoformat()
        )


@dataclass(frozen=True)
class ReceivedDelivery:
    """One webhook body to keep as evidence, and how many of its alerts were new."""

    source: IncidentSource
    body: Any
    alert_count: int
    new_alerts: int
    received_at: datetime


@dataclass(frozen=True)
class GroupAlerts:
    """New alerts of one group from one delivery, with their dedup keys (one per alert)."""

    alerts: list[Alert]
    dedup_keys: list[str]
    delivery_id: int
    group_id: int
    incident_id: int | None
    received_at: datetime


@dataclass
class GroupTally:
    """New alerts counted for one group; `pending_*` are those its war room has yet to hear."""

    group_id: int
    at: datetime
    added: int = 0
    pending_firing: int = 0
    pending_resolved: int = 0

    def add(self, at: datetime, *, added: int, firing: int = 0, resolved: int = 0) -> None:
        self.at = max(self.at, at)
        self.added += added
        self.pending_firing += firing
        self.pending_resolved += resolved
