"""Joint displays: tables that integrate quantitative results and qualitative themes.

:func:`joint_display` builds one of five display kinds from the mechanism
(hypothesis) table, a theme codebook, coded excerpts and a case table. The
result, a :class:`JointDisplay`, holds the display's own spec (an
inspectable table with one row per display row and structured fields) and a
:class:`~cimstats.render.TableSpec` that every renderer accepts.

Input contract: the results frame
---------------------------------
One row per hypothesis; :data:`RESULTS_SCHEMA` lists every column with its
type and allowed values, and :func:`validate_mechanism_table` checks a frame
against it (each problem is one sentence naming the column and row). Any
results table can be used once its columns carry these names: rename yours
(``df.rename(columns={...})``) and call :func:`validate_mechanism_table` to
see what is missing. The ``table`` of :func:`cimstats.test_mechanisms`
already follows it.

Required: ``hypothesis_id`` (text, unique), ``mechanism`` (text) and
``verdict`` (``supported``, ``not supported``, ``contrary``, ``not
testable``; empty = ``not testable``).

Optional (empty cells are shown as ``–``): ``statement``, ``estimate``,
``ci_lower``, ``ci_upper`` (numbers), ``p_value`` and ``p_adjusted``
(numbers from 0 to 1), ``model``, ``n`` (whole number >= 0),
``verdict_reason`` (``reason`` accepted), ``theme_ids`` (``;``-separated or
a list), ``estimand``, ``effect_label``, ``element`` (the element of the
mechanism the hypothesis speaks to, e.g. ``trust``: quotes tagged with it
are preferred), ``template`` and ``expected`` (``invariance`` / ``holds``
mark a measurement check, which is never linked to a theme), and
``theme_direction`` / ``theme_directions``: the direction each linked theme
is expected to take for *this* hypothesis, as one direction for all its
themes (``supports``) or per theme (``T1: supports; T3: mixed``, or a
dict). A hypothesis object's ``theme_directions`` attribute (the analysis
plan's) is read the same way. Without it a pair takes the theme's own
direction from the codebook.

Theme links are the union of ``theme_ids`` and the codebook's
``hypotheses`` lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from cimstats._files import atomic_write
from cimstats.errors import RenderError, Report
from cimstats.integrate.agreement import coder_agreement, theme_prominence
from cimstats.integrate.codebook import _DIRECTION_SYNONYMS, INVENTED_NOTE, ThemeCodebook, CodebookError
from cimstats.integrate.meta import (
    CONVERGENCE_CODES,
    combine_convergence,
    normalise_verdict,
    suggest_meta_inferences,
)
from cimstats.integrate.privacy import pseudonymise, suppress_small_counts, truncate_quote
from cimstats.render import Cell, Footnote, NumberFormat, Row, TableSpec, spreadsheet_text
from cimstats.integrate.excerpts import read_excerpts
from cimstats.render import render
from cimstats.render import to_docx
from cimstats.render import to_html
from cimstats.render import to_latex
from cimstats.render import to_markdown
from cimstats.render import to_text
from cimstats.render import to_xlsx

__all__ = ["JointDisplay", "joint_display", "DISPLAY_KINDS", "MECHANISM_TABLE_COLUMNS", "RESULTS_SCHEMA",
           "results_schema", "validate_mechanism_table"]

DISPLAY_KINDS = ("side_by_side", "statistics_by_theme", "themes_by_group", "convergence", "case_oriented")
_KIND_SYNONYMS = {
    "side_by_side": "side_by_side", "side-by-side": "side_by_side", "sidebyside": "side_by_side",
    "statistics_by_theme": "statistics_by_theme", "statistics-by-theme": "statistics_by_theme",
    "stats_by_theme": "statistics_by_theme",
    "themes_by_group": "themes_by_group", "themes-by-group": "themes_by_group",
    "themes_by_quantitative_group": "themes_by_group",
    "convergence": "convergence", "convergence_matrix": "convergence", "convergence_coding_matrix": "convergence",
    "triangulation": "convergence",
    "case_oriented": "case_oriented", "case-oriented": "case_oriented", "cases": "case_oriented",
}
#: the results frame a joint display takes: column -> (type, required, allowed values, meaning)
RESULTS_SCHEMA = {
    "hypothesis_id": ("text", True, "unique, non-empty", "the hypothesis id (H1, NAV1...)"),
    "mechanism": ("text", True, "non-empty", "mechanism id or name (navigation, collective_efficacy...)"),
    "verdict": ("text", True, "supported, not supported, contrary, not testable (empty = not testable)",
                "what the quantitative test concluded"),
    "statement": ("text", False, "any", "the hypothesis in words"),
    "estimate": ("number", False, "finite number", "point estimate of the estimand"),
    "ci_lower": ("number", False, "finite number", "lower confidence limit"),
    "ci_upper": ("number", False, "finite number", "upper confidence limit"),
    "p_value": ("number", False, "0 to 1", "p-value"),
    "p_adjusted": ("number", False, "0 to 1", "multiplicity-adjusted p-value (shown instead of p)"),
    "model": ("text", False, "any", "model label (LMM, binary GLMM, SEM...)"),
    "n": ("whole number", False, ">= 0", "observations used"),
    "verdict_reason": ("text", False, "any", "why the verdict was reached (`reason` accepted)"),
    "theme_ids": ("text or list", False, "theme ids separated by ; or ,", "linked themes"),
    "estimand": ("text", False, "any", "what the estimate is (indirect effect, OR...)"),
    "effect_label": ("text", False, "any", "short prefix for the estimate (β, OR)"),
    "element": ("text", False, "any", "element of the mechanism (timing, trust, legitimising...)"),
    "template": ("text", False, "any; invariance marks a measurement check", "model template"),
    "expected": ("text", False, "any; holds marks a measurement check", "expected direction"),
    "theme_direction": ("text", False, "supports, contradicts, mixed, none, or `T1: supports; T2: mixed`",
                        "expected direction of the linked themes for this hypothesis"),
    "theme_directions": ("mapping or text", False, "dict theme id -> direction, or `T1: supports; T2: mixed`",
                         "expected direction per linked theme for this hypothesis"),
}
MECHANISM_TABLE_COLUMNS = {
    "required": [c for c, v in RESULTS_SCHEMA.items() if v[1]],
    "optional": ["statement", "estimate", "ci_lower", "ci_upper", "p_value", "p_adjusted", "model", "n",
                 "verdict_reason", "theme_ids", "estimand", "effect_label", "element", "template", "expected"],
}
_NUMERIC = ("estimate", "ci_lower", "ci_upper", "p_value", "p_adjusted", "n")


def results_schema():
    """The results-frame schema as a table: ``column, type, required, allowed, meaning``.

    Examples
    --------
    >>> results_schema().query("required")["column"].tolist()
    ['hypothesis_id', 'mechanism', 'verdict']
    """
    import pandas as pd

    return pd.DataFrame([(c, *v) for c, v in RESULTS_SCHEMA.items()],
                        columns=["column", "type", "required", "allowed", "meaning"])


# ------------------------------------------------------------------ the result
@dataclass(frozen=True)
class JointDisplay:
    """A joint display: its spec (inspectable rows) and the table to render.

    Attributes
    ----------
    kind : str
        One of :data:`DISPLAY_KINDS`.
    spec : pandas.DataFrame
        The joint-display spec: one row per display row with structured
        fields (ids, numbers, chosen quotes, meta-inferences), i.e. what the
        table shows before formatting.
    table : cimstats.render.TableSpec
        The formatted table every renderer accepts.
    meta_inferences : pandas.DataFrame or None
        Per hypothesis-theme pairing: ``hypothesis_id, theme_id, link``
        (``mechanism table``, ``codebook`` or ``shared mechanism``),
        ``verdict, theme_direction, direction_source`` (``hypothesis``,
        ``theme`` or ``assumed``), ``direction_stated, meta_inference,
        suggested, status`` (``suggested, needs review``, ``confirmed`` or
        ``overridden``), ``convergence, decided_by`` (``rule:<id>`` or a
        person), ``reviewer, review_date, review_reason`` and ``rationale``
        (side-by-side and convergence displays).
    summary_counts : dict
        Convergence display: count per category.
    suppression : object or None
        The small-cell decision (themes-by-group display).
    options : dict
        The arguments that built it, and what was set aside
        (``measurement_checks``: hypotheses not linked to any theme).
    excerpt_note : str
        The invented-excerpt note every export carries (empty for real
        excerpts).
    agreement : pandas.DataFrame or None
        Convergence display: prominence and coder agreement per theme.
    """

    kind: str
    spec: Any
    table: TableSpec
    meta_inferences: Any = None
    summary_counts: dict = field(default_factory=dict)
    suppression: Any = None
    options: dict = field(default_factory=dict)
    excerpt_note: str = ""
    agreement: Any = None

    def to_frame(self):
        """The joint-display spec (a copy)."""
        return self.spec.copy()

    def render(self, path, **options):
        """Write the display; the format follows the suffix (.docx, .xlsx, .html, .tex, .md, .txt, .csv)."""
        from pathlib import Path

        if str(options.get("format") or Path(path).suffix).lower().lstrip(".") == "csv":
            return self.to_csv(path)
        return render(self.table, path, **options)

    def to_csv(self, path=None):
        """The table as CSV: one line per row (cell text), then its notes (``row_role`` = ``note``).

        Cells that a spreadsheet would run as a formula are prefixed with an
        apostrophe. Returns the text when ``path`` is None, else the path.
        """
        import pandas as pd
        from pathlib import Path


        frame = self.table.to_frame()
        notes = [n for n in self.table.notes if n] + [f"{f.marker} {f.text}" for f in self.table.footnotes]
        extra = pd.DataFrame([["note", n] + [""] * (frame.shape[1] - 2) for n in notes], columns=frame.columns)
        frame = pd.concat([frame, extra], ignore_index=True) if len(extra) else frame
        frame = frame.map(lambda v: spreadsheet_text(v) if isinstance(v, str) else v) if hasattr(frame, "map") \
            else frame.applymap(lambda v: spreadsheet_text(v) if isinstance(v, str) else v)
        text = frame.to_csv(index=False)
        if path is None:
            return text
        atomic_write(path, text, error=RenderError)
        return Path(path)

    def to_html(self, path=None, **kw):

        return to_html(self.table, path, **kw)

    def to_latex(self, path=None, **kw):

        return to_latex(self.table, path, **kw)

    def to_markdown(self, path=None):

        return to_markdown(self.table, path)

    def to_text(self, path=None, **kw):

        return to_text(self.table, path, **kw)

    def to_docx(self, path=None):

        return to_docx(self.table, path)

    def to_xlsx(self, path=None, **kw):

        return to_xlsx(self.table, path, **kw)

    def _repr_html_(self) -> str:  # pragma: no cover - notebooks
        return self.to_html(standalone=False)

    def __str__(self) -> str:
        return self.to_text()


# ---------------------------------------------------------------- validation
def _split_ids(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, float):
        return [] if v != v else [str(v)]
    if isinstance(v, str):
        return [p.strip() for p in re.split(r"[;,]", v) if p.strip()]
    try:
        return [str(x).strip() for x in v if x is not None and str(x).strip()]
    except TypeError:
        return [str(v)]


def _parse_directions(v, *, column: str, row: int, themes: list[str]) -> dict[str, str]:
    """A hypothesis row's theme directions: one word for all its themes, ``T1: supports; T2: mixed`` or a dict."""

    def norm(d, theme=None) -> str:
        key = str(d).strip().lower()
        if key not in _DIRECTION_SYNONYMS:
            where = f" for theme {theme!r}" if theme else ""
            raise CodebookError(f"Column {column!r} row {row} gives direction {d!r}{where}; expected supports, "
                                "contradicts, mixed or none.")
        return _DIRECTION_SYNONYMS[key]

    if _missing(v) or (isinstance(v, str) and not v.strip()):
        return {}
    if isinstance(v, Mapping):
        return {str(k).strip(): norm(d, k) for k, d in v.items()}
    text = str(v)
    if ":" not in text and "=" not in text:
        d = norm(text)
        return {t: d for t in themes}
    out = {}
    for part in re.split(r"[;,]", text):
        if not part.strip():
            continue
        m = re.match(r"^\s*([^:=]+?)\s*[:=]\s*(.*?)\s*$", part)
        if m is None:
            raise CodebookError(f"Column {column!r} row {row} holds {part.strip()!r}; expected `theme: direction` "
                                "pairs separated by ;.")
        out[m.group(1)] = norm(m.group(2), m.group(1))
    return out


