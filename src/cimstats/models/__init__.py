"""Statistical models (mixed models, structural equation models, mediation); each verb is loaded on first use.

Use the verbs from the top level (``cimstats.mediation``): a verb that shares
its name with a subpackage (``mediation/``) is shadowed by that subpackage on
``cimstats.models`` once the subpackage has been imported.

Examples
--------
>>> import cimstats
>>> callable(cimstats.mediation)
True
"""

from __future__ import annotations

import importlib

# public name -> module that defines it (loaded lazily on first access)
_EXPORTS: dict[str, str] = {
    "sem": "cimstats.models.sem.fit",
    "invariance": "cimstats.models.sem.invariance",
    "longitudinal_invariance": "cimstats.models.sem.longitudinal",
    "SEMResult": "cimstats.models.sem.results",
    "lmm": "cimstats.models.mixed",
    "anova": "cimstats.models.mixed",
    "LmmResult": "cimstats.models.mixed",
    "glmm": "cimstats.models.glmm.fit",
    "GlmmResult": "cimstats.models.glmm.results",
    "gee": "cimstats.models.glmm.gee",
    "GeeResult": "cimstats.models.glmm.gee",
    # the verb lives in a module of the same-named subpackage: map it to the defining module,
    # because once the subpackage is imported the package attribute `mediation` is the subpackage
    "mediation": "cimstats.models.mediation.fit",
    "MediationResult": "cimstats.models.mediation.results",
    "parametric_bootstrap": "cimstats.models.bootstrap",
    "bootstrap_lrt": "cimstats.models.bootstrap",
    "BootstrapResult": "cimstats.models.bootstrap",
    "BootstrapTestResult": "cimstats.models.bootstrap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'cimstats.models' has no attribute '{name}'")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
