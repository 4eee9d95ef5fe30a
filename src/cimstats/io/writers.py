"""Writing a :class:`~cimstats.io.survey.Survey` back to a labelled file.

Writers put the declared missing codes back (:meth:`Survey.raw`) and declare
them again, together with value labels, variable labels and measure levels,
so that read -> write -> read gives the same survey. A file is written to a
temporary file in the target folder and renamed into place only when complete:
a failure leaves nothing half-written and an existing file untouched.

What a format cannot hold is converted by a documented rule or refused with a
one-sentence :class:`~cimstats.errors.SurveyWriteError`; nothing is dropped
without notice. See :func:`write_survey` (Notes) for the rules.
"""

from __future__ import annotations

import json
import os
import re
import string
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from cimstats import _files
from cimstats.errors import CimstatsError, CimstatsWarning, SurveyWriteError
from cimstats.io.formats import EXTENSIONS, FORMAT_NAMES, WRITE_FORMATS, short_reason
from cimstats.io.metajson import KEY, meta_to_json
from cimstats.io.readers import DECLARED_ONLY, sidecar_path
from cimstats.io.survey import SourceInfo, Survey, VariableMeta

_SPSS_FORMAT = re.compile(r"^(F|COMMA|DOT|DOLLAR|PCT|E|N)\d+(\.\d+)?$")
_COMPANION = "__missing__{}"
_STATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_STATA_RESERVED = {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n",
                   "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with"}


#: longest variable label / value label each format holds (bytes for SPSS, characters for Stata)
_LABEL_LIMITS = {"sav": (256, 120), "zsav": (256, 120), "por": (255, 60), "dta": (80, 32000), "xpt": (256, 0)}


def _check_label_lengths(survey: Survey, fmt: str) -> None:
    if fmt not in _LABEL_LIMITS:
        return
    var_limit, val_limit = _LABEL_LIMITS[fmt]
    size = (lambda t: len(t.encode("utf-8"))) if fmt in ("sav", "zsav", "por") else len
    unit = "bytes" if fmt in ("sav", "zsav", "por") else "characters"
    for name, m in survey.meta.items():
        if m.label and size(m.label) > var_limit:
            raise SurveyWriteError(
                f"The label of variable '{name}' is {size(m.label)} {unit} long, but a {FORMAT_NAMES[fmt]} file "
                f"holds at most {var_limit}; shorten it (keep the full text in a codebook) before writing."
            )
        for code, text in m.value_labels.items():
            if val_limit and size(str(text)) > val_limit:
                raise SurveyWriteError(
                    f"The value label of {code!r} in '{name}' is {size(str(text))} {unit} long, but a "
                    f"{FORMAT_NAMES[fmt]} file holds at most {val_limit}; shorten it before writing."
                )


def _check_names(survey: Survey, fmt: str) -> None:
    for name in survey.variables:
        if fmt == "dta":
            ok = bool(_STATA_NAME.match(name)) and name not in _STATA_RESERVED
            rule = "letters, digits and _ only, at most 32 characters, not starting with a digit"
        elif fmt in ("sav", "zsav", "por"):
            limit = 8 if fmt == "por" else 64
            ok = (len(name.encode("utf-8")) <= limit and (name[:1].isalpha() or name[:1] in "@#$")
                  and all(ch.isalnum() or ch in "._$#@" for ch in name) and not name.endswith("."))
            rule = (f"at most {limit} bytes, starting with a letter, then letters, digits or . _ $ # @, "
                    "not ending with a full stop")
        elif fmt == "xpt":
            ok = bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$", name))
            rule = "letters, digits and _ only, at most 32 characters"
        else:
            return
        if not ok:
            safe = re.sub(r"[^0-9A-Za-z_]", "_", name)
            safe = ("v" + safe if safe[:1].isdigit() or not safe else safe)[:32]
            raise SurveyWriteError(
                f"Variable name '{name}' is not allowed in a {FORMAT_NAMES[fmt]} file ({rule}); rename it "
                f"(e.g. to '{safe}') before writing."
            )


