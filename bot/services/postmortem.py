"""The lessons-learned document (`/incident postmortem`): read the war room and the record,
render the Markdown template, store it as a new version, publish it (a channel canvas, else a
canvas tabbed in the channel, else a Markdown file) and announce it, pinned, in the war room.

Also the 📌/✅ marks as people add and remove them, and the responders' lessons form.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.incident import Incident
from bot.domain.postmortem import (
    ACTION_REACTION,
    MARK_REACTIONS,
    PIN_REACTION,
    ActionItem,
    ChannelDigest,
    ChannelReader,
    Figures,
    IncidentRecord,
    Lesson,
    StoredPostmortem,
    TimelineEntry,
    action_items,
    channel_entries,
    format_duration,
    is_person,
    key_figures,
    merge_timeline,
    message_from_api,
    message_link,
    milestones,
    observations,
    one_line,
    record_entries,
    slack_to_markdown,
    summarise,
    tally_deadlines,
    unread_marks,
)
from bot.errors import ExternalServiceError, NotFoundError, NotInWarRoomError, UserError
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from bot.services.war_room import WarRoomService
    from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

# conversations.history / .replies page size: Slack recommends no more than 200.
PAGE_SIZE = 200
# conversations.canvases.create refuses Markdown over 1 MiB.
CANVAS_LIMIT = 1_048_576
TITLE_LIMIT = 120
LESSON_LIMIT = 3000
TEMPLATE = "postmortem.md"

ConfirmedRca = Callable[[int], Mapping[str, Any] | None]


@dataclass(frozen=True)
class PostmortemBuild:
    """Build, publish and announce the document, after Slack's ack."""

    incident_id: int
    actor_id: str


@dataclass(frozen=True)
class OpenLessonsForm:
    incident_id: int
    user_id: str
    trigger_id: str


@dataclass(frozen=True)
class LessonsShared:
    incident_id: int
    user_id: str


@dataclass(frozen=True)
class Publication:
    """Where a version went: `channel_canvas`, `canvas` or `file`, and why not the ways
    tried before it."""

    via: str
    link: str
    canvas_id: str | None = None
    file_id: str | None = None
    refusals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """A built version: what was stored, and the canvas flavour of its Markdown."""

    stored: StoredPostmortem
    canvas_markdown: str
    items: int
    lessons: int
    refusals: tuple[str, ...] = ()


