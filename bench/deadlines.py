"""Deadline delivery: thousands of planned audience messages all due within one minute.

Run by hand from the repository root (never from pytest):

    python bench/deadlines.py [--incidents 1000] [--window 60]
        [--restart rolling|rolling-kill|kill|close|none]
    python bench/deadlines.py --quick
    python bench/deadlines.py --only-restart --restart kill
    python bench/deadlines.py --profile 500
    python bench/deadlines.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Declares `incidents` critical incidents (personal data, public facing: ten audience messages
each) through warroom's own service, gives each a war room in the Slack emulator (channel,
pinned card, one draft per message, written straight into the emulator's state, not opened
through Slack), rewrites the messages' deadlines to fall evenly over `window` seconds starting
a few seconds ahead, and lets warroom deliver them: its real APScheduler date timers (and the
15-second deadline sweep) in a separate process, the emulator (every audience its own channel,
the 1 message/s/channel limit off) in this one. Prints the lateness of every message (sent_at
minus due_at, from the database), duplicates and missed messages (counted in the emulator's
channels), messages/s, and the ratio to a baseline measured in the same run: bare APScheduler
date jobs firing a no-op at the same due times. Then the same with a restart in the middle of
the window. Loopback only, bounded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, func, select, text, update

from bot.domain.vocabulary import Audience
from bot.emulator.server import SlackEmulator
from bot.emulator.state import BOT_USER_ID
from storage.db import build_engine, is_sqlite, normalise_url, upgrade
from storage.models import (
    IncidentRow,
    NotificationRow,
    OutboundMessageRow,
    RegulatoryClockRow,
    ReminderRow,
)

BOT_TOKEN = "xoxb-bench-token"
SIGNING_SECRET = "bench-signing-secret"

MAX_INCIDENTS = 5_000
MAX_WINDOW_S = 600
LEAD_S = 5.0  # the window opens this long after the timers are asked for
START_TIMEOUT_S = 120.0  # a child process builds warroom (and trains its classifier)
POLL_S = 0.5
MAX_DRAIN_S = 900
CORES = os.cpu_count() or 1  # after the grace, keep waiting at most this long for the stragglers

# Target: every message within a second of its deadline, each sent once, none lost.
TARGET_P99_S = 1.0

AUDIENCE_CHANNELS = {
    audience: f"C0{audience.value.upper().replace('_', '')[:9]}" for audience in Audience
}
ANNOUNCE_CHANNEL = "C0ANNOUNCE"

BENCH_CONFIG: dict[str, Any] = {
    "channel_prefix": "inc",
    "roles": {
        "incident_commander": ["U0COMMANDER"],
        "ai_safety_lead": ["U0SAFETY"],
        "security_analyst": ["U0SECURITY"],
        "data_scientist": ["U0DATA"],
        "communications_lead": ["U0COMMS"],
        "legal_advisor": ["U0LEGAL"],
    },
    "audiences": {a.value: [channel] for a, channel in AUDIENCE_CHANNELS.items()},
    "announce_channel": ANNOUNCE_CHANNEL,
    # The emulator's per-channel limit is off, so warroom's own pacing is off too.
    "notifications": {"channel_pace": 0},
    "regulatory": {"contact": "dpo@example.com"},
}

log = logging.getLogger("bench")


# ----- the database ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """Where a phase's rows live; picklable, so a child process can open it too."""

    url: str
    schema: str | None = None  # PostgreSQL: the throwaway schema


def engine_for(db: Database, *, product: bool) -> Engine:
    """`product`: warroom's own engine settings (SQLite: WAL, BEGIN IMMEDIATE, its pool).
    Otherwise a plain engine for the benchmark's reads, which never take SQLite's write lock."""
    if db.schema is None:
        return build_engine(db.url) if product else create_engine(db.url)
    # The pool settings of storage.db.build_engine, plus a search_path to the throwaway schema.
    return create_engine(
        db.url,
        connect_args={"options": f"-csearch_path={db.schema}"},
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
    )


@contextmanager
def bench_database(database_url: str | None) -> Iterator[Database]:
    """A migrated, empty database: a temp SQLite file, or a throwaway PostgreSQL schema."""
    if database_url is None or is_sqlite(database_url):
        if database_url not in (None, "") and database_url not in ("sqlite://", "sqlite:///"):
            raise SystemExit("--database-url: only PostgreSQL (SQLite is a temp file)")
        with tempfile.TemporaryDirectory(prefix="warroom-deadlines-") as tmp:
            db = Database(url=f"sqlite:///{Path(tmp) / 'warroom.db'}")
            engine = engine_for(db, product=True)
            upgrade(engine)
            engine.dispose()
            yield db
        return
    url = normalise_url(database_url)
    db = Database(url=url, schema=f"bench_{uuid.uuid4().hex[:10]}")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{db.schema}"'))
    try:
        engine = engine_for(db, product=True)
        upgrade(engine)
        engine.dispose()
        yield db
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{db.schema}" CASCADE'))
        admin.dispose()


