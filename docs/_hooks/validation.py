"""Agreement of cimstats with lme4, lmerTest, lavaan, semTools and psych.

Reads the committed reference files ``tests/reference/*.json`` (written by the
R scripts beside them), fits every case with cimstats, and returns one table
per reference tool: for each case and quantity, how many numbers were compared,
the largest absolute and relative difference, and the number of agreeing
significant digits. The documentation build turns the tables into the
validation page; ``python docs/_hooks/validation.py`` prints the page.
"""

from __future__ import annotations

import csv
import html
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"
DATA = REFERENCE / "data"

FLOOR = 1e-6
COLUMNS = ["case", "quantity", "n", "max_abs_diff", "max_rel_diff", "digits"]


def _read_r_csv(path: Path) -> pd.DataFrame:
    """Read a CSV that R's write.csv wrote: quoted columns (factors, text) stay text."""
    frame = pd.read_csv(path)
    text: set[str] = set()
    with open(path, newline="") as fh:
        header = next(csv.reader(fh))
        if not fh.readline() or '"' not in (fh.seek(0) or fh.read(4096)):
            return frame          # nothing quoted: pandas' own types
        fh.seek(0)
        next(fh)
        reader = csv.reader(fh, quoting=csv.QUOTE_NONNUMERIC)
        for i, row in enumerate(reader):
            text.update(h for h, v in zip(header, row) if isinstance(v, str) and v != "")
            if i >= 200:
                break
    for name in text:
        if frame[name].dtype.kind in "biuf":
            frame[name] = frame[name].astype(str)
    return frame


