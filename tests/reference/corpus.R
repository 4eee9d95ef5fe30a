# Public validation corpus: mixed models and structural equation models fitted in R to
# data sets shipped with R packages (lme4, mlmRev, nlme, MASS, HSAUR3, mice, lavaan,
# semTools, psych, datasets).
#
# Run from the repository root:  Rscript tests/reference/corpus.R
# (tests/reference/make_refs.R runs every reference script). Writes
# tests/reference/corpus.json and the data sets under tests/reference/data/corpus/
# (gzip-compressed when larger than about 200 KB), so the Python tests need no R.
#
# Every model is fitted to the data set as read back from the file the tests read, so
# both programs see the same numbers. References are the optimum itself, not where a
# default stopping rule happened to stop:
#   - lmer (lmerTest, Satterthwaite df): fitted with nloptwrap run to tight tolerances and
#     with bobyqa; the fit with the lower criterion is kept (its optimiser is recorded);
#   - glmer: glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13), the inner PIRLS loop
#     converged tightly, and again with nloptwrap at tight tolerances, keeping the lower
#     deviance (for both mixed-model kinds the criteria of both fits are recorded); for nAGQ > 1 the log-likelihood with the normalising constants
#     (glmer reports it relative to the saturated model) is recorded as loglik_full; for
#     Laplace fits with canonical links the Laplace log-likelihood is also evaluated afresh at
#     glmer's estimates with the conditional modes converged to 1e-13 (loglik_exact), and that is
#     the reference log-likelihood and criterion;
#   - lavaan: the best of nlminb (tight and default tolerance) and BFGS (reltol = 1e-16);
#     FIML saturated moments by EM to 1e-10.
# Needs R with lme4, lmerTest, mlmRev, nlme, MASS, HSAUR3, mice, lavaan, semTools, psych
# and jsonlite (Debian: r-cran-lme4, r-cran-lmertest, r-cran-mlmrev, r-cran-nlme,
# r-cran-mass, r-cran-hsaur3, r-cran-mice, r-cran-lavaan, r-cran-semtools, r-cran-psych,
# r-cran-jsonlite).
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(lavaan)
  library(jsonlite)
})
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels in code-point order, as cimstats sorts them

out_dir <- file.path("tests", "reference")
data_dir <- file.path(out_dir, "data", "corpus")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)
unlink(list.files(data_dir, full.names = TRUE))

# ---- data sets ------------------------------------------------------------------------
# Each is written with only the columns the models use; character columns for categories
# (so both programs treat them as categorical), 0/1 for binary outcomes. It is then read
# back, and the fits below use the read-back copy.
datasets <- list()
source_of <- list()
export <- function(df, name, source) {
  df <- as.data.frame(df)
  for (nm in names(df)) if (is.factor(df[[nm]])) df[[nm]] <- as.character(df[[nm]])
  rownames(df) <- NULL
  path <- file.path(data_dir, paste0(name, ".csv"))
  write.csv(df, path, row.names = FALSE, na = "")
  if (file.size(path) > 200 * 1024) {
    con <- gzfile(paste0(path, ".gz"), "w")
    write.csv(df, con, row.names = FALSE, na = "")
    close(con)
    unlink(path)
    path <- paste0(path, ".gz")
  }
  back <- read.csv(path, stringsAsFactors = TRUE, na.strings = "")
  datasets[[name]] <<- back
  source_of[[name]] <<- list(file = basename(path), source = source, nrow = nrow(back),
                             columns = names(back))
  invisible(back)
}
yn <- function(f) as.integer(f == levels(f)[2])

data("sleepstudy", "Dyestuff", "Dyestuff2", "Penicillin", "Pastes", "cbpp", "grouseticks",
     "VerbAgg", "InstEval", package = "lme4")
