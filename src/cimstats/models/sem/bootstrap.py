"""Nonparametric and cluster bootstrap of a fitted SEM.

Every free, defined (``:=``) and standardized (``std_all``) parameter is
taken from the same resamples. Rows are resampled within groups; with
``cluster=`` whole clusters (e.g. practices) are resampled within strata
(and groups). Each resample is refitted from the full-sample estimates
(warm start); resamples are spread over worker processes.

Intervals: percentile, and bias-corrected and accelerated (BCa; Efron 1987)
with the bias correction ``z0 = Phi^-1(#{theta* < theta_hat} / B)`` and the
acceleration ``a = sum U^3 / (6 (sum U^2)^1.5)`` from the empirical influence
values ``U_i = J A^-1 s_i`` (casewise scores ``s_i``, information ``A``,
Jacobian ``J`` of the parameter function; cluster sums with clusters), the
infinitesimal-jackknife form of the jackknife acceleration.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cimstats._parallel import job_fingerprint, replicate, resolve_seed
from cimstats.errors import ModelSpecificationError
from cimstats.models._result import not_available

from .derivatives import complex_jacobian, label_env
from .inference import standardize_fn
from .partable import _terms

__all__ = ["bootstrap", "BootstrapResult"]


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap replicates and intervals.

    ``table`` columns: ``term, lhs, op, rhs, group, label, estimate,
    boot_se, ci_lower, ci_upper, bca_lower, bca_upper, std_all,
    std_all_boot_se, std_all_ci_lower, std_all_ci_upper, std_all_bca_lower,
    std_all_bca_upper``. ``replicates`` / ``std_replicates`` hold one row per
    successful resample and one column per table row.
    """

    table: pd.DataFrame
    replicates: np.ndarray
    std_replicates: np.ndarray
    n_boot: int
    n_failed: int
    level: float
    cluster: str | None

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()


def _row_values(prep, x, std_fn, defined_names):
    tab = prep.table
    free = tab["free"].to_numpy()
    ust = tab["ustart"].to_numpy(dtype=float)
    raw = np.where(free > 0, x[np.maximum(free - 1, 0)], ust)
    if defined_names:
        env = label_env(tab, x, prep.constraints.defined)
        raw = np.concatenate([raw, [env[n] for n in defined_names]])
    return raw, std_fn(x)


def _counts_for(rng, prep, gi, n, cluster_codes, strata_codes):
    if cluster_codes is None:
        if strata_codes is None:
            idx = rng.integers(0, n, n)
            return np.bincount(idx, minlength=n).astype(float)
        counts = np.zeros(n)
        for s in np.unique(strata_codes):
            rows = np.where(strata_codes == s)[0]
            pick = rows[rng.integers(0, len(rows), len(rows))]
            counts += np.bincount(pick, minlength=n)
        return counts
    counts = np.zeros(n)
    ccodes = cluster_codes
    strata = np.zeros(n, dtype=int) if strata_codes is None else strata_codes
    for s in np.unique(strata):
        in_s = strata == s
        cl = np.unique(ccodes[in_s])
        drawn = cl[rng.integers(0, len(cl), len(cl))]
        times = pd.Series(drawn).value_counts()
        member = ccodes
        mult = pd.Series(member[in_s]).map(times).fillna(0).to_numpy()
        counts[np.where(in_s)[0]] += mult
    return counts


def _bootstrap_chunk(st: dict, seeds):
    """Refit the model to each seed's resample: one row per resample (ok flag, raw values, standardized values)."""
    prep = copy.deepcopy(st["prep"])
    pr = prep.problem
    std_fn = standardize_fn(prep, st["std_kind"])
    width = st["n_raw"] + st["n_std"]
    rows = []
    Ys = [gk.Y.copy() for gk in pr.groups]
    for seq in seeds:
        # the resample's generator is seeded from its own child of the job's SeedSequence
        rng = np.random.default_rng(int(seq.generate_state(1)[0]))
        good = True
        for gi, gk in enumerate(pr.groups):
            n = Ys[gi].shape[0]
            counts = _counts_for(rng, prep, gi, n, st["cl_codes"][gi], st["st_codes"][gi])
            if pr.missing:
                picked = np.repeat(np.arange(n), counts.astype(int))
                gk.set_missing(Ys[gi][picked])
                gk.refresh_exo()  # fixed covariates at the resample's (complete) moments
            else:
                wt = getattr(gk, "wt", None)  # sampling weights ride along with the resampled rows
                good &= gk.set_weights(Ys[gi], counts if wt is None else counts * wt)
        if not good:
            rows.append([0.0] + [np.nan] * width)
            continue
        pr.N = float(sum(g.n for g in pr.groups))
        pr.w = np.array([g.n / pr.N for g in pr.groups])
        try:
            z, tr = pr.fit(st["z_start"].copy(), Hinv0=st["Hinv0"])
        except (np.linalg.LinAlgError, ValueError):
            rows.append([0.0] + [np.nan] * width)
            continue
        if not tr.get("converged", False):
            rows.append([0.0] + [np.nan] * width)
            continue
        r, s = _row_values(prep, pr.x_of(z), std_fn, st["defined_names"])
        rows.append([1.0] + list(np.asarray(r, float)) + list(np.asarray(s, float)))
    return np.array(rows, dtype=float).reshape(len(seeds), width + 1)


