"""Reading source documents (plain text, Markdown, HTML, PDF; files or URLs) into sections.

Every source is read, and every failure reported, before anything is spent. Source text is data:
it is kept apart from instructions when prompts are rendered (see `castline.llm.prompts`).

A document castline cannot use is refused with a `SourceError` that names the file, says what
is wrong with it and how to fix it: missing, a folder or a device, unreadable, too big, binary,
in an unknown encoding, a damaged or encrypted PDF, too short, without a sentence castline can
cite, or given twice. Nothing else escapes, and nothing is printed.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import logging
import math
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from castline import fetching
from castline.domain import Section, Source, SourceKind
from castline.errors import SourceError
from castline.text import quotable, sentences

__all__ = ["MAX_SOURCE_BYTES", "MAX_SOURCE_WORDS", "read_source", "read_sources", "read_url"]

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
# One file: checked before it is read, so that a stray disk image is refused without reading it.
MAX_SOURCE_BYTES = 64 * 1024 * 1024
# All sources of a run. Research reads long sources by passages (`castline.retrieval`), so a
# prompt's size does not grow with them; this bounds the time and memory of reading them.
MAX_SOURCE_WORDS = 12_000_000
# What `castline.text.quotable` asks of a sentence, in words, for the message that says so.
_QUOTABLE_WORDS = "8-45"
# A first line longer than this is a paragraph, not a plain-text file's title.
_MAX_TITLE_CHARS = 200
_GIVE_TEXT = "give the document as .txt, .md, .html or .pdf"


def read_sources(
    references: Sequence[Path | str], *, allow_private_urls: bool = False
) -> list[Source]:
    """Read every source (a file, or an http(s) URL, fetched now), giving each a short unique
    id derived from its name; the same file, URL or content given twice is refused (it would be
    cited as two sources)."""
    sources: list[Source] = []
    used: set[str] = set()
    seen_paths: dict[Path | str, Path | str] = {}
    seen_content: dict[str, Path | str] = {}
    words = 0
    for given in references:
        url = isinstance(given, str) and fetching.is_url(given)
        path: Path | str = given if url else Path(given)
        identity: Path | str = path if isinstance(path, str) else _identity(path)
        if identity in seen_paths:
            raise SourceError(
                path, f"is given twice (as {seen_paths[identity]} too); give each source once"
            )
        seen_paths[identity] = path
        source = (
            read_url(path, allow_private=allow_private_urls)
            if isinstance(path, str)
            else read_source(path)
        )
        if source.sha256 in seen_content:
            raise SourceError(
                path,
                f"has the same content as {seen_content[source.sha256]}; give one of them",
            )
        seen_content[source.sha256] = path
        words += source.word_count
        if words > MAX_SOURCE_WORDS:
            amount = (
                f"has {words:,} words"
                if words == source.word_count
                else f"brings the sources to {words:,} words"
            )
            raise SourceError(
                path,
                f"{amount}, more than the {MAX_SOURCE_WORDS:,} a run can read; keep only the "
                "parts on the topic, or split the topic into episodes",
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
    """Read one document into titled sections, or refuse it with the reason and the fix."""
    kind: SourceKind | None = _KINDS.get(path.suffix.lower())
    if kind is None:
        allowed = ", ".join(sorted(_KINDS))
        raise SourceError(path, f"unsupported file type {path.suffix!r}; use one of {allowed}")
    raw = _read_bytes(path)
    title, sections = _read_kind(path, kind, raw)
    return _checked(path, kind, raw, title, sections, name=path.stem)


def read_url(url: str, *, allow_private: bool = False) -> Source:
    """Fetch a web page, a PDF or a text by URL (`castline.fetching`: guarded) and read it like
    a file; the source keeps the address it was fetched from and when, and a run keeps the
    source (resuming never fetches again)."""
    page = fetching.fetch(url, allow_private=allow_private)
    title, sections = _read_kind(url, page.kind, page.body)
    parts = urlsplit(page.final_url)
    name = PurePosixPath(parts.path).stem or parts.hostname or "page"
    source = _checked(url, page.kind, page.body, title, sections, name=name)
    return source.model_copy(update={"url": page.final_url, "retrieved_at": page.retrieved_at})


def _read_kind(origin: Path | str, kind: SourceKind, raw: bytes) -> tuple[str, list[Section]]:
    """Title and sections of a document of this kind; an HTML file is read whole, a fetched
    page (a URL) reduced to its article."""
    if kind == "pdf":
        return _read_pdf(origin, raw)
    text = _decode(origin, raw)
    if kind == "html":
        return _read_page(origin, text) if isinstance(origin, str) else _read_html(origin, text)
    if kind == "markdown":
        return _read_markdown(text)
    return _read_plain(text)


def _checked(
    origin: Path | str,
    kind: SourceKind,
    raw: bytes,
    title: str,
    sections: list[Section],
    *,
    name: str,
) -> Source:
    """The source, once it has enough readable text and a sentence castline can cite."""
    path = origin
    sections = [s for s in sections if s.text.strip()]
    words = sum(len(s.text.split()) for s in sections)
    if words < _MIN_WORDS:
        raise SourceError(
            path,
            f"has only {words} words of readable text (at least {_MIN_WORDS} needed); "
            + _why_no_words(kind, raw),
        )
    if not any(quotable(sentence) for s in sections for sentence in sentences(s.text)):
        raise SourceError(
            path,
            f"has no complete sentences castline can cite ({words:,} words, but no sentence of "
            f"{_QUOTABLE_WORDS} words ending in a full stop); give a source written in prose: "
            "a list, a table or headings alone give the research nothing to quote",
        )
    return Source(
        id=_slug(name),
        title=title or name.replace("-", " ").replace("_", " ").title(),
        path=str(path),
        kind=kind,
        sha256=hashlib.sha256(raw).hexdigest(),
        sections=sections,
    )


def _why_no_words(kind: SourceKind, raw: bytes) -> str:
    """The likely reason a document has (almost) no text, and what to do about it."""
    if not raw:
        return "the file is empty (0 bytes); put the document's text in it"
    if kind != "pdf" and not raw.translate(None, b"\x00\xef\xbb\xbf\xfe\xff").strip():
        return "the file holds only blank space; put the document's text in it"
    if kind == "pdf":
        return (
            "a scanned PDF has no text to extract: run OCR on it first (e.g. `ocrmypdf in.pdf "
            "out.pdf`), or give its text as a .txt file"
        )
    if kind == "html":
        return (
            "the page's text may sit only in its navigation, header or footer (which castline "
            "drops) or be drawn by JavaScript; save the article's text as .txt or .md"
        )
    return "give a document with at least a paragraph of prose"


# --- finding and reading the file ---------------------------------------------------------------


def _identity(path: Path) -> Path:
    """The file a path names, so that `notes.md` and `./notes.md` count as one source."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        # A symlink loop or a NUL in the name: read_source then says what is wrong with it.
        return path.absolute()


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, once it is known (without reading it) to be a regular file of an
    acceptable size: a folder, a pipe or a device is refused, never read or waited on."""
    try:
        info = path.stat()  # what path.is_file() asks, and the size, in one system call
    except (OSError, ValueError) as exc:
        raise SourceError(path, _cannot_open(exc)) from None
    _check_regular_file(path, info.st_mode)
    _check_size(path, info.st_size)
    try:
        # O_NONBLOCK: had the file been swapped for a pipe since it was checked, opening it
        # would not wait for a writer, and fstat refuses it. A regular file reads as ever.
        with open(path, "rb", opener=_open_nonblocking) as handle:
            _check_regular_file(path, os.fstat(handle.fileno()).st_mode)
            raw = handle.read(MAX_SOURCE_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise SourceError(path, _cannot_open(exc)) from None
    _check_size(path, len(raw))  # it grew since it was checked
    return raw


def _open_nonblocking(name: str, flags: int) -> int:
    return os.open(name, flags | getattr(os, "O_NONBLOCK", 0))


def _cannot_open(exc: OSError | ValueError) -> str:
    """Why a file cannot be opened, said for its owner rather than as an errno."""
    if isinstance(exc, ValueError):  # a NUL character in the name
        return "file not found (its path contains a NUL character); check the path"
    if isinstance(exc, FileNotFoundError):
        return "file not found; check the path given to --source"
    if isinstance(exc, NotADirectoryError):
        return "file not found (a part of its path is a file, not a folder); check the path"
    if isinstance(exc, PermissionError):
        return (
            "cannot be read (permission denied); make it readable (`chmod u+r` on it, and "
            "`chmod u+x` on the folders above it) or copy it somewhere readable"
        )
    if exc.errno == errno.ELOOP:
        return "is a symbolic link that leads back to itself; point it at the document"
    if exc.errno == errno.ENAMETOOLONG:
        return "has a name too long for the file system; rename it or move it to a shorter path"
    if exc.errno == errno.EISDIR:
        return "is a folder, not a regular file; give each document in it as its own --source"
    reason = exc.strerror or type(exc).__name__
    return f"cannot be read ({reason}); check that the file is on a mounted, working disk"


def _check_regular_file(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise SourceError(
            path, "is a folder, not a regular file; give each document in it as its own --source"
        )
    if not stat.S_ISREG(mode):
        raise SourceError(
            path,
            "is not a regular file (a pipe, socket or device); save the document to a file "
            "and give that",
        )


def _check_size(path: Path, size: int) -> None:
    if size > MAX_SOURCE_BYTES:
        raise SourceError(
            path,
            f"is {_size(size, up=True)}, more than the {_size(MAX_SOURCE_BYTES)} a source may "
            "be; split it into smaller files, or keep only the chapters on the topic",
        )


def _size(size: int, *, up: bool = False) -> str:
    """A size for a message; `up` rounds up, so that a file just over a limit does not look
    the same size as the limit."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            tenths = math.ceil(size * 10 / scale) if up else round(size * 10 / scale)
            whole, tenth = divmod(tenths, 10)
            return f"{whole:,}.{tenth} {unit}" if tenth else f"{whole:,} {unit}"
    return f"{size:,} bytes"


