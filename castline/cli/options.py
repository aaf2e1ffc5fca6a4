"""Options several commands share: where sources come from, and whether private addresses may
be fetched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
SOURCE_HELP = (
    "A source: a file (txt, md, html, pdf) or an http(s) URL of a page, a PDF or a text, "
    "fetched before anything is spent. Repeat for several."
)


class _Source(click.ParamType):  # type: ignore[type-arg]  # not generic in older click
    """A file path, or a URL kept as it is (a path would fold its `//`)."""

    name = "FILE|URL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        if isinstance(value, Path):
            return value
        from castline.fetching import is_url  # the HTTP client loads when a command runs

        return value if is_url(str(value)) else Path(value)


def sources(*, required: bool = False, help: str = SOURCE_HELP) -> Callable[[F], F]:
    return click.option(
        "--source", "-s", "sources", multiple=True, required=required, type=_Source(), help=help
    )


allow_private_urls = click.option(
    "--allow-private-urls",
    is_flag=True,
    help="Let URL sources be fetched from loopback, private and link-local addresses (an "
    "intranet wiki); refused otherwise. The show bible's `research.allow_private_urls` too.",
)
