"""The one wiring point: builds every collaborator and accepts substitutes for tests."""

from __future__ import annotations

import contextvars
import gc
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor as APSThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware

from bot.alert_follow_ups import AlertFollowUps
from bot.classifier import build_classifier
from bot.clock import Clock, SystemClock
from bot.config import WarroomConfig
from bot.containment_executor import ActionExecutor
from bot.deadline_timers import DeadlineTimers
from bot.delivery_queue import DeliveryQueue
from bot.domain.classification import Classifier
from bot.logging_setup import ContextCarryingExecutor
from bot.metrics import DatabaseCollector, TrafficMetrics
from bot.pacing import ChannelPacer
from bot.recovery_runner import RecoveryRunner
from bot.rendering import Renderer
from bot.runbook import RunbookPublisher
from bot.services.alerts import SUMMARY_INTERVAL, AlertService
from bot.services.anomalies import AnomalyService
from bot.services.audit import AuditService, EvidenceService
from bot.services.communications import Communications
from bot.services.containment import ContainmentService
from bot.services.containment_flow import ContainmentFlow
from bot.services.deadline_planner import DeadlinePlanner
from bot.services.drills import DRILL_INTERVAL, DRILL_JOB_ID, DrillSafeRunner, DrillService
from bot.services.incidents import IncidentService
from bot.services.notifications import NotificationService
from bot.services.postmortem import PostmortemService
from bot.services.rca import RcaService
from bot.services.recovery import RecoveryService
from bot.services.regulatory import RegulatoryService
from bot.services.reminders import ReminderService
from bot.services.rules import AppliedRules, RulesService
from bot.services.status_updates import StatusUpdateService
from bot.services.war_room import WarRoomService
from bot.services.workflow import IncidentWorkflow
from bot.settings import Settings
from bot.slack_gateway import SlackGateway, build_web_client
from bot.worker_heartbeat import WorkerHeartbeat
from handlers import (
    register_slack_listeners,
    slack_drills,
    slack_postmortem,
    slack_rca,
    slack_recovery,
    slack_runbook,
)
from handlers.http_routes import HttpMetrics, RequestContext, build_routes
from handlers.webhooks import build_webhook_routes
from storage.db import build_engine, ping
from storage.metrics_queries import read_operational_figures
from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "warroom:open-pending-war-rooms"
SWEEP_INTERVAL = timedelta(seconds=30)
SUMMARY_JOB_ID = "warroom:post-alert-summaries"
DEADLINE_SWEEP_JOB_ID = "warroom:deadline-sweep"
SWEEPS_EXECUTOR = "sweeps"
# Timers fire rows on time; this sweep catches rows another replica planned, or whose timer
# fired while Slack was down.
DEADLINE_SWEEP_INTERVAL = timedelta(seconds=15)


