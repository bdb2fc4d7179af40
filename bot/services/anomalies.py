"""Model-behaviour samples in: learn each metric's baseline, and turn anomalies into alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.clock import Clock
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.anomaly import Anomaly, Baseline, DetectionRules, Sample, observe
from bot.domain.vocabulary import IncidentSource
from bot.errors import StorageUnavailableError
from bot.services.alerts import AlertService, Ingested

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWorkFactory


@dataclass
class Observed:
    samples: int
    anomalies: list[Anomaly]
    alerts: Ingested


class AnomalyService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        rules: DetectionRules,
        alerts: AlertService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._rules = rules
        self._alerts = alerts

    def observe(self, samples: list[Sample], body: Any) -> Observed:
        """Update baselines and record any anomaly as an alert, all in one transaction."""
        now = self._clock.now()
        anomalies: list[Anomaly] = []
        try:
            with self._uow() as uow:
                # A fixed order of (model, metric) locks keeps concurrent batches from
                # deadlocking one another.
                for sample in sorted(samples, key=lambda s: (s.model, s.metric)):
                    stored = uow.baselines.lock(sample.model, sample.metric, now=now)
                    baseline = Baseline.from_dict(stored) if stored else None
                    learned, anomaly = observe(baseline, sample, self._rules)
                    uow.baselines.save(sample.model, sample.metric, learned.to_dict(), now=now)
                    if anomaly is not None:
                        anomalies.append(anomaly)
                outcome = Ingested(received=len(anomalies))
                if anomalies:
                    self._alerts.ingest_in(
                        uow,
                        IncidentSource.ANOMALY_DETECTOR,
                        [anomaly_alert(a) for a in anomalies],
                        {"samples": len(samples), "anomalies": [a.to_dict() for a in anomalies]},
                        now=now,
                        outcome=outcome,
                    )
                uow.commit()
        except (OperationalError, InterfaceError) as error:
            raise StorageUnavailableError(str(error).splitlines()[0]) from error
        return Observed(samples=len(samples), anomalies=anomalies, alerts=outcome)


def anomaly_alert(anomaly: Anomaly) -> Alert:
    """The alert an anomaly raises; its fingerprint groups recurrences into one incident."""
    return Alert(
        source=IncidentSource.ANOMALY_DETECTOR,
        fingerprint=anomaly.fingerprint,
        group_key=anomaly.fingerprint,
        status=AlertStatus.FIRING,
        title=anomaly.title,
        severity=anomaly.severity,
        starts_at=anomaly.observed_at,
        description=anomaly.description,
        indicators=anomaly.indicators,
        model=anomaly.model,
        metrics={anomaly.metric: anomaly.value},
        raw=anomaly.to_dict(),
        incident_type=anomaly.incident_type,
    )
