"""Each source format's corruptions, generated: truncation and flipped bytes anywhere, a wrong
PDF filter, encryption, wrong encodings, binary content under a text name, huge, empty,
duplicate, no sentences. A source is read or refused with a SourceError naming it; nothing
else escapes, and nothing is printed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castline import sources as sources_module
from castline.errors import SourceError
from castline.sources import read_source, read_sources
from tests.conftest import EXAMPLE
from tests.hostile import record

ORIGINALS = {
    ".pdf": (EXAMPLE / "sources" / "cooling-strategies.pdf").read_bytes(),
    ".md": (EXAMPLE / "sources" / "cities-and-heat.md").read_bytes(),
    ".html": (EXAMPLE / "sources" / "health-and-equity.html").read_bytes(),
}
PROSE = (
    "Street trees shade the pavement and can cool the surface of asphalt by many degrees. "
    "Cities that planted trees along bus routes measured cooler waiting times for riders.\n"
)


def _read_or_refuse(path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    try:
        source = read_source(path)
    except SourceError as exc:
        assert str(path) in str(exc)
        record(f"source {path.name}", str(exc))
    else:
        assert source.sections
    out, err = capfd.readouterr()
    record(f"stderr {path.name}", err)
    assert err == "" and out == ""


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("suffix", sorted(ORIGINALS))
@given(data=st.data())
@_SETTINGS
def test_flipped_bytes_never_escape_as_anything_but_a_source_error(
    suffix: str, data: st.DataObject, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    raw = bytearray(ORIGINALS[suffix])
    for _ in range(data.draw(st.integers(1, 40))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / f"flipped{suffix}"
    path.write_bytes(bytes(raw))
    _read_or_refuse(path, capfd)


@pytest.mark.parametrize("suffix", sorted(ORIGINALS))
@given(share=st.floats(0.0, 0.999))
@_SETTINGS
def test_truncation_anywhere_is_read_or_refused(
    suffix: str, share: float, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    raw = ORIGINALS[suffix]
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(raw[: int(len(raw) * share)])
    _read_or_refuse(path, capfd)


def _pdf_with_text_stream() -> bytes:
    """A one-page PDF whose content stream is Flate-compressed, so its /Filter can be broken."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(ORIGINALS[".pdf"])))
    for page in writer.pages:
        page.compress_content_streams()
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", [b"/LZWDecodeX", b"/NoSuchDecode", b"/DCTDecode"])
def test_a_pdf_with_a_wrong_stream_filter_is_refused_quietly(
    name: bytes, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    raw = _pdf_with_text_stream()
    assert b"/FlateDecode" in raw
    path = tmp_path / "filter.pdf"
    path.write_bytes(raw.replace(b"/FlateDecode", name))
    with pytest.raises(SourceError, match=r"is not a readable PDF|no complete sentence|words"):
        read_source(path)
    assert capfd.readouterr().err == ""


def test_an_encrypted_pdf_is_refused_and_one_with_an_empty_password_is_read(
    tmp_path: Path,
) -> None:
    from pypdf import PdfReader, PdfWriter

    for password, readable in (("secret", False), ("", True)):
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(ORIGINALS[".pdf"])))
        writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
        path = tmp_path / f"locked-{readable}.pdf"
        with path.open("wb") as handle:
            writer.write(handle)
        if readable:
            assert read_source(path).sections
        else:
            with pytest.raises(SourceError, match="encrypted PDF"):
                read_source(path)


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.md", b"", "has only 0 words"),
        ("blank.txt", b"   \n\n\t\n", "has only 0 words"),
        ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "binary file"),
        ("latin1.txt", PROSE.replace("asphalt", "asph\u00e4lt").encode("latin-1"), "not UTF-8"),
        ("words.md", ("heat " * 60).encode(), "no complete sentence"),
        ("table.txt", b"city,temp\n" + b"Paris,31\nMadrid,38\nRome,35\n" * 20, "no complete"),
        ("headings.md", b"# Heat\n\n## Trees\n\n## Roofs and walls and streets\n" * 5, "words"),
        ("page.pdf", b"%PDF-1.7\n%garbage that is not a PDF at all\n", "not a readable PDF"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type"),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else "",
)
def test_sources_castline_cannot_use_are_refused_with_why(
    name: str, content: bytes, why: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=why) as caught:
        read_source(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_text_with_a_byte_order_mark_is_read(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    encoded = ("Title\n\n" + PROSE).encode(encoding)
    if encoding == "utf-16-be":
        encoded = b"\xfe\xff" + encoded
    path.write_bytes(encoded)
    source = read_source(path)
    text = " ".join(section.text for section in source.sections)
    assert "Street trees shade the pavement" in text and source.title == "Title"


def test_a_folder_a_missing_file_and_a_huge_file_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "notes.md"
    folder.mkdir()
    with pytest.raises(SourceError, match="not a regular file"):
        read_source(folder)
    with pytest.raises(SourceError, match="file not found"):
        read_source(tmp_path / "missing.md")
    huge = tmp_path / "huge.md"
    huge.write_text("# Heat\n\n" + PROSE * 50)
    monkeypatch.setattr(sources_module, "MAX_SOURCE_BYTES", 1024)
    with pytest.raises(SourceError, match=r"MiB, more than the 0 MiB|more than the"):
        read_source(huge)


def test_the_same_file_or_the_same_content_twice_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "notes.md"
    first.write_text("# Heat\n\n" + PROSE)
    copy = tmp_path / "copy.md"
    copy.write_bytes(first.read_bytes())
    with pytest.raises(SourceError, match="is given twice"):
        read_sources([first, tmp_path / "." / "notes.md"])
    with pytest.raises(SourceError, match=f"same content as {first}"):
        read_sources([first, copy])


def test_sources_beyond_the_words_a_run_can_read_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources_module, "MAX_SOURCE_WORDS", 40)
    paths = []
    for number in range(2):
        path = tmp_path / f"part-{number}.md"
        path.write_text(f"# Part {number}\n\n" + PROSE)
        paths.append(path)
    assert len(read_sources(paths[:1])) == 1
    with pytest.raises(SourceError, match="more than the 40 a run can read"):
        read_sources(paths)
