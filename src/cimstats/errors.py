"""Errors and warnings raised by cimstats.

Every error is a :class:`CimstatsError` and also inherits the matching
built-in exception, so ``except ValueError`` keeps working in user code.
Messages are one sentence naming the file, argument or row, what was found,
what was expected, and the remedy.

Data problems that should be reported together (a dictionary with several
typos, a harmonisation with several unmapped codes) are collected into a
:class:`Report` of :class:`Issue` rows with stable codes; the exception then
carries that report in its ``report`` attribute.

Examples
--------
>>> from cimstats.errors import SurveyReadError, CimstatsError
>>> issubclass(SurveyReadError, (CimstatsError, OSError))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


class CimstatsError(Exception):
    """Base class of every error cimstats raises on purpose."""

    def __init__(self, message: str, *, report: "Report | None" = None):
        super().__init__(message)
        self.report = report


class SurveyReadError(CimstatsError, OSError):
    """A survey file could not be read (missing, empty, corrupt, wrong format)."""


class SurveyWriteError(CimstatsError, OSError):
    """A survey file could not be written; nothing was left half-written."""


class MetadataError(CimstatsError, ValueError):
    """Variable metadata (labels, missing codes) are inconsistent with the data."""


class DictionaryError(CimstatsError, ValueError):
    """The data dictionary has problems; ``report`` lists all of them."""


class HarmonisationError(CimstatsError, ValueError):
    """Harmonisation found problems in strict mode; ``report`` lists all of them."""


class ScaleError(CimstatsError, ValueError):
    """An instrument definition or item responses do not fit together."""


class NetworkDataError(CimstatsError, ValueError):
    """Ego or alter tables are inconsistent (unknown egos, duplicate alters...)."""


class ModelSpecificationError(CimstatsError, ValueError):
    """A model formula or syntax cannot be fitted as written."""


class EstimationError(CimstatsError, RuntimeError):
    """The estimation failed numerically."""


class PlanError(CimstatsError, ValueError):
    """An analysis plan has problems; ``report`` lists all of them."""


class QDAImportError(CimstatsError, ValueError):
    """A qualitative-analysis project file could not be read."""


class RenderError(CimstatsError, ValueError):
    """A table or figure could not be rendered."""


class CimstatsWarning(UserWarning):
    """Base class of every warning cimstats issues."""


class ConvergenceWarning(CimstatsWarning):
    """The optimiser stopped without meeting its convergence criteria."""


class SingularFitWarning(CimstatsWarning):
    """A variance component was estimated on its boundary (zero or perfect correlation)."""


class MissingDataWarning(CimstatsWarning):
    """Rows or values were set aside because of missing data (always counted)."""


class InadmissibleSolutionWarning(CimstatsWarning):
    """A solution has negative variances or non-positive-definite matrices."""


@dataclass(frozen=True)
class Issue:
    """One problem found while checking data, a dictionary or a plan.

    ``code`` is stable across versions (e.g. ``"H103"``) so users can filter on it.
    """

    code: str
    message: str
    severity: str = "error"  # "error" | "warning" | "info"
    file: str | None = None
    row: int | None = None
    column: str | None = None
    remedy: str | None = None

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message": self.message,
            "remedy": self.remedy,
        }


@dataclass
class Report:
    """A collection of :class:`Issue` rows found in one check (lazy validation).

    Examples
    --------
    >>> r = Report()
    >>> _ = r.add("D001", "`mappings.csv` row 4 names rule 'recod'.", remedy="Use 'recode'.")
    >>> r.has_errors, len(r)
    (True, 1)
    >>> r.to_frame().columns.tolist()
    ['code', 'severity', 'file', 'row', 'column', 'message', 'remedy']
    """

    issues: list[Issue] = field(default_factory=list)

    def add(self, code: str, message: str, **kw) -> Issue:
        issue = Issue(code=code, message=message, **kw)
        self.issues.append(issue)
        return issue

    def extend(self, issues: Iterable[Issue]) -> None:
        self.issues.extend(issues)

    def __len__(self) -> int:
        return len(self.issues)

    def __iter__(self):
        return iter(self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def to_frame(self):
        import pandas as pd

        cols = ["code", "severity", "file", "row", "column", "message", "remedy"]
        return pd.DataFrame([i.as_dict() for i in self.issues], columns=cols)

    def summary(self) -> str:
        if not self.issues:
            return "No problems found."
        lines = [f"{len(self.errors)} error(s), {len(self.issues) - len(self.errors)} other issue(s):"]
        for i in self.issues:
            where = ", ".join(
                p for p in (i.file, f"row {i.row}" if i.row is not None else None,
                            f"column '{i.column}'" if i.column else None) if p
            )
            lines.append(f"  [{i.code}] {where + ': ' if where else ''}{i.message}"
                         + (f" Remedy: {i.remedy}" if i.remedy else ""))
        return "\n".join(lines)