@dataclass
class Warroom:
    """A built application: the ASGI app to serve and the parts behind it."""

    settings: Settings
    config: WarroomConfig
    engine: Engine
    bolt: App
    workflow: IncidentWorkflow
    asgi: Starlette
    executor: ThreadPoolExecutor
    clock: Clock
    alerts: AlertService
    classifier: Classifier
    action_runner: ActionExecutor
    scheduler: BackgroundScheduler
    # Other connection pools to close with the app (recovery's HTTP client…).
    closers: list[Callable[[], None]] = field(default_factory=list)
    drills: DrillService | None = None
    alert_follow_ups: AlertFollowUps | None = None

    def __post_init__(self) -> None:
        # Fixed job ids: a restart replaces the jobs rather than adding copies.
        jobs = (
            (SWEEP_JOB_ID, self.workflow.war_rooms.open_pending_war_rooms, SWEEP_INTERVAL),
            (SUMMARY_JOB_ID, self.alerts.post_summaries, SUMMARY_INTERVAL),
            (DEADLINE_SWEEP_JOB_ID, self.communications.sweep, DEADLINE_SWEEP_INTERVAL),
        )
        for job_id, work, interval in jobs:
            add_sweep(self.scheduler, job_id, work, interval)

    @property
    def communications(self) -> Communications:
        return self.workflow.communications

    def start_background_work(self) -> None:
        """Start the sending threads; give every pending deadline row its timer back (what
        came due while warroom was down fires at once, recorded late); resume half-opened
        war rooms now and every 30 s, send due alert summaries every minute, and sweep for
        due deadlines every 15 s; and train the text classifier: first when another process
        is running (it keeps sending meanwhile, as in a rolling restart), else last."""
        joining = self.communications.heartbeat.others_alive()
        if joining:
            # Training holds this interpreter for seconds: sends this process took in that
            # time would wait for it, while the running process would have sent them.
            self.classifier.warm_up()
        self.communications.start()
        self.communications.timers.rebuild()
        self.scheduler.start()
        self.scheduler.modify_job(SWEEP_JOB_ID, next_run_time=self.clock.now())
        if not joining:
            # Alone, deadlines that came due while warroom was down must not wait seconds
            # for the text model (it is thread-safe, and trains on first use if asked before).
            self.classifier.warm_up()
        self.freeze_heap()

    def freeze_heap(self) -> None:
        """Leave what start-up built out of the garbage collector's full passes.

        The app and the trained text model live as long as the process. Each full pass
        walked all of them (~150 ms, one per alert storm, in the middle of it); frozen, it
        walks only what serving allocates. No collection first: it would hold the interpreter
        for a moment just as the deadline timers start firing, and the few cycles start-up
        left behind are garbage once, not a leak that grows. `close` thaws them."""
        gc.freeze()

    def close(self) -> None:
        gc.unfreeze()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.communications.close()
        self.executor.shutdown(wait=True)
        self.action_runner.close()
        for close in self.closers:
            close()
        self.engine.dispose()


def add_sweep(
    scheduler: BackgroundScheduler, job_id: str, work: Callable[[], object], interval: timedelta
) -> None:
    """A job run every `interval`, one run at a time, under a fixed id (a restart replaces
    it rather than adding a copy)."""
    scheduler.add_job(
        work,
        "interval",
        id=job_id,
        seconds=interval.total_seconds(),
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        # Their own threads: under a backlog of deadline timers the sweeps that recover
        # stale claims must still run, late rather than never.
        executor=SWEEPS_EXECUTOR,
        misfire_grace_time=int(interval.total_seconds()),
    )


