"""Containment policy: which actions to propose for an incident, and what remains after them.

Actions. Seven kinds, from narrowest to broadest blast radius (how many legitimate users
notice): access revocation (suspicious users and API keys only), circuit breaker (callers of a
service that is already failing get its fallback), data isolation (features reading the
isolated data stop), MFA enforcement (every user re-authenticates), safe mode (every answer is
degraded), model shutdown (the model is gone for everyone), network isolation (whole systems
are gone). A plan lists emergencies first, then the rest narrowest first: the targeted, cheap
moves can be approved and run while the broad ones are weighed.

Policy (AR access revocation, MFA, DI data isolation, NI network isolation, CB circuit breaker,
SM safe mode, SD model shutdown; ! an emergency, proposed at once on declaration):

    type                     low      medium          high            critical
    prompt_injection         SM       SM              SM              SD
    jailbreak_attempt        SM       SM              AR MFA SM       AR MFA SD
    data_leak                DI SM    DI SM           DI SM           DI! SD
    data_poisoning           DI SM    DI SM           DI SM           DI SD
    adversarial_attack       SM       SM              SM              SD
    model_extraction         AR       AR MFA SM       AR MFA SM       AR MFA SD
    hallucination_cascade    CB SM    CB SM           CB SM           CB SD
    model_drift              SM       SM              SM              SD
    hostile_behavior         SM       SM              SM              SD!
    security_breach          AR       AR MFA NI       AR MFA NI       AR! MFA NI
    performance_degradation  CB       CB              CB              CB
    unknown_ai_incident      SM       SM              SM              SD

Rules behind the table, and the flags that add to it:

- Model level: shutdown at critical, safe mode below, for every type where the model's own
  output is the harm or the attack surface. Not for a security breach: network isolation
  already takes the systems off the network, and powering them off would destroy the volatile
  state forensics needs. Not for performance degradation: the model is slow, not wrong, and the
  circuit breaker takes it out of the request path while it recovers. Not for a low model
  extraction: revoking the harvesting keys is enough, and safe mode would degrade every user's
  outputs for background-level activity. At critical drift we stop the model rather than roll
  back, because data drift affects the previous version too.
- Access (revocation, with MFA from medium up so revoked attackers cannot sign back in; at low
  forcing MFA on every user costs more than it protects): security breaches and model
  extractions always; a jailbreak campaign; any incident whose indicators name the accounts or
  keys behind it (``ACCESS_INDICATORS``). A jailbreak is a campaign at high severity or above,
  because a jailbreak is always typed at the model by users, so confirmed damage means accounts
  succeeding repeatedly, or at any severity when an indicator says so. Prompt injections and
  adversarial inputs often arrive through planted content or from people with no account, so
  for them only an indicator adds access revocation.
- Data isolation: data leaks and data poisoning always; prompt injections, jailbreaks, security
  breaches and unknown incidents when the incident involves personal data, because those are
  the cases where an attacker may be reading it out.
- Network isolation: security breaches from medium up; a low (background) breach is contained
  by revoking the suspicious access.
- Circuit breaker: performance degradation and hallucination cascades, where it stops
  fabricated output propagating to downstream components.
- Emergencies (critical only): data leak → data isolation, hostile behaviour → model shutdown,
  security breach → access revocation. An emergency replaces the ordinary action of its kind
  rather than duplicating it: the kind, and so the idempotency key, is the same, so a later
  full plan does not run it twice.

ATLAS mitigations (v5.6.0) are cited where one fits; no ATLAS mitigation is a kill switch or a
network segmentation, so model shutdown and network isolation cite none (NIST AI RMF MANAGE 2.4
is their anchor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentType, Role, Severity


class ContainmentAction(StrEnum):
    MODEL_SHUTDOWN = "model_shutdown"
    SAFE_MODE = "safe_mode"
    ACCESS_REVOCATION = "access_revocation"
    MFA_ENFORCEMENT = "mfa_enforcement"
    DATA_ISOLATION = "data_isolation"
    NETWORK_ISOLATION = "network_isolation"
    CIRCUIT_BREAKER = "circuit_breaker"

    @property
    def label(self) -> str:
        """The action's name for people: "MFA enforcement", "Safe mode"."""
        return _ACTION_LABELS[self]