export(sleepstudy[, c("Reaction", "Days", "Subject")], "sleepstudy", "lme4::sleepstudy")
export(Dyestuff, "dyestuff", "lme4::Dyestuff")
export(Dyestuff2, "dyestuff2", "lme4::Dyestuff2")
export(Penicillin, "penicillin", "lme4::Penicillin")
export(Pastes[, c("strength", "batch", "cask")], "pastes", "lme4::Pastes")
export(transform(cbpp, prop = incidence / size), "cbpp", "lme4::cbpp (prop = incidence / size)")
gt <- grouseticks
gt$YEAR <- paste0("y", gt$YEAR)
export(gt[, c("TICKS", "YEAR", "cHEIGHT", "BROOD", "LOCATION")], "grouseticks", "lme4::grouseticks")
va <- VerbAgg[as.integer(VerbAgg$id) <= 80, ]
va$r2 <- yn(va$r2)
export(va[, c("r2", "Anger", "Gender", "btype", "situ", "mode", "id", "item")], "verbagg",
       "lme4::VerbAgg, respondents 1-80")
ie <- InstEval[as.integer(InstEval$s) <= 150, ]
export(ie[, c("y", "service", "studage", "s", "d")], "insteval", "lme4::InstEval, students 1-150")

data("Exam", "Hsb82", "Gcsemv", "Oxboys", "ScotsSec", "Chem97", "Contraception", "guImmun",
     "Mmmec", package = "mlmRev")
export(Exam[, c("normexam", "standLRT", "sex", "schgend", "school")], "exam", "mlmRev::Exam")
export(Hsb82[, c("mAch", "cses", "meanses", "sector", "minrty", "school")], "hsb82", "mlmRev::Hsb82")
export(Gcsemv[, c("written", "course", "gender", "school")], "gcsemv", "mlmRev::Gcsemv")
export(Oxboys[, c("height", "age", "Subject")], "oxboys", "mlmRev::Oxboys")
export(ScotsSec[, c("attain", "verbal", "sex", "social", "primary", "second")], "scotssec", "mlmRev::ScotsSec")
ch <- Chem97[as.integer(Chem97$lea) <= 15, ]
export(ch[, c("score", "gcsecnt", "gender", "lea", "school")], "chem97", "mlmRev::Chem97, LEAs 1-15")
cn <- Contraception
cn$use <- yn(cn$use)
cn$age10 <- cn$age / 10  # centred age in decades: with years, glmer's optimiser stops short of the optimum
export(cn[, c("use", "age10", "urban", "livch", "district")], "contraception", "mlmRev::Contraception (age10 = age / 10)")
gi <- guImmun
gi$immun <- yn(gi$immun)
export(gi[, c("immun", "kid2p", "mom25p", "ord", "ethn", "momEd", "husEd", "momWork", "rural",
              "pcInd81", "mom", "comm")], "guimmun", "mlmRev::guImmun")
export(Mmmec[, c("deaths", "expected", "uvb", "nation", "region")], "mmmec", "mlmRev::Mmmec")

data("Orthodont", "Oats", "Machines", "Rail", "Pixel", "ergoStool", package = "nlme")
export(Orthodont[, c("distance", "age", "Sex", "Subject")], "orthodont", "nlme::Orthodont")
export(Oats[, c("yield", "nitro", "Variety", "Block")], "oats", "nlme::Oats")
export(Machines[, c("score", "Machine", "Worker")], "machines", "nlme::Machines")
export(Rail[, c("travel", "Rail")], "rail", "nlme::Rail")
export(Pixel[, c("pixel", "day", "Dog", "Side")], "pixel", "nlme::Pixel")
export(ergoStool[, c("effort", "Type", "Subject")], "ergostool", "nlme::ergoStool")

data("popmis", "nhanes", package = "mice")
export(popmis[, c("popular", "sex", "texp", "school")], "popmis", "mice::popmis")
export(nhanes, "nhanes", "mice::nhanes")

data("toenail", package = "HSAUR3")
tn <- toenail
tn$outcome <- yn(tn$outcome)
export(tn[, c("outcome", "treatment", "visit", "patientID")], "toenail", "HSAUR3::toenail")
data("bacteria", "epil", package = "MASS")
bc <- bacteria
bc$y <- yn(bc$y)
bc$late <- as.integer(bc$week > 2)
export(bc[, c("y", "trt", "week", "late", "ID")], "bacteria", "MASS::bacteria")
export(MASS::epil[, c("y", "trt", "lbase", "lage", "V4", "subject")], "epil", "MASS::epil")

export(data.frame(weight = ChickWeight$weight, Time = ChickWeight$Time,
                  Chick = as.character(ChickWeight$Chick), Diet = paste0("d", ChickWeight$Diet)),
       "chickweight", "datasets::ChickWeight")