class ScopedApp(App):
    """Bolt's App, serving each request in a copy of the caller's context: what a listener
    learns (the incident whose war room it serves) tags its log lines and its lazy work's,
    and never a later request's (Socket Mode reuses its threads)."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        return contextvars.copy_context().run(super().dispatch, req)


def _bolt_logger() -> logging.Logger:
    """Bolt's logger, without its warning that SLACK_BOT_TOKEN is unused when we pass a client
    built from that very token (it would read as a misconfiguration at every start)."""
    logger = logging.getLogger("warroom.bolt")
    if not logger.filters:
        logger.addFilter(lambda record: "`token` will be unused" not in record.getMessage())
    return logger


def create_app(
    settings: Settings,
    config: WarroomConfig,
    *,
    engine: Engine | None = None,
    web_client: WebClient | None = None,
    clock: Clock | None = None,
    socket_mode: bool = False,
) -> Warroom:
    """Build warroom from settings and configuration; nothing runs until it is served."""
    engine = engine or build_engine(settings.database_url)
    clock = clock or SystemClock()
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    if web_client is None:
        if token is None:
            raise ValueError("a bot token or a WebClient is needed")
        web_client = build_web_client(token=token, base_url=settings.slack_api_url)
    uow = UnitOfWorkFactory(engine)
    renderer = Renderer(extra_dir=config.templates_dir)
    registry = CollectorRegistry()
    traffic = TrafficMetrics(registry)
    slack = SlackGateway(web_client, on_call=traffic.count_slack_call)
    # Lessons applied from root-cause analyses: read by the classifier and the detector.
    lessons = AppliedRules(uow=uow, clock=clock, detection=config.detection.to_rules())
    classifier = build_classifier(config.classification, lessons=lessons.indicator_rules)
    incidents = IncidentService(uow=uow, clock=clock, config=config, classifier=classifier)
    evidence = EvidenceService(
        uow=uow, slack=slack, audit=AuditService(uow=uow, clock=clock), clock=clock
    )
    # This process's heartbeat: what it holds is taken over soon after it dies. It hands
    # a dead process's messages to this one's sending threads (built below).
    heartbeat = WorkerHeartbeat(uow, clock, on_orphans=lambda ids: communications.take_over(ids))
    war_rooms = WarRoomService(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        evidence=evidence,
        holder=heartbeat.holder,
    )
    action_runner = ActionExecutor(config.containment, clock=clock)
    containment = ContainmentFlow(
        containment=ContainmentService(
            uow=uow,
            clock=clock,
            config=config,
            # A drill's containment is rehearsed: its actions call no endpoint.
            runner=DrillSafeRunner(ActionExecutor(config.containment, clock=clock)),
            evidence=evidence,
        ),
        incidents=incidents,
        war_rooms=war_rooms,
        renderer=renderer,
        slack=slack,
    )
    scheduler = BackgroundScheduler(
        timezone="UTC",
        executors={
            "default": APSThreadPoolExecutor(max_workers=16),
            SWEEPS_EXECUTOR: APSThreadPoolExecutor(max_workers=4),
        },
    )
    communications = build_communications(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        war_rooms=war_rooms,
        containment_lines=containment.status_lines,
        scheduler=scheduler,
        heartbeat=heartbeat,
    )
    workflow = IncidentWorkflow(
        incidents=incidents,
        war_rooms=war_rooms,
        renderer=renderer,
        slack=slack,
        containment=containment,
        communications=communications,
    )
    executor = ContextCarryingExecutor(max_workers=16, thread_name_prefix="warroom-slack")
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    bolt = ScopedApp(
        client=web_client,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        # Acks go back as soon as the ack function returns; slow work runs as lazy listeners.
        process_before_response=True,
        listener_executor=executor,
        logger=_bolt_logger(),
    )
    register_slack_listeners(bolt, workflow)
    recovery_runner = RecoveryRunner(config.recovery)
    recovery = RecoveryService(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        runner=recovery_runner,
    )
    slack_recovery.register(bolt, workflow, recovery)
    rules = RulesService(
        uow=uow,
        clock=clock,
        renderer=renderer,
        slack=slack,
        war_rooms=war_rooms,
        applied=lessons,
        classifier=classifier,
    )
    rca = RcaService(
        uow=uow,
        clock=clock,
        config=config,
        renderer=renderer,
        slack=slack,
        war_rooms=war_rooms,
        rules=rules,
    )
    slack_rca.register(bolt, workflow, rca=rca, rules=rules)
    postmortems = PostmortemService(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        war_rooms=war_rooms,
        confirmed_rca=rca.confirmed,
        drill_report=lambda incident_id: drills.report_markdown(incident_id),
    )
    slack_postmortem.register(bolt, workflow, postmortems)
    slack_runbook.register(
        workflow,
        RunbookPublisher(slack=slack, renderer=renderer, config=config, now=clock.now),
    )
    metrics = HttpMetrics(registry)
    registry.register(
        DatabaseCollector(
            read=lambda: read_operational_figures(engine),
            jobs_pending=lambda: len(scheduler.get_jobs()),
        )
    )
    alerts = AlertService(
        uow=uow,
        clock=clock,
        incidents=incidents,
        war_rooms=war_rooms,
        after_opening=workflow.after_opening,
        after_replan=communications.after_change,
        on_related_alert=recovery.prompt_reopen,
    )
    anomalies = AnomalyService(
        uow=uow,
        clock=clock,
        rules=lessons.base_detection,
        rules_for=lessons.detection_rules,
        alerts=alerts,
        watch_factor=config.recovery.monitoring_factor,
    )
    drills = DrillService(
        uow=uow,
        clock=clock,
        config=config,
        renderer=renderer,
        slack=slack,
        war_rooms=war_rooms,
        alerts=alerts,
        anomalies=anomalies,
    )
    slack_drills.register(bolt, workflow, drills)
    add_sweep(scheduler, DRILL_JOB_ID, drills.play_due, DRILL_INTERVAL)
    alert_follow_ups = AlertFollowUps(alerts.follow_up, ingest_load=alerts.ingest_load)
    webhook_token = (
        settings.warroom_webhook_token.get_secret_value()
        if settings.warroom_webhook_token
        else None
    )
    asgi = Starlette(
        routes=build_routes(
            bolt=bolt,
            database_ok=lambda: ping(engine),
            metrics=metrics,
            scheduler_running=lambda: scheduler.running,
        )
        + build_webhook_routes(
            token=webhook_token,
            alerts=alerts,
            anomalies=anomalies,
            now=clock.now,
            follow_up=alert_follow_ups.submit,
            on_delivery=metrics.count_alerts,
        ),
        middleware=[Middleware(RequestContext, traffic=traffic)],
    )
    return Warroom(
        settings=settings,
        config=config,
        engine=engine,
        bolt=bolt,
        workflow=workflow,
        asgi=asgi,
        executor=executor,
        clock=clock,
        alerts=alerts,
        classifier=classifier,
        action_runner=action_runner,
        scheduler=scheduler,
        closers=[alert_follow_ups.close, recovery_runner.close],
        drills=drills,
        alert_follow_ups=alert_follow_ups,
    )


def build_communications(
    *,
    uow: UnitOfWorkFactory,
    slack: SlackGateway,
    renderer: Renderer,
    config: WarroomConfig,
    clock: Clock,
    war_rooms: WarRoomService,
    containment_lines: Callable[[int], list[str]],
    scheduler: BackgroundScheduler,
    heartbeat: WorkerHeartbeat,
) -> Communications:
    """Stakeholder messages, reminders, legal clocks, status updates and their timers."""
    pacer = ChannelPacer(config.notifications.channel_pace)
    notifications = NotificationService(
        uow=uow,
        slack=slack,
        renderer=renderer,
        config=config,
        clock=clock,
        pacer=pacer,
        containment_lines=containment_lines,
        on_change=war_rooms.refresh_card,
        sends_waiting=lambda: sends.busy(),
        holder=heartbeat.holder,
    )
    sends = DeliveryQueue(notifications.fire_due)
    reminders = ReminderService(
        uow=uow, slack=slack, renderer=renderer, config=config, clock=clock, war_rooms=war_rooms
    )
    communications = Communications(
        notifications=notifications,
        reminders=reminders,
        regulatory=RegulatoryService(
            uow=uow,
            slack=slack,
            renderer=renderer,
            config=config,
            clock=clock,
            war_rooms=war_rooms,
            containment_lines=containment_lines,
        ),
        updates=StatusUpdateService(
            uow=uow,
            renderer=renderer,
            config=config,
            clock=clock,
            planner=DeadlinePlanner(config),
            notifications=notifications,
            war_rooms=war_rooms,
            pacer=pacer,
        ),
        timers=DeadlineTimers(
            scheduler,
            uow=uow,
            fire_notification=lambda notification_id: communications.fire_notification(
                notification_id
            ),
            fire_reminder=reminders.fire,
        ),
        sends=sends,
        heartbeat=heartbeat,
        uow=uow,
        config=config,
        clock=clock,
    )
    return communications
