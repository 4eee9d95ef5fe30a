"""Errors raised by :mod:`cimstats.datasets`."""

from __future__ import annotations

from cimstats.errors import CimstatsError


class DemoOutputError(CimstatsError, OSError):
    """The demo output folder cannot be written (exists and is not empty, is a file, no permission)."""


class DemoSeedError(CimstatsError, ValueError):
    """The seed of the demo study is not a non-negative whole number."""
