"""The audit log and evidence on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot.classifier import build_classifier
from bot.clock import SystemClock
from bot.config import WarroomConfig
from bot.domain.alerts import Alert, AlertStatus, GroupAlerts, ReceivedDelivery
from bot.domain.audit import AuditAction, EvidenceKind, verify_chain
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.errors import NotFoundError
from bot.services.audit import AuditService, EvidenceService
from bot.services.incidents import IncidentService
from bot.slack_gateway import SlackGateway, build_web_client
from storage.repositories import alert_dedup_key
from storage.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.integration

CLASSIFIER = build_classifier()
ROOT = Path(__file__).resolve().parents[2]


def declare(engine: Engine, config: WarroomConfig, key: str = "slash:audit") -> tuple[int, int]:
    """A fresh incident's (id, number)."""
    service = IncidentService(
        uow=UnitOfWorkFactory(engine), clock=SystemClock(), config=config, classifier=CLASSIFIER
    )
    incident = service.declare(
        Declaration(
            title="Jailbreak in support bot",
            severity=Severity.HIGH,
            reporter_id="U0REPORTER",
            source=IncidentSource.SLASH_COMMAND,
            dedup_key=key,
        )
    ).incident
    return incident.id, incident.number


def audit_service(engine: Engine) -> AuditService:
    return AuditService(uow=UnitOfWorkFactory(engine), clock=SystemClock())


def test_entries_are_chained_in_order_and_read_back_intact(
    engine: Engine, config: WarroomConfig
) -> None:
    incident_id, number = declare(engine, config)  # the declaration is entry 1
    audit = audit_service(engine)
    audit.record(
        incident_id,
        actor="warroom",
        action=AuditAction.PROPOSED,
        detail={"action": "model_shutdown", "model": "support-bot", "confidence": 0.85},
    )
    audit.record(incident_id, actor="U0COMMANDER", action=AuditAction.APPROVED)

    with UnitOfWorkFactory(engine)(read_only=True) as uow:
        entries = uow.audit.entries(incident_id)
    assert [(e.seq, e.action) for e in entries] == [
        (1, AuditAction.DECLARED),
        (2, AuditAction.PROPOSED),
        (3, AuditAction.APPROVED),
    ]
    assert entries[1].detail == {
        "action": "model_shutdown",
        "model": "support-bot",
        "confidence": 0.85,
    }
    assert entries[0].at.tzinfo is not None
    assert audit.verify(number).ok
    assert audit.verify(number).count == 3


def test_an_entry_recorded_in_a_rolled_back_transaction_leaves_no_trace(
    engine: Engine, config: WarroomConfig
) -> None:
    incident_id, number = declare(engine, config)
    audit = audit_service(engine)
    with UnitOfWorkFactory(engine)() as uow:
        audit.record_in(uow, incident_id, actor="U1", action=AuditAction.REFUSED)
        # no commit: the caller's transaction failed
    audit.record(incident_id, actor="U1", action=AuditAction.REFUSED)
    check = audit.verify(number)
    assert (check.ok, check.count) == (True, 2)  # the declaration and the committed refusal


def test_appending_to_an_unknown_incident_fails_instead_of_retrying(engine: Engine) -> None:
    with pytest.raises(IntegrityError):
        audit_service(engine).record(999_999, actor="U1", action=AuditAction.DECLARED)


def test_verifying_an_unknown_incident_number_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFoundError):
        audit_service(engine).verify(404)


def test_concurrent_appends_from_threads_make_one_contiguous_intact_chain(
    engine: Engine, config: WarroomConfig
) -> None:
    incident_id, number = declare(engine, config)
    other_id, _ = declare(engine, config, key="slash:other")
    audit = audit_service(engine)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def append(worker: int) -> None:
        try:
            start.wait()
            for step in range(10):
                target = other_id if step % 5 == 4 else incident_id
                audit.record(
                    target,
                    actor=f"U{worker}",
                    action=AuditAction.EXECUTED,
                    detail={"worker": worker, "step": step},
                )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with UnitOfWorkFactory(engine)(read_only=True) as uow:
        entries = uow.audit.entries(incident_id)
        others = uow.audit.entries(other_id)
    # entry 1 of each is its declaration
    assert [entry.seq for entry in entries] == list(range(1, 66))
    assert [entry.seq for entry in others] == list(range(1, 18))
    assert verify_chain(others).ok
    check = audit.verify(number)
    assert (check.ok, check.count) == (True, 65)
    done = {(e.detail["worker"], e.detail["step"]) for e in entries if "worker" in e.detail}
    assert len(done) == 64


