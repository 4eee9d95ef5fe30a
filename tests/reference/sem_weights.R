# Reference numbers for structural equation models with sampling weights, computed with lavaan
# (sampling.weights = ; weights normalised to sum to the number of rows, lavaan's default
# sampling.weights.normalization = "total"; ML estimates on the weighted sample moments,
# Huber-White standard errors and the Yuan-Bentler (Mplus) scaled test, lavaan's defaults
# with sampling weights).
#
# Run from the repository root:  Rscript tests/reference/sem_weights.R
# Reads tests/reference/data/sem_holzinger.csv and sem_politicaldemocracy.csv (written by
# sem.R) and writes tests/reference/sem_weights.json, which also holds the weights used, so the
# Python tests rebuild them exactly without R.
suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
dat_dir <- file.path(out_dir, "data")
hs <- read.csv(file.path(dat_dir, "sem_holzinger.csv"))
pd <- read.csv(file.path(dat_dir, "sem_politicaldemocracy.csv"))

# made-up but deterministic weights: larger in one school, varying with the pupil's id
hs$w <- 1 + 0.5 * (hs$school == "Pasteur") + (hs$id %% 7) / 7
# made-up clusters of ten consecutive pupil ids (for cluster-robust standard errors)
hs$unit <- hs$id %/% 10
# Political Democracy: countries weighted by their position in the data (1 to 2.25)
pd$w <- 1 + ((seq_len(nrow(pd)) - 1) %% 6) / 4

measures <- c("npar", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled",
              "chisq.scaling.factor", "baseline.chisq", "baseline.df", "baseline.chisq.scaled",
              "baseline.chisq.scaling.factor", "cfi", "tli", "cfi.scaled", "tli.scaled",
              "cfi.robust", "tli.robust", "rmsea", "rmsea.scaled", "rmsea.robust", "srmr",
              "logl", "unrestricted.logl", "aic", "bic")

one <- function(fit, data_name, model, args) {
  pe <- parameterEstimates(fit, remove.nonfree = FALSE)
  fm <- fitMeasures(fit, measures)
  list(data = data_name, model = model, args = args,
       nobs = lavInspect(fit, "nobs"),
       options = lavInspect(fit, "options")[c("estimator", "se", "test", "information")],
       estimates = data.frame(lhs = pe$lhs, op = pe$op, rhs = pe$rhs, group = if (is.null(pe$group)) 1L else pe$group,
                              est = pe$est, se = pe$se),
       fit = as.list(fm))
}

hs_cfa <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"
hs_sem <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
textual ~ visual + sex
speed ~ visual + textual"
pd_sem <- "ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
y1 ~~ y5
y2 ~~ y4 + y6
y3 ~~ y7
y4 ~~ y8
y6 ~~ y8"

res <- list()
res$holzinger_cfa <- one(cfa(hs_cfa, data = hs, sampling.weights = "w"), "holzinger", hs_cfa, list())
res$holzinger_sem <- one(sem(hs_sem, data = hs, sampling.weights = "w"), "holzinger", hs_sem, list())
res$poldem_sem <- one(sem(pd_sem, data = pd, sampling.weights = "w"), "poldem", pd_sem, list())
res$holzinger_cfa_group <- one(cfa(hs_cfa, data = hs, sampling.weights = "w", group = "school"),
                               "holzinger", hs_cfa, list(group = "school"))
res$holzinger_cfa_cluster <- one(cfa(hs_cfa, data = hs, sampling.weights = "w", cluster = "unit"),
                                 "holzinger", hs_cfa, list(cluster = "unit"))
# the same model with meanstructure (intercepts estimated on the weighted means)
res$holzinger_cfa_means <- one(cfa(hs_cfa, data = hs, sampling.weights = "w", meanstructure = TRUE),
                               "holzinger", hs_cfa, list(meanstructure = TRUE))

out <- list(
  models = res,
  weights = list(holzinger = hs$w, poldem = pd$w),
  clusters = list(holzinger = hs$unit),
  versions = list(R = R.version.string,
                  lavaan = as.character(packageVersion("lavaan")),
                  jsonlite = as.character(packageVersion("jsonlite")))
)
write_json(out, file.path(out_dir, "sem_weights.json"), digits = NA, auto_unbox = TRUE, na = "null",
           pretty = TRUE)
