"""Structural equation models built around one parameter table (as lavaan).

Public names: :func:`sem`, :func:`invariance`, :class:`SEMResult`,
:func:`parse_model`, :func:`bootstrap`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "sem": "cimstats.models.sem.fit",
    "SEMResult": "cimstats.models.sem.results",
    "parse_model": "cimstats.models.sem.syntax",
    "invariance": "cimstats.models.sem.invariance",
    "InvarianceResult": "cimstats.models.sem.invariance",
    "bootstrap": "cimstats.models.sem.bootstrap",
    "BootstrapResult": "cimstats.models.sem.bootstrap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'cimstats.models.sem' has no attribute '{name}'")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
