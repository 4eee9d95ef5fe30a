"""Write the demo study's files: raw country files, themes, excerpts, planted truth, summary.

The work is a list of steps, each writing into a temporary folder beside the
output folder; the folder is moved into place only when every step has
finished, so an interrupted or failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from cimstats.datasets import _design as D
from cimstats.datasets._countries import COUNTRY_SPECS
from cimstats.datasets._study import DEFAULT_SEED, DemoStudy, demo_study
from cimstats.datasets._errors import DemoOutputError
from cimstats.datasets._qualitative import coded_excerpts, theme_codebook_text
from cimstats.datasets._schema import render_schema
from cimstats.datasets._truth import planted_truth
from cimstats.io import write_survey


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`write_demo_files` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    seed : int
        The seed of the study.
    files : pandas.DataFrame
        One row per file: ``path`` (relative to ``out_dir``), ``kind``
        (``raw``, ``qualitative``, ``truth``, ``summary``, ``schema``),
        ``country``, ``rows``, ``columns``.
    summary : pandas.DataFrame
        :meth:`DemoStudy.summary`.
    text : str
        The printed summary (also ``summary.txt``).
    """

    out_dir: Path
    seed: int
    files: pd.DataFrame
    summary: pd.DataFrame
    text: str = field(repr=False)


# a step writes into the temporary folder and returns rows of the file table
Step = Callable[[DemoStudy, Path], list]


def _step_raw(study: DemoStudy, root: Path) -> list:

    out = root / "raw"
    out.mkdir()
    rows = []
    for name, survey in study.raw_surveys().items():
        write_survey(survey, out / name, file_label=survey.source.file_label)
        rows.append({"path": f"raw/{name}", "kind": "raw", "country": name[:2],
                     "rows": survey.shape[0], "columns": survey.shape[1]})
    return rows


def _step_qualitative(study: DemoStudy, root: Path) -> list:

    out = root / "qualitative"
    out.mkdir()
    (out / "themes.yaml").write_text(theme_codebook_text(), encoding="utf-8")
    x = coded_excerpts()
    x.to_csv(out / "coded_excerpts.csv", index=False, encoding="utf-8")
    return [{"path": "qualitative/themes.yaml", "kind": "qualitative", "country": None, "rows": None, "columns": None},
            {"path": "qualitative/coded_excerpts.csv", "kind": "qualitative", "country": None,
             "rows": len(x), "columns": x.shape[1]}]


def _step_truth(study: DemoStudy, root: Path) -> list:

    out = root / "truth"
    out.mkdir()
    doc = {"seed": study.seed, "parameters": planted_truth(),
           "realised": study.summary().to_dict(orient="records")}
    (out / "planted_truth.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default),
                                            encoding="utf-8")
    return [{"path": "truth/planted_truth.json", "kind": "truth", "country": None, "rows": None, "columns": None}]


def _step_schema(study: DemoStudy, root: Path) -> list:

    (root / "SCHEMA.md").write_text(render_schema(), encoding="utf-8")
    return [{"path": "SCHEMA.md", "kind": "schema", "country": None, "rows": None, "columns": None}]


def _json_default(v):
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"cannot write {type(v).__name__} to JSON")  # pragma: no cover


#: the steps of ``write_demo_files`` in order; later stages append their own
STEPS: list[tuple[str, Step]] = [
    ("raw", _step_raw),
    ("qualitative", _step_qualitative),
    ("truth", _step_truth),
    ("schema", _step_schema),
]


