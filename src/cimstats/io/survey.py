"""The central table of the io stage: :class:`Survey` (data + per-variable metadata).

A survey file holds more than values: variable labels, value labels, the
measurement level, and *declared* missing codes (SPSS user-missing values and
ranges, Stata extended missing values ``.a``-``.z``). cimstats keeps all of it.

Two views of the same cells are kept side by side:

``Survey.data``
    the analysis values: every cell that held a declared missing code is
    missing (``NaN``/``<NA>``) so that means, models and scores are right.
``Survey.missing``
    the record of *which* missing code each of those cells held (``99``,
    ``-9``, ``".a"``...): one column per variable that had at least one such
    cell, ``None`` elsewhere. Nothing becomes missing without a record here.

:meth:`Survey.raw` puts the codes back, which is what writers use so that a
file round-trips its values, labels and missing declarations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from cimstats.errors import MetadataError
from cimstats.io import _describe
from cimstats.render.notebook import notebook_html

MEASURES = ("nominal", "ordinal", "scale")
STORAGES = ("numeric", "string", "date", "datetime", "time")


def _is_na(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:  # pragma: no cover
        return False


@dataclass(frozen=True)
class VariableMeta:
    """Metadata of one survey variable.

    Parameters
    ----------
    name : str
        Column name in ``Survey.data``.
    label : str, optional
        Variable label (the question text or a short description).
    value_labels : mapping, optional
        Code -> label, kept in code order (not alphabetical).
    measure : {"nominal", "ordinal", "scale"}, optional
        Measurement level as declared in the file.
    missing_codes : tuple, optional
        Discrete declared missing codes: SPSS user-missing values (numbers or
        strings) or Stata extended missing values written ``".a"``...``".z"``.
    missing_ranges : tuple of (low, high), optional
        SPSS user-missing ranges, inclusive at both ends.
    storage : {"numeric", "string", "date", "datetime", "time"}
        How values are stored.
    display_format : str, optional
        The file's display format (``F8.2``, ``%9.0g``, ``A20``...).
    width : int, optional
        Declared width of string variables.

    Examples
    --------
    >>> m = VariableMeta("q1", label="Confident to manage", value_labels={1: "Not at all", 10: "Totally"},
    ...                  missing_codes=(99,), missing_ranges=((-9, -1),))
    >>> m.is_declared_missing(99), m.is_declared_missing(-3), m.is_declared_missing(5)
    (True, True, False)
    """

    name: str
    label: str | None = None
    value_labels: Mapping[Any, str] = field(default_factory=dict)
    measure: str | None = None
    missing_codes: tuple = ()
    missing_ranges: tuple = ()
    storage: str = "numeric"
    display_format: str | None = None
    width: int | None = None

    def __post_init__(self):
        if self.measure is not None and self.measure not in MEASURES:
            raise MetadataError(
                f"Variable '{self.name}' has measure level '{self.measure}'; expected one of "
                f"{', '.join(MEASURES)} or none."
            )
        if self.storage not in STORAGES:
            raise MetadataError(
                f"Variable '{self.name}' has storage '{self.storage}'; expected one of {', '.join(STORAGES)}."
            )
        object.__setattr__(self, "value_labels", dict(_sort_codes(self.value_labels)))
        object.__setattr__(self, "missing_codes", tuple(self.missing_codes))
        object.__setattr__(self, "missing_ranges", tuple(tuple(r) for r in self.missing_ranges))
        for r in self.missing_ranges:
            if len(r) != 2 or r[0] > r[1]:
                raise MetadataError(
                    f"Variable '{self.name}' has missing range {r!r}; expected (low, high) with low <= high."
                )

    @property
    def has_missing_declarations(self) -> bool:
        return bool(self.missing_codes or self.missing_ranges)

    def is_declared_missing(self, value: Any) -> bool:
        """True when ``value`` is one of this variable's declared missing codes."""
        if _is_na(value):
            return False
        if value in self.missing_codes:
            return True
        if self.missing_ranges and isinstance(value, (int, float, np.integer, np.floating)):
            return any(lo <= value <= hi for lo, hi in self.missing_ranges)
        return False

    def with_(self, **changes) -> "VariableMeta":
        """A copy with some fields changed."""
        return replace(self, **changes)


