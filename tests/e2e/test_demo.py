"""`warroom demo` plays its whole script and leaves a readable transcript."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.demo import run_demo

pytestmark = pytest.mark.e2e


def test_demo_runs_to_the_end_and_the_transcript_holds_the_war_room_card(tmp_path: Path) -> None:
    assert run_demo(out=tmp_path, quiet=True) == 0

    war_room = tmp_path / "inc-1-support-assistant-follows-instructions-hidden-in-uploaded-pdfs.md"
    transcript = war_room.read_text()
    assert "## Incident #1: Support assistant follows instructions hidden in uploaded PDFs" in (
        transcript
    )
    assert "pinned" in transcript
    assert "Incident commander: <@U0DEMOIC>" in transcript
    assert "AI safety lead: <@U0DEMOSAFETY2>" in transcript  # after the hand-over
    assert "marked *resolved*" in transcript
    # containment: proposed at once (critical), a refused click, the commander's approval
    assert "## Containment for incident #1" in transcript
    assert "Approved by <@U0DEMOIC>" in transcript
    assert "is *contained*" in transcript
    assert (
        "Someone who is not an approver clicks Approve (refused)"
        in (tmp_path / "replies.md").read_text()
    )
    assert (tmp_path / "inc-2-fraud-model-drifting.md").exists()
    assert "Critical AI incident #1" in (tmp_path / "exec-incidents.md").read_text()
    replies = (tmp_path / "replies.md").read_text()
    assert "works in an incident's war-room channel" in replies
    assert "Incident *#2* declared" in replies
    assert (tmp_path / "calls.jsonl").stat().st_size > 0
    # alerts in: Alertmanager declares #3, a repeat is deduplicated, a critical alert escalates
    [alert_room] = tmp_path.glob("inc-3-*.md")
    alert_transcript = alert_room.read_text()
    assert "support-bot-v2 is leaking its system prompt" in alert_transcript
    assert "AML.T0051" in alert_transcript and "LLM01:2025" in alert_transcript
    assert "*Escalated* from high to *critical*" in alert_transcript
    assert "alerts 1, new 0, duplicates 1, incidents_declared 0" in replies
    # the anomaly detector declares #4 from a sustained factuality drop
    [anomaly_room] = tmp_path.glob("inc-4-*.md")
    assert "Hallucination cascade" in anomaly_room.read_text()


def test_the_demo_command_runs_offline(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"transcript in {(tmp_path / 'out').resolve()}" in result.stdout
    assert result.stderr == ""
