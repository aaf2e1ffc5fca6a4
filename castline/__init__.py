"""castline: a budget-safe, durable production line for podcast episodes."""

__version__ = "0.1.0"

from castline.config import Show, load_show
from castline.engine.episodes import Outcome, create_run, produce, resume

__all__ = ["Outcome", "Show", "__version__", "create_run", "load_show", "produce", "resume"]
