"""A generalised linear mixed model: which network members take on illness work.

Alters (network members) are nested in patients; the outcome is binary.
Usage: python examples/glmm_model.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats import networks
from cimstats.datasets import demo_study

out = output_folder()
study = demo_study(seed=1)
patients = study.patients.loc[study.patients["wave"] == 0]
alters = study.alters.loc[study.alters["wave"] == 0]

net = networks.ego_networks(alters, egos=patients)
long = networks.alter_table(net, ego_columns=["practice_id", "country", "area_deprivation"])
long = long.loc[long["tie_type"].isin(["partner", "family", "friend", "weak_tie"])]

# logistic model with a random intercept per patient (Laplace approximation, as glmer's default)
m = cimstats.glmm("illness_work ~ C(tie_type) + contact_freq + area_deprivation + (1 | patient_id)",
                  long, family="binomial")
print(m.summary())                             # fixed effects with odds ratios, random-effect variances
print(m.median_odds_ratio())                   # heterogeneity between patients on the odds-ratio scale
m.tidy().to_csv(out / "illness_work_glmm.csv", index=False)
print(f"Model table written to {out / 'illness_work_glmm.csv'}")
