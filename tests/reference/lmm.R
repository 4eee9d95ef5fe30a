# Reference values for cimstats.lmm: linear mixed models fitted with lme4 and lmerTest.
#
# Run with:  Rscript tests/reference/lmm.R  (from any directory; tests/reference/make_refs.R
# runs every reference script). Writes lmm.json next to this script and the datasets
# in data/ beside it that the Python tests read (so the tests pass without R installed).
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
  library(mlmRev)
})

# this script's own directory, whether run with Rscript or source()d, from any working directory
out_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  src <- if (length(arg) == 1) sub("^--file=", "", arg) else
    tryCatch(sys.frame(1)$ofile, error = function(e) NULL)
  if (is.null(src) || !nzchar(src)) file.path("tests", "reference") else dirname(normalizePath(src))
})
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

write_data <- function(df, name) {
  write.csv(df, file.path(data_dir, name), row.names = FALSE, na = "")
  name
}

# ---- datasets ---------------------------------------------------------------
data("sleepstudy", package = "lme4")
data("Penicillin", package = "lme4")
data("Pastes", package = "lme4")
data("Dyestuff", package = "lme4")
data("Exam", package = "mlmRev")

sleep <- data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
                    Subject = as.character(sleepstudy$Subject))
pen <- data.frame(diameter = Penicillin$diameter, plate = as.character(Penicillin$plate),
                  sample = as.character(Penicillin$sample))
pastes <- data.frame(strength = Pastes$strength, batch = as.character(Pastes$batch),
                     cask = as.character(Pastes$cask))
dye <- data.frame(Yield = Dyestuff$Yield, Batch = as.character(Dyestuff$Batch))
exam <- data.frame(school = as.integer(as.character(Exam$school)), normexam = Exam$normexam,
                   standLRT = Exam$standLRT, schavg = Exam$schavg,
                   sex = as.character(Exam$sex), schgend = as.character(Exam$schgend))

# Simulated alters (network members) in egos (patients) in GP practices.
set.seed(20240601)
n_practice <- 40
egos_per <- sample(8:15, n_practice, replace = TRUE)
ego_practice <- rep(seq_len(n_practice), egos_per)
n_ego <- length(ego_practice)
ego_age <- round(rnorm(n_ego, 62, 9))
u_practice <- rnorm(n_practice, 0, sqrt(0.30))
u_ego <- rnorm(n_ego, 0, sqrt(0.50))
alters_per <- sample(2:12, n_ego, replace = TRUE)
alter_ego <- rep(seq_len(n_ego), alters_per)
n_alter <- length(alter_ego)
contact_freq <- sample(1:5, n_alter, replace = TRUE)
coresident <- rbinom(n_alter, 1, 0.2)
tie_type <- sample(c("family", "friend", "weak_tie"), n_alter, replace = TRUE, prob = c(.5, .3, .2))
eff_tie <- c(family = 0, friend = -0.3, weak_tie = -0.8)[tie_type]
support <- 2 + 0.25 * contact_freq + 0.4 * coresident + eff_tie - 0.01 * (ego_age[alter_ego] - 62) +
  u_practice[ego_practice[alter_ego]] + u_ego[alter_ego] + rnorm(n_alter, 0, 1)
alters <- data.frame(practice = sprintf("P%02d", ego_practice[alter_ego]),
                     ego = sprintf("E%04d", alter_ego),
                     support = round(support, 4), contact_freq = contact_freq,
                     coresident = coresident, tie_type = tie_type,
                     ego_age = ego_age[alter_ego])
miss <- sample(n_alter, 25)
alters$contact_freq[miss] <- NA  # rows with a missing predictor are dropped by both tools

files <- list(sleepstudy = write_data(sleep, "sleepstudy.csv"),
              penicillin = write_data(pen, "penicillin.csv"),
              pastes = write_data(pastes, "pastes.csv"),
              dyestuff = write_data(dye, "dyestuff.csv"),
              exam = write_data(exam, "exam.csv"),
              alters = write_data(alters, "alters3.csv"))