# --- text encodings -----------------------------------------------------------------------------

# Tried in this order: a UTF-32 little-endian mark begins with the UTF-16 one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# The first bytes of binary formats that are given a text file's name by mistake.
_SIGNATURES = (
    (b"%PDF-", "a PDF; if it is one, name it .pdf"),
    (b"PK\x03\x04", "a ZIP archive, such as a Word, OpenDocument or EPUB file; export its text"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file; export its text"),
    (b"{\\rtf", "an RTF document; export it as plain text or PDF"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive; decompress it first"),
)
# Control characters no text document contains: tab, line and page breaks are not among them.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes(range(0x09)) + bytes(range(0x0E, 0x20)) + b"\x7f"


def _decode(path: Path | str, raw: bytes) -> str:
    """Text as UTF-8, or as UTF-8, UTF-16 or UTF-32 with a byte-order mark (which is dropped).
    Stray control characters are dropped too; many of them mean the file is not text."""
    for mark, codec, name in _BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise SourceError(
                    path,
                    f"starts with a {name} byte-order mark but is not {name} text (byte "
                    f"{exc.start}); re-save it as UTF-8",
                ) from None
            break
    else:
        for signature, what in _SIGNATURES:
            if raw.startswith(signature):
                raise SourceError(path, f"looks like a binary file, not text: it is {what}")
        if b"\x00" in raw:
            raise SourceError(path, _nul_bytes(raw))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if _mostly_control(raw[:8192]):
                raise SourceError(
                    path, f"looks like a binary file, not text; {_GIVE_TEXT}"
                ) from None
            raise SourceError(
                path, f"is not UTF-8 text (byte {exc.start}); re-save it as UTF-8"
            ) from None
    controls = len(_CONTROL.findall(text))
    if "\x00" in text or controls > max(2, len(text) // 100):
        raise SourceError(path, f"looks like a binary file, not text; {_GIVE_TEXT}")
    return _CONTROL.sub("", text)


def _nul_bytes(raw: bytes) -> str:
    """Why a file with NUL bytes is not read: UTF-16 without its byte-order mark, or binary."""
    sample = raw[:8192]
    even, odd = sample[0::2], sample[1::2]
    for zeros, other in ((odd, even), (even, odd)):
        if zeros and other and zeros.count(0) > 0.6 * len(zeros) and other.count(0) == 0:
            return (
                "looks like UTF-16 text without a byte-order mark; re-save it as UTF-8 (or as "
                "UTF-16 with a byte-order mark)"
            )
    return f"looks like a binary file, not text (it contains NUL bytes); {_GIVE_TEXT}"


def _mostly_control(sample: bytes) -> bool:
    """Whether bytes that are not UTF-8 are binary, rather than text in a legacy encoding
    (which holds no control characters but tabs and line breaks)."""
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > len(sample) / 50


# --- formats ------------------------------------------------------------------------------------


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
            # A Markdown heading's closing hashes ("## Trees ##") are not part of it; hashes
            # that follow a letter are ("## Learning C#").
            named = match.group("heading")
            bare = named.rstrip("#")
            if bare and not bare[-1].isspace():
                bare = named
            heading = _clean(bare) or _clean(named)
            if not title:
                title = heading
        elif not line.strip():
            close_paragraph()
        else:
            current.append(line.strip())
    close_section()
    return title, sections


# These run on every line of a file of up to 10 MiB, so none may backtrack across a line: a lazy
# heading followed by `\s*#*$`, or a link text of `[^\]]+`, takes minutes on one long line.
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(?P<heading>.+)$")
_PLAIN_HEADING = re.compile(r"^(?P<heading>[A-Z0-9][A-Z0-9 ,:;&'()/-]{2,80})$")
_MARKDOWN_LINK = re.compile(r"\[([^\[\]]+)\]\([^()]*(?:\([^()]*\)[^()]*)*\)")
_MARKDOWN_EMPHASIS = re.compile(r"[*_`]{1,3}([^*_`]+)[*_`]{1,3}")


def _read_markdown(text: str) -> tuple[str, list[Section]]:
    lines = [_MARKDOWN_LINK.sub(r"\1", line) for line in text.splitlines()]
    lines = [_MARKDOWN_EMPHASIS.sub(r"\1", line) for line in lines]
    return _sections_from_lines(lines, _MARKDOWN_HEADING)


def _read_plain(text: str) -> tuple[str, list[Section]]:
    lines = text.splitlines()
    title = lines[0].strip() if lines else ""
    if len(title) > _MAX_TITLE_CHARS:  # no title: the first line is already the text
        title = ""
    else:
        lines = lines[1:]
    _, sections = _sections_from_lines(lines, _PLAIN_HEADING)
    return title, [
        Section(heading=s.heading.title() if s.heading.isupper() else s.heading, text=s.text)
        for s in sections
    ]


def _read_page(url: str, html: str) -> tuple[str, list[Section]]:
    """A fetched page's main text (the article, without menus, footers and asides), as
    extracted by trafilatura, with its headings."""
    import trafilatura

    with _QUIET.reading():
        markdown = trafilatura.extract(
            html,
            url=url,
            output_format="markdown",
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
        )
        metadata = trafilatura.extract_metadata(html)
    if not markdown:
        raise SourceError(
            url,
            "has no article text castline can find (a page built by scripts, a login wall or "
            "a list of links?); open it in a browser and save its text as .txt",
        )
    title, sections = _read_markdown(markdown)
    return (metadata.title if metadata and metadata.title else "") or title, sections


def _read_html(path: Path, text: str) -> tuple[str, list[Section]]:
    from bs4 import BeautifulSoup
    from bs4.exceptions import ParserRejectedMarkup

    try:
        # Beautiful Soup warns when markup looks like a URL, a file name or XML: advice for a
        # programmer, noise on a user's terminal. Malformed markup is parsed as well as it can.
        with _QUIET.reading():
            soup = BeautifulSoup(text, "html.parser")
    except ParserRejectedMarkup as exc:
        # Its message opens with advice for a programmer ("try a different parser"), cut here
        # to the parser's own reason.
        reason = str(exc).rpartition("Original exception(s) from parser:")[2]
        raise SourceError(
            path,
            f"is not HTML castline can read ({_brief(reason)}); open it in a browser and save "
            "it again, or save its text as .txt",
        ) from None
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


class _Quiet:
    """While any thread reads an HTML page or a PDF, warnings are ignored and pypdf's logger (it
    logs every repair it attempts on a damaged file: dozens of lines on stderr, where castline
    reports one error) is silenced; both are restored when the last reader is done.
    `warnings.catch_warnings` saves and restores the one list of filters of the process: two that
    overlap in threads and end out of order would leave "ignore everything" in place for good,
    so only the first reader enters one, and the last leaves it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved: warnings.catch_warnings[None] | None = None
        self._levels: list[int] = []

    @contextmanager
    def reading(self) -> Iterator[None]:
        loggers = [logging.getLogger(name) for name in ("pypdf", "trafilatura", "htmldate")]
        with self._lock:
            if self._readers == 0:
                self._saved = warnings.catch_warnings()
                self._saved.__enter__()
                warnings.simplefilter("ignore")
                self._levels = [logger.level for logger in loggers]
                for logger in loggers:
                    logger.setLevel(logging.CRITICAL + 1)
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if self._readers == 0 and self._saved is not None:
                    for logger, level in zip(loggers, self._levels, strict=True):
                        logger.setLevel(level)
                    self._saved.__exit__(None, None, None)
                    self._saved = None


_QUIET = _Quiet()


# --- PDF ----------------------------------------------------------------------------------------


def _read_pdf(path: Path | str, raw: bytes) -> tuple[str, list[Section]]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    if not raw:
        raise SourceError(
            path, "is not a readable PDF (the file is empty, 0 bytes); give the document itself"
        )
    where = "opening it"
    try:
        with _QUIET.reading():
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted:
                where = "decrypting it"
                try:
                    # Encrypted with an empty user password: any viewer opens it, and so do we.
                    opened = bool(reader.decrypt(""))
                except DependencyError:
                    raise SourceError(
                        path,
                        "is an encrypted PDF, and decrypting it needs the `cryptography` "
                        "package (`pip install cryptography`); or save an unencrypted copy",
                    ) from None
                if not opened:
                    raise SourceError(
                        path,
                        "is an encrypted PDF that needs a password to open; open it with the "
                        "password and save (or print) an unencrypted copy, e.g. `qpdf "
                        "--decrypt --password=PASSWORD in.pdf out.pdf`, and give that",
                    )
            pages: list[str] = []
            for number, page in enumerate(reader.pages, start=1):
                where = f"page {number}"
                pages.append(page.extract_text() or "")
            where = "its metadata"
            metadata_title = reader.metadata.title if reader.metadata else None
    except SourceError:
        raise
    # pypdf raises whatever its parsers meet in a damaged file: its own errors, but also
    # NotImplementedError for an unknown stream filter, ValueError, KeyError, TypeError,
    # AttributeError, IndexError, RecursionError, zlib.error and more. That surface cannot be
    # enumerated, and for an input every one of them means the same thing (the PDF is damaged),
    # so this one broad clause covers the pypdf calls above, and nothing else.
    except Exception as exc:
        hint = "" if b"%PDF-" in raw[:1024] else "; it does not start like a PDF (%PDF-) at all"
        raise SourceError(
            path,
            f"is not a readable PDF ({where}: {type(exc).__name__}: {_brief(exc)}){hint}; open "
            "it in a PDF viewer and save or print it as a new PDF, or export its text as .txt",
        ) from None
    title, sections = _read_plain(_CONTROL.sub("", "\n".join(pages)))
    return _clean(_CONTROL.sub("", str(metadata_title or ""))) or title, sections


def _brief(exc: BaseException | str) -> str:
    """An exception's message on one line, short enough for a message about a file."""
    text = _clean(str(exc)) or "no details"
    return text if len(text) <= 160 else text[:157] + "..."
