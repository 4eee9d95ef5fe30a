"""Harmonise six countries' survey files (SPSS and Stata) against the shipped data dictionary.

Usage: python examples/harmonise_studies.py [OUTDIR]
"""

from _common import output_folder

import cimstats
from cimstats.datasets import write_demo_files
from cimstats.dictionary import demo_dictionary_path

out = output_folder()
demo = write_demo_files(out / "demo", seed=1)

result = cimstats.harmonise(None, demo_dictionary_path(), data_dir=demo.out_dir / "raw")
print(result.summary())
print("every target x study complete:", result.report.all_complete)

patients = result["patients"]                   # one stacked Survey with the dictionary's labels
cimstats.write_survey(patients, out / "patients.sav")
cimstats.write_survey(result["alters"], out / "alters.parquet")
cimstats.write_survey(result["alter_ties"], out / "alter_ties.parquet")  # who knows whom, one row per pair
result.report.to_excel(out / "harmonisation-report.xlsx")
print(f"Harmonised data and report written to {out}")
