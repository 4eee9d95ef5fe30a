"""Moderated mediation: network diversity -> collective efficacy -> self-management.

Deprivation moderates the first path; the bootstrap resamples whole GP practices.
Usage: python examples/mediation.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats import networks
from cimstats.datasets import demo_study

out = output_folder()
study = demo_study(seed=1)
patients = study.patients.loc[study.patients["wave"] == 0]
alters = study.alters.loc[study.alters["wave"] == 0]

ce = cimstats.score_scale(patients, "ce_personal8").scores["ce"]
sm = cimstats.score_scale(patients, "heiq", scores=["self_monitoring_insight"]).scores["self_monitoring_insight"]
wide = networks.ego_measures(networks.ego_networks(alters, egos=patients.assign(ce=ce, sm=sm)))

fit = cimstats.mediation(wide, x="n_tie_types", m="ce", y="sm", covariates=["age"],
                         moderator="area_deprivation", moderated_paths=("a",),
                         cluster="practice_id", n_boot=2000, seed=1)
print(fit.summary())
fit.tidy().to_csv(out / "mediation.csv", index=False)
print(f"Effects written to {out / 'mediation.csv'}")
