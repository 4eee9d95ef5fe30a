"""Harmonise several studies against a data dictionary, losslessly.

:func:`harmonise` applies each target x study rule of a
:class:`~cimstats.dictionary.schema.Dictionary` to each study and stacks the
results into one :class:`~cimstats.io.Survey`. Every harmonised cell is
either a value or missing for exactly one recorded reason
(:data:`~cimstats.dictionary.codes.MISSING_REASONS`), so for each target and
study ``n_valid + sum(n_<reason>) == n_rows``; every source value that did
not become a harmonised value can be listed with :meth:`HarmonisationResult.audit`.
"""

from __future__ import annotations

import difflib
import html
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from cimstats.dictionary.apply import Applied, SourceColumn, apply_rule, norm_label
from cimstats.dictionary.apply import counts as _counts
from cimstats.dictionary.codes import MISSING_REASONS, REASON_CODE, REASON_ORDER, SEVERITY
from cimstats.dictionary.schema import DESIGN_COLUMNS, Dictionary, Target, read_dictionary, resolve_study_file
from cimstats.errors import HarmonisationError, Report
from cimstats.io.survey import SourceInfo, Survey, VariableMeta
from cimstats import io as _io
from cimstats._files import atomic_write
from cimstats._sheets import frames_to_xlsx
from cimstats._sheets import spreadsheet_safe_frame
from cimstats.errors import SurveyWriteError
from cimstats.render.notebook import notebook_html

REPORT_COLUMNS = (["study", "target", "rule", "source", "declared_status", "status", "n_rows", "n_valid"]
                  + [f"n_{r}" for r in REASON_ORDER] + ["unmapped_codes", "comment"])
_DECL = REASON_CODE["declared_missing"]
_UNM = REASON_CODE["unmapped"]
_OOR = REASON_CODE["out_of_range"]
_NOMAP = REASON_CODE["no_mapping"]
_PROBLEM_REASONS = ("unmapped", "type_mismatch", "out_of_range", "no_match")


@dataclass(frozen=True)
class HarmonisationReport:
    """What happened to every target in every study.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per study x target with columns ``study, target, rule,
        source, declared_status, status, n_rows, n_valid``, one ``n_<reason>``
        per missing reason (``n_system_missing, n_source_missing,
        n_recoded_missing, n_declared_missing, n_unmapped, n_type_mismatch,
        n_out_of_range, n_too_few_items, n_no_match, n_impossible,
        n_no_mapping``), ``unmapped_codes`` and ``comment``. ``status`` is
        ``complete`` (rule applied, every source value accounted for without
        problems), ``partial`` (some values unmapped, out of range, of the wrong
        type or unmatched), ``impossible``, ``undetermined`` (no rule) or
        ``failed`` (the rule could not run, e.g. a missing source variable).
    unmapped : pandas.DataFrame
        One row per study x target x value not covered: ``study, target,
        source, value, label, n, reason``.
    issues : Report
        Every problem (stable codes ``D``/``R``/``H``) with file, row, column, remedy.
    """

    table: pd.DataFrame
    unmapped: pd.DataFrame
    issues: Report

    @property
    def all_complete(self) -> bool:
        """True when every target x study is complete and there are no errors."""
        return bool((self.table["status"] == "complete").all()) and not self.issues.has_errors

    @property
    def has_errors(self) -> bool:
        return self.issues.has_errors

    def summary(self) -> str:
        counts = self.table["status"].value_counts().to_dict()
        head = (f"Harmonisation of {self.table['study'].nunique()} studies x {self.table['target'].nunique()} targets: "
                + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".")
        return head + "\n" + self.issues.summary()

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        extra = [f"{len(lines) - 6} more lines in report.summary()."] if len(lines) > 6 else []
        return notebook_html("Harmonisation report", lines=lines[:6] + extra, table=self.table, more="report.table")

    def to_frames(self) -> dict[str, pd.DataFrame]:
        return {"summary": self.table, "unmapped": self.unmapped, "issues": self.issues.to_frame()}

    def to_csv(self, path: str | Path, *, spreadsheet_safe: bool = True) -> list[Path]:
        """Write ``PATH`` (summary) plus ``PATH-stem_unmapped.csv`` and ``_issues.csv``; returns the paths.

        Source values, labels and comments come from the study files and the
        dictionary, so with ``spreadsheet_safe`` (default) text that a
        spreadsheet would read as a formula (``= + - @``, tab, CR; not plain
        numbers such as ``-9``) gets a leading apostrophe; ``False`` writes the
        text exactly, for programs that read the CSV.
        """

        p = Path(path)
        out = []
        for name, df in self.to_frames().items():
            q = p if name == "summary" else p.with_name(f"{p.stem}_{name}{p.suffix or '.csv'}")
            df = spreadsheet_safe_frame(df) if spreadsheet_safe else df
            atomic_write(q, df.to_csv(index=False), error=SurveyWriteError)
            out.append(q)
        return out

    def to_excel(self, path: str | Path) -> Path:
        """Write one workbook with sheets ``summary``, ``unmapped`` and ``issues``.

        Every text cell is stored as text, never as a formula (cells starting
        with ``= + - @``, tab or CR carry Excel's quote prefix); control
        characters are kept as Excel escapes; a text longer than an Excel cell
        holds (32,767 characters) raises :class:`~cimstats.errors.SurveyWriteError`
        naming the cell instead of being cut. The workbook has fixed dates, so
        the same report gives the same bytes.
        """

        atomic_write(path, frames_to_xlsx(self.to_frames(), error=SurveyWriteError), error=SurveyWriteError)
        return Path(path)

    def to_html(self, path: str | Path | None = None) -> str:
        """A self-contained HTML page (every cell escaped); written to ``path`` when given."""
        parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Harmonisation report</title>",
                 "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:12px}"
                 "td,th{border:1px solid #ccc;padding:2px 6px}.partial,.failed{background:#fde2e2}"
                 ".complete{background:#e6f4ea}</style></head><body>",
                 f"<h1>Harmonisation report</h1><p>{html.escape(self.summary().splitlines()[0])}</p>"]
        for name, df in self.to_frames().items():
            parts.append(f"<h2>{html.escape(name)}</h2>")
            if df.empty:
                parts.append("<p>None.</p>")
                continue
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns) + "</tr>")
            for _, r in df.iterrows():
                cls = f" class='{html.escape(str(r['status']))}'" if "status" in df.columns else ""
                parts.append(f"<tr{cls}>" + "".join(
                    f"<td>{'' if pd.isna(v) else html.escape(str(v))}</td>" for v in r.tolist()) + "</tr>")
            parts.append("</table>")
        parts.append("</body></html>")
        text = "\n".join(parts)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def write(self, path: str | Path):
        """Write by extension: ``.csv``, ``.xlsx`` or ``.html``."""
        suffix = Path(path).suffix.lower()
        if suffix == ".xlsx":
            return self.to_excel(path)
        if suffix in (".html", ".htm"):
            self.to_html(path)
            return Path(path)
        return self.to_csv(path)