export(data.frame(uptake = CO2$uptake, conc = CO2$conc, Type = as.character(CO2$Type),
                  Treatment = as.character(CO2$Treatment), Plant = as.character(CO2$Plant)),
       "co2", "datasets::CO2")
export(InsectSprays, "insectsprays", "datasets::InsectSprays")

hs <- lavaan::HolzingerSwineford1939
export(hs[, c("id", "sex", "ageyr", "school", "grade", paste0("x", 1:9))], "holzinger",
       "lavaan::HolzingerSwineford1939")
set.seed(20261207)
hsm <- hs[, c("id", "sex", "ageyr", "school", paste0("x", 1:9))]
for (v in paste0("x", 1:9)) hsm[[v]][runif(nrow(hsm)) < 0.10] <- NA
export(hsm, "holzinger_mcar", "lavaan::HolzingerSwineford1939, 10% of x1-x9 set missing at random (seed 20261207)")
export(lavaan::PoliticalDemocracy, "poldem", "lavaan::PoliticalDemocracy")
export(lavaan::Demo.growth, "demo_growth", "lavaan::Demo.growth")
export(lavaan::FacialBurns, "facialburns", "lavaan::FacialBurns")
export(semTools::simParcel, "simparcel", "semTools::simParcel")
bfi <- psych::bfi[, c(paste0("A", 1:5), paste0("C", 1:5), "gender", "age")]
export(bfi, "bfi", "psych::bfi (agreeableness and conscientiousness items)")

# ---- mixed models ---------------------------------------------------------------------
tight_nlopt <- lmerControl(optimizer = "nloptwrap",
                           optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15,
                                          xtol_rel = 1e-12, maxeval = 1e5))
tight_bobyqa <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
glmer_ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-13)
glmer_ctrl_nlopt <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                                 optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15,
                                                xtol_rel = 1e-12, maxeval = 1e5))

varcorr_of <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  list(group = vc$grp, term1 = vc$var1, term2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor)
}

lmm_case <- function(data, formula, reml = TRUE) {
  d <- datasets[[data]]
  fits <- list(nloptwrap = lmerTest::lmer(as.formula(formula), data = d, REML = reml, control = tight_nlopt),
               bobyqa = lmerTest::lmer(as.formula(formula), data = d, REML = reml, control = tight_bobyqa))
  crit <- sapply(fits, function(m) if (reml) unname(REMLcrit(m)) else deviance(m))
  m <- fits[[which.min(crit)]]
  co <- summary(m)$coefficients
  list(kind = "lmm", data = data, formula = formula, reml = reml,
       optimizer = names(fits)[which.min(crit)], criteria = as.list(crit),
       nobs = nobs(m), ngroups = as.list(ngrps(m)), singular = isSingular(m),
       fixef = list(term = rownames(co), estimate = unname(co[, "Estimate"]),
                    std_error = unname(co[, "Std. Error"]), df = unname(co[, "df"])),
       varcorr = varcorr_of(m), theta = unname(getME(m, "theta")), sigma = sigma(m),
       loglik = as.numeric(logLik(m)), criterion = min(crit))
}

saturated_loglik <- function(m) {
  fam <- family(m)$family
  y <- getME(m, "y")
  w <- weights(m)
  if (fam == "binomial") sum(dbinom(round(w * y), round(w), y, log = TRUE)) else sum(dpois(y, y, log = TRUE))
}