def _influence(result, J_raw, J_std, cl_codes):
    """Empirical influence values (n_units, n_rows) of raw and standardized rows."""
    prep = result._prep
    pr = prep.problem
    z = result._z
    A = pr.info_z(z) if not pr.missing else pr.hessian_z(z)
    Ainv = np.linalg.inv(A)
    scores = pr.scores_z(z)
    Us_raw, Us_std = [], []
    for gi, sc in enumerate(scores):
        IF = sc @ Ainv.T @ pr.K.T  # (n, nfree) influence on x
        if cl_codes[gi] is not None:
            codes, inv = np.unique(cl_codes[gi], return_inverse=True)
            agg = np.zeros((len(codes), IF.shape[1]))
            np.add.at(agg, inv.ravel(), IF)
            IF = agg
        Us_raw.append(IF @ J_raw.T)
        Us_std.append(IF @ J_std.T)
    return np.vstack(Us_raw), np.vstack(Us_std)


def _intervals(reps, est, U, level):
    alpha = (1 - level) / 2
    lo = np.nanquantile(reps, alpha, axis=0)
    hi = np.nanquantile(reps, 1 - alpha, axis=0)
    se = np.nanstd(reps, axis=0, ddof=1)
    B = reps.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        prop = (np.sum(reps < est, axis=0) + 0.5 * np.sum(reps == est, axis=0)) / B
        z0 = stats.norm.ppf(np.clip(prop, 1.0 / (B + 1), B / (B + 1.0)))
        a = np.sum(U ** 3, axis=0) / (6.0 * np.sum(U ** 2, axis=0) ** 1.5)
        a = np.nan_to_num(a)
        za = stats.norm.ppf([alpha, 1 - alpha])
        a1 = stats.norm.cdf(z0 + (z0 + za[0]) / (1 - a * (z0 + za[0])))
        a2 = stats.norm.cdf(z0 + (z0 + za[1]) / (1 - a * (z0 + za[1])))
    bl = np.array([np.quantile(reps[:, j], a1[j]) if np.isfinite(a1[j]) and se[j] > 0 else lo[j]
                   for j in range(reps.shape[1])])
    bh = np.array([np.quantile(reps[:, j], a2[j]) if np.isfinite(a2[j]) and se[j] > 0 else hi[j]
                   for j in range(reps.shape[1])])
    return se, lo, hi, bl, bh