def validate_mechanism_table(results):
    """Check a results frame against :data:`RESULTS_SCHEMA` and standardise it.

    Returns a copy with every optional column present (missing values where
    absent), ``verdict`` normalised to the four verdicts, ``theme_ids`` as a
    ``;``-separated string and the per-theme directions of each hypothesis
    in ``theme_directions`` (a dict per row).

    Raises
    ------
    cimstats.integrate.CodebookError
        When required columns are missing, ids repeat or are empty, numbers
        are not numeric or out of range, a verdict or direction is unknown
        (all listed in ``report``; each message names the column and row).

    Examples
    --------
    >>> import pandas as pd
    >>> t = validate_mechanism_table(pd.DataFrame({"hypothesis_id": ["H1"], "mechanism": ["navigation"],
    ...                                            "verdict": ["Supported"], "theme_ids": [["T1", "T2"]],
    ...                                            "theme_direction": ["T2: mixed"]}))
    >>> t.loc[0, "verdict"], t.loc[0, "theme_ids"], t.loc[0, "theme_directions"]
    ('supported', 'T1;T2', {'T2': 'mixed'})
    """
    import pandas as pd

    if not isinstance(results, pd.DataFrame):
        if hasattr(results, "table") and isinstance(getattr(results, "table"), pd.DataFrame):
            results = results.table
        elif hasattr(results, "to_frame"):
            results = results.to_frame()
        else:
            raise CodebookError(
                f"The results frame must be a DataFrame (one row per hypothesis); got {type(results).__name__}."
            )
    df = results.copy()
    df.columns = [str(c) for c in df.columns]
    if "verdict_reason" not in df.columns and "reason" in df.columns:
        df = df.rename(columns={"reason": "verdict_reason"})
    if "hypothesis_id" not in df.columns and "hypothesis" in df.columns:
        df = df.rename(columns={"hypothesis": "hypothesis_id"})
    report = Report()
    missing = [c for c in MECHANISM_TABLE_COLUMNS["required"] if c not in df.columns]
    if missing:
        raise CodebookError(
            f"The results frame lacks column(s) {', '.join(missing)}; expected at least "
            f"{', '.join(MECHANISM_TABLE_COLUMNS['required'])} (see cimstats.integrate.results_schema())."
        )
    blank = df["hypothesis_id"].isna() | (df["hypothesis_id"].astype(str).str.strip() == "")
    if blank.any():
        report.add("J005", f"Column 'hypothesis_id' is empty in row {int(blank.to_numpy().nonzero()[0][0]) + 1}.",
                   column="hypothesis_id", remedy="Give every hypothesis an id.")
    dup = df["hypothesis_id"].astype(str).duplicated() & ~blank
    if dup.any():
        report.add("J001", f"Column 'hypothesis_id' repeats {df.loc[dup, 'hypothesis_id'].iloc[0]!r} "
                   f"(row {int(dup.to_numpy().nonzero()[0][0]) + 1}).",
                   column="hypothesis_id", remedy="Keep one row per hypothesis.")
    blank = df["mechanism"].isna() | (df["mechanism"].astype(str).str.strip() == "")
    if blank.any():
        report.add("J006", f"Column 'mechanism' is empty in row {int(blank.to_numpy().nonzero()[0][0]) + 1}.",
                   column="mechanism", remedy="Name the mechanism each hypothesis tests.")
    for c in MECHANISM_TABLE_COLUMNS["optional"]:
        if c not in df.columns:
            df[c] = None
    for c in _NUMERIC:
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            report.add("J002", f"Column {c!r} holds true/false values; expected numbers.", column=c)
            continue
        conv = pd.to_numeric(col, errors="coerce")
        bad = conv.isna() & col.notna() & ~col.astype(str).str.strip().isin(["", "nan", "NaN", "<NA>"])
        if bad.any():
            report.add("J002", f"Column {c!r} row {int(bad.to_numpy().nonzero()[0][0]) + 1} holds "
                       f"{col[bad].iloc[0]!r}, which is not a number.", column=c)
        v = conv.astype("Float64")
        inf = v.notna() & (v.abs() == float("inf"))
        if inf.any():
            report.add("J002", f"Column {c!r} row {int(inf.to_numpy().nonzero()[0][0]) + 1} is infinite.", column=c)
            continue
        if c == "n":
            frac = v.notna() & ((v < 0) | (v != v.round()))
            if frac.any():
                report.add("J007", f"Column 'n' row {int(frac.to_numpy().nonzero()[0][0]) + 1} holds "
                           f"{v[frac].iloc[0]}, which is not a whole number >= 0.", column="n")
                continue
            df[c] = v.round().astype("Int64")
        else:
            df[c] = v
    for c in ("p_value", "p_adjusted"):
        if str(df[c].dtype) != "Float64":
            continue
        out = df[c].notna() & ((df[c] < 0) | (df[c] > 1))
        if out.any():
            report.add("J003", f"Column {c!r} row {int(out.to_numpy().nonzero()[0][0]) + 1} holds "
                       f"{df.loc[out, c].iloc[0]}, outside 0 to 1.", column=c)
    verdicts = []
    for k, v in enumerate(df["verdict"]):
        try:
            verdicts.append(normalise_verdict(v))
        except CodebookError:
            report.add("J004", f"Column 'verdict' row {k + 1} holds {v!r}; expected supported, not supported, "
                       "contrary or not testable.", row=k + 1, column="verdict")
            verdicts.append(None)
    df["theme_ids"] = [";".join(_split_ids(v)) for v in df["theme_ids"]]
    dirs = []
    for k, r in enumerate(df.to_dict("records")):
        d: dict[str, str] = {}
        for c in ("theme_direction", "theme_directions"):
            if c in df.columns:
                try:
                    d.update(_parse_directions(r[c], column=c, row=k + 1, themes=_split_ids(r["theme_ids"])))
                except CodebookError as exc:
                    report.add("J008", str(exc), row=k + 1, column=c)
        dirs.append(d)
    if report.has_errors:
        raise CodebookError(f"The results frame has {len(report.errors)} problem(s); see `.report` "
                            f"(first: {report.errors[0].message})", report=report)
    df["verdict"] = verdicts
    df["theme_directions"] = dirs
    df["hypothesis_id"] = df["hypothesis_id"].astype(str)
    df["mechanism"] = df["mechanism"].astype(str)
    return df.reset_index(drop=True)


