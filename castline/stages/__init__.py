"""The stages of the production line as plain functions: they build tasks and check results.

Sequencing them, and making each model call a durable step, is `castline.engine.workflows`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from castline.audio.tts import Voicing, plan_voicing
from castline.budget.policy import BudgetPolicy
from castline.budget.prices import Pricer
from castline.config import Show
from castline.domain import Source
from castline.llm.registry import Routing
from castline.llm.tasks import Question, ShowBrief
from castline.quality.integration import EarlierEpisode
from castline.retrieval import Retriever, too_long_to_send_whole


@dataclass(frozen=True)
class RunContext:
    """Everything a run's stages read: fixed when the run is created, so replays see the same."""

    run_id: str
    show: Show
    topic: str
    sources: list[Source]
    routing: Routing
    output_dir: str
    earlier: list[EarlierEpisode] = field(default_factory=list)
    show_dir: str = "."  # where the show bible is: relative paths in it are relative to this
    number: int | None = None  # the episode number; None for a run made before numbering
    planned_voicing: Voicing | None = None  # fixed when the run was created

    @cached_property
    def voicing(self) -> Voicing:
        """Who voices the run (planned again for a run recorded before plans were kept)."""
        return self.planned_voicing or plan_voicing(
            self.show, Path(self.show_dir), offline=self.routing.offline
        )

    @cached_property
    def covered(self) -> list[str]:
        """What earlier episodes of the show already said: research should find new material."""
        return sorted(
            {" ".join(t.text.split()) for e in self.earlier for t in e.script.turns if t.citations}
        )

    @cached_property
    def brief(self) -> ShowBrief:
        return ShowBrief.of(self.show)

    @cached_property
    def policy(self) -> BudgetPolicy:
        return BudgetPolicy(self.show.budget, Pricer(self.show.prices))

    @cached_property
    def retriever(self) -> Retriever | None:
        """The sources' passages indexed, when they are too long to send whole."""
        return Retriever(self.sources) if too_long_to_send_whole(self.sources) else None

    def sources_for(self, question: Question) -> list[Source]:
        """What a research question reads: every source whole, or, for sources too long for a
        prompt, the passages that answer it (`castline.retrieval`)."""
        if self.retriever is None:
            return self.sources
        return self.retriever.sources_for(f"{question.focus}. {question.text}")

    @cached_property
    def source_titles(self) -> dict[str, str]:
        return {source.id: source.title for source in self.sources}