# ----- warroom in a child process ----------------------------------------------------------------


@dataclass(frozen=True)
class AppSpec:
    db: Database
    api_url: str
    stale_send_s: float
    restart: bool  # a restart: start_background_work(), as `warroom serve` does


def bench_settings(api_url: str, database_url: str) -> Any:
    from bot.settings import Settings

    return Settings.model_validate(
        {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": api_url,
            "database_url": database_url,
        }
    )


def build_warroom(db: Database, api_url: str) -> Any:
    from bot.app import create_app
    from bot.config import parse_config

    return create_app(
        bench_settings(api_url, db.url),
        parse_config(BENCH_CONFIG),
        engine=engine_for(db, product=True),
    )


def run_warroom(conn: Connection, spec: AppSpec) -> None:
    """One warroom process. First start: build, train the classifier, say "ready"; on "go"
    start the sending threads, rebuild the timers and start the scheduler (what
    start_background_work does after training). Restart: build and start_background_work()
    at once. Either way report "armed", then run until told to "stop" (or "close", which
    leaves the process to finish what its scheduler already handed to its threads)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import bot.services.notifications as notifications

    # A claim older than this belongs to a dead worker (2 minutes in production).
    notifications.STALE_SEND = timedelta(seconds=spec.stale_send_s)
    app = build_warroom(spec.db, spec.api_url)
    if spec.restart:
        began = time.time()
        app.start_background_work()
        conn.send(("armed", began, time.time(), len(app.scheduler.get_jobs()), time.process_time()))
    else:
        app.classifier.warm_up()
        conn.send(("ready",))
        if conn.recv() != "go":
            return
        began = time.time()
        app.communications.start()
        app.communications.timers.rebuild()
        app.scheduler.start()
        app.freeze_heap()
        conn.send(("armed", began, time.time(), len(app.scheduler.get_jobs()), time.process_time()))
    command = conn.recv()
    app.close()
    if command == "stop":
        conn.send(("closed", time.process_time()))


def run_baseline(conn: Connection, due: list[float]) -> None:
    """Bare APScheduler, as warroom configures it (16 threads, date jobs, no misfire grace):
    one job per due time that only notes how late it ran."""
    from apscheduler.executors.pool import ThreadPoolExecutor as APSThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lateness: list[float] = []
    done = threading.Event()

    def job(at: float) -> None:
        lateness.append(time.time() - at)
        if len(lateness) == len(due):
            done.set()

    scheduler = BackgroundScheduler(
        timezone="UTC", executors={"default": APSThreadPoolExecutor(max_workers=16)}
    )
    for i, at in enumerate(due):
        scheduler.add_job(
            job,
            "date",
            run_date=datetime.fromtimestamp(at, tz=UTC),
            args=[at],
            id=f"bench:{i}",
            misfire_grace_time=None,
            coalesce=True,
        )
    scheduler.start()
    done.wait(timeout=max(due) - time.time() + 60)
    scheduler.shutdown(wait=False)
    conn.send(lateness)


class Child:
    """A spawned process and its end of a pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.conn, child_end = spawn.Pipe()
        self.process = spawn.Process(target=target, args=(child_end, *args), daemon=True)
        self.process.start()
        self.closing = False

    def expect(self, what: str, timeout: float = START_TIMEOUT_S) -> tuple[Any, ...]:
        if not self.conn.poll(timeout):
            raise SystemExit(f"child process: no '{what}' within {timeout:.0f} s")
        message: tuple[Any, ...] = self.conn.recv()
        if message[0] != what:
            raise SystemExit(f"child process: expected '{what}', got {message!r}")
        return message

    def close(self) -> None:
        """app.close() in the child, without waiting: its threads finish what its scheduler
        had handed them (the process exits when they are done), as a graceful stop does."""
        self.conn.send("close")
        self.closing = True

    def stop(self) -> float | None:
        """Stop warroom in the child and end the process; the CPU seconds it had used."""
        cpu: float | None = None
        if self.process.is_alive() and not self.closing:
            try:
                self.conn.send("stop")
                cpu = self.expect("closed", timeout=30)[1]
            except (BrokenPipeError, EOFError, OSError, SystemExit):
                pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        return cpu

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown, no finally, claims left as they are
        self.process.join(timeout=10)


# ----- set-up: incidents, war rooms, deadlines ---------------------------------------------------


