"""How many practices to recruit, and how sure the variance estimates are: power and parametric bootstrap.

The first part asks how many general practices (clusters) of 10 patients a cluster-randomised
study needs to detect a 0.4 SD effect of a practice-level intervention on self-management, with an
intra-practice correlation of 0.05. The second part bootstraps a fitted three-level pilot model
from the demo study. Both run on the one execution layer: in this process for small jobs, on a
local cluster of worker processes for larger ones, or on a Dask cluster given with `client=`.
Usage: python examples/power_and_bootstrap.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats.datasets import demo_study


def main():
    out = output_folder()

    # power over a range of practice counts; `checkpoint=` keeps finished chunks so a re-run resumes
    res = cimstats.power("two_level", effect=0.4, icc=0.05, exposure_level=2, binary_exposure=True,
                         n_clusters=[10, 20, 30], cluster_size=10, nsim=60, seed=1,
                         checkpoint=out / "power-checkpoint")
    print(res.summary())
    res.tidy().to_csv(out / "power.csv", index=False)
    res.plot().save(out / "power_curve.svg")

    # parametric bootstrap (as lme4's bootMer) of a pilot model: patients in practices
    study = demo_study(seed=1)
    baseline = study.patients.loc[study.patients["wave"] == 0]
    pilot = cimstats.lmm("hba1c_mmol ~ age + (1 | practice_id)", baseline)
    boot = cimstats.parametric_bootstrap(pilot, nsim=60, seed=2)
    print(boot.summary())
    boot.tidy().to_csv(out / "bootstrap.csv", index=False)
    print(f"Power and bootstrap tables written to {out}")


# the guard lets the local cluster's worker processes import this file without running it
if __name__ == "__main__":
    main()
