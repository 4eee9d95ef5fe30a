# Reference values for hypothesis CE8 of the default mechanism plan (collective efficacy as a shared
# property of the patient's network): the two-level model of the plan's model ce_shared, fitted with
# lavaan on exactly the frame cimstats.test_mechanisms builds from the demo study, and the agreement of
# the members' answers (ICC(1), ICC(2) as multilevel::ICC1 / ICC2; rwg(j) as multilevel::rwg.j) on the
# rows the model uses.
#
# The frame (one row per network member named at baseline, with the patient's sm, se and country) is
# stored as tests/reference/data/mechanisms_ce8.csv.gz, written from the demo study's default seed by
#   PYTHONPATH=src python -c "from cimstats.mechanisms import model_frame; from cimstats import datasets; \
#     model_frame(datasets.demo_study(), 'ce_shared').to_csv('tests/reference/data/mechanisms_ce8.csv.gz', \
#     index=False, compression={'method': 'gzip', 'mtime': 0})"
# Run from the repository root:  Rscript tests/reference/mechanisms_ce8.R
# Writes tests/reference/mechanisms_ce8.json (read by tests/test_mechanisms_shared.py; R is not needed to
# run the tests).
suppressPackageStartupMessages({
  library(lavaan)
  library(multilevel)
  library(jsonlite)
})

d <- read.csv(gzfile(file.path("tests", "reference", "data", "mechanisms_ce8.csv.gz")), stringsAsFactors = FALSE)
d$country <- factor(d$country)            # reference level: BG (first in alphabetical order)
dummies <- paste0("country", levels(d$country)[-1])
for (k in seq_along(dummies)) d[[dummies[k]]] <- as.numeric(d$country == levels(d$country)[k + 1])
items <- paste0("member_ce_", 1:4)

# the syntax the template writes: the plan's within and between statements, then the covariates
# (se and the country indicators) added to the between-level regression of sm
model <- paste0(
  "level: 1\n",
  "  ce_w =~ member_ce_1 + member_ce_2 + member_ce_3 + member_ce_4\n",
  "level: 2\n",
  "  ce_b =~ member_ce_1 + member_ce_2 + member_ce_3 + member_ce_4; sm ~ shared_ce*ce_b\n",
  "  sm ~ ", paste(c("se", dummies), collapse = " + "), "\n")

# lavaan's defaults stop nlminb (rel.tol 1e-10) and the EM of the saturated model early; the tight fit
# (quasi-Newton to a 1e-15 relative tolerance, EM to 1e-12) converges both to the maximum, which the test
# compares with (as tests/reference/sem_twolevel.R)
secs <- system.time(suppressWarnings(  # "no variance within some clusters": networks whose members agree
  fit <- sem(model, data = d, cluster = "patient_id", optim.method = "BFGS",
             control = list(reltol = 1e-15, maxit = 10000), em.h1.tol = 1e-12, em.h1.iter.max = 100000L)))
pe <- parameterEstimates(fit)
fm <- as.list(unclass(fitMeasures(fit, c("npar", "chisq", "df", "logl", "unrestricted.logl", "cfi", "rmsea",
                                          "srmr_within", "srmr_between"))))
# lavaan 0.6-14 stops the EM of the saturated (h1) model at a fixed 1e-4 improvement of the
# log-likelihood whatever em.h1.tol says, short of the maximum here; fit the saturated two-level model
# as a model instead (free within covariances of the items; between: the items and sm regressed on the
# covariates with free residual covariances), to the same tight tolerance, and recompute the chi-square
ys <- c(items, "sm")
pairs <- function(v) unlist(lapply(seq_along(v), function(i) paste(v[i], "~~", v[i:length(v)])))
saturated <- paste0("level: 1\n  ", paste(pairs(items), collapse = "\n  "), "\n",
                    "level: 2\n  ", paste(ys, "~", paste(c("se", dummies), collapse = " + "), collapse = "\n  "),
                    "\n  ", paste(pairs(ys), collapse = "\n  "), "\n")
sat <- suppressWarnings(sem(saturated, data = d, cluster = "patient_id", optim.method = "BFGS",
                            control = list(reltol = 1e-15, maxit = 10000), em.h1.tol = 1e-12))
h1 <- as.numeric(fitMeasures(sat, "logl"))
fm$unrestricted.logl.saturated_model <- h1
fm$saturated_df <- as.numeric(fitMeasures(sat, "df"))
fm$chisq.saturated_model <- 2 * (h1 - fm$logl)

# agreement of the members' answers on the rows the model uses (every model variable observed)
used <- d[complete.cases(d[, c(items, "sm", "se", "country", "patient_id")]), ]
used$score <- rowMeans(used[, items])
a <- aov(score ~ as.factor(patient_id), data = used)
rj <- rwg.j(used[, items], used$patient_id, ranvar = (5^2 - 1) / 12)
sizes <- table(used$patient_id)

out <- list(
  R = R.version.string, lavaan = as.character(packageVersion("lavaan")),
  multilevel = as.character(packageVersion("multilevel")),
  call = "sem(model, data, cluster = 'patient_id', optim.method = 'BFGS', control = list(reltol = 1e-15), em.h1.tol = 1e-12)",
  model = model, converged = lavInspect(fit, "converged"),
  nobs = lavInspect(fit, "nobs"), nclusters = lavInspect(fit, "nclusters"),
  params = data.frame(lhs = pe$lhs, op = pe$op, rhs = pe$rhs, level = pe$level, label = pe$label,
                      est = pe$est, se = pe$se),
  fit = fm,
  agreement = list(rows = nrow(used), clusters = length(sizes), clusters_2plus = sum(sizes >= 2),
                   icc1 = ICC1(a), icc2 = ICC2(a), rwg_j_median = median(rj$rwg.j[sizes >= 2]),
                   rwg_j_mean = mean(rj$rwg.j[sizes >= 2])),
  elapsed_seconds = unname(secs["elapsed"])
)
write_json(out, file.path("tests", "reference", "mechanisms_ce8.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
