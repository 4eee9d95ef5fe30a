"""The one contract every fitted result honours.

Every fitted result in cimstats (a linear or generalised linear mixed model,
a GEE, a structural equation model, an invariance sequence, a mediation
analysis, a set of mechanism tests) answers the same questions in the same
way, so that a later stage (mechanisms, joint displays, the report) can take
any of them without knowing which verb made it:

=======================  ====================================================
``tidy(*, level=0.95)``  one row per estimate: ``term``, ``estimate``,
                         ``std_error``, ``statistic``, ``p_value``,
                         ``ci_lower``, ``ci_upper`` (plus verb-specific columns)
``glance()``             one row: sample size, rows set aside, fit statistics
``summary()``            a :class:`ResultSummary`: header lines, one or more
                         tables (:class:`~cimstats.render.TableSpec`) and notes;
                         ``str()`` gives text, ``to_html()``, ``to_latex()``
                         and ``to_markdown()`` the other formats
``to_table_spec()``      the result as one publication table
``vcov()``               covariance matrix of the estimates (a DataFrame)
``dropped``              rows set aside for missing values, one row per
                         variable: ``variable``, ``n_missing``
``optimizer``            an :class:`OptimizerSummary` (how the fit converged)
``save(folder)``         writes the result to a folder;
                         :func:`cimstats.load_result` reads it back
=======================  ====================================================

A saved result is plain JSON (``result.json``) plus readable CSV copies of
its tidy and glance tables. Nothing in a saved folder is ever run as code:
:func:`cimstats.load_result` reads numbers, text and tables, checks the result kind
against the list of known kinds, and rebuilds the result, whose ``tidy``,
``glance``, ``summary`` and figures are identical to the original's. What
needs the original data (predictions, refits, bootstraps) is not available on
a loaded result and says so.

Examples
--------
>>> import tempfile, numpy as np, pandas as pd, cimstats
>>> rng = np.random.default_rng(3)
>>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100)})
>>> d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
>>> fit = cimstats.lmm("y ~ x + (1 | g)", d)
>>> with tempfile.TemporaryDirectory() as folder:
...     _ = fit.save(folder)
...     again = cimstats.load_result(folder)
>>> again.tidy().equals(fit.tidy()) and str(again.summary()) == str(fit.summary())
True
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Mapping

import numpy as np
import pandas as pd

from cimstats._files import atomic_write
from cimstats._sheets import spreadsheet_safe_frame
from cimstats.errors import CimstatsError, ModelSpecificationError
from cimstats.render.spec import Cell, Footnote, Row, TableSpec
from cimstats import __version__
from cimstats.render.escape import escape_html
from cimstats.render.escape import escape_markdown
from cimstats.render.text_formats import to_html
from cimstats.render.text_formats import to_latex
from cimstats.render.text_formats import to_markdown
from cimstats.render.text_formats import to_text

__all__ = ["FittedResult", "ResultSummary", "OptimizerSummary", "dropped_frame",
           "ResultNotAvailableError", "SavedResultError", "read_saved_result", "SAVE_FORMAT", "table_to_json", "table_from_json",
           "spec_to_json", "spec_from_json"]

#: version of the saved-result folder layout
SAVE_FORMAT = 1
#: the file a saved result is kept in
RESULT_FILE = "result.json"
#: largest result file read (a result is tables of estimates, not data)
MAX_RESULT_BYTES = 512 * 1024 * 1024
#: the columns of every ``dropped`` table
DROPPED_COLUMNS = ("variable", "n_missing")


class ResultNotAvailableError(CimstatsError, RuntimeError):
    """A saved-and-loaded result was asked for something that needs the original data."""


class SavedResultError(CimstatsError, ValueError):
    """A saved-result folder cannot be read."""


# --------------------------------------------------------------------------- optimizer
@dataclass(frozen=True)
class OptimizerSummary:
    """How the optimisation went: start and final values, iterations, gradient norm, convergence.

    ``checks`` lists, in words, the checks the final point passed or failed: the
    projected gradient and, for a solution on the boundary (a variance of zero
    or a correlation of +-1), the steps into the interior that test whether the
    boundary point is a local optimum (and any restarts they caused).
    """

    method: str
    start: tuple
    final: tuple
    iterations: int
    evaluations: int
    gradient_norm: float
    converged: bool
    message: str
    checks: tuple = ()

    def __eq__(self, other) -> bool:
        # NaN (a gradient that does not apply) equals NaN here, so a saved-and-loaded summary equals its original
        if not isinstance(other, OptimizerSummary):
            return NotImplemented
        return json.dumps(self.to_dict(), sort_keys=True) == json.dumps(other.to_dict(), sort_keys=True)

    __hash__ = None

    def to_dict(self) -> dict:
        """The summary as plain numbers and text (what :meth:`FittedResult.save` writes)."""
        return {"method": self.method, "start": [float(v) for v in self.start],
                "final": [float(v) for v in self.final], "iterations": int(self.iterations),
                "evaluations": int(self.evaluations), "gradient_norm": float(self.gradient_norm),
                "converged": bool(self.converged), "message": str(self.message),
                "checks": [str(c) for c in self.checks]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "OptimizerSummary":
        return cls(method=str(d["method"]), start=tuple(float(v) for v in d["start"]),
                   final=tuple(float(v) for v in d["final"]), iterations=int(d["iterations"]),
                   evaluations=int(d["evaluations"]), gradient_norm=float(d["gradient_norm"]),
                   converged=bool(d["converged"]), message=str(d["message"]),
                   checks=tuple(str(c) for c in d.get("checks", ())))


def dropped_frame(counts: Mapping[str, int] | pd.DataFrame | None) -> pd.DataFrame:
    """Rows set aside for missing values, as the one ``dropped`` table shape.

    Parameters
    ----------
    counts : mapping of variable name to count, or a DataFrame already in shape

    Returns
    -------
    pandas.DataFrame
        Columns ``variable`` (str) and ``n_missing`` (int), one row per
        variable that had missing values among the rows used by the model,
        in the order given.

    Examples
    --------
    >>> dropped_frame({"age": 3, "income": 5})
      variable  n_missing
    0      age          3
    1   income          5
    """
    if isinstance(counts, pd.DataFrame):
        missing = [c for c in DROPPED_COLUMNS if c not in counts.columns]
        if missing:
            raise ModelSpecificationError(
                f"A dropped-rows table needs the columns {', '.join(DROPPED_COLUMNS)}; {missing} are absent.")
        items = list(zip(counts["variable"], counts["n_missing"]))
    else:
        items = list((counts or {}).items())
    return pd.DataFrame({"variable": pd.Series([str(k) for k, _ in items], dtype=object),
                         "n_missing": pd.Series([int(v) for _, v in items], dtype="int64")})


# --------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class ResultSummary:
    """A printable summary of a fitted result.

    Parameters
    ----------
    title : str
        What was fitted ("Linear mixed model fit by REML").
    lines : tuple of str
        Header lines (formula, sample, fit statistics).
    tables : tuple of TableSpec
        The summary's tables (fixed effects, random effects, fit measures...).
    notes : tuple of str
        Lines after the tables (optimiser, warnings such as a singular fit).

    ``str(summary)`` is plain text; :meth:`to_html`, :meth:`to_latex` and
    :meth:`to_markdown` write the same content through the table renderers.
    """

    title: str
    lines: tuple = ()
    tables: tuple = ()
    notes: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "lines", tuple(str(s) for s in self.lines))
        object.__setattr__(self, "notes", tuple(str(s) for s in self.notes))
        object.__setattr__(self, "tables", tuple(self.tables))
        for t in self.tables:
            if not isinstance(t, TableSpec):
                raise ModelSpecificationError("Every table of a summary must be a TableSpec.")

    def to_text(self) -> str:
        """Plain text: title, header lines, each table, then the notes."""

        parts = [self.title, *self.lines, ""]
        for t in self.tables:
            parts += [to_text(t, max_width=60).rstrip("\n"), ""]
        parts += list(self.notes)
        return "\n".join(parts).rstrip() + "\n"

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def to_html(self) -> str:
        """An HTML fragment (escaped; tables through the HTML renderer)."""

        head = f"<h3>{escape_html(self.title)}</h3>" + "".join(f"<p>{escape_html(s)}</p>" for s in self.lines)
        body = "".join(to_html(t, standalone=False) for t in self.tables)
        foot = "".join(f"<p>{escape_html(s)}</p>" for s in self.notes)
        return f"<div class='cimstats-summary'>{head}{body}{foot}</div>"

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_latex(self) -> str:
        """LaTeX: the header and notes as comments, each table through the LaTeX renderer."""

        def comment(s):
            return "% " + s.replace("\n", " ").replace("\r", " ")

        parts = [comment(self.title), *(comment(s) for s in self.lines)]
        parts += [to_latex(t) for t in self.tables]
        parts += [comment(s) for s in self.notes]
        return "\n".join(parts) + "\n"

    def to_markdown(self) -> str:
        """Markdown: a heading, the header lines, each table as a pipe table, the notes."""

        parts = [f"### {escape_markdown(self.title)}", ""] + [escape_markdown(s) + "  " for s in self.lines] + [""]
        for t in self.tables:
            parts += [to_markdown(t), ""]
        parts += [escape_markdown(s) + "  " for s in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def to_dict(self) -> dict:
        return {"title": self.title, "lines": list(self.lines), "notes": list(self.notes),
                "tables": [spec_to_json(t) for t in self.tables]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ResultSummary":
        return cls(title=str(d["title"]), lines=tuple(d.get("lines", ())), notes=tuple(d.get("notes", ())),
                   tables=tuple(spec_from_json(t) for t in d.get("tables", ())))


# --------------------------------------------------------------------------- JSON forms
def _scalar_out(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return {"f": "nan"}
        if math.isinf(f):
            return {"f": "inf" if f > 0 else "-inf"}
        return f
    if isinstance(v, str):
        return v
    if isinstance(v, (pd.Timestamp,)):
        return {"t": v.isoformat()}
    return str(v)


def _scalar_in(v):
    if isinstance(v, dict):
        if "f" in v:
            return float(v["f"])
        if "t" in v:
            return pd.Timestamp(v["t"])
    return v


def table_to_json(df: pd.DataFrame) -> dict:
    """A DataFrame as plain JSON that :func:`table_from_json` restores exactly.

    Floats keep every digit (Python writes the shortest text that reads back
    to the same number); NaN and infinities are written as tagged values;
    column dtypes (float, integer, boolean, text, categorical) are recorded.
    """
    cols = []
    for name in df.columns:
        s = df[name]
        entry = {"name": _scalar_out(name), "dtype": str(s.dtype)}
        if isinstance(s.dtype, pd.CategoricalDtype):
            entry["categories"] = [_scalar_out(c) for c in s.cat.categories]
            entry["ordered"] = bool(s.cat.ordered)
        entry["values"] = [_scalar_out(v) for v in s.tolist()]
        cols.append(entry)
    index = df.index
    idx = None
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        idx = {"name": _scalar_out(index.name), "values": [_scalar_out(v) for v in index.tolist()]}
    return {"columns": cols, "index": idx, "n_rows": int(len(df))}


def table_from_json(d: Mapping) -> pd.DataFrame:
    """Restore a DataFrame written by :func:`table_to_json`."""
    n = int(d["n_rows"])
    data = {}
    for entry in d["columns"]:
        values = [_scalar_in(v) for v in entry["values"]]
        if len(values) != n:
            raise SavedResultError(f"A saved table column {entry['name']!r} has {len(values)} values; expected {n}.")
        dtype = entry["dtype"]
        if dtype == "category":
            s = pd.Series(pd.Categorical(values, categories=[_scalar_in(c) for c in entry["categories"]],
                                         ordered=bool(entry["ordered"])))
        elif dtype.startswith(("float", "int", "uint", "bool")) and not dtype[:1].isupper():
            s = pd.Series(values, dtype=dtype) if n else pd.Series([], dtype=dtype)
        elif dtype in ("str", "string"):
            s = pd.Series(values, dtype=dtype)
        else:
            s = pd.Series(values, dtype=object)
        data[_scalar_in(entry["name"])] = s
    df = pd.DataFrame(data) if data else pd.DataFrame(index=range(n))
    if d.get("index") is not None:
        df.index = pd.Index([_scalar_in(v) for v in d["index"]["values"]], name=_scalar_in(d["index"]["name"]))
    return df


def spec_to_json(spec: TableSpec) -> dict:
    """A :class:`TableSpec` as plain JSON (restored by :func:`spec_from_json`)."""
    def cell(c: Cell):
        return {"text": c.text, "kind": c.kind, "value": _scalar_out(c.value), "colspan": c.colspan,
                "rowspan": c.rowspan, "footnotes": list(c.footnotes), "bold": c.bold, "italic": c.italic}

    return {"title": spec.title, "header": [[cell(c) for c in r] for r in spec.header],
            "body": [{"role": r.role, "cells": [cell(c) for c in r.cells]} for r in spec.body],
            "number": spec.number, "caption": spec.caption,
            "footnotes": [[f.marker, f.text] for f in spec.footnotes], "notes": list(spec.notes),
            "orientation": spec.orientation, "label": spec.label,
            "column_widths": None if spec.column_widths is None else list(spec.column_widths)}


def spec_from_json(d: Mapping) -> TableSpec:
    def cell(c):
        return Cell(text=c["text"], kind=c["kind"], value=_scalar_in(c["value"]), colspan=int(c["colspan"]),
                    rowspan=int(c["rowspan"]), footnotes=tuple(c["footnotes"]), bold=bool(c["bold"]),
                    italic=bool(c["italic"]))

    return TableSpec(title=d["title"], header=tuple(tuple(cell(c) for c in r) for r in d["header"]),
                     body=tuple(Row(tuple(cell(c) for c in r["cells"]), role=r["role"]) for r in d["body"]),
                     number=d["number"], caption=d["caption"],
                     footnotes=tuple(Footnote(m, t) for m, t in d["footnotes"]), notes=tuple(d["notes"]),
                     orientation=d["orientation"], label=d["label"],
                     column_widths=None if d["column_widths"] is None else tuple(d["column_widths"]))


def _json_ready(obj):
    """Meta values as JSON (numbers exact, NaN/inf tagged, arrays as lists, frames as tables)."""
    if isinstance(obj, pd.DataFrame):
        return {"__table__": table_to_json(obj)}
    if isinstance(obj, TableSpec):
        return {"__spec__": spec_to_json(obj)}
    if isinstance(obj, np.ndarray):
        return {"__array__": [_json_ready(v) for v in obj.tolist()], "dtype": str(obj.dtype),
                "shape": list(obj.shape)}
    if isinstance(obj, Mapping):
        return {"__map__": [[_json_ready(k), _json_ready(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return _scalar_out(obj)


def _from_json_ready(obj):
    if isinstance(obj, dict):
        if "__table__" in obj:
            return table_from_json(obj["__table__"])
        if "__spec__" in obj:
            return spec_from_json(obj["__spec__"])
        if "__array__" in obj:
            flat = np.array(_flatten([_from_json_ready(v) for v in obj["__array__"]]), dtype=obj["dtype"])
            return flat.reshape(tuple(obj["shape"]))
        if "__map__" in obj:
            return {_from_json_ready(k): _from_json_ready(v) for k, v in obj["__map__"]}
        return _scalar_in(obj)
    if isinstance(obj, list):
        return [_from_json_ready(v) for v in obj]
    return obj


def _flatten(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(_flatten(x))
        return out
    return [v]


# --------------------------------------------------------------------------- contract
_KINDS: dict[str, type] = {}
#: result kinds that pool over multiply imputed data sets by rules of their own (kind -> function taking the
#: list of m results and returning one pooled result); :meth:`Imputations.fit` uses them instead of pooling tidy()
POOLERS: dict[str, Callable] = {}


def register_pooler(kind: str, pool_results: Callable) -> None:
    """Declare how results of ``kind`` are pooled over imputations (used by ``Imputations.fit``)."""
    POOLERS[kind] = pool_results


class FittedResult:
    """The contract every fitted result implements (see the module docstring).

    A subclass sets ``kind`` (a short name such as ``"lmm"``), implements
    ``tidy``, ``glance``, ``summary``, ``to_table_spec``, ``vcov``, ``dropped``
    and ``optimizer``, and two methods that make it saveable:
    ``_state()`` returns everything needed to answer the contract as a
    mapping of plain values, arrays, DataFrames and TableSpecs, and the class
    method ``_from_state(state)`` rebuilds the result from that mapping.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        k = cls.__dict__.get("kind")
        if k:
            _KINDS[k] = cls

    # -- the contract (subclasses implement) -------------------------------------------
    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def glance(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> ResultSummary:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_table_spec(self, **kw) -> TableSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    def vcov(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _from_state(cls, state: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.summary().to_html()

    # -- saving ----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the result to ``folder`` (created if needed) and return the folder.

        The folder holds ``result.json`` (everything :func:`load_result`
        needs, as plain JSON, every digit kept) and, for reading by people and
        spreadsheets, ``tidy.csv`` and ``glance.csv`` (10 significant digits).
        Files are written whole or not at all.
        """

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": SAVE_FORMAT, "kind": self.kind, "cimstats_version": __version__,
               "state": _json_ready(self._state())}
        text = json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        # the readable copies at 10 significant digits (the exact numbers are in result.json)
        atomic_write(folder / "tidy.csv", spreadsheet_safe_frame(self.tidy()).to_csv(index=False, float_format="%.10g"))
        atomic_write(folder / "glance.csv",
                     spreadsheet_safe_frame(self.glance()).to_csv(index=False, float_format="%.10g"))
        atomic_write(folder / RESULT_FILE, text)
        return folder


def read_saved_result(folder: str | os.PathLike):
    """Read a result written by ``result.save(folder)`` (the kinds whose classes are loaded).

    The public entry point is :func:`cimstats.load_result`, which loads every
    result class first; this function knows the classes registered so far.

    Parameters
    ----------
    folder : path
        The folder given to ``save`` (or the ``result.json`` inside it).

    Returns
    -------
    The result, of the same class as the one saved. Its ``tidy``, ``glance``,
    ``summary``, ``to_table_spec`` and figures are identical to the original's;
    what needs the original data (predictions, refits, bootstraps) raises
    :class:`ResultNotAvailableError`.

    Raises
    ------
    SavedResultError
        When the folder holds no saved result, the file is not a saved
        result, or it was written by a newer layout.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        raise SavedResultError(f"{path} does not exist; give the folder a result was saved to with `result.save(folder)`.")
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise SavedResultError(f"{path} is larger than {MAX_RESULT_BYTES // 2**20} MiB and is not a saved result.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SavedResultError(f"{path} is not a saved cimstats result ({exc.__class__.__name__}); save the result again.") from None
    if not isinstance(doc, dict) or "kind" not in doc or "state" not in doc:
        raise SavedResultError(f"{path} is not a saved cimstats result; save the result again with `result.save(folder)`.")
    if doc.get("format") != SAVE_FORMAT:
        raise SavedResultError(f"{path} uses saved-result layout {doc.get('format')!r}; this version reads layout "
                               f"{SAVE_FORMAT}. Save the result again with this version.")
    cls = _KINDS.get(doc["kind"]) if isinstance(doc["kind"], str) else None
    if cls is None:
        raise SavedResultError(f"{path} holds a result of kind {doc['kind']!r}, which this version does not know; "
                               f"known kinds: {', '.join(sorted(_KINDS))}.")
    try:
        state = _from_json_ready(doc["state"])
        return cls._from_state(state)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SavedResultError(f"{path} is damaged or incomplete ({exc.__class__.__name__}: {exc}); "
                               f"save the result again.") from None


def not_available(what: str, kind: str) -> ResultNotAvailableError:
    """The error a loaded result raises for something that needs the original data."""
    return ResultNotAvailableError(
        f"{what} needs the data the model was fitted to, and this {kind} result was loaded from a saved folder; "
        f"fit the model again to use it.")
