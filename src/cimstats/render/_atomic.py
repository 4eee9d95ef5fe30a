"""Atomic file writes: a file is either fully written or left as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from cimstats.errors import RenderError

__all__ = ["atomic_write", "atomic_write_with"]


def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` to write a temporary file beside ``path``, then rename it into place.

    The temporary file lives in the same folder so the final ``os.replace``
    is atomic; on any error it is removed and ``path`` is untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise RenderError(
            f"Cannot write '{path}': the folder '{folder}' does not exist; create it first or choose another path."
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write(path: str | os.PathLike, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically."""
    payload = data.encode(encoding) if isinstance(data, str) else data

    def _w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write_with(path, _w)