_ACTION_LABELS = {
    ContainmentAction.MODEL_SHUTDOWN: "Model shutdown",
    ContainmentAction.SAFE_MODE: "Safe mode",
    ContainmentAction.ACCESS_REVOCATION: "Access revocation",
    ContainmentAction.MFA_ENFORCEMENT: "MFA enforcement",
    ContainmentAction.DATA_ISOLATION: "Data isolation",
    ContainmentAction.NETWORK_ISOLATION: "Network isolation",
    ContainmentAction.CIRCUIT_BREAKER: "Circuit breaker",
}

# Narrowest first; see the module docstring for why each sits where it does.
BLAST_RADIUS: tuple[ContainmentAction, ...] = (
    ContainmentAction.ACCESS_REVOCATION,
    ContainmentAction.CIRCUIT_BREAKER,
    ContainmentAction.DATA_ISOLATION,
    ContainmentAction.MFA_ENFORCEMENT,
    ContainmentAction.SAFE_MODE,
    ContainmentAction.MODEL_SHUTDOWN,
    ContainmentAction.NETWORK_ISOLATION,
)

DEFAULT_ROLES: Mapping[ContainmentAction, Role] = {
    ContainmentAction.MODEL_SHUTDOWN: Role.AI_SAFETY_LEAD,
    ContainmentAction.SAFE_MODE: Role.AI_SAFETY_LEAD,
    ContainmentAction.ACCESS_REVOCATION: Role.SECURITY_ANALYST,
    ContainmentAction.MFA_ENFORCEMENT: Role.SECURITY_ANALYST,
    ContainmentAction.DATA_ISOLATION: Role.DATA_SCIENTIST,
    ContainmentAction.NETWORK_ISOLATION: Role.SECURITY_ANALYST,
    ContainmentAction.CIRCUIT_BREAKER: Role.AI_SAFETY_LEAD,
}


class ActionOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    PENDING = "pending"
    MANUAL_DONE = "manual_done"
    MANUAL_OPEN = "manual_open"

    @property
    def in_effect(self) -> bool:
        """True when the action is carried out, by an endpoint or by hand."""
        return self in (ActionOutcome.SUCCEEDED, ActionOutcome.MANUAL_DONE)


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class AtlasMitigation:
    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


# The MITRE ATLAS v5.6.0 mitigations this policy cites, names as the release spells them.
M0002 = AtlasMitigation("AML.M0002", "Passive AI Output Obfuscation")
M0004 = AtlasMitigation("AML.M0004", "Restrict Number of AI Model Queries")
M0005 = AtlasMitigation("AML.M0005", "Control Access to AI Models and Data at Rest")
M0007 = AtlasMitigation("AML.M0007", "Sanitize Training Data")
M0008 = AtlasMitigation("AML.M0008", "Validate AI Model")
M0014 = AtlasMitigation("AML.M0014", "Verify AI Artifacts")
M0015 = AtlasMitigation("AML.M0015", "Adversarial Input Detection")
M0019 = AtlasMitigation("AML.M0019", "Control Access to AI Models and Data in Production")
M0020 = AtlasMitigation("AML.M0020", "Generative AI Guardrails")
M0025 = AtlasMitigation("AML.M0025", "Maintain AI Dataset Provenance")
M0029 = AtlasMitigation("AML.M0029", "Human In-the-Loop for AI Agent Actions")
M0030 = AtlasMitigation("AML.M0030", "Restrict AI Agent Tool Invocation on Untrusted Data")
M0033 = AtlasMitigation("AML.M0033", "Input and Output Validation for AI Agent Components")
ATLAS_MITIGATIONS: Mapping[str, AtlasMitigation] = {
    m.id: m
    for m in (
        M0002,
        M0004,
        M0005,
        M0007,
        M0008,
        M0014,
        M0015,
        M0019,
        M0020,
        M0025,
        M0029,
        M0030,
        M0033,
    )
}

