# Reference values for mixed models whose optimiser can be led onto the boundary of the
# parameter space (a variance of zero or a correlation of +-1) where that boundary is not the
# optimum, and for a GLMM whose standard errors need an accurate Hessian.
#
# Run with:  Rscript tests/reference/boundary.R  (or via tests/reference/make_refs.R boundary).
# Writes boundary.json next to this script and compact copies of the datasets under data/
# (school-effects data from mlmRev and the popularity data from mice; the Exam data are
# those lmm.R writes to data/exam.csv). Needs lme4, lmerTest, mlmRev, mice, numDeriv, jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
  library(mlmRev)
  library(mice)
  library(numDeriv)
})

out_dir <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  src <- if (length(arg) == 1) sub("^--file=", "", arg) else
    tryCatch(sys.frame(1)$ofile, error = function(e) NULL)
  if (is.null(src) || !nzchar(src)) file.path("tests", "reference") else dirname(normalizePath(src))
})
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

write_gz <- function(df, name) {
  con <- gzfile(file.path(data_dir, name), "w")
  write.csv(df, con, row.names = FALSE, na = "")
  close(con)
  name
}

# ---- datasets ---------------------------------------------------------------
data("Exam", package = "mlmRev")
data("Hsb82", package = "mlmRev")
data("guImmun", package = "mlmRev")
data("popmis", package = "mice")

# the same columns as lmm.R's data/exam.csv (read from there by the Python tests)
exam <- data.frame(school = as.integer(as.character(Exam$school)), normexam = Exam$normexam,
                   standLRT = Exam$standLRT, schavg = Exam$schavg,
                   sex = as.character(Exam$sex), schgend = as.character(Exam$schgend))
hsb <- data.frame(school = as.character(Hsb82$school), mAch = Hsb82$mAch, ses = Hsb82$ses,
                  cses = Hsb82$cses, sector = as.character(Hsb82$sector))
pop <- data.frame(school = popmis$school, sex = popmis$sex, texp = popmis$texp,
                  teachpop = popmis$teachpop)
yn <- function(f) as.character(f)
imm <- data.frame(immun = as.integer(guImmun$immun == "Y"), kid2p = yn(guImmun$kid2p),
                  mom25p = yn(guImmun$mom25p), ord = paste0("o", guImmun$ord), ethn = yn(guImmun$ethn),
                  momEd = yn(guImmun$momEd), husEd = yn(guImmun$husEd), momWork = yn(guImmun$momWork),
                  rural = yn(guImmun$rural), pcInd81 = guImmun$pcInd81,
                  mom = as.character(guImmun$mom), comm = as.character(guImmun$comm))
files <- list(exam = "exam.csv", hsb = write_gz(hsb, "hsb82.csv.gz"),
              pop = write_gz(pop, "popmis.csv.gz"), imm = write_gz(imm, "guimmun.csv.gz"))

# ---- linear mixed models ----------------------------------------------------
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15,
                                    xtol_rel = 1e-12, maxeval = 1e5),
                     check.conv.singular = "ignore")

lmm_case <- function(formula, data, data_file, reml = TRUE) {
  m <- lmerTest::lmer(as.formula(formula), data = data, REML = reml, control = tight)
  vc <- as.data.frame(VarCorr(m))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  co <- summary(m)$coefficients
  list(data = data_file, formula = formula, reml = reml, nobs = nobs(m),
       fixef = list(term = rownames(co), estimate = unname(co[, "Estimate"]),
                    std_error = unname(co[, "Std. Error"]), df = unname(co[, "df"])),
       varcorr = list(group = vc$grp, term1 = vc$var1, term2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
       theta = unname(getME(m, "theta")), sigma = sigma(m), singular = isSingular(m),
       loglik = as.numeric(logLik(m)),
       criterion = if (reml) unname(REMLcrit(m)) else deviance(m))
}

lmm_cases <- list(
  # lme4 ends on the boundary too (the last Cholesky diagonal 0), at a far lower criterion
  exam_two_slopes = lmm_case("normexam ~ standLRT + sex + (standLRT + sex | school)", exam, files$exam),
  # interior optimum; a quasi-Newton start steps onto "slope variance 0"
  hsb_cses = lmm_case("mAch ~ cses + (cses | school)", hsb, files$hsb),
  hsb_ses_sector = lmm_case("mAch ~ ses + sector + (ses | school)", hsb, files$hsb),
  popmis_sex = lmm_case("teachpop ~ sex + texp + (sex | school)", pop, files$pop)
)

# ---- GLMM: guImmun, immunisation of children within mothers within communities ----------
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
fimm <- immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 +
  (1 | mom) + (1 | comm)
g <- glmer(fimm, data = imm, family = binomial, control = ctrl)
# Hessian of glmer's own Laplace deviance in (theta, beta) at the optimum by Richardson
# extrapolation: the standard errors it implies agree with glmer's reported ones
dfun <- update(g, devFunOnly = TRUE)
par_opt <- c(getME(g, "theta"), fixef(g))
H <- numDeriv::hessian(dfun, par_opt, method.args = list(d = 0.01, r = 4))
ntheta <- length(getME(g, "theta"))
se_richardson <- sqrt(diag(2 * solve(H)))[-seq_len(ntheta)]
vc <- as.data.frame(VarCorr(g))
glmm_cases <- list(guimmun = list(
  data = files$imm, family = "binomial", nagq = 1,
  formula = paste("immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81",
                  "+ (1 | mom) + (1 | comm)"),
  nobs = nobs(g), fixef = list(term = names(fixef(g)), estimate = unname(fixef(g)),
                               std_error = unname(sqrt(diag(as.matrix(vcov(g))))),
                               std_error_richardson = unname(se_richardson)),
  theta = unname(getME(g, "theta")), variances = as.list(setNames(vc$vcov, vc$grp)),
  loglik = as.numeric(logLik(g)), deviance = deviance(g)
))

ref <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  mlmRev = as.character(packageVersion("mlmRev")),
                  mice = as.character(packageVersion("mice")),
                  numDeriv = as.character(packageVersion("numDeriv"))),
  lmm = lmm_cases, glmm = glmm_cases
)
write_json(ref, file.path(out_dir, "boundary.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
