"""The words of the contract in ../shared/DESIGN.md: severities, types, roles, states, tiers."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """1 for critical down to 4 for low, as in sev1…sev4."""
        return _SEVERITY_RANK[self]

    @property
    def emoji(self) -> str:
        return _SEVERITY_EMOJI[self]


# Asked once per alert of a storm: a lookup, not a walk of the enum.
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity, start=1)}
_SEVERITY_EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.HIGH: ":large_orange_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.LOW: ":white_circle:",
}

# Names and sev1…sev4 aliases in one table: a failed Severity(word) raises, and alert storms
# bring thousands of monitor words ("warning", "info") that are not ours.
_SEVERITY_WORDS = {s.value: s for s in Severity} | {f"sev{s.rank}": s for s in Severity}


class IncidentType(StrEnum):
    PROMPT_INJECTION = "prompt_injection"
    JAILBREAK_ATTEMPT = "jailbreak_attempt"
    DATA_LEAK = "data_leak"
    DATA_POISONING = "data_poisoning"
    ADVERSARIAL_ATTACK = "adversarial_attack"
    MODEL_EXTRACTION = "model_extraction"
    HALLUCINATION_CASCADE = "hallucination_cascade"
    MODEL_DRIFT = "model_drift"
    HOSTILE_BEHAVIOR = "hostile_behavior"
    SECURITY_BREACH = "security_breach"
    PERFORMANCE_DEGRADATION = "performance_degradation"
    UNKNOWN_AI_INCIDENT = "unknown_ai_incident"

    @property
    def label(self) -> str:
        return _TYPE_LABELS[self]


_TYPE_LABELS = {t: t.value.replace("_", " ").capitalize() for t in IncidentType}


class Role(StrEnum):
    INCIDENT_COMMANDER = "incident_commander"
    AI_SAFETY_LEAD = "ai_safety_lead"
    SECURITY_ANALYST = "security_analyst"
    DATA_SCIENTIST = "data_scientist"
    COMMUNICATIONS_LEAD = "communications_lead"
    LEGAL_ADVISOR = "legal_advisor"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]

    @property
    def short(self) -> str:
        return _ROLE_SHORT[self]


_ROLE_LABELS = {
    Role.INCIDENT_COMMANDER: "Incident commander",
    Role.AI_SAFETY_LEAD: "AI safety lead",
    Role.SECURITY_ANALYST: "Security analyst",
    Role.DATA_SCIENTIST: "Data scientist",
    Role.COMMUNICATIONS_LEAD: "Communications lead",
    Role.LEGAL_ADVISOR: "Legal advisor",
}

_ROLE_SHORT = {
    Role.INCIDENT_COMMANDER: "commander",
    Role.AI_SAFETY_LEAD: "safety",
    Role.SECURITY_ANALYST: "security",
    Role.DATA_SCIENTIST: "data",
    Role.COMMUNICATIONS_LEAD: "comms",
    Role.LEGAL_ADVISOR: "legal",
}


class IncidentState(StrEnum):
    DECLARED = "declared"
    CONTAINED = "contained"
    RECOVERING = "recovering"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self not in (IncidentState.RESOLVED, IncidentState.CLOSED)


class NotificationTier(StrEnum):
    IMMEDIATE = "immediate"
    URGENT = "urgent"
    STANDARD = "standard"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Audience(StrEnum):
    EXECUTIVE_TEAM = "executive_team"
    SECURITY_TEAM = "security_team"
    LEGAL_TEAM = "legal_team"
    COMMUNICATIONS_TEAM = "communications_team"
    DATA_PROTECTION_OFFICER = "data_protection_officer"
    PR_TEAM = "pr_team"
    AFFECTED_USERS = "affected_users"
    CUSTOMER_SUPPORT_LEADS = "customer_support_leads"
    TECHNICAL_TEAM = "technical_team"
    REGULATORY_BODY = "regulatory_body"

    @property
    def label(self) -> str:
        return _AUDIENCE_LABELS[self]


_AUDIENCE_LABELS = {
    Audience.EXECUTIVE_TEAM: "Executive team",
    Audience.SECURITY_TEAM: "Security team",
    Audience.LEGAL_TEAM: "Legal team",
    Audience.COMMUNICATIONS_TEAM: "Communications team",
    Audience.DATA_PROTECTION_OFFICER: "Data protection officer",
    Audience.PR_TEAM: "PR team",
    Audience.AFFECTED_USERS: "Affected users",
    Audience.CUSTOMER_SUPPORT_LEADS: "Customer support leads",
    Audience.TECHNICAL_TEAM: "Technical team",
    Audience.REGULATORY_BODY: "Regulatory body",
}


class AiActCase(StrEnum):
    """Which EU AI Act Art. 73 clock a serious incident runs on (the deadlines are config)."""

    SERIOUS = "serious"  # Art. 73(2): any serious incident under Art. 3(49)
    DEATH = "death"  # Art. 73(4): the death of a person
    # Art. 73(3): a widespread infringement, or a serious and irreversible disruption of
    # critical infrastructure
    WIDESPREAD = "widespread"

    @property
    def label(self) -> str:
        return _AI_ACT_LABELS[self]


_AI_ACT_LABELS = {
    AiActCase.SERIOUS: "Serious incident (EU AI Act Art. 73(2))",
    AiActCase.DEATH: "Serious incident involving a death (EU AI Act Art. 73(4))",
    AiActCase.WIDESPREAD: (
        "Widespread infringement or critical-infrastructure disruption (EU AI Act Art. 73(3))"
    ),
}


class RegulatoryRegime(StrEnum):
    GDPR_ART33 = "gdpr_art33"
    EU_AI_ACT_ART73 = "eu_ai_act_art73"


class IncidentSource(StrEnum):
    SLASH_COMMAND = "slash_command"
    MODAL = "modal"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC_WEBHOOK = "generic_webhook"
    ANOMALY_DETECTOR = "anomaly_detector"
    DRILL = "drill"


def parse_severity(text: str) -> Severity | None:
    """A severity from its name or its sev1…sev4 alias, else None."""
    return _SEVERITY_WORDS.get(text.strip().lower())


def parse_role(text: str) -> Role | None:
    """A role from its full name or its short command form, else None."""
    word = text.strip().lower().replace("-", "_")
    for role in Role:
        if word in (role.value, role.short):
            return role
    return None


def parse_incident_type(text: str) -> IncidentType | None:
    """An incident type from its name (dashes allowed for underscores), else None."""
    word = text.strip().lower().replace("-", "_")
    try:
        return IncidentType(word)
    except ValueError:
        return None


def parse_ai_act_case(text: str) -> AiActCase | None:
    """An EU AI Act case from its name, else None (not flagged)."""
    try:
        return AiActCase(text.strip().lower())
    except ValueError:
        return None