# ---- helpers -----------------------------------------------------------------
# Tight optimiser tolerances so the references are the optimum itself rather than
# where the default stopping rule happened to stop (differences of ~1e-4 in theta).
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15,
                                    xtol_rel = 1e-12, maxeval = 1e5))

describe <- function(m, data_file, formula, reml) {
  vc <- as.data.frame(VarCorr(m))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  co <- summary(m)$coefficients  # lmerTest: Satterthwaite df
  re <- as.data.frame(ranef(m, condVar = TRUE))
  ng <- sapply(ranef(m), nrow)
  list(
    data = data_file, formula = formula, reml = reml,
    nobs = nobs(m), ngroups = as.list(ngrps(m)),
    fixef = list(term = rownames(co), estimate = unname(co[, "Estimate"]),
                 std_error = unname(co[, "Std. Error"]), df = unname(co[, "df"]),
                 statistic = unname(co[, "t value"]), p_value = unname(co[, "Pr(>|t|)"])),
    varcorr = list(group = vc$grp, term1 = vc$var1, term2 = vc$var2,
                   vcov = vc$vcov, sdcor = vc$sdcor),
    theta = unname(getME(m, "theta")), sigma = sigma(m),
    loglik = as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m),
    deviance = if (reml) NA else deviance(m),
    reml_criterion = if (reml) unname(REMLcrit(m)) else NA,
    ranef = list(group = as.character(re$grpvar), term = as.character(re$term),
                 level = as.character(re$grp), condval = re$condval, condsd = re$condsd),
    fitted_head = unname(fitted(m))[1:50],
    predict_fixed_head = unname(predict(m, re.form = NA))[1:50]
  )
}

fit_case <- function(formula, data, data_file, reml = TRUE) {
  m <- lmerTest::lmer(as.formula(formula), data = data, REML = reml, control = tight)
  describe(m, data_file, formula, reml)
}

exam$lrt_cm <- ave(exam$standLRT, exam$school)
exam$lrt_cwc <- exam$standLRT - exam$lrt_cm
exam$lrt_gmc <- exam$standLRT - mean(exam$standLRT)

