"""How a source document is read, one behaviour a test: what is refused before it is read (a
folder, a pipe, a device, a file too big), why a path cannot be opened, how its bytes become
text (byte-order marks, binary formats under a text name, UTF-16 without a mark, control
characters, legacy encodings), how Markdown, plain text, HTML and PDF are turned into sections,
and which sources are one given twice. Every refusal names the file, says what is wrong and how
to fix it."""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from castline import sources as sources_module
from castline.domain import Source
from castline.errors import SourceError
from castline.sources import read_source, read_sources

T = TypeVar("T")

SENTENCE = "Street trees shade the pavement and can cool the surface of asphalt by many degrees."
OTHER = "Cities that planted trees along bus routes measured cooler waiting times for riders."
PROSE = f"{SENTENCE} {OTHER}\n"


def source_error(path: Path, read: Callable[[], object] | None = None) -> SourceError:
    """The SourceError reading `path` raises; it names the file and carries its reason."""
    with pytest.raises(SourceError) as caught:
        read() if read else read_source(path)
    error = caught.value
    assert error.path == path
    assert str(error) == f"source {path}: {error.reason}"
    return error


def within(
    seconds: float, call: Callable[[], T], *, unblock: Callable[[], None] = lambda: None
) -> T:
    """`call()`, run in a thread that must finish within `seconds`: a read that hangs fails the
    test instead of hanging it (`unblock` then releases the thread)."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        pytest.fail(f"the call did not return within {seconds} s")
    if failure:
        raise failure[0]
    return outcome[0]


def text_of(source: Source) -> str:
    return "\n\n".join(section.text for section in source.sections)


# --- refused before it is read ------------------------------------------------------------------


def test_a_folder_is_refused_as_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "notes.md"
    folder.mkdir()

    error = source_error(folder)

    assert error.reason == (
        "is a folder, not a regular file; give each document in it as its own --source"
    )


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "notes.txt"
    os.mkfifo(fifo)

    def unblock() -> None:
        # a reader stuck in open() or read() returns once a writer comes and goes
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    error = within(10, lambda: source_error(fifo), unblock=unblock)

    assert "is not a regular file (a pipe, socket or device)" in error.reason
    assert "save the document to a file and give that" in error.reason


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    device = tmp_path / "notes.txt"
    device.symlink_to("/dev/zero")  # endless: read, it would look like a 10 MiB binary file

    error = within(10, lambda: source_error(device))

    assert "is not a regular file (a pipe, socket or device)" in error.reason


def test_a_file_over_the_size_limit_is_refused_with_its_size_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Heat\n\n" + PROSE * 7)  # 1,191 bytes
    monkeypatch.setattr(sources_module, "MAX_SOURCE_BYTES", 1024)

    error = source_error(path)

    assert error.reason == (
        "is 1.2 KiB, more than the 1 KiB a source may be; split it into smaller files, or keep "
        "only the chapters on the topic"
    )


def test_a_huge_file_is_refused_by_its_size_before_its_content_is_read(tmp_path: Path) -> None:
    path = tmp_path / "disk.txt"
    with path.open("wb") as handle:  # sparse: NUL bytes that would read as a binary file
        handle.truncate(sources_module.MAX_SOURCE_BYTES + 1)

    error = source_error(path)

    assert error.reason.startswith("is 64.1 MiB, more than the 64 MiB a source may be; split it")


# --- paths that cannot be opened ----------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.md"


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text(PROSE * 3)
    return tmp_path / "notes.txt" / "chapter.md"


def _symlink_loop(tmp_path: Path) -> Path:
    (tmp_path / "a.md").symlink_to(tmp_path / "b.md")
    (tmp_path / "b.md").symlink_to(tmp_path / "a.md")
    return tmp_path / "a.md"


def _name_too_long(tmp_path: Path) -> Path:
    return tmp_path / ("n" * 300 + ".md")


def _nul_in_path(tmp_path: Path) -> Path:
    return tmp_path / "no\x00tes.md"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_missing, "file not found; check the path given to --source"),
        (
            _under_a_file,
            "file not found (a part of its path is a file, not a folder); check the path",
        ),
        (_symlink_loop, "is a symbolic link that leads back to itself; point it at the document"),
        (
            _name_too_long,
            "has a name too long for the file system; rename it or move it to a shorter path",
        ),
        (_nul_in_path, "file not found (its path contains a NUL character); check the path"),
    ],
    ids=["missing", "not-a-directory", "symlink-loop", "name-too-long", "nul-in-path"],
)
def test_a_path_that_cannot_be_opened_says_why_in_words(
    make: Callable[[Path], Path], reason: str, tmp_path: Path
) -> None:
    path = make(tmp_path)

    # read_sources first resolves the path (to find duplicates): that must not fail either
    error = source_error(path, lambda: read_sources([path]))

    assert error.reason == reason


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("locked", ["file", "folder"])
def test_an_unreadable_file_says_permission_denied_and_how_to_fix_it(
    locked: str, tmp_path: Path
) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    path = folder / "notes.md"
    path.write_text("# Heat\n\n" + PROSE * 3)
    target = path if locked == "file" else folder
    target.chmod(0)
    try:
        error = source_error(path)
    finally:
        target.chmod(0o700)

    assert error.reason.startswith("cannot be read (permission denied); make it readable")
    assert "`chmod u+r`" in error.reason and "`chmod u+x` on the folders above it" in error.reason


# --- bytes into text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mark", "encoding"),
    [
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF8, "utf-8"),
    ],
    ids=["utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be", "utf-8"],
)
def test_text_with_a_byte_order_mark_yields_its_title_and_sentences(
    mark: bytes, encoding: str, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(mark + f"Street Heat\n\n{PROSE}".encode(encoding))

    source = read_source(path)

    assert source.title == "Street Heat"
    assert text_of(source) == f"{SENTENCE} {OTHER}"


def test_a_byte_order_mark_before_a_markdown_heading_is_not_part_of_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(codecs.BOM_UTF8 + f"# Street Heat\n\n{PROSE}".encode())

    source = read_source(path)

    assert source.title == "Street Heat"
    assert [section.heading for section in source.sections] == ["Street Heat"]


def test_a_byte_order_mark_the_text_does_not_match_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + PROSE.encode("utf-16-le") + b"\x00\xd8")  # lone half

    error = source_error(path)

    assert re.fullmatch(
        r"starts with a UTF-16 byte-order mark but is not UTF-16 text \(byte \d+\); "
        r"re-save it as UTF-8",
        error.reason,
    )


@pytest.mark.parametrize(
    ("signature", "what"),
    [
        (b"%PDF-1.7\n", "a PDF; if it is one, name it .pdf"),
        (
            b"PK\x03\x04\x14\x00",
            "a ZIP archive, such as a Word, OpenDocument or EPUB file; export its text",
        ),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file; export its text"),
        (b"{\\rtf1\\ansi ", "an RTF document; export it as plain text or PDF"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff\xe0", "a JPEG image"),
        (b"GIF89a", "a GIF image"),
        (b"\x1f\x8b\x08\x00", "a gzip archive; decompress it first"),
    ],
    ids=["pdf", "zip", "office", "rtf", "png", "jpeg", "gif", "gzip"],
)
def test_a_binary_format_under_a_text_name_is_named(
    signature: bytes, what: str, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(signature + PROSE.encode() * 3)  # readable text after the signature

    error = source_error(path)

    assert error.reason == f"looks like a binary file, not text: it is {what}"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_recognised(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(f"# Street Heat\n\n{PROSE}".encode(encoding))

    error = source_error(path)

    assert error.reason == (
        "looks like UTF-16 text without a byte-order mark; re-save it as UTF-8 (or as UTF-16 "
        "with a byte-order mark)"
    )


def test_nul_bytes_that_are_not_utf16_mean_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(PROSE.encode() + b"\x00\x00\x00\x00" + PROSE.encode())

    error = source_error(path)

    assert error.reason == (
        "looks like a binary file, not text (it contains NUL bytes); give the document as .txt, "
        ".md, .html or .pdf"
    )


def test_stray_control_characters_are_stripped_from_the_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    dirty = SENTENCE.replace("shade", "sh\x07ade").replace("asphalt", "asph\x1b[0malt")
    path.write_text(f"Street\x7f Heat\n\n{dirty} {OTHER}\n\f\n{PROSE * 3}")

    source = read_source(path)

    assert source.title == "Street Heat"
    text = text_of(source)
    assert text.startswith(SENTENCE.replace("asphalt", "asph[0malt"))
    assert not re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text + source.title)


def test_many_control_characters_mean_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Heat\n\n" + PROSE.replace(" ", " \x01\x02"))

    error = source_error(path)

    assert error.reason == (
        "looks like a binary file, not text; give the document as .txt, .md, .html or .pdf"
    )


def test_text_in_a_legacy_encoding_is_asked_to_be_saved_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    text = f"Caf\u00e9s et chaleur\n\n{PROSE}"
    path.write_bytes(text.encode("cp1252"))

    error = source_error(path)

    assert error.reason == "is not UTF-8 text (byte 3); re-save it as UTF-8"


def test_bytes_that_are_neither_utf8_nor_a_legacy_text_are_called_binary(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(bytes(range(0x80, 0x100)) * 8 + bytes(range(0x01, 0x09)) * 32)

    error = source_error(path)

    assert error.reason.startswith("looks like a binary file, not text; give the document")


@pytest.mark.parametrize("name", ["notes.txt", "notes.md", "notes.html"])
def test_an_empty_file_says_it_is_empty(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(b"")

    error = source_error(path)

    assert error.reason == (
        "has only 0 words of readable text (at least 20 needed); the file is empty (0 bytes); "
        "put the document's text in it"
    )


@pytest.mark.parametrize(
    "content",
    [
        b" \n\n\t \r\n",
        codecs.BOM_UTF8 + b"\n  \n",
        codecs.BOM_UTF16_LE + " \n\t\n".encode("utf-16-le"),
    ],
    ids=["ascii", "utf-8-bom", "utf-16-bom"],
)
def test_a_file_of_blank_space_says_so(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(content)

    error = source_error(path)

    assert error.reason == (
        "has only 0 words of readable text (at least 20 needed); the file holds only blank "
        "space; put the document's text in it"
    )


# --- Markdown, plain text and HTML --------------------------------------------------------------


def test_a_markdown_headings_closing_hashes_are_not_part_of_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(
        f"# Street Heat #\n\n{PROSE}\n## Trees ##\n\n{PROSE}\n### Roofs   ###   \n\n{PROSE}\n"
        f"## Learning C#\n\n{PROSE}"
    )

    source = read_source(path)

    assert source.title == "Street Heat"
    # hashes not preceded by a space are the heading's own ("C#"), as in CommonMark
    assert [s.heading for s in source.sections] == ["Street Heat", "Trees", "Roofs", "Learning C#"]


@pytest.mark.parametrize(
    "line",
    [
        "#" * 2_000_000,
        "# " + "#" * 2_000_000 + " x",
        "[" * 2_000_000,
        "[a](" * 500_000,
        "[a](x(y)" * 250_000,
        "*_`" * 700_000,
        "# " + "a #" * 700_000,
    ],
    ids=[
        "hashes",
        "heading-of-hashes",
        "brackets",
        "open-links",
        "nested-parens",
        "emphasis",
        "heading",
    ],
)
def test_one_very_long_markdown_line_is_read_in_reasonable_time(line: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(f"{PROSE}\n{line}\n\n{PROSE}")

    source = within(30, lambda: read_source(path))

    assert text_of(source).startswith(f"{SENTENCE} {OTHER}")


def test_a_long_first_line_of_plain_text_is_text_not_a_title(tmp_path: Path) -> None:
    path = tmp_path / "street_notes.txt"
    first = f"{SENTENCE} {OTHER} " * 2  # 170 characters a time: 340 on one line
    assert len(first) > 200
    path.write_text(f"{first}\n\n{PROSE}")

    source = read_source(path)

    assert source.title == "Street Notes"  # from the file name
    assert text_of(source).startswith(first.strip())


def test_html_the_parser_rejects_is_refused_with_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(f"<html><body><![foo[ x ]]><p>{PROSE * 3}</p></body></html>")

    error = source_error(path)

    # the parser's reason, not Beautiful Soup's advice to a programmer to try another parser
    assert error.reason == (
        "is not HTML castline can read (AssertionError: unknown status keyword 'foo' in marked "
        "section); open it in a browser and save it again, or save its text as .txt"
    )


def test_html_beautiful_soup_would_warn_about_is_read_quietly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    xml = tmp_path / "feed.html"  # XML saved as .html: Beautiful Soup warns it is parsed as HTML
    xml.write_text(f'<?xml version="1.0"?><article><p>{PROSE}</p><p>{PROSE}</p></article>')
    url = tmp_path / "link.html"  # markup that looks like a URL: Beautiful Soup warns of that too
    url.write_text("https://example.org/heat-island")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the read
        source = read_source(xml)
        error = source_error(url)

    assert text_of(source) == f"{SENTENCE} {OTHER}\n\n{SENTENCE} {OTHER}"
    assert error.reason.startswith("has only 0 words of readable text")
    assert capfd.readouterr() == ("", "")


# --- PDF ----------------------------------------------------------------------------------------


def _pdf(pages: list[str], *, broken_page: int | None = None, password: str | None = None) -> bytes:
    """A PDF with one page per text (a line of the page per line of text) in Helvetica;
    `broken_page` gets a stream filter no reader knows; `password` encrypts it."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for number, text in enumerate(pages, start=1):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = " ".join(f"({line}) Tj 0 -14 Td" for line in text.split("\n"))
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 11 Tf 72 720 Td {shown} ET".encode())
        if number == broken_page:
            stream[NameObject("/Filter")] = NameObject("/NoSuchDecode")
        page.replace_contents(ArrayObject([stream]))
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


