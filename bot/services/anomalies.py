"""Model-behaviour samples in: learn each metric's baseline, and turn anomalies into alerts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
        rules_for: Callable[[str, str], DetectionRules] | None = None,
        watch_factor: float = 1.0,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._rules = rules
        self._alerts = alerts
        self._watch_factor = watch_factor
        # The rules for one model's metric: `rules` tightened by applied lessons, if any.
        self._rules_for = rules_for or (lambda model, metric: rules)

    def observe(self, samples: list[Sample], body: Any) -> Observed:
        """Update baselines and record any anomaly as an alert, all in one transaction."""
        now = self._clock.now()
        anomalies: list[Anomaly] = []
        try:
            with self._uow() as uow:
                # A fixed order of (model, metric) locks keeps concurrent batches from
                # deadlocking one another.
                watched = {m for w in uow.recovery.active_windows(now) for m in w.models}
                for sample in sorted(samples, key=lambda s: (s.model, s.metric)):
                    stored = uow.baselines.lock(sample.model, sample.metric, now=now)
                    baseline = Baseline.from_dict(stored) if stored else None
                    rules = self._rules_for(sample.model, sample.metric)
                    if sample.model in watched:
                        # Enhanced monitoring after an incident: judged more strictly.
                        rules = replace(rules, z_threshold=rules.z_threshold * self._watch_factor)
                    learned, anomaly = observe(baseline, sample, rules)
                    uow.baselines.save(sample.model, sample.metric, learned.to_dict(), now=now)
                    if anomaly is not None:
                        anomalies.append(anomaly)
                outcome = Ingested()
                if anomalies:
                    outcome = self._alerts.ingest_in(
                        uow,
                        IncidentSource.ANOMALY_DETECTOR,
                        [anomaly_alert(a) for a in anomalies],
                        {"samples": len(samples), "anomalies": [a.to_dict() for a in anomalies]},
                        now=now,
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
