"""Speed of cimstats.lmm against statsmodels MixedLM and lme4, measured in one run.

Usage::

    python benchmarks/lmm_speed.py [--statsmodels-cap 600] [--skip-statsmodels] [--repeat 3] [--memory-only]

Scenarios (each prints seconds and ratios measured in this run):

1. three-level nested random intercepts, 42,000 alters in 5,000 egos in 6 countries,
   ``y ~ x + w + (1 | country/ego)``: vs statsmodels MixedLM (country groups with an
   ego variance component; run once in a subprocess with a time cap) and vs lme4;
2. random intercept with 100,000 groups (300,000 rows): target under 0.5 s;
3. random intercept and slope, 20,000 rows in 400 groups: vs lme4;
4. crossed, InstEval-sized: ``y ~ service + (1 | s) + (1 | d) + (1 | dept)``,
   73,421 rows, factors of 2,972 / 1,128 / 14 levels (lme4's InstEval data when R is
   available, otherwise simulated with the same sizes): vs lme4;
5. peak memory of nested models (``--memory-only`` runs just this): the peak
   additional memory traced by ``tracemalloc`` during ``lmm()`` (after a warm-up
   fit) divided by the bytes of the columns the model uses in the DataFrame, for
   ``(1 | country/ego)`` and ``(1 | country/practice/ego)`` at 42,000 and 420,000 rows
   (target: at most 2x).

lme4 is run through ``Rscript`` in a subprocess; only the ``lmer()`` call is timed
inside R (best of ``--repeat``), as cimstats' ``lmm()`` call is timed here (formula
processing included in both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import cimstats  # noqa: E402
from test_lmm_memory import alters_in_egos  # noqa: E402  (the nested alters-in-egos generator)

RSCRIPT = shutil.which("Rscript")
TMP = Path(tempfile.mkdtemp(prefix="lmm_bench_"))


def nested3(seed=1, n_rows=42_000, n_egos=5_000, n_countries=6):
    rng = np.random.default_rng(seed)
    ego_country = rng.integers(0, n_countries, n_egos)
    ego = np.sort(rng.integers(0, n_egos, n_rows))
    ego[:n_egos] = np.arange(n_egos)  # every ego has at least one alter
    ego = np.sort(ego)
    country = ego_country[ego]
    x = rng.normal(size=n_rows)
    w = rng.normal(size=n_egos)[ego]
    y = (2 + 0.4 * x - 0.2 * w + rng.normal(0, 0.5, n_countries)[country]
         + rng.normal(0, 0.8, n_egos)[ego] + rng.normal(size=n_rows))
    return pd.DataFrame({"y": y, "x": x, "w": w, "country": country, "ego": ego})


def many_groups(seed=2, n_groups=100_000, per=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.7, n_groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def slopes(seed=3, n_rows=20_000, n_groups=400):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_rows // n_groups)
    x = rng.normal(size=g.size)
    b0 = rng.normal(0, 1.0, n_groups)
    b1 = 0.3 * b0 + rng.normal(0, 0.5, n_groups)
    y = 1 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def insteval_like(seed=4):
    """InstEval from lme4 when R is present, else simulated data of the same size."""
    if RSCRIPT:
        path = TMP / "insteval.csv"
        code = (f'data("InstEval", package="lme4"); d <- InstEval; '
                f'write.csv(data.frame(y=d$y, service=as.character(d$service), s=as.character(d$s), '
                f'd=as.character(d$d), dept=as.character(d$dept)), "{path}", row.names=FALSE)')
        subprocess.run([RSCRIPT, "-e", code], check=True, capture_output=True)
        return pd.read_csv(path, dtype={"service": str, "s": str, "d": str, "dept": str}), "lme4::InstEval"
    rng = np.random.default_rng(seed)
    n = 73_421
    s = rng.integers(0, 2972, n)
    d = rng.integers(0, 1128, n)
    dept = rng.integers(0, 14, 1128)[d]
    service = rng.integers(0, 2, n)
    y = (3 + 0.1 * service + rng.normal(0, 0.3, 2972)[s] + rng.normal(0, 0.5, 1128)[d]
         + rng.normal(0, 0.1, 14)[dept] + rng.normal(0, 1.2, n))
    y = np.clip(np.round(y), 1, 5)
    return pd.DataFrame({"y": y, "service": service.astype(str), "s": s, "d": d, "dept": dept}), "simulated"


def time_cimstats(formula, df, repeat):
    best = np.inf
    m = None
    for _ in range(repeat):
        t = time.perf_counter()
        m = cimstats.lmm(formula, df, df_method="asymptotic")
        best = min(best, time.perf_counter() - t)
    return best, m


def time_lme4(formula, df, repeat, name):
    if not RSCRIPT:
        return None, None
    path = TMP / f"{name}.csv"
    df.to_csv(path, index=False)
    factors = [c for c in df.columns if c in ("country", "ego", "g", "s", "d", "dept", "service")]
    conv = "".join(f'd${c} <- factor(d${c}); ' for c in factors)
    code = (
        f'suppressPackageStartupMessages(library(lme4)); d <- read.csv("{path}"); {conv}'
        f'best <- Inf; for (i in seq_len({repeat})) {{ t <- system.time(m <- lmer({formula}, data = d))[["elapsed"]]; '
        f'best <- min(best, t) }}; cat(sprintf("%.6f %.10f\\n", best, as.numeric(logLik(m))))'
    )
    out = subprocess.run([RSCRIPT, "-e", code], capture_output=True, text=True)
    if out.returncode != 0:
        print("  lme4 failed:", out.stderr.strip()[-300:])
        return None, None
    t, ll = out.stdout.split()
    return float(t), float(ll)


def time_statsmodels(df, cap):
    """statsmodels MixedLM for the three-level model, once, in a subprocess with a time cap."""
    path = TMP / "nested3.parquet"
    df.to_parquet(path)
    code = f"""
