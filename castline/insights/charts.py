"""The report's charts as inline SVG, drawn by matplotlib.

matplotlib (the most widely maintained Python plotting library) draws on the server side, so a
chart is plain SVG inside the HTML file: nothing to load and no JavaScript to run when it is
viewed, and a file of tens of kilobytes rather than the megabytes a JavaScript chart library
inlined would add. Text stays text (`svg.fonttype: none`), written by matplotlib's XML writer,
which escapes it. matplotlib is an optional extra (`castline[charts]`): without it the report
is written without charts and says so (`available`).
"""

from __future__ import annotations

import importlib.util
import io
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'castline[charts]'"
SIZE = (7.2, 3.4)  # inches
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


# matplotlib's settings are process-wide: one chart at a time, so that episodes published in
# parallel threads never draw with each other's (or no) settings
_drawing = threading.Lock()


def available() -> bool:
    """Whether matplotlib is installed, so charts can be drawn."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(rows: int = 0) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # not pyplot: no global state, safe in any thread

    height = SIZE[1] if rows <= 6 else 0.9 + 0.35 * rows
    figure = Figure(figsize=(SIZE[0], height), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure: Figure) -> Markup:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # inline: no XML declaration or doctype


def bars(title: str, values: Sequence[tuple[str, float]], *, unit: str = "$") -> Markup:
    """One horizontal bar per labelled value (cost by stage, by role, by model)."""
    import matplotlib

    with _drawing, matplotlib.rc_context(_RC):
        figure, axes = _figure(len(values))
        labels = [label for label, _ in values]
        drawn = axes.barh(labels, [v for _, v in values], color=COLOURS[0])
        axes.bar_label(drawn, labels=[f"{unit}{v:,.4f}" for _, v in values], padding=3)
        axes.invert_yaxis()  # the first row on top, as in the table below it
        axes.set_title(title, loc="left", fontweight="bold")
        axes.margins(x=0.25)
        return _svg(figure)


def grouped(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> Markup:
    """Bars of several series over the same labels (quality per gate, one series a round)."""
    import matplotlib

    with _drawing, matplotlib.rc_context(_RC):
        figure, axes = _figure()
        width = 0.8 / max(len(series), 1)
        for n, (name, values) in enumerate(series):
            positions = [i + (n - (len(series) - 1) / 2) * width for i in range(len(labels))]
            axes.bar(positions, _numbers(values), width, label=name, color=COLOURS[n % 7])
        axes.set_xticks(range(len(labels)), list(labels))
        axes.set_ylim(0, 1.05)
        axes.set_title(title, loc="left", fontweight="bold")
        axes.legend(loc="lower right", fontsize=8)
        return _svg(figure)


def lines(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> Markup:
    """Figures over episodes, one line a series (cost, cost per minute, quality)."""
    import matplotlib

    with _drawing, matplotlib.rc_context(_RC):
        figure, axes = _figure()
        for n, (name, values) in enumerate(series):
            axes.plot(list(labels), _numbers(values), marker="o", label=name, color=COLOURS[n % 7])
        axes.set_title(title, loc="left", fontweight="bold")
        axes.set_ylim(bottom=0)
        axes.legend(fontsize=8)
        if len(labels) > 8:
            axes.tick_params(axis="x", labelrotation=45)
        return _svg(figure)


def _numbers(values: Sequence[float | None]) -> list[float]:
    """None (not measured) as a gap in the chart."""
    return [math.nan if v is None else float(v) for v in values]