# Indicators that name the accounts or keys behind an incident, whatever its type: revoking
# them is then a targeted move worth proposing.
ACCESS_INDICATORS = frozenset(
    {
        "jailbreak_campaign",
        "coordinated_accounts",
        "repeated_attempts",
        "query_pattern_anomaly",
        "credential_leak",
        "unauthorized_access",
        "privilege_escalation",
        "data_exfiltration",
    }
)
# Types where an attacker may be reading personal data out, so the flag adds data isolation.
PERSONAL_DATA_EXPOSURE_TYPES = frozenset(
    {
        IncidentType.PROMPT_INJECTION,
        IncidentType.JAILBREAK_ATTEMPT,
        IncidentType.SECURITY_BREACH,
        IncidentType.UNKNOWN_AI_INCIDENT,
    }
)
EMERGENCIES: Mapping[IncidentType, ContainmentAction] = {
    IncidentType.DATA_LEAK: ContainmentAction.DATA_ISOLATION,
    IncidentType.HOSTILE_BEHAVIOR: ContainmentAction.MODEL_SHUTDOWN,
    IncidentType.SECURITY_BREACH: ContainmentAction.ACCESS_REVOCATION,
}

_NO_MODEL_LEVEL = frozenset({IncidentType.SECURITY_BREACH, IncidentType.PERFORMANCE_DEGRADATION})
_ALWAYS_ACCESS = frozenset({IncidentType.SECURITY_BREACH, IncidentType.MODEL_EXTRACTION})
_ALWAYS_DATA = frozenset({IncidentType.DATA_LEAK, IncidentType.DATA_POISONING})
_CIRCUIT_BREAKER = frozenset(
    {IncidentType.PERFORMANCE_DEGRADATION, IncidentType.HALLUCINATION_CASCADE}
)

# What the model would go on doing if left serving: completes "…would still let it …".
_HARM: Mapping[IncidentType, str] = {
    IncidentType.PROMPT_INJECTION: "act on injected instructions",
    IncidentType.JAILBREAK_ATTEMPT: "answer outside its safety policy",
    IncidentType.DATA_LEAK: "disclose data",
    IncidentType.DATA_POISONING: "serve poisoned behaviour",
    IncidentType.ADVERSARIAL_ATTACK: "be evaded by crafted inputs",
    IncidentType.MODEL_EXTRACTION: "be copied through its API",
    IncidentType.HALLUCINATION_CASCADE: "feed fabricated output to other components",
    IncidentType.MODEL_DRIFT: "make wrong decisions",
    IncidentType.HOSTILE_BEHAVIOR: "harm users with hostile output",
    IncidentType.SECURITY_BREACH: "be used by the intruder",
    IncidentType.PERFORMANCE_DEGRADATION: "fail its callers",
    IncidentType.UNKNOWN_AI_INCIDENT: "cause harm we do not yet understand",
}


@dataclass(frozen=True)
class _SafeMode:
    reason: str
    impact: str
    atlas: tuple[AtlasMitigation, ...]


