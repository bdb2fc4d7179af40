"""The unit of work: one transaction, rolled back unless `commit()` was called."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.communication_repositories import (
    NotificationRepository,
    RegulatoryClockRepository,
    ReminderRepository,
)
from storage.db import READ_ONLY
from storage.postmortem_repositories import (
    LessonRepository,
    MarkRepository,
    PostmortemRepository,
)
from storage.rca_repositories import RcaRepository, RuleProposalRepository
from storage.read_queries import ReadQueries
from storage.recovery_repositories import RecoveryRepository
from storage.repositories import (
    AlertRepository,
    AuditRepository,
    BaselineRepository,
    ContainmentRepository,
    EvidenceRepository,
    IncidentRepository,
    OutboundMessageRepository,
    RoleRepository,
    TimelineRepository,
)
from storage.worker_repositories import WorkerRepository


class UnitOfWork:
    incidents: IncidentRepository
    roles: RoleRepository
    timeline: TimelineRepository
    outbound: OutboundMessageRepository
    notifications: NotificationRepository
    reminders: ReminderRepository
    clocks: RegulatoryClockRepository
    recovery: RecoveryRepository
    alerts: AlertRepository
    baselines: BaselineRepository
    containment: ContainmentRepository
    audit: AuditRepository
    evidence: EvidenceRepository
    postmortems: PostmortemRepository
    marks: MarkRepository
    lessons: LessonRepository
    rca: RcaRepository
    rule_proposals: RuleProposalRepository
    workers: WorkerRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._write_lock = write_lock

    def __enter__(self) -> UnitOfWork:
        if self._write_lock is not None:
            self._write_lock.__enter__()
        self._session = self._session_factory()
        self.incidents = IncidentRepository(self._session)
        self.roles = RoleRepository(self._session)
        self.timeline = TimelineRepository(self._session)
        self.outbound = OutboundMessageRepository(self._session)
        self.notifications = NotificationRepository(self._session)
        self.reminders = ReminderRepository(self._session)
        self.clocks = RegulatoryClockRepository(self._session)
        self.recovery = RecoveryRepository(self._session)
        self.alerts = AlertRepository(self._session)
        self.baselines = BaselineRepository(self._session)
        self.containment = ContainmentRepository(self._session)
        self.audit = AuditRepository(self._session)
        self.evidence = EvidenceRepository(self._session)
        self.postmortems = PostmortemRepository(self._session)
        self.marks = MarkRepository(self._session)
        self.lessons = LessonRepository(self._session)
        self.rca = RcaRepository(self._session)
        self.rule_proposals = RuleProposalRepository(self._session)
        self.workers = WorkerRepository(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._session.rollback()
        finally:
            self._session.close()
            if self._write_lock is not None:
                self._write_lock.__exit__(None, None, None)

    def commit(self) -> None:
        self._session.commit()


class UnitOfWorkFactory:
    """Makes units of work on one engine; the only thing services hold of storage."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session_factory = sessionmaker(engine, expire_on_commit=False)
        self._read_session_factory = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time. Writers of this process queue on a lock in turn
        # order; left to SQLite's busy handler they sleep in growing steps and newcomers
        # overtake them, which showed as 2-second tails under an alert storm.
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
        # Single-statement reads answered inside Slack's ack: no session, no transaction.
        self.reads = ReadQueries(engine)

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work; `read_only` ones never wait for SQLite's write lock."""
        if read_only:
            return UnitOfWork(self._read_session_factory)
        return UnitOfWork(self._session_factory, self._write_lock)
