"""The typed tasks each role is asked to do, and the shapes of their answers.

`TASK_TYPES` is every task class by its `kind`: each task here registers itself as it is defined
(`Task.__init_subclass__`), so the registry is complete once this module is imported.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema

from castline.config import BrandVoice, Rules, Show
from castline.domain import Finding, KnowledgeBase, Note, Outline, Script, Segment, Source, Turn
from castline.llm.base import TASK_TYPES as TASK_TYPES
from castline.llm.base import Task


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostBrief(_Out):
    name: str
    persona: str


class ShowBrief(_Out):
    """What every role needs to know about the show; the shared, cacheable prefix of prompts."""

    title: str
    description: str
    language: str
    hosts: list[HostBrief]
    brand_voice: BrandVoice
    rules: Rules

    @classmethod
    def of(cls, show: Show) -> ShowBrief:
        return cls(
            title=show.show.title,
            description=show.show.description,
            language=show.show.language,
            hosts=[HostBrief(name=h.name, persona=h.persona) for h in show.hosts],
            brand_voice=show.brand_voice,
            rules=show.rules,
        )


class SourceDigest(_Out):
    id: str
    title: str
    headings: list[str]


class Question(_Out):
    text: str
    focus: str = Field(description="the theme or section heading this question explores")
    source_id: str = Field(default="", description="the source whose section prompted it, if any")


class Questions(_Out):
    questions: list[Question]


class FanoutDecision(_Out):
    selected: list[int] = Field(description="indices of the questions to research, in order")
    rationale: str


class FoundNote(_Out):
    claim: str
    source_id: str
    quote: str = Field(description="the exact passage of the source that supports the claim")


def _unless_used(data: Any, field: str, value: object) -> Any:
    """A dump without a web search field left empty: a show that does not search sends, caches
    and journals exactly what it did before search existed."""
    if isinstance(data, dict) and not value:
        data.pop(field, None)
    return data


class WebResult(_Out):
    """A page the provider's web search returned (its URL after any redirect it reports)."""

    url: str
    title: str = ""


class Findings(_Out):
    notes: list[FoundNote]
    # Filled by the provider from its search results, never asked of the model: the pages a
    # note may cite by URL (or title) instead of a source id.
    web: SkipJsonSchema[list[WebResult]] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_pages_unless_searched(self, dump: SerializerFunctionWrapHandler) -> Any:
        return _unless_used(dump(self), "web", self.web)


class SegmentDraft(_Out):
    turns: list[Turn]


class ReviewDecision(_Out):
    action: Literal["accept", "revise"]
    segments: list[str] = Field(default_factory=list, description="segment ids to revise")
    rationale: str


class QuestionsTask(Task[Questions]):
    kind: ClassVar[str] = "questions"
    instructions: ClassVar[str] = (
        "Propose research questions for this episode, one per distinct theme the sources cover, "
        "most relevant to the topic first."
    )
    output_type: ClassVar[type[BaseModel]] = Questions
    max_output_tokens: ClassVar[int] = 1500

    show: ShowBrief
    topic: str
    sources: list[SourceDigest]
    max_questions: Annotated[int, Field(ge=1)]


class FanoutTask(Task[FanoutDecision]):
    kind: ClassVar[str] = "fanout"
    instructions: ClassVar[str] = (
        "Decide which research questions to pursue. Select at most max_questions, prefer "
        "questions that cover different themes, and explain the choice in one or two sentences."
    )
    output_type: ClassVar[type[BaseModel]] = FanoutDecision
    max_output_tokens: ClassVar[int] = 600

    topic: str
    questions: list[Question]
    max_questions: Annotated[int, Field(ge=1)]


class ResearchTask(Task[Findings]):
    kind: ClassVar[str] = "research"
    instructions: ClassVar[str] = (
        "Answer the research question from the sources only. Each note is one factual claim with "
        "the id of its source and the exact sentence that supports it. Never use outside knowledge."
    )
    output_type: ClassVar[type[BaseModel]] = Findings
    max_output_tokens: ClassVar[int] = 4000

    topic: str
    question: Question
    sources: list[Source]
    max_notes: Annotated[int, Field(ge=1)]
    covered: list[str] = Field(
        default_factory=list, description="what earlier episodes said: find something new"
    )
    web_searches: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="the most web searches you may make; a note from a search result gives the "
        "page's URL as its source_id and quotes the page exactly",
    )

    @property
    def search_limit(self) -> int:
        return self.web_searches

    @model_serializer(mode="wrap")
    def _without_searches_unless_allowed(self, dump: SerializerFunctionWrapHandler) -> Any:
        return _unless_used(dump(self), "web_searches", self.web_searches)


