"""Reads answered inside Slack's ack: one statement, compiled once, on a pooled connection.

`/incident list` is warroom's hottest read. Through a unit of work it paid for an ORM
session, eighteen repositories, SQLAlchemy's transaction bookkeeping and, on PostgreSQL, a
BEGIN and a ROLLBACK round trip, several times what the query itself costs. A single
SELECT reads one consistent snapshot on its own (SQLite in WAL mode, PostgreSQL at any
isolation level), so these reads run in autocommit on a DBAPI connection from the engine's
pool, with no transaction around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean, Engine, Select, and_, bindparam, func, or_, select
from sqlalchemy.exc import DBAPIError

from bot.domain.incident import IncidentSummary
from bot.domain.vocabulary import IncidentSource, IncidentState, IncidentType, Severity
from storage.models import IncidentRow

_OPEN = and_(
    IncidentRow.state.in_([state.value for state in IncidentState if state.is_open]),
    # Drills stay out of the list unless asked for.
    or_(IncidentRow.source != IncidentSource.DRILL.value, bindparam("drills", type_=Boolean)),
)
OPEN_SUMMARIES = (
    select(
        IncidentRow.id,
        IncidentRow.number,
        IncidentRow.title,
        IncidentRow.incident_type,
        IncidentRow.severity,
        IncidentRow.state,
        IncidentRow.channel_id,
        # An uncorrelated subquery runs once; SQLite ran `count(*) over ()` through a
        # co-routine and a temporary table (a fifth slower).
        select(func.count()).where(_OPEN).scalar_subquery().label("total"),
    )
    .where(_OPEN)
    .order_by(IncidentRow.number.desc())
    .limit(bindparam("limit"))
)
_TYPES = {member.value: member for member in IncidentType}
_SEVERITIES = {member.value: member for member in Severity}
_STATES = {member.value: member for member in IncidentState}


class PrebuiltSelect:
    """A Core SELECT compiled once for the engine's dialect and run on a pooled DBAPI
    connection in autocommit. Only the parameters named in `defaults` may change per call;
    the values of the others (an IN list, say) are fixed at start-up."""

    def __init__(
        self, engine: Engine, statement: Select[*tuple[Any, ...]], **defaults: Any
    ) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        expanded = compiled.construct_expanded_state(defaults)
        self._engine = engine
        self._sql = expanded.statement
        processors: Mapping[str, Callable[[Any], Any]] = expanded.processors
        self._defaults = {
            name: processors[name](value) if name in processors else value
            for name, value in expanded.parameters.items()
        }
        self._order = expanded.positiontup
        self._variable = frozenset(defaults)
        self._processors = {
            name: process for name, process in processors.items() if name in defaults
        }
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        # psycopg opens a transaction before the first statement unless in autocommit; the
        # SQLite connections are in autocommit already (storage.db issues BEGIN itself).
        self._toggle_autocommit = engine.dialect.name == "postgresql"

    def rows(self, **values: Any) -> list[Sequence[Any]]:
        """All result rows, as the driver returns them (tuples, in column order)."""
        unknown = set(values) - self._variable
        if unknown:
            raise TypeError(f"not a parameter of this prebuilt select: {sorted(unknown)}")
        parameters = self._parameters(values)
        connection = self._engine.raw_connection()
        try:
            driver: Any = connection.driver_connection
            if self._toggle_autocommit:
                driver.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, parameters)
                rows = list(cursor.fetchall())
            finally:
                cursor.close()
            if self._toggle_autocommit:
                driver.autocommit = False
        except self._dbapi_error as error:
            # A connection in an unknown state does not go back to the pool.
            connection.invalidate(error)
            raise DBAPIError.instance(
                self._sql, parameters, error, self._dbapi_error, dialect=self._engine.dialect
            ) from error
        finally:
            connection.close()  # back to the pool; its reset-on-return finds nothing to undo
        return rows

    def _parameters(self, values: Mapping[str, Any]) -> Any:
        merged = {**self._defaults, **values}
        for name, process in self._processors.items():
            merged[name] = process(merged[name])
        if self._order is None:
            return merged
        return [merged[name] for name in self._order]


class ReadQueries:
    """The prebuilt reads of one engine, built at start-up."""

    def __init__(self, engine: Engine) -> None:
        self._open_summaries = PrebuiltSelect(engine, OPEN_SUMMARIES, limit=0, drills=False)

    def open_summaries(
        self, *, limit: int, drills: bool = False
    ) -> tuple[list[IncidentSummary], int]:
        """The newest `limit` open incidents (drills only if asked), and how many are open,
        in one query."""
        rows = self._open_summaries.rows(limit=limit, drills=drills)
        summaries = [
            IncidentSummary(
                id=id_,
                number=number,
                title=title,
                incident_type=_TYPES[incident_type],
                severity=_SEVERITIES[severity],
                state=_STATES[state],
                channel_id=channel_id,
            )
            for id_, number, title, incident_type, severity, state, channel_id, _ in rows
        ]
        return summaries, (rows[0][7] if rows else 0)
