"""The postmortem's templates: the Block Kit ones (announcement, lessons prompt, lessons form)
pass Slack's limits typical and worst case; the Markdown document shows everything, summarises
long messages with a link, and can be overridden."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.postmortem import (
    ACTION_REACTION,
    PIN_REACTION,
    ChannelDigest,
    ChannelMessage,
    ContainmentStep,
    IncidentRecord,
    LegalClock,
    Lesson,
    RecordEvent,
    RecoveryStep,
    StakeholderMessage,
)
from bot.emulator.blockkit import check_message, check_view
from bot.ids import ActionId, BlockId, CallbackId
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.postmortem import DocumentParts, document_context
from tests.unit.test_rendering import WORST_CASE, make_incident

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
WORKSPACE = "https://team.slack.com/"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def published(renderer: Renderer, worst: bool) -> dict[str, Any]:
    incident = incident_context(WORST_CASE if worst else make_incident())
    return renderer.render(
        "postmortem/published",
        incident=incident,
        version=12 if worst else 1,
        via="file" if worst else "channel_canvas",
        link="https://team.slack.com/docs/T1/F1" + ("x" * 2000 if worst else ""),
        refusals=[f"canvases.create: canvas_disabled_user_team {i} <&>" for i in range(50)]
        if worst
        else [],
        figures=["Detect 10 min · acknowledge 2 min", "Deadlines: 3 met, 1 late, 0 open"],
        action_items=999 if worst else 1,
        lessons=1,
        built_by="U0IC",
    )


def prompt(renderer: Renderer, worst: bool) -> dict[str, Any]:
    return renderer.render(
        "postmortem/lessons_prompt",
        incident=incident_context(WORST_CASE if worst else make_incident()),
        people=[f"U{i:08d}" for i in range(40)] if worst else [],
    )


def modal(renderer: Renderer, worst: bool) -> dict[str, Any]:
    answer = ("Line with <@U1> & <!channel>\n" * 300) if worst else ""
    return renderer.render(
        "postmortem/lessons_modal",
        incident=incident_context(WORST_CASE if worst else make_incident()),
        private_metadata=json.dumps({"incident_id": 1}),
        went_well=answer or "We had a runbook.",
        went_badly=answer,
        got_lucky=answer,
        limit=3000,
    )


@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
def test_every_message_passes_block_kit_validation(renderer: Renderer, worst: bool) -> None:
    for name, message in (
        ("published", published(renderer, worst)),
        ("prompt", prompt(renderer, worst)),
    ):
        assert check_message(message) == [], name
        assert message["text"], name


@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
def test_the_lessons_form_passes_block_kit_validation(renderer: Renderer, worst: bool) -> None:
    view = modal(renderer, worst)
    assert check_view(view) == []
    assert view["callback_id"] == CallbackId.LESSONS_MODAL.value
    blocks = {block.get("block_id"): block for block in view["blocks"]}
    for block_id, action_id in (
        (BlockId.LESSONS_WENT_WELL, ActionId.LESSONS_WENT_WELL),
        (BlockId.LESSONS_WENT_BADLY, ActionId.LESSONS_WENT_BADLY),
        (BlockId.LESSONS_GOT_LUCKY, ActionId.LESSONS_GOT_LUCKY),
    ):
        block = blocks[block_id.value]
        assert block["optional"] is True
        assert block["element"]["action_id"] == action_id.value


def test_the_form_shows_earlier_answers(renderer: Renderer) -> None:
    view = modal(renderer, worst=False)
    well = next(b for b in view["blocks"] if b.get("block_id") == BlockId.LESSONS_WENT_WELL.value)
    assert well["element"]["initial_value"] == "We had a runbook."
    badly = next(b for b in view["blocks"] if b.get("block_id") == BlockId.LESSONS_WENT_BADLY.value)
    assert "initial_value" not in badly["element"]


def test_the_announcement_links_the_document_and_offers_the_lessons_form(
    renderer: Renderer,
) -> None:
    message = published(renderer, worst=False)
    text = json.dumps(message)
    assert "<https://team.slack.com/docs/T1/F1|open it>" in text
    assert "version 1* is ready in the channel canvas" in text
    [button] = message["blocks"][-1]["elements"]
    assert (button["action_id"], button["value"]) == (ActionId.POSTMORTEM_SHARE_LESSONS, "1")


def test_a_file_announcement_says_why_there_is_no_canvas(renderer: Renderer) -> None:
    message = published(renderer, worst=True)
    text = json.dumps(message)
    assert "in a Markdown file" in text
    assert (
        "Slack refused a canvas: canvases.create: canvas_disabled_user_team 0 &lt;&amp;&gt;" in text
    )


def test_the_prompt_asks_the_responders_by_name(renderer: Renderer) -> None:
    message = prompt(renderer, worst=True)
    context = message["blocks"][1]["elements"][0]["text"]
    assert context.startswith("<@U00000000> <@U00000001>")
    assert context.endswith("and 20 more")


def test_every_template_in_postmortem_is_covered_by_these_tests(renderer: Renderer) -> None:
    names = {name for name in renderer.template_names() if name.startswith("postmortem/")}
    assert names == {
        "postmortem/published",
        "postmortem/lessons_prompt",
        "postmortem/lessons_modal",
    }


# ----- the Markdown document ------------------------------------------------------------------


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ts(minutes: float) -> str:
    return f"{at(minutes).timestamp():.6f}"


LONG = "The poisoned document came from the wiki sync " + "and then more detail " * 40


def sample_parts(*, worst: bool = False, read: bool = True) -> DocumentParts:
    incident = make_incident(declared_at=T0, resolved_at=at(180))
    record = IncidentRecord(
        events=(
            RecordEvent(at(0), "declared", "U0REPORTER", "Declared (critical) via slash_command"),
            RecordEvent(
                at(40),
                "state_changed",
                "warroom",
                "State declared → contained",
                {"to": "contained"},
            ),
            RecordEvent(
                at(180), "state_changed", "U0IC", "State contained → resolved", {"to": "resolved"}
            ),
        ),
        messages=(
            StakeholderMessage(
                "executive_team", "Executive team", "immediate", "sent", at(15), at(10), "met"
            ),
            StakeholderMessage(
                "legal_team", "Legal | team", "urgent", "sent", at(60), at(72), "late"
            ),
        ),
        clocks=(LegalClock("gdpr", "personal_data", at(0), at(4320), at(4400), "U0LEGAL"),),
        containment=(
            ContainmentStep(
                1,
                at(1),
                "warroom",
                "safe_mode",
                "Safe mode",
                "succeeded",
                "support-v2",
                at(30),
                decisions=(("U0IC", "approve", at(12)),),
                result={"summary": "HTTP 200"},
            ),
        ),
        recovery=(
            RecoveryStep(1, "support-v2", "validate", "Replay | prompts", "passed", at(100)),
        ),
        recovered_at=at(120),
        first_alert_at=at(-10),
        first_alert_title="Injection rate high",
        alert_count=3,
        rca={
            "version": 2,
            "trigger": {"summary": "A wiki page with hidden instructions"},
            "primary_cause": {"summary": "Retrieval trusted unvetted content"},
            "contributing_factors": [{"summary": "No output filter"}],
            "recommendations": [{"summary": "Vet sources"}],
            "findings": [{"summary": "Drift 0.02"}],
            "confirmed_by": "U0SAFETY",
            "confirmed_at": at(150),
        },
        lessons=(Lesson("U0SAFETY", "Runbook\nworked", "Paging was slow", "", at(200)),),
    )
    notable = (
        ChannelMessage(ts(2), "U0IC", "Pinned: <@U0DATA> is looking", pinned=True),
        ChannelMessage(
            ts(3), "U0SAFETY", LONG * (20 if worst else 1), reactions={PIN_REACTION: ("U0IC",)}
        ),
        ChannelMessage(ts(4), "U0IC", "action item: <@U0DATA> rotate keys due 2026-12-01"),
        ChannelMessage(
            ts(5),
            "U0SEC",
            "add a canary | test",
            thread_ts=ts(1),
            reactions={ACTION_REACTION: ("U0IC",)},
        ),
    )
    digest = ChannelDigest(
        channel_id="C0WARROOM",
        notable=notable if read else (),
        total=5000,
        replies=500,
        threads=100,
        participants=frozenset({"U0IC", "U0SAFETY"}),
        first_response_at=at(2),
        error=None if read else "not_in_channel",
    )
    return DocumentParts.of(incident, record, digest, now=at(5000))


def render(renderer: Renderer, parts: DocumentParts, mention: Any = lambda u: f"@{u}") -> str:
    incident = make_incident(declared_at=T0, resolved_at=at(180))
    return renderer.render_text(
        "postmortem.md",
        **document_context(
            incident=incident,
            parts=parts,
            version=3,
            built_at=at(300),
            actor_id="U0IC",
            workspace_url=WORKSPACE,
            mention=mention,
        ),
    )


def test_the_document_has_every_section_and_figure(renderer: Renderer) -> None:
    markdown = render(renderer, sample_parts())
    for expected in (
        "# Postmortem: incident #12 · Support bot follows injected instructions",
        "_Version 3, built 2026-11-26 14:00:00 UTC by @U0IC",
        "| Time to detect | 10 min 00 s | first alert → declaration |",
        "| Time to acknowledge | 2 min 00 s |",
        "| Time to contain | 40 min 00 s |",
        "| Time to recover | 2 h 00 min |",
        "| Time to resolve | 3 h 00 min |",
        "Deadlines: **1 met**, **2 late**, 0 still open",
        "- `2026-11-26 08:50:00 UTC` **First alert** · alert · First alert: Injection rate high "
        "(3 alerts in all)",
        "**Containment approved** · @U0IC · Approved Safe mode (support-v2)",
        "**Pinned** · @U0IC · Pinned: @U0DATA is looking ([message](https://team.slack.com/archives/C0WARROOM/p",
        "| Legal \\| team | urgent | 2026-11-26 10:00:00 UTC | 2026-11-26 10:12:00 UTC | "
        "late (12 min 00 s late) |",
        "| GDPR | personal_data |",
        "| Safe mode | support-v2 | 2026-11-26 09:01:00 UTC | approved by @U0IC | succeeded | "
        "HTTP 200 |",
        "- **Trigger:** A wiki page with hidden instructions",
        "- **Primary cause:** Retrieval trusted unvetted content",
        "_Analysis v2, confirmed by @U0SAFETY at 2026-11-26 11:30:00 UTC._",
        "| 1 | support-v2 | validate | Replay \\| prompts | passed |",
        "- [ ] @U0DATA rotate keys due 2026-12-01 · owner @U0DATA · due 2026-12-01 ([message](",
        "- [ ] add a canary | test · owner @U0SEC ([message](https://team.slack.com/archives/C0WARROOM/p",
        "?thread_ts=",
        "- Runbook\n  worked (@U0SAFETY)",
        "- Paging was slow (@U0SAFETY)",
        "The GDPR report was filed 1 h 20 min after its legal deadline.",
        "_Read 5000 messages from #inc-12-support (500 thread replies among them, in 100 threads",
    ):
        assert expected in markdown, expected


def test_long_messages_are_summarised_with_a_link_never_cut_silently(renderer: Renderer) -> None:
    markdown = render(renderer, sample_parts(worst=True))
    [line] = [line for line in markdown.splitlines() if "**Marked**" in line]
    assert " … ([full message](https://team.slack.com/archives/C0WARROOM/p" in line
    assert len(line) < 600


def test_an_unreadable_war_room_is_said_so(renderer: Renderer) -> None:
    markdown = render(renderer, sample_parts(read=False))
    assert "> The war room's messages could not be read (not_in_channel)" in markdown
    assert "_The war room could not be read (not_in_channel)._" in markdown


def test_the_canvas_flavour_mentions_people_the_canvas_way(renderer: Renderer) -> None:
    markdown = render(renderer, sample_parts(), mention=lambda u: f"![](@{u})")
    assert "Incident commander: ![](@U0IC)" in markdown
    assert "<@" not in markdown


def test_a_team_can_override_the_document(renderer: Renderer, tmp_path: Path) -> None:
    (tmp_path / "postmortem.md.j2").write_text(
        "# {{ incident.title }}\n"
        "{% for item in action_items %}* {{ item.text }} ({{ item.owner }})\n{% endfor %}"
    )
    markdown = render(Renderer(extra_dir=tmp_path), sample_parts())
    assert markdown.startswith("# Support bot follows injected instructions\n* @U0DATA rotate keys")
