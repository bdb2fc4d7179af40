"""Repositories: domain-shaped reads and writes. They never commit; the unit of work does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.domain.alerts import Alert, GroupAlerts, GroupTally, ReceivedDelivery, stable_hash
from bot.domain.audit import (
    AuditAction,
    AuditEntry,
    AuditNote,
    EvidenceKind,
    EvidenceRecord,
    evidence_digest,
    json_object,
    next_entry,
    utc_timestamp,
)
from bot.domain.classification import Classification
from bot.domain.incident import Declaration, Incident, RoleHolder, TimelineEvent
from bot.domain.ledger import Claim
from bot.domain.vocabulary import (
    AiActCase,
    IncidentSource,
    IncidentState,
    IncidentType,
    Role,
    Severity,
)
from storage.models import (
    AlertDeliveryRow,
    AlertGroupRow,
    AlertRow,
    AuditEntryRow,
    Base,
    ContainmentActionRow,
    ContainmentDecisionRow,
    ContainmentProposalRow,
    CounterRow,
    EvidenceRow,
    IncidentRow,
    MetricBaselineRow,
    OutboundMessageRow,
    RoleAssignmentRow,
    TimelineEventRow,
)
from storage.worker_repositories import ClaimHolder, abandoned, claimant


def _insert_ignoring_conflicts(session: Session, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no INSERT ... ON CONFLICT DO NOTHING for {dialect}")


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose unique keys are free, in one statement; skip the others."""
    if rows:
        session.execute(_insert_ignoring_conflicts(session, table), rows)


def insert_unless_taken(session: Session, row: Base) -> bool:
    """Insert the row in a savepoint; False (and nothing written) when a unique key is taken.

    Uniqueness is how warroom makes duplicates impossible; the savepoint keeps the caller's
    transaction usable after the refusal."""
    try:
        with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False


INCIDENT_NUMBER = "incident_number"
_OPEN_STATES = [state.value for state in IncidentState if state.is_open]
_ROLE_RANK = {role.value: rank for rank, role in enumerate(Role)}


def to_incident(row: IncidentRow) -> Incident:
    """A plain snapshot of an incident row and its current role holders."""
    return Incident(
        id=row.id,
        number=row.number,
        title=row.title,
        description=row.description,
        incident_type=IncidentType(row.incident_type),
        severity=Severity(row.severity),
        state=IncidentState(row.state),
        reporter_id=row.reporter_id,
        source=IncidentSource(row.source),
        declared_at=row.declared_at,
        updated_at=row.updated_at,
        affected_systems=tuple(row.affected_systems or ()),
        personal_data=row.personal_data,
        public_facing=row.public_facing,
        ai_act_case=AiActCase(row.ai_act_case) if row.ai_act_case else None,
        indicators=tuple(row.indicators or ()),
        atlas=tuple(row.atlas or ()),
        owasp=tuple(row.owasp or ()),
        confidence=row.confidence,
        classified_by=row.classified_by,
        explanation=row.explanation,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        card_ts=row.card_ts,
        resolved_at=row.resolved_at,
        war_room_opened_at=row.war_room_opened_at,
        roles=tuple(
            RoleHolder(role=Role(a.role), user_id=a.user_id)
            for a in sorted(row.roles, key=lambda a: _ROLE_RANK[a.role])
        ),
    )


class IncidentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _row(self, incident_id: int) -> IncidentRow:
        row = self._session.get(IncidentRow, incident_id, populate_existing=True)
        if row is None:
            raise LookupError(f"no incident with id {incident_id}")
        return row

    def get(self, incident_id: int) -> Incident | None:
        row = self._session.get(IncidentRow, incident_id, populate_existing=True)
        return to_incident(row) if row else None

    def get_many(self, incident_ids: Iterable[int]) -> dict[int, Incident]:
        """The incidents with these ids, by id, in one query (and one for their roles)."""
        ids = sorted(set(incident_ids))
        if not ids:
            return {}
        rows = self._session.scalars(
            select(IncidentRow)
            .where(IncidentRow.id.in_(ids))
            .execution_options(populate_existing=True)
        )
        return {row.id: to_incident(row) for row in rows}

    def state_and_severity(self, incident_id: int) -> tuple[IncidentState, Severity] | None:
        """Just what alert grouping needs to know, without loading the whole incident."""
        row = self._session.execute(
            select(IncidentRow.state, IncidentRow.severity).where(IncidentRow.id == incident_id)
        ).one_or_none()
        return (IncidentState(row.state), Severity(row.severity)) if row else None

    def id_by_dedup_key(self, key: str) -> int | None:
        """The id of the incident declared under this key, if any (without loading it)."""
        found: int | None = self._session.scalar(
            select(IncidentRow.id).where(IncidentRow.dedup_key == key)
        )
        return found

    def get_by_dedup_key(self, key: str) -> Incident | None:
        row = self._session.scalar(select(IncidentRow).where(IncidentRow.dedup_key == key))
        return to_incident(row) if row else None

    def get_by_channel(self, channel_id: str) -> Incident | None:
        row = self._session.scalar(select(IncidentRow).where(IncidentRow.channel_id == channel_id))
        return to_incident(row) if row else None

    def get_by_number(self, number: int) -> Incident | None:
        row = self._session.scalar(select(IncidentRow).where(IncidentRow.number == number))
        return to_incident(row) if row else None

    def list_open(self) -> list[Incident]:
        """Open incidents with their roles, newest first."""
        rows = self._session.scalars(
            select(IncidentRow)
            .where(IncidentRow.state.in_(_OPEN_STATES))
            .order_by(IncidentRow.number.desc())
        )
        return [to_incident(row) for row in rows]

    def dedup_key(self, incident_id: int) -> str | None:
        """The key the incident was declared under (a drill's names its scenario and run)."""
        return self._session.scalar(
            select(IncidentRow.dedup_key).where(IncidentRow.id == incident_id)
        )

    def list_without_war_room(self) -> list[int]:
        """Ids of incidents whose war room has not been fully opened yet."""
        return list(
            self._session.scalars(
                select(IncidentRow.id)
                .where(IncidentRow.war_room_opened_at.is_(None))
                .order_by(IncidentRow.id)
            )
        )

    def next_number(self) -> int:
        """Take the next incident number; holds a lock on the counter until commit."""
        number: int | None = self._session.scalar(
            update(CounterRow)
            .where(CounterRow.name == INCIDENT_NUMBER)
            .values(value=CounterRow.value + 1)
            .returning(CounterRow.value)
        )
        if number is None:
            raise RuntimeError("the incident counter is missing; run `warroom db upgrade`")
        return number

    def add(
        self,
        declaration: Declaration,
        *,
        number: int,
        classification: Classification,
        now: datetime,
    ) -> int:
        """Insert the incident; raises IntegrityError when its dedup key is taken."""
        row = IncidentRow(
            number=number,
            dedup_key=declaration.dedup_key,
            title=declaration.title,
            description=declaration.description,
            incident_type=classification.incident_type.value,
            severity=classification.severity.value,
            state=IncidentState.DECLARED.value,
            reporter_id=declaration.reporter_id,
            source=declaration.source.value,
            affected_systems=list(declaration.affected_systems),
            personal_data=declaration.personal_data,
            public_facing=declaration.public_facing,
            ai_act_case=declaration.ai_act_case.value if declaration.ai_act_case else None,
            indicators=list(classification.indicators),
            atlas=list(classification.atlas),
            owasp=list(classification.owasp),
            confidence=classification.confidence,
            classified_by=classification.method,
            explanation=classification.explanation,
            declared_at=now,
            updated_at=now,
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def set_severity(self, incident_id: int, severity: Severity, *, now: datetime) -> None:
        row = self._row(incident_id)
        row.severity = severity.value
        row.updated_at = now

    def move_state(
        self, incident_id: int, *, to: IncidentState, when: IncidentState, now: datetime
    ) -> bool:
        """Change the state only if it still is `when`; True if this call changed it."""
        values: dict[str, Any] = {"state": to.value, "updated_at": now}
        if to is IncidentState.RESOLVED:
            values["resolved_at"] = now
        result = self._session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.state == when.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def set_flags(
        self,
        incident_id: int,
        *,
        personal_data: bool | None = None,
        public_facing: bool | None = None,
        ai_act_case: AiActCase | None = None,
        now: datetime,
    ) -> None:
        """Set the exposure flags given (a flag is never cleared here: telling is not undone)."""
        row = self._row(incident_id)
        if personal_data:
            row.personal_data = True
        if public_facing:
            row.public_facing = True
        if ai_act_case is not None:
            row.ai_act_case = ai_act_case.value
        row.updated_at = now

    def set_channel(self, incident_id: int, *, channel_id: str, channel_name: str) -> None:
        row = self._row(incident_id)
        row.channel_id = channel_id
        row.channel_name = channel_name

    def set_card(self, incident_id: int, *, card_ts: str) -> None:
        self._row(incident_id).card_ts = card_ts

    def mark_war_room_opened(self, incident_id: int, *, now: datetime) -> None:
        row = self._row(incident_id)
        row.war_room_opened_at = now
        row.war_room_lease_until = None

    def take_war_room_lease(
        self,
        incident_id: int,
        *,
        now: datetime,
        until: datetime,
        holder: ClaimHolder | None = None,
    ) -> bool:
        """Claim the right to open the war room; False if another worker holds a live lease
        (one whose worker, when it names one, still beats)."""
        free = abandoned(
            or_(
                IncidentRow.war_room_lease_until.is_(None),
                IncidentRow.war_room_lease_until < now,
            ),
            IncidentRow.war_room_lease_by,
            holder,
        )
        result = self._session.execute(
            update(IncidentRow)
            .where(
                IncidentRow.id == incident_id,
                IncidentRow.war_room_opened_at.is_(None),
                free,
            )
            .values(
                war_room_lease_until=until,
                war_room_lease_by=claimant(holder),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release_war_room_lease(self, incident_id: int) -> None:
        self._row(incident_id).war_room_lease_until = None


class RoleRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_holders(
        self, incident_id: int, holders: dict[Role, str], *, assigned_by: str, now: datetime
    ) -> None:
        """The first holders of a new incident's roles, in one statement."""
        if holders:
            self._session.execute(
                insert(_ROLES_TABLE),
                [
                    {
                        "incident_id": incident_id,
                        "role": role.value,
                        "user_id": user_id,
                        "assigned_by": assigned_by,
                        "assigned_at": now,
                    }
                    for role, user_id in holders.items()
                ],
            )

    def assign(
        self, incident_id: int, role: Role, user_id: str, *, assigned_by: str, now: datetime
    ) -> str | None:
        """Make `user_id` the holder of the role; returns the previous holder, if any."""
        row = self._session.scalar(
            select(RoleAssignmentRow).where(
                RoleAssignmentRow.incident_id == incident_id,
                RoleAssignmentRow.role == role.value,
            )
        )
        if row is None:
            self._session.add(
                RoleAssignmentRow(
                    incident_id=incident_id,
                    role=role.value,
                    user_id=user_id,
                    assigned_by=assigned_by,
                    assigned_at=now,
                )
            )
            self._session.flush()
            return None
        previous = row.user_id
        row.user_id, row.assigned_by, row.assigned_at = user_id, assigned_by, now
        self._session.flush()
        return previous


_INSERT_TIMELINE = insert(cast(Table, TimelineEventRow.__table__))
_ROLES_TABLE = cast(Table, RoleAssignmentRow.__table__)


class TimelineRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_many(self, events: list[TimelineEvent]) -> None:
        """Several events in one statement."""
        if events:
            self._session.execute(
                _INSERT_TIMELINE,
                [
                    {
                        "incident_id": event.incident_id,
                        "occurred_at": event.occurred_at,
                        "kind": event.kind,
                        "actor_id": event.actor_id,
                        "summary": event.summary,
                        "data": event.data,
                    }
                    for event in events
                ],
            )

    def add(
        self,
        incident_id: int,
        *,
        kind: str,
        actor_id: str,
        summary: str,
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> None:
        # Core insert: nothing reads the row back as an entity, and the ORM flush of one new
        # row costs several times the statement (every war-room step and delivery adds one).
        self._session.execute(
            _INSERT_TIMELINE,
            {
                "incident_id": incident_id,
                "occurred_at": now,
                "kind": kind,
                "actor_id": actor_id,
                "summary": summary,
                "data": data or {},
            },
        )

    def list_for_many(self, incident_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """`list_for` of several incidents in one query, by incident id."""
        events: dict[int, list[dict[str, Any]]] = {incident_id: [] for incident_id in incident_ids}
        if not events:
            return events
        row = TimelineEventRow
        rows = self._session.execute(
            select(row.incident_id, row.occurred_at, row.kind, row.actor_id, row.summary, row.data)
            .where(row.incident_id.in_(sorted(events)))
            .order_by(row.incident_id, row.occurred_at, row.id)
        )
        for found in rows:
            events[found.incident_id].append(
                {
                    "occurred_at": found.occurred_at,
                    "kind": found.kind,
                    "actor_id": found.actor_id,
                    "summary": found.summary,
                    "data": found.data,
                }
            )
        return events

    def list_for(self, incident_id: int) -> list[dict[str, Any]]:
        rows = self._session.scalars(
            select(TimelineEventRow)
            .where(TimelineEventRow.incident_id == incident_id)
            .order_by(TimelineEventRow.occurred_at, TimelineEventRow.id)
        )
        return [
            {
                "occurred_at": row.occurred_at,
                "kind": row.kind,
                "actor_id": row.actor_id,
                "summary": row.summary,
                "data": row.data,
            }
            for row in rows
        ]


class OutboundMessageRepository:
    """A ledger of Slack side effects: claim a key before acting, mark it sent after."""

    CLAIMED, SENT, FAILED = "claimed", "sent", "failed"

    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(
        self,
        incident_id: int,
        key: str,
        *,
        now: datetime,
        stale_before: datetime,
        max_attempts: int,
        holder: ClaimHolder | None = None,
    ) -> Claim:
        """Whether this caller may perform the side effect named `key` now, and if not, why."""
        by = claimant(holder)
        # One statement, no savepoint; RETURNING says whether the row went in (psycopg's
        # rowcount is -1 for it).
        first = (
            _insert_ignoring_conflicts(self._session, cast(Table, OutboundMessageRow.__table__))
            .values(
                incident_id=incident_id,
                key=key,
                state=self.CLAIMED,
                attempts=1,
                claimed_at=now,
                claimed_by=by,
            )
            .returning(OutboundMessageRow.id)
        )
        if self._session.execute(first).first() is not None:
            return Claim.CLAIMED
        # Taken over only when a previous attempt failed or its worker died holding it.
        takeovers = (
            (OutboundMessageRow.state == self.FAILED, Claim.CLAIMED),
            (
                (OutboundMessageRow.state == self.CLAIMED)
                & abandoned(
                    OutboundMessageRow.claimed_at < stale_before,
                    OutboundMessageRow.claimed_by,
                    holder,
                ),
                Claim.RECOVERED,
            ),
        )
        for condition, outcome in takeovers:
            result = self._session.execute(
                update(OutboundMessageRow)
                .where(
                    OutboundMessageRow.incident_id == incident_id,
                    OutboundMessageRow.key == key,
                    OutboundMessageRow.attempts < max_attempts,
                    condition,
                )
                .values(
                    state=self.CLAIMED,
                    claimed_at=now,
                    claimed_by=by,
                    attempts=OutboundMessageRow.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return outcome
        row = self._session.scalar(
            select(OutboundMessageRow).where(
                OutboundMessageRow.incident_id == incident_id, OutboundMessageRow.key == key
            )
        )
        assert row is not None
        if row.state == self.SENT:
            return Claim.DONE
        if row.attempts >= max_attempts and row.state == self.FAILED:
            return Claim.EXHAUSTED
        return Claim.BUSY

    def claim_many(
        self,
        keys: Sequence[tuple[int, str]],
        *,
        now: datetime,
        stale_before: datetime,
        max_attempts: int,
        holder: ClaimHolder | None = None,
    ) -> dict[tuple[int, str], tuple[Claim, datetime | None]]:
        """`claim` for many (incident id, key) side effects at once, each with when it was
        claimed before (None if never). Keys never claimed cost one read and one insert
        between them; the others (a retry, a takeover) are claimed one by one."""
        if not keys:
            return {}
        row = OutboundMessageRow
        before: dict[tuple[int, str], datetime] = {
            (found.incident_id, found.key): found.claimed_at
            for found in self._session.execute(
                select(row.incident_id, row.key, row.claimed_at).where(
                    tuple_(row.incident_id, row.key).in_(list(keys))
                )
            )
        }
        unseen = [key for key in dict.fromkeys(keys) if key not in before]
        inserted: set[tuple[int, str]] = set()
        if unseen:
            # Another worker may insert the same key meanwhile: it keeps it, and this caller
            # learns why from `claim` below.
            statement = _insert_ignoring_conflicts(
                self._session, cast(Table, row.__table__)
            ).values(
                [
                    {
                        "incident_id": incident_id,
                        "key": key,
                        "state": self.CLAIMED,
                        "attempts": 1,
                        "claimed_at": now,
                        "claimed_by": claimant(holder),
                    }
                    for incident_id, key in unseen
                ]
            )
            inserted = {
                (found.incident_id, found.key)
                for found in self._session.execute(statement.returning(row.incident_id, row.key))
            }
        return {
            key: (
                Claim.CLAIMED
                if key in inserted
                else self.claim(
                    key[0],
                    key[1],
                    now=now,
                    stale_before=stale_before,
                    max_attempts=max_attempts,
                    holder=holder,
                ),
                before.get(key),
            )
            for key in keys
        }

    def mark_sent(
        self, incident_id: int, key: str, *, now: datetime, channel_id: str | None, ts: str | None
    ) -> None:
        self._session.execute(
            update(OutboundMessageRow)
            .where(OutboundMessageRow.incident_id == incident_id, OutboundMessageRow.key == key)
            .values(state=self.SENT, sent_at=now, channel_id=channel_id, ts=ts, error=None)
            .execution_options(synchronize_session=False)
        )

    def mark_many_sent(
        self, sent: Sequence[tuple[int, str, str | None, str | None]], *, now: datetime
    ) -> None:
        """`mark_sent` for many (incident id, key, channel id, ts) side effects at once."""
        if not sent:
            return
        table = cast(Table, OutboundMessageRow.__table__)
        self._session.execute(
            update(table)
            .where(
                table.c.incident_id == bindparam("b_incident_id"),
                table.c.key == bindparam("b_key"),
            )
            .values(
                state=self.SENT,
                sent_at=now,
                channel_id=bindparam("b_channel_id"),
                ts=bindparam("b_ts"),
                error=None,
            ),
            [
                {"b_incident_id": incident_id, "b_key": key, "b_channel_id": channel, "b_ts": ts}
                for incident_id, key, channel, ts in sent
            ],
        )

    def mark_failed(self, incident_id: int, key: str, *, error: str) -> None:
        self._session.execute(
            update(OutboundMessageRow)
            .where(OutboundMessageRow.incident_id == incident_id, OutboundMessageRow.key == key)
            .values(state=self.FAILED, error=error[:2000])
            .execution_options(synchronize_session=False)
        )

    def claimed_at(self, incident_id: int, key: str) -> datetime | None:
        """When the side effect was last claimed, if it ever was."""
        claimed: datetime | None = self._session.scalar(
            select(OutboundMessageRow.claimed_at).where(
                OutboundMessageRow.incident_id == incident_id, OutboundMessageRow.key == key
            )
        )
        return claimed

    def sent(self, incident_id: int, key: str) -> dict[str, str | None] | None:
        """Where and when the side effect was made, if it was."""
        row = self._session.scalar(
            select(OutboundMessageRow).where(
                OutboundMessageRow.incident_id == incident_id,
                OutboundMessageRow.key == key,
                OutboundMessageRow.state == self.SENT,
            )
        )
        return {"channel_id": row.channel_id, "ts": row.ts} if row else None


@dataclass(frozen=True)
class AlertGroup:
    id: int
    group_key: str
    incident_id: int | None
    generation: int
    alert_count: int
    # The incident's state and severity, read with the group (None without an incident).
    incident_state: IncidentState | None = None
    incident_severity: Severity | None = None


# Bound on the values of one IN (...) list.
_IN_CHUNK = 500
_ALERTS_TABLE = cast(Table, AlertRow.__table__)
_GROUPS_TABLE = cast(Table, AlertGroupRow.__table__)
_DELIVERIES_TABLE = cast(Table, AlertDeliveryRow.__table__)
# Built once: every delivery runs these, and building a statement costs more than running it.
# Sorted, so two writers naming overlapping groups lock them in the same order (PostgreSQL
# locks the rows after the sort).
_LOCK_GROUPS = (
    select(
        AlertGroupRow.id,
        AlertGroupRow.group_key,
        AlertGroupRow.incident_id,
        AlertGroupRow.generation,
        AlertGroupRow.alert_count,
        IncidentRow.state,
        IncidentRow.severity,
    )
    .outerjoin(IncidentRow, IncidentRow.id == AlertGroupRow.incident_id)
    .where(AlertGroupRow.group_key.in_(bindparam("group_keys", expanding=True)))
    .order_by(AlertGroupRow.group_key)
    .with_for_update(of=AlertGroupRow)
)
_KNOWN_DEDUP_KEYS = select(AlertRow.dedup_key).where(
    AlertRow.dedup_key.in_(bindparam("keys", expanding=True))
)
# On the table, not the entity: run with many rows it is a plain executemany, where the ORM
# would want a bulk update by primary key.
_COUNT_GROUP_ALERTS = (
    update(_GROUPS_TABLE)
    .where(_GROUPS_TABLE.c.id == bindparam("group_id"))
    .values(
        alert_count=_GROUPS_TABLE.c.alert_count + bindparam("added"),
        updated_at=bindparam("now"),
        pending_firing=_GROUPS_TABLE.c.pending_firing + bindparam("firing"),
        pending_resolved=_GROUPS_TABLE.c.pending_resolved + bindparam("resolved"),
    )
)
_NEW_GROUP_GENERATION = (
    update(AlertGroupRow)
    .where(AlertGroupRow.id == bindparam("group_id"))
    .values(
        alert_count=AlertGroupRow.alert_count + bindparam("added"),
        updated_at=bindparam("now"),
        incident_id=bindparam("incident_id"),
        generation=AlertGroupRow.generation + 1,
        pending_firing=0,
        pending_resolved=0,
        last_summary_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)
_INSERT_DELIVERIES = insert(_DELIVERIES_TABLE).returning(
    _DELIVERIES_TABLE.c.id, sort_by_parameter_order=True
)
_INSERT_ALERTS = insert(_ALERTS_TABLE)


def _group(row: Any) -> AlertGroup:
    return AlertGroup(
        id=row.id,
        group_key=row.group_key,
        incident_id=row.incident_id,
        generation=row.generation,
        alert_count=row.alert_count,
        incident_state=IncidentState(row.state) if row.state is not None else None,
        incident_severity=Severity(row.severity) if row.severity is not None else None,
    )


class AlertRepository:
    """Deliveries, alerts and their groups. A group's row lock serialises its deliveries."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record_deliveries(self, deliveries: list[ReceivedDelivery]) -> list[int]:
        """Keep each body as received; the ids come back in the order given."""
        if not deliveries:
            return []
        rows = self._session.execute(
            _INSERT_DELIVERIES,
            [
                {
                    "source": delivery.source.value,
                    "received_at": delivery.received_at,
                    "body": delivery.body
                    if isinstance(delivery.body, dict)
                    else {"body": delivery.body},
                    "alert_count": delivery.alert_count,
                    "new_alerts": delivery.new_alerts,
                }
                for delivery in deliveries
            ],
        )
        return [int(delivery_id) for delivery_id in rows.scalars()]

    def lock_groups(
        self, sources: dict[str, IncidentSource], *, now: datetime
    ) -> dict[str, AlertGroup]:
        """The groups by key (each with its incident's state), created if new, locked until
        commit: concurrent deliveries of a group queue here."""
        keys = sorted(sources)
        groups = self._read_groups(keys)
        missing = [key for key in keys if key not in groups]
        if missing:
            # When another writer is creating one, the insert waits for that commit and does
            # nothing for it; the lock below then finds its row.
            insert_ignoring_conflicts(
                self._session,
                _GROUPS_TABLE,
                [
                    {
                        "group_key": key,
                        "source": sources[key].value,
                        "generation": 0,
                        "alert_count": 0,
                        "pending_firing": 0,
                        "pending_resolved": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for key in missing
                ],
            )
            groups.update(self._read_groups(missing))
        return groups

    def _read_groups(self, keys: list[str]) -> dict[str, AlertGroup]:
        groups: dict[str, AlertGroup] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            rows = self._session.execute(
                _LOCK_GROUPS, {"group_keys": keys[start : start + _IN_CHUNK]}
            )
            groups.update((row.group_key, _group(row)) for row in rows)
        return groups

    def known_dedup_keys(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            found.update(
                self._session.scalars(_KNOWN_DEDUP_KEYS, {"keys": keys[start : start + _IN_CHUNK]})
            )
        return found

    def add_alerts(self, batches: list[GroupAlerts]) -> None:
        """Store the alerts raw, every batch in one statement."""
        # Core insert of plain rows: an alert storm writes thousands, no ORM identity needed.
        rows = [
            {
                "dedup_key": key,
                "delivery_id": batch.delivery_id,
                "group_id": batch.group_id,
                "incident_id": batch.incident_id,
                "source": alert.source.value,
                "fingerprint": alert.fingerprint[:255],
                "status": alert.status.value,
                "title": alert.title[:300],
                "severity": alert.severity.value,
                "starts_at": alert.starts_at,
                "received_at": batch.received_at,
                "raw": alert.raw,
            }
            for batch in batches
            for key, alert in zip(batch.dedup_keys, batch.alerts, strict=True)
        ]
        if rows:
            self._session.execute(_INSERT_ALERTS, rows)

    def count_alerts(self, tallies: list[GroupTally]) -> None:
        """Add each group's new alerts to its counts (and to what its war room has not
        heard of yet)."""
        if not tallies:
            return
        self._session.execute(
            _COUNT_GROUP_ALERTS,
            [
                {
                    "group_id": tally.group_id,
                    "now": tally.at,
                    "added": tally.added,
                    "firing": tally.pending_firing,
                    "resolved": tally.pending_resolved,
                }
                for tally in tallies
            ],
        )

    def start_generation(
        self, group_id: int, *, incident_id: int, added: int, now: datetime
    ) -> None:
        """The group now belongs to `incident_id`; its earlier alerts and these `added`
        count as told (the new war room's card tells them)."""
        self._session.execute(
            _NEW_GROUP_GENERATION,
            {"group_id": group_id, "now": now, "added": added, "incident_id": incident_id},
        )

    def first_alert_at(self, incident_id: int) -> datetime | None:
        """When the earliest alert attached to the incident started."""
        return self._session.scalar(
            select(func.min(AlertRow.starts_at)).where(AlertRow.incident_id == incident_id)
        )

    def groups_due_a_summary(
        self, *, not_told_since: datetime, among: list[int] | None = None
    ) -> list[int]:
        """Groups with alerts the war room has not heard of, last told before the cut-off,
        whose war room has a channel (of `among` when given)."""
        query = (
            select(AlertGroupRow.id)
            .join(IncidentRow, IncidentRow.id == AlertGroupRow.incident_id)
            .where(
                (AlertGroupRow.pending_firing + AlertGroupRow.pending_resolved) > 0,
                IncidentRow.channel_id.is_not(None),
                or_(
                    AlertGroupRow.last_summary_at.is_(None),
                    AlertGroupRow.last_summary_at <= not_told_since,
                ),
            )
            .order_by(AlertGroupRow.id)
        )
        if among is not None:
            query = query.where(AlertGroupRow.id.in_(among))
        return list(self._session.scalars(query))

    def take_summary(
        self, group_id: int, *, now: datetime, not_told_since: datetime
    ) -> AlertSummary | None:
        """Claim the group's pending alerts for one war-room summary (at most one a minute)."""
        row = self._session.scalars(
            select(AlertGroupRow)
            .where(AlertGroupRow.id == group_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None or row.incident_id is None:
            return None
        if row.pending_firing + row.pending_resolved == 0:
            return None
        if row.last_summary_at is not None and row.last_summary_at > not_told_since:
            return None
        since = row.last_summary_at
        summary = AlertSummary(
            group_id=row.id,
            group_key=row.group_key,
            incident_id=row.incident_id,
            firing=row.pending_firing,
            resolved=row.pending_resolved,
            total=row.alert_count,
            latest=tuple(
                self._session.scalars(
                    select(AlertRow.title + " (" + AlertRow.status + ")")
                    .where(
                        AlertRow.group_id == row.id,
                        AlertRow.received_at > since if since else AlertRow.id > 0,
                    )
                    .order_by(AlertRow.id.desc())
                    .limit(5)
                )
            ),
        )
        row.pending_firing, row.pending_resolved, row.last_summary_at = 0, 0, now
        return summary

    def restore_summary(self, summary: AlertSummary) -> None:
        """Put a summary's counts back after Slack refused it, for the next pass."""
        self._session.execute(
            update(AlertGroupRow)
            .where(AlertGroupRow.id == summary.group_id)
            .values(
                pending_firing=AlertGroupRow.pending_firing + summary.firing,
                pending_resolved=AlertGroupRow.pending_resolved + summary.resolved,
                last_summary_at=None,
            )
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class AlertSummary:
    group_id: int
    group_key: str
    incident_id: int
    firing: int
    resolved: int
    total: int
    latest: tuple[str, ...]


def alert_dedup_key(alert: Alert) -> str:
    """Unique per alert occurrence within its group (see Alert.dedup_key)."""
    return stable_hash(alert.group_key, alert.dedup_key)


class BaselineRepository:
    """The anomaly detector's baselines, one row per (model, metric), locked while updated."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def lock(self, model: str, metric: str, *, now: datetime) -> dict[str, Any] | None:
        """The stored baseline (None if new), locked until commit."""
        # When another batch created it first, the lock below waits for its commit.
        insert_unless_taken(
            self._session,
            MetricBaselineRow(model=model, metric=metric, state={}, updated_at=now),
        )
        row = self._session.scalars(
            select(MetricBaselineRow)
            .where(MetricBaselineRow.model == model, MetricBaselineRow.metric == metric)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        return dict(row.state) if row.state else None

    def save(self, model: str, metric: str, state: dict[str, Any], *, now: datetime) -> None:
        self._session.execute(
            update(MetricBaselineRow)
            .where(MetricBaselineRow.model == model, MetricBaselineRow.metric == metric)
            .values(state=state, updated_at=now)
            .execution_options(synchronize_session=False)
        )


# A lost race means another writer committed an entry meanwhile; each retry sees a new head.
_APPEND_ATTEMPTS = 50


def _audit_entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        incident_id=row.incident_id,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=AuditAction(row.action),
        detail=dict(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "incident_id": entry.incident_id,
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action.value,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


class AuditRepository:
    """The hash-chained audit log. Append-only: there is no update or delete here."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _head(self, incident_id: int) -> AuditEntry | None:
        row = self._session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.incident_id == incident_id)
            .order_by(AuditEntryRow.seq.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        ).one_or_none()
        return _audit_entry(row) if row else None

    def append(
        self,
        incident_id: int,
        *,
        actor: str,
        action: AuditAction,
        detail: dict[str, Any],
        now: datetime,
    ) -> AuditEntry:
        """Chain a new entry onto the incident's head and return it.

        Two writers that read the same head both try the same seq; the unique
        (incident_id, seq) lets one in and the other, once the first commits, meets an
        IntegrityError, rolls back its savepoint and chains onto the new head.
        """
        head = self._head(incident_id)
        for _ in range(_APPEND_ATTEMPTS):
            entry = next_entry(
                head, incident_id=incident_id, actor=actor, action=action, detail=detail, at=now
            )
            try:
                with self._session.begin_nested():
                    self._insert(entry)
                return entry
            except IntegrityError:
                moved = self._head(incident_id)
                if moved is None or (head is not None and moved.seq == head.seq):
                    raise  # not a lost race (an unknown incident, say)
                head = moved
        raise RuntimeError(
            f"could not append to the audit log of incident id {incident_id} "
            f"after {_APPEND_ATTEMPTS} attempts"
        )

    def start(
        self,
        incident_id: int,
        *,
        actor: str,
        action: AuditAction,
        detail: dict[str, Any],
        now: datetime,
    ) -> AuditEntry:
        """The first entry of an incident inserted in this same transaction: nobody else can
        have chained onto it yet, so there is no head to read and no race to lose."""
        entry = next_entry(
            None, incident_id=incident_id, actor=actor, action=action, detail=detail, at=now
        )
        self._insert(entry)
        return entry

    def _insert(self, entry: AuditEntry) -> None:
        self._session.execute(insert(AuditEntryRow), _audit_row(entry))

    def append_many(self, notes: Sequence[AuditNote]) -> None:
        """`append` for many entries: their incidents' heads read in one query, each chain
        extended in memory, the entries inserted together. Should another writer have moved
        a head meanwhile, the batch is undone and appended entry by entry, as `append` does."""
        if not notes:
            return
        heads = self._heads({note.incident_id for note in notes})
        entries: list[AuditEntry] = []
        for note in notes:
            entry = next_entry(
                heads.get(note.incident_id),
                incident_id=note.incident_id,
                actor=note.actor,
                action=note.action,
                detail=note.detail,
                at=note.at,
            )
            heads[note.incident_id] = entry
            entries.append(entry)
        # Inserted in (incident, seq) order: two batches that extend the same chains then
        # wait for each other in one order (PostgreSQL waits on the unique key), never in a
        # cycle, which PostgreSQL ends as a deadlock.
        entries.sort(key=lambda entry: (entry.incident_id, entry.seq))
        try:
            with self._session.begin_nested():
                self._session.execute(
                    insert(AuditEntryRow), [_audit_row(entry) for entry in entries]
                )
        except IntegrityError:
            for note in sorted(notes, key=lambda note: note.incident_id):
                self.append(
                    note.incident_id,
                    actor=note.actor,
                    action=note.action,
                    detail=dict(note.detail),
                    now=note.at,
                )

    def _heads(self, incident_ids: set[int]) -> dict[int, AuditEntry]:
        latest = (
            select(AuditEntryRow.incident_id, func.max(AuditEntryRow.seq).label("seq"))
            .where(AuditEntryRow.incident_id.in_(sorted(incident_ids)))
            .group_by(AuditEntryRow.incident_id)
            .subquery()
        )
        rows = self._session.scalars(
            select(AuditEntryRow)
            .join(
                latest,
                (AuditEntryRow.incident_id == latest.c.incident_id)
                & (AuditEntryRow.seq == latest.c.seq),
            )
            .execution_options(populate_existing=True)
        )
        return {row.incident_id: _audit_entry(row) for row in rows}

    def entries(self, incident_id: int) -> list[AuditEntry]:
        """The incident's chain in seq order."""
        rows = self._session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.incident_id == incident_id)
            .order_by(AuditEntryRow.seq)
            .execution_options(populate_existing=True)
        )
        return [_audit_entry(row) for row in rows]


def _evidence(row: EvidenceRow) -> EvidenceRecord:
    return EvidenceRecord(
        id=row.id,
        incident_id=row.incident_id,
        kind=EvidenceKind(row.kind),
        taken_at=row.taken_at,
        reason=row.reason,
        content=dict(row.content),
        sha256=row.sha256,
        size=row.size,
    )


class EvidenceRepository:
    """Preserved snapshots with their SHA-256 digests, and the raw reads they are taken from."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        incident_id: int,
        *,
        kind: EvidenceKind,
        reason: str,
        content: dict[str, Any],
        now: datetime,
    ) -> EvidenceRecord:
        """Store the content with the digest of its canonical JSON."""
        plain = json_object(content)
        sha256, size = evidence_digest(plain)
        row = EvidenceRow(
            incident_id=incident_id,
            kind=kind.value,
            taken_at=now,
            reason=reason[:200],
            content=plain,
            sha256=sha256,
            size=size,
        )
        self._session.add(row)
        self._session.flush()
        return _evidence(row)

    def list_for(self, incident_id: int) -> list[EvidenceRecord]:
        rows = self._session.scalars(
            select(EvidenceRow)
            .where(EvidenceRow.incident_id == incident_id)
            .order_by(EvidenceRow.id)
            .execution_options(populate_existing=True)
        )
        return [_evidence(row) for row in rows]

    def raw_alerts(self, incident_id: int) -> list[dict[str, Any]]:
        """Every alert row of the incident as received, oldest first, in JSON types."""
        rows = self._session.execute(
            select(
                AlertRow.id,
                AlertRow.source,
                AlertRow.fingerprint,
                AlertRow.status,
                AlertRow.title,
                AlertRow.severity,
                AlertRow.starts_at,
                AlertRow.received_at,
                AlertRow.delivery_id,
                AlertRow.raw,
            )
            .where(AlertRow.incident_id == incident_id)
            .order_by(AlertRow.id)
        ).all()
        return [
            {
                "id": row.id,
                "source": row.source,
                "fingerprint": row.fingerprint,
                "status": row.status,
                "title": row.title,
                "severity": row.severity,
                "starts_at": utc_timestamp(row.starts_at),
                "received_at": utc_timestamp(row.received_at),
                "delivery_id": row.delivery_id,
                "raw": row.raw,
            }
            for row in rows
        ]


@dataclass(frozen=True)
class ContainmentActionRecord:
    id: int
    proposal_id: int
    incident_id: int
    kind: str
    state: str
    idempotency_key: str
    target: str
    target_override: str | None
    target_needed: bool
    manual: bool
    emergency: bool
    role: str
    reason: str
    expected_impact: str
    atlas: tuple[str, ...]
    approvals_needed: int
    approvers: tuple[str, ...]
    rejected_by: tuple[str, ...]
    result: dict[str, Any]


@dataclass(frozen=True)
class ContainmentProposalRecord:
    id: int
    incident_id: int
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    channel_id: str | None
    message_ts: str | None
    residual: dict[str, Any]
    actions: tuple[ContainmentActionRecord, ...]


class ContainmentRepository:
    """Proposals, their actions and every person's decision on them."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add_proposal(
        self, incident_id: int, *, proposed_by: str, now: datetime, expires_at: datetime
    ) -> int:
        row = ContainmentProposalRow(
            incident_id=incident_id,
            proposed_by=proposed_by,
            proposed_at=now,
            expires_at=expires_at,
            residual={},
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def add_action(
        self, proposal_id: int, incident_id: int, *, now: datetime, **fields: Any
    ) -> int:
        row = ContainmentActionRow(
            proposal_id=proposal_id,
            incident_id=incident_id,
            updated_at=now,
            result={},
            **fields,
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def set_message(self, proposal_id: int, *, channel_id: str, ts: str) -> None:
        self._session.execute(
            update(ContainmentProposalRow)
            .where(ContainmentProposalRow.id == proposal_id)
            .values(channel_id=channel_id, message_ts=ts)
            .execution_options(synchronize_session=False)
        )

    def set_residual(self, proposal_id: int, residual: dict[str, Any]) -> None:
        self._session.execute(
            update(ContainmentProposalRow)
            .where(ContainmentProposalRow.id == proposal_id)
            .values(residual=residual)
            .execution_options(synchronize_session=False)
        )

    def proposal(self, proposal_id: int) -> ContainmentProposalRecord | None:
        row = self._session.get(ContainmentProposalRow, proposal_id, populate_existing=True)
        if row is None:
            return None
        actions = self._session.scalars(
            select(ContainmentActionRow)
            .where(ContainmentActionRow.proposal_id == proposal_id)
            .order_by(ContainmentActionRow.id)
            .execution_options(populate_existing=True)
        ).all()
        return ContainmentProposalRecord(
            id=row.id,
            incident_id=row.incident_id,
            proposed_by=row.proposed_by,
            proposed_at=row.proposed_at,
            expires_at=row.expires_at,
            channel_id=row.channel_id,
            message_ts=row.message_ts,
            residual=dict(row.residual or {}),
            actions=tuple(self._record(action) for action in actions),
        )

    def proposed_for(self, incident_ids: Iterable[int]) -> set[int]:
        """Which of these incidents have had containment proposed."""
        ids = sorted(set(incident_ids))
        if not ids:
            return set()
        return set(
            self._session.scalars(
                select(ContainmentProposalRow.incident_id)
                .where(ContainmentProposalRow.incident_id.in_(ids))
                .distinct()
            )
        )

    def latest_proposal(self, incident_id: int) -> ContainmentProposalRecord | None:
        proposal_id = self._session.scalar(
            select(ContainmentProposalRow.id)
            .where(ContainmentProposalRow.incident_id == incident_id)
            .order_by(ContainmentProposalRow.id.desc())
            .limit(1)
        )
        return self.proposal(proposal_id) if proposal_id is not None else None

    def action(self, action_id: int) -> ContainmentActionRecord | None:
        row = self._session.get(ContainmentActionRow, action_id, populate_existing=True)
        return self._record(row) if row else None

    def _record(self, row: ContainmentActionRow) -> ContainmentActionRecord:
        decisions = self._session.execute(
            select(ContainmentDecisionRow.user_id, ContainmentDecisionRow.decision)
            .where(ContainmentDecisionRow.action_id == row.id)
            .order_by(ContainmentDecisionRow.id)
        ).all()
        return ContainmentActionRecord(
            id=row.id,
            proposal_id=row.proposal_id,
            incident_id=row.incident_id,
            kind=row.kind,
            state=row.state,
            idempotency_key=row.idempotency_key,
            target=row.target,
            target_override=row.target_override,
            target_needed=row.target_needed,
            manual=row.manual,
            emergency=row.emergency,
            role=row.role,
            reason=row.reason,
            expected_impact=row.expected_impact,
            atlas=tuple(row.atlas or ()),
            approvals_needed=row.approvals_needed,
            approvers=tuple(d.user_id for d in decisions if d.decision == "approve"),
            rejected_by=tuple(d.user_id for d in decisions if d.decision == "reject"),
            result=dict(row.result or {}),
        )

    def actions_for(self, incident_id: int) -> list[ContainmentActionRecord]:
        """Every action of every proposal of the incident, oldest first."""
        rows = self._session.scalars(
            select(ContainmentActionRow)
            .where(ContainmentActionRow.incident_id == incident_id)
            .order_by(ContainmentActionRow.id)
        )
        return [self._record(row) for row in rows]

    def record_decision(
        self, action_id: int, *, user_id: str, decision: str, now: datetime
    ) -> bool:
        """False when this person already decided on this action (a double click)."""
        return insert_unless_taken(
            self._session,
            ContainmentDecisionRow(
                action_id=action_id, user_id=user_id, decision=decision, decided_at=now
            ),
        )

    def move(
        self,
        action_id: int,
        *,
        to: str,
        when: tuple[str, ...],
        now: datetime,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Change the action's state only if it is in one of `when`; True if this call did."""
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if result is not None:
            values["result"] = result
        outcome = self._session.execute(
            update(ContainmentActionRow)
            .where(ContainmentActionRow.id == action_id, ContainmentActionRow.state.in_(when))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    def set_target(self, action_id: int, *, target: str, now: datetime) -> None:
        self._session.execute(
            update(ContainmentActionRow)
            .where(ContainmentActionRow.id == action_id)
            .values(target=target, target_override=target, target_needed=False, updated_at=now)
            .execution_options(synchronize_session=False)
        )
