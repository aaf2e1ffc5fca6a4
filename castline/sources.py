"""Reading source documents (plain text, Markdown, HTML, PDF) into sections of text.

Every source is read, and every failure reported, before anything is spent. Source text is data:
it is kept apart from instructions when prompts are rendered (see `castline.llm.prompts`).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from castline.domain import Section, Source, SourceKind
from castline.errors import SourceError

_KINDS: dict[str, SourceKind] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_MIN_WORDS = 20


def read_sources(paths: Sequence[Path]) -> list[Source]:
    """Read every source, giving each a short unique id derived from its file name."""
    sources: list[Source] = []
    used: set[str] = set()
    for path in paths:
        source = read_source(Path(path))
        base = source.id
        suffix = 2
        while source.id in used:
            source = source.model_copy(update={"id": f"{base}-{suffix}"})
            suffix += 1
        used.add(source.id)
        sources.append(source)
    return sources


def read_source(path: Path) -> Source:
    kind: SourceKind | None = _KINDS.get(path.suffix.lower())
    if kind is None:
        allowed = ", ".join(sorted(_KINDS))
        raise SourceError(path, f"unsupported file type {path.suffix!r}; use one of {allowed}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(path, "file not found; check the path given to --source") from None
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror})") from None
    if kind == "pdf":
        title, sections = _read_pdf(path, raw)
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(
                path, f"is not UTF-8 text (byte {exc.start}); re-save it as UTF-8"
            ) from None
        if kind == "html":
            title, sections = _read_html(text)
        elif kind == "markdown":
            title, sections = _read_markdown(text)
        else:
            title, sections = _read_plain(text)
    sections = [s for s in sections if s.text.strip()]
    words = sum(len(s.text.split()) for s in sections)
    if words < _MIN_WORDS:
        raise SourceError(
            path,
            f"has only {words} words of readable text (at least {_MIN_WORDS} needed); "
            "a scanned PDF needs OCR first",
        )
    return Source(
        id=_slug(path.stem),
        title=title or path.stem.replace("-", " ").replace("_", " ").title(),
        path=str(path),
        kind=kind,
        sha256=hashlib.sha256(raw).hexdigest(),
        sections=sections,
    )


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "source"


def _clean(text: str) -> str:
    return " ".join(text.split())


def _sections_from_lines(
    lines: list[str], heading_of: re.Pattern[str]
) -> tuple[str, list[Section]]:
    """Group paragraphs under the headings that `heading_of` recognises."""
    title = ""
    sections: list[Section] = []
    heading = ""
    paragraphs: list[str] = []
    current: list[str] = []

    def close_paragraph() -> None:
        if current:
            paragraphs.append(_clean(" ".join(current)))
            current.clear()

    def close_section() -> None:
        close_paragraph()
        if paragraphs:
            sections.append(Section(heading=heading, text="\n\n".join(paragraphs)))
            paragraphs.clear()

    for line in lines:
        match = heading_of.match(line.strip())
        if match:
            close_section()
            heading = _clean(match.group("heading"))
            if not title:
                title = heading
        elif not line.strip():
            close_paragraph()
        else:
            current.append(line.strip())
    close_section()
    return title, sections


_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(?P<heading>.+?)\s*#*$")
_PLAIN_HEADING = re.compile(r"^(?P<heading>[A-Z0-9][A-Z0-9 ,:;&'()/-]{2,80})$")


def _read_markdown(text: str) -> tuple[str, list[Section]]:
    lines = [re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line) for line in text.splitlines()]
    lines = [re.sub(r"[*_`]{1,3}([^*_`]+)[*_`]{1,3}", r"\1", line) for line in lines]
    return _sections_from_lines(lines, _MARKDOWN_HEADING)


def _read_plain(text: str) -> tuple[str, list[Section]]:
    lines = text.splitlines()
    title = lines[0].strip() if lines else ""
    _, sections = _sections_from_lines(lines[1:], _PLAIN_HEADING)
    return title, [
        Section(heading=s.heading.title() if s.heading.isupper() else s.heading, text=s.text)
        for s in sections
    ]


def _read_html(text: str) -> tuple[str, list[Section]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for boilerplate in soup(["script", "style", "nav", "footer", "header", "aside", "form"]):
        boilerplate.decompose()
    title_tag = soup.find("title")
    title = _clean(title_tag.get_text()) if title_tag else ""
    sections: list[Section] = []
    heading = ""
    paragraphs: list[str] = []
    for element in soup.find_all(["h1", "h2", "h3", "p", "li", "blockquote"]):
        content = _clean(element.get_text(" "))
        if element.name in {"h1", "h2", "h3"}:
            if paragraphs:
                sections.append(Section(heading=heading, text="\n\n".join(paragraphs)))
                paragraphs = []
            heading = content
            title = title or content
        elif content:
            paragraphs.append(content)
    if paragraphs:
        sections.append(Section(heading=heading, text="\n\n".join(paragraphs)))
    return title, sections


def _read_pdf(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted:
                raise SourceError(path, "is an encrypted PDF; save an unencrypted copy")
            pages = [page.extract_text() or "" for page in reader.pages]
            metadata_title = reader.metadata.title if reader.metadata else None
    except SourceError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SourceError(path, f"is not a readable PDF ({type(exc).__name__}: {exc})") from None
    title, sections = _read_plain("\n".join(pages))
    return str(metadata_title or title), sections
