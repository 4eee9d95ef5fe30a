"""The steps of an analysis run: each reads published files, writes its own files into a staging folder.

Every step function takes a :class:`StepContext` and writes only below
``ctx.stage`` (the paths it writes are the paths it will have under ``OUT``);
it reads the outputs of earlier steps from ``ctx.out``. It returns a small dict
of facts (counts, notes) kept in the step's cache record and in the manifest.
Steps talk to each other only through files, so a step whose input files and
plan sections have not changed can be skipped. Fitted results pass through the
result contract: the mechanisms step saves them with ``result.save`` and later
steps read them with :func:`cimstats.load_result` (see
:mod:`cimstats.pipeline.context`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from cimstats.errors import CimstatsError, PlanError
from cimstats.models._result import FittedResult
from cimstats.render.numbers import COLUMN_KINDS, NumberFormat

from . import figures as F
from .context import (INVARIANCE_COLUMNS, MECHANISM_RESULT, TERM_KINDS, TERM_LABELS, StepContext,  # noqa: F401
                      StepSkipped, _caught, _codebook, _write_csv, load_mechanisms, model_folder, mechanism_title,
                      unit_id, unit_table)
from .plan import AnalysisPlan
from .report import build_report
from cimstats.datasets import coded_excerpts
from cimstats.datasets import write_demo_files
from cimstats.dictionary import harmonise, read_dictionary
from cimstats.integrate import excerpts_from_qdpx, read_excerpts, read_mapping, read_qdpx
from cimstats.integrate import joint_display
from cimstats.io import read_survey, write_survey
from cimstats.measures import networks as nw
from cimstats.measures import score_scale
from cimstats.measures.constructs import Measures
from cimstats.measures.networks import measures as M
from cimstats.measures.reliability import scale_reliability
from cimstats.measures.scales.instrument import load_instrument
from cimstats.mechanisms import read_mechanism_plan
from cimstats.mechanisms import test_mechanisms
from cimstats.mechanisms.shared import MEMBER_CE_ITEMS, shared_efficacy
from cimstats.mechanisms.pooled import test_mechanisms_imputed
from cimstats.render import TableSpec
from cimstats.render import render

__all__ = ["StepContext", "StepSkipped", "STEP_FUNCTIONS"]

_KEYS = ["patient_id", "wave"]


def _json(obj: Any) -> str:
    def default(v):
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (np.floating,)):
            return None if not np.isfinite(v) else float(v)
        if isinstance(v, Path):
            return v.as_posix()
        return str(v)

    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, default=default) + "\n"


def _render_all(spec, base: Path, formats: list[str]) -> list[str]:
    """Render a TableSpec to every requested format (CSV is written by the caller from the data)."""

    written = []
    for fmt in formats:
        if fmt == "csv":
            continue
        p = base.with_suffix(f".{fmt}")
        p.parent.mkdir(parents=True, exist_ok=True)
        render(spec, p)
        written.append(p.name)
    return written


def _patients(ctx: StepContext) -> pd.DataFrame:
    """The unit table; its identifier is also given as ``patient_id`` (the key the analysis steps join on)."""
    p = pd.read_parquet(ctx.read(f"data/{unit_table(ctx.plan)}.parquet"))
    uid = unit_id(ctx.plan)
    if "patient_id" not in p.columns and uid in p.columns:
        p.insert(0, "patient_id", p[uid])
    return p


def _alters(ctx: StepContext) -> pd.DataFrame | None:
    p = ctx.read("data/alters.parquet")
    return pd.read_parquet(p) if p.is_file() else None


def _alter_ties(ctx: StepContext) -> pd.DataFrame | None:
    """The harmonised alter-alter tie table (who knows whom), when the data have one."""
    p = ctx.read("data/alter_ties.parquet")
    return pd.read_parquet(p) if p.is_file() else None


# =========================================================================== demo files
def step_demo_files(ctx: StepContext) -> dict:
    """Write the demo study's raw country files, themes, coded excerpts and planted truth."""

    seed = ctx.plan.seeds["data"]
    res = write_demo_files(ctx.stage / "study", seed=seed)
    study = ctx.stage / "study"
    for name in ("raw", "qualitative", "truth"):
        (study / name).rename(ctx.stage / name)
    (study / "SCHEMA.md").rename(ctx.stage / "SCHEMA.md")
    (study / "summary.txt").rename(ctx.stage / "study_summary.txt")
    (study / "summary.md").rename(ctx.stage / "study_summary.md")
    study.rmdir()
    return {"seed": seed, "files": int((res.files["kind"] == "raw").sum()),
            "summary": res.text.splitlines()[0]}


