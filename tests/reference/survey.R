# Reference numbers for cimstats' survey designs (SurveyDesign, describe, glm) from R's survey package.
#
# Writes the data sets used (from the survey package: apistrat, apiclus1, apiclus2 and nhanes, with
# the columns the tests need) to tests/reference/data/survey/*.csv, and tests/reference/survey.json:
# svymean / svytotal / svyquantile (survey's default Woodruff intervals) and svyglm estimates,
# standard errors and degrees of freedom per design, plus ordinary glm fits, with R and package versions.
# Run from the repository root:  Rscript tests/reference/survey.R
suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})

data(api)
data(nhanes)
out_dir <- "tests/reference/data/survey"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

api_cols <- c("cds", "stype", "cname", "dnum", "snum", "pw", "api00", "api99", "ell", "meals", "mobility",
              "enroll", "emer", "sw")
prep_api <- function(d, extra) {
  d$sw <- as.numeric(d$sch.wide == "Yes")
  d$stype <- as.character(d$stype)
  d <- d[, c(api_cols, extra)]
  d$fpc2 <- if ("fpc2" %in% names(d)) as.vector(d$fpc2) else NULL
  d
}
write_data <- function(d, name) {
  path <- file.path(out_dir, paste0(name, ".csv"))
  write.csv(d, path, row.names = FALSE, na = "")
  read.csv(path, stringsAsFactors = FALSE)
}
apistrat_d <- write_data(prep_api(apistrat, "fpc"), "apistrat")
apiclus1_d <- write_data(prep_api(apiclus1, "fpc"), "apiclus1")
apiclus2_d <- write_data(prep_api(apiclus2, c("fpc1", "fpc2")), "apiclus2")
nh <- nhanes
nh$agecat <- as.character(nh$agecat)
nhanes_d <- write_data(nh, "nhanes")

designs <- list(
  strat = list(design = svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat_d),
               args = list(data = "apistrat", weights = "pw", strata = "stype", cluster = NULL, fpc = "fpc",
                           nest = FALSE)),
  strat_fraction = list(design = svydesign(id = ~1, strata = ~stype, weights = ~pw,
                                           fpc = ~I(ifelse(stype == "E", 100 / 4421, ifelse(stype == "H", 50 / 755, 50 / 1018))),
                                           data = apistrat_d),
               args = list(data = "apistrat", weights = "pw", strata = "stype", cluster = NULL, fpc = "fraction",
                           nest = FALSE)),
  clus1 = list(design = svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1_d),
               args = list(data = "apiclus1", weights = "pw", strata = NULL, cluster = "dnum", fpc = "fpc",
                           nest = FALSE)),
  clus2 = list(design = svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2_d),
               args = list(data = "apiclus2", weights = NULL, strata = NULL, cluster = c("dnum", "snum"),
                           fpc = c("fpc1", "fpc2"), nest = FALSE)),
  clus2_weights = list(design = svydesign(id = ~dnum + snum, weights = ~pw, data = apiclus2_d),
               args = list(data = "apiclus2", weights = "pw", strata = NULL, cluster = c("dnum", "snum"),
                           fpc = NULL, nest = FALSE)),
  nhanes = list(design = svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE,
                                   data = nhanes_d),
               args = list(data = "nhanes", weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU",
                           fpc = NULL, nest = TRUE)),
  srs = list(design = suppressWarnings(svydesign(id = ~1, data = apistrat_d)),
             args = list(data = "apistrat", weights = NULL, strata = NULL, cluster = NULL, fpc = NULL, nest = FALSE))
)
# strata with a single school (13 counties of apistrat have one sampled school): each lonely-PSU rule
lonely_design <- svydesign(id = ~1, strata = ~cname, weights = ~pw, data = apistrat_d)
for (rule in c("adjust", "average", "certainty", "remove")) {
  designs[[paste0("lonely_", rule)]] <- list(
    design = lonely_design, lonely = rule,
    args = list(data = "apistrat", weights = "pw", strata = "cname", cluster = NULL, fpc = NULL, nest = FALSE))
}

stat <- function(s) list(names = names(coef(s)), estimate = unname(coef(s)), se = unname(SE(s)))
quant <- function(q, var) {
  m <- q[[var]]
  list(probs = as.numeric(rownames(m)), estimate = unname(m[, 1]), ci_lower = unname(m[, 2]),
       ci_upper = unname(m[, 3]), se = unname(m[, 4]))
}
ctrl <- glm.control(epsilon = 1e-13, maxit = 200)
svyfit <- function(formula, design, family, weights = NULL) {
  f <- if (is.null(weights)) suppressWarnings(svyglm(formula, design = design, family = family, control = ctrl)) else
    suppressWarnings(eval(bquote(svyglm(formula, design = design, family = family, control = ctrl,
                                        weights = .(as.name(weights))))))
  list(formula = deparse(formula), family = family$family, weights = weights, names = names(coef(f)),
       estimate = unname(coef(f)),
       se = unname(sqrt(diag(vcov(f)))), vcov = unname(as.matrix(vcov(f))), df_residual = f$df.residual,
       deviance = f$deviance, design_df = degf(f$survey.design),
       confint = unname(as.matrix(confint(f))), nobs = length(f$y))
}

