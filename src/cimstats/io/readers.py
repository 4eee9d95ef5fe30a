"""Reading labelled survey files into a :class:`~cimstats.io.survey.Survey`.

SPSS (.sav, .zsav, .por), Stata (.dta) and SAS (.sas7bdat, .xpt) files are
read with pyreadstat, always keeping the declared missing codes so that they
land in ``Survey.missing`` instead of silently becoming ``NaN``. CSV and
Parquet files carry the metadata cimstats wrote with them (see
:mod:`cimstats.io.metajson`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import os
import re
import string
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from cimstats.errors import MetadataError, SurveyReadError
from cimstats.io.formats import (
    short_reason,
    FORMAT_NAMES,
    READ_FORMATS,
    compatible,
    format_from_extension,
    sniff_format,
)
from cimstats.io.metajson import KEY, meta_from_json
from cimstats.io.survey import SourceInfo, Survey, VariableMeta

_LABELLED = ("sav", "zsav", "por", "dta", "sas7bdat", "xpt")
_USER_MISSING_FORMATS = ("sav", "zsav", "dta", "sas7bdat")
_ENCODING_FORMATS = ("sav", "zsav", "dta", "sas7bdat", "xpt", "csv")
#: Stata value labels that carry an SPSS code cimstats converted on writing
#: Stata value label that only declares an extended missing value (it had no label of its own)
DECLARED_ONLY = "[declared missing]"
_CODE_IN_LABEL = re.compile(r"^(?P<label>.*?)\s*\[code (?P<code>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\]$")


# -- public -------------------------------------------------------------------
def read_survey(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    encoding: str | None = None,
    columns: Iterable[str] | None = None,
    user_missing: bool = True,
    convert_dates: bool = True,
    missing_codes: Mapping[str, Iterable[Any]] | None = None,
    row_offset: int = 0,
    row_limit: int | None = None,
) -> Survey:
    """Read a survey file with its labels, measure levels and declared missing codes.

    Parameters
    ----------
    path : str or path-like
        A .sav, .zsav, .por, .dta, .sas7bdat, .xpt, .csv or .parquet file.
    format : str, optional
        One of ``"sav", "zsav", "por", "dta", "sas7bdat", "xpt", "csv",
        "parquet"``; by default taken from the extension and checked against
        the file's first bytes.
    encoding : str, optional
        Character encoding of text in the file (e.g. ``"latin-1"``,
        ``"cp1252"``); by default the one the file declares (UTF-8 for CSV).
    columns : iterable of str, optional
        Read only these variables (in this order).
    user_missing : bool, default True
        When True, cells holding a declared missing code (SPSS user-missing
        values and ranges, Stata/SAS extended missing values) are missing in
        ``Survey.data`` and their code is recorded in ``Survey.missing``. When
        False, SPSS codes stay in ``Survey.data`` as ordinary values (their
        declarations are still kept in the metadata); Stata/SAS extended
        missing values, which have no value, are always treated as missing.
    convert_dates : bool, default True
        Turn date, datetime and time variables into Python/pandas dates.
        Pass False to get the numbers the file stores (seconds or days since
        the format's origin), e.g. when a date is outside the range pandas
        can hold.
    missing_codes : mapping of str to iterable, optional
        Extra declared missing codes per variable (useful for CSV, which cannot
        declare them): ``{"q1": [9, 99]}``.
    row_offset, row_limit : int, optional
        Read ``row_limit`` rows starting at row ``row_offset`` (0-based).

    Returns
    -------
    Survey
        ``data`` (analysis values), ``meta`` (per-variable metadata),
        ``missing`` (the code of every declared-missing cell) and ``source``
        (path, format, encoding, file label).

    Raises
    ------
    SurveyReadError
        When the file is absent, not a regular file (a folder, device or
        pipe), empty, truncated or corrupt, its header declares more rows
        than the file's size can hold (.sav, .zsav, .dta: checked before
        anything is allocated), its content does not match its extension,
        its encoding is unknown or wrong, a date is out of range, or it has
        duplicate variable names.

    Notes
    -----
    Value labels are kept in code order (numbers ascending, then Stata
    extended-missing codes ``".a"``-``".z"``). Stata and SAS extended missing
    values are recorded as ``".a"``...``".z"`` (SAS: ``".A"``...``".Z"``,
    ``"._"``). A Stata value label of the form ``"Refused [code 99]"`` on an
    extended missing value, which :func:`write_survey` writes for an SPSS
    missing code, reads back as the original code 99 with label
    ``"Refused"``.

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> from cimstats.io import Survey, VariableMeta, write_survey
    >>> s = Survey.from_raw(pd.DataFrame({"q1": [1.0, 2.0, 99.0]}),
    ...     {"q1": VariableMeta("q1", label="Pain", value_labels={1: "No", 2: "Yes", 99: "Refused"},
    ...                         missing_codes=(99,), measure="nominal")})
    >>> path = os.path.join(tempfile.mkdtemp(), "wave1.sav")
    >>> write_survey(s, path)
    >>> back = read_survey(path)
    >>> back.data["q1"].tolist(), back.missing["q1"].tolist()
    ([1.0, 2.0, nan], [None, None, 99])
    >>> back.variable("q1").value_labels
    {1: 'No', 2: 'Yes', 99: 'Refused'}
    """
    path, fmt = _check_path(path, format)
    _check_encoding(encoding, path)
    if row_offset < 0 or (row_limit is not None and row_limit < 0):
        raise SurveyReadError(
            f"`row_offset`={row_offset} and `row_limit`={row_limit} must not be negative; pass counts of rows."
        )
    cols = list(columns) if columns is not None else None
    if fmt in _LABELLED:
        if fmt in _DECLARED_ROWS:
            _, head_meta = _pyreadstat_read(path, fmt, encoding=encoding, columns=None, convert_dates=convert_dates,
                                            row_offset=0, row_limit=0, metadataonly=True)
            _check_declared_rows(path, fmt, head_meta)
        raw, rmeta = _pyreadstat_read(
            path, fmt, encoding=encoding, columns=cols, convert_dates=convert_dates,
            row_offset=row_offset, row_limit=row_limit or 0,
        )
        return _survey_from_readstat(raw, rmeta, path, fmt, encoding, user_missing, missing_codes, cols)
    if fmt == "csv":
        return _read_csv(path, encoding, cols, user_missing, missing_codes, row_offset, row_limit)
    return _read_parquet(path, cols, user_missing, missing_codes, row_offset, row_limit)


def iter_survey(
    path: str | os.PathLike,
    *,
    chunksize: int = 100_000,
    format: str | None = None,
    encoding: str | None = None,
    columns: Iterable[str] | None = None,
    user_missing: bool = True,
    convert_dates: bool = True,
    missing_codes: Mapping[str, Iterable[Any]] | None = None,
) -> Iterator[Survey]:
    """Read a large survey file in chunks of ``chunksize`` rows.

    Each chunk is a :class:`Survey` with the full metadata; its row index
    continues from the previous chunk (0, 1, ... over the whole file), so
    ``pd.concat([c.data for c in iter_survey(path)])`` equals
    ``read_survey(path).data``.

    Parameters are those of :func:`read_survey`, plus ``chunksize`` (rows per
    chunk, at least 1).

    Yields
    ------
    Survey

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> from cimstats.io import Survey, write_survey
    >>> path = os.path.join(tempfile.mkdtemp(), "big.dta")
    >>> write_survey(Survey(pd.DataFrame({"x": range(10)})), path)
    >>> [len(chunk) for chunk in iter_survey(path, chunksize=4)]
    [4, 4, 2]
    """
    if not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise SurveyReadError(f"`chunksize`={chunksize!r} is not a positive number of rows; pass e.g. 100000.")
    path, fmt = _check_path(path, format)
    _check_encoding(encoding, path)
    cols = list(columns) if columns is not None else None
    if fmt in _LABELLED:
        # metadata first: tells how many rows there are (some formats do not say)
        _, head_meta = _pyreadstat_read(path, fmt, encoding=encoding, columns=cols,
                                        convert_dates=convert_dates, row_offset=0, row_limit=0, metadataonly=True)
        if fmt in _DECLARED_ROWS:
            _check_declared_rows(path, fmt, head_meta)
        n_rows = head_meta.number_rows
        offset = 0
        while True:
            if n_rows is not None and n_rows >= 0 and offset >= n_rows:
                return
            raw, rmeta = _pyreadstat_read(path, fmt, encoding=encoding, columns=cols, convert_dates=convert_dates,
                                          row_offset=offset, row_limit=int(chunksize))
            if len(raw) == 0:
                return
            raw.index = pd.RangeIndex(offset, offset + len(raw))
            yield _survey_from_readstat(raw, rmeta, path, fmt, encoding, user_missing, missing_codes, cols)
            offset += len(raw)
            if len(raw) < chunksize:
                return
    elif fmt == "csv":
        offset = 0
        while True:
            s = _read_csv(path, encoding, cols, user_missing, missing_codes, offset, int(chunksize))
            if len(s) == 0:
                return
            yield s
            offset += len(s)
            if len(s) < chunksize:
                return
    else:
        yield from _iter_parquet(path, int(chunksize), cols, user_missing, missing_codes)


# -- checks ---------------------------------------------------------------------
def _check_path(path: str | os.PathLike, format: str | None) -> tuple[Path, str]:
    if not isinstance(path, (str, os.PathLike)):
        raise SurveyReadError(f"`path` is a {type(path).__name__}; expected a file path (str or pathlib.Path).")
    p = Path(path)
    if format is not None:
        fmt = str(format).lower().lstrip(".")
        if fmt == "parq":
            fmt = "parquet"
        if fmt not in READ_FORMATS:
            raise SurveyReadError(
                f"`format`='{format}' for '{p.name}' is not a survey format cimstats reads; "
                f"use one of {', '.join(READ_FORMATS)}."
            )
    else:
        fmt = format_from_extension(p)
    if not p.exists():
        raise SurveyReadError(f"Survey file '{p}' does not exist; check the path and the current folder.")
    if p.is_dir():
        raise SurveyReadError(f"'{p}' is a folder, not a survey file; give the path of a file inside it.")
    if not p.is_file():
        raise SurveyReadError(f"'{p}' is not a regular file (it is a device, pipe or socket), so it cannot be a "
                              "survey file; give the path of a survey file saved on disk.")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise SurveyReadError(f"Survey file '{p}' cannot be opened ({exc.strerror}); check its permissions.") from None
    if size == 0:
        raise SurveyReadError(f"Survey file '{p}' is empty (0 bytes); the export that wrote it probably failed, so export it again.")
    found = sniff_format(head)
    if fmt is None:
        if found in (None, "text"):
            raise SurveyReadError(
                f"'{p.name}' has extension '{p.suffix}', which is not a survey format cimstats reads; "
                f"rename it or pass `format=` (one of {', '.join(READ_FORMATS)})."
            )
        fmt = found
    if not compatible(fmt, found):
        if found in (None, "text"):
            what = "is plain text" if found == "text" else "is not recognisable"
            raise SurveyReadError(
                f"'{p.name}' should be a {FORMAT_NAMES[fmt]} file but its content {what}, so it is corrupt or not "
                f"a {FORMAT_NAMES[fmt]} file; export it again from the software that made it."
            )
        raise SurveyReadError(
            f"'{p.name}' has the extension of a {FORMAT_NAMES[fmt]} file but holds a {FORMAT_NAMES[found]} file; "
            f"rename it to '{p.stem}.{found}' or pass `format='{found}'`."
        )
    if fmt in ("sav", "zsav") and found in ("sav", "zsav"):
        fmt = found  # the bytes tell compressed from plain
    return p, fmt


#: formats whose header declares the number of rows that the reader then allocates at once
_DECLARED_ROWS = ("sav", "zsav", "dta")
#: most bytes one byte of a zlib (deflate) stream can expand to; bounds .zsav data from below
_DEFLATE_MAX_RATIO = 1032


def _min_bytes_per_row(path: Path, fmt: str, n_columns: int) -> float:
    """A lower bound of the bytes one row of the file takes, from its format and header.

    Each variable takes at least 8 bytes of an uncompressed .sav row, one
    command byte of a bytecode-compressed .sav row, one byte of a Stata row,
    and a .zsav row is that bytecode deflated (at most 1032 to 1).
    """
    if fmt == "dta":
        return float(n_columns)
    try:
        with open(path, "rb") as fh:
            head = fh.read(76)
    except OSError:
        return 0.0
    if len(head) < 76:
        return 0.0
    order = "<" if int.from_bytes(head[64:68], "little") in (2, 3) else ">"
    compression = int.from_bytes(head[72:76], "little" if order == "<" else "big")
    if compression == 0:
        return 8.0 * n_columns
    if compression == 1:
        return float(n_columns)
    return n_columns / _DEFLATE_MAX_RATIO


def _check_declared_rows(path: Path, fmt: str, head_meta) -> None:
    """Refuse a file whose header declares more rows than its size can hold, before anything is allocated."""
    n_rows = getattr(head_meta, "number_rows", None)
    n_cols = int(getattr(head_meta, "number_columns", 0) or 0)
    if n_rows is None or n_rows <= 0 or n_cols <= 0:
        return
    size = path.stat().st_size
    need = int(n_rows) * _min_bytes_per_row(path, fmt, n_cols)
    if need > size:
        raise SurveyReadError(
            f"'{path.name}' declares {int(n_rows)} rows of {n_cols} variable(s) in its {FORMAT_NAMES[fmt]} header, "
            f"which need at least {int(need)} bytes, but the file holds only {size} bytes, so its header is corrupt "
            "or the file is truncated; export it again from the software that made it."
        )


def _check_encoding(encoding: str | None, path: Path) -> None:
    if encoding is None:
        return
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise SurveyReadError(
            f"`encoding`='{encoding}' for '{path.name}' is not a known character encoding; "
            "use a name such as 'utf-8', 'latin-1', 'cp1252' or 'cp1251'."
        ) from None


# -- pyreadstat formats ------------------------------------------------------------
def _pyreadstat_read(path: Path, fmt: str, *, encoding, columns, convert_dates, row_offset, row_limit,
                     metadataonly: bool = False):
    import pyreadstat

    func = {
        "sav": pyreadstat.read_sav, "zsav": pyreadstat.read_sav, "por": pyreadstat.read_por,
        "dta": pyreadstat.read_dta, "sas7bdat": pyreadstat.read_sas7bdat, "xpt": pyreadstat.read_xport,
    }[fmt]
    kw: dict[str, Any] = {"row_offset": row_offset, "row_limit": row_limit,
                          "disable_datetime_conversion": not convert_dates, "metadataonly": metadataonly}
    if fmt in _USER_MISSING_FORMATS:
        kw["user_missing"] = True
    if encoding is not None and fmt in _ENCODING_FORMATS:
        kw["encoding"] = encoding
    if columns is not None:
        kw["usecols"] = columns
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw, rmeta = func(str(path), **kw)
    except OverflowError:
        raise SurveyReadError(
            f"'{path.name}' holds a date or time outside the range Python can represent (year 1-9999); "
            "read it with `convert_dates=False` (`cimstats inspect --dates-as-numbers`) to get the stored numbers, "
            "then fix the value."
        ) from None
    except Exception as exc:  # pyreadstat raises plain Exception subclasses
        raise _readstat_error(exc, path, fmt, encoding, columns) from None
    if columns is not None and not metadataonly:
        absent = [c for c in columns if c not in raw.columns]
        if absent:
            raise SurveyReadError(f"`columns` names {absent}, which are not variables of '{path.name}'; "
                                  "check the names with `cimstats inspect`.")
        raw = raw[list(columns)]
    renamed = [str(w.message) for w in caught if "duplicated" in str(w.message)]
    for w in caught:
        if "duplicated" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    names = list(rmeta.column_names)
    # SPSS names are case-insensitive: "Q1" and "q1" are the same variable there
    key = (lambda n: n.lower()) if fmt in ("sav", "zsav", "por") else (lambda n: n)
    keys = [key(n) for n in names]
    dup = sorted({n for n in names if keys.count(key(n)) > 1})
    if renamed and not dup:
        dup = sorted({re.search(r"column '([^']*)'", m).group(1) for m in renamed if re.search(r"column '([^']*)'", m)})
    if dup:
        raise SurveyReadError(
            f"'{path.name}' has duplicate variable names {dup}; rename them in the software that wrote the file "
            "so that every variable is unique."
        )
    return raw, rmeta


def _readstat_error(exc: Exception, path: Path, fmt: str, encoding, columns) -> SurveyReadError:
    msg = str(exc)
    low = msg.lower()
    kind = FORMAT_NAMES[fmt]
    if "does not exist" in low:
        return SurveyReadError(f"Survey file '{path}' does not exist; check the path and the current folder.")
    if "usecols" in low or ("column" in low and "not found" in low) or "not present" in low:
        return SurveyReadError(f"`columns` names a variable that '{path.name}' does not have ({short_reason(exc)}); "
                               "check the names with `cimstats inspect`.")
    if "character set" in low or "encoding" in low or "convert string" in low or "iconv" in low:
        hint = f"the encoding '{encoding}' does not fit it" if encoding else "its declared encoding is unknown"
        return SurveyReadError(
            f"The text in '{path.name}' cannot be decoded because {hint}; pass the right `encoding=` "
            "(e.g. 'cp1252', 'latin-1', 'cp1251', 'utf-8')."
        )
    if "unable to read" in low or "seek" in low or "eof" in low or "truncat" in low:
        return SurveyReadError(
            f"'{path.name}' ends before the end of its {kind} data, so it is truncated or corrupt; "
            "copy or export it again."
        )
    if "invalid" in low or "unsupported" in low or "parse" in low:
        return SurveyReadError(
            f"'{path.name}' is not a valid {kind} file ({short_reason(exc)}); export it again or pass the right `format=`."
        )
    return SurveyReadError(f"'{path.name}' could not be read as a {kind} file ({short_reason(exc)}); check that it is complete.")


def _plain_code(v: Any) -> Any:
    """A code as a plain Python value: 9.0 -> 9, numpy scalars -> Python."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _storage(col: pd.Series, readstat_type: str | None, fmt_string: str | None) -> str:
    if readstat_type == "string":
        return "string"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    if col.dtype == object:
        nonnull = col.dropna()
        for v in nonnull.iloc[:50]:
            if isinstance(v, _dt.datetime):
                return "datetime"
            if isinstance(v, _dt.date):
                return "date"
            if isinstance(v, _dt.time):
                return "time"
    return "numeric"


