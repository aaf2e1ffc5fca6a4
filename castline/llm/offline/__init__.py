"""The offline provider: deterministic, task-aware, no network, valid for every role."""

from castline.llm.offline.provider import OfflineProvider

__all__ = ["OfflineProvider"]
