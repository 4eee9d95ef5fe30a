"""What every step of the pipeline shares: the step context, the skip signal, the CSV writer, where the
saved results live, and the readers of earlier steps' files that later steps, the figures and the report use.

Results pass between steps through the result contract: the mechanisms step
saves the :class:`~cimstats.mechanisms.MechanismResult` with ``result.save``
into :data:`MECHANISM_RESULT` and every fitted model that can be saved into
``models/<model_id>/``; later steps read them back with
:func:`cimstats.load_result`. The CSV tables beside them are for people and
spreadsheets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from cimstats._files import inside
from cimstats._sheets import spreadsheet_safe_frame
from cimstats.errors import PlanError
from cimstats.integrate import read_theme_codebook
from cimstats.render.numbers import COLUMN_KINDS

from .plan import AnalysisPlan
from .results import load_result

__all__ = ["StepContext", "StepSkipped", "MECHANISM_RESULT", "model_folder", "load_mechanisms", "load_model",
           "TERM_COLUMNS", "TERM_KINDS", "TERM_LABELS", "INVARIANCE_COLUMNS", "unit_table", "unit_id",
           "mechanism_title"]

#: the folder (below OUT) the mechanisms step saves its MechanismResult to
MECHANISM_RESULT = "mechanisms/saved"

#: the columns of a model's estimates shown in the model tables, their number kinds and headings
TERM_COLUMNS = ("term", "estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper")
#: each term column's number format, from the one column-kind map
TERM_KINDS = {c: COLUMN_KINDS[c] for c in TERM_COLUMNS if c in COLUMN_KINDS}
TERM_LABELS = {"term": "Term", "estimate": "Estimate", "std_error": "SE", "statistic": "Statistic", "df": "df",
               "p_value": "p", "ci_lower": "CI lower", "ci_upper": "CI upper"}
#: the columns of a measurement-invariance table shown in the model tables
INVARIANCE_COLUMNS = ("model", "npar", "chisq", "df", "cfi", "rmsea", "srmr", "delta_cfi", "delta_rmsea",
                      "chisq_diff", "df_diff", "p_diff")


class StepSkipped(Exception):
    """A step that cannot produce anything with what is installed (the message says why)."""


@dataclass
class StepContext:
    """What a step gets: the plan, the output folder (read), the staging folder (write)."""

    plan: AnalysisPlan
    out: Path
    stage: Path
    notes: list = field(default_factory=list)
    #: where repeated fits run (None: this machine; or a Dask scheduler address); never changes a result
    scheduler: str | None = None

    def path(self, rel: str) -> Path:
        """Where to write ``rel`` (created folders included), checked to lie inside the staging folder.

        Raises
        ------
        PlanError
            ``rel`` (built from an id of the plan) would climb out of the folder.
        """
        p = inside(self.stage, rel, error=PlanError)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def read(self, rel: str) -> Path:
        return self.out / rel


def _write_csv(df: pd.DataFrame, path: Path, *, spreadsheet_safe: bool = False) -> None:
    """Write a table as CSV (fixed float format, so identical numbers give identical bytes).

    ``spreadsheet_safe`` marks the CSV files meant to be opened in a
    spreadsheet whose text comes from survey files, the dictionary or QDA
    projects (codebooks, harmonisation reports, joint displays): text that
    would start a formula gets a leading apostrophe
    (:func:`cimstats._sheets.spreadsheet_safe_frame`; the report reads them
    back with :func:`cimstats._sheets.restore_spreadsheet_frame`).
    """
    if spreadsheet_safe:
        df = spreadsheet_safe_frame(df)
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n", float_format="%.10g")


def _caught(ws) -> list[str]:
    out = []
    for w in ws:
        msg = f"{w.category.__name__}: {w.message}"
        if msg not in out:
            out.append(msg)
    return out


def model_folder(model_id: str) -> str:
    """The folder (below OUT) a fitted model of the mechanism plan is saved to."""
    return f"models/{model_id}"


def load_mechanisms(out: Path):
    """The :class:`~cimstats.mechanisms.MechanismResult` the mechanisms step saved, or None when there is none."""
    folder = Path(out) / MECHANISM_RESULT
    return load_result(folder) if (folder / "result.json").is_file() else None


def load_model(out: Path, model_id: str):
    """The saved fitted model ``model_id`` of the mechanism plan, or None when it was not saved."""
    folder = Path(out) / model_folder(model_id)
    return load_result(folder) if (folder / "result.json").is_file() else None


def _codebook(plan: AnalysisPlan):
    q = plan.sections["qualitative"]
    if q["codebook"] == "demo":
        return read_theme_codebook(Path(str(resources.files("cimstats.datasets") / "data" / "themes.yaml")))
    return read_theme_codebook(q["codebook"])


def unit_table(plan: AnalysisPlan) -> str:
    """The harmonised table with one row per study participant (and wave), which the analysis steps read.

    ``patients`` when the data have a table of that name (as the demo study
    does); otherwise the dictionary's first table other than ``alters`` (a
    school study's ``pupils``, say).
    """
    src = plan.sections["sources"]
    if src.get("harmonised"):
        names = list(src["harmonised"])
    else:
        d = plan.dictionary
        names = [t or "patients" for t in d.tables] if d is not None else []
    if "patients" in names:
        return "patients"
    return next((n for n in names if n not in ("alters", "alter_ties")), "patients")


def unit_id(plan: AnalysisPlan) -> str:
    """The identifier of the unit table: its dictionary key other than ``wave`` (``patient_id`` by default)."""
    d = plan.dictionary
    table = unit_table(plan)
    if d is None or table == "patients":
        return "patient_id"
    targets = d.tables.get(table) or d.tables.get("") or {}
    keys = [n for n, t in targets.items() if t.key and n != "wave"]
    return keys[0] if keys else "patient_id"


def mechanism_title(plan: AnalysisPlan, result=None) -> str:
    """The title of the mechanism table and forest plot: the shipped plan's, or one naming the user's plan."""
    spec = plan.sections.get("mechanisms") or {}
    if spec.get("plan_file") in (None, "default"):
        return "Pre-specified tests of network mechanisms"
    name = getattr(result, "plan_name", None) or plan.name
    return f"Pre-specified tests of the mechanisms of plan {name}"
