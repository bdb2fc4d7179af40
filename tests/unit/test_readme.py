"""The README's published contract stays in step with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.alert_payloads import generic_alert_schema

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_publishes_the_generated_generic_alert_schema() -> None:
    block = re.search(r"JSON Schema of the generic alert.*?```json\n(.*?)\n```", README, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == generic_alert_schema()


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
    assert "pip install -e '.[test]' && python -m pytest" in README