# What safe mode means for each type: the degradation that addresses that harm.
_SAFE_MODE: Mapping[IncidentType, _SafeMode] = {
    IncidentType.PROMPT_INJECTION: _SafeMode(
        "Injected instructions are steering the model; stricter guardrails and no tool calls "
        "on untrusted content stop them acting.",
        "stricter filters refuse some legitimate requests, and the assistant will not use "
        "tools on retrieved or pasted content",
        (M0020, M0030),
    ),
    IncidentType.JAILBREAK_ATTEMPT: _SafeMode(
        "Safety filters are being bypassed; stricter guardrails close the bypass while the "
        "model keeps serving.",
        "more refusals on borderline requests",
        (M0020,),
    ),
    IncidentType.DATA_LEAK: _SafeMode(
        "The model is disclosing data; redacting outputs and switching off memory and "
        "retrieval of sensitive sources stops further disclosure.",
        "answers lose personalisation and retrieved context, and some fields appear redacted",
        (M0020,),
    ),
    IncidentType.DATA_POISONING: _SafeMode(
        "Poisoned data may already be in the served model; pinning the verified snapshot "
        "trained before the suspect data and pausing continuous training keeps it out.",
        "answers come from an older model version, without its recent improvements",
        (M0014,),
    ),
    IncidentType.ADVERSARIAL_ATTACK: _SafeMode(
        "Crafted inputs are evading the model; screening inputs and sending low-confidence "
        "cases to human review stops them passing.",
        "some requests are slower or held for review",
        (M0015,),
    ),
    IncidentType.MODEL_EXTRACTION: _SafeMode(
        "Outputs are being harvested to copy the model; coarser outputs and tighter per-key "
        "quotas make the copy slower and costlier.",
        "scores and probabilities are rounded or hidden, and heavy users hit quotas sooner",
        (M0004, M0002),
    ),
    IncidentType.HALLUCINATION_CASCADE: _SafeMode(
        "Fabricated output is spreading; grounding checks and human approval of agent "
        "actions stop it being acted on.",
        "answers without a source are withheld and automated actions wait for approval",
        (M0020, M0029),
    ),
    IncidentType.MODEL_DRIFT: _SafeMode(
        "The model has moved away from what was validated; serving the last validated "
        "version or the rule-based fallback stops the wrong answers.",
        "answers come from the previous version or the fallback rules",
        (M0008,),
    ),
    IncidentType.HOSTILE_BEHAVIOR: _SafeMode(
        "The model is producing hostile output; strict output filtering with a standard "
        "fallback reply stops it reaching users.",
        "some answers are replaced by a standard reply",
        (M0020,),
    ),
    IncidentType.UNKNOWN_AI_INCIDENT: _SafeMode(
        "The cause is not yet known; graceful degradation limits what the model can do "
        "while it is investigated.",
        "conservative answers and no tool use",
        (),
    ),
}


@dataclass(frozen=True)
class ProposedAction:
    """One containment action proposed for approval."""

    kind: ContainmentAction
    target: str
    reason: str
    expected_impact: str
    atlas_mitigations: tuple[AtlasMitigation, ...]
    default_role: Role
    order: int
    key: str
    emergency: bool = False
    target_needed: bool = False


@dataclass(frozen=True)
class ContainmentPlan:
    """The actions proposed for one incident, emergencies first, then narrowest first."""

    incident_id: int
    incident_number: int
    actions: tuple[ProposedAction, ...]
    proposed_at: datetime
    summary: str

    @property
    def kinds(self) -> tuple[ContainmentAction, ...]:
        """The action kinds in plan order."""
        return tuple(action.kind for action in self.actions)

    @property
    def emergencies(self) -> tuple[ProposedAction, ...]:
        """The actions to propose at once, on declaration."""
        return tuple(action for action in self.actions if action.emergency)

    def action(self, kind: ContainmentAction) -> ProposedAction | None:
        """The plan's action of this kind, if it has one."""
        return next((action for action in self.actions if action.kind is kind), None)


@dataclass(frozen=True)
class ResidualRisk:
    """What remains uncontained once a plan's actions have run (or not)."""

    level: RiskLevel
    uncovered: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class _Draft:
    kind: ContainmentAction
    target: str
    reason: str
    expected_impact: str
    atlas: tuple[AtlasMitigation, ...] = ()
    target_needed: bool = False


def propose_containment(incident: Incident, *, now: datetime | None = None) -> ContainmentPlan:
    """The containment actions the policy proposes for an incident, in the order to run them."""
    emergency_kind = (
        EMERGENCIES.get(incident.incident_type) if incident.severity is Severity.CRITICAL else None
    )
    drafts = _select(incident)
    drafts.sort(key=lambda d: (d.kind is not emergency_kind, BLAST_RADIUS.index(d.kind)))
    actions = tuple(
        _finish(draft, order, emergency=draft.kind is emergency_kind, incident=incident)
        for order, draft in enumerate(drafts, start=1)
    )
    return ContainmentPlan(
        incident_id=incident.id,
        incident_number=incident.number,
        actions=actions,
        proposed_at=now if now is not None else datetime.now(UTC),
        summary=_plan_summary(incident, actions),
    )