def _code(text: str) -> str:
    """Inline code safe inside a Markdown table cell (a formula's | would end the cell)."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _row(case: str, quantity: str, ours, theirs) -> dict:
    """One comparison row: largest absolute and relative difference over paired values."""
    a = np.atleast_1d(np.asarray(ours, dtype=float))
    b = np.atleast_1d(np.asarray(theirs, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"{case}/{quantity}: cimstats gave {a.size} values, the reference {b.size}")
    keep = ~(np.isnan(a) & np.isnan(b))
    a, b = a[keep], b[keep]
    diff = np.abs(a - b)
    # relative difference; values below FLOOR in magnitude are compared absolutely
    rel = diff / np.where(np.abs(b) >= FLOOR, np.abs(b), 1.0)
    max_abs = float(np.nanmax(diff)) if diff.size else float("nan")
    max_rel = float(np.nanmax(rel)) if diff.size else float("nan")
    worst = max_rel
    if not math.isfinite(worst):
        digits = float("nan")
    elif worst == 0:
        digits = 15
    else:
        digits = int(min(15, max(0, math.floor(-math.log10(worst)))))
    return {"case": case, "quantity": quantity, "n": int(a.size), "max_abs_diff": max_abs,
            "max_rel_diff": max_rel, "digits": digits}


# ---------------------------------------------------------------------------- lme4 / lmerTest
def _as_list(x):
    return x if isinstance(x, list) else [x]


def lmm_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "lmm.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, c in sorted(ref["cases"].items()):
            m = cimstats.lmm(c["formula"], _read_r_csv(DATA / c["data"]), reml=c["reml"])
            td, fx = m.tidy(), c["fixef"]
            label = f"{name}: {_code(c['formula'])}" + ("" if c["reml"] else " (ML)")
            rows.append(_row(label, "fixed effects", td["estimate"], _as_list(fx["estimate"])))
            rows.append(_row(label, "standard errors", td["std_error"], _as_list(fx["std_error"])))
            rows.append(_row(label, "Satterthwaite df", td["df"], _as_list(fx["df"])))
            rows.append(_row(label, "p-values", td["p_value"], _as_list(fx["p_value"])))
            vc = m.varcorr()
            rows.append(_row(label, "variance components", vc["vcov"], _as_list(c["varcorr"]["vcov"])))
            crit = c["reml_criterion"] if c["reml"] else c["deviance"]
            rows.append(_row(label, "REML criterion" if c["reml"] else "deviance", m.criterion, crit))
            rows.append(_row(label, "log-likelihood", m.loglik, c["loglik"]))
        for name, a in sorted(ref["anova"].items()):
            df = _read_r_csv(DATA / a["data"]).dropna()
            out = cimstats.anova(cimstats.lmm(a["formula1"], df), cimstats.lmm(a["formula0"], df))
            rows.append(_row(f"{name}: likelihood-ratio test", "chi-square", out["chisq"].iloc[1], a["chisq"]))
            rows.append(_row(f"{name}: likelihood-ratio test", "p-value", out["p_value"].iloc[1], a["p_value"]))
        for name, r in sorted(ref["term_tests"].items()):
            m = cimstats.lmm(r["formula"], _read_r_csv(DATA / r["data"]).dropna())
            row = m.term_tests().set_index("term").loc[r["term"]]
            label = f"{name}: F test of {_code(r['term'])}"
            rows.append(_row(label, "F statistic", row["statistic"], r["statistic"]))
            rows.append(_row(label, "denominator df", row["df"], r["dendf"]))
            rows.append(_row(label, "p-value", row["p_value"], r["p_value"]))
        for name, r in sorted(ref["profile_ci"].items()):
            m = cimstats.lmm(r["formula"], _read_r_csv(DATA / r["data"]), reml=r["reml"])
            ci = m.varcomp_ci(method="profile")
            label = f"{name}: profile intervals"
            rows.append(_row(label, "lower limits", ci["ci_lower"], _as_list(r["ci_lower"])))
            rows.append(_row(label, "upper limits", ci["ci_upper"], _as_list(r["ci_upper"])))
    return pd.DataFrame(rows, columns=COLUMNS), ref["versions"]


# ---------------------------------------------------------------------------- lme4::glmer
def glmm_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "glmm.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, c in sorted(ref["cases"].items()):
            m = cimstats.glmm(c["formula"], _read_r_csv(DATA / c["dataset"]), family=c["family"],
                              link=c["link"], nagq=c["nagq"])
            terms = list(c["fixef"])
            label = f"{name}: {_code(c['formula'])}, {c['family']} ({c['link']}), nAGQ = {c['nagq']}"
            rows.append(_row(label, "fixed effects", m.params.loc[terms], [c["fixef"][t] for t in terms]))
            rows.append(_row(label, "standard errors", m.std_errors.loc[terms], [c["se"][t] for t in terms]))
            rows.append(_row(label, "random-effect SD (theta)", m.theta, _as_list(c["theta"])))
            if c["nagq"] == 1:
                # glmer drops the normalising constants from the likelihood when nAGQ > 1
                rows.append(_row(label, "log-likelihood", m.loglik, c["loglik"]))
    return pd.DataFrame(rows, columns=COLUMNS), ref["versions"]


# ---------------------------------------------------------------------------- lavaan / semTools
SEM_FIT = ["chisq", "df", "cfi", "tli", "rmsea", "srmr", "aic", "bic"]


def _sem_kwargs(call: dict) -> dict:
    kw = dict(call)
    for key in ("group_equal", "group_partial"):
        if key in kw:
            kw[key] = tuple(kw[key]) if isinstance(kw[key], list) else (kw[key],)
    return kw


def _sem_merge(partable: list, tidy: pd.DataFrame) -> pd.DataFrame:
    ref = pd.DataFrame(partable)
    ref = ref[ref["op"].isin(["=~", "~", "~~", "~1", ":="])].copy()
    if "group" not in ref:
        ref["group"] = 1
    ref["rhs"] = ref["rhs"].fillna("")
    ref.loc[ref["op"] == ":=", "group"] = 0
    ref.loc[ref["op"] == ":=", "rhs"] = None
    mine = tidy.copy()
    mine.loc[mine["op"] == ":=", "rhs"] = None
    return ref.merge(mine, on=["lhs", "op", "rhs", "group"], how="left", validate="one_to_one")


def _invariance_rows(label: str, res, ref: dict) -> list[dict]:
    """Chi-square per step, difference tests and CFI/TLI/RMSEA/SRMR of an invariance sequence against lavaan."""
    lrt = pd.DataFrame(ref["lrt"])
    rows = [_row(label, "chi-square per step", res.table["chisq"], lrt["Chisq"])]
    diff = lrt["Chisq.diff"].to_numpy(dtype=float)
    ok = ~np.isnan(diff)
    rows.append(_row(label, "chi-square difference tests", res.table["chisq_diff"].to_numpy(dtype=float)[ok],
                     diff[ok]))
    for step, f in res.fits.items():
        fm = f.fit_measures()
        r = ref["fits"][step]
        rows.append(_row(label, f"{step}: CFI, TLI, RMSEA, SRMR", [fm[k] for k in ("cfi", "tli", "rmsea", "srmr")],
                         [r[k] for k in ("cfi", "tli", "rmsea", "srmr")]))
    return rows


def sem_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "sem.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, c in sorted(ref["cases"].items()):
            data = _read_r_csv(DATA / f"sem_{c['data']}.csv")
            fit = cimstats.sem(c["model"], data, **_sem_kwargs(c["call"]))
            opts = ", ".join(f"{k}={v}" for k, v in c["call"].items())
            label = f"{name} ({opts})"
            m = _sem_merge(c["partable"], fit.tidy())
            rows.append(_row(label, "estimates", m["estimate"], m["est"]))
            rows.append(_row(label, "standard errors", m["std_error"], m["se"].fillna(0.0)))
            if "std.all" in m:
                rows.append(_row(label, "standardised (std.all)", m["std_all"], m["std.all"]))
            fm = fit.fit_measures()
            keys = [k for k in SEM_FIT if c["fit"].get(k) is not None]
            rows.append(_row(label, "fit measures (" + ", ".join(keys) + ")",
                             [fm[k] for k in keys], [c["fit"][k] for k in keys]))
        model = ref["cases"]["hs_ml"]["model"]
        for est, inv in sorted(ref["invariance"].items()):
            res = cimstats.invariance(model, _read_r_csv(DATA / "sem_holzinger.csv"), group="school",
                                      estimator=est)
            label = f"measurement invariance across schools ({est}): configural, metric, scalar, strict"
            rows += _invariance_rows(label, res, inv)
    return pd.DataFrame(rows, columns=COLUMNS), ref["versions"]


# ---------------------------------------------------------------------------- lavaan: two-level SEM
def _twolevel_fit(m: dict):
    import cimstats

    data = pd.read_csv(DATA / f"sem_twolevel_{m['data']}.csv.gz")
    return cimstats.sem(m["model"], data, cluster=m["cluster"], estimator=m.get("estimator", "ML"))


def _twolevel_merge(ref: list, frame: pd.DataFrame) -> pd.DataFrame:
    mine = frame.assign(rhs=[r.replace(" ", "") if o == ":=" else r for o, r in zip(frame["op"], frame["rhs"])])
    return pd.DataFrame(ref).merge(mine, on=["lhs", "op", "rhs", "level"], how="left", validate="one_to_one")


def _twolevel_rows(name: str, m: dict, fit) -> list[dict]:
    rows = []
    p = _twolevel_merge(m["params"], fit.tidy())
    rows.append(_row(name, "estimates", p["estimate"], p["est"]))
    rows.append(_row(name, "standard errors", p["std_error"], p["se"]))
    for kind in ("std.all", "std.lv"):
        key = kind.replace(".", "_")
        if key in m:
            s = _twolevel_merge(m[key], fit.standardized_solution(kind))
            rows.append(_row(name, f"standardised ({kind})", s["estimate"], s["est"]))
            rows.append(_row(name, f"standardised ({kind}) standard errors", s["std_error"], s["se"]))
    fm = fit.fit_measures()
    conv = m["fit_h1_converged"]
    keys = [k for k in ("chisq", "cfi", "tli", "rmsea") if k in conv]
    rows.append(_row(name, "fit measures (" + ", ".join(["logl", "aic", "bic"] + keys) + ")",
                     [fm[k] for k in ["logl", "aic", "bic"] + keys], [m["fit"][k] for k in ("logl", "aic", "bic")]
                     + [conv[k] for k in keys]))
    robust = [k for k in ("chisq.scaling.factor", "chisq.scaled", "baseline.chisq.scaling.factor",
                          "cfi.scaled", "tli.scaled", "rmsea.scaled", "cfi.robust", "tli.robust",
                          "rmsea.robust") if k in conv]
    if robust:
        rows.append(_row(name, "MLR: " + ", ".join(robust), [fm[k] for k in robust], [conv[k] for k in robust]))
    return rows


def twolevel_agreement() -> tuple[pd.DataFrame, dict]:
    ref = json.loads((REFERENCE / "sem_twolevel.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, m in sorted(ref["models"].items()):
            rows += _twolevel_rows(name, m, _twolevel_fit(m))
    return pd.DataFrame(rows, columns=COLUMNS), {"R": ref["R"], "lavaan": ref["lavaan"]}


def twolevel_extensions_agreement() -> tuple[pd.DataFrame, dict]:
    ref = json.loads((REFERENCE / "sem_twolevel_extensions.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, m in sorted(ref["models"].items()):
            rows += _twolevel_rows(f"{name} ({m['estimator']})", m, _twolevel_fit(m))
    return pd.DataFrame(rows, columns=COLUMNS), {"R": ref["R"], "lavaan": ref["lavaan"]}


# ---------------------------------------------------------------------------- psych
def psych_agreement() -> tuple[pd.DataFrame, dict]:
    from cimstats.measures import reliability

    ref = json.loads((REFERENCE / "measures.json").read_text())
    items = pd.read_csv(REFERENCE / "measures_items.csv")
    rows = []
    for name, c in sorted(ref["alpha"].items()):
        x = items[c["items"]]
        if name.startswith("complete"):
            x = x.dropna()
        keys = [c["keys"]] if isinstance(c["keys"], str) else list(c["keys"])
        res = reliability.alpha(x, reverse=keys or None)
        label = f"{name}: alpha of {', '.join(c['items'])}" + (f" ({', '.join(keys)} reversed)" if keys else "")
        totals = list(c["total"])
        rows.append(_row(label, "raw and standardised alpha, G6, mean r, S/N, ASE",
                         [res.total[k] for k in totals], [c["total"][k] for k in totals]))
        rows.append(_row(label, "Feldt interval", [res.ci["lower"], res.ci["upper"]],
                         [c["feldt"]["lower"], c["feldt"]["upper"]]))
        drop = [k for k in c["alpha_drop"]]
        rows.append(_row(label, "alpha if item deleted",
                         np.concatenate([res.alpha_drop[k].to_numpy(dtype=float) for k in drop]),
                         np.concatenate([np.asarray(c["alpha_drop"][k], dtype=float) for k in drop])))
    o = ref["omega_factanal"]
    res = reliability.omega(items[o["items"]].dropna())
    rows.append(_row("one-factor omega (stats::factanal loadings)", "omega total and observed",
                     [res.omega_total, res.omega_observed], [o["omega_total"], o["omega_observed"]]))
    versions = {"R": ref["r_version"], "psych": ref["psych_version"]}
    return pd.DataFrame(rows, columns=COLUMNS), versions


# ---------------------------------------------------------------------------- lavaan: mediation
MEDIATION_LABELS = {k: v for k, v in json.loads((REFERENCE / "mediation_labels.json").read_text()).items()
                    if k != "_about"}
MEDIATION_BOOT = 2000


def mediation_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "mediation.json").read_text())
    data = pd.read_csv(ROOT / ref["data"])
    rows = []
    for name, labels in MEDIATION_LABELS.items():
        c = ref["cases"][name]
        res = cimstats.mediation(data, n_boot=MEDIATION_BOOT, seed=2024, **c["args"])
        tidy = res.tidy()
        cond = tidy.loc[tidy["effect"] == "conditional_indirect"].reset_index(drop=True)
        t = tidy.set_index("term")
        params = pd.DataFrame(c["params"])
        params = params.loc[params["label"].isin(list(labels))]
        ours = [cond.loc[labels[p]] if isinstance(labels[p], int) else t.loc[labels[p]] for p in params["label"]]
        label = f"{name} mediation (" + ", ".join(f"{k}={v}" for k, v in c["args"].items()) + ")"
        rows.append(_row(label, "paths and effects (ML estimates)", [o["estimate"] for o in ours], params["est"]))
        rows.append(_row(label, f"bootstrap SEs ({MEDIATION_BOOT} vs {c['n_boot']} resamples)",
                         [o["std_error"] for o in ours], params["se"]))
    versions = {"R": ref["r_version"], "lavaan": ref["lavaan_version"]}
    return pd.DataFrame(rows, columns=COLUMNS), versions


# ---------------------------------------------------------------------------- PROCESS worked example
PROCESS_BOOT = 5000


def process_agreement() -> tuple[pd.DataFrame, dict]:
    """Hayes' protest example (PROCESS models 7 and 8): published descriptives, lm, a long R bootstrap."""
    import cimstats

    ref = json.loads((REFERENCE / "process_protest.json").read_text())
    data = pd.read_csv(ROOT / ref["data"])
    pub = ref["published"]
    ours, theirs = [], []
    for column, printed in pub["columns"].items():
        v = data[column]
        got = {"mean": v.mean(), "sd": v.std(ddof=1), "min": v.min(), "max": v.max()}
        ours += [got[k] for k in printed]
        theirs += list(printed.values())
    rows = [_row(f"protest data (n = {len(data)}) against the published PROC MEANS table",
                 f"means, SDs, minima, maxima (printed to {pub['printed_decimals']} decimals)", ours, theirs)]
    # PROCESS's printed output for model 8 with the three conditions (indicator coding, mcx=1)
    printed = pub["process_model8_plot"]
    df = data.assign(d1=(data["protest"] == 1).astype(float), d2=(data["protest"] == 2).astype(float))
    df["d2_sexism"] = df["d2"] * df["sexism"]
    res = cimstats.mediation(df, x="d1", m="respappr", y="liking", covariates=["d2", "d2_sexism"],
                             moderator="sexism", moderated_paths=("a", "direct"), moderator_values="percentiles",
                             n_boot=200, seed=2013)
    coef = {eq: grp.set_index("term")["estimate"] for eq, grp in res.paths().groupby("equation")}
    grid = pd.DataFrame({"protest": printed["protest"], "sexism": printed["sexism"]})
    grid["d1"] = (grid["protest"] == 1).astype(float)
    grid["d2"] = (grid["protest"] == 2).astype(float)
    grid["d1:sexism"] = grid["d1"] * grid["sexism"]
    grid["d2_sexism"] = grid["d2"] * grid["sexism"]
    grid["respappr"] = df["respappr"].mean()
    predicted = []
    for outcome in ("respappr", "liking"):
        b = coef[outcome]
        predicted += list(b["(Intercept)"] + sum(b[t] * grid[t] for t in b.index if t != "(Intercept)"))
    label = "PROCESS model 8, three conditions (mcx=1), against PROCESS's printed output"
    rows.append(_row(label, "moderator values (16th, 50th, 84th percentiles; 4 decimals)",
                     res.moderator_values, printed["moderator_values"]))
    rows.append(_row(label, "predicted M and Y at each condition and moderator value (4 decimals)",
                     predicted, printed["respappr"] + printed["liking"]))
    for case, c in ref["cases"].items():
        args = dict(c["args"])
        args["moderated_paths"] = tuple(args["moderated_paths"])
        label = f"PROCESS {case.replace('model', 'model ')} (moderated paths: {', '.join(args['moderated_paths'])})"
        coef, se = ([], []), ([], [])
        cond, direct, boot_se, boot_ci = ([], []), ([], []), ([], []), ([], [])
        for rule, probe in c["probes"].items():
            res = cimstats.mediation(data, moderator_values=rule, n_boot=PROCESS_BOOT, seed=2013, **args)
            tidy = res.tidy()
            if not coef[0]:
                paths = res.paths()
                for outcome, eq in c["equations"].items():
                    rows_eq = paths.loc[paths["equation"] == outcome].set_index("term").loc[eq["terms"]]
                    coef[0].extend(rows_eq["estimate"]); coef[1].extend(eq["estimate"])
                    se[0].extend(rows_eq["std_error"]); se[1].extend(eq["std_error"])
            ci = tidy.loc[tidy["effect"] == "conditional_indirect"]
            idx = tidy.loc[tidy["effect"] == "index_of_moderated_mediation"].iloc[0]
            cond[0].extend(list(res.moderator_values) + list(ci["estimate"]) + [idx["estimate"]])
            cond[1].extend(probe["moderator_values"] + probe["conditional_indirect"]
                           + [c["index_of_moderated_mediation"]])
            if "conditional_direct" in probe:
                cd = tidy.loc[tidy["effect"] == "conditional_direct"]
                p = probe["conditional_direct"]
                direct[0].extend(list(cd["estimate"]) + list(cd["delta_se"]) + list(cd["statistic"]))
                direct[1].extend(p["estimate"] + p["std_error"] + p["t"])
            b = [probe["bootstrap"]["index"]] + probe["bootstrap"]["conditional_indirect"]
            mine = [idx] + [r for _, r in ci.iterrows()]
            boot_se[0].extend(r["std_error"] for r in mine); boot_se[1].extend(x["sd"] for x in b)
            boot_ci[0].extend(v for r in mine for v in (r["ci_lower"], r["ci_upper"]))
            boot_ci[1].extend(v for x in b for v in (x["lower"], x["upper"]))
        rows.append(_row(label, "OLS estimates of both equations (stats::lm)", *coef))
        rows.append(_row(label, "OLS standard errors", *se))
        rows.append(_row(label, "moderator values, conditional indirect effects, index (both rules)", *cond))
        if direct[0]:
            rows.append(_row(label, "conditional direct effects, OLS SEs and t (both rules)", *direct))
        rows.append(_row(label, f"bootstrap SEs ({PROCESS_BOOT} vs {ref['n_boot']} resamples)", *boot_se))
        rows.append(_row(label, f"bootstrap percentile limits ({PROCESS_BOOT} vs {ref['n_boot']} resamples)",
                         *boot_ci))
    versions = {"R": ref["r_version"], "psych": ref["psych_version"]}
    return pd.DataFrame(rows, columns=COLUMNS), versions