# ------------------------------------------------------------------- helpers
def _missing(v) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd

        r = pd.isna(v)
        return bool(r) if not hasattr(r, "__len__") else False
    except (TypeError, ValueError):
        return False


def _quote_fn(names, patterns, max_chars, max_words):
    def q(text: str, case_id=None) -> str:
        if _missing(text):
            return ""
        t = pseudonymise(str(text), names or (), patterns=patterns)
        t = truncate_quote(t, max_chars=max_chars, max_words=max_words)
        out = f"\u201c{t}\u201d"
        if not _missing(case_id) and str(case_id):
            out += f" ({case_id})"
        return out

    return q


def _result_text(r, fmt: NumberFormat) -> str:
    if _missing(r["estimate"]):
        head = "No estimate"
    else:
        lab = "" if _missing(r.get("effect_label")) else f"{r['effect_label']} = "
        head = lab + fmt.estimate_ci(r["estimate"], r["ci_lower"], r["ci_upper"])
    p = r["p_adjusted"] if not _missing(r.get("p_adjusted")) else r["p_value"]
    parts = [head]
    if not _missing(p):
        pt = fmt.p(p)
        sym = "p" if _missing(r.get("p_adjusted")) else "adjusted p"
        parts.append(f"{sym} {pt}" if pt[:1] in "<\u2265>" else f"{sym} = {pt}")
    line2 = []
    if not _missing(r["model"]):
        line2.append(str(r["model"]))
    if not _missing(r["n"]):
        line2.append(f"n = {fmt.count(r['n'])}")
    text = "; ".join(parts)
    if line2:
        text += "\n" + ", ".join(line2)
    return text


def _norm_mech(x) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(x).strip().lower()).strip("_")


def _same_mechanism(a, b, codebook) -> bool:
    """Whether two mechanism labels (ids or names, e.g. 'navigation' and 'Network navigation') agree."""

    def aliases(x) -> set[str]:
        n = _norm_mech(x)
        out = {n} if n else set()
        if n and codebook is not None and not codebook.mechanisms.empty:
            for mid, mname in zip(codebook.mechanisms["mechanism_id"], codebook.mechanisms["name"]):
                ids = {_norm_mech(mid), _norm_mech(mname)}
                if n in ids:
                    out |= ids
        return out

    A, B = aliases(a), aliases(b)
    return bool(A & B) or any(x.endswith("_" + y) or y.endswith("_" + x) for x in A for y in B)


def _links(results, codebook: ThemeCodebook | None, link_by_mechanism: bool = True) -> "Any":
    """Hypothesis-theme links with where each came from (``mechanism table``, ``codebook`` or ``shared mechanism``)."""
    import pandas as pd

    rows = []
    for r in results.itertuples(index=False):
        for t in _split_ids(r.theme_ids):
            rows.append((r.hypothesis_id, t, "mechanism table"))
    if codebook is not None:
        lk = codebook.links
        for r in lk.loc[lk["target_type"] == "hypothesis"].itertuples(index=False):
            if r.target_id in set(results["hypothesis_id"]):
                rows.append((r.target_id, r.theme_id, "codebook"))
    if link_by_mechanism and codebook is not None:
        linked = {h for h, _, _ in rows}
        top = codebook.themes.loc[codebook.themes["level"] == 0]
        for r in results.itertuples(index=False):
            if r.hypothesis_id in linked:
                continue
            for tid, mechs in zip(top["theme_id"], top["mechanism"]):
                if any(_same_mechanism(r.mechanism, m, codebook) for m in _split_ids(mechs)):
                    rows.append((r.hypothesis_id, tid, "shared mechanism"))
    out = pd.DataFrame(rows, columns=["hypothesis_id", "theme_id", "link"])
    return out.drop_duplicates(subset=["hypothesis_id", "theme_id"], ignore_index=True)


def _direction_of(info: dict, default: str) -> str:
    d = info.get("direction")
    return default if _missing(d) or d is None else str(d)


def _theme_info(codebook: ThemeCodebook | None, theme_id: str) -> dict:
    blank = {"theme_id": theme_id, "name": theme_id, "definition": None, "direction": None, "mechanism": None,
             "source_id": None, "source_wording": None}
    if codebook is None:
        return blank
    hit = codebook.themes.loc[codebook.themes["theme_id"] == theme_id]
    if hit.empty:
        return blank
    return hit.iloc[0].to_dict()


def _finding(codebook, info: dict) -> tuple[str, str]:
    """(whose finding, the text): a cited source's own words or definition, else this study's definition."""
    src = info.get("source_id")
    who = codebook.source_label(src) if codebook is not None else "This study"
    wording = info.get("source_wording")
    text = wording if not _missing(wording) and str(wording).strip() else info.get("definition")
    if _missing(text) or not str(text).strip():
        return who, ""
    text = str(text).strip()
    return who, (f"\u201c{text}\u201d" if not _missing(wording) and str(wording).strip() else text)


def _excerpt_note(codebook, excerpts) -> str:
    """The invented-excerpt note when the codebook or the excerpts say the excerpts are invented."""
    if codebook is not None and getattr(codebook, "invented_excerpts", False):
        return codebook.excerpt_note
    if excerpts is not None and "invented" in excerpts.columns:
        flag = excerpts["invented"].astype("string").str.strip().str.lower().isin(["true", "1", "yes"])
        if bool(flag.any()):

            return INVENTED_NOTE
    return ""


class _QuotePicker:
    """Chooses exemplar quotes: same theme (and the hypothesis's element when it has one), never the same quote twice.

    The pool is the codebook's exemplars followed by the coded excerpts
    (a text present in both is one quote). A quote used in one row of a
    display is not offered again in a later row.
    """

    def __init__(self, codebook, excerpts):
        import pandas as pd

        frames = []
        if codebook is not None and len(codebook.exemplars):
            frames.append(codebook.exemplars[["text", "case_id", "theme_id", "element", "mechanism"]]
                          .assign(_from="codebook"))
        if excerpts is not None and len(excerpts):
            ex = excerpts.copy()
            for c in ("element", "mechanism"):
                if c not in ex.columns:
                    ex[c] = None
            frames.append(ex[["text", "case_id", "theme_id", "element", "mechanism"]].assign(_from="excerpts"))
        cols = ["text", "case_id", "theme_id", "element", "mechanism", "_from"]
        pool = pd.concat([f.astype(object) for f in frames], ignore_index=True) if frames else pd.DataFrame(columns=cols)
        pool = pool.loc[pool["text"].notna() & (pool["text"].astype(str).str.strip() != "")]
        self.pool = pool.reset_index(drop=True)  # a text in both tables is one quote: see pick()
        self.used: set[str] = set()

    def pick(self, theme_ids, *, element=None, mechanism=None, codebook=None, cases_subset=None, k: int = 1,
             excerpts_only: bool = False) -> list[tuple[str, Any]]:
        """Up to k (text, case_id) pairs: tagged with the hypothesis's element first, then its mechanism."""
        ids = {theme_ids} if isinstance(theme_ids, str) else set(theme_ids)
        c = self.pool.loc[self.pool["theme_id"].astype(str).isin(ids)]
        if excerpts_only:
            c = c.loc[c["_from"] == "excerpts"]
        if cases_subset is not None:
            c = c.loc[c["case_id"].isin(list(cases_subset))]
        c = c.loc[~c["text"].astype(str).isin(self.used)]
        has_el = not _missing(element) and bool(str(element).strip())
        has_m = not _missing(mechanism) and bool(str(mechanism).strip())
        if has_el or has_m:
            el = (c["element"].astype(str) == str(element)) if has_el else c["element"].map(lambda _: False)
            me = c["mechanism"].map(lambda x: has_m and not _missing(x) and _same_mechanism(x, mechanism, codebook))
            rank = [0 if a else (1 if b else 2) for a, b in zip(el, me)]
            c = c.assign(_rank=rank).sort_values("_rank", kind="stable")
        out = []
        for r in c.itertuples(index=False):
            if len(out) >= k:
                break
            if str(r.text) in self.used:
                continue
            out.append((r.text, r.case_id))
            self.used.add(str(r.text))
        return out


