"""`warroom classify`: text and JSON output, JSON Lines in order, one clear line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

KEYS = {"type", "severity", "confidence", "indicators", "atlas", "owasp"}


def classify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "WARROOM_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "classify", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_a_title_prints_type_severity_confidence_indicators_and_taxonomy(
    tmp_path: Path,
) -> None:
    result = classify(
        "--severity", "sev3", "System prompt leak on the airline chatbot", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert lines["type"] == "prompt_injection"
    assert lines["severity"] == "high"
    assert float(lines["confidence"].split()[0]) > 0.5
    assert lines["indicators"] == "system_prompt_leak"
    assert "AML.T0051 LLM Prompt Injection" in lines["atlas"]
    assert "LLM01:2025 Prompt Injection" in lines["owasp"]
    assert lines["why"].endswith(".")
    assert not (tmp_path / "warroom.db").exists()


def test_json_prints_one_object_with_the_documented_keys(tmp_path: Path) -> None:
    result = classify("--json", "Jailbreak", "in", "support", "bot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    body = json.loads(line)
    assert set(body) == KEYS
    assert body["type"] == "jailbreak_attempt"
    assert body["severity"] == "high"
    assert 0 < body["confidence"] <= 1
    assert body["atlas"] == ["AML.T0054"]
    assert body["owasp"] == ["LLM01:2025", "LLM01:2026"]


def test_a_file_prints_one_object_per_line_in_order(tmp_path: Path) -> None:
    records = [
        {"title": "Latency spike on the chat API"},
        {"title": "Bot insulted a customer", "description": "rude replies", "extra": 1},
        {"title": "Fraud model", "indicators": ["model_drift", "distribution_shift"]},
        {"title": "Chat shows other users' addresses", "severity": "low", "personal_data": True},
    ]
    lines = [json.dumps(record) for record in records]
    lines.insert(1, "")  # blank lines are skipped; unknown keys are ignored
    source = tmp_path / "incidents.jsonl"
    source.write_text("\n".join(lines) + "\n")

    result = classify("--file", str(source), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    bodies = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(body) == KEYS for body in bodies)
    assert [body["type"] for body in bodies] == [
        "performance_degradation",
        "hostile_behavior",
        "model_drift",
        "data_leak",
    ]
    assert bodies[0]["indicators"] == ["latency_spike"]
    assert bodies[3]["severity"] == "high"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"description": "no title"}', "'title' must be a non-empty string"),
        ('{"title": "x", "severity": "sev9"}', "'severity' must be"),
    ],
)
def test_a_bad_line_stops_with_one_line_naming_it(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    source = tmp_path / "incidents.jsonl"
    source.write_text('{"title": "Latency spike"}\n\n' + bad_line + '\n{"title": "ok"}\n')

    result = classify("--file", str(source), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"warroom: {source}, line 3: {message}")
    assert result.stderr.count("\n") == 1


def test_no_text_is_a_usage_error(tmp_path: Path) -> None:
    result = classify(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "warroom: classify needs TEXT or --file\n"
