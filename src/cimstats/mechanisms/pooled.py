"""Mechanism tests on multiply imputed data: impute the harmonised patients once, test on every completed set, pool.

:func:`test_mechanisms_imputed` imputes the patient table ``m`` times
(:func:`cimstats.impute`), runs :func:`cimstats.test_mechanisms` on every
completed set (scale scores are computed from the imputed items), and pools
each hypothesis' estimand with Rubin's rules (Barnard-Rubin df; for bootstrap
templates the percentile interval of the stacked resamples of every
imputation). The mechanism table gains the columns ``fmi`` (fraction of
missing information) and ``m``; verdicts follow the same rules as without
imputation, applied to the pooled numbers.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd

from cimstats.errors import CimstatsError, PlanError
from cimstats.models.impute import kernels as _k
from cimstats.models.impute.imputations import MAX_M, METHODS, MAX_TEXT_LEVELS, impute
from cimstats.models.impute.pooled import pool
from cimstats.models._result import register_pooler

from .adjust import p_adjust
from .evaluate import _ID, _check_tables, _tables, _ties, test_mechanisms
from .results import TABLE_COLUMNS, MechanismResult
from .rules import apply_rules
from .twolevel_template import PoolingView

__all__ = ["test_mechanisms_imputed", "imputation_problems", "impute_patients", "POOLED_COLUMNS"]

#: the mechanism table's columns when the tests are pooled over imputations
POOLED_COLUMNS = TABLE_COLUMNS + ["fmi", "m"]
#: keys of the ``imputation`` section of an analysis plan
IMPUTATION_KEYS = ("m", "method", "seed", "iterations", "carry", "donors")
_ALL_METHODS = sorted({m for ms in METHODS.values() for m in ms} | {""})
_BOOTSTRAP = ("mediation", "moderated_mediation")


def imputation_problems(spec) -> list[str]:
    """Problems of an ``imputation`` specification (empty when it is sound), one sentence each."""
    if not isinstance(spec, Mapping):
        return [f"imputation is {spec!r}; expected a mapping such as {{m: 20, seed: 1, iterations: 10, "
                "method: {income_equiv: pmm}}."]
    out = []
    for k in spec:
        if k not in IMPUTATION_KEYS:
            out.append(f"imputation has an unknown key {k!r}; use {', '.join(IMPUTATION_KEYS)}.")

    def whole(name, lo, hi, default):
        v = spec.get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            out.append(f"imputation.{name} is {v!r}; expected a whole number from {lo} to {hi:,}.")

    whole("m", 2, MAX_M, 20)
    whole("iterations", 1, 1000, 10)
    whole("seed", 0, 2**32 - 1, 1)
    whole("donors", 1, 100, 5)
    method = spec.get("method") or {}
    if not isinstance(method, Mapping):
        out.append(f"imputation.method is {method!r}; expected a mapping variable -> method such as "
                   "{income_equiv: pmm}.")
    else:
        for var, mth in method.items():
            if not isinstance(var, str) or mth not in _ALL_METHODS:
                out.append(f"imputation.method gives {mth!r} for {var!r}; expected one of "
                           f"{', '.join(repr(x) for x in _ALL_METHODS)} ('' carries the variable unimputed).")
    carry = spec.get("carry") or []
    if not isinstance(carry, (list, tuple)) or not all(isinstance(c, str) for c in carry):
        out.append(f"imputation.carry is {carry!r}; expected a list of column names carried unchanged.")
    return out


def _normalised(spec) -> dict:
    problems = imputation_problems(spec)
    if problems:
        raise PlanError(f"The imputation settings have {len(problems)} problem(s) (first: {problems[0]}); fix them "
                        "and run again.")
    return {"m": int(spec.get("m", 20)), "iterations": int(spec.get("iterations", 10)),
            "seed": int(spec.get("seed", 1)), "donors": int(spec.get("donors", 5)),
            "method": dict(spec.get("method") or {}), "carry": list(spec.get("carry") or [])}


def impute_patients(patients: pd.DataFrame, imputation: Mapping):
    """Impute the harmonised patient table once; the completed tables keep every column in its place.

    ``patient_id``, the columns listed in ``carry`` and text columns with more
    than 20 different values (identifiers such as practice ids) are carried
    unchanged and are not used as predictors; every other column is imputed
    where missing (methods as :func:`cimstats.impute`, or as ``method`` names)
    and predicts the others.

    Returns
    -------
    (Imputations, list of DataFrame)
        The imputations of the imputed columns and the m completed patient tables.
    """
    spec = _normalised(imputation)
    unknown = [c for c in list(spec["method"]) + spec["carry"] if c not in patients.columns]
    if unknown:
        raise PlanError(f"imputation names {', '.join(map(repr, unknown))}, which the patient table lacks; "
                        f"name columns of the harmonised patient table.")
    carry = [_ID] if _ID in patients.columns else []
    for c in patients.columns:
        s = patients[c]
        if c in carry or c in spec["carry"]:
            continue
        text = not pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype) \
            and not pd.api.types.is_bool_dtype(s)
        if pd.api.types.is_datetime64_any_dtype(s) or (text and s.dropna().nunique() > MAX_TEXT_LEVELS):
            carry.append(c)
    carry = list(dict.fromkeys(carry + spec["carry"]))
    frame = patients.drop(columns=carry)
    imp = impute(frame, m=spec["m"], method={k: v for k, v in spec["method"].items() if k in frame.columns},
                 seed=spec["seed"], iterations=spec["iterations"], donors=spec["donors"])
    tables = []
    for d in imp.datasets:
        full = patients.copy()
        for c in frame.columns:
            full[c] = d[c].to_numpy() if not isinstance(d[c].dtype, pd.CategoricalDtype) else d[c].values
        tables.append(full)
    return imp, tables


def test_mechanisms_imputed(data, plan=None, *, imputation: Mapping, hypotheses=None, adjust: str | None = "holm",
                            rules=None, seed: int | None = 20240601, n_boot: int = 2000, level: float | None = None,
                            client=None) -> MechanismResult:
    """Test the mechanisms on every completed data set of a multiple imputation and pool per hypothesis.

    Parameters
    ----------
    data, plan, hypotheses, adjust, rules, n_boot, level, client
        As for :func:`cimstats.test_mechanisms`.
    imputation : mapping
        ``m`` (completed data sets, default 20), ``seed`` (of the imputation,
        default 1), ``iterations`` (sweeps of the chained equations, default
        10), ``method`` (variable -> pmm, norm, logreg, polyreg, polr or ''),
        ``carry`` (columns carried unchanged and not used as predictors),
        ``donors`` (for pmm, default 5); see :func:`impute_patients`.
    seed : int, optional
        Seed of the bootstrap; completed set k uses ``seed + k - 1``, so the
        stacked resamples differ between imputations.

    Returns
    -------
    MechanismResult
        Its ``table`` has the usual columns plus ``fmi`` and ``m``; estimates
        are Rubin's means, standard errors from the total variance, df by
        Barnard and Rubin, p-values from the pooled t; mediation estimands have
        percentile intervals of the m x B stacked resamples. An invariance
        check's estimate is the mean delta CFI and its p-value the D2-pooled
        chi-square difference test; its verdict stands when every imputation
        gives the same one. ``fits`` holds the pooled results
        (:class:`~cimstats.models.impute.PooledResult`; for invariance models
        the fit to the first completed set).

    Notes
    -----
    Constructs are computed from every completed set (scale scores from the
    imputed items), so nothing precomputed is passed in.
    """
    spec = _normalised(imputation)
    patients, alters = _tables(data)
    ties = _ties(data)
    _check_tables(patients, alters)
    imp, tables = impute_patients(patients, spec)
    runs = []
    for k, table in enumerate(tables):
        runs.append(test_mechanisms({"patients": table, "alters": alters, "alter_ties": ties}, plan,
                                    hypotheses=hypotheses, adjust=adjust, rules=rules, seed=None if seed is None else int(seed) + k,
                                    n_boot=n_boot, level=level, client=client))
    return pool_mechanism_results(runs, imputation=spec, n_imputed=int(imp.where.to_numpy().sum()))


def pool_mechanism_results(runs, *, imputation: Mapping | None = None, n_imputed: int | None = None
                           ) -> MechanismResult:
    """Pool mechanism results of the same plan fitted to m completed data sets (see :func:`test_mechanisms_imputed`)."""
    runs = list(runs)
    m = len(runs)
    if m < 2:
        raise PlanError(f"Pooling needs the mechanism tests of at least 2 completed data sets; got {m}.")
    first = runs[0]
    level = float(first.level)
    rule_fn, adjust = first.rules, first.adjust
    models_rows, fits, intervals = [], {}, {}
    pooled_models: dict[str, Any] = {}
    for r in first.models.itertuples(index=False):
        mid = r.model_id
        statuses = [run.models.set_index("model_id").loc[mid] for run in runs]
        row = dict(first.models.set_index("model_id").loc[mid])
        row["model_id"] = mid
        bad = [(k + 1, s) for k, s in enumerate(statuses) if s["status"] != "fitted"]
        if bad:
            k, s = bad[0]
            row.update(status="not testable" if s["status"] == "not testable" else s["status"],
                       reason=f"not fitted in {len(bad)} of {m} imputations (imputation {k}: {s['reason']})")
            fits[mid] = None
        elif r.template == "invariance":
            fits[mid] = first.fits.get(mid)
            row["diagnostics"] = "; ".join(x for x in (str(row.get("diagnostics") or ""),
                                                       "the fit shown is that to imputation 1") if x)
        else:
            try:
                fits_m = [run.fits[mid] for run in runs]
                if r.template == "twolevel_sem":  # one name per free parameter, the estimand under its label
                    fits_m = [PoolingView(f) for f in fits_m]
                pooled = pool(fits_m, description=str(row.get("model") or mid))
            except CimstatsError as exc:
                row.update(status="failed", reason=f"the fits could not be pooled: {str(exc).rstrip('.')}")
                fits[mid] = None
            else:
                fits[mid] = pooled_models[mid] = pooled
                row["nobs"] = int(round(pooled.nobs)) if math.isfinite(pooled.nobs) else row.get("nobs")
                row["diagnostics"] = f"pooled over {m} imputations with Rubin's rules; max fmi " \
                                     f"{pooled.glance()['max_fmi'].iloc[0]:.3f}"
        models_rows.append(row)
    models = pd.DataFrame(models_rows)
    models = models[[c for c in first.models.columns if c in models.columns]]

    rows = []
    for i, base in first.table.iterrows():
        row = {c: base.get(c) for c in TABLE_COLUMNS}
        row.update(estimate=None, std_error=None, statistic=None, df=None, ci_lower=None, ci_upper=None,
                   p_value=None, p_adjusted=None, verdict=None, verdict_reason=None, fmi=None, m=m)
        mid = base["model_id"]
        mrow = models.set_index("model_id").loc[mid]
        row["diagnostics"] = mrow.get("diagnostics")
        if mrow["status"] != "fitted":
            row.update(verdict="not testable", verdict_reason=mrow["reason"])
        elif base["template"] == "invariance":
            _pool_invariance(row, [run.table.iloc[i] for run in runs], [run.fits.get(mid) for run in runs],
                             base["estimand"], m)
        else:
            pooled = pooled_models[mid]
            t = pooled.tidy(level=level)
            hit = t.loc[t["term"].astype(str) == str(base["estimand"])]
            if hit.empty:
                row.update(verdict="not testable", verdict_reason=f"the estimand '{base['estimand']}' is not a "
                                                                  "term of the pooled model")
            else:
                h = hit.iloc[0]
                row.update(estimate=float(h["estimate"]), std_error=float(h["std_error"]),
                           statistic=float(h["statistic"]), df=float(h["df"]), p_value=float(h["p_value"]),
                           ci_lower=float(h["ci_lower"]), ci_upper=float(h["ci_upper"]), fmi=float(h["fmi"]),
                           n=int(round(pooled.nobs)))
                if base["template"] in _BOOTSTRAP and "n_resamples" in t.columns:
                    draws = pooled.bootstrap_draws()[str(base["estimand"])].to_numpy(dtype=float)
                    intervals[str(base["hypothesis_id"])] = {"draws": draws, "ci": "percentile",
                                                             "acceleration": float("nan")}
        rows.append(row)

    is_test = [r["verdict"] is None for r in rows]
    p = [r["p_value"] if t and r["p_value"] is not None else np.nan for r, t in zip(rows, is_test)]
    padj = p_adjust(p, adjust) if adjust else np.asarray(p, dtype=float)
    for r, t, pa in zip(rows, is_test, padj):
        if t:
            r["p_adjusted"] = float(pa) if np.isfinite(pa) else None
            r["verdict"], r["verdict_reason"] = apply_rules(r, rule_fn, adjust)
            r["verdict_reason"] = f"{r['verdict_reason']} (pooled over {m} imputations)"

    table = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    for c in ("estimate", "std_error", "statistic", "df", "p_value", "p_adjusted", "ci_lower", "ci_upper", "fmi"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    for c in ("n", "n_dropped", "m"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype("Int64")
    text = first.rules_text
    if imputation:
        text += (f" Multiple imputation: m = {m} completed data sets (chained equations, {imputation['iterations']} "
                 f"sweeps, seed {imputation['seed']}"
                 + (f", {n_imputed} cells imputed" if n_imputed is not None else "")
                 + "); estimates pooled with Rubin's rules, bootstrap intervals from the stacked resamples.")
    return MechanismResult(table=table, models=models, fits=MappingProxyType(fits), plan=first.plan,
                           rules=rule_fn, adjust=adjust, seed=first.seed, n_boot=first.n_boot, waves=first.waves,
                           rules_text=text, plan_name=first.plan_name, level=level, intervals=intervals)


def _pool_invariance(row: dict, bases, fits, estimand: str, m: int) -> None:
    """An invariance check over imputations: mean delta CFI, D2-pooled chi-square difference, common verdict."""
    verdicts = [b["verdict"] for b in bases]
    deltas = [b["estimate"] for b in bases]
    chisq = [b["statistic"] for b in bases]
    df = None
    for f in fits:
        tab = getattr(f, "table", None)
        if isinstance(tab, pd.DataFrame) and "df_diff" in tab.columns and estimand in set(tab.get("model", [])):
            df = float(tab.set_index("model").loc[estimand, "df_diff"])
            break
    if all(pd.notna(d) for d in deltas):
        row["estimate"] = float(np.mean(deltas))
    if df and df > 0 and all(pd.notna(c) for c in chisq):
        r = _k.d2_test(np.asarray(chisq, dtype=float), int(round(df)))
        row.update(statistic=r["statistic"], p_value=r["p_value"], df=r["df2"],
                   fmi=r["riv"] / (1 + r["riv"]))
    if len(set(verdicts)) == 1:
        row.update(verdict=verdicts[0], verdict_reason=f"{bases[0]['verdict_reason']} (imputation 1; the same "
                                                       f"verdict in all {m} imputations)")
    else:
        held = sum(v == "supported" for v in verdicts)
        row.update(verdict="not testable", verdict_reason=f"{estimand} invariance holds in {held} of {m} "
                                                          "imputations; the imputations disagree")


test_mechanisms_imputed.__test__ = False


# mechanism tables fitted by Imputations.fit(cimstats.test_mechanisms, ...) pool hypothesis by hypothesis
register_pooler(MechanismResult.kind, lambda runs: pool_mechanism_results(runs))
