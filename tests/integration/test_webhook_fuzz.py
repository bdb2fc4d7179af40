"""Property: no JSON body makes a webhook answer 5xx (with the database up)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.app import Warroom, create_app
from bot.config import WarroomConfig
from bot.emulator.server import SlackEmulator
from bot.server import BackgroundServer
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

TOKEN = "fuzz-token"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
generic_like = st.fixed_dictionaries(
    {"title": json_values | st.text(min_size=1, max_size=40)},
    optional=dict.fromkeys(
        (
            "description",
            "severity",
            "indicators",
            "model",
            "systems",
            "source",
            "fingerprint",
            "status",
            "occurred_at",
            "metrics",
            "evidence",
        ),
        json_values,
    ),
)
prometheus_alert = st.fixed_dictionaries(
    {
        "startsAt": st.sampled_from(["2026-11-26T10:00:00Z", "yesterday", "2026-11-26T10:00:00"])
        | json_values
    },
    optional={
        "labels": st.dictionaries(st.text(max_size=10), json_values | st.text(), max_size=4),
        "annotations": json_values,
        "status": json_values,
        "fingerprint": json_values,
        "endsAt": json_values,
    },
)
alertmanager_like = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "alerts": st.lists(prometheus_alert, max_size=3) | json_values,
    },
    optional={
        "version": st.just("4") | json_values,
        "groupKey": json_values,
        "commonLabels": json_values,
        "groupLabels": json_values,
        "commonAnnotations": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Warroom, httpx.Client]]:
    from bot.config import parse_config
    from storage.db import build_engine, upgrade
    from tests.conftest import TEST_CONFIG

    emulator = SlackEmulator().start()
    emulator.state.add_channel("incidents", channel_id="C0ANNOUNCE")
    emulator.state.add_channel("exec-incidents", channel_id="C0EXEC")
    engine: Engine = build_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'w.db'}")
    upgrade(engine)
    config: WarroomConfig = parse_config(TEST_CONFIG)
    app = create_app(make_settings(emulator, warroom_webhook_token=TOKEN), config, engine=engine)
    server = BackgroundServer(app.asgi).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield app, client
    server.stop()
    app.close()
    emulator.stop()


def _post(client: httpx.Client, route: str, body: Any) -> int:
    response = client.post(
        f"/webhooks/{route}",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    return response.status_code


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=json_values | generic_like | alertmanager_like,
    route=st.sampled_from(["generic", "alertmanager", "grafana"]),
)
def test_no_json_body_makes_a_webhook_answer_5xx(
    fuzz_app: tuple[Warroom, httpx.Client], body: Any, route: str
) -> None:
    _, client = fuzz_app
    assert _post(client, route, body) in (202, 400)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(raw=st.binary(max_size=200))
def test_no_byte_string_makes_a_webhook_answer_5xx(
    fuzz_app: tuple[Warroom, httpx.Client], raw: bytes
) -> None:
    _, client = fuzz_app
    response = client.post(
        "/webhooks/generic", content=raw, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code in (202, 400)
