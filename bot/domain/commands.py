"""Parse the text of `/incident …` into typed commands; the grammar lives in DESIGN.md."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.containment import ContainmentAction
from bot.domain.vocabulary import (
    AiActCase,
    IncidentType,
    Role,
    Severity,
    parse_incident_type,
    parse_role,
    parse_severity,
)
from bot.errors import UsageError

SEVERITY_WORDS = "critical|high|medium|low"
ROLE_WORDS = "|".join(role.short for role in Role)

USAGE = {
    "declare": f"/incident declare [<{SEVERITY_WORDS}> <title…> [type:<type>] [model:<name>]]",
    "status": "/incident status",
    "list": "/incident list",
    "role": f"/incident role <{ROLE_WORDS}> <@user>",
    "severity": f"/incident severity <{SEVERITY_WORDS}>",
    "resolve": "/incident resolve",
    "contain": "/incident contain [target <action> <model-or-system>]",
    "update": "/incident update <what changed…>",
    "flag": "/incident flag <personal-data|public|ai-act [serious|death|widespread]>",
    "rca": "/incident rca",
    "recover": "/incident recover",
    "postmortem": "/incident postmortem",
    "rules": "/incident rules",
    "runbook": "/incident runbook",
    "drill": "/incident drill [<scenario>]",
    "help": "/incident help",
}

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_TARGET = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
_TOKEN = re.compile(r"^(type|model):(\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class ShowHelp:
    """`/incident` or `/incident help`."""


@dataclass(frozen=True)
class OpenDeclareModal:
    """`/incident declare` with nothing after it: the form."""


@dataclass(frozen=True)
class DeclareNow:
    severity: Severity
    title: str
    incident_type: IncidentType | None
    model: str | None


@dataclass(frozen=True)
class ShowStatus:
    """`/incident status` in a war room."""


@dataclass(frozen=True)
class ListIncidents:
    """`/incident list`."""


@dataclass(frozen=True)
class AssignRole:
    role: Role
    user_id: str


@dataclass(frozen=True)
class ChangeSeverity:
    severity: Severity


@dataclass(frozen=True)
class ResolveIncident:
    """`/incident resolve` in a war room."""


@dataclass(frozen=True)
class ProposeContainment:
    """`/incident contain` in a war room: the policy's proposal, to approve or reject."""


@dataclass(frozen=True)
class SetContainmentTarget:
    action: ContainmentAction
    target: str


@dataclass(frozen=True)
class PostUpdate:
    """`/incident update <text>`: a status update for every audience already told."""

    text: str


@dataclass(frozen=True)
class SetFlag:
    """`/incident flag …`: personal data involved, public-facing, or an EU AI Act serious
    incident (and which Art. 73 case)."""

    personal_data: bool = False
    public_facing: bool = False
    ai_act_case: AiActCase | None = None


@dataclass(frozen=True)
class RunRca:
    """`/incident rca` in a war room: the facts form, then the causal chain."""


@dataclass(frozen=True)
class StartRecovery:
    """`/incident recover` in a war room: the recovery plan and its validation."""


@dataclass(frozen=True)
class BuildPostmortem:
    """`/incident postmortem` in a war room: the lessons-learned document."""


@dataclass(frozen=True)
class ShowRules:
    """`/incident rules`: detection and classification rules in force, lessons included."""


@dataclass(frozen=True)
class ShowRunbook:
    """`/incident runbook`: the team's runbook, rendered from the live configuration."""


@dataclass(frozen=True)
class RunDrill:
    """`/incident drill` lists the scenarios; `/incident drill <scenario>` starts one."""

    scenario: str | None = None


IncidentCommand = (
    ShowHelp
    | OpenDeclareModal
    | DeclareNow
    | ShowStatus
    | ListIncidents
    | AssignRole
    | ChangeSeverity
    | ResolveIncident
    | ProposeContainment
    | SetContainmentTarget
    | PostUpdate
    | SetFlag
    | RunRca
    | StartRecovery
    | BuildPostmortem
    | ShowRules
    | ShowRunbook
    | RunDrill
)


def parse_user_mention(text: str) -> str | None:
    """The user id in `<@U123>` or `<@U123|name>`, else None."""
    match = _MENTION.match(text.strip())
    return match.group(1) if match else None


def parse_command(text: str) -> IncidentCommand:
    """Turn the slash command text into a command, or raise UsageError with the right form."""
    words = text.split()
    if not words:
        return ShowHelp()
    verb, args = words[0].lower(), words[1:]
    if verb == "help":
        return ShowHelp()
    if verb == "declare":
        return _parse_declare(args)
    if verb == "status":
        return _no_arguments(verb, args, ShowStatus())
    if verb == "list":
        return _no_arguments(verb, args, ListIncidents())
    if verb == "resolve":
        return _no_arguments(verb, args, ResolveIncident())
    if verb == "role":
        return _parse_role(args)
    if verb == "severity":
        return _parse_severity(args)
    if verb == "contain":
        return _parse_contain(args)
    if verb == "update":
        # The words as typed, line breaks and all: the update is read by people.
        body = text.strip()[len(words[0]) :].strip()
        if not body:
            raise UsageError("`update` needs the text of the update.", usage=USAGE["update"])
        return PostUpdate(text=body)
    if verb == "flag":
        return _parse_flag(args)
    if verb == "rca":
        return _no_arguments(verb, args, RunRca())
    if verb == "recover":
        return _no_arguments(verb, args, StartRecovery())
    if verb == "postmortem":
        return _no_arguments(verb, args, BuildPostmortem())
    if verb == "rules":
        return _no_arguments(verb, args, ShowRules())
    if verb == "runbook":
        return _no_arguments(verb, args, ShowRunbook())
    if verb == "drill":
        if len(args) > 1:
            raise UsageError("`drill` takes at most one scenario name.", usage=USAGE["drill"])
        return RunDrill(scenario=args[0].lower() if args else None)
    raise UsageError(f"`{verb}` is not an `/incident` command.", usage="\n".join(USAGE.values()))


