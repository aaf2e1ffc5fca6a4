"""Which file of a run the studio may hand out: a file the run published, resolved (symlinks
included) to a place inside that run's output folder. Nothing else can be read through it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from castline.errors import ConfigError, UsageError
from castline.store import Store


class FileRefused(UsageError):
    """The name is not one of the run's published files, or leads outside its folder (404)."""


class BadFileName(ConfigError):
    """A file name with a folder in it, `..` or an absolute path (400)."""


def published_file(store: Store, run_id: str, name: str) -> Path:
    """The path of the run's published file `name`, or a refusal that says nothing about what
    lies outside the folder."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not name or name.startswith(("/", "\\")) or len(parts) != 1 or parts[0] in {".", ".."}:
        raise BadFileName(
            f"{name!r} is not a file name; give the name of one of the run's published files "
            "(GET /api/runs/RUN lists them)"
        )
    record = store.get_run(run_id)
    published = {artifact.name for artifact in store.artifacts(record.id)}
    refused = FileRefused(f"run {record.id} published no file named {name!r}")
    if name not in published or not record.output_dir:
        raise refused
    folder = Path(record.output_dir).resolve()
    try:
        path = (folder / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise refused from None
    if not path.is_relative_to(folder) or not path.is_file():
        raise refused
    return path
