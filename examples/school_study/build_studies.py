"""Build the school example's two study files from the London schools examination data.

The committed ``data/exam.csv`` (mlmRev's ``Exam``: 4,059 pupils in 65 London
schools; see ``data/README.md``) is split between two teams that coded their
files differently, as two real studies would:

* ``nl_scholen.sav`` (SPSS, odd school numbers): Dutch variable names and
  labels, sex coded 0 = jongen / 1 = meisje, the reading test at intake as
  percent correct, and a declared missing code 9 "geen antwoord" in the
  verbal-reasoning band of some pupils.
* ``en_schools.dta`` (Stata, even school numbers): English names, sex coded
  1 = girl / 2 = boy, the reading test as a proportion correct, and an
  undeclared code -99 "not collected" (labelled, not declared missing) in the
  reading test of some pupils.

Usage::

    python examples/school_study/build_studies.py [OUTDIR]      # default: examples/school_study/raw

The files are the same on every run (no randomness beyond a fixed seed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cimstats import write_survey
from cimstats.io import Survey, VariableMeta

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "exam.csv"
SEED = 20261207
#: reading test at intake: standLRT (standardised) as percent correct, 50 + 15 * standLRT
PCT_CENTRE, PCT_SCALE = 50.0, 15.0

__all__ = ["build_studies", "read_exam"]


def read_exam(path: str | Path = DATA) -> pd.DataFrame:
    """The committed export of mlmRev's ``Exam`` (one row per pupil)."""
    return pd.read_csv(path)


def _marked(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask marking about ``share`` of ``n`` rows (at least one)."""
    k = max(1, int(round(n * share)))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def _pupil_numbers(d: pd.DataFrame) -> pd.Series:
    """Pupils numbered 1, 2, ... within each school, in the order of the data.

    ``Exam``'s own student numbers repeat within a few schools (4 pairs), so
    they cannot identify a pupil; the files carry a record number instead.
    """
    return (d.groupby("school").cumcount() + 1).astype(float)


def _dutch(d: pd.DataFrame, rng: np.random.Generator) -> Survey:
    vr = d["vr"].to_numpy(dtype=float, copy=True)
    vr[_marked(len(d), 0.02, rng)] = 9  # "geen antwoord": declared missing
    band_nl = {1: "onderste 25%", 2: "middelste 50%", 3: "bovenste 25%"}
    raw = pd.DataFrame({
        "schoolnr": d["school"].astype(float),
        "leerling": _pupil_numbers(d),
        "examen": d["normexam"],
        "lezen_pct": (PCT_CENTRE + PCT_SCALE * d["standLRT"]).round(4),
        "geslacht": d["sex"].map({"M": 0.0, "F": 1.0}),
        "schooltype": d["schgend"].map({"mixed": 1.0, "boys": 2.0, "girls": 3.0}),
        "schoolgem": d["schavg"],
        "verbaal": vr,
        "instroom": d["intake"].astype(float),
    })
    meta = {
        "schoolnr": VariableMeta("schoolnr", label="Schoolnummer", measure="nominal"),
        "leerling": VariableMeta("leerling", label="Leerlingnummer binnen de school", measure="nominal"),
        "examen": VariableMeta("examen", label="Examenscore op 16 jaar (gestandaardiseerd)", measure="scale"),
        "lezen_pct": VariableMeta("lezen_pct", label="Leestoets bij instroom (percentage goed)", measure="scale"),
        "geslacht": VariableMeta("geslacht", label="Geslacht", value_labels={0: "jongen", 1: "meisje"},
                                 measure="nominal"),
        "schooltype": VariableMeta("schooltype", label="Soort school",
                                   value_labels={1: "gemengd", 2: "jongensschool", 3: "meisjesschool"},
                                   measure="nominal"),
        "schoolgem": VariableMeta("schoolgem", label="Gemiddelde instroomscore van de school", measure="scale"),
        "verbaal": VariableMeta("verbaal", label="Verbaal redeneren bij instroom (band)",
                                value_labels={**band_nl, 9: "geen antwoord"}, missing_codes=(9,),
                                measure="ordinal"),
        "instroom": VariableMeta("instroom", label="Instroomscore (band)", value_labels=band_nl, measure="ordinal"),
    }
    return Survey.from_raw(raw, meta=meta)


def _english(d: pd.DataFrame, rng: np.random.Generator) -> Survey:
    reading = ((PCT_CENTRE + PCT_SCALE * d["standLRT"]) / 100).round(6).to_numpy(dtype=float, copy=True)
    reading[_marked(len(d), 0.02, rng)] = -99  # "not collected": labelled, but not declared missing
    band = {1: "bottom 25%", 2: "middle 50%", 3: "top 25%"}
    raw = pd.DataFrame({
        "school_no": d["school"].astype(float),
        "pupil_no": _pupil_numbers(d),
        "exam_score": d["normexam"],
        "reading_prop": reading,
        "sex": d["sex"].map({"F": 1.0, "M": 2.0}),
        "school_gender": d["schgend"].map({"mixed": 1.0, "boys": 2.0, "girls": 3.0}),
        "school_avg": d["schavg"],
        "vr_band": d["vr"].astype(float),
        "intake_band": d["intake"].astype(float),
    })
    meta = {
        "school_no": VariableMeta("school_no", label="School number"),
        "pupil_no": VariableMeta("pupil_no", label="Pupil number within school"),
        "exam_score": VariableMeta("exam_score", label="Exam score at 16 (standardised)"),
        "reading_prop": VariableMeta("reading_prop", label="Reading test at intake (proportion correct)",
                                     value_labels={-99: "not collected"}),
        "sex": VariableMeta("sex", label="Sex of pupil", value_labels={1: "girl", 2: "boy"}),
        "school_gender": VariableMeta("school_gender", label="School gender",
                                      value_labels={1: "mixed", 2: "boys", 3: "girls"}),
        "school_avg": VariableMeta("school_avg", label="School average intake score"),
        "vr_band": VariableMeta("vr_band", label="Verbal reasoning band at intake", value_labels=band),
        "intake_band": VariableMeta("intake_band", label="Intake score band", value_labels=band),
    }
    return Survey.from_raw(raw, meta=meta)


def build_studies(out_dir: str | Path, *, data: str | Path = DATA) -> dict[str, Path]:
    """Write the two teams' files into ``out_dir``; returns ``{study id: path}``.

    Odd-numbered schools go to the Dutch team's SPSS file, even-numbered
    schools to the English team's Stata file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exam = read_exam(data)
    rng = np.random.default_rng(SEED)
    odd = exam["school"] % 2 == 1
    nl = _dutch(exam.loc[odd].reset_index(drop=True), rng)
    en = _english(exam.loc[~odd].reset_index(drop=True), rng)
    paths = {"nl_scholen": out / "nl_scholen.sav", "en_schools": out / "en_schools.dta"}
    write_survey(nl, paths["nl_scholen"], file_label="Examenresultaten Londense scholen (team NL)")
    write_survey(en, paths["en_schools"], file_label="London schools exam results (team EN)")
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "raw"
    for study, path in build_studies(target).items():
        print(f"{study}: {path}")