def is_contained(plan: ContainmentPlan, results: Mapping[ContainmentAction, ActionOutcome]) -> bool:
    """True when every action not rejected is in effect and at least one is."""
    outcomes = [results.get(action.kind, ActionOutcome.PENDING) for action in plan.actions]
    settled = all(o.in_effect or o is ActionOutcome.REJECTED for o in outcomes)
    return settled and any(o.in_effect for o in outcomes)


def assess_residual_risk(
    incident: Incident,
    plan: ContainmentPlan,
    results: Mapping[ContainmentAction, ActionOutcome],
) -> ResidualRisk:
    """The risks a plan's outcomes leave uncovered, how serious they are, and a summary line."""
    uncovered: list[str] = []
    level = RiskLevel.NONE
    for action in plan.actions:
        outcome = results.get(action.kind, ActionOutcome.PENDING)
        if outcome.in_effect:
            continue
        uncovered.append(f"{_exposure(action)}: {action.kind.label.lower()} {_OUTCOME[outcome]}")
        level = max(level, _risk_of(incident.severity, action, outcome), key=_RISK_ORDER.index)
    if not uncovered:
        summary = "Nothing left uncovered: every proposed action is in effect."
    else:
        summary = (
            f"{level.value.capitalize()} residual risk: {len(uncovered)} of "
            f"{len(plan.actions)} actions not in effect ({uncovered[0]})."
        )
    return ResidualRisk(level=level, uncovered=tuple(uncovered), summary=summary)


def _select(incident: Incident) -> list[_Draft]:
    kind, severity = incident.incident_type, incident.severity
    systems = _systems(incident)
    drafts: list[_Draft] = []

    if kind not in _NO_MODEL_LEVEL and not (
        kind is IncidentType.MODEL_EXTRACTION and severity is Severity.LOW
    ):
        drafts.append(_model_level(incident, systems))

    access_reason = _access_reason(incident)
    if access_reason is not None:
        drafts.append(_access_revocation(incident, access_reason))
        if severity is not Severity.LOW:
            drafts.append(_mfa(incident, systems))

    if kind in _ALWAYS_DATA or (incident.personal_data and kind in PERSONAL_DATA_EXPOSURE_TYPES):
        drafts.append(_data_isolation(incident, systems))

    if kind is IncidentType.SECURITY_BREACH and severity is not Severity.LOW:
        drafts.append(
            _Draft(
                ContainmentAction.NETWORK_ISOLATION,
                target=systems or "the breached systems (not named in the incident)",
                reason="Taking the breached systems off the network stops the intruder moving "
                "further or carrying data out.",
                expected_impact=f"Everyone loses {systems or 'the breached systems'} until "
                "they are restored.",
                target_needed=not systems,
            )
        )

    if kind in _CIRCUIT_BREAKER:
        drafts.append(_circuit_breaker(incident, systems))
    return drafts


def _systems(incident: Incident) -> str:
    return ", ".join(incident.affected_systems)


def _users(incident: Incident) -> str:
    return "customers" if incident.public_facing else "internal users"


def _model_level(incident: Incident, systems: str) -> _Draft:
    target = systems or "the affected model (not named in the incident)"
    if incident.severity is Severity.CRITICAL:
        return _Draft(
            ContainmentAction.MODEL_SHUTDOWN,
            target=target,
            reason=f"The model must stop serving, because safe mode would still let it "
            f"{_HARM[incident.incident_type]}.",
            expected_impact=f"{_users(incident).capitalize()} lose {systems or 'the model'} "
            "until it is restarted.",
            target_needed=not systems,
        )
    safe = _SAFE_MODE[incident.incident_type]
    return _Draft(
        ContainmentAction.SAFE_MODE,
        target=target,
        reason=safe.reason,
        expected_impact=f"{_users(incident).capitalize()} notice degraded service: {safe.impact}.",
        atlas=safe.atlas,
        target_needed=not systems,
    )


