"""Integration of the qualitative and quantitative strands.

* :func:`read_qdpx` imports REFI-QDA project exchange files (.qdpx) from
  NVivo, ATLAS.ti, MAXQDA and others into tables (codes, codings with their
  selected text, sources, users, cases, case variables).
* :func:`read_theme_codebook` loads a theme codebook (YAML or CSV): themes,
  sub-themes, mechanisms, exemplar excerpts, links to hypotheses/constructs.
* :func:`read_excerpts` / :func:`excerpts_from_qdpx` give the coded-excerpt
  table; codes map onto themes through a user-editable table
  (:func:`mapping_template`); :func:`link_cases` joins cases by pseudonymous id.
* :func:`joint_display` builds the five joint-display kinds from a results
  frame (:data:`RESULTS_SCHEMA`); meta-inferences (confirmation, expansion,
  discordance as Fetters, Curry and Creswell 2013 define them, and silence)
  are suggested by a visible rule table (:data:`DEFAULT_RULES`) and stay
  "suggested, needs review" until a named reviewer confirms or overrides
  them in a review file (:func:`read_reviews`).
* :func:`theme_prominence` and :func:`coder_agreement`: participants per
  theme, and percent agreement and Cohen's kappa between two coders.
* :mod:`~cimstats.integrate.privacy`: small-cell suppression, quote
  pseudonymisation and truncation.
"""

from cimstats.integrate.agreement import AGREEMENT_UNITS, coder_agreement, theme_prominence
from cimstats.integrate.codebook import (
    DIRECTIONS,
    INVENTED_NOTE,
    ThemeCodebook,
    CodebookError,
    theme_codebook_from_dict,
    read_theme_codebook,
)
from cimstats.integrate.displays import (
    DISPLAY_KINDS,
    MECHANISM_TABLE_COLUMNS,
    RESULTS_SCHEMA,
    JointDisplay,
    results_schema,
    joint_display,
    validate_mechanism_table,
)
from cimstats.integrate.excerpts import (
    EXCERPT_COLUMNS,
    UnmappedCodesWarning,
    excerpts_from_qdpx,
    link_cases,
    mapping_template,
    read_excerpts,
    read_mapping,
)
from cimstats.integrate.meta import (
    CONVERGENCE,
    CONVERGENCE_CODES,
    DEFAULT_RULES,
    FIT_DEFINITIONS,
    REVIEW_COLUMNS,
    REVIEW_STATUSES,
    read_reviews,
    review_template,
    META_INFERENCES,
    VERDICTS,
    combine_convergence,
    suggest_meta_inferences,
)
from cimstats.integrate.privacy import (
    IDENTIFIER_PATTERNS,
    Suppression,
    pseudonymise,
    suppress_small_counts,
    truncate_quote,
)
from cimstats.integrate.qdpx import QDAProject, read_qdpx

__all__ = [
    "read_qdpx", "QDAProject",
    "read_theme_codebook", "theme_codebook_from_dict", "ThemeCodebook", "CodebookError", "DIRECTIONS",
    "read_excerpts", "excerpts_from_qdpx", "mapping_template", "read_mapping", "link_cases",
    "EXCERPT_COLUMNS", "UnmappedCodesWarning",
    "joint_display", "JointDisplay", "DISPLAY_KINDS", "MECHANISM_TABLE_COLUMNS", "validate_mechanism_table",
    "RESULTS_SCHEMA", "results_schema",
    "suggest_meta_inferences", "DEFAULT_RULES", "META_INFERENCES", "CONVERGENCE", "VERDICTS", "combine_convergence",
    "CONVERGENCE_CODES", "FIT_DEFINITIONS", "REVIEW_COLUMNS", "REVIEW_STATUSES", "read_reviews", "review_template",
    "theme_prominence", "coder_agreement", "AGREEMENT_UNITS", "INVENTED_NOTE",
    "suppress_small_counts", "Suppression", "pseudonymise", "truncate_quote", "IDENTIFIER_PATTERNS",
]

#: names of the previous release, kept for one release ("codebook" alone also names the variable codebook of
#: cimstats.io, so the theme codebook says what it is)
_RENAMED = {"Codebook": "ThemeCodebook", "read_codebook": "read_theme_codebook",
            "codebook_from_dict": "theme_codebook_from_dict"}


def __getattr__(name: str):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"cimstats.integrate.{name} is now {_RENAMED[name]}; the old name will be removed in the next "
                      f"release.", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'cimstats.integrate' has no attribute {name!r}")