def bootstrap(result, n_boot: int = 1000, *, cluster: str | None = "auto", strata: str | None = None,
              data=None, seed: int | None = None, n_jobs: int | None = None, level: float = 0.95, client=None,
              checkpoint=None, progress: bool | None = None) -> BootstrapResult:
    """Bootstrap every free, defined and standardized parameter of a fitted SEM.

    Parameters
    ----------
    result : SEMResult
        A model fitted by :func:`cimstats.sem` (cimstats engine).
    n_boot : int
        Number of resamples.
    cluster : str or None
        ``"auto"`` uses the model's ``cluster=`` column (cluster bootstrap) if
        any; ``None`` resamples rows.
    strata : str, optional
        Column of ``data`` within which clusters (or rows) are resampled.
    data : pandas.DataFrame, optional
        The data the model was fitted to (needed only for ``strata``).
    seed : int, optional
        Seed; resample ``i`` uses child ``i`` of ``SeedSequence(seed)``, so the
        results do not depend on where or in how many chunks they are computed.
    n_jobs : int, optional
        Deprecated: use ``client=``. ``1`` keeps the work in this process.
    level : float
        Confidence level of the intervals.
    client : None, "process", dask.distributed.Client or scheduler address
        Where the resamples are refitted (see :mod:`cimstats._parallel`).
    checkpoint : path, optional
        A folder for finished chunks; a re-run with the same folder resumes.
    progress : bool, optional
        Show a progress line.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cimstats.models.sem import sem
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=300); m = 0.5 * x + rng.normal(size=300)
    >>> y = 0.4 * m + rng.normal(size=300)
    >>> fit = sem("m ~ a*x\\ny ~ b*m + x\\nab := a*b", pd.DataFrame({"x": x, "m": m, "y": y}))
    >>> bs = fit.bootstrap(200, seed=1, client="process", progress=False)
    >>> row = bs.table.query("op == ':='").iloc[0]
    >>> bool(row["ci_lower"] < row["estimate"] < row["ci_upper"])
    True
    """

    if n_jobs is not None:
        warnings.warn("`n_jobs=` is replaced by `client=` (None: this machine, 'process': this process, or a "
                      "Dask client); it will be removed in the next release.", DeprecationWarning, stacklevel=2)
        if n_jobs == 1 and client is None:
            client = "process"
    prep = getattr(result, "_prep", None)
    if prep is None:
        raise not_available("The bootstrap", "structural equation model")
    if n_boot < 2:
        raise ModelSpecificationError(f"`n_boot` is {n_boot}; use at least 2 (typically 1000 or more).")
    if cluster == "auto":
        cluster = prep.cluster
    cl_codes = [None] * len(prep.problem.groups)
    st_codes = [None] * len(prep.problem.groups)
    if cluster is not None:
        if cluster != prep.cluster:
            raise ModelSpecificationError(
                f"`cluster=` is '{cluster}' but the model was fitted with cluster={prep.cluster!r}; "
                "fit the model with the cluster column to bootstrap clusters."
            )
        cl_codes = [pd.factorize(c)[0] for c in prep.clusters]
    if strata is not None:
        if data is None or strata not in data.columns:
            raise ModelSpecificationError(
                f"`strata=` is '{strata}' but `data` with that column was not given; pass data=the fitted data."
            )
        st_codes = [pd.factorize(data.loc[rows, strata])[0] for rows in prep.group_rows]
    defined_names = list(prep.constraints.defined)
    std_kind = "std.all"
    std_fn = standardize_fn(prep, std_kind)
    x_hat = prep.problem.x_of(result._z)

    def raw_fn(xx):
        tab = prep.table
        free = tab["free"].to_numpy()
        ust = tab["ustart"].to_numpy(dtype=float)
        raw = np.where(free > 0, xx[..., np.maximum(free - 1, 0)], ust.astype(xx.dtype))
        if defined_names:
            env = label_env(tab, xx, prep.constraints.defined)
            dv = np.stack([np.broadcast_to(env[n], raw.shape[:-1]) for n in defined_names], axis=-1)
            raw = np.concatenate([raw, dv.astype(xx.dtype)], axis=-1)
        return raw

    est_raw, J_raw = complex_jacobian(raw_fn, x_hat, batched=True)
    est_std, J_std = complex_jacobian(std_fn, x_hat, batched=True)
    if getattr(prep, "problem_constrained", None) is not None:
        # resamples are refitted under the model's non-linear / inequality constraints
        prep_b = copy.copy(prep)
        prep_b.problem = prep.problem_constrained
        z_start, Hinv0 = prep.z_constrained, None
    else:
        prep_b, z_start = prep, result._z
        I0 = prep.problem.info_z(result._z)
        Hinv0 = np.linalg.inv(2.0 * I0) if I0 is not None else None
    state = {"prep": prep_b, "z_start": np.asarray(z_start), "Hinv0": Hinv0, "std_kind": std_kind,
             "defined_names": defined_names, "cl_codes": cl_codes, "st_codes": st_codes,
             "n_raw": int(est_raw.size), "n_std": int(est_std.size)}
    entropy = resolve_seed(seed, checkpoint)
    fp = job_fingerprint("sem_bootstrap", np.asarray(result._z), list(prep.table["lhs"]), list(prep.table["rhs"]),
                         cl_codes, st_codes)
    draws = replicate(_bootstrap_chunk, int(n_boot), seed=entropy, data=state, client=client,
                      checkpoint=checkpoint, progress=progress, name="SEM bootstrap", fingerprint=fp)
    ok = draws[:, 0] == 1
    n_ok = int(ok.sum())
    reps = draws[ok, 1:1 + est_raw.size]
    sreps = draws[ok, 1 + est_raw.size:]
    U_raw, U_std = _influence(result, J_raw, J_std, cl_codes)
    se, lo, hi, bl, bh = _intervals(reps, est_raw, U_raw, level)
    sse, slo, shi, sbl, sbh = _intervals(sreps, est_std, U_std, level)
    tab = prep.table
    lhs = list(tab["lhs"]) + defined_names
    ops = list(tab["op"]) + [":="] * len(defined_names)
    rhs = list(tab["rhs"]) + [prep.constraints.defined[n].text for n in defined_names]
    grp = list(tab["group"]) + [0] * len(defined_names)
    lab = list(tab["label"]) + defined_names
    out = pd.DataFrame({"lhs": lhs, "op": ops, "rhs": rhs, "group": grp, "label": lab,
                        "estimate": est_raw, "boot_se": se, "ci_lower": lo, "ci_upper": hi,
                        "bca_lower": bl, "bca_upper": bh, "std_all": est_std, "std_all_boot_se": sse,
                        "std_all_ci_lower": slo, "std_all_ci_upper": shi, "std_all_bca_lower": sbl,
                        "std_all_bca_upper": sbh})
    out.insert(0, "term", _terms(out))
    return BootstrapResult(table=out, replicates=reps, std_replicates=sreps, n_boot=n_boot,
                           n_failed=n_boot - n_ok, level=level, cluster=cluster)