def _no_arguments(verb: str, args: list[str], command: IncidentCommand) -> IncidentCommand:
    if args:
        raise UsageError(f"`{verb}` takes no arguments.", usage=USAGE[verb])
    return command


def _parse_declare(args: list[str]) -> IncidentCommand:
    if not args:
        return OpenDeclareModal()
    severity = parse_severity(args[0])
    if severity is None:
        raise UsageError(
            f"`{args[0]}` is not a severity; use one of {SEVERITY_WORDS.replace('|', ', ')}.",
            usage=USAGE["declare"],
        )
    incident_type: IncidentType | None = None
    model: str | None = None
    title_words: list[str] = []
    for word in args[1:]:
        token = _TOKEN.match(word)
        if token is None:
            title_words.append(word)
            continue
        key, value = token.group(1).lower(), token.group(2)
        if key == "model":
            model = value
            continue
        incident_type = parse_incident_type(value)
        if incident_type is None:
            known = ", ".join(t.value for t in IncidentType)
            raise UsageError(
                f"`{value}` is not an incident type; use one of {known}.", usage=USAGE["declare"]
            )
    title = " ".join(title_words).strip()
    if not title:
        raise UsageError("A declaration needs a title after the severity.", usage=USAGE["declare"])
    return DeclareNow(severity=severity, title=title, incident_type=incident_type, model=model)


def _parse_role(args: list[str]) -> IncidentCommand:
    if len(args) != 2:
        raise UsageError("`role` takes a role and a user.", usage=USAGE["role"])
    role = parse_role(args[0])
    if role is None:
        raise UsageError(f"`{args[0]}` is not a role.", usage=USAGE["role"])
    user_id = parse_user_mention(args[1])
    if user_id is None:
        raise UsageError(f"`{args[1]}` is not a user mention like @name.", usage=USAGE["role"])
    return AssignRole(role=role, user_id=user_id)


def _parse_severity(args: list[str]) -> IncidentCommand:
    if len(args) != 1:
        raise UsageError("`severity` takes exactly one severity.", usage=USAGE["severity"])
    severity = parse_severity(args[0])
    if severity is None:
        raise UsageError(f"`{args[0]}` is not a severity.", usage=USAGE["severity"])
    return ChangeSeverity(severity=severity)


def _parse_contain(args: list[str]) -> IncidentCommand:
    if not args:
        return ProposeContainment()
    if args[0].lower() != "target" or len(args) != 3:
        raise UsageError(
            "`contain` takes nothing, or `target <action> <name>`.", usage=USAGE["contain"]
        )
    try:
        action = ContainmentAction(args[1].lower().replace("-", "_"))
    except ValueError:
        known = ", ".join(a.value for a in ContainmentAction)
        raise UsageError(
            f"`{args[1]}` is not a containment action; use one of {known}.", usage=USAGE["contain"]
        ) from None
    if not _TARGET.match(args[2]):
        raise UsageError(f"`{args[2]}` is not a model or system name.", usage=USAGE["contain"])
    return SetContainmentTarget(action=action, target=args[2])


_FLAG_WORDS = {
    "personal-data": "personal_data",
    "personal_data": "personal_data",
    "pii": "personal_data",
    "public": "public_facing",
    "public-facing": "public_facing",
    "public_facing": "public_facing",
    "ai-act": "ai_act",
    "ai_act": "ai_act",
    "serious": "ai_act",
}


def _parse_flag(args: list[str]) -> IncidentCommand:
    if not args:
        raise UsageError("`flag` needs what to flag.", usage=USAGE["flag"])
    kind = _FLAG_WORDS.get(args[0].lower())
    if kind is None:
        raise UsageError(f"`{args[0]}` is not a flag.", usage=USAGE["flag"])
    if kind != "ai_act":
        if len(args) != 1:
            raise UsageError(f"`flag {args[0]}` takes nothing more.", usage=USAGE["flag"])
        if kind == "personal_data":
            return SetFlag(personal_data=True)
        return SetFlag(public_facing=True)
    if len(args) > 2:
        raise UsageError("`flag ai-act` takes at most one case.", usage=USAGE["flag"])
    case_word = args[1].lower() if len(args) == 2 else AiActCase.SERIOUS.value
    try:
        case = AiActCase(case_word)
    except ValueError:
        known = ", ".join(c.value for c in AiActCase)
        raise UsageError(
            f"`{case_word}` is not an EU AI Act case; use one of {known}.", usage=USAGE["flag"]
        ) from None
    return SetFlag(ai_act_case=case)
