# Reference values for cimstats.glmm: generalised linear mixed models fitted with lme4::glmer.
#
# Run from the repository root:  PYTHON=/path/to/python Rscript tests/reference/glmm.R
# (PYTHON: an interpreter with cimstats' dependencies; it writes the demo study's alter table)
# Writes tests/reference/glmm.json and the datasets tests/reference/data/glmm_*.csv
# that the Python tests read (so the tests pass without R installed).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

write_data <- function(df, name) {
  write.csv(df, file.path(data_dir, name), row.names = FALSE, na = "")
  name
}

# ---- datasets ---------------------------------------------------------------
data("cbpp", package = "lme4")
cb <- data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence,
                 size = cbpp$size, period = as.character(cbpp$period))

# Bernoulli outcome: network members (alters) within egos; does the member do illness work?
set.seed(20240611)
n_ego <- 80
size <- sample(3:12, n_ego, replace = TRUE)
ego <- rep(sprintf("E%03d", seq_len(n_ego)), size)
b_ego <- rnorm(n_ego, 0, 0.9)
kin <- rbinom(length(ego), 1, 0.45)
contact <- round(rnorm(length(ego)), 3)
eta <- -0.4 + 0.8 * kin + 0.5 * contact + rep(b_ego, size)
illness_work <- rbinom(length(ego), 1, plogis(eta))
bern <- data.frame(illness_work = illness_work, kin = kin, contact = contact, ego = ego)

# Poisson counts with exposure: number of weak ties per practice-month of follow-up.
set.seed(20240612)
n_pr <- 40
m <- sample(4:10, n_pr, replace = TRUE)
practice <- rep(sprintf("P%02d", seq_len(n_pr)), m)
b_pr <- rnorm(n_pr, 0, 0.5)
deprived <- rbinom(length(practice), 1, 0.5)
months <- round(runif(length(practice), 2, 24), 1)
mu <- months * exp(-1.2 - 0.3 * deprived + rep(b_pr, m))
weak_ties <- rpois(length(practice), mu)
pois <- data.frame(weak_ties = weak_ties, deprived = deprived, months = months, practice = practice)

# The demo study's alter table at baseline (cimstats.datasets, default seed), with each
# patient's practice and area deprivation: network members within egos within practices.
# The CSV is written by cimstats itself (run from the repository root with Python available);
# dep_c = 2 - area_deprivation (1 = most deprived area, -1 = least deprived).
py <- paste(
  "import pandas as pd",
  "from cimstats.datasets import demo_study",
  "s = demo_study()",
  "a = s.alters.loc[s.alters['wave'] == 0, ['patient_id', 'tie_type', 'illness_work']]",
  "p = s.patients.loc[s.patients['wave'] == 0, ['patient_id', 'practice_id', 'area_deprivation']]",
  "d = a.merge(p, on='patient_id', how='left', validate='many_to_one')",
  "d['dep_c'] = 2 - d['area_deprivation']",
  "d[['illness_work', 'tie_type', 'dep_c', 'patient_id', 'practice_id']].to_csv(",
  "    'tests/reference/data/glmm_demo_alters.csv', index=False)",
  sep = "\n")
# (R's LD_LIBRARY_PATH is cleared so that Python loads its own shared library)
status <- system2(Sys.getenv("PYTHON", "python3"), c("-c", shQuote(py)),
                  env = c("LD_LIBRARY_PATH=", paste0("PYTHONPATH=", file.path(getwd(), "src"))))
if (status != 0) stop("could not write the demo alter table with cimstats")
demo <- read.csv(file.path(data_dir, "glmm_demo_alters.csv"), stringsAsFactors = FALSE)