# =========================================================================== harmonise
def raw_folder(plan: AnalysisPlan, out: Path) -> Path | None:
    src = plan.sections["sources"]
    if src["demo"]:
        return out / "raw"
    return Path(src["raw"]) if src.get("raw") else None


def step_harmonise(ctx: StepContext) -> dict:
    """Harmonise the raw files with the data dictionary; write the data (every format) and the report."""

    src = ctx.plan.sections["sources"]
    d = ctx.plan.dictionary  # read once, when the plan was checked
    if d is None:
        d = read_dictionary(src["dictionary"]["path"], strict=False)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        res = harmonise(None, d, data_dir=raw_folder(ctx.plan, ctx.out),
                        accept=ctx.plan.sections.get("accept") or ())
    notes = _caught(ws)
    rep = res.report
    if rep.has_errors:
        first = rep.issues.errors[0]
        raise PlanError(f"Harmonisation found {len(rep.issues.errors)} error(s) (first: [{first.code}] "
                        f"{first.message}); see the dictionary check (cimstats dictionary check) and fix them.",
                        report=rep.issues)
    formats = ["parquet"] + [f for f in ctx.plan.sections["outputs"]["data"] if f != "parquet"]
    info: dict = {"tables": {}, "notes": notes}
    for table, survey in res.surveys.items():
        name = table or "patients"
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            for fmt in formats:
                write_survey(survey, ctx.path(f"data/{name}.{fmt}"), format=fmt)
        info["notes"] += [n for n in _caught(ws) if n not in info["notes"]]
        cb = survey.codebook()
        # text columns as text, with missing cells left empty (not the word "nan") under every pandas version
        text = {c: cb[c].where(cb[c].isna(), cb[c].astype(str)) for c in cb.columns if cb[c].dtype == object}
        _write_csv(cb.assign(**text), ctx.path(f"data/{name}_codebook.csv"), spreadsheet_safe=True)
        info["tables"][name] = {"rows": int(survey.shape[0]), "variables": int(survey.shape[1])}
    _write_csv(rep.table, ctx.path("harmonisation/report.csv"), spreadsheet_safe=True)
    _write_csv(rep.unmapped, ctx.path("harmonisation/unmapped.csv"), spreadsheet_safe=True)
    _write_csv(rep.issues.to_frame(), ctx.path("harmonisation/issues.csv"), spreadsheet_safe=True)
    rep.to_excel(ctx.path("harmonisation/report.xlsx"))
    rep.to_html(ctx.path("harmonisation/report.html"))
    ctx.path("harmonisation/summary.txt").write_text(rep.summary() + "\n", encoding="utf-8")
    info["status"] = {str(k): int(v) for k, v in rep.table["status"].value_counts().sort_index().items()}
    info["studies"] = int(rep.table["study"].nunique())
    return info


def step_load_harmonised(ctx: StepContext) -> dict:
    """Read an already harmonised dataset and write it in every requested format."""

    src = ctx.plan.sections["sources"]["harmonised"]
    formats = ["parquet"] + [f for f in ctx.plan.sections["outputs"]["data"] if f != "parquet"]
    info: dict = {"tables": {}, "notes": []}
    for name, path in src.items():
        survey = read_survey(path)
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            for fmt in formats:
                write_survey(survey, ctx.path(f"data/{name}.{fmt}"), format=fmt)
        info["notes"] += _caught(ws)
        cb = survey.codebook()
        # text columns as text, with missing cells left empty (not the word "nan") under every pandas version
        text = {c: cb[c].where(cb[c].isna(), cb[c].astype(str)) for c in cb.columns if cb[c].dtype == object}
        _write_csv(cb.assign(**text), ctx.path(f"data/{name}_codebook.csv"), spreadsheet_safe=True)
        info["tables"][name] = {"rows": int(survey.shape[0]), "variables": int(survey.shape[1])}
    return info


