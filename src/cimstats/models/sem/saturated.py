"""The saturated (unrestricted) model under missing data, fitted by the same optimiser as the structured model."""

from __future__ import annotations

import numpy as np

from .estimation import SEMProblem
from .kernel import GroupKernel, _missing_h1_information, group_loglik

__all__ = ["em_saturated"]


def em_saturated(gk: GroupKernel, tol=1e-10, return_problem=False):
    """Saturated (unrestricted) mean and covariance under missing data (ML).

    Maximised directly over (mu, Sigma) with the same full-information
    objective and Fisher scoring as the structured model, finished with
    a Newton step on the analytic observed information.
    """
    p = gk.p
    recs = []
    k = 1
    for i in range(p):
        for j in range(i, p):
            recs.append(dict(op="~~", lhs=gk.ov[i], rhs=gk.ov[j], free=k, value=0.0))
            k += 1
    for i in range(p):
        recs.append(dict(op="~1", lhs=gk.ov[i], rhs="", free=k, value=0.0))
        k += 1
    sk = GroupKernel(recs, gk.ov, [], k - 1, True)
    sk.Y, sk.n, sk.patterns, sk.batches = gk.Y, gk.n, gk.patterns, gk.batches
    sk.ybar, sk.S = gk.ybar, gk.S
    S0 = gk.S.copy()
    ev = np.linalg.eigvalsh(S0)
    if ev.min() <= 1e-8 * ev.max():
        S0 = S0 + np.eye(p) * (1e-3 * ev.max())
    iu = np.triu_indices(p)
    z0 = np.concatenate([S0[iu], np.nan_to_num(gk.ybar)])
    pr = SEMProblem([sk], k - 1, missing=True)
    z, tr = pr.fit(z0, tol=tol)
    # finish with a Newton step on the analytic observed information (quadratic convergence from
    # the optimiser's ~1e-7: statistics that compare a model with the saturated moments are exact)
    nv = p * (p + 1) // 2
    perm = np.r_[np.arange(p, p + nv), np.arange(p)]  # information (mu, vech) -> (vech, mu)
    f, g = pr.fz(z)
    Sigma, mu, *_ = sk.implied(z)
    try:
        step = -np.linalg.solve(2.0 * _missing_h1_information(gk, Sigma, mu)[np.ix_(perm, perm)], g)
    except np.linalg.LinAlgError:
        step = None
    if step is not None and np.all(np.isfinite(step)) \
            and np.max(np.abs(step)) <= 1e-3 * (1.0 + np.max(np.abs(z))):
        fn, _ = pr.fz(z + step)
        if np.isfinite(fn) and fn <= f + 1e-12 * abs(f):
            z = z + step
    Sigma, mu, *_ = sk.implied(z)
    if return_problem:
        return Sigma, mu, group_loglik(gk, Sigma, mu), pr, z
    return Sigma, mu, group_loglik(gk, Sigma, mu)
