"""The episode workflow on DBOS: the only module that knows about durable execution.

Every model call is exactly one DBOS step, so a call that finished is never made again after a
crash: `castline resume` replays the workflow, and completed steps return their checkpointed
output. Research questions run concurrently as child workflows. Events (the audit trail) are steps
too, so a replay does not write them twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID, WorkflowHandle

from castline import __version__, calls
from castline.config import Show, database_url, state_dir
from castline.domain import Episode, Finding, KnowledgeBase, Outline, Script, Source, Verdict
from castline.llm.base import Task
from castline.llm.registry import Route, Routing
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    Question,
    Questions,
    ReviewDecision,
    ReviewDecisionTask,
    SegmentDraft,
)
from castline.orchestrator import guard_fanout, guard_review
from castline.stages import RunContext, plan, polish, publish, research, review, write
from castline.store import Store

SYSTEM_DATABASE_ENV = "CASTLINE_SYSTEM_DATABASE_URL"
_lock = threading.Lock()
_launched_url: str | None = None
_stores: dict[str, Store] = {}
_contexts: dict[str, RunContext] = {}


def system_database_url() -> str:
    """DBOS's own database: `$CASTLINE_SYSTEM_DATABASE_URL`; else the run store's database when
    that is a server (so machines sharing one Postgres share their workflows too); else SQLite
    in the state directory."""
    configured = os.environ.get(SYSTEM_DATABASE_ENV)
    if configured:
        return configured
    store_url = database_url()
    if not store_url.startswith("sqlite"):
        return store_url
    return f"sqlite:///{state_dir() / 'dbos.sqlite'}"


def store() -> Store:
    url = database_url()
    with _lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]


def launch() -> None:
    """Start DBOS for this process (once per system database), without recovering other
    processes' runs: each process has its own executor id, and resuming is explicit."""
    global _launched_url
    url = system_database_url()
    with _lock:
        if _launched_url == url:
            return
        if _launched_url is not None:
            DBOS.destroy(destroy_registry=False)
        state_dir().mkdir(parents=True, exist_ok=True)
        config: DBOSConfig = {
            "name": "castline",
            "system_database_url": url,
            "application_version": __version__,
            "executor_id": f"castline-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.05,
        }
        engine = _sqlite_engine(url)
        if engine is not None:
            config["system_database_engine"] = engine
        DBOS(config=config)
        DBOS.launch()
        # castline records workflow failures in its own store and reports them; DBOS's console
        # tracebacks would only duplicate that.
        logging.getLogger("dbos").setLevel(logging.CRITICAL)
        _launched_url = url
        _contexts.clear()


def _sqlite_engine(url: str) -> sa.Engine | None:
    """For a SQLite system database, an engine in WAL mode with synchronous=NORMAL.

    DBOS's own SQLite engine keeps SQLite's defaults (a rollback journal, a full sync on every
    commit), which made checkpoints most of an offline run's time. WAL with NORMAL sync survives
    any process crash, SIGKILL included; only a power cut can lose the newest commits, and then
    the call journal in the run store still prevents a second payment for a recorded reply.
    Writers stay serialised with IMMEDIATE transactions, as DBOS requires.
    """
    if not url.startswith("sqlite:///"):
        return None
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.isolation_level = "IMMEDIATE"

    return engine


def shutdown() -> None:
    global _launched_url
    with _lock:
        if _launched_url is not None:
            DBOS.destroy(destroy_registry=False)
            _launched_url = None


def start(run_id: str) -> WorkflowHandle[dict[str, Any]]:
    with SetWorkflowID(run_id):
        return DBOS.start_workflow(episode_workflow, run_id)


def status(workflow_id: str) -> str | None:
    found = DBOS.get_workflow_status(workflow_id)
    return found.status if found else None


def resume(workflow_id: str) -> WorkflowHandle[dict[str, Any]]:
    """Continue an interrupted workflow, or restart a failed one from its failed step."""
    current = status(workflow_id)
    if current == "ERROR":
        steps = DBOS.list_workflow_steps(workflow_id)
        failed = [step["function_id"] for step in steps if step["error"] is not None]
        start_step = (
            min(failed) if failed else (max((s["function_id"] for s in steps), default=0) + 1)
        )
        return DBOS.fork_workflow(workflow_id, start_step, application_version=__version__)
    return DBOS.resume_workflow(workflow_id)