# =========================================================================== scales
def step_scales(ctx: StepContext) -> dict:
    """Score every instrument of the plan; reliability per score; how each score was obtained."""

    p = _patients(ctx)
    keys = [c for c in ("patient_id", "wave", "country") if c in p.columns]
    wide = p[keys].copy()
    status_rows, rel_frames, notes = [], [], []
    for spec in ctx.plan.sections["instruments"]:
        ins = load_instrument(spec["instrument"])
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            sc = score_scale(p, ins, items=spec.get("items"), scores=spec.get("scores"), out_of_range="report")
        notes += _caught(ws)
        for issue in sc.report:
            notes.append(f"{ins.id}: [{issue.code}] {issue.message}")
        for c in sc.scores.columns:
            wide[c] = sc.scores[c].to_numpy()
        counts = sc.detail.groupby(["score", "status"]).size().unstack(fill_value=0)
        for sid, r in counts.iterrows():
            status_rows.append({"instrument": ins.id, "score": sid, "label": ins.score(sid).label,
                                "rule": ins.score(sid).rule,
                                "n_complete": int(r.get("complete", 0)), "n_prorated": int(r.get("prorated", 0)),
                                "n_missing": int(r.get("missing", 0))})
        try:
            with warnings.catch_warnings(record=True) as ws:
                warnings.simplefilter("always")
                base = p.loc[p["wave"] == 0] if "wave" in p.columns else p
                rel = scale_reliability(base, ins, items=spec.get("items"), scores=spec.get("scores"))
            notes += _caught(ws)
            rel.insert(0, "instrument", ins.id)
            rel_frames.append(rel)
        except CimstatsError as exc:
            notes.append(f"{ins.id}: reliability not computed ({exc})")
    wide.to_parquet(ctx.path("scales/scores.parquet"), index=False)
    _write_csv(wide, ctx.path("scales/scores.csv"))
    status = pd.DataFrame(status_rows, columns=["instrument", "score", "label", "rule", "n_complete", "n_prorated",
                                                "n_missing"])
    _write_csv(status, ctx.path("scales/score_status.csv"))
    rel = pd.concat(rel_frames, ignore_index=True) if rel_frames else pd.DataFrame(columns=["instrument"])
    _write_csv(rel, ctx.path("scales/reliability.csv"))
    return {"instruments": [s["instrument"] if "/" not in s["instrument"] else Path(s["instrument"]).name
                            for s in ctx.plan.sections["instruments"]],
            "scores": int(len(status)), "notes": notes}


