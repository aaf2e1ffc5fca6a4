"""castline: a budget-safe, durable production line for podcast episodes.

The public API. Its names are imported on first use (PEP 562), so that `import castline` (and the
command line's `--help`) does not pay for the run engine, DBOS or the audio stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from castline.errors import ConfigError, RunError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from castline.budget.estimate import estimate
    from castline.config import Show, load_show
    from castline.engine.episodes import Outcome, produce, resume
    from castline.engine.inspection import audit_trail, describe
    from castline.engine.preflight import create_run
    from castline.engine.reviews import decide
    from castline.engine.revoice import revoice

# Each lazy name and the module that defines it.
_LAZY: dict[str, str] = {
    "Outcome": "castline.engine.episodes",
    "Show": "castline.config",
    "audit_trail": "castline.engine.inspection",
    "create_run": "castline.engine.preflight",
    "decide": "castline.engine.reviews",
    "describe": "castline.engine.inspection",
    "estimate": "castline.budget.estimate",
    "load_show": "castline.config",
    "produce": "castline.engine.episodes",
    "resume": "castline.engine.episodes",
    "revoice": "castline.engine.revoice",
}

__all__ = [
    "ConfigError",
    "Outcome",
    "RunError",
    "Show",
    "__version__",
    "audit_trail",
    "create_run",
    "decide",
    "describe",
    "estimate",
    "load_show",
    "produce",
    "resume",
    "revoice",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'castline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
