# Reference numbers for full-information ML (FIML) with exogenous observed covariates, computed
# with lavaan: covariates fixed (fixed.x = TRUE, lavaan's default: rows with a missing covariate
# are deleted and the model is conditional on the covariates) and random (fixed.x = FALSE: the
# covariates' means, variances and covariances are model parameters and every row is kept),
# ML and MLR, with and without cluster-robust standard errors.
#
# Run from the repository root:  Rscript tests/reference/sem_fiml_x.R
# Writes tests/reference/sem_fiml_x.json and the data sets it draws as
# tests/reference/data/sem_fiml_x_*.csv (so the Python tests need no R).
suppressPackageStartupMessages({
  library(lavaan)
  library(mice)
  library(numDeriv)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
dat_dir <- file.path(out_dir, "data")
dir.create(dat_dir, showWarnings = FALSE, recursive = TRUE)

write_data <- function(df, name) {
  write.csv(df, file.path(dat_dir, paste0("sem_fiml_x_", name, ".csv")), row.names = FALSE, na = "")
}

# Holzinger & Swineford (1939) with missingness at random: x2, x5 and x8 missing with a
# probability that depends on always-observed variables, age (a covariate) missing more often
# for children with higher x7; grade is missing for one child in the original data
set.seed(20261207)
hs <- HolzingerSwineford1939[, c("id", "sex", "ageyr", "agemo", "school", "grade", paste0("x", 1:9))]
hs$school <- as.character(hs$school)
hs$age <- hs$ageyr + hs$agemo / 12
n <- nrow(hs)
hs$x2[runif(n) < plogis(-2 + 0.6 * scale(hs$x1))] <- NA
hs$x5[runif(n) < plogis(-2 + 0.6 * scale(hs$x4))] <- NA
hs$x8[runif(n) < plogis(-2.2 + 0.5 * (hs$sex == 2))] <- NA
hs$age[runif(n) < plogis(-2.5 + 0.7 * scale(hs$x7))] <- NA
write_data(hs, "holzinger")

# Political Democracy (Bollen 1989): industrialisation indicators x1, x2 as covariates of the
# democracy factors; x2 and some democracy indicators missing at random (depending on x3, y1, y5)
set.seed(1989)
pd <- PoliticalDemocracy
n <- nrow(pd)
pd$x2[runif(n) < plogis(-1.8 + 0.8 * scale(pd$x3))] <- NA
pd$y2[runif(n) < plogis(-1.8 + 0.8 * scale(pd$y1))] <- NA
pd$y6[runif(n) < plogis(-1.8 + 0.8 * scale(pd$y5))] <- NA
pd$y7[runif(n) < 0.1] <- NA
write_data(pd, "poldem")

# mice's nhanes (25 people; bmi, hyp and chl incomplete), as distributed
write_data(mice::nhanes, "nhanes")

# mice's popmis (2000 pupils in 100 schools; popularity incomplete) with pupil sex missing at
# random (depending on teacher-rated popularity)
set.seed(2000)
pm <- mice::popmis[, c("pupil", "school", "popular", "sex", "texp", "teachpop")]
pm$sex[runif(nrow(pm)) < plogis(-2 + 0.5 * (pm$teachpop - mean(pm$teachpop)))] <- NA
write_data(pm, "popmis")

hs_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
visual ~ age + grade
textual ~ age
speed ~ grade"

pd_model <- "dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ x1 + x2
dem65 ~ dem60 + x1
y1 ~~ y5
y2 ~~ y6"

nh_model <- "bmi ~ age + hyp
chl ~ bmi + age"

pm_model <- "popular ~ sex + texp
teachpop ~ popular + sex"

# complete data (the original Holzinger & Swineford file of tests/reference/sem.R) with random
# covariates: the covariances among covariates are parameters
hs_complete <- HolzingerSwineford1939
covar_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
visual ~ ageyr
textual ~ sex + visual"

df_of <- function(x) {
  x <- as.data.frame(x)
  for (nm in names(x)) if (is.factor(x[[nm]])) x[[nm]] <- as.character(x[[nm]])
  x
}

# lavaan's EM for the saturated moments stops at a relative change of 1e-5 by default, and its
# optimiser (nlminb) stops within about 1e-4 of a standard error of the optimum along poorly
# conditioned directions (intercepts and slopes of variables regressed on uncentred covariates).
# The references use a tight EM tolerance and finish lavaan's solution with Newton steps on
# lavaan's own analytic gradient (Hessian by numDeriv), then let lavaan compute standard errors
# and fit measures at the polished estimates (optim.method = "none"), so that every number is
# exact to far better than the tests' tolerance.
fit_case <- function(model, data, ...) {
  warn <- character(0)
  fit <- withCallingHandlers(
    sem(model, data = data, em.h1.tol = 1e-10, em.h1.iter.max = 10000L, ...),
    warning = function(w) {
      warn <<- c(warn, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  grad <- function(x) {
    m <- lavaan:::lav_model_set_parameters(fit@Model, x)
    lavaan:::lav_model_gradient(lavmodel = m, lavsamplestats = fit@SampleStats, lavdata = fit@Data,
                                lavcache = fit@Cache)
  }
  x <- lavaan:::lav_model_get_parameters(fit@Model)
  grad_nlminb <- max(abs(grad(x)))
  for (i in 1:4) {
    H <- numDeriv::jacobian(grad, x)
    x <- x - solve((H + t(H)) / 2, grad(x))
  }
  pt <- parTable(fit)
  pt$est[pt$free > 0] <- x
  fit <- suppressWarnings(sem(model, data = data, em.h1.tol = 1e-10, em.h1.iter.max = 10000L,
                              start = pt, optim.method = "none", ...))
  stopifnot(lavInspect(fit, "converged"))
  list(
    partable = df_of(parameterEstimates(fit, remove.nonfree = FALSE, standardized = TRUE)[
      , intersect(c("lhs", "op", "rhs", "group", "est", "se", "std.lv", "std.all"),
                  names(parameterEstimates(fit, standardized = TRUE)))]),
    mi = df_of(modindices(fit, sort. = FALSE)),
    r2 = as.list(unlist(lavInspect(fit, "r2"))),
    fit = as.list(fitMeasures(fit)),
    nobs = lavInspect(fit, "nobs"),
    norig = lavInspect(fit, "norig"),
    npar = lavInspect(fit, "npar"),
    max_gradient_nlminb = grad_nlminb,
    max_gradient = max(abs(grad(x))),
    warnings = warn,
    options = lavInspect(fit, "options")[c("estimator", "information", "se", "test", "missing", "fixed.x")]
  )
}

specs <- list(
  hs_ml_fixed = list(model = hs_model, data = "holzinger", d = hs, estimator = "ML", fixed_x = TRUE),
  hs_mlr_fixed = list(model = hs_model, data = "holzinger", d = hs, estimator = "MLR", fixed_x = TRUE),
  hs_ml_random = list(model = hs_model, data = "holzinger", d = hs, estimator = "ML", fixed_x = FALSE),
  hs_mlr_random = list(model = hs_model, data = "holzinger", d = hs, estimator = "MLR", fixed_x = FALSE),
  hs_mlr_fixed_school = list(model = hs_model, data = "holzinger", d = hs, estimator = "MLR", fixed_x = TRUE,
                             group = "school"),
  poldem_mlr_fixed = list(model = pd_model, data = "poldem", d = pd, estimator = "MLR", fixed_x = TRUE),
  poldem_mlr_random = list(model = pd_model, data = "poldem", d = pd, estimator = "MLR", fixed_x = FALSE),
  nhanes_ml_fixed = list(model = nh_model, data = "nhanes", d = mice::nhanes, estimator = "ML", fixed_x = TRUE),
  nhanes_ml_random = list(model = nh_model, data = "nhanes", d = mice::nhanes, estimator = "ML", fixed_x = FALSE),
  popmis_mlr_fixed_cluster = list(model = pm_model, data = "popmis", d = pm, estimator = "MLR", fixed_x = TRUE,
                                  cluster = "school"),
  popmis_mlr_random_cluster = list(model = pm_model, data = "popmis", d = pm, estimator = "MLR", fixed_x = FALSE,
                                   cluster = "school")
)

cases <- list()
for (nm in names(specs)) {
  s <- specs[[nm]]
  args <- list(model = s$model, data = s$d, estimator = s$estimator, missing = "ml", fixed.x = s$fixed_x)
  call <- list(estimator = s$estimator, missing = "fiml", fixed_x = s$fixed_x)
  if (!is.null(s$group)) { args$group <- s$group; call$group <- s$group }
  if (!is.null(s$cluster)) { args$cluster <- s$cluster; call$cluster <- s$cluster }
  res <- do.call(fit_case, args)
  cases[[nm]] <- c(list(model = s$model, data = s$data, call = call), res)
}
# complete data, listwise, random covariates
cases$hs_complete_mlr_random <- c(
  list(model = covar_model, data = "holzinger_complete",
       call = list(estimator = "MLR", missing = "listwise", fixed_x = FALSE)),
  fit_case(covar_model, hs_complete, estimator = "MLR", fixed.x = FALSE))
hs_complete$school <- as.character(hs_complete$school)
write_data(hs_complete, "holzinger_complete")

res <- list(
  versions = list(R = R.version.string,
                  lavaan = as.character(packageVersion("lavaan")),
                  mice = as.character(packageVersion("mice")),
                  numDeriv = as.character(packageVersion("numDeriv")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  cases = cases
)
write_json(res, file.path(out_dir, "sem_fiml_x.json"), digits = NA, auto_unbox = TRUE, na = "null",
           pretty = FALSE)
cat("wrote", file.path(out_dir, "sem_fiml_x.json"), "\n")