PAGES = [f"Street Heat\n{SENTENCE}\n{OTHER}", f"{OTHER}\n{SENTENCE}"]


def _damaged_pdf() -> bytes:
    """A PDF whose second page cannot be decoded, and whose cross-reference table is not where
    it says: pypdf logs its repairs of both."""
    raw = _pdf(PAGES, broken_page=2)
    return re.sub(rb"startxref\s+\d+", b"startxref\n99999", raw)


def test_the_test_pdfs_are_what_they_claim(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(_pdf(PAGES))

    source = read_source(path)

    assert source.title == "Street Heat"
    assert SENTENCE in text_of(source) and OTHER in text_of(source)


def test_an_empty_pdf_says_it_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"")

    error = source_error(path)

    assert error.reason == (
        "is not a readable PDF (the file is empty, 0 bytes); give the document itself"
    )


def test_a_pdf_encrypted_with_an_empty_password_is_read(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    raw = _pdf(PAGES, password="")
    assert b"/Encrypt" in raw
    path.write_bytes(raw)

    source = read_source(path)

    assert source.title == "Street Heat"
    assert text_of(source).startswith(f"{SENTENCE} {OTHER}")


def test_a_pdf_that_needs_a_password_is_refused_with_how_to_decrypt_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(_pdf(PAGES, password="secret"))

    error = source_error(path)

    assert error.reason.startswith("is an encrypted PDF that needs a password to open; ")
    assert "`qpdf --decrypt --password=PASSWORD in.pdf out.pdf`" in error.reason


def test_a_damaged_pdf_says_which_page_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(_pdf(PAGES, broken_page=2))

    error = source_error(path)

    assert error.reason == (
        "is not a readable PDF (page 2: NotImplementedError: Unsupported filter /NoSuchDecode); "
        "open it in a PDF viewer and save or print it as a new PDF, or export its text as .txt"
    )


def test_a_pdf_that_is_not_a_pdf_at_all_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text(PROSE * 5)

    error = source_error(path)

    assert error.reason.startswith("is not a readable PDF (opening it: ")
    assert "; it does not start like a PDF (%PDF-) at all; open it in a PDF viewer" in error.reason


def test_reading_a_damaged_pdf_logs_nothing_and_restores_pypdfs_log_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from pypdf import PdfReader

    raw = _damaged_pdf()
    with caplog.at_level(logging.DEBUG):  # read without castline, pypdf logs its repairs
        PdfReader(io.BytesIO(raw)).pages[0].extract_text()
    assert any(record.name.startswith("pypdf") for record in caplog.records)
    caplog.clear()
    capfd.readouterr()
    path = tmp_path / "notes.pdf"
    path.write_bytes(raw)
    logger = logging.getLogger("pypdf")
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.DEBUG):
            error = source_error(path)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(before)

    assert error.reason.startswith("is not a readable PDF (page 2: ")
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []
    assert capfd.readouterr() == ("", "")