def _label_mechanism(codebook, mech: str) -> str:
    if codebook is not None and not codebook.mechanisms.empty:
        hit = codebook.mechanisms.loc[codebook.mechanisms["mechanism_id"] == mech, "name"]
        if len(hit):
            return str(hit.iloc[0])
    return mech


def _is_measurement_check(r) -> bool:
    """A hypothesis that checks measurement (invariance of a scale), not a mechanism."""
    tpl = "" if _missing(r.get("template")) else str(r.get("template")).strip().lower()
    exp = "" if _missing(r.get("expected")) else str(r.get("expected")).strip().lower()
    return tpl == "invariance" or exp == "holds"


def _drop_measurement_checks(res):
    """The results without measurement checks, and a note naming those set aside (or None)."""
    mask = [_is_measurement_check(r) for r in res.to_dict("records")]
    import numpy as np

    mask = np.asarray(mask, dtype=bool) if len(mask) else np.zeros(0, bool)
    dropped = res.loc[mask, "hypothesis_id"].tolist()
    if not dropped:
        return res, [], None
    note = (f"{', '.join(dropped)} {'is a measurement check' if len(dropped) == 1 else 'are measurement checks'} "
            "(measurement invariance of a scale), not a test of a mechanism: not linked to any theme and not shown.")
    return res.loc[~mask].reset_index(drop=True), dropped, note


def _hypothesis_directions(results, hypotheses) -> dict[str, dict[str, str]]:
    """Per-hypothesis theme directions from hypothesis objects (``getattr(h, "theme_directions", {})``)."""
    import pandas as pd

    objs = hypotheses
    if objs is None:  # a MechanismResult fitted in this session carries its plan
        plan = getattr(results, "plan", None)
        listing = getattr(plan, "hypothesis_list", None)
        if callable(listing):
            objs = listing()
        elif isinstance(getattr(plan, "hypotheses", None), (list, tuple)):
            objs = plan.hypotheses
    out: dict[str, dict[str, str]] = {}
    if objs is None:
        return out
    if isinstance(objs, pd.DataFrame):
        if "theme_directions" not in objs.columns:
            return out
        objs = [dict(r) for r in objs.to_dict("records")]
    elif isinstance(objs, Mapping):
        objs = [dict(v, hypothesis_id=k) if isinstance(v, Mapping) else v for k, v in objs.items()]
    for h in objs:
        get = (lambda k, d=None: h.get(k, d)) if isinstance(h, Mapping) else (lambda k, d=None: getattr(h, k, d))
        hid = get("hypothesis_id") or get("id")
        dirs = get("theme_directions", {}) or {}
        if hid is None or not isinstance(dirs, Mapping) or not dirs:
            continue
        clean = {}
        for t, d in dirs.items():
            key = str(d).strip().lower()
            if key not in _DIRECTION_SYNONYMS:
                raise CodebookError(f"Hypothesis {hid!r} gives theme {t!r} the direction {d!r}; expected supports, "
                                    "contradicts, mixed or none.")
            clean[str(t)] = _DIRECTION_SYNONYMS[key]
        out[str(hid)] = clean
    return out


# --------------------------------------------------------------- the builder
def joint_display(
    results=None,
    *,
    kind: str,
    codebook: ThemeCodebook | None = None,
    excerpts=None,
    cases=None,
    id: str = "patient_id",
    group_by: str | None = None,
    group_labels: Mapping[Any, str] | None = None,
    group_title: str | None = None,
    profile: Mapping[str, str] | Sequence[str] | None = None,
    themes: Sequence[str] | None = None,
    rules=None,
    overrides=None,
    reviews=None,
    hypotheses=None,
    expect: Mapping[str, Mapping[str, str]] | None = None,
    coders: Sequence[str] | None = None,
    agreement_unit: str = "case",
    number_format: NumberFormat | str | None = None,
    threshold: int = 5,
    names: Mapping[str, str] | Iterable[str] | None = None,
    identifier_patterns: Mapping[str, str] | None = None,
    max_quote_chars: int | None = 200,
    max_quote_words: int | None = None,
    quotes_per_cell: int = 1,
    title: str | None = None,
    number: str | int | None = None,
    orientation: str | None = None,
    link_by_mechanism: bool = True,
    default_direction: str = "none",
) -> JointDisplay:
    """Build a joint display of quantitative results and qualitative themes.

    Parameters
    ----------
    results : pandas.DataFrame or MechanismResult, optional
        The results frame (one row per hypothesis; see
        :data:`RESULTS_SCHEMA` and :func:`results_schema`). Needed by
        ``side_by_side``, ``statistics_by_theme`` and ``convergence``.
        Measurement checks (``template`` invariance or ``expected`` holds)
        are set aside with a note naming them: they are never linked to a
        theme.
    kind : str
        ``"side_by_side"``: mechanism | hypothesis | quantitative result |
        theme | whose finding and an exemplar quote | meta-inference;
        ``"statistics_by_theme"``: results of the hypotheses linked to each
        theme, grouped by theme;
        ``"themes_by_group"``: prevalence of each theme (cases coded) across
        groups of a quantitative variable, with an exemplar quote per cell;
        ``"convergence"``: convergence coding matrix per theme (confirmation,
        expansion, discordance, partial agreement, silence) with prominence,
        coder agreement and summary counts;
        ``"case_oriented"``: one row per case with its quantitative
        profile, coded themes, a quote and a flag where they conflict.
    codebook : ThemeCodebook, optional
        Themes (names, definitions, sources, directions, exemplars, links).
    excerpts : pandas.DataFrame, optional
        Coded excerpts (``case_id, theme_id, text``...; see
        :func:`read_excerpts`). Needed by ``themes_by_group`` and
        ``case_oriented``; used for quotes, prominence and coder agreement
        elsewhere.
    cases : pandas.DataFrame, optional
        One row per interviewed case with the id column ``id`` and the
        quantitative variables (``group_by``, ``profile``). The denominator
        of theme prevalence is the number of cases in each group.
    id : str
        Case id column of ``cases`` (default ``patient_id``).
    group_by : str
        ``themes_by_group``: the grouping column of ``cases`` (e.g.
        ``deprivation_q``).
    group_labels : mapping, optional
        Group value -> label.
    group_title : str, optional
        Header over the group columns (default ``group_by``).
    profile : mapping or sequence, optional
        ``case_oriented``: columns of ``cases`` to show (``column -> label``).
        Columns of whole numbers are shown as integers.
    themes : sequence of str, optional
        Themes to show, in order (default: every theme in the codebook,
        else in the excerpts).
    rules, overrides :
        Meta-inference rule table and decisions by people (see
        :func:`suggest_meta_inferences`).
    reviews : path, DataFrame or list of dict, optional
        The review file (see :func:`read_reviews`): until a named person
        confirms or overrides it, every rule's suggestion is shown as
        "suggested, needs review".
    hypotheses : iterable, optional
        Hypothesis objects (or dicts) whose ``theme_directions`` (theme id ->
        direction) set the direction expected of each linked theme for that
        hypothesis; by default the ``plan`` of a ``MechanismResult`` is
        read. A ``theme_direction(s)`` column of ``results`` does the same.
        Pairs without one take the theme's own direction.
    expect : mapping, optional
        ``case_oriented``: theme id -> ``{column: "high" or "low"}``: what a
        quote coded with the theme suggests about a survey value. A case is
        flagged when its value lies on the other side of the median of the
        cases shown (cimstats's own rule).
    coders : pair of str, optional
        The two coders to compare (see :func:`coder_agreement`).
    agreement_unit : {"case", "source", "excerpt"}
        Unit of coder agreement (default ``case``).
    number_format : NumberFormat or preset name, optional
        Journal convention for numbers (default :class:`NumberFormat`).
    threshold : int
        Small-cell threshold: counts from 1 to ``threshold - 1`` are
        suppressed (default 5); ``threshold=1`` turns suppression off.
    names : mapping or iterable, optional
        Names/identifiers to replace in quotes (see :func:`pseudonymise`).
    identifier_patterns : mapping, optional
        Regular expressions for further identifiers in quotes.
    max_quote_chars, max_quote_words : int, optional
        Quote truncation at a word boundary (ellipsis added).
    quotes_per_cell : int
        Exemplar quotes per cell (default 1).
    title, number, orientation :
        Table title, number and page orientation (defaults by kind).
    link_by_mechanism : bool
        Link a hypothesis whose ``theme_ids`` are empty (and that the
        codebook does not name) to the top-level themes serving the same
        mechanism (matching ids or names, e.g. ``navigation`` and ``Network
        navigation``); default True. The source of every link is kept in
        ``meta_inferences.link``.
    default_direction : str
        Direction assumed for pairs whose hypothesis and theme state none
        (``supports``, ``contradicts``, ``mixed`` or ``none``, the default,
        which makes the rules suggest silence). The assumption is written in
        the table notes.

    Returns
    -------
    JointDisplay
        Built from invented excerpts (the codebook says
        ``invented_excerpts: true``, or the excerpts have a true
        ``invented`` column), every export carries the invented-excerpt note.

    Raises
    ------
    cimstats.integrate.CodebookError
        When an input the kind needs is missing or malformed.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.integrate import joint_display, theme_codebook_from_dict
    >>> mech = pd.DataFrame({"hypothesis_id": ["H1"], "mechanism": ["navigation"], "statement": ["Weak ties aid self-management"],
    ...                      "estimate": [0.21], "ci_lower": [0.05], "ci_upper": [0.37], "p_value": [0.009],
    ...                      "model": ["LMM"], "n": [1480], "verdict": ["supported"], "theme_ids": ["T1"]})
    >>> cb = theme_codebook_from_dict({"themes": [{"id": "T1", "name": "Finding the right people", "direction": "supports",
    ...        "exemplars": [{"text": "The walking group put me onto the dietitian.", "participant": "EN-0012"}]}]})
    >>> jd = joint_display(mech, kind="side_by_side", codebook=cb)
    >>> jd.meta_inferences[["hypothesis_id", "theme_id", "meta_inference", "status"]].values.tolist()
    [['H1', 'T1', 'confirmation', 'suggested, needs review']]
    >>> print(jd.table.grid()[2][2].text)
    0.21 [0.05, 0.37]; p = 0.009
    LMM, n = 1,480
    >>> jd.table.grid()[2][4].text
    'This study: “The walking group put me onto the dietitian.” (EN-0012)'
    """
    k = _KIND_SYNONYMS.get(str(kind).strip().lower().replace(" ", "_"))
    if k is None:
        raise CodebookError(f"`kind={kind!r}` is not a joint-display kind; expected one of {', '.join(DISPLAY_KINDS)}.")
    if isinstance(number_format, str):
        number_format = NumberFormat.preset(number_format)
    fmt = number_format or NumberFormat()
    if max_quote_chars is not None and (isinstance(max_quote_chars, bool) or not isinstance(max_quote_chars, int)
                                        or max_quote_chars < 10):
        raise CodebookError(f"`max_quote_chars={max_quote_chars!r}` must be a whole number of at least 10 (or None).")
    quote = _quote_fn(names, identifier_patterns, max_quote_chars, max_quote_words)
    opts = dict(kind=k, id=id, group_by=group_by, threshold=threshold, max_quote_chars=max_quote_chars,
                max_quote_words=max_quote_words, quotes_per_cell=quotes_per_cell, themes=themes)
    if excerpts is not None:
        excerpts = read_excerpts(excerpts)
    if default_direction not in ("supports", "contradicts", "mixed", "none"):
        raise CodebookError(f"`default_direction={default_direction!r}` is not known; expected supports, "
                            "contradicts, mixed or none.")
    note = _excerpt_note(codebook, excerpts)
    common = dict(codebook=codebook, excerpts=excerpts, fmt=fmt, quote=quote, k_quotes=quotes_per_cell,
                  title=title, number=number, orientation=orientation, opts=opts, lbm=link_by_mechanism,
                  ddir=default_direction, picker=_QuotePicker(codebook, excerpts), note=note)
    if k in ("side_by_side", "statistics_by_theme", "convergence"):
        if results is None:
            raise CodebookError(f"`kind={k!r}` needs the mechanism table (the results frame) as the first "
                                 "argument `results`.")
        hyp_dirs = _hypothesis_directions(results, hypotheses)
        res = validate_mechanism_table(results)
        res["theme_directions"] = [dict(hyp_dirs.get(h, {}), **d) for h, d in
                                   zip(res["hypothesis_id"], res["theme_directions"])]
        res, dropped, mnote = _drop_measurement_checks(res)
        opts["measurement_checks"] = dropped
        if res.empty:
            raise CodebookError(f"Every hypothesis of the results frame is a measurement check ({', '.join(dropped)}); "
                                "a joint display links mechanism hypotheses to themes.")
        common["extra_notes"] = [mnote] if mnote else []
        if k == "side_by_side":
            jd = _side_by_side(res, rules=rules, overrides=overrides, reviews=reviews, **common)
        elif k == "statistics_by_theme":
            jd = _statistics_by_theme(res, themes=themes, **common)
        else:
            jd = _convergence(res, themes=themes, rules=rules, overrides=overrides, reviews=reviews, coders=coders,
                              unit=agreement_unit, **common)
        return jd
    if excerpts is None or cases is None:
        raise CodebookError(f"`kind={k!r}` needs `excerpts=` (coded excerpts) and `cases=` (one row per case).")
    if id not in cases.columns:
        raise CodebookError(f"`id={id!r}` is not a column of `cases`; available: {', '.join(map(str, cases.columns))}.")
    if cases[id].duplicated().any():
        raise CodebookError(f"`cases` repeats values of {id!r}; keep one row per case (e.g. the baseline wave).")
    common["extra_notes"] = []
    if k == "themes_by_group":
        if group_by is None or group_by not in cases.columns:
            raise CodebookError(f"`group_by={group_by!r}` must name a column of `cases` for kind 'themes_by_group'.")
        return _themes_by_group(cases, id=id, group_by=group_by, group_labels=group_labels, group_title=group_title,
                                themes=themes, threshold=threshold, **common)
    return _case_oriented(cases, id=id, profile=profile, themes=themes, expect=expect, **common)


