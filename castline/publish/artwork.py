"""The show's cover art: checked against what Apple Podcasts accepts before anything is spent, and
published beside the feed.

Apple's requirements (Podcasts Connect, "Artwork requirements"), which Spotify and the Podcast
Index accept as well: JPEG or PNG with the matching file extension, square, 1400 to 3000 pixels a
side, RGB colour space. Only the image's header is read (Pillow's `Image.open` is lazy), so a
large file costs nothing to check.

The published copy is named after its content (``artwork-<sha256 prefix>.png``): apps cache
cover art by URL for a long time, so a new image needs a new URL to be seen, and the old copy
stays in place for the feed that still names it until the new feed replaces it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from castline.config import Show
from castline.errors import ShowFileError
from castline.fileio import write_atomic

MIN_SIDE, MAX_SIDE = 1400, 3000
# Pillow's format name -> the extensions Apple accepts for it, and the MIME type
FORMATS: dict[str, tuple[tuple[str, ...], str]] = {
    "JPEG": ((".jpg", ".jpeg"), "image/jpeg"),
    "PNG": ((".png",), "image/png"),
}
REQUIRED = (
    f"Apple Podcasts requires a square JPEG or PNG of {MIN_SIDE}-{MAX_SIDE} px a side, in RGB, "
    "with a .jpg or .png extension"
)
FIELD = "show.artwork"


class ArtworkError(ShowFileError):
    """`show.artwork` names a file that podcast directories would refuse (or no file at all)."""

    def __init__(self, show_path: Path, artwork: Path | str, problem: str) -> None:
        self.artwork = artwork
        self.problem = problem
        super().__init__(show_path, [f"{FIELD}: {artwork}: {problem}"])


@dataclass(frozen=True)
class Artwork:
    """A cover image that passed the checks."""

    path: Path
    format: str  # "JPEG" or "PNG"
    width: int
    height: int
    mode: str

    @property
    def mime(self) -> str:
        return FORMATS[self.format][1]

    @property
    def suffix(self) -> str:
        return FORMATS[self.format][0][0]


def is_remote(artwork: str) -> bool:
    """A URL rather than a file beside the show bible: published as it is, not checked here
    (castline never fetches it)."""
    return urlsplit(artwork).scheme in {"http", "https"}


def inspect(path: Path, show_path: Path) -> Artwork:
    """The image at `path`, checked against Apple's requirements from its header alone; an
    `ArtworkError` saying what the file is and what is required if it falls short."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ArtworkError(show_path, path, "no such file; " + _relative_hint())
    try:
        with Image.open(path) as image:
            kind, (width, height), mode = image.format or "unknown", image.size, image.mode
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ArtworkError(
            show_path, path, f"is not an image castline can read ({exc}); {REQUIRED}"
        ) from None
    what = f"is a {width}x{height} {kind} in {mode}"
    if kind not in FORMATS:
        raise ArtworkError(show_path, path, f"{what}; {REQUIRED}")
    extensions = FORMATS[kind][0]
    if path.suffix.lower() not in extensions:
        raise ArtworkError(
            show_path,
            path,
            f"{what} but is named {path.suffix or 'without an extension'}; rename it to "
            f"{extensions[0]} (apps and directories go by the extension)",
        )
    if width != height:
        raise ArtworkError(show_path, path, f"{what}, not square; {REQUIRED}")
    if not MIN_SIDE <= width <= MAX_SIDE:
        raise ArtworkError(show_path, path, f"{what}; {REQUIRED}")
    if mode != "RGB":
        raise ArtworkError(
            show_path,
            path,
            f"{what}{_mode_problem(mode)}; {REQUIRED} (save it as RGB without transparency)",
        )
    return Artwork(path, kind, width, height, mode)


def check(show: Show, show_dir: Path, *, bible: Path | None = None) -> Artwork | None:
    """Check the show's artwork before anything is spent: the local file (relative to
    `show_dir`) must pass `inspect`, and a show whose feed is public must have artwork (Apple
    refuses a show without it). Returns the checked image, or None for none or a URL. Errors
    name `bible`, the show bible's path, where it is known."""
    where = bible or show_dir
    artwork = show.show.artwork
    if artwork is None:
        if show.feed.public:
            raise ArtworkError(
                where,
                "(not set)",
                f"a public feed needs cover art: set `{FIELD}` to an image beside the show "
                f"bible; {REQUIRED}",
            )
        return None
    if is_remote(artwork):
        return None
    return inspect(show_dir / artwork, where)


def publish(show: Show, show_dir: Path, folder: Path) -> str | None:
    """Copy the checked artwork into `folder` (the feed's folder), atomically and named by its
    content; return the copy's file name, or None when there is no local artwork to copy."""
    checked = check(show, show_dir)
    if checked is None:
        return None
    data = checked.path.read_bytes()
    name = f"artwork-{hashlib.sha256(data).hexdigest()[:12]}{checked.suffix}"
    target = folder / name
    if not target.is_file() or target.read_bytes() != data:
        write_atomic(target, data)
    return name


def _mode_problem(mode: str) -> str:
    if "A" in mode or mode in {"P", "PA"}:
        return " (not plain RGB: it has transparency or a palette)"
    if mode == "CMYK":
        return " (CMYK is for print)"
    return " (not RGB)"


def _relative_hint() -> str:
    return "the path is relative to the show bible's folder; put the image there or correct it"
