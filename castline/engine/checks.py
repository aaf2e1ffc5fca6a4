"""The judged criteria of `castline check`: the show's two evaluators (and its tie-breaker) on a
script outside any episode.

Their calls are paid calls like a run's: each is reserved against the show's budget, recorded
with its request, reply, usage and cost, and reported. The check is recorded as a run of its own
(`castline runs show RUN` shows its calls), with no episode number and no workflow: a check that
is interrupted is simply run again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from castline.budget.prices import Pricer
from castline.checking import CheckReport, notes_of, outline_of
from castline.config import load_show
from castline.domain import Source, Verdict
from castline.engine import runtime
from castline.engine.paid import calls
from castline.llm.registry import plan_routing
from castline.llm.tasks import JudgeTask, Judgment
from castline.quality.consensus import Consensus, tie_broken
from castline.quality.content import claims_to_verify
from castline.quality.gates import JUDGED
from castline.stages import RunContext
from castline.stages.review import EVALUATORS, judge_tasks, settle
from castline.store.records import to_nanos

ROLES = frozenset({*EVALUATORS.values(), "evaluator_tiebreaker", "fallback"})


@dataclass(frozen=True)
class JudgedCheck:
    """What the evaluators decided, what the budget refused, and what it cost."""

    run_id: str
    routing: str
    offline: bool
    results: list[Consensus]
    disputed: dict[str, list[str]] = field(default_factory=dict)  # claims, by criterion
    refused: dict[str, str] = field(default_factory=dict)  # criterion: why
    cost: Decimal = Decimal(0)


def judged(
    show_path: Path,
    report: CheckReport,
    sources: Sequence[Source],
    *,
    provider: str | None = None,
    only: Sequence[str] = (),
) -> CheckReport:
    """The report with its judged criteria run by the show's evaluators instead of skipped."""
    check = judge(show_path, report, sources, provider=provider, only=only)
    decided = {c.criterion: c for c in check.results}
    criteria = []
    for result in report.criteria:
        consensus = decided.get(result.criterion)
        if consensus is not None:
            scores = ", ".join(f"{who} {score:.2f}" for who, score in consensus.scores.items())
            findings = list(consensus.claim_findings) or [
                f for v in consensus.verdicts if not v.passed for f in v.findings
            ]
            why = "; ".join(dict.fromkeys(f.message for f in findings[:3]))
            how = f" ({consensus.resolved_by})" if consensus.resolved_by else ""
            verdict = Verdict(
                gate=result.gate,
                criterion=result.criterion,
                evaluator="consensus",
                score=min(consensus.scores.values()),
                passed=consensus.passed,
                reason=f"{scores}{how}: {why or consensus.verdicts[0].reason}",
                findings=findings,
            )
            result = replace(
                result,
                status="passed" if consensus.passed else "failed",
                score=verdict.score,
                reason=verdict.reason,
                verdict=verdict,
            )
        elif result.criterion in check.refused:
            refusal = check.refused[result.criterion]
            result = replace(result, reason=f"the budget refused it: {refusal}")
        criteria.append(result)
    return replace(
        report,
        criteria=criteria,
        judged_by=check.routing,
        run_id=check.run_id,
        cost=check.cost,
        shadow=check.offline,
    )


def judge(
    show_path: Path,
    report: CheckReport,
    sources: Sequence[Source],
    *,
    provider: str | None = None,
    only: Sequence[str] = (),
) -> JudgedCheck:
    """Run the judged criteria of the gates in `only` (all when empty) on the report's script."""
    show = load_show(show_path)
    routing = plan_routing(show, provider, needed=ROLES)
    pricer = Pricer(show.prices)
    for role in ROLES:
        for route in routing.chain(role):
            pricer.check(route.priced_as)
    store = runtime.store()
    run_id = uuid.uuid4().hex[:12]
    script = report.script
    store.create_run(
        id=run_id,
        show_title=show.show.title,
        show_path=str(show_path.resolve()),
        topic=f"check of {script.title}",
        status="running",
        stage="review",
        offline=routing.offline,
        routing_reason=routing.reason,
        spec={
            "show": show.model_dump(mode="json"),
            "routing": {role: [asdict(r) for r in chain] for role, chain in routing.routes.items()},
            "provider": provider,
            "check": True,
        },
        workflow_id=None,
        output_dir="",
        budget_nanos=to_nanos(show.budget.per_episode),
    )
    store.save_sources(run_id, [source.model_dump(mode="json") for source in sources])
    ctx = RunContext(
        run_id=run_id,
        show=show,
        topic=f"check of {script.title}",
        sources=list(sources),
        routing=routing,
        output_dir="",
        show_dir=str(show_path.parent),
    )
    try:
        judged = _judge(ctx, report, only)
    except BaseException as exc:
        store.update_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    store.update_run(run_id, status="completed", stage=None)
    cost = sum((c.cost for c in store.calls(run_id)), Decimal(0))
    return JudgedCheck(run_id, routing.reason, routing.offline, *judged, cost=cost)


def _judge(
    ctx: RunContext, report: CheckReport, only: Sequence[str]
) -> tuple[list[Consensus], dict[str, list[str]], dict[str, str]]:
    kb = notes_of(ctx.sources)
    script = report.script
    criteria = [j for j in JUDGED if not only or j.gate in only]
    tasks = judge_tasks(
        "check",
        ctx.brief,
        kb,
        outline_of(script, kb),
        script,
        criteria,
        claims_to_verify(report.claims),
    )
    store = runtime.store()
    outcomes = {
        key: calls.execute(store, calls.CallSpec.of(ctx, key, "review", role), task, ctx.policy)
        for key, role, task in tasks
    }
    quality = ctx.show.quality
    results: list[Consensus] = []
    disputed: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for criterion in criteria:
        judgments: dict[str, Judgment] = {}
        for evaluator in EVALUATORS:
            outcome = outcomes[f"check.{criterion.name}.{evaluator}"]
            if outcome.output is None:
                refused[criterion.name] = outcome.refusal
                break
            judgments[evaluator] = Judgment.model_validate(outcome.output)
        if criterion.name in refused:
            continue
        result, _, disputes = settle(criterion, judgments, tasks, quality)
        if disputes:
            disputed[criterion.name] = disputes
        if result.decision == "escalate" and quality.escalation != "human":
            result = _tiebreak(ctx, result, tasks, refused)
        results.append(result)
    return results, disputed, refused


def _tiebreak(
    ctx: RunContext,
    result: Consensus,
    tasks: list[tuple[str, str, JudgeTask]],
    refused: dict[str, str],
) -> Consensus:
    """The tie-breaker's verdict where the two evaluators disagree, as a run would ask for it."""
    criterion = result.criterion
    task = next(t for key, _, t in tasks if key == f"check.{criterion}.primary")
    key = f"check.{criterion}.tiebreaker"
    tiebreak = task.model_copy(update={"evaluator": "tiebreaker"})
    spec = calls.CallSpec.of(ctx, key, "review", "evaluator_tiebreaker")
    outcome = calls.execute(runtime.store(), spec, tiebreak, ctx.policy)
    if outcome.output is None:
        refused[criterion] = f"tie-breaking: {outcome.refusal}"
        return result
    judgment = Judgment.model_validate(outcome.output)
    return tie_broken(result, judgment, ctx.show.quality.consensus_threshold)
