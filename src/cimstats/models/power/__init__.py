"""Simulation-based power and sample size for multilevel models and multilevel mediation.

:func:`power` draws many data sets from a stated design (or from a fitted
pilot model), fits the model to each with the package's own verbs and counts
how often the effect of interest is detected, for every combination of number
of clusters and cluster size asked for. The replications run on the one
execution layer (:mod:`cimstats._parallel`): in this process, on a local
cluster of worker processes, or on a Dask cluster given by ``client=``, with
identical results and resumable from ``checkpoint=``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cimstats._parallel import default_chunk_size, job_fingerprint, replicate, resolve_seed
from cimstats.errors import ModelSpecificationError

from .design import analytic_cluster_power, mediation_chunk, pilot_chunk, two_level_chunk
from .result import PowerResult

__all__ = ["power", "PowerResult", "analytic_cluster_power"]

_DESIGNS = ("two_level", "mediation")


def _sizes(name, value, *, allow_zero=False):
    vals = [value] if isinstance(value, (int, np.integer)) else list(value) if value is not None else []
    lo = 0 if allow_zero else 1
    if not vals or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo for v in vals):
        raise ModelSpecificationError(
            f"`{name}` is {value!r}; give a whole number or a list of whole numbers of at least {lo}.")
    return sorted({int(v) for v in vals})


def _proportion(name, v, *, lo=0.0, hi=1.0, open_lo=False, open_hi=False):
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and np.isfinite(v) and \
        (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not ok:
        raise ModelSpecificationError(f"`{name}` is {v!r}; give a number between {lo:g} and {hi:g}"
                                      f"{' (exclusive)' if open_lo or open_hi else ''}.")
    return float(v)


def _number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v):
        raise ModelSpecificationError(f"`{name}` is {v!r}; give a finite number.")
    return float(v)


def power(design: str = "two_level", *, pilot=None, data=None, term: str | None = None,
          effect: float | None = None, outcome: str = "continuous", icc: float = 0.1, prevalence: float = 0.2,
          exposure_level: int = 1, binary_exposure: bool = False, a: float = 0.3, b: float = 0.3,
          c_prime: float = 0.0, a_moderation: float = 0.0, test: str = "indirect", missing: float = 0.0,
          n_clusters=(20, 40, 60), cluster_size=(10,), nsim: int = 500, alpha: float = 0.05, seed=None,
          client=None, checkpoint=None, progress=None, chunk_size: int | None = None) -> PowerResult:
    """Power to detect an effect in a two-level design, by simulation.

    Parameters
    ----------
    design : {"two_level", "mediation"}
        The template data are drawn from (described in
        :mod:`cimstats.models.power.design`): an outcome on an exposure in
        members nested in clusters, or exposure -> mediator -> outcome in
        clusters. Ignored when ``pilot`` is given.
    pilot : LmmResult or GlmmResult, optional
        A fitted pilot model to simulate from instead (one grouping factor):
        its clusters are resampled with their covariates, random effects and
        residuals are drawn from its estimates, and ``term`` is set to
        ``effect`` (default: the pilot's own estimate). Needs ``data``, the
        data the pilot was fitted to.
    data : pandas.DataFrame, optional
        The pilot's data.
    term : str, optional
        The pilot's fixed effect to test.
    effect : float
        ``two_level``: the exposure's effect (standard deviations of a
        continuous outcome, or a log odds ratio for a binary one; default
        0.3). With ``pilot``: the value of ``term`` to simulate.
    outcome : {"continuous", "binary"}
        ``two_level`` only.
    icc : float
        Intra-cluster correlation of the outcome (latent scale for binary outcomes).
    prevalence : float
        Binary outcomes: the outcome's prevalence at exposure 0 (sets the intercept).
    exposure_level : {1, 2}
        The exposure varies between members (1) or between clusters only (2).
    binary_exposure : bool
        A 0/1 exposure with half of the units (members or clusters) in each arm.
    a, b, c_prime, a_moderation : float
        ``mediation``: the x -> m and m -> y paths, the direct path, and the
        change of ``a`` per standard deviation of a moderator ``w``.
    test : {"indirect", "index"}
        ``mediation``: test the indirect effect ``a*b`` or the index of
        moderated mediation ``a_moderation*b`` (Monte Carlo intervals).
    missing : float
        Share of outcomes (and mediators) missing completely at random.
    n_clusters, cluster_size : int or list of int
        The sample sizes to simulate; every combination is simulated.
    nsim : int
        Simulated data sets per combination (the Monte Carlo standard error of
        a power near 0.8 is about ``0.4 / sqrt(nsim)``).
    alpha : float
        Two-sided significance level (the interval level is ``1 - alpha``).
    seed : int, optional
        Makes the simulation repeatable; results are identical on any number of workers.
    client : None, "process", dask.distributed.Client or scheduler address
        Where to run (see :mod:`cimstats._parallel`).
    checkpoint : path, optional
        Folder for finished chunks; a re-run with the same folder resumes.
    progress : bool, optional
        Show a progress line.
    chunk_size : int, optional
        Replications per chunk.

    Returns
    -------
    PowerResult
        ``tidy()`` has one row per sample size with the power, its Monte
        Carlo SE and interval; ``plot()`` draws the power curve.

    Examples
    --------
    >>> import cimstats
    >>> res = cimstats.power("two_level", effect=0.5, icc=0.1, exposure_level=2, binary_exposure=True,
    ...                      n_clusters=[10, 20], cluster_size=5, nsim=20, seed=1, progress=False)
    >>> res.tidy()[["n_clusters", "cluster_size", "n_sim"]].values.tolist()
    [[10, 5, 20], [20, 5, 20]]
    """
    alpha = _proportion("alpha", alpha, open_lo=True, open_hi=True)
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ModelSpecificationError(f"`nsim` is {nsim!r}; give a whole number of simulated data sets, at least 2.")
    js = _sizes("n_clusters", n_clusters)
    if pilot is not None:
        d, task, tested = _pilot_design(pilot, data, term, effect, cluster_size)
        ms = d["cluster_size"]
        what = data
    else:
        if design not in _DESIGNS:
            raise ModelSpecificationError(f"`design` is {design!r}; expected one of {', '.join(_DESIGNS)}, "
                                          f"or give a fitted pilot model with `pilot=`.")
        ms = _sizes("cluster_size", cluster_size)
        if min(js) < 4:
            raise ModelSpecificationError("`n_clusters` must be at least 4 for a two-level model to be estimable.")
        if exposure_level not in (1, 2):
            raise ModelSpecificationError(f"`exposure_level` is {exposure_level!r}; expected 1 (members) or 2 (clusters).")
        d = {"model": design, "icc": _proportion("icc", icc, hi=1.0, open_hi=True),
             "missing": _proportion("missing", missing, hi=0.9), "exposure_level": int(exposure_level),
             "binary_exposure": bool(binary_exposure)}
        if design == "two_level":
            if outcome not in ("continuous", "binary"):
                raise ModelSpecificationError(f"`outcome` is {outcome!r}; expected 'continuous' or 'binary'.")
            d.update(outcome=outcome, effect=_number("effect", 0.3 if effect is None else effect),
                     prevalence=_proportion("prevalence", prevalence, open_lo=True, open_hi=True))
            task, tested = two_level_chunk, "x"
        else:
            if outcome != "continuous":
                raise ModelSpecificationError("The mediation design simulates continuous mediators and outcomes; "
                                              "use outcome='continuous'.")
            if test not in ("indirect", "index"):
                raise ModelSpecificationError(f"`test` is {test!r}; expected 'indirect' or 'index'.")
            d.update(outcome="continuous", a=_number("a", a), b=_number("b", b), c_prime=_number("c_prime", c_prime),
                     a_moderation=_number("a_moderation", a_moderation), test=test)
            task = mediation_chunk
            tested = "index of moderated mediation" if test == "index" else "indirect effect"
        what = None
    d.update(n_clusters=js, cluster_size=ms, nsim=int(nsim))
    cells = [(j, m) for j in js for m in ms]
    n = len(cells) * int(nsim)
    plain = {k: v for k, v in d.items() if not isinstance(v, (np.ndarray, pd.DataFrame, list))
             or k in ("n_clusters", "cluster_size")}
    fp = job_fingerprint("power", plain, alpha, what if what is not None else "")
    entropy = resolve_seed(seed, checkpoint)
    draws = replicate(task, n, seed=entropy, data=d, args=(alpha,), chunk_size=chunk_size or default_chunk_size(n),
                      client=client, checkpoint=checkpoint, progress=progress, name="power simulation",
                      fingerprint=fp)
    rows = []
    for i, (j, m) in enumerate(cells):
        block = draws[i * nsim:(i + 1) * nsim]
        valid = np.isfinite(block[:, 0])
        rows.append({"n_clusters": j, "cluster_size": m, "n_sim": int(nsim), "n_valid": int(valid.sum()),
                     "n_significant": int(np.nansum(block[:, 0])),
                     "n_not_converged": int((valid & (block[:, 2] == 0)).sum()),
                     "mean_estimate": float(np.nanmean(block[:, 1])) if valid.any() else float("nan")})
    cells_df = pd.DataFrame(rows)
    for c in ("n_clusters", "cluster_size", "n_sim", "n_valid", "n_significant", "n_not_converged"):
        cells_df[c] = cells_df[c].astype("int64")
    return PowerResult(term=tested, design=plain, cells=cells_df, alpha=alpha, seed=str(entropy))


def _pilot_design(pilot, data, term, effect, cluster_size):
    frame = getattr(pilot, "_frame", None)
    if frame is None or not hasattr(pilot, "_covs"):
        raise ModelSpecificationError(
            "`pilot` must be a linear or generalised linear mixed model fitted in this session "
            "(cimstats.lmm or cimstats.glmm), not a loaded or other result.")
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError("`data` must be the DataFrame the pilot model was fitted to.")
    if len(frame.random) != 1 or len(frame.spec.random) != 1:
        raise ModelSpecificationError(
            f"The pilot model has {len(frame.random)} random-effect terms; power simulation from a pilot supports "
            f"one grouping factor (e.g. (1 | cluster) or (1 + x | cluster)).")
    if term not in list(frame.fixed_names):
        raise ModelSpecificationError(f"`term` is {term!r}; the pilot's fixed effects are {', '.join(frame.fixed_names)}.")
    response, group = frame.spec.response, frame.spec.random[0].group
    for col, what in ((response, "response"), (group, "grouping factor")):
        if col not in data.columns:
            raise ModelSpecificationError(
                f"The pilot's {what} {col!r} is not a column of `data`; power simulation from a pilot needs a plain "
                f"column for the {what}.")
    used = data.loc[frame.rows].reset_index(drop=True)
    blk = frame.random[0]
    groups = [np.flatnonzero(blk.codes == k) for k in range(blk.nlevels)]
    groups = [g for g in groups if len(g)]
    if cluster_size is None or (not isinstance(cluster_size, (int, np.integer)) and list(cluster_size) == [10]):
        cluster_size = [int(round(np.median([len(g) for g in groups])))]
    ms = _sizes("cluster_size", cluster_size)
    beta = np.asarray(pilot.params, dtype=float).copy()
    k = list(frame.fixed_names).index(term)
    if effect is not None:
        beta[k] = _number("effect", effect)
    family = getattr(pilot, "family", "gaussian")
    if family not in ("gaussian", "binomial", "poisson"):
        raise ModelSpecificationError(f"The pilot's family is {family!r}; power simulation supports gaussian, "
                                      f"binomial (0/1 outcomes) and poisson pilots.")
    d = {"model": "pilot", "family": family, "formula": frame.spec.text, "term": term, "response": response,
         "group": group, "reml": bool(getattr(pilot, "reml", True)), "beta": beta,
         "sigma": float(getattr(pilot, "sigma", 1.0)), "re_cov": np.asarray(pilot._covs()[0], dtype=float),
         "fixed_matrix": np.asarray(frame.X, dtype=float), "random_matrix": np.asarray(blk.Z, dtype=float),
         "cluster_rows": groups, "data": used, "cluster_size": ms, "outcome": family,
         "effect_text": f"{beta[k]:.4g}", "icc": None, "exposure_level": None}
    return d, pilot_chunk, term
