# Reference values for simulation-based power and the parametric bootstrap of mixed models.
#
# Run with:  Rscript tests/reference/power.R  (or via tests/reference/make_refs.R power).
# Writes power.json next to this script. Power: for each design, 1,000 data sets are drawn in R,
# the model is fitted with lme4 (Satterthwaite t-tests from lmerTest for linear models, Wald z for
# glmer) and the share of p < 0.05 is recorded. The designs are those of cimstats.power's
# two_level template (outcome variance 1, intra-cluster correlation icc). Bootstrap: bootMer's
# parametric bootstrap of the sleepstudy random-slope model (fixed effects, random-effect SDs,
# correlation, residual SD). Needs lme4, lmerTest, jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

out_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  src <- if (length(arg) == 1) sub("^--file=", "", arg) else
    tryCatch(sys.frame(1)$ofile, error = function(e) NULL)
  if (is.null(src) || !nzchar(src)) file.path("tests", "reference") else dirname(normalizePath(src))
})

set.seed(20261207)
nsim <- 1000

sim_two_level <- function(J, m, icc, effect, level, binary_exposure, outcome, prevalence) {
  g <- rep(seq_len(J), each = m)
  n <- J * m
  if (level == 2) {
    if (binary_exposure) { arm <- numeric(J); arm[sample(J, J %/% 2)] <- 1 } else arm <- rnorm(J)
    x <- arm[g]
  } else {
    if (binary_exposure) { x <- numeric(n); x[sample(n, n %/% 2)] <- 1 } else x <- rnorm(n)
  }
  if (outcome == "binary") {
    tau2 <- icc / (1 - icc) * pi^2 / 3
    eta <- qlogis(prevalence) + effect * x + rnorm(J, 0, sqrt(tau2))[g]
    y <- rbinom(n, 1, plogis(eta))
  } else {
    y <- effect * x + rnorm(J, 0, sqrt(icc))[g] + rnorm(n, 0, sqrt(1 - icc))
  }
  data.frame(cluster = factor(g), x = x, y = y)
}

designs <- list(
  list(name = "cluster_arm", J = 20, m = 10, icc = 0.1, effect = 0.5, level = 2, binary_exposure = TRUE,
       outcome = "continuous", prevalence = 0.2),
  list(name = "member_exposure", J = 15, m = 6, icc = 0.2, effect = 0.25, level = 1, binary_exposure = FALSE,
       outcome = "continuous", prevalence = 0.2),
  list(name = "binary_outcome", J = 30, m = 8, icc = 0.15, effect = 0.6, level = 1, binary_exposure = TRUE,
       outcome = "binary", prevalence = 0.3)
)

power_refs <- lapply(designs, function(d) {
  hits <- logical(nsim); ok <- logical(nsim)
  for (i in seq_len(nsim)) {
    dat <- sim_two_level(d$J, d$m, d$icc, d$effect, d$level, d$binary_exposure, d$outcome, d$prevalence)
    p <- tryCatch({
      if (d$outcome == "binary") {
        f <- suppressMessages(suppressWarnings(glmer(y ~ x + (1 | cluster), data = dat, family = binomial)))
        coef(summary(f))["x", "Pr(>|z|)"]
      } else {
        f <- suppressMessages(suppressWarnings(lmerTest::lmer(y ~ x + (1 | cluster), data = dat)))
        coef(summary(f))["x", "Pr(>|t|)"]
      }
    }, error = function(e) NA_real_)
    ok[i] <- is.finite(p); hits[i] <- is.finite(p) && p < 0.05
  }
  c(d, list(power = sum(hits) / sum(ok), n_valid = sum(ok), nsim = nsim))
})

fm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
stat <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  c(fixef(m), vc$sdcor)
}
bm <- bootMer(fm, stat, nsim = nsim, seed = 20261207, type = "parametric")
boot_se <- apply(bm$t, 2, sd, na.rm = TRUE)
write.csv(sleepstudy, gzfile(file.path(out_dir, "data", "sleepstudy.csv.gz")), row.names = FALSE)

out <- list(
  generated_by = "tests/reference/power.R",
  r_version = R.version.string,
  packages = list(lme4 = as.character(packageVersion("lme4")), lmerTest = as.character(packageVersion("lmerTest"))),
  nsim = nsim,
  power = power_refs,
  bootstrap = list(model = "Reaction ~ Days + (Days | Subject)", data = "data/sleepstudy.csv.gz", nsim = nsim,
                   terms = c("(Intercept)", "Days", "sd((Intercept) | Subject)", "sd(Days | Subject)",
                             "cor((Intercept), Days | Subject)", "sd(Residual)"),
                   estimate = unname(stat(fm)), std_error = unname(boot_se))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "power.json"))
