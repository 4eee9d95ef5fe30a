# Reference numbers for cimstats.measures.reliability.
# Run from the repository root:  Rscript tests/reference/measures.R
# Reads tests/reference/measures_items.csv (committed) and writes tests/reference/measures.json.
# measures_items.csv: 240 simulated persons answering six 5-point items generated from one
# factor (loadings 0.5-0.8; q6 negatively worded), with about 6% of answers missing at random.
suppressPackageStartupMessages({library(psych); library(jsonlite)})

items <- read.csv("tests/reference/measures_items.csv", na.strings = "NA")

alpha_case <- function(x, keys = NULL) {
  a <- if (is.null(keys)) psych::alpha(x, warnings = FALSE) else psych::alpha(x, keys = keys, warnings = FALSE)
  tot <- a$total
  list(
    items = colnames(x), keys = if (is.null(keys)) list() else keys, nrow = nrow(x),
    total = list(raw_alpha = tot$raw_alpha, std_alpha = tot$std.alpha, g6_smc = tot[["G6(smc)"]],
                 average_r = tot$average_r, s_n = tot[["S/N"]], ase = tot$ase, mean = tot$mean,
                 sd = tot$sd, median_r = tot$median_r),
    feldt = list(lower = a$feldt$lower.ci[[1]], upper = a$feldt$upper.ci[[1]]),
    alpha_drop = list(raw_alpha = a$alpha.drop$raw_alpha, std_alpha = a$alpha.drop$std.alpha,
                      g6_smc = a$alpha.drop[["G6(smc)"]], average_r = a$alpha.drop$average_r,
                      s_n = a$alpha.drop[["S/N"]], alpha_se = a$alpha.drop[["alpha se"]],
                      var_r = a$alpha.drop$var.r, median_r = a$alpha.drop$med.r),
    item_stats = list(n = a$item.stats$n, raw_r = a$item.stats$raw.r, std_r = a$item.stats$std.r,
                      r_cor = a$item.stats$r.cor, r_drop = a$item.stats$r.drop,
                      mean = a$item.stats$mean, sd = a$item.stats$sd)
  )
}

q5 <- items[, paste0("q", 1:5)]
q6 <- items[, paste0("q", 1:6)]
complete5 <- q5[complete.cases(q5), ]

cases <- list(
  complete_q1_q5 = alpha_case(complete5),
  pairwise_q1_q5 = alpha_case(q5),
  pairwise_q1_q6_keyed = alpha_case(q6, keys = c("q6")),
  complete_q1_q2 = alpha_case(items[complete.cases(items[, c("q1", "q2")]), c("q1", "q2")])
)

# one-factor ML model (stats::factanal) on the complete cases -> omega total
R <- cor(complete5)
fa1 <- factanal(covmat = R, factors = 1, n.obs = nrow(complete5))
l <- as.numeric(fa1$loadings)
if (sum(l) < 0) l <- -l
u <- 1 - l^2
omega <- list(items = colnames(complete5), loadings = l, uniquenesses = u,
              omega_total = sum(l)^2 / (sum(l)^2 + sum(u)), omega_observed = sum(l)^2 / sum(R))

out <- list(
  generated_by = "tests/reference/measures.R",
  r_version = paste(R.version$major, R.version$minor, sep = "."),
  psych_version = as.character(packageVersion("psych")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  data = "tests/reference/measures_items.csv",
  alpha = cases,
  omega_factanal = omega
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "tests/reference/measures.json")