def _finish_spec(default_title, *, title, number, orientation, default_orientation, note="", notes=(), **kw) -> TableSpec:
    """The table spec; the invented-excerpt note, when there is one, comes first."""
    notes = ((note,) if note else ()) + tuple(n for n in notes if n)
    return TableSpec(title=title or default_title, number=number,
                     orientation=orientation or default_orientation, notes=notes, **kw)


def _who(decided_by: str) -> str:
    return f"rule {decided_by[5:]}" if decided_by.startswith("rule:") else decided_by


def _mi_label(p: Mapping) -> str:
    """The meta-inference cell: suggested ones say so until a named person has reviewed them."""
    mi = str(p["meta_inference"]).capitalize()
    status = p.get("status") or "suggested, needs review"
    if status == "suggested, needs review":
        return f"{mi}: suggested ({_who(p['decided_by'])}), needs review"
    when = "" if _missing(p.get("review_date")) else f", {p['review_date']}"
    if status == "confirmed":
        return f"{mi} (confirmed by {p['decided_by']}{when})"
    return f"{mi} ({p['decided_by']}{when}; rule suggested {p['suggested']})"


_MI_NOTE = ("Meta-inferences after Fetters, Curry and Creswell (2013): confirmation, findings from both types of data "
            "confirm the results of the other; expansion, the findings diverge and expand insights by addressing "
            "different or complementary aspects of the phenomenon; discordance, the findings are inconsistent, "
            "contradict or disagree. Silence (one strand says nothing) is from the triangulation protocol of Farmer "
            "et al. (2006). A meta-inference marked 'suggested, needs review' was proposed by cimstats's rule table "
            "from the hypothesis verdict and the theme's expected direction and has not yet been confirmed or "
            "overridden by a named reviewer.")


def _pairs(res, codebook, lbm=True, ddir="none"):
    import pandas as pd

    links = _links(res, codebook, lbm)
    rows = []
    for r in res.to_dict("records"):
        sub = links.loc[links["hypothesis_id"] == r["hypothesis_id"]]
        pairs = list(zip(sub["theme_id"], sub["link"])) or [(None, None)]
        hd = r.get("theme_directions") or {}
        for t, how in pairs:
            if t is None:
                rows.append({"hypothesis_id": r["hypothesis_id"], "theme_id": None, "link": None,
                             "verdict": r["verdict"], "theme_direction": "none", "direction_source": None,
                             "direction_stated": False, "element": r.get("element")})
                continue
            info = _theme_info(codebook, t)
            if t in hd:
                d, src, stated = hd[t], "hypothesis", True
            elif not _missing(info.get("direction")):
                d, src, stated = str(info["direction"]), "theme", True
            else:
                d, src, stated = ddir, "assumed", False
            rows.append({"hypothesis_id": r["hypothesis_id"], "theme_id": t, "link": how, "verdict": r["verdict"],
                         "theme_direction": d, "direction_source": src, "direction_stated": stated,
                         "element": r.get("element")})
    return pd.DataFrame(rows, columns=["hypothesis_id", "theme_id", "link", "verdict", "theme_direction",
                                       "direction_source", "direction_stated", "element"])


def _assumption_notes(pairs, ddir, lbm) -> list[str]:
    notes = []
    if ddir != "none" and (pairs["theme_id"].notna() & ~pairs["direction_stated"].astype(bool)).any():
        notes.append(f"Themes whose direction neither the hypothesis nor the codebook states were taken to be '{ddir}'.")
    if (pairs["direction_source"] == "hypothesis").any():
        notes.append("Expected directions are set per hypothesis-theme pair where the hypothesis states one, "
                     "otherwise taken from the theme.")
    if lbm and (pairs["link"] == "shared mechanism").any():
        notes.append("Hypotheses without listed themes are linked to the themes of the same mechanism.")
    return notes


