"""The audit chain's hashing and verification, on plain entries."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.domain.audit import (
    GENESIS_HASH,
    AuditAction,
    AuditEntry,
    canonical_json,
    entry_hash,
    evidence_digest,
    next_entry,
    to_json_value,
    verify_chain,
)
from bot.domain.incident import Incident, RoleHolder
from bot.domain.vocabulary import IncidentSource, IncidentState, IncidentType, Role, Severity

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
ACTIONS = [
    AuditAction.DECLARED,
    AuditAction.EVIDENCE_PRESERVED,
    AuditAction.PROPOSED,
    AuditAction.APPROVED,
    AuditAction.EXECUTED,
    AuditAction.SUCCEEDED,
]


def chain(length: int = 6, incident_id: int = 7) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for index in range(length):
        entries.append(
            next_entry(
                entries[-1] if entries else None,
                incident_id=incident_id,
                actor="U0COMMANDER",
                action=ACTIONS[index % len(ACTIONS)],
                detail={"step": index, "action": "model_shutdown", "model": "support-bot"},
                at=T0 + timedelta(seconds=index),
            )
        )
    return entries


def rehashed(entry: AuditEntry, **changes: object) -> AuditEntry:
    """The entry changed and given a hash that matches its new content, as a forger would."""
    changed = dataclasses.replace(entry, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(changed, hash=changed.content_hash())


def test_an_untouched_chain_is_intact() -> None:
    check = verify_chain(chain())
    assert check.ok
    assert check.count == 6
    assert check.first_broken_seq is None
    assert check.reason is None


def test_an_empty_chain_is_intact() -> None:
    check = verify_chain([])
    assert check.ok
    assert check.count == 0


def test_the_first_entry_links_to_the_genesis_hash_and_seqs_count_from_one() -> None:
    entries = chain(3)
    assert GENESIS_HASH == "0" * 64
    assert entries[0].prev_hash == GENESIS_HASH
    assert [entry.seq for entry in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash


def test_the_hash_is_sha256_over_the_documented_canonical_json() -> None:
    entry = chain(1)[0]
    expected = (
        '{"action":"declared","actor":"U0COMMANDER","at":"2026-11-26T12:00:00.123456Z",'
        '"detail":{"action":"model_shutdown","model":"support-bot","step":0},'
        '"incident_id":7,"prev_hash":"' + "0" * 64 + '","seq":1}'
    )
    assert entry.hash == hashlib.sha256(expected.encode()).hexdigest()


def test_the_hash_does_not_depend_on_key_order_or_the_time_zone_given() -> None:
    base = {"incident_id": 1, "seq": 1, "actor": "U1", "action": "approved", "prev_hash": "0"}
    one = entry_hash(**base, at=T0, detail={"a": 1, "b": [1, 2]})  # type: ignore[arg-type]
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    other = entry_hash(**base, at=paris, detail={"b": [1, 2], "a": 1})  # type: ignore[arg-type]
    assert one == other


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_entry(
            None,
            incident_id=1,
            actor="U1",
            action=AuditAction.DECLARED,
            detail={},
            at=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
        )


def test_a_detail_that_is_not_json_is_refused() -> None:
    with pytest.raises((TypeError, ValueError)):
        next_entry(
            None,
            incident_id=1,
            actor="U1",
            action=AuditAction.DECLARED,
            detail={"ratio": float("nan")},
            at=T0,
        )
    with pytest.raises(TypeError):
        next_entry(
            None,
            incident_id=1,
            actor="U1",
            action=AuditAction.DECLARED,
            detail={"o": object()},
            at=T0,
        )


def test_a_detail_reads_back_as_stored_json() -> None:
    entry = next_entry(
        None,
        incident_id=1,
        actor="U1",
        action=AuditAction.PROPOSED,
        detail={"models": ("a", "b"), "ratio": 0.1},
        at=T0,
    )
    assert entry.detail == {"models": ["a", "b"], "ratio": 0.1}
    assert verify_chain([entry]).ok


def test_a_tampered_detail_is_named() -> None:
    entries = chain()
    entries[3] = dataclasses.replace(entries[3], detail={"step": 3, "action": "safe_mode"})
    check = verify_chain(entries)
    assert not check.ok
    assert check.first_broken_seq == 4
    assert check.reason == "entry 4: hash does not match its content"


def test_a_tampered_actor_or_time_is_named() -> None:
    entries = chain()
    entries[1] = dataclasses.replace(entries[1], actor="U0INTRUDER")
    assert verify_chain(entries).first_broken_seq == 2
    entries = chain()
    entries[2] = dataclasses.replace(entries[2], at=entries[2].at + timedelta(microseconds=1))
    assert verify_chain(entries).first_broken_seq == 3


def test_a_tampered_hash_is_named() -> None:
    entries = chain()
    entries[4] = dataclasses.replace(entries[4], hash="f" * 64)
    check = verify_chain(entries)
    assert (check.first_broken_seq, check.reason) == (
        5,
        "entry 5: hash does not match its content",
    )


def test_a_forged_entry_with_a_matching_hash_breaks_the_next_link() -> None:
    entries = chain()
    entries[3] = rehashed(entries[3], detail={"step": 3, "action": "nothing happened"})
    check = verify_chain(entries)
    assert (check.first_broken_seq, check.reason) == (
        5,
        "entry 5: prev_hash does not match entry 4",
    )


def test_a_forged_prev_hash_is_named() -> None:
    entries = chain()
    entries[2] = rehashed(entries[2], prev_hash="a" * 64)
    check = verify_chain(entries)
    assert check.reason == "entry 3: prev_hash does not match entry 2"


def test_a_deleted_entry_is_named() -> None:
    entries = chain()
    del entries[2]
    check = verify_chain(entries)
    assert not check.ok
    assert check.count == 5
    assert check.first_broken_seq == 3
    assert check.reason == "entry 3 missing (seq jumps from 2 to 4)"


def test_a_deleted_last_entry_cannot_be_seen_but_a_deleted_first_one_can() -> None:
    # A chain only proves its own prefix: the head must be anchored elsewhere to see a
    # truncation (the count in the command's output lets a reader compare).
    assert verify_chain(chain()[:-1]).ok
    check = verify_chain(chain()[1:])
    assert check.first_broken_seq == 1
    assert check.reason == "entry 1 missing (the chain starts at entry 2)"


def test_the_input_order_does_not_matter_because_seq_is_hashed() -> None:
    entries = chain()
    assert verify_chain(list(reversed(entries))).ok


def test_entries_swapped_in_place_are_named() -> None:
    entries = chain()
    second, third = entries[1], entries[2]
    entries[1] = dataclasses.replace(third, seq=2)
    entries[2] = dataclasses.replace(second, seq=3)
    check = verify_chain(entries)
    assert (check.first_broken_seq, check.reason) == (
        2,
        "entry 2: hash does not match its content",
    )


def test_entries_swapped_and_rechained_break_at_the_first_untouched_link() -> None:
    entries = chain()
    second, third = entries[1], entries[2]
    moved_up = rehashed(third, seq=2, prev_hash=entries[0].hash)
    moved_down = rehashed(second, seq=3, prev_hash=moved_up.hash)
    entries[1:3] = [moved_up, moved_down]
    check = verify_chain(entries)
    assert check.reason == "entry 4: prev_hash does not match entry 3"


def test_a_genesis_entry_that_does_not_start_from_zeros_is_named() -> None:
    entries = chain()
    entries[0] = rehashed(entries[0], prev_hash="1" * 64)
    check = verify_chain(entries)
    assert (check.first_broken_seq, check.reason) == (
        1,
        "entry 1: prev_hash is not the genesis hash",
    )


def test_a_duplicated_entry_is_named() -> None:
    entries = chain()
    entries.insert(3, entries[2])
    check = verify_chain(entries)
    assert check.reason == "entry 3 appears more than once"


def test_an_entry_of_another_incident_is_named() -> None:
    entries = chain(3)
    entries[2] = chain(3, incident_id=8)[2]
    check = verify_chain(entries)
    assert check.first_broken_seq == 3
    assert check.reason == "entry 3: belongs to another incident (id 8)"


def test_an_evidence_digest_is_sha256_of_canonical_json() -> None:
    content = {"b": [1, "é"], "a": None}
    sha256, size = evidence_digest(content)
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    assert canonical_json(content) == encoded
    assert (sha256, size) == (hashlib.sha256(encoded).hexdigest(), len(encoded))


def test_an_incident_snapshot_becomes_plain_json() -> None:
    incident = Incident(
        id=1,
        number=4,
        title="Leak",
        description="",
        incident_type=IncidentType.DATA_LEAK,
        severity=Severity.CRITICAL,
        state=IncidentState.DECLARED,
        reporter_id="U1",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=T0,
        updated_at=T0,
        affected_systems=("rag",),
        roles=(RoleHolder(role=Role.INCIDENT_COMMANDER, user_id="U0COMMANDER"),),
    )
    snapshot = to_json_value(incident)
    assert isinstance(snapshot, dict)
    assert snapshot["severity"] == "critical"
    assert snapshot["declared_at"] == "2026-11-26T12:00:00.123456Z"
    assert snapshot["affected_systems"] == ["rag"]
    assert snapshot["roles"] == [{"role": "incident_commander", "user_id": "U0COMMANDER"}]
    assert json.loads(canonical_json(snapshot)) == snapshot
