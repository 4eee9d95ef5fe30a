"""What every step of the pipeline shares: the step context, the skip signal, the CSV writer, and the
readers of earlier steps' files that later steps, the figures and the report use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from cimstats._files import inside
from cimstats._sheets import spreadsheet_safe_frame
from cimstats.errors import PlanError
from cimstats.integrate import read_codebook
from cimstats.mechanisms import MechanismResult, VerdictRules

from .plan import AnalysisPlan

__all__ = ["StepContext", "StepSkipped", "mechanism_result_from_files"]


class StepSkipped(Exception):
    """A step that cannot produce anything with what is installed (the message says why)."""


@dataclass
class StepContext:
    """What a step gets: the plan, the output folder (read), the staging folder (write)."""

    plan: AnalysisPlan
    out: Path
    stage: Path
    notes: list = field(default_factory=list)

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


def mechanism_result_from_files(out: Path):
    """A :class:`MechanismResult` view (table, models, rules) read back from the mechanisms step's files."""
    t = pd.read_csv(out / "mechanisms/mechanism_table.csv", keep_default_na=False, na_values=[""])
    for c in ("statement", "theme_ids", "required_variables", "diagnostics", "verdict_reason", "model"):
        if c in t.columns:
            t[c] = t[c].fillna("").astype(str)
    meta = json.loads((out / "mechanisms/result.json").read_text(encoding="utf-8"))
    models = pd.read_csv(out / "mechanisms/models.csv", keep_default_na=False, na_values=[""])
    plan = type("PlanName", (), {"name": meta["plan"]})()
    return MechanismResult(table=t, models=models, fits={}, plan=plan, rules=VerdictRules(level=meta["level"]),
                           adjust=meta["adjust"], seed=meta["seed"], n_boot=meta["n_boot"],
                           waves=tuple(meta["waves"]), rules_text=meta["rules_text"]), meta


def _codebook(plan: AnalysisPlan):
    q = plan.sections["qualitative"]
    if q["codebook"] == "demo":
        return read_codebook(Path(str(resources.files("cimstats.datasets") / "data" / "themes.yaml")))
    return read_codebook(q["codebook"])
