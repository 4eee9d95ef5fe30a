"""Harmonisation speed against reading the same data with pyreadstat.

Generates ``--studies`` SPSS files that together hold ``--rows`` rows x
``--vars`` labelled variables (Likert items with a declared missing code,
reverse-keyed items, measurements in other units, categorical codes needing a
recode, and a mean score), writes a dictionary for them, then times

* ``pyreadstat.read_sav`` of every file (the peer: reading the data once),
* ``cimstats.read_survey`` of every file (for information),
* ``cimstats.harmonise`` on the surveys already in memory,

and prints the ratio harmonise / pyreadstat (target: at most 1.5).

Usage: ``python benchmarks/harmonise_speed.py [--rows 1000000] [--vars 100] [--studies 4]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cimstats.dictionary import Dictionary, harmonise  # noqa: E402
from cimstats.io import read_survey  # noqa: E402


def make_study(n: int, n_vars: int, seed: int) -> tuple[pd.DataFrame, dict, dict]:
    rng = np.random.default_rng(seed)
    cols, labels, missing = {"pid": np.arange(1, n + 1, dtype=float)}, {}, {}
    kinds = layout(n_vars)
    for name, kind in kinds:
        if kind in ("likert", "reverse"):
            x = rng.integers(1, 6, n).astype(float)
            x[rng.random(n) < 0.03] = 9
            x[rng.random(n) < 0.01] = np.nan
            labels[name] = {1: "Strongly disagree", 2: "Disagree", 3: "Neutral", 4: "Agree", 5: "Strongly agree", 9: "No answer"}
            missing[name] = [9]
        elif kind == "category":
            x = rng.integers(1, 5, n).astype(float)
            labels[name] = {1: "a", 2: "b", 3: "c", 4: "d"}
        elif kind == "hba1c":
            x = np.round(np.clip(rng.normal(7.5, 1.2, n), 4.0, 14.0), 1)
            x[rng.random(n) < 0.05] = -9
            missing[name] = [-9]
        else:  # measure in pounds
            x = np.round(np.clip(rng.normal(180, 30, n), 90.0, 400.0), 1)
        cols[name] = x
    return pd.DataFrame(cols), labels, missing


def layout(n_vars: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n_vars - 1):  # one slot is the id
        kind = ("likert", "likert", "reverse", "category", "hba1c", "weight", "likert", "likert", "reverse", "likert")[i % 10]
        out.append((f"v{i:03d}", kind))
    return out


def dictionary(n_vars: int, studies: list[str]) -> Dictionary:
    variables = [{"name": "pid", "type": "string", "key": "yes", "required": "yes"}]
    categories, mappings = [], []
    for s in studies:
        mappings.append({"target": "pid", "study": s, "rule": "id", "source": "pid", "arguments": f"prefix={s}-; width=7"})
    items = []
    for name, kind in layout(n_vars):
        t = "t" + name[1:]
        if kind in ("likert", "reverse"):
            variables.append({"name": t, "type": "ordinal", "min": 1, "max": 5})
            categories += [{"variable": t, "code": c, "label": f"c{c}"} for c in range(1, 6)]
            rule = ("direct", "") if kind == "likert" else ("reverse", "min=1; max=5")
            items.append(name)
        elif kind == "category":
            variables.append({"name": t, "type": "categorical"})
            categories += [{"variable": t, "code": c, "label": f"c{c}"} for c in (1, 2)]
            rule = ("recode", "1,2=1; 3=2; 4=2")
        elif kind == "hba1c":
            variables.append({"name": t, "type": "decimal", "unit": "mmol/mol", "min": 10, "max": 200})
            rule = ("convert", "from=%")
        else:
            variables.append({"name": t, "type": "decimal", "unit": "kg", "min": 20, "max": 300})
            rule = ("convert", "from=lb")
        for s in studies:
            mappings.append({"target": t, "study": s, "rule": rule[0], "source": name, "arguments": rule[1]})
    variables.append({"name": "item_mean", "type": "decimal", "min": 1, "max": 5})
    for s in studies:
        mappings.append({"target": "item_mean", "study": s, "rule": "mean", "source": ", ".join(items[:10]),
                         "arguments": "min_valid=8"})
    return Dictionary.from_frames(studies=[{"study": s, "country": s} for s in studies], variables=variables,
                                  categories=categories, mappings=mappings)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--vars", type=int, default=100)
    ap.add_argument("--studies", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args(argv)
    ids = [f"S{i + 1}" for i in range(a.studies)]
    per = a.rows // a.studies
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, s in enumerate(ids):
            df, labels, missing = make_study(per, a.vars, seed=i)
            p = Path(tmp) / f"{s}.sav"
            pyreadstat.write_sav(df, p, variable_value_labels=labels, missing_ranges={k: v for k, v in missing.items()})
            paths[s] = p
            del df
        d = dictionary(a.vars, ids)
        assert not d.report.has_errors, d.report.summary()

        def best(fn):
            times = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return min(times), out

        t_prs, frames = best(lambda: [pyreadstat.read_sav(p) for p in paths.values()])
        del frames
        t_read, surveys = best(lambda: {s: read_survey(p) for s, p in paths.items()})
        t_harm, res = best(lambda: harmonise(surveys, d))
        survey = res.survey
        print(f"rows {len(survey):,} x variables {a.vars} (stacked from {a.studies} studies); "
              f"report: {res.glance().loc[0, 'n_complete']} complete of {len(res.report.table)}")
        print(f"pyreadstat.read_sav (all files)     {t_prs:8.2f} s")
        print(f"cimstats.read_survey (all files)    {t_read:8.2f} s   ratio to pyreadstat {t_read / t_prs:5.2f}")
        print(f"cimstats.harmonise (in memory)      {t_harm:8.2f} s   ratio to pyreadstat {t_harm / t_prs:5.2f}  (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
