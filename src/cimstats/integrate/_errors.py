"""Errors shared by the codebook and excerpt readers of the integrate stage."""

from __future__ import annotations

from cimstats.errors import QDAImportError

__all__ = ["CodebookError"]


class CodebookError(QDAImportError):
    """A theme codebook or code-to-theme mapping has problems; ``report`` lists all of them."""
