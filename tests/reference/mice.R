# Reference numbers for pooling multiply imputed data with Rubin's rules (cimstats.Imputations.fit) from mice.
#
# Imputes two data sets with mice and stores the imputations in long form (complete(imp, "long",
# include = TRUE): .imp 0 is the incomplete data) under tests/reference/data/mice/, so that cimstats pools
# models fitted to exactly the same completed data; then records mice::pool for lm and glm fits (estimates,
# standard errors, Barnard-Rubin df, riv, lambda, fmi, ubar, b, dfcom) and the D1 and D2 tests of nested
# models (mice::D1, mice::D2, mice::D3) in tests/reference/mice.json, with the versions used; and mice::pool of lmer fits.
#   nhanes2: mice's own example (25 rows; pmm for bmi and chl, logreg for hyp), m = 5.
#   holzinger: HolzingerSwineford1939 with MCAR holes, pmm, m = 5; pooled SEM fit measures (semTools, D2).
#   popmis:  pupils in schools (mice's example of clustered data); popular imputed by 2l.norm (random
#            intercept for school) with sex and texp as predictors, m = 5.
# Run from the repository root:  Rscript tests/reference/mice.R
suppressPackageStartupMessages({
  library(mice)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference", "data", "mice")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

store <- function(imp, name) {
  long <- complete(imp, "long", include = TRUE)
  write.csv(long, file.path(out_dir, paste0(name, "_long.csv")), row.names = FALSE, na = "")
  # read back what was written, so that R pools exactly the numbers cimstats reads
  back <- read.csv(file.path(out_dir, paste0(name, "_long.csv")))
  for (v in names(imp$data)) if (is.factor(imp$data[[v]])) back[[v]] <- factor(back[[v]], levels = levels(imp$data[[v]]))
  as.mids(back)
}

pooled_table <- function(fit) {
  p <- pool(fit)
  s <- summary(p, conf.int = TRUE)
  list(term = as.character(p$pooled$term), estimate = p$pooled$estimate, std_error = s$std.error,
       statistic = s$statistic, df = p$pooled$df, p_value = s$p.value, ci_lower = s$`2.5 %`,
       ci_upper = s$`97.5 %`, riv = p$pooled$riv, lambda = p$pooled$lambda, fmi = p$pooled$fmi,
       ubar = p$pooled$ubar, b = p$pooled$b, t = p$pooled$t, dfcom = p$pooled$dfcom[1], m = p$m)
}

test_row <- function(x) {
  r <- x$result
  list(statistic = unname(r[1, "F.value"]), df1 = unname(r[1, "df1"]), df2 = unname(r[1, "df2"]),
       p_value = unname(r[1, "P(>F)"]), riv = unname(r[1, "RIV"]))
}

cases <- list()

# ---- nhanes2: pmm, logreg ---------------------------------------------------------------------------
imp <- mice(nhanes2, m = 5, seed = 20240917, printFlag = FALSE)
nh <- store(imp, "nhanes2")
fit_chl <- with(nh, lm(chl ~ age + bmi))
fit_chl0 <- with(nh, lm(chl ~ bmi))
cases$nhanes2_lm_chl <- c(list(data = "nhanes2_long.csv", model = "lm(chl ~ age + bmi)"), pooled_table(fit_chl))
cases$nhanes2_lm_bmi <- c(list(data = "nhanes2_long.csv", model = "lm(bmi ~ hyp + chl)"),
                          pooled_table(with(nh, lm(bmi ~ hyp + chl))))
# glm's standard errors use the working weights of the last-but-one iteration; refitting from the converged
# coefficients puts them at the maximum (so both programs report the covariance at the same point)
fit_glm <- with(nh, {
  f0 <- glm(hyp ~ bmi + chl, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  glm(hyp ~ bmi + chl, family = binomial, start = coef(f0), control = glm.control(epsilon = 1e-14, maxit = 100))
})
cases$nhanes2_glm_hyp <- c(list(data = "nhanes2_long.csv", model = "glm(hyp ~ bmi + chl, binomial)"),
                           pooled_table(fit_glm))
tests <- list(
  nhanes2_d1_age = c(list(data = "nhanes2_long.csv", full = "lm(chl ~ age + bmi)", reduced = "lm(chl ~ bmi)",
                          terms = c("age40-59", "age60-99")), test_row(D1(fit_chl, fit_chl0))),
  nhanes2_d2_age = c(list(data = "nhanes2_long.csv", full = "lm(chl ~ age + bmi)", reduced = "lm(chl ~ bmi)",
                          use = "likelihood"), test_row(D2(fit_chl, fit_chl0, use = "likelihood")))
)

# D3 (Meng and Rubin's pooled likelihood-ratio test): mice refits each model with the pooled coefficients as an
# offset (intercept and scale free) and records the deviances at the own and at the pooled estimates
d3_row <- function(x) {
  r <- x$result  # a plain vector: F, df1, df2, p, riv
  list(statistic = r[1], df1 = r[2], df2 = r[3], p_value = r[4], riv = r[5],
       deviances = lapply(x$deviances, unname))
}
glm_control <- glm.control(epsilon = 1e-14, maxit = 100)
fit_hyp1 <- with(nh, glm(hyp ~ bmi + chl, family = binomial, control = glm_control))
fit_hyp0 <- with(nh, glm(hyp ~ bmi, family = binomial, control = glm_control))
tests$nhanes2_d3_age <- c(list(data = "nhanes2_long.csv", full = "lm(chl ~ age + bmi)", reduced = "lm(chl ~ bmi)"),
                          d3_row(D3(fit_chl, fit_chl0)))
tests$nhanes2_d3_glm_chl <- c(list(data = "nhanes2_long.csv", full = "glm(hyp ~ bmi + chl, binomial)",
                                   reduced = "glm(hyp ~ bmi, binomial)"), d3_row(D3(fit_hyp1, fit_hyp0)))

# ---- popmis: two-level imputation of popularity -----------------------------------------------------
pm <- popmis[, c("pupil", "school", "popular", "sex", "texp")]
pred <- make.predictorMatrix(pm)
pred[, ] <- 0
pred["popular", c("sex", "texp")] <- 1
pred["popular", "school"] <- -2
meth <- make.method(pm)
meth[] <- ""
meth["popular"] <- "2l.norm"
imp2 <- mice(pm, m = 5, seed = 20240918, method = meth, predictorMatrix = pred, maxit = 5, printFlag = FALSE)
pmi <- store(imp2, "popmis")
cases$popmis_lm <- c(list(data = "popmis_long.csv", model = "lm(popular ~ sex + texp)"),
                     pooled_table(with(pmi, lm(popular ~ sex + texp))))
# a linear mixed model fitted to each completed set (lme4, REML; pooled through broom.mixed's tidy and glance,
# whose df.residual, n - fixed effects - variance parameters, is mice's complete-data df)
suppressPackageStartupMessages({ library(lme4); library(broom.mixed) })
cases$popmis_lmer <- c(list(data = "popmis_long.csv", model = "lmer(popular ~ sex + texp + (1 | school))"),
                       pooled_table(with(pmi, lmer(popular ~ sex + texp + (1 | school)))))

fit_pop1 <- with(pmi, lm(popular ~ sex + texp))
fit_pop0 <- with(pmi, lm(popular ~ sex))
tests$popmis_d3_texp <- c(list(data = "popmis_long.csv", full = "lm(popular ~ sex + texp)",
                               reduced = "lm(popular ~ sex)"), d3_row(D3(fit_pop1, fit_pop0)))
# D3 of linear mixed models (ML): mice refits lmer(popular ~ (1 | school)) with the pooled fixed part as offset
fit_lmer1 <- with(pmi, lmer(popular ~ sex + texp + (1 | school), REML = FALSE))
fit_lmer0 <- with(pmi, lmer(popular ~ sex + (1 | school), REML = FALSE))
tests$popmis_d3_lmer_texp <- c(list(data = "popmis_long.csv", full = "lmer(popular ~ sex + texp + (1 | school), ML)",
                                    reduced = "lmer(popular ~ sex + (1 | school), ML)"),
                               d3_row(D3(fit_lmer1, fit_lmer0)))

# ---- HolzingerSwineford1939 CFA with MCAR holes: pooled SEM fit measures (semTools' lavaan.mi) ----------
# the incomplete data are tests/reference/data/sem_holzinger_mcar.csv (made by tests/reference/sem_fiml_x.R);
# imputed by mice (pmm), the three-factor CFA fitted to each completed set by semTools::cfa.mi (lavaan, ML),
# the chi-square pooled by D2 (Li, Meng, Raghunathan and Rubin 1991) and the fit indices computed from it,
# fitMeasures(fit, test = "D2"); parameters pooled with Rubin's rules (scale.W = FALSE; large-sample df)
suppressPackageStartupMessages({ library(lavaan); library(semTools) })
hs_mcar <- read.csv(file.path("tests", "reference", "data", "sem_holzinger_mcar.csv"))[, paste0("x", 1:9)]
imp3 <- mice(hs_mcar, m = 5, seed = 20261207, maxit = 5, printFlag = FALSE)
hsi <- store(imp3, "holzinger")
hs_list <- lapply(seq_len(hsi$m), function(k) complete(hsi, k))
hs_model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
hs_fit <- cfa.mi(hs_model, data = hs_list)
fm <- fitMeasures(hs_fit, test = "D2")
keep <- c("chisq", "df", "pvalue", "ariv", "fmi", "npar", "ntotal", "baseline.chisq", "baseline.df",
          "baseline.pvalue", "cfi", "tli", "rmsea")
hs_pe <- as.data.frame(summary(hs_fit, fmi = TRUE, scale.W = FALSE, output = "data.frame"))  # Rubin's rules
hs_pe <- hs_pe[!is.na(hs_pe$se) & hs_pe$se > 0, ]
sem_cases <- list(holzinger_cfa = list(
  data = "holzinger_long.csv", model = hs_model, test = "D2",
  fit_measures = as.list(unclass(fm)[keep]),
  chisq_per_imputation = sapply(hs_fit@testList, function(x) x$standard$stat),
  baseline_chisq_per_imputation = sapply(hs_fit@baselineList, function(x) x$test$standard$stat),
  parameters = list(lhs = hs_pe$lhs, op = hs_pe$op, rhs = hs_pe$rhs, estimate = hs_pe$est, std_error = hs_pe$se,
                    df = hs_pe$df, fmi = hs_pe$fmi, riv = hs_pe$riv)))

versions <- list(R = R.version.string, mice = as.character(packageVersion("mice")),
                 mitml = as.character(packageVersion("mitml")), broom = as.character(packageVersion("broom")),
                 broom.mixed = as.character(packageVersion("broom.mixed")), lme4 = as.character(packageVersion("lme4")),
                 jsonlite = as.character(packageVersion("jsonlite")),
                 lavaan = as.character(packageVersion("lavaan")), semTools = as.character(packageVersion("semTools")))
write_json(list(versions = versions, seeds = list(nhanes2 = 20240917, popmis = 20240918, holzinger = 20261207),
                cases = cases, tests = tests, sem = sem_cases),
           file.path("tests", "reference", "mice.json"), digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE)
cat("wrote tests/reference/mice.json and", out_dir, "\n")
