"""Run the Slack emulator in the foreground: `python -m bot.emulator [--port N]`."""

from __future__ import annotations

import argparse
import threading

from bot.emulator.server import SlackEmulator


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted, printing the api_url to give to WebClient(base_url=...)."""
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 = any free)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per call")
    args = parser.parse_args(argv)
    with SlackEmulator(port=args.port, latency=args.latency) as emulator:
        print(emulator.api_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
