# Reference values for the parametric-bootstrap likelihood-ratio test of nested linear mixed models.
#
# Run with:  Rscript tests/reference/bootstrap_lrt.R  (or via tests/reference/make_refs.R bootstrap_lrt).
# Writes bootstrap_lrt.json next to this script. For each pair of models on lme4's sleepstudy data
# (written by power.R to data/sleepstudy.csv.gz): the observed likelihood-ratio statistic of the
# maximum-likelihood fits (deterministic) and pbkrtest's PBmodcomp parametric-bootstrap p-value
# (Monte Carlo, nsim simulations under the null model). Needs lme4, pbkrtest, jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(pbkrtest)
  library(jsonlite)
})

out_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  src <- if (length(arg) == 1) sub("^--file=", "", arg) else
    tryCatch(sys.frame(1)$ofile, error = function(e) NULL)
  if (is.null(src) || !nzchar(src)) file.path("tests", "reference") else dirname(normalizePath(src))
})

nsim <- 1000
pairs <- list(
  list(name = "correlation", null = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
       alternative = "Reaction ~ Days + (Days | Subject)"),
  list(name = "slope_variance", null = "Reaction ~ Days + (1 | Subject)",
       alternative = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)")
)
res <- lapply(pairs, function(p) {
  m0 <- lmer(as.formula(p$null), sleepstudy, REML = FALSE)
  m1 <- lmer(as.formula(p$alternative), sleepstudy, REML = FALSE)
  lrt <- as.numeric(2 * (logLik(m1) - logLik(m0)))
  set.seed(20261207)
  pb <- PBmodcomp(m1, m0, nsim = nsim)
  c(p, list(lrt = lrt, df = attr(logLik(m1), "df") - attr(logLik(m0), "df"),
            p_bootstrap = pb$test["PBtest", "p.value"], p_chisq = pb$test["LRT", "p.value"], nsim = nsim))
})
out <- list(generated_by = "tests/reference/bootstrap_lrt.R", r_version = R.version.string,
            packages = list(lme4 = as.character(packageVersion("lme4")),
                            pbkrtest = as.character(packageVersion("pbkrtest"))),
            data = "data/sleepstudy.csv.gz", tests = res)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "bootstrap_lrt.json"))