# =========================================================================== networks
def step_networks(ctx: StepContext) -> dict:
    """Ego-network measures per patient and wave, and network change between the waves."""

    spec = ctx.plan.sections["networks"]
    p = _patients(ctx)
    a = _alters(ctx)
    if a is None:
        raise PlanError("The plan asks for network measures but the harmonised data have no alters table; "
                        "add an alters table to the dictionary or remove the networks section.")
    egos = p[[c for c in ("patient_id", "wave", "country", "practice_id") if c in p.columns]].copy()
    ties = _alter_ties(ctx)  # with it: density, effective size, constraint and brokerage roles
    net = nw.ego_networks(a, egos=egos, ties=ties)
    m = nw.ego_measures(net, join=False)
    if spec["measures"] != "all":

        parts = [getattr(M, f)(net) for f in spec["measures"]]
        k = len(net.keys)
        m = pd.concat([net.key_frame()] + [x.iloc[:, k:] for x in parts], axis=1)
    m.to_parquet(ctx.path("networks/ego_measures.parquet"), index=False)
    _write_csv(m, ctx.path("networks/ego_measures.csv"))
    num = m.select_dtypes("number").drop(columns=[c for c in ("wave",) if c in m.columns])
    by = m["wave"] if "wave" in m.columns else pd.Series(0, index=m.index)
    rows = []
    for w, g in num.groupby(by):
        for c in num.columns:
            v = g[c].dropna()
            rows.append({"wave": w, "measure": c, "n": int(v.size), "mean": float(v.mean()) if v.size else np.nan,
                         "sd": float(v.std()) if v.size > 1 else np.nan})
    _write_csv(pd.DataFrame(rows), ctx.path("networks/summary.csv"))
    info: dict = {"egos": int(len(m)), "measures": int(num.shape[1]),
                  "alter_ties": None if net.ties is None else int(len(net.ties))}
    if spec["change"] and "wave" in p.columns and p["wave"].nunique() > 1:
        ch = nw.change(net, waves=tuple(spec["change_waves"]))
        _write_csv(ch.egos, ctx.path("networks/change.csv"))
        # exact copies for the mechanisms step, which uses these instead of computing them again
        ch.egos.to_parquet(ctx.path("networks/change.parquet"), index=False)
        ch.alters.to_parquet(ctx.path("networks/change_alters.parquet"), index=False)
        info["change_egos"] = int(len(ch.egos))
        info["change_dropped"] = {str(k): int(v) for k, v in dict(ch.n_dropped).items()}
    return info


# =========================================================================== mechanisms
def mechanism_plan(plan: AnalysisPlan):
    """The mechanism plan: the one read when the analysis plan was checked (read here only if there is none)."""

    if plan.mechanism_plan is not None:
        return plan.mechanism_plan
    spec = plan.sections["mechanisms"]
    return read_mechanism_plan(spec["plan"], source=str(spec["plan_file"] or "mechanisms.plan"), constructs=plan.constructs)


def measures_from_files(plan: AnalysisPlan, out: Path):
    """The constructs the scales and networks steps computed, as the mechanism tests' ``measures=``."""

    ego = None
    files = (["scales/scores.parquet"] if plan.sections.get("instruments") else []) + \
        (["networks/ego_measures.parquet"] if plan.sections.get("networks") else [])
    for rel in files:
        if (out / rel).is_file():
            x = pd.read_parquet(out / rel)
            if "patient_id" not in x.columns:
                continue  # not keyed by patient: the mechanism tests compute these constructs themselves
            if "wave" not in x.columns:
                x = x.assign(wave=0)  # one wave, numbered 0 as the mechanism tests number it
            if ego is not None:
                x = x[[c for c in x.columns if c in _KEYS or c not in ego.columns]]
            ego = x if ego is None else ego.merge(x, on=_KEYS, how="outer")
    net = plan.sections.get("networks") or {}
    change = alters = None
    if net.get("change") and (out / "networks/change.parquet").is_file() and \
            (out / "networks/change_alters.parquet").is_file():
        change = pd.read_parquet(out / "networks/change.parquet")
        alters = pd.read_parquet(out / "networks/change_alters.parquet")
    if ego is None and change is None:
        return None
    return Measures(ego, change=change, change_alters=alters, change_waves=tuple(net.get("change_waves") or (0, 1)),
                    constructs=plan.constructs)