@dataclass(frozen=True)
class HarmonisationResult:
    """The harmonised, stacked survey(s) and the report. Unpacks as ``survey, report``.

    Attributes
    ----------
    surveys : dict of str to Survey
        One stacked survey per output table (the key is ``""`` when the
        dictionary has one table; e.g. ``"patients"`` and ``"alters"``
        otherwise). Each has one row per source row of each of its studies
        (rows in = rows out), columns ``study, country, wave`` then the target
        variables in dictionary order, with labels and categories from the
        dictionary.
    report : HarmonisationReport
    dictionary : Dictionary
    rows : dict of str to int
        Rows per study (equal in input and output).
    """

    surveys: dict
    report: HarmonisationReport
    dictionary: Dictionary
    rows: dict
    _audit: dict = field(repr=False, default_factory=dict)
    _inputs: dict = field(repr=False, default_factory=dict)
    _offsets: dict = field(repr=False, default_factory=dict)

    @property
    def survey(self) -> Survey:
        """The harmonised survey when the dictionary has one output table."""
        if len(self.surveys) == 1:
            return next(iter(self.surveys.values()))
        raise HarmonisationError(f"The dictionary defines {len(self.surveys)} tables ({', '.join(self.surveys)}); "
                                 "use `result.surveys[name]` or `result[name]`.")

    def __getitem__(self, table: str) -> Survey:
        if table not in self.surveys and len(self.surveys) == 1 and "" in self.surveys:
            # a one-table dictionary leaves its table unnamed: any name picks that one table
            return self.surveys[""]
        try:
            return self.surveys[table]
        except KeyError:
            raise HarmonisationError(f"No harmonised table '{table}'; available: {', '.join(map(repr, self.surveys))}.") from None

    def __repr__(self) -> str:
        g = self.glance().iloc[0].to_dict()
        tables = ", ".join(f"{tb or 'table'}: {s.shape[0]} rows x {s.shape[1]} variables" for tb, s in self.surveys.items())
        n_err = len(self.report.issues.errors)
        return (f"HarmonisationResult({len(self.rows)} studies; {tables}; {g.get('n_complete', '?')} complete, "
                f"{n_err} error(s), {len(self.report.issues) - n_err} other issue(s))")

    def _repr_html_(self) -> str:
        return notebook_html(repr(self), table=self.report.table, more="result.report.table",
                             css_class="cimstats-harmonisation")

    def __iter__(self):
        """``survey, report`` (``surveys`` dict instead of one survey when there are several tables)."""
        return iter((self.survey if len(self.surveys) == 1 else self.surveys, self.report))

    @property
    def nobs(self) -> int:
        return sum(len(s) for s in self.surveys.values())

    def tidy(self) -> pd.DataFrame:
        """The per study x target report table."""
        return self.report.table.copy()

    def glance(self) -> pd.DataFrame:
        """One row: studies, rows, targets, status counts, errors and warnings."""
        t = self.report.table
        st = t["status"].value_counts()
        return pd.DataFrame([{
            "n_studies": len(self.rows), "n_rows": self.nobs, "n_targets": t["target"].nunique(),
            **{f"n_{s}": int(st.get(s, 0)) for s in ("complete", "partial", "impossible", "undetermined", "failed")},
            "n_errors": len(self.report.issues.errors),
            "n_warnings": sum(1 for i in self.report.issues if i.severity == "warning"),
            "all_complete": self.report.all_complete}])

    def summary(self) -> str:
        return self.report.summary()

    def audit(self, target: str | None = None) -> pd.DataFrame:
        """Every harmonised cell that is missing for a reason other than an empty source cell.

        Columns: ``study, row`` (0-based row within the study), ``output_row``
        (row in its table's survey), ``table, target, reason, source, source_value`` (the
        value or declared missing code the source cell held).
        """
        frames = []
        for (sid, tname), (pos, why, sources) in self._audit.items():
            if target is not None and tname != target:
                continue
            if not len(pos):
                continue
            sv: Any = None
            if len(sources) == 1 and sid in self._inputs and sources[0] in self._inputs[sid].variables:
                s = self._inputs[sid]
                vals = s.data[sources[0]].to_numpy()[pos].astype(object)
                if sources[0] in s.missing.columns:
                    rec = s.missing[sources[0]].to_numpy()[pos]
                    has = pd.notna(rec)
                    vals[has] = rec[has]
                sv = vals
            frames.append(pd.DataFrame({"study": sid, "row": pos, "output_row": pos + self._offsets[sid], "target": tname,
                                        "table": self.dictionary.table_of(sid),
                                        "reason": np.asarray(REASON_ORDER, dtype=object)[why - 1],
                                        "source": ", ".join(sources), "source_value": sv}))
        cols = ["study", "row", "output_row", "table", "target", "reason", "source", "source_value"]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# -- inputs -------------------------------------------------------------------------
