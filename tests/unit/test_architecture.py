"""The domain stays plain Python: no Slack, SQL, templates, scheduler or HTTP client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "slack_sdk",
    "slack_bolt",
    "sqlalchemy",
    "jinja2",
    "apscheduler",
    "httpx",
    "storage",
    "handlers",
    "starlette",
    "uvicorn",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "bot" / "domain").glob("*.py")), ids=lambda p: p.name
)
def test_domain_module_imports_no_io_library(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((ROOT / "handlers").glob("*.py")), ids=lambda p: p.name)
def test_handlers_do_not_touch_storage(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in ("storage", "sqlalchemy")}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


def test_importing_the_app_starts_nothing() -> None:
    import threading

    before = threading.active_count()
    import bot.app  # noqa: F401
    import bot.cli  # noqa: F401

    assert threading.active_count() == before
