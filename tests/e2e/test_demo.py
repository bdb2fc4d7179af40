"""`warroom demo` plays its whole script and leaves a readable transcript."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.demo import run_demo

pytestmark = pytest.mark.e2e

WAR_ROOM_1 = "inc-1-support-assistant-follows-instructions-hidden-in-uploaded-pdfs.md"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the whole demo (it raises if Slack would refuse any message); the tests
    below read its transcript."""
    out = tmp_path_factory.mktemp("demo")
    assert run_demo(out=out, quiet=True) == 0
    return out


def test_demo_runs_to_the_end_and_the_transcript_holds_the_war_room_card(demo: Path) -> None:
    tmp_path = demo
    war_room = tmp_path / WAR_ROOM_1
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


def test_the_comms_lead_sends_one_draft_now_and_skips_another_with_a_reason(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    for audience in ("Security team", "Legal team", "Communications team", "Technical team"):
        assert f"*Draft for the {audience}* · " in war_room
    # the drafts planned when personal data was flagged, the external ones marked as redacted
    for audience in ("Data protection officer", "Affected users", "Regulatory body"):
        assert f"*Draft for the {audience}* · " in war_room
    assert ":lock: Leaves the company" in war_room
    assert re.search(r"Sent <!date\^\d+\^[^>]*> \(met\) by <@U0DEMOCOMMS>", war_room)
    assert (
        "Skipped by <@U0DEMOCOMMS>: The communications team is already in this war room" in war_room
    )
    security = (demo / "security-team.md").read_text()
    assert "## Security notice: incident #1" in security
    assert "Comms brief: incident #1" not in (demo / "communications-team.md").read_text()
    replies = (demo / "replies.md").read_text()
    assert "view_submission: notification_skip_modal" in replies


def test_deadlines_pass_without_waiting_and_every_message_goes_out_on_time(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    assert "immediate message due" in war_room  # the half-way reminder to the comms lead
    assert war_room.count("(met) by warroom at the deadline") >= 5
    assert "A status update is due for this high incident" in war_room
    assert "Dismissed by <@U0DEMOCOMMS>" in war_room
    # the clock really moved (the demo took seconds): Slack's timestamps reach the next day
    days = re.findall(r"\*\*(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d UTC · @warroom", war_room)
    assert days and max(days) > min(days)
    legal = (demo / "legal-team.md").read_text()
    assert "## Legal notice: incident #1" in legal
    assert "## Technical brief: incident #1" in (demo / "technical-team.md").read_text()
    assert (
        "## Data protection notice: incident #1"
        in (demo / "data-protection-officer.md").read_text()
    )
    replies = (demo / "replies.md").read_text()
    assert "urgent message sent to the Affected users (met)" in replies
    assert "standard message sent to the Technical team (met)" in replies
    # /incident status lists every deadline and where it stands
    status = replies.split("## The commander checks every deadline", 1)[1].split("\n## ", 1)[0]
    expected = {
        "Executive team": "immediate",
        "Security team": "immediate",
        "Legal team": "immediate",
        "Data protection officer": "immediate",
        "Affected users": "urgent",
        "Regulatory body": "urgent",
        "Technical team": "standard",
    }
    for audience, tier in expected.items():
        assert re.search(rf"• {audience} · {tier} · due .* · sent, met", status), audience
    assert re.search(r"• Communications team · immediate · due .* · skipped", status)
    assert re.search(r":scales: GDPR personal data breach notification .* · due .* left", status)


def test_the_status_update_reaches_every_audience_told_and_leaves_redacted(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    assert (
        "Status update from <@U0DEMOCOMMS>, sent to Executive team, Security team, Legal team, "
        "Data protection officer, Affected users, Regulatory body" in war_room
    )
    for internal in ("security-team.md", "exec-incidents.md", "legal-team.md"):
        transcript = (demo / internal).read_text()
        assert "Status update on incident #1" in transcript, internal
        assert "jane.doe@example.com" in transcript, internal
    for external in ("affected-users.md", "regulatory-body.md"):
        transcript = (demo / external).read_text()
        assert "Status update on incident #1" in transcript, external
        assert "A customer, [email], reported replies" in transcript, external
        assert "jane.doe@example.com" not in transcript, external
        assert "<@U0DEMO" not in transcript, external
        # the configured contact point is published on purpose
        assert "Data protection office, privacy@example.com" in transcript, external
    # the planned notice to affected users went out at its deadline, in plain words
    assert "## Important: an issue with our service" in (demo / "affected-users.md").read_text()


def test_personal_data_starts_the_gdpr_clock_and_the_legal_advisor_files_it(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    assert "<@U0DEMOSEC> flagged incident #1: personal data" in war_room
    assert "## Draft: GDPR personal data breach notification · incident #1" in war_room
    assert "*Legal basis* GDPR Art. 33(1)" in war_room
    assert "Submitted by <@U0DEMOLEGAL>" in war_room
    assert "[Mark submitted]" not in war_room.split("## Draft: GDPR", 1)[1].split("**20", 1)[0]
    # the card lists the clock as filed
    assert re.search(
        r":scales: GDPR personal data breach notification .* submitted by <@U0DEMOLEGAL>", war_room
    )
    assert "Mark submitted (GDPR report)" in (demo / "replies.md").read_text()


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
