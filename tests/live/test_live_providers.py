"""Live smoke tests: one tiny call per provider against the real API.

Opt-in: each runs only when its key is set (ANTHROPIC_API_KEY, GEMINI_API_KEY, OPENAI_API_KEY)
and costs a fraction of a cent. `pytest -m live` runs just these.
"""

from __future__ import annotations

import os

import pytest

from castline.domain import Finding
from castline.llm import registry
from castline.llm.tasks import ReviewDecision, ReviewDecisionTask

CHEAPEST = {
    "anthropic": ("ANTHROPIC_API_KEY", "claude-haiku-4-5"),
    "gemini": ("GEMINI_API_KEY", "gemini-2.5-flash"),
    "openai": ("OPENAI_API_KEY", "gpt-4o-mini"),
}


@pytest.mark.live
@pytest.mark.parametrize("provider", sorted(CHEAPEST))
def test_one_tiny_structured_call(provider: str) -> None:
    variable, model = CHEAPEST[provider]
    if not os.environ.get(variable):
        pytest.skip(f"{variable} is not set")
    task = ReviewDecisionTask(
        round=0,
        max_rounds=1,
        findings=[Finding(check="length", message="segment s1 is 40 words short", segment="s1")],
    )

    result = registry.get(provider).complete(task, model, max_tokens=300)

    assert isinstance(result.output, ReviewDecision)
    assert result.output.action in {"accept", "revise"}
    assert result.usage.prompt_tokens > 0 and result.usage.output_tokens > 0
