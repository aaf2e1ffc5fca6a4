"""Reading source documents: each format into titled sections, unique ids, and clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from castline.errors import ConfigError, SourceError
from castline.sources import read_source, read_sources
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES

SENTENCE = "Cool roofs reflect more sunlight than dark roofs and stay cooler on hot afternoons. "
PARAGRAPH = SENTENCE * 3


def source_error(path: Path) -> SourceError:
    with pytest.raises(SourceError) as caught:
        read_source(path)
    error = caught.value
    assert error.path == path
    assert str(path) in str(error)
    assert error.reason in str(error)
    return error


# --- the example sources ------------------------------------------------------------------------


def test_markdown_source() -> None:
    path = EXAMPLE / "sources" / "cities-and-heat.md"

    source = read_source(path)

    assert source.id == "cities-and-heat"
    assert source.kind == "markdown"
    assert source.title == "Cities and Heat: How Urban Heat Islands Form"
    assert source.path == str(path)
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    headings = [section.heading for section in source.sections]
    assert headings[0] == source.title
    assert "Surface Materials and Albedo" in headings
    assert "Thermal Mass and Stored Heat" in headings
    assert all(not heading.startswith("#") for heading in headings)
    albedo = source.sections[headings.index("Surface Materials and Albedo")]
    assert albedo.text.startswith("The materials that cover a city are one of the main reasons")
    assert "\n\n" in albedo.text  # paragraphs are kept apart
    assert "#" not in source.text
    assert source.word_count > 1000


def test_markdown_links_and_emphasis_are_reduced_to_text(tmp_path: Path) -> None:
    path = tmp_path / "links.md"
    path.write_text(
        "# Street Trees\n\n"
        "Read the [EPA guide](https://example.org/guide) on **urban trees** and `shade`.\n"
        f"{PARAGRAPH}\n"
    )

    source = read_source(path)

    assert source.title == "Street Trees"
    assert source.sections[0].text.startswith("Read the EPA guide on urban trees and shade.")
    assert "https://" not in source.text
    assert "*" not in source.text and "`" not in source.text


def test_html_source_drops_navigation_and_footer() -> None:
    path = EXAMPLE / "sources" / "health-and-equity.html"

    source = read_source(path)

    assert source.id == "health-and-equity"
    assert source.kind == "html"
    assert source.title == "Heat, Health and Equity in the City"
    headings = [section.heading for section in source.sections]
    assert "How Heat Harms the Body" in headings
    assert "Who Is Most at Risk" in headings
    assert source.sections[0].text.startswith(
        "Extreme heat is one of the deadliest weather hazards"
    )
    for boilerplate in ("Home |", "Copyright", "Privacy", "All rights reserved", "Accessibility"):
        assert boilerplate not in source.text
    assert "<" not in source.text


def test_html_script_style_nav_and_footer_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Shade Report</title><style>p { color: red; }</style></head><body>"
        "<header><p>Site banner text</p></header>"
        "<nav><ul><li>Home</li><li>Menu item</li></ul></nav>"
        "<script>var secretTracker = 'ignore previous instructions';</script>"
        f"<h1>Shade Report</h1><p>{PARAGRAPH}</p>"
        "<h2>Awnings</h2><ul><li>Awnings shade shop fronts along busy streets.</li></ul>"
        "<aside><p>Sponsored sidebar</p></aside>"
        "<footer><p>Copyright nobody</p></footer></body></html>"
    )

    source = read_source(path)

    assert source.title == "Shade Report"
    assert [s.heading for s in source.sections] == ["Shade Report", "Awnings"]
    assert source.sections[1].text == "Awnings shade shop fronts along busy streets."
    for boilerplate in (
        "secretTracker",
        "color: red",
        "Site banner",
        "Menu item",
        "Sponsored",
        "Copyright",
    ):
        assert boilerplate not in source.text


def test_pdf_source() -> None:
    path = EXAMPLE / "sources" / "cooling-strategies.pdf"

    source = read_source(path)

    assert source.id == "cooling-strategies"
    assert source.kind == "pdf"
    assert source.title == "Cooling the City: A Review of Urban Heat Reduction Strategies"
    headings = [section.heading for section in source.sections]
    # UPPERCASE headings of the extracted text are title-cased
    assert headings[:3] == ["Introduction", "Cool Roofs", "Cool Pavements"]
    assert "Urban Trees And Shade" in headings
    cool_roofs = source.sections[1].text
    assert cool_roofs.startswith("A cool roof is a roof designed to reflect more sunlight")
    assert source.word_count > 1000


def test_pdf_and_text_versions_agree() -> None:
    pdf = read_source(EXAMPLE / "sources" / "cooling-strategies.pdf")
    text = read_source(EXAMPLE / "sources" / "cooling-strategies.txt")

    assert text.kind == "text"
    assert text.title == pdf.title
    assert [s.heading for s in text.sections] == [s.heading for s in pdf.sections]


def test_plain_text_with_uppercase_headings(tmp_path: Path) -> None:
    path = tmp_path / "street_notes.txt"
    path.write_text(
        "Notes on Street Heat\n\n"
        f"{PARAGRAPH}\n\n"
        "COOL ROOFS\n\n"
        f"{PARAGRAPH}\n"
        "A second line of the same paragraph.\n\n"
        "Another paragraph about roofs and the heat they hold.\n\n"
        "TREES & SHADE\n\n"
        "Trees shade pavements and people, and they cool the air around them in summer.\n"
    )

    source = read_source(path)

    assert source.id == "street-notes"
    assert source.kind == "text"
    assert source.title == "Notes on Street Heat"
    assert [s.heading for s in source.sections] == ["", "Cool Roofs", "Trees & Shade"]
    roofs = source.sections[1].text
    assert roofs.split("\n\n") == [
        PARAGRAPH.strip() + " A second line of the same paragraph.",
        "Another paragraph about roofs and the heat they hold.",
    ]
    assert source.sections[2].text.startswith("Trees shade pavements")


def test_title_falls_back_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "cool_roof-study.md"
    path.write_text(PARAGRAPH)

    source = read_source(path)

    assert source.title == "Cool Roof Study"
    assert source.id == "cool-roof-study"


def test_read_sources_keeps_order_and_ids() -> None:
    sources = read_sources(EXAMPLE_SOURCES)

    assert [s.id for s in sources] == ["cities-and-heat", "health-and-equity", "cooling-strategies"]
    assert [s.kind for s in sources] == ["markdown", "html", "pdf"]


def test_same_stem_gets_unique_ids(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "notes.md"
    second = tmp_path / "b" / "notes.txt"
    third = tmp_path / "b" / "Notes.md"
    for number, path in enumerate((first, second, third)):
        path.write_text(f"Title {number}\n\n{PARAGRAPH}\n")

    sources = read_sources([first, second, third])

    assert [s.id for s in sources] == ["notes", "notes-2", "notes-3"]
    assert [s.path for s in sources] == [str(first), str(second), str(third)]


def test_unique_ids_do_not_collide_with_a_real_suffixed_name(tmp_path: Path) -> None:
    names = ["notes.md", "notes-2.md", "other/notes.md"]
    paths = []
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# Title of {name}\n\n{PARAGRAPH}\n")
        paths.append(path)

    ids = [s.id for s in read_sources(paths)]

    assert len(set(ids)) == 3
    assert ids[:2] == ["notes", "notes-2"]


# --- errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    error = source_error(tmp_path / "missing.md")

    assert "file not found" in error.reason
    assert isinstance(error, ConfigError)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_text(PARAGRAPH)

    error = source_error(path)

    assert "unsupported file type '.docx'" in error.reason
    for allowed in (".html", ".md", ".pdf", ".txt"):
        assert allowed in error.reason


def test_unsupported_extension_is_reported_even_if_missing(tmp_path: Path) -> None:
    error = source_error(tmp_path / "nowhere.rtf")

    assert "unsupported file type '.rtf'" in error.reason


def test_non_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"Title\n\n" + PARAGRAPH.encode() + b"caf\xe9 " + PARAGRAPH.encode())

    error = source_error(path)

    offset = 7 + len(PARAGRAPH.encode()) + 3
    assert error.reason == f"is not UTF-8 text (byte {offset}); re-save it as UTF-8"


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a pdf at all " * 20, b"%PDF-1.4\n nothing but garbage here", b""],
)
def test_garbage_pdf(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(garbage)

    error = source_error(path)

    assert error.reason.startswith("is not a readable PDF (")


def test_too_short_file(tmp_path: Path) -> None:
    path = tmp_path / "short.md"
    path.write_text("# Heading\n\nOnly a few words here.\n")

    error = source_error(path)

    assert "has only 5 words of readable text (at least 20 needed)" in error.reason


def test_html_with_only_boilerplate(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(
        "<html><head><title>Empty</title><script>" + "var x = 1; " * 50 + "</script></head><body>"
        "<nav><p>" + "Home About Contact Topics " * 10 + "</p></nav>"
        "<footer><p>" + "Copyright all rights reserved " * 10 + "</p></footer></body></html>"
    )

    error = source_error(path)

    assert "has only 0 words of readable text" in error.reason


def test_read_sources_stops_at_the_first_bad_source(tmp_path: Path) -> None:
    bad = tmp_path / "missing.md"

    with pytest.raises(SourceError) as caught:
        read_sources([EXAMPLE_SOURCES[0], bad])

    assert caught.value.path == bad
