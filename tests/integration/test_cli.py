"""The command line: one clear line for bad settings, migrations, config checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.emulator.server import SlackEmulator

pytestmark = pytest.mark.integration


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "WARROOM_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_serve_without_a_token_stops_with_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "warroom: SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)\n"


def test_serve_without_signing_secret_names_it(tmp_path: Path) -> None:
    result = run_cli("serve", env={"SLACK_BOT_TOKEN": "xoxb-1"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("warroom: SLACK_SIGNING_SECRET is not set")
    assert result.stderr.count("\n") == 1


def test_serve_with_a_bad_config_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "warroom.yml").write_text("roles:\n  comander: [U1AB]\n")
    result = run_cli(
        "serve", env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == "warroom: warroom.yml: unknown key 'roles.comander'\n"


def test_serve_with_an_unreachable_slack_says_so(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        env={
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": "http://127.0.0.1:1/api/",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "warroom: SLACK_API_URL: cannot reach Slack at http://127.0.0.1:1/api/ ("
    )
    assert result.stderr.count("\n") == 1


def test_serve_against_an_unreachable_database_refuses(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    result = run_cli(
        "serve",
        env={
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": emulator.api_url,
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("warroom: DATABASE_URL: cannot use the database")


def test_db_upgrade_and_check_config(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    result = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "newest migration" in result.stdout
    (tmp_path / "ok.yml").write_text("roles:\n  incident_commander: [U0IC]\n")
    checked = run_cli("check-config", str(tmp_path / "ok.yml"), cwd=tmp_path)
    assert checked.returncode == 0
    assert "1 roles on call" in checked.stdout
    bad = run_cli("check-config", str(tmp_path / "missing.yml"), cwd=tmp_path)
    assert bad.returncode == 2
    assert "cannot be read" in bad.stderr


def test_check_config_vets_template_overrides(tmp_path: Path) -> None:
    overrides = tmp_path / "message-overrides" / "audiences"
    overrides.mkdir(parents=True)
    (tmp_path / "with-templates.yml").write_text(
        f"templates_dir: {tmp_path / 'message-overrides'}\n"
    )
    (overrides / "pr_team.json.j2").write_text(
        '{"text": {{ ("Holding line for incident #%d" % incident.number) | tojson }}}'
    )
    good = run_cli("check-config", str(tmp_path / "with-templates.yml"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    (overrides / "pr_team.json.j2").write_text('{"text": {{ incident.no_such_field | tojson }}}')
    broken = run_cli("check-config", str(tmp_path / "with-templates.yml"), cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.startswith("warroom: templates_dir: audiences/pr_team")
    (tmp_path / "no-dir.yml").write_text(f"templates_dir: {tmp_path / 'nowhere'}\n")
    missing = run_cli("check-config", str(tmp_path / "no-dir.yml"), cwd=tmp_path)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_serve_runs_a_real_server_that_answers_slack_and_health(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    import signal
    import socket
    import time

    import httpx

    from bot.emulator.signed_requests import SlackSender

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    env = {
        **clean,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "serve-secret",
        "SLACK_API_URL": emulator.api_url,
        "WARROOM_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "warroom serve did not come up"
            time.sleep(0.1)
        sender = SlackSender(
            base, response_url=emulator.response_url("serve"), secret="serve-secret"
        )
        reply = sender.command("list")
        sender.close()
        assert reply.status_code == 200
        assert reply.json()["text"] == "0 open incidents"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    # drained: uvicorn's open requests, then warroom's own work after the acks
    assert process.returncode == 0, output
    assert "stopped; work in progress was finished" in output
