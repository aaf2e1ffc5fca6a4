"""The episode workflow on DBOS: the only module that knows about durable execution.

Every model call is exactly one DBOS step, so a call that finished is never made again after a
crash: `castline resume` replays the workflow, and completed steps return their checkpointed
output. Research questions run concurrently as child workflows. Events (the audit trail) are steps
too, so a replay does not write them twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dbos import DBOS, SetWorkflowID, WorkflowHandle

from castline import __version__
from castline.audio.timeline import Timeline
from castline.budget.report import cost_report
from castline.config import show_key
from castline.domain import Episode, KnowledgeBase, Outline, Script, Source, Verdict
from castline.engine.paid import batches, calls
from castline.engine.paid.calls import CallOutcome
from castline.engine.payloads import HumanDecision, Published, Voiced
from castline.engine.runner import Pipeline, RunResult
from castline.engine.runtime import context, store
from castline.errors import SourceError, StageFailed
from castline.llm.base import Task
from castline.llm.tasks import JudgeTask, Question
from castline.publish.episode import publish_audio
from castline.quality import gates
from castline.stages import RunContext, publish, research, voice


def start(run_id: str) -> WorkflowHandle[RunResult]:
    with SetWorkflowID(run_id):
        return DBOS.start_workflow(episode_workflow, run_id)


def status(workflow_id: str) -> str | None:
    found = DBOS.get_workflow_status(workflow_id)
    return found.status if found else None


def resume(workflow_id: str) -> WorkflowHandle[RunResult]:
    """Continue an interrupted workflow, or restart a failed one from its failed step; an
    episode whose process died before its workflow began starts now."""
    current = status(workflow_id)
    if current is None:
        return start(workflow_id)
    if current == "ERROR":
        steps = DBOS.list_workflow_steps(workflow_id)
        # a failed child workflow (a share of the clips, say) is started again, not only
        # waited for: waiting on the old one would only repeat its error
        failed = [
            step["function_id"]
            for step in steps
            if step["error"] is not None
            or (step["child_workflow_id"] and status(step["child_workflow_id"]) == "ERROR")
        ]
        start_step = (
            min(failed) if failed else (max((s["function_id"] for s in steps), default=0) + 1)
        )
        return DBOS.fork_workflow(workflow_id, start_step, application_version=__version__)
    return DBOS.resume_workflow(workflow_id)


def continue_after_review(workflow_id: str) -> WorkflowHandle[RunResult]:
    """Re-enter a finished episode workflow at its last review gate, which now finds the
    person's decision; every step before it is copied, not run again."""
    gates = [
        step["function_id"]
        for step in DBOS.list_workflow_steps(workflow_id)
        if step["function_name"] == "castline.review_gate"
    ]
    if not gates:
        raise RuntimeError(f"workflow {workflow_id} has no review gate to continue from")
    return DBOS.fork_workflow(workflow_id, max(gates), application_version=__version__)


# Steps


@DBOS.step(name="castline.call")
def call_step(run_id: str, step_key: str, stage: str, role: str, task: Task[Any]) -> CallOutcome:
    ctx = context(run_id)
    spec = calls.CallSpec.of(ctx, step_key, stage, role)
    return calls.execute(store(), spec, task, ctx.policy)


@DBOS.step(name="castline.fit_together")
def fit_together_step(
    run_id: str, stage: str, wanted: Sequence[tuple[str, str, Task[Any]]]
) -> bool:
    return calls.fit_together(store(), context(run_id), stage, wanted)


@DBOS.step(name="castline.event")
def event_step(
    run_id: str, kind: str, stage: str | None, message: str, data: dict[str, Any]
) -> None:
    if kind == "stage":
        store().update_run(run_id, stage=stage)
    store().add_event(run_id, kind, message, stage=stage, data=data)


@DBOS.step(name="castline.fetch_page")
def fetch_page_step(run_id: str, url: str, source_id: str) -> dict[str, Any]:
    """Fetch a page research's web search found, and keep it with the run: a replay returns
    the page it fetched, never fetching again."""
    from castline.sources import read_url

    ctx = context(run_id)
    try:
        page = read_url(url, allow_private=ctx.show.research.allow_private_urls)
    except SourceError as exc:
        return {"refused": exc.reason}
    source = page.model_copy(update={"id": source_id})
    store().add_source(run_id, source.model_dump(mode="json"))
    return {"source": source.model_dump(mode="json")}