def _read(path: Path, fmt: str | None) -> Survey:

    reader = getattr(_io, "read_survey", None)
    if reader is None:
        raise RuntimeError("cimstats.io.read_survey is not available")
    return reader(path, **({"format": fmt} if fmt else {}))


def _collect_inputs(studies, d: Dictionary, data_dir, issues: Report) -> dict[str, Survey | None]:
    ids = d.study_ids
    given: dict[str, Any] = {}
    if studies is None:
        given = {sid: None for sid in ids}
    elif isinstance(studies, (Survey, pd.DataFrame)):
        if len(ids) != 1:
            raise HarmonisationError(f"`studies` is one table but the dictionary lists {len(ids)} studies; pass a dict "
                                     "{study id: Survey or path}.")
        given = {ids[0]: studies}
    elif isinstance(studies, Mapping):
        given = dict(studies)
    elif isinstance(studies, (list, tuple)):
        byfile = {Path(str(d.study(s).get("file", ""))).name: s for s in ids}
        for i, s in enumerate(studies):
            path = Path(str(s)) if isinstance(s, (str, Path)) else Path(s.source.path) if isinstance(s, Survey) and s.source.path else None
            if path is not None and path.name in byfile:
                given[byfile[path.name]] = s
            elif len(studies) == len(ids):
                given[ids[i]] = s
            else:
                raise HarmonisationError(f"`studies` item {i} cannot be matched to a study of the dictionary; pass a dict "
                                         "{study id: Survey or path}.")
    else:
        raise HarmonisationError(f"`studies` is a {type(studies).__name__}; expected a dict of study id to Survey or path, "
                                 "a list, or None to read the files named in the studies table.")
    out: dict[str, Survey | None] = {}
    for sid in given:
        if sid not in ids:
            issues.add("H210", f"`studies` has data for '{sid}', which is not in the dictionary's studies table.",
                       column="study", remedy="Add the study to studies.csv or remove it from `studies`.")
    for sid in ids:
        if sid not in given:
            issues.add("H210", f"study '{sid}' is in the dictionary but no data were given for it.", severity="warning",
                       column="study", remedy="Pass its data or path, or remove it from studies.csv.")
            continue
        obj = given[sid]
        info = d.study(sid)
        if isinstance(obj, pd.DataFrame):
            obj = Survey(obj)
        if obj is None or isinstance(obj, (str, Path)):
            fname = str(obj) if obj is not None else info.get("file", "")
            path = resolve_study_file(d, fname, data_dir, from_dictionary=obj is None) if fname else None
            if path is None:
                issues.add("H201", f"study '{sid}' file '{fname}' was not found.", file="studies", column="file",
                           remedy="Correct the path in studies.csv (relative to the dictionary folder) or give `data_dir`.")
                out[sid] = None
                continue
            try:
                obj = _read(path, info.get("format") or None)
            except Exception as exc:  # noqa: BLE001 - reported with the study
                issues.add("H201", f"study '{sid}' file '{path.name}' could not be read ({exc}).", file=str(path.name),
                           remedy="Check the file and its format column.")
                out[sid] = None
                continue
        if not isinstance(obj, Survey):
            raise HarmonisationError(f"`studies['{sid}']` is a {type(obj).__name__}; expected a Survey, DataFrame or path.")
        out[sid] = obj
    return out


