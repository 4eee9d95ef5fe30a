"""Reading and writing labelled survey files (SPSS, Stata, SAS, CSV, Parquet)."""

from cimstats.io.survey import SourceInfo, Survey, VariableMeta

__all__ = ["Survey", "VariableMeta", "SourceInfo"]
