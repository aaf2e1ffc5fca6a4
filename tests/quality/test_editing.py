"""A reviewer's edit: the script as text and back, and a re-check before it is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castline.cli import script_text
from castline.config import database_url
from castline.domain import Script, Turn
from castline.engine import episodes
from castline.errors import ConfigError
from castline.quality.editing import check_edit, parse_script
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

SCRIPT = Script(
    title="T",
    turns=[
        Turn(speaker="Maya", text="Welcome to Heat Check.", segment="intro"),
        Turn(
            speaker="Theo",
            text="Asphalt reflects little: 5 to 10 percent.",
            segment="s1",
            citations=["N1", "N2"],
        ),
        Turn(speaker="Maya", text="That: matters.", segment="s1"),
    ],
)


def test_a_script_survives_the_round_trip_through_text() -> None:
    text = script_text(SCRIPT.model_dump(mode="json"))
    assert "## s1" in text and "Theo: Asphalt reflects little: 5 to 10 percent.  [N1, N2]" in text
    assert parse_script(text, "T") == SCRIPT


def test_an_edit_changes_only_what_was_edited() -> None:
    text = script_text(SCRIPT.model_dump(mode="json")).replace("That: matters.", "Indeed.")
    edited = parse_script(text, "T")
    assert [t.text for t in edited.turns][-1] == "Indeed."
    assert edited.turns[:2] == SCRIPT.turns[:2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Maya: hello\n", "line 1 of the edited script is before the first `## segment` line"),
        ("## s1\nno speaker here\n", "line 2 of the edited script is unreadable"),
    ],
)
def test_an_unreadable_edit_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_script(text, "T")


def test_an_edited_script_may_attribute_facts_to_the_runs_sources(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    store = Store(database_url())
    record = store.get_run(outcome.run_id)
    episode = json.loads((Path(str(outcome.output_dir)) / "episode.json").read_text())
    script = Script.model_validate(episode["script"])
    titles = [source["title"] for source in store.load_sources(outcome.run_id)]

    assert check_edit(record, episode, script, titles) == []  # as the run's own review found
    # without the titles, "according to <a source's title>" reads as a name no note holds
    assert check_edit(record, episode, script) != []
