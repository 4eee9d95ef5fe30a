# Reference numbers for moderated mediation on a published worked example: the "protest" data of
# Garcia, Schmitt, Branscombe & Ellemers (2010), used by Hayes (2013, 2018) to illustrate PROCESS
# models 7 and 8 (X = protest vs no protest, M = perceived appropriateness of the response,
# W = perceived pervasiveness of sex discrimination, Y = liking of the lawyer).
#
# Writes tests/reference/data/protest.csv (the data as distributed in R's psych package,
# psych::Garcia, n = 129) and tests/reference/process_protest.json with
#   * the published descriptive statistics of the data (PROC MEANS output printed in the course
#     handout "Moderated Mediation: Annotated SAS Output"), so the tests can show that the file is
#     the data of the worked example;
#   * per PROCESS model: the OLS coefficients, standard errors, R-squared and MSE of each equation
#     (stats::lm), the moderator values PROCESS probes (mean and mean +/- 1 SD, with n - 1, as in
#     PROCESS 2 and Hayes 2013; the 16th, 50th and 84th percentiles as PROCESS 3 and later compute
#     them, R's quantile type 6, position p(n + 1)), the conditional indirect effects
#     (a1 + a3 w) b, the index of moderated mediation a3 b, and the conditional direct effects
#     c1' + c3' w with their OLS standard errors, t statistics, p-values and t intervals;
#   * a large percentile bootstrap of the same effects (rows resampled with replacement, both
#     equations refitted), with the Monte Carlo error constants the tests use for their tolerance.
# Run from the repository root:  Rscript tests/reference/process_protest.R
suppressPackageStartupMessages({
  library(psych)
  library(jsonlite)
})

dir.create("tests/reference/data", showWarnings = FALSE, recursive = TRUE)
g <- psych::Garcia
d <- data.frame(protest = as.numeric(g$protest), prot2 = as.numeric(g$prot2), sexism = g$sexism,
                anger = g$anger, liking = g$liking, respappr = g$respappr)
write.csv(d, "tests/reference/data/protest.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/protest.csv")
n <- nrow(d)

# ---- published descriptive statistics (values as printed, 7 decimals; protest = the 0/1 coding)
published <- list(
  source = paste("Moderated Mediation: Annotated SAS Output (course handout analysing the Hayes 2013",
                 "protest data with PROCESS for SAS), PROC MEANS table of data set PROTEST:",
                 "N, Mean, Std Dev, Minimum, Maximum"),
  url = "https://studylib.net/doc/8177259/moderated-mediation--annotated-sas-output-data-set-name-work",
  printed_decimals = 7,
  n = 129,
  columns = list(
    sexism = list(mean = 5.1169767, sd = 0.7837616, min = 2.87, max = 7),
    liking = list(mean = 5.6367442, sd = 1.0496973, min = 1, max = 7),
    respappr = list(mean = 4.8662791, sd = 1.3481203, min = 1.5, max = 7),
    prot2 = list(mean = 0.6821705, sd = 0.4674481, min = 0, max = 1)
  )
)

# ---- PROCESS output printed for the example (plot option: predicted M and Y at each condition and
# moderator value; 4 decimals): model 8 with the three-condition protest variable (indicator coding,
# no protest = reference), as pasted into the SPSS and SAS code of the GSERM course "Mediation,
# Moderation, and Conditional Process Analysis II" (Module 6). The course's data file lawyer2 holds
# the same 129 rows as psych::Garcia, with eval = liking and approp = respappr.
printed_plot <- list(
  source = paste("PROCESS output (plot=1), Module 6 of the GSERM course code for 'Mediation, Moderation,",
                 "and Conditional Process Analysis II': github.com/akmontoya/GSERM-MMCPA-II,",
                 "files 'SPSS/SPSS data and code/gserm2 course code.sps' and",
                 "'SAS/SAS data and code/gserm2 course code.sas' (commit bd6d560a44613d8dbc56a7c32b6e6aa58f179801);",
                 "its data 'SAS/SAS data and code/lawyer2.sas' are the protest data row for row",
                 "(eval = liking, approp = respappr)"),
  command = "process y=eval/x=protest/m=approp/w=sexism/model=8/plot=1/mcx=1/seed=193456",
  printed_decimals = 4,
  moderator_values = c(4.25, 5.12, 5.896),
  protest = rep(0:2, times = 3),
  sexism = rep(c(4.25, 5.12, 5.896), each = 3),
  respappr = c(4.3184, 4.6990, 5.3332, 3.8582, 5.0894, 5.5115, 3.4477, 5.4377, 5.6705),
  liking = c(5.8991, 5.4610, 5.3418, 5.6568, 5.6908, 5.5421, 5.4407, 5.8957, 5.7207),
  liking_at = "respappr at its sample mean"
)
published$process_model8_plot <- printed_plot
# the printed values are those of the two regressions (a check of the transcription)
d3 <- transform(d, d1 = as.numeric(protest == 1), d2 = as.numeric(protest == 2))
nd <- data.frame(d1 = as.numeric(printed_plot$protest == 1), d2 = as.numeric(printed_plot$protest == 2),
                 sexism = printed_plot$sexism, respappr = mean(d$respappr))
fm <- lm(respappr ~ (d1 + d2) * sexism, data = d3)
fy <- lm(liking ~ (d1 + d2) * sexism + respappr, data = d3)
stopifnot(max(abs(predict(fm, nd) - printed_plot$respappr)) <= 0.5e-4,
          max(abs(predict(fy, nd) - printed_plot$liking)) <= 0.5e-4,
          max(abs(quantile(d$sexism, c(0.16, 0.5, 0.84), type = 6) - printed_plot$moderator_values)) <= 0.5e-4)

