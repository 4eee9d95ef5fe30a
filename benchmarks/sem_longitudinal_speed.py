"""Speed of cimstats' longitudinal invariance sequence against lavaan, measured in one run.

Run from the repository root::

    python benchmarks/sem_longitudinal_speed.py [--repeat 5] [--skip-lavaan]

The demo study's collective-efficacy items ce_1..ce_8 at waves 0 and 1
(default seed): configural, metric, scalar and strict models plus the
comparison table, listwise (440 complete people) and FIML (1,700 people).
cimstats is timed from the long table (reshaping included); lavaan gets the
wide table and the same written-out models and is timed inside R (four
``cfa()`` fits, ``fitMeasures`` and ``lavTestLRT``; R start-up excluded).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cimstats import datasets  # noqa: E402
from cimstats.models.sem import longitudinal_invariance, longitudinal_syntax  # noqa: E402
from sem_speed import timed  # noqa: E402  (median wall and CPU time over repeats)

ITEMS = [f"ce_{i}" for i in range(1, 9)]
STEPS = ("configural", "metric", "scalar", "strict")


def lavaan_time(wide, missing, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wide.to_csv(tmp / "wide.csv", index=False, na_rep="")
        models = {s: longitudinal_syntax(ITEMS, [0, 1], step=s) for s in STEPS}
        for s, m in models.items():
            (tmp / f"{s}.lav").write_text(m)
        script = tmp / "bench.R"
        script.write_text(
            "suppressPackageStartupMessages(library(lavaan))\n"
            f"d <- read.csv('{(tmp / 'wide.csv').as_posix()}')\n"
            f"m <- lapply(c({', '.join(repr(s) for s in STEPS)}), function(s) "
            f"paste(readLines(file.path('{tmp.as_posix()}', paste0(s, '.lav'))), collapse = '\\n'))\n"
            "f <- function() { fits <- lapply(m, function(x) cfa(x, data = d, meanstructure = TRUE, "
            f"missing = '{missing}')); lapply(fits, fitMeasures); "
            "do.call(lavTestLRT, unname(fits)) }\n"
            "invisible(f())\n"
            f"t <- sapply(1:{repeat}, function(i) system.time(f())[['elapsed']])\n"
            "cat(median(t), '\\n')\n"
        )
        out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=1200)
        if out.returncode != 0:
            print("  lavaan failed:", out.stderr[-300:])
            return None
        return float(out.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-lavaan", action="store_true")
    a = ap.parse_args()
    try:
        print(f"(1-minute load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    except OSError:
        pass
    long = datasets.demo_study().patients[["patient_id", "wave"] + ITEMS]
    for missing in ("listwise", "fiml"):
        def ours():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return longitudinal_invariance(long, ITEMS, id="patient_id", wave="wave", missing=missing)

        res = ours()
        w, c, res = timed(ours, a.repeat)
        print(f"demo CE items, waves 0-1, {missing} (n = {res.nobs}), four steps + comparison")
        print(f"  {'cimstats':<26s} wall {w * 1000:9.1f} ms   cpu {c * 1000:9.1f} ms")
        if not a.skip_lavaan and shutil.which("Rscript"):
            wl = lavaan_time(res.wide, missing, a.repeat)
            if wl is not None:
                print(f"  {'lavaan (timed inside R)':<26s} wall {wl * 1000:9.1f} ms")
                print(f"  ratio lavaan/cimstats: {wl / w:.2f}x")


if __name__ == "__main__":
    main()
