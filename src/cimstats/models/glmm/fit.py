"""The ``glmm`` verb: generalised linear mixed models in lme4 syntax, by maximum likelihood."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from ...errors import (CimstatsWarning, ConvergenceWarning, EstimationError, MissingDataWarning,
                       ModelSpecificationError, SingularFitWarning)
from ..checks import check_unique_columns
from ..formula import FormulaSpec, build_design, parse_formula
from ..mixed.fit import _as_frame, _blas_single_thread, _check_rank
from ..mixed.core import theta_layout
from ..mixed.optimize import (BOUNDARY_UNRESOLVED, OptimizerSummary, _fd_grad_hess, minimize_theta,
                              probe_boundary, richardson_grad_hess, richardson_gradient)
from .family import make_family
from .laplace import GeneralKernel, ScalarKernel, ScalarTermsKernel
from .offsets import _eval_expr, offset_values
from .results import GlmmResult

__all__ = ["glmm", "SeparationWarning", "BoundaryVarianceWarning"]

class SeparationWarning(CimstatsWarning):
    """A fixed effect is (quasi-)completely separated: its estimate diverges.

    Attributes ``code`` ("G001") and ``terms`` (the affected fixed effects)
    make the warning machine-readable.
    """

    def __init__(self, message, terms=()):
        super().__init__(message)
        self.code = "G001"
        self.terms = tuple(terms)


class BoundaryVarianceWarning(SingularFitWarning):
    """A random-effect variance is estimated on its boundary (zero), or a correlation at +-1.

    Attributes ``code`` ("G002") and ``components`` (tuples of grouping factor
    and term) make the warning machine-readable; it is a
    :class:`~cimstats.errors.SingularFitWarning`, so filters on that class apply.
    """

    def __init__(self, message, components=()):
        super().__init__(message)
        self.code = "G002"
        self.components = tuple(components)


def _prepare(formula, data: pd.DataFrame, family, weights, offset):
    """Evaluate a glmm/gee formula on ``data``: outcome, trials, offsets and the model frame.

    ``formula`` is the formula text or a :class:`~cimstats.models.formula.FormulaSpec`
    already read with ``glm_terms=True`` (``gee`` adds its ``groups=`` cluster to it).
    The outcome comes from the parsed response: a column (or expression) of
    0/1 values, proportions or counts, or ``cbind(successes, failures)``, whose
    proportions of successes are the outcome and whose totals the numbers of
    trials. Offsets are the parsed ``offset()`` terms plus ``offset=``.

    Returns (model frame, outcome as written, trials, offset, offset() texts,
    rows set aside before the design, their counts by source, positions of the
    used rows, the data read).
    """
    spec = formula if isinstance(formula, FormulaSpec) else parse_formula(formula, glm_terms=True)
    formula = spec.text
    lhs = spec.response_text
    data = data.copy()
    if not data.index.is_unique:
        data = data.reset_index(drop=True)
    n = len(data)
    extra_missing = {}
    if spec.cbind:
        if family.name != "binomial":
            raise ModelSpecificationError(
                f"The response {lhs!r} uses cbind(), which is only meaningful for family='binomial'; "
                f"give a single count column for family={family.name!r}."
            )
        succ = spec.cbind[0].evaluate(data)
        fail = spec.cbind[1].evaluate(data)
        total = succ + fail
        with np.errstate(invalid="ignore", divide="ignore"):
            yv = np.where(total > 0, succ / np.where(total > 0, total, 1), 0.0)
        yv[np.isnan(succ) | np.isnan(fail)] = np.nan
        mvec = total
        bad = (~np.isnan(yv)) & ((succ < 0) | (fail < 0) | (np.abs(succ - np.round(succ)) > 1e-8)
                                 | (np.abs(fail - np.round(fail)) > 1e-8))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"The response {lhs!r} has {int(bad.sum())} row(s) with negative or non-integer counts "
                f"(first: row {data.index[i]!r}); expected whole numbers of successes and failures >= 0."
            )
    else:
        yv = None
        mvec = np.ones(n)
    wv = None
    if weights is not None:
        wv = (_eval_expr(weights, data, "`weights` column") if isinstance(weights, str)
              else np.asarray(weights, dtype=float))
        if wv.shape != (n,):
            raise ModelSpecificationError(
                f"`weights` has {wv.size} values; expected one per row of `data` ({n})."
            )
        if np.any(wv[~np.isnan(wv)] < 0):
            raise ModelSpecificationError("`weights` has negative values; expected numbers of trials (>= 0).")
        mvec = mvec * wv
    offset_texts = [e.text for e in spec.offsets]
    off = offset_values(offset_texts, data, formula)
    if offset is not None:
        ov = (_eval_expr(offset, data, "`offset` column") if isinstance(offset, str)
              else np.asarray(offset, dtype=float))
        if ov.shape != (n,):
            raise ModelSpecificationError(f"`offset` has {ov.size} values; expected one per row of `data` ({n}).")
        off = off + ov
    # rows without an offset, a weight or a cbind() outcome, counted under each; a missing count of
    # successes or failures is counted under the outcome, not again under the trials it leaves unknown
    for name, v, missing in (("offset", off, off), ("weights", mvec, wv), (lhs, yv, yv)):
        if missing is not None and np.isnan(missing).any():
            extra_missing[name] = int(np.isnan(missing).sum())
        if v is not None and np.isinf(v).any():
            raise ModelSpecificationError(
                f"The {'outcome' if name == lhs else name} of {formula!r} has "
                f"{int(np.isinf(v).sum())} infinite value(s) (first in row {data.index[np.flatnonzero(np.isinf(v))[0]]!r}); "
                f"expected finite numbers (log(0) is -inf), so correct or set those rows aside."
            )
    keep = ~np.isnan(off) & ~np.isnan(mvec) & (np.ones(n, bool) if yv is None else ~np.isnan(yv))
    check_unique_columns(data, spec.variables())
    ynode = spec.nodes[spec.response]
    if yv is None and ynode.kind == "name":
        _binary_response(data, str(ynode.value), family)
    frame = build_design(spec, data.loc[keep], response=None if yv is None else yv[keep])
    pos = data.index.get_indexer(frame.rows)
    return frame, lhs, mvec[pos], off[pos], offset_texts, int((~keep).sum()), extra_missing, pos, data


def _binary_response(data: pd.DataFrame, col: str, family) -> None:
    """Booleans are read as 0/1 (True = 1); text or categories get a message naming the remedy."""
    s = data[col]
    if pd.api.types.is_bool_dtype(s.dtype):
        data[col] = s.to_numpy(dtype=float, na_value=np.nan) if not isinstance(s.dtype, np.dtype) \
            else s.to_numpy().astype(float)
        return
    if (isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype)
            or s.dtype == object):
        vals = [str(v) for v in pd.unique(s.dropna())[:4]]
        want = "0/1 (or True/False)" if family.name == "binomial" else "whole-number counts"
        raise ModelSpecificationError(
            f"The outcome {col!r} has non-numeric values (dtype {s.dtype}, e.g. {vals}); family={family.name!r} "
            f"needs {want}, so recode it, e.g. data[{col!r}] = (data[{col!r}] == {vals[0] if vals else 'yes'!r})"
            f".astype(int)."
        )


def _check_response(frame, y, m, family, label):
    if len(y) and np.all(y == y[0]):
        # as glmer ("Response is constant"): the fixed effects have no finite estimate
        raise ModelSpecificationError(
            f"The outcome {label!r} is constant ({float(y[0]):g} in all {len(y)} rows used); a model of a "
            f"{'binary or binomial' if family.name == 'binomial' else 'count'} outcome needs rows with different "
            f"values, so check the outcome column and the rows selected."
        )
    if family.name == "binomial":
        bad = (y < 0) | (y > 1)
        if bad.any():
            vals = np.unique(y[bad])[:5].tolist()
            raise ModelSpecificationError(
                f"The outcome {label!r} has values {vals} outside 0-1; family='binomial' expects a 0/1 outcome, "
                f"a proportion with `weights=` (trials), or cbind(successes, failures)."
            )
        k = y * m
        nonint = np.abs(k - np.round(k)) > 1e-6
        if nonint.any():
            raise ModelSpecificationError(
                f"The outcome {label!r} times the number of trials is not a whole number in {int(nonint.sum())} "
                f"row(s); expected 0/1 values, or proportions whose `weights=` are the numbers of trials."
            )
    else:
        if (y < 0).any():
            raise ModelSpecificationError(
                f"The outcome {label!r} has {int((y < 0).sum())} negative value(s); family='poisson' expects "
                f"counts >= 0."
            )
        if (np.abs(y - np.round(y)) > 1e-8).any():
            raise ModelSpecificationError(
                f"The outcome {label!r} has non-integer values; family='poisson' expects whole-number counts."
            )


def _glm_start(X, y, m, off, family, maxit=50):
    """Fixed-effect starting values from an ordinary GLM (IRLS)."""
    p = X.shape[1]
    mu = family.clip((m * y + 0.5) / (m + 1.0)) if family.name == "binomial" else y + 0.1
    eta = family.link.link(mu)
    beta = np.zeros(p)
    for _ in range(maxit):
        mu, s, w = family.score_weight(y, eta, m)
        zw = eta - off + s / np.maximum(w, 1e-300)
        WX = X * w[:, None]
        try:
            bnew = np.linalg.solve(X.T @ WX + 1e-10 * np.eye(p), WX.T @ zw)
        except np.linalg.LinAlgError:
            break
        done = np.max(np.abs(bnew - beta)) < 1e-9
        beta = bnew
        eta = off + X @ beta
        if done:
            break
    return beta


def _fixed_vcov(kern, par, dev, ntheta, lower_theta, lower):
    """Covariance of the fixed effects: the (beta, beta) block of 2 H^{-1}, with H the Hessian of
    the deviance in (theta, beta) (as glmer's default); variance parameters on their boundary
    are held fixed.

    H is taken by Richardson extrapolation of central differences (relative steps 0.01 and
    0.005) with the inner PIRLS loop converged to rounding
    error, so neither the step sizes nor where the inner loop stopped limit its accuracy. The
    gradient from the same evaluations gives one last Newton correction of the optimum, kept
    when it lowers the deviance (the gradient is then taken again there). Returns (vcov, par,
    deviance, gradient over the free parameters).
    """
    idx = np.flatnonzero(_free_for_vcov(par, ntheta, lower_theta))
    tight = getattr(kern, "tight", False)
    kern.tight = True
    try:
        def f(x, base=par.copy()):
            full = base.copy()
            full[idx] = x
            return kern.deviance(full)

        # two Richardson steps (h and h/2, error O(h^4)): with h = 0.01 |x| that is far below what
        # the standard errors need, at half the r k (k + 1) evaluations of numDeriv's four
        g, Hf, f0 = richardson_grad_hess(f, par[idx], r=2, d=0.01)
        dev = f0 if np.isfinite(f0) else dev
        try:
            step = -np.linalg.solve(0.5 * (Hf + Hf.T), g)
        except np.linalg.LinAlgError:
            step = np.zeros(len(idx))
        if np.all(np.isfinite(step)) and np.max(np.abs(step), initial=0.0) < 1e-2:
            cand = par.copy()
            cand[idx] += step
            cand = np.maximum(cand, lower)
            fc = kern.deviance(cand)
            if np.isfinite(fc) and fc < dev:
                par, dev = cand, fc
                # the gradient where the fit now stands (4k evaluations, against r k (k + 1) above)
                g = richardson_gradient(lambda x: f(x, base=par), par[idx], r=2, d=0.01, eps=1e-3)
    finally:
        kern.tight = tight
    H = np.zeros((len(par), len(par)))
    H[np.ix_(idx, idx)] = Hf
    return _vcov_from_hessian(H, par, ntheta, lower_theta), par, float(dev), g


def _final_summary(opt, par, grad):
    """The optimiser summary with the gradient at the optimum taken from the Hessian's evaluations
    (Richardson-extrapolated, inner loop converged: free of the inner loop's noise, which can
    reach 1e-2 in a forward difference); converged when that gradient is below 1e-2 and no
    boundary check still found a lower deviance."""
    gnorm = float(np.max(np.abs(grad), initial=0.0))
    boundary_ok = not any(BOUNDARY_UNRESOLVED in c for c in opt.checks)
    checks = tuple(c for c in opt.checks if not c.startswith("projected gradient"))
    checks = (f"gradient at the optimum (Richardson extrapolation, inner loop converged): max |component| "
              f"{gnorm:.2g} (limit 1e-2)",) + checks
    return replace(opt, final=tuple(map(float, par)), gradient_norm=gnorm, checks=checks,
                   converged=bool(boundary_ok and np.isfinite(gnorm) and gnorm < 1e-2))


def _newton_joint(f, x, lower, maxit=12):
    """Bounded quasi-Newton iterations over (theta, beta) from near the optimum.

    The first iteration takes a central-difference Hessian; later ones take a
    central-difference gradient only (2k evaluations rather than k(k + 1)) and
    update the Hessian by BFGS, going back to a full Hessian when a step had to be
    shortened. The final polish and the Hessian for the standard errors come
    afterwards (:func:`_fixed_vcov`). Returns (x, f(x), gradient, Hessian,
    converged, evaluations).
    """
    nev = [0]

    def fun(v):
        nev[0] += 1
        r = f(v)
        return r if np.isfinite(r) else 1e300

    def grad(v, fv, h):
        gv = np.zeros_like(v)
        for i in range(len(v)):
            e = np.zeros_like(v)
            e[i] = h[i]
            gv[i] = (fun(v + e) - fun(v - e)) / (2 * h[i])
        return gv

    fx = fun(x)
    g = H = None
    ok = False
    refresh = True
    for _ in range(maxit):
        h = 1e-4 * np.maximum(np.abs(x), 0.05)
        if refresh or H is None:
            g, H = _fd_grad_hess(fun, x, fx, h)
        active = (x <= lower + 1e-10) & (g > 0)
        free = ~active
        Hf = H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
        except np.linalg.LinAlgError:
            if not refresh:  # the updated Hessian went wrong: take a full one
                refresh = True
                g, H = _fd_grad_hess(fun, x, fx, h)
                Hf = H[np.ix_(free, free)]
            try:
                np.linalg.cholesky(Hf)
            except np.linalg.LinAlgError:
                return x, fx, g, H, False, nev[0]
        d = np.zeros_like(x)
        d[free] = -np.linalg.solve(Hf, g[free])
        t, improved = 1.0, False
        for _ls in range(30):
            xn = np.maximum(x + t * d, lower)
            fn = fun(xn)
            if fn <= fx:
                improved = True
                break
            t /= 2
        if not improved:
            ok = True
            break
        step = np.max(np.abs(xn - x))
        gn = grad(xn, fn, 1e-4 * np.maximum(np.abs(xn), 0.05))
        sv, yv = xn - x, gn - g
        refresh = t < 1.0
        if not refresh and sv @ yv > 1e-12 * np.sqrt((sv @ sv) * (yv @ yv)):
            Hs = H @ sv
            H = H - np.outer(Hs, Hs) / (sv @ Hs) + np.outer(yv, yv) / (sv @ yv)
        x, fx, g = xn, fn, gn
        if step < 1e-4 * max(1.0, np.max(np.abs(x))):
            ok = True
            break
    return x, fx, g, H, ok, nev[0]


def _first_stage(checks):
    """The first stage's checks (theta with the fixed effects found by PIRLS), labelled as such."""
    return tuple(f"first stage, {c}" for c in checks if not c.startswith("projected gradient"))


def _with_stage(opt, x0, iterations, evaluations, first_checks):
    """The joint optimiser's summary with the first stage's start, counts and checks folded in."""
    return OptimizerSummary(f"PIRLS-profiled theta (L-BFGS-B + Newton), then {opt.method} on (theta, beta)",
                            tuple(map(float, x0)), opt.final, iterations, evaluations, opt.gradient_norm,
                            opt.converged, opt.message, tuple(first_checks) + tuple(opt.checks))


def _free_for_vcov(par, ntheta, lower_theta):
    """Parameters the covariance is taken over: the fixed effects and the variance parameters off
    their boundary (those on it are held fixed)."""
    return np.concatenate([par[:ntheta] > lower_theta + 1e-4, np.ones(len(par) - ntheta, bool)])


def _vcov_from_hessian(H, par, ntheta, lower_theta):
    """Covariance of the fixed effects: the (beta, beta) block of 2 H^{-1} over the free parameters."""
    p = len(par) - ntheta
    free = _free_for_vcov(par, ntheta, lower_theta)
    Hf = 0.5 * (H + H.T)[np.ix_(free, free)]
    try:
        V = 2.0 * np.linalg.inv(Hf)
    except np.linalg.LinAlgError:
        return np.full((p, p), np.nan)
    V = V[-p:, -p:]
    bad = ~(np.diag(V) > 0)
    V[bad, :] = np.nan
    V[:, bad] = np.nan
    return V


def glmm(formula, data=None, *, family: str = "binomial", link: str | None = None, nagq: int = 1,
         weights=None, offset=None, start=None):
    """Fit a generalised linear mixed model (binary, binomial or count outcome) by maximum likelihood.

    Parameters
    ----------
    formula : str
        lme4-style formula. Binomial outcomes are 0/1 (or True/False) columns, proportions
        with ``weights=`` giving the numbers of trials, or
        ``cbind(successes, failures)``; Poisson offsets are written
        ``offset(log(exposure))`` in the formula or passed as ``offset=``.
    data : pandas.DataFrame or cimstats.Survey
        One row per observation.
    family : {"binomial", "poisson"}
    link : str, optional
        ``"logit"`` (default), ``"probit"``, ``"cloglog"`` or ``"log"`` for the
        binomial family; ``"log"`` (default) or ``"identity"`` for Poisson.
    nagq : int, default 1
        Number of adaptive Gauss-Hermite quadrature points; 1 is the Laplace
        approximation. Values above 1 need a single scalar random effect
        (a random intercept), as with glmer's ``nAGQ``.
    weights : str or array-like, optional
        Prior weights (numbers of trials for a binomial proportion): a column
        name, an arithmetic expression of columns, or values.
    offset : str or array-like, optional
        Offset added to the linear predictor (a column name, an arithmetic
        expression of columns such as ``"log(months)"``, or values).
        Expressions, like ``offset()`` and ``cbind()`` in the formula, are read
        by the formula parser (numbers, columns, ``+ - * / ^``, ``log``,
        ``log2``, ``log10``, ``exp``, ``sqrt``, ``abs``, ``I``), never run as code.
    start : array-like, optional
        Starting values for (theta, beta).

    Returns
    -------
    GlmmResult
        Frozen result with ``tidy(exponentiate=...)``, ``glance()``, ``varcorr()``,
        ``ranef()``, ``predict()``, ``icc()``, ``median_odds_ratio()``, ``summary()``.

    Raises
    ------
    ModelSpecificationError
        Unknown family or link, a non-binary (or out-of-range) binomial outcome,
        a constant outcome (as glmer), negative or non-integer counts,
        ``nagq > 1`` with more than one scalar random effect, formula problems
        (an unknown function is named with the allowed ones), a column name
        that appears twice in ``data``, infinite or overflowing values.

    Warns
    -----
    SeparationWarning
        When a fixed effect diverges (complete or quasi-complete separation);
        ``code`` "G001" and ``terms`` name the affected fixed effects.
    BoundaryVarianceWarning
        When a random-effect variance is estimated at zero (a
        ``SingularFitWarning`` with ``code`` "G002" and ``components``).
    ConvergenceWarning, MissingDataWarning

    Notes
    -----
    As lme4's ``glmer``: the conditional modes of the random effects are found by
    penalised iteratively reweighted least squares (PIRLS) at each (theta, beta),
    and the Laplace (or adaptive Gauss-Hermite) approximation of the deviance is
    minimised over theta and the fixed effects jointly. With one random
    intercept the start is an ordinary GLM; with several random intercepts
    (nested or crossed) theta is first optimised with the fixed effects found
    by PIRLS (glmer's first stage) and Newton steps on (theta, beta) finish.
    A solution with a variance on its boundary (zero) is checked by stepping
    into the interior and the search restarts from there when that lowers the
    deviance (``optimizer.checks`` lists the checks). Standard errors of the
    fixed effects come from the Hessian of the deviance in (theta, beta)
    (glmer's default), taken by Richardson-extrapolated central differences
    with the inner PIRLS loop converged to rounding error, with variance
    parameters on their boundary held fixed. The Laplace deviance is evaluated
    with the working weights at the conditional modes. glmer's inner loop
    stops by default (``tolPwrss = 1e-7``) one step before the modes settle and
    takes its log-determinant from the weights of that earlier iterate, which
    can move its estimates by about 1e-3 (relative); with
    ``glmerControl(tolPwrss = 1e-13)`` glmer and cimstats agree to the
    reference tolerances. The log-likelihood includes the binomial and Poisson
    normalising constants for every ``nagq`` (glmer reports the nAGQ > 1
    log-likelihood relative to the saturated model).

    R equivalent: ``lme4::glmer(formula, data, family = binomial, nAGQ = nagq)``.

    Validated against: ``lme4::glmer`` (tests/reference/glmm.R): cbpp with
    ``cbind(incidence, size - incidence) ~ period + (1 | herd)`` (Laplace and
    nAGQ = 10), a Bernoulli random-intercept model (logit, probit, nAGQ = 10), a
    Poisson model with ``offset(log(months))``, and the demo study's alter-level
    model ``illness_work ~ tie_type * dep_c + (1 | patient_id) + (1 | practice_id)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cimstats
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(60), 10)
    >>> x = rng.normal(size=g.size)
    >>> eta = -0.5 + 0.8 * x + rng.normal(0, 1.0, 60)[g]
    >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})
    >>> m = cimstats.glmm("y ~ x + (1 | g)", d, family="binomial")
    >>> m.tidy()["term"].tolist()
    ['(Intercept)', 'x']
    >>> bool(m.glance()["converged"].iloc[0])
    True
    """
    if isinstance(formula, pd.DataFrame) or (not isinstance(formula, str) and hasattr(formula, "data")):
        formula, data = data, formula
    if data is None:
        raise ModelSpecificationError("`data` is missing; expected a DataFrame with the model's columns.")
    fam = make_family(family, link)
    if not isinstance(nagq, (int, np.integer)) or isinstance(nagq, bool) or nagq < 1:
        raise ModelSpecificationError(f"`nagq` is {nagq!r}; expected a whole number >= 1 (1 = Laplace).")
    df = _as_frame(data)
    frame, label, m, off, offset_exprs, n_pre, extra_missing, pos, _ = _prepare(formula, df, fam, weights, offset)
    y = np.asarray(frame.y, dtype=float)
    _check_response(frame, y, m, fam, label)
    if not frame.random:
        raise ModelSpecificationError(
            f"The formula {formula!r} has no random-effect term; expected at least one such as (1 | cluster)."
        )
    _check_rank(frame.X, frame.fixed_names)
    order = sorted(range(len(frame.random)), key=lambda i: -frame.random[i].nlevels)
    blocks = [frame.random[i] for i in order]
    layouts = [theta_layout(b.k) for b in blocks]
    ntheta = int(sum(len(r) for r, _ in layouts))
    scalar = len(blocks) == 1 and blocks[0].k == 1
    if nagq > 1 and not scalar:
        raise ModelSpecificationError(
            f"`nagq` is {nagq} but the model has {'several random-effect terms' if len(blocks) > 1 else 'a random slope'}; "
            f"adaptive quadrature needs a single scalar random effect, so use nagq=1 (Laplace)."
        )
    X = np.ascontiguousarray(frame.X, dtype=float)
    with _blas_single_thread(), np.errstate(over="ignore", under="ignore"):
        if scalar:
            b0 = blocks[0]
            kern = ScalarKernel(X, y, m, off, np.ascontiguousarray(b0.Z[:, 0], dtype=float), b0.codes,
                                b0.nlevels, fam, nagq=nagq)
        elif all(b.k == 1 for b in blocks):
            kern = ScalarTermsKernel(X, y, m, off, blocks, fam)
        else:
            kern = GeneralKernel(X, y, m, off, blocks, fam, ntheta)
        lower_theta = np.concatenate([np.where(r == c, 0.0, -np.inf) for r, c in layouts])
        lower = np.concatenate([lower_theta, np.full(X.shape[1], -np.inf)])
        if start is None:
            beta0 = _glm_start(X, y, m, off, fam)
            theta0 = np.concatenate([(r == c).astype(float) for r, c in layouts])
            if hasattr(kern, "profiled_deviance"):
                kern.beta_hat = beta0  # PIRLS start of the first stage below
                x0 = np.concatenate([theta0, beta0])
            else:
                # first stage: theta alone at the GLM fixed effects (cheap, and a good start)
                th, _, _ = minimize_theta(lambda t: kern.deviance(np.concatenate([t, beta0])), theta0, lower_theta)
                x0 = np.concatenate([th, beta0])
        else:
            x0 = np.asarray(start, dtype=float)
            if x0.shape != lower.shape:
                raise ModelSpecificationError(
                    f"`start` has {x0.size} values; expected {lower.size} (theta then the fixed effects)."
                )
        par = None
        if start is None and hasattr(kern, "profiled_deviance"):
            # scalar random-effect terms: theta alone with the fixed effects found by PIRLS (glmer's
            # first stage), then Newton steps on (theta, beta); a boundary solution is checked below
            th, _, opt1 = minimize_theta(kern.profiled_deviance, x0[:ntheta], lower_theta)
            kern.profiled_deviance(th)
            x1 = np.concatenate([th, kern.beta_hat])
            par_n, dev_n, g_n, H_n, ok, nev = _newton_joint(kern.deviance, x1, lower)
            if ok and np.isfinite(dev_n) and dev_n < 1e300:
                # a variance on its boundary must survive steps into the interior (else restart there)
                xp, fp, bidx, nprobe = probe_boundary(kern.deviance, par_n, dev_n, lower)
                nev += nprobe
                if fp < dev_n:
                    par, dev, opt = minimize_theta(kern.deviance, xp, lower)
                    opt = _with_stage(opt, x0, opt1.iterations + opt.iterations,
                                      opt1.evaluations + nev + opt.evaluations,
                                      _first_stage(opt1.checks))
                else:
                    par, dev = par_n, dev_n
                    checks = ()
                    if len(bidx):
                        checks += (f"boundary: theta[{', '.join(str(int(i)) for i in bidx)}] stepped into the "
                                   f"interior, no lower deviance",)
                    # gradient norm and convergence are set below from the gradient at the optimum
                    opt = OptimizerSummary("PIRLS-profiled theta (L-BFGS-B + Newton), then Newton on (theta, beta) "
                                           "(finite differences)", tuple(map(float, x0)), tuple(map(float, par)),
                                           opt1.iterations, opt1.evaluations + nev, np.nan, True,
                                           "Newton step below tolerance", _first_stage(opt1.checks) + checks)
        if par is None:
            par, dev, opt = minimize_theta(kern.deviance, x0, lower)
        if not np.isfinite(dev):
            raise EstimationError(
                f"The Laplace deviance of {formula!r} could not be evaluated at any parameters tried; check the "
                f"outcome for constant values and the predictors for extreme scales."
            )
        vcov, par, dev, grad = _fixed_vcov(kern, par, dev, ntheta, lower_theta, lower)
        opt = _final_summary(opt, par, grad)
        kern.deviance(par)
        means, sds = kern.ranef(par)
    result = GlmmResult._from_fit(frame=frame, blocks=tuple(blocks), layouts=layouts, family=fam, nagq=nagq,
                                  par=par, ntheta=ntheta, vcov=vcov, deviance=dev, opt=opt, m=m, offset=off,
                                  offset_exprs=tuple(offset_exprs), response_label=label, re_means=means,
                                  re_sds=sds, n_dropped_extra=n_pre, extra_missing=extra_missing,
                                  formula=formula)
    _warn(result, formula, frame, n_pre, extra_missing, opt)
    return result


def _warn(result, formula, frame, n_pre, extra_missing, opt):
    n_drop = frame.n_dropped + n_pre
    if n_drop:
        detail = {**frame.dropped_by_column, **extra_missing}
        txt = ", ".join(f"{k}: {v}" for k, v in detail.items())
        warnings.warn(f"{n_drop} row(s) with missing values in model variables were set aside ({txt}); "
                      f"{frame.nobs} rows used.", MissingDataWarning, stacklevel=3)
    if not opt.converged:
        warnings.warn(f"The optimiser did not converge for {formula!r} ({opt.message}); max |gradient| = "
                      f"{opt.gradient_norm:.2g}. Check the model or rescale predictors.",
                      ConvergenceWarning, stacklevel=3)
    sep = result._separated_terms()
    if sep:
        warnings.warn(SeparationWarning(
            f"Complete or quasi-complete separation in {formula!r}: the estimate(s) for {list(sep)} diverge "
            f"(|estimate| and standard error very large); the outcome is (almost) perfectly predicted, "
            f"so combine categories, drop the term, or use penalised estimation.", sep), stacklevel=3)
    if result.singular:
        comps = result.boundary_components()
        warnings.warn(BoundaryVarianceWarning(
            f"Singular fit for {formula!r}: {result.singular_detail}; the random-effect variance is on the "
            f"boundary (zero), so the model reduces to an ordinary GLM for that term; consider removing it.",
            comps), stacklevel=3)
