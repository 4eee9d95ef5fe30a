"""Score questionnaire scales with their keys and missing-item rules, and check their reliability.

Usage: python examples/score_scales.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats import reliability, scales
from cimstats.datasets import demo_study

out = output_folder()
patients = demo_study(seed=1).patients
baseline = patients.loc[patients["wave"] == 0]

print(scales.list_instruments()[["id", "name"]].to_string(index=False))   # instruments that ship with cimstats

# the three heiQ subscales the survey asked (items 1-4, mean score), SEMCD-6 (1-10)
# and collective efficacy of the personal community (1-5)
HEIQ = ["self_monitoring_insight", "health_directed_activity", "health_service_navigation"]
heiq = cimstats.score_scale(baseline, "heiq", scores=HEIQ)
semcd = cimstats.score_scale(baseline, "semcd6")
ce = cimstats.score_scale(baseline, "ce_personal8")
print(heiq)                                    # persons x scores
print(heiq.summary())                          # how many persons got each score, and why others did not

scores = baseline[["patient_id"]].join([heiq.scores, semcd.scores, ce.scores])
scores.to_csv(out / "scale_scores.csv", index=False)

# Cronbach's alpha with its Feldt interval, standardised alpha and omega per (sub)scale
table = reliability.scale_reliability(baseline, "heiq", scores=HEIQ)
print(table.to_string())
table.to_csv(out / "heiq_reliability.csv")
print(f"Scores and reliability written to {out}")
