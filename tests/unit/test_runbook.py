"""The runbook is rendered from the live configuration and the domain's own tables, and
published as a canvas or, when Slack refuses one, as a Markdown file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import WarroomConfig, parse_config
from bot.domain.containment import propose_containment
from bot.domain.vocabulary import IncidentType, Severity
from bot.rendering import Renderer
from bot.runbook import PublishRunbook, RunbookPublisher, render_runbook, runbook_context

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def team_config(**overrides: Any) -> WarroomConfig:
    return parse_config(
        {
            "roles": {"incident_commander": ["U0IC", "U0IC2"], "legal_advisor": ["U0LEGAL"]},
            "audiences": {"executive_team": ["C0EXEC"], "security_team": ["C0SEC"]},
            "deadlines": {"immediate": "10m", "urgent": "2h"},
            "cadence": {"critical": "20m"},
            "containment": {
                "approvers": ["U0CISO"],
                "two_person": ["model_shutdown"],
                "actions": {"safe_mode": {"url": "https://gw.example/models/{model}/safe-mode"}},
            },
            "recovery": {
                "stages": [25, 100],
                "systems": {
                    "support-bot": {
                        "restore": {"url": "https://gw.example/models/{system}/restore"},
                        "checks": [{"name": "Health endpoint", "url": "https://gw.example/h"}],
                    }
                },
            },
            "regulatory": {"ai_act_enabled": False, "gdpr_window": "72h"},
            **overrides,
        }
    )


def render(config: WarroomConfig) -> str:
    return render_runbook(Renderer(), config, generated_at=NOW)


def test_the_runbook_follows_the_configuration() -> None:
    text = render(team_config())
    assert "@U0IC; backups: @U0IC2" in text  # rota, primary first
    assert "| Immediate | 10 minutes |" in text and "| Urgent | 2 hours |" in text
    assert "critical: 20 minutes" in text  # update cadence
    assert "| Executive team | `audiences/executive_team.json.j2` | C0EXEC |" in text
    assert "| PR team | `audiences/pr_team.json.j2` | **none configured" in text
    assert "configured approvers (@U0CISO)" in text
    assert "| Model shutdown | AI safety lead | manual (a person marks it done) | yes" in text
    assert "`POST https://gw.example/models/{model}/safe-mode`" in text
    assert "(25% → 100%)" in text
    assert "| support-bot | `POST https://gw.example/models/{system}/restore` |" in text
    assert "GDPR Art. 33 personal-data breach: **on**, 3 days from awareness" in text
    assert "EU AI Act Art. 73: off" in text
    assert "2026-11-26 09:00 UTC" in text


def test_a_change_of_configuration_changes_the_runbook() -> None:
    before = render(team_config())
    after = render(team_config(notifications={"auto_send": False}))
    assert "sent as drafted" in before and "sent as drafted" not in after
    assert "handed to the incident commander" in after


def test_the_containment_matrix_is_the_policy_itself() -> None:
    context = runbook_context(team_config(), generated_at=NOW)
    row = next(r for r in context["containment"]["matrix"] if r["type"] == "security_breach")
    assert row["cells"] == {
        "low": "AR",
        "medium": "AR MFA NI",
        "high": "AR MFA NI",
        "critical": "AR! MFA NI",
    }
    # And every cell agrees with what propose_containment would do.
    from bot.runbook import ACTION_SHORT, sample_incident

    for row in context["containment"]["matrix"]:
        for severity in Severity:
            plan = propose_containment(
                sample_incident(incident_type=IncidentType(row["type"]), severity=severity), now=NOW
            )
            assert row["cells"][severity.value] == " ".join(
                ACTION_SHORT[a.kind] + ("!" if a.emergency else "") for a in plan.actions
            )


def test_the_escalation_matrix_is_the_notification_plan() -> None:
    rows = runbook_context(team_config(), generated_at=NOW)["escalation"]["rows"]
    critical = next(r for r in rows if r["severity"] == "critical" and r["condition"] == "no flag")
    assert critical["tiers"]["immediate"] == (
        "Executive team, Security team, Legal team, Communications team"
    )
    low_personal = next(
        r for r in rows if r["severity"] == "low" and r["condition"] == "personal data"
    )
    assert low_personal["tiers"] == {
        "immediate": "Data protection officer",
        "urgent": "Affected users",
        "standard": "Technical team",
    }


def test_the_runbook_covers_every_section() -> None:
    text = render(WarroomConfig())
    for heading in (
        "## 1. Activation criteria",
        "## 2. Escalation matrix",
        "## 3. Communication protocols",
        "## 4. Response procedures: containment",
        "## 5. Recovery playbooks",
        "## 6. Post-incident procedures",
        "## 7. Roles and rota",
    ):
        assert heading in text
    assert "nobody configured" in text  # an empty rota says so


class FakeSlack:
    """Records what the publisher asks of Slack; refuses canvases when told to."""

    def __init__(self, *, canvases: bool) -> None:
        self.canvases = canvases
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_canvas(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("canvas", kwargs))
        if self.canvases:
            return {"ok": True, "canvas_id": "F0CANVAS"}
        return {"ok": False, "error": "canvas_disabled_user_team"}

    def workspace(self) -> dict[str, str]:
        return {"url": "https://team.slack.com/", "team_id": "T0TEAM", "user_id": "U0BOT"}

    def post_ephemeral(self, channel_id: str, user_id: str, message: dict[str, Any]) -> None:
        self.calls.append(("ephemeral", {"channel": channel_id, "user": user_id, **message}))

    def upload_text_file(self, channel_id: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("file", {"channel": channel_id, **kwargs}))
        return {"id": "F0FILE", "permalink": "https://team.slack.com/files/F0FILE"}


def publisher(slack: FakeSlack, config: WarroomConfig) -> RunbookPublisher:
    return RunbookPublisher(
        slack=slack,  # type: ignore[arg-type]
        renderer=Renderer(),
        config=config,
        now=lambda: NOW,
    )


def test_the_runbook_goes_into_a_canvas_in_the_channel_it_was_asked_in() -> None:
    slack = FakeSlack(canvases=True)
    publisher(slack, team_config()).publish(PublishRunbook(channel_id="C0ASK", user_id="U0ME"))
    kinds = [kind for kind, _ in slack.calls]
    assert kinds == ["canvas", "ephemeral"]
    canvas = slack.calls[0][1]
    assert canvas["channel_id"] == "C0ASK"
    assert "![](@U0IC)" in canvas["markdown"]  # canvas mentions
    assert "https://team.slack.com/docs/T0TEAM/F0CANVAS" in slack.calls[1][1]["text"]


def test_a_refused_canvas_falls_back_to_a_markdown_file() -> None:
    slack = FakeSlack(canvases=False)
    publisher(slack, team_config()).publish(PublishRunbook(channel_id="C0ASK", user_id="U0ME"))
    assert [kind for kind, _ in slack.calls] == ["canvas", "file"]
    file = slack.calls[1][1]
    assert file["channel"] == "C0ASK" and file["filename"] == "warroom-runbook.md"
    assert file["content"].startswith("# AI incident-response runbook")


def test_file_mode_uploads_without_trying_a_canvas() -> None:
    slack = FakeSlack(canvases=True)
    config = team_config(postmortem={"publish": "file"})
    publisher(slack, config).publish(PublishRunbook(channel_id="C0ASK", user_id="U0ME"))
    assert [kind for kind, _ in slack.calls] == ["file"]


def test_warroom_runbook_writes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "warroom.yml").write_text("roles:\n  incident_commander: [U0IC]\n")
    monkeypatch.chdir(tmp_path)
    for name in ("WARROOM_CONFIG", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["runbook", "--out", str(tmp_path / "runbook.md")]) == 0
    assert "runbook written to" in capsys.readouterr().out
    assert "On call: @U0IC;" in (tmp_path / "runbook.md").read_text()
