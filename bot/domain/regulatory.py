"""The legal reporting clocks an incident starts, when to remind about them, and the draft report.

Two regimes, each switched on by a fact recorded on the incident:

    regime                  starts when                      window (default, from awareness)
    GDPR Art. 33(1)         personal data is involved        72 hours
    EU AI Act Art. 73(2)    ai_act_case is serious           15 days
    EU AI Act Art. 73(4)    ai_act_case is death             10 days
    EU AI Act Art. 73(3)    ai_act_case is widespread        2 days

A clock counts from awareness: the moment the caller says warroom learnt the fact (the
declaration, or the change that set the flag). The due time is the conservative one, awareness
plus the window, counted in whole 24-hour periods; the statutory end of period under
Reg. 1182/71 may be later (it skips the day of the event and ends on a working day), so
alerting on this time never makes a filing late. Whether a breach is "unlikely to result in a
risk" (which lifts the GDPR duty) is the legal advisor's judgement; the clock runs until they
decide.

The legal advisor is reminded at fractions of the window (by default half, three quarters and
90 %) and once more a fixed time before the deadline (24 hours). Each reminder has a key that
is stable for the same clock and rules, so reminders can be stored as rows and claimed once.

Replanning after a change returns only clocks that are not yet running, and one exception: an
AI Act clock already running on a longer window whose case changes to a shorter one (serious,
15 days, to death, 10 days) comes back re-computed with the shorter window, still counted from
the original awareness. A running clock is never lengthened: a report owed sooner stays owed.

The draft report lists the fields the regulation asks for. What the incident record knows is
filled in; everything else is marked for the legal advisor, so the draft never invents a fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from bot.domain.incident import Incident
from bot.domain.vocabulary import AiActCase, RegulatoryRegime

GDPR_CASE = "personal_data_breach"
TO_BE_COMPLETED = "To be completed by the legal advisor"

_DEFAULT_AI_ACT_WINDOWS: Mapping[AiActCase, timedelta] = MappingProxyType(
    {
        AiActCase.SERIOUS: timedelta(days=15),
        AiActCase.DEATH: timedelta(days=10),
        AiActCase.WIDESPREAD: timedelta(days=2),
    }
)

_GDPR_BASIS = "GDPR Art. 33(1)"
_GDPR_AUTHORITY = "the supervisory authority"
_GDPR_TITLE = "GDPR personal data breach notification"
_AI_ACT_AUTHORITY = "the market surveillance authority"
_AI_ACT_BASIS = {
    AiActCase.SERIOUS: "EU AI Act Art. 73(2)",
    AiActCase.DEATH: "EU AI Act Art. 73(4)",
    AiActCase.WIDESPREAD: "EU AI Act Art. 73(3)",
}
_AI_ACT_TITLE = {
    AiActCase.SERIOUS: "EU AI Act serious incident report",
    AiActCase.DEATH: "EU AI Act serious incident report (death of a person)",
    AiActCase.WIDESPREAD: (
        "EU AI Act serious incident report (widespread infringement or "
        "critical-infrastructure disruption)"
    ),
}
_FRACTION_LABELS = {0.5: "half the time has gone", 0.75: "three quarters of the time has gone"}


@dataclass(frozen=True)
class RegulatoryRules:
    """Which clocks run, how long each window is, and when the legal advisor is reminded."""

    gdpr_enabled: bool = True
    gdpr_window: timedelta = timedelta(hours=72)
    ai_act_enabled: bool = True
    ai_act_windows: Mapping[AiActCase, timedelta] = field(
        default_factory=lambda: _DEFAULT_AI_ACT_WINDOWS
    )
    reminders: tuple[float, ...] = (0.5, 0.75, 0.9)
    final_reminder: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.gdpr_window <= timedelta(0):
            raise ValueError("the GDPR window must be positive")
        missing = [case.value for case in AiActCase if case not in self.ai_act_windows]
        if missing:
            raise ValueError(f"no EU AI Act window for {', '.join(missing)}")
        for case, window in self.ai_act_windows.items():
            if window <= timedelta(0):
                raise ValueError(f"the EU AI Act {case} window must be positive")
        for fraction in self.reminders:
            if not 0 < fraction < 1:
                raise ValueError(f"{fraction} is not a fraction between 0 and 1")
        if self.final_reminder <= timedelta(0):
            raise ValueError("the final reminder must come before the deadline")
        # A read-only copy, so a frozen rule set cannot change under a caller's feet.
        object.__setattr__(self, "ai_act_windows", MappingProxyType(dict(self.ai_act_windows)))

    def ai_act_window(self, case: AiActCase) -> timedelta:
        """How long after awareness an AI Act report of this case is due."""
        return self.ai_act_windows[case]


@dataclass(frozen=True)
class RegulatoryClock:
    """One report owed to an authority: under which rule, counted from when, due when."""

    regime: RegulatoryRegime
    case: str
    started_at: datetime
    due_at: datetime
    legal_basis: str
    authority: str
    title: str

    @property
    def window(self) -> timedelta:
        return self.due_at - self.started_at


@dataclass(frozen=True)
class ClockReminder:
    """A moment to remind the legal advisor; `key` is stable for the same clock and rules."""

    key: str
    at: datetime
    label: str


@dataclass(frozen=True)
class ReportField:
    """One entry of a draft report; `known` is False where the legal advisor must fill it."""

    name: str
    label: str
    value: str
    known: bool


def describe_clock(
    *, regime: RegulatoryRegime, case: str, started_at: datetime, due_at: datetime
) -> RegulatoryClock:
    """A clock from its stored facts, with its legal basis, authority and title filled in."""
    if regime is RegulatoryRegime.GDPR_ART33:
        if case != GDPR_CASE:
            raise ValueError(f"'{case}' is not a GDPR case; the only one is '{GDPR_CASE}'")
        basis, authority, title = _GDPR_BASIS, _GDPR_AUTHORITY, _GDPR_TITLE
    else:
        ai_case = AiActCase(case)
        basis, authority, title = _AI_ACT_BASIS[ai_case], _AI_ACT_AUTHORITY, _AI_ACT_TITLE[ai_case]
    return RegulatoryClock(
        regime=regime,
        case=case,
        started_at=started_at,
        due_at=due_at,
        legal_basis=basis,
        authority=authority,
        title=title,
    )


def _gdpr_clock(aware_at: datetime, rules: RegulatoryRules) -> RegulatoryClock:
    return describe_clock(
        regime=RegulatoryRegime.GDPR_ART33,
        case=GDPR_CASE,
        started_at=aware_at,
        due_at=aware_at + rules.gdpr_window,
    )


def _ai_act_clock(case: AiActCase, aware_at: datetime, rules: RegulatoryRules) -> RegulatoryClock:
    return describe_clock(
        regime=RegulatoryRegime.EU_AI_ACT_ART73,
        case=case.value,
        started_at=aware_at,
        due_at=aware_at + rules.ai_act_window(case),
    )


def regulatory_clock_applies(incident: Incident, rules: RegulatoryRules) -> bool:
    """True when the incident starts at least one enabled legal clock."""
    gdpr = rules.gdpr_enabled and incident.personal_data
    ai_act = rules.ai_act_enabled and incident.ai_act_case is not None
    return gdpr or ai_act


def clocks_for(
    incident: Incident, *, aware_at: datetime, rules: RegulatoryRules
) -> tuple[RegulatoryClock, ...]:
    """Every enabled clock the incident starts, counted from `aware_at`, GDPR first."""
    if aware_at.tzinfo is None:
        raise ValueError("aware_at must be timezone-aware")
    clocks: list[RegulatoryClock] = []
    if rules.gdpr_enabled and incident.personal_data:
        clocks.append(_gdpr_clock(aware_at, rules))
    if rules.ai_act_enabled and incident.ai_act_case is not None:
        clocks.append(_ai_act_clock(incident.ai_act_case, aware_at, rules))
    return tuple(clocks)


def replan_clocks(
    existing: Iterable[RegulatoryClock],
    incident: Incident,
    *,
    aware_at: datetime,
    rules: RegulatoryRules,
) -> tuple[RegulatoryClock, ...]:
    """The clocks a changed incident newly needs, plus any running AI Act clock it shortens.

    `existing` is every clock recorded for the incident, submitted or not; a clock of a regime
    already there is not started again. A new clock counts from `aware_at`. A returned clock
    whose regime is already in `existing` is a shortened AI Act clock (the case moved to one
    with a shorter window): it keeps the original `started_at`, and the caller updates that
    row's case and due time and re-plans its reminders. Clocks are never lengthened, and a
    cleared flag withdraws nothing: an obligation already counted stays counted.
    """
    running: dict[RegulatoryRegime, list[RegulatoryClock]] = {}
    for clock in existing:
        running.setdefault(clock.regime, []).append(clock)
    result: list[RegulatoryClock] = []
    for wanted in clocks_for(incident, aware_at=aware_at, rules=rules):
        held = running.get(wanted.regime)
        if not held:
            result.append(wanted)
            continue
        if wanted.regime is not RegulatoryRegime.EU_AI_ACT_ART73 or incident.ai_act_case is None:
            continue
        origin = min(clock.started_at for clock in held)
        shorter = _ai_act_clock(incident.ai_act_case, origin, rules)
        if shorter.due_at < min(clock.due_at for clock in held):
            result.append(shorter)
    return tuple(result)


def describe_duration(span: timedelta) -> str:
    """A duration in its two largest whole units, in hours below two days.

    `2 days 5 hours`, `36 hours`, `24 hours`, `3 hours 20 minutes`, `45 minutes`: a day and
    a half reads slower than 36 hours when the deadline is close.
    """
    minutes = int(abs(span).total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    if days < 2:
        days, minutes = 0, minutes + days * 24 * 60
    hours, minutes = divmod(minutes, 60)
    units = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    while units and units[0][0] == 0:
        units.pop(0)
    # The largest unit and the one below it, so 2 days and 5 minutes reads "2 days".
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in units[:2] if n]
    return " ".join(parts) if parts else "less than a minute"


def _fraction_key(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _fraction_label(fraction: float) -> str:
    return _FRACTION_LABELS.get(fraction, f"{_fraction_key(fraction)} of the time has gone")


def _before_due_key(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        # Hours read better than days for the usual 24 h and 48 h, so days only past a week.
        if seconds % size == 0 and (unit != "d" or seconds >= 7 * 86_400):
            return f"due-{seconds // size}{unit}"
    return f"due-{seconds}s"


def reminder_times(clock: RegulatoryClock, rules: RegulatoryRules) -> tuple[ClockReminder, ...]:
    """When to remind the legal advisor about the clock, soonest first.

    A reminder at each fraction of the window and one `final_reminder` before the deadline;
    those at or before the start or at or after the deadline are dropped. Where a fixed-time
    reminder falls on the same moment as a fraction (24 hours before a 2-day deadline is
    half-way) only the fixed-time one is kept: "24 hours left" says more than "half".
    """
    final = ClockReminder(
        key=_before_due_key(rules.final_reminder),
        at=clock.due_at - rules.final_reminder,
        label=f"{describe_duration(rules.final_reminder)} left",
    )
    candidates = [final] + [
        ClockReminder(
            key=_fraction_key(fraction),
            at=clock.started_at + clock.window * fraction,
            label=_fraction_label(fraction),
        )
        for fraction in sorted(rules.reminders)
    ]
    kept: dict[datetime, ClockReminder] = {}
    for reminder in candidates:
        if clock.started_at < reminder.at < clock.due_at:
            kept.setdefault(reminder.at, reminder)
    return tuple(sorted(kept.values(), key=lambda reminder: reminder.at))


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _known_or_not(name: str, label: str, value: str) -> ReportField:
    text = value.strip()
    return ReportField(name, label, text or TO_BE_COMPLETED, known=bool(text))


def _unknown(name: str, label: str) -> ReportField:
    return ReportField(name, label, TO_BE_COMPLETED, known=False)


def _events(incident: Incident) -> str:
    summary = f"{incident.incident_type.label}: {incident.title.strip()}"
    description = incident.description.strip()
    return f"{summary}\n{description}" if description else summary


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"• {line.strip()}" for line in lines if line.strip())


def _gdpr_fields(incident: Incident, contact: str, measures: Sequence[str]) -> list[ReportField]:
    return [
        _known_or_not(
            "nature",
            "Nature of the personal data breach (Art. 33(3)(a))",
            _events(incident),
        ),
        _known_or_not("affected_systems", "Systems involved", ", ".join(incident.affected_systems)),
        _unknown(
            "data_subjects",
            "Categories and approximate number of data subjects concerned (Art. 33(3)(a))",
        ),
        _unknown(
            "records",
            "Categories and approximate number of personal data records concerned (Art. 33(3)(a))",
        ),
        _known_or_not(
            "contact",
            "Name and contact details of the data protection officer or other contact point "
            "(Art. 33(3)(b))",
            contact,
        ),
        _unknown("consequences", "Likely consequences of the breach (Art. 33(3)(c))"),
        _known_or_not(
            "measures",
            "Measures taken or proposed, including mitigation of adverse effects (Art. 33(3)(d))",
            _bullets(measures),
        ),
    ]


def _ai_act_fields(
    incident: Incident, clock: RegulatoryClock, contact: str, measures: Sequence[str]
) -> list[ReportField]:
    case = AiActCase(clock.case)
    return [
        _known_or_not("provider_contact", "Provider and contact point", contact),
        _known_or_not(
            "ai_system",
            "AI system identification (affected systems)",
            ", ".join(incident.affected_systems),
        ),
        _unknown("ai_system_registration", "AI system version and EU database registration number"),
        _unknown("member_states", "Member State(s) where the incident occurred"),
        _unknown("occurred_at", "Date and time of the incident"),
        ReportField("case", "Serious incident case (Art. 3(49), Art. 73)", case.label, known=True),
        _known_or_not(
            "events", "Description of the events and the AI system's role", _events(incident)
        ),
        _unknown("causal_link", "Suspected causal link between the AI system and the harm"),
        _unknown("affected", "Persons or property affected (numbers)"),
        _known_or_not("containment", "Immediate containment measures taken", _bullets(measures)),
        _unknown("corrective_action", "Planned corrective action"),
        _unknown("report_type", "Initial or complete report (Art. 73(5))"),
    ]


def draft_report(
    incident: Incident,
    clock: RegulatoryClock,
    *,
    contact: str,
    measures: Sequence[str],
    now: datetime,
) -> tuple[ReportField, ...]:
    """The fields the regulation asks for, filled from the incident record where it knows.

    `contact` is the configured contact point, `measures` the containment taken so far and
    `now` the moment the report is drafted (or re-drafted on filing). Past the due time a
    field asks for the reasons for the delay.
    """
    head = [
        ReportField("reference", "Reference", f"Incident #{incident.number}", known=True),
        ReportField(
            "declared_at", "Declared in warroom", _moment(incident.declared_at), known=True
        ),
        ReportField("aware_at", "Time of awareness", _moment(clock.started_at), known=True),
        ReportField("notified_at", "Time of notification", _moment(now), known=True),
    ]
    if clock.regime is RegulatoryRegime.GDPR_ART33:
        body = _gdpr_fields(incident, contact, measures)
        delay_label = "Reasons for the delay (GDPR Art. 33(1))"
    else:
        body = _ai_act_fields(incident, clock, contact, measures)
        delay_label = "Reasons for the delay"
    late = [_unknown("delay_reasons", delay_label)] if now > clock.due_at else []
    return tuple(head + body + late)
