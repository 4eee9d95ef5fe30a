"""Score scales and ego-network measures, then fit multilevel models.

Alters (network members) are nested in patients, patients in GP practices.
Usage: python examples/three_level_model.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats import networks
from cimstats.datasets import demo_study

out = output_folder()
study = demo_study(seed=1)
patients = study.patients.loc[study.patients["wave"] == 0]
alters = study.alters.loc[study.alters["wave"] == 0]

# scale scores: collective efficacy of the personal community, heiQ self-monitoring and insight
ce = cimstats.score_scale(patients, "ce_personal8")
heiq = cimstats.score_scale(patients, "heiq", scores=["self_monitoring_insight"])
egos = patients.assign(collective_efficacy=ce.scores["ce"],
                       self_management=heiq.scores["self_monitoring_insight"])

# ego-network measures, one row per patient (patients who named nobody keep size 0)
net = networks.ego_networks(alters, egos=egos)
wide = networks.ego_measures(net)

# patients in practices: network diversity and collective efficacy, country as a fixed effect
m1 = cimstats.lmm("self_management ~ n_tie_types + collective_efficacy + C(country) + (1 | practice_id)", wide)
print(m1.summary())
print(m1.icc())

# alters in patients in practices: contact frequency by tie type
long = networks.alter_table(net, ego_columns=["practice_id", "country", "area_deprivation"])
m2 = cimstats.lmm("contact_freq ~ C(tie_type) + area_deprivation + (1 | practice_id/patient_id)", long)
print(m2.varcorr())
m2.tidy().to_csv(out / "alter_model.csv", index=False)
print(f"Model table written to {out / 'alter_model.csv'}")
