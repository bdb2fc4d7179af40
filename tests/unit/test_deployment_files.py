"""The Dockerfile and the compose file agree with the code: entrypoint, port, user, health."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.cli import _parser as build_parser
from bot.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def instruction(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)


def test_the_image_runs_warroom_serve_as_a_non_root_user() -> None:
    assert instruction("ENTRYPOINT") == ['["warroom"]']
    assert instruction("CMD") == ['["serve"]']
    [user] = instruction("USER")
    assert user not in ("root", "0")
    assert instruction("FROM")[0].startswith("python:3.11-slim")


def test_the_image_listens_where_it_says_and_checks_health_on_the_real_route() -> None:
    default_port = Settings.model_fields["warroom_port"].default
    assert instruction("EXPOSE") == [str(default_port)]
    assert f"WARROOM_PORT={default_port}" in DOCKERFILE
    assert "WARROOM_HOST=0.0.0.0" in DOCKERFILE
    assert f"127.0.0.1:{default_port}/healthz" in DOCKERFILE


def test_the_image_copies_every_package_the_distribution_needs() -> None:
    copied = {line.split()[0] for line in instruction("COPY")}
    for package in ("bot", "handlers", "storage", "templates"):
        assert package in copied


def test_compose_runs_two_replicas_on_postgres_after_migrating() -> None:
    services = COMPOSE["services"]
    replicas = [name for name in services if name.startswith("warroom-")]
    assert len(replicas) == 2
    parser = build_parser()
    assert parser.parse_args(services["migrate"]["command"]).command == "db"
    for name in replicas:
        service = services[name]
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        [mapping] = service["ports"]
        assert mapping.endswith(":3000")
    assert services["postgres"]["image"].startswith("postgres:")