class PostmortemService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        war_rooms: WarRoomService,
        confirmed_rca: ConfirmedRca | None = None,
        drill_report: Callable[[int], str | None] | None = None,
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._war_rooms = war_rooms
        # RcaService.confirmed when it is wired; otherwise the rca_analyses table is read.
        self._confirmed_rca = confirmed_rca
        # DrillService.report_markdown when wired: a drill's score closes its postmortem.
        self._drill_report = drill_report
        self._workspace: dict[str, str] | None = None

    # -- /incident postmortem --------------------------------------------------------------

    def request_build(self, *, channel_id: str, actor_id: str) -> tuple[Incident, PostmortemBuild]:
        """Inside the ack: the war room's incident (NotInWarRoomError elsewhere)."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get_by_channel(channel_id)
        if incident is None:
            raise NotInWarRoomError(
                "`/incident postmortem` works in an incident's war-room channel. "
                "Use `/incident list` to find it."
            )
        return incident, PostmortemBuild(incident.id, actor_id)

    def building_message(self, incident: Incident) -> dict[str, Any]:
        return self._renderer.render(
            "ephemeral_notice",
            message=f"Building the postmortem of incident #{incident.number} from the war "
            "room and the record; it will be posted here.",
        )

    def run(self, work: PostmortemBuild) -> None:
        """The follow-up of `/incident postmortem`."""
        self.build_and_publish(work)

    def build_and_publish(self, work: PostmortemBuild) -> Document:
        """Build a new version, publish it and announce it in the war room; the first time,
        also ask the responders for their lessons."""
        incident = self._incident(work.incident_id)
        if incident.channel_id is not None:
            self.prompt_lessons(incident.id)
        document = self.build(work.incident_id, actor_id=work.actor_id)
        publication = self.publish(document)
        self.announce(document, publication)
        return replace(document, refusals=publication.refusals)

    def build(self, incident_id: int, *, actor_id: str) -> Document:
        """Read the war room (every page of history and every thread) and the record,
        render the Markdown and store it as the next version."""
        incident = self._incident(incident_id)
        with self._uow(read_only=True) as uow:
            stored_marks = uow.marks.for_incident(incident_id)
        digest, workspace_url = self._read_channel(incident, {m.message_ts for m in stored_marks})
        now = self._clock.now()
        if digest.read and digest.channel_id is not None:
            # The channel is what counts: marks whose reaction was removed while warroom did
            # not hear of it go, marks it missed are added.
            with self._uow() as uow:
                uow.marks.replace(
                    incident_id, channel_id=digest.channel_id, marks=digest.marks, now=now
                )
                uow.commit()
        with self._uow(read_only=True) as uow:
            record = uow.postmortems.incident_record(incident_id)
        if self._confirmed_rca is not None:
            record = replace(record, rca=self._confirmed_rca(incident_id))
        parts = DocumentParts.of(incident, record, digest, now=now)
        figures = parts.figures.to_json() | {
            "action_items": len(parts.items),
            "messages_read": digest.total,
            "channel_error": digest.error,
        }

        drill_report = self._drill_report(incident_id) if self._drill_report else None

        def render(version: int, mention: Callable[[str], str]) -> str:
            return self._renderer.render_text(
                TEMPLATE,
                drill_report=drill_report,
                **document_context(
                    incident=incident,
                    parts=parts,
                    version=version,
                    built_at=now,
                    actor_id=actor_id,
                    workspace_url=workspace_url,
                    mention=mention,
                ),
            )

        with self._uow() as uow:
            # The number is taken in the same transaction as the row: the text never names
            # a version another build stored meanwhile.
            stored: StoredPostmortem | None = None
            while stored is None:
                version = uow.postmortems.next_version(incident_id)
                canvas = render(version, _canvas_mention)
                stored = uow.postmortems.add_version(
                    incident_id,
                    version=version,
                    markdown=render(version, _at),
                    figures=figures,
                    built_by=actor_id,
                    now=now,
                )
            uow.commit()
        log.info(
            "postmortem v%d of incident #%d: %d messages read, %d action items",
            stored.version,
            incident.number,
            digest.total,
            len(parts.items),
        )
        return Document(
            stored=stored,
            canvas_markdown=canvas,
            items=len(parts.items),
            lessons=len(record.lessons),
        )

    def publish(self, document: Document) -> Publication:
        """Put the version where people can read it, as `postmortem.publish` says: `auto`
        tries the channel canvas (or replaces the one an earlier version made), then a
        canvas tabbed in the channel, then a Markdown file; `canvas` stops after the
        canvases; `file` uploads the file only."""
        stored = document.stored
        incident = self._incident(stored.incident_id)
        channel_id = _channel_or_raise(incident)
        mode = self._config.postmortem.publish
        refusals: list[str] = []
        publication: Publication | None = None
        if mode != "file":
            publication = self._publish_canvas(incident, document, refusals)
        if publication is None and mode == "canvas":
            raise ExternalServiceError(
                "Slack refused every canvas (" + ", ".join(refusals) + "); version "
                f"{stored.version} is stored: `warroom postmortem {incident.number}` prints it"
            )
        if publication is None:
            file = self._slack.upload_text_file(
                channel_id,
                filename=f"postmortem-incident-{incident.number}-v{stored.version}.md",
                title=_title(incident),
                content=stored.markdown + "\n",
                comment=f"Postmortem of incident #{incident.number}, version {stored.version} "
                "(Markdown).",
            )
            publication = Publication(
                via="file", link=file["permalink"], file_id=file["id"], refusals=tuple(refusals)
            )
        with self._uow() as uow:
            uow.postmortems.set_published(
                stored.id,
                via=publication.via,
                canvas_id=publication.canvas_id,
                file_id=publication.file_id,
                permalink=publication.link,
            )
            uow.commit()
        return publication

    def announce(self, document: Document, publication: Publication) -> None:
        """Post the version's link in the war room, once, and pin it (the card's place for
        the document until the card shows it itself)."""
        stored = document.stored
        incident = self._incident(stored.incident_id)
        channel_id = _channel_or_raise(incident)
        message = self._renderer.render(
            "postmortem/published",
            incident=incident_context(incident),
            version=stored.version,
            via=publication.via,
            link=publication.link,
            refusals=list(publication.refusals),
            figures=_figure_lines(stored.figures),
            action_items=document.items,
            lessons=document.lessons,
            built_by=stored.built_by,
        )
        key = f"postmortem:v{stored.version}"
        self._war_rooms.post_once(incident, key, channel_id, message)
        sent = self._war_rooms.sent(incident.id, key)
        if sent and sent.get("ts"):
            self._slack.pin(str(sent["channel_id"] or channel_id), str(sent["ts"]))
        # The card links the newest version.
        self._war_rooms.refresh_card(incident.id)

    # -- 📌 and ✅ as they happen --------------------------------------------------------

    def record_mark(self, *, channel_id: str, message_ts: str, reaction: str, user_id: str) -> bool:
        """Remember a 📌 or ✅ on a war-room message; False for other reactions, other
        channels and repeats."""
        if reaction not in MARK_REACTIONS:
            return False
        with self._uow() as uow:
            incident = uow.incidents.get_by_channel(channel_id)
            if incident is None:
                return False
            added = uow.marks.add(
                incident.id,
                channel_id=channel_id,
                message_ts=message_ts,
                reaction=reaction,
                user_id=user_id,
                now=self._clock.now(),
            )
            uow.commit()
        return added

    def remove_mark(self, *, channel_id: str, message_ts: str, reaction: str, user_id: str) -> bool:
        if reaction not in MARK_REACTIONS:
            return False
        with self._uow() as uow:
            removed = uow.marks.remove(
                channel_id=channel_id, message_ts=message_ts, reaction=reaction, user_id=user_id
            )
            uow.commit()
        return removed

    # -- lessons -----------------------------------------------------------------------------

    def prompt_lessons(self, incident_id: int) -> None:
        """Ask the war room, once, what went well, badly and where we got lucky."""
        incident = self._incident(incident_id)
        channel_id = _channel_or_raise(incident)
        people = [holder.user_id for holder in incident.roles]
        message = self._renderer.render(
            "postmortem/lessons_prompt",
            incident=incident_context(incident),
            people=list(dict.fromkeys(people)),
        )
        self._war_rooms.post_once(incident, "postmortem:lessons_prompt", channel_id, message)

    def open_lessons_form(self, work: OpenLessonsForm) -> None:
        self._slack.open_view(work.trigger_id, self.lessons_form(work.incident_id, work.user_id))

    def lessons_form(self, incident_id: int, user_id: str) -> dict[str, Any]:
        """The three questions, with this person's earlier answers filled in."""
        incident = self._incident(incident_id)
        with self._uow(read_only=True) as uow:
            earlier = uow.lessons.get(incident_id, user_id)
        return self._renderer.render(
            "postmortem/lessons_modal",
            incident=incident_context(incident),
            private_metadata=json.dumps({"incident_id": incident_id}),
            went_well=earlier.went_well if earlier else "",
            went_badly=earlier.went_badly if earlier else "",
            got_lucky=earlier.got_lucky if earlier else "",
            limit=LESSON_LIMIT,
        )

    def save_lessons(
        self, *, incident_id: int, user_id: str, went_well: str, went_badly: str, got_lucky: str
    ) -> LessonsShared:
        """Store this person's answers (replacing earlier ones); UserError when all empty."""
        answers = [text.strip() for text in (went_well, went_badly, got_lucky)]
        if not any(answers):
            raise UserError("Write at least one answer.")
        with self._uow() as uow:
            if uow.incidents.get(incident_id) is None:
                raise NotFoundError("That incident no longer exists.")
            uow.lessons.save(
                incident_id,
                user_id=user_id,
                went_well=answers[0][:LESSON_LIMIT],
                went_badly=answers[1][:LESSON_LIMIT],
                got_lucky=answers[2][:LESSON_LIMIT],
                now=self._clock.now(),
            )
            uow.commit()
        return LessonsShared(incident_id, user_id)

    def thank(self, work: LessonsShared) -> None:
        """Tell the person, in the war room, where their answers go."""
        incident = self._incident(work.incident_id)
        if incident.channel_id is None:
            return
        self._slack.post_ephemeral(
            incident.channel_id,
            work.user_id,
            self._renderer.render(
                "ephemeral_notice",
                message="Thank you. Your lessons go into the next version of the postmortem "
                "(`/incident postmortem` builds it).",
            ),
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _incident(self, incident_id: int) -> Incident:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        return incident

    def _workspace_info(self) -> dict[str, str]:
        # The workspace's address and the bot's id do not change while warroom runs.
        if self._workspace is None:
            self._workspace = self._slack.workspace()
        return self._workspace

    def _read_channel(self, incident: Incident, marked: set[str]) -> tuple[ChannelDigest, str]:
        """Every message of the war room and its threads, folded as they arrive."""
        channel_id = incident.channel_id
        if channel_id is None:
            return ChannelDigest(channel_id=None, error="no_war_room"), "https://slack.com/"
        workspace = self._workspace_info()
        workspace_url = workspace["url"]
        pinned = [message_from_api(raw) for raw in self._slack.pinned_messages(channel_id)]
        reader = ChannelReader(
            channel_id,
            declared_at=incident.declared_at,
            pinned=(m.ts for m in pinned),
            marked=marked,
            own_user=workspace["user_id"],
        )
        error, pages = self._slack.message_pages(channel_id, page_size=PAGE_SIZE)
        if error is not None:
            log.warning("cannot read war room %s for the postmortem: %s", channel_id, error)
            return ChannelDigest(channel_id=channel_id, error=error), workspace_url
        for page in pages:
            for raw in page:
                reader.add(message_from_api(raw))
        for thread_ts in reader.threads():
            _, replies = self._slack.message_pages(
                channel_id, thread_ts=thread_ts, page_size=PAGE_SIZE
            )
            for page in replies:
                for raw in page:
                    reader.add(message_from_api(raw))
        # pins.list is the authority on pins: a pinned message the pages missed still counts.
        for message in pinned:
            reader.add(message)
        return reader.digest(), workspace_url

    def _publish_canvas(
        self, incident: Incident, document: Document, refusals: list[str]
    ) -> Publication | None:
        markdown = document.canvas_markdown
        channel_id = _channel_or_raise(incident)
        if len(markdown) > CANVAS_LIMIT:
            refusals.append("document_too_large_for_a_canvas")
            return None
        workspace = self._workspace_info()
        workspace_url, team_id = workspace["url"], workspace["team_id"]

        def link(canvas_id: str) -> str:
            return f"{workspace_url.rstrip('/')}/docs/{team_id}/{canvas_id}"

        with self._uow(read_only=True) as uow:
            earlier = uow.postmortems.latest_canvas(incident.id)
        if earlier is not None and earlier.canvas_id:
            # A rebuild replaces the canvas an earlier version made: one document, new content.
            answer = self._slack.replace_canvas(earlier.canvas_id, markdown)
            if answer.get("ok", True):
                return Publication(
                    via=earlier.published_via or "canvas",
                    link=link(earlier.canvas_id),
                    canvas_id=earlier.canvas_id,
                )
            refusals.append(f"canvases.edit: {answer['error']}")
        title = _title(incident)
        answer = self._slack.create_channel_canvas(channel_id, title=title, markdown=markdown)
        if answer.get("ok", True):
            canvas_id = str(answer["canvas_id"])
            return Publication(
                via="channel_canvas",
                link=link(canvas_id),
                canvas_id=canvas_id,
                refusals=tuple(refusals),
            )
        refusals.append(f"conversations.canvases.create: {answer['error']}")
        answer = self._slack.create_canvas(title=title, markdown=markdown, channel_id=channel_id)
        if answer.get("ok", True):
            canvas_id = str(answer["canvas_id"])
            return Publication(
                via="canvas", link=link(canvas_id), canvas_id=canvas_id, refusals=tuple(refusals)
            )
        refusals.append(f"canvases.create: {answer['error']}")
        log.warning("no canvas for the postmortem of incident #%d: %s", incident.number, refusals)
        return None


def read_latest(uow: UnitOfWorkFactory, incident_number: int) -> StoredPostmortem:
    """The newest stored version of an incident's postmortem (`warroom postmortem N`)."""
    with uow(read_only=True) as work:
        incident = work.incidents.get_by_number(incident_number)
        if incident is None:
            raise NotFoundError(f"There is no incident #{incident_number}.")
        stored = work.postmortems.latest(incident.id)
    if stored is None:
        raise NotFoundError(
            f"Incident #{incident_number} has no postmortem yet (`/incident postmortem` in its "
            "war room builds one)."
        )
    return stored


# ----- the document's context --------------------------------------------------------------


@dataclass(frozen=True)
class DocumentParts:
    """The document's computed parts (timeline, action items, figures, observations),
    before any of it is turned into text."""

    record: IncidentRecord
    digest: ChannelDigest
    timeline: list[TimelineEntry]
    items: list[ActionItem]
    figures: Figures
    notes: list[str]
    now: datetime

    @classmethod
    def of(
        cls, incident: Incident, record: IncidentRecord, digest: ChannelDigest, *, now: datetime
    ) -> DocumentParts:
        items = action_items(digest.notable)
        marked = channel_entries(digest.notable)
        if not digest.read:
            unread_entries, unread_items = unread_marks(record.marks)
            marked += unread_entries
            items += unread_items
        points = milestones(
            declared_at=incident.declared_at,
            record=record,
            first_response_at=digest.first_response_at,
            resolved_at=incident.resolved_at,
        )
        figures = key_figures(points, tally_deadlines(record.messages, record.clocks, now=now))
        timeline = merge_timeline(record_entries(record), marked)
        notes = observations(
            severity=incident.severity,
            figures=figures,
            record=record,
            items=items,
            resolved=incident.resolved_at is not None,
            now=now,
        )
        return cls(record, digest, timeline, items, figures, notes, now)


def _at(user_id: str) -> str:
    return f"@{user_id}"


def _canvas_mention(user_id: str) -> str:
    # Canvas Markdown's user mention.
    return f"![](@{user_id})"


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _cell(text: Any) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped."""
    return one_line(str(text)).replace("|", "\\|")


def _title(incident: Incident) -> str:
    title = f"Postmortem: incident #{incident.number} {incident.title}"
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1].rstrip() + "…"
    return title


def _channel_or_raise(incident: Incident) -> str:
    if incident.channel_id is None:
        raise UserError(f"Incident #{incident.number} has no war room yet.")
    return incident.channel_id


def _figure_lines(figures: Mapping[str, Any]) -> list[str]:
    """The stored figures as short lines for the announcement."""

    def duration(key: str) -> str:
        value = figures.get(key)
        return format_duration(None if value is None else timedelta(seconds=int(value)))

    return [
        f"Detect {duration('time_to_detect_s')} · acknowledge "
        f"{duration('time_to_acknowledge_s')} · contain {duration('time_to_contain_s')} · "
        f"recover {duration('time_to_recover_s')} · resolve {duration('time_to_resolve_s')}",
        f"Deadlines: {figures.get('deadlines_met', 0)} met, {figures.get('deadlines_late', 0)} "
        f"late, {figures.get('deadlines_open', 0)} open",
    ]


def document_context(
    *,
    incident: Incident,
    parts: DocumentParts,
    version: int,
    built_at: datetime,
    actor_id: str,
    workspace_url: str,
    mention: Callable[[str], str],
) -> dict[str, Any]:
    """Plain data for `postmortem.md.j2`: every text already Markdown, every time a string,
    long messages summarised with a link to the whole message."""
    channel_id = incident.channel_id or ""
    record, digest, figures = parts.record, parts.digest, parts.figures

    def who(actor: str) -> str:
        return mention(actor) if is_person(actor) else actor

    def md(text: str) -> str:
        return slack_to_markdown(text, mention=mention)

    def link(ts: str | None, thread_ts: str | None) -> str | None:
        return message_link(workspace_url, channel_id, ts, thread_ts) if ts else None

    def message_text(text: str, ts: str | None, thread_ts: str | None) -> dict[str, Any]:
        short, cut = summarise(one_line(text))
        return {"text": md(short), "summarised": cut, "link": link(ts, thread_ts)}

    timeline = [
        {
            "at": _when(entry.at),
            "kind": entry.kind,
            "label": _TIMELINE_LABELS.get(entry.kind, entry.kind.replace("_", " ").capitalize()),
            "who": who(entry.actor_id),
            "source": entry.source,
            **message_text(entry.text, entry.ts, entry.thread_ts),
        }
        for entry in parts.timeline
    ]
    items = [
        {
            **message_text(item.text, item.ts, item.thread_ts),
            "owner": mention(item.owner_id) if item.owner_id else "unassigned",
            "owner_id": item.owner_id,
            "owner_is_author": item.owner_is_author,
            "due": _day(item.due),
            "source": item.source,
        }
        for item in parts.items
    ]
    totals = figures.deadlines
    return {
        "mention": mention,
        "version": version,
        "built_at": _when(built_at),
        "built_by": who(actor_id),
        "incident": {
            **incident_context(incident),
            "title_cell": _cell(incident.title),
            "declared": _when(incident.declared_at),
            "resolved": _when(incident.resolved_at) if incident.resolved_at else None,
            "reporter": who(incident.reporter_id),
            "affected": _cell(", ".join(incident.affected_systems) or "none named"),
            "explanation": md(incident.explanation),
            "classification": _classification(incident, md),
            "taxonomy": ", ".join((*incident.atlas, *incident.owasp)),
            "roles": [
                {
                    "label": holder.role.label,
                    "who": mention(holder.user_id),
                    "text": f"{holder.role.label}: {mention(holder.user_id)}",
                }
                for holder in incident.roles
            ],
        },
        "figures": [
            {
                "label": "Time to detect",
                "value": format_duration(figures.time_to_detect),
                "span": "first alert → declaration",
            },
            {
                "label": "Time to acknowledge",
                "value": format_duration(figures.time_to_acknowledge),
                "span": "declaration → first response by a person",
            },
            {
                "label": "Time to contain",
                "value": format_duration(figures.time_to_contain),
                "span": "declaration → contained",
            },
            {
                "label": "Time to recover",
                "value": format_duration(figures.time_to_recover),
                "span": "declaration → recovery plan completed",
            },
            {
                "label": "Time to resolve",
                "value": format_duration(figures.time_to_resolve),
                "span": "declaration → resolved",
            },
        ],
        "deadlines": {
            "met": totals.met,
            "late": totals.late,
            "open": totals.open,
            "skipped": totals.skipped,
        },
        "timeline": timeline,
        "messages": [
            {
                "audience": _cell(m.audience_label),
                "tier": m.tier,
                "due": _when(m.due_at),
                "sent": _when(m.sent_at)
                if m.sent_at
                else ("skipped" if m.state == "skipped" else "not sent"),
                "outcome": m.outcome or ("skipped" if m.state == "skipped" else "open"),
                "late_by": format_duration(m.sent_at - m.due_at)
                if m.sent_at and m.outcome == "late"
                else None,
            }
            for m in record.messages
        ],
        "clocks": [
            {
                "regime": c.regime.upper(),
                "case": _cell(c.case),
                "started": _when(c.started_at),
                "due": _when(c.due_at),
                "submitted": _when(c.submitted_at) if c.submitted_at else "not yet",
                "submitted_by": who(c.submitted_by) if c.submitted_by else None,
                "outcome": c.outcome(parts.now),
            }
            for c in record.clocks
        ],
        "containment": [
            {
                "action": _cell(step.label),
                "target": _cell(step.target or "—"),
                "proposed": _when(step.proposed_at),
                "decisions": ", ".join(
                    f"{'approved' if d == 'approve' else 'rejected'} by {mention(u)}"
                    for u, d, _ in step.decisions
                )
                or "none",
                "state": step.state.replace("_", " "),
                "result": _cell(_result_text(step.result)),
            }
            for step in record.containment
        ],
        "rca": _rca_context(record.rca, md=md, who=who),
        "recovery": [
            {
                "seq": step.seq,
                "system": _cell(step.system),
                "kind": step.kind,
                "title": _cell(md(step.title)),
                "state": step.state.replace("_", " "),
                "updated": _when(step.updated_at),
                "result": _cell(_result_text(step.result)),
            }
            for step in record.recovery
        ],
        "action_items": items,
        "lessons": _lessons_context(record.lessons, mention=mention),
        "observations": [md(note) for note in parts.notes],
        "channel": {
            "read": digest.read,
            "error": digest.error,
            "id": channel_id,
            "name": incident.channel_name or channel_id,
            "messages": digest.total,
            "replies": digest.replies,
            "threads": digest.threads,
            "participants": len(digest.participants),
            "pinned": sum(1 for m in digest.notable if m.pinned),
            "marked": sum(1 for m in digest.notable if m.marked(PIN_REACTION)),
            "checked": sum(1 for m in digest.notable if m.marked(ACTION_REACTION)),
        },
    }


def _classification(incident: Incident, md: Callable[[str], str]) -> str:
    how = []
    if incident.confidence is not None:
        how.append(f"confidence {incident.confidence:.2f}")
    if incident.classified_by:
        how.append(f"by {incident.classified_by}")
    text = incident.incident_type.label + (f" ({', '.join(how)})" if how else "") + "."
    return f"{text} {md(incident.explanation)}" if incident.explanation else text


# Timeline kinds whose plain spelling reads badly.
_TIMELINE_LABELS = {
    "rca_analysed": "Root-cause analysis",
    "rca_confirmed": "Root-cause analysis confirmed",
    "rca_corrected": "Root-cause analysis corrected",
    "containment_approve": "Containment approved",
    "containment_proposed": "Containment proposed",
    "regulatory_submitted": "Regulatory report filed",
    "regulatory_clock_started": "Regulatory clock started",
    "rule_applied": "Rule applied",
    "status_update": "Status update",
    "notification_sent": "Stakeholders told",
}


def _result_text(result: Mapping[str, Any]) -> str:
    if not result:
        return "—"
    for key in ("summary", "detail", "error", "message"):
        if result.get(key):
            return str(result[key])
    if result.get("status_code") is None and result.get("response"):
        # An action that made no call (a drill's rehearsal) says why in its response.
        return str(result["response"])
    if result.get("status_code") is not None:
        # A containment endpoint's result, said as the war room says it.
        latency = result.get("latency_ms")
        return f"HTTP {result['status_code']}" + (f" in {latency} ms" if latency else "")
    return ", ".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, dict | list))


def _rca_context(
    rca: Mapping[str, Any] | None, *, md: Callable[[str], str], who: Callable[[str], str]
) -> dict[str, Any] | None:
    if rca is None:
        return None

    def text(value: Any) -> str | None:
        # Links of the causal chain are objects with a summary; older shapes plain text.
        if isinstance(value, Mapping):
            for key in ("summary", "title", "action", "recommendation", "text"):
                if value.get(key):
                    value = value[key]
                    break
            else:
                return None
        return md(one_line(str(value))) if value else None

    def texts(values: Any) -> list[str]:
        return [t for t in (text(value) for value in values or ()) if t]

    confirmed_at = rca.get("confirmed_at")
    return {
        "version": rca.get("version"),
        "trigger": text(rca.get("trigger")),
        "primary_cause": text(rca.get("primary_cause")),
        "contributing_factors": texts(rca.get("contributing_factors")),
        "recommendations": texts(rca.get("recommendations")),
        "findings": texts(rca.get("findings")),
        "confirmed_by": who(str(rca["confirmed_by"])) if rca.get("confirmed_by") else None,
        "confirmed_at": _when(confirmed_at) if isinstance(confirmed_at, datetime) else None,
    }


def _lessons_context(
    lessons: Iterable[Lesson], *, mention: Callable[[str], str]
) -> dict[str, list[dict[str, str]]]:
    """Each answer as a list item by its author; line breaks kept, indented under it."""
    grouped: dict[str, list[dict[str, str]]] = {"went_well": [], "went_badly": [], "got_lucky": []}
    for lesson in lessons:
        for key, text in (
            ("went_well", lesson.went_well),
            ("went_badly", lesson.went_badly),
            ("got_lucky", lesson.got_lucky),
        ):
            if text.strip():
                body = slack_to_markdown(text.strip(), mention=mention)
                grouped[key].append(
                    {"text": "\n  ".join(body.splitlines()), "who": mention(lesson.user_id)}
                )
    return grouped
