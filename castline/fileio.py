"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def write_atomic(path: Path, data: str | bytes) -> str:
    """Write `data` to `path` through a temporary file and a rename; return its sha256.

    The file gets the mode a plain `open()` would give it (the umask's, usually 0644), or keeps
    the mode it had: the temporary file's own 0600 would make a published feed unreadable to a
    web server running as another user."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~umask()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return hashlib.sha256(payload).hexdigest()


def umask() -> int:
    """The process's umask, read without changing it where the system says (Linux), else set
    and restored at once under a lock (the only portable way to read it)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        field = line.split()
        if field[:1] == ["Umask:"] and len(field) == 2 and field[1].isdigit():
            return int(field[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask
