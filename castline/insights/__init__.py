"""What a run and a show's history teach: the completion report (report.html) with its charts,
recommendations computed from measured data, and the cross-episode statistics behind
`castline stats`."""

from castline.insights.completion import CompletionReport, completion_report
from castline.insights.history import (
    EpisodeStats,
    GateFailure,
    Recurring,
    ShowHistory,
    Trend,
    show_history,
)
from castline.insights.recommendations import Recommendation, RunFacts, recommend

__all__ = [
    "CompletionReport",
    "EpisodeStats",
    "GateFailure",
    "Recommendation",
    "Recurring",
    "RunFacts",
    "ShowHistory",
    "Trend",
    "completion_report",
    "recommend",
    "show_history",
]
