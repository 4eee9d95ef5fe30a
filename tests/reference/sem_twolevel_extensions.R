# Reference numbers for the extensions of two-level structural equation models (lavaan's
# `level: 1` / `level: 2` blocks with `cluster =`), computed with lavaan:
#   (a) standardized solutions (std.lv and std.all per level, with delta-method standard errors,
#       lavaan's standardizedSolution()) of the documentation's model on Demo.twolevel and of the
#       simulated collective-efficacy model;
#   (b) labels shared across levels, equality constraints (`==`, between two labels and a linear
#       one) and defined parameters (`:=`, with delta-method standard errors);
#   (c) robust ML (estimator = "MLR"): Huber-White standard errors from cluster-level scores and
#       the Yuan-Bentler scaled chi-square, with the scaled and robust fit indices lavaan reports.
# The data sets are the ones written by tests/reference/sem_twolevel.R
# (tests/reference/data/sem_twolevel_*.csv.gz); run that script first.
#
# Run from the repository root:  Rscript tests/reference/sem_twolevel_extensions.R
# Writes tests/reference/sem_twolevel_extensions.json.
suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
read_data <- function(name) {
  read.csv(gzfile(file.path(out_dir, "data", paste0("sem_twolevel_", name, ".csv.gz"))))
}
datasets <- list(demo = read_data("demo"), efficacy = read_data("efficacy"))

doc_model <- "
    level: 1
        fw =~ y1 + y2 + y3
        fw ~ x1 + x2 + x3
    level: 2
        fb =~ y1 + y2 + y3
        fb ~ w1 + w2
"
efficacy_model <- "
    level: 1
        efficacy_w =~ ce1 + ce2 + ce3 + ce4
    level: 2
        efficacy_b =~ ce1 + ce2 + ce3 + ce4
        efficacy_b ~ deprivation
