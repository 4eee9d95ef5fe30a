"""Inspect an SPSS file: labels, value labels and declared missing codes, kept and shown.

Usage: python examples/inspect_spss.py [OUTDIR] (writes one demo country file there first).
"""

from _common import output_folder

import cimstats
from cimstats.datasets import write_demo_files
from cimstats.io import write_codebook

out = output_folder()
demo = write_demo_files(out / "demo", seed=1)
path = demo.out_dir / "raw" / "EN_patients_baseline.sav"

survey = cimstats.read_survey(path)
print(survey)                                   # rows, variables, cells holding declared missing codes
codebook = survey.codebook()
print(codebook[["name", "label", "missing_codes", "n_valid", "n_declared_missing"]].head(12).to_string())

# which cells held which missing code (e.g. 98 "don't know" vs 99 "refused")
print(survey.missing.apply(lambda col: col.value_counts()).T.dropna(how="all").head())

write_codebook(codebook, out / "EN_patients_codebook.xlsx")
print(f"Codebook written to {out / 'EN_patients_codebook.xlsx'}")