def _survey_from_readstat(raw: pd.DataFrame, rm, path: Path, fmt: str, encoding, user_missing: bool,
                          extra_missing, columns) -> Survey:
    tagged = fmt in ("dta", "sas7bdat")
    rtypes = rm.readstat_variable_types or {}
    formats = rm.original_variable_types or {}
    measures = rm.variable_measure or {}
    labels = rm.column_names_to_labels or {}
    vlabels = rm.variable_value_labels or {}
    ranges = rm.missing_ranges or {}
    user_vals = rm.missing_user_values or {}
    widths = rm.variable_storage_width or {}
    meta: dict[str, VariableMeta] = {}
    notes: list[str] = []
    for name in raw.columns:
        col = raw[name]
        rtype = rtypes.get(name)
        storage = _storage(col, rtype, formats.get(name))
        codes: list[Any] = []
        rngs: list[tuple[Any, Any]] = []
        value_labels: dict[Any, str] = {}
        prefix = "."
        for r in ranges.get(name, []) or []:
            lo, hi = _plain_code(r["lo"]), _plain_code(r["hi"])
            if isinstance(lo, str):
                lo, hi = lo.rstrip(), hi.rstrip()
            if lo == hi:
                codes.append(lo)
            else:
                rngs.append((lo, hi))
        if tagged:
            codes.extend(prefix + str(t) for t in user_vals.get(name, []) or [])
        for k, v in (vlabels.get(name) or {}).items():
            if tagged and isinstance(k, str) and storage != "string":
                k = prefix + k
            value_labels[_plain_code(k)] = v
        if tagged and storage == "numeric" and (col.dtype == object or pd.api.types.is_string_dtype(col)):
            # extended missing values arrive as their letter: record them as ".a"
            decoded, found = split_tagged(col)
            codes.extend(t for t in found if t not in codes)
            raw[name] = decoded
            col = raw[name]
        if tagged and storage == "numeric" and value_labels:
            # a labelled extended missing value is declared even when no cell holds it
            ext_labelled = [k for k in value_labels if isinstance(k, str) and k.startswith(".")]
            codes = [c for c in codes if not (isinstance(c, str) and c.startswith("."))] + sorted(
                {c for c in codes if isinstance(c, str) and c.startswith(".")} | set(ext_labelled))
            for k in ext_labelled:
                if value_labels[k] == DECLARED_ONLY:  # declared, no label of its own
                    del value_labels[k]
            # restore SPSS codes that write_survey kept in Stata labels ("Refused [code 99]")
            restored = _restore_codes_from_labels(raw, name, value_labels, codes)
            if restored is not None:
                value_labels, codes = restored
                notes.append(f"{name}: SPSS missing codes restored from Stata value labels")
        if extra_missing and name in extra_missing:
            codes.extend(c for c in extra_missing[name] if c not in codes)
        measure = measures.get(name)
        if measure not in ("nominal", "ordinal", "scale"):
            measure = None
        width = widths.get(name) if storage == "string" else None
        meta[name] = VariableMeta(
            name,
            label=labels.get(name) or None,
            value_labels=value_labels,
            measure=measure,
            missing_codes=tuple(codes),
            missing_ranges=tuple(rngs),
            storage=storage,
            display_format=formats.get(name),
            width=int(width) if width else None,
        )
    mr_sets = getattr(rm, "mr_sets", None) or {}
    for set_name, spec in mr_sets.items():
        notes.append(f"multiple-response set {set_name}: " + ", ".join(spec.get("variable_list", [])))
    file_enc = rm.file_encoding or (encoding if fmt in _ENCODING_FORMATS else None)
    source = SourceInfo(path=str(path), format=fmt, encoding=encoding or file_enc,
                        file_label=rm.file_label or None, notes=tuple(notes))
    if extra_missing:
        unknown = [k for k in extra_missing if k not in raw.columns]
        if unknown:
            raise SurveyReadError(f"`missing_codes` names {unknown}, which are not variables of '{path.name}'.")
    return _apply_missing(raw, meta, source, user_missing)


