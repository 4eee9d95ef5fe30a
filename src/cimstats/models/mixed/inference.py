"""Inference for linear mixed models: Satterthwaite df, likelihood-ratio tests,
parametric-bootstrap intervals for variance components (numbers in, numbers out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cimstats._parallel import job_fingerprint, replicate, resolve_seed

from ...errors import ModelSpecificationError
from .._result import not_available
from ._threads import _blas_single_thread
from .core import PLSCore
from .simulate import lmm_bootstrap_chunk, lmm_state
from .optimize import MAX_RESTARTS, minimize_theta, probe_boundary, richardson_hessian, richardson_jacobian

__all__ = ["satterthwaite", "contest_f", "anova", "bootstrap_varcomp", "profile_varcomp"]


def satterthwaite(core: PLSCore, theta: np.ndarray, sigma: float, reml: bool, contrasts: np.ndarray):
    """Satterthwaite denominator df for the rows of ``contrasts`` (as lmerTest).

    The asymptotic covariance of the variance parameters ``varpar = (theta, sigma)``
    is ``A = 2 H^{-1}`` with H the Hessian of the (RE)ML deviance in that
    parameterisation; for a contrast ``l``, with ``V = Cov(beta)(varpar)`` and
    ``g = d(l'Vl)/d varpar``, ``df = 2 (l'Vl)^2 / (g' A g)``. Derivatives are
    central differences with Richardson extrapolation.

    Returns (df array, A, Jacobian of vec V).
    """
    varpar = np.concatenate([np.asarray(theta, dtype=float), [float(sigma)]])
    H = richardson_hessian(lambda vp: core.deviance_varpar(vp, reml), varpar)
    try:
        A = 2.0 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        A = 2.0 * np.linalg.pinv(H)
    p = core.cp.p
    J = richardson_jacobian(lambda vp: core.vcov_varpar(vp, reml).ravel(), varpar)
    V = core.vcov_varpar(varpar, reml)
    L = np.atleast_2d(contrasts)
    out = np.empty(L.shape[0])
    for i, l in enumerate(L):
        var = float(l @ V @ l)
        g = np.array([l @ J[:, k].reshape(p, p) @ l for k in range(J.shape[1])])
        denom = float(g @ A @ g)
        out[i] = 2.0 * var ** 2 / denom if denom > 0 else np.inf
    return out, A, J


def contest_f(core: PLSCore, theta, sigma, reml: bool, beta: np.ndarray, L: np.ndarray, _cache=None):
    """Joint F-test of ``L beta = 0`` with Satterthwaite denominator df (lmerTest's contestMD).

    ``L V L'`` is diagonalised; each eigen-direction m gets its own Satterthwaite
    df ``nu_m``; the F statistic's denominator df is ``2E / (E - q)`` with
    ``E = sum nu_m / (nu_m - 2)`` (or 2 when any ``nu_m <= 2``).

    Returns (F, numerator df, denominator df, p-value).
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = L.shape[0]
    if _cache is None:
        _, A, J = satterthwaite(core, theta, sigma, reml, L)
    else:
        A, J = _cache
    p = core.cp.p
    varpar = np.concatenate([np.asarray(theta, dtype=float), [float(sigma)]])
    V = core.vcov_varpar(varpar, reml)
    VL = L @ V @ L.T
    d, P = np.linalg.eigh(VL)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    PtL = P.T @ L
    t2 = (PtL @ beta) ** 2 / d
    F = float(t2.sum() / q)
    nu = np.empty(q)
    for m in range(q):
        g = np.array([PtL[m] @ J[:, k].reshape(p, p) @ PtL[m] for k in range(J.shape[1])])
        nu[m] = 2 * d[m] ** 2 / float(g @ A @ g)
    if q == 1 or np.all(np.abs(nu - nu[0]) < 1e-8):
        ddf = float(nu[0])
    elif np.any(nu <= 2):
        ddf = 2.0
    else:
        E = float(np.sum(nu / (nu - 2)))
        ddf = 2 * E / (E - q)
    return F, q, ddf, float(stats.f.sf(F, q, ddf))


def _need_data(model, what: str) -> None:
    if getattr(model, "_core", None) is None:
        raise not_available(what, "linear mixed model")


def _ml_fit(model):
    """(loglik, deviance, npar) of a model fitted or refitted by maximum likelihood."""
    if not model.reml:
        return model.loglik, -2 * model.loglik, model.npar
    _need_data(model, "anova() with refit=True of a REML fit")
    core = model._core
    with _blas_single_thread():
        theta, dev, _ = minimize_theta(lambda t: core.deviance(t, False), model.theta, core.lower)
    return -dev / 2.0, dev, model.npar


def anova(*models, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio tests between nested linear mixed models (as ``anova(m0, m1)`` in lme4).

    Parameters
    ----------
    *models : LmmResult
        Two or more models fitted to the same rows, ordered or not (they are
        sorted by number of parameters).
    refit : bool, default True
        Refit REML fits by maximum likelihood first (needed when the fixed
        effects differ), as lme4 does.

    Returns
    -------
    pandas.DataFrame
        One row per model: model (formula), npar, aic, bic, loglik, deviance,
        chisq, df, p_value (the last three compare each model with the previous
        row; empty on the first row).

    Raises
    ------
    ModelSpecificationError
        Fewer than two models, or models fitted to different numbers of rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(2)
    >>> g = np.repeat(np.arange(20), 10); x = rng.normal(size=200)
    >>> y = 1 + 0.3 * x + rng.normal(0, 1, 20)[g] + rng.normal(size=200)
    >>> df = pd.DataFrame({"y": y, "x": x, "g": g})
    >>> m0 = cimstats.lmm("y ~ 1 + (1 | g)", df); m1 = cimstats.lmm("y ~ x + (1 | g)", df)
    >>> cimstats.anova(m0, m1)["df"].tolist()[1]
    1.0
    """
    if len(models) < 2:
        raise ModelSpecificationError(f"`anova` received {len(models)} model(s); expected two or more nested models.")
    n = {m.nobs for m in models}
    if len(n) > 1:
        raise ModelSpecificationError(
            f"The models were fitted to different numbers of rows ({sorted(n)}); likelihood-ratio tests need "
            f"the same rows, so drop rows with missing values in any model's variables before fitting."
        )
    models = sorted(models, key=lambda m: m.npar)
    use_ml = refit and any(m.reml for m in models)
    rows = []
    for m in models:
        if use_ml:
            ll, dev, k = _ml_fit(m)
        else:
            ll, dev, k = m.loglik, -2 * m.loglik, m.npar
        rows.append({"model": m.formula, "npar": k, "aic": -2 * ll + 2 * k,
                     "bic": -2 * ll + np.log(m.nobs) * k, "loglik": ll, "deviance": dev})
    out = pd.DataFrame(rows)
    chisq = [np.nan] + [max(0.0, out.deviance[i - 1] - out.deviance[i]) for i in range(1, len(out))]
    dfs = [np.nan] + [float(out.npar[i] - out.npar[i - 1]) for i in range(1, len(out))]
    out["chisq"] = chisq
    out["df"] = dfs
    out["p_value"] = [np.nan] + [float(stats.chi2.sf(c, d)) if d > 0 else np.nan
                                 for c, d in zip(chisq[1:], dfs[1:])]
    return out


def bootstrap_varcomp(model, *, nsim: int = 500, level: float = 0.95, seed=None, client=None, checkpoint=None,
                      progress=None) -> pd.DataFrame:
    """Parametric-bootstrap percentile intervals for the standard deviations and
    correlations of the random effects and the residual (the rows of ``varcorr()``).

    Responses are simulated from the fitted model and the model is refitted to
    each; only the response cross-products change, so each refit is cheap.
    The refits run on the execution layer (:mod:`cimstats._parallel`): simulation
    ``i`` uses child ``i`` of ``SeedSequence(seed)``, so ``client=`` (a Dask
    cluster), ``checkpoint=`` and ``progress=`` never change the intervals.
    Refits whose optimiser did not converge are left out (the method column
    counts the ones used).
    """
    _need_data(model, "bootstrap_varcomp()")
    st = lmm_state(model)
    p = len(model._beta)
    n_sd = len(model.varcorr())
    st["width"] = p + n_sd + 1
    fp = job_fingerprint("bootstrap_varcomp", model.formula, np.asarray(model._beta), np.asarray(model.theta))
    draws = replicate(lmm_bootstrap_chunk, int(nsim), seed=resolve_seed(seed, checkpoint), data=st, client=client,
                      checkpoint=checkpoint, progress=progress, name="variance-component bootstrap", fingerprint=fp)
    ok = draws[:, -1] == 1
    sims = draws[ok, p:p + n_sd]
    a = (1 - level) / 2
    vc = model.varcorr()
    out = vc[["group", "term1", "term2"]].copy()
    out["estimate"] = vc["sdcor"].to_numpy()
    out["ci_lower"] = np.quantile(sims, a, axis=0)
    out["ci_upper"] = np.quantile(sims, 1 - a, axis=0)
    out["method"] = f"parametric bootstrap ({int(ok.sum())} of {int(nsim)} simulations, percentile)"
    return out


def _bounded_min(f, x0, lower):
    """Minimise ``f`` with lower bounds by L-BFGS-B; a solution on a bound is checked by stepping
    into the interior (:func:`~cimstats.models.mixed.optimize.probe_boundary`) and the search
    restarts from there while that lowers ``f``. Returns (minimum, minimiser)."""
    def fun(x):
        v = f(x)
        return v if np.isfinite(v) else 1e300

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    x = np.asarray(x0, dtype=float)
    for _ in range(MAX_RESTARTS + 1):
        res = optimize.minimize(fun, x, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-13, "gtol": 1e-7})
        x, fx = np.maximum(res.x, lower), float(res.fun)
        xp, fp, _, _ = probe_boundary(fun, x, fx, lower)
        if fp >= fx:
            break
        x, fx = xp, fp
    return fx, x


def profile_varcomp(model, *, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals for the random-effect and residual standard deviations.

    For each standard deviation psi the (RE)ML deviance is minimised over all
    other variance parameters with psi held fixed; the interval is where that
    profile deviance is within ``chi2_1(level)`` of the minimum. As lme4's
    ``confint(m, method = "profile")``, the ML deviance is profiled (REML fits
    are refitted by ML first); ``estimate`` is the fitted model's own value.
    Models whose random-effect terms are all scalar (intercepts, uncorrelated
    slopes) are supported.

    Returns
    -------
    pandas.DataFrame
        group, term1, term2, estimate, ci_lower, ci_upper, method.
    """
    _need_data(model, "profile_varcomp()")
    core: PLSCore = model._core
    if any(s.k > 1 for s in core.shapes):
        raise ModelSpecificationError(
            f"Profile intervals are available when every random-effect term is scalar; {model.formula!r} has "
            f"correlated terms, so use method='bootstrap'."
        )
    reml = False  # as lme4: the profile is of the ML deviance, REML fits are refitted by ML first
    if model.reml:
        with _blas_single_thread():
            theta, _, _ = minimize_theta(lambda t: core.deviance(t, False), model.theta, core.lower)
        sigma = float(np.sqrt(core.evaluate(theta, False)["pwrss"] / core.cp.n))
    else:
        theta = np.asarray(model.theta, dtype=float)
        sigma = float(model.sigma)
    m = len(theta)
    crit = float(stats.chi2.ppf(level, 1))
    dmin = core.deviance_varpar(np.r_[theta, sigma], reml)

    def profile(j, psi, start):
        if j == m:  # residual sd fixed
            f = lambda th: core.deviance_varpar(np.r_[th, psi], reml)  # noqa: E731
            fun, x = _bounded_min(f, start[:m], np.zeros(m))
            return fun, np.r_[x, psi]

        def f(x):
            sig = np.exp(x[-1])
            th = np.insert(x[:-1], j, psi / sig)
            return core.deviance_varpar(np.r_[th, sig], reml)
        x0 = np.r_[np.delete(start[:m], j), np.log(start[m])]
        fun, x = _bounded_min(f, x0, np.r_[np.zeros(m - 1), -np.inf])
        sig = np.exp(x[-1])
        return fun, np.r_[np.insert(x[:-1], j, psi / sig), sig]

    rows = []
    labels = model._group_labels()
    fitted_sd = np.r_[model.sigma * np.asarray(model.theta), model.sigma]
    with _blas_single_thread():
        for j in range(m + 1):
            est = sigma if j == m else sigma * theta[j]
            seen: dict[float, np.ndarray] = {est: np.r_[theta, sigma]}

            def g(psi):
                # warm start from the nearest profiled point
                near = min(seen, key=lambda v: abs(v - psi))
                val, x = profile(j, psi, seen[near])
                seen[psi] = x
                return val - dmin - crit
            # lower limit
            lo = 0.0
            if est > 0:
                small = est * 1e-3
                if g(small) > 0:
                    lo = optimize.brentq(g, small, est, xtol=1e-7 * est, rtol=1e-9)
            # upper limit: expand until the profile deviance passes the critical value
            hi_b = max(est, 1e-8) * 1.5
            for _ in range(60):
                if g(hi_b) > 0:
                    break
                hi_b *= 1.5
            hi = optimize.brentq(g, max(est, 1e-12), hi_b, xtol=1e-7 * max(est, 1e-8), rtol=1e-9)
            if j == m:
                rows.append(("Residual", "", "", fitted_sd[j], lo, hi))
            else:
                b = model._blocks[j]
                rows.append((labels[j], b.term_names[0], "", fitted_sd[j], lo, hi))
    out = pd.DataFrame(rows, columns=["group", "term1", "term2", "estimate", "ci_lower", "ci_upper"])
    out["method"] = f"profile likelihood, ML deviance ({level:.0%})"
    return out