def _quote_lines(quote, picked, note, label: bool = True) -> list[str]:
    """Quotes as shown; beside a published finding each says whose it is (this study's, or invented)."""
    if not label:
        return [quote(x, c) for x, c in picked]
    lab = "Invented excerpt" if note else "This study"
    return [f"{lab}: {quote(x, c)}" for x, c in picked]


# ---------------------------------------------------------------- side by side
def _side_by_side(res, *, rules, overrides, reviews, codebook, excerpts, fmt, quote, k_quotes, title, number,
                  orientation, opts, lbm=True, ddir="none", picker=None, note="", extra_notes=()):
    import pandas as pd

    pairs = _pairs(res, codebook, lbm, ddir)
    mi = suggest_meta_inferences(pairs, rules=rules, overrides=overrides, reviews=reviews)
    mech_order = list(dict.fromkeys(res["mechanism"]))
    spec_rows = []
    body: list[Row] = []
    for mech in mech_order:
        sub = res.loc[res["mechanism"] == mech]
        n_mech = int(sum(max(1, int((mi["hypothesis_id"] == h).sum())) for h in sub["hypothesis_id"]))
        first_mech = True
        for r in sub.to_dict("records"):
            m = mi.loc[mi["hypothesis_id"] == r["hypothesis_id"]]
            n_h = len(m)
            for j, p in enumerate(m.to_dict("records")):
                cells: list[Cell] = []
                if first_mech:
                    cells.append(Cell(_label_mechanism(codebook, mech), rowspan=n_mech, bold=True))
                    first_mech = False
                if j == 0:
                    cells.append(Cell(str(r["statement"]) if not _missing(r["statement"]) else r["hypothesis_id"], rowspan=n_h))
                    cells.append(Cell(_result_text(r, fmt), kind="text", rowspan=n_h))
                t = None if _missing(p["theme_id"]) else p["theme_id"]
                if t is None:
                    cells += [Cell("No linked theme", italic=True), Cell("")]
                    quotes, finding, who = [], "", ""
                else:
                    info = _theme_info(codebook, t)
                    who, finding = _finding(codebook, info)
                    quotes = _quote_lines(quote, picker.pick(t, element=r.get("element"), mechanism=r["mechanism"],
                                                             codebook=codebook, k=k_quotes), note)
                    cells.append(Cell(str(info["name"])))
                    lines = ([f"{who}: {finding}"] if finding else []) + quotes
                    cells.append(Cell("\n".join(lines), kind="text"))
                cells.append(Cell(_mi_label(p)))
                body.append(Row(tuple(cells)))
                spec_rows.append({"mechanism": mech, "hypothesis_id": r["hypothesis_id"], "statement": r["statement"],
                                  "estimate": r["estimate"], "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"],
                                  "p_value": r["p_value"], "model": r["model"], "n": r["n"], "verdict": r["verdict"],
                                  "theme_id": t, "finding_by": who, "finding": finding, "quotes": quotes,
                                  "meta_inference": p["meta_inference"], "status": p["status"],
                                  "decided_by": p["decided_by"], "excerpt_note": note})
    header = (
        (Cell("Mechanism", rowspan=2), Cell("Quantitative strand (this study)", colspan=2),
         Cell("Qualitative strand", colspan=2), Cell("Meta-inference", rowspan=2)),
        (Cell("Hypothesis"), Cell("Result"), Cell("Theme"), Cell("Finding (whose) and exemplar quote")),
    )
    notes = ["Result: estimate [95% CI]; p-value; model and number of observations. Each finding names whose it "
             "is: a published source the codebook cites, or this study. Quotes are pseudonymised and may be "
             "shortened (…); a quote is shown once.", _MI_NOTE] + _assumption_notes(pairs, ddir, lbm) + list(extra_notes)
    table = _finish_spec("Joint display of mechanism tests and qualitative themes", title=title, number=number,
                         orientation=orientation, default_orientation="landscape", header=header, body=tuple(body),
                         note=note, notes=notes, column_widths=(1.2, 2, 2, 1.4, 3.5, 1.6))
    return JointDisplay("side_by_side", pd.DataFrame(spec_rows), table, meta_inferences=mi, options=opts,
                        excerpt_note=note)


# -------------------------------------------------------- statistics by theme
def _statistics_by_theme(res, *, themes, codebook, excerpts, fmt, quote, k_quotes, title, number, orientation, opts,
                         lbm=True, ddir="none", picker=None, note="", extra_notes=()):
    import pandas as pd

    links = _links(res, codebook, lbm)
    pairs = _pairs(res, codebook, lbm, ddir).set_index(["hypothesis_id", "theme_id"])
    order = list(themes) if themes is not None else (
        codebook.themes["theme_id"].tolist() if codebook is not None else list(dict.fromkeys(links["theme_id"])))
    header = ((Cell("Hypothesis"), Cell("Mechanism"), Cell("Estimate [95% CI]", kind="ci"), Cell("p", kind="p_value"),
               Cell("n", kind="count"), Cell("Model"), Cell("Verdict (expected direction of theme)")),)
    body: list[Row] = []
    spec_rows = []
    for t in order:
        info = _theme_info(codebook, t)
        hs = links.loc[links["theme_id"] == t, "hypothesis_id"].tolist()
        if not hs and codebook is not None and info.get("level", 0) > 0:
            continue  # sub-themes without links are not listed
        d = info.get("direction")
        dir_txt = "" if _missing(d) or d == "none" else f" (stated direction: {d})"
        who, _ = _finding(codebook, info)
        src = "" if who == "This study" else f" [{who}]"
        body.append(Row.group(f"{info['name']}{dir_txt}{src}", 7))
        if not hs:
            body.append(Row((Cell("No linked hypothesis", italic=True, colspan=7),)))
            spec_rows.append({"theme_id": t, "hypothesis_id": None, "excerpt_note": note})
            continue
        for h in hs:
            r = res.loc[res["hypothesis_id"] == h].iloc[0].to_dict()
            p = r["p_adjusted"] if not _missing(r["p_adjusted"]) else r["p_value"]
            lab = "" if _missing(r.get("effect_label")) else f"{r['effect_label']} = "
            pdir = pairs.loc[(h, t), "theme_direction"] if (h, t) in pairs.index else None
            pdir_txt = "" if pdir is None or pdir == "none" else f" ({pdir})"
            body.append(Row((
                Cell(f"{h}: {r['statement']}" if not _missing(r["statement"]) else h),
                Cell(_label_mechanism(codebook, r["mechanism"])),
                Cell(lab + fmt.estimate_ci(r["estimate"], r["ci_lower"], r["ci_upper"]), kind="ci",
                     value=None if _missing(r["estimate"]) else float(r["estimate"])),
                Cell(fmt.p(p), kind="p_value", value=None if _missing(p) else float(p)),
                Cell(fmt.count(r["n"]), kind="count", value=None if _missing(r["n"]) else int(r["n"])),
                Cell("" if _missing(r["model"]) else str(r["model"])),
                Cell(r["verdict"] + ("" if _missing(r["verdict_reason"]) else f" ({r['verdict_reason']})") + pdir_txt),
            )))
            spec_rows.append({"theme_id": t, "hypothesis_id": h, "estimate": r["estimate"], "ci_lower": r["ci_lower"],
                              "ci_upper": r["ci_upper"], "p_value": p, "n": r["n"], "model": r["model"],
                              "verdict": r["verdict"], "theme_direction": pdir, "excerpt_note": note})
    if not body:
        raise CodebookError("No theme to show: the codebook and the results frame share no theme ids.")
    adj = res["p_adjusted"].notna().any()
    notes = ["Rows are grouped by qualitative theme (with the published source of the theme where the codebook "
             "cites one); each row is a pre-specified hypothesis of this study linked to the theme. "
             "CI = confidence interval." + (" p-values are adjusted for multiple testing." if adj else "")]
    notes += list(extra_notes)
    table = _finish_spec("Quantitative results by qualitative theme", title=title, number=number,
                         orientation=orientation, default_orientation="portrait", header=header, body=tuple(body),
                         note=note, notes=notes)
    return JointDisplay("statistics_by_theme", pd.DataFrame(spec_rows), table, options=opts, excerpt_note=note)


def _descendants(codebook, order) -> dict[str, set[str]]:
    desc: dict[str, set[str]] = {t: {t} for t in order}
    if codebook is not None:
        par = dict(zip(codebook.themes["theme_id"], codebook.themes["parent_id"]))
        for t0 in codebook.themes["theme_id"]:
            p = t0
            while p is not None and not _missing(p):
                if p in desc:
                    desc[p].add(t0)
                p = par.get(p)
    return desc


