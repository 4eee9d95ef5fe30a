"""A measurement model for collective efficacy, a structural model, and invariance across countries.

Usage: python examples/sem_invariance.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats import networks
from cimstats.datasets import demo_study

out = output_folder()
study = demo_study(seed=1)
baseline = study.patients.loc[study.patients["wave"] == 0]
alters = study.alters.loc[study.alters["wave"] == 0]
wide = networks.ego_measures(networks.ego_networks(alters, egos=baseline))
items = [f"ce_{i}" for i in range(1, 9)]
wide[items] = wide[items].astype(float)

# confirmatory factor analysis, lavaan syntax; incomplete answers by full-information ML
cfa = cimstats.sem("ce =~ " + " + ".join(items), wide, missing="fiml", estimator="MLR")
print(cfa.glance()[["nobs", "chisq", "df", "cfi", "tli", "rmsea", "srmr"]].to_string(index=False))

# structural part: network diversity -> collective efficacy -> self-monitoring (one heiQ item here)
model = f"""
ce =~ {' + '.join(items)}
ce ~ a*n_tie_types
heiq_smi_1 ~ b*ce + n_tie_types
indirect := a*b
"""
wide["heiq_smi_1"] = wide["heiq_smi_1"].astype(float)
full = cimstats.sem(model, wide, missing="fiml", cluster="practice_id", estimator="MLR")
print(full.tidy().query("op in ['~', ':=']")[["lhs", "op", "rhs", "estimate", "std_error", "p_value"]])

# configural, metric, scalar and strict invariance across the six countries
inv = cimstats.invariance("ce =~ " + " + ".join(items), wide, group="country")
print(inv.summary())
inv.table.to_csv(out / "ce_invariance.csv", index=False)
full.tidy().to_csv(out / "ce_sem.csv", index=False)
print(f"Tables written to {out}")
