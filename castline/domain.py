"""What an episode is made of, from sources to the finished script.

These models are the contract between stages and the output schemas of the model calls, so they
forbid unknown fields: a model reply with a stray field is invalid, not silently accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Section(_Model):
    heading: str
    text: str


SourceKind = Literal["text", "markdown", "html", "pdf"]


class Source(_Model):
    """A document the episode draws on, with the text castline extracted from it."""

    id: str
    title: str
    path: str
    kind: SourceKind
    sha256: str
    sections: list[Section]
    url: str | None = None  # where it was fetched from, after redirects (a URL source)
    retrieved_at: str | None = None  # when, ISO 8601 UTC

    @property
    def reference(self) -> str:
        """How show notes point to it: the file's name, or the URL and when it was read."""
        if self.url is None:
            return Path(self.path).name
        return f"{self.url}, retrieved {(self.retrieved_at or '')[:10]}"

    @property
    def text(self) -> str:
        return "\n\n".join(section.text for section in self.sections)

    @property
    def word_count(self) -> int:
        return len(self.text.split())


class Note(_Model):
    """One researched claim, tied to the source passage that supports it."""

    id: str
    claim: str
    source_id: str
    quote: str
    question: int = Field(description="index of the research question this note answers")


class Theme(_Model):
    title: str
    question: str
    note_ids: list[str]


class KnowledgeBase(_Model):
    topic: str
    themes: list[Theme]
    notes: list[Note]

    @model_validator(mode="after")
    def _themes_use_known_notes(self) -> KnowledgeBase:
        known = {note.id for note in self.notes}
        for theme in self.themes:
            unknown = [n for n in theme.note_ids if n not in known]
            if unknown:
                raise ValueError(f"theme {theme.title!r} lists unknown note ids {unknown}")
        return self

    def note(self, note_id: str) -> Note:
        for note in self.notes:
            if note.id == note_id:
                return note
        raise KeyError(note_id)


SegmentKind = Literal["intro", "body", "outro"]


class Segment(_Model):
    id: str
    kind: SegmentKind
    title: str
    goal: str
    target_words: Annotated[int, Field(gt=0)]
    note_ids: list[str] = Field(default_factory=list)


class Outline(_Model):
    title: str
    summary: str
    segments: Annotated[list[Segment], Field(min_length=1)]

    def segment(self, segment_id: str) -> Segment:
        for segment in self.segments:
            if segment.id == segment_id:
                return segment
        raise KeyError(segment_id)

    @property
    def target_words(self) -> int:
        return sum(segment.target_words for segment in self.segments)


class Turn(_Model):
    speaker: str
    text: str
    segment: str
    citations: list[str] = Field(default_factory=list, description="ids of the notes it relies on")


class Script(_Model):
    title: str
    turns: list[Turn]

    @property
    def word_count(self) -> int:
        return sum(len(turn.text.split()) for turn in self.turns)

    def segment_turns(self, segment_id: str) -> list[Turn]:
        return [turn for turn in self.turns if turn.segment == segment_id]

    def replace_segment(self, segment_id: str, turns: list[Turn]) -> Script:
        """A copy with one segment's turns replaced, keeping every other turn where it was."""
        result: list[Turn] = []
        inserted = False
        for turn in self.turns:
            if turn.segment != segment_id:
                result.append(turn)
            elif not inserted:
                result.extend(turns)
                inserted = True
        if not inserted:
            result.extend(turns)
        return Script(title=self.title, turns=result)


Severity = Literal["error", "warning"]


class Finding(_Model):
    """One thing a check found wrong, located precisely enough to fix only that part."""

    check: str
    message: str
    severity: Severity = "error"
    segment: str | None = None
    turn: int | None = Field(default=None, description="index of the turn in the script")
    subject: str | None = Field(default=None, description="the exact text at issue, if any")


class Verdict(_Model):
    """A gate criterion's outcome: a score, a decision and the reasons for it."""

    gate: str
    criterion: str
    evaluator: str
    score: Annotated[float, Field(ge=0, le=1)]
    passed: bool
    reason: str
    findings: list[Finding] = Field(default_factory=list)


class ConsensusRecord(_Model):
    """How one judged criterion was decided: both evaluators' scores and what followed."""

    gate: str
    criterion: str
    scores: dict[str, float]
    decision: Literal["pass", "fail", "escalate"]
    resolved_by: str | None = None
    passed: bool


class GateAgreement(_Model):
    gate: str
    criteria: int
    agreement_rate: float
    mean_absolute_difference: float


class QualityRound(_Model):
    round: int
    verdicts: list[Verdict]
    consensus: list[ConsensusRecord] = Field(default_factory=list)
    revised: list[str] = Field(default_factory=list, description="segments rewritten after it")
    words_before: dict[str, int] = Field(default_factory=dict)
    words_after: dict[str, int] = Field(default_factory=dict)


class QualityReport(_Model):
    rounds: list[QualityRound] = Field(default_factory=list)
    agreement: list[GateAgreement] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    human: str | None = Field(default=None, description="a reviewer's decision, if one was asked")
    decision: str = ""


class BudgetOutcome(_Model):
    """How the budget shaped the episode: the mode reached, what was given up, and whether the
    run had to stop early (and where)."""

    mode: Literal["normal", "economy", "degraded", "halted"] = "normal"
    skipped: list[str] = Field(default_factory=list)
    halted_at: str | None = None


class AudioInfo(_Model):
    """The mastered episode as measured from the encoded file."""

    file: str
    bytes: int
    duration_s: float
    loudness_lufs: float
    true_peak_db: float
    clips: int
    synthesized: int = Field(description="clips rendered for this run (the rest were cached)")
    length_note: str | None = Field(
        default=None, description="how far the length misses the target, when beyond tolerance"
    )


class Episode(_Model):
    """A finished (or rejected) episode: what was published and how it was judged."""

    run_id: str
    number: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="the episode number, fixed when the run was created"
    )
    show_title: str
    topic: str
    offline: bool
    outline: Outline
    script: Script
    knowledge_base: KnowledgeBase
    sources: list[Source]
    verdicts: list[Verdict]
    accepted: bool
    budget: BudgetOutcome = BudgetOutcome()
    quality: QualityReport = QualityReport()
    audio: AudioInfo | None = None

    @property
    def heading(self) -> str:
        """The title as show notes head it: "Episode 3: ...". The feed and the MP3 keep the bare
        title and carry the number in its own field, as Apple asks."""
        if self.number is None:
            return self.script.title
        return f"Episode {self.number}: {self.script.title}"
