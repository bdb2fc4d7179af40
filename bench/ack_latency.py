"""Ack latency of `/incident list`: warroom against a bare Bolt app on the same server stack.

Run by hand from the repository root (never from pytest):

    python bench/ack_latency.py [--requests 500] [--concurrency 1,10,20] [--database-url URL]

Both apps are served in this process by `BackgroundServer` (uvicorn + Starlette, the routes of
`handlers.http_routes`) against the local Slack emulator. The load comes from a separate process
so that the clients' Python work does not share the servers' GIL. Loopback only, bounded.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy import Engine, create_engine, text
from starlette.applications import Starlette

from bot.app import Warroom, create_app
from bot.config import parse_config
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender
from bot.server import BackgroundServer
from bot.settings import Settings
from handlers.http_routes import HttpMetrics, build_routes
from storage.db import build_engine, is_sqlite, upgrade

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
FORM = "application/x-www-form-urlencoded"
SEEDED_INCIDENTS = 20
# The list leaves drills out: the seeded incidents are real ones, so the reply lists them all.
WARROOM_EXPECTS = f"{SEEDED_INCIDENTS} open incidents"
WARMUP_REQUESTS = 30
REQUEST_TIMEOUT_S = 10.0
MAX_REQUESTS = 20_000
MAX_CONCURRENCY = 64

# Targets: warroom adds at most half again to the bare ack, and stays well inside Slack's 3 s.
RATIO_TARGET = 1.5
P99_TARGET_MS = 500.0
P99_TARGET_CONCURRENCY = 20

BENCH_CONFIG = {
    "channel_prefix": "inc",
    "roles": {
        "incident_commander": ["U0COMMANDER", "U0COMMANDER2"],
        "ai_safety_lead": ["U0SAFETY"],
        "security_analyst": ["U0SECURITY"],
        "data_scientist": ["U0DATA"],
        "communications_lead": ["U0COMMS"],
        "legal_advisor": ["U0LEGAL"],
    },
    "audiences": {"executive_team": ["C0EXEC"]},
    "announce_channel": "C0ANNOUNCE",
}

TITLES = (
    "Support bot leaks system prompt",
    "Recommendation model drifts after retrain",
    "Jailbreak bypasses content filter",
    "Chat assistant returns other users' data",
    "Latency spike on inference gateway",
)

log = logging.getLogger("bench")


# ----- the load (runs in a child process) -----------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    failures: int
    wall_s: float
    first_failure: str | None


def run_load(
    base_url: str,
    response_url: str,
    requests: int,
    concurrency: int,
    warmup: int,
    expect_text: str | None,
) -> LoadResult:
    """Send `requests` signed `/incident list` commands from `concurrency` keep-alive clients."""
    counter = iter(range(requests))
    counter_lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    warmup_each = max(1, math.ceil(warmup / concurrency))

    def next_index() -> int | None:
        with counter_lock:
            return next(counter, None)

    def one(sender: SlackSender) -> tuple[float | None, str | None]:
        body = sender.command_body("list")  # a fresh trigger_id and a fresh signature each time
        headers = sender.signed_headers(body, content_type=FORM)
        sent = time.perf_counter()
        try:
            response = sender.post(body, headers)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"
        elapsed_ms = (time.perf_counter() - sent) * 1000
        if response.status_code != 200:
            return elapsed_ms, f"HTTP {response.status_code}: {response.text[:200]}"
        if expect_text is not None:
            try:
                answer = str(response.json().get("text", ""))
            except ValueError:
                answer = ""
            if expect_text not in answer:
                return elapsed_ms, f"no {expect_text!r} in {response.text[:200]}"
        return elapsed_ms, None

    def worker() -> tuple[list[float], int, str | None]:
        sender = SlackSender(base_url, response_url=response_url, secret=SIGNING_SECRET)
        sender.http.timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
        latencies: list[float] = []
        failures = 0
        first: str | None = None
        try:
            for _ in range(warmup_each):
                one(sender)  # opens the keep-alive connection; not counted
            start.wait()
            while next_index() is not None:
                elapsed, problem = one(sender)
                if elapsed is not None:
                    latencies.append(elapsed)
                if problem is not None:
                    failures += 1
                    first = first or problem
        finally:
            sender.close()
        return latencies, failures, first

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-client") as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
        start.wait()
        began = time.perf_counter()
        results = [future.result() for future in futures]
        wall = time.perf_counter() - began
    latencies = [value for result in results for value in result[0]]
    firsts = [result[2] for result in results if result[2] is not None]
    return LoadResult(
        latencies_ms=latencies,
        failures=sum(result[1] for result in results),
        wall_s=wall,
        first_failure=firsts[0] if firsts else None,
    )


# ----- the two apps under test -----------------------------------------------------------------


def bench_settings(emulator: SlackEmulator, database_url: str) -> Settings:
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=emulator.api_url,
        database_url=database_url,
    )


@contextmanager
def bench_engine(database_url: str | None) -> Iterator[tuple[Engine, str]]:
    """A migrated, empty database: a temp SQLite file, or a throwaway PostgreSQL schema."""
    if database_url is None or is_sqlite(database_url):
        with tempfile.TemporaryDirectory(prefix="warroom-bench-") as tmp:
            url = database_url or f"sqlite:///{Path(tmp) / 'warroom.db'}"
            engine = build_engine(url)
            upgrade(engine)
            try:
                yield engine, url
            finally:
                engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # The pool settings of storage.db.build_engine, plus a search_path to the throwaway schema.
    engine = create_engine(
        database_url,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
    )
    try:
        upgrade(engine)
        yield engine, database_url
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(app: Warroom, count: int) -> None:
    severities = list(Severity)
    for i in range(count):
        app.workflow.declare(
            Declaration(
                title=f"{TITLES[i % len(TITLES)]} ({i + 1})",
                severity=severities[i % len(severities)],
                reporter_id="U0REPORTER",
                source=IncidentSource.SLASH_COMMAND,
                dedup_key=f"bench:{i}",
                affected_systems=(f"model-{i % 3}",),
            )
        )


def build_bare(emulator: SlackEmulator) -> Starlette:
    """The least a Bolt app can do: verify, parse, ack; same routes, same server."""
    bolt = App(
        client=WebClient(token=BOT_TOKEN, base_url=emulator.api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
        logger=logging.getLogger("bench.bare"),
    )

    @bolt.command("/incident")
    def ack_only(ack: Ack) -> None:
        ack()

    metrics = HttpMetrics(CollectorRegistry())
    return Starlette(routes=build_routes(bolt=bolt, database_ok=lambda: True, metrics=metrics))


def serve(app: Starlette) -> BackgroundServer:
    """Serve on the same server stack warroom's tests use (uvicorn, TCP_NODELAY on)."""
    return BackgroundServer(app).start()


