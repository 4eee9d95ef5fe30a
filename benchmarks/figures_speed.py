"""Speed of the figures: caterpillar plot with 5,000 levels, forest plot, path diagram, invariance plot.

Prints wall-clock seconds (median of repeats) for building and writing each
figure as SVG and PNG, and, when R is installed, the same plots drawn by the
tools R users reach for, measured in the same run:

* caterpillar: ``lattice::dotplot(ranef(m, condVar = TRUE))`` (lme4's own
  plot method) of 5,000 random intercepts, written with ``svg()``/``png()``;
* forest: ``ggplot2`` ``geom_pointrange`` of 8 estimates written with
  ``svglite``/``png()``.

Only the drawing is timed on both sides (the model is fitted once beforehand
in R; cimstats draws a random-effects table of the same size). The path
diagram and the invariance plot have no installed R peer (semPlot is not
available) and are reported in seconds only.

Run: ``python benchmarks/figures_speed.py``
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

N_LEVELS = 5000

R_SCRIPT = r"""
suppressMessages({library(lme4); library(lattice); library(ggplot2); library(svglite)})
set.seed(1)
n <- %(n)d
g <- factor(sprintf("P%%05d", rep(seq_len(n), each = 3)))
y <- rnorm(n, sd = 1)[as.integer(g)] + rnorm(3 * n)
m <- lmer(y ~ 1 + (1 | g))
re <- ranef(m, condVar = TRUE)
d <- tempfile()
dir.create(d)
med <- function(f, k = 3) median(sapply(seq_len(k), function(i) system.time(f())[["elapsed"]]))
cat_svg <- med(function() { svg(file.path(d, "c.svg")); print(dotplot(re)); dev.off() })
cat_png <- med(function() { png(file.path(d, "c.png"), width = 900, height = 900); print(dotplot(re)); dev.off() })
fd <- data.frame(label = paste0("H", 1:8), est = rnorm(8), se = runif(8, 0.05, 0.2))
p <- ggplot(fd, aes(y = label, x = est, xmin = est - 1.96 * se, xmax = est + 1.96 * se)) +
  geom_pointrange() + geom_vline(xintercept = 0, linetype = 2)
for_svg <- med(function() ggsave(file.path(d, "f.svg"), p, device = svglite::svglite, width = 8, height = 3), 5)
for_png <- med(function() ggsave(file.path(d, "f.png"), p, width = 8, height = 3, dpi = 150), 5)
cat(sprintf('{"caterpillar_svg": %%f, "caterpillar_png": %%f, "forest_svg": %%f, "forest_png": %%f}',
            cat_svg, cat_png, for_svg, for_png))
"""


def _wall(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _r_times():
    if shutil.which("Rscript") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT % {"n": N_LEVELS})
    try:
        out = subprocess.run(["Rscript", fh.name], capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:  # R or one of its packages missing: report cimstats alone
        return None
    finally:
        Path(fh.name).unlink(missing_ok=True)


def main() -> None:
    import cimstats
    from cimstats.render.figures import caterpillar_plot, forest_plot, invariance_plot, path_diagram

    rng = np.random.default_rng(1)
    re = pd.DataFrame({"group": "g", "term": "(Intercept)", "level": [f"P{i:05d}" for i in range(N_LEVELS)],
                       "condval": rng.normal(size=N_LEVELS), "condsd": rng.uniform(0.3, 0.6, size=N_LEVELS)})
    tab = pd.DataFrame({"label": [f"H{i}" for i in range(1, 9)], "estimate": rng.normal(size=8)})
    tab["ci_lower"] = tab["estimate"] - 0.3
    tab["ci_upper"] = tab["estimate"] + 0.3
    study = cimstats.datasets.demo_study()
    p0 = study.patients[study.patients["wave"] == 0].copy()
    items = [f"ce_{i}" for i in range(1, 7)]
    p0[items] = p0[items].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cimstats.sem("CE =~ ce_1 + ce_2 + ce_3\nCX =~ ce_4 + ce_5 + ce_6\nCX ~ CE", p0)
        inv = cimstats.invariance("CE =~ ce_1 + ce_2 + ce_3 + ce_4", p0, group="country")

    ours = {
        "caterpillar_svg": _wall(lambda: caterpillar_plot(re).svg()),
        "caterpillar_png": _wall(lambda: caterpillar_plot(re).png(dpi=100)),
        "forest_svg": _wall(lambda: forest_plot(tab).svg(), 5),
        "forest_png": _wall(lambda: forest_plot(tab).png(dpi=150), 5),
        "path_diagram_svg": _wall(lambda: path_diagram(fit, residuals=True).svg(), 5),
        "invariance_svg": _wall(lambda: invariance_plot(inv).svg(), 5),
    }
    peer = _r_times()
    print(f"{'figure':<20}{'cimstats s':>12}{'R s':>10}{'ratio':>8}")
    for k, v in ours.items():
        r = peer.get(k) if peer else None
        ratio = f"{v / r:8.2f}" if r else f"{'-':>8}"
        print(f"{k:<20}{v:12.3f}{(f'{r:10.3f}' if r else f'{chr(45):>10}')}{ratio}")
    if peer is None:
        print("R (lme4, lattice, ggplot2, svglite) not available: no peer timings.")
    else:
        print("R peers: lattice::dotplot(ranef(condVar=TRUE)) for the caterpillar plot; ggplot2 geom_pointrange "
              "for the forest plot. ratio = cimstats / R (below 1: cimstats faster).")


if __name__ == "__main__":
    main()
