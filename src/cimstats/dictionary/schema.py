"""The data dictionary: four tables an epidemiologist edits in a spreadsheet.

A dictionary is a folder holding ``studies``, ``variables``, ``categories``
and ``mappings`` as CSV files (``studies.csv``...), as Excel files
(``studies.xlsx``) or as sheets of one workbook (``dictionary.xlsx`` with
sheets named after the tables). Column names are case-insensitive.

``studies`` (one row per source file)
    ``study`` (id, required), ``file`` (path relative to the dictionary folder
    or to a data folder, and inside it: absolute paths, ``..`` and links leading
    out are refused), ``format`` (sav, dta, csv, parquet...; default from
    the extension), ``country``, ``wave``, ``language``, ``id_variable``,
    ``description``.
``variables`` (one row per target variable)
    ``name`` (required), ``type`` (required: categorical, ordinal, integer,
    decimal, string), ``label``, ``unit``, ``min``, ``max`` (valid range,
    inclusive), ``required`` (yes/no), ``construct``, ``description``.
``categories`` (one row per code of a categorical or ordinal target)
    ``variable``, ``code`` (number; for a ``string`` target the text value
    itself, which makes the listed values the only ones allowed), ``label``
    (all required), ``order``,
    ``is_missing`` (yes/no: a declared missing code of the target).
``mappings`` (one row per target x study)
    ``target``, ``study``, ``rule`` (required), ``source`` (comma-separated
    source variables), ``arguments`` (see :mod:`cimstats.dictionary.rules`),
    ``status`` (complete, partial, impossible, undetermined), ``comment``.

The columns ``study``, ``country`` and ``wave`` of the harmonised data come
from the ``studies`` table unless ``variables`` declares them and a mapping
supplies them (e.g. a file holding both waves maps ``wave`` from a column).

Everything is checked without reading data; all problems are collected in a
:class:`~cimstats.errors.Report` with file, row (as the spreadsheet shows it,
header = row 1), column and a remedy.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from cimstats._names import SAFE_NAME_RULE, name_problem
from cimstats.dictionary.rules import (
    NUMERIC_RULES, Rule, RuleSyntaxError, _UNITS, canonical_unit, parse_rule, parse_scalar,
)
from cimstats.errors import DictionaryError, Report

TABLES = ("studies", "variables", "categories", "mappings")
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # required, optional
    "studies": (("study",), ("file", "format", "table", "country", "wave", "language", "id_variable", "description")),
    "variables": (("name", "type"), ("table", "label", "unit", "min", "max", "required", "key", "construct", "description")),
    "categories": (("variable", "code", "label"), ("table", "order", "is_missing")),
    "mappings": (("target", "study", "rule"), ("source", "arguments", "status", "comment")),
}
TYPES = ("categorical", "ordinal", "integer", "decimal", "string")
_TYPE_ALIASES = {"text": "string", "str": "string", "character": "string", "nominal": "categorical",
                 "float": "decimal", "numeric": "decimal", "double": "decimal", "int": "integer", "category": "categorical"}
STATUSES = ("complete", "partial", "impossible", "undetermined")
DESIGN_COLUMNS = ("study", "country", "wave")
FORMATS = ("sav", "zsav", "por", "dta", "sas7bdat", "xpt", "csv", "parquet")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0", ""}


@dataclass(frozen=True)
class Target:
    """One target variable with its categories."""

    name: str
    type: str
    label: str | None = None
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    construct: str | None = None
    description: str | None = None
    categories: tuple = ()  # (code, label, is_missing) in order
    table: str = ""
    key: bool = False

    @property
    def is_text(self) -> bool:
        return self.type == "string"

    @property
    def has_categories(self) -> bool:
        return self.type in ("categorical", "ordinal")

    @property
    def valid_codes(self) -> set:
        return {c for c, _, miss in self.categories if not miss}

    @property
    def missing_codes(self) -> tuple:
        return tuple(c for c, _, miss in self.categories if miss)


@dataclass(frozen=True)
class Mapping_:
    target: str
    study: str
    rule: Rule | None  # None when it could not be parsed or status undetermined without rule
    status: str
    comment: str | None
    file: str
    row: int


@dataclass(frozen=True)
class Dictionary:
    """A checked data dictionary.

    Attributes
    ----------
    root : Path or None
        Folder the tables came from (file paths in ``studies`` are relative to it).
    studies, variables, categories, mappings : pandas.DataFrame
        The tables as written (text cells), plus ``_file`` and ``_row`` columns.
    tables : dict of str to dict of str to Target
        Parsed target variables per output table (``""`` when the dictionary
        has one table), in the order of the variables table.
    rules : dict of (target, study) to Mapping_
        Parsed mappings.
    report : Report
        Every problem found while reading and checking (empty when clean).
    """

    root: Path | None
    studies: pd.DataFrame
    variables: pd.DataFrame
    categories: pd.DataFrame
    mappings: pd.DataFrame
    tables: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    report: Report = field(default_factory=Report)

    @property
    def targets(self) -> dict:
        """Target variables by name (one table), or by ``(table, name)`` when there are several tables."""
        if len(self.tables) <= 1:
            return dict(next(iter(self.tables.values()), {}))
        return {(tb, n): t for tb, ts in self.tables.items() for n, t in ts.items()}

    def table_of(self, sid: str) -> str:
        """The output table a study belongs to."""
        return self.study(sid).get("table", "") or ""

    @property
    def study_ids(self) -> list[str]:
        return [s for s in self.studies["study"].tolist() if s]

    def study(self, sid: str) -> dict:
        """The studies-table row of one study as a dict (empty when unknown)."""
        cache = self.__dict__.get("_study_cache")
        if cache is None:
            cache = {r["study"]: {k: v for k, v in r.items() if not k.startswith("_")}
                     for r in self.studies.to_dict("records") if r["study"]}
            object.__setattr__(self, "_study_cache", cache)
        return cache.get(sid, {})

    def check(self) -> Report:
        """The problems found (same as ``report``)."""
        return self.report

    @classmethod
    def from_frames(cls, *, studies, variables, categories=None, mappings, root=None, label="<in memory>") -> "Dictionary":
        """Build and check a dictionary from four DataFrames (or lists of dicts)."""
        frames = {"studies": studies, "variables": variables,
                  "categories": categories if categories is not None else pd.DataFrame(columns=list(COLUMNS["categories"][0])),
                  "mappings": mappings}
        report = Report()
        tables = {}
        for t, f in frames.items():
            df = pd.DataFrame(f)
            if len(df.columns) == 0:
                df = pd.DataFrame(columns=list(COLUMNS[t][0]))
            tables[t] = _normalise(df, f"{label}:{t}", t, report)
        return _build(tables, None if root is None else Path(root), report)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _normalise(df: pd.DataFrame, fname: str, table: str, report: Report) -> pd.DataFrame:
    df = df.copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    req, opt = COLUMNS[table]
    for c in df.columns:
        if c not in req + opt and not c.startswith("_") and not c.startswith("unnamed"):
            close = difflib.get_close_matches(c, req + opt, n=1)
            report.add("D003", f"`{fname}` has column '{c}', which the {table} table does not use.", severity="warning",
                       file=fname, row=1, column=c,
                       remedy=(f"Rename it to '{close[0]}'." if close else f"Remove it; known columns: {', '.join(req + opt)}."))
    for c in req:
        if c not in df.columns:
            report.add("D002", f"`{fname}` has no '{c}' column, which the {table} table needs.", file=fname, row=1, column=c,
                       remedy=f"Add a '{c}' column; required columns: {', '.join(req)}.")
    for c in req + opt:
        if c not in df.columns:
            df[c] = ""
    out = pd.DataFrame({c: df[c].map(_cell).astype(object) for c in req + opt})
    out["_file"] = fname
    out["_row"] = range(2, len(out) + 2)
    # drop fully empty rows (spreadsheet padding) but keep row numbers
    blank = out[list(req + opt)].apply(lambda col: col == "").all(axis=1)
    return out.loc[~blank].reset_index(drop=True)


def _read_table(root: Path, table: str, report: Report) -> pd.DataFrame:
    candidates = [root / f"{table}.csv", root / f"{table}.xlsx", root / f"{table}.tsv"]
    for p in candidates:
        if p.exists():
            try:
                if p.suffix == ".xlsx":
                    df = pd.read_excel(p, dtype=str, keep_default_na=False)
                else:
                    df = pd.read_csv(p, dtype=str, keep_default_na=False, sep="\t" if p.suffix == ".tsv" else ",",
                                     encoding="utf-8-sig")
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                report.add("D015", f"`{p.name}` could not be read ({type(exc).__name__}: {exc}).", file=p.name,
                           remedy="Save it as UTF-8 CSV with a header row, or as .xlsx.")
                return _normalise(pd.DataFrame(), p.name, table, Report())
            return _normalise(df, p.name, table, report)
    for wb in sorted(root.glob("*.xlsx")):
        try:
            sheets = pd.read_excel(wb, sheet_name=None, dtype=str, keep_default_na=False)
        except Exception:  # noqa: BLE001
            continue
        for name, df in sheets.items():
            if name.strip().lower() == table:
                return _normalise(df, f"{wb.name}[{name}]", table, report)
    report.add("D001", f"The dictionary folder has no '{table}' table.", file=f"{table}.csv",
               remedy=f"Add {table}.csv (or {table}.xlsx, or a '{table}' sheet in a workbook).")
    return _normalise(pd.DataFrame(columns=list(COLUMNS[table][0])), f"{table}.csv", table, Report())


def read_dictionary(folder: str | Path, *, strict: bool = True) -> Dictionary:
    """Read and check a data dictionary folder.

    Parameters
    ----------
    folder : str or Path
        Folder with the ``studies``, ``variables``, ``categories`` and
        ``mappings`` tables (CSV or Excel).
    strict : bool
        Raise :class:`~cimstats.errors.DictionaryError` carrying the full
        report when any error is found (default). With ``strict=False`` the
        dictionary is returned with its ``report`` for inspection.

    Returns
    -------
    Dictionary

    Raises
    ------
    DictionaryError
        The folder does not exist, or (strict) the tables have errors.

    Examples
    --------
    >>> from cimstats.dictionary import demo_dictionary_path
    >>> d = read_dictionary(demo_dictionary_path())
    >>> len(d.report.errors)
    0
    """
    root = Path(folder)
    if not root.is_dir():
        raise DictionaryError(f"Dictionary folder '{folder}' does not exist or is not a folder; give the folder holding "
                              "studies.csv, variables.csv, categories.csv and mappings.csv.")
    report = Report()
    tables = {t: _read_table(root, t, report) for t in TABLES}
    d = _build(tables, root, report)
    if strict and report.has_errors:
        raise DictionaryError(f"The dictionary in '{folder}' has {len(report.errors)} error(s); the report lists each "
                              "with its file, row and remedy.", report=report)
    return d


def check_dictionary(folder: str | Path, *, data_dir: str | Path | None = None) -> Report:
    """All problems of a dictionary folder, found without reading any data.

    With ``data_dir`` the study files are also looked for there (existence only).
    """
    d = read_dictionary(folder, strict=False)
    report = Report(list(d.report.issues))
    _check_files(d, report, data_dir)
    return report


def _check_files(d: Dictionary, report: Report, data_dir) -> None:
    # without a data folder, look only when some study file sits beside the dictionary (else data live elsewhere)
    def found(name, folder=None):
        try:
            return resolve_study_file(d, name, folder)
        except DictionaryError as exc:  # outside the data folder: reported (D020), never looked at
            if not _escapes(name):
                report.add("D020", str(exc), file="studies", column="file",
                           remedy="Put the file itself in the data folder.")
            return False

    if data_dir is None and not any(found(f) for f in d.studies["file"] if f):
        return
    for _, r in d.studies.iterrows():
        if not r["file"]:
            continue
        if found(r["file"], data_dir) is None:
            report.add("D014", f"study '{r['study']}' names file '{r['file']}', which was not found.", severity="warning",
                       file=r["_file"], row=int(r["_row"]), column="file",
                       remedy="Correct the path (relative to the dictionary folder or --data-dir) or give --data-dir.")


def resolve_study_file(d: Dictionary, name: str, data_dir=None, *, from_dictionary: bool = True) -> Path | None:
    """The file a study's data are read from, looked for in ``data_dir`` first, then beside the dictionary.

    Parameters
    ----------
    d : Dictionary
    name : str
        The ``file`` entry of the studies table (or a path given by the caller).
    data_dir : path, optional
        The data folder.
    from_dictionary : bool
        ``name`` comes from the dictionary's ``file`` column (default). Such an
        entry must resolve inside the data folder or the dictionary folder: an
        absolute path, a path climbing out with ``..`` or a symbolic link
        pointing outside is refused. A path the caller gives directly
        (``from_dictionary=False``) may be anywhere.

    Returns
    -------
    Path or None
        The file, or ``None`` when it is not found.

    Raises
    ------
    DictionaryError
        A dictionary entry resolves outside the data folder and the dictionary folder.
    """
    p = Path(name)
    if p.is_absolute() and not from_dictionary:
        return p if p.exists() else None
    if from_dictionary and _escapes(name):
        raise DictionaryError(f"The studies table names file '{name}', which lies outside the data folder (an "
                              "absolute path or one climbing out with '..'); give the path relative to the data "
                              "folder or the dictionary folder.")
    bases = ([Path(data_dir)] if data_dir else []) + ([d.root] if d.root is not None else [])
    for base in bases:
        c = base / p
        if c.exists():
            if from_dictionary and not _resolves_inside(c, base):
                raise DictionaryError(f"The studies table names file '{name}', which resolves to '{c.resolve()}', "
                                      f"outside its folder '{base}' (through a symbolic link); put the file itself in "
                                      "the data folder.")
            return c
    return None


def _resolves_inside(path: Path, base: Path) -> bool:
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(base))
    return real == root or root in real.parents


def _num(report, t, r, col, text) -> float | None:
    if text == "":
        return None
    v = parse_scalar(text)
    if not isinstance(v, float):
        report.add("D007", f"{t} row {r['_row']} has {col} '{text}', which is not a number.", file=r["_file"],
                   row=int(r["_row"]), column=col, remedy=f"Write a number in '{col}' or leave it empty.")
        return None
    return v


def _yesno(report, t, r, col) -> bool:
    v = r[col].lower()
    if v in _YES:
        return True
    if v not in _NO:
        report.add("D006", f"{t} row {r['_row']} has {col} '{r[col]}'; expected yes or no.", file=r["_file"],
                   row=int(r["_row"]), column=col, remedy="Write yes or no.")
    return False


def _empty(report, t, r, cols):
    ok = True
    for c in cols:
        if r[c] == "":
            report.add("D004", f"{t} row {r['_row']} has no {c}.", file=r["_file"], row=int(r["_row"]), column=c,
                       remedy=f"Fill in '{c}' or delete the row.")
            ok = False
    return ok


def _dups(report, df, keys, t, what):
    if df.empty:
        return
    sub = df[df[list(keys)].ne("").all(axis=1)]
    d = sub[sub.duplicated(list(keys), keep="first")]
    for _, r in d.iterrows():
        first = sub[(sub[list(keys)] == r[list(keys)]).all(axis=1)].iloc[0]
        key = " x ".join(f"'{r[k]}'" for k in keys)
        report.add("D005", f"{t} row {r['_row']} repeats {what} {key} already given in row {first['_row']}.",
                   file=r["_file"], row=int(r["_row"]), column=keys[-1],
                   remedy="Keep one row per " + what + " (merge the two rows or delete one).")


def _build(tables: Mapping[str, pd.DataFrame], root: Path | None, report: Report) -> Dictionary:
    st, va, ca, ma = (tables[t] for t in TABLES)
    # studies
    for _, r in st.iterrows():
        _empty(report, "studies", r, ("study",))
        _safe_names(report, r)
        _inside_data_folder(report, r)
        if r["format"] and r["format"].lower().lstrip(".") not in FORMATS:
            report.add("D006", f"studies row {r['_row']} has format '{r['format']}'.", file=r["_file"], row=int(r["_row"]),
                       column="format", remedy=f"Use one of {', '.join(FORMATS)}, or leave it empty to use the file extension.")
        if r["wave"]:
            _num(report, "studies", r, "wave", r["wave"])
    _dups(report, st, ("study",), "studies", "study")
    study_table = {r["study"]: r["table"] for _, r in st.iterrows() if r["study"]}
    table_names = list(dict.fromkeys(study_table.values())) or [""]
    # variables
    tables: dict[str, dict[str, Target]] = {tb: {} for tb in table_names}
    for _, r in va.iterrows():
        if not _empty(report, "variables", r, ("name", "type")):
            continue
        tb = r["table"]
        if tb not in tables:
            report.add("D017", f"variables row {r['_row']} puts '{r['name']}' in table '{tb}', which no study belongs to.",
                       file=r["_file"], row=int(r["_row"]), column="table",
                       remedy=f"Use a table named in the studies table ({', '.join(repr(t) for t in tables)}) or add studies for it.")
            tables[tb] = {}
        typ = _TYPE_ALIASES.get(r["type"].lower(), r["type"].lower())
        if typ not in TYPES:
            close = difflib.get_close_matches(typ, TYPES, n=1)
            report.add("D006", f"variables row {r['_row']} gives '{r['name']}' type '{r['type']}'.", file=r["_file"],
                       row=int(r["_row"]), column="type",
                       remedy=(f"Did you mean '{close[0]}'? " if close else "") + f"Use one of {', '.join(TYPES)}.")
            typ = "decimal"
        if len(r["label"]) > 80:
            report.add("D018", f"variables row {r['_row']} gives '{r['name']}' a label of {len(r['label'])} characters; "
                               "Stata files hold at most 80.", severity="warning", file=r["_file"], row=int(r["_row"]),
                       column="label", remedy="Shorten the label (keep the full text in 'description') to write .dta files.")
        lo, hi = _num(report, "variables", r, "min", r["min"]), _num(report, "variables", r, "max", r["max"])
        if lo is not None and hi is not None and lo > hi:
            report.add("D011", f"variables row {r['_row']} gives '{r['name']}' min {r['min']} greater than max {r['max']}.",
                       file=r["_file"], row=int(r["_row"]), column="min", remedy="Swap min and max.")
        if r["name"] not in tables[tb]:
            tables[tb][r["name"]] = Target(r["name"], typ, r["label"] or None, r["unit"] or None, lo, hi,
                                           _yesno(report, "variables", r, "required"), r["construct"] or None,
                                           r["description"] or None, table=tb,
                                           key=_yesno(report, "variables", r, "key"))
    _dups(report, va, ("table", "name"), "variables", "variable")
    all_names = sorted({n for ts in tables.values() for n in ts})
    # categories (when the table itself could not be read, that one problem is reported, not one per variable)
    cats_unread = any(i.code in ("D001", "D015") and str(i.file or "").startswith("categories") for i in report.issues)
    cats: dict[tuple, list] = {}
    for _, r in ca.iterrows():
        if not _empty(report, "categories", r, ("variable", "code", "label")):
            continue
        owners = [ts[r["variable"]] for tb, ts in tables.items() if r["variable"] in ts and (not r["table"] or tb == r["table"])]
        if not owners:
            close = difflib.get_close_matches(r["variable"], all_names, n=1)
            report.add("D009", f"categories row {r['_row']} is for '{r['variable']}', which is not in the variables table.",
                       file=r["_file"], row=int(r["_row"]), column="variable",
                       remedy=(f"Did you mean '{close[0]}'? " if close else "") + "Add the variable or correct the name.")
            continue
        if all(t.is_text for t in owners):
            # a text target's categories list the values it may take (code = the text itself)
            code = r["code"].strip()
        else:
            code = _num(report, "categories", r, "code", r["code"])
        if code is None:
            continue
        miss = _yesno(report, "categories", r, "is_missing")
        order = _num(report, "categories", r, "order", r["order"])
        for t in owners:
            if t.is_text:
                key = (t.table, t.name)
                cats.setdefault(key, []).append((order if order is not None else len(cats.get(key, [])) + 1e6, code,
                                                 r["label"], miss))
                continue
            if not t.has_categories and not miss:
                report.add("D016", f"categories row {r['_row']} gives a code for '{t.name}', whose type '{t.type}' has no categories.",
                           severity="warning", file=r["_file"], row=int(r["_row"]), column="variable",
                           remedy="Change the variable's type to categorical or ordinal, or delete the category rows.")
            if not miss and ((t.min is not None and code < t.min) or (t.max is not None and code > t.max)):
                report.add("D012", f"categories row {r['_row']} gives '{t.name}' code {r['code']}, outside its valid range "
                                   f"{_fmt(t.min)}-{_fmt(t.max)}.", file=r["_file"], row=int(r["_row"]), column="code",
                           remedy="Correct the code, widen the range in the variables table, or mark it is_missing=yes.")
            key = (t.table, t.name)
            cats.setdefault(key, []).append((order if order is not None else len(cats.get(key, [])) + 1e6, code, r["label"], miss))
    _dups(report, ca, ("table", "variable", "code"), "categories", "code of a variable")
    for tb, ts in tables.items():
        for name, t in list(ts.items()):
            lst = sorted(cats.get((tb, name), []), key=lambda x: (x[0], x[1]))
            ts[name] = Target(**{**t.__dict__, "categories": tuple((c, lab, m) for _, c, lab, m in lst)})
            if t.has_categories and not lst and not cats_unread:
                row = va.loc[(va["name"] == name) & (va["table"] == tb)].iloc[0]
                report.add("D010", f"variables row {row['_row']} declares '{name}' {t.type} but the categories table has no codes for it.",
                           file=row["_file"], row=int(row["_row"]), column="type",
                           remedy="Add its codes to the categories table, or make it integer/decimal.")
    # mappings
    study_ids = set(study_table)
    rules: dict = {}
    for _, r in ma.iterrows():
        if not _empty(report, "mappings", r, ("target", "study")):
            continue
        where = dict(file=r["_file"], row=int(r["_row"]))
        if r["study"] not in study_ids:
            close = difflib.get_close_matches(r["study"], sorted(study_ids), n=1)
            report.add("D008", f"mappings row {r['_row']} is for study '{r['study']}', which is not in the studies table.",
                       column="study", remedy=(f"Did you mean '{close[0]}'? " if close else "") + "Add the study or correct the id.", **where)
        tb = study_table.get(r["study"], "")
        t = tables.get(tb, {}).get(r["target"])
        if t is None and r["target"] not in DESIGN_COLUMNS and r["study"] in study_ids:
            elsewhere = [x for x, ts in tables.items() if r["target"] in ts]
            if elsewhere:
                report.add("D017", f"mappings row {r['_row']} maps '{r['target']}' (table '{elsewhere[0]}') for study "
                                   f"'{r['study']}' (table '{tb}').", column="target",
                           remedy="Map each study only to targets of its own table.", **where)
            else:
                close = difflib.get_close_matches(r["target"], all_names, n=1)
                report.add("D009", f"mappings row {r['_row']} maps target '{r['target']}', which is not in the variables table.",
                           column="target", remedy=(f"Did you mean '{close[0]}'? " if close else "") + "Add it to variables or correct the name.", **where)
        status = r["status"].lower() or "complete"
        if status not in STATUSES:
            report.add("D006", f"mappings row {r['_row']} has status '{r['status']}'.", column="status",
                       remedy=f"Use one of {', '.join(STATUSES)}.", **where)
            status = "complete"
        rule = None
        if r["rule"] == "" and status != "undetermined":
            report.add("D004", f"mappings row {r['_row']} has no rule for '{r['target']}' in study '{r['study']}'.", column="rule",
                       remedy="Give a rule (direct, recode, ..., impossible) or set status undetermined.", **where)
        elif r["rule"]:
            try:
                rule = parse_rule(r["rule"], r["source"], r["arguments"])
            except RuleSyntaxError as e:
                col = {"R101": "rule", "R105": "source", "R111": "source"}.get(e.code, "arguments")
                report.add(e.code, f"mappings row {r['_row']} ({r['target']} x {r['study']}): {e}.", column=col,
                           remedy=e.remedy, **where)
        if rule is not None:
            if (rule.name == "impossible") != (status == "impossible"):
                report.add("R112", f"mappings row {r['_row']} has rule '{rule.name}' with status '{status}'.", column="status",
                           remedy="Use rule impossible exactly when the status is impossible.", **where)
            if t is not None:
                rule = _check_rule_vs_target(rule, t, r, report, where, check_codes=not cats_unread)
        key = (r["target"], r["study"])
        if key not in rules:
            rules[key] = Mapping_(r["target"], r["study"], rule, status, r["comment"] or None, r["_file"], int(r["_row"]))
    _dups(report, ma, ("target", "study"), "mappings", "target x study (two rules for one target)")
    # coverage: every target of a table in every study of that table
    for tb, ts in tables.items():
        for name, t in ts.items():
            for sid, stb in study_table.items():
                if stb == tb and (name, sid) not in rules and name not in DESIGN_COLUMNS:
                    report.add("D013", f"target '{name}' has no mapping for study '{sid}'.",
                               severity="error" if t.required else "warning", file="mappings", column="target",
                               remedy=f"Add a mappings row for {name} x {sid} (rule impossible if the study cannot provide it).")
    return Dictionary(root, st, va, ca, ma, tables, rules, report)


def _safe_names(report: Report, r) -> None:
    """Study ids and table names become parts of file names (``OUT-stem_TABLE.sav``): refuse unsafe ones."""
    for col in ("study", "table"):
        bad = name_problem(r[col]) if r[col] else None
        if bad:
            report.add("D019", f"studies row {r['_row']} has {col} '{r[col]}', which {bad}; {col} names become parts of "
                               f"file names, so they must use {SAFE_NAME_RULE}.", file=r["_file"], row=int(r["_row"]),
                       column=col, remedy=f"Rename the {col} (and every row naming it).")


def _escapes(name: str) -> bool:
    """True when a study's ``file`` entry is absolute or climbs out of its folder with ``..``."""
    p = Path(name)
    return p.is_absolute() or bool(p.drive) or name.startswith(("/", "\\")) or ".." in p.parts \
        or ".." in name.replace("\\", "/").split("/")