def write_survey(
    survey: Survey | pd.DataFrame,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    file_label: str | None = None,
    missing_map: Mapping[Any, Any] | None = None,
    expand_ranges: bool = False,
    metadata: bool = True,
) -> None:
    """Write a survey with its labels, measure levels and declared missing codes.

    Parameters
    ----------
    survey : Survey or pandas.DataFrame
        What to write; a DataFrame is written without metadata.
    path : str or path-like
        Target file; its extension chooses the format unless ``format`` is given.
    format : {"sav", "zsav", "dta", "csv", "parquet", "por", "xpt"}, optional
        File format.
    file_label : str, optional
        File label; by default the one the survey was read with.
    missing_map : mapping, optional
        Replace declared missing codes on writing, e.g. ``{".a": -91, ".b": -92}``
        to write Stata extended missing values into an SPSS file as numeric
        user-missing codes (their value labels move with them).
    expand_ranges : bool, default False
        For Stata files, which cannot declare SPSS missing *ranges*: when True,
        each code that occurs in a range becomes a discrete code (see Notes);
        when False such a survey is refused.
    metadata : bool, default True
        For CSV: also write the metadata beside the file as
        ``<name>.csv.meta.json`` (Parquet always carries it inside).

    Raises
    ------
    SurveyWriteError
        When the format cannot hold something the survey has (the message
        names the variable and the remedy), or the file cannot be written.

    Notes
    -----
    Rules for what a format cannot hold natively:

    * **SPSS missing codes in a Stata file.** Stata declares missing values only
      as extended missing values ``.a``-``.z``. Each discrete SPSS missing code
      of a numeric variable becomes an extended missing value, assigned in
      ascending code order (the smallest code gets the first free letter), and
      its value label becomes ``"<label> [code <code>]"`` (``"[code 99]"`` when
      it had none). A declared extended missing value without a label is
      labelled ``"[declared missing]"`` so that its declaration survives. :func:`read_survey` reads such labels back as the original
      code and label, so ``.sav -> .dta -> read`` is lossless. At most 26 codes
      fit per variable. SPSS missing *ranges* cannot be declared; with
      ``expand_ranges=True`` the codes that occur in a range are written as
      discrete codes (the range itself is then not declared), otherwise the
      write is refused.
    * **Stata extended missing values in an SPSS file** have no numeric value;
      give them one with ``missing_map`` or the write is refused.
    * **Stata** stores value labels only for whole numbers on numeric variables
      and holds no missing declarations for strings; such surveys are refused.
    * **SPSS** declares at most three discrete missing codes, or one range plus
      one code, per variable, and string codes of at most 8 bytes.
    * **Measure levels** are kept by .sav/.zsav/Parquet/CSV metadata. Stata,
      .por and .xpt files have no place for them; a
      :class:`~cimstats.errors.CimstatsWarning` names the variables whose
      levels are not written.
    * **.por and .xpt** hold variable labels but neither value labels nor
      missing declarations; surveys that have them are refused.
    * **Missing text in SPSS files.** SPSS has no system-missing value for
      text, so a missing text cell is written as empty text, and the empty
      text is declared missing for that variable: it reads back as missing
      (a declared missing code ``""``). When the variable also holds empty
      text as a value, or already declares three codes, this is not possible
      and a :class:`~cimstats.errors.CimstatsWarning` says so.
    * **Same survey, same bytes.** .sav, .zsav, .dta, .por and .xpt headers record when
      the file was written; cimstats sets that date to 1 January 1980, 00:00
      (as in its Word and Excel files), so writing the same survey twice gives
      identical files and run manifests can be compared by hash.

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> from cimstats.io import Survey, VariableMeta, read_survey
    >>> s = Survey.from_raw(pd.DataFrame({"q1": [1.0, 2.0, 99.0]}),
    ...     {"q1": VariableMeta("q1", value_labels={1: "No", 2: "Yes", 99: "Refused"}, missing_codes=(99,))})
    >>> path = os.path.join(tempfile.mkdtemp(), "wave1.dta")
    >>> write_survey(s, path)
    >>> back = read_survey(path)
    >>> back.missing["q1"].tolist(), back.variable("q1").value_labels[99]
    ([None, None, 99], 'Refused')
    """
    if isinstance(survey, pd.DataFrame):
        survey = Survey(survey)
    if not isinstance(survey, Survey):
        raise SurveyWriteError(f"`survey` is a {type(survey).__name__}; expected a cimstats Survey or a pandas DataFrame.")
    if not isinstance(path, (str, os.PathLike)):
        raise SurveyWriteError(f"`path` is a {type(path).__name__}; expected a file path (str or pathlib.Path).")
    p = Path(path)
    fmt = (str(format).lower().lstrip(".") if format else EXTENSIONS.get(p.suffix.lower()))
    if fmt not in WRITE_FORMATS:
        raise SurveyWriteError(
            f"Cannot tell which format to write '{p.name}' in (format {format or p.suffix or 'none'!r}); "
            f"use an extension or `format=` among {', '.join(WRITE_FORMATS)}."
        )
    implied = EXTENSIONS.get(p.suffix.lower())
    if format and implied and implied != fmt and {implied, fmt} != {"sav", "zsav"}:
        raise SurveyWriteError(
            f"`format`='{format}' does not match the extension of '{p.name}' ({FORMAT_NAMES[implied]}); "
            f"name the file '{p.stem}.{fmt}' so that readers recognise it."
        )
    if not p.parent.exists():
        raise SurveyWriteError(f"The folder of '{p}' does not exist; create it first.")
    if missing_map:
        survey = _remap_codes(survey, dict(missing_map))
    _check_names(survey, fmt)
    _check_label_lengths(survey, fmt)
    label = file_label if file_label is not None else (survey.source.file_label or "")
    writer = {"sav": _write_sav, "zsav": _write_sav, "dta": _write_dta, "por": _write_por_xpt,
              "xpt": _write_por_xpt, "csv": _write_csv, "parquet": _write_parquet}[fmt]
    writer(survey, p, fmt, label, expand_ranges=expand_ranges, metadata=metadata)