def declare_incidents(db: Database, api_url: str, count: int) -> None:
    """Through warroom's IncidentService: each critical incident with personal data and a
    public face plans ten audience messages (and their reminders and legal clocks)."""
    from bot.domain.incident import Declaration
    from bot.domain.vocabulary import IncidentSource, Severity

    app = build_warroom(db, api_url)
    try:
        began = time.perf_counter()
        for i in range(count):
            app.workflow.incidents.declare(
                Declaration(
                    title=f"Support bot leaks customer emails (bench {i + 1})",
                    severity=Severity.CRITICAL,
                    reporter_id="U0REPORTER",
                    source=IncidentSource.SLASH_COMMAND,
                    dedup_key=f"bench-deadlines:{i + 1}",
                    description="The bot answered one customer with another customer's email.",
                    affected_systems=("support-bot-v2",),
                    personal_data=True,
                    public_facing=True,
                )
            )
            if (i + 1) % 250 == 0:
                print(f"    declared {i + 1}/{count}", flush=True)
        print(f"    {count} incidents declared in {time.perf_counter() - began:.1f} s", flush=True)
    finally:
        app.close()


def seed_war_rooms(engine: Engine, emulator: SlackEmulator) -> int:
    """Give every incident an open war room without going through Slack: a channel in the
    emulator holding a card, one draft per planned message and one report per legal clock,
    all posted as the bot, and the rows pointing at them. Each send then refreshes the card
    and its draft with chat.update, as in production."""
    state = emulator.state
    with engine.connect() as connection:
        incidents = connection.execute(select(IncidentRow.id, IncidentRow.number)).all()
        notes = connection.execute(select(NotificationRow.id, NotificationRow.incident_id)).all()
        clocks = connection.execute(
            select(RegulatoryClockRow.id, RegulatoryClockRow.incident_id)
        ).all()
    channel_of: dict[int, str] = {}
    incident_rows, note_rows, clock_rows = [], [], []
    for incident_id, number in incidents:
        channel, name = f"CWR{number:07d}", f"inc-{number}-bench-war-room"
        state.add_channel(name, channel_id=channel)
        channel_of[incident_id] = channel
        card = state.add_message(channel, "incident card", user=BOT_USER_ID)
        incident_rows.append(
            {"b_id": incident_id, "b_channel": channel, "b_name": name, "b_ts": card}
        )
    for note_id, incident_id in notes:
        channel = channel_of[incident_id]
        ts = state.add_message(channel, f"draft {note_id}", user=BOT_USER_ID)
        note_rows.append({"b_id": note_id, "b_channel": channel, "b_ts": ts})
    for clock_id, incident_id in clocks:
        channel = channel_of[incident_id]
        ts = state.add_message(channel, f"report {clock_id}", user=BOT_USER_ID)
        clock_rows.append({"b_id": clock_id, "b_channel": channel, "b_ts": ts})
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            update(IncidentRow)
            .where(IncidentRow.id == bindparam("b_id"))
            .values(
                channel_id=bindparam("b_channel"),
                channel_name=bindparam("b_name"),
                card_ts=bindparam("b_ts"),
                war_room_opened_at=now,
            ),
            incident_rows,
        )
        connection.execute(
            update(NotificationRow)
            .where(NotificationRow.id == bindparam("b_id"))
            .values(draft_channel_id=bindparam("b_channel"), draft_ts=bindparam("b_ts")),
            note_rows,
        )
        if clock_rows:
            connection.execute(
                update(RegulatoryClockRow)
                .where(RegulatoryClockRow.id == bindparam("b_id"))
                .values(report_channel_id=bindparam("b_channel"), report_ts=bindparam("b_ts")),
                clock_rows,
            )
    return len(incident_rows)


def spread_deadlines(engine: Engine, *, start: float, window: float, seed: int) -> list[float]:
    """Every planned message due at one of `len(rows)` evenly spaced moments of the window,
    in a shuffled order (incidents and audiences interleave). Reminders are moved a day
    ahead: they are not what is measured. Returns the due times (epoch seconds), sorted."""
    with engine.connect() as connection:
        ids = list(connection.scalars(select(NotificationRow.id).order_by(NotificationRow.id)))
    random.Random(seed).shuffle(ids)
    due = [start + window * (k + 0.5) / len(ids) for k in range(len(ids))]
    with engine.begin() as connection:
        connection.execute(
            update(NotificationRow)
            .where(NotificationRow.id == bindparam("b_id"))
            .values(due_at=bindparam("b_due")),
            [
                {"b_id": row_id, "b_due": datetime.fromtimestamp(at, tz=UTC)}
                for row_id, at in zip(ids, due, strict=True)
            ],
        )
        connection.execute(
            update(ReminderRow)
            .where(ReminderRow.state == "pending")
            .values(due_at=datetime.fromtimestamp(start, tz=UTC) + timedelta(days=1))
        )
    return due