def step_mechanisms(ctx: StepContext) -> dict:
    """Fit every model of the mechanism plan once and fill the mechanism table."""

    spec = ctx.plan.sections["mechanisms"]
    p = _patients(ctx)
    a = _alters(ctx)
    t = _alter_ties(ctx)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        if ctx.plan.sections.get("imputation"):  # impute once, test on every completed set, pool
            res = test_mechanisms_imputed({"patients": p, "alters": a, "alter_ties": t}, mechanism_plan(ctx.plan),
                                          imputation=ctx.plan.sections["imputation"], adjust=spec["adjust"],
                                          seed=ctx.plan.seeds["bootstrap"], n_boot=spec["n_boot"],
                                          level=spec.get("level"), client=ctx.scheduler)
        else:
            res = test_mechanisms({"patients": p, "alters": a, "alter_ties": t}, mechanism_plan(ctx.plan),
                                  adjust=spec["adjust"], seed=ctx.plan.seeds["bootstrap"],
                                  n_boot=spec["n_boot"], level=spec.get("level"),
                                  measures=measures_from_files(ctx.plan, ctx.out), client=ctx.scheduler)
    notes = _caught(ws)
    _write_csv(res.table, ctx.path("mechanisms/mechanism_table.csv"))
    models = res.models
    # fitting times vary from run to run: they go to the manifest, not into the tables
    model_seconds = {str(m): round(float(x), 3) for m, x in zip(models["model_id"], models["seconds"])} \
        if "seconds" in models.columns else {}
    _write_csv(models.drop(columns=["seconds"], errors="ignore"), ctx.path("mechanisms/models.csv"))
    ctx.path("mechanisms/summary.txt").write_text(res.to_text() + "\n", encoding="utf-8")
    meta = {"adjust": res.adjust, "seed": res.seed, "n_boot": res.n_boot, "level": res.level,
            "waves": list(res.waves), "rules_text": res.rules_text, "plan": res.plan_name}
    ctx.path("mechanisms/result.json").write_text(_json(meta), encoding="utf-8")
    # the result itself, for the later steps (without the fitting times, which differ between runs)
    replace(res, models=models.drop(columns=["seconds"], errors="ignore")).save(ctx.path(MECHANISM_RESULT))
    for mid, fit in res.fits.items():
        if fit is None:
            continue
        _export_fit(ctx, mid, fit, res.plan.models[mid])
        if isinstance(fit, FittedResult):
            fit.save(ctx.path(model_folder(mid)))
    shared = _shared_efficacy(ctx, a)
    return {"hypotheses": int(len(res.table)),
            "verdicts": {str(k): int(v) for k, v in res.table["verdict"].value_counts().sort_index().items()},
            "model_seconds": model_seconds, "notes": notes, **shared}


def _shared_efficacy(ctx: StepContext, a: pd.DataFrame | None) -> dict:
    """Agreement and two-level CFA of member-reported collective efficacy, when the alters table has it."""
    if a is None or not set(MEMBER_CE_ITEMS) <= set(a.columns) or "wave" not in a.columns \
            or not a.loc[a["wave"] == 0, list(MEMBER_CE_ITEMS)].notna().all(axis=1).any():
        return {}
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            r = shared_efficacy(a)
        except CimstatsError as exc:
            return {"shared_efficacy_notes": [str(exc)]}
    _write_csv(r.summary_frame(), ctx.path("mechanisms/shared_efficacy.csv"))
    _write_csv(r.tidy(), ctx.path("mechanisms/shared_efficacy_cfa.csv"))
    return {"shared_efficacy_notes": _caught(ws)} if ws else {}


def _export_fit(ctx: StepContext, mid: str, fit, spec) -> None:
    """The fit's views as readable CSV tables (the model tables and the report show them)."""
    tpl = spec["template"]
    if tpl == "invariance":
        _write_csv(fit.table, ctx.path(f"models/{mid}_invariance.csv"))
        try:
            est = fit.tidy()
            _write_csv(est, ctx.path(f"models/{mid}_parameters.csv"))
        except Exception:  # noqa: BLE001 - a result without a parameter table still has the fit table
            pass
        return
    t = fit.tidy()
    _write_csv(t, ctx.path(f"models/{mid}_terms.csv"))
    if tpl in ("mediation", "moderated_mediation") and hasattr(fit, "spec"):
        sp = fit.spec
        doc = {"x": sp.x, "mediators": list(sp.mediators), "y": sp.y, "covariates": list(sp.covariates),
               "moderator": sp.moderator, "moderated_paths": list(sp.moderated_paths), "serial": bool(sp.serial),
               "level": fit.level, "ci": fit.ci, "n_boot": fit.n_boot, "seed": fit.seed,
               "resampling": fit.resampling, "nobs": fit.nobs, "n_dropped": fit.n_dropped}
        # a readable description of the mediation model; the figures read the saved result instead
        ctx.path(f"models/{mid}_mediation.json").write_text(_json(doc), encoding="utf-8")
    g = fit.glance() if hasattr(fit, "glance") else None
    if isinstance(g, pd.DataFrame):
        _write_csv(g, ctx.path(f"models/{mid}_fit.csv"))
    if hasattr(fit, "ranef"):
        _write_csv(fit.ranef(), ctx.path(f"models/{mid}_ranef.csv"))
    if hasattr(fit, "varcorr"):
        _write_csv(fit.varcorr(), ctx.path(f"models/{mid}_varcorr.csv"))


