"""A batch of episodes of one show (`castline batch show.yaml season.yaml`): what each is
about, and the most the whole batch may spend."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from castline.config import load_yaml
from castline.errors import SeasonFileError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedEpisode(_Strict):
    topic: str = Field(min_length=1, max_length=500)
    sources: list[str] = Field(min_length=1)
    number: int | None = Field(default=None, ge=1, le=99_999)

    @field_validator("topic")
    @classmethod
    def _topic_has_words(cls, value: str) -> str:
        cleaned = " ".join(value.split())
        if not cleaned:
            raise ValueError("is empty; say what the episode is about")
        return cleaned


class Season(_Strict):
    budget: Decimal | None = Field(
        default=None,
        gt=0,
        description="the most the batch may spend; default: no cap beyond "
        "each episode's own budget",
    )
    episodes: list[PlannedEpisode] = Field(min_length=1, max_length=200)

    @field_validator("episodes")
    @classmethod
    def _numbers_unique(cls, value: list[PlannedEpisode]) -> list[PlannedEpisode]:
        numbers = [e.number for e in value if e.number is not None]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(f"episode number(s) {repeated} given to more than one episode")
        return value

    def source_paths(self, episode: PlannedEpisode, base: Path) -> list[Path | str]:
        """An episode's sources: URLs as they are, relative paths from the batch file's
        folder."""
        from castline.fetching import is_url

        return [
            source
            if is_url(source)
            else base / source
            if not Path(source).is_absolute()
            else Path(source)
            for source in episode.sources
        ]


def load_season(path: Path) -> Season:
    return load_yaml(path, Season, SeasonFileError)