def context(run_id: str) -> RunContext:
    """The run's fixed inputs, read from the store (once per process)."""
    with _lock:
        if run_id in _contexts:
            return _contexts[run_id]
    record = store().get_run(run_id)
    spec = record.spec
    routing = Routing(
        routes={
            role: [Route(**route) for route in chain] for role, chain in spec["routing"].items()
        },
        offline=record.offline,
        reason=record.routing_reason,
    )
    ctx = RunContext(
        run_id=record.id,
        show=Show.model_validate(spec["show"]),
        topic=record.topic,
        sources=[Source.model_validate(s) for s in store().load_sources(run_id)],
        routing=routing,
        output_dir=record.output_dir,
    )
    with _lock:
        _contexts[run_id] = ctx
    return ctx


# Steps


@DBOS.step(name="castline.call")
def call_step(
    run_id: str, step_key: str, stage: str, role: str, kind: str, payload: dict[str, Any]
) -> dict[str, Any]:
    task = calls.TASK_TYPES[kind].model_validate(payload)
    chain = context(run_id).routing.chain(role)
    outcome = calls.execute(
        store(), run_id=run_id, step_key=step_key, stage=stage, role=role, task=task, chain=chain
    )
    return outcome.as_dict()


@DBOS.step(name="castline.event")
def event_step(
    run_id: str, kind: str, stage: str | None, message: str, data: dict[str, Any]
) -> None:
    if kind == "stage":
        store().update_run(run_id, stage=stage)
    store().add_event(run_id, kind, message, stage=stage, data=data)


@DBOS.step(name="castline.review")
def review_step(
    run_id: str, round_: int, outline: dict[str, Any], script: dict[str, Any], kb: dict[str, Any]
) -> list[dict[str, Any]]:
    ctx = context(run_id)
    started = time.perf_counter()
    verdicts = review.compliance(
        ctx.show,
        Outline.model_validate(outline),
        Script.model_validate(script),
        KnowledgeBase.model_validate(kb),
    )
    compute_ms = (time.perf_counter() - started) * 1000
    failing = [v for v in verdicts if not v.passed]
    store().add_event(
        run_id,
        "verdicts",
        f"review round {round_}: {len(verdicts) - len(failing)} of {len(verdicts)} checks pass"
        + (f"; failing: {', '.join(v.criterion for v in failing)}" if failing else ""),
        stage="review",
        data={
            "round": round_,
            "verdicts": [v.model_dump(mode="json") for v in verdicts],
            "compute_ms": compute_ms,
        },
    )
    return [v.model_dump(mode="json") for v in verdicts]


@DBOS.step(name="castline.publish")
def publish_step(run_id: str, episode: dict[str, Any]) -> dict[str, Any]:
    ctx = context(run_id)
    started = time.perf_counter()
    parsed = Episode.model_validate(episode)
    written = publish.publish(parsed, Path(ctx.output_dir))
    compute_ms = (time.perf_counter() - started) * 1000
    for item in written:
        store().add_artifact(run_id, item.name, str(item.path), item.sha256, item.size)
    store().update_run(run_id, episode_title=parsed.script.title)
    store().add_event(
        run_id,
        "published",
        f"{len(written)} files written to {ctx.output_dir}",
        stage="publish",
        data={"files": [item.name for item in written], "compute_ms": compute_ms},
    )
    return {"output_dir": ctx.output_dir, "files": [item.name for item in written]}


def _call(ctx: RunContext, step_key: str, stage: str, role: str, task: Task[Any]) -> Any:
    outcome = call_step(ctx.run_id, step_key, stage, role, task.kind, task.model_dump(mode="json"))
    return task.parse_output(outcome["output"])


def _event(ctx: RunContext, kind: str, message: str, stage: str | None, **data: Any) -> None:
    event_step(ctx.run_id, kind, stage, message, data)


# Workflows


@DBOS.workflow(name="castline.research_question")
def research_question(run_id: str, index: int, question: dict[str, Any]) -> dict[str, Any]:
    ctx = context(run_id)
    task = research.research_task(ctx, Question.model_validate(question))
    findings: Findings = _call(ctx, f"research.question.{index}", "research", "researcher", task)
    return findings.model_dump(mode="json")


@DBOS.workflow(name="castline.episode")
def episode_workflow(run_id: str) -> dict[str, Any]:
    ctx = context(run_id)
    kb = _research(ctx)

    _event(ctx, "stage", "planning the episode", "plan")
    outline: Outline = _call(ctx, "plan.outline", "plan", "planner", plan.plan_task(ctx, kb))

    _event(ctx, "stage", f"writing {len(outline.segments)} segments", "write")
    drafts: dict[str, list[Any]] = {}
    for segment in outline.segments:
        task = write.segment_task(ctx, outline, segment, kb)
        draft: SegmentDraft = _call(ctx, f"write.{segment.id}", "write", "writer", task)
        drafts[segment.id] = draft.turns
    script = write.assemble(outline, drafts)

    script, verdicts = _review_and_polish(ctx, outline, script, kb)
    blocking = review.blocking(verdicts)

    _event(ctx, "stage", "publishing", "publish")
    episode = Episode(
        run_id=run_id,
        show_title=ctx.show.show.title,
        topic=ctx.topic,
        offline=ctx.routing.offline,
        outline=outline,
        script=script,
        knowledge_base=kb,
        sources=ctx.sources,
        verdicts=verdicts,
        accepted=not blocking,
    )
    published = publish_step(run_id, episode.model_dump(mode="json"))
    return {
        "accepted": not blocking,
        "blocking": [f.message for f in blocking],
        "output_dir": published["output_dir"],
        "words": script.word_count,
    }