# ------------------------------------------------------------- convergence
def _convergence(res, *, themes, rules, overrides, reviews, coders, unit, codebook, excerpts, fmt, quote, k_quotes,
                 title, number, orientation, opts, lbm=True, ddir="none", picker=None, note="", extra_notes=()):
    import pandas as pd


    pairs = _pairs(res, codebook, lbm, ddir)
    mi = suggest_meta_inferences(pairs, rules=rules, overrides=overrides, reviews=reviews)
    links = _links(res, codebook, lbm)
    if themes is not None:
        order = list(themes)
    elif codebook is not None:
        linked = set(links["theme_id"])
        order = [t for t, lvl in zip(codebook.themes["theme_id"], codebook.themes["level"]) if lvl == 0 or t in linked]
    else:
        order = list(dict.fromkeys(links["theme_id"]))
    desc = _descendants(codebook, order)
    coded = excerpts
    if coded is None and codebook is not None and len(codebook.exemplars):
        coded = codebook.excerpts()
    prom = theme_prominence(coded, themes=order, descendants=desc).set_index("theme_id") if coded is not None else None
    agree = coder_agreement(coded, coders=coders, unit=unit, themes=order, descendants=desc) \
        if coded is not None else None
    agree_i = agree.set_index("theme_id") if agree is not None else None
    header = ((Cell("Theme"), Cell("Finding (whose)"), Cell("Prominence"), Cell("Coder agreement"),
               Cell("Quantitative findings (this study)"), Cell("Convergence"), Cell("Meta-inference")),)
    body: list[Row] = []
    spec_rows = []
    counts = {c: 0 for c in CONVERGENCE_CODES}
    for t in order:
        info = _theme_info(codebook, t)
        m = mi.loc[mi["theme_id"] == t]
        if m.empty:
            conv, quant, mis, status = "silence", "No linked hypothesis", "silence", "no link"
        else:
            conv = combine_convergence(m["convergence"].tolist())
            quant = "; ".join(f"{h}: {v} (expects {d})" for h, v, d in
                              zip(m["hypothesis_id"], m["verdict"], m["theme_direction"]))
            mis = "; ".join(f"{h}: {_mi_label(p)}" for h, p in zip(m["hypothesis_id"], m.to_dict("records")))
            status = ", ".join(dict.fromkeys(m["status"]))
        counts[conv] += 1
        who, finding = _finding(codebook, info)
        qual = f"{who}: {finding}" if finding else who
        if prom is not None and t in prom.index:
            n_p, n_all = int(prom.loc[t, "n_participants"]), int(prom.loc[t, "n_interviewed"])
            prom_txt = f"{fmt.count(n_p)} of {fmt.count(n_all)} participants"
        else:
            n_p = n_all = None
            prom_txt = "–"
        if agree_i is not None and t in agree_i.index:
            a = agree_i.loc[t]
            kap = "κ not defined" if pd.isna(a["kappa"]) else f"κ = {fmt.estimate(a['kappa'])}"
            agr_txt = f"{fmt.percent(a['percent_agreement'])}; {kap}"
        else:
            a = None
            agr_txt = "–"
        conv_txt = conv.capitalize() + (" (cimstats's code)" if conv == "partial agreement" else "")
        body.append(Row((Cell(str(info["name"])), Cell(qual), Cell(prom_txt), Cell(agr_txt), Cell(quant),
                         Cell(conv_txt, bold=True), Cell(mis))))
        spec_rows.append({"theme_id": t, "theme": info["name"], "finding_by": who, "direction": _direction_of(info, ddir),
                          "n_participants": n_p, "n_interviewed": n_all,
                          "percent_agreement": None if a is None else float(a["percent_agreement"]),
                          "kappa": None if a is None or pd.isna(a["kappa"]) else float(a["kappa"]),
                          "hypotheses": quant, "convergence": conv, "meta_inference": mis, "status": status,
                          "excerpt_note": note})
    body.append(Row.group("Summary", 7))
    for c, n in counts.items():
        body.append(Row((Cell(c.capitalize(), colspan=5), Cell(fmt.count(n), kind="count", value=n, colspan=2)),
                        role="total" if c == "confirmation" else "data"))
    notes = ["Convergence coding per theme, after the triangulation protocol of Farmer et al. (2006): prominence is "
             "the number of interviewed participants with at least one excerpt coded with the theme (or a "
             "sub-theme); coder agreement is percent agreement and Cohen's kappa between two coders, by "
             f"{unit}, where the excerpts record two coders. A theme takes the meta-inference of its linked "
             "hypotheses, silence aside; 'partial agreement' is cimstats's own code for a theme whose hypotheses "
             "reach different meta-inferences (it is not a category of Fetters et al.).", _MI_NOTE]
    if agree is None:
        notes.append("Coder agreement is not shown: the excerpts do not record two coders.")
    notes += _assumption_notes(pairs, ddir, lbm) + list(extra_notes)
    table = _finish_spec("Convergence coding matrix", title=title, number=number, orientation=orientation,
                         default_orientation="landscape", header=header, body=tuple(body), note=note, notes=notes)
    agreement = prom.reset_index() if prom is not None else None
    if agreement is not None and agree is not None:
        agreement = agreement.merge(agree, on="theme_id", how="left")
    return JointDisplay("convergence", pd.DataFrame(spec_rows), table, meta_inferences=mi, summary_counts=counts,
                        options=opts, excerpt_note=note, agreement=agreement)


# -------------------------------------------------------- themes by group
def _themes_by_group(cases, *, id, group_by, group_labels, group_title, themes, threshold, codebook, excerpts, fmt,
                     quote, k_quotes, title, number, orientation, opts, lbm=True, ddir="none", picker=None, note="",
                     extra_notes=()):
    import numpy as np
    import pandas as pd

    ids = cases[id].astype("string")
    groups_raw = cases[group_by]
    n_missing_group = int(groups_raw.isna().sum())
    levels = [g for g in pd.unique(groups_raw.dropna())]
    try:
        levels = sorted(levels)
    except TypeError:
        pass
    order = list(themes) if themes is not None else (
        [t for t, lvl in zip(codebook.themes["theme_id"], codebook.themes["level"]) if lvl == 0]
        if codebook is not None else sorted(excerpts["theme_id"].dropna().unique().tolist()))
    ex = excerpts.loc[excerpts["case_id"].isin(set(ids.dropna()))]
    n_unlinked = int((~excerpts["case_id"].isin(set(ids.dropna()))).sum())
    # descendants count toward their top theme
    desc = _descendants(codebook, order)
    group_of = dict(zip(ids, groups_raw))
    N = np.array([int((groups_raw == g).sum()) for g in levels])
    counts = np.zeros((len(order), len(levels)), dtype=int)
    coded_cases: dict[tuple[int, int], list[str]] = {}
    for i, t in enumerate(order):
        cs = set(ex.loc[ex["theme_id"].isin(desc[t]), "case_id"])
        for j, g in enumerate(levels):
            members = sorted(c for c in cs if group_of.get(c) == g)
            counts[i, j] = len(members)
            coded_cases[(i, j)] = members
    totals = counts.sum(axis=1)  # cases coded per theme (a case belongs to one group)
    small_n = (N > 0) & (N < threshold)
    # cells of a group with fewer than `threshold` cases are hidden too (their n is hidden in the header)
    extra = np.zeros(counts.shape, bool)
    extra[:, small_n] = counts[:, small_n] > 0
    sup = suppress_small_counts(counts, threshold=threshold, totals="rows", also_hide=extra) if threshold > 1 else None
    lab = (lambda g: str(group_labels.get(g, g))) if group_labels else (lambda g: str(g))
    # one symbol for every hidden value, so a reader cannot tell the small counts from the complementary ones
    symbol = "[c]"
    header = (
        (Cell("Theme", rowspan=2), Cell(group_title or group_by, colspan=len(levels)), Cell("All", rowspan=2)),
        tuple(Cell(f"{lab(g)} (n = {symbol if small_n[j] else fmt.count(N[j])})", kind="text",
                   footnotes=("a",) if small_n[j] else ())
              for j, g in enumerate(levels)),
    )
    body: list[Row] = []
    spec_rows = []
    total_N = int(N.sum())
    any_hidden = bool(small_n.any())
    for i, t in enumerate(order):
        info = _theme_info(codebook, t)
        cells = [Cell(str(info["name"]))]
        for j, g in enumerate(levels):
            k = int(counts[i, j])
            hide_p = bool(sup is not None and sup.primary[i, j])
            hide_s = bool(sup is not None and sup.secondary[i, j])
            quotes: list[str] = []
            if hide_p or hide_s:
                any_hidden = True
                cell = Cell(symbol, kind="text", footnotes=("a",))
            else:
                pct = 100.0 * k / N[j] if N[j] else float("nan")
                text = f"{fmt.count(k)} ({fmt.percent(pct)})"
                if k > 0:
                    quotes = _quote_lines(quote, picker.pick(desc[t], cases_subset=coded_cases[(i, j)],
                                                             k=k_quotes, excerpts_only=True), note, label=False)
                cell = Cell("\n".join([text] + quotes), kind="text")
            cells.append(cell)
            spec_rows.append({"theme_id": t, "group": g, "n_cases": k, "n_group": int(N[j]),
                              "suppressed": "primary" if hide_p else "secondary" if hide_s else "",
                              "quotes": quotes, "excerpt_note": note})
        hide_tot = bool(sup is not None and sup.row_total_hidden[i])
        tot_k = int(totals[i])
        if hide_tot or (threshold > 1 and 0 < tot_k < threshold):
            any_hidden = True
            cells.append(Cell(symbol, footnotes=("a",)))
        else:
            pct = 100.0 * tot_k / total_N if total_N else float("nan")
            cells.append(Cell(f"{fmt.count(tot_k)} ({fmt.percent(pct)})", kind="text"))
        body.append(Row(tuple(cells)))
    footnotes = []
    if any_hidden:
        small = "counts of 1" if threshold == 2 else f"counts from 1 to {threshold - 1}"
        footnotes.append(Footnote("a", f"{symbol} Suppressed to protect participants' confidentiality: {small}, "
                                       "and further values that would allow a suppressed count to be derived from "
                                       "the totals; no quotes are shown for suppressed cells."))
    notes = [f"Cells: cases coded with the theme, n (% of the group), and an exemplar quote (pseudonymised). "
             f"A case counts once per theme however many excerpts it has; sub-themes count toward their theme."]
    if n_missing_group:
        notes.append(f"{n_missing_group} case(s) with missing {group_by} are not in any group column.")
    if n_unlinked:
        notes.append(f"{n_unlinked} excerpt(s) from participants without a case row are not counted.")
    table = _finish_spec(f"Themes by {group_title or group_by}", title=title, number=number, orientation=orientation,
                         default_orientation="landscape", header=header, body=tuple(body),
                         note=note, notes=notes + list(extra_notes), footnotes=tuple(footnotes))
    return JointDisplay("themes_by_group", pd.DataFrame(spec_rows), table, suppression=sup, excerpt_note=note,
                        options=dict(opts, n_missing_group=n_missing_group, n_unlinked_excerpts=n_unlinked))


