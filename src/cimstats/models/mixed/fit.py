"""The ``lmm`` verb: fit a linear mixed model written in lme4 syntax."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ...errors import (ConvergenceWarning, EstimationError, MissingDataWarning,
                       ModelSpecificationError, SingularFitWarning)
from ..formula import ModelFrame, build_design, parse_formula
from .core import CrossProducts, PLSCore
from ._threads import _blas_single_thread
from .optimize import minimize_theta
from .results import LmmResult
from cimstats.io.survey import analysis_frame

__all__ = ["lmm", "fit_frame"]

_SINGULAR_TOL = 1e-4  # as lme4's isSingular()


def _as_frame(data) -> pd.DataFrame:
    return analysis_frame(data, error=ModelSpecificationError)


def _check_rank(X: np.ndarray, names) -> None:
    n, p = X.shape
    if n <= p:
        raise ModelSpecificationError(
            f"The model has {p} fixed-effect columns but only {n} usable rows; expected more rows than "
            f"fixed effects, so simplify the fixed part or check the missing values."
        )
    # pivoted QR of the scaled cross-product matrix (p x p): no n x p temporaries
    XtX = X.T @ X
    scale = np.sqrt(np.diag(XtX))
    scale[scale == 0] = 1.0
    _, R, piv = sla.qr(XtX / np.outer(scale, scale), mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    rank = int((d > 1e-11 * d[0]).sum()) if len(d) and d[0] > 0 else 0
    if rank < p:
        bad = [names[i] for i in sorted(piv[rank:])]
        raise ModelSpecificationError(
            f"The fixed-effect column(s) {bad} are perfectly collinear with the other columns "
            f"(rank {rank} of {p}); remove or recode them so that each term adds information."
        )


def _check_outcome_varies(y: np.ndarray, label: str, model: str) -> None:
    """A constant outcome has no variance to split between levels (lme4 stops with "response is constant")."""
    if len(y) and np.all(y == y[0]):
        raise ModelSpecificationError(
            f"The outcome {label!r} is constant ({float(y[0]):g} in all {len(y)} rows used); {model} needs an "
            f"outcome that varies, so check the outcome column and the rows selected."
        )


def fit_frame(frame: ModelFrame, *, reml: bool = True, start=None, df_method: str = "satterthwaite",
              formula: str | None = None, warn: bool = True):
    """Fit a prepared :class:`~cimstats.models.formula.ModelFrame` (internal entry point)."""

    if not frame.random:
        raise ModelSpecificationError(
            f"The formula {frame.spec.text!r} has no random-effect term; expected at least one such as "
            f"(1 | cluster), or use an ordinary regression."
        )
    _check_outcome_varies(frame.y, frame.spec.response, "a linear mixed model")
    _check_rank(frame.X, frame.fixed_names)
    order = sorted(range(len(frame.random)), key=lambda i: -frame.random[i].nlevels)  # lme4 order
    blocks = [frame.random[i] for i in order]
    nre = sum(b.nlevels * b.k for b in blocks)
    for b in blocks:
        if b.nlevels * b.k > frame.nobs:
            raise ModelSpecificationError(
                f"The random-effect term for {b.group!r} has {b.nlevels * b.k} random effects for "
                f"{frame.nobs} observations; expected fewer, so drop a random slope or the term."
            )
    with _blas_single_thread():
        cp = CrossProducts.build(frame.X, frame.y, [b.Z for b in blocks], [b.codes for b in blocks],
                                 [b.nlevels for b in blocks])
        core = PLSCore(cp)
        x0 = core.theta_start() if start is None else np.asarray(start, dtype=float)
        if x0.shape != core.lower.shape:
            raise ModelSpecificationError(
                f"`start` has {x0.size} values; expected {core.ntheta} (one per relative covariance parameter)."
            )
        theta, dev, opt = minimize_theta(lambda t: core.deviance(t, reml), x0, core.lower)
        if not np.isfinite(dev):
            raise EstimationError(
                f"The {'REML' if reml else 'ML'} criterion of {frame.spec.text!r} could not be evaluated "
                f"at any variance parameters tried; check the outcome for constant values or extreme scales."
            )
        if "beta" not in core.evaluate(theta, reml):
            # the criterion is finite nearby but not at the optimum: the residual sum of squares is zero
            # (or lost to underflow) or the fixed-effect cross-products are singular there
            raise EstimationError(
                f"The {'REML' if reml else 'ML'} criterion of {frame.spec.text!r} cannot be evaluated at the "
                f"estimated variance parameters (no residual variation left, or values too small or large for "
                f"double precision); check that the outcome varies beyond the fixed effects and rescale it."
            )
        beta, u, bs, ev = core.solve(theta, reml=reml)
    result = LmmResult._from_fit(frame=frame, blocks=tuple(blocks), core=core, theta=theta, beta=beta,
                                 bs=bs, ev=ev, reml=reml, opt=opt, df_method=df_method, nre=nre)
    if warn:
        if frame.n_dropped:
            detail = ", ".join(f"{k}: {v}" for k, v in frame.dropped_by_column.items())
            warnings.warn(f"{frame.n_dropped} row(s) with missing values in model variables were set aside "
                          f"({detail}); {frame.nobs} rows used.", MissingDataWarning, stacklevel=3)
        if not opt.converged:
            warnings.warn(f"The optimiser did not converge for {frame.spec.text!r} ({opt.message}); "
                          f"max |gradient| = {opt.gradient_norm:.2g}. Check the model or rescale predictors.",
                          ConvergenceWarning, stacklevel=3)
        if result.singular:
            warnings.warn(f"Singular fit for {frame.spec.text!r}: {result.singular_detail}; the random-effects "
                          f"structure may be too complex for the data (consider removing that term).",
                          SingularFitWarning, stacklevel=3)
    return result


def lmm(formula, data=None, *, reml: bool = True, df_method: str = "satterthwaite", start=None):
    """Fit a linear mixed model written in lme4 syntax, by REML or maximum likelihood.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"support ~ contact_freq + (1 | practice/ego)"``.
        See :mod:`cimstats.models.formula` for the grammar, the centring helpers
        ``gmc(x)``, ``cwc(x, g)`` and ``clustermean(x, g)``, and factor coding.
    data : pandas.DataFrame or cimstats.Survey
        One row per observation. (``lmm(data, formula)`` is accepted as well.)
    reml : bool, default True
        Restricted maximum likelihood (``True``, as ``lmer``'s default) or
        maximum likelihood (``False``; needed to compare fixed effects by LRT).
    df_method : {"satterthwaite", "asymptotic"}
        Degrees of freedom of the t-tests: Satterthwaite's approximation as in
        lmerTest (default) or infinite (Wald z-tests).
    start : array-like, optional
        Starting values for theta (the relative covariance factor, lme4 order).

    Returns
    -------
    LmmResult
        Frozen result with ``tidy()`` (columns term, estimate, std_error,
        statistic, df, p_value, ci_lower, ci_upper), ``glance()``, ``varcorr()``
        (group, term1, term2, vcov, sdcor), ``ranef()`` (group, term, level,
        condval, condsd), ``predict()``, ``icc()``, ``summary()`` and the number of
        rows dropped for missing values (``n_dropped``, ``dropped_by_column``).

    Raises
    ------
    ModelSpecificationError
        Unreadable formula or a term that cannot be represented (named, with
        the allowed functions), unknown columns, a column name that appears
        twice in ``data``, infinite values or values whose squares overflow
        (named by column), a non-numeric or constant outcome, a grouping factor
        with one level, perfectly collinear fixed effects.
    EstimationError
        When the criterion cannot be evaluated.

    Warns
    -----
    MissingDataWarning
        When rows were set aside (counts per column).
    SingularFitWarning
        When a variance is estimated as zero or a correlation as +-1.
    ConvergenceWarning
        When the optimiser stops without converging.

    Notes
    -----
    The profiled REML/ML criterion of Bates et al. (2015) is minimised over the
    relative covariance factor theta with bounds (diagonal elements >= 0) by
    L-BFGS-B and bounded Newton steps on finite-difference derivatives. A
    solution on the boundary (a variance of zero or a correlation of +-1, i.e. a
    zero diagonal element of theta) is accepted only after steps into the
    interior along each such element fail to lower the criterion; otherwise the
    search restarts from the better point (``optimizer.checks`` lists the checks
    run). The cross-products
    ``Z'Z, Z'X, X'X, Z'y, X'y, y'y`` are formed once; each evaluation is a
    blocked Cholesky factorisation (batched for the grouping factor with most
    levels, recursive for nested factors, dense or sparse for crossed ones) whose
    cost does not depend on the number of observations.

    Memory: the data frame is not copied. The used rows are read column by
    column into the fixed-effect matrix ``X``, the outcome and one int32 level
    code per row and grouping factor (random intercepts need nothing more per
    row); the cross-products are summed chunk by chunk. For nested
    random-intercept models with numeric predictors the peak additional memory
    stays below twice the bytes of the used columns (``benchmarks/lmm_speed.py``
    measures it); factors add one column of ``X`` per non-reference category.

    Validated against: ``lme4::lmer`` and ``lmerTest`` (tests/reference/lmm.R),
    e.g. R's ``lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)``.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects
    models using lme4. Journal of Statistical Software 67(1).
    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests
    in linear mixed effects models. Journal of Statistical Software 82(13).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cimstats
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 8)
    >>> x = rng.normal(size=g.size)
    >>> y = 1 + 0.5 * x + rng.normal(0, 0.7, 30)[g] + rng.normal(size=g.size)
    >>> m = cimstats.lmm("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    >>> m.tidy()[["term", "estimate"]].round(1).to_dict("list")
    {'term': ['(Intercept)', 'x'], 'estimate': [0.9, 0.4]}
    >>> m.varcorr()["group"].tolist()
    ['g', 'Residual']
    """
    if isinstance(formula, pd.DataFrame) or (not isinstance(formula, str) and hasattr(formula, "data")):
        formula, data = data, formula
    if data is None:
        raise ModelSpecificationError("`data` is missing; expected a DataFrame with the model's columns.")
    if df_method not in ("satterthwaite", "asymptotic"):
        raise ModelSpecificationError(
            f"`df_method` is {df_method!r}; expected 'satterthwaite' or 'asymptotic'."
        )
    frame = build_design(parse_formula(formula), _as_frame(data))
    return fit_frame(frame, reml=reml, start=start, df_method=df_method)
