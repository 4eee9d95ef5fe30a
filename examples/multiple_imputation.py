"""Multiple imputation: self-efficacy and HbA1c with missing items, patients within GP practices.

Imputes the self-efficacy items (their scale score follows as a passive mean), income, education
and HbA1c by chained equations with practice means in every model, fits a linear mixed model to
each completed data set and pools the estimates with Rubin's rules.
Usage: python examples/multiple_imputation.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats.datasets import demo_study

out = output_folder()
patients = demo_study(seed=1).patients
items = [f"semcd_{k}" for k in range(1, 7)]
data = patients.loc[patients["wave"] == 0,
                    ["patient_id", "practice_id", "age", "sex", "education_isced", "income_equiv",
                     "deprivation_index", *items, "hba1c_mmol"]]

imp = cimstats.impute(
    data, m=10, seed=1, iterations=5,
    cluster="practice_id",                                   # practice means in every conditional model
    method={"patient_id": ""},                               # an identifier: carried, not imputed
    passive={"semcd": ("mean", items)},                      # the scale score, recomputed every sweep
)
print(imp)
print(imp.summary_table.to_string(index=False))

pooled = imp.fit(cimstats.lmm, "hba1c_mmol ~ semcd + age + sex + (1 | practice_id)")
print(pooled.summary())
print(pooled.wald_test(["semcd", "age"]).to_string(index=False))

# Meng and Rubin's pooled likelihood-ratio test (D3) of the self-efficacy score, single-level OLS models
import statsmodels.formula.api as smf  # noqa: E402


def ols(formula, data):
    return smf.ols(formula, data).fit()


print(imp.likelihood_ratio(ols, "hba1c_mmol ~ semcd + age + sex", "hba1c_mmol ~ age + sex", method="D3")
      .to_string(index=False))

pooled.tidy().to_csv(out / "pooled.csv", index=False)
imp.chains.to_csv(out / "chains.csv", index=False)  # mean and sd per sweep per chain
imp.plot_chains(["income_equiv", "hba1c_mmol", "semcd"]).save(out / "chains.svg")  # convergence plot
pooled.save(out / "pooled-result")
print(f"Pooled estimates written to {out / 'pooled.csv'}, chains to {out / 'chains.csv'}")