LONG_DATA = {
    "long_ce_demo": dict(file="sem_long_ce_demo.csv", items=[f"ce_{i}" for i in range(1, 9)], id="patient_id",
                         wave="wave"),
    "long_planted": dict(file="sem_long_planted.csv", items=[f"y{i}" for i in range(1, 6)], id="person",
                         wave="time"),
}


def longitudinal_agreement() -> tuple[pd.DataFrame, dict]:
    """Longitudinal invariance against lavaan (the page shows the ML cases; the tests also cover MLR)."""
    import cimstats

    ref = json.loads((REFERENCE / "sem_longitudinal.json").read_text())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, c in sorted(ref["cases"].items()):
            if c["estimator"] != "ML":
                continue
            d = LONG_DATA[c["data"]]
            res = cimstats.longitudinal_invariance(
                _read_r_csv(DATA / d["file"]), d["items"], id=d["id"], wave=d["wave"], missing=c["missing"],
                estimator=c["estimator"], partial=c.get("partial", ()))
            label = f"{name} ({c['missing']}, n = {c['nobs']}): configural, metric, scalar, strict"
            rows += _invariance_rows(label, res, c)
            for step, f in res.fits.items():
                m = _sem_merge(c["partables"][step], f.tidy())
                rows.append(_row(label, f"{step}: estimates and standard errors",
                                 np.r_[m["estimate"], m["std_error"]], np.r_[m["est"], m["se"].fillna(0.0)]))
    return pd.DataFrame(rows, columns=COLUMNS), ref["versions"]