# ------------------------------------------------------------- case oriented


# ------------------------------------------------------------- case oriented
def _whole_numbers(column) -> bool:
    """Whether a column holds numbers that are all whole (ignoring missing values): counts."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_integer_dtype(column):
        return True
    num = pd.to_numeric(column, errors="coerce")
    if bool((num.isna() & column.notna()).any()):  # some text: not a number column
        return False
    v = num.dropna().to_numpy(dtype=float)
    return bool(len(v)) and bool(np.all(np.isfinite(v) & (v == np.round(v))))


def _check_expect(expect, cases) -> dict[str, dict[str, str]]:
    if expect is None:
        return {}
    if not isinstance(expect, Mapping):
        raise CodebookError("`expect` must map theme ids to {column: 'high' or 'low'}; "
                            f"got {type(expect).__name__}.")
    out: dict[str, dict[str, str]] = {}
    for t, spec in expect.items():
        if not isinstance(spec, Mapping):
            raise CodebookError(f"`expect[{t!r}]` must map columns of `cases` to 'high' or 'low'; got {spec!r}.")
        for col, side in spec.items():
            if col not in cases.columns:
                raise CodebookError(f"`expect[{t!r}]` names {col!r}, not a column of `cases`; available: "
                                    f"{', '.join(map(str, cases.columns))}.")
            if str(side).lower() not in ("high", "low"):
                raise CodebookError(f"`expect[{t!r}][{col!r}]` is {side!r}; expected 'high' or 'low'.")
            if not pd_numeric(cases[col]):
                raise CodebookError(f"`expect[{t!r}]` names column {col!r}, which does not hold numbers.")
        out[str(t)] = {str(c): str(v).lower() for c, v in spec.items()}
    return out


def pd_numeric(col) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(col)) and not pd.api.types.is_bool_dtype(col)


def _case_oriented(cases, *, id, profile, themes, expect, codebook, excerpts, fmt, quote, k_quotes, title, number,
                   orientation, opts, lbm=True, ddir="none", picker=None, note="", extra_notes=()):
    import pandas as pd

    if profile is None:
        profile = {}
    if not isinstance(profile, Mapping):
        profile = {c: c for c in profile}
    bad = [c for c in profile if c not in cases.columns]
    if bad:
        raise CodebookError(f"`profile` names {', '.join(map(repr, bad))}, not column(s) of `cases`; "
                            f"available: {', '.join(map(str, cases.columns))}.")
    exp = _check_expect(expect, cases)
    ids = cases[id].astype("string")
    ex = excerpts
    if themes is not None:
        ex = ex.loc[ex["theme_id"].isin(themes)]
    interviewed = [i for i in ids if i in set(ex["case_id"].dropna())]
    shown = cases.loc[ids.isin(interviewed)]
    medians = {col: float(pd.to_numeric(shown[col], errors="coerce").median())
               for spec in exp.values() for col in spec}
    header = ((Cell("Case"),) + tuple(Cell(lbl, kind="number") for lbl in profile.values())
              + (Cell("Coded themes"), Cell("Exemplar quote"))
              + ((Cell("Quote and survey values"),) if exp else ()),)
    body: list[Row] = []
    spec_rows = []
    name_of = (lambda t: str(_theme_info(codebook, t)["name"]))
    # a profile column is a count when all its values are whole numbers (a count column turns float
    # once it has a missing value); one column, one number format
    counts = {col: _whole_numbers(cases[col]) for col in profile}
    n_flagged = 0
    for i in interviewed:
        row = cases.loc[ids == i].iloc[0]
        cells = [Cell(str(i))]
        prof = {}
        for col in profile:
            v = row[col]
            if _missing(v):
                prof[col] = None
                cells.append(Cell(fmt.missing, kind="number"))
            elif counts[col]:
                prof[col] = int(round(float(v)))
                cells.append(Cell(fmt.count(prof[col]), kind="count", value=prof[col]))
            elif pd.api.types.is_number(v):
                prof[col] = float(v)
                cells.append(Cell(fmt.estimate(v), kind="number", value=float(v)))
            else:
                prof[col] = v
                cells.append(Cell(str(v)))
        mine = ex.loc[ex["case_id"] == i]
        ts = list(dict.fromkeys(mine["theme_id"]))
        cells.append(Cell("; ".join(name_of(t) for t in ts)))
        picked = picker.pick(ts, cases_subset=[i], k=k_quotes, excerpts_only=True)
        qs = _quote_lines(quote, picked, note, label=False)
        cells.append(Cell("\n".join(qs), kind="quote"))
        conflicts = []
        picked_themes = set(mine.loc[mine["text"].isin([x for x, _ in picked]), "theme_id"].astype(str))
        for t in picked_themes:
            for col, side in exp.get(t, {}).items():
                v = pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0]
                med = medians[col]
                if pd.isna(v) or pd.isna(med):
                    continue
                if (side == "high" and v < med) or (side == "low" and v > med):
                    lab = profile.get(col, col) if isinstance(profile, Mapping) else col
                    rel = "below" if side == "high" else "above"
                    conflicts.append(f"Conflict: the quote ({name_of(t)}) suggests {side} {lab}; the survey value "
                                     f"{fmt.estimate(v)} is {rel} the median {fmt.estimate(med)}")
        if exp:
            cells.append(Cell("\n".join(conflicts) if conflicts else "Consistent", bold=bool(conflicts)))
        n_flagged += bool(conflicts)
        body.append(Row(tuple(cells)))
        spec_rows.append({"case_id": i, **prof, "themes": ";".join(ts), "quotes": qs, "conflict": bool(conflicts),
                          "conflicts": conflicts, "excerpt_note": note})
    not_surveyed = sorted(set(ex["case_id"].dropna()) - set(ids.dropna()))
    notes = ["One row per interviewed participant with survey data; counts are whole numbers; quotes are "
             "pseudonymised and may be shortened (…)."]
    if exp:
        notes.append(f"Quote and survey values: a case is flagged when the theme of its quote suggests a high (or low) "
                     f"value of a survey variable and the case's value is below (above) the median of the cases shown "
                     f"(cimstats's own check; {n_flagged} case(s) flagged). A flag asks for a closer reading, not a "
                     "correction.")
    if not_surveyed:
        notes.append(f"{len(not_surveyed)} interviewed participant(s) without survey data are not shown.")
    if not body:
        raise CodebookError("No case has both survey data and coded excerpts; check that `cases[id]` and "
                            "`excerpts.case_id` use the same pseudonymous ids.")
    table = _finish_spec("Case-oriented joint display", title=title, number=number, orientation=orientation,
                         default_orientation="landscape", header=header, body=tuple(body), note=note,
                         notes=notes + list(extra_notes))
    spec = pd.DataFrame(spec_rows)
    for col in profile:
        if counts[col] and col in spec.columns:
            spec[col] = spec[col].astype("Int64")  # counts stay whole numbers with a missing value
    return JointDisplay("case_oriented", spec, table, excerpt_note=note,
                        options=dict(opts, n_interviewed_not_surveyed=len(not_surveyed), n_conflicts=n_flagged))