# ----- reporting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    concurrency: int
    app: str
    n: int
    p50: float
    p99: float
    max: float
    rps: float
    failures: int


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise(concurrency: int, app: str, result: LoadResult) -> Row:
    values = sorted(result.latencies_ms)
    return Row(
        concurrency=concurrency,
        app=app,
        n=len(values),
        p50=percentile(values, 0.50),
        p99=percentile(values, 0.99),
        max=values[-1] if values else math.nan,
        rps=len(values) / result.wall_s if result.wall_s > 0 else math.nan,
        failures=result.failures,
    )


def print_report(rows: list[Row], concurrencies: list[int]) -> None:
    header = (
        f"{'conc':>4}  {'app':<8} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'req/s':>7} {'fail':>5}  {'p50 x':>6} {'p99 x':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    by_key = {(row.concurrency, row.app): row for row in rows}
    for concurrency in concurrencies:
        bare, warroom = by_key[(concurrency, "bare")], by_key[(concurrency, "warroom")]
        for row in (bare, warroom):
            ratios = ""
            if row is warroom:
                ratios = f"  {warroom.p50 / bare.p50:>6.2f} {warroom.p99 / bare.p99:>6.2f}"
            print(
                f"{row.concurrency:>4}  {row.app:<8} {row.n:>5} {row.p50:>8.1f} {row.p99:>8.1f} "
                f"{row.max:>8.1f} {row.rps:>7.0f} {row.failures:>5}{ratios}"
            )
    print()
    for concurrency in concurrencies:
        bare, warroom = by_key[(concurrency, "bare")], by_key[(concurrency, "warroom")]
        ok = warroom.p99 <= RATIO_TARGET * bare.p99
        print(
            f"{'PASS' if ok else 'FAIL'}  c={concurrency}: warroom p99 {warroom.p99:.1f} ms "
            f"<= {RATIO_TARGET} x bare p99 ({RATIO_TARGET * bare.p99:.1f} ms)"
        )
    if P99_TARGET_CONCURRENCY in concurrencies:
        warroom = by_key[(P99_TARGET_CONCURRENCY, "warroom")]
        ok = warroom.p99 < P99_TARGET_MS
        print(
            f"{'PASS' if ok else 'FAIL'}  c={P99_TARGET_CONCURRENCY}: warroom p99 "
            f"{warroom.p99:.1f} ms < {P99_TARGET_MS:.0f} ms"
        )
    else:
        print(f"SKIP  warroom p99 < {P99_TARGET_MS:.0f} ms needs c={P99_TARGET_CONCURRENCY}")
    failed = sum(row.failures for row in rows)
    print(f"{'PASS' if failed == 0 else 'FAIL'}  failures: {failed}")


# ----- main ------------------------------------------------------------------------------------


def concurrency_list(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from None
    if not levels or any(not 1 <= level <= MAX_CONCURRENCY for level in levels):
        raise argparse.ArgumentTypeError(f"each level must be 1..{MAX_CONCURRENCY}")
    return levels


def request_count(value: str) -> int:
    count = int(value)
    if not 1 <= count <= MAX_REQUESTS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_REQUESTS}")
    return count


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=request_count, default=500, help="per run (500)")
    parser.add_argument(
        "--concurrency", type=concurrency_list, default=[1, 10, 20], help="levels (1,10,20)"
    )
    parser.add_argument(
        "--database-url", default=None, help="default: a temp SQLite file; or a PostgreSQL URL"
    )
    parser.add_argument("--warmup", type=int, default=WARMUP_REQUESTS, help="per run (30)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows: list[Row] = []
    spawn = multiprocessing.get_context("spawn")
    with (
        SlackEmulator() as emulator,
        bench_engine(args.database_url) as (engine, url),
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as load,
    ):
        warroom = create_app(
            bench_settings(emulator, url), parse_config(BENCH_CONFIG), engine=engine
        )
        seed(warroom, SEEDED_INCIDENTS)
        servers = {
            "bare": serve(build_bare(emulator)),
            "warroom": serve(warroom.asgi),
        }
        expects: dict[str, str | None] = {"bare": None, "warroom": WARROOM_EXPECTS}
        response_url = emulator.response_url("bench")
        print(
            f"database {engine.url.render_as_string(hide_password=True)}, "
            f"{SEEDED_INCIDENTS} open incidents, {args.requests} requests per run "
            f"(+{args.warmup} warm-up), load from a separate process"
        )
        try:
            for concurrency in args.concurrency:
                for name, server in servers.items():
                    result = load.submit(
                        run_load,
                        server.url,
                        response_url,
                        args.requests,
                        concurrency,
                        args.warmup,
                        expects[name],
                    ).result()
                    row = summarise(concurrency, name, result)
                    rows.append(row)
                    print(
                        f"  c={concurrency:<3} {name:<8} p50 {row.p50:7.1f} ms  "
                        f"p99 {row.p99:7.1f} ms  failures {row.failures}",
                        flush=True,
                    )
                    if result.first_failure:
                        print(f"    first failure: {result.first_failure}")
                    _settle(warroom)
        finally:
            for server in servers.values():
                server.stop()
            warroom.close()
    print_report(rows, args.concurrency)
    return 0  # a measurement, not a gate


def _settle(app: Warroom) -> None:
    """Let warroom's lazy listeners (queued after each ack) drain between runs."""
    deadline = time.monotonic() + 30
    while app.executor._work_queue.qsize() > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