# The Laplace deviance evaluated afresh at glmer's estimates, the conditional modes found by Newton
# steps until they change by less than 1e-13 (canonical links, where the Laplace approximation's
# weights are the GLM working weights). glmer's reported value can sit a few 1e-6 above it (its
# inner loop stops on the change in the penalised deviance); this is the value at glmer's optimum.
exact_laplace_loglik <- function(m) {
  fam <- family(m)
  canonical <- (fam$family == "binomial" && fam$link == "logit") || (fam$family == "poisson" && fam$link == "log")
  if (!canonical || m@devcomp$dims[["nAGQ"]] > 1) return(NA_real_)
  ZL <- t(getME(m, "Lambdat") %*% getME(m, "Zt"))
  eta0 <- as.vector(getME(m, "X") %*% fixef(m)) + m@resp$offset
  y <- m@resp$y
  n <- m@resp$weights
  u <- as.vector(getME(m, "u"))
  q <- length(u)
  hess <- function(mu) {
    w <- if (fam$family == "binomial") n * mu * (1 - mu) else mu
    Matrix::forceSymmetric(Matrix::crossprod(ZL, Matrix::Diagonal(x = w) %*% ZL) + Matrix::Diagonal(q))
  }
  for (it in 1:200) {
    mu <- fam$linkinv(eta0 + as.vector(ZL %*% u))
    score <- if (fam$family == "binomial") n * (y - mu) else y - mu
    step <- as.vector(Matrix::solve(hess(mu), as.vector(Matrix::crossprod(ZL, score)) - u))
    u <- u + step
    if (max(abs(step)) < 1e-13) break
  }
  mu <- fam$linkinv(eta0 + as.vector(ZL %*% u))
  ll <- if (fam$family == "binomial") sum(dbinom(round(n * y), round(n), mu, log = TRUE)) else
    sum(dpois(y, mu, log = TRUE))
  logdet <- as.numeric(Matrix::determinant(hess(mu), logarithm = TRUE)$modulus)
  ll - (sum(u^2) + logdet) / 2
}

glmm_case <- function(data, formula, family = "binomial", link = NULL, nagq = 1, weights = NULL) {
  d <- datasets[[data]]
  fam <- if (family == "binomial") binomial(link = if (is.null(link)) "logit" else link) else
    poisson(link = if (is.null(link)) "log" else link)
  d$.w <- if (is.null(weights)) 1 else d[[weights]]
  fit_with <- function(ctrl) glmer(as.formula(formula), data = d, family = fam, nAGQ = nagq, control = ctrl,
                                   weights = .w)
  fits <- list(bobyqa = fit_with(glmer_ctrl), nloptwrap = fit_with(glmer_ctrl_nlopt))
  crit <- sapply(fits, deviance)
  m <- fits[[which.min(crit)]]
  ll <- as.numeric(logLik(m))
  ll_full <- if (nagq > 1) ll + saturated_loglik(m) else ll
  ll_exact <- exact_laplace_loglik(m)
  list(kind = "glmm", data = data, formula = formula, family = family, link = fam$link, nagq = nagq,
       weights = weights, optimizer = names(crit)[which.min(crit)], criteria = as.list(crit),
       nobs = nobs(m), ngroups = as.list(ngrps(m)), singular = isSingular(m),
       fixef = list(term = names(fixef(m)), estimate = unname(fixef(m)),
                    std_error = unname(sqrt(diag(as.matrix(vcov(m)))))),
       varcorr = varcorr_of(m), theta = unname(getME(m, "theta")),
       loglik = ll, loglik_full = ll_full, loglik_exact = ll_exact,
       criterion = -2 * (if (is.na(ll_exact)) ll_full else ll_exact),
       messages = as.list(m@optinfo$conv$lme4$messages))
}