def _access_reason(incident: Incident) -> str | None:
    kind = incident.incident_type
    if kind is IncidentType.SECURITY_BREACH:
        return "Revoking the compromised credentials, sessions and keys locks the intruder out."
    if kind is IncidentType.MODEL_EXTRACTION:
        return (
            "Revoking the keys harvesting outputs and capping query rates stops the copy "
            "being completed."
        )
    named = sorted(ACCESS_INDICATORS.intersection(_normalized(incident.indicators)))
    if named:
        return (
            f"The indicators ({', '.join(named)}) point at accounts or keys; revoking them "
            "cuts the source off."
        )
    if kind is IncidentType.JAILBREAK_ATTEMPT and incident.severity.rank <= Severity.HIGH.rank:
        return (
            "A jailbreak at this severity is a campaign of accounts succeeding repeatedly; "
            "revoking them stops it."
        )
    return None


def _normalized(indicators: tuple[str, ...]) -> set[str]:
    return {name.strip().lower().replace("-", "_").replace(" ", "_") for name in indicators}


def _access_revocation(incident: Incident, reason: str) -> _Draft:
    atlas = (M0019, M0004) if incident.incident_type is IncidentType.MODEL_EXTRACTION else (M0019,)
    return _Draft(
        ContainmentAction.ACCESS_REVOCATION,
        target="suspicious users and API keys",
        reason=reason,
        expected_impact="Only the revoked accounts and keys lose access; a legitimate user "
        "caught by mistake must ask for new credentials.",
        atlas=atlas,
    )


def _mfa(incident: Incident, systems: str) -> _Draft:
    return _Draft(
        ContainmentAction.MFA_ENFORCEMENT,
        target=f"every account that can reach {systems or 'the AI service'}",
        reason="Requiring MFA stops revoked attackers signing back in with stolen or new "
        "credentials.",
        expected_impact=f"{_users(incident).capitalize()} are asked to set up or confirm MFA "
        "at their next sign-in.",
        atlas=(M0019,),
    )


def _data_isolation(incident: Incident, systems: str) -> _Draft:
    kind = incident.incident_type
    if kind is IncidentType.DATA_POISONING:
        return _Draft(
            ContainmentAction.DATA_ISOLATION,
            target=f"training and fine-tuning data feeding {systems}"
            if systems
            else "the suspect training data (not named in the incident)",
            reason="Quarantining the suspect data and pausing the pipelines that ingest it "
            "stops another model being trained on it.",
            expected_impact="No visible change for users; training and fine-tuning runs pause.",
            atlas=(M0007, M0025),
            target_needed=not systems,
        )
    if kind is IncidentType.DATA_LEAK:
        target = f"data sources reachable from {systems}" if systems else ""
        reason = (
            "Cutting the leaking data sources off from the model and from exports stops more "
            "records leaving."
        )
    else:
        target = f"personal data reachable from {systems}" if systems else ""
        reason = (
            "Personal data is involved; cutting the affected systems' access to it limits "
            "what can be read out."
        )
    return _Draft(
        ContainmentAction.DATA_ISOLATION,
        target=target or "the exposed data sources (not named in the incident)",
        reason=reason,
        expected_impact="Features that read the isolated data (memory, retrieval, exports) "
        "stop working or answer with less context.",
        atlas=(M0005,),
        target_needed=not systems,
    )


def _circuit_breaker(incident: Incident, systems: str) -> _Draft:
    service = systems or "the failing AI service"
    if incident.incident_type is IncidentType.HALLUCINATION_CASCADE:
        reason = (
            f"Opening the circuit breaker between {service} and its downstream consumers stops "
            "fabricated output propagating."
        )
        atlas: tuple[AtlasMitigation, ...] = (M0033,)
    else:
        reason = (
            f"Opening the circuit breaker in front of {service} lets callers fail fast to the "
            "fallback instead of queuing behind it."
        )
        atlas = ()
    return _Draft(
        ContainmentAction.CIRCUIT_BREAKER,
        target=systems or "the failing AI service (not named in the incident)",
        reason=reason,
        expected_impact=f"Callers get the fallback response instead of {service}'s.",
        atlas=atlas,
        target_needed=not systems,
    )