# ---- fits -------------------------------------------------------------------
# glmer's inner PIRLS loop stops by default when the penalised deviance changes by less than
# 1e-7 relative, one step before the conditional modes settle, and its Laplace deviance then
# uses the working weights of that earlier iterate. The references converge the inner loop
# tightly (tolPwrss = 1e-13), so they are the Laplace optimum itself; the same four Laplace
# fits with glmer's default control are kept under "glmer_default" to show the difference a
# user comparing with a default glmer run will see.
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
ctrl_default <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
summ <- function(fit, dataset, formula, family, link, nagq) {
  vc <- as.data.frame(VarCorr(fit))
  re <- ranef(fit, condVar = TRUE)
  g <- names(re)[1]
  list(
    dataset = dataset, formula = formula, family = family, link = link, nagq = nagq,
    fixef = as.list(fixef(fit)),
    se = as.list(setNames(sqrt(diag(as.matrix(vcov(fit)))), names(fixef(fit)))),
    theta = unname(getME(fit, "theta")),
    variance = vc$vcov[1], sd = vc$sdcor[1],
    variances = as.list(setNames(vc$vcov[is.na(vc$var2)], vc$grp[is.na(vc$var2)])),
    loglik = as.numeric(logLik(fit)), deviance = deviance(fit),
    aic = AIC(fit), bic = BIC(fit), nobs = nobs(fit),
    ranef = list(level = rownames(re[[g]]), condval = re[[g]][, 1],
                 condsd = sqrt(as.numeric(attr(re[[g]], "postVar")))),
    fitted_response = unname(fitted(fit)),
    predict_link_fixed = unname(predict(fit, re.form = NA, type = "link"))
  )
}

cases <- list()
f1 <- cbind(incidence, size - incidence) ~ period + (1 | herd)
cases$cbpp_laplace <- summ(glmer(f1, data = cb, family = binomial, control = ctrl),
                           "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                           "binomial", "logit", 1)
cases$cbpp_agq10 <- summ(glmer(f1, data = cb, family = binomial, nAGQ = 10, control = ctrl),
                         "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                         "binomial", "logit", 10)
f2 <- illness_work ~ kin + contact + (1 | ego)
cases$bernoulli_laplace <- summ(glmer(f2, data = bern, family = binomial, control = ctrl),
                                "glmm_bernoulli.csv", "illness_work ~ kin + contact + (1 | ego)",
                                "binomial", "logit", 1)
cases$bernoulli_agq10 <- summ(glmer(f2, data = bern, family = binomial, nAGQ = 10, control = ctrl),
                              "glmm_bernoulli.csv", "illness_work ~ kin + contact + (1 | ego)",
                              "binomial", "logit", 10)
cases$bernoulli_probit <- summ(glmer(f2, data = bern, family = binomial(link = "probit"), control = ctrl),
                               "glmm_bernoulli.csv", "illness_work ~ kin + contact + (1 | ego)",
                               "binomial", "probit", 1)
f3 <- weak_ties ~ deprived + offset(log(months)) + (1 | practice)
cases$poisson_offset <- summ(glmer(f3, data = pois, family = poisson, control = ctrl),
                             "glmm_poisson.csv", "weak_ties ~ deprived + offset(log(months)) + (1 | practice)",
                             "poisson", "log", 1)

f4 <- illness_work ~ tie_type * dep_c + (1 | patient_id) + (1 | practice_id)
cases$demo_alters <- summ(glmer(f4, data = demo, family = binomial, control = ctrl),
                          "glmm_demo_alters.csv",
                          "illness_work ~ tie_type * dep_c + (1 | patient_id) + (1 | practice_id)",
                          "binomial", "logit", 1)

# the Laplace fits again with glmer's default inner tolerance
defaults <- list()
defaults$cbpp_laplace <- summ(glmer(f1, data = cb, family = binomial, control = ctrl_default),
                              "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                              "binomial", "logit", 1)
defaults$bernoulli_laplace <- summ(glmer(f2, data = bern, family = binomial, control = ctrl_default),
                                   "glmm_bernoulli.csv", "illness_work ~ kin + contact + (1 | ego)",
                                   "binomial", "logit", 1)
defaults$bernoulli_probit <- summ(glmer(f2, data = bern, family = binomial(link = "probit"),
                                        control = ctrl_default),
                                  "glmm_bernoulli.csv", "illness_work ~ kin + contact + (1 | ego)",
                                  "binomial", "probit", 1)
defaults$poisson_offset <- summ(glmer(f3, data = pois, family = poisson, control = ctrl_default),
                                "glmm_poisson.csv", "weak_ties ~ deprived + offset(log(months)) + (1 | practice)",
                                "poisson", "log", 1)

write_data(cb, "glmm_cbpp.csv")
write_data(bern, "glmm_bernoulli.csv")
write_data(pois, "glmm_poisson.csv")

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")))
write_json(list(versions = versions, cases = cases, glmer_default = defaults), file.path(out_dir, "glmm.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
