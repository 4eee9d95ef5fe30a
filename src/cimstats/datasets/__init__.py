"""The demo study: a synthetic six-country study of personal networks and diabetes self-management.

``cimstats.datasets`` generates, from a seed, a study with the design of a
six-country personal-network study of type 2 diabetes (England, the
Netherlands, Norway, Spain, Greece, Bulgaria; three areas of contrasting
deprivation per country; GP practices within areas; 1,700 patients naming
about 5,000 network members in three circles; a 12-month follow-up), with
known planted effects, and writes it the way each country's team would have:
SPSS and Stata files with their own names, codes, labels, missing codes and
scale directions. The harmonised schema and every raw-to-target rule are in
``SCHEMA.md`` beside this module (also :func:`raw_variable_map`).

Public names
------------
demo_study(seed)          the study (harmonised tables, hidden quantities, raw surveys)
planted_truth()           the planted parameters, in harmonised names
raw_surveys(seed)         the country files as ``Survey`` objects, keyed by file name
raw_variable_map()        raw name -> target rule, per country and file
write_demo_files(out_dir) raw files, themes, excerpts, truth and summary, written atomically
theme_codebook()          the qualitative theme codebook (themes, mechanisms, links, excerpts)
coded_excerpts()          the coded-excerpts table

Examples
--------
>>> from cimstats.datasets import demo_study, planted_truth
>>> study = demo_study(seed=1)
>>> int(study.summary().set_index("country").loc["ALL", "patients_w0"])
1700
>>> planted_truth()["mediation"]["b"]
0.3
"""

from __future__ import annotations

from cimstats.datasets._countries import COUNTRY_SPECS
from cimstats.datasets._design import COUNTRIES, COUNTRY_NAMES, TIE_TYPES, WORK_TYPES
from cimstats.datasets._study import DEFAULT_SEED, DemoStudy, demo_study
from cimstats.datasets._errors import DemoOutputError, DemoSeedError
from cimstats.datasets._qualitative import coded_excerpts, theme_codebook
from cimstats.datasets._truth import planted_truth
from cimstats.datasets._write import STEPS, DemoFiles, write_demo_files
from cimstats.datasets._countries import variable_map
from cimstats.datasets._schema import render_schema as _render


def raw_surveys(seed: int = DEFAULT_SEED) -> dict:
    """The raw country files of the demo study as ``Survey`` objects, keyed by file name.

    Examples
    --------
    >>> from cimstats.datasets import raw_surveys
    >>> files = raw_surveys(seed=1)
    >>> sorted(files)[:2]
    ['BG_alters.dta', 'BG_patients.dta']
    """
    return demo_study(seed).raw_surveys()


def raw_variable_map():
    """One row per raw column and target: how each team's variable maps to the harmonised schema.

    Returns
    -------
    pandas.DataFrame
        Columns ``country, file_kind, files, format, raw_name, target, rule,
        params, label, value_labels, missing_codes, missing_range, storage,
        measure, unit, direction``. ``rule`` is one of ``copy``, ``recode``,
        ``reverse``, ``linear``, ``format``, ``quintile``, ``constant``
        (defined in ``SCHEMA.md``); ``params`` holds its arguments.

    Examples
    --------
    >>> from cimstats.datasets import raw_variable_map
    >>> m = raw_variable_map()
    >>> m.loc[(m.country == "NL") & (m.target == "sex"), ["raw_name", "rule"]].values.tolist()
    [['geslacht', 'recode']]
    """

    return variable_map()


def render_schema() -> str:
    """The text of ``SCHEMA.md``, rendered from the country specifications."""

    return _render()


__all__ = [
    "COUNTRIES", "COUNTRY_NAMES", "COUNTRY_SPECS", "DEFAULT_SEED", "DemoFiles", "DemoOutputError",
    "DemoSeedError", "DemoStudy",
    "STEPS", "TIE_TYPES", "WORK_TYPES", "coded_excerpts", "demo_study", "planted_truth", "raw_surveys",
    "raw_variable_map", "render_schema", "theme_codebook", "write_demo_files",
]