cases <- list(
  sleepstudy_reml = fit_case("Reaction ~ Days + (Days | Subject)", sleep, files$sleepstudy, TRUE),
  sleepstudy_ml = fit_case("Reaction ~ Days + (Days | Subject)", sleep, files$sleepstudy, FALSE),
  sleepstudy_uncorrelated = fit_case("Reaction ~ Days + (Days || Subject)", sleep, files$sleepstudy, TRUE),
  sleepstudy_slope_only = fit_case("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep, files$sleepstudy, TRUE),
  penicillin = fit_case("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, files$penicillin, TRUE),
  pastes = fit_case("strength ~ 1 + (1 | batch/cask)", pastes, files$pastes, TRUE),
  pastes_colon = fit_case("strength ~ 1 + (1 | batch) + (1 | batch:cask)", pastes, files$pastes, TRUE),
  dyestuff = fit_case("Yield ~ 1 + (1 | Batch)", dye, files$dyestuff, TRUE),
  dyestuff_ml = fit_case("Yield ~ 1 + (1 | Batch)", dye, files$dyestuff, FALSE),
  exam_crosslevel = fit_case("normexam ~ standLRT * schavg + sex + schgend + (standLRT | school)",
                             exam, files$exam, TRUE),
  alters3 = fit_case("support ~ contact_freq + coresident + tie_type + ego_age + (1 | practice/ego)",
                     alters, files$alters, TRUE),
  alters3_slopes = fit_case("support ~ contact_freq + coresident + (1 | ego) + (contact_freq | practice)",
                            alters, files$alters, TRUE),
  alters3_ml = fit_case("support ~ contact_freq + coresident + tie_type + ego_age + (1 | practice/ego)",
                        alters, files$alters, FALSE)
)
# centring helpers: the Python formula computes these columns itself
m_c <- lmerTest::lmer(normexam ~ lrt_cwc * lrt_cm + (lrt_cwc | school), data = exam, control = tight)
cases$exam_centred <- describe(m_c, files$exam,
  "normexam ~ cwc(standLRT, school) * clustermean(standLRT, school) + (cwc(standLRT, school) | school)",
  TRUE)
m_g <- lmerTest::lmer(normexam ~ lrt_gmc * sex + (1 | school), data = exam, control = tight)
cases$exam_grandmean <- describe(m_g, files$exam, "normexam ~ gmc(standLRT) * sex + (1 | school)", TRUE)

# ---- joint F-tests of multi-column terms (lmerTest::contest, Satterthwaite) ----
term_test <- function(formula, data, prefix) {
  m <- lmerTest::lmer(as.formula(formula), data = data, control = tight)
  nm <- names(fixef(m))
  L <- diag(length(nm))[startsWith(nm, prefix), , drop = FALSE]
  r <- contest(m, L, joint = TRUE)
  list(formula = formula, term = prefix, statistic = r[["F value"]],
       numdf = r[["NumDF"]], dendf = r[["DenDF"]], p_value = r[["Pr(>F)"]])
}
fterms <- list(
  alters3_tie_type = c(data = files$alters, term_test(cases$alters3$formula, alters, "tie_type")),
  exam_schgend = c(data = files$exam, term_test(cases$exam_crosslevel$formula, exam, "schgend"))
)

# ---- profile-likelihood intervals for the standard deviations (lme4::confint) --------
prof_ci <- function(formula, data, reml = TRUE) {
  m <- lme4::lmer(as.formula(formula), data = data, REML = reml, control = tight)
  ci <- confint(m, method = "profile", oldNames = FALSE, level = 0.95)
  sds <- grepl("^sd_|^sigma$", rownames(ci))
  list(formula = formula, reml = reml, parameter = rownames(ci)[sds],
       ci_lower = unname(ci[sds, 1]), ci_upper = unname(ci[sds, 2]))
}
profiles <- list(
  dyestuff = c(data = files$dyestuff, prof_ci("Yield ~ 1 + (1 | Batch)", dye)),
  penicillin = c(data = files$penicillin, prof_ci("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)),
  sleepstudy_ml = c(data = files$sleepstudy, prof_ci("Reaction ~ Days + (1 | Subject)", sleep, FALSE))
)

# ---- likelihood-ratio tests (anova refits REML fits with ML) -------------------
lrt <- function(f0, f1, data) {
  m0 <- lme4::lmer(as.formula(f0), data = data, control = tight)
  m1 <- lme4::lmer(as.formula(f1), data = data, control = tight)
  a <- anova(m0, m1)
  list(formula0 = f0, formula1 = f1, npar = a$npar, aic = a$AIC, bic = a$BIC,
       loglik = a$logLik, deviance = a$deviance, chisq = a$Chisq[2], df = a$Df[2],
       p_value = a[["Pr(>Chisq)"]][2])
}
anovas <- list(
  sleepstudy = c(data = files$sleepstudy, lrt("Reaction ~ Days + (1 | Subject)",
                                              "Reaction ~ Days + (Days | Subject)", sleep)),
  alters3 = c(data = files$alters,
              lrt("support ~ contact_freq + coresident + ego_age + (1 | practice/ego)",
                  "support ~ contact_freq + coresident + tie_type + ego_age + (1 | practice/ego)",
                  alters[complete.cases(alters), ]))
)

ref <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  mlmRev = as.character(packageVersion("mlmRev"))),
  cases = cases, anova = anovas, term_tests = fterms,
  profile_ci = profiles
)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path(out_dir, "lmm.json"))
cat("wrote", file.path(out_dir, "lmm.json"), "\n")