cases <- list(
  # lme4
  sleepstudy_corr = lmm_case("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  sleepstudy_corr_ml = lmm_case("sleepstudy", "Reaction ~ Days + (Days | Subject)", FALSE),
  sleepstudy_uncorr = lmm_case("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
  sleepstudy_split = lmm_case("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
  sleepstudy_int_ml = lmm_case("sleepstudy", "Reaction ~ Days + (1 | Subject)", FALSE),
  dyestuff = lmm_case("dyestuff", "Yield ~ 1 + (1 | Batch)"),
  dyestuff_ml = lmm_case("dyestuff", "Yield ~ 1 + (1 | Batch)", FALSE),
  dyestuff2_boundary = lmm_case("dyestuff2", "Yield ~ 1 + (1 | Batch)"),
  dyestuff2_boundary_ml = lmm_case("dyestuff2", "Yield ~ 1 + (1 | Batch)", FALSE),
  penicillin_crossed = lmm_case("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  penicillin_crossed_ml = lmm_case("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", FALSE),
  pastes_nested = lmm_case("pastes", "strength ~ 1 + (1 | batch/cask)"),
  pastes_colon = lmm_case("pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  insteval_crossed = lmm_case("insteval", "y ~ service + studage + (1 | s) + (1 | d)"),
  # mlmRev
  exam_slope = lmm_case("exam", "normexam ~ standLRT + sex + schgend + (standLRT | school)"),
  exam_slope_ml = lmm_case("exam", "normexam ~ standLRT + sex + schgend + (standLRT | school)", FALSE),
  hsb82_crosslevel = lmm_case("hsb82", "mAch ~ meanses * cses + sector + minrty + (cses | school)"),
  hsb82_uncorr = lmm_case("hsb82", "mAch ~ meanses * cses + sector + (cses || school)"),
  gcsemv_written = lmm_case("gcsemv", "written ~ gender + (1 | school)"),
  gcsemv_course_slope = lmm_case("gcsemv", "course ~ gender + (gender | school)"),
  oxboys_quadratic = lmm_case("oxboys", "height ~ age + I(age^2) + (age | Subject)"),
  oxboys_quadratic_ml = lmm_case("oxboys", "height ~ age + I(age^2) + (age | Subject)", FALSE),
  scotssec_crossed = lmm_case("scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)"),
  chem97_nested = lmm_case("chem97", "score ~ gcsecnt + gender + (1 | lea/school)"),
  # nlme
  orthodont_slope = lmm_case("orthodont", "distance ~ age * Sex + (age | Subject)"),
  orthodont_slope_ml = lmm_case("orthodont", "distance ~ age * Sex + (age | Subject)", FALSE),
  oats_split_plot = lmm_case("oats", "yield ~ nitro + Variety + (1 | Block/Variety)"),
  machines_nested = lmm_case("machines", "score ~ Machine + (1 | Worker/Machine)"),
  machines_vector = lmm_case("machines", "score ~ Machine + (Machine | Worker)"),
  rail = lmm_case("rail", "travel ~ 1 + (1 | Rail)"),
  pixel_slope_nested = lmm_case("pixel", "pixel ~ day + I(day^2) + (day | Dog) + (1 | Dog:Side)"),
  ergostool = lmm_case("ergostool", "effort ~ Type + (1 | Subject)"),
  ergostool_ml = lmm_case("ergostool", "effort ~ Type + (1 | Subject)", FALSE),
  # mice, datasets
  popmis_intercept = lmm_case("popmis", "popular ~ sex + texp + (1 | school)"),
  popmis_slope = lmm_case("popmis", "popular ~ sex + texp + (sex | school)"),
  chickweight_slope = lmm_case("chickweight", "weight ~ Time + Diet + (Time | Chick)"),
  co2_intercept = lmm_case("co2", "uptake ~ log(conc) * Type + Treatment + (1 | Plant)"),
  # generalised linear mixed models
  cbpp_laplace = glmm_case("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  cbpp_agq25 = glmm_case("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", nagq = 25),
  cbpp_weights = glmm_case("cbpp", "prop ~ period + (1 | herd)", weights = "size"),
  grouseticks_nested = glmm_case("grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", "poisson"),
  verbagg_crossed = glmm_case("verbagg", "r2 ~ Anger + Gender + btype + situ + mode + (1 | id) + (1 | item)"),
  contraception_laplace = glmm_case("contraception", "use ~ age10 + I(age10^2) + urban + livch + (1 | district)"),
  contraception_agq10 = glmm_case("contraception", "use ~ age10 + I(age10^2) + urban + livch + (1 | district)", nagq = 10),
  contraception_slope = glmm_case("contraception", "use ~ age10 + urban + livch + (urban | district)"),
  contraception_probit = glmm_case("contraception", "use ~ age10 + I(age10^2) + urban + livch + (1 | district)",
                                   link = "probit"),
  guimmun_nested = glmm_case("guimmun", paste("immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork",
                                              "+ rural + pcInd81 + (1 | comm/mom)")),
  mmmec_offset_nested = glmm_case("mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | nation/region)", "poisson"),
  mmmec_offset_agq15 = glmm_case("mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | nation)", "poisson", nagq = 15),
  toenail_laplace = glmm_case("toenail", "outcome ~ treatment * visit + (1 | patientID)"),
  toenail_agq20 = glmm_case("toenail", "outcome ~ treatment * visit + (1 | patientID)", nagq = 20),
  bacteria_laplace = glmm_case("bacteria", "y ~ trt + late + (1 | ID)"),
  bacteria_agq10 = glmm_case("bacteria", "y ~ trt + late + (1 | ID)", nagq = 10),
  epil_poisson = glmm_case("epil", "y ~ lbase * trt + lage + V4 + (1 | subject)", "poisson"),
  epil_poisson_agq9 = glmm_case("epil", "y ~ lbase * trt + lage + V4 + (1 | subject)", "poisson", nagq = 9),
  insectsprays_agq10 = glmm_case("insectsprays", "count ~ 1 + (1 | spray)", "poisson", nagq = 10)
)

# ---- structural equation models ------------------------------------------------------
lav_control <- list(rel.tol = 1e-14, iter.max = 10000L, eval.max = 20000L)
fit_keys <- c("npar", "chisq", "df", "pvalue", "cfi", "tli", "rmsea", "srmr", "logl", "aic", "bic")
scaled_keys <- c("chisq.scaled", "df.scaled", "chisq.scaling.factor", "cfi.scaled", "tli.scaled",
                 "rmsea.scaled", "cfi.robust", "tli.robust", "rmsea.robust")

sem_case <- function(data, model, ...) {
  args <- list(...)
  d <- datasets[[data]]
  lav_args <- list(model = model, data = d, control = lav_control)
  if (!is.null(args$estimator)) lav_args$estimator <- args$estimator
  if (!is.null(args$missing)) {
    lav_args$missing <- args$missing
    lav_args$em.h1.tol <- 1e-10
    lav_args$em.h1.iter.max <- 10000L
  }
  if (!is.null(args$group)) lav_args$group <- args$group
  if (!is.null(args$group_equal)) lav_args$group.equal <- args$group_equal
  if (!is.null(args$meanstructure)) lav_args$meanstructure <- args$meanstructure
  if (!is.null(args$fixed_x)) lav_args$fixed.x <- args$fixed_x
  if (!is.null(args$std_lv)) lav_args$std.lv <- args$std_lv
  # nlminb with a very small relative tolerance often stops with a warning (no fit measures then),
  # and with lavaan's default it can stop ~1e-8 (in the log-likelihood) short of the optimum: the
  # model is fitted with nlminb (tight, then default tolerance) and with BFGS at a tight tolerance,
  # and the converged fit with the highest log-likelihood is kept
  quiet <- function(a) tryCatch(withCallingHandlers(do.call("sem", a), warning = function(w) invokeRestart("muffleWarning")),
                                error = function(e) NULL)
  fits <- list(nlminb_tight = quiet(lav_args))
  lav_args$control <- list(rel.tol = 1e-10, iter.max = 10000L, eval.max = 20000L)
  fits$nlminb <- do.call("sem", lav_args)
  lav_args$optim.method <- "BFGS"
  lav_args$control <- list(reltol = 1e-16, maxit = 10000L)
  fits$bfgs <- quiet(lav_args)
  fits <- Filter(function(f) !is.null(f) && lavInspect(f, "converged"), fits)
  logl <- sapply(fits, function(f) unname(fitMeasures(f, "logl")))
  fit <- fits[[which.max(logl)]]
  best <- names(fits)[which.max(logl)]
  pe <- parameterEstimates(fit, remove.nonfree = FALSE, remove.system.eq = FALSE, remove.eq = FALSE,
                           remove.ineq = FALSE, remove.def = FALSE)
  pe <- pe[pe$op %in% c("=~", "~", "~~", "~1"), ]
  if (is.null(pe$group)) pe$group <- 1L
  fm <- fitMeasures(fit)
  keys <- c(fit_keys, if (identical(args$estimator, "MLR")) scaled_keys)
  list(kind = "sem", data = data, model = model, call = args,
       nobs = sum(lavInspect(fit, "nobs")), optimizer = best, logl_fits = as.list(logl),
       partable = list(lhs = pe$lhs, op = pe$op, rhs = pe$rhs, group = pe$group,
                       est = pe$est, se = pe$se),
       fit = as.list(fm[keys]), criterion = -as.numeric(fm["logl"]))
}

hs_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"
hs_exo_model <- paste(hs_model, "visual ~ ageyr + sex", "speed ~ ageyr", sep = "\n")
pd_model <- "ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
y1 ~~ y5
y2 ~~ y4 + y6
y3 ~~ y7
y4 ~~ y8
y6 ~~ y8"
growth_model <- "i =~ 1*t1 + 1*t2 + 1*t3 + 1*t4
s =~ 0*t1 + 1*t2 + 2*t3 + 3*t4
i ~ x1 + x2
s ~ x1 + x2
t1 ~ 0*1
t2 ~ 0*1
t3 ~ 0*1
t4 ~ 0*1
i ~ 1
s ~ 1"
burns_model <- "HADS ~ Selfesteem + TBSA + Sex + Age
Selfesteem ~ TBSA + Sex + Age + RUM"
parcel_model <- paste0("f1 =~ ", paste0("f1item", 1:9, collapse = " + "), "\nf2 =~ ", paste0("f2item", 1:9, collapse = " + "))
nhanes_model <- "chl ~ age + bmi"
bfi_model <- "agree =~ A1 + A2 + A3 + A4 + A5
consc =~ C1 + C2 + C3 + C4 + C5"
bfi_exo_model <- paste(bfi_model, "agree ~ gender + age", "consc ~ gender + age", sep = "\n")

cases <- c(cases, list(
  holzinger_ml = sem_case("holzinger", hs_model),
  holzinger_mlr = sem_case("holzinger", hs_model, estimator = "MLR"),
  holzinger_stdlv_means = sem_case("holzinger", hs_model, std_lv = TRUE, meanstructure = TRUE),
  holzinger_covariates = sem_case("holzinger", hs_exo_model),
  holzinger_group_ml = sem_case("holzinger", hs_model, group = "school"),
  holzinger_group_mlr = sem_case("holzinger", hs_model, group = "school", estimator = "MLR"),
  holzinger_group_metric = sem_case("holzinger", hs_model, group = "school", group_equal = "loadings"),
  holzinger_group_scalar = sem_case("holzinger", hs_model, group = "school",
                                    group_equal = c("loadings", "intercepts")),
  holzinger_fiml = sem_case("holzinger_mcar", hs_model, missing = "fiml"),
  holzinger_fiml_mlr = sem_case("holzinger_mcar", hs_model, missing = "fiml", estimator = "MLR"),
  holzinger_fiml_group = sem_case("holzinger_mcar", hs_model, missing = "fiml", group = "school"),
  holzinger_fiml_covariates = sem_case("holzinger_mcar", hs_exo_model, missing = "fiml"),
  holzinger_fiml_covariates_random_x = sem_case("holzinger_mcar", hs_exo_model, missing = "fiml", fixed_x = FALSE),
  poldem_ml = sem_case("poldem", pd_model),
  poldem_mlr = sem_case("poldem", pd_model, estimator = "MLR"),
  growth_covariates = sem_case("demo_growth", growth_model, meanstructure = TRUE),
  growth_covariates_mlr = sem_case("demo_growth", growth_model, meanstructure = TRUE, estimator = "MLR"),
  facialburns_path = sem_case("facialburns", burns_model),
  facialburns_path_mlr = sem_case("facialburns", burns_model, estimator = "MLR"),
  simparcel_cfa = sem_case("simparcel", parcel_model),
  nhanes_fiml = sem_case("nhanes", nhanes_model, missing = "fiml"),
  nhanes_fiml_random_x = sem_case("nhanes", nhanes_model, missing = "fiml", fixed_x = FALSE),
  bfi_fiml = sem_case("bfi", bfi_model, missing = "fiml"),
  bfi_fiml_mlr = sem_case("bfi", bfi_model, missing = "fiml", estimator = "MLR"),
  bfi_fiml_covariates = sem_case("bfi", bfi_exo_model, missing = "fiml")
))

pkgs <- c("lme4", "lmerTest", "Matrix", "lavaan", "semTools", "mlmRev", "nlme", "MASS", "HSAUR3",
          "mice", "psych", "jsonlite")
versions <- c(list(R = R.version.string), lapply(setNames(pkgs, pkgs), function(p) as.character(packageVersion(p))))
write_json(list(versions = versions, datasets = source_of, cases = cases),
           file.path(out_dir, "corpus.json"), digits = NA, auto_unbox = TRUE, na = "null", null = "null",
           pretty = TRUE)
cat("wrote", file.path(out_dir, "corpus.json"), "with", length(cases), "cases on", length(source_of), "data sets\n")