def _research(ctx: RunContext) -> KnowledgeBase:
    _event(ctx, "stage", "generating research questions", "research")
    proposed: Questions = _call(
        ctx, "research.questions", "research", "researcher", research.questions_task(ctx)
    )
    limit = ctx.show.research.max_questions
    decision: FanoutDecision = _call(
        ctx,
        "orchestrate.fanout",
        "research",
        "orchestrator",
        FanoutTask(topic=ctx.topic, questions=proposed.questions, max_questions=limit),
    )
    guarded = guard_fanout(decision, proposed.questions, limit)
    chosen = [proposed.questions[i] for i in guarded.selected]
    _event(
        ctx,
        "decision",
        f"research fan-out: {len(chosen)} of {len(proposed.questions)} questions. "
        f"{guarded.rationale}",
        "research",
        selected=guarded.selected,
        rationale=guarded.rationale,
        overrides=guarded.overrides,
    )
    handles = [
        DBOS.start_workflow(research_question, ctx.run_id, index, q.model_dump(mode="json"))
        for index, q in enumerate(chosen)
    ]
    findings = [Findings.model_validate(handle.get_result()) for handle in handles]
    kb: KnowledgeBase = _call(
        ctx,
        "research.synthesis",
        "research",
        "researcher",
        research.synthesis_task(ctx, chosen, findings),
    )
    _event(
        ctx,
        "knowledge-base",
        f"{len(kb.notes)} notes in {len(kb.themes)} themes",
        "research",
        notes=len(kb.notes),
        themes=[theme.title for theme in kb.themes],
    )
    return kb


def _review_and_polish(
    ctx: RunContext, outline: Outline, script: Script, kb: KnowledgeBase
) -> tuple[Script, list[Verdict]]:
    max_rounds = ctx.show.quality.max_revision_rounds
    round_ = 0
    while True:
        _event(ctx, "stage", f"reviewing (round {round_})", "review")
        verdicts = [
            Verdict.model_validate(v)
            for v in review_step(
                ctx.run_id,
                round_,
                outline.model_dump(mode="json"),
                script.model_dump(mode="json"),
                kb.model_dump(mode="json"),
            )
        ]
        blocking = review.blocking(verdicts)
        if not blocking:
            _event(ctx, "decision", "accepted: no blocking findings", "review", round=round_)
            return script, verdicts
        decision: ReviewDecision = _call(
            ctx,
            f"orchestrate.review.{round_}",
            "review",
            "orchestrator",
            ReviewDecisionTask(round=round_, max_rounds=max_rounds, findings=blocking),
        )
        plan_ = guard_review(
            decision,
            blocking,
            round_=round_,
            max_rounds=max_rounds,
            segments=[s.id for s in outline.segments],
        )
        action = f"revise {', '.join(plan_.revise)}" if plan_.revise else "stop revising"
        _event(
            ctx,
            "decision",
            f"after review round {round_}: {action}. {plan_.rationale}",
            "review",
            round=round_,
            action=decision.action,
            revise=plan_.revise,
            rationale=plan_.rationale,
            overrides=plan_.overrides,
        )
        if not plan_.revise:
            return script, verdicts
        round_ += 1
        _event(ctx, "stage", f"polishing {', '.join(plan_.revise)} (round {round_})", "polish")
        for segment_id in plan_.revise:
            script = _revise(ctx, outline, script, kb, segment_id, blocking, round_)


def _revise(
    ctx: RunContext,
    outline: Outline,
    script: Script,
    kb: KnowledgeBase,
    segment_id: str,
    findings: list[Finding],
    round_: int,
) -> Script:
    segment = outline.segment(segment_id)
    task: Task[Any]
    if script.segment_turns(segment_id):
        task = polish.polish_task(ctx, outline, script, kb, segment_id, findings)
    else:
        task = write.segment_task(ctx, outline, segment, kb)
    draft: SegmentDraft = _call(ctx, f"polish.{round_}.{segment_id}", "polish", "polisher", task)
    turns = [turn.model_copy(update={"segment": segment_id}) for turn in draft.turns]
    return script.replace_segment(segment_id, turns)
