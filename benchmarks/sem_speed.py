"""Speed of cimstats' SEM core against semopy and lavaan, measured in one run.

Run from the repository root::

    python benchmarks/sem_speed.py [--repeat 15] [--skip-semopy-fiml] [--skip-lavaan]

Prints wall-clock and CPU times and the ratios. Cases:

1. Holzinger-Swineford 3-factor CFA with standard errors and fit measures
   (cimstats; semopy fit + inspect + calc_stats; lavaan cfa + fitMeasures
   timed inside R so R start-up is excluded).
2. FIML on 3,000 rows x 12 indicators with 12% values missing at random
   (cimstats vs semopy's FIML objective).
3. 1,000 nonparametric bootstrap resamples of a 3-variable mediation model
   with n = 2,000 on 2 worker processes (free, defined and standardized
   parameters), against lavaan's ``se = "bootstrap"`` on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cimstats.models.sem import sem  # noqa: E402

HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


def timed(fn, repeat):
    walls, cpus = [], []
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return float(np.median(walls)), float(np.median(cpus)), out


def line(name, wall, cpu):
    print(f"  {name:<34s} wall {wall * 1000:9.1f} ms   cpu {cpu * 1000:9.1f} ms")


def hs_case(repeat, skip_lavaan):
    print("1. Holzinger-Swineford CFA, ML, SEs + fit measures")
    hs = pd.read_csv(ROOT / "tests" / "reference" / "data" / "sem_holzinger.csv")

    def ours():
        fit = sem(HS_MODEL, hs)
        return fit.tidy(), fit.fit_measures()

    ours()
    w, c, _ = timed(ours, repeat)
    line("cimstats", w, c)
    res = {"cimstats": w}
    try:
        import semopy

        def theirs():
            m = semopy.Model(HS_MODEL)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.fit(hs)
                return m.inspect(), semopy.calc_stats(m)

        theirs()
        w2, c2, _ = timed(theirs, repeat)
        line("semopy (fit+inspect+calc_stats)", w2, c2)
        res["semopy"] = w2
    except ImportError:
        print("  semopy not installed")
    if not skip_lavaan and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "bench.R"
            script.write_text(
                "suppressPackageStartupMessages(library(lavaan))\n"
                f"m <- '{HS_MODEL}'\n"
                "f <- function() { fit <- cfa(m, data = HolzingerSwineford1939); "
                "list(parameterEstimates(fit), fitMeasures(fit)) }\n"
                "invisible(f())\n"
                f"t <- sapply(1:{repeat}, function(i) system.time(f())[['elapsed']])\n"
                "cat(median(t), '\\n')\n"
            )
            out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=600)
            if out.returncode == 0:
                wl = float(out.stdout.split()[-1])
                line("lavaan (timed inside R)", wl, float("nan"))
                res["lavaan"] = wl
            else:
                print("  lavaan failed:", out.stderr[-300:])
    for k, v in res.items():
        if k != "cimstats":
            print(f"  ratio {k}/cimstats: {v / res['cimstats']:.1f}x")
    print(f"  target < 20 ms: {'met' if res['cimstats'] < 0.020 else 'NOT met'} (wall {res['cimstats'] * 1000:.1f} ms)")


def fiml_data(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    F = rng.multivariate_normal(np.zeros(3), [[1, .4, .3], [.4, 1, .5], [.3, .5, 1]], size=n)
    d = pd.DataFrame({f"y{k + 1}": (0.6 + 0.05 * k) * F[:, k // 4] + rng.normal(scale=0.7, size=n)
                      for k in range(12)})
    return d.mask(rng.random(d.shape) < 0.12)


def _load():
    try:
        print(f"  (1-minute load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    except OSError:
        pass


def fiml_case(skip_semopy):
    _load()
    print("2. FIML, 3,000 rows x 12 indicators, 12% missing")
    d = fiml_data()
    model = "f1 =~ y1 + y2 + y3 + y4\nf2 =~ y5 + y6 + y7 + y8\nf3 =~ y9 + y10 + y11 + y12"

    def ours():
        fit = sem(model, d, missing="fiml")
        return fit.tidy(), fit.fit_measures()

    w, c, _ = timed(ours, 3)
    line("cimstats (SEs + fit measures)", w, c)
    if skip_semopy:
        return
    import semopy

    def theirs():
        m = semopy.Model(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(d, obj="FIML")
            return m.inspect()

    w2, c2, _ = timed(theirs, 1)
    line("semopy (FIML fit + inspect)", w2, c2)
    print(f"  ratio semopy/cimstats: wall {w2 / w:.1f}x, cpu {c2 / c:.1f}x (target >= 5x)")


def _lavaan_boot(d, n_boot):
    """Seconds lavaan needs for the same bootstrap (2 cores, percentile intervals), timed inside R."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "med.csv"
        d.to_csv(csv, index=False)
        script = Path(tmp) / "boot.R"
        script.write_text(
            "suppressPackageStartupMessages(library(lavaan))\n"
            f"d <- read.csv('{csv.as_posix()}')\n"
            "m <- 'm ~ a*x\ny ~ b*m + c*x\nab := a*b\ntotal := c + a*b'\n"
            "set.seed(1)\n"
            f"t <- system.time({{fit <- sem(m, data = d, se = 'bootstrap', bootstrap = {n_boot}, "
            "parallel = 'multicore', ncpus = 2L); pe <- parameterEstimates(fit, boot.ci.type = 'perc')})\n"
            "cat(t[['elapsed']], '\\n')\n"
        )
        out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            print("  lavaan failed:", out.stderr[-300:])
            return None
        return float(out.stdout.split()[-1])


def boot_case(skip_lavaan=False):
    print("3. Bootstrap, 1,000 resamples, mediation n = 2,000, 2 processes")
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.normal(size=n)
    m = 0.5 * x + rng.normal(size=n)
    y = 0.4 * m + 0.2 * x + rng.normal(size=n)
    d = pd.DataFrame({"x": x, "m": m, "y": y})
    fit = sem("m ~ a*x\ny ~ b*m + c*x\nab := a*b\ntotal := c + a*b", d)
    w = time.perf_counter()
    bs = fit.bootstrap(1000, seed=1)
    wall = time.perf_counter() - w
    print(f"  cimstats wall {wall:.2f} s (failed resamples: {bs.n_failed}; free, defined and standardized "
          f"parameters, percentile and BCa intervals); target < 3 s: {'met' if wall < 3 else 'NOT met'}")
    if not skip_lavaan and shutil.which("Rscript"):
        wl = _lavaan_boot(d, 1000)
        if wl is not None:
            print(f"  lavaan se='bootstrap', 1,000 resamples, 2 cores (timed inside R): {wl:.2f} s")
            print(f"  ratio lavaan/cimstats: {wl / wall:.1f}x")
    try:
        load = os.getloadavg()[0]
        print(f"  (1-minute load average during the run: {load:.1f} on {os.cpu_count()} cores)")
    except OSError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--skip-semopy-fiml", action="store_true", help="semopy's FIML takes tens of seconds")
    ap.add_argument("--skip-lavaan", action="store_true")
    a = ap.parse_args(argv)
    hs_case(a.repeat, a.skip_lavaan)
    fiml_case(a.skip_semopy_fiml)
    boot_case(a.skip_lavaan)


if __name__ == "__main__":
    main()