# =========================================================================== tables
_FMT = NumberFormat()


def step_tables(ctx: StepContext) -> dict:
    """Publication tables: the mechanism table and one table per fitted model, in every table format."""

    formats = ctx.plan.sections["outputs"]["tables"]
    written = []
    res = load_mechanisms(ctx.out)
    if res is not None:
        spec = res.to_table_spec(number="1", title=mechanism_title(ctx.plan, res))
        _write_csv(res.tidy(), ctx.path("tables/mechanism_table.csv"))
        written += _render_all(spec, ctx.path("tables/mechanism_table.csv"), formats)
        models = res.models
        k = 2
        for r in models.itertuples(index=False):
            f = ctx.read(f"models/{r.model_id}_terms.csv")
            if not f.is_file():
                f = ctx.read(f"models/{r.model_id}_invariance.csv")
            if not f.is_file():
                continue
            d = pd.read_csv(f)
            if "term" in d.columns:
                cols = [c for c in TERM_LABELS if c in d.columns]
                d = d[cols]
                spec = TableSpec.from_frame(d, title=f"Model {r.model_id}: {r.model}", kinds=TERM_KINDS,
                                            header_labels=TERM_LABELS, number=str(k),
                                            notes=tuple(x for x in (
                                                f"n = {_FMT.count(r.nobs)}." if pd.notna(r.nobs) else "",
                                                str(r.diagnostics) if pd.notna(r.diagnostics) else "") if x))
            else:
                d = d[[c for c in INVARIANCE_COLUMNS if c in d.columns]]
                spec = TableSpec.from_frame(d, title=f"Model {r.model_id}: {r.model}", number=str(k),
                                            kinds={c: COLUMN_KINDS[c] for c in d.columns if c in COLUMN_KINDS})
            _write_csv(d, ctx.path(f"tables/model_{r.model_id}.csv"))
            written += _render_all(spec, ctx.path(f"tables/model_{r.model_id}.csv"), formats)
            k += 1
    if ctx.read("scales/reliability.csv").is_file():
        rel = pd.read_csv(ctx.read("scales/reliability.csv"))
        if len(rel):
            _write_csv(rel, ctx.path("tables/reliability.csv"))
            spec = TableSpec.from_frame(rel, title="Reliability of the scale scores (baseline)", number="S1")
            written += _render_all(spec, ctx.path("tables/reliability.csv"), formats)
    return {"files": len(written)}


# =========================================================================== joint displays
def _excerpts(plan: AnalysisPlan, out: Path):

    q = plan.sections["qualitative"]
    ex = q.get("excerpts")
    if ex is None:
        return None
    if ex == "demo":
        demo_csv = out / "qualitative" / "coded_excerpts.csv"
        if demo_csv.is_file():
            return read_excerpts(demo_csv)

        return read_excerpts(coded_excerpts())
    if ex.endswith(".qdpx"):
        return excerpts_from_qdpx(read_qdpx(ex), read_mapping(q["mapping"]))
    return read_excerpts(ex)


