"""Postmortem of a big war room: build time, peak memory, Web API calls against the minimum.

Run by hand from the repository root (never from pytest):

    python bench/postmortem.py [--messages 10000]

The Slack emulator runs in a child process (no artificial latency), so the memory measured
is warroom's alone. warroom (`create_app`, temp SQLite file) declares a critical incident and
opens its war room; the child then seeds the war room with `messages` messages: nine in ten
top-level, one a second; every 45th opens a thread of five replies; pins, 📌 and ✅
reactions and written action items among them. Then `/incident postmortem`'s work runs
twice: once timed, its calls counted; once more (the rebuild, version 2) under tracemalloc.

The minimum the pagination needs is one conversations.history call per 200 top-level
messages and one conversations.replies call per 200 replies of each thread. Loopback only,
bounded (at most 20,000 messages). See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.app import create_app
from bot.config import parse_config
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.services.postmortem import PAGE_SIZE, PostmortemService
from bot.services.workflow import OpenWarRoom
from bot.settings import Settings
from storage.db import build_engine, upgrade
from storage.unit_of_work import UnitOfWorkFactory

MAX_MESSAGES = 20_000
THREAD_EVERY = 45
REPLIES = 5
PEOPLE = ("U0COMMANDER", "U0SAFETY", "U0SECURITY", "U0DATA", "U0COMMS")
CONFIG = {
    "roles": {
        "incident_commander": ["U0COMMANDER"],
        "ai_safety_lead": ["U0SAFETY"],
        "security_analyst": ["U0SECURITY"],
        "data_scientist": ["U0DATA"],
        "communications_lead": ["U0COMMS"],
    },
    "audiences": {"executive_team": ["C0EXEC"]},
}


# ----- the emulator, in its own process -----------------------------------------------------


def emulator_process(conn: Connection) -> None:
    """Serve the emulator; answer the parent's requests: seed, calls, reset, stop."""
    from bot.emulator.server import SlackEmulator

    with SlackEmulator() as emulator:
        emulator.state.add_channel("exec-incidents", channel_id="C0EXEC")
        conn.send(emulator.api_url)
        while True:
            request, *args = conn.recv()
            if request == "seed":
                conn.send(seed(emulator, *args))
            elif request == "calls":
                conn.send([(c.method, c.status) for c in emulator.calls()])
            elif request == "reset":
                emulator.reset_calls()
                conn.send(None)
            else:
                conn.send(None)
                return


def seed(emulator: Any, channel: str, messages: int) -> dict[str, int]:
    """Fill the war room; return what the pagination minimum is computed from."""
    state = emulator.state
    top_level = threads = replies = pins = pushpins = checks = items = 0
    written = 0
    while written < messages:
        i = top_level
        user = PEOPLE[i % len(PEOPLE)]
        text = f"update {i}: checking the dashboards for the affected model"
        if i % 250 == 7:
            text = f"Action item: <@U0DATA> rotate key batch {i}, due 2030-06-01"
            items += 1
        ts = state.add_message(channel, text, user=user)
        top_level, written = top_level + 1, written + 1
        if i % 450 == 3:
            state.handle("pins.add", {"channel": channel, "timestamp": ts})
            pins += 1
        if i % 300 == 5:
            state.add_reaction(channel, ts, "pushpin", user="U0COMMANDER")
            pushpins += 1
        if i % 600 == 11:
            state.add_reaction(channel, ts, "white_check_mark", user="U0COMMANDER")
            checks += 1
        if i % THREAD_EVERY == 0:
            threads += 1
            for r in range(min(REPLIES, messages - written)):
                state.add_message(channel, f"reply {r} to {i}", user=PEOPLE[r], thread_ts=ts)
                replies, written = replies + 1, written + 1
    everything = state.messages(channel)
    top = [m for m in everything if m.get("thread_ts") in (None, m["ts"])]
    return {
        "seeded": written,
        "in_channel": len(everything),
        "top_level": len(top),
        "threads": sum(1 for m in top if m.get("reply_count")),
        "thread_pages": sum(
            math.ceil((m.get("reply_count", 0) + 1) / PAGE_SIZE)
            for m in top
            if m.get("reply_count")
        ),
        "replies": replies,
        "pins": pins,
        "pushpins": pushpins,
        "checks": checks,
        "items": items,
    }


