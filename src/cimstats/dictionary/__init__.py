"""Data dictionary, rule grammar and harmonisation of several studies.

Public names
------------
:func:`read_dictionary`, :func:`check_dictionary`, :class:`Dictionary`,
:func:`harmonise`, :class:`HarmonisationResult`, :class:`HarmonisationReport`,
:func:`draft_dictionary`, :func:`demo_dictionary_path`, and the
:mod:`~cimstats.dictionary.deprivation` module.
"""

from __future__ import annotations

from cimstats.dictionary import deprivation
from cimstats.dictionary.codes import CODES, MISSING_REASONS
from cimstats.dictionary.draft import draft_dictionary
from cimstats.dictionary.harmonise import HarmonisationReport, HarmonisationResult, harmonise
from cimstats.dictionary.rules import RULES, convert_units, parse_rule
from cimstats.dictionary.schema import Dictionary, check_dictionary, read_dictionary


def demo_dictionary_path():
    """Folder of the data dictionary shipped for the demo study (inside the installed package).

    Examples
    --------
    >>> (demo_dictionary_path() / "mappings.csv").exists()
    True
    """
    from importlib.resources import files
    from pathlib import Path

    return Path(str(files("cimstats.dictionary") / "demo_dictionary"))


__all__ = ["read_dictionary", "check_dictionary", "Dictionary", "harmonise", "HarmonisationResult",
           "HarmonisationReport", "draft_dictionary", "demo_dictionary_path", "deprivation", "CODES",
           "MISSING_REASONS", "RULES", "parse_rule", "convert_units"]