def test_a_writer_that_lost_the_race_chains_onto_the_winners_entry(
    engine: Engine, config: WarroomConfig
) -> None:
    incident_id, number = declare(engine, config)
    uow_factory = UnitOfWorkFactory(engine)
    audit = audit_service(engine)  # the declaration is entry 1
    second: list[int] = []

    def late_writer() -> None:
        second.append(audit.record(incident_id, actor="U2", action=AuditAction.REJECTED).seq)

    with uow_factory() as uow:
        first = audit.record_in(uow, incident_id, actor="U1", action=AuditAction.APPROVED)
        # The other writer reads the committed head (seq 1) and tries seq 2 too: PostgreSQL
        # holds its insert on the unique key until this commits, then it retries on seq 2.
        writer = threading.Thread(target=late_writer)
        writer.start()
        time.sleep(0.3)
        uow.commit()
    writer.join(timeout=30)

    assert first.seq == 2
    assert second == [3]
    assert audit.verify(number).ok


# -- the command line --------------------------------------------------------------------


def database_url(engine: Engine) -> str:
    """A DATABASE_URL that reaches the same database (and, on PostgreSQL, schema)."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return make_url(url).render_as_string(hide_password=False)


def run_verify(engine: Engine, number: int | str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "WARROOM_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "verify", str(number)],
        env={**clean, "DATABASE_URL": database_url(engine)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_audit_verify_reports_an_intact_chain_then_names_a_tampered_entry(
    engine: Engine, config: WarroomConfig
) -> None:
    incident_id, number = declare(engine, config)
    audit = audit_service(engine)
    for action in (AuditAction.PROPOSED, AuditAction.APPROVED):
        audit.record(incident_id, actor="U0COMMANDER", action=action, detail={"model": "bot"})
    audit.record(incident_id, actor="warroom", action=AuditAction.EXECUTED)

    intact = run_verify(engine, number)
    assert (intact.returncode, intact.stderr) == (0, "")
    assert (
        intact.stdout == f"incident #{number}: audit chain of 4 entries is intact\n"
    )  # with the declaration

    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE audit_entries SET actor = 'U0INTRUDER' WHERE incident_id = :id AND seq = 3"
            ),
            {"id": incident_id},
        )
    broken = run_verify(engine, f"#{number}")
    assert broken.returncode == 1
    assert broken.stdout == (
        f"incident #{number}: audit chain broken at entry 3: "
        "entry 3: hash does not match its content\n"
    )


def test_audit_verify_names_a_deleted_entry(engine: Engine, config: WarroomConfig) -> None:
    incident_id, number = declare(engine, config)
    audit = audit_service(engine)
    for _ in range(3):
        audit.record(incident_id, actor="U1", action=AuditAction.STATE_CHANGED)
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM audit_entries WHERE incident_id = :id AND seq = 2"),
            {"id": incident_id},
        )
    result = run_verify(engine, number)
    assert result.returncode == 1
    assert "entry 2 missing (seq jumps from 1 to 3)" in result.stdout


def test_audit_verify_of_an_unknown_incident_says_so_in_one_line(engine: Engine) -> None:
    result = run_verify(engine, 77)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "warroom: There is no incident #77.\n"


# -- evidence ----------------------------------------------------------------------------


def add_alerts(engine: Engine, incident_id: int) -> None:
    now = datetime.now(UTC)
    alerts = [
        Alert(
            source=IncidentSource.GENERIC_WEBHOOK,
            fingerprint=f"fp-{index}",
            group_key="support-bot:jailbreak",
            status=AlertStatus.FIRING,
            title=f"Jailbreak attempts rising ({index})",
            severity=Severity.HIGH,
            starts_at=now,
            raw={"labels": {"model": "support-bot"}, "value": 40 + index},
        )
        for index in range(2)
    ]
    with UnitOfWorkFactory(engine)() as uow:
        [delivery] = uow.alerts.record_deliveries(
            [
                ReceivedDelivery(
                    source=IncidentSource.GENERIC_WEBHOOK,
                    body={"alerts": 2},
                    alert_count=2,
                    new_alerts=2,
                    received_at=now,
                )
            ]
        )
        group = uow.alerts.lock_groups(
            {"support-bot:jailbreak": IncidentSource.GENERIC_WEBHOOK}, now=now
        )["support-bot:jailbreak"]
        uow.alerts.add_alerts(
            [
                GroupAlerts(
                    alerts=alerts,
                    dedup_keys=[alert_dedup_key(alert) for alert in alerts],
                    delivery_id=delivery,
                    group_id=group.id,
                    incident_id=incident_id,
                    received_at=now,
                )
            ]
        )
        uow.commit()


def evidence_service(engine: Engine, emulator: SlackEmulator) -> EvidenceService:
    uow = UnitOfWorkFactory(engine)
    slack = SlackGateway(build_web_client(token="xoxb-test-token", base_url=emulator.api_url))
    return EvidenceService(
        uow=uow, slack=slack, audit=AuditService(uow=uow, clock=SystemClock()), clock=SystemClock()
    )


def test_evidence_preserves_record_alerts_and_messages_with_matching_digests(
    engine: Engine, config: WarroomConfig, emulator: SlackEmulator
) -> None:
    incident_id, number = declare(engine, config)
    add_alerts(engine, incident_id)
    channel = emulator.state.add_channel("inc-1-jailbreak", members=["U0COMMANDER"])
    emulator.state.add_message(
        channel, "model is answering with the system prompt", user="U0SAFETY"
    )
    emulator.state.add_message(channel, "shutting it down after approval", user="U0COMMANDER")
    with UnitOfWorkFactory(engine)() as uow:
        uow.incidents.set_channel(incident_id, channel_id=channel, channel_name="inc-1-jailbreak")
        uow.commit()

    records = evidence_service(engine, emulator).preserve(
        incident_id, reason="before containment: model_shutdown"
    )

    assert [r.kind for r in records] == [
        EvidenceKind.INCIDENT_RECORD,
        EvidenceKind.ALERTS,
        EvidenceKind.WAR_ROOM_MESSAGES,
    ]
    record, alerts, messages = records
    assert record.content["incident"]["number"] == number
    assert alerts.content["count"] == 2
    assert [a["raw"]["value"] for a in alerts.content["alerts"]] == [40, 41]
    texts = [m["text"] for m in messages.content["messages"]]
    assert texts == [
        "model is answering with the system prompt",
        "shutting it down after approval",
    ]
    assert messages.content["error"] is None

    with UnitOfWorkFactory(engine)(read_only=True) as uow:
        stored = uow.evidence.list_for(incident_id)
        entries = uow.audit.entries(incident_id)
    assert stored == records
    for item in stored:
        encoded = json.dumps(item.content, sort_keys=True, separators=(",", ":")).encode()
        assert item.sha256 == hashlib.sha256(encoded).hexdigest()
        assert item.size == len(encoded)
        assert item.is_intact()
        assert item.reason == "before containment: model_shutdown"
    assert [e.action for e in entries] == [AuditAction.DECLARED, AuditAction.EVIDENCE_PRESERVED]
    assert entries[1].detail == {
        "reason": "before containment: model_shutdown",
        "evidence": [
            {"id": r.id, "kind": r.kind.value, "sha256": r.sha256, "size": r.size} for r in records
        ],
    }
    assert verify_chain(entries).ok


def test_evidence_notes_a_war_room_the_bot_cannot_read_and_one_not_opened_yet(
    engine: Engine, config: WarroomConfig, emulator: SlackEmulator
) -> None:
    incident_id, _ = declare(engine, config)
    service = evidence_service(engine, emulator)

    declared = service.preserve(incident_id, reason="declared")
    assert declared[2].content == {"channel_id": None, "messages": [], "error": "no_war_room_yet"}
    assert declared[1].content == {"count": 0, "alerts": []}

    channel = emulator.state.add_channel("inc-2-elsewhere", bot_is_member=False)
    emulator.state.add_message(channel, "not for the bot")
    with UnitOfWorkFactory(engine)() as uow:
        uow.incidents.set_channel(incident_id, channel_id=channel, channel_name="inc-2-elsewhere")
        uow.commit()
    later = service.preserve(incident_id, reason="before containment: safe_mode")
    assert later[2].content["messages"] == []
    assert later[2].content["error"] == "not_in_channel"
    with UnitOfWorkFactory(engine)(read_only=True) as uow:
        check = verify_chain(uow.audit.entries(incident_id))
    assert (check.ok, check.count) == (True, 3)  # declared, then two preservations