def _source_columns(s: Survey, names) -> dict[str, SourceColumn]:
    out = {}
    miss = s.missing
    for n in names:
        rec = miss[n].to_numpy(dtype=object) if n in miss.columns else None
        vals = s.data[n]
        arr = vals.to_numpy(dtype=object, na_value=None) if not pd.api.types.is_numeric_dtype(vals) else \
            vals.to_numpy(dtype=float, na_value=np.nan) if not pd.api.types.is_bool_dtype(vals) else vals.to_numpy(dtype=float)
        out[n] = SourceColumn(n, arr, s.variable(n), rec)
    return out


def _target_meta(t: Target) -> VariableMeta:
    measure = {"categorical": "nominal", "ordinal": "ordinal", "string": "nominal"}.get(t.type, "scale")
    if t.is_text:
        return VariableMeta(t.name, label=t.label, value_labels={}, measure=measure,
                            missing_codes=tuple(t.missing_codes), storage="string")
    labels = {(int(c) if float(c).is_integer() else c): lab for c, lab, _ in t.categories}
    miss = tuple(int(c) if float(c).is_integer() else c for c in t.missing_codes)
    return VariableMeta(t.name, label=t.label, value_labels=labels if not t.is_text else {}, measure=measure,
                        missing_codes=miss, storage="string" if t.is_text else "numeric")


def _fmt_codes(counter: Counter, labels: Mapping | None = None, k: int = 10) -> str:
    items = counter.most_common(k)
    txt = "; ".join(f"{_show(v)}{' ' + repr(labels[v]) if labels and v in labels else ''} (n={c})" for v, c in items)
    return txt + (f"; ... {len(counter) - k} more" if len(counter) > k else "")