"
models <- list(
  demo_doc = list(data = "demo", cluster = "cluster", estimator = "ML", model = doc_model),
  efficacy = list(data = "efficacy", cluster = "neighbourhood", estimator = "ML", model = efficacy_model),
  demo_equal_loadings = list(data = "demo", cluster = "cluster", estimator = "ML", model = "
    level: 1
        fw =~ y1 + a*y2 + b*y3
        fw ~~ vw*fw
    level: 2
        fb =~ y1 + a*y2 + b*y3
        fb ~~ vb*fb
        icc := vb / (vb + vw)
"),
  efficacy_constraints = list(data = "efficacy", cluster = "neighbourhood", estimator = "ML", model = "
    level: 1
        efficacy_w =~ ce1 + l2*ce2 + l3*ce3 + l4*ce4
    level: 2
        efficacy_b =~ ce1 + m2*ce2 + m3*ce3 + m4*ce4
        efficacy_b ~ g*deprivation
        m2 == l2
        m3 == l3 + 0.2
        effect := g * m2
"),
  demo_doc_mlr = list(data = "demo", cluster = "cluster", estimator = "MLR", model = doc_model),
  efficacy_mlr = list(data = "efficacy", cluster = "neighbourhood", estimator = "MLR", model = efficacy_model),
  demo_misfit_mlr = list(data = "demo", cluster = "cluster", estimator = "MLR", model = "
    level: 1
        fw =~ y1 + y2 + y3 + y4 + y5 + y6
    level: 2
        fb1 =~ y1 + y2 + y3
        fb2 =~ y4 + y5 + y6
")
)

fm_names <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli",
              "logl", "unrestricted.logl", "aic", "bic", "ntotal", "rmsea", "srmr",
              "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor",
              "baseline.chisq.scaled", "baseline.chisq.scaling.factor",
              "cfi.scaled", "tli.scaled", "rmsea.scaled", "cfi.robust", "tli.robust", "rmsea.robust")
# lavaan 0.6-14 fits the saturated (h1) two-level model by EM stopped early (see sem_twolevel.R), also
# with em.h1.tol = 1e-12: its unrestricted log-likelihood falls short of the maximum by up to ~5e-4. The
# chi-square and everything built on it, and for MLR the h1 part of the Yuan-Bentler trace (lavaan
# evaluates the h1 information and cluster scores at the saturated estimates), are therefore recomputed
# here with lavaan's own EM run to convergence and lavaan's own information functions and formulas
# ("h1_converged"); the h0 part of the trace does not depend on the saturated model and is lavaan's.
# Each formula is first checked to reproduce lavaan's reported value from lavaan's own h1.
h1_trace <- function(fit, h1) {
  opts <- fit@Options
  opts$h1.information <- c("unstructured", "unstructured")
  args <- list(lavmodel = fit@Model, lavsamplestats = fit@SampleStats, lavdata = fit@Data,
               lavimplied = fit@implied, lavh1 = h1, lavoptions = opts)
  A1 <- do.call(lavaan:::lav_model_h1_information, args)[[1]]
  B1 <- do.call(lavaan:::lav_model_h1_information_firstorder, args)[[1]]
  keep <- which(diag(A1) != 0)
  sum(B1[keep, keep] * t(solve(A1[keep, keep])))
}
robust_measures <- function(X2, df, X2b, dfb, N, c, cb) {
  Xs <- X2 / c
  Xbs <- X2b / cb
  a <- X2 - c * df
  b <- X2b - cb * dfb
  list(chisq = X2, pvalue = pchisq(X2, df, lower.tail = FALSE), baseline.chisq = X2b,
       chisq.scaled = Xs, pvalue.scaled = pchisq(Xs, df, lower.tail = FALSE), chisq.scaling.factor = c,
       baseline.chisq.scaled = Xbs, baseline.chisq.scaling.factor = cb,
       cfi = 1 - max(X2 - df, 0) / max(X2 - df, X2b - dfb, 0),
       tli = ((X2b / dfb) - (X2 / df)) / ((X2b / dfb) - 1),
       cfi.scaled = 1 - max(Xs - df, 0) / max(Xs - df, Xbs - dfb, 0),
       tli.scaled = ((Xbs / dfb) - (Xs / df)) / ((Xbs / dfb) - 1),
       rmsea = sqrt(max(X2 / df - 1, 0) / N), rmsea.scaled = sqrt(max(Xs / df - 1, 0) / N),
       cfi.robust = 1 - max(a, 0) / max(a, b, 0), tli.robust = 1 - (a * dfb) / (b * df),
       rmsea.robust = sqrt(max(X2 / (N * df) - c / N, 0)))
}
h1_converged <- function(fit) {
  fm <- as.list(unclass(fitMeasures(fit)))
  em <- lavaan:::lav_mvnorm_cluster_em_sat(YLp = fit@SampleStats@YLp[[1]], Lp = fit@Data@Lp[[1]],
                                           verbose = FALSE, tol = 1e-12, max.iter = 1000000L)
  X2 <- 2 * (em$logl - fm$logl)
  X2b <- fm$baseline.chisq + (X2 - fm$chisq)
  out <- list(unrestricted.logl = em$logl, chisq = X2, baseline.chisq = X2b,
              pvalue = pchisq(X2, fm$df, lower.tail = FALSE),
              cfi = 1 - max(X2 - fm$df, 0) / max(X2 - fm$df, X2b - fm$baseline.df, 0),
              tli = ((X2b / fm$baseline.df) - (X2 / fm$df)) / ((X2b / fm$baseline.df) - 1),
              rmsea = sqrt(max(X2 / fm$df - 1, 0) / fm$ntotal))
  if ("yuan.bentler.mplus" %in% fit@Options$test) {
    yb <- fit@test$yuan.bentler.mplus$scaling.factor
    indep <- lavaan:::lav_object_independence(fit)
    ybb <- indep@test$yuan.bentler.mplus$scaling.factor
    tr1 <- h1_trace(fit, fit@h1)
    stopifnot(abs(tr1 - attr(yb, "h1")) < 1e-6, abs(tr1 - attr(ybb, "h1")) < 1e-6)
    again <- robust_measures(fm$chisq, fm$df, fm$baseline.chisq, fm$baseline.df, fm$ntotal,
                             as.numeric(yb), as.numeric(ybb))
    for (k in names(again)) stopifnot(abs(again[[k]] - fm[[k]]) < 1e-8)
    h1 <- fit@h1
    h1$implied <- list(cov = list(em$Sigma.W, em$Sigma.B), mean = list(em$Mu.W, em$Mu.B))
    tr1c <- h1_trace(fit, h1)
    c <- (tr1c - attr(yb, "h0")) / fm$df
    cb <- (tr1c - attr(ybb, "h0")) / fm$baseline.df
    out <- c(list(unrestricted.logl = em$logl),
             robust_measures(X2, fm$df, X2b, fm$baseline.df, fm$ntotal, c, cb))
  }
  out
}

out <- list(lavaan = as.character(packageVersion("lavaan")),
            R = paste(R.version$major, R.version$minor, sep = "."), models = list())
for (nm in names(models)) {
  m <- models[[nm]]
  # as in sem_twolevel.R: a tight optimiser and the saturated model's EM run to convergence
  fit <- sem(m$model, data = datasets[[m$data]], cluster = m$cluster, estimator = m$estimator,
             optim.method = "BFGS", control = list(reltol = 1e-15, maxit = 10000),
             em.h1.tol = 1e-12, em.h1.iter.max = 100000L)
  pe <- parameterEstimates(fit)
  keep <- pe$op != "=="
  fm <- fitMeasures(fit)
  fm <- as.list(unclass(fm[intersect(fm_names, names(fm))]))
  std <- function(type) {
    s <- standardizedSolution(fit, type = type)
    s <- s[s$op != "==", ]
    # standardizedSolution() lists the rows of parameterEstimates() in the same order (without the level)
    stopifnot(nrow(s) == sum(keep), all(s$lhs == pe$lhs[keep]), all(s$op == pe$op[keep]))
    data.frame(lhs = s$lhs, op = s$op, rhs = s$rhs, level = pe$level[keep], est = s$est.std, se = s$se)
  }
  out$models[[nm]] <- list(model = m$model, data = m$data, cluster = m$cluster, estimator = m$estimator,
                           converged = lavInspect(fit, "converged"),
                           params = data.frame(lhs = pe$lhs[keep], op = pe$op[keep], rhs = pe$rhs[keep],
                                               level = pe$level[keep],
                                               label = if (is.null(pe$label)) "" else pe$label[keep],
                                               est = pe$est[keep], se = pe$se[keep]),
                           std_all = std("std.all"), std_lv = std("std.lv"), fit = fm,
                           fit_h1_converged = h1_converged(fit))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           file.path(out_dir, "sem_twolevel_extensions.json"))
