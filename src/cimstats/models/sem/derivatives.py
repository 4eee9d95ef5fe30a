"""Derivatives of functions of the free parameters: complex-step Jacobians and the label environment
(named parameters and ``:=`` definitions) that constraint and defined-parameter functions evaluate in."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["complex_jacobian", "label_env"]


_ENV_CACHE: dict = {}


def label_env(tab: pd.DataFrame, x, defined: dict | None = None):
    """Map labels (and plabels) to values given the free-parameter vector x."""
    env = {}
    key = id(tab)
    cached = _ENV_CACHE.get(key)
    if cached is None or cached[0] is not tab:
        cached = (tab, tab["free"].to_numpy(), tab["ustart"].to_numpy(dtype=float),
                  tab["label"].to_numpy(), tab["plabel"].to_numpy())
        if len(_ENV_CACHE) > 64:
            _ENV_CACHE.clear()
        _ENV_CACHE[key] = cached
    _, free, ustart, labels, plabels = cached
    for i in range(len(free)):
        v = x[..., free[i] - 1] if free[i] > 0 else ustart[i]
        if labels[i] and labels[i] not in env:
            env[labels[i]] = v
        env[plabels[i]] = v
    if defined:
        for name, expr in defined.items():
            env[name] = expr.evaluate(env)
    return env


def complex_jacobian(fun, x, h=1e-20, batched=False):
    """Jacobian of a real-analytic vector function by complex-step differentiation.

    With ``batched=True`` ``fun`` evaluates a batch of parameter vectors (rows) at once.
    """
    x = np.asarray(x, dtype=float)
    if batched and x.size:
        X = np.repeat(x[None].astype(complex), x.size, axis=0)
        X[np.arange(x.size), np.arange(x.size)] += 1j * h
        F = np.asarray(fun(X))
        return np.real(F[0]), (np.imag(F) / h).T
    f0 = np.asarray(fun(x.astype(complex)))
    J = np.zeros((f0.size, x.size))
    for i in range(x.size):
        xc = x.astype(complex)
        xc[i] += 1j * h
        J[:, i] = np.imag(np.asarray(fun(xc))).ravel() / h
    return np.real(f0).ravel(), J
