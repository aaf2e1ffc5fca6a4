"""Research: generate questions, research each one against the sources, synthesise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from castline.domain import KnowledgeBase
from castline.errors import BudgetRefused, NothingToCite
from castline.instructions import addressed_to_model
from castline.knowledge import merge_findings
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    Question,
    Questions,
    QuestionsTask,
    ResearchTask,
    SourceDigest,
    SynthesisTask,
)
from castline.orchestrator import guard_fanout
from castline.relevance import off_topic
from castline.stages import RunContext, web
from castline.text import quotable, sentences

if TYPE_CHECKING:
    from castline.engine.runner import Pipeline


# The most section headings of one source the question generator sees (a long report has
# thousands; the questions need its outline, not all of it).
MAX_HEADINGS = 80


def questions_task(ctx: RunContext) -> QuestionsTask:
    digests = [
        SourceDigest(
            id=source.id,
            title=source.title,
            headings=list(
                dict.fromkeys(
                    s.heading for s in source.sections if s.heading and s.heading != source.title
                )
            )[:MAX_HEADINGS],
        )
        for source in ctx.sources
    ]
    return QuestionsTask(
        show=ctx.brief,
        topic=ctx.topic,
        sources=digests,
        max_questions=ctx.show.research.max_questions,
    )


def research_task(ctx: RunContext, question: Question) -> ResearchTask:
    return ResearchTask(
        topic=ctx.topic,
        question=question,
        sources=ctx.sources_for(question),
        max_notes=ctx.show.research.notes_per_question,
        covered=ctx.covered,
        web_searches=web.search_limit(ctx),
    )


def synthesis_task(
    ctx: RunContext, questions: list[Question], findings: list[Findings]
) -> SynthesisTask:
    known = {source.id for source in ctx.sources}
    # A note citing a source that does not exist is dropped here, before it can reach the script.
    cleaned = [
        Findings(notes=[note for note in found.notes if note.source_id in known])
        for found in findings
    ]
    return SynthesisTask(topic=ctx.topic, questions=questions, findings=cleaned)


def run(line: Pipeline) -> KnowledgeBase | None:
    """Questions, the orchestrator's fan-out, one research call per question (batched when
    asked or when the budget is tight), then synthesis (by code if the budget refuses it)."""
    ctx = line.ctx
    line.steps.event("stage", "generating research questions", "research")
    no_search = web.why_no_search(ctx)
    if no_search is not None:
        line.steps.event("web-search-off", no_search, "research")
    try:
        proposed: Questions = line.call(
            "research.questions", "research", "researcher", questions_task(ctx)
        )
    except BudgetRefused as refused:
        line.skip("research questions", "research", str(refused))
        return None
    chosen = _fan_out(line, proposed.questions)
    findings: list[Findings] = []
    answered: list[Question] = []
    # Batched at half price when the show asks for it, or once the budget is tight.
    batch = ctx.show.research.batch or line.budget.mode != "normal"
    outcomes = line.steps.research(chosen, batch=batch)
    for question, outcome in zip(chosen, outcomes, strict=True):
        line.note_mode(outcome.mode)
        if outcome.output is None:
            line.skip(f"research question {question.focus!r}", "research", outcome.refusal)
            continue
        answered.append(question)
        findings.append(Findings.model_validate(outcome.output))
    if not answered:
        return None
    findings = _with_searched_pages(line, findings)
    task = synthesis_task(ctx, answered, _without_orders_to_models(line, findings))
    if len(answered) == len(chosen) and not any(found.notes for found in task.findings):
        raise NothingToCite(_why_nothing(ctx), run_id=ctx.run_id)
    try:
        kb: KnowledgeBase = line.call("research.synthesis", "research", "researcher", task)
    except BudgetRefused as refused:
        line.skip("model synthesis (merged by code instead)", "research", str(refused))
        kb = merge_findings(task)
    line.steps.event(
        "knowledge-base",
        f"{len(kb.notes)} notes in {len(kb.themes)} themes",
        "research",
        notes=len(kb.notes),
        themes=[theme.title for theme in kb.themes],
    )
    return kb


def _with_searched_pages(line: Pipeline, findings: list[Findings]) -> list[Findings]:
    """The findings with every searched page they cite fetched, kept with the run as a source,
    and cited by its id; notes that cannot be checked against their page are dropped."""
    ctx = line.ctx
    known = {source.id for source in ctx.sources}
    pages = web.cited_pages(findings, known)
    if not pages:
        return findings
    fetched, refused = web.fetch_all(pages, lambda p: line.steps.fetch_page(p.url, p.source_id))
    for source in fetched.values():
        if source.id not in {s.id for s in ctx.sources}:
            ctx.sources.append(source)  # a replay finds it kept with the run already
    kept, dropped = web.cite_fetched(findings, known, fetched, refused)
    line.steps.event(
        "web-pages",
        f"web search: {len(fetched)} of {len(pages)} cited page(s) fetched and kept as sources"
        + "".join(f"; {url}: {why}" for url, why in refused.items()),
        "research",
        pages={s.id: s.url for s in fetched.values()},
        refused=refused,
    )
    if dropped:
        line.steps.event(
            "notes-dropped",
            f"dropped {len(dropped)} note(s) from searched pages that could not be checked "
            f"(e.g. {dropped[0].source}: {dropped[0].why})",
            "research",
            notes=[{"source": d.source, "quote": d.quote, "why": d.why} for d in dropped],
        )
    return kept


def _without_orders_to_models(line: Pipeline, findings: list[Findings]) -> list[Findings]:
    """The findings without notes whose text addresses a language model ("ignore previous
    instructions and ..."): a source's words aimed at the model are not facts for the script.
    What was dropped, and why, is an audit event."""
    kept: list[Findings] = []
    dropped: list[dict[str, str]] = []
    for found in findings:
        notes = []
        for note in found.notes:
            addressed = addressed_to_model(note.claim) or addressed_to_model(note.quote)
            if addressed is None:
                notes.append(note)
            else:
                dropped.append({"source": note.source_id, "quote": note.quote, "why": addressed})
        kept.append(Findings(notes=notes))
    if dropped:
        line.steps.event(
            "notes-dropped",
            f"dropped {len(dropped)} note(s) whose text addresses a language model rather than "
            f"a reader (e.g. {dropped[0]['why']!r} in {dropped[0]['source']}): a source's "
            "instructions to a model are not facts for the episode",
            "research",
            notes=dropped,
        )
    return kept


def _why_nothing(ctx: RunContext) -> str:
    """Why every research question came back empty, when the budget refused none of them."""
    topic = ctx.topic
    fix = "give sources that discuss it in full sentences, or a topic they cover"
    unrelated = off_topic(ctx.sources, topic)
    related = [source for source in ctx.sources if source not in unrelated]
    if not related:
        reason = f"none of the sources mentions the topic {topic!r}"
    else:
        citable = {
            " ".join(sentence.split())
            for source in related
            for section in source.sections
            for sentence in sentences(section.text)
            if quotable(sentence)
        }
        covered = " ".join(ctx.covered)
        if ctx.covered and all(sentence[1:] in covered for sentence in citable):
            reason = (
                f"everything the sources say on it was already said in the show's "
                f"{len(ctx.earlier)} earlier episode(s)"
            )
            fix = "give new sources, or a topic the show has not covered"
        else:
            reason = f"research found nothing in the sources it could cite on {topic!r}"
    return (
        f"run {ctx.run_id} stopped in research: {reason}, so there is nothing to write an "
        f"episode from (the budget is not the cause, and resuming cannot help); {fix}"
    )


def _fan_out(line: Pipeline, questions: list[Question]) -> list[Question]:
    limit = line.ctx.show.research.max_questions
    by_code = FanoutDecision(
        selected=list(range(min(limit, len(questions)))),
        rationale=f"decided by code: the first {limit} questions, most relevant first",
    )
    decision = by_code
    if line.by_code("fanout"):
        line.skip("orchestrator fan-out decision", "research", f"{line.budget.mode} mode")
    else:
        task = FanoutTask(topic=line.ctx.topic, questions=questions, max_questions=limit)
        try:
            decision = line.call("orchestrate.fanout", "research", "orchestrator", task)
        except BudgetRefused as refused:
            line.skip("orchestrator fan-out decision", "research", str(refused))
    guarded = guard_fanout(decision, questions, limit)
    chosen = [questions[i] for i in guarded.selected]
    line.steps.event(
        "decision",
        f"research fan-out: {len(chosen)} of {len(questions)} questions. {guarded.rationale}",
        "research",
        selected=guarded.selected,
        rationale=guarded.rationale,
        overrides=guarded.overrides,
    )
    return chosen
