"""report.html and the show's stats page: one self-contained file each (styles and charts
inline, nothing fetched at view time), rendered by Jinja2 with autoescaping on, so every text
that came from a source, a model or a show bible is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from castline.domain import Episode
from castline.insights import charts
from castline.insights.completion import CompletionReport, completion_report
from castline.insights.history import ShowHistory
from castline.store import Store

_environment = Environment(
    loader=PackageLoader("castline.insights", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["plain"] = lambda value: _display(value)
_environment.filters["usd"] = lambda value: f"${Decimal(value):,.4f}"
_environment.filters["pct"] = lambda value: f"{float(value):.1%}"
_environment.filters["when"] = lambda ts: datetime.fromtimestamp(float(ts), UTC).strftime(
    "%Y-%m-%d %H:%M UTC"
)


def report_html(report: CompletionReport) -> str:
    """The completion report of one episode as a standalone HTML page."""
    cost = report.cost
    drawn: dict[str, Markup] = {}
    rounds = report.gate_scores()
    if charts.available():
        for name, rows in (
            ("stage", cost.by_stage),
            ("role", cost.by_role),
            ("model", cost.by_model),
        ):
            if rows:
                drawn[name] = charts.bars(
                    f"Cost by {name}", [(r.key, float(r.total)) for r in rows]
                )
        if rounds:
            drawn["quality"] = charts.grouped(
                "Mean score per gate, by review round",
                report.gates,
                [(f"round {n}", [scores.get(g) for g in report.gates]) for n, scores in rounds],
            )
    return _environment.get_template("report.html.j2").render(
        report=report, episode=report.episode, cost=cost, charts=drawn, rounds=rounds,
        no_charts=_no_charts(),
    )  # fmt: skip


def stats_html(history: ShowHistory) -> str:
    """The show's history as a standalone HTML page, with its charts."""
    episodes = history.episodes
    labels = [f"#{e.number}" if e.number is not None else e.run_id[:6] for e in episodes]
    drawn: dict[str, Markup] = {}
    per_minute = [float(e.cost_per_minute) if e.cost_per_minute else None for e in episodes]
    if charts.available() and episodes:
        drawn["cost"] = charts.lines(
            "Cost per episode (USD)",
            labels,
            [
                ("cost", [float(e.cost) for e in episodes]),
                ("revision cost", [float(e.polish_cost) for e in episodes]),
            ],
        )
        if any(v is not None for v in per_minute):
            drawn["per_minute"] = charts.lines(
                "Cost per minute of audio (USD)", labels, [("cost per minute", per_minute)]
            )
        drawn["quality"] = charts.lines(
            "Quality and revisions per episode",
            labels,
            [
                ("mean gate score", [e.quality for e in episodes]),
                ("revision rounds / 5", [e.revision_rounds / 5 for e in episodes]),
            ],
        )
    return _environment.get_template("stats.html.j2").render(
        history=history, labels=labels, charts=drawn, no_charts=_no_charts()
    )


def _no_charts() -> str | None:
    """What the page says in place of its charts when they cannot be drawn."""
    if charts.available():
        return None
    return f"Charts were not drawn: matplotlib is not installed ({charts.INSTALL_HINT})."


def episode_report_html(episode: Episode, store: Store | None = None) -> str:
    """report.html of an episode being published, from the run store it was produced in (the
    runtime's, unless given)."""
    if store is None:
        from castline.engine import runtime

        store = runtime.store()
    return report_html(completion_report(store, episode))


def _display(value: object) -> str:
    """An evidence value as a reader sees it: money and counts plainly, lists joined."""
    if isinstance(value, dict):
        return "; ".join(f"{k} = {_display(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(_display(v) for v in value)
    return str(value)
