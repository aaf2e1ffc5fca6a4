"""Reading source documents (plain text, Markdown, HTML, PDF) into sections of text.

Every source is read, and every failure reported, before anything is spent. Source text is data:
it is kept apart from instructions when prompts are rendered (see `castline.llm.prompts`).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from castline.domain import Section, Source, SourceKind
from castline.errors import SourceError
from castline.text import quotable, sentences

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
# One file: checked before it is read.
MAX_SOURCE_BYTES = 10 * 1024 * 1024
# All sources of a run: each research prompt carries them whole, so they must fit the
# researcher's context window (about 130,000 tokens) and its share of the budget.
MAX_SOURCE_WORDS = 100_000


def read_sources(paths: Sequence[Path]) -> list[Source]:
    """Read every source, giving each a short unique id derived from its file name; the same
    file, or the same content, given twice is refused (it would be cited as two sources)."""
    sources: list[Source] = []
    used: set[str] = set()
    seen_paths: dict[Path, Path] = {}
    seen_content: dict[str, Path] = {}
    words = 0
    for path in paths:
        path = Path(path)
        resolved = path.resolve()
        if resolved in seen_paths:
            raise SourceError(path, f"is given twice (as {seen_paths[resolved]} too); give it once")
        seen_paths[resolved] = path
        source = read_source(path)
        if source.sha256 in seen_content:
            raise SourceError(
                path,
                f"has the same content as {seen_content[source.sha256]}; give one of them",
            )
        seen_content[source.sha256] = path
        words += sum(len(section.text.split()) for section in source.sections)
        if words > MAX_SOURCE_WORDS:
            raise SourceError(
                path,
                f"brings the sources to {words:,} words, more than the {MAX_SOURCE_WORDS:,} a "
                "run can read (every research prompt carries them whole); keep only the "
                "chapters on the topic, or split the topic into episodes",
            )
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
    if not path.exists():
        raise SourceError(path, "file not found; check the path given to --source")
    if not path.is_file():
        raise SourceError(path, "is not a regular file (a folder?); give the document itself")
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise SourceError(
                path,
                f"is {size / 2**20:,.1f} MiB, more than the {MAX_SOURCE_BYTES // 2**20} MiB a "
                "source may be; keep only the chapters on the topic",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror})") from None
    if kind == "pdf":
        title, sections = _read_pdf(path, raw)
    else:
        text = _decode(path, raw)
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
    if not any(quotable(sentence) for s in sections for sentence in sentences(s.text)):
        raise SourceError(
            path,
            f"has {words:,} words but no complete sentence castline can cite (one of 8-45 "
            "words ending in a full stop); give a source written in prose, not a list or table",
        )
    return Source(
        id=_slug(path.stem),
        title=title or path.stem.replace("-", " ").replace("_", " ").title(),
        path=str(path),
        kind=kind,
        sha256=hashlib.sha256(raw).hexdigest(),
        sections=sections,
    )


def _decode(path: Path, raw: bytes) -> str:
    """Text as UTF-8 (a byte-order mark is dropped) or UTF-16 with its byte-order mark."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise SourceError(path, "is not valid UTF-16 text; re-save it as UTF-8") from None
    if b"\x00" in raw[:8192]:
        raise SourceError(
            path, "looks like a binary file, not text; give the document in txt, md, html or pdf"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            path, f"is not UTF-8 text (byte {exc.start}); re-save it as UTF-8"
        ) from None


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


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf logs every repair it attempts on a damaged file; castline reports one error."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _read_pdf(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    import io

    from pypdf import PdfReader

    try:
        with _quiet_pypdf():
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted and not reader.decrypt(""):
                raise SourceError(path, "is an encrypted PDF; save an unencrypted copy")
            pages = [page.extract_text() or "" for page in reader.pages]
            metadata_title = reader.metadata.title if reader.metadata else None
    except SourceError:
        raise
    # pypdf raises whatever its parsers meet in a damaged file (its own errors, but also
    # NotImplementedError for an unknown filter, ValueError, KeyError, AttributeError, ...):
    # for an input, every one of them means the same thing.
    except Exception as exc:
        raise SourceError(
            path,
            f"is not a readable PDF ({type(exc).__name__}: {exc}); open it in a PDF viewer "
            "and save or print it as a new PDF, or export its text",
        ) from None
    title, sections = _read_plain("\n".join(pages))
    return str(metadata_title or title), sections