def test_pdfs_read_in_many_threads_restore_pypdfs_log_level_and_the_warning_filters(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(_damaged_pdf())
    good = tmp_path / "good.pdf"
    good.write_bytes(_pdf(PAGES))
    logger = logging.getLogger("pypdf")
    level, filters = logger.level, list(warnings.filters)
    start = threading.Barrier(8)

    def read(number: int) -> str:
        start.wait()
        try:
            return read_source(good if number % 2 else path).title
        except SourceError as exc:
            return exc.reason

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda n=number: results.append(read(n)), daemon=True)
        for number in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == 8 and results.count("Street Heat") == 4
    refused = [reason for reason in results if reason != "Street Heat"]
    assert all(reason.startswith("is not a readable PDF (page 2: ") for reason in refused)
    assert logger.level == level
    assert warnings.filters == filters


def test_overlapping_reads_that_end_out_of_order_restore_the_warning_filters() -> None:
    # Two readers: the first to start is the first to finish. Each silences warnings while it
    # reads; when both are done, the filters must be those from before either began (not the
    # second one's, which ignore every warning).
    logger = logging.getLogger("pypdf")
    level, filters = logger.level, list(warnings.filters)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with sources_module._QUIET.reading():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with sources_module._QUIET.reading():
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert first_out.is_set()
    assert logger.level == level
    assert warnings.filters == filters