def _inside_data_folder(report: Report, r) -> None:
    if r["file"] and _escapes(r["file"]):
        report.add("D020", f"studies row {r['_row']} names file '{r['file']}', which lies outside the data folder "
                           "(an absolute path or one climbing out with '..').", file=r["_file"], row=int(r["_row"]),
                   column="file", remedy="Give the path relative to the data folder (--data-dir) or to the dictionary "
                                         "folder, and put the file there.")


def _fmt(v):
    if v is None:
        return "?"
    return str(int(v)) if float(v).is_integer() else str(v)


def _check_rule_vs_target(rule: Rule, t: Target, r, report: Report, where, check_codes: bool = True) -> Rule:
    if t.is_text and rule.name in NUMERIC_RULES:
        report.add("R113", f"mappings row {r['_row']} applies numeric rule '{rule.name}' to text target '{t.name}'.",
                   column="rule", remedy="Use direct, recode, case_when, id or constant for text targets.", **where)
    if rule.name == "id" and not t.is_text:
        report.add("R113", f"mappings row {r['_row']} creates identifiers in '{t.name}', whose type is {t.type}.",
                   column="rule", remedy="Declare identifier targets with type string.", **where)
    if rule.name == "constant" and not t.is_text and isinstance(rule.params.get("value"), str):
        report.add("R113", f"mappings row {r['_row']} sets {t.type} target '{t.name}' to the text "
                           f"{rule.params['value'][:40]!r}, which is not a number.", column="arguments",
                   remedy="Give a number or NA, or declare the target with type string.", **where)
    if rule.name == "convert" and "to" not in rule.params:
        unit = canonical_unit(t.unit)
        if not t.unit or unit not in _UNITS or _UNITS[unit][0] != _UNITS[rule.params["from"]][0]:
            report.add("R107", f"mappings row {r['_row']} converts from '{rule.params['from']}' but target '{t.name}' has unit "
                               f"'{t.unit or ''}'.", column="arguments",
                       remedy="Give 'to=UNIT' or a compatible unit in the variables table.", **where)
    if rule.name == "reverse" and "min" not in rule.params and (t.min is None or t.max is None):
        report.add("R103", f"mappings row {r['_row']} reverses '{t.name}' without min/max and the target has no valid range.",
                   column="arguments", remedy="Give 'min=1; max=5' or fill min and max in the variables table.", **where)
    if not check_codes:  # the categories table could not be read: codes cannot be checked
        return rule
    # quoted category labels as recode targets -> codes
    if rule.name == "recode" and t.has_categories:
        bylabel = {str(lab).casefold().strip(): c for c, lab, _ in t.categories}
        pairs = []
        for k, tgt in rule.pairs:
            if isinstance(tgt, str) and tgt != "copy":
                code = bylabel.get(tgt.casefold().strip())
                if code is None:
                    report.add("R106", f"mappings row {r['_row']} recodes to '{tgt}', which is not a category label of '{t.name}'.",
                               column="arguments", remedy="Use a code or label from the categories table.", **where)
                    continue
                tgt = code
            pairs.append((k, tgt))
        rule = Rule(rule.name, rule.sources, rule.params, tuple(pairs), rule.case, rule.text)
    if t.is_text and t.categories:
        allowed_text = {str(c) for c, _, _ in t.categories}
        for code in rule.produced_codes():
            if code is None or code == "copy" or rule.name == "id":
                continue
            if str(code) not in allowed_text:
                report.add("R106", f"mappings row {r['_row']} can produce {code!r} for '{t.name}', which is not one of its "
                                   f"listed values ({', '.join(sorted(allowed_text))}).", column="arguments",
                           remedy="Add the value to the categories table or correct the rule.", **where)
    if t.has_categories:
        allowed = {c for c, _, _ in t.categories}
        for code in rule.produced_codes():
            if code is None or code == "copy":
                continue
            if isinstance(code, str) or float(code) not in allowed:
                report.add("R106", f"mappings row {r['_row']} can produce {code!r} for '{t.name}', which is not one of its "
                                   f"categories ({', '.join(_fmt(c) for c in sorted(allowed)) or 'none'}).", column="arguments",
                           remedy="Add the code to the categories table or correct the rule.", **where)
    return rule