# ---- PROCESS-style point estimates
probe <- list(
  mean_sd = mean(d$sexism) + c(-1, 0, 1) * sd(d$sexism),
  percentiles = unname(quantile(d$sexism, c(0.16, 0.50, 0.84), type = 6))
)

ols <- function(f) {
  fit <- lm(f, data = d)
  s <- summary(fit)
  list(fit = fit,
       out = list(terms = names(coef(fit)), estimate = unname(coef(fit)),
                  std_error = unname(s$coefficients[, 2]), r_squared = s$r.squared,
                  mse = s$sigma^2, df = fit$df.residual))
}

models <- list(
  model7 = list(args = list(x = "prot2", m = "respappr", y = "liking", moderator = "sexism",
                            moderated_paths = list("a")),
                m = respappr ~ prot2 + sexism + prot2:sexism,
                y = liking ~ prot2 + respappr),
  model8 = list(args = list(x = "prot2", m = "respappr", y = "liking", moderator = "sexism",
                            moderated_paths = list("a", "direct")),
                m = respappr ~ prot2 + sexism + prot2:sexism,
                y = liking ~ prot2 + respappr + sexism + prot2:sexism)
)

effects_at <- function(cm, cy, w) {
  ind <- (cm[["prot2"]] + cm[["prot2:sexism"]] * w) * cy[["respappr"]]
  dir <- if ("prot2:sexism" %in% names(cy)) cy[["prot2"]] + cy[["prot2:sexism"]] * w else rep(cy[["prot2"]], length(w))
  list(indirect = ind, direct = dir, index = cm[["prot2:sexism"]] * cy[["respappr"]])
}

# ---- bootstrap: rows resampled, both equations refitted by lm.fit
B <- 40000
set.seed(20131212)
boot_draws <- function(mm, ym, w) {
  Xm <- model.matrix(mm, d); Xy <- model.matrix(ym, d)
  out <- matrix(NA_real_, B, 1 + 2 * length(w))
  for (b in seq_len(B)) {
    i <- sample.int(n, n, replace = TRUE)
    cm <- lm.fit(Xm[i, , drop = FALSE], d$respappr[i])$coefficients
    cy <- lm.fit(Xy[i, , drop = FALSE], d$liking[i])$coefficients
    e <- effects_at(cm, cy, w)
    out[b, ] <- c(e$index, e$indirect, e$direct)
  }
  out
}
# Monte Carlo error of a bootstrap summary from B draws is k / sqrt(B):
#   SD: k = sqrt((m4 - s^4) / (4 s^2)) (delta method, m4 the fourth central moment);
#   quantile q_p: k = sqrt(p (1 - p)) / f(q_p), f the density of the draws (kernel estimate).
mc_summary <- function(v) {
  s <- sd(v); m4 <- mean((v - mean(v))^4)
  q <- unname(quantile(v, c(0.025, 0.975), type = 7))
  dens <- density(v)
  f <- approx(dens$x, dens$y, xout = q)$y
  list(sd = s, lower = q[1], upper = q[2],
       k_sd = sqrt((m4 - s^4) / (4 * s^2)),
       k_lower = sqrt(0.025 * 0.975) / f[1], k_upper = sqrt(0.025 * 0.975) / f[2])
}

cases <- list()
for (nm in names(models)) {
  md <- models[[nm]]
  em <- ols(md$m); ey <- ols(md$y)
  cm <- coef(em$fit); cy <- coef(ey$fit)
  V <- vcov(ey$fit)
  per_rule <- list()
  for (rule in names(probe)) {
    w <- probe[[rule]]
    e <- effects_at(cm, cy, w)
    entry <- list(moderator_values = w, conditional_indirect = e$indirect)
    if ("prot2:sexism" %in% names(cy)) {
      se <- sqrt(V["prot2", "prot2"] + w^2 * V["prot2:sexism", "prot2:sexism"] +
                   2 * w * V["prot2", "prot2:sexism"])
      tq <- qt(0.975, ey$fit$df.residual)
      entry$conditional_direct <- list(
        estimate = e$direct, std_error = se, t = e$direct / se,
        p_value = 2 * pt(-abs(e$direct / se), ey$fit$df.residual),
        ci_lower = e$direct - tq * se, ci_upper = e$direct + tq * se)
    }
    draws <- boot_draws(md$m, md$y, w)
    k <- length(w)
    entry$bootstrap <- list(
      index = mc_summary(draws[, 1]),
      conditional_indirect = lapply(seq_len(k), function(j) mc_summary(draws[, 1 + j])))
    per_rule[[rule]] <- entry
  }
  cases[[nm]] <- list(
    args = md$args,
    equations = list(respappr = em$out, liking = ey$out),
    index_of_moderated_mediation = unname(cm[["prot2:sexism"]] * cy[["respappr"]]),
    probes = per_rule
  )
}

res <- list(
  generated_by = "tests/reference/process_protest.R",
  r_version = R.version.string,
  psych_version = as.character(packageVersion("psych")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  data = "tests/reference/data/protest.csv",
  data_source = paste("psych::Garcia: Garcia, Schmitt, Branscombe & Ellemers (2010) Eur J Soc Psychol",
                      "40:733-745, the 'protest' data of Hayes (2013, 2018); prot2 = 1 protest",
                      "(individual or collective), 0 no protest"),
  published = published,
  n_boot = B,
  cases = cases
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/process_protest.json")
cat("wrote tests/reference/process_protest.json\n")
