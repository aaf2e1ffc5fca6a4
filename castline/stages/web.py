"""Web search in research: how many searches a question may make, and turning the pages the
provider's search returned into sources the episode can cite.

A note from a search names its page (by URL, or by the title the search gave it) instead of a
source id. Each such page is fetched through the same guard as a URL source and kept with the
run; a note is kept only if its quote is on the fetched page, so the script never cites what
nobody can check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from castline.domain import Source
from castline.llm import registry
from castline.llm.tasks import Findings, FoundNote, WebResult
from castline.stages import RunContext

# Ids of the sources made from searched pages: W1, W2, ... in the order research cited them.
WEB_SOURCE_PREFIX = "W"


def search_limit(ctx: RunContext, *, as_routed: bool = False) -> int:
    """The searches each research question may make: the show's cap when it asks for web search
    and the researcher's provider can search, else none. `as_routed`: as a live run of the
    routing would, even when this one is offline (a forecast)."""
    if not ctx.show.research.web_search:
        return 0
    return ctx.show.research.searches_per_question if can_search(ctx, as_routed) else 0


def can_search(ctx: RunContext, as_routed: bool = False) -> bool:
    """Whether the researcher's preferred route searches the web server-side."""
    chain = ctx.routing.chain("researcher")
    if (ctx.routing.offline and not as_routed) or not chain:
        return False
    # an offline route answers as the provider it is priced as
    provider = chain[0].priced_as.partition(":")[0] if as_routed else chain[0].provider
    return registry.searches_web(provider, ctx.show)


def why_no_search(ctx: RunContext) -> str | None:
    """Why a show that asks for web search researches from its sources alone, or None."""
    if not ctx.show.research.web_search or can_search(ctx):
        return None
    chain = ctx.routing.chain("researcher")
    if ctx.routing.offline:
        where = "the run is offline (no API keys were found)"
    else:
        where = f"the researcher is routed to {chain[0].priced_as if chain else 'no provider'}"
    return (
        f"research.web_search needs a provider that searches the web (Claude or Gemini): "
        f"{where}, so research continues from the given sources only"
    )


@dataclass(frozen=True)
class CitedPage:
    """A searched page that research notes cite, and the id its source gets."""

    url: str
    source_id: str


def cited_pages(findings: list[Findings], known: set[str]) -> list[CitedPage]:
    """The searched pages that notes cite instead of a source id, each once, in citing order."""
    pages: dict[str, CitedPage] = {}
    for found in findings:
        for note in found.notes:
            page = _page_of(note, found.web) if note.source_id not in known else None
            if page is not None and page.url not in pages:
                source_id = f"{WEB_SOURCE_PREFIX}{len(pages) + 1}"
                pages[page.url] = CitedPage(page.url, source_id)
    return list(pages.values())


@dataclass(frozen=True)
class Dropped:
    source: str
    quote: str
    why: str


def cite_fetched(
    findings: list[Findings],
    known: set[str],
    fetched: dict[str, Source],
    refused: dict[str, str],
) -> tuple[list[Findings], list[Dropped]]:
    """The findings with each searched page's notes pointed at its fetched source; a note whose
    page could not be fetched, or whose quote is not on it, is dropped (and said why)."""
    kept: list[Findings] = []
    dropped: list[Dropped] = []
    for found in findings:
        notes: list[FoundNote] = []
        for note in found.notes:
            page = _page_of(note, found.web) if note.source_id not in known else None
            if page is None:
                notes.append(note)  # a given source's note, or one synthesis drops as unknown
                continue
            source = fetched.get(page.url)
            if source is None:
                why = refused.get(page.url, "the page was not fetched")
                dropped.append(Dropped(page.url, note.quote, why))
            elif _squash(note.quote) and _squash(note.quote) in _squash(source.text):
                notes.append(note.model_copy(update={"source_id": source.id}))
            else:
                dropped.append(Dropped(page.url, note.quote, "the quote is not on the page"))
        kept.append(Findings(notes=notes))
    return kept, dropped


def fetch_all(
    pages: list[CitedPage], fetch: Callable[[CitedPage], Source | str]
) -> tuple[dict[str, Source], dict[str, str]]:
    """Each page fetched (a durable step each): the sources by URL, and why others failed."""
    fetched: dict[str, Source] = {}
    refused: dict[str, str] = {}
    for page in pages:
        outcome = fetch(page)
        if isinstance(outcome, Source):
            fetched[page.url] = outcome
        else:
            refused[page.url] = outcome
    return fetched, refused


def _page_of(note: FoundNote, pages: list[WebResult]) -> WebResult | None:
    cited = note.source_id.strip()
    for page in pages:
        if cited == page.url or (page.title and cited.casefold() == page.title.casefold()):
            return page
    return None


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()