def _finish(draft: _Draft, order: int, *, emergency: bool, incident: Incident) -> ProposedAction:
    reason = draft.reason
    if emergency:
        # The emergency replaces the ordinary action of its kind; only the urgency is new.
        reason = (
            f"A critical {incident.incident_type.label.lower()} calls for this at once, on "
            f"declaration: {reason[0].lower()}{reason[1:]}"
        )
    return ProposedAction(
        kind=draft.kind,
        target=draft.target,
        reason=reason,
        expected_impact=draft.expected_impact,
        atlas_mitigations=draft.atlas,
        default_role=DEFAULT_ROLES[draft.kind],
        order=order,
        # One key per kind: the plan belongs to one incident, so kind alone is stable and an
        # emergency and the later full plan share it.
        key=draft.kind.value,
        emergency=emergency,
        target_needed=draft.target_needed,
    )


def _plan_summary(incident: Incident, actions: tuple[ProposedAction, ...]) -> str:
    described = ", ".join(
        action.kind.label.lower() + (" (emergency)" if action.emergency else "")
        for action in actions
    )
    what = f"{incident.severity.value} {incident.incident_type.label.lower()}"
    count = f"{len(actions)} containment action{'' if len(actions) == 1 else 's'}"
    summary = f"{count} for a {what}: {described}."
    needing = sum(action.target_needed for action in actions)
    if needing:
        summary = summary[:-1] + f"; {needing} need the affected system named."
    return summary


_RISK_ORDER = (RiskLevel.NONE, RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH)
_SEVERITY_RISK: Mapping[Severity, RiskLevel] = {
    Severity.CRITICAL: RiskLevel.HIGH,
    Severity.HIGH: RiskLevel.HIGH,
    Severity.MEDIUM: RiskLevel.MEDIUM,
    Severity.LOW: RiskLevel.LOW,
}
# What to call a target the incident did not name, in a line about what is still exposed.
_UNNAMED: Mapping[ContainmentAction, str] = {
    ContainmentAction.MODEL_SHUTDOWN: "the model",
    ContainmentAction.SAFE_MODE: "the model",
    ContainmentAction.NETWORK_ISOLATION: "the breached systems",
    ContainmentAction.CIRCUIT_BREAKER: "the failing service",
    ContainmentAction.ACCESS_REVOCATION: "",
    ContainmentAction.MFA_ENFORCEMENT: "",
    ContainmentAction.DATA_ISOLATION: "",
}
_OUTCOME: Mapping[ActionOutcome, str] = {
    ActionOutcome.FAILED: "failed",
    ActionOutcome.REJECTED: "rejected",
    ActionOutcome.PENDING: "still pending",
    ActionOutcome.MANUAL_OPEN: "still open as a manual step",
}


def _risk_of(severity: Severity, action: ProposedAction, outcome: ActionOutcome) -> RiskLevel:
    if outcome is ActionOutcome.REJECTED:
        # The commander chose to accept this risk, knowing the incident: one step lower.
        index = _RISK_ORDER.index(_SEVERITY_RISK[severity])
        return _RISK_ORDER[max(index - 1, 1)]
    if action.emergency:
        return RiskLevel.HIGH
    return _SEVERITY_RISK[severity]


def _exposure(action: ProposedAction) -> str:
    target = _UNNAMED[action.kind] if action.target_needed else action.target
    exposures = {
        ContainmentAction.MODEL_SHUTDOWN: f"{target} still serving",
        ContainmentAction.SAFE_MODE: f"{target} still serving without safeguards",
        ContainmentAction.ACCESS_REVOCATION: "suspicious keys and accounts still valid",
        ContainmentAction.MFA_ENFORCEMENT: "accounts can still sign in without MFA",
        ContainmentAction.DATA_ISOLATION: "exposed data still reachable",
        ContainmentAction.NETWORK_ISOLATION: f"{target} still on the network",
        ContainmentAction.CIRCUIT_BREAKER: f"callers still routed to {target}",
    }
    return exposures[action.kind]
