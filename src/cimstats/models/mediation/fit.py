"""``cimstats.mediation``: observed-variable mediation with a vectorised bootstrap."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cimstats._parallel import job_fingerprint, replicate, resolve_seed
from cimstats.errors import CimstatsWarning, EstimationError, MissingDataWarning, ModelSpecificationError
from cimstats.models.mediation import kernel as K
from cimstats.models.mediation.results import MediationResult
from cimstats.models.mediation.spec import Spec, build_spec
from cimstats.io.survey import analysis_frame
from cimstats.models.checks import check_model_columns, check_unique_columns
from cimstats.models.survey.design import SurveyDesign
from cimstats.models.survey.linearise import design_variance
from cimstats.models.survey.replicates import subbootstrap_factors

_CI_METHODS = ("percentile", "bc", "bca")
_PATHS = ("a", "b", "direct")
#: below this many clusters a cluster bootstrap is unreliable (warned, not refused)
FEW_CLUSTERS = 30


def mediation(
    data,
    *,
    x: str,
    m: str | Sequence[str],
    y: str,
    covariates: Sequence[str] | None = None,
    serial: bool = False,
    moderator: str | None = None,
    moderated_paths: Sequence[str] = ("a",),
    moderator_values: str | Sequence[float] | None = None,
    cluster: str | None = None,
    within_between: bool = False,
    strata: str | None = None,
    n_boot: int = 5000,
    ci: str = "percentile",
    level: float = 0.95,
    seed: int | None = None,
    sensitivity: bool = True,
    rho: Sequence[float] | None = None,
    resample_index: np.ndarray | None = None,
    design: SurveyDesign | None = None,
    replicate_weights: np.ndarray | None = None,
    client=None,
    checkpoint=None,
    progress: bool | None = None,
) -> MediationResult:
    """Estimate direct and indirect effects of an exposure through one or more mediators.

    Each mediator and the outcome is regressed by ordinary least squares on its
    predecessors plus the covariates (a saturated recursive path model); the
    indirect effects are products of coefficients and their uncertainty comes
    from a nonparametric bootstrap that reuses the same resamples for every
    effect. Rows, or whole clusters, are resampled (within strata if given).

    Parameters
    ----------
    data : pandas.DataFrame or Survey
        One row per person (or per person-wave); only the named columns are used.
    x : str
        Exposure (the "X" of the model), numeric.
    m : str or list of str
        Mediator(s), numeric. Several mediators are parallel unless ``serial=True``.
    y : str
        Outcome, numeric.
    covariates : list of str, optional
        Numeric confounders entered in every equation (make indicator columns for
        categorical ones).
    serial : bool, default False
        With several mediators, let each mediator depend on the earlier ones
        (X -> M1 -> M2 -> Y); indirect effects are reported for every chain.
    moderator : str, optional
        Numeric moderator W. It enters each moderated equation together with its
        product term (first stage: ``X*W`` in the mediator equations; second
        stage: ``M*W`` in the outcome equation; direct: ``X*W`` in the outcome
        equation). Products use the raw (uncentred) values.
    moderated_paths : sequence of {"a", "b", "direct"}, default ("a",)
        Which paths W moderates ("a": first stage, PROCESS model 7; "b": second
        stage, model 14; ("a", "b"): model 58; ("a", "direct"): model 8).
    moderator_values : {"mean_sd", "percentiles"} or list of float, optional
        Values of W at which conditional effects are reported. Default
        ``"mean_sd"``: the mean and the mean +/- 1 SD of W (SD with n - 1; the
        choice of PROCESS 2 and of Hayes 2013), or its two values if W is binary;
        a value beyond the observed range is replaced by the minimum or maximum
        of W, as PROCESS does, and the replacement is named in
        ``moderator_values_rule``. ``"percentiles"`` gives the 16th, 50th and
        84th percentiles computed as PROCESS 3 and later compute them (see
        Notes). The values are fixed from the full sample.
    cluster : str, optional
        Cluster identifier (e.g. ``practice_id``): the bootstrap resamples whole
        clusters.
    within_between : bool, default False
        With ``cluster``, fit the 1-1-1 multilevel mediation model by splitting X
        and every mediator into the cluster mean and the deviation from it
        (cluster-mean centring) and report within- and between-cluster effects.
    strata : str, optional
        Resample within the levels of this column (e.g. ``country``).
    n_boot : int, default 5000
        Number of bootstrap resamples.
    ci : {"percentile", "bc", "bca"}, default "percentile"
        Bootstrap interval: percentile, bias-corrected, or bias-corrected and
        accelerated (acceleration from the leave-one-unit-out jackknife).
    level : float, default 0.95
        Confidence level.
    seed : int, optional
        Seed of the resampling; when omitted one is drawn and recorded in
        ``glance()`` so the analysis can be repeated exactly.
    sensitivity : bool, default True
        For one mediator without moderation or within/between split, compute the
        Imai-Keele-Tingley sensitivity analysis for mediator-outcome confounding.
    rho : list of float, optional
        Grid of error correlations for the sensitivity analysis
        (default -0.9 to 0.9 in steps of 0.05).
    resample_index : array of int, optional
        An (n_boot x n) matrix of row positions (after removal of incomplete rows)
        defining each resample, to reproduce another program's resamples; overrides
        ``n_boot``, ``seed``, ``cluster`` and ``strata`` for the resampling.
    design : SurveyDesign, optional
        How the sample was drawn (weights, strata, clusters). The paths are
        then weighted least-squares fits (the point estimates of R
        ``survey``'s ``svyglm``) with design-based (linearised) standard
        errors and ``n_PSU - n_strata`` degrees of freedom in ``paths()``, and
        the bootstrap respects the design: in each resample and stratum
        ``n_h - 1`` of the ``n_h`` primary sampling units (PSUs; rows without
        ``cluster``) are drawn with replacement and the weights rescaled by
        Rao and Wu's factor ``n_h / (n_h - 1)`` (R ``survey``'s
        ``as.svrepdesign(type = "subbootstrap")``). Later sampling stages and
        finite-population corrections do not enter the bootstrap. The design
        is checked on the complete rows; every stratum needs at least two
        PSUs. Not combined with ``cluster=``, ``strata=``, ``within_between``,
        ``resample_index`` or ``ci="bca"``.
    replicate_weights : array, optional
        With ``design``, an (R x n) matrix of replicate weights (each row the
        full weight of every complete row in one replicate, R ``survey``'s
        ``svrepdesign(combined.weights = TRUE)``), used instead of drawing the
        bootstrap, e.g. to reproduce replicate weights shipped with a survey.
    client : None, "process", dask.distributed.Client or scheduler address
        Where the resamples are computed (see :mod:`cimstats._parallel`);
        resample ``i`` uses child ``i`` of ``SeedSequence(seed)``, so the
        result is identical on any number of workers.
    checkpoint : path, optional
        A folder for finished chunks of resamples; a re-run resumes from it.
    progress : bool, optional
        Show a progress line (default: on a terminal or in Jupyter).

    Returns
    -------
    MediationResult
        ``tidy()`` has one row per effect with columns term, effect, path, level,
        moderator_value, estimate, std_error (bootstrap SD), statistic, df,
        p_value (t test for single coefficients, first-order delta/Sobel z test
        for products), ci_lower, ci_upper (bootstrap), ci_method, delta_se;
        ``paths()`` the regression coefficients with OLS standard errors
        (cluster-robust with ``cluster=``, also used for the delta-method tests);
        ``sensitivity()`` the ACME as a function of rho.

    Raises
    ------
    ModelSpecificationError
        A named column is absent, non-numeric, constant or collinear with the
        others; roles overlap; too few clusters; an option is out of range.

    Notes
    -----
    Indirect effect through mediator ``j``: ``a_j * b_j``; serial chain
    ``a_1 * d_21 * b_2``; total effect ``c' + sum of indirect effects`` (equal to
    the exposure coefficient of the total-effect model ``Y ~ X + covariates``).
    Moderated mediation: conditional indirect effect
    ``(a1 + a3 w) (b1 + b3 w)``; the index of moderated mediation is ``a3 * b1``
    (first stage) or ``a1 * b3`` (second stage) and is not defined when both
    stages are moderated (the indirect effect is then quadratic in w).
    Multilevel 1-1-1 model: ``M = a_W (X - X_j) + a_B X_j + ...``,
    ``Y = c'_W (X - X_j) + c'_B X_j + b_W (M - M_j) + b_B M_j + ...`` (X_j, M_j
    cluster means); within indirect ``a_W b_W``, between indirect ``a_B b_B``
    (Zhang, Zyphur & Preacher 2009). The within coefficients equal the
    fixed-effects (within-cluster) estimates; the equations are fitted by OLS and
    the clustering is handled by the cluster bootstrap, not by random effects.
    Moderator values: with ``"percentiles"`` the p-th percentile of the n
    complete values sorted as w_(1) <= ... <= w_(n) is taken at position
    h = p (n + 1) with linear interpolation, ``w_(floor h) + (h - floor h)
    (w_(floor h + 1) - w_(floor h))``, and w_(1) or w_(n) when h falls outside
    [1, n] (R's ``quantile(type = 6)``, the SPSS default); this reproduces the
    moderator values PROCESS prints, which interpolating at (n - 1) p, R's and
    numpy's default, does not. A categorical exposure with k groups in model 8
    (PROCESS's ``mcx`` with indicator coding) is fitted once per indicator:
    that indicator as ``x``, the other indicators and their products with W
    as ``covariates`` (covariates enter both equations, as these terms do in
    model 8); the equations are then PROCESS's and the conditional indirect
    effects are the relative conditional indirect effects of that group
    against the reference group.
    Conditional direct effects (model 8) are
    ``c' + c'_xw w`` with the OLS standard error
    ``sqrt(V[c',c'] + w^2 V[c'_xw,c'_xw] + 2 w V[c',c'_xw])`` in ``delta_se``.
    Sensitivity: ``ACME(rho) = a sigma_1/sigma_2 (rho~ - rho sqrt((1-rho~^2)/(1-rho^2)))``,
    zero at ``rho = rho~`` (Imai, Keele & Yamamoto 2010).

    The bootstrap never refits in a loop: for every resample it forms the
    weighted cross-product matrix of all model variables with one matrix
    product and solves all equations for all resamples at once.

    References
    ----------
    Hayes AF (2022). Introduction to Mediation, Moderation, and Conditional
    Process Analysis, 3rd ed. Guilford. Hayes AF (2015) Multivariate Behav Res
    50:1-22 (index of moderated mediation). Garcia DM, Schmitt MT, Branscombe
    NR, Ellemers N (2010) Eur J Soc Psychol 40:733-745. Preacher KJ, Rucker DD, Hayes AF (2007)
    Multivariate Behav Res 42:185-227. Zhang Z, Zyphur MJ, Preacher KJ (2009)
    Organ Res Methods 12:695-719. Imai K, Keele L, Yamamoto T (2010) Stat Sci
    25:51-71. Efron B (1987) J Am Stat Assoc 82:171-185.

    Under ``design=``: R ``survey``'s ``svyglm`` (weighted paths, linearised
    standard errors) and ``svrepdesign`` with the replicate weights of
    ``as.svrepdesign(type = "subbootstrap")`` (tests/reference/survey_mediation.R).

    Validated against: lavaan::sem with ``:=`` effects and ``se = "bootstrap"``
    (tests/reference/mediation.R), pingouin.mediation_analysis, and Hayes'
    "protest" example (Garcia et al. 2010): PROCESS's printed output for model
    8 (moderator values, predicted mediator and outcome), and models 7 and 8
    against ``stats::lm`` and a 40,000-resample bootstrap in R
    (tests/reference/process_protest.R).

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(7)
    >>> n = 400
    >>> diversity = rng.normal(size=n)
    >>> efficacy = 0.5 * diversity + rng.normal(size=n)
    >>> selfman = 0.4 * efficacy + 0.1 * diversity + rng.normal(size=n)
    >>> df = pd.DataFrame({"diversity": diversity, "efficacy": efficacy, "selfman": selfman})
    >>> res = cimstats.mediation(df, x="diversity", m="efficacy", y="selfman", n_boot=1000, seed=1)
    >>> t = res.tidy().set_index("term")
    >>> bool(np.isclose(t.loc["indirect", "estimate"], t.loc["a", "estimate"] * t.loc["b", "estimate"]))
    True
    >>> bool(t.loc["indirect", "ci_lower"] > 0)
    True

    Under a survey design (weights, strata, clusters), the paths are weighted
    and the bootstrap draws n_h - 1 PSUs per stratum:

    >>> df["wt"] = np.where(diversity > 0, 2.0, 1.0)
    >>> df["region"] = np.repeat([1, 2], n // 2)
    >>> df["practice"] = np.repeat(np.arange(40), n // 40)
    >>> design = cimstats.SurveyDesign(weights="wt", strata="region", cluster="practice")
    >>> res = cimstats.mediation(df, x="diversity", m="efficacy", y="selfman", design=design, n_boot=500, seed=1)
    >>> res.paths()["se_type"].iloc[0]
    'design-based'
    """
    df = _as_frame(data)
    mediators = [m] if isinstance(m, str) else list(m) if m is not None else []
    covs = [] if covariates is None else ([covariates] if isinstance(covariates, str) else list(covariates))
    mod_paths = (moderated_paths,) if isinstance(moderated_paths, str) else tuple(moderated_paths)

    _check_options(df, x, mediators, y, covs, moderator, mod_paths, cluster, strata, within_between,
                   n_boot, ci, level, resample_index, serial, seed)
    _check_design_options(design, replicate_weights, cluster, strata, within_between, resample_index, ci)
    numeric = [x, *mediators, y, *covs] + ([moderator] if moderator else [])
    used = numeric + [c for c in (cluster, strata) if c]
    check_unique_columns(df, used)
    if design is not None:
        overlap = [c for c in design.columns if c in numeric]
        if overlap:
            raise ModelSpecificationError(
                f"The survey design uses column '{overlap[0]}', which is also a model variable; a design column "
                "describes the sampling, so name another column.")
    for col in numeric:
        if len(df) and not df[col].notna().any():
            raise ModelSpecificationError(
                f"`{_role(col, x, mediators, y, covs, moderator)}=` column '{col}' has no observed values "
                f"(all {len(df)} rows are missing); expected some observed values, so check the column name and "
                f"its missing-value codes.")
    for col in numeric:
        _check_numeric(df[col], col, _role(col, x, mediators, y, covs, moderator))
    check_model_columns(df, numeric)

    # ---- listwise deletion, counted by column
    sub = df[used]
    miss = sub.isna()
    complete = ~miss.any(axis=1)
    dropped = pd.DataFrame({
        "column": used,
        "n_missing": [int(miss[c].sum()) for c in used],
        "reason": [f"missing value in {_role(c, x, mediators, y, covs, moderator, cluster, strata)} '{c}'"
                   for c in used],
    })
    dropped = dropped.loc[dropped["n_missing"] > 0].reset_index(drop=True)
    n_dropped = int((~complete).sum())
    if n_dropped:
        warnings.warn(f"mediation set aside {n_dropped} of {len(df)} rows with a missing value in the "
                      f"model columns (see glance() and dropped); impute beforehand to keep them.",
                      MissingDataWarning, stacklevel=2)
    sub = sub.loc[complete]
    n = len(sub)
    if n == 0:
        raise ModelSpecificationError(
            f"No row of `data` has values for all of {', '.join(used)} (most often missing: "
            f"{', '.join(dropped.sort_values('n_missing', ascending=False)['column'].head(3))}); expected complete "
            f"rows, so check the missing-value codes or drop a covariate.")
    values = {c: sub[c].to_numpy(dtype=float) for c in numeric}
    for c in numeric:
        if n and np.ptp(values[c]) == 0:
            raise ModelSpecificationError(
                f"`{_role(c, x, mediators, y, covs, moderator)}=` column '{c}' is constant "
                f"({values[c][0]:g}) in the {n} complete rows; a variable with no variation cannot be "
                f"used, so remove it or check the data.")

    # ---- survey design (checked on the complete rows)
    wts = None
    if design is not None:
        bound = design.bind(df.loc[complete])
        wts = np.asarray(bound.weights, dtype=float)
        psu_of_row, stratum_of_psu = _psu_strata(bound)
        if replicate_weights is not None:
            replicate_weights = _check_replicate_weights(replicate_weights, n)

    # ---- moderator values
    w_values: list[float] = []
    w_rule = ""
    if moderator:
        w_values, w_rule = _moderator_values(values[moderator], moderator_values)

    spec = build_spec(x=x, mediators=mediators, y=y, covariates=covs, moderator=moderator,
                      moderated_paths=mod_paths, serial=serial, within_between=within_between,
                      moderator_values=w_values)

    # ---- clusters and strata
    unit_of_row = np.arange(n)
    n_units = n
    stratum_of_unit = None
    n_clusters = None
    if cluster:
        unit_of_row, cl_levels = pd.factorize(sub[cluster], sort=True)
        n_units = n_clusters = len(cl_levels)
    if strata:
        st_codes, _ = pd.factorize(sub[strata], sort=True)
        stratum_of_unit = np.zeros(n_units, dtype=int)
        stratum_of_unit[unit_of_row] = st_codes
        if cluster:
            per = pd.Series(st_codes).groupby(unit_of_row).nunique()
            if (per > 1).any():
                bad = cl_levels[int(per.index[per > 1][0])]
                raise ModelSpecificationError(
                    f"`cluster=` '{cluster}' value {bad!r} spans several `strata=` '{strata}' levels; "
                    f"clusters must be nested in strata, so fix the codes or drop `strata=`.")
    _check_clusters(spec, n, n_units, stratum_of_unit, cluster, strata, within_between)

    # ---- design
    names = _design_columns(spec)
    D = _materialise(names, spec, values, unit_of_row, n_units)
    Zs = K.standardise(D)
    col = {name: i + 1 for i, name in enumerate(names)}
    products = K.pair_products(Zs.z)
    G_full = K.gram_blocks(np.ones((1, n)) if wts is None else wts[None, :], Zs.z, products)
    for eq in spec.equations:
        _check_collinear(eq, G_full[0], col, spec, n)

    # ---- full-sample fit (OLS by lstsq on the raw design)
    keys = [(eq.role, eq.outcome, p) for eq in spec.equations for p in eq.predictors]
    kpos = {k: i for i, k in enumerate(keys)}
    theta_hat = np.empty(len(keys))
    V_blocks, rows, eq_df = [], [], {}
    for eq in spec.equations:
        Xd = np.column_stack([np.ones(n)] + [D[:, col[p] - 1] for p in eq.predictors])
        yv = D[:, col[eq.outcome] - 1]
        if wts is not None:
            # weighted least squares, design-based covariance and degrees of freedom
            beta, V, s2, r2, dfree = _weighted_path(Xd, yv, wts, bound)
        else:
            beta, *_ = np.linalg.lstsq(Xd, yv, rcond=None)
            resid = yv - Xd @ beta
            dfree = n - Xd.shape[1]
            s2 = resid @ resid / dfree
            XtX_inv = np.linalg.inv(Xd.T @ Xd)
            r2 = 1 - resid @ resid / np.sum((yv - yv.mean()) ** 2)
        if wts is not None:
            pass  # V from the design above
        elif cluster:
            # cluster-robust (CR1) covariance, df = clusters - 1 (as Stata's vce(cluster))
            scores = np.zeros((n_units, Xd.shape[1]))
            np.add.at(scores, unit_of_row, Xd * resid[:, None])
            factor = n_units / (n_units - 1) * (n - 1) / dfree
            V = factor * XtX_inv @ (scores.T @ scores) @ XtX_inv
            dfree = n_units - 1
        else:
            V = s2 * XtX_inv
        se = np.sqrt(np.diag(V))
        eq_df[(eq.role, eq.outcome)] = dfree
        tq = stats.t.ppf(0.5 + level / 2, dfree)
        for i, term in enumerate(("(Intercept)",) + eq.predictors):
            tval = beta[i] / se[i]
            rows.append({
                "equation": eq.outcome, "role": eq.role, "term": term, "label": eq.labels.get(term, ""),
                "estimate": beta[i], "std_error": se[i], "statistic": tval, "df": float(dfree),
                "p_value": 2 * stats.t.sf(abs(tval), dfree),
                "ci_lower": beta[i] - tq * se[i], "ci_upper": beta[i] + tq * se[i],
                "r_squared": r2, "sigma": np.sqrt(s2),
                "se_type": "design-based" if wts is not None else "cluster-robust" if cluster else "OLS",
            })
            if i:
                theta_hat[kpos[(eq.role, eq.outcome, term)]] = beta[i]
        V_blocks.append(V[1:, 1:])
    path_table = pd.DataFrame(rows)
    V_theta = _block_diag(V_blocks)

    # ---- effect polynomials on parameter positions
    polys = [tuple((c, tuple(kpos[k] for k in ks)) for c, ks in e.poly) for e in spec.effects]
    est = np.array([K.eval_polynomial(theta_hat, p) for p in polys])

    # ---- bootstrap
    if resample_index is None and replicate_weights is None:
        seed = resolve_seed(seed, checkpoint)
    eq_cols = [(col[eq.outcome], [0] + [col[p] for p in eq.predictors]) for eq in spec.equations]
    sens_on = (sensitivity and len(mediators) == 1 and not moderator and not within_between)
    rho_grid = np.round(np.arange(-0.9, 0.9001, 0.05), 10) if rho is None else np.asarray(rho, float)
    if sens_on and np.any(np.abs(rho_grid) >= 1):
        raise ModelSpecificationError("`rho=` contains values outside (-1, 1); the sensitivity "
                                      "parameter is a correlation, so give values strictly between -1 and 1.")

    boot_state = {"equations": [(eq.role, eq.outcome, tuple(eq.predictors)) for eq in spec.equations],
                  "eq_cols": eq_cols, "scale": Zs.scale, "kpos": kpos, "n_keys": len(keys), "z": Zs.z,
                  "products": products, "unit_of_row": unit_of_row, "n_units": n_units,
                  "stratum_of_unit": stratum_of_unit, "sens": (spec, col, Zs) if sens_on else None,
                  "survey": None if wts is None else (wts, psu_of_row, stratum_of_psu)}

    def params_from_gram(G):
        return _params_from_gram(boot_state, G)

    if replicate_weights is not None:
        n_boot = replicate_weights.shape[0]
        resampling = "given replicate weights"
        boot_theta = np.empty((n_boot, len(keys)))
        sens_parts = []
        for i in range(0, n_boot, K.BLOCK):
            G = K.gram_blocks(replicate_weights[i:i + K.BLOCK], Zs.z, products)
            boot_theta[i:i + G.shape[0]] = params_from_gram(G)
            if sens_on:
                sens_parts.append(_sens_parts(G, spec, col, Zs))
    elif resample_index is not None:
        idx = np.asarray(resample_index)
        if idx.ndim != 2 or idx.shape[1] != n or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n:
            raise ModelSpecificationError(
                f"`resample_index=` has shape {idx.shape} and dtype {idx.dtype}; an integer matrix of "
                f"resamples x {n} complete rows with positions 0 to {n - 1} was expected.")
        n_boot = idx.shape[0]
        resampling = "rows (given index)"
        boot_theta = np.empty((n_boot, len(keys)))
        sens_parts = []
        for i in range(0, n_boot, K.BLOCK):
            G = K.gram_blocks(K.index_to_counts(idx[i:i + K.BLOCK], n), Zs.z, products)
            boot_theta[i:i + G.shape[0]] = params_from_gram(G)
            if sens_on:
                sens_parts.append(_sens_parts(G, spec, col, Zs))
    else:
        resampling = "clusters" if cluster else "rows"
        if strata:
            resampling += " within strata"
        if wts is not None:
            resampling = (("PSUs" if design.cluster_columns else "rows")
                          + (" within strata" if design.strata else "")
                          + ", n_h - 1 per stratum with Rao-Wu rescaled weights")
        fp = job_fingerprint("mediation", Zs.z, unit_of_row, stratum_of_unit, [repr(e) for e in boot_state["equations"]],
                             bool(sens_on), *(() if wts is None else boot_state["survey"]))
        draws = replicate(_bootstrap_chunk, int(n_boot), seed=seed, data=boot_state, client=client,
                          checkpoint=checkpoint, progress=progress, name="mediation bootstrap", fingerprint=fp)
        boot_theta = draws[:, :len(keys)]
        sens_parts = [draws[:, len(keys):]] if sens_on else []
    boot = np.column_stack([K.eval_polynomial(boot_theta, p) for p in polys])
    failed = ~np.isfinite(boot_theta).all(axis=1)
    n_failed = int(failed.sum())
    if n_failed > n_boot / 2:
        raise EstimationError(f"{n_failed} of {n_boot} bootstrap resamples had a singular design "
                              f"(a predictor constant within the resample); use more rows or clusters, "
                              f"or fewer covariates.")
    if n_failed:
        warnings.warn(f"{n_failed} of {n_boot} bootstrap resamples had a singular design and were set "
                      f"aside; the intervals use the remaining {n_boot - n_failed}.", CimstatsWarning, stacklevel=2)

    # ---- intervals
    accel = None
    if ci == "bca":
        GU = K.unit_grams(Zs.z, unit_of_row, n_units, products)
        jack_theta = params_from_gram(G_full - GU)
        jack = np.column_stack([K.eval_polynomial(jack_theta, p) for p in polys])
        accel = K.acceleration(jack)
    if ci == "percentile":
        lo, hi = K.percentile_interval(boot, level)
    else:
        lo, hi = K.adjusted_interval(boot, est, level, accel)

    # ---- delta-method / OLS tests
    tidy_rows = []
    for e, poly, j in zip(spec.effects, polys, range(len(polys))):
        g = K.polynomial_gradient(theta_hat, poly, len(keys))
        dse = float(np.sqrt(g @ V_theta @ g))
        linear_one_eq = all(len(ix) == 1 for _, ix in poly) and len({keys[ix[0]][:2] for _, ix in poly}) == 1
        stat = est[j] / dse if dse > 0 else np.nan
        if linear_one_eq:
            dfree = float(eq_df[keys[poly[0][1][0]][:2]])
            p = 2 * stats.t.sf(abs(stat), dfree)
        else:
            dfree = np.nan
            p = 2 * stats.norm.sf(abs(stat))
        tidy_rows.append({
            "term": e.term, "effect": e.effect, "path": e.path, "level": e.level,
            "moderator_value": e.moderator_value, "estimate": est[j],
            "std_error": float(np.nanstd(boot[:, j], ddof=1)), "statistic": stat, "df": dfree,
            "p_value": p, "ci_lower": lo[j], "ci_upper": hi[j], "ci_method": ci, "delta_se": dse,
        })
    effects = pd.DataFrame(tidy_rows)

    sens_table, sens_info = None, {}
    if sens_on:
        sens_table, sens_info = _sensitivity(spec, col, Zs, G_full, sens_parts, rho_grid, level, path_table)

    boot_frame = pd.DataFrame(boot, columns=[e.term for e in spec.effects])
    boot_frame.attrs["failed"] = failed
    return MediationResult(
        spec=spec,
        path_table=path_table,
        effects=effects,
        boot=boot_frame,
        boot_params=pd.DataFrame(boot_theta, columns=[f"{o} ~ {p}" + (" (total)" if r == "total" else "")
                                                      for r, o, p in keys]),
        sensitivity_table=sens_table,
        sensitivity_info=sens_info,
        nobs=n,
        n_dropped=n_dropped,
        dropped_detail=dropped,
        n_boot=n_boot,
        n_boot_failed=n_failed,
        seed=seed,
        ci=ci,
        level=level,
        resampling=resampling,
        n_clusters=n_clusters if design is None else (bound.n_psu if design.cluster_columns else None),
        cluster=cluster if design is None else (design.cluster_columns[0] if design.cluster_columns else None),
        strata=strata if design is None else design.strata,
        moderator_values=tuple(w_values),
        moderator_values_rule=w_rule,
        acceleration=accel,
    )


# ----------------------------------------------------------------------------- helpers
def _as_frame(data) -> pd.DataFrame:
    return analysis_frame(data, error=ModelSpecificationError)


def _role(c, x, ms, y, covs, w, cluster=None, strata=None) -> str:
    if c == x:
        return "x"
    if c in ms:
        return "m"
    if c == y:
        return "y"
    if c == w:
        return "moderator"
    if c == cluster:
        return "cluster"
    if c == strata:
        return "strata"
    return "covariates"


def _check_options(df, x, ms, y, covs, w, mod_paths, cluster, strata, within_between, n_boot, ci, level,
                   resample_index, serial, seed=None):
    for arg, val in (("x", x), ("y", y)):
        if not isinstance(val, str):
            raise ModelSpecificationError(f"`{arg}=` is {val!r}; one column name (a string) was expected, "
                                          f"so name the column.")
    if not ms:
        raise ModelSpecificationError("`m=` names no mediator; give one column name or a list of them.")
    named = [("x", x)] + [("m", c) for c in ms] + [("y", y)] + [("covariates", c) for c in covs]
    named += [(a, v) for a, v in (("moderator", w), ("cluster", cluster), ("strata", strata)) if v]
    for arg, c in named:
        if c not in df.columns:
            avail = ", ".join(map(str, list(df.columns)[:12])) + (" ..." if df.shape[1] > 12 else "")
            raise ModelSpecificationError(f"`{arg}=` names '{c}', which is not a column of `data`; "
                                          f"available: {avail}.")
    seen: dict = {}
    for arg, c in named:
        if c in seen:
            raise ModelSpecificationError(f"`{arg}=` names '{c}', which is already used as `{seen[c]}=`; "
                                          f"each column can play one role only, so remove the duplicate.")
        seen[c] = arg
    bad = [p for p in mod_paths if p not in _PATHS]
    if bad:
        raise ModelSpecificationError(f"`moderated_paths=` contains {bad[0]!r}; expected some of "
                                      f"'a', 'b', 'direct', so correct the entry.")
    if w and not mod_paths:
        raise ModelSpecificationError("`moderated_paths=` is empty while `moderator=` is given; name at "
                                      "least one of 'a', 'b', 'direct'.")
    if w and within_between:
        raise ModelSpecificationError("`within_between=True` cannot be combined with `moderator=`; fit "
                                      "the multilevel and the moderated model separately.")
    if w and serial:
        raise ModelSpecificationError("`serial=True` cannot be combined with `moderator=`; moderated "
                                      "mediation is available for one or several parallel mediators.")
    if within_between and not cluster:
        raise ModelSpecificationError("`within_between=True` needs `cluster=` to define the clusters whose "
                                      "means split each variable; name the cluster column.")
    if ci not in _CI_METHODS:
        raise ModelSpecificationError(f"`ci=` is {ci!r}; expected one of 'percentile', 'bc', 'bca'.")
    if not (isinstance(level, float) and 0 < level < 1):
        raise ModelSpecificationError(f"`level=` is {level!r}; a confidence level strictly between 0 and 1 "
                                      f"(such as 0.95) was expected.")
    if resample_index is None and (not isinstance(n_boot, (int, np.integer)) or n_boot < 2):
        raise ModelSpecificationError(f"`n_boot=` is {n_boot!r}; at least 2 resamples (in practice 5000) "
                                      f"are needed.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ModelSpecificationError(f"`seed=` is {seed!r}; a non-negative whole number (or None for a fresh "
                                      "random seed) was expected.")
    if resample_index is not None and (cluster or strata):
        raise ModelSpecificationError("`resample_index=` gives row resamples and cannot be combined with "
                                      "`cluster=` or `strata=`; drop one of them.")


def _check_design_options(design, replicate_weights, cluster, strata, within_between, resample_index, ci):
    """A survey design replaces `cluster=`/`strata=` and the plain bootstrap options."""
    if design is None:
        if replicate_weights is not None:
            raise ModelSpecificationError("`replicate_weights=` needs `design=` (the sampling weights and design "
                                          "they replicate); give the SurveyDesign too.")
        return
    if not isinstance(design, SurveyDesign):
        raise ModelSpecificationError(f"`design=` is a {type(design).__name__}; expected a "
                                      "cimstats.SurveyDesign naming the weights, strata and clusters.")
    clash = [a for a, v in (("cluster", cluster), ("strata", strata), ("within_between", within_between),
                            ("resample_index", resample_index is not None)) if v]
    if clash:
        raise ModelSpecificationError(
            f"`design=` cannot be combined with `{clash[0]}=`; the design's strata and clusters define the "
            "resampling, so drop that argument.")
    if ci == "bca":
        raise ModelSpecificationError("`ci='bca'` is not available with `design=` (its jackknife ignores the "
                                      "design); use ci='percentile' or 'bc'.")


def _check_replicate_weights(rw, n: int) -> np.ndarray:
    rw = np.asarray(rw)
    if rw.ndim != 2 or rw.shape[1] != n or rw.shape[0] < 2 or rw.dtype.kind not in "iuf":
        raise ModelSpecificationError(
            f"`replicate_weights=` has shape {rw.shape} and dtype {rw.dtype}; a numeric matrix of replicates x "
            f"{n} complete rows (at least 2 replicates) was expected.")
    rw = rw.astype(float)
    if not np.isfinite(rw).all() or (rw < 0).any():
        raise ModelSpecificationError("`replicate_weights=` contains missing, infinite or negative values; "
                                      "replicate weights must be finite and >= 0.")
    return rw


def _psu_strata(bound):
    """0-based PSU code of each row and the stratum of each PSU; every stratum needs two PSUs."""
    psu_of_row = np.unique(bound.ids[0], return_inverse=True)[1].ravel()
    n_psu = int(psu_of_row.max()) + 1
    stratum_of_psu = np.zeros(n_psu, dtype=np.int64)
    stratum_of_psu[psu_of_row] = bound.strata[0]
    counts = np.bincount(stratum_of_psu)
    bad = np.flatnonzero((counts > 0) & (counts < 2))
    if bad.size:
        raise ModelSpecificationError(
            f"{bound.stratum_label(0, bad[0])} has a single primary sampling unit among the complete rows; "
            "the design bootstrap draws n_h - 1 units per stratum and needs at least two, so merge that stratum "
            "with a similar one.")
    return psu_of_row, stratum_of_psu


def _weighted_path(Xd, yv, w, bound):
    """Weighted least squares with design-based (linearised) covariance, as R ``survey``'s ``svyglm``.

    Returns ``(beta, V, sigma^2, R^2, df)``; ``sigma^2`` is the weighted mean squared residual.
    """
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(Xd * sw[:, None], yv * sw, rcond=None)
    resid = yv - Xd @ beta
    XtWX_inv = np.linalg.inv((Xd * w[:, None]).T @ Xd)
    infl = (Xd * (w * resid)[:, None]) @ XtWX_inv
    V = design_variance(infl, bound)
    wsum = w.sum()
    s2 = float(w @ resid ** 2 / wsum)
    ybar = w @ yv / wsum
    r2 = 1 - float(w @ resid ** 2) / float(w @ (yv - ybar) ** 2)
    return beta, V, s2, r2, max(bound.degrees_of_freedom(), 1)


def _check_numeric(s: pd.Series, name: str, arg: str) -> None:
    if s.dtype.kind in "biuf":
        return
    raise ModelSpecificationError(
        f"`{arg}=` column '{name}' has {s.dtype} values; numeric values were expected, so recode it "
        f"(for a categorical covariate, add indicator columns).")


def _moderator_values(w: np.ndarray, spec) -> tuple[list[float], str]:
    """Values of the moderator for conditional effects, and the rule that chose them (PROCESS's rules)."""
    uniq = np.unique(w)
    if spec is None or (isinstance(spec, str) and spec == "mean_sd"):
        if spec is None and len(uniq) == 2:
            return [float(u) for u in uniq], "the two values of the binary moderator"
        mu, sd = float(w.mean()), float(w.std(ddof=1))
        values, notes = [mu - sd, mu, mu + sd], []
        lo, hi = float(w.min()), float(w.max())
        if values[0] < lo:
            notes.append(f"mean - 1 SD = {values[0]:.4g} lies below the minimum, which replaces it")
            values[0] = lo
        if values[2] > hi:
            notes.append(f"mean + 1 SD = {values[2]:.4g} lies above the maximum, which replaces it")
            values[2] = hi
        return values, "mean and mean +/- 1 SD" + (f" ({'; '.join(notes)})" if notes else "")
    if isinstance(spec, str) and spec == "percentiles":
        # position p(n + 1) with linear interpolation (R type 6), as PROCESS computes them
        values = np.percentile(w, [16, 50, 84], method="weibull")
        return [float(v) for v in values], "16th, 50th and 84th percentiles (position p(n + 1), as in PROCESS)"
    if isinstance(spec, str):
        raise ModelSpecificationError(f"`moderator_values=` is {spec!r}; expected 'mean_sd', 'percentiles' "
                                      f"or a list of numbers.")
    try:
        vals = [float(v) for v in np.atleast_1d(np.asarray(spec, dtype=float))]
    except (TypeError, ValueError):
        raise ModelSpecificationError(f"`moderator_values=` is {spec!r}; expected 'mean_sd', 'percentiles' or a "
                                      "list of numbers on the moderator's scale.") from None
    if not vals or not np.all(np.isfinite(vals)):
        raise ModelSpecificationError("`moderator_values=` must list at least one finite number.")
    return vals, "values given"


def _design_columns(spec: Spec) -> list[str]:
    names: list[str] = []
    for eq in spec.equations:
        for c in (eq.outcome, *eq.predictors):
            if c not in names:
                names.append(c)
    return names


def _materialise(names, spec: Spec, values, unit_of_row, n_units) -> np.ndarray:
    n = len(unit_of_row)
    out = np.empty((n, len(names)))
    for i, name in enumerate(names):
        rule = spec.derived.get(name)
        if rule is None:
            out[:, i] = values[name]
        elif rule[0] == "product":
            out[:, i] = values[rule[1]] * values[rule[2]]
        else:
            v = values[rule[1]]
            means = np.bincount(unit_of_row, weights=v, minlength=n_units) / np.bincount(unit_of_row, minlength=n_units)
            out[:, i] = means[unit_of_row] if rule[0] == "between" else v - means[unit_of_row]
    return out


def _check_clusters(spec, n, n_units, stratum_of_unit, cluster, strata, within_between):
    if not cluster and not strata:
        return
    if stratum_of_unit is not None:
        counts = np.bincount(stratum_of_unit)
        if counts.min() < 2:
            what = "clusters" if cluster else "rows"
            raise ModelSpecificationError(
                f"`strata=` '{strata}' has a level with {counts.min()} {what}; at least 2 per stratum are "
                f"needed to resample, so merge small strata.")
    if cluster:
        if within_between:
            between = [p for p in spec.equations[-2 if spec.moderator is None else -1].predictors
                       if p.endswith("[between]")]
            need = len(between) + len(spec.covariates) + 2
            if n_units < need:
                raise ModelSpecificationError(
                    f"`cluster=` '{cluster}' has {n_units} clusters; the between-cluster part of the model "
                    f"needs at least {need}, so use more clusters or `within_between=False`.")
        if n_units < 2:
            raise ModelSpecificationError(f"`cluster=` '{cluster}' has {n_units} cluster; a cluster bootstrap "
                                          f"needs several clusters, so drop `cluster=`.")
        if n_units < FEW_CLUSTERS:
            warnings.warn(f"`cluster=` '{cluster}' has only {n_units} clusters; cluster-bootstrap intervals "
                          f"are unreliable with fewer than {FEW_CLUSTERS}.", CimstatsWarning, stacklevel=3)


def _check_collinear(eq, G, col, spec, n):
    P = [0] + [col[p] for p in eq.predictors]
    A = G[np.ix_(P, P)]
    if K.well_conditioned(A[None])[0] and len(P) < n:
        return
    # find the first predictor that adds nothing new
    for j in range(2, len(P) + 1):
        sub = G[np.ix_(P[:j], P[:j])]
        if not K.well_conditioned(sub[None])[0] or j >= n:
            term = eq.predictors[j - 2]
            base = spec.derived.get(term)
            src = base[1] if base and base[0] != "product" else term
            arg = _role(src, spec.x, spec.mediators, spec.y, spec.covariates, spec.moderator)
            raise ModelSpecificationError(
                f"`{arg}=` term '{term}' in the equation for '{eq.outcome}' is collinear with the terms "
                f"before it ({', '.join(eq.predictors[:j - 2]) or 'the intercept'}); remove it or one of them.")
    raise ModelSpecificationError(f"The equation for '{eq.outcome}' has {len(P)} coefficients but only {n} "
                                  f"complete rows; use fewer covariates.")


def _block_diag(blocks):
    size = sum(b.shape[0] for b in blocks)
    out = np.zeros((size, size))
    i = 0
    for b in blocks:
        k = b.shape[0]
        out[i:i + k, i:i + k] = b
        i += k
    return out


def _params_from_gram(st: dict, G: np.ndarray) -> np.ndarray:
    """Path coefficients (original scale) of every equation for each resample's Gram matrix."""
    th = np.empty((G.shape[0], st["n_keys"]))
    for (o, P), (role, outcome, predictors) in zip(st["eq_cols"], st["equations"]):
        beta, _ = K.solve_equation(G, o, P)
        scale = st["scale"][o] / st["scale"][np.asarray(P[1:])]
        for i, p in enumerate(predictors):
            th[:, st["kpos"][(role, outcome, p)]] = beta[:, i + 1] * scale[i]
    return th


def _bootstrap_chunk(st: dict, seeds) -> np.ndarray:
    """One chunk of the bootstrap: each seed's resample, its path coefficients (and sensitivity parts)."""
    if st.get("survey") is not None:
        wts, psu_of_row, stratum_of_psu = st["survey"]
        W = wts[None, :] * subbootstrap_factors(seeds, psu_of_row, stratum_of_psu)
    else:
        W = K.counts_from_seeds(seeds, st["unit_of_row"], st["n_units"], st["stratum_of_unit"])
    G = K.gram_blocks(W, st["z"], st["products"])
    th = _params_from_gram(st, G)
    if st["sens"] is None:
        return th
    return np.column_stack([th, _sens_parts(G, *st["sens"])])


def _sens_parts(G, spec, col, Zs):
    """Per-resample a, sigma_1/sigma_2 and rho~ (mediator and total-effect residuals)."""
    m, y = spec.mediators[0], spec.y
    P = [0, col[spec.x]] + [col[c] for c in spec.covariates]
    om, oy = col[m], col[y]
    beta_m, rss_m = K.solve_equation(G, om, P)
    _, rss_y = K.solve_equation(G, oy, P)
    cross = K.residual_crossproduct(G, oy, om, P)
    a = beta_m[:, 1] * Zs.scale[om] / Zs.scale[col[spec.x]]
    ratio = np.sqrt(rss_y / rss_m) * Zs.scale[oy] / Zs.scale[om]
    rt = cross / np.sqrt(rss_y * rss_m)
    return np.column_stack([a, ratio, rt])


def _sensitivity(spec, col, Zs, G_full, parts, rho_grid, level, path_table):
    full = _sens_parts(G_full, spec, col, Zs)[0]
    a, ratio, rt = full
    acme = K.acme_curve(a, ratio, rt, rho_grid)
    allp = np.vstack(parts)
    boot_curve = K.acme_curve(allp[:, 0], allp[:, 1], allp[:, 2], rho_grid)
    lo, hi = K.percentile_interval(boot_curve, level)
    table = pd.DataFrame({"rho": rho_grid, "acme": acme, "ci_lower": lo, "ci_upper": hi})
    r2 = path_table.drop_duplicates(["role", "equation"]).set_index("role")["r_squared"]
    r2m, r2y = float(r2["mediator"]), float(r2["outcome"])
    info = {
        "rho_at_zero_acme": float(rt),
        "r2_star_product_at_zero": float(rt**2),
        "r2_tilde_product_at_zero": float(rt**2 * (1 - r2m) * (1 - r2y)),
        "rho_at_zero_ci": tuple(float(v[0]) for v in K.percentile_interval(allp[:, 2:3], level)),
    }
    return table, info
