"""Time the mechanism tests on the demo study, model by model, against peer tools in the same run.

cimstats.test_mechanisms fits every model of the default plan once. Each model's analysis frame
(cimstats.mechanisms.model_frame) is then fitted again by the tools a user would otherwise pick:

* ego-level LMMs (knowledge_navigation, negotiation, ce_building): statsmodels MixedLM (REML) and lme4::lmer;
* the moderated mediation with a cluster bootstrap by practice: a statsmodels OLS loop over the same
  number of cluster resamples;
* measurement invariance of collective efficacy across six countries (configural, metric, scalar):
  lavaan::cfa with group.equal;
* binary GLMMs (alter_resources, role_renegotiation; only with ``--glmm``, they take minutes):
  lme4::glmer (Laplace).

R tools run when Rscript is found; their times are measured inside R (system.time, elapsed), so
R's start-up is not counted. Times are wall-clock seconds of one run; the machine may be shared,
so the ratios matter more than the absolute times.

Usage:  python benchmarks/mechanisms_speed.py [--n-boot 2000] [--glmm] [--no-r]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cimstats import datasets  # noqa: E402
from cimstats.mechanisms import default_plan, model_frame, test_mechanisms  # noqa: E402

LMMS = ("knowledge_navigation", "negotiation", "ce_building")
GLMMS = ("alter_resources", "role_renegotiation")

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lavaan); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE); dir <- args[1]; jobs <- fromJSON(file.path(dir, "jobs.json"))
out <- list()
for (j in seq_len(nrow(jobs))) {
  id <- jobs$id[j]; d <- read.csv(file.path(dir, paste0(id, ".csv")), stringsAsFactors = FALSE)
  for (v in names(d)) if (is.character(d[[v]])) d[[v]] <- factor(d[[v]])
  kind <- jobs$kind[j]; f <- jobs$formula[j]
  t <- system.time({
    if (kind == "lmm") fit <- lmer(as.formula(f), data = d, REML = TRUE)
    if (kind == "glmm") fit <- glmer(as.formula(f), data = d, family = binomial)
    if (kind == "invariance") {
      for (eq in list("", "loadings", c("loadings", "intercepts")))
        fit <- if (eq[1] == "") cfa(f, data = d, group = "country") else cfa(f, data = d, group = "country", group.equal = eq)
    }
  })["elapsed"]
  out[[id]] <- unname(t)
}
write_json(out, file.path(dir, "r_times.json"), auto_unbox = TRUE, digits = NA)
"""


def statsmodels_lmm(frame: pd.DataFrame, formula: str) -> float:
    import statsmodels.formula.api as smf

    fixed = formula.split("+ (1 |")[0].strip()
    group = formula.split("(1 |")[1].split(")")[0].strip()
    d = frame.dropna().reset_index(drop=True)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smf.mixedlm(fixed, d, groups=d[group]).fit(reml=True)
    return time.perf_counter() - t


def statsmodels_cluster_bootstrap(frame: pd.DataFrame, n_boot: int, seed: int = 1) -> float:
    """The moderated mediation of ce_mediation by two OLS fits per cluster resample (a user's loop)."""
    import statsmodels.formula.api as smf

    d = frame.dropna().reset_index(drop=True)
    d["W"] = d["deprivation_q"]
    groups = dict(d.groupby("practice_id").indices)
    keys = list(groups)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(n_boot):
        idx = np.concatenate([groups[keys[k]] for k in rng.integers(0, len(keys), len(keys))])
        b = d.iloc[idx]
        a = smf.ols("ce ~ diversity * W + se + C(country)", b).fit().params
        y = smf.ols("sm ~ diversity + ce + W + se + C(country)", b).fit().params
        _ = a["diversity:W"] * y["ce"]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--glmm", action="store_true", help="include the binary GLMMs (minutes on two cores)")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()

    study = datasets.demo_study()
    plan = default_plan()
    hyps = [h for h, m in zip(plan.hypotheses["hypothesis_id"], plan.hypotheses["model"])
            if args.glmm or m not in GLMMS]
    t = time.perf_counter()
    res = test_mechanisms(study, hypotheses=hyps, n_boot=args.n_boot, seed=1)
    total = time.perf_counter() - t
    ours = res.models.set_index("model_id")["seconds"].to_dict()
    print(f"cimstats.test_mechanisms: {len(hyps)} hypotheses, {len(ours)} models, n_boot={args.n_boot}: "
          f"{total:.2f} s in all (constructs, network measures and fits)")

    rows = []
    for mid in LMMS:
        frame = model_frame(study, mid)
        rows.append((mid, "statsmodels MixedLM", ours[mid], statsmodels_lmm(frame, plan.models[mid]["formula"])))
    med = model_frame(study, "ce_mediation")
    nb_sm = min(args.n_boot, 200)
    sm_t = statsmodels_cluster_bootstrap(med, nb_sm) * args.n_boot / nb_sm
    rows.append(("ce_mediation", f"statsmodels OLS loop ({nb_sm} resamples, scaled to {args.n_boot})",
                 ours["ce_mediation"], sm_t))

    if not args.no_r and shutil.which("Rscript"):
        jobs = [{"id": m, "kind": "lmm", "formula": plan.models[m]["formula"]} for m in LMMS]
        items = [f"ce_{i}" for i in range(1, 9)]
        jobs.append({"id": "ce_invariance", "kind": "invariance", "formula": "CE =~ " + " + ".join(items)})
        if args.glmm:
            jobs += [{"id": m, "kind": "glmm", "formula": plan.models[m]["formula"]} for m in GLMMS]
        with tempfile.TemporaryDirectory() as tmp:
            for j in jobs:
                f = model_frame(study, j["id"])
                if j["kind"] == "invariance":
                    f = f.dropna()
                f.to_csv(Path(tmp) / f"{j['id']}.csv", index=False)
            (Path(tmp) / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
            (Path(tmp) / "bench.R").write_text(R_SCRIPT, encoding="utf-8")
            subprocess.run(["Rscript", str(Path(tmp) / "bench.R"), tmp], check=True)
            rt = json.loads((Path(tmp) / "r_times.json").read_text(encoding="utf-8"))
        for j in jobs:
            peer = {"lmm": "lme4::lmer", "glmm": "lme4::glmer", "invariance": "lavaan::cfa x3 (configural, metric, scalar)"}
            rows.append((j["id"], peer[j["kind"]], ours[j["id"]], float(rt[j["id"]])))
    elif not args.no_r:
        print("Rscript not found: lme4 and lavaan not timed")

    print(f"\n{'model':<20} {'peer':<58} {'cimstats s':>10} {'peer s':>9} {'peer/cimstats':>13}")
    for mid, peer, a, b in rows:
        print(f"{mid:<20} {peer:<58} {a:>10.3f} {b:>9.3f} {b / a:>13.2f}")


if __name__ == "__main__":
    main()
