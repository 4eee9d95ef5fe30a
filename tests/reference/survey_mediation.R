# Reference numbers for mediation under a complex survey design, computed with R's survey package:
# the a, b and total paths as svyglm() fits (weighted least squares with linearised standard
# errors) and, for fixed bootstrap replicate weights drawn by as.svrepdesign(type = "subbootstrap")
# (Rao-Wu: n_h - 1 PSUs per stratum), the replicate-based standard errors of the paths and of
# the indirect effect a * b (withReplicates), and the subbootstrap standard errors of the paths
# with 2000 replicates (to compare with cimstats' own draws within Monte Carlo error). The replicate weights are written into the JSON so
# that the Python tests feed the very same weights to cimstats.mediation(replicate_weights = ).
#
# Run from the repository root:  Rscript tests/reference/survey_mediation.R
# Writes tests/reference/survey_mediation.json (data columns included, so no R is needed).
suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
data(api)
set.seed(20261207)

case <- function(des, data, replicates = 40) {
  a_fit <- svyglm(meals ~ ell, design = des)
  b_fit <- svyglm(api00 ~ ell + meals, design = des)
  c_fit <- svyglm(api00 ~ ell, design = des)
  rep <- as.svrepdesign(des, type = "subbootstrap", replicates = replicates)
  rw <- weights(rep, type = "analysis")  # combined replicate weights, rows x replicates
  a_rep <- svyglm(meals ~ ell, design = rep)
  b_rep <- svyglm(api00 ~ ell + meals, design = rep)
  ind <- withReplicates(rep, function(w, d) {
    a <- coef(lm(meals ~ ell, data = d, weights = w))[["ell"]]
    b <- coef(lm(api00 ~ ell + meals, data = d, weights = w))[["meals"]]
    a * b
  })
  # many replicates: the subbootstrap standard errors up to little Monte Carlo error
  many <- as.svrepdesign(des, type = "subbootstrap", replicates = 2000)
  a_many <- svyglm(meals ~ ell, design = many)
  b_many <- svyglm(api00 ~ ell + meals, design = many)
  c_many <- svyglm(api00 ~ ell, design = many)
  list(
    data = data[, c("api00", "meals", "ell", "pw", "stype", "dnum")],
    subbootstrap_2000 = list(
      a_se = unname(SE(a_many)["ell"]), b_se = unname(SE(b_many)["meals"]),
      direct_se = unname(SE(b_many)["ell"]), total_se = unname(SE(c_many)["ell"])),
    linearised = list(
      a = unname(coef(a_fit)["ell"]), a_se = unname(SE(a_fit)["ell"]),
      b = unname(coef(b_fit)["meals"]), b_se = unname(SE(b_fit)["meals"]),
      direct = unname(coef(b_fit)["ell"]), direct_se = unname(SE(b_fit)["ell"]),
      total = unname(coef(c_fit)["ell"]), total_se = unname(SE(c_fit)["ell"]),
      df = degf(des)),
    replicate = list(
      a_se = unname(SE(a_rep)["ell"]), b_se = unname(SE(b_rep)["meals"]),
      direct_se = unname(SE(b_rep)["ell"]),
      indirect = unname(coef(ind)), indirect_se = unname(SE(ind)),
      scale = rep$scale, mse = rep$mse),
    replicate_weights = unname(t(rw)))
}

res <- list()
# stratified by school type, schools sampled directly (each row its own PSU)
res$strata_rows <- case(svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat), apistrat)
# one-stage cluster sample of school districts
res$clusters <- case(svydesign(id = ~dnum, weights = ~pw, data = apiclus1), apiclus1)
# districts as PSUs within school-type strata (nest = TRUE: a district is read within its stratum)
res$strata_clusters <- case(svydesign(id = ~dnum, strata = ~stype, weights = ~pw, nest = TRUE, data = apistrat),
                            apistrat)

out <- list(cases = res,
            versions = list(R = R.version.string,
                            survey = as.character(packageVersion("survey")),
                            jsonlite = as.character(packageVersion("jsonlite"))))
write_json(out, file.path(out_dir, "survey_mediation.json"), digits = NA, auto_unbox = TRUE, na = "null",
           dataframe = "columns")
cat("wrote", file.path(out_dir, "survey_mediation.json"), "\n")
