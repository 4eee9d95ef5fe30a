"""The step graph of a run and :func:`run`.

The central table of this stage is the step table (:attr:`RunResult.steps`):
one row per step with ``step, function, description, after, inputs,
input_hash, outputs, status, seconds, info``. ``status`` is ``ran``, ``cached``
(input hash unchanged and outputs intact: not re-run), ``skipped`` (cannot run
here, with the reason in ``info``), ``would run`` / ``cached`` in a dry run,
``failed`` or ``not run`` (after a failure).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from cimstats import __version__
from cimstats._files import atomic_write, writing_into
from cimstats.errors import PlanError

from .cache import CACHE_DIR, StepCache, file_hash, hash_tree, input_hash
from .plan import AnalysisPlan, demo_plan_path, read_analysis_plan
from .context import MECHANISM_RESULT, unit_table
from .report import report_inputs
from .steps import STEP_FUNCTIONS, StepContext, StepSkipped, raw_folder

__all__ = ["run", "RunResult", "plan_steps", "STEP_COLUMNS"]

STEP_COLUMNS = ["step", "function", "description", "after", "inputs", "input_hash", "outputs", "status", "seconds",
                "info"]
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StepDef:
    """One node of the step graph."""

    id: str
    function: str
    after: tuple[str, ...]
    sections: Callable[[AnalysisPlan], dict]
    files: Callable[[AnalysisPlan, Path], list[Path]]

    @property
    def description(self) -> str:
        doc = STEP_FUNCTIONS[self.function].__doc__ or ""
        return doc.strip().splitlines()[0] if doc else self.function


def _sec(*names):
    def get(plan: AnalysisPlan) -> dict:
        out = {}
        for n in names:
            head, _, tail = n.partition(".")
            v = plan.sections.get(head)
            out[n] = v.get(tail) if tail and isinstance(v, dict) else v
        return _portable(out)
    return get


def _portable(obj):
    """Sections without absolute paths (file contents are hashed separately), so moving a project keeps its cache."""
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items() if k not in ("path", "plan_file")}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj) and os.path.exists(obj):
        return Path(obj).name
    return obj


def _out_files(*rels):
    def get(plan: AnalysisPlan, out: Path) -> list[Path]:
        return [out / r for r in rels]
    return get


def _dir_files(*rels):
    def get(plan: AnalysisPlan, out: Path) -> list[Path]:
        paths = []
        for r in rels:
            p = out / r
            paths += sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else []
        return paths
    return get


def _harmonise_files(plan: AnalysisPlan, out: Path) -> list[Path]:
    src = plan.sections["sources"]
    paths = []
    raw = raw_folder(plan, out)
    if raw is not None and raw.is_dir():
        paths += sorted(x for x in raw.rglob("*") if x.is_file())
    d = Path(src["dictionary"]["path"])
    paths += sorted(x for x in d.iterdir() if x.is_file() and x.suffix.lower() in (".csv", ".xlsx", ".tsv"))
    return paths


def _load_files(plan: AnalysisPlan, out: Path) -> list[Path]:
    return [Path(p) for p in plan.sections["sources"]["harmonised"].values()]


def _mechanism_files(plan: AnalysisPlan, out: Path) -> list[Path]:
    spec = plan.sections["mechanisms"]
    paths = [out / f"data/{unit_table(plan)}.parquet", out / "data/alters.parquet", out / "data/alter_ties.parquet"]
    if plan.sections.get("instruments"):  # the constructs the measure steps computed (not computed again)
        paths.append(out / "scales/scores.parquet")
    if plan.sections.get("networks"):
        paths += [out / "networks/ego_measures.parquet", out / "networks/change.parquet",
                  out / "networks/change_alters.parquet"]
    if spec.get("plan_file") not in (None, "default"):
        paths.append(Path(spec["plan_file"]))
    return paths


def _qualitative_files(plan: AnalysisPlan, out: Path) -> list[Path]:
    q = plan.sections["qualitative"] or {}
    paths = []
    for k in ("codebook", "excerpts", "mapping"):
        v = q.get(k)
        if v == "demo" and k == "excerpts":
            paths.append(out / "qualitative/coded_excerpts.csv")
        elif v and v != "demo":
            paths.append(Path(v))
    paths += [Path(d["reviews"]) for d in plan.sections["joint_displays"] if d.get("reviews")]
    paths += [out / MECHANISM_RESULT / "result.json", out / f"data/{unit_table(plan)}.parquet",
              out / "scales/scores.parquet", out / "networks/ego_measures.parquet"]
    return paths


def plan_steps(plan: AnalysisPlan) -> list[StepDef]:
    """The steps a plan needs, in the order they run (each after the steps it reads from)."""
    s = plan.sections
    steps: list[StepDef] = []
    if s["sources"]["demo"]:
        steps.append(StepDef("demo_files", "demo_files", (), _sec("sources.demo", "seeds.data"), lambda p, o: []))
    if s["sources"].get("harmonised"):
        steps.append(StepDef("data", "load_harmonised", (), _sec("sources", "outputs.data"), _load_files))
    else:
        steps.append(StepDef("data", "harmonise", ("demo_files",) if s["sources"]["demo"] else (),
                             _sec("sources", "outputs.data", *(("accept",) if s.get("accept") else ())),
                             _harmonise_files))
    if s["instruments"]:
        steps.append(StepDef("scales", "scales", ("data",), _sec("instruments"),
                             _out_files(f"data/{unit_table(plan)}.parquet")))
    if s["networks"]:
        steps.append(StepDef("networks", "networks", ("data",), _sec("networks"),
                             _out_files(f"data/{unit_table(plan)}.parquet", "data/alters.parquet",
                                        "data/alter_ties.parquet")))
    if s["mechanisms"]:
        have = [x.id for x in steps]
        steps.append(StepDef("mechanisms", "mechanisms",
                             ("data",) + tuple(x for x in ("scales", "networks") if x in have),
                             _sec("mechanisms", "seeds.bootstrap", "instruments", "networks", "constructs",
                                  "imputation"),
                             _mechanism_files))
    have = [x.id for x in steps]
    if s["outputs"]["tables"] and ("mechanisms" in have or "scales" in have):
        steps.append(StepDef("tables", "tables", tuple(x for x in ("mechanisms", "scales") if x in have),
                             _sec("outputs.tables"), _dir_files("mechanisms", "models", "scales")))
    if s["joint_displays"]:
        steps.append(StepDef("joint_displays", "joint_displays",
                             tuple(x for x in ("mechanisms", "scales", "networks", "demo_files") if x in have),
                             _sec("joint_displays", "qualitative", "outputs.tables"), _qualitative_files))
    if s["outputs"]["figures"] and "mechanisms" in have:
        steps.append(StepDef("figures", "figures", ("mechanisms",), _sec("outputs.figures"),
                             _dir_files("mechanisms", "models")))
    if s["outputs"]["report"]:
        have = [x.id for x in steps]
        steps.append(StepDef("report", "report", tuple(have),
                             _sec("plan", "description", "instruments", "networks", "qualitative", "outputs"),
                             _report_files))
    return steps


def _report_files(plan: AnalysisPlan, out: Path) -> list[Path]:
    return report_inputs(plan, out)


# =========================================================================== result
@dataclass(frozen=True)
class RunResult:
    """What :func:`run` did.

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    plan : AnalysisPlan
    steps : pandas.DataFrame
        The step table (columns :data:`STEP_COLUMNS`).
    manifest : dict
        The manifest written to ``OUT/manifest.json`` (empty for a dry run).
    dry_run : bool
    """

    out: Path
    plan: AnalysisPlan
    steps: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    dry_run: bool = False

    @property
    def ran(self) -> list[str]:
        return self.steps.loc[self.steps["status"] == "ran", "step"].tolist()

    @property
    def cached(self) -> list[str]:
        return self.steps.loc[self.steps["status"] == "cached", "step"].tolist()

    def summary(self) -> str:
        """Where everything is, and which steps ran."""
        lines = []
        if self.dry_run:
            lines.append(f"Dry run of plan '{self.plan.name}' into {self.out} (nothing was run or written):")
            for r in self.steps.itertuples():
                lines.append(f"  {r.step:<15} {r.status:<10} {r.description}")
            return "\n".join(lines) + "\n"
        total = float(self.steps["seconds"].fillna(0).sum())
        lines.append(f"Plan '{self.plan.name}': {len(self.ran)} step(s) ran, {len(self.cached)} reused from the "
                     f"cache, {total:.1f} s. Outputs in {self.out}:")
        where = [("report.html", "the report: one self-contained page (open it in a browser)"),
                 ("manifest.json", "input hashes, package versions, seeds, step timings, the plan"),
                 ("raw/", "the raw country files"),
                 ("data/", "harmonised data (.parquet, .sav, .dta with labels) and their codebooks"),
                 ("harmonisation/", "harmonisation report (.xlsx, .html, .csv)"),
                 ("scales/", "scale scores, how each was obtained, reliability"),
                 ("networks/", "ego-network measures and network change"),
                 ("mechanisms/", "the mechanism table and model summaries (saved result in mechanisms/saved/)"),
                 ("models/", "estimates, random effects and fit of every model (saved results in models/<id>/)"),
                 ("tables/", "publication tables (CSV, Excel, Word, LaTeX, HTML, Markdown)"),
                 ("joint_displays/", "joint displays in every format"),
                 ("figures/", "figures (SVG, PNG) with alt text")]
        for rel, what in where:
            if (self.out / rel).exists():
                lines.append(f"  {rel:<17} {what}")
        skipped = self.steps.loc[self.steps["status"] == "skipped"]
        for r in skipped.itertuples():
            lines.append(f"  (step {r.step} skipped: {r.info.get('reason', '')})")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.summary()


# =========================================================================== progress
_SHORT = {"demo_files": "writing the demo study's raw files", "harmonise": "harmonising with the data dictionary",
          "load_harmonised": "reading the harmonised dataset", "scales": "scoring the scales",
          "networks": "ego-network measures", "mechanisms": "testing the mechanisms", "tables": "publication tables",
          "joint_displays": "joint displays", "figures": "figures", "report": "report.html"}


class _Progress:
    def __init__(self, enabled: bool, n: int, stream=None):
        self.enabled, self.n, self.stream = enabled, n, stream or sys.stderr

    def start(self, k: int, step: StepDef) -> None:
        if self.enabled:
            self.stream.write(f"[{k}/{self.n}] {_SHORT.get(step.function, step.id)} ...")
            self.stream.flush()

    def end(self, status: str, seconds: float) -> None:
        if self.enabled:
            txt = "cached" if status == "cached" else f"{status} in {seconds:.1f} s"
            self.stream.write(f" {txt}\n")
            self.stream.flush()


# =========================================================================== run
def _resolve_plan(plan, seed) -> AnalysisPlan:
    if isinstance(plan, str) and plan == "demo":
        plan = demo_plan_path()
    p = read_analysis_plan(plan)
    return p.with_seed(data=seed) if seed is not None else p


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PlanError(f"The output folder '{out}' is a file; give a folder (new, empty, or an earlier run's).")
    if out.is_dir() and any(out.iterdir()) and not (out / CACHE_DIR).is_dir():
        raise PlanError(f"The output folder '{out}' is not empty and holds no earlier cimstats run (no {CACHE_DIR}/ "
                        "folder); choose a new or empty folder so that no file of yours is overwritten.")


def run(plan, *, out, dry_run: bool = False, force: bool = False, seed: int | None = None,
        progress: bool | None = None, scheduler: str | None = None) -> RunResult:
    """Run an analysis plan into an output folder, re-running only the steps whose inputs changed.

    Parameters
    ----------
    plan : str, path, dict or AnalysisPlan
        The analysis plan (see :mod:`cimstats.pipeline.plan`); ``"demo"`` runs
        the shipped demo plan.
    out : str or path
        Output folder: new, empty, or the folder of an earlier run (whose
        cache is then reused).
    dry_run : bool
        Check the plan and list the steps with what would run; nothing is
        run or written.
    force : bool
        Re-run every step even when its cache record is fresh.
    seed : int, optional
        Overrides the plan's ``seeds.data`` (the demo study's seed).
    scheduler : str, optional
        Address of a running Dask scheduler (``"tcp://host:8786"``) for the
        repeated fits (bootstrap resamples); results are the same as on this
        machine, so the cache does not depend on it.
    progress : bool, optional
        A progress line per step on standard error (default: only when
        standard error is a terminal).

    Returns
    -------
    RunResult
        The output folder, the step table and the manifest.

    Raises
    ------
    PlanError
        The plan has problems (all listed in ``.report``; nothing is run), or
        ``out`` is a file or a non-empty folder that no earlier run wrote, or
        an output would land outside ``out`` or pass through a symbolic link
        to a folder inside it (links inside an output folder are never followed).

    Notes
    -----
    Each step is cached under ``OUT/.cache`` by the SHA-256 of its input files'
    contents, the plan sections it reads and the package version. A step
    writes into a staging folder; its files are moved into ``OUT`` only when
    it has finished, and its cache record is written after that, so a run that
    stops part-way leaves nothing a later run would trust. ``manifest.json``
    is removed when a run starts and written when every step has finished.

    Examples
    --------
    >>> import cimstats, tempfile, os
    >>> res = cimstats.run("demo", out=os.path.join(tempfile.mkdtemp(), "demo"), dry_run=True)
    >>> res.steps["step"].tolist()[:3]
    ['demo_files', 'data', 'scales']
    """
    aplan = _resolve_plan(plan, seed)
    out = Path(out)
    _check_out(out)
    steps = plan_steps(aplan)
    cache = StepCache(out)
    rows = []
    if dry_run:
        changed: set[str] = set()
        for st in steps:
            upstream_changed = any(a in changed for a in st.after)
            ih = ins = None
            status = "would run"
            if not upstream_changed and not force:
                ih, ins = _inputs(st, aplan, out, __version__)
                if cache.is_fresh(st.id, ih):
                    status = "cached"
            if status != "cached":
                changed.add(st.id)
            rows.append(_row(st, ih, status, None, {}, [], ins if ih else None))
        return RunResult(out=out, plan=aplan, steps=pd.DataFrame(rows, columns=STEP_COLUMNS), dry_run=True)

    out.mkdir(parents=True, exist_ok=True)
    cache.ensure()
    cache.clear_stages()
    (out / MANIFEST).unlink(missing_ok=True)  # present only after a complete run
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = _Progress(show, len(steps))
    started = datetime.now(timezone.utc)
    failed = None
    for k, st in enumerate(steps, start=1):
        if failed is not None:
            rows.append(_row(st, None, "not run", None, {"reason": f"step {failed} failed"}, []))
            continue
        bar.start(k, st)
        t0 = time.perf_counter()
        ih, ins = _inputs(st, aplan, out, __version__)
        if not force and cache.is_fresh(st.id, ih):
            rec = cache.load(st.id) or {}
            rows.append(_row(st, ih, "cached", 0.0, rec.get("info", {}), sorted(rec.get("outputs", {})), ins))
            bar.end("cached", 0.0)
            continue
        stage = cache.stage(st.id)
        ctx = StepContext(plan=aplan, out=out, stage=stage, scheduler=scheduler)
        try:
            with writing_into(stage, error=PlanError):  # every file the step writes stays in its staging folder
                info = STEP_FUNCTIONS[st.function](ctx) or {}
        except StepSkipped as exc:
            cache.discard(stage)
            cache.forget(st.id)
            secs = time.perf_counter() - t0
            rows.append(_row(st, ih, "skipped", secs, {"reason": str(exc)}, [], ins))
            bar.end("skipped", secs)
            continue
        except BaseException:
            cache.discard(stage)
            failed = st.id
            secs = time.perf_counter() - t0
            bar.end("failed", secs)
            raise
        secs = time.perf_counter() - t0
        info = dict(info)
        outputs = cache.publish(st.id, stage, ih, info)
        rows.append(_row(st, ih, "ran", secs, info, sorted(outputs), ins))
        bar.end("ran", secs)
    table = pd.DataFrame(rows, columns=STEP_COLUMNS)
    manifest = _manifest(aplan, out, table, started, __version__)
    with writing_into(out, error=PlanError):
        atomic_write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False, ensure_ascii=False,
                                                 default=str) + "\n")
    return RunResult(out=out, plan=aplan, steps=table, manifest=manifest)


def _input_hash(st: StepDef, plan: AnalysisPlan, out: Path, version: str) -> str:
    return _inputs(st, plan, out, version)[0]


def _inputs(st: StepDef, plan: AnalysisPlan, out: Path, version: str) -> tuple[str, list[str]]:
    files = st.files(plan, out)
    hashes = {}
    for p in files:
        p = Path(p)
        try:
            key = p.relative_to(out).as_posix()
        except ValueError:
            key = "external/" + p.name
        if p.is_file():
            hashes[key] = file_hash(p)
        elif key.startswith("external/") or p.suffix:
            hashes[key] = "missing"
    return input_hash(st.id, version, st.sections(plan), hashes), sorted(hashes)


def _row(st: StepDef, ih, status, secs, info, outputs, inputs=None) -> dict:
    return {"step": st.id, "function": f"cimstats.pipeline.steps.step_{st.function}", "description": st.description,
            "after": ",".join(st.after), "inputs": inputs, "input_hash": ih, "outputs": outputs, "status": status,
            "seconds": None if secs is None else round(secs, 3), "info": info}


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("cimstats", "numpy", "pandas", "scipy", "statsmodels", "pyreadstat", "pyarrow", "openpyxl",
                 "python-docx", "pyyaml", "matplotlib", "semopy", "pingouin"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _manifest(plan: AnalysisPlan, out: Path, table: pd.DataFrame, started, version: str) -> dict:
    external = {}
    src = plan.sections["sources"]
    if src.get("dictionary") and src["dictionary"].get("path"):
        d = Path(src["dictionary"]["path"])
        external.update({f"dictionary/{k}": v for k, v in hash_tree([d], root=d).items()})
    raw = raw_folder(plan, out)
    if raw is not None and raw.is_dir():
        external.update({f"raw/{k}": v for k, v in hash_tree([raw], root=raw).items()})
    for name, p in (src.get("harmonised") or {}).items():
        external[f"harmonised/{name}"] = file_hash(p)
    q = plan.sections.get("qualitative") or {}
    for k in ("codebook", "excerpts", "mapping"):
        if q.get(k) and q[k] != "demo":
            external[f"qualitative/{Path(q[k]).name}"] = file_hash(q[k])
    if plan.source not in ("<dict>", "<yaml text>") and Path(plan.source).is_file():
        external["plan/" + Path(plan.source).name] = file_hash(plan.source)
    outputs = {}
    for r in table.itertuples():
        rec = StepCache(out).load(r.step) or {}
        outputs.update(rec.get("outputs", {}))
    return {
        "cimstats_version": version,
        "plan": {"name": plan.name, "source": Path(plan.source).name if plan.source.startswith("/") else plan.source,
                 "text": plan.text, "sections": _portable(plan.sections)},
        "seeds": plan.seeds,
        "packages": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "inputs": external,
        "steps": [{"step": r.step, "status": r.status, "seconds": r.seconds, "input_hash": r.input_hash,
                   "outputs": r.outputs, "info": r.info} for r in table.itertuples()],
        "outputs": dict(sorted(outputs.items())),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