class SynthesisTask(Task[KnowledgeBase]):
    kind: ClassVar[str] = "synthesis"
    instructions: ClassVar[str] = (
        "Merge the findings into one knowledge base: drop duplicates, give every note an id "
        "(N1, N2, ...), and group notes into themes, one per research question."
    )
    output_type: ClassVar[type[BaseModel]] = KnowledgeBase
    max_output_tokens: ClassVar[int] = 16000

    topic: str
    questions: list[Question]
    findings: list[Findings]


class PlanTask(Task[Outline]):
    kind: ClassVar[str] = "plan"
    instructions: ClassVar[str] = (
        "Plan the episode: an intro, one body segment per theme worth covering, and an outro. "
        "Give each segment a goal, the note ids it uses and a target in spoken words; the targets "
        "must add up to target_words."
    )
    output_type: ClassVar[type[BaseModel]] = Outline
    max_output_tokens: ClassVar[int] = 3000

    show: ShowBrief
    topic: str
    knowledge_base: KnowledgeBase
    target_words: Annotated[int, Field(gt=0)]


class WriteSegmentTask(Task[SegmentDraft]):
    kind: ClassVar[str] = "write"
    instructions: ClassVar[str] = (
        "Write this segment as a natural conversation between the hosts, in the show's voice. "
        "Use the segment's notes (segment.note_ids in the knowledge base); every turn that "
        "states a fact cites the ids of its notes. Reach the segment's target "
        "words. Respect the rules: never use a forbidden phrase; the outro carries every "
        "required disclaimer."
    )
    output_type: ClassVar[type[BaseModel]] = SegmentDraft
    max_output_tokens: ClassVar[int] = 6000

    show: ShowBrief
    knowledge_base: KnowledgeBase
    outline: Outline
    segment: Segment
    source_titles: dict[str, str]

    @property
    def notes(self) -> list[Note]:
        """The segment's own notes, in its order (the whole knowledge base is sent so that every
        writing call shares one cacheable prefix)."""
        known = {note.id: note for note in self.knowledge_base.notes}
        return [known[n] for n in self.segment.note_ids if n in known]


class PolishTask(Task[SegmentDraft]):
    kind: ClassVar[str] = "polish"
    instructions: ClassVar[str] = (
        "Revise this segment so that every finding is resolved. Change only what the findings "
        "require; keep citations on factual turns."
    )
    output_type: ClassVar[type[BaseModel]] = SegmentDraft
    max_output_tokens: ClassVar[int] = 6000

    show: ShowBrief
    knowledge_base: KnowledgeBase
    outline: Outline
    segment: Segment
    turns: list[Turn]
    findings: list[Finding]
    source_titles: dict[str, str] = Field(default_factory=dict)


class ReviewDecisionTask(Task[ReviewDecision]):
    kind: ClassVar[str] = "review-decision"
    instructions: ClassVar[str] = (
        "Decide whether to accept the script or revise the segments with blocking findings. "
        "Explain the decision in one or two sentences."
    )
    output_type: ClassVar[type[BaseModel]] = ReviewDecision
    max_output_tokens: ClassVar[int] = 600

    round: int
    max_rounds: int
    findings: list[Finding]


class Evidence(_Out):
    segment: str | None = None
    quote: str


class ClaimToVerify(_Out):
    """A claim of the script whose facts are in the notes but whose wording the deterministic
    check cannot judge: the evaluator says whether its notes say the same."""

    id: str
    segment: str
    turn: int
    text: str
    notes: list[str]  # the ids of the notes it should be checked against, closest first


class ClaimJudgment(_Out):
    """An evaluator's verdict on one claim, with the note and the words that decide it."""

    id: str
    verdict: Literal["supported", "contradicted", "not-found"]
    note: str | None = None
    evidence: str = ""


class Judgment(_Out):
    """One evaluator's score of one criterion, with its reasons and the lines that justify it;
    for accuracy, a verdict on each claim it was asked to verify."""

    score: Annotated[float, Field(ge=0, le=1)]
    reason: str
    evidence: list[Evidence] = Field(default_factory=list)
    claims: list[ClaimJudgment] = Field(default_factory=list)


class JudgeTask(Task[Judgment]):
    kind: ClassVar[str] = "judge"
    instructions: ClassVar[str] = (
        "Judge the script on one criterion, following its rubric exactly. Score from 0 to 1, "
        "give your reason in one or two sentences, and quote the lines that justify the score "
        "with the id of their segment."
    )
    output_type: ClassVar[type[BaseModel]] = Judgment
    max_output_tokens: ClassVar[int] = 1500

    show: ShowBrief
    knowledge_base: KnowledgeBase
    outline: Outline
    script: Script
    gate: str
    criterion: str
    rubric: str
    evaluator: Literal["primary", "secondary", "tiebreaker"]
    claims: list[ClaimToVerify] = Field(default_factory=list)