import time, warnings, pandas as pd
import statsmodels.formula.api as smf
warnings.simplefilter("ignore")
d = pd.read_parquet(r"{path}")
t = time.perf_counter()
m = smf.mixedlm("y ~ x + w", d, groups="country", re_formula="1",
                vc_formula={{"ego": "0 + C(ego)"}}).fit(reml=True)
print(time.perf_counter() - t, m.llf)
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=cap, env=env)
    except subprocess.TimeoutExpired:
        return None, f"did not finish within the {cap:.0f} s cap"
    if out.returncode != 0:
        return None, "failed: " + out.stderr.strip()[-200:]
    t, ll = out.stdout.split()[-2:]
    return float(t), float(ll)


def nested_practices(seed=5, n_rows=42_000, n_egos=5_000):
    """Alters in egos in GP practices in countries (every level a random intercept): the data
    tests/test_lmm_memory.py holds to the same memory target."""
    return alters_in_egos(n_rows=n_rows, n_egos=n_egos, seed=seed)


def used_data_size(formula, df):
    """Bytes of the columns the model uses, as they are held in the user's DataFrame."""
    from cimstats.models.formula import parse_formula
    cols = parse_formula(formula).variables()
    return int(df[cols].memory_usage(deep=True, index=False).sum())


def peak_memory(formula, df):
    """Peak additional memory traced while fitting (numpy and pandas allocations).

    A first fit warms up imports, caches and thread pools; the second fit is
    traced with ``tracemalloc``. Returns (peak, still held by the result, data size)
    in bytes, each relative to the memory in use before the traced fit.
    """
    import gc
    import tracemalloc
    cimstats.lmm(formula, df, df_method="asymptotic")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    m = cimstats.lmm(formula, df, df_method="asymptotic")
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del m
    return peak - base, current - base, used_data_size(formula, df)


