# Regenerate every reference file the Python tests compare against.
#
# Run with:  Rscript tests/reference/make_refs.R            (all areas)
#      or:   Rscript tests/reference/make_refs.R lmm glmm   (some areas)
#
# Each tests/reference/<area>.R script is run in its own R process (so packages
# attached or random-number state in one script cannot affect another), with the
# repository root as working directory; each writes <area>.json (with the R and
# package versions used) and any datasets under tests/reference/data/.
# Needs R with lme4, lmerTest, lavaan, semTools, psych, mlmRev, pbkrtest, survey, mice and jsonlite
# (Debian: r-cran-lme4, r-cran-lmertest, r-cran-lavaan, r-cran-semtools,
# r-cran-psych, r-cran-mlmrev, r-cran-jsonlite).

this_file <- local({
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  src <- if (length(arg) == 1) sub("^--file=", "", arg) else
    tryCatch(sys.frame(1)$ofile, error = function(e) NULL)
  if (is.null(src) || !nzchar(src)) file.path("tests", "reference", "make_refs.R") else normalizePath(src)
})
ref_dir <- dirname(normalizePath(this_file))
repo_root <- normalizePath(file.path(ref_dir, "..", ".."))

scripts <- sort(list.files(ref_dir, pattern = "\\.R$", full.names = TRUE))
scripts <- scripts[basename(scripts) != "make_refs.R"]
wanted <- commandArgs(trailingOnly = TRUE)
if (length(wanted)) {
  unknown <- setdiff(wanted, sub("\\.R$", "", basename(scripts)))
  if (length(unknown)) stop("no reference script for: ", paste(unknown, collapse = ", "),
                            "; available: ", paste(sub("\\.R$", "", basename(scripts)), collapse = ", "))
  scripts <- scripts[sub("\\.R$", "", basename(scripts)) %in% wanted]
}

rscript <- file.path(R.home("bin"), "Rscript")
failed <- character(0)
old_wd <- setwd(repo_root)
for (s in scripts) {
  cat(sprintf("== %s\n", basename(s)))
  started <- Sys.time()
  status <- system2(rscript, shQuote(s))
  cat(sprintf("   %s in %.0f s\n", if (status == 0) "done" else paste("FAILED, exit status", status),
              as.numeric(difftime(Sys.time(), started, units = "secs"))))
  if (status != 0) failed <- c(failed, basename(s))
}
setwd(old_wd)
if (length(failed)) stop("reference scripts that failed: ", paste(failed, collapse = ", "))
cat("all reference files written under", ref_dir, "\n")
