# Reference values for the alter-level navigation model of the default mechanism plan (hypothesis NAV3),
# fitted with lme4::glmer on exactly the frame cimstats.test_mechanisms builds from the demo study.
#
# The frame is derived from the demo study, so it is not stored; export it first, from the repository root:
#   PYTHONPATH=src python -c "from cimstats.mechanisms.evaluate import model_frame; \
#     from cimstats import datasets; model_frame(datasets.demo_study(), 'alter_resources').to_csv('nav3.csv', index=False)"
# then:  Rscript tests/reference/mechanisms.R nav3.csv
# Writes tests/reference/mechanisms.json (read by tests/test_mechanisms.py; R is not needed to run the tests).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args)) args[1] else "nav3.csv"
d <- read.csv(path, stringsAsFactors = FALSE, na.strings = c("", "NA"))  # a missing education group is NA
d$tie_type <- factor(d$tie_type)          # reference level: family (first in alphabetical order)
d$country <- factor(d$country)            # reference level: BG
d$education <- factor(d$education)        # broad ISCED group; reference level: high (alphabetical)
f <- illness_work ~ tie_type * deprivation_q + income_q + education + country + (1 | patient_id) + (1 | practice_id)
secs <- system.time(m <- glmer(f, data = d, family = binomial,
                               control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5),
                                                     tolPwrss = 1e-13)))
co <- coef(summary(m))
vc <- as.data.frame(VarCorr(m))
out <- list(
  R = R.version.string, lme4 = as.character(packageVersion("lme4")),
  call = "glmer(illness_work ~ tie_type * deprivation_q + income_q + education + country + (1 | patient_id) + (1 | practice_id), family = binomial, control = glmerControl(optimizer = 'bobyqa', tolPwrss = 1e-13))",
  nobs = nobs(m), loglik = as.numeric(logLik(m)),
  terms = rownames(co), estimate = unname(co[, "Estimate"]), std_error = unname(co[, "Std. Error"]),
  sd_patient = vc$sdcor[vc$grp == "patient_id"], sd_practice = vc$sdcor[vc$grp == "practice_id"],
  converged_messages = paste(m@optinfo$conv$lme4$messages, collapse = "; "),
  elapsed_seconds = unname(secs["elapsed"])
)
write_json(out, file.path("tests", "reference", "mechanisms.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
