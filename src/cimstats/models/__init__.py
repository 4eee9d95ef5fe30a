"""Statistical models: SEM (``sem``, ``invariance``) and, from other modules, mixed models.

Names are loaded lazily on first access.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "sem": "cimstats.models.sem",
    "invariance": "cimstats.models.sem",
}


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'cimstats.models' has no attribute '{name}'")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
