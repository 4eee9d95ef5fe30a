# Reference numbers for cimstats' longitudinal measurement invariance, from lavaan and semTools.
#
# Run from the repository root:  Rscript tests/reference/sem_longitudinal.R
# Reads tests/reference/data/sem_long_ce_demo.csv (the demo study's collective-efficacy
# items ce_1..ce_8 at waves 0 and 1, long format, written from cimstats.datasets.demo_study()
# with its default seed), writes tests/reference/data/sem_long_planted.csv (three waves with
# a planted non-invariant intercept) and tests/reference/sem_longitudinal.json.
suppressPackageStartupMessages({
  library(lavaan)
  library(semTools)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
dat_dir <- file.path(out_dir, "data")

# ---------------------------------------------------------------- the models, written out
# wide columns <item>_w<wave>; factors <factor>_w<wave>; the first item is the marker;
# equal parameters share the labels load_<item>, int_<item>, res_<item>
wn <- function(x, w) paste0(x, "_w", w)
long_syntax <- function(items, waves, step, factor = "F", free_int = character(0)) {
  eq_load <- step %in% c("metric", "scalar", "strict")
  eq_int <- step %in% c("scalar", "strict")
  eq_res <- step == "strict"
  fac <- wn(factor, waves)
  out <- character(0)
  for (k in seq_along(waves)) {
    w <- waves[k]
    terms <- paste0("1*", wn(items[1], w))
    for (it in items[-1]) terms <- c(terms, paste0(if (eq_load) paste0("load_", it, "*") else "", wn(it, w)))
    out <- c(out, paste(fac[k], "=~", paste(terms, collapse = " + ")))
  }
  out <- c(out, paste(fac, "~~", fac))
  pairs <- combn(length(waves), 2)
  out <- c(out, paste(fac[pairs[1, ]], "~~", fac[pairs[2, ]]))
  if (eq_int) {
    out <- c(out, paste0(fac[1], " ~ 0*1"), paste0(fac[-1], " ~ NA*1"))
  } else {
    out <- c(out, paste0(fac, " ~ 0*1"))
  }
  for (it in items) {
    lab <- if (eq_int && !(it %in% free_int)) paste0("int_", it, "*") else ""
    out <- c(out, paste0(wn(it, waves), " ~ ", lab, "1"))
    rl <- if (eq_res) paste0("res_", it, "*") else ""
    out <- c(out, paste0(wn(it, waves), " ~~ ", rl, wn(it, waves)))
    out <- c(out, paste(wn(it, waves)[pairs[1, ]], "~~", wn(it, waves)[pairs[2, ]]))
  }
  paste(out, collapse = "\n")
}

to_wide <- function(long, items, id, wave, waves) {
  people <- unique(long[[id]][long[[wave]] %in% waves])
  wide <- data.frame(id = people, stringsAsFactors = FALSE)
  names(wide) <- id
  for (w in waves) {
    at <- long[long[[wave]] == w, ]
    idx <- match(people, at[[id]])
    for (it in items) wide[[wn(it, w)]] <- at[[it]][idx]
  }
  wide
}

df_of <- function(x) {
  x <- as.data.frame(x)
  for (nm in names(x)) if (is.factor(x[[nm]])) x[[nm]] <- as.character(x[[nm]])
  x
}

FIT_KEYS <- c("npar", "chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper",
              "srmr", "logl", "aic", "bic", "ntotal")
ROBUST_KEYS <- c("chisq.scaled", "chisq.scaling.factor", "pvalue.scaled", "cfi.robust", "tli.robust",
                 "rmsea.robust")

# lavaan's EM for the saturated moments under FIML stops at a relative change of 1e-5 by default,
# which moves the FIML-corrected robust indices in the fourth digit: a tight tolerance is used
EM <- list(em.h1.tol = 1e-10, em.h1.iter.max = 10000L)

run_case <- function(wide, items, waves, missing, estimator, free_int = character(0)) {
  steps <- c("configural", "metric", "scalar", "strict")
  fits <- list()
  for (s in steps) {
    fits[[s]] <- do.call("cfa", c(list(long_syntax(items, waves, s, free_int = free_int), data = wide,
                                      meanstructure = TRUE, missing = missing, estimator = estimator), EM))
  }
  lrt <- lavTestLRT(fits$configural, fits$metric, fits$scalar, fits$strict)
  lrt <- data.frame(model = rownames(lrt), as.data.frame(lrt), check.names = TRUE)
  keys <- c(FIT_KEYS, if (estimator == "MLR") ROBUST_KEYS)
  list(
    missing = missing, estimator = estimator, nobs = lavInspect(fits$configural, "nobs"),
    lrt = lrt,
    fits = lapply(fits, function(f) as.list(fitMeasures(f)[keys])),
    partables = lapply(fits, function(f) df_of(parameterEstimates(f)[, c("lhs", "op", "rhs", "est", "se")]))
  )
}

# semTools: the same sequence from measEq.syntax (marker identification, autocovariances at every lag)
meas_eq_case <- function(wide, items, waves, missing) {
  fac <- wn("F", waves)
  conf <- paste(paste(fac, "=~", sapply(waves, function(w) paste(wn(items, w), collapse = " + "))), collapse = "\n")
  long_ind <- setNames(lapply(items, function(it) wn(it, waves)), items)
  eq <- list(configural = "", metric = "loadings", scalar = c("loadings", "intercepts"),
             strict = c("loadings", "intercepts", "residuals"))
  fits <- lapply(eq, function(e) {
    do.call("measEq.syntax", c(list(conf, data = wide, ID.fac = "marker", longFacNames = list(F = fac),
                                  longIndNames = long_ind, long.equal = if (identical(e, "")) "" else e,
                                  auto = "all", missing = missing, return.fit = TRUE), EM))
  })
  lapply(fits, function(f) as.list(fitMeasures(f)[c("npar", "chisq", "df", "cfi", "rmsea", "srmr")]))
}

cases <- list()
counts <- list()

# ---------------------------------------------------------------- (a) the demo study, waves 0 and 1
ce <- read.csv(file.path(dat_dir, "sem_long_ce_demo.csv"), stringsAsFactors = FALSE)
ce_items <- paste0("ce_", 1:8)
ce_wide <- to_wide(ce, ce_items, "patient_id", "wave", c(0, 1))
cols <- unlist(lapply(c(0, 1), function(w) wn(ce_items, w)))
present <- sapply(c(0, 1), function(w) ce_wide$patient_id %in% ce$patient_id[ce$wave == w])
absent <- !apply(present, 1, all)
complete <- complete.cases(ce_wide[, cols])
counts$demo <- list(people = nrow(ce_wide), absent = sum(absent), incomplete = sum(!absent & !complete),
                    complete = sum(complete), no_item = sum(rowSums(!is.na(ce_wide[, cols])) == 0))
cases$demo_listwise_ml <- run_case(ce_wide, ce_items, c(0, 1), "listwise", "ML")
cases$demo_fiml_ml <- run_case(ce_wide, ce_items, c(0, 1), "fiml", "ML")
cases$demo_listwise_mlr <- run_case(ce_wide, ce_items, c(0, 1), "listwise", "MLR")
cases$demo_fiml_mlr <- run_case(ce_wide, ce_items, c(0, 1), "fiml", "MLR")
for (nm in names(cases)) cases[[nm]]$data <- "long_ce_demo"
meas_eq <- list(demo_listwise_ml = meas_eq_case(ce_wide, ce_items, c(0, 1), "listwise"),
                demo_fiml_ml = meas_eq_case(ce_wide, ce_items, c(0, 1), "fiml"))

# ---------------------------------------------------------------- (b) planted non-invariance, three waves
# 500 people, five items; loadings equal across waves; the intercept of y3 rises by 0.5 from wave 2
# on (all other intercepts equal); factor means 0, 0.2, 0.4; residuals of an item correlate over
# time; about 12% of people miss wave 3 and 2% of answers are missing at random.
set.seed(20240611)
n <- 500
waves <- 1:3
lam <- c(1, 0.9, 0.8, 0.7, 0.85)
nu <- c(3, 2.8, 3.1, 2.5, 3.2)
shift <- c(0, 0, 0.5, 0, 0)
theta <- c(0.4, 0.5, 0.45, 0.6, 0.5)
phi <- matrix(c(1, 0.6, 0.5, 0.6, 1.1, 0.6, 0.5, 0.6, 1.2), 3)
eta <- matrix(rnorm(n * 3), n) %*% chol(phi) + matrix(c(0, 0.2, 0.4), n, 3, byrow = TRUE)
long_rows <- list()
for (j in seq_along(lam)) {
  # residuals of item j at the three waves: correlation 0.3 over time
  rc <- matrix(0.3, 3, 3); diag(rc) <- 1
  e <- matrix(rnorm(n * 3), n) %*% chol(rc * theta[j])
  for (k in waves) {
    y <- nu[j] + (k >= 2) * shift[j] + lam[j] * eta[, k] + e[, k]
    long_rows[[paste(j, k)]] <- y
  }
}
planted <- do.call(rbind, lapply(waves, function(k) {
  d <- data.frame(person = sprintf("P%03d", seq_len(n)), time = k)
  for (j in seq_along(lam)) d[[paste0("y", j)]] <- round(long_rows[[paste(j, k)]], 4)
  d
}))
yc <- paste0("y", 1:5)
for (v in yc) planted[[v]][runif(nrow(planted)) < 0.02] <- NA
gone <- sample(n, 60)
planted <- planted[!(planted$time == 3 & planted$person %in% sprintf("P%03d", gone)), ]
planted <- planted[sample(nrow(planted)), ]  # rows in no particular order
write.csv(planted, file.path(dat_dir, "sem_long_planted.csv"), row.names = FALSE, na = "")
pl_wide <- to_wide(planted, yc, "person", "time", waves)
pcols <- unlist(lapply(waves, function(w) wn(yc, w)))
present <- sapply(waves, function(w) pl_wide$person %in% planted$person[planted$time == w])
absent <- !apply(present, 1, all)
complete <- complete.cases(pl_wide[, pcols])
counts$planted <- list(people = nrow(pl_wide), absent = sum(absent), incomplete = sum(!absent & !complete),
                       complete = sum(complete), no_item = sum(rowSums(!is.na(pl_wide[, pcols])) == 0))
cases$planted_listwise_ml <- c(run_case(pl_wide, yc, waves, "listwise", "ML"), data = "long_planted")
cases$planted_fiml_ml <- c(run_case(pl_wide, yc, waves, "fiml", "ML"), data = "long_planted")
# partial scalar invariance: the planted item's intercept free across waves
cases$planted_partial_ml <- c(run_case(pl_wide, yc, waves, "listwise", "ML", free_int = "y3"),
                              data = "long_planted", partial = "y3 ~ 1")
meas_eq$planted_listwise_ml <- meas_eq_case(pl_wide, yc, waves, "listwise")

res <- list(
  versions = list(R = R.version.string,
                  lavaan = as.character(packageVersion("lavaan")),
                  semTools = as.character(packageVersion("semTools")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  syntax_example = long_syntax(c("a", "b", "c"), c(0, 1), "strict"),
  counts = counts,
  cases = cases,
  meas_eq = meas_eq
)
write_json(res, file.path(out_dir, "sem_longitudinal.json"), digits = NA, auto_unbox = TRUE, na = "null",
           pretty = FALSE)
cat("wrote", file.path(out_dir, "sem_longitudinal.json"), "\n")
