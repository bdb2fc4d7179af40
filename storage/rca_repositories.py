"""Root-cause analyses and the rule proposals learned from them.

Versions of an analysis are numbered per incident under a unique (incident, version) key;
confirming, superseding and deciding a proposal are conditional UPDATEs whose row count says
whether this caller made the change, so a double click or a second replica changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.domain.rca import (
    AlertSeen,
    CausalChain,
    Finding,
    RcaFacts,
    RcaState,
    RcaVersion,
)
from bot.domain.rule_proposals import (
    ProposalKind,
    ProposalRecord,
    ProposalState,
    RuleProposal,
)
from storage.models import (
    AlertRow,
    IncidentRow,
    MetricBaselineRow,
    RcaAnalysisRow,
    RuleProposalRow,
)
from storage.repositories import insert_unless_taken

# A concurrent analysis of the same incident took the version number: take the next one.
_VERSION_ATTEMPTS = 5


def _won(result: Any) -> bool:
    return bool(result.rowcount == 1)


def _version(row: RcaAnalysisRow) -> RcaVersion:
    return RcaVersion(
        id=row.id,
        incident_id=row.incident_id,
        version=row.version,
        state=RcaState(row.state),
        facts=RcaFacts.from_dict(row.facts),
        findings=tuple(Finding.from_dict(f) for f in row.findings),
        chain=CausalChain.from_dict(row.chain),
        created_by=row.created_by,
        created_at=row.created_at,
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        channel_id=row.channel_id,
        message_ts=row.message_ts,
    )


class RcaRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        incident_id: int,
        *,
        facts: RcaFacts,
        findings: Sequence[Finding],
        chain: CausalChain,
        created_by: str,
        now: datetime,
        confirmed: bool = False,
    ) -> RcaVersion:
        """Store the next version of the incident's analysis (confirmed by its author when
        `confirmed`, as a correction is)."""
        for _ in range(_VERSION_ATTEMPTS):
            latest = self._session.scalar(
                select(func.max(RcaAnalysisRow.version)).where(
                    RcaAnalysisRow.incident_id == incident_id
                )
            )
            row = RcaAnalysisRow(
                incident_id=incident_id,
                version=(latest or 0) + 1,
                state=(RcaState.CONFIRMED if confirmed else RcaState.PROPOSED).value,
                facts=facts.to_dict(),
                findings=[f.to_dict() for f in findings],
                chain=chain.to_dict(),
                created_by=created_by,
                created_at=now,
                confirmed_by=created_by if confirmed else None,
                confirmed_at=now if confirmed else None,
            )
            if insert_unless_taken(self._session, row):
                return _version(row)
        raise RuntimeError(f"no free analysis version for incident id {incident_id}")

    def get(self, analysis_id: int) -> RcaVersion | None:
        row = self._session.get(RcaAnalysisRow, analysis_id, populate_existing=True)
        return _version(row) if row else None

    def versions(self, incident_id: int) -> list[RcaVersion]:
        """Every version of the incident's analysis, oldest first."""
        rows = self._session.scalars(
            select(RcaAnalysisRow)
            .where(RcaAnalysisRow.incident_id == incident_id)
            .order_by(RcaAnalysisRow.version)
            .execution_options(populate_existing=True)
        )
        return [_version(row) for row in rows]

    def newest_confirmed(self, incident_id: int) -> RcaVersion | None:
        row = self._session.scalars(
            select(RcaAnalysisRow)
            .where(
                RcaAnalysisRow.incident_id == incident_id,
                RcaAnalysisRow.confirmed_at.is_not(None),
            )
            .order_by(RcaAnalysisRow.version.desc())
            .limit(1)
        ).one_or_none()
        return _version(row) if row else None

    def confirm(self, analysis_id: int, *, by: str, now: datetime) -> bool:
        """Confirm a proposed version; True for exactly one caller."""
        result = self._session.execute(
            update(RcaAnalysisRow)
            .where(
                RcaAnalysisRow.id == analysis_id,
                RcaAnalysisRow.state == RcaState.PROPOSED.value,
            )
            .values(state=RcaState.CONFIRMED.value, confirmed_by=by, confirmed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def supersede(self, analysis_id: int) -> bool:
        """Mark a version replaced by a correction; True for exactly one caller."""
        result = self._session.execute(
            update(RcaAnalysisRow)
            .where(
                RcaAnalysisRow.id == analysis_id,
                RcaAnalysisRow.state.in_([RcaState.PROPOSED.value, RcaState.CONFIRMED.value]),
            )
            .values(state=RcaState.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def set_message(self, analysis_id: int, *, channel_id: str, ts: str) -> None:
        self._session.execute(
            update(RcaAnalysisRow)
            .where(RcaAnalysisRow.id == analysis_id)
            .values(channel_id=channel_id, message_ts=ts)
            .execution_options(synchronize_session=False)
        )

    def alerts(self, incident_id: int) -> list[AlertSeen]:
        """The incident's alerts as received, oldest first."""
        rows = self._session.execute(
            select(AlertRow.source, AlertRow.title, AlertRow.starts_at, AlertRow.raw)
            .where(AlertRow.incident_id == incident_id)
            .order_by(AlertRow.starts_at, AlertRow.id)
        ).all()
        return [
            AlertSeen(source=row.source, title=row.title, starts_at=row.starts_at, raw=row.raw)
            for row in rows
        ]

    def monitored(self, models: Iterable[str]) -> frozenset[tuple[str, str]]:
        """(model, metric) pairs the anomaly detector has a baseline for."""
        names = sorted(set(models))
        if not names:
            return frozenset()
        rows = self._session.execute(
            select(MetricBaselineRow.model, MetricBaselineRow.metric).where(
                MetricBaselineRow.model.in_(names)
            )
        ).all()
        return frozenset((row.model, row.metric) for row in rows)


def _proposal(row: RuleProposalRow, number: int) -> ProposalRecord:
    return ProposalRecord(
        id=row.id,
        incident_id=row.incident_id,
        incident_number=number,
        kind=ProposalKind(row.kind),
        key=row.key,
        payload=dict(row.payload),
        rationale=row.rationale,
        state=ProposalState(row.state),
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        channel_id=row.channel_id,
        message_ts=row.message_ts,
    )


_WITH_NUMBER = select(RuleProposalRow, IncidentRow.number).join(
    IncidentRow, IncidentRow.id == RuleProposalRow.incident_id
)


class RuleProposalRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, incident_id: int, proposal: RuleProposal, *, now: datetime) -> int | None:
        """Store a proposal; None when the incident already has one with the same key."""
        row = RuleProposalRow(
            incident_id=incident_id,
            kind=proposal.kind.value,
            key=proposal.key,
            payload=proposal.payload,
            rationale=proposal.rationale,
            state=ProposalState.PROPOSED.value,
            created_at=now,
        )
        return row.id if insert_unless_taken(self._session, row) else None

    def get(self, proposal_id: int) -> ProposalRecord | None:
        found = self._session.execute(
            _WITH_NUMBER.where(RuleProposalRow.id == proposal_id).execution_options(
                populate_existing=True
            )
        ).one_or_none()
        return _proposal(found[0], found[1]) if found else None

    def decide(self, proposal_id: int, *, to: ProposalState, by: str, now: datetime) -> bool:
        """Apply or dismiss an open proposal; True for exactly one caller."""
        result = self._session.execute(
            update(RuleProposalRow)
            .where(
                RuleProposalRow.id == proposal_id,
                RuleProposalRow.state == ProposalState.PROPOSED.value,
            )
            .values(state=to.value, decided_by=by, decided_at=now)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def for_incident(self, incident_id: int) -> list[ProposalRecord]:
        """The incident's proposals, oldest first."""
        rows = self._session.execute(
            _WITH_NUMBER.where(RuleProposalRow.incident_id == incident_id).order_by(
                RuleProposalRow.id
            )
        ).all()
        return [_proposal(row[0], row[1]) for row in rows]

    def in_state(self, state: ProposalState) -> list[ProposalRecord]:
        """Every proposal in the state, oldest decision first."""
        rows = self._session.execute(
            _WITH_NUMBER.where(RuleProposalRow.state == state.value).order_by(
                RuleProposalRow.decided_at, RuleProposalRow.id
            )
        ).all()
        return [_proposal(row[0], row[1]) for row in rows]

    def count_open(self) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(RuleProposalRow)
                .where(RuleProposalRow.state == ProposalState.PROPOSED.value)
            )
            or 0
        )

    def set_message(self, proposal_id: int, *, channel_id: str, ts: str) -> None:
        self._session.execute(
            update(RuleProposalRow)
            .where(RuleProposalRow.id == proposal_id)
            .values(channel_id=channel_id, message_ts=ts)
            .execution_options(synchronize_session=False)
        )
