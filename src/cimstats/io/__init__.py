"""Reading and writing labelled survey files (SPSS, Stata, SAS, CSV, Parquet).

``read_survey`` / ``iter_survey`` return a :class:`Survey` (data, per-variable
metadata, a record of declared missing codes); ``write_survey`` writes one
back; ``codebook`` / ``write_codebook`` describe it variable by variable.
"""

from cimstats.io.codebook import codebook, format_codebook, write_codebook
from cimstats.io.readers import iter_survey, read_survey
from cimstats.io.survey import SourceInfo, Survey, VariableMeta
from cimstats.io.writers import write_survey

__all__ = [
    "Survey",
    "VariableMeta",
    "SourceInfo",
    "read_survey",
    "iter_survey",
    "write_survey",
    "codebook",
    "write_codebook",
    "format_codebook",
]
