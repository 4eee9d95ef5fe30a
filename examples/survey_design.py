"""Design-based estimates: the six-country baseline sample weighted to each country's population.

Patients were recruited within GP practices (clusters) in six countries (strata), the same number
per country whatever the country's size; sampling weights make each country count in proportion
to its population. describe() gives weighted means, proportions, totals and quantiles, and glm()
a survey-weighted logistic model, all with Taylor-linearised (design-based) standard errors.
Usage: python examples/survey_design.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats.datasets import demo_study
from cimstats.render import render

out = output_folder()
study = demo_study(seed=1)
patients = study.patients.loc[study.patients["wave"] == 0].copy()

# adults with type 2 diabetes per country (illustrative round numbers), spread over the patients sampled there
population = {"EN": 3_600_000, "NL": 1_100_000, "NO": 250_000, "ES": 4_200_000, "GR": 900_000, "BG": 500_000}
sampled = patients["country"].value_counts()
patients["weight"] = [population[c] / sampled[c] for c in patients["country"]]
# HbA1c at or above 58 mmol/mol (7.5%): poorly controlled; missing where HbA1c is missing
patients["hba1c_high"] = (patients["hba1c_mmol"] >= 58).astype(float).where(patients["hba1c_mmol"].notna())

design = cimstats.SurveyDesign(weights="weight", strata="country", cluster="practice_id")

patients["sex"] = patients["sex"].map({1: "male", 2: "female"})   # text: one proportion per level
estimates = cimstats.describe(patients, ["hba1c_mmol", "age", "sex"], design=design,
                              statistics=("mean", "quantile"))
print(estimates)
estimates.tidy().to_csv(out / "survey_estimates.csv", index=False)
render(estimates.to_table_spec(title="HbA1c, age and sex, weighted to the six countries"), out / "survey_estimates.docx")

# the same estimates by country (domains keep the whole design for the standard errors)
by_country = cimstats.describe(patients, "hba1c_high", by="country", design=design, statistics="mean")
print(by_country.tidy()[["country", "estimate", "std_error", "ci_lower", "ci_upper", "n", "n_missing"]])

fit = cimstats.glm("hba1c_high ~ age + sex + deprivation_q", patients, family="quasibinomial", design=design)
print(fit.summary())
print(fit.tidy(exponentiate=True)[["term", "estimate", "ci_lower", "ci_upper", "p_value"]])  # odds ratios
fit.tidy().to_csv(out / "hba1c_svyglm.csv", index=False)
print(f"Tables written to {out}")
