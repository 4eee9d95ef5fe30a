"""Atomic file writes for the renderers (the shared mechanism, raising :class:`RenderError`)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Callable

from cimstats import _files
from cimstats.errors import RenderError

__all__ = ["atomic_write", "atomic_write_with"]


def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    return _files.atomic_write_with(path, writer, error=RenderError)


atomic_write = partial(_files.atomic_write, error=RenderError)