def memory_report():
    """Peak memory of nested models relative to the data they use (target <= 2x)."""
    print("Peak memory of cimstats.lmm relative to the bytes of the model's columns (target <= 2x):")
    rows = []
    for label, make, f in [("alters in egos in countries", nested3, "y ~ x + w + (1 | country/ego)"),
                           ("alters in egos in practices in countries", nested_practices,
                            "y ~ x + w + (1 | country/practice/ego)")]:
        for n in (42_000, 420_000):
            df = make(n_rows=n, n_egos=n // 42 * 5)
            peak, held, size = peak_memory(f, df)
            print(f"    {label}, {n:,} rows, {f}: data {size / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB "
                  f"= {peak / size:.2f}x ({'met' if peak <= 2 * size else 'NOT met'}); "
                  f"result holds {held / size:.2f}x")
            rows.append({"model": f, "rows": n, "ratio": peak / size})
    return rows


def ratio(other, ours):
    return f"{other / ours:.1f}x" if other else "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--statsmodels-cap", type=float, default=600.0)
    ap.add_argument("--skip-statsmodels", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory measurements")
    args = ap.parse_args(argv)
    results = {}
    if args.memory_only:
        print(json.dumps({"memory": memory_report()}))
        return
    print(f"lme4 via Rscript: {'yes' if RSCRIPT else 'no (R not found)'}\n")

    # 1 ---------------------------------------------------------------------
    df = nested3()
    f = "y ~ x + w + (1 | country/ego)"
    ours, m = time_cimstats(f, df, args.repeat)
    r_t, r_ll = time_lme4(f, df, args.repeat, "nested3")
    print(f"[1] 3-level nested intercepts, {len(df):,} rows / {df.ego.nunique():,} egos / "
          f"{df.country.nunique()} countries: cimstats {ours:.3f} s")
    if r_t:
        print(f"    lme4 {r_t:.3f} s -> cimstats is {ratio(r_t, ours)} faster (target >= 1x); "
              f"logLik diff {m.loglik - r_ll:.2e}")
    if not args.skip_statsmodels:
        sm_t, sm_ll = time_statsmodels(df, args.statsmodels_cap)
        if sm_t:
            print(f"    statsmodels MixedLM {sm_t:.1f} s -> cimstats is {ratio(sm_t, ours)} faster "
                  f"(target >= 100x); logLik diff {m.loglik - sm_ll:.2e}")
        else:
            print(f"    statsmodels MixedLM {sm_ll}: cimstats is more than "
                  f"{args.statsmodels_cap / ours:.0f}x faster (target >= 100x)")
        results["nested3"] = {"cimstats": ours, "lme4": r_t, "statsmodels": sm_t}
    else:
        results["nested3"] = {"cimstats": ours, "lme4": r_t}

    # 2 ---------------------------------------------------------------------
    df = many_groups()
    f = "y ~ x + (1 | g)"
    ours, m = time_cimstats(f, df, args.repeat)
    r_t, r_ll = time_lme4(f, df, 1, "many")
    print(f"\n[2] random intercept, {df.g.nunique():,} groups / {len(df):,} rows: cimstats {ours:.3f} s "
          f"(target < 0.5 s: {'met' if ours < 0.5 else 'NOT met'})")
    if r_t:
        print(f"    lme4 {r_t:.3f} s -> {ratio(r_t, ours)}; logLik diff {m.loglik - r_ll:.2e}")
    results["many_groups"] = {"cimstats": ours, "lme4": r_t}

    # 3 ---------------------------------------------------------------------
    df = slopes()
    f = "y ~ x + (x | g)"
    ours, m = time_cimstats(f, df, args.repeat)
    r_t, r_ll = time_lme4(f, df, args.repeat, "slopes")
    print(f"\n[3] random intercept + slope, {len(df):,} rows / {df.g.nunique()} groups: cimstats {ours:.3f} s")
    if r_t:
        print(f"    lme4 {r_t:.3f} s -> cimstats is {ratio(r_t, ours)} faster (target >= 1x); "
              f"logLik diff {m.loglik - r_ll:.2e}")
    results["slopes"] = {"cimstats": ours, "lme4": r_t}

    # 4 ---------------------------------------------------------------------
    df, source = insteval_like()
    f = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
    ours, m = time_cimstats(f, df, max(1, args.repeat - 1))
    r_t, r_ll = time_lme4(f, df, max(1, args.repeat - 1), "insteval")
    print(f"\n[4] crossed ({source}), {len(df):,} rows, levels "
          f"{df.s.nunique():,} / {df.d.nunique():,} / {df.dept.nunique()}: cimstats {ours:.3f} s")
    if r_t:
        print(f"    lme4 {r_t:.3f} s -> lme4/cimstats = {r_t / ours:.2f} (target >= 0.5, i.e. within 2x); "
              f"logLik diff {m.loglik - r_ll:.2e}")
    results["crossed"] = {"cimstats": ours, "lme4": r_t}

    # 5 ---------------------------------------------------------------------
    print()
    results["memory"] = memory_report()
    print("\n" + json.dumps(results))
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
