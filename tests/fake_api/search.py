"""Server-side web search, as each vendor's API reports it, over pages the fake serves itself.

A test gives the fake `WebPage`s; a request that carries Claude's web search tool (with its
`max_uses`) or Gemini's `googleSearch` tool "searches" them: the model's answer is solved as if
the pages were sources whose ids are their URLs, and the reply carries the searches in the
vendor's format (Anthropic: `server_tool_use` and `web_search_tool_result` blocks and
`usage.server_tool_use.web_search_requests`; Gemini: `groundingMetadata` with the queries and
grounding chunks). The pages are served at `{fake.url}/web/{path}`.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from typing import Any

from castline.domain import Section, Source
from castline.llm.base import Task

from .wire import new_id


@dataclass(frozen=True)
class WebPage:
    path: str
    title: str
    paragraphs: tuple[str, ...]

    def html(self) -> str:
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)
        title = html.escape(self.title)
        return (
            f"<!doctype html><html><head><title>{title}</title></head><body>"
            f"<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
            f"<article><h1>{title}</h1>\n{body}</article>"
            "<footer>Copyright the fake's test pages</footer></body></html>"
        )


def anthropic_max_uses(body: dict[str, Any]) -> int | None:
    """The `max_uses` of the request's web search tool; None when it has none."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_"):
            return int(tool.get("max_uses") or 10)
    return None


def gemini_grounded(body: dict[str, Any]) -> bool:
    return any(
        isinstance(tool, dict) and ("googleSearch" in tool or "google_search" in tool)
        for tool in body.get("tools") or []
    )


def with_pages(task: Task[Any], pages: list[tuple[str, WebPage]]) -> Task[Any]:
    """The research task as if the searched pages were among its sources (ids: their URLs)."""
    found = [
        Source(
            id=url,
            title=page.title,
            path=url,
            kind="html",
            sha256=hashlib.sha256(url.encode()).hexdigest(),
            sections=[Section(heading="", text="\n\n".join(page.paragraphs))],
        )
        for url, page in pages
    ]
    sources = list(getattr(task, "sources", []))
    return task.model_copy(update={"sources": [*sources, *found]})


def queries(count: int) -> list[str]:
    return [f"castline fake search {n + 1}" for n in range(count)]


def anthropic_blocks(count: int, pages: list[tuple[str, WebPage]]) -> list[dict[str, Any]]:
    """The search turns of a Claude reply: each query, then the pages it found."""
    blocks: list[dict[str, Any]] = []
    for query in queries(count):
        tool_id = new_id("srvtoolu_")
        blocks.append(
            {
                "type": "server_tool_use",
                "id": tool_id,
                "name": "web_search",
                "input": {"query": query},
            }
        )
        blocks.append(
            {
                "type": "web_search_tool_result",
                "tool_use_id": tool_id,
                "content": [
                    {
                        "type": "web_search_result",
                        "url": url,
                        "title": page.title,
                        "encrypted_content": new_id("enc_", 40),
                        "page_age": None,
                    }
                    for url, page in pages
                ],
            }
        )
    return blocks


def gemini_grounding(count: int, pages: list[tuple[str, WebPage]]) -> dict[str, Any]:
    return {
        "webSearchQueries": queries(count),
        "groundingChunks": [{"web": {"uri": url, "title": page.title}} for url, page in pages],
    }
