"""Pre-specified tests of network mechanisms: a plan, verdicts and a publication table.

The shipped plan (``cimstats.mechanisms.default_plan()``, run by ``cimstats demo``) tests all three
mechanisms, including an alter-level GLMM. This script writes a smaller plan of its own, with the
same structure, to show each part: constructs, models, hypotheses and verdict rules.
Usage: python examples/mechanism_tests.py [OUTDIR]
"""

from _common import output_folder

import yaml

import cimstats
from cimstats.datasets import demo_study
from cimstats.render import render

out = output_folder()
plan = {
    "plan": "navigation-and-collective-efficacy",
    "version": 1,
    "constructs": {
        "ce": {"kind": "scale", "instrument": "ce_personal8", "score": "ce"},
        "sm": {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"},
        "diversity": {"kind": "network", "measure": "n_tie_types"},
        "weak_tie_share": {"kind": "network", "measure": "weak_tie_share"},
    },
    "models": {
        "navigation": {"template": "lmm", "level": "ego", "wave": 0,
                       "formula": "sm ~ diversity + weak_tie_share + country + (1 | practice_id)"},
        "ce_mediation": {"template": "moderated_mediation", "level": "ego", "wave": 0, "x": "diversity",
                         "m": "ce", "y": "sm", "moderator": "area_deprivation", "moderator_values": [1, 2, 3],
                         "covariates": ["country"], "cluster": "practice_id"},
    },
    "hypotheses": [
        {"id": "NAV1", "mechanism": "network_navigation", "model": "navigation", "estimand": "diversity",
         "expected": "positive", "themes": ["T1", "T2"],
         "statement": "Patients with more diverse networks report better self-management."},
        {"id": "NAV2", "mechanism": "network_navigation", "model": "navigation", "estimand": "weak_tie_share",
         "expected": "positive", "themes": ["T2"],
         "statement": "A larger share of weak ties goes with better self-management."},
        {"id": "CE1", "mechanism": "collective_efficacy", "model": "ce_mediation",
         "estimand": "conditional_indirect[area_deprivation=2]", "expected": "positive", "themes": ["T1", "T3"],
         "statement": "Collective efficacy carries part of the effect of diversity on self-management."},
    ],
    "verdict_rules": {"level": 0.95, "alpha": 0.05},
}
(out / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))   # the plan to register before analysis

result = cimstats.test_mechanisms(demo_study(seed=1), out / "plan.yaml", adjust="holm", n_boot=500, seed=1)
print(result.summary())
print(result.table[["hypothesis_id", "estimate", "ci_lower", "ci_upper", "p_adjusted", "verdict"]])

# a stricter reading of the same fits, without refitting: only adjusted p < 0.01 counts
print(result.with_rules({"alpha": 0.01}).table[["hypothesis_id", "verdict", "verdict_reason"]])

result.table.to_csv(out / "mechanisms.csv", index=False)
render(result.to_table_spec(), out / "mechanisms.docx")
print(f"Mechanism table written to {out}")