def _cases(ctx: StepContext) -> pd.DataFrame:
    """Baseline patients with their scale scores and network measures (the case table of the displays)."""
    p = _patients(ctx)
    for rel in ("scales/scores.parquet", "networks/ego_measures.parquet"):
        f = ctx.read(rel)
        if f.is_file():
            extra = pd.read_parquet(f)
            on = [c for c in _KEYS if c in extra.columns and c in p.columns]
            extra = extra[[c for c in extra.columns if c not in p.columns or c in on]]
            p = p.merge(extra, on=on, how="left")
    has_waves = "wave" in p.columns and p["wave"].notna().any()  # a study without waves has an empty wave column
    return p.loc[p["wave"] == 0].reset_index(drop=True) if has_waves else p


def step_joint_displays(ctx: StepContext) -> dict:
    """Every joint display of the plan in every table format, plus its spec and meta-inferences (CSV)."""

    formats = ctx.plan.sections["outputs"]["tables"]
    codebook = _codebook(ctx.plan)
    excerpts = _excerpts(ctx.plan, ctx.out)
    mech = load_mechanisms(ctx.out)
    results = None if mech is None else mech.table
    # the expected direction of each hypothesis-theme pair comes from the plan (the saved table has the links only)
    mplan = mechanism_plan(ctx.plan) if mech is not None else None
    hypotheses = mplan.hypothesis_list() if mplan is not None else None
    cases = _cases(ctx)
    if excerpts is not None:
        cases = cases.loc[cases["patient_id"].isin(set(excerpts["case_id"]))].reset_index(drop=True)
    written, notes, index = [], [], []
    names = [d.get("title") or d["kind"] for d in ctx.plan.sections["joint_displays"]]
    for k, d in enumerate(ctx.plan.sections["joint_displays"], start=1):
        opts = {key: v for key, v in d.items() if key != "kind"}
        kind = d["kind"]
        stem = kind if names.count(names[k - 1]) == 1 and list(x["kind"] for x in
                                                              ctx.plan.sections["joint_displays"]).count(kind) == 1 \
            else f"{kind}_{k}"
        if "group_labels" in opts and isinstance(opts["group_labels"], dict):
            opts["group_labels"] = {(_num(g)): v for g, v in opts["group_labels"].items()}
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            jd = joint_display(results, kind=kind, codebook=codebook, excerpts=excerpts, cases=cases,
                               number=f"J{k}", **({"hypotheses": hypotheses} | opts))
        notes += _caught(ws)
        base = ctx.path(f"joint_displays/{stem}.csv")
        spec_frame = jd.to_frame()
        _write_csv(spec_frame.astype({c: str for c in spec_frame.columns if spec_frame[c].dtype == object}), base,
                   spreadsheet_safe=True)
        if jd.meta_inferences is not None:
            _write_csv(jd.meta_inferences, ctx.path(f"joint_displays/{stem}_meta_inferences.csv"),
                       spreadsheet_safe=True)
        written += _render_all(jd.table, base, formats)
        index.append({"file": stem, "kind": kind, "title": jd.table.caption_text()})
    _write_csv(pd.DataFrame(index, columns=["file", "kind", "title"]), ctx.path("joint_displays/index.csv"),
               spreadsheet_safe=True)
    return {"displays": len(index), "notes": notes}


def _num(v):
    try:
        f = float(v)
        return int(f) if f.is_integer() else f
    except (TypeError, ValueError):
        return v


# =========================================================================== figures
def step_figures(ctx: StepContext) -> dict:
    """Figures of the mechanism results (built by cimstats.render.figures), as SVG and PNG with alt text."""
    return F.build_figures(ctx)


# =========================================================================== report
def step_report(ctx: StepContext) -> dict:
    """The one-page, self-contained report.html."""
    html = build_report(ctx.plan, ctx.out)
    ctx.path("report.html").write_text(html, encoding="utf-8")
    return {"bytes": len(html.encode("utf-8"))}


STEP_FUNCTIONS: dict[str, Callable[[StepContext], dict]] = {
    "demo_files": step_demo_files, "harmonise": step_harmonise, "load_harmonised": step_load_harmonised,
    "scales": step_scales, "networks": step_networks, "mechanisms": step_mechanisms, "tables": step_tables,
    "joint_displays": step_joint_displays, "figures": step_figures, "report": step_report,
}
