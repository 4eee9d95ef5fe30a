# Reference numbers for two-level structural equation models (ML with within and between
# covariance structures, lavaan's `level: 1` / `level: 2` blocks with `cluster =`), computed with
# lavaan: estimates, standard errors (observed information, lavaan's default for two-level ML)
# and fit measures.
#
# Models: (1) the two-level model of lavaan's documentation on Demo.twolevel (within-only and
# between-only covariates); (2) a two-level CFA on Demo.twolevel (two factors at each level) and (3) a misfitting one (one
# within factor for six items) and (4) one with a within-only outcome (y4) and a between-only outcome
# (the cluster mean of y5); (5) a simulated collective
# efficacy data set (unbalanced neighbourhoods, a neighbourhood-level efficacy factor predicted by
# a between-only deprivation score).
#
# Run from the repository root:  Rscript tests/reference/sem_twolevel.R
# Writes tests/reference/sem_twolevel.json and the data sets as
# tests/reference/data/sem_twolevel_*.csv.gz (so the Python tests need no R).
suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
dat_dir <- file.path(out_dir, "data")
dir.create(dat_dir, showWarnings = FALSE, recursive = TRUE)

write_data <- function(df, name) {
  con <- gzfile(file.path(dat_dir, paste0("sem_twolevel_", name, ".csv.gz")), "w")
  write.csv(df, con, row.names = FALSE, na = "")
  close(con)
}

demo <- Demo.twolevel[, c(paste0("y", 1:6), "x1", "x2", "x3", "w1", "w2", "cluster")]
demo$y5_mean <- ave(demo$y5, demo$cluster)      # a cluster-level outcome (constant within clusters)
write_data(demo, "demo")

# simulated collective efficacy: 80 neighbourhoods of 2 to 25 residents, four items
set.seed(20261207)
J <- 80
nj <- sample(2:25, J, replace = TRUE)
cl <- rep(seq_len(J), nj)
dep <- rnorm(J)
eta_b <- -0.5 * dep + rnorm(J, sd = 0.6)
eta_w <- rnorm(sum(nj))
lam_w <- c(1, 0.8, 0.9, 0.7)
lam_b <- c(1, 0.9, 1.1, 0.6)
ce <- sapply(1:4, function(i) 3 + lam_b[i] * eta_b[cl] + rnorm(J, sd = 0.2)[cl] +
               lam_w[i] * eta_w + rnorm(sum(nj), sd = 0.7))
sim <- data.frame(ce1 = ce[, 1], ce2 = ce[, 2], ce3 = ce[, 3], ce4 = ce[, 4],
                  deprivation = dep[cl], neighbourhood = cl)
write_data(sim, "efficacy")

models <- list(
  demo_doc = list(data = "demo", cluster = "cluster", model = "
    level: 1
        fw =~ y1 + y2 + y3
        fw ~ x1 + x2 + x3
    level: 2
        fb =~ y1 + y2 + y3
        fb ~ w1 + w2
"),
  demo_cfa = list(data = "demo", cluster = "cluster", model = "
    level: 1
        fw1 =~ y1 + y2 + y3
        fw2 =~ y4 + y5 + y6
    level: 2
        fb1 =~ y1 + y2 + y3
        fb2 =~ y4 + y5 + y6
"),
  demo_misfit = list(data = "demo", cluster = "cluster", model = "
    level: 1
        fw =~ y1 + y2 + y3 + y4 + y5 + y6
    level: 2
        fb1 =~ y1 + y2 + y3
        fb2 =~ y4 + y5 + y6
"),
  demo_within_outcome = list(data = "demo", cluster = "cluster", model = "
    level: 1
        fw =~ y1 + y2 + y3
        y4 ~ fw + x1
    level: 2
        fb =~ y1 + y2 + y3
        y5_mean ~ fb
"),
  efficacy = list(data = "efficacy", cluster = "neighbourhood", model = "
    level: 1
        efficacy_w =~ ce1 + ce2 + ce3 + ce4
    level: 2
        efficacy_b =~ ce1 + ce2 + ce3 + ce4
        efficacy_b ~ deprivation
")
)
datasets <- list(demo = demo, efficacy = sim)

out <- list(lavaan = as.character(packageVersion("lavaan")),
            R = paste(R.version$major, R.version$minor, sep = "."), models = list())
fm_names <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli",
              "logl", "unrestricted.logl", "aic", "bic", "ntotal", "rmsea", "srmr",
              "srmr_within", "srmr_between")
# lavaan 0.6-14 fits the saturated (h1) two-level model by EM stopped when the log-likelihood
# improves by less than 1e-4 (a fixed tolerance), which leaves the unrestricted log-likelihood (and so
# the chi-square) short of the maximum by up to ~1e-4. "h1_converged" reruns lavaan's own EM to a
# 1e-12 tolerance; the chi-square, baseline chi-square, CFI, TLI and RMSEA are recomputed from it
# with lavaan's formulas (RMSEA: sqrt(max(X2/df - 1, 0)/N)).
h1_converged <- function(fit) {
  lavaan:::lav_mvnorm_cluster_em_sat(YLp = fit@SampleStats@YLp[[1]], Lp = fit@Data@Lp[[1]],
                                     verbose = FALSE, tol = 1e-12, max.iter = 1000000L)$logl
}
one_fit <- function(fit) {
  pe <- parameterEstimates(fit)
  fm <- as.list(unclass(fitMeasures(fit, fm_names)))
  h1 <- h1_converged(fit)
  X2 <- 2 * (h1 - fm$logl)
  X2b <- fm$baseline.chisq + (X2 - fm$chisq)
  df <- fm$df
  dfb <- fm$baseline.df
  conv <- list(unrestricted.logl = h1, chisq = X2, baseline.chisq = X2b,
               pvalue = if (df > 0) pchisq(X2, df, lower.tail = FALSE) else NA,
               cfi = if (max(X2 - df, X2b - dfb, 0) > 0) 1 - max(X2 - df, 0) / max(X2 - df, X2b - dfb, 0) else 1,
               tli = if (df > 0) ((X2b / dfb) - (X2 / df)) / ((X2b / dfb) - 1) else 1,
               rmsea = if (df > 0) sqrt(max(X2 / df - 1, 0) / fm$ntotal) else 0)
  list(converged = lavInspect(fit, "converged"),
       params = data.frame(lhs = pe$lhs, op = pe$op, rhs = pe$rhs, level = pe$level,
                           est = pe$est, se = pe$se),
       fit = fm, fit_h1_converged = conv)
}
for (nm in names(models)) {
  m <- models[[nm]]
  # lavaan's defaults stop the optimiser (nlminb, rel.tol 1e-10) and the EM for the saturated model early (their
  # estimates move by up to ~1e-4); the "tight" fit (quasi-Newton with a 1e-15 relative tolerance, EM
  # to 1e-12) converges both to the maximum, which the tests
  # compare with. The default fit is kept to document the difference.
  fit <- sem(m$model, data = datasets[[m$data]], cluster = m$cluster)
  tight <- sem(m$model, data = datasets[[m$data]], cluster = m$cluster,
               optim.method = "BFGS", control = list(reltol = 1e-15, maxit = 10000),
               em.h1.tol = 1e-12, em.h1.iter.max = 100000L)
  out$models[[nm]] <- c(list(model = m$model, data = m$data, cluster = m$cluster),
                        one_fit(tight), list(default = one_fit(fit)))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(out_dir, "sem_twolevel.json"))