def _sort_codes(labels: Mapping[Any, str]) -> list[tuple[Any, str]]:
    """Code order: numbers ascending, then text codes (e.g. Stata ``".a"``) ascending."""
    items = list(dict(labels).items())
    try:
        return sorted(items, key=lambda kv: (isinstance(kv[0], str), kv[0]))
    except TypeError:  # codes that cannot be compared: keep file order
        return items


def declared_missing_mask(col: pd.Series, meta: "VariableMeta") -> pd.Series:
    """Boolean mask of the cells of ``col`` that hold one of ``meta``'s declared missing codes.

    Vectorised (no per-cell Python) so large columns stay fast.

    Examples
    --------
    >>> m = VariableMeta("q", missing_codes=(99, ".a"), missing_ranges=((-9, -1),))
    >>> declared_missing_mask(pd.Series([1, 99, -3, None, ".a"], dtype=object), m).tolist()
    [False, True, True, False, True]
    """
    mask, _ = _declared_cells(col, meta)
    return pd.Series(mask, index=col.index)


def _declared_cells(col: pd.Series, meta: "VariableMeta") -> tuple[np.ndarray, np.ndarray]:
    """``(mask, codes)``: which cells hold a declared missing code, and that code (object array).

    A cell matching a discrete code records the code as declared (``99``, not
    ``99.0``); a cell inside a range records its own value (whole numbers as int).
    """
    n = len(col)
    mask = np.zeros(n, dtype=bool)
    codes = np.empty(n, dtype=object)  # all None
    if not meta.has_missing_declarations or n == 0:
        return mask, codes
    numeric_dtype = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    num_ranges = [(lo, hi) for lo, hi in meta.missing_ranges if not (isinstance(lo, str) or isinstance(hi, str))]
    text_ranges = [(lo, hi) for lo, hi in meta.missing_ranges if isinstance(lo, str) and isinstance(hi, str)]
    values = None
    if numeric_dtype:
        values = col.to_numpy(dtype=float, na_value=np.nan)
    elif num_ranges:
        obj = col.astype(object)
        numbers = obj.where(obj.map(type).isin((int, float, np.int64, np.float64)))
        values = pd.to_numeric(numbers, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if values is not None:
        for lo, hi in num_ranges:
            with np.errstate(invalid="ignore"):
                hit = (values >= lo) & (values <= hi)
            if hit.any():
                mask |= hit
                vals = values[hit]
                whole = (vals == np.round(vals)) & (np.abs(vals) < 2.0**53)
                got = vals.astype(object)
                if whole.any():
                    got[whole] = vals[whole].astype(np.int64).astype(object)
                codes[hit] = got
    if text_ranges:
        obj = col.astype(object)
        is_text = obj.map(type).eq(str)
        txt = obj.where(is_text)
        for lo, hi in text_ranges:
            hit = (is_text & (txt >= lo) & (txt <= hi)).to_numpy(dtype=bool)
            mask |= hit
            codes[hit] = obj.to_numpy()[hit]
    for code in meta.missing_codes:
        plain = _plain(code)
        if numeric_dtype:
            if isinstance(code, str):
                continue
            hit = values == float(code)
        else:
            hit = col.isin([code]).to_numpy(dtype=bool)
            if isinstance(code, str):
                pass  # text codes only match text cells (1 != "1")
        if hit.any():
            mask |= hit
            codes[hit] = plain
    return mask, codes

    num_codes = [c for c in meta.missing_codes if not isinstance(c, str)]
    txt_codes = [c for c in meta.missing_codes if isinstance(c, str)]
    numeric_dtype = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if numeric_dtype:
        values = col.to_numpy(dtype=float, na_value=np.nan)
    elif num_codes or any(not isinstance(lo, str) for lo, _ in meta.missing_ranges):
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        values = None
    if values is not None:
        if num_codes:
            mask |= np.isin(values, np.asarray(num_codes, dtype=float))
        for lo, hi in meta.missing_ranges:
            if isinstance(lo, str) or isinstance(hi, str):
                continue
            with np.errstate(invalid="ignore"):
                mask |= (values >= lo) & (values <= hi)
    if not numeric_dtype:
        text_ranges = [(lo, hi) for lo, hi in meta.missing_ranges if isinstance(lo, str)]
        if txt_codes or text_ranges:
            obj = col.astype(object)
            is_text = obj.map(type).to_numpy() == str if col.dtype == object else col.notna().to_numpy()
            if txt_codes:
                mask |= obj.isin(txt_codes).to_numpy() & is_text
            for lo, hi in text_ranges:
                txt = col.where(pd.Series(is_text, index=col.index)).astype(object)
                mask |= ((txt >= lo) & (txt <= hi)).fillna(False).to_numpy(dtype=bool)
    return pd.Series(mask, index=col.index)




@dataclass(frozen=True)
class SourceInfo:
    """Where a survey came from."""

    path: str | None = None
    format: str | None = None  # "sav", "zsav", "por", "dta", "sas7bdat", "xpt", "csv", "parquet"
    encoding: str | None = None
    file_label: str | None = None
    notes: tuple = ()


class Survey:
    """Survey data with per-variable metadata and a record of declared missing codes.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis values; declared missing cells already set to missing.
    meta : mapping of str to VariableMeta, optional
        Metadata per column; columns without an entry get plain metadata.
    missing : pandas.DataFrame, optional
        Same index as ``data``; one column per variable holding the original
        missing code of each declared-missing cell and ``None`` elsewhere.
    source : SourceInfo, optional
        File path, format, encoding and file label.

    Examples
    --------
    >>> import pandas as pd
    >>> s = Survey.from_raw(pd.DataFrame({"q1": [1, 2, 99]}),
    ...                     meta={"q1": VariableMeta("q1", value_labels={1: "No", 2: "Yes"}, missing_codes=(99,))})
    >>> s.data["q1"].tolist()
    [1.0, 2.0, nan]
    >>> s.missing["q1"].tolist()
    [None, None, 99]
    >>> s.raw()["q1"].tolist()
    [1.0, 2.0, 99.0]
    """

    __slots__ = ("_data", "_meta", "_missing", "_source")

    def __init__(
        self,
        data: pd.DataFrame,
        meta: Mapping[str, VariableMeta] | None = None,
        missing: pd.DataFrame | None = None,
        source: SourceInfo | None = None,
    ):
        if not isinstance(data, pd.DataFrame):
            raise MetadataError(f"`data` is a {type(data).__name__}; expected a pandas DataFrame.")
        cols = list(map(str, data.columns))
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise MetadataError(
                f"`data` has duplicate column names {dup}; rename them so each variable is unique."
            )
        meta = dict(meta or {})
        unknown = [k for k in meta if k not in data.columns]
        if unknown:
            raise MetadataError(
                f"Metadata describe {unknown}, which are not columns of the data; remove them or add the columns."
            )
        full = {}
        for c in data.columns:
            m = meta.get(c)
            if m is None:
                m = VariableMeta(c, storage="string" if _is_string(data[c]) else "numeric")
            elif m.name != c:
                m = m.with_(name=c)
            full[c] = m
        if missing is None:
            missing = pd.DataFrame(index=data.index)
        else:
            bad = [c for c in missing.columns if c not in data.columns]
            if bad:
                raise MetadataError(f"The missing-code record names {bad}, which are not columns of the data.")
            if len(missing) != len(data) or not missing.index.equals(data.index):
                raise MetadataError("The missing-code record does not have the same rows as the data.")
        self._data = data
        self._meta = full
        self._missing = missing
        self._source = source or SourceInfo()

    # -- construction -------------------------------------------------------
    @classmethod
    def from_raw(
        cls,
        raw: pd.DataFrame,
        meta: Mapping[str, VariableMeta] | None = None,
        source: SourceInfo | None = None,
    ) -> "Survey":
        """Build a survey from values that still hold declared missing codes.

        Cells equal to a declared missing code (per ``meta``) become missing in
        ``data`` and are recorded in ``missing``.
        """
        meta = dict(meta or {})
        data = raw.copy(deep=False)  # changed columns are replaced, never written into: ``raw`` stays as it was
        record = {}
        for c, m in meta.items():
            if c not in data.columns or not m.has_missing_declarations:
                continue
            col = data[c]
            mask_arr, codes = _declared_cells(col, m)
            if mask_arr.any():
                mask = pd.Series(mask_arr, index=col.index)
                record[c] = pd.Series(codes, index=col.index, dtype=object)
                if m.storage == "numeric" and pd.api.types.is_numeric_dtype(col) \
                        and not pd.api.types.is_bool_dtype(col):
                    values = col.to_numpy(dtype=float, na_value=np.nan, copy=True)
                    values[mask.to_numpy()] = np.nan
                    data[c] = pd.Series(values, index=col.index, name=c)
                    continue
                kept = col.where(~mask)
                if m.storage == "string" or (m.storage == "numeric" and _is_string(kept)):
                    data[c] = col.where(~mask, None)
                elif m.storage == "numeric":
                    data[c] = pd.to_numeric(kept, errors="coerce").astype(float)
                else:  # dates and times: the code cells become missing, the rest stay as they are
                    data[c] = kept
        missing = pd.DataFrame(record, index=data.index) if record else None
        return cls(data, meta, missing, source)

    # -- views ----------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """Analysis values (declared missing cells are missing)."""
        return self._data

    @property
    def meta(self) -> dict[str, VariableMeta]:
        """Metadata per variable, in column order."""
        return dict(self._meta)

    @property
    def missing(self) -> pd.DataFrame:
        """Original missing code per declared-missing cell (``None`` elsewhere)."""
        return self._missing

    @property
    def source(self) -> SourceInfo:
        return self._source

    @property
    def variables(self) -> list[str]:
        return list(self._data.columns)

    @property
    def shape(self) -> tuple[int, int]:
        return self._data.shape

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        src = f" from {Path(self._source.path).name}" if self._source.path else ""
        n_codes = int(self._missing.notna().sum().sum()) if len(self._missing.columns) else 0
        return (f"<Survey{src}: {self.shape[0]} rows x {self.shape[1]} variables, "
                f"{n_codes} cells with declared missing codes>")

    def _repr_html_(self) -> str:
        """Notebook view: the facts of :meth:`__repr__` and the first variables with labels (escaped)."""
        rows = []
        for name in self.variables:
            m = self._meta.get(name)
            rows.append({"variable": str(name), "label": (m.label if m is not None else None) or "",
                         "storage": getattr(m, "storage", "") or "",
                         "value_labels": len(getattr(m, "value_labels", None) or {})})
        return notebook_html(repr(self).strip("<>"), table=pd.DataFrame(rows), more="survey.codebook()")

    def __getitem__(self, name: str) -> pd.Series:
        return self._data[name]

    def variable(self, name: str) -> VariableMeta:
        """Metadata of one variable, with a clear error when it does not exist."""
        try:
            return self._meta[name]
        except KeyError:
            raise MetadataError(
                f"'{name}' is not a variable of this survey; available: {', '.join(self.variables[:20])}"
                + (" ..." if len(self.variables) > 20 else "") + "."
            ) from None

    def raw(self) -> pd.DataFrame:
        """Values with the declared missing codes put back (what a file holds)."""
        out = self._data.copy(deep=False)  # changed columns are replaced, ``data`` is never written into
        for c in self._missing.columns:
            rec = self._missing[c]
            mask = rec.notna().to_numpy()
            if not mask.any():
                continue
            m = self._meta[c]
            codes = rec.to_numpy(dtype=object)[mask]
            kind = pd.api.types.infer_dtype(codes, skipna=True)
            if m.storage == "string" or _is_string(out[c]) or kind not in (
                    "integer", "floating", "mixed-integer-float", "decimal"):
                # text codes, or Stata extended missing (".a") beside numbers: an object column
                col = out[c].to_numpy(dtype=object, copy=True)
                col[mask] = codes
            else:
                col = out[c].to_numpy(dtype=float, na_value=np.nan, copy=True)
                col[mask] = codes.astype(float)
            out[c] = pd.Series(col, index=out.index, name=c)
        return out

    def labelled(self, name: str) -> pd.Series:
        """One variable as categories named by its value labels, in code order.

        Codes without a label keep their code as the category name.
        """
        m = self.variable(name)
        col = self._data[name]
        if not m.value_labels:
            return col
        codes = list(m.value_labels)
        present = [v for v in pd.unique(col.dropna()) if v not in m.value_labels]
        try:
            present = sorted(present)
        except TypeError:
            pass
        order = codes + present
        names = [m.value_labels.get(c, str(c)) for c in order]
        # two codes can share a label; keep them distinct by appending the code
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            seen[n] = seen.get(n, 0) + 1
            if seen[n] > 1:
                names[i] = f"{n} [{order[i]}]"
        mapping = dict(zip(order, names))
        return pd.Series(
            pd.Categorical(col.map(mapping), categories=names, ordered=m.measure == "ordinal"),
            index=col.index,
            name=name,
        )

    def as_labels(self) -> pd.DataFrame:
        """All variables with value labels shown as categories (code order kept)."""
        return pd.DataFrame({c: self.labelled(c) for c in self.variables}, index=self._data.index)

    def select(self, columns: Iterable[str]) -> "Survey":
        """A survey with only ``columns`` (metadata and missing record kept)."""
        columns = list(columns)
        for c in columns:
            self.variable(c)
        miss = self._missing[[c for c in self._missing.columns if c in columns]]
        return Survey(self._data[columns], {c: self._meta[c] for c in columns}, miss, self._source)

    def with_data(self, data: pd.DataFrame, meta: Mapping[str, VariableMeta] | None = None) -> "Survey":
        """A survey with new data; metadata of columns that remain are kept, ``meta`` overrides."""
        keep = {c: m for c, m in self._meta.items() if c in data.columns}
        keep.update(meta or {})
        miss_cols = [c for c in self._missing.columns if c in data.columns]
        miss = self._missing[miss_cols] if data.index.equals(self._data.index) else None
        return Survey(data, keep, miss, self._source)

    def codebook(self) -> pd.DataFrame:
        """One row per variable: name, label, type, value labels, missing codes, counts, range.

        Columns: ``name, label, storage, measure, value_labels, missing_codes,
        n_valid, n_declared_missing, n_system_missing, min, max, top_categories,
        missing_code_counts`` (see :func:`cimstats.io.codebook.codebook`).
        """
        return _describe.codebook_table(self)


def analysis_frame(data: Any, *, error: type[Exception] = MetadataError) -> pd.DataFrame:
    """The analysis values of ``data``: a DataFrame as it is, or a :class:`Survey`'s ``data``.

    A Survey's value labels travel with its values in ``attrs["value_labels"]``
    (column -> {code: label}) of a shallow copy (no values are copied), so the
    models name a labelled factor's levels by their labels (``sex: boy``).
    Anything else raises ``error`` with one sentence naming what was found.

    Examples
    --------
    >>> s = Survey(pd.DataFrame({"x": [1, 2]}))
    >>> analysis_frame(s).columns.tolist()
    ['x']
    """
    if isinstance(data, pd.DataFrame):
        return data
    inner = getattr(data, "data", None)
    if isinstance(inner, pd.DataFrame):
        meta = getattr(data, "meta", None)
        labels = {str(c): dict(m.value_labels) for c, m in (meta.items() if isinstance(meta, dict) else ())
                  if getattr(m, "value_labels", None)}
        if labels:
            inner = inner.copy(deep=False)
            inner.attrs = {**inner.attrs, "value_labels": labels}
        return inner
    raise error(
        f"`data` is a {type(data).__name__}; expected a pandas DataFrame or a cimstats Survey "
        "with one row per observation, so pass one of those."
    )


def _is_string(col: pd.Series) -> bool:
    if pd.api.types.is_object_dtype(col):
        return pd.api.types.infer_dtype(col, skipna=True) == "string"  # all text, at least one value
    return pd.api.types.is_string_dtype(col)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