def _show(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# -- the verb -------------------------------------------------------------------------
def harmonise(studies, dictionary, *, data_dir: str | Path | None = None, strict: bool = False,
              accept=()) -> HarmonisationResult:
    """Harmonise studies to the target schema of a data dictionary and stack them.

    Parameters
    ----------
    studies : dict, list, Survey or None
        The study data: a dict ``{study id: Survey | DataFrame | path}``, a
        list (matched to the studies table by file name, else by order), or
        ``None`` to read the files named in the dictionary's ``studies`` table
        (relative to ``data_dir`` or the dictionary folder).
    dictionary : Dictionary or path
        A :class:`Dictionary` or the folder holding its tables.
    data_dir : path, optional
        Folder where study files are looked for first.
    strict : bool
        Raise :class:`~cimstats.errors.HarmonisationError` carrying the report
        when any error is found (dictionary or data). Otherwise the result is
        returned with every problem in its report.
    accept : sequence of str
        Harmonisation codes (e.g. ``["H206"]``) the analysis accepts: their
        issues stay in the report as notes (severity ``info``) instead of
        errors or warnings. Each code's default severity is in
        :data:`cimstats.dictionary.codes.SEVERITY`.

    Returns
    -------
    HarmonisationResult
        ``survey, report = harmonise(...)`` unpacks it. When the dictionary
        declares several output tables (``table`` column, e.g. patients and
        alters), ``result.surveys`` holds one stacked survey per table and
        ``result["patients"]`` picks one.

    Raises
    ------
    DictionaryError
        The dictionary folder cannot be read (strict=True only for its errors).
    HarmonisationError
        ``strict=True`` and the report has errors.

    Notes
    -----
    Rows in equal rows out per study. Each cell is a value or missing for one
    reason; per target x study ``n_valid + sum(n_<reason>) == n_rows``. Values
    outside the target's valid range and codes that are not target categories
    become missing with reasons ``out_of_range`` and ``unmapped`` and are listed in
    the report (and, cell by cell, by :meth:`HarmonisationResult.audit`).
    Comparable R tools: ``Rmonize::harmo_process`` and
    ``retroharmonize::crosswalk``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.io import Survey, VariableMeta
    >>> from cimstats.dictionary import Dictionary
    >>> d = Dictionary.from_frames(
    ...     studies=[{"study": "A", "country": "EN", "wave": 0}, {"study": "B", "country": "NL", "wave": 0}],
    ...     variables=[{"name": "sex", "type": "categorical", "label": "Sex", "required": "yes"}],
    ...     categories=[{"variable": "sex", "code": 1, "label": "male"}, {"variable": "sex", "code": 2, "label": "female"}],
    ...     mappings=[{"target": "sex", "study": "A", "rule": "direct", "source": "sex"},
    ...               {"target": "sex", "study": "B", "rule": "recode", "source": "geslacht", "arguments": "'man'=1; 'vrouw'=2"}])
    >>> a = Survey(pd.DataFrame({"sex": [1, 2, 2]}))
    >>> b = Survey(pd.DataFrame({"geslacht": ["vrouw", "man"]}))
    >>> survey, report = harmonise({"A": a, "B": b}, d)
    >>> survey.data["sex"].tolist(), report.all_complete
    ([1.0, 2.0, 2.0, 2.0, 1.0], True)
    """
    accepted = _accepted_codes(accept)
    d = dictionary if isinstance(dictionary, Dictionary) else read_dictionary(dictionary, strict=False)
    issues = Report(list(d.report.issues))
    inputs = _collect_inputs(studies, d, data_dir, issues)
    rows_meta: list[dict] = []
    unmapped_rows: list[dict] = []
    audit: dict = {}
    rows: dict[str, int] = {}
    offsets: dict[str, int] = {}
    surveys: dict[str, Survey] = {}
    for tb, tmap in d.tables.items():
        members = {sid: s for sid, s in inputs.items() if s is not None and d.table_of(sid) == tb}
        surveys[tb] = _stack(d, tb, tmap, members, issues, rows_meta, unmapped_rows, audit, rows, offsets)
    issues = _with_severities(issues, accepted)
    table = pd.DataFrame(rows_meta, columns=["table"] + REPORT_COLUMNS)
    if len(d.tables) <= 1:
        table = table.drop(columns="table")
    unm = pd.DataFrame(unmapped_rows, columns=["study", "target", "source", "value", "label", "n", "reason"])
    report = HarmonisationReport(table, unm, issues)
    result = HarmonisationResult(surveys, report, d, rows, audit, {k: v for k, v in inputs.items() if v is not None}, offsets)
    if strict and issues.has_errors:
        raise HarmonisationError(f"Harmonisation found {len(issues.errors)} error(s); the report lists each with its code, "
                                 "file, row and remedy (run without strict to inspect the result).", report=issues)
    return result


def _accepted_codes(accept) -> frozenset:
    if isinstance(accept, str):
        accept = [accept]
    codes = [str(c).strip().upper() for c in (accept or ())]
    unknown = [c for c in codes if c not in SEVERITY]
    if unknown:
        raise HarmonisationError(f"`accept` names {', '.join(unknown)}, which are not harmonisation codes; "
                                 f"accept codes such as H206 (values outside the valid range set missing).")
    return frozenset(codes)


def _with_severities(issues: Report, accepted: frozenset) -> Report:
    """Every harmonisation issue gets its code's severity from the one table; accepted codes become notes."""
    out = []
    for i in issues:
        if i.code in SEVERITY:
            sev = "info" if i.code in accepted else SEVERITY[i.code]
            if sev != i.severity:
                i = replace(i, severity=sev, message=i.message + (" (accepted)" if i.code in accepted else ""))
        out.append(i)
    return Report(out)


def _stack(d: Dictionary, tb: str, tmap: dict, members: dict, issues: Report, rows_meta, unmapped_rows, audit,
           rows, offsets) -> Survey:
    """Harmonise the studies of one output table and stack them.

    Numeric targets are written straight into one preallocated block (one
    column per target), so stacking costs no extra copy of the data.
    """
    targets = [t for t in tmap.values() if t.name != "study"]
    order = ["study", "country", "wave"] + [t.name for t in targets if t.name not in DESIGN_COLUMNS]
    text_cols = {"study"} | {t.name for t in targets if t.is_text} | ({"country"} if "country" not in tmap else set())
    num_cols = [c for c in order if c not in text_cols]
    pos = {c: j for j, c in enumerate(num_cols)}
    total = sum(len(s) for s in members.values())
    block = np.empty((len(num_cols), total))  # every cell is written below
    texts: dict[str, list] = {c: [] for c in order if c in text_cols}
    records: dict[str, np.ndarray] = {}
    offset = 0
    for sid, s in members.items():
        n = len(s)
        rows[sid] = n
        offsets[sid] = offset
        sl = slice(offset, offset + n)
        info = d.study(sid)
        texts["study"].append(np.full(n, sid, dtype=object))
        for dc in ("country", "wave"):
            if dc not in tmap or (dc, sid) not in d.rules:
                val = info.get(dc, "")
                if dc == "wave":
                    block[pos["wave"], sl] = float(val) if val not in ("", None) else np.nan
                else:
                    texts["country"].append(np.full(n, val if val else None, dtype=object))
        for t in targets:
            m = d.rules.get((t.name, sid))
            if m is None and t.name in ("country", "wave"):
                continue  # filled from the studies table above
            vals, reason, rec, row = _one(t, m, s, sid, issues, unmapped_rows)
            row["table"] = tb
            if t.name in pos:
                block[pos[t.name], sl] = vals
            else:
                texts[t.name].append(np.asarray(vals, dtype=object))
            if rec is not None:
                if t.name not in records:
                    records[t.name] = np.full(total, None, dtype=object)
                records[t.name][sl] = rec
            rows_meta.append(row)
            lost = np.flatnonzero((reason != 0) & (reason != REASON_CODE["system_missing"])
                                  & (reason != REASON_CODE["impossible"]) & (reason != _NOMAP))
            audit[(sid, t.name)] = (lost, reason[lost], tuple(m.rule.sources) if m and m.rule else ())
        offset += n
    data = pd.DataFrame(block.T, columns=num_cols, copy=False)
    for c in order:
        if c in texts:
            arr = np.concatenate(texts[c]) if texts[c] else np.full(total, None, dtype=object)
            data.insert(order.index(c), c, pd.Series(arr, dtype="str"))
    missing = pd.DataFrame(records, index=data.index) if records else None
    meta = {"study": VariableMeta("study", label="Study", storage="string", measure="nominal")}
    if "country" not in tmap:
        meta["country"] = VariableMeta("country", label="Country", storage="string", measure="nominal")
    if "wave" not in tmap:
        meta["wave"] = VariableMeta("wave", label="Wave", measure="ordinal")
    for t in targets:
        meta[t.name] = _target_meta(t)
    _check_ids(tmap, data, issues)
    notes = [f"{sid}: {len(s)} rows" for sid, s in members.items()]
    for sid in members:  # deprivation quantiles keep the index's name, version, vintage and direction
        for t in targets:
            m = d.rules.get((t.name, sid))
            if m is not None and m.rule is not None and m.rule.name == "quantile":
                p = m.rule.params
                idx = " ".join(str(x) for x in (p.get("index"), p.get("version")) if x) or m.rule.sources[0]
                notes.append(f"{t.name} in {sid}: {p['n']} quantiles of {idx}"
                             + (f" ({p['vintage']})" if p.get("vintage") else "")
                             + f", {p['direction'].replace('_', ' ')}, 1 = most deprived")
    return Survey(data, meta, missing, SourceInfo(path=None, format=None,
                                                  file_label=f"Harmonised {tb} data" if tb else "Harmonised data",
                                                  notes=tuple(notes)))


def _one(t: Target, m, s: Survey, sid: str, issues: Report, unmapped_rows: list):
    n = len(s)
    row: dict[str, Any] = {"study": sid, "target": t.name, "rule": "", "source": "", "n_rows": n,
                           "declared_status": m.status if m else "", "comment": m.comment if m else None}
    where = dict(file=m.file, row=m.row) if m else dict(file="mappings")

    def empty(reason_name: str, status: str):
        vals = np.full(n, None, dtype=object) if t.is_text else np.full(n, np.nan)
        reason = np.full(n, REASON_CODE[reason_name], dtype=np.int8)
        _fill_counts(row, reason, vals)
        row.update(status=status, unmapped_codes="")
        return vals, reason, None, row

    if m is None or m.rule is None:
        return empty("no_mapping", "undetermined" if (m is None or m.status == "undetermined") else "failed")
    rule = m.rule
    row["rule"] = rule.name + (f": {rule.text}" if rule.text else "")
    row["source"] = ", ".join(rule.sources)
    needed = list(rule.sources) + (list(rule.params.get("by", ())) + ([rule.params["per"]] if rule.params.get("per") else [])
                                   if rule.name == "quantile" else [])
    absent = [v for v in dict.fromkeys(needed) if v not in s.data.columns]
    if absent:
        for v in absent:
            close = difflib.get_close_matches(v, s.variables, n=1)
            issues.add("H202", f"mapping {t.name} x {sid} uses source variable '{v}', which study '{sid}' does not have.",
                       column="source", remedy=(f"Did you mean '{close[0]}'? " if close else "")
                       + "Correct the source name in mappings.csv.", **where)
        return empty("no_mapping", "failed")
    cols = _source_columns(s, dict.fromkeys(needed))
    ap = apply_rule(rule, cols, n, target_min=t.min, target_max=t.max, target_unit=t.unit, target_is_text=t.is_text)
    for code, msg, remedy in ap.problems:
        sev = "warning" if code in ("H209",) else "info" if code == "H212" else "error"
        issues.add(code, f"{t.name} x {sid}: {msg}.", severity=sev, column="arguments", remedy=remedy, **where)
    rec = _finalise(t, ap, sid, issues, where)
    reason = ap.reason
    if rule.name == "direct" and t.has_categories and t.missing_codes and not t.is_text:
        rec = _keep_declared_missing(t, cols[rule.sources[0]], reason, rec)
    # unmapped values
    src_labels = cols[rule.sources[0]].meta.value_labels if len(rule.sources) == 1 else {}
    if ap.unmapped:
        kind = "type_mismatch" if (reason == REASON_CODE["type_mismatch"]).any() and not (reason == _UNM).any() else "unmapped"
        for v, c in ap.unmapped.most_common():
            unmapped_rows.append({"study": sid, "target": t.name, "source": row["source"], "value": _show(v),
                                  "label": src_labels.get(v, src_labels.get(float(v), "")) if isinstance(v, (int, float)) else "",
                                  "n": c, "reason": kind})
        if rule.name in ("recode", "direct"):
            issues.add("H203", f"{t.name} x {sid}: source codes not covered by the rule: {_fmt_codes(ap.unmapped, src_labels)}.",
                       column="arguments", remedy="Add them to the recode (or map them to NA on purpose).", **where)
    if rule.name == "recode" and src_labels:
        _check_label_coverage(t, rule, cols[rule.sources[0]], sid, issues, where)
    if rule.name == "direct" and t.has_categories and src_labels:
        _check_label_agreement(t, cols[rule.sources[0]], sid, issues, where)
        extra = [c for c in src_labels if float(c) not in {float(x) for x, _, _ in t.categories}
                 and not cols[rule.sources[0]].meta.is_declared_missing(c)] if all(
            isinstance(c, (int, float)) for c in src_labels) else []
        if extra:
            issues.add("H209", f"{t.name} x {sid}: source '{rule.sources[0]}' labels code(s) "
                               f"{', '.join(f'{_show(c)} {src_labels[c]!r}' for c in extra[:6])}, which are not categories of the target.",
                       severity="warning", column="source", remedy="Use a recode rule that maps them, or declare them missing in the source.",
                       **where)
    _fill_counts(row, reason, ap.values)
    problem = any(row[f"n_{r}"] for r in _PROBLEM_REASONS) or any(
        i.severity == "error" and i.row == m.row and i.file == m.file and i.message.startswith(f"{t.name} x {sid}") for i in issues)
    row["status"] = "impossible" if rule.name == "impossible" else "partial" if problem else "complete"
    row["unmapped_codes"] = _fmt_codes(ap.unmapped, src_labels) if ap.unmapped else ""
    if t.required and rule.name != "impossible":
        nmiss = int((reason != 0).sum())
        if nmiss:
            issues.add("H208", f"required target '{t.name}' has {nmiss} missing value(s) in study '{sid}'.",
                       column="target", remedy="Fix the source values or the rule; required targets must be complete.", **where)
    elif t.required:
        issues.add("H208", f"required target '{t.name}' is impossible in study '{sid}'.", column="rule",
                   remedy="A required target must be provided by every study; make it not required or map it.", **where)
    return ap.values, reason, rec, row


def _fill_counts(row: dict, reason: np.ndarray, vals) -> None:
    counts = np.bincount(reason.astype(np.int64), minlength=len(REASON_ORDER) + 1)
    row["n_valid"] = int(counts[0])
    for i, r in enumerate(REASON_ORDER):
        row[f"n_{r}"] = int(counts[i + 1])


def _finalise(t: Target, ap: Applied, sid: str, issues: Report, where) -> np.ndarray | None:
    """Apply the target's categories and range; returns the declared-missing record (or None)."""
    if t.is_text:
        v = np.asarray(ap.values, dtype=object)
        if t.categories:
            allowed = {str(c) for c, _, _ in t.categories}
            present = np.asarray([x is not None and not (isinstance(x, float) and np.isnan(x)) for x in v], dtype=bool)
            notcat = present & (ap.reason == 0) & ~np.isin(v.astype(str), list(allowed))
            if notcat.any():
                cnt = Counter(str(x) for x in v[notcat])
                ap.unmapped.update(cnt)
                issues.add("H207", f"{t.name} x {sid}: {int(notcat.sum())} harmonised value(s) are not listed values of the "
                                   f"target: {_fmt_codes(cnt)}.", column="arguments",
                           remedy="Map them with a recode rule (or add them to the categories table).", **where)
                reason = ap.reason.copy()
                reason[notcat] = _UNM
                ap.reason = reason
                v = v.copy()
                v[notcat] = None
        ap.values = v
        return None
    v = np.asarray(ap.values, dtype=float)
    reason = ap.reason
    ok = reason == 0
    rec = None
    if t.has_categories:
        codes = np.asarray([c for c, _, _ in t.categories], dtype=float)
        mcodes = np.asarray(t.missing_codes, dtype=float)
        isdecl = ok & np.isin(v, mcodes)
        if isdecl.any():
            rec = np.full(len(v), None, dtype=object)
            rec[isdecl] = [int(x) if float(x).is_integer() else x for x in v[isdecl]]
            reason[isdecl] = _DECL
            v = np.where(isdecl, np.nan, v)
            ok &= ~isdecl
        notcat = ok & ~np.isin(v, codes)
        if notcat.any():
            cnt = _counts(v[notcat])
            ap.unmapped.update({(int(k) if float(k).is_integer() else k): c for k, c in cnt.items()})
            issues.add("H207", f"{t.name} x {sid}: {int(notcat.sum())} harmonised value(s) are not categories of the target: "
                               f"{_fmt_codes(cnt)}.", column="arguments",
                       remedy="Map them with a recode rule (or add them to the categories table).", **where)
            reason[notcat] = _UNM
            v = np.where(notcat, np.nan, v)
            ok &= ~notcat
    if t.type == "integer":
        frac = ok & (v != np.floor(v))
        if frac.any():
            ex = np.unique(v[frac])[:5]
            issues.add("H214", f"{t.name} x {sid}: {int(frac.sum())} harmonised value(s) are not whole numbers "
                               f"(e.g. {', '.join(_show(float(x)) for x in ex)}) but the target is integer; they were set missing.",
                       column="target", remedy="Declare the target decimal, or round/band the values with the rule (cut, recode).",
                       **where)
            reason[frac] = REASON_CODE["type_mismatch"]
            v = np.where(frac, np.nan, v)
            ok &= ~frac
    lo = -np.inf if t.min is None else t.min
    hi = np.inf if t.max is None else t.max
    if t.min is not None or t.max is not None:
        out = ok & ((v < lo) | (v > hi))
        if out.any():
            ex = np.unique(v[out])[:5]
            issues.add("H206", f"{t.name} x {sid}: {int(out.sum())} value(s) outside the valid range {_show(t.min)}-{_show(t.max)} "
                               f"(e.g. {', '.join(_show(float(x)) for x in ex)}) were set missing.", column="target",
                       remedy="Check the rule (units, direction) or the source values; widen min/max if they are valid.", **where)
            reason[out] = _OOR
            v = np.where(out, np.nan, v)
    ap.values = v
    ap.reason = reason
    return rec


def _keep_declared_missing(t: Target, col: SourceColumn, reason: np.ndarray, rec):
    """A source cell holding a declared missing code that the target also declares missing keeps that code.

    A ``direct`` mapping of, say, 9 "no answer" (missing in the source) onto a
    target whose categories declare 9 as missing keeps 9 in the target's
    declared-missing record (reason ``declared_missing``) instead of making the
    cell system-missing.
    """
    if col.record is None:
        return rec
    mcodes = {float(c) for c in t.missing_codes if isinstance(c, (int, float))}
    src = np.flatnonzero(reason == REASON_CODE["source_missing"])
    hits = [i for i in src if isinstance(col.record[i], (int, float)) and float(col.record[i]) in mcodes]
    if not hits:
        return rec
    if rec is None:
        rec = np.full(len(reason), None, dtype=object)
    for i in hits:
        code = float(col.record[i])
        rec[i] = int(code) if code.is_integer() else code
        reason[i] = _DECL
    return rec


def _check_label_agreement(t: Target, col: SourceColumn, sid: str, issues: Report, where) -> None:
    """Compare, code by code, the source's value labels with the target's category labels (H215).

    A source code whose label is the target's label of a *different* code means
    the codes are swapped (1 = girl onto a target where 1 = boy) or the scale is
    reversed (1 = "very accurate" onto 1 = "very inaccurate"); a ``direct``
    mapping would turn every such value into its opposite, so it is an error
    until the mapping states the recode. Labels are compared after folding case
    and spaces; codes whose labels simply differ in wording are not judged.
    """
    target = {float(c): norm_label(lab) for c, lab, miss in t.categories
              if not miss and isinstance(c, (int, float)) and lab}
    if len(target) < 2:
        return
    by_label = {}
    for c, lab in target.items():
        by_label.setdefault(lab, c)
    wrong = []
    for code, lab in col.meta.value_labels.items():
        if not isinstance(code, (int, float)) or col.meta.is_declared_missing(code):
            continue
        c, nl = float(code), norm_label(lab)
        if c in target and target[c] != nl and nl in by_label and by_label[nl] != c:
            wrong.append((c, lab, by_label[nl]))
    if not wrong:
        return
    lo, hi = min(target), max(target)
    reversed_scale = len(target) >= 3 and len(wrong) >= 2 and all(abs((lo + hi - c) - c2) < 1e-9 for c, _, c2 in wrong)
    what = "the scale is reversed" if reversed_scale else "the codes are swapped"
    shown = "; ".join(f"source {_show(c)} is {lab!r}, which is the target's {_show(c2)}" for c, lab, c2 in wrong[:4])
    pairs = "; ".join(f"{_show(c)}={_show(c2)}" for c, _, c2 in wrong[:8])
    issues.add("H215", f"{t.name} x {sid}: source '{col.name}' labels disagree with the target code by code ({shown}): "
                       f"{what}, so a direct mapping would turn these values into their opposites.",
               severity="error", column="rule",
               remedy=f"Map it with a recode rule that states the change (arguments \"{pairs}\"), or correct the "
                      f"source's value labels if they are wrong.", **where)


def _check_label_coverage(t: Target, rule, col: SourceColumn, sid: str, issues: Report, where) -> None:
    keys = {k.value for k, _ in rule.pairs if k.kind == "value"}
    if any(k.kind == "else" for k, _ in rule.pairs):
        return
    labels_by_norm = {norm_label(k.value) for k, _ in rule.pairs if k.kind == "label"}
    ranges = [(k.value, k.high) for k, _ in rule.pairs if k.kind == "range"]
    missing = []
    for code, lab in col.meta.value_labels.items():
        if col.meta.is_declared_missing(code):
            continue
        c = float(code) if isinstance(code, (int, float)) else code
        if c in keys or norm_label(lab) in labels_by_norm or (isinstance(c, float) and any(lo <= c <= hi for lo, hi in ranges)):
            continue
        missing.append(f"{_show(c)} {lab!r}")
    if missing:
        issues.add("H209", f"{t.name} x {sid}: source '{col.name}' has labelled code(s) {', '.join(missing[:6])} that the recode does not cover.",
                   severity="warning", column="arguments",
                   remedy="Add them to the recode (to NA if they mean missing) so future data cannot fall through.", **where)


def _check_ids(tmap: dict, data: pd.DataFrame, issues: Report) -> None:
    """The key targets of a table (``key=yes`` in variables) must identify each row once."""
    keys = [t.name for t in tmap.values() if t.key and t.name in data.columns]
    if not keys or data.empty:
        return
    sub = data[keys]
    dup = sub.duplicated(keep=False) & sub.notna().all(axis=1)
    if dup.any():
        ex = sub.loc[dup].astype(str).agg(" / ".join, axis=1).unique()[:5]
        issues.add("H211", f"key {' x '.join(keys)} repeats for {int(dup.sum())} row(s) (e.g. {', '.join(ex)}).",
                   column=keys[0], remedy="Check the id rules (each study needs its own prefix) and duplicated source rows.")