# --- the same source twice ----------------------------------------------------------------------


def _dot_slash(folder: Path) -> Path:
    return Path("./notes.md")


def _up_and_back(folder: Path) -> Path:
    (folder / "sub").mkdir()
    return Path("sub/../notes.md")


def _absolute(folder: Path) -> Path:
    return folder / "notes.md"


def _symlink(folder: Path) -> Path:
    (folder / "link.md").symlink_to("notes.md")
    return Path("link.md")


@pytest.mark.parametrize(
    "again", [_dot_slash, _up_and_back, _absolute, _symlink], ids=["dot", "up", "abs", "link"]
)
def test_one_file_named_two_ways_is_given_twice(
    again: Callable[[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.md").write_text("# Heat\n\n" + PROSE)
    second = again(tmp_path)

    error = source_error(second, lambda: read_sources([Path("notes.md"), second]))

    assert error.reason == "is given twice (as notes.md too); give each source once"


def test_two_files_with_the_same_content_are_refused(tmp_path: Path) -> None:
    first = tmp_path / "notes.md"
    first.write_text("# Heat\n\n" + PROSE)
    copy = tmp_path / "copy of notes.md"
    copy.write_bytes(first.read_bytes())

    error = source_error(copy, lambda: read_sources([first, copy]))

    assert error.reason == f"has the same content as {first}; give one of them"


def test_different_files_are_all_read(tmp_path: Path) -> None:
    paths = []
    for number in range(3):
        path = tmp_path / f"part-{number}.md"
        path.write_text(f"# Part {number}\n\n{PROSE}")
        paths.append(path)

    assert [s.title for s in read_sources(paths)] == ["Part 0", "Part 1", "Part 2"]
