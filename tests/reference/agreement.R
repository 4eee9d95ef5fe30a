# Reference numbers for cimstats.measures.agreement: ICC(1), ICC(2) and rwg / rwg(j) of a group-level
# (shared) construct such as collective efficacy.
#
# ICC(1) and ICC(2) from a one-way ANOVA of the score on the group (base R aov), as
# multilevel::ICC1 / ICC2 (Bliese) define them: ICC1 = (MSB - MSW) / (MSB + (k - 1) MSW) with k the
# mean group size N / J (psych::statsBy uses the same k); ICC2 = (MSB - MSW) / MSB. The variant with
# the adjusted group size k0 = (N - sum(n_j^2) / N) / (J - 1) is computed by hand from the same
# mean squares. rwg and rwg(j) (James, Demaree & Wolf 1984) from multilevel::rwg / rwg.j: expected
# null variance (A^2 - 1) / 12 for A answer options (2 for A = 5), observed variances larger than it
# truncated (rwg = 0), groups of one member NA.
#
# Run from the repository root:  Rscript tests/reference/agreement.R
# Writes tests/reference/agreement.json and tests/reference/data/agreement_efficacy.csv.
suppressPackageStartupMessages({
  library(multilevel)
  library(jsonlite)
})

set.seed(20261207)
J <- 40
size <- sample(c(1, 2, 3:15), J, replace = TRUE)
size[1] <- 1                                     # a neighbourhood with one respondent
hood <- rep(sprintf("N%02d", seq_len(J)), size)
shared <- rnorm(J, sd = 0.6)[rep(seq_len(J), size)]
n <- length(hood)
likert <- function(z) pmin(pmax(round(3 + z), 1), 5)
items <- sapply(1:4, function(i) likert(shared + rnorm(n, sd = 0.9)))
colnames(items) <- paste0("ce", 1:4)
d <- data.frame(hood = hood, items)
# one neighbourhood answers all over the scale (its variance exceeds the null variance)
wild <- which(d$hood == d$hood[which(size[match(d$hood, sprintf("N%02d", 1:J))] >= 6)[1]])
d[wild, paste0("ce", 1:4)] <- matrix(rep(c(1, 5), length.out = length(wild) * 4), ncol = 4)
d$ce4[c(5, 17)] <- NA                            # missing answers
d$score <- rowMeans(d[, paste0("ce", 1:4)])
write.csv(d, file.path("tests", "reference", "data", "agreement_efficacy.csv"), row.names = FALSE, na = "")

icc_case <- function(y, g) {
  ok <- !is.na(y)
  y <- y[ok]
  g <- factor(g[ok])
  a <- aov(y ~ g)
  tab <- summary(a)[[1]]
  msb <- tab[1, 3]
  msw <- tab[2, 3]
  N <- length(y)
  nj <- as.numeric(table(g))
  k0 <- (N - sum(nj^2) / N) / (length(nj) - 1)
  list(icc1 = ICC1(a), icc2 = ICC2(a), msb = msb, msw = msw, df_between = tab[1, 1],
       df_within = tab[2, 1], k_mean = N / length(nj), k_adjusted = k0,
       icc1_adjusted = (msb - msw) / (msb + (k0 - 1) * msw), n = N, groups = length(nj))
}

rwg_case <- function(x, ranvar) {
  r <- rwg(x, d$hood, ranvar = ranvar)
  list(group = as.character(r$grpid), rwg = r$rwg, size = r$gsize)
}
rwgj_case <- function(cols, ranvar) {
  r <- rwg.j(d[, cols], d$hood, ranvar = ranvar)
  list(group = as.character(r$grpid), rwg_j = r$rwg.j, size = r$gsize)
}

out <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  multilevel = as.character(packageVersion("multilevel")),
  icc_score = icc_case(d$score, d$hood),
  icc_ce1 = icc_case(d$ce1, d$hood),
  rwg_ce1_uniform5 = rwg_case(d$ce1, 2),
  rwg_ce1_skewed = rwg_case(d$ce1, 1.34),
  rwgj_uniform5 = rwgj_case(paste0("ce", 1:4), 2),
  rwgj_three_items = rwgj_case(paste0("ce", 1:3), 2)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           file.path("tests", "reference", "agreement.json"))
