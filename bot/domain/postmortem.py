"""The lessons-learned document as plain data: what is read from the channel, the action
items in it, the key figures, the generated observations, and one merged timeline.

Nothing here talks to Slack or the database; the service hands in what it read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.domain.vocabulary import Severity

PIN_REACTION = "pushpin"
ACTION_REACTION = "white_check_mark"
MARK_REACTIONS = frozenset({PIN_REACTION, ACTION_REACTION})

# Longer message texts are summarised in the document, with a link to the whole message.
SUMMARY_LIMIT = 280

# How long containment may take before the document calls it slow.
CONTAINMENT_TARGETS = {
    Severity.CRITICAL: timedelta(hours=1),
    Severity.HIGH: timedelta(hours=4),
    Severity.MEDIUM: timedelta(hours=24),
    Severity.LOW: timedelta(hours=72),
}
# A first alert this long before the declaration is a detection gap worth a lesson.
DETECTION_TARGET = timedelta(minutes=30)

_ACTION_MARKER = re.compile(r"action[ _-]?item\s*:", re.IGNORECASE)
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DUE_WORD = r"(?:due(?:\s+(?:by|on|date))?|by|before|deadline)\s*:?\s*"
_DUE_PATTERNS = (
    re.compile(_DUE_WORD + r"(?P<iso>\d{4}-\d{2}-\d{2})\b", re.IGNORECASE),
    re.compile(_DUE_WORD + r"<!date\^(?P<epoch>\d+)\^[^>]*>", re.IGNORECASE),
    re.compile(
        _DUE_WORD + rf"(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month>{_MONTH})\.?"
        r"(?:,?\s+(?P<year>\d{4}))?\b",
        re.IGNORECASE,
    ),
    re.compile(
        _DUE_WORD + rf"(?P<month>{_MONTH})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?"
        r"(?:,?\s+(?P<year>\d{4}))?\b",
        re.IGNORECASE,
    ),
    re.compile(_DUE_WORD + r"(?P<relative>today|tomorrow)\b", re.IGNORECASE),
)
_SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def ts_time(ts: str) -> datetime:
    """The moment a Slack message timestamp names."""
    return datetime.fromtimestamp(float(ts), tz=UTC)


def is_person(actor: str) -> bool:
    """Whether an actor id is a Slack user (not warroom, the rota or an alert source)."""
    return len(actor) > 1 and actor[0] in "UW" and actor[1:].isalnum() and actor.isupper()


# ----- the channel -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelMessage:
    """One war-room message, as much of it as the document needs."""

    ts: str
    user: str
    text: str
    thread_ts: str | None = None
    is_bot: bool = False
    pinned: bool = False
    reactions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reply_count: int = 0

    @property
    def at(self) -> datetime:
        return ts_time(self.ts)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def marked(self, reaction: str) -> tuple[str, ...]:
        """Who reacted with `reaction`."""
        return tuple(self.reactions.get(reaction, ()))


def message_from_api(raw: Mapping[str, Any]) -> ChannelMessage:
    """A message from conversations.history / .replies / pins.list."""
    reactions = {
        str(r.get("name", "")): tuple(str(u) for u in r.get("users", ()))
        for r in raw.get("reactions") or ()
        if isinstance(r, Mapping)
    }
    text = str(raw.get("text") or "")
    if not text and raw.get("files"):
        text = "shared " + ", ".join(str(f.get("title") or f.get("name")) for f in raw["files"])
    return ChannelMessage(
        ts=str(raw["ts"]),
        user=str(raw.get("user") or raw.get("bot_id") or ""),
        text=text,
        thread_ts=str(raw["thread_ts"]) if raw.get("thread_ts") else None,
        is_bot=bool(raw.get("bot_id")) or raw.get("subtype") == "bot_message",
        pinned=bool(raw.get("pinned_to")),
        reactions={name: users for name, users in reactions.items() if name and users},
        reply_count=int(raw.get("reply_count") or 0),
    )


@dataclass(frozen=True)
class Mark:
    """A 📌 or ✅ someone put on a war-room message."""

    message_ts: str
    reaction: str
    user_id: str


@dataclass(frozen=True)
class ChannelDigest:
    """What reading the war room found: the messages that matter to the document (pinned,
    📌, ✅, action items) and counts of the rest."""

    channel_id: str | None
    notable: tuple[ChannelMessage, ...] = ()
    total: int = 0
    replies: int = 0
    threads: int = 0
    participants: frozenset[str] = frozenset()
    first_response_at: datetime | None = None
    marks: frozenset[Mark] = frozenset()
    error: str | None = None

    @property
    def read(self) -> bool:
        return self.channel_id is not None and self.error is None


class ChannelReader:
    """Folds a channel's messages, page by page, into a `ChannelDigest`. Only the notable
    messages are kept, so a channel of many thousands costs little memory. warroom's own
    messages (`own_user`: the card, notices, the postmortem's link) are counted, never kept:
    the record already holds what they say."""

    def __init__(
        self,
        channel_id: str,
        *,
        declared_at: datetime,
        pinned: Iterable[str] = (),
        marked: Iterable[str] = (),
        own_user: str | None = None,
    ) -> None:
        self._channel_id = channel_id
        self._own_user = own_user
        self._declared_at = declared_at
        self._pinned = set(pinned)
        self._marked = set(marked)
        self._seen: set[str] = set()
        self._notable: dict[str, ChannelMessage] = {}
        self._threads: list[str] = []
        self._participants: set[str] = set()
        self._marks: set[Mark] = set()
        self._first_response: datetime | None = None
        self._total = 0
        self._replies = 0

    def add(self, message: ChannelMessage) -> None:
        """Count one message; keep it if it matters. Repeats (a reply also sent to the
        channel appears in both reads) are counted once."""
        if message.ts in self._seen:
            return
        self._seen.add(message.ts)
        self._total += 1
        if message.is_reply:
            self._replies += 1
        elif message.reply_count:
            self._threads.append(message.ts)
        if not message.is_bot and message.user:
            self._participants.add(message.user)
            if message.at >= self._declared_at and (
                self._first_response is None or message.at < self._first_response
            ):
                self._first_response = message.at
        if self._own_user and message.user == self._own_user:
            return
        for reaction in MARK_REACTIONS:
            for user in message.marked(reaction):
                self._marks.add(Mark(message.ts, reaction, user))
        if self._is_notable(message):
            pinned = message.pinned or message.ts in self._pinned
            self._notable[message.ts] = (
                message if pinned == message.pinned else _with_pin(message, pinned)
            )

    def threads(self) -> list[str]:
        """Timestamps of the thread parents seen so far, whose replies are still to read."""
        return list(self._threads)

    def digest(self) -> ChannelDigest:
        return ChannelDigest(
            channel_id=self._channel_id,
            notable=tuple(sorted(self._notable.values(), key=lambda m: float(m.ts))),
            total=self._total,
            replies=self._replies,
            threads=len(self._threads),
            participants=frozenset(self._participants),
            first_response_at=self._first_response,
            marks=frozenset(self._marks),
        )

    def _is_notable(self, message: ChannelMessage) -> bool:
        if self._own_user and message.user == self._own_user:
            return False
        return (
            message.pinned
            or message.ts in self._pinned
            or message.ts in self._marked
            or any(message.marked(reaction) for reaction in MARK_REACTIONS)
            or bool(_ACTION_MARKER.search(message.text))
        )


def _with_pin(message: ChannelMessage, pinned: bool) -> ChannelMessage:
    return ChannelMessage(
        ts=message.ts,
        user=message.user,
        text=message.text,
        thread_ts=message.thread_ts,
        is_bot=message.is_bot,
        pinned=pinned,
        reactions=message.reactions,
        reply_count=message.reply_count,
    )


# ----- action items ----------------------------------------------------------------------


@dataclass(frozen=True)
class ActionItem:
    """Something someone has to do after the incident."""

    text: str
    owner_id: str
    author_id: str
    ts: str
    thread_ts: str | None
    due: date | None = None
    # "text" when written as "action item: …", "reaction" when marked with ✅.
    source: str = "text"

    @property
    def owner_is_author(self) -> bool:
        return self.owner_id == self.author_id


def parse_action_items(message: ChannelMessage, *, checked: bool = False) -> list[ActionItem]:
    """The action items in a message: each "action item: …" in its text, or the whole message
    when someone marked it with ✅ (`checked`). The owner is the first person mentioned in the
    item, else the author; the due date follows "due", "by" or "before"."""
    markers = list(_ACTION_MARKER.finditer(message.text))
    if markers:
        bounds = [m.end() for m in markers] + [len(message.text)]
        starts = [m.start() for m in markers[1:]] + [len(message.text)]
        pieces = [message.text[bounds[i] : starts[i]].strip() for i in range(len(markers))]
        source = "text"
    elif checked:
        pieces, source = [message.text.strip()], "reaction"
    else:
        return []
    return [
        ActionItem(
            text=piece,
            owner_id=_owner(piece) or message.user,
            author_id=message.user,
            ts=message.ts,
            thread_ts=message.thread_ts,
            due=parse_due_date(piece, written=message.at.date()),
            source=source,
        )
        for piece in pieces
        if piece
    ]


def _owner(text: str) -> str | None:
    match = _MENTION.search(text)
    return match.group(1) if match else None


def parse_due_date(text: str, *, written: date) -> date | None:
    """The due date in an item's text, if it gives one; a day and month without a year is
    the next such date on or after the day the item was written."""
    for pattern in _DUE_PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        found = match.groupdict()
        try:
            if found.get("iso"):
                return date.fromisoformat(found["iso"])
            if found.get("epoch"):
                return datetime.fromtimestamp(int(found["epoch"]), tz=UTC).date()
            if found.get("relative"):
                return written + timedelta(days=found["relative"].lower() == "tomorrow")
            month, day = _MONTHS[found["month"].lower()], int(found["day"])
            if found.get("year"):
                return date(int(found["year"]), month, day)
            due = date(written.year, month, day)
            return due if due >= written else date(written.year + 1, month, day)
        except ValueError:
            continue  # "due 2026-02-31": not a date, so no due date rather than a wrong one
    return None


def action_items(messages: Iterable[ChannelMessage]) -> list[ActionItem]:
    """Every action item in these messages, oldest first."""
    items: list[ActionItem] = []
    for message in messages:
        items += parse_action_items(message, checked=bool(message.marked(ACTION_REACTION)))
    return items


# ----- the record --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordEvent:
    """One row of the incident's timeline (or an audited decision), as the database has it."""

    at: datetime
    kind: str
    actor_id: str
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StakeholderMessage:
    """One planned message to an audience: when it was due, when it went, met or late."""

    audience: str
    audience_label: str
    tier: str
    state: str
    due_at: datetime
    sent_at: datetime | None
    outcome: str | None
    decided_by: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class LegalClock:
    regime: str
    case: str
    started_at: datetime
    due_at: datetime
    submitted_at: datetime | None
    submitted_by: str | None

    def outcome(self, now: datetime) -> str:
        """met, late, overdue (not yet submitted, past due) or open."""
        if self.submitted_at is not None:
            return "met" if self.submitted_at <= self.due_at else "late"
        return "overdue" if now > self.due_at else "open"


@dataclass(frozen=True)
class ContainmentStep:
    proposal_id: int
    proposed_at: datetime
    proposed_by: str
    kind: str
    label: str
    state: str
    target: str
    updated_at: datetime
    # (user id, "approve" or "reject", when), in the order they were made
    decisions: tuple[tuple[str, str, datetime], ...] = ()
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(user for user, decision, _ in self.decisions if decision == "approve")


@dataclass(frozen=True)
class RecoveryStep:
    seq: int
    system: str
    kind: str
    title: str
    state: str
    updated_at: datetime
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    user_id: str
    went_well: str
    went_badly: str
    got_lucky: str
    submitted_at: datetime


@dataclass(frozen=True)
class IncidentRecord:
    """Everything the database knows about an incident that the document shows."""

    events: tuple[RecordEvent, ...] = ()
    messages: tuple[StakeholderMessage, ...] = ()
    clocks: tuple[LegalClock, ...] = ()
    containment: tuple[ContainmentStep, ...] = ()
    recovery: tuple[RecoveryStep, ...] = ()
    recovered_at: datetime | None = None
    first_alert_at: datetime | None = None
    first_alert_title: str | None = None
    alert_count: int = 0
    rca: Mapping[str, Any] | None = None
    lessons: tuple[Lesson, ...] = ()
    marks: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class StoredPostmortem:
    """One stored version of the document."""

    id: int
    incident_id: int
    version: int
    markdown: str
    figures: Mapping[str, Any]
    built_by: str
    built_at: datetime
    published_via: str | None = None
    canvas_id: str | None = None
    file_id: str | None = None
    permalink: str | None = None


# ----- key figures -----------------------------------------------------------------------


@dataclass(frozen=True)
class Milestones:
    declared_at: datetime
    first_alert_at: datetime | None = None
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    recovered_at: datetime | None = None
    resolved_at: datetime | None = None


def milestones(
    *,
    declared_at: datetime,
    record: IncidentRecord,
    first_response_at: datetime | None,
    resolved_at: datetime | None,
) -> Milestones:
    """When the incident was detected, acknowledged (the first thing a person did after the
    declaration: a message in the war room or an action warroom recorded), contained,
    recovered (the recovery plan completed) and resolved."""
    responses = [
        e.at
        for e in record.events
        if is_person(e.actor_id) and e.at >= declared_at and e.kind != "declared"
    ]
    if first_response_at is not None:
        responses.append(first_response_at)

    def reached(state: str) -> datetime | None:
        for event in record.events:
            if event.kind == "state_changed" and event.data.get("to") == state:
                return event.at
        return None

    return Milestones(
        declared_at=declared_at,
        first_alert_at=record.first_alert_at,
        acknowledged_at=min(responses, default=None),
        contained_at=reached("contained"),
        recovered_at=record.recovered_at,
        resolved_at=resolved_at or reached("resolved"),
    )


@dataclass(frozen=True)
class DeadlineTally:
    met: int = 0
    late: int = 0
    open: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Figures:
    time_to_detect: timedelta | None
    time_to_acknowledge: timedelta | None
    time_to_contain: timedelta | None
    time_to_recover: timedelta | None
    time_to_resolve: timedelta | None
    deadlines: DeadlineTally

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the stored version: durations in whole seconds (None if unknown)."""

        def seconds(value: timedelta | None) -> int | None:
            return None if value is None else int(value.total_seconds())

        return {
            "time_to_detect_s": seconds(self.time_to_detect),
            "time_to_acknowledge_s": seconds(self.time_to_acknowledge),
            "time_to_contain_s": seconds(self.time_to_contain),
            "time_to_recover_s": seconds(self.time_to_recover),
            "time_to_resolve_s": seconds(self.time_to_resolve),
            "deadlines_met": self.deadlines.met,
            "deadlines_late": self.deadlines.late,
            "deadlines_open": self.deadlines.open,
            "deadlines_skipped": self.deadlines.skipped,
        }


def tally_deadlines(
    messages: Iterable[StakeholderMessage], clocks: Iterable[LegalClock], *, now: datetime
) -> DeadlineTally:
    """Stakeholder messages and legal clocks: met, late (overdue ones included), still open,
    skipped."""
    met = late = still_open = skipped = 0
    for message in messages:
        if message.state == "skipped":
            skipped += 1
        elif message.outcome == "met":
            met += 1
        elif message.outcome == "late" or (message.sent_at is None and now > message.due_at):
            late += 1
        else:
            still_open += 1
    for clock in clocks:
        outcome = clock.outcome(now)
        met += outcome == "met"
        late += outcome in ("late", "overdue")
        still_open += outcome == "open"
    return DeadlineTally(met=met, late=late, open=still_open, skipped=skipped)


def key_figures(points: Milestones, deadlines: DeadlineTally) -> Figures:
    """Time to detect (first alert → declaration), and from the declaration to
    acknowledgement, containment, recovery and resolution."""

    def since_declared(moment: datetime | None) -> timedelta | None:
        return None if moment is None else max(moment - points.declared_at, timedelta(0))

    detect = None
    if points.first_alert_at is not None:
        detect = max(points.declared_at - points.first_alert_at, timedelta(0))
    return Figures(
        time_to_detect=detect,
        time_to_acknowledge=since_declared(points.acknowledged_at),
        time_to_contain=since_declared(points.contained_at),
        time_to_recover=since_declared(points.recovered_at),
        time_to_resolve=since_declared(points.resolved_at),
        deadlines=deadlines,
    )


def format_duration(value: timedelta | None) -> str:
    """`2 h 05 min`, `45 min 10 s`, `12 s`, `3 d 4 h`; an em dash when unknown."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


# ----- observations ----------------------------------------------------------------------


def observations(
    *,
    severity: Severity,
    figures: Figures,
    record: IncidentRecord,
    items: Sequence[ActionItem],
    resolved: bool,
    now: datetime,
) -> list[str]:
    """What the record itself says went badly or needs a follow-up, in plain sentences."""
    notes: list[str] = []
    late = [
        m
        for m in record.messages
        if m.state != "skipped" and (m.outcome == "late" or (m.sent_at is None and now > m.due_at))
    ]
    if late:
        worst = max(late, key=lambda m: (m.sent_at or now) - m.due_at)
        notes.append(
            f"{len(late)} of {len(record.messages)} stakeholder messages missed their deadline; "
            f"the worst, the {worst.audience_label} ({worst.tier}) message, was "
            f"{format_duration((worst.sent_at or now) - worst.due_at)} late"
            + ("." if worst.sent_at else " and is still unsent.")
        )
    for clock in record.clocks:
        outcome = clock.outcome(now)
        if outcome == "late" and clock.submitted_at is not None:
            notes.append(
                f"The {clock.regime.upper()} report was filed "
                f"{format_duration(clock.submitted_at - clock.due_at)} after its legal deadline."
            )
        elif outcome == "overdue":
            notes.append(
                f"The {clock.regime.upper()} report is overdue by "
                f"{format_duration(now - clock.due_at)} and not yet filed."
            )
    target = CONTAINMENT_TARGETS[severity]
    if figures.time_to_contain is not None and figures.time_to_contain > target:
        notes.append(
            f"Containment took {format_duration(figures.time_to_contain)}, over the "
            f"{format_duration(target)} target for a {severity.value} incident."
        )
    elif figures.time_to_contain is None and resolved:
        notes.append("The incident was resolved without ever being marked contained.")
    failed = [step for step in record.containment if step.state == "failed"]
    if failed:
        notes.append(
            f"{len(failed)} containment action(s) failed: "
            + ", ".join(step.label for step in failed)
            + "."
        )
    if figures.time_to_detect is not None and figures.time_to_detect > DETECTION_TARGET:
        notes.append(
            f"The first alert fired {format_duration(figures.time_to_detect)} before the "
            "incident was declared."
        )
    if record.rca is None:
        notes.append("No root-cause analysis was confirmed; the causes are unverified.")
    failed_recovery = [step for step in record.recovery if step.state == "failed"]
    if failed_recovery:
        notes.append(
            f"{len(failed_recovery)} recovery step(s) failed validation: "
            + ", ".join(step.title for step in failed_recovery)
            + "."
        )
    undated = [item for item in items if item.due is None]
    if undated:
        notes.append(f"{len(undated)} of {len(items)} action items have no due date.")
    if not record.lessons:
        notes.append("No responder has shared lessons yet (the Share lessons button).")
    return notes


# ----- the timeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor_id: str
    text: str
    # "record" (the database) or "channel" (a pinned or marked message)
    source: str = "record"
    ts: str | None = None
    thread_ts: str | None = None


_SKIPPED_KINDS = frozenset({"cadence_snoozed"})


def record_entries(record: IncidentRecord) -> list[TimelineEntry]:
    """The database's side of the timeline: its events, the first alert, containment
    approvals, recovery steps and the RCA's confirmation."""
    entries = [
        TimelineEntry(at=e.at, kind=e.kind, actor_id=e.actor_id, text=e.summary)
        for e in record.events
        if e.kind not in _SKIPPED_KINDS
    ]
    if record.first_alert_at is not None:
        more = f" ({record.alert_count} alerts in all)" if record.alert_count > 1 else ""
        entries.append(
            TimelineEntry(
                at=record.first_alert_at,
                kind="first_alert",
                actor_id="alert",
                text=f"First alert: {record.first_alert_title or 'untitled'}{more}",
            )
        )
    for step in record.containment:
        for user, decision, at in step.decisions:
            verb = "Approved" if decision == "approve" else "Rejected"
            entries.append(
                TimelineEntry(
                    at=at,
                    kind=f"containment_{decision}",
                    actor_id=user,
                    text=f"{verb} {step.label} ({step.target or 'no target'})",
                )
            )
    # Capabilities that write their own timeline events are not repeated from their tables.
    kinds = {e.kind for e in record.events}
    recovery_logged = any(kind.startswith("recovery") for kind in kinds)
    for recovery in () if recovery_logged else record.recovery:
        if recovery.state in ("passed", "failed", "done"):
            entries.append(
                TimelineEntry(
                    at=recovery.updated_at,
                    kind="recovery_step",
                    actor_id="warroom",
                    text=f"Recovery step {recovery.seq} ({recovery.system}): "
                    f"{recovery.title} — {recovery.state}",
                )
            )
    rca = record.rca
    rca_logged = any("rca" in kind and "confirm" in kind for kind in kinds)
    if rca and not rca_logged and isinstance(rca.get("confirmed_at"), datetime):
        entries.append(
            TimelineEntry(
                at=rca["confirmed_at"],
                kind="rca_confirmed",
                actor_id=str(rca.get("confirmed_by") or "warroom"),
                text=f"Root-cause analysis v{rca.get('version', '?')} confirmed",
            )
        )
    return entries


def channel_entries(messages: Iterable[ChannelMessage]) -> list[TimelineEntry]:
    """The channel's side of the timeline: every pinned or 📌-marked message."""
    entries = []
    for message in messages:
        marked = message.marked(PIN_REACTION)
        if not (message.pinned or marked):
            continue
        entries.append(
            TimelineEntry(
                at=message.at,
                kind="pinned" if message.pinned else "marked",
                actor_id=message.user,
                text=message.text,
                source="channel",
                ts=message.ts,
                thread_ts=message.thread_ts if message.is_reply else None,
            )
        )
    return entries


def unread_marks(marks: Iterable[Mark]) -> tuple[list[TimelineEntry], list[ActionItem]]:
    """When the war room cannot be read, the marks captured as they happened still say which
    messages mattered (their text unknown): 📌 as timeline entries, ✅ as action items owned
    by whoever marked them."""
    first: dict[tuple[str, str], str] = {}
    for mark in marks:
        first.setdefault((mark.message_ts, mark.reaction), mark.user_id)
    entries = [
        TimelineEntry(
            at=ts_time(ts),
            kind="marked",
            actor_id=user,
            text="A message marked :pushpin: (warroom could not read its text)",
            source="channel",
            ts=ts,
        )
        for (ts, reaction), user in sorted(first.items())
        if reaction == PIN_REACTION
    ]
    items = [
        ActionItem(
            text="A message marked :white_check_mark: (warroom could not read its text)",
            owner_id=user,
            author_id=user,
            ts=ts,
            thread_ts=None,
            source="reaction",
        )
        for (ts, reaction), user in sorted(first.items())
        if reaction == ACTION_REACTION
    ]
    return entries, items


def merge_timeline(*streams: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """One timeline, oldest first; at the same moment the record comes before the channel
    and each stream keeps its own order."""
    tagged = [
        (entry.at, entry.source != "record", index, entry)
        for stream in streams
        for index, entry in enumerate(stream)
    ]
    return [entry for *_, entry in sorted(tagged, key=lambda t: (t[0], t[1], t[2]))]


# ----- text --------------------------------------------------------------------------------


def slack_to_markdown(text: str, *, mention: Callable[[str], str]) -> str:
    """Slack's message markup as Markdown: user mentions through `mention`, channel and
    broadcast mentions as text, `<url|label>` as links, entities unescaped."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return mention(target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!subteam^"):
            return label or "@team"
        if target.startswith("!"):
            return "@" + target[1:]
        return f"[{label}]({target})" if label else target

    converted = _SLACK_LINK.sub(link, text)
    return converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def one_line(text: str) -> str:
    """Text on one line (runs of whitespace and line breaks become one space)."""
    return " ".join(text.split())


def summarise(text: str, limit: int = SUMMARY_LIMIT) -> tuple[str, bool]:
    """The text, or its first `limit` characters cut at a word and marked with an ellipsis;
    the flag says whether it was cut, so the caller links the whole message."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind(" ", 0, limit)
    cut = cut if cut > limit // 2 else limit
    # Never through the middle of Slack markup (<@U1>, <https://…|label>): cut before it,
    # or after it when it starts the summary.
    opened = text.rfind("<", 0, cut)
    if opened > text.rfind(">", 0, cut):
        closed = text.find(">", cut)
        cut = closed + 1 if opened < limit // 2 and closed != -1 else opened
    if cut >= len(text):
        return text, False
    return text[:cut].rstrip() + " …", True


def message_link(workspace_url: str, channel_id: str, ts: str, thread_ts: str | None) -> str:
    """Slack's archive link to a message (what chat.getPermalink returns)."""
    base = workspace_url.rstrip("/")
    link = f"{base}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link
