"""`warroom drill <scenario> --url URL --token TOKEN`: play a scenario against a running
warroom, posting its injects to the webhook routes at their offsets (for drills run from cron).

The alerts carry the drill's marker, so the warroom declares a practice incident marked
DRILL, never a real one. Facilitator messages are printed for the facilitator to post.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

import httpx

from bot.domain.drills import InjectKind, Scenario, alert_body, metric_samples
from bot.errors import ConfigurationError
from bot.services.drills import packaged_scenarios, parse_scenario


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warroom drill",
        description="Play a drill scenario against a running warroom's webhook routes.",
    )
    parser.add_argument("scenario", nargs="?", help="a shipped scenario name (omit to list them)")
    parser.add_argument("--file", help="a scenario YAML file instead of a shipped one")
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the warroom base URL")
    parser.add_argument("--token", help="the webhook bearer token (default: WARROOM_WEBHOOK_TOKEN)")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="play faster: 60 turns each minute of the scenario into a second",
    )
    parser.add_argument("--run", help="a run id (default: random); the same id replays once")
    return parser


def main(
    argv: list[str],
    *,
    out: TextIO = sys.stdout,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command; 0 when every inject was accepted, 2 on a usage or input error."""
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        scenarios = packaged_scenarios()
        if args.file:
            with open(args.file, encoding="utf-8") as handle:
                scenario = parse_scenario(handle.read(), source=args.file)
        elif args.scenario is None:
            for name, item in sorted(scenarios.items()):
                print(f"{name:26} {item.title}", file=out)
            return 0
        elif args.scenario not in scenarios:
            print(f"no scenario {args.scenario!r}; known: {', '.join(sorted(scenarios))}", file=out)
            return 2
        else:
            scenario = scenarios[args.scenario]
    except (ConfigurationError, OSError) as error:
        print(f"warroom drill: {error}", file=out)
        return 2
    token = args.token or env.get("WARROOM_WEBHOOK_TOKEN")
    if not token:
        print("warroom drill: --token or WARROOM_WEBHOOK_TOKEN is needed", file=out)
        return 2
    if args.speed <= 0:
        print("warroom drill: --speed must be positive", file=out)
        return 2
    run = (args.run or uuid.uuid4().hex[:8]).lower()
    own = client is None
    http = client or httpx.Client(timeout=10.0)
    try:
        return play(
            scenario,
            run=run,
            base_url=args.url.rstrip("/"),
            token=token,
            speed=args.speed,
            client=http,
            out=out,
            sleep=sleep,
            now=now,
        )
    finally:
        if own:
            http.close()


def play(
    scenario: Scenario,
    *,
    run: str,
    base_url: str,
    token: str,
    speed: float,
    client: httpx.Client,
    out: TextIO,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
) -> int:
    """Post each inject at its (scaled) offset; the exit status."""
    headers = {"Authorization": f"Bearer {token}"}
    print(f"DRILL {scenario.name} (run {run}): {scenario.title}", file=out)
    started = time.monotonic()
    for index, inject in enumerate(scenario.injects, start=1):
        wait = inject.at.total_seconds() / speed - (time.monotonic() - started)
        if wait > 0:
            sleep(wait)
        at = now()
        label = f"[{index}/{len(scenario.injects)} +{inject.at}]"
        if inject.kind is InjectKind.MESSAGE:
            print(f"{label} facilitator, post in the war room:\n  {inject.text}", file=out)
            continue
        if inject.kind is InjectKind.ALERT:
            path, body = (
                "/webhooks/generic",
                alert_body(inject, scenario=scenario.name, run=run, at=at),
            )
        else:
            assert inject.series is not None
            path = "/webhooks/metrics"
            body = metric_samples(inject.series, scenario=scenario.name, run=run, at=at)
        try:
            response = client.post(f"{base_url}{path}", json=body, headers=headers)
        except httpx.HTTPError as error:
            print(f"{label} {path} failed: {error}", file=out)
            return 1
        if response.status_code != 202:
            print(f"{label} {path} answered {response.status_code}: {response.text}", file=out)
            return 1
        print(f"{label} {inject.kind.value} posted to {path}", file=out)
    print(
        "All injects played. Run the drill in its war room; `/incident resolve` scores it.",
        file=out,
    )
    return 0