# ---------------------------------------------------------------------------- public corpus
CORPUS_QUANTITIES = ["fixed effects", "standard errors", "variance components", "log-likelihood",
                     "Satterthwaite df", "estimates", "fit measures"]


def _digits(ours, theirs, floor=FLOOR) -> str:
    """Agreeing significant digits of the worst value (values below ``floor`` in magnitude compared absolutely;
    ``floor`` may be one number or one per value, such as each fixed effect's standard error)."""
    a = np.atleast_1d(np.asarray(ours, dtype=float))
    b = np.atleast_1d(np.asarray(theirs, dtype=float))
    keep = ~(np.isnan(a) & np.isnan(b))
    a, b = a[keep], b[keep]
    if not a.size:
        return "-"
    rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
    worst = float(np.max(rel)) if np.isfinite(rel).all() else float("inf")
    if not math.isfinite(worst):
        return "0"
    return "15" if worst == 0 else str(int(min(15, max(0, math.floor(-math.log10(worst))))))


def corpus_markdown() -> str:
    """One row per corpus case: the criterion gap and the agreeing digits of each quantity."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_corpus as corpus

    ref = corpus.REF
    lines = ["## Public corpus: mixed models and SEM on data sets shipped with R packages", "",
             f"{len(ref['cases'])} models on {len(ref['datasets'])} public data sets (lme4, mlmRev, nlme, MASS, "
             "HSAUR3, mice, lavaan, semTools, psych, datasets), fitted in R by `tests/reference/corpus.R` "
             "(lmer with lmerTest's Satterthwaite df and glmer, each the better of bobyqa and nloptwrap at "
             "tight tolerances, glmer's inner loop converged with `tolPwrss = 1e-13`; lavaan with its "
             "FIML saturated model converged tightly) and compared by `tests/test_corpus.py`. "
             "*Criterion gap* is cimstats' criterion minus R's at each program's optimum (REML criterion "
             "or deviance for linear models, -2 log-likelihood with the normalising constants for "
             "GLMMs, minus the log-likelihood for SEM; for Laplace fits with a canonical link R's value is "
             "the Laplace approximation evaluated afresh at glmer's estimates with the conditional modes "
             "converged to 1e-13, which can lie a few 1e-6 below the deviance glmer reports): zero or negative means cimstats' optimum is at "
             "least as good. The other columns give the agreeing significant digits of the worst value "
             "(fixed effects relative to the larger of the estimate and its standard error, as the test "
             "compares them; variance components are standard deviations and correlations as `varcorr()` "
             "reports them; "
             "SEM fit measures are chi-square, df, CFI, TLI, RMSEA, SRMR, AIC, BIC and for MLR the "
             "scaled and robust versions). The data sets are under `tests/reference/data/corpus/`.", "",
             "Reference: " + ", ".join(v if k == "R" else f"{k} {v}" for k, v in ref["versions"].items()) + ".", "",
             "| case | data | model | criterion gap | fixed effects / estimates | standard errors "
             "| variance components / fit measures | log-likelihood | Satterthwaite df |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in sorted(ref["cases"]):
        c = ref["cases"][name]
        if c["kind"] == "lmm":
            model = _code(c["formula"]) + ("" if c["reml"] else " (ML)")
        elif c["kind"] == "glmm":
            model = _code(c["formula"]) + f", {c['family']} ({c['link']}), nAGQ = {c['nagq']}"
            if c.get("weights"):
                model += f", weights = {c['weights']}"
        else:
            call = c["call"] if isinstance(c["call"], dict) else {}   # R's empty list() is written as []
            opts = ", ".join(f"{k} = {v}" for k, v in call.items())
            model = _code(c["model"].replace("\n", "; ")) + (f" ({opts})" if opts else "")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                comps = {q: (o, t, FLOOR if f is None else f)
                         for q, o, t, f in corpus.comparisons(name, corpus.fit_case(name))}
            except Exception as exc:   # a case cimstats cannot fit or label is shown as such
                lines.append(f"| {name} | {html.escape(ref['datasets'][c['data']]['source'])} | {model} | "
                             f"not compared: {html.escape(str(exc)[:200]).replace('|', '&#124;')} | - | - | - | - | - |")
                continue
        gap = float(comps["criterion"][0][0] - comps["criterion"][1][0])
        cell = lambda q: _digits(*comps[q]) if q in comps else "-"
        first = "fixed effects" if "fixed effects" in comps else "estimates"
        third = cell("variance components") if c["kind"] != "sem" else cell("fit measures")
        source = ref["datasets"][c["data"]]["source"]
        lines.append(f"| {name} | {html.escape(source)} | {model} | {gap:.1e} | {cell(first)} | "
                     f"{cell('standard errors')} | {third} | {cell('log-likelihood')} | {cell('Satterthwaite df')} |")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the page
# ---------------------------------------------------------------------------- survey
def survey_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "survey.json").read_text())
    data = {}

    def frame(name):
        if name not in data:
            d = pd.read_csv(DATA / "survey" / f"{name}.csv")
            if name == "apistrat":
                d["fraction"] = d["stype"].map({"E": 100 / 4421, "H": 50 / 755, "M": 50 / 1018})
            data[name] = d
        return data[name]

    rows = []
    for name, c in ref["designs"].items():
        a = c["design"]
        design = cimstats.SurveyDesign(weights=a["weights"], strata=a["strata"], cluster=a["cluster"],
                                       fpc=a["fpc"], nest=a["nest"], lonely_psu=c["lonely_psu"])
        d = frame(a["data"])
        label = f"{name} ({a['data']}; lonely PSUs: {c['lonely_psu']})"
        if a["data"] == "nhanes":
            t = cimstats.describe(d, "HI_CHOL", design=design, statistics="mean").table
        else:
            t = cimstats.describe(d, ["api00", "ell", "meals"], design=design, statistics="mean").table
            q = c["quantile_api00"]
            qt = cimstats.describe(d, "api00", design=design, statistics="quantile", quantiles=q["probs"]).table
            rows.append(_row(label, "svyquantile (Woodruff) estimates", qt["estimate"], q["estimate"]))
            rows.append(_row(label, "svyquantile standard errors", qt["std_error"], q["se"]))
        rows.append(_row(label, "svymean estimates", t["estimate"], np.ravel(c["mean"]["estimate"])))
        rows.append(_row(label, "svymean standard errors", t["std_error"], np.ravel(c["mean"]["se"])))
        for g in c["glm"]:
            f = g["formula"].replace("factor(race)", "C(race)")
            fit = cimstats.glm(f, d, family=g["family"], design=design, weights=g["weights"])
            glabel = f"{label}: svyglm {_code(g['formula'])}, {g['family']}"
            rows.append(_row(glabel, "coefficients", fit.params, g["estimate"]))
            rows.append(_row(glabel, "standard errors", fit.std_errors, g["se"]))
    for g in ref["glm"]:
        f = g["formula"]
        d = frame(g["data"])
        fit = cimstats.glm(f.replace("factor(race)", "C(race)"), d, family=g["family"], weights=g["weights"])
        glabel = f"glm {_code(f)}, {g['family']}" + (f", weights = {g['weights']}" if g["weights"] else "")
        rows.append(_row(glabel, "coefficients", fit.params, g["estimate"]))
        rows.append(_row(glabel, "standard errors", fit.std_errors, g["se"]))
    return pd.DataFrame(rows, columns=COLUMNS), ref["versions"]


# ---------------------------------------------------------------------------- lavaan: sampling weights
SEM_WEIGHT_FIT = ["chisq", "chisq.scaled", "chisq.scaling.factor", "cfi", "tli", "cfi.robust", "tli.robust",
                  "rmsea", "rmsea.robust", "srmr", "logl", "aic", "bic"]


def sem_weights_agreement() -> tuple[pd.DataFrame, dict]:
    import cimstats

    ref = json.loads((REFERENCE / "sem_weights.json").read_text())
    files = {"holzinger": "sem_holzinger.csv", "poldem": "sem_politicaldemocracy.csv"}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, c in sorted(ref["models"].items()):
            data = pd.read_csv(DATA / files[c["data"]])
            data["w"] = ref["weights"][c["data"]]
            if c["data"] in ref["clusters"]:
                data["unit"] = ref["clusters"][c["data"]]
            args = c["args"] if isinstance(c["args"], dict) else {}
            fit = cimstats.sem(c["model"], data, sampling_weights="w", **args)
            label = f"{name} (" + ", ".join(["sampling_weights=w"] + [f"{k}={v}" for k, v in args.items()]) + ")"
            est = pd.DataFrame(c["estimates"])
            m = fit.tidy().merge(est, on=["lhs", "op", "rhs", "group"], how="inner", validate="1:1")
            rows.append(_row(label, "estimates", m["estimate"], m["est"]))
            rows.append(_row(label, "robust standard errors", m["std_error"].fillna(0.0), m["se"]))
            fm = fit.fit_measures()
            keys = [k for k in SEM_WEIGHT_FIT if c["fit"].get(k) is not None]
            rows.append(_row(label, "fit measures (" + ", ".join(keys) + ")",
                             [fm[k] for k in keys], [c["fit"][k] for k in keys]))
    v = ref["versions"]
    return pd.DataFrame(rows, columns=COLUMNS), {"R": v["R"].split(" (")[0], "lavaan": v["lavaan"]}


# ---------------------------------------------------------------------------- multilevel: agreement
def agreement_agreement() -> tuple[pd.DataFrame, dict]:
    from cimstats.errors import MissingDataWarning
    from cimstats.measures.agreement import icc, rwg

    ref = json.loads((REFERENCE / "agreement.json").read_text())
    data = pd.read_csv(DATA / "agreement_efficacy.csv")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        for case, column in (("icc_score", "score"), ("icc_ce1", "ce1")):
            r, adj = icc(data, column, "hood"), icc(data, column, "hood", group_size="adjusted")
            c = ref[case]
            rows.append(_row(f"{column} by neighbourhood", "ICC(1), ICC(2), MSB, MSW (mean group size)",
                             [r.icc1, r.icc2, r.msb, r.msw], [c["icc1"], c["icc2"], c["msb"], c["msw"]]))
            rows.append(_row(f"{column} by neighbourhood", "ICC(1) with the adjusted group size",
                             [adj.icc1], [c["icc1_adjusted"]]))
        for case, items, kw, key in (("rwg_ce1_uniform5", "ce1", {"options": 5}, "rwg"),
                                     ("rwg_ce1_skewed", "ce1", {"null_variance": 1.34}, "rwg"),
                                     ("rwgj_uniform5", ["ce1", "ce2", "ce3", "ce4"], {"options": 5}, "rwg_j"),
                                     ("rwgj_three_items", ["ce1", "ce2", "ce3"], {"options": 5}, "rwg_j")):
            res = rwg(data, items, "hood", **kw)
            got = res.groups.set_index(res.groups["group"].astype(str)).loc[ref[case]["group"], "rwg"]
            want = [np.nan if v is None else v for v in ref[case][key]]
            null = ", ".join(f"{k}={v}" for k, v in kw.items())
            rows.append(_row(f"{key.replace('_', '(')}{')' if '_' in key else ''} of "
                             f"{items if isinstance(items, str) else ', '.join(items)} ({null})",
                             "per neighbourhood", got.to_numpy(dtype=float), want))
    return pd.DataFrame(rows, columns=COLUMNS), {"R": ref["R"], "multilevel": ref["multilevel"]}


SECTIONS = [
    ("Linear mixed models: lme4 and lmerTest", "lmm", lmm_agreement,
     "`cimstats.lmm` and `cimstats.anova` against `lme4::lmer`, `lmerTest` (Satterthwaite df, "
     "`contest` F tests), `anova()` and `confint(method = \"profile\")`."),
    ("Generalised linear mixed models: lme4::glmer", "glmm", glmm_agreement,
     "`cimstats.glmm` against `lme4::glmer` with the Laplace approximation (nAGQ = 1) and adaptive "
     "Gauss-Hermite quadrature (nAGQ = 10). With nAGQ > 1 glmer reports its log-likelihood "
     "relative to the saturated model, so the log-likelihood is compared for nAGQ = 1 only. "
     "The references run glmer with its inner PIRLS loop converged tightly "
     "(`glmerControl(tolPwrss = 1e-13)`). With glmer's default (1e-7) the loop stops one step "
     "before the conditional modes settle and the log-determinant uses the working weights of "
     "that earlier iterate; a default glmer run then differs from these estimates by up to about "
     "1e-3 (fixed effects) and 1 % (standard errors), with the lower Laplace log-likelihood "
     "(`tests/test_glmm_reference.py` reconstructs glmer's default value from its modes)."),
    ("Structural equation models and invariance: lavaan and semTools", "sem", sem_agreement,
     "`cimstats.sem` and `cimstats.invariance` against `lavaan::sem`/`cfa` (ML, MLR, FIML, "
     "clustered MLR, equality constraints, partial invariance) and `semTools::measEq.syntax` "
     "steps compared with `lavTestLRT`."),
    ("Two-level structural equation models: lavaan", "sem_twolevel", twolevel_agreement,
     "`cimstats.sem` with `level: 1` / `level: 2` blocks and `cluster=` against lavaan's two-level ML "
     "(Demo.twolevel with the documentation's model, two CFAs, a within-only and a between-only outcome; a "
     "simulated collective-efficacy data set). lavaan is run with a tight optimiser; its saturated-model EM "
     "stops early even with `em.h1.tol = 1e-12`, so the chi-square and the measures built on it are compared "
     "with lavaan's EM run to convergence (the R script keeps lavaan's default numbers too)."),
    ("Two-level structural equation models, extensions: lavaan", "sem_twolevel_extensions",
     twolevel_extensions_agreement,
     "Standardised solutions of each level (`standardizedSolution`, std.all and std.lv, delta-method "
     "standard errors), labels shared across levels, `==` constraints (between two labels and a linear "
     "one) and `:=` defined parameters, and robust ML (`estimator = \"MLR\"`: Huber-White standard errors "
     "from the cluster scores, Yuan-Bentler scaled chi-square, scaled and robust CFI/TLI/RMSEA). The "
     "saturated-model part of lavaan's scaling factor is recomputed by lavaan's own functions at the "
     "converged saturated model. lavaan's cluster scores leave out the within-level mean of the variables "
     "measured at both levels, which is not zero when within-only covariates with non-zero means are "
     "regressed on (demo_doc); there the exact scores cimstats uses differ from lavaan's, which shows in that "
     "model's MLR standard errors (about 5e-6) and scaling factor (about 1e-4). With the covariates centred "
     "the two agree to the optimiser's tolerance."),
    ("Longitudinal measurement invariance: lavaan", "sem_longitudinal", longitudinal_agreement,
     "`cimstats.longitudinal_invariance` against lavaan fits of the same models written out (one factor per "
     "wave, the first item's loading fixed at 1, each item's residuals correlated across waves; loadings, "
     "then intercepts, then residual variances held equal across waves), which `semTools::measEq.syntax` "
     "with `longFacNames` reproduces: the demo study's collective-efficacy items at baseline and follow-up "
     "(listwise and FIML) and a planted three-wave case whose third item's intercept shifts after wave 1."),
    ("Survey designs: survey and stats::glm", "survey", survey_agreement,
     "`cimstats.describe` and `cimstats.glm` with a `cimstats.SurveyDesign` against `survey::svymean`, "
     "`svyquantile` (its default rule and Woodruff intervals) and `svyglm` on the package's `api` data "
     "(stratified with fpc given as sizes and as fractions, one-stage and two-stage cluster samples, "
     "strata with a single PSU under each `survey.lonely.psu` rule, a simple random sample) and `nhanes` "
     "(strata and nested PSUs without fpc), and `cimstats.glm` without a design against `stats::glm`. "
     "The references fit with `glm.control(epsilon = 1e-13)`; R's glm reports the information matrix "
     "of its last-but-one iterate, so standard errors agree to about 1e-7 relative."),
    ("Structural equation models with sampling weights: lavaan", "sem_weights", sem_weights_agreement,
     "`cimstats.sem(..., sampling_weights=)` against `lavaan::sem`/`cfa` with `sampling.weights` (weights "
     "normalised to N, robust Huber-White standard errors, Yuan-Bentler scaled test) on the Holzinger-Swineford "
     "and Political Democracy data with planted weights: one group, several groups, with clusters and with "
     "means."),
    ("Agreement and reliability of group means: multilevel", "agreement", agreement_agreement,
     "`cimstats.measures.agreement.icc` and `rwg` against `multilevel::ICC1`, `ICC2`, `rwg` and `rwg.j` "
     "(with base R `aov` for the mean squares) on a simulated collective-efficacy survey of 40 "
     "neighbourhoods, one with a single respondent and one answering all over the scale (rwg truncated at "
     "0): uniform null for five options and a stated skewed null variance."),
    ("Reliability: psych", "measures", psych_agreement,
     "`cimstats.reliability.alpha` against `psych::alpha` (complete cases and pairwise, with a "
     "reverse-keyed item) and `cimstats.reliability.omega` against a one-factor `stats::factanal`."),
    ("Mediation: lavaan", "mediation", mediation_agreement,
     "`cimstats.mediation` against lavaan models with defined indirect effects. Point estimates "
     "are maximum-likelihood estimates and must agree; bootstrap standard errors come from "
     "different random resamples, so they agree only to Monte Carlo error (about "
     "1-2 % for 2,000 resamples each)."),
    ("Moderated mediation: Hayes' protest example (PROCESS models 7 and 8)", "process_protest", process_agreement,
     "Hayes' worked example of conditional process analysis (Garcia et al. 2010, the 'protest' data; "
     "X = protest, M = perceived appropriateness of the response, W = perceived pervasiveness of sex "
     "discrimination, Y = liking) with `moderated_paths=(\"a\",)` (PROCESS model 7) and "
     "`(\"a\", \"direct\")` (model 8). The data file is shown to be the example's data by the "
     "descriptive statistics printed in a course handout that analyses it with PROCESS. PROCESS's "
     "own printed output (4 decimals) is available for model 8 with the three-condition protest "
     "variable: its moderator values and the predicted mediator and outcome at every condition and "
     "moderator value, reproduced by fitting the focal indicator as `x` with the other indicator and "
     "its product with W as covariates. For the two-condition models the "
     "regressions, the moderator values "
     "PROCESS probes (mean and mean +/- 1 SD; 16th, 50th and 84th percentiles at position p(n + 1)), "
     "the conditional indirect and direct effects and the index of moderated mediation are compared "
     "with `stats::lm` and the same formulas in R, and the bootstrap with 40,000 resamples in R "
     "(Monte Carlo error from 5,000 resamples: about 1 % of the SE, and 0.005-0.01 on the scale "
     "of the effect for the 2.5 % and 97.5 % limits, so limits near zero differ by a large relative "
     "amount; `tests/test_mediation_process_example.py` derives its tolerance from these errors)."),
]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x == 0:
        return "0"
    return f"{x:.1e}"


def section_markdown(title: str, table: pd.DataFrame, versions: dict, intro: str, script: str) -> str:
    lines = [f"## {title}", "", intro, "",
             "Reference: " + ", ".join(f"{k} {v}" for k, v in versions.items())
             + f" (`tests/reference/{script}.R` wrote `tests/reference/{script}.json`).", "",
             "| case | quantity | values | largest absolute difference | largest relative difference | agreeing digits |",
             "|---|---|---:|---:|---:|---:|"]
    for r in table.itertuples():
        case = str(r.case)
        digits = "-" if isinstance(r.digits, float) and math.isnan(r.digits) else str(int(r.digits))
        lines.append(f"| {case} | {r.quantity} | {r.n} | {_fmt(r.max_abs_diff)} | {_fmt(r.max_rel_diff)} | {digits} |")
    lines.append("")
    return "\n".join(lines)


HEADER = """# Validation

