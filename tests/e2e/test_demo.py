"""`warroom demo` plays its whole script and leaves a readable transcript."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.demo import AUDIENCE_CHANNELS, run_demo

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


def section(text: str, heading: str) -> str:
    """The part of a Markdown text from `heading` to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    return text.split(heading + "\n", 1)[1].split(f"\n{level} ", 1)[0]


def test_the_root_cause_is_analysed_confirmed_and_teaches_a_rule(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    chain = war_room.split("## Root cause · incident #1 · version 1", 1)[1].split("**20", 1)[0]
    assert "Confirmed by <@U0DEMOSAFETY2>" in chain  # the AI safety lead after the hand-over
    assert "This is the version the postmortem uses." in chain
    assert "*Trigger event*\nA customer uploaded a PDF whose page 3 hides instructions" in chain
    assert "*Primary cause* · Adversarial attack" in chain
    assert "adversarial score 0.94, above 0.7 (entered by responders)" in chain
    assert "*Contributing factors*" in chain and "deploy support-assistant-v3.4" in chain
    assert "*Recommendations*" in chain
    assert "[Confirm]" not in chain  # confirmed: only Correct is left
    assert "Root cause confirmed (version 1). 1 rule change proposed" in war_room
    proposal = war_room.split("*Monitoring gap* · learned from incident #1", 1)[1]
    assert "Applied by <@U0DEMOIC>" in proposal.split("**20", 1)[0]
    # `/incident rules` lists the applied lesson
    replies = (demo / "replies.md").read_text()
    rules = section(
        replies, "## Anyone can list the rules in force, the lesson just applied among them"
    )
    assert "`/incident rules` → HTTP 200" in rules
    assert "*Monitoring to add*" in rules
    assert "*Lessons applied* (1)" in rules
    assert re.search(
        r"• Monitor `adversarial_score` for `support-assistant-v3` .* · monitoring gap from "
        r"incident #1, applied by <@U0DEMOIC>",
        rules,
    )
    assert "view_submission: rca_facts_modal" in replies


def test_recovery_is_staged_held_at_a_failed_check_retried_and_completed(demo: Path) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    plan = war_room.split("## Recovery for incident #1", 1)[1].split("**20", 1)[0]
    assert "12 of 12 steps done · :white_check_mark: complete: the incident is recovering" in plan
    assert ":white_check_mark: 1. Restore support-assistant-v3 — HTTP 200 in" in plan
    for stage in ("10", "50", "100"):
        assert f"back {stage}% of its capability — HTTP 200 in" in plan
        assert f"Check gateway health (at {stage}%) — HTTP 200, `done` is True" in plan
    assert len(re.findall(r"^:white_check_mark: \d+\. ", plan, re.MULTILINE)) == 12
    assert ":x:" not in plan
    assert "Check red-team PDFs with hidden instructions are refused (at 10%): failed." in war_room
    assert "Retrying: Check red-team PDFs" in war_room
    assert "so the plan is held" in war_room  # the AI safety lead says why
    replies = (demo / "replies.md").read_text()
    order = [
        "`button: Approve (10 % of traffic)`",
        "`button: Failed (red-team check at 10 %)`",
        "`button: Retry (red-team check at 10 %)`",
        "`button: Passed (red-team check again at 10 %)`",
        "`button: Approve (100 % of traffic)`",
        "`/incident resolve`",
        "`/incident postmortem`",
    ]
    positions = [replies.index(step) for step in order]
    assert positions == sorted(positions)


def test_the_postmortem_is_published_and_written_with_figures_timeline_items_and_rca(
    demo: Path,
) -> None:
    war_room = (demo / WAR_ROOM_1).read_text()
    for version in (1, 2):
        assert f"*Postmortem of incident #1, version {version}* is ready in the channel canvas" in (
            war_room
        )
    assert re.search(
        r"📌 pinned\n\n<sub>ts [\d.]+</sub>\n\nFallback text:\n\n> Postmortem", war_room
    )
    assert "lessons from 1 responder · built by <@U0DEMOIC>" in war_room
    assert "Thank you. Your lessons go into the next version of the postmortem" in war_room
    replies = (demo / "replies.md").read_text()
    assert "`event: reaction_added :pushpin:` → HTTP 200" in replies
    assert "view_submission: postmortem_lessons_modal" in replies

    postmortem = (demo / "postmortem-incident-1.md").read_text()
    assert postmortem.startswith(
        "# Postmortem: incident #1 · Support assistant follows instructions hidden in uploaded "
        "PDFs\n"
    )
    assert "_Version 2, built " in postmortem  # the newest version, with the lessons
    assert "| State | resolved |" in postmortem
    figures = section(postmortem, "## Key figures")
    for figure in ("Time to acknowledge", "Time to contain", "Time to recover", "Time to resolve"):
        assert re.search(rf"\| {figure} \| \d[^|—]* \|", figures), figure
    assert "| Time to recover | 1 d 0 h |" in figures  # after the 24-hour deadline
    assert "Deadlines: **8 met**, **0 late**, 0 still open, 1 skipped" in figures
    timeline = section(postmortem, "## Timeline")
    for event in (
        "**Declared** · @U0DEMOREPORTER",
        "**Containment approved** · @U0DEMOIC",
        "**Marked** · @U0DEMOSEC · Found the payload: page 3 of the uploaded PDF",
        "**Root-cause analysis confirmed** · @U0DEMOSAFETY2",
        "**Rule applied** · @U0DEMOIC",
        "**Recovery held** · @U0DEMOSAFETY2",
        "**Recovery completed** · warroom",
        "**State changed** · @U0DEMOIC · State recovering → resolved",
    ):
        assert event in timeline, event
    items = section(postmortem, "## Action items")
    assert re.search(
        r"- \[ \] @U0DEMOSAFETY2 add the hidden-text and alt-text PDFs to the red-team suite .* "
        r"· owner @U0DEMOSAFETY2 · due \d{4}-\d\d-\d\d \(\[message\]\(",
        items,
    )
    rca = section(postmortem, "## Root cause")
    assert (
        "- **Trigger:** A customer uploaded a PDF whose page 3 hides instructions in white "
        "1-pt text" in rca
    )
    assert "- **Primary cause:** Adversarial inputs were sent to model support-assistant-v3" in rca
    assert "- **Contributing factor:** Change shortly before" in rca
    assert "- **Recommendation:** Filter or rate-limit inputs" in rca
    assert "_Analysis v1, confirmed by @U0DEMOSAFETY2 at " in rca
    recovery = section(postmortem, "## Recovery")
    assert recovery.count("| passed |") == 8 and recovery.count("| done |") == 4
    lessons = section(postmortem, "## Lessons learned")
    assert "- Containment took seconds" in lessons and "(@U0DEMOSAFETY2)" in lessons
    assert "Nobody has said yet." not in lessons
    assert "1 marked :pushpin:" in postmortem


def test_a_drill_is_played_end_to_end_scored_in_full_and_kept_out_of_real_channels(
    demo: Path,
) -> None:
    [room] = demo.glob("inc-*-drill-*.md")
    number = re.match(r"inc-(\d+)-", room.name)
    assert number is not None
    drill = f"incident #{number.group(1)}"
    war_room = room.read_text()
    assert f"## Incident #{number.group(1)}: [DRILL] Support bot replies contain" in war_room
    assert "## DRILL · Support bot leaks its system prompt through an injected ticket" in war_room
    for index in (2, 4):
        assert f"DRILL inject {index} of 4" in war_room
    assert "[DRILL] Prompt-injection attempts against support bot rising" in war_room
    assert f"## Containment for {drill}" in war_room and "Approved by <@U0DEMOIC>" in war_room
    assert "DRILL report for prompt-leak: 6 of 6 targets met (100%)." in war_room
    assert f"*Postmortem of {drill}, version 1* is ready" in war_room
    # its stakeholder messages went to #drills, and nowhere real
    drills = (demo / "drills.md").read_text()
    assert f"## DRILL · Public statement guidance: {drill}" in drills
    assert f"## DRILL · Support briefing: {drill}" in drills
    for channel in (*AUDIENCE_CHANNELS.values(), "incidents", "general"):
        transcript = (demo / f"{channel}.md").read_text()
        assert "DRILL" not in transcript, channel
        assert drill not in transcript.lower(), channel
    replies = (demo / "replies.md").read_text()
    order = [
        "`/incident drill` → HTTP 200",
        "`/incident drill prompt-leak` → HTTP 200",
        "`button: Approve safe mode`",
        "4 minutes in, inject 2: the facilitator's message",
        "`/incident flag public`",
        "`button: Send now (PR team draft, drill)`",
        "15 minutes in, inject 4: the facilitator's message",
        "Posted in #drills: DRILL · Support briefing",
        "## Drill: the commander resolves the drill",
        "## Drill: the commander builds the drill's postmortem",
    ]
    positions = [replies.index(step) for step in order]
    assert positions == sorted(positions)

    report = (demo / "drill-report.md").read_text()
    assert report.startswith("## Drill report: prompt-leak\n")
    assert "**6 of 6 targets met (100%).**" in report
    assert "| missed |" not in report and "| pending |" not in report
    for target in ("Time to declare", "Classification", "Containment: safe mode", "Resolution"):
        assert f"| {target} | met |" in report, target
    assert "Every target was met." in report

    postmortem = (demo / "postmortem-drill.md").read_text()
    assert postmortem.startswith(f"# Postmortem: {drill} · [DRILL] Support bot replies")
    assert "> **DRILL.** This was a practice incident" in postmortem
    assert report.strip() in postmortem
    assert "| State | resolved |" in postmortem


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
