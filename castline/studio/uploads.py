"""Sources sent to the studio: uploaded files saved into a per-request temporary folder, each
size-limited and read by castline's own source reader (which type-checks it) before a forecast
or a run sees it; URLs are left to that reader, which fetches them through castline's guard.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import yaml

from castline.config import MAX_TARGET_MINUTES, MIN_TARGET_MINUTES, load_show
from castline.errors import ConfigError, SourceError
from castline.fetching import is_url
from castline.fileio import write_atomic
from castline.sources import MAX_SOURCE_BYTES, read_source

MAX_FILES = 20
MAX_URLS = 20
_CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadTooLarge(ConfigError):
    """An uploaded source is larger than the studio accepts (HTTP 413)."""

    def __init__(self, name: str, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"source {name}: larger than the {limit:,} bytes the studio accepts; keep only the "
            "parts on the topic"
        )


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the web framework hands it over: its name and its bytes."""

    filename: str
    file: BinaryIO


def safe_name(filename: str, taken: set[str]) -> str:
    """The file's base name, reduced to safe characters (its suffix kept: it says the type),
    unique in its folder."""
    base = _UNSAFE.sub("-", Path(filename.replace("\\", "/")).name).strip(".-") or "source"
    stem, suffix = Path(base).stem or "source", Path(base).suffix
    name, n = f"{stem}{suffix}", 2
    while name in taken:
        name, n = f"{stem}-{n}{suffix}", n + 1
    taken.add(name)
    return name


def save(upload: Upload, folder: Path, taken: set[str], max_bytes: int) -> Path:
    """Copy an upload into `folder`, refusing it past `max_bytes`, and check that castline can
    read it as a source (its type, its text) before anything else sees it."""
    target = folder / safe_name(upload.filename, taken)
    written = 0
    with target.open("xb") as out:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadTooLarge(upload.filename, max_bytes)
            out.write(chunk)
    try:
        read_source(target)
    except SourceError as exc:  # named as the person sent it, not by the temporary path
        raise SourceError(upload.filename, exc.reason) from None
    return target


def parse_urls(text: str) -> list[str]:
    """One URL a line (blank lines ignored); anything else is refused with the line."""
    urls = [line.strip() for line in text.splitlines() if line.strip()]
    if len(urls) > MAX_URLS:
        raise ConfigError(f"{len(urls)} URLs; the studio takes at most {MAX_URLS} at once")
    for url in urls:
        if not is_url(url):
            raise ConfigError(f"{url!r} is not an http(s) URL; give one URL a line")
    return urls


@contextmanager
def received(
    uploads: Sequence[Upload], urls: str, *, max_bytes: int = MAX_SOURCE_BYTES
) -> Iterator[list[Path | str]]:
    """The request's sources as the library takes them (paths and URLs), in a temporary folder
    that is removed when the request is done (a run keeps its sources in the store)."""
    if len(uploads) > MAX_FILES:
        raise ConfigError(f"{len(uploads)} files; the studio takes at most {MAX_FILES} at once")
    references: list[Path | str] = []
    folder = Path(tempfile.mkdtemp(prefix="castline-studio-"))
    try:
        taken: set[str] = set()
        references.extend(save(u, folder, taken, max_bytes) for u in uploads if u.filename)
        references.extend(parse_urls(urls))
        yield references
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_DERIVED = re.compile(r"^\.(?P<stem>.+)\.studio-[0-9.]+min\.yaml$")


def original_bible(path: Path) -> Path:
    """The show's own bible for a copy `bible_for` wrote (an episode made from it names it)."""
    derived = _DERIVED.match(path.name)
    if derived is None:
        return path
    for suffix in (".yaml", ".yml"):
        if (original := path.with_name(derived["stem"] + suffix)).exists():
            return original
    return path


def bible_for(show_path: Path, target_minutes: float | None) -> Path:
    """The show bible to run with: the show's own, or, for another target length, a copy of it
    with that length, written beside it (so its relative paths still hold) and named by it."""
    show_path = original_bible(show_path)
    show = load_show(show_path)
    if target_minutes is None or target_minutes == show.episode.target_minutes:
        return show_path
    if not MIN_TARGET_MINUTES <= target_minutes <= MAX_TARGET_MINUTES:
        raise ConfigError(
            f"target minutes {target_minutes:g}: from {MIN_TARGET_MINUTES:g} to "
            f"{MAX_TARGET_MINUTES:g}"
        )
    data = yaml.safe_load(show_path.read_text(encoding="utf-8"))
    data.setdefault("episode", {})["target_minutes"] = target_minutes
    derived = show_path.with_name(f".{show_path.stem}.studio-{target_minutes:g}min.yaml")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if not derived.exists() or derived.read_text(encoding="utf-8") != text:
        write_atomic(derived, text)
    load_show(derived)  # as checked as the show's own
    return derived