_TAG_LETTERS = list(string.ascii_lowercase + string.ascii_uppercase + "_")


def split_tagged(col: pd.Series, *, dotted: bool = False) -> tuple[pd.Series, list[str]]:
    """Numbers and extended missing values of one column, without per-cell Python.

    ``col`` holds numbers and Stata/SAS extended missing values written as
    their letter (``"a"``, as pyreadstat gives them) or, with ``dotted=True``,
    as ``".a"`` (as CSV holds them). Returns a float column when there are no
    such values, else an object column with numbers and ``".a"`` codes; and the
    codes found, sorted.

    Examples
    --------
    >>> values, found = split_tagged(pd.Series([1.0, "a", None, "z"], dtype=object))
    >>> values.tolist(), found
    ([1.0, '.a', nan, '.z'], ['.a', '.z'])
    """
    keys = ["." + t for t in _TAG_LETTERS] if dotted else _TAG_LETTERS
    obj = col.astype(object)
    is_tag = obj.isin(keys).to_numpy(dtype=bool)
    arr = obj.to_numpy(dtype=object, copy=True)
    if not is_tag.any():
        return pd.Series(pd.to_numeric(obj, errors="coerce").to_numpy(dtype=float, na_value=np.nan),
                         index=col.index, name=col.name), []
    arr[is_tag] = np.nan
    numbers = pd.to_numeric(pd.Series(arr, index=col.index), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = numbers.astype(object)
    tags = obj[is_tag]
    if not dotted:
        tags = tags.map({t: "." + t for t in _TAG_LETTERS})
    out[is_tag] = tags.to_numpy(dtype=object)
    return pd.Series(out, index=col.index, name=col.name), sorted(pd.unique(tags.to_numpy(dtype=object)))


def _restore_codes_from_labels(raw: pd.DataFrame, name: str, value_labels: dict, codes: list):
    mapping = {}
    for k, lab in value_labels.items():
        if isinstance(k, str) and k.startswith("."):
            m = _CODE_IN_LABEL.match(lab or "")
            if m:
                mapping[k] = (_plain_code(float(m.group("code"))), m.group("label"))
    if not mapping:
        return None
    col = raw[name].astype(object)
    to_code = {k: v[0] for k, v in mapping.items()}
    hit = col.isin(list(to_code))
    if hit.any():
        col = col.where(~hit, col.map(to_code))
        has_text = pd.api.types.infer_dtype(col, skipna=True) not in ("integer", "floating", "mixed-integer-float",
                                                                       "empty")
        raw[name] = col if has_text else pd.to_numeric(col)
    new_labels = {}
    for k, lab in value_labels.items():
        if k in mapping:
            code, text = mapping[k]
            if text:
                new_labels[code] = text
        else:
            new_labels[k] = lab
    # letters were given in ascending code order, so letter order restores the code order
    new_codes = [mapping[k][0] for k in sorted(mapping)] + [c for c in codes if c not in mapping]
    return new_labels, list(dict.fromkeys(new_codes))


def _apply_missing(raw: pd.DataFrame, meta: dict[str, VariableMeta], source: SourceInfo, user_missing: bool) -> Survey:
    if user_missing:
        return Survey.from_raw(raw, meta, source)
    # SPSS-style codes stay as values; extended missing values (no value) still become missing
    tag_only = {
        n: m.with_(missing_codes=tuple(c for c in m.missing_codes if isinstance(c, str) and c.startswith(".")
                                       and m.storage != "string"), missing_ranges=())
        for n, m in meta.items()
    }
    s = Survey.from_raw(raw, tag_only, source)
    return Survey(s.data, meta, s.missing, source)


# -- CSV ---------------------------------------------------------------------------------
def sidecar_path(path: Path) -> Path:
    """The metadata file cimstats writes beside a CSV: ``name.csv.meta.json``."""
    return path.with_name(path.name + ".meta.json")


def _read_csv(path: Path, encoding, columns, user_missing, extra_missing, row_offset, row_limit) -> Survey:

    enc = encoding or "utf-8-sig"
    try:
        with open(path, newline="", encoding=enc) as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError:
        raise SurveyReadError(
            f"'{path.name}' is not valid {encoding or 'UTF-8'} text; pass the right `encoding=` "
            "(e.g. 'cp1252' or 'latin-1')."
        ) from None
    if not header:
        raise SurveyReadError(f"'{path.name}' has no header row; a CSV survey needs variable names on its first line.")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise SurveyReadError(
            f"'{path.name}' has duplicate variable names {dup} in its header; rename them so every column is unique."
        )
    meta: dict[str, VariableMeta] = {}
    extra: dict = {}
    side = sidecar_path(path)
    if side.exists() and not side.is_file():
        raise SurveyReadError(f"The metadata file '{side.name}' beside '{path.name}' is a folder or a device, not a "
                              "file; remove it or replace it with the file write_survey wrote.")
    if side.exists():
        try:
            meta, extra = meta_from_json(side.read_bytes(), where=f"'{side.name}'")
        except MetadataError as exc:
            raise SurveyReadError(str(exc)) from None
        except OSError as exc:
            raise SurveyReadError(f"The metadata file '{side.name}' beside '{path.name}' cannot be read "
                                  f"({exc.strerror}); remove it or check its permissions.") from None
    dtype = {n: "string" for n, m in meta.items() if m.storage == "string"}
    # text variables keep "" as text (SPSS and Stata strings have no empty/missing distinction)
    na_values = {h: [""] for h in header if h not in dtype} if dtype else None
    try:
        df = pd.read_csv(
            path, encoding=enc, usecols=columns, dtype=dtype or None,
            skiprows=range(1, row_offset + 1) if row_offset else None, nrows=row_limit,
            keep_default_na=not dtype, na_values=na_values,
            float_precision="round_trip",  # numbers come back exactly as written, in every pandas version
        )
    except UnicodeDecodeError:
        raise SurveyReadError(
            f"'{path.name}' is not valid {encoding or 'UTF-8'} text; pass the right `encoding=` (e.g. 'cp1252')."
        ) from None
    except ValueError as exc:
        raise SurveyReadError(f"'{path.name}' could not be read as CSV ({short_reason(exc)}); check `columns=` and the file.") from None
    except pd.errors.ParserError as exc:
        raise SurveyReadError(f"'{path.name}' is not well-formed CSV ({short_reason(exc)}); check its delimiters and quotes.") from None
    if columns is not None:
        df = df[list(columns)]
    meta = {n: m for n, m in meta.items() if n in df.columns}
    for n in df.columns:
        m = meta.get(n)
        if m is not None and m.storage in ("date", "datetime", "time"):
            df[n] = _parse_dates(df[n], m.storage)
        if m is None:
            meta[n] = VariableMeta(n, storage="string" if not pd.api.types.is_numeric_dtype(df[n]) and
                                   df[n].notna().any() else "numeric")
        elif m.storage == "numeric" and not pd.api.types.is_numeric_dtype(df[n]):
            # Stata extended missing codes (".a") share the column with numbers
            df[n], _ = split_tagged(df[n], dotted=True)
    if extra_missing:
        for n, codes in extra_missing.items():
            if n not in meta:
                raise SurveyReadError(f"`missing_codes` names '{n}', which is not a column of '{path.name}'.")
            m = meta[n]
            meta[n] = m.with_(missing_codes=tuple(m.missing_codes) + tuple(c for c in codes if c not in m.missing_codes))
    if row_offset:
        df.index = pd.RangeIndex(row_offset, row_offset + len(df))
    source = SourceInfo(path=str(path), format="csv", encoding=encoding or "utf-8",
                        file_label=extra.get("file_label"))
    return _apply_missing(df, meta, source, user_missing)


def _parse_dates(col: pd.Series, storage: str) -> pd.Series:
    """Dates and times written as ISO text; dates before 1677 (SPSS counts from 1582) are kept.

    pandas' nanosecond timestamps end at 1677-09-21, so an early date would become NaT without
    a word; such columns are returned as Python ``datetime`` objects instead.
    """
    if storage == "time":
        return col.map(lambda v: _dt.time.fromisoformat(v) if isinstance(v, str) else None)
    kind = _dt.date if storage == "date" else _dt.datetime

    def one(v):
        if not isinstance(v, str) or not v.strip():
            return None
        try:
            return kind.fromisoformat(v.strip())
        except ValueError:
            t = pd.to_datetime(v, errors="coerce")
            return None if pd.isna(t) else (t.date() if storage == "date" else t.to_pydatetime())

    values = col.map(one)
    if storage == "date":
        return values.astype(object).where(values.notna(), None)
    try:
        return pd.to_datetime(values)
    except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
        return values.astype(object).where(values.notna(), None)


# -- Parquet -----------------------------------------------------------------------------
def _parquet_meta(schema, path: Path):
    names = list(schema.names)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SurveyReadError(f"'{path.name}' has duplicate column names {dup}; rename them so every column is unique.")
    kv = schema.metadata or {}
    if KEY.encode() in kv:
        try:
            return meta_from_json(kv[KEY.encode()], where=f"The cimstats metadata in '{path.name}'")
        except MetadataError as exc:
            raise SurveyReadError(str(exc)) from None
    return {}, {}


def _parquet_table_to_survey(df: pd.DataFrame, meta, extra, path: Path, columns, user_missing, extra_missing):
    companions = (extra or {}).get("missing_code_columns") or {}
    for var, comp in companions.items():
        if comp in df.columns:
            if var in df.columns:
                codes = df[comp].astype(object)
                mask = codes.notna().to_numpy()
                if mask.any():
                    present = codes[mask]
                    lookup = {u: _decode_code(u) for u in pd.unique(present.to_numpy(dtype=object))}
                    col = df[var].to_numpy(dtype=object, copy=True)
                    col[mask] = present.map(lookup).to_numpy(dtype=object)
                    df[var] = pd.Series(col, index=df.index, name=var)
            df = df.drop(columns=[comp])
    if columns is not None:
        absent = [c for c in columns if c not in df.columns]
        if absent:
            raise SurveyReadError(f"`columns` names {absent}, which are not columns of '{path.name}'.")
        df = df[list(columns)]
    meta = {n: m for n, m in meta.items() if n in df.columns}
    for n in df.columns:
        if n not in meta:
            col = df[n]
            storage = "string" if _is_text(col) else _storage(col, None, None)
            meta[n] = VariableMeta(n, storage=storage)
    if extra_missing:
        for n, codes in extra_missing.items():
            if n not in meta:
                raise SurveyReadError(f"`missing_codes` names '{n}', which is not a column of '{path.name}'.")
            m = meta[n]
            meta[n] = m.with_(missing_codes=tuple(m.missing_codes) + tuple(c for c in codes if c not in m.missing_codes))
    source = SourceInfo(path=str(path), format="parquet", encoding="utf-8",
                        file_label=(extra or {}).get("file_label"))
    return _apply_missing(df, meta, source, user_missing)


def _is_text(col: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(col) and not pd.api.types.is_numeric_dtype(col) and (
        col.dtype != object or col.dropna().map(type).eq(str).all())


def _decode_code(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_parquet(path: Path, columns, user_missing, extra_missing, row_offset, row_limit) -> Survey:
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        meta, extra = _parquet_meta(pf.schema_arrow, path)
        table = pf.read()
    except SurveyReadError:
        raise
    except Exception as exc:
        raise SurveyReadError(
            f"'{path.name}' is not a readable Parquet file ({short_reason(exc)}); it may be truncated, "
            "so write or copy it again."
        ) from None
    df = table.to_pandas()
    if row_offset or row_limit is not None:
        stop = None if row_limit is None else row_offset + row_limit
        df = df.iloc[row_offset:stop]
    return _parquet_table_to_survey(df, meta, extra, path, columns, user_missing, extra_missing)


def _iter_parquet(path: Path, chunksize: int, columns, user_missing, extra_missing) -> Iterator[Survey]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise SurveyReadError(
            f"'{path.name}' is not a readable Parquet file ({short_reason(exc)}); write or copy it again."
        ) from None
    meta, extra = _parquet_meta(pf.schema_arrow, path)
    offset = 0
    for batch in pf.iter_batches(batch_size=chunksize):
        df = batch.to_pandas()
        df.index = pd.RangeIndex(offset, offset + len(df))
        offset += len(df)
        yield _parquet_table_to_survey(df, meta, extra, path, columns, user_missing, extra_missing)