def summary_text(study: DemoStudy, files: pd.DataFrame, *, markdown: bool = False) -> str:
    """The short summary printed by ``cimstats demo`` (plain text or Markdown)."""
    s = study.summary()
    tot = s[s["country"] == "ALL"].iloc[0]
    cols = ["country", "areas", "practices", "patients_w0", "patients_w1", "retention", "alters_w0",
            "alters_w1", "no_network_w0", "item_missing"]
    show = s[cols].copy()
    show["retention"] = show["retention"].map(lambda v: f"{v:.1%}")
    show["item_missing"] = show["item_missing"].map(lambda v: f"{v:.1%}")
    head = (f"cimstats demo study (synthetic), seed {study.seed}: {len(D.COUNTRIES)} countries, "
            f"{int(tot.areas)} areas, {int(tot.practices)} GP practices; {int(tot.patients_w0)} patients at "
            f"baseline, {int(tot.patients_w1)} at 12 months ({tot.retention:.1%} retained); "
            f"{int(tot.alters_w0)} named alters at baseline, {int(tot.alters_w1)} at 12 months; "
            f"{int(tot.no_network_w0)} patients named nobody; {tot.item_missing:.1%} of item answers missing.")
    raw = files[files["kind"] == "raw"]
    if markdown:
        lines = ["# Demo study summary", "", head, "", "## Per country", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in show.itertuples(index=False)]
        lines += ["", "## Files", "", "| file | rows | variables |", "|---|---|---|"]
        lines += [f"| `{r.path}` | {r.rows} | {r.columns} |" for r in raw.itertuples()]
        other = files[files["kind"] != "raw"]["path"].tolist()
        lines += ["", "Also: " + ", ".join(f"`{p}`" for p in other) + "."]
        return "\n".join(lines) + "\n"
    lines = [head, "", show.to_string(index=False), "", "Raw country files:"]
    for cc in D.COUNTRIES:
        spec = COUNTRY_SPECS[cc]
        fs = raw[raw["country"] == cc]
        lines.append(f"  {cc} {spec.name} ({spec.language}, .{spec.format}): "
                     + ", ".join(f"{Path(r.path).name} [{r.rows} x {r.columns}]" for r in fs.itertuples()))
    other = files[files["kind"] != "raw"]["path"].tolist()
    lines += ["Other files: " + ", ".join(other + ["summary.txt", "summary.md"])]
    return "\n".join(lines) + "\n"


def write_demo_files(out_dir, *, seed: int = DEFAULT_SEED, overwrite: bool = False,
                     steps: list[tuple[str, Step]] | None = None) -> DemoFiles:
    """Write the demo study's raw country files, theme codebook, excerpts, planted truth and summary.

    Parameters
    ----------
    out_dir : str or path-like
        Output folder; created. It must not exist or be empty unless
        ``overwrite=True``.
    seed : int
        Seed of :func:`demo_study`.
    overwrite : bool, default False
        Replace an existing non-empty ``out_dir`` (only once the new output is
        complete).
    steps : list of (name, callable), optional
        The writing steps (default :data:`STEPS`); each gets the study and the
        temporary folder and returns rows of the file table.

    Returns
    -------
    DemoFiles
        The folder, the file table and the summary.

    Raises
    ------
    DemoOutputError
        When ``out_dir`` exists and is not empty (without ``overwrite``), is
        a file, or cannot be written.

    Notes
    -----
    Layout: ``raw/`` (the 24 country files: patients, alters, alter-alter ties), ``qualitative/themes.yaml`` and
    ``qualitative/coded_excerpts.csv``, ``truth/planted_truth.json``,
    ``SCHEMA.md``, ``summary.txt`` and ``summary.md``. Everything is written
    into a temporary folder beside ``out_dir`` and moved into place at the
    end: an interrupted run leaves no partial output.

    Examples
    --------
    >>> import tempfile, os
    >>> from cimstats.datasets import write_demo_files
    >>> out = os.path.join(tempfile.mkdtemp(), "demo")
    >>> res = write_demo_files(out, seed=1)
    >>> sorted(os.listdir(out))
    ['SCHEMA.md', 'qualitative', 'raw', 'summary.md', 'summary.txt', 'truth']
    >>> len(os.listdir(os.path.join(out, "raw")))
    24
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DemoOutputError(f"`out_dir` '{out}' is a file; give a folder path for the demo output.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DemoOutputError(
            f"`out_dir` '{out}' already exists and is not empty; choose a new folder or pass overwrite=True "
            "(--overwrite) to replace it."
        )
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as exc:
        raise DemoOutputError(f"Cannot create the demo output beside '{out}' ({exc.strerror or exc}); "
                              "check the path and permissions.") from None
    try:
        study = demo_study(seed)
        rows = []
        for _name, step in (STEPS if steps is None else steps):
            rows += step(study, tmp)
        files = pd.DataFrame(rows, columns=["path", "kind", "country", "rows", "columns"])
        files = files.astype({"rows": "Int64", "columns": "Int64"})
        text = summary_text(study, files)
        (tmp / "summary.txt").write_text(text, encoding="utf-8")
        (tmp / "summary.md").write_text(summary_text(study, files, markdown=True), encoding="utf-8")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DemoFiles(out, study.seed, files, study.summary(), text)


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        raise DemoOutputError(f"Cannot move the demo output into '{out}' ({exc.strerror or exc}).") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
