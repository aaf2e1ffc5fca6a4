"""report.html as publishing writes it: beside report.md, self-contained, with its charts and
the recommendations the run's measurements call for, and every text from a run escaped."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

from castline.config import database_url
from castline.domain import AudioInfo, Episode
from castline.engine import episodes
from castline.insights import completion_report
from castline.insights.html import report_html
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _produced(show_copy: Path) -> tuple[Store, Path]:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    return Store(database_url()), outcome.output_dir


def test_publishing_writes_a_self_contained_report_html(show_copy: Path) -> None:
    store, output = _produced(show_copy)
    html = (output / "report.html").read_text()
    for chart in ("stage", "role", "model", "quality"):
        assert re.search(rf'id="chart-{chart}"><svg [^>]*viewBox="0 0 \d', html), chart
    assert html.count("<svg") == 4
    # nothing is fetched when it is viewed, and nothing runs
    assert "<script" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html.lower()
    # the figures are the run's: its shadow cost, and the offline run's unbatched research
    cost = json.loads((output / "cost-report.json").read_text())
    assert f"${Decimal(cost['total']):,.4f} of $33.2500" in html
    assert 'data-kind="batch-research"' in html
    assert "Produced offline" in html
    assert "report.html" in {a.name for a in store.artifacts(store.list_runs(1)[0].id)}


def test_every_text_from_a_run_is_escaped(show_copy: Path) -> None:
    store, output = _produced(show_copy)
    episode = Episode.model_validate_json((output / "episode.json").read_text())
    rounds = episode.quality.rounds
    verdict = rounds[0].verdicts[0].model_copy(update={"reason": HOSTILE, "criterion": HOSTILE})
    hostile = episode.model_copy(
        update={
            "script": episode.script.model_copy(update={"title": HOSTILE}),
            "show_title": HOSTILE,
            "quality": episode.quality.model_copy(
                update={
                    "rounds": [
                        rounds[0].model_copy(update={"verdicts": [verdict]}),
                        *rounds[1:],
                    ]
                }
            ),
            "audio": AudioInfo(
                file=HOSTILE,
                bytes=1_234_567,
                duration_s=754.2,
                loudness_lufs=-16.04,
                true_peak_db=-1.52,
                clips=40,
                synthesized=38,
            ),
        }
    )
    run_id = episode.run_id
    store.add_event(run_id, "budget-mode", "budget mode normal -> economy", data={
        "from": "normal", "to": "economy", "committed": "26.6", "budget": "33.25"})  # fmt: skip
    html = report_html(completion_report(store, hostile))
    assert re.search(r"<td>normal</td><td>economy</td><td[^>]*>26.6</td>", html)
    assert HOSTILE not in html
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # the audio figures, as measured
    assert "12.6 min" in html and "-16.0 LUFS integrated" in html and "-1.5 dBTP" in html
    assert "40, 38 rendered for this run" in html
