# Reference numbers for cimstats' SEM core, computed with lavaan and semTools.
#
# Run from the repository root:  Rscript tests/reference/sem.R
# Writes tests/reference/sem.json and the data sets it uses as
# tests/reference/data/sem_*.csv (so the Python tests need no R).
suppressPackageStartupMessages({
  library(lavaan)
  library(semTools)
  library(psych)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
dat_dir <- file.path(out_dir, "data")
dir.create(dat_dir, showWarnings = FALSE, recursive = TRUE)

write_data <- function(df, name) {
  write.csv(df, file.path(dat_dir, paste0("sem_", name, ".csv")), row.names = FALSE, na = "")
}

hs <- HolzingerSwineford1939
hs$school <- as.character(hs$school)
write_data(hs[, c("id", "sex", "ageyr", "agemo", "school", "grade", paste0("x", 1:9))], "holzinger")
pd <- PoliticalDemocracy
write_data(pd, "politicaldemocracy")

# 12% MCAR missingness, cell by cell, on the nine indicators
set.seed(20231)
hs_miss <- hs[, c("id", "school", paste0("x", 1:9))]
for (v in paste0("x", 1:9)) hs_miss[[v]][runif(nrow(hs_miss)) < 0.12] <- NA
write_data(hs_miss, "holzinger_mcar")

# a mediation data set with clusters (25 practices of 8 patients)
set.seed(7)
n <- 200
cl <- rep(seq_len(25), each = 8)
u <- rnorm(25, sd = 0.5)[cl]
x <- rnorm(n) + u
m <- 0.5 * x + rnorm(n) + 0.3 * u
y <- 0.4 * m + 0.2 * x + rnorm(n) + 0.3 * u
med <- data.frame(practice = cl, x = x, m = m, y = y)
write_data(med, "mediation")

hs_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"

pd_model <- "ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
y1 ~~ y5
y2 ~~ y4 + y6
y3 ~~ y7
y4 ~~ y8
y6 ~~ y8"

med_model <- "m ~ a*x
y ~ b*m + c*x
indirect := a*b
total := c + a*b
prop := a*b / (c + a*b)"

eq_model <- "visual =~ x1 + a*x2 + b*x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
a == b
x1 ~~ start(0.5)*x1"

df_of <- function(x) {
  x <- as.data.frame(x)
  for (nm in names(x)) if (is.factor(x[[nm]])) x[[nm]] <- as.character(x[[nm]])
  x
}

mat_list <- function(m) {
  if (is.list(m) && !is.matrix(m)) return(lapply(m, mat_list))
  m <- unclass(m)
  list(names = rownames(m), values = unname(as.matrix(m)))
}

describe <- function(fit, with_mi = TRUE) {
  res <- list(
    partable = df_of(parameterEstimates(fit, standardized = TRUE, remove.nonfree = FALSE,
                                        remove.system.eq = FALSE, remove.eq = FALSE,
                                        remove.ineq = FALSE, remove.def = FALSE)),
    std = df_of(standardizedSolution(fit, type = "std.all")),
    std_lv = df_of(standardizedSolution(fit, type = "std.lv")),
    fit = as.list(fitMeasures(fit)),
    r2 = as.list(unlist(lavInspect(fit, "r2"))),
    implied = mat_list(lapply(if (lavInspect(fit, "ngroups") > 1) fitted(fit) else list(fitted(fit)),
                              function(z) z$cov)),
    residual = mat_list(lapply(if (lavInspect(fit, "ngroups") > 1) resid(fit, type = "raw") else list(resid(fit, type = "raw")),
                               function(z) z$cov)),
    options = lavInspect(fit, "options")[c("estimator", "information", "se", "test", "missing")],
    npar = lavInspect(fit, "npar"),
    nobs = lavInspect(fit, "nobs")
  )
  if (with_mi) res$mi <- df_of(modindices(fit, sort. = FALSE))
  res
}

cases <- list()
fit <- cfa(hs_model, data = hs)
cases$hs_ml <- c(list(model = hs_model, data = "holzinger", call = list(estimator = "ML")), describe(fit))
fit <- cfa(hs_model, data = hs, std.lv = TRUE)
cases$hs_ml_stdlv <- c(list(model = hs_model, data = "holzinger", call = list(estimator = "ML", std_lv = TRUE)), describe(fit, FALSE))
fit <- cfa(hs_model, data = hs, meanstructure = TRUE)
cases$hs_ml_means <- c(list(model = hs_model, data = "holzinger", call = list(estimator = "ML", meanstructure = TRUE)), describe(fit, FALSE))
fit <- cfa(hs_model, data = hs, estimator = "MLR")
cases$hs_mlr <- c(list(model = hs_model, data = "holzinger", call = list(estimator = "MLR")), describe(fit, FALSE))
fit <- cfa(hs_model, data = hs_miss, missing = "fiml")
cases$hs_fiml <- c(list(model = hs_model, data = "holzinger_mcar", call = list(estimator = "ML", missing = "fiml")), describe(fit))
fit <- cfa(hs_model, data = hs_miss, missing = "fiml", estimator = "MLR")
cases$hs_fiml_mlr <- c(list(model = hs_model, data = "holzinger_mcar", call = list(estimator = "MLR", missing = "fiml")), describe(fit, FALSE))
fit <- cfa(hs_model, data = hs_miss, missing = "fiml", estimator = "MLR", group = "school")
cases$hs_fiml_mlr_school <- c(list(model = hs_model, data = "holzinger_mcar",
                                   call = list(estimator = "MLR", missing = "fiml", group = "school")),
                              describe(fit, FALSE))
# lavaan's EM for the saturated moments stops at a relative change of 1e-5 by default;
# the robust (FIML-corrected) indices are also recorded with a tight EM tolerance
robust_keys <- c("cfi.robust", "tli.robust", "rni.robust", "rmsea.robust", "rmsea.ci.lower.robust",
                 "rmsea.ci.upper.robust", "rmsea.pvalue.robust", "rmsea.notclose.pvalue.robust",
                 "unrestricted.logl")
for (nm in c("hs_fiml", "hs_fiml_mlr", "hs_fiml_mlr_school")) {
  cl <- cases[[nm]]$call
  fit <- cfa(hs_model, data = hs_miss, missing = "fiml", estimator = cl$estimator,
             group = cl$group, em.h1.tol = 1e-10, em.h1.iter.max = 10000L)
  cases[[nm]]$fit_tight_em <- as.list(fitMeasures(fit)[robust_keys])
}
fit <- sem(pd_model, data = pd)
cases$poldem <- c(list(model = pd_model, data = "politicaldemocracy", call = list(estimator = "ML")), describe(fit))
fit <- sem(med_model, data = med)
cases$mediation <- c(list(model = med_model, data = "mediation", call = list(estimator = "ML")), describe(fit, FALSE))
fit <- sem(med_model, data = med, estimator = "MLR", cluster = "practice")
cases$mediation_cluster <- c(list(model = med_model, data = "mediation", call = list(estimator = "MLR", cluster = "practice")), describe(fit, FALSE))
fit <- cfa(eq_model, data = hs)
cases$hs_eq <- c(list(model = eq_model, data = "holzinger", call = list(estimator = "ML")), describe(fit, FALSE))

# modification indices with latent regressions and with observed covariates
latreg_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
speed ~ visual"
fit <- sem(latreg_model, data = hs)
cases$hs_latreg <- c(list(model = latreg_model, data = "holzinger", call = list(estimator = "ML")), describe(fit))
covar_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
visual ~ ageyr
textual ~ sex + visual"
fit <- sem(covar_model, data = hs)
cases$hs_covariates <- c(list(model = covar_model, data = "holzinger", call = list(estimator = "ML")), describe(fit))
fit <- sem(latreg_model, data = hs_miss, missing = "fiml")
cases$hs_latreg_fiml <- c(list(model = latreg_model, data = "holzinger_mcar",
                               call = list(estimator = "ML", missing = "fiml")), describe(fit))

# non-linear equality, linear ratio and inequality constraints
nl_model <- "visual =~ x1 + a1*x2 + b1*x3
textual =~ x4 + a2*x5 + b2*x6
speed =~ x7 + x8 + x9
a1*b1 == a2*b2"
fit <- cfa(nl_model, data = hs)
cases$hs_nonlinear_eq <- c(list(model = nl_model, data = "holzinger", call = list(estimator = "ML")),
                           describe(fit, FALSE))
ineq_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + t5*x5 + t6*x6
speed =~ x7 + x8 + x9
t5 < 1
t6 > 0"
fit <- cfa(ineq_model, data = hs)
cases$hs_inequality <- c(list(model = ineq_model, data = "holzinger", call = list(estimator = "ML")),
                         describe(fit, FALSE))
ratio_model <- "ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ b1*ind60
dem65 ~ b2*ind60 + b3*dem60
y1 ~~ y5
b2 == 0.5*b1
b3 + b2 < 1"
fit <- sem(ratio_model, data = pd)
cases$poldem_ratio <- c(list(model = ratio_model, data = "politicaldemocracy", call = list(estimator = "ML")),
                        describe(fit, FALSE))
mednl_model <- "m ~ a*x
y ~ b*m + c*x
indirect := a*b
a*b == 2*c"
fit <- sem(mednl_model, data = med, estimator = "MLR")
cases$mediation_nonlinear_mlr <- c(list(model = mednl_model, data = "mediation", call = list(estimator = "MLR")),
                                   describe(fit, FALSE))

# multigroup and invariance by school
inv <- list()
for (est in c("ML", "MLR")) {
  fits <- list(
    configural = cfa(hs_model, data = hs, group = "school", estimator = est),
    metric = cfa(hs_model, data = hs, group = "school", estimator = est, group.equal = "loadings"),
    scalar = cfa(hs_model, data = hs, group = "school", estimator = est, group.equal = c("loadings", "intercepts")),
    strict = cfa(hs_model, data = hs, group = "school", estimator = est,
                 group.equal = c("loadings", "intercepts", "residuals"))
  )
  lrt <- lavTestLRT(fits$configural, fits$metric, fits$scalar, fits$strict)
  lrt <- data.frame(model = rownames(lrt), as.data.frame(lrt), check.names = TRUE)
  inv[[est]] <- list(
    lrt = lrt,
    fits = lapply(fits, function(f) as.list(fitMeasures(f))),
    partables = lapply(fits, function(f) df_of(parameterEstimates(f, standardized = TRUE)))
  )
}
fit <- cfa(hs_model, data = hs, group = "school", group.equal = c("loadings", "intercepts"),
           group.partial = c("visual =~ x2", "x7 ~ 1"))
cases$hs_partial <- c(list(model = hs_model, data = "holzinger",
                           call = list(estimator = "ML", group = "school",
                                       group_equal = c("loadings", "intercepts"),
                                       group_partial = c("visual =~ x2", "x7 ~ 1"))),
                      describe(fit, FALSE))
gl_model <- "visual =~ x1 + c(v2a, v2b)*x2 + c(v3, v3)*x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"
fit <- cfa(gl_model, data = hs, group = "school")
cases$hs_grouplabels <- c(list(model = gl_model, data = "holzinger",
                               call = list(estimator = "ML", group = "school")), describe(fit))

# six groups with eight items each: the collective-efficacy items of the demo study drawn with
# seed 2 (written by cimstats.datasets; in one country the items relate only weakly), and the
# same data with the marker item and one other item reverse-scored in two countries
ce6 <- read.csv(file.path(dat_dir, "sem_ce_six_countries.csv"))
ce_model <- paste("CE_F =~", paste0("ce_", 1:8, collapse = " + "))
fit <- cfa(ce_model, data = ce6, group = "country")
cases$ce_six_countries <- c(list(model = ce_model, data = "ce_six_countries",
                                 call = list(estimator = "ML", group = "country")), describe(fit, FALSE))
ce6r <- ce6
flip <- ce6r$country %in% c("GR", "BG")
ce6r$ce_1[flip] <- 6 - ce6r$ce_1[flip]
ce6r$ce_5[flip] <- 6 - ce6r$ce_5[flip]
write_data(ce6r, "ce_reversed_marker")
fit <- cfa(ce_model, data = ce6r, group = "country")
cases$ce_reversed_marker <- c(list(model = ce_model, data = "ce_reversed_marker",
                                   call = list(estimator = "ML", group = "country")), describe(fit, FALSE))

# omega from a one-factor CFA: semTools::compRelSEM, a defined parameter in lavaan, psych::omega
items <- read.csv(file.path(out_dir, "measures_items.csv"), na.strings = "NA")
q5 <- items[, paste0("q", 1:5)]
om_model <- "f =~ l1*q1 + l2*q2 + l3*q3 + l4*q4 + l5*q5
q1 ~~ e1*q1
q2 ~~ e2*q2
q3 ~~ e3*q3
q4 ~~ e4*q4
q5 ~~ e5*q5
omega := (l1 + l2 + l3 + l4 + l5)^2 / ((l1 + l2 + l3 + l4 + l5)^2 + e1 + e2 + e3 + e4 + e5)"
omega_case <- function(dat, missing, std = FALSE) {
  if (std) dat <- as.data.frame(lapply(dat, function(v) (v - mean(v)) / sqrt(mean((v - mean(v))^2))))
  fit <- cfa(om_model, data = dat, std.lv = TRUE, missing = missing)
  pe <- parameterEstimates(fit)
  om <- pe[pe$op == ":=", ]
  res <- list(missing = missing, standardized = std, nobs = lavInspect(fit, "nobs"),
              omega_model = unname(compRelSEM(fit, obs.var = FALSE)),
              omega_observed = unname(compRelSEM(fit)),
              omega_defined = om$est, omega_se = om$se, omega_ci = c(om$ci.lower, om$ci.upper),
              loadings = pe$est[pe$op == "=~"], residuals = pe$est[pe$op == "~~" & pe$lhs == pe$rhs][1:5])
  if (std && missing == "listwise") {
    o <- psych::omega(dat, nfactors = 1, fm = "ml", plot = FALSE)
    res$psych_omega_tot <- o$omega.tot
    res$psych_omega_h <- o$omega_h
  }
  res
}
cc5 <- q5[complete.cases(q5), ]
omega_ref <- list(
  complete = omega_case(cc5, "listwise"),
  complete_std = suppressWarnings(suppressMessages(omega_case(cc5, "listwise", std = TRUE))),
  fiml = omega_case(q5, "ml")
)

res <- list(
  versions = list(R = R.version.string,
                  lavaan = as.character(packageVersion("lavaan")),
                  semTools = as.character(packageVersion("semTools")),
                  psych = as.character(packageVersion("psych")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  cases = cases,
  invariance = inv,
  omega = omega_ref
)
write_json(res, file.path(out_dir, "sem.json"), digits = NA, auto_unbox = TRUE, na = "null",
           pretty = FALSE)
cat("wrote", file.path(out_dir, "sem.json"), "\n")