cimstats is checked against the software its users would otherwise pick. Each
reference tool is run by a committed R script in `tests/reference/` that writes
its numbers, together with the R and package versions, to a JSON file. The test
suite compares cimstats with those files (without needing R), one tolerance per
quantity.

The tables below are computed while this site is built: every case is fitted
again with cimstats and compared with the stored reference numbers. The relative
difference divides by the reference value; reference values smaller than 1e-6
in magnitude (a p-value of 1e-20, the chi-square and SRMR of a saturated model,
which are zero up to rounding) are compared absolutely. *Agreeing digits* is the number of significant digits that agree in the
worst value of the row. Differences at the level of the optimisers'
convergence tolerances (about 1e-6 relative) are expected.

"""
VERSIONS = "Computed with cimstats {version}; Python {python}; NumPy {numpy}; SciPy {scipy}; pandas {pandas}.\n"


def validation_markdown(header: bool = True) -> str:
    """The validation page: every reference case fitted again, one table per reference tool.

    With ``header=False`` only the versions line and the tables (what the
    hand-written docs/validation.md includes at its marker).
    """
    import scipy

    import cimstats

    versions = VERSIONS.format(version=cimstats.__version__, python=sys.version.split()[0],
                               numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__)
    parts = [(HEADER + "\n" if header else "") + versions]
    for title, script, fn, intro in SECTIONS:
        table, versions = fn()
        parts.append(section_markdown(title, table, versions, intro, script))
    parts.append(corpus_markdown())
    return "\n".join(parts)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    print(validation_markdown(header="--tables-only" not in sys.argv[1:]))
