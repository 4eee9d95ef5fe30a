"""``glm``: generalised linear models, ordinary or design-based (R's ``glm`` and ``survey::svyglm``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import ModelSpecificationError
from .._result import OptimizerSummary
from ..formula import build_design, parse_formula
from .design import SurveyDesign, SurveyDesignError
from .irls import FAMILIES, GlmFamily, estimating_functions, irls
from .linearise import design_variance
from .results import GlmResult
from cimstats.io.survey import analysis_frame

__all__ = ["glm", "GlmResult"]


def _prior_weights(weights, data: pd.DataFrame) -> np.ndarray | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ModelSpecificationError(
                f"`weights=` names {weights!r}, which is not a column of `data`; check the spelling.")
        s = data[weights]
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            raise ModelSpecificationError(
                f"The weights column {weights!r} holds {s.dtype} values, not numbers; expected numeric weights, "
                f"so convert the column with pd.to_numeric first.")
        w = s.to_numpy(dtype=float, na_value=np.nan)
        name = repr(weights)
    else:
        try:
            w = np.asarray(weights, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ModelSpecificationError(
                "`weights=` holds values that are not numbers; expected a column name or one number per row.") from None
        if len(w) != len(data):
            raise ModelSpecificationError(
                f"`weights=` has {len(w)} values for {len(data)} rows of `data`; expected one weight per row.")
        name = "`weights=`"
    bad = ~np.isnan(w) & (~np.isfinite(w) | (w < 0))
    if bad.any():
        raise ModelSpecificationError(
            f"The weights {name} have negative or infinite values; expected finite weights >= 0.")
    return w


def glm(formula: str, data: pd.DataFrame, *, family: str = "gaussian", design: SurveyDesign | None = None,
        weights=None) -> GlmResult:
    """Fit a generalised linear model, with design-based standard errors when a survey design is given.

    Parameters
    ----------
    formula : str
        R-style formula with fixed effects only, e.g. ``"diabetes ~ age + sex + deprivation"``
        (categorical predictors get treatment contrasts; ``C(x)``, ``I()``, ``log()`` and
        interactions as in :func:`cimstats.lmm`). Random-effect bars are refused.
    data : pandas.DataFrame
        One row per respondent.
    family : {"gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"}
        Identity link for gaussian, logit for the binomial families, log for the Poisson families.
        The binomial outcome is 0/1 (or a proportion with ``weights`` as the number of trials).
    design : SurveyDesign, optional
        The sampling design. Coefficients are then the design-weighted estimates and their
        standard errors the Taylor-linearised sandwich of R's ``svyglm`` (strata, clusters,
        fpc); tests are t tests with the design's degrees of freedom minus the number of
        coefficients plus one.
    weights : str or array-like, optional
        Prior (frequency or precision) weights, as ``weights=`` of R's ``glm``; with a design
        they multiply the sampling weights (as ``svyglm(..., weights=)``). Rows without a prior
        weight are set aside and counted in ``dropped``.

    Returns
    -------
    GlmResult
        ``tidy(level=)`` columns term, estimate, std_error, statistic, df, p_value, ci_lower,
        ci_upper; ``glance()`` nobs, n_dropped, deviance, dispersion, aic (without a design),
        design_df; ``summary()``, ``to_table_spec()``, ``vcov()``, ``dropped``, ``optimizer``.

    Raises
    ------
    ModelSpecificationError
        For an unknown family, random-effect terms, an outcome outside the family's range,
        collinear predictors (the aliased columns are named), or bad weights.
    SurveyDesignError
        When the design does not fit the data (see :class:`SurveyDesign`).

    Notes
    -----
    Without a design this is R's ``glm()``: IRLS, standard errors from the inverse
    information times the dispersion (1 for binomial and Poisson, with z tests; the Pearson
    estimate otherwise, with t tests on the residual degrees of freedom). With a design the
    estimating equations are weighted by the sampling weights and the covariance is
    ``A^-1 V A^-1``, where ``V`` is the design-based variance of the total of each row's
    score contribution (:mod:`cimstats.models.survey.linearise`). Rows with a missing
    model variable are set aside (counted in ``dropped``) and contribute nothing, but the
    design keeps its PSU counts, as ``svyglm`` does. Confidence intervals are Wald
    intervals with the same t or normal critical value as the tests.

    Validated against: survey::svyglm and stats::glm (tests/reference/survey.R).
    The R equivalent is ``svyglm(y ~ x, design = svydesign(...), family = quasibinomial())``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"x": rng.normal(size=400), "stratum": np.repeat([1, 2], 200),
    ...                   "psu": np.repeat(np.arange(40), 10), "w": rng.uniform(1, 3, 400)})
    >>> d["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.5 * d["x"]))))
    >>> design = cimstats.SurveyDesign(weights="w", strata="stratum", cluster="psu")
    >>> fit = cimstats.glm("y ~ x", d, family="quasibinomial", design=design)
    >>> fit.tidy()[["term", "df"]]
              term    df
    0  (Intercept)  37.0
    1            x  37.0
    """
    if family not in FAMILIES:
        raise ModelSpecificationError(
            f"`family=` is {family!r}; expected one of {', '.join(map(repr, FAMILIES))}.")
    if design is not None and not isinstance(design, SurveyDesign):
        raise SurveyDesignError(
            f"`design=` is a {type(design).__name__}; expected a cimstats.SurveyDesign(weights=..., strata=..., "
            f"cluster=...).")
    fam = GlmFamily(family)
    spec = parse_formula(formula)
    if spec.random:
        raise ModelSpecificationError(
            f"The formula {formula!r} has the random-effect term {spec.random[0].source}; glm() fits fixed effects "
            f"only, so use cimstats.glmm() for random effects or a SurveyDesign(cluster=...) for clustered samples.")
    data = analysis_frame(data, error=ModelSpecificationError)  # a Survey's value labels name factor levels
    resp = spec.response
    if resp in data.columns and not isinstance(data[resp], pd.DataFrame):
        ys = data[resp]
        if pd.api.types.is_bool_dtype(ys):
            data = data.assign(**{resp: ys.map({True: 1.0, False: 0.0}).astype(float)})
        elif not pd.api.types.is_numeric_dtype(ys):
            raise ModelSpecificationError(
                f"The outcome {resp!r} holds {ys.dtype} values, not numbers; glm() needs a numeric outcome (0/1 for "
                f"the binomial families), so recode it, such as (data[{resp!r}] == 'Yes').astype(int).")
    bound = design.bind(data) if design is not None else None
    prior = _prior_weights(weights, data)
    frame = build_design(spec, data)
    keep = np.ones(len(data), dtype=bool) if frame._row_keep is None else np.asarray(frame._row_keep, dtype=bool)
    X, y = frame.X, np.asarray(frame.y, dtype=float)
    dropped = {str(k): int(v) for k, v in frame.dropped_by_column.items()}
    frame_rows = None
    if prior is not None and np.isnan(prior).any():
        # rows without a prior weight are set aside and counted, as R's glm does (na.action)
        wmiss = np.isnan(prior)
        label = weights if isinstance(weights, str) else "weights"
        dropped[label] = dropped.get(label, 0) + int(wmiss.sum())
        frame_rows = ~wmiss[keep]
        X, y = X[frame_rows], y[frame_rows]
        keep = keep & ~wmiss
        if not keep.any():
            raise ModelSpecificationError(
                f"No row has both the model's variables and a prior weight; expected some complete rows, so check "
                f"the weights {label!r}.")
    names = tuple(frame.fixed_names)
    if fam.link == "logit" and ((y < 0) | (y > 1)).any():
        raise ModelSpecificationError(
            f"The outcome {spec.response!r} has values outside 0-1 (such as {y[(y < 0) | (y > 1)][0]:g}); a {family} "
            f"model needs 0/1 outcomes or proportions, so recode it.")
    if fam.link == "log" and (y < 0).any():
        raise ModelSpecificationError(
            f"The outcome {spec.response!r} has negative values (such as {y[y < 0][0]:g}); a {family} model needs "
            f"counts >= 0.")
    if bound is not None:
        w_all = bound.weights / bound.weights.mean()
        if prior is not None:
            w_all = w_all * prior
    else:
        w_all = prior if prior is not None else np.ones(len(data))
    w = np.asarray(w_all[keep], dtype=float)
    if not (w > 0).any():
        raise ModelSpecificationError("Every row used by the model has weight zero; expected some positive weights.")
    good = w > 0
    _check_rank(X[good] * np.sqrt(w[good])[:, None], names, formula)
    fit = irls(X, y, w, fam)
    p = X.shape[1]
    n_ok = int(good.sum())
    if bound is not None:
        est = estimating_functions(X, y, w, fit, fam)
        infl = np.zeros((len(data), p))
        infl[keep] = est @ fit.xtwx_inv
        vcov = design_variance(infl, bound, keep)
        design_df = bound.degrees_of_freedom(keep)
        df = float(design_df + 1 - p)
        df_residual = df
        dispersion = float("nan")
        loglik = aic = bic = float("nan")
    else:
        df_residual = float(n_ok - p)
        if fam.fixed_dispersion:
            dispersion = 1.0
            df = float("inf")
        else:
            pearson = np.sum(np.where(good, w * (y - fit.mu) ** 2 / fam.variance(fit.mu), 0.0))
            dispersion = float(pearson / df_residual) if df_residual > 0 else float("nan")
            df = df_residual
        vcov = dispersion * fit.xtwx_inv
        design_df = float("nan")
        aic0 = fam.aic(y, fit.mu, w, fit.deviance)
        npar = p + (1 if family == "gaussian" else 0)
        aic = aic0 + 2 * p
        loglik = npar - aic / 2 if np.isfinite(aic) else float("nan")
        bic = -2 * loglik + np.log(n_ok) * npar if np.isfinite(loglik) else float("nan")
    optimizer = OptimizerSummary(
        method="IRLS", start=tuple(float(v) for v in fit.start), final=tuple(float(v) for v in fit.beta),
        iterations=int(fit.iterations), evaluations=int(fit.iterations), gradient_norm=float(fit.score_norm),
        converged=bool(fit.converged),
        message="relative change in deviance below 1e-12" if fit.converged else "iteration limit reached",
        checks=())
    n_dropped = int(len(data) - keep.sum())
    return GlmResult(
        formula=formula, family=family, link=fam.link, terms=names, beta=np.asarray(fit.beta, dtype=float),
        vcov_matrix=np.asarray(vcov, dtype=float), df=df, df_residual=df_residual, dispersion=dispersion,
        deviance=float(fit.deviance), null_deviance=float(fit.null_deviance), loglik=float(loglik), aic=float(aic),
        bic=float(bic), nobs=int(keep.sum()), n_dropped=n_dropped,
        dropped_by_column=dropped, optimizer=optimizer,
        design=None if design is None else design.to_dict(), design_text="" if design is None else design.describe(),
        n_strata=0 if bound is None else bound.n_strata, n_psu=0 if bound is None else bound.n_psu,
        design_df=float(design_df), response=spec.response, _frame=frame, _frame_rows=frame_rows)


def _check_rank(Xw: np.ndarray, names: tuple, formula: str) -> None:
    """Refuse collinear predictors, naming the columns that are linear combinations of earlier ones."""
    if Xw.shape[0] < Xw.shape[1]:
        raise ModelSpecificationError(
            f"The model {formula!r} has {Xw.shape[1]} coefficients but only {Xw.shape[0]} rows with positive weight; "
            f"expected more rows than coefficients, so simplify the model.")
    # rank of the equilibrated cross-product (a p x p matrix; cheap whatever the number of rows)
    scale = np.sqrt(np.einsum("ij,ij->j", Xw, Xw))
    if (scale == 0).any() or np.linalg.matrix_rank((Xw.T @ Xw) / np.outer(scale, scale), tol=1e-10) < Xw.shape[1]:
        aliased = []
        for j in range(1, Xw.shape[1] + 1):
            sub = Xw[:, :j] / np.maximum(scale[:j], 1e-300)
            if np.linalg.matrix_rank(sub.T @ sub, tol=1e-10) < j - len(aliased):
                aliased.append(names[j - 1])
        raise ModelSpecificationError(
            f"The model {formula!r} has collinear predictors: {', '.join(map(repr, aliased)) or 'some columns'} "
            f"{'is' if len(aliased) == 1 else 'are'} a linear combination of the other columns; expected linearly "
            f"independent predictors, so remove the redundant term(s).")
