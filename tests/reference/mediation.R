# Reference numbers for cimstats.mediation from lavaan (ML, bootstrap standard errors and intervals).
#
# Writes tests/reference/data/mediation_paths.csv (the data, generated here with a fixed seed and
# rounded to 6 decimals so that both programs read identical values) and
# tests/reference/mediation.json (estimates, bootstrap SEs and intervals per case, plus versions).
# Run from the repository root:  Rscript tests/reference/mediation.R
suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

set.seed(20240611)
n <- 400
z <- round(rnorm(n), 6)                          # a confounder
w <- round(runif(n, 1, 5), 6)                    # a moderator (deprivation-like score)
x <- round(0.3 * z + rnorm(n), 6)                # exposure
m1 <- round(0.2 + 0.15 * x + 0.12 * x * w + 0.2 * z + 0.2 * w + rnorm(n), 6)
m2 <- round(0.4 * x + 0.3 * m1 + rnorm(n), 6)
y <- round(0.1 * x + 0.35 * m1 + 0.25 * m2 + 0.08 * m1 * w + 0.2 * z + rnorm(n), 6)
d <- data.frame(x, m1, m2, y, z, w)
dir.create("tests/reference/data", showWarnings = FALSE, recursive = TRUE)
write.csv(d, "tests/reference/data/mediation_paths.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/mediation_paths.csv")
d$xw <- d$x * d$w
d$m1w <- d$m1 * d$w

wv <- mean(d$w) + c(-1, 0, 1) * sd(d$w)
fmt <- function(v) sprintf("%.17g", v)

B <- 2000
cases <- list(
  single = list(
    model = "m1 ~ a*x + z
             y ~ cp*x + b*m1 + z
             indirect := a*b
             direct := cp
             total := cp + a*b",
    args = list(x = "x", m = "m1", y = "y", covariates = "z")),
  parallel = list(
    model = "m1 ~ a1*x + z
             m2 ~ a2*x + z
             m1 ~~ m2
             y ~ cp*x + b1*m1 + b2*m2 + z
             ind1 := a1*b1
             ind2 := a2*b2
             total_indirect := a1*b1 + a2*b2
             total := cp + a1*b1 + a2*b2",
    args = list(x = "x", m = c("m1", "m2"), y = "y", covariates = "z")),
  serial = list(
    model = "m1 ~ a1*x + z
             m2 ~ a2*x + d21*m1 + z
             y ~ cp*x + b1*m1 + b2*m2 + z
             ind1 := a1*b1
             ind2 := a2*b2
             ind12 := a1*d21*b2
             total_indirect := a1*b1 + a2*b2 + a1*d21*b2
             total := cp + a1*b1 + a2*b2 + a1*d21*b2",
    args = list(x = "x", m = c("m1", "m2"), y = "y", covariates = "z", serial = TRUE)),
  first_stage = list(
    model = sprintf("m1 ~ a1*x + a2*w + a3*xw + z
             y ~ cp*x + b1*m1 + z
             index := a3*b1
             cond_lo := (a1 + a3*%s)*b1
             cond_mid := (a1 + a3*%s)*b1
             cond_hi := (a1 + a3*%s)*b1", fmt(wv[1]), fmt(wv[2]), fmt(wv[3])),
    args = list(x = "x", m = "m1", y = "y", covariates = "z", moderator = "w", moderated_paths = "a")),
  second_stage = list(
    model = sprintf("m1 ~ a1*x + z
             y ~ cp*x + b1*m1 + b2*w + b3*m1w + z
             index := a1*b3
             cond_lo := a1*(b1 + b3*%s)
             cond_mid := a1*(b1 + b3*%s)
             cond_hi := a1*(b1 + b3*%s)", fmt(wv[1]), fmt(wv[2]), fmt(wv[3])),
    args = list(x = "x", m = "m1", y = "y", covariates = "z", moderator = "w", moderated_paths = "b"))
)

out <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  set.seed(1)
  t0 <- proc.time()[["elapsed"]]
  fit <- sem(cs$model, data = d, se = "bootstrap", bootstrap = B, fixed.x = TRUE)
  secs <- proc.time()[["elapsed"]] - t0
  perc <- parameterEstimates(fit, boot.ci.type = "perc", level = 0.95)
  bc <- parameterEstimates(fit, boot.ci.type = "bca.simple", level = 0.95)
  keep <- perc$label != ""
  out[[nm]] <- list(
    args = cs$args,
    n_boot = B,
    seconds = secs,
    params = data.frame(label = perc$label[keep], op = perc$op[keep], lhs = perc$lhs[keep],
                        rhs = perc$rhs[keep], est = perc$est[keep], se = perc$se[keep],
                        perc_lower = perc$ci.lower[keep], perc_upper = perc$ci.upper[keep],
                        bc_lower = bc$ci.lower[keep], bc_upper = bc$ci.upper[keep])
  )
}

res <- list(
  generated_by = "tests/reference/mediation.R",
  r_version = R.version.string,
  lavaan_version = as.character(packageVersion("lavaan")),
  data = "tests/reference/data/mediation_paths.csv",
  moderator_values = wv,
  cases = out
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/mediation.json")
cat("wrote tests/reference/mediation.json\n")