@DBOS.step(name="castline.review")
def review_step(
    run_id: str, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
) -> list[Verdict]:
    ctx = context(run_id)
    started = time.perf_counter()
    verdicts = gates.run_checks(
        ctx.show, outline, script, kb, ctx.earlier, ctx.source_titles.values()
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
    return verdicts


@DBOS.step(name="castline.publish")
def publish_step(run_id: str, parsed: Episode) -> Published:
    ctx = context(run_id)
    started = time.perf_counter()
    directory = Path(ctx.output_dir)
    written = publish.publish(parsed, directory)
    if parsed.audio is not None:
        timeline = Timeline.model_validate_json((directory / voice.TIMELINE).read_text())
        written += publish_audio(parsed, timeline, directory, ctx.show, Path(ctx.show_dir))
        mp3 = directory / voice.MP3
        written.append(publish.Written(voice.MP3, mp3, _sha256(mp3), mp3.stat().st_size))
    compute_ms = (time.perf_counter() - started) * 1000
    report = cost_report(store(), run_id).as_json()
    written.append(publish.write_json(Path(ctx.output_dir) / "cost-report.json", report))
    for item in written:
        store().add_artifact(run_id, item.name, str(item.path), item.sha256, item.size)
    store().update_run(run_id, episode_title=parsed.script.title)
    store().save_script(
        run_id,
        show_key(ctx.show),
        parsed.script.title,
        ctx.show.host_names(),
        parsed.script.model_dump(mode="json"),
        parsed.accepted,
    )
    store().add_event(
        run_id,
        "published",
        f"{len(written)} files written to {ctx.output_dir}",
        stage="publish",
        data={"files": [item.name for item in written], "compute_ms": compute_ms},
    )
    return Published(output_dir=ctx.output_dir, files=[item.name for item in written])


@DBOS.step(name="castline.upload")
def upload_step(run_id: str) -> dict[str, Any]:
    """Upload the published files, then the feed, to the show's S3 target: a step of its own
    after `publish_step`, so a run that crashed or failed here uploads only what is missing."""
    from castline.errors import PublishError

    ctx = context(run_id)
    try:
        report = publish.upload(ctx.show, Path(ctx.show_dir), Path(ctx.output_dir))
    except PublishError as exc:
        raise PublishError(
            f"{exc}. The episode is complete in {ctx.output_dir}; resuming uploads what is missing",
            bucket=exc.bucket,
            key=exc.key,
        ) from None
    store().add_event(
        run_id,
        "uploaded",
        f"{len(report.uploaded)} files uploaded to {report.location}, "
        f"{len(report.unchanged)} already there",
        stage="publish",
        data=report.model_dump(mode="json"),
    )
    return report.model_dump(mode="json")


@DBOS.step(name="castline.batch.submit")
def batch_submit_step(
    run_id: str, key: str, role: str, stage: str, payloads: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    ctx = context(run_id)
    return batches.submit(store(), ctx, key, role, stage, _tasks(payloads))


@DBOS.step(name="castline.batch.state")
def batch_state_step(run_id: str, role: str, batch_id: str) -> str:
    return batches.state(context(run_id), role, batch_id)


@DBOS.step(name="castline.batch.collect")
def batch_collect_step(
    run_id: str, role: str, stage: str, submitted: dict[str, Any], payloads: dict[str, Any]
) -> dict[str, CallOutcome | None]:
    return batches.collect(store(), context(run_id), role, stage, submitted, _tasks(payloads))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tasks(payloads: dict[str, dict[str, Any]]) -> dict[str, Task[Any]]:
    return {
        key: Task.of_kind(payload["kind"]).model_validate(payload["task"])
        for key, payload in payloads.items()
    }


# How long to wait between polls of a batch: doubling from the first, capped at the last.
BATCH_POLL_S = (0.2, 60.0)


@DBOS.step(name="castline.clip")
def clip_step(run_id: str, index: int, script: Script) -> voice.Clip:
    ctx = context(run_id)
    spec = voice.clip_specs(ctx, script)[index]
    return voice.voice_clip(store(), ctx, spec, f"voice.turn.{index}")


@DBOS.workflow(name="castline.clips")
def clips_workflow(run_id: str, indices: list[int], script: Script) -> list[voice.Clip]:
    """A share of the clips, one step each; several of these run at once."""
    return [clip_step(run_id, index, script) for index in indices]


@DBOS.step(name="castline.master")
def master_step(
    run_id: str, outline: Outline, script: Script, rendered: list[voice.Clip]
) -> Voiced:
    ctx = context(run_id)
    started = time.perf_counter()
    info, timeline = voice.master_episode(ctx, outline, script, rendered)
    compute_ms = (time.perf_counter() - started) * 1000
    if info.length_note is not None:
        store().add_event(run_id, "audio-length", info.length_note, stage="voice")
    store().add_event(
        run_id,
        "mastered",
        f"{info.file}: {info.duration_s / 60:.1f} min, {info.loudness_lufs:.1f} LUFS, "
        f"true peak {info.true_peak_db:.1f} dBTP, {info.synthesized} of {info.clips} clips "
        "rendered for this run",
        stage="voice",
        data={"audio": info.model_dump(mode="json"), "compute_ms": compute_ms},
    )
    return Voiced(audio=info, timeline=timeline)


@DBOS.step(name="castline.review_gate")
def review_gate_step(run_id: str, round_: int, summary: dict[str, Any]) -> HumanDecision | None:
    """A person's decision, if one was made; otherwise put the run in the review queue.

    When a decision is made later, `castline review` forks the workflow at this step, so that
    it runs again, finds the decision and the episode goes on from here."""
    review = store().review(run_id, round_)
    if review is not None and review["status"] != "pending":
        return HumanDecision.model_validate({k: review[k] for k in ("status", "note", "script")})
    store().request_review(run_id, round_, summary)
    store().update_run(run_id, status="awaiting-review", stage="review")
    return None


class DurableSteps:
    """The pipeline's `Steps`, each one a DBOS step or child workflow."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> CallOutcome:
        return call_step(self.ctx.run_id, step_key, stage, role, task)

    def research(self, questions: list[Question], *, batch: bool) -> list[CallOutcome]:
        outcomes: dict[int, CallOutcome] = {}
        if batch and batches.batch_provider(self.ctx, "researcher") is not None:
            outcomes = self._research_batch(questions)
        pending = [i for i in range(len(questions)) if i not in outcomes]  # or failed in a batch
        wanted = [
            (f"research.question.{i}", "researcher", research.research_task(self.ctx, questions[i]))
            for i in pending
        ]

        def start(n: int) -> WorkflowHandle[CallOutcome]:
            i = pending[n]
            return DBOS.start_workflow(research_question, self.ctx.run_id, i, questions[i])

        outcomes.update(zip(pending, self._fan_out("research", wanted, start), strict=True))
        return [outcomes[i] for i in range(len(questions))]

    def _fan_out(
        self,
        stage: str,
        wanted: Sequence[tuple[str, str, Task[Any]]],
        start: Callable[[int], WorkflowHandle[CallOutcome]],
    ) -> list[CallOutcome]:
        """Start the nth call's workflow for each wanted call: all at once when the budget fits
        them together, otherwise one after another, so that each sees what the ones before it
        spent and the same calls are made (in the same order) whatever the timing."""
        if fit_together_step(self.ctx.run_id, stage, wanted):
            handles = [start(n) for n in range(len(wanted))]
            return [handle.get_result() for handle in handles]
        return [start(n).get_result() for n in range(len(wanted))]

    def _research_batch(self, questions: list[Question]) -> dict[int, CallOutcome]:
        keys = {f"research.question.{i}": i for i in range(len(questions))}
        payloads = {
            key: {
                "kind": "research",
                "task": research.research_task(self.ctx, questions[i]).model_dump(mode="json"),
            }
            for key, i in keys.items()
        }
        run_id = self.ctx.run_id
        submitted = batch_submit_step(run_id, "research", "researcher", "research", payloads)
        if submitted["batch_id"] is None:
            collected = batch_collect_step(run_id, "researcher", "research", submitted, payloads)
        else:
            wait = BATCH_POLL_S[0]
            while batch_state_step(run_id, "researcher", submitted["batch_id"]) != "ended":
                DBOS.sleep(wait)  # durable: a resumed run does not wait again for slept time
                wait = min(wait * 2, BATCH_POLL_S[1])
            collected = batch_collect_step(run_id, "researcher", "research", submitted, payloads)
        return {keys[key]: outcome for key, outcome in collected.items() if outcome is not None}

    def event(self, kind: str, message: str, stage: str | None, **data: Any) -> None:
        event_step(self.ctx.run_id, kind, stage, message, data)

    def fetch_page(self, url: str, source_id: str) -> Source | str:
        fetched = fetch_page_step(self.ctx.run_id, url, source_id)
        if "source" in fetched:
            return Source.model_validate(fetched["source"])
        return str(fetched["refused"])

    def review(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Verdict]:
        return review_step(self.ctx.run_id, round_, outline, script, kb)

    def publish(self, episode: Episode) -> Published:
        published = publish_step(self.ctx.run_id, episode)
        if self.ctx.show.publish.target == "s3" and episode.accepted:  # drafts stay local
            upload_step(self.ctx.run_id)
        return published

    def judge(self, tasks: list[tuple[str, str, JudgeTask]]) -> list[CallOutcome]:
        def start(n: int) -> WorkflowHandle[CallOutcome]:
            key, role, task = tasks[n]
            return DBOS.start_workflow(call_workflow, self.ctx.run_id, key, "review", role, task)

        return self._fan_out("review", tasks, start)

    def await_review(self, round_: int, summary: dict[str, Any]) -> HumanDecision | None:
        return review_gate_step(self.ctx.run_id, round_, summary)

    def voice(self, outline: Outline, script: Script) -> Voiced:
        share = self.ctx.show.audio.concurrency
        indices = list(range(len(script.turns)))
        groups = [indices[i::share] for i in range(min(share, len(indices)))]
        handles = [
            DBOS.start_workflow(clips_workflow, self.ctx.run_id, group, script) for group in groups
        ]
        rendered: dict[int, voice.Clip] = {}
        for group, handle in zip(groups, handles, strict=True):
            rendered.update(zip(group, handle.get_result(), strict=True))
        ordered = [rendered[i] for i in indices]
        refused = [r.refused for r in ordered if r.refused is not None]
        if refused:
            return Voiced(audio=None, refused=refused[0])
        return master_step(self.ctx.run_id, outline, script, ordered)


# Workflows


@DBOS.workflow(name="castline.research_question")
def research_question(run_id: str, index: int, question: Question) -> CallOutcome:
    ctx = context(run_id)
    task = research.research_task(ctx, question)
    return DurableSteps(ctx).call(f"research.question.{index}", "research", "researcher", task)


@DBOS.workflow(name="castline.call")
def call_workflow(
    run_id: str, step_key: str, stage: str, role: str, task: Task[Any]
) -> CallOutcome:
    """One call as its own workflow, so that several can run at once (evaluations)."""
    return call_step(run_id, step_key, stage, role, task)


@DBOS.workflow(name="castline.revoice")
def revoice_workflow(run_id: str, episode: Episode) -> RunResult:
    """Voice a published episode again (an edited script, a changed voice): only clips whose
    text, voice or settings changed are rendered; research, writing and review are not redone."""
    return _finishing(run_id, lambda: _revoice(run_id, episode))


def _revoice(run_id: str, parsed: Episode) -> RunResult:
    ctx = context(run_id)
    steps = DurableSteps(ctx)
    voiced = steps.voice(parsed.outline, parsed.script)
    if voiced.audio is None:  # the published episode stays as it was
        raise StageFailed("voice", run_id, f"the budget cannot fit {voiced.refused}")
    budget = parsed.budget.model_copy(update={"halted_at": None})  # if it halted before audio
    quality = parsed.quality.model_copy(
        update={
            "decision": parsed.quality.decision.replace("halted by budget in voice", "accepted")
        }
    )
    updated = parsed.model_copy(
        update={
            "audio": voiced.audio,
            "number": ctx.number,
            "accepted": True,
            "budget": budget,
            "quality": quality,
        }
    )
    published = steps.publish(updated)
    return RunResult(accepted=True, output_dir=published.output_dir, words=parsed.script.word_count)


def start_revoice(run_id: str, episode: Episode, attempt: int) -> WorkflowHandle[RunResult]:
    with SetWorkflowID(f"{run_id}-voice-{attempt}"):
        return DBOS.start_workflow(revoice_workflow, run_id, episode)


@DBOS.workflow(name="castline.episode")
def episode_workflow(run_id: str) -> RunResult:
    return _finishing(
        run_id, lambda: Pipeline(context(run_id), DurableSteps(context(run_id))).run()
    )


def _finishing(run_id: str, body: Callable[[], RunResult]) -> RunResult:
    """Run a workflow's body and record how it ended, in whichever process runs it (the one
    that started it, a resuming one, or a worker that took it over)."""
    store().claim_run(run_id)  # not a step: every process that runs the workflow claims it
    try:
        result = body()
    except Exception as exc:
        fail_step(run_id, f"{type(exc).__name__}: {exc}")
        raise
    finish_step(run_id, result)
    return result


@DBOS.step(name="castline.finish")
def finish_step(run_id: str, result: RunResult) -> None:
    if result.awaiting_review:  # the review gate already put it in the queue
        return
    status = result.status
    if not store().end_run(run_id, status=status, stage="done", finished_at=time.time()):
        return  # another process running this workflow recorded its end first
    record = store().get_run(run_id)
    cost = store().run_cost(run_id)
    halted = f", halted by budget in {result.halted_at}" if result.halted_at else ""
    store().add_event(
        run_id,
        status,
        f"run {status}: {result.words} words, cost ${cost:.4f}"
        + (" (shadow)" if record.offline else "")
        + f" of ${record.budget:.2f}{halted}",
        data={"blocking": result.blocking, "skipped": result.skipped},
    )


@DBOS.step(name="castline.fail")
def fail_step(run_id: str, message: str) -> None:
    record_failure(run_id, message)


def record_failure(run_id: str, message: str) -> None:
    record = store().get_run(run_id)
    if store().end_run(run_id, status="failed", error=message, finished_at=time.time()):
        store().add_event(run_id, "failed", message, stage=record.stage)