cases <- list()
for (name in names(designs)) {
  spec <- designs[[name]]
  options(survey.lonely.psu = if (is.null(spec$lonely)) "fail" else spec$lonely)
  des <- spec$design
  res <- list(design = spec$args, lonely_psu = if (is.null(spec$lonely)) "fail" else spec$lonely,
              degf = degf(des))
  if (spec$args$data %in% c("apistrat", "apiclus1", "apiclus2")) {
    res$mean <- stat(svymean(~api00 + ell + meals, des))
    # one variable at a time (describe leaves out each variable's own missing values)
    tot <- list(stat(svytotal(~api00, des)), stat(svytotal(~enroll, des, na.rm = TRUE)))
    res$total <- list(names = c("api00", "enroll"), estimate = sapply(tot, `[[`, "estimate"),
                      se = sapply(tot, `[[`, "se"))
    res$mean_enroll <- stat(svymean(~enroll, des, na.rm = TRUE))
    res$prop_stype <- stat(svymean(~factor(stype), des))
    res$total_stype <- stat(svytotal(~factor(stype), des))
    res$quantile_api00 <- quant(svyquantile(~api00, des, c(0.1, 0.25, 0.5, 0.75, 0.9), ci = TRUE), "api00")
    res$quantile_enroll <- quant(svyquantile(~enroll, des, c(0.25, 0.5, 0.75), ci = TRUE, na.rm = TRUE), "enroll")
    res$domain_mean <- lapply(c("E", "H", "M"), function(s) c(list(stype = s),
                                                              stat(svymean(~api00 + ell, subset(des, stype == s)))))
    res$domain_quantile <- lapply(c("E", "M"), function(s) c(list(stype = s),
                                 quant(svyquantile(~api00, subset(des, stype == s), c(0.5), ci = TRUE), "api00")))
    res$glm <- list(
      svyfit(api00 ~ ell + meals + mobility, des, gaussian()),
      svyfit(sw ~ ell + meals + stype, des, quasibinomial()),
      svyfit(sw ~ ell + meals, des, binomial()),
      svyfit(emer ~ meals + stype, des, poisson()),
      svyfit(emer ~ meals + enroll, des, quasipoisson()),
      svyfit(api00 ~ ell + meals, des, gaussian(), weights = "enroll"))   # prior weights (missing in apiclus2)
  } else {
    res$mean <- stat(svymean(~HI_CHOL, des, na.rm = TRUE))
    res$prop_agecat <- stat(svymean(~factor(agecat), des))
    res$total <- stat(svytotal(~HI_CHOL, des, na.rm = TRUE))
    res$domain_mean <- lapply(c(1, 2), function(s) c(list(RIAGENDR = s),
                                                     stat(svymean(~HI_CHOL, subset(des, RIAGENDR == s), na.rm = TRUE))))
    res$glm <- list(
      svyfit(HI_CHOL ~ factor(race) + agecat + RIAGENDR, des, quasibinomial()),
      svyfit(HI_CHOL ~ factor(race) + agecat + RIAGENDR, des, binomial()),
      svyfit(HI_CHOL ~ agecat, des, gaussian()))
  }
  cases[[name]] <- res
}
options(survey.lonely.psu = "fail")

# ordinary (non-survey) glm
glmfit <- function(formula, data, family, weights = NULL) {
  data_name <- sub("_d$", "", deparse(substitute(data)))
  f <- if (is.null(weights)) suppressWarnings(glm(formula, data = data, family = family, control = ctrl)) else
    suppressWarnings(eval(bquote(glm(formula, data = data, family = family, control = ctrl,
                                     weights = .(as.name(weights))))))
  s <- summary(f)
  list(formula = deparse(formula), data = data_name, family = family$family, weights = weights,
       names = names(coef(f)), estimate = unname(coef(f)), se = unname(s$coefficients[, 2]), statistic = unname(s$coefficients[, 3]),
       p_value = unname(s$coefficients[, 4]), dispersion = s$dispersion, deviance = f$deviance,
       null_deviance = f$null.deviance, df_residual = f$df.residual, aic = if (is.finite(f$aic)) f$aic else NULL,
       loglik = if (family$family %in% c("gaussian", "binomial", "poisson")) as.numeric(logLik(f)) else NULL,
       nobs = length(f$y))
}
glms <- list(
  glmfit(api00 ~ ell + meals + stype, apistrat_d, gaussian()),
  glmfit(api00 ~ ell + meals, apistrat_d, gaussian(), weights = "pw"),
  glmfit(sw ~ ell + meals + stype, apistrat_d, binomial()),
  glmfit(sw ~ ell + meals, apistrat_d, quasibinomial()),
  glmfit(emer ~ meals + stype, apistrat_d, poisson()),
  glmfit(emer ~ meals + stype, apistrat_d, quasipoisson()),
  glmfit(emer ~ meals + enroll, apiclus2_d, poisson()),
  glmfit(api00 ~ ell + meals, apiclus2_d, gaussian(), weights = "enroll"),
  glmfit(HI_CHOL ~ factor(race) + agecat + RIAGENDR, nhanes_d, binomial()))

ref <- list(
  versions = list(R = R.version.string, survey = as.character(packageVersion("survey")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  note = "svyglm and glm fitted with glm.control(epsilon = 1e-13); quantiles by svyquantile's defaults (qrule 'math', Woodruff 'mean' intervals, design df)",
  designs = cases, glm = glms)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
           "tests/reference/survey.json")
cat("wrote tests/reference/survey.json\n")