# -- helpers ---------------------------------------------------------------------------
def _fail(path: Path, fmt: str, exc: Exception) -> SurveyWriteError:
    return SurveyWriteError(
        f"Writing '{path.name}' as {FORMAT_NAMES[fmt]} failed ({short_reason(exc)}); nothing was written, "
        "so fix the variable it names and write again."
    )


def _is_ext_code(code: Any) -> bool:
    return isinstance(code, str) and len(code) == 2 and code[0] == "." and (code[1].isalpha() or code[1] == "_")


def _fmt_code(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _remap_codes(survey: Survey, mapping: dict) -> Survey:
    data = survey.data.copy()
    miss = survey.missing.copy()
    meta = {}
    for name, m in survey.meta.items():
        if not any(c in mapping for c in m.missing_codes) and not any(k in mapping for k in m.value_labels):
            meta[name] = m
            continue
        codes = tuple(dict.fromkeys(mapping.get(c, c) for c in m.missing_codes))
        labels = {mapping.get(k, k) if k in m.missing_codes or _is_ext_code(k) else k: v
                  for k, v in m.value_labels.items()}
        meta[name] = m.with_(missing_codes=codes, value_labels=labels)
        if name in miss.columns:
            rec = miss[name]
            hit = rec.isin([k for k in mapping])
            if hit.any():
                miss[name] = rec.where(~hit, rec.map(lambda v: mapping.get(v, v)))
    return Survey(data, meta, miss, survey.source)


def _warn_lost_measures(survey: Survey, fmt: str) -> None:
    lost = [n for n, m in survey.meta.items() if m.measure]
    if lost:
        shown = ", ".join(lost[:8]) + (" ..." if len(lost) > 8 else "")
        warnings.warn(
            f"{FORMAT_NAMES[fmt]} files have no place for measure levels, so the levels of {len(lost)} "
            f"variable(s) ({shown}) are not written; write .sav or .parquet to keep them.",
            CimstatsWarning, stacklevel=3,
        )


def _column_labels(survey: Survey) -> dict[str, str | None]:
    return {n: m.label for n, m in survey.meta.items() if m.label}


# -- SPSS ------------------------------------------------------------------------------
def _write_sav(survey: Survey, path: Path, fmt: str, label: str, **_) -> None:
    import pyreadstat

    df = survey.raw()
    value_labels: dict[str, dict] = {}
    missing: dict[str, list] = {}
    formats: dict[str, str] = {}
    measures: dict[str, str] = {}
    for name, m in survey.meta.items():
        ext = [c for c in m.missing_codes if _is_ext_code(c)] if m.storage != "string" else []
        if ext:
            raise SurveyWriteError(
                f"Variable '{name}' declares Stata/SAS extended missing values {', '.join(ext)}, which an SPSS file "
                f"cannot hold; give them numeric codes with `missing_map={{'{ext[0]}': -91, ...}}`."
            )
        codes = list(m.missing_codes)
        if m.storage == "string":
            bad = [c for c in m.missing_codes if not isinstance(c, str) or len(c.encode('utf-8')) > 8]
            if bad or len(m.missing_codes) > 3 or m.missing_ranges:
                raise SurveyWriteError(
                    f"String variable '{name}' declares missing codes {list(m.missing_codes) + list(m.missing_ranges)}, "
                    "but SPSS allows at most three text codes of up to 8 bytes and no ranges; shorten or drop codes."
                )
            codes += _blank_as_missing(name, df[name], codes)
        else:
            bad = [c for c in m.missing_codes if isinstance(c, str)]
            if bad:
                raise SurveyWriteError(
                    f"Numeric variable '{name}' declares text missing codes {bad}; declare numbers or use `missing_map=`."
                )
            if len(m.missing_ranges) > 1 or (m.missing_ranges and len(m.missing_codes) > 1) or len(m.missing_codes) > 3:
                raise SurveyWriteError(
                    f"Variable '{name}' declares {len(m.missing_codes)} missing codes and {len(m.missing_ranges)} "
                    "range(s), but SPSS allows at most three codes, or one range plus one code; "
                    "merge codes into a range or drop some."
                )
        if codes or m.missing_ranges:
            missing[name] = [_num_or_str(c) for c in codes] + [
                {"lo": float(lo), "hi": float(hi)} for lo, hi in m.missing_ranges]
        if m.value_labels:
            if m.storage == "string":
                value_labels[name] = {str(k): str(v) for k, v in m.value_labels.items()}
            else:
                bad = [k for k in m.value_labels if isinstance(k, str)]
                if bad:
                    raise SurveyWriteError(
                        f"Numeric variable '{name}' has value labels for text codes {bad}; SPSS labels numeric "
                        "variables only with numbers, so give them numbers with `missing_map=`."
                    )
                value_labels[name] = {_num_or_str(k): str(v) for k, v in m.value_labels.items()}
        if m.measure:
            measures[name] = m.measure
        if m.display_format and _SPSS_FORMAT.match(m.display_format) and m.storage == "numeric":
            formats[name] = m.display_format
        if m.storage == "numeric" and df[name].dtype == object:
            df[name] = pd.to_numeric(df[name], errors="raise")
    df = _plain_frame(df, survey)

    def write(tmp: str) -> None:
        pyreadstat.write_sav(
            df, tmp, file_label=label or "", column_labels=_column_labels(survey) or None,
            compress=fmt == "zsav", variable_value_labels=value_labels or None,
            missing_ranges=missing or None, variable_measure=measures or None,
            variable_format=formats or None,
        )
        _fix_header_date(tmp, fmt)

    _run(path, fmt, write)


def _blank_as_missing(name: str, col: pd.Series, codes: list) -> list:
    """``[""]`` when the empty text must be declared missing so that missing text cells read back as missing.

    SPSS has no system-missing value for text: a missing cell is written as
    empty text, which is a valid value unless declared missing.
    """
    holes = col.isna()
    if not holes.any() or "" in codes:
        return []
    if (col == "").any() or len(codes) >= 3:
        why = ("it also holds empty text as a value" if (col == "").any()
               else "it already declares three missing codes, the most SPSS allows")
        warnings.warn(
            f"Text variable '{name}' has {int(holes.sum())} missing cell(s), which an SPSS file stores as empty text, "
            f"and the empty text cannot be declared missing because {why}; they will read back as empty text "
            "(write .parquet to keep them missing).", CimstatsWarning, stacklevel=4)
        return []
    return [""]


#: the creation date written into .sav and .dta headers, so that the same survey gives the same bytes
#: (Word and Excel outputs carry the same date, see cimstats._files.reproducible_office_file)
_SAV_DATE, _SAV_TIME, _DTA_STAMP = b"01 Jan 80", b"00:00:00", b"01 Jan 1980 00:00"
_SAV_DATE_AT = 92  # after "$FL2", product name (60), layout, case size, compression, weight, cases (4 each), bias (8)
_SAV_DATE_RE = re.compile(rb"\d\d [A-Za-z]{3} \d\d\d\d:\d\d:\d\d")
_DTA_STAMP_RE = re.compile(rb"<timestamp>\x11\d\d [A-Za-z]{3} \d{4} \d\d:\d\d</timestamp>")
_XPT_STAMP_RE = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d")
# after the "SPSSPORT" signature: "8/" and 8 date digits, "6/" and 6 time digits (lines are cut every 80 characters)
_POR_STAMP_RE = re.compile(rb"SPSSPORT(?:\r?\n)?[A-Z](8(?:\r?\n)?/)((?:\r?\n)?(?:\d(?:\r?\n)?){8})"
                           rb"(6(?:\r?\n)?/)((?:\r?\n)?(?:\d(?:\r?\n)?){6})")


def _fix_header_date(path: str, fmt: str) -> None:
    """Overwrite the creation date and time that ReadStat stamps into a file header.

    pyreadstat offers no way to set them, so the bytes are rewritten in place
    after writing (same length, nothing else touched), all to 1 January 1980,
    00:00: .sav/.zsav at their fixed header position (``01 Jan 80`` and
    ``00:00:00``), .dta files (format 118/119) in their ``<timestamp>``
    element, .xpt headers (``01JAN80:00:00:00``, created and modified) and
    the .por header (date ``19800101``, time ``000000``, whose digits may run
    across a line break). A header that does not look as expected is left as
    it is.
    """
    with open(path, "r+b") as fh:
        head = fh.read(1024)
        if fmt in ("sav", "zsav"):
            at = _SAV_DATE_AT
            if head[:4] in (b"$FL2", b"$FL3") and _SAV_DATE_RE.fullmatch(head[at:at + 17]):
                fh.seek(at)
                fh.write(_SAV_DATE + _SAV_TIME)
        elif fmt == "dta":
            m = _DTA_STAMP_RE.search(head[:512])
            if m:
                fh.seek(m.start() + len(b"<timestamp>\x11"))
                fh.write(_DTA_STAMP)
        elif fmt == "xpt":
            for m in _XPT_STAMP_RE.finditer(head[:640]):
                fh.seek(m.start())
                fh.write(b"01JAN80:00:00:00")
        elif fmt == "por":
            m = _POR_STAMP_RE.search(head)
            if m:
                digits = iter(b"19800101000000")
                fixed = bytes(next(digits) if 0x30 <= b <= 0x39 else b for b in m.group(2) + m.group(4))
                fh.seek(m.start(2))
                fh.write(fixed[:len(m.group(2))])
                fh.seek(m.start(4))
                fh.write(fixed[len(m.group(2)):])


def _num_or_str(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return float(v)


def _plain_frame(df: pd.DataFrame, survey: Survey) -> pd.DataFrame:
    """Columns in types pyreadstat writes: text as object str/None, numbers as float/int."""
    out = {}
    for name in df.columns:
        col = df[name]
        m = survey.meta[name]
        if m.storage == "string" or pd.api.types.is_string_dtype(col) and not pd.api.types.is_object_dtype(col):
            out[name] = col.astype(object).where(col.notna(), None)
        elif pd.api.types.is_bool_dtype(col):
            out[name] = col.astype(float) if col.isna().any() else col.astype(int)
        elif pd.api.types.is_extension_array_dtype(col) and pd.api.types.is_numeric_dtype(col):
            out[name] = col.astype(float)
        else:
            out[name] = col
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


def _run(path: Path, fmt: str, write: Callable[[str], None]) -> None:
    try:
        _files.atomic_write_with(path, write, error=SurveyWriteError)
    except CimstatsError:  # its own sentence (e.g. a path outside the output folder), not a format failure
        raise
    except (OSError, ValueError, TypeError, OverflowError, Exception) as exc:  # pyreadstat raises plain Exception
        raise _fail(path, fmt, exc) from None


# -- Stata -----------------------------------------------------------------------------
def _write_dta(survey: Survey, path: Path, fmt: str, label: str, *, expand_ranges: bool = False, **_) -> None:
    import pyreadstat

    data = survey.data.copy()
    miss = survey.missing
    value_labels: dict[str, dict] = {}
    user_missing: dict[str, list[str]] = {}
    for name, m in survey.meta.items():
        if m.storage == "string":
            if m.value_labels:
                raise SurveyWriteError(
                    f"String variable '{name}' has value labels, which Stata cannot hold on text; encode it as "
                    "numbers with labels, or write .sav or .parquet."
                )
            if m.missing_codes or m.missing_ranges:
                raise SurveyWriteError(
                    f"String variable '{name}' declares missing codes {list(m.missing_codes)}, which Stata cannot "
                    "declare on text; write .sav or .parquet, or recode them."
                )
            continue
        if m.missing_ranges and not expand_ranges:
            lo, hi = m.missing_ranges[0]
            raise SurveyWriteError(
                f"Variable '{name}' declares the SPSS missing range {_fmt_code(lo)} to {_fmt_code(hi)}, which a Stata "
                "file cannot declare; pass `expand_ranges=True` to write its codes as .a-.z, or write .sav."
            )
        ext = [c for c in m.missing_codes if _is_ext_code(c)]
        bad_ext = [c for c in m.missing_codes if isinstance(c, str) and not _is_ext_code(c)]
        if bad_ext:
            raise SurveyWriteError(
                f"Numeric variable '{name}' declares text missing codes {bad_ext}; Stata holds only .a-.z, "
                "so give them numbers or letters with `missing_map=`."
            )
        numeric_codes = [c for c in m.missing_codes if not isinstance(c, str)]
        rec = miss[name] if name in miss.columns else None
        if m.missing_ranges and rec is not None:
            in_range = [v for v in pd.unique(rec.dropna()) if not isinstance(v, str)
                        and any(lo <= v <= hi for lo, hi in m.missing_ranges)]
            numeric_codes += [v for v in in_range if v not in numeric_codes]
        numeric_codes = sorted({_num_or_str(c) for c in numeric_codes})
        used = {c[1].lower() for c in ext}
        free = [ch for ch in string.ascii_lowercase if ch not in used]
        if len(numeric_codes) > len(free):
            raise SurveyWriteError(
                f"Variable '{name}' has {len(numeric_codes) + len(ext)} distinct missing codes, more than the 26 "
                "extended missing values (.a-.z) Stata has; merge some codes or write .sav."
            )
        letter = {c: "." + free[i] for i, c in enumerate(numeric_codes)}
        labels: dict[Any, str] = {}
        for k, v in m.value_labels.items():
            if _is_ext_code(k):
                labels[k[1].lower()] = str(v)
            elif k in letter or (not isinstance(k, str) and float(k) in letter):
                continue
            elif isinstance(k, str):
                raise SurveyWriteError(
                    f"Numeric variable '{name}' has a value label for the text code {k!r}; Stata labels only "
                    "whole numbers and .a-.z, so recode it."
                )
            elif not float(k).is_integer() or abs(k) > 2_147_483_620:
                raise SurveyWriteError(
                    f"Variable '{name}' has a value label for {k}, but Stata labels only whole numbers up to "
                    "2,147,483,620; round the codes or write .sav."
                )
            else:
                labels[int(k)] = str(v)
        for code, let in letter.items():
            text = m.value_labels.get(code)
            labels[let[1]] = f"{text} [code {_fmt_code(code)}]" if text else f"[code {_fmt_code(code)}]"
        for code in ext:  # a declared extended missing value without a label still needs a trace in the file
            if code[1].lower() not in labels:
                labels[code[1].lower()] = DECLARED_ONLY
        if ext or letter:
            user_missing[name] = sorted({c[1].lower() for c in ext} | {v[1] for v in letter.values()})
            if rec is not None and rec.notna().any():
                col = data[name].astype(object)
                mask = rec.notna()
                to_letter = {code: let[1] for code, let in letter.items()}
                to_letter.update({c: c[1].lower() for c in ext})
                col[mask] = rec[mask].map(to_letter)
                data[name] = col
        if labels:
            value_labels[name] = labels
    df = _plain_frame(data, survey)
    _warn_lost_measures(survey, "dta")

    def write(tmp: str) -> None:
        pyreadstat.write_dta(
            df, tmp, file_label=label or "", column_labels=_column_labels(survey) or None,
            variable_value_labels=value_labels or None, missing_user_values=user_missing or None,
        )
        _fix_header_date(tmp, fmt)

    _run(path, fmt, write)


# -- SPSS portable / SAS transport -------------------------------------------------------------
def _write_por_xpt(survey: Survey, path: Path, fmt: str, label: str, **_) -> None:
    import pyreadstat

    for name, m in survey.meta.items():
        if m.value_labels or m.has_missing_declarations:
            what = "value labels" if m.value_labels else "declared missing codes"
            raise SurveyWriteError(
                f"Variable '{name}' has {what}, which cimstats cannot write into a {FORMAT_NAMES[fmt]} file; "
                "write .sav, .dta or .parquet instead."
            )
    _warn_lost_measures(survey, fmt)
    df = _plain_frame(survey.data, survey)

    def write(tmp: str) -> None:
        if fmt == "por":
            pyreadstat.write_por(df, tmp, file_label=label or "", column_labels=_column_labels(survey) or None)
        else:
            pyreadstat.write_xport(df, tmp, file_label=label or "", column_labels=_column_labels(survey) or None)
        _fix_header_date(tmp, fmt)

    _run(path, fmt, write)


# -- CSV and Parquet ----------------------------------------------------------------------------
def _codes_fit(col: pd.Series, rec: pd.Series, m: VariableMeta) -> bool:
    codes = rec.dropna()
    if m.storage == "string":
        return bool(codes.map(type).eq(str).all())
    if m.storage == "numeric":
        return bool(codes.map(lambda v: isinstance(v, (int, float, np.integer, np.floating))).all())
    return False


def _frame_with_codes(survey: Survey, for_csv: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    """Values with codes restored where the column type can hold them; others in companion columns."""
    data = survey.data.copy()
    companions: dict[str, str] = {}
    for name in survey.missing.columns:
        rec = survey.missing[name]
        if not rec.notna().any():
            continue
        m = survey.meta[name]
        mask = rec.notna()
        if _codes_fit(data[name], rec, m):
            if m.storage == "string":
                col = data[name].astype(object)
                col[mask] = rec[mask]
            else:
                col = data[name].astype(float)
                col[mask] = rec[mask].astype(float)
            data[name] = col
        elif for_csv and m.storage == "numeric":
            col = data[name].astype(object)
            col[mask] = rec[mask]
            data[name] = col
        else:
            comp = _COMPANION.format(name)
            if comp in data.columns:
                raise SurveyWriteError(f"Column '{comp}' clashes with the name cimstats uses for the missing codes of "
                                       f"'{name}'; rename it.")
            companions[name] = comp
            data[comp] = rec.map(lambda v: None if v is None else json.dumps(v)).astype(object)
    return data, companions


def _write_csv(survey: Survey, path: Path, fmt: str, label: str, *, metadata: bool = True, **_) -> None:

    df, _ = _frame_with_codes(survey, for_csv=True)
    src = SourceInfo(path=None, format=survey.source.format, encoding="utf-8", file_label=label or None)
    side = sidecar_path(path)
    if metadata:
        text = meta_to_json(survey.meta, src)
        _run(side, fmt, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    _run(path, fmt, lambda tmp: df.to_csv(tmp, index=False, encoding="utf-8"))


def _write_parquet(survey: Survey, path: Path, fmt: str, label: str, **_) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq


    df, companions = _frame_with_codes(survey, for_csv=False)
    src = SourceInfo(path=None, format=survey.source.format, encoding="utf-8", file_label=label or None)
    text = meta_to_json(survey.meta, src, companions=companions)

    def write(tmp: str) -> None:
        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
        kv = dict(table.schema.metadata or {})
        kv[KEY.encode()] = text.encode("utf-8")
        pq.write_table(table.replace_schema_metadata(kv), tmp)

    _run(path, fmt, write)
