# Export the London schools examination data (mlmRev::Exam) to exam.csv, once.
#
# Run from the repository root with:  Rscript examples/school_study/data/export_exam.R
# The CSV is committed, so the example and its tests run without R.
# Writes examples/school_study/data/exam.csv and exam_versions.json (R and mlmRev versions used).
suppressPackageStartupMessages(library(mlmRev))
data(Exam, package = "mlmRev")
out_dir <- file.path("examples", "school_study", "data")
x <- Exam
# Plain codes, as a survey file would hold them; the factor labels are documented in README.md.
csv <- data.frame(
  school = as.integer(as.character(x$school)),
  student = as.integer(as.character(x$student)),
  normexam = round(x$normexam, 7),
  standLRT = round(x$standLRT, 7),
  sex = as.character(x$sex),                 # F, M
  schgend = as.character(x$schgend),         # mixed, boys, girls
  schavg = round(x$schavg, 7),
  vr = as.integer(x$vr),                     # 1 bottom 25%, 2 mid 50%, 3 top 25%
  intake = as.integer(x$intake),             # 1 bottom 25%, 2 mid 50%, 3 top 25%
  type = as.character(x$type)                # Mxd, Sngl
)
write.csv(csv, file.path(out_dir, "exam.csv"), row.names = FALSE, quote = FALSE)
versions <- sprintf('{"R": "%s", "mlmRev": "%s", "rows": %d, "schools": %d}\n',
                    paste(R.version$major, R.version$minor, sep = "."),
                    as.character(packageVersion("mlmRev")), nrow(csv), length(unique(csv$school)))
cat(versions, file = file.path(out_dir, "exam_versions.json"))
