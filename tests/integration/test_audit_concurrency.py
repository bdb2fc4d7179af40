"""Batches of audit entries written at once by several workers on PostgreSQL: chains that
cross (one batch A then B, another B then A) wait for each other in one order, never in a
cycle that PostgreSQL would end by killing one of them as a deadlock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from bot.domain.audit import AuditAction, AuditNote, verify_chain
from bot.emulator.server import SlackEmulator
from storage.unit_of_work import UnitOfWorkFactory
from tests.integration.comms_support import (
    add_audience_channels,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration

ROUNDS = 20
WRITERS = 4


def test_crossing_batches_of_audit_entries_neither_deadlock_nor_break_a_chain(
    postgres_engine: Engine, emulator: SlackEmulator
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, postgres_engine, comms_config())
    try:
        ids = [declare_and_open(app, title=f"Chain {n}", key=f"chains:{n}").id for n in range(4)]
    finally:
        app.close()
    uow = UnitOfWorkFactory(postgres_engine)
    failures: list[BaseException] = []

    def write(order: list[int], start: threading.Barrier) -> None:
        notes = [
            AuditNote(
                incident_id=incident_id,
                actor="warroom",
                action=AuditAction.NOTIFICATION_SENT,
                detail={"n": n},
                at=datetime.now(UTC),
            )
            for n, incident_id in enumerate(order)
        ]
        start.wait()
        try:
            with uow() as unit:
                unit.audit.append_many(notes)
                unit.commit()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    for round_ in range(ROUNDS):
        start = threading.Barrier(WRITERS)
        orders = [ids if w % 2 == 0 else ids[::-1] for w in range(WRITERS)]
        writers = [threading.Thread(target=write, args=(order, start)) for order in orders]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=60)
        assert not failures, f"round {round_}: {failures[0]!r}"
    with uow(read_only=True) as unit:
        for incident_id in ids:
            entries = unit.audit.entries(incident_id)
            assert verify_chain(entries).ok
            added = [e for e in entries if e.action is AuditAction.NOTIFICATION_SENT]
            assert len(added) >= ROUNDS * WRITERS