# ----- the measurement -----------------------------------------------------------------------


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB. On Linux VmHWM, which starts
    afresh in a spawned process (ru_maxrss keeps the parent's peak across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(database_url: str, api_url: str, incident_id: int, traced: bool) -> dict[str, Any]:
    """In a fresh process, as `/incident postmortem`'s follow-up does it: build (timed, or
    under tracemalloc), publish, announce. Returns times and memory."""
    from bot.clock import SystemClock
    from bot.rendering import Renderer
    from bot.services.war_room import WarRoomService
    from bot.slack_gateway import SlackGateway, build_web_client

    engine = build_engine(database_url)
    uow = UnitOfWorkFactory(engine)
    slack = SlackGateway(build_web_client(token="xoxb-bench", base_url=api_url))
    renderer, config, clock = Renderer(), parse_config(CONFIG), SystemClock()
    postmortems = PostmortemService(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        war_rooms=WarRoomService(
            uow=uow, slack=slack, renderer=renderer, config=config, clock=clock
        ),
    )
    rss_ready = rss_mb()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    document = postmortems.build(incident_id, actor_id="U0COMMANDER")
    build_s = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] if traced else 0
    tracemalloc.stop()
    started = time.perf_counter()
    publication = postmortems.publish(document)
    postmortems.announce(document, publication)
    publish_s = time.perf_counter() - started
    engine.dispose()
    return {
        "build_s": build_s,
        "publish_s": publish_s,
        "version": document.stored.version,
        "characters": len(document.stored.markdown),
        "items": document.items,
        "via": publication.via,
        "rss_ready": rss_ready,
        "rss_peak": rss_mb(),
        "heap_peak": heap_peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= MAX_MESSAGES:
        print(f"--messages must be 1…{MAX_MESSAGES}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=emulator_process, args=(child,), daemon=True)
    process.start()

    def ask(*request: Any) -> Any:
        parent.send(request)
        return parent.recv()

    try:
        api_url = parent.recv()
        with tempfile.TemporaryDirectory() as folder:
            return run(ask, api_url, Path(folder), args.messages, spawn)
    finally:
        ask("stop")
        process.join(timeout=10)


def run(ask: Any, api_url: str, folder: Path, messages: int, spawn: Any) -> int:
    database_url = f"sqlite:///{folder / 'warroom.db'}"
    engine = build_engine(database_url)
    upgrade(engine)
    settings = Settings.model_validate(
        {
            "slack_bot_token": "xoxb-bench",
            "slack_signing_secret": "bench",
            "slack_api_url": api_url,
            "database_url": database_url,
        }
    )
    app = create_app(settings, parse_config(CONFIG), engine=engine)
    try:
        result = app.workflow.declare(
            Declaration(
                title="Support bot follows instructions hidden in a wiki page",
                severity=Severity.CRITICAL,
                reporter_id="U0COMMANDER",
                source=IncidentSource.SLASH_COMMAND,
                dedup_key="bench:postmortem",
            )
        )
        app.workflow.follow_up(OpenWarRoom(result.incident.id))
        incident = app.workflow.incidents.get(result.incident.id)
        serving_rss = rss_mb()
    finally:
        app.close()
    assert incident.channel_id is not None
    started = time.perf_counter()
    seeded = ask("seed", incident.channel_id, messages)
    seeding = time.perf_counter() - started

    # A fresh process per build, so each measures the postmortem alone.
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn, max_tasks_per_child=1) as pool:
        ask("reset")
        timed = pool.submit(measure, database_url, api_url, incident.id, False).result()
        calls = Counter(method for method, _ in ask("calls"))
        traced = pool.submit(measure, database_url, api_url, incident.id, True).result()

    reading = ("auth.test", "pins.list", "conversations.history", "conversations.replies")
    build_calls = {m: n for m, n in calls.items() if m in reading}
    publish_calls = {m: n for m, n in calls.items() if m not in reading}
    history_pages = math.ceil(seeded["top_level"] / PAGE_SIZE)
    minimum = history_pages + seeded["thread_pages"]
    paging = build_calls["conversations.history"] + build_calls["conversations.replies"]
    total = sum(build_calls.values())
    print(
        f"war room: {seeded['in_channel']} messages "
        f"({seeded['seeded']} seeded in {seeding:.1f} s): "
        f"{seeded['top_level']} top-level, {seeded['replies']} replies in {seeded['threads']} "
        f"threads; {seeded['pins']} pinned, {seeded['pushpins']} 📌, {seeded['checks']} ✅, "
        f"{seeded['items']} written action items"
    )
    print(
        f"build: {timed['build_s']:.2f} s (version {timed['version']}, "
        f"{timed['characters']:,} characters, {timed['items']} action items); "
        f"publish + announce {timed['publish_s']:.2f} s via {timed['via']} ("
        + ", ".join(f"{m} {n}" for m, n in sorted(publish_calls.items()))
        + ")"
    )
    print(
        f"rebuild under tracemalloc: {traced['build_s']:.2f} s (version {traced['version']}, "
        f"published again via {traced['via']})"
    )
    print(
        "Web API calls of the build: "
        + ", ".join(f"{m} {n}" for m, n in sorted(build_calls.items()))
        + f" = {total}"
    )
    print(
        f"pagination minimum: {history_pages} history pages + {seeded['thread_pages']} thread "
        f"pages = {minimum}; paging calls {paging} ({paging / minimum:.3f} x), all calls "
        f"{total} ({total / minimum:.3f} x)"
    )
    print(
        f"peak memory of the building process: {timed['rss_peak']:.0f} MB RSS "
        f"({timed['rss_ready']:.0f} MB once imported and wired); Python heap peak during the "
        f"build {traced['heap_peak'] / 2**20:.1f} MB (tracemalloc)"
    )
    print(
        f"for scale: the process that declared the incident peaked at {serving_rss:.0f} MB RSS "
        "(the text classifier, trained on first use)"
    )
    memory_ok = timed["rss_peak"] < 200
    calls_ok = total <= minimum * 1.10
    print(
        f"{'PASS' if memory_ok else 'FAIL'} peak memory < 200 MB;  "
        f"{'PASS' if calls_ok else 'FAIL'} calls within 10 % of the minimum"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