# ----- watching and counting ---------------------------------------------------------------------


def state_counts(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(NotificationRow.state, func.count()).group_by(NotificationRow.state)
        ).all()
    return Counter({state: int(n) for state, n in rows})


def open_rows(counts: Counter[str]) -> int:
    return counts["pending"] + counts["sending"]


@dataclass
class Outcome:
    """What one run delivered, from the database and the emulator's channels."""

    name: str
    planned: int
    window_start: float
    window_s: float
    lateness: list[float]  # seconds, one per planned row; inf when never sent
    states: Counter[str]
    outcomes: Counter[str]
    sent: int
    duplicates: int
    unattributed: int
    extra_messages: int  # messages in the audience channels minus rows marked sent
    sent_not_posted: int
    unsent: int
    missed_at_grace: int
    ledger_mismatch: int
    retried: int
    last_sent_at: float | None
    # Per duplicated message: seconds between its first and last post, and how many other
    # messages its channel received in between.
    duplicate_gaps: list[tuple[float, int]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.unsent + self.sent_not_posted

    @property
    def messages_per_s(self) -> float:
        if self.last_sent_at is None or self.last_sent_at <= self.window_start:
            return math.nan
        return self.sent / (self.last_sent_at - self.window_start)


NUMBER = re.compile(r"#(\d+)\b")


def incident_number(message: dict[str, Any]) -> int | None:
    """The incident a posted audience message is about: every template names `#<number>` in
    its text, or (affected users) as the reference in its blocks."""
    found = set(NUMBER.findall(str(message.get("text") or "")))
    if not found:
        found = set(NUMBER.findall(json.dumps(message.get("blocks") or [])))
    return int(found.pop()) if len(found) == 1 else None


def measure(
    name: str,
    engine: Engine,
    emulator: SlackEmulator,
    *,
    window_start: float,
    window_s: float,
    grace_s: float,
) -> Outcome:
    """Lateness from the rows; duplicates and losses from what the audience channels hold.

    Every audience message names its incident, so each channel's messages are counted per
    incident: more than one is a duplicate; a row marked sent with none is a message lost
    (marked sent, never posted); a row still unsent at the end is missed too. The outbound
    ledger is checked against the channels as well: a ledger row whose ts is not a message
    of its own incident is bookkeeping gone wrong (reported, not counted twice)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                NotificationRow.audience,
                NotificationRow.state,
                NotificationRow.due_at,
                NotificationRow.sent_at,
                NotificationRow.outcome,
                NotificationRow.attempts,
                IncidentRow.id,
                IncidentRow.number,
            ).join(IncidentRow, IncidentRow.id == NotificationRow.incident_id)
        ).all()
        ledger = connection.execute(
            select(
                OutboundMessageRow.incident_id,
                OutboundMessageRow.key,
                OutboundMessageRow.channel_id,
                OutboundMessageRow.ts,
            ).where(OutboundMessageRow.key.like("notify:%"), OutboundMessageRow.state == "sent")
        ).all()
    numbers = {incident_id: number for *_, incident_id, number in rows}
    posted: Counter[tuple[str, int]] = Counter()
    ts_number: dict[tuple[str, str], int | None] = {}
    unattributed = 0
    gaps: list[tuple[float, int]] = []
    for audience, channel in AUDIENCE_CHANNELS.items():
        positions: dict[int, list[tuple[int, float]]] = {}
        for index, message in enumerate(emulator.state.messages(channel)):
            number = incident_number(message)
            ts_number[(channel, str(message["ts"]))] = number
            if number is None:
                unattributed += 1
            else:
                posted[(audience.value, number)] += 1
                positions.setdefault(number, []).append((index, float(message["ts"])))
        for seen in positions.values():
            if len(seen) > 1:
                (first_index, first_ts), (last_index, last_ts) = seen[0], seen[-1]
                gaps.append((last_ts - first_ts, last_index - first_index - 1))
    duplicates = sum(n - 1 for n in posted.values() if n > 1)
    in_channels = sum(posted.values()) + unattributed
    grace_end = window_start + window_s + grace_s
    lateness: list[float] = []
    sent = sent_not_posted = unsent = missed_at_grace = retried = 0
    last: float | None = None
    for audience, state, due_at, sent_at, _outcome, attempts, _incident_id, number in rows:
        retried += attempts > 1
        if state != "sent" or sent_at is None:
            unsent += 1
            missed_at_grace += 1
            lateness.append(math.inf)
            continue
        sent += 1
        at = _epoch(sent_at)
        last = at if last is None else max(last, at)
        lateness.append(at - _epoch(due_at))
        missed_at_grace += at > grace_end
        if posted[(audience, number)] == 0:
            sent_not_posted += 1
    ledger_mismatch = sum(
        1
        for incident_id, _key, channel, ts in ledger
        if ts_number.get((str(channel), str(ts))) != numbers.get(incident_id)
    )
    return Outcome(
        name=name,
        planned=len(rows),
        window_start=window_start,
        window_s=window_s,
        lateness=sorted(lateness),
        states=Counter(row.state for row in rows),
        outcomes=Counter(str(row.outcome) for row in rows),
        sent=sent,
        duplicates=duplicates,
        unattributed=unattributed,
        extra_messages=in_channels - sent,
        sent_not_posted=sent_not_posted,
        unsent=unsent,
        missed_at_grace=missed_at_grace,
        ledger_mismatch=ledger_mismatch,
        retried=retried,
        last_sent_at=last,
        duplicate_gaps=gaps,
    )


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# ----- one phase ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    incidents: int
    window_s: float
    grace_s: float
    stale_send_s: float
    restart_pause_s: float
    seed: int
    database_url: str | None
    slack_latency_s: float = 0.0


def run_phase(plan: Plan, restart: str | None) -> Outcome:
    """Set up, arm warroom, wait until every message is settled (bounded), measure. With
    `restart`, the first process stops halfway through the window and a second one on the
    same database takes over: started before the stop (rolling, rolling-kill) or after it
    (kill, close)."""
    name = "warroom" if restart is None else f"restart:{restart}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== {name} (load average before: {load})", flush=True)
    events: list[str] = [f"load average before the phase: {load}"]
    with bench_database(plan.database_url) as db, SlackEmulator() as emulator:
        emulator.state.add_channel("incidents", channel_id=ANNOUNCE_CHANNEL)
        for audience, channel in AUDIENCE_CHANNELS.items():
            emulator.state.add_channel(audience.value.replace("_", "-"), channel_id=channel)
        declare_incidents(db, emulator.api_url, plan.incidents)
        reader = engine_for(db, product=False)
        try:
            rooms = seed_war_rooms(reader, emulator)
            print(f"    {rooms} war rooms seeded in the emulator", flush=True)
            spec = AppSpec(
                db=db, api_url=emulator.api_url, stale_send_s=plan.stale_send_s, restart=False
            )
            first = Child(run_warroom, spec)
            second: Child | None = None
            try:
                first.expect("ready")
                start = time.time() + LEAD_S
                due = spread_deadlines(reader, start=start, window=plan.window_s, seed=plan.seed)
                # From here on every Web API call waits as long as a round trip to Slack.
                emulator.latency = plan.slack_latency_s
                first.conn.send("go")
                _, began, armed, jobs, cpu_armed = first.expect("armed")
                main_cpu, first_armed = time.process_time(), armed
                events.append(
                    f"{len(due)} messages due from +{LEAD_S:.0f} s over {plan.window_s:.0f} s; "
                    f"{jobs} timers armed in {armed - began:.2f} s "
                    f"({start - armed:.2f} s before the window opened)"
                )
                print(f"    {events[-1]}", flush=True)
                if restart in ("rolling", "rolling-kill"):
                    # As a deployment of two replicas restarts: the new process is up and
                    # armed (racing the old one for every row) before the old one is stopped
                    # (SIGTERM: it finishes the sends in hand and signs off) or killed.
                    _sleep_until(start + plan.window_s / 2)
                    second = Child(run_warroom, dataclasses.replace(spec, restart=True))
                    _, began, armed, jobs, cpu_armed = second.expect("armed")
                    stopped = time.time()
                    if restart == "rolling":
                        first.close()
                    else:
                        first.kill()
                    counts = state_counts(reader)
                    events.append(
                        f"the second process was started at +{began - start:.1f} s and had "
                        f"{jobs} timers armed {armed - began:.1f} s later; the first was then "
                        f"{'stopped' if restart == 'rolling' else 'killed'} at "
                        f"+{stopped - start:.1f} s with {counts['sent']} sent, "
                        f"{counts['sending']} sending, {counts['pending']} pending"
                    )
                    print(f"    {events[-1]}", flush=True)
                elif restart is not None:
                    _sleep_until(start + plan.window_s / 2)
                    stopped = time.time()
                    if restart == "kill":
                        first.kill()
                    else:
                        first.close()
                    counts = state_counts(reader)
                    time.sleep(plan.restart_pause_s)
                    second = Child(run_warroom, dataclasses.replace(spec, restart=True))
                    _, began, armed, jobs, cpu_armed = second.expect("armed")
                    events.append(
                        f"stopped ({restart}) at +{stopped - start:.1f} s into the window with "
                        f"{counts['sent']} sent, {counts['sending']} sending, "
                        f"{counts['pending']} pending; the second process had {jobs} timers "
                        f"armed {armed - stopped:.1f} s after the stop "
                        f"(start_background_work {armed - began:.1f} s)"
                    )
                    print(f"    {events[-1]}", flush=True)
                grace_end = start + plan.window_s + plan.grace_s
                counts = _wait_settled(reader, until=grace_end)
                if open_rows(counts):
                    events.append(
                        f"{open_rows(counts)} still unsent {plan.grace_s:.0f} s after the window"
                    )
                    print(f"    {events[-1]}; waiting (at most {MAX_DRAIN_S} s)", flush=True)
                    counts = _wait_settled(reader, until=grace_end + MAX_DRAIN_S)
                settled = time.time()
                main_cpu = time.process_time() - main_cpu
                events.append(
                    f"settled {settled - start - plan.window_s:+.1f} s after the window closed: "
                    + ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
                )
                print(f"    {events[-1]}", flush=True)
            finally:
                cpu = [child.stop() if child is not None else None for child in (first, second)]
            last_cpu = cpu[1] if restart is not None else cpu[0]
            if last_cpu is not None:
                events.append(
                    f"CPU from the timers armed to settled ({settled - first_armed:.0f} s wall, "
                    f"{CORES} cores): warroom {last_cpu - cpu_armed:.1f} s"
                    + (
                        f" (the second process, {settled - armed:.0f} s from its start)"
                        if restart is not None
                        else ""
                    )
                    + f", the emulator and this process {main_cpu:.1f} s"
                )
            outcome = measure(
                name,
                reader,
                emulator,
                window_start=start,
                window_s=plan.window_s,
                grace_s=plan.grace_s,
            )
            outcome.events = events
            calls = Counter(call.method for call in emulator.calls())
            print(
                "    Slack calls: " + ", ".join(f"{m} {n}" for m, n in calls.most_common(5)),
                flush=True,
            )
        finally:
            reader.dispose()
    return outcome


def _sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


def _wait_settled(engine: Engine, *, until: float) -> Counter[str]:
    counts = state_counts(engine)
    last_print = time.time()
    while open_rows(counts) and time.time() < until:
        time.sleep(POLL_S)
        counts = state_counts(engine)
        if time.time() - last_print >= 10:
            last_print = time.time()
            print(
                f"    ... sent {counts['sent']}, sending {counts['sending']}, "
                f"pending {counts['pending']}",
                flush=True,
            )
    return counts


def run_baseline_phase(plan: Plan, count: int) -> list[float]:
    print("\n== baseline: bare APScheduler date jobs, a no-op each", flush=True)
    start = time.time() + LEAD_S + 2.0  # the child process starts and adds its jobs first
    due = [start + plan.window_s * (k + 0.5) / count for k in range(count)]
    child = Child(run_baseline, due)
    try:
        if not child.conn.poll(plan.window_s + LEAD_S + 120):
            raise SystemExit("baseline: no answer")
        lateness: list[float] = child.conn.recv()
    finally:
        child.process.join(timeout=10)
        if child.process.is_alive():
            child.process.kill()
    lateness += [math.inf] * (count - len(lateness))
    return sorted(lateness)


# ----- where one send's time goes (--profile) ----------------------------------------------------


class Sections:
    """Wall time of nested calls, each counted once: a section's own time excludes the
    wrapped calls made inside it, so the sections add up to the whole."""

    def __init__(self) -> None:
        self.own: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._local = threading.local()

    def wrap(self, owner: Any, name: str, label: str) -> bool:
        original = getattr(owner, name, None)
        if original is None:
            print(f"    (no {type(owner).__name__}.{name} to time: counted in its caller)")
            return False

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack: list[float] = self._local.__dict__.setdefault("stack", [])
            stack.append(0.0)  # time spent in wrapped calls made from this one
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - began
                inner = stack.pop()
                self.own[label] += elapsed - inner
                self.calls[label] += 1
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, timed)
        return True


def profile_sends(args: argparse.Namespace) -> int:
    """Serially, in this process: fire `--profile` due messages one after another and split
    each send's wall time over its steps (the emulator runs in this process too, so its work
    shows in the Slack calls' round trips)."""
    count = args.profile
    incidents = max(2, math.ceil((count + 20) / 10))
    print(f"serial sends: {count} messages of {incidents} incidents, one thread", flush=True)
    with bench_database(args.database_url) as db, SlackEmulator() as emulator:
        for audience, channel in AUDIENCE_CHANNELS.items():
            emulator.state.add_channel(audience.value.replace("_", "-"), channel_id=channel)
        declare_incidents(db, emulator.api_url, incidents)
        reader = engine_for(db, product=False)
        seed_war_rooms(reader, emulator)
        spread_deadlines(reader, start=time.time() - 3600, window=1, seed=args.seed)
        with reader.connect() as connection:
            ids = list(connection.scalars(select(NotificationRow.id).order_by(NotificationRow.id)))
        reader.dispose()
        app = build_warroom(db, emulator.api_url)
        try:
            service = app.communications.notifications
            for notification_id in ids[:20]:  # warm: templates compiled, pool filled
                service.fire(notification_id)
            ids = ids[20 : 20 + count]
            sections = Sections()
            war_rooms = app.workflow.war_rooms
            slack = war_rooms._slack
            steps = [
                (service, "deliver", "claim transaction (claim, incident, ledger claims)"),
                (service, "_facts", "facts: timeline + containment (claim and draft)"),
                (service, "render", "render the audience message"),
                (slack, "post", "chat.postMessage (HTTP round trip)"),
                (service, "_settle", "settle transaction (ledger, row, timeline, audit)"),
                (service, "_refresh_draft", "draft refresh: reads, facts"),
                (service, "draft", "draft refresh: render the draft"),
                (war_rooms, "refresh_card", "card refresh: read the incident"),
                (war_rooms, "render_card", "card refresh: deadlines read + render"),
                (slack, "update", "chat.update, card and draft (HTTP round trips)"),
            ]
            for owner, name, label in steps:
                sections.wrap(owner, name, label)
            # The service holds the card refresh as a callback taken at build time.
            if getattr(service, "_on_change", None) is not None:
                service._on_change = war_rooms.refresh_card
            began = time.perf_counter()
            for notification_id in ids:
                service.fire(notification_id)
            elapsed = time.perf_counter() - began
        finally:
            app.close()
    per = 1000 / len(ids)
    print(f"\n{elapsed * per:.2f} ms a send ({len(ids) / elapsed:.0f} sends/s on one thread):")
    for _owner, _name, label in steps:
        if sections.calls[label]:
            print(
                f"  {sections.own[label] * per:6.2f} ms  x{sections.calls[label] / len(ids):.0f}"
                f"  {label}"
            )
    rest = elapsed - sum(sections.own.values())
    print(f"  {rest * per:6.2f} ms      outside these (fire, the pacer, ...)")
    return 0


# ----- reporting ---------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "never" if math.isinf(value) else f"{value * 1000:.0f}"


def report(baseline: list[float], outcomes: list[Outcome], plan: Plan) -> bool:
    base_p50, base_p99 = percentile(baseline, 0.50), percentile(baseline, 0.99)
    print()
    header = (
        f"{'run':<14} {'planned':>7} {'sent':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'msg/s':>6} {'dup':>4} {'missed':>6} {'@grace':>6} {'p99/1s':>7} {'p99/base':>8}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'baseline':<14} {len(baseline):>7} {sum(map(math.isfinite, baseline)):>6} "
        f"{ms(base_p50):>8} {ms(base_p99):>8} {ms(baseline[-1]):>8} "
        f"{len(baseline) / plan.window_s:>6.0f} {'-':>4} {'-':>6} {'-':>6} "
        f"{base_p99 / TARGET_P99_S:>7.3f} {1.0:>8.2f}"
    )
    ok = True
    for o in outcomes:
        p50, p99, worst = (
            percentile(o.lateness, 0.50),
            percentile(o.lateness, 0.99),
            o.lateness[-1],
        )
        vs_base = p99 / base_p99 if base_p99 > 0 else math.nan
        print(
            f"{o.name:<14} {o.planned:>7} {o.sent:>6} {ms(p50):>8} {ms(p99):>8} {ms(worst):>8} "
            f"{o.messages_per_s:>6.0f} {o.duplicates:>4} {o.missed:>6} {o.missed_at_grace:>6} "
            f"{p99 / TARGET_P99_S:>7.2f} {vs_base:>8.0f}"
        )
    print(
        f"\noffered: {outcomes[0].planned / plan.window_s:.0f} messages/s for "
        f"{plan.window_s:.0f} s; msg/s = messages sent / (last sent_at - window start); "
        f"@grace = not sent by {plan.grace_s:.0f} s after the window closed"
    )
    for o in outcomes:
        print(
            f"{o.name}: states {dict(o.states)}; outcome {dict(o.outcomes)}; "
            f"{o.retried} rows took more than one claim; "
            f"{o.sent_not_posted} marked sent but not in their channel; "
            f"{o.unattributed} channel messages without an incident number; "
            f"channel messages - rows sent = {o.extra_messages}; "
            f"{o.ledger_mismatch} ledger rows pointing at another incident's message"
        )
        for event in o.events:
            print(f"    {event}")
        if o.duplicate_gaps:
            seconds = sorted(gap for gap, _ in o.duplicate_gaps)
            between = sorted(n for _, n in o.duplicate_gaps)
            print(
                f"    duplicated messages: the second post {seconds[0]:.0f}-{seconds[-1]:.0f} s "
                f"after the first, {between[0]}-{between[-1]} other messages in the channel in "
                f"between (find_marked reads the newest 200 since 6 x STALE_SEND = "
                f"{6 * plan.stale_send_s:.0f} s before the retry)"
            )
    print()
    for o in outcomes:
        p99 = percentile(o.lateness, 0.99)
        ok &= verdict(p99 < TARGET_P99_S, f"{o.name}: lateness p99 {ms(p99)} ms < 1000 ms")
        ok &= verdict(o.duplicates == 0, f"{o.name}: duplicates {o.duplicates} == 0")
        ok &= verdict(
            o.missed == 0,
            f"{o.name}: missed {o.missed} == 0 (unsent {o.unsent}, marked sent but never "
            f"posted {o.sent_not_posted}); unsent at window + {plan.grace_s:.0f} s: "
            f"{o.missed_at_grace}",
        )
    return ok


def verdict(ok: bool, text: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return ok


# ----- main --------------------------------------------------------------------------------------


def bounded(low: float, high: float, kind: type = int) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a number ({kind.__name__})") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}")
        return number

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--incidents", type=bounded(1, MAX_INCIDENTS), default=None, help="(1000; quick 100)"
    )
    parser.add_argument(
        "--window",
        type=bounded(1, MAX_WINDOW_S, float),
        default=None,
        help="seconds over which every message falls due (60; quick 10)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 100 incidents, a 10 s window"
    )
    parser.add_argument(
        "--restart",
        choices=("rolling", "rolling-kill", "kill", "close", "none"),
        default="rolling",
        help="phase 2, halfway through the window: start a second process and, once it is "
        "armed, stop the first as a deployment does, letting it finish its sends in hand "
        "(rolling, default) or SIGKILL it (rolling-kill); or SIGKILL the only process (kill) "
        "or app.close() it (close) and then start the second; or no phase 2 (none)",
    )
    parser.add_argument(
        "--only-restart", action="store_true", help="skip the run without a restart"
    )
    parser.add_argument(
        "--grace",
        type=bounded(0, 600, float),
        default=60.0,
        help="report (@grace) what is still unsent this long after the window closed (60)",
    )
    parser.add_argument(
        "--stale-send",
        type=bounded(1, 120, float),
        default=120.0,
        help="seconds after which any send claim is taken over (STALE_SEND, 120 as in "
        "production); a killed process's claims are taken over sooner, once it has missed "
        "its heartbeats (bot.worker_heartbeat.DEAD_AFTER, 10 s)",
    )
    parser.add_argument(
        "--restart-pause",
        type=bounded(0, 60, float),
        default=0.0,
        help="seconds between the stop and starting the second process (0)",
    )
    parser.add_argument(
        "--slack-latency",
        type=bounded(0, 1, float),
        default=0.0,
        help="seconds each Web API call takes in the emulator during the window (0; Slack's "
        "round trips are ~0.1)",
    )
    parser.add_argument(
        "--profile",
        type=bounded(10, 5000),
        default=None,
        metavar="N",
        help="instead: send N due messages serially in this process and split a send's time",
    )
    parser.add_argument("--seed", type=int, default=2026, help="deadline order seed (2026)")
    parser.add_argument(
        "--database-url", default=None, help="default: a temp SQLite file; or a PostgreSQL URL"
    )
    args = parser.parse_args(argv)
    args.incidents = args.incidents or (100 if args.quick else 1000)
    args.window = args.window or (10.0 if args.quick else 60.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.profile:
        return profile_sends(args)
    plan = Plan(
        incidents=args.incidents,
        window_s=args.window,
        grace_s=args.grace,
        stale_send_s=args.stale_send,
        restart_pause_s=args.restart_pause,
        seed=args.seed,
        database_url=args.database_url,
        slack_latency_s=args.slack_latency,
    )
    where = "a temp SQLite file" if args.database_url is None else "PostgreSQL (throwaway schema)"
    print(
        f"{plan.incidents} incidents, ~10 messages each, due over {plan.window_s:.0f} s; "
        f"warroom in a child process, the emulator in this one; {where}",
        flush=True,
    )
    outcomes = [] if args.only_restart else [run_phase(plan, None)]
    if args.restart != "none":
        outcomes.append(run_phase(plan, args.restart))
    if not outcomes:
        raise SystemExit("--only-restart with --restart none: nothing to run")
    baseline = run_baseline_phase(plan, outcomes[0].planned)
    report(baseline, outcomes, plan)
    return 0  # a measurement: the PASS/FAIL lines say whether the targets hold


if __name__ == "__main__":
    sys.exit(main())
