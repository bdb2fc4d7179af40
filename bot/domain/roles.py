"""What each role on an AI incident is responsible for."""

from __future__ import annotations

from bot.domain.vocabulary import Role

RESPONSIBILITIES: dict[Role, tuple[str, ...]] = {
    Role.INCIDENT_COMMANDER: (
        "Confirm or change the severity (`/incident severity`)",
        "Coordinate the responders and keep the war room focused",
        "Decide on containment and approve or refuse proposed actions",
        "Brief the executives and keep them informed",
    ),
    Role.AI_SAFETY_LEAD: (
        "Analyse the model's behaviour: prompts, outputs, tool calls",
        "Recommend containment: shutdown, safe mode, guardrails, rollback",
        "Assess the risk the model poses while it stays in service",
        "Design the recovery and its validation steps",
    ),
    Role.SECURITY_ANALYST: (
        "Investigate the breach or abuse and how far it reached",
        "Identify the attack vectors (injection paths, credentials, APIs)",
        "Check and tighten the security controls around the model",
        "Preserve evidence: logs, prompts, outputs, access records",
    ),
    Role.DATA_SCIENTIST: (
        "Check data quality and the training and retrieval data's integrity",
        "Measure drift on inputs and outputs against the baseline",
        "Validate the model's behaviour with an evaluation set",
        "Support the root-cause analysis with data",
    ),
    Role.COMMUNICATIONS_LEAD: (
        "Own internal messaging to teams and leadership",
        "Prepare external messaging to affected users and customers",
        "Handle media enquiries",
        "Prepare regulatory reporting with the legal advisor",
    ),
    Role.LEGAL_ADVISOR: (
        "Assess the legal implications and liability",
        "Check compliance duties and their clocks (GDPR 72 h, EU AI Act)",
        "Review every external communication before it goes out",
        "Advise on evidence preservation and disclosure",
    ),
}
