"""Joint displays: tables that integrate quantitative results and qualitative themes.

:func:`joint_display` builds one of five display kinds from the mechanism
(hypothesis) table, a theme codebook, coded excerpts and a case table. The
result, a :class:`JointDisplay`, holds the display's own spec (an
inspectable table with one row per display row and structured fields) and a
:class:`~cimstats.render.TableSpec` that every renderer accepts.

Input contract: the mechanism table
-----------------------------------
A DataFrame with one row per hypothesis. Required columns:

=====================  =====================================================
``hypothesis_id``      unique id (``H1``...)
``mechanism``          mechanism name or id (``navigation``, ``negotiation``,
                       ``collective efficacy``)
``verdict``            ``supported``, ``not supported``, ``contrary`` or
                       ``not testable`` (missing = ``not testable``)
=====================  =====================================================

Used when present (missing values are shown as ``–``):

=====================  =====================================================
``statement``          the hypothesis in words
``estimate``           point estimate of the estimand
``ci_lower``,
``ci_upper``           confidence interval limits
``p_value``            p-value (adjusted if ``p_adjusted`` is absent)
``p_adjusted``         multiplicity-adjusted p-value (shown instead of p)
``model``              model label (``LMM``, ``binary GLMM``, ``SEM``...)
``n``                  number of observations used
``verdict_reason``     why the verdict was reached (``reason`` accepted)
``theme_ids``          linked theme ids: ``;``-separated string or list
``estimand``           what the estimate is (``indirect effect``, ``OR``...)
``effect_label``       short prefix for the estimate (``β``, ``OR``, ``IMM``)
=====================  =====================================================

Theme links are the union of ``theme_ids`` and the codebook's
``hypotheses`` lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from cimstats.errors import Report
from cimstats.integrate.codebook import ThemeCodebook, CodebookError
from cimstats.integrate.meta import (
    combine_convergence,
    normalise_verdict,
    suggest_meta_inferences,
)
from cimstats.integrate.privacy import pseudonymise, suppress_small_counts, truncate_quote
from cimstats.render import Cell, Footnote, NumberFormat, Row, TableSpec
from cimstats.integrate.excerpts import read_excerpts
from cimstats.render import render
from cimstats.render import to_docx
from cimstats.render import to_html
from cimstats.render import to_latex
from cimstats.render import to_markdown
from cimstats.render import to_text
from cimstats.render import to_xlsx

__all__ = ["JointDisplay", "joint_display", "DISPLAY_KINDS", "MECHANISM_TABLE_COLUMNS", "validate_mechanism_table"]

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
MECHANISM_TABLE_COLUMNS = {
    "required": ["hypothesis_id", "mechanism", "verdict"],
    "optional": ["statement", "estimate", "ci_lower", "ci_upper", "p_value", "p_adjusted", "model", "n",
                 "verdict_reason", "theme_ids", "estimand", "effect_label"],
}


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
        ``verdict, theme_direction, direction_stated, meta_inference,
        convergence, decided_by`` (``rule:<id>`` or a person) and
        ``rationale`` (side-by-side and convergence displays).
    summary_counts : dict
        Convergence display: count per category.
    suppression : object or None
        The small-cell decision (themes-by-group display).
    options : dict
        The arguments that built it.
    """

    kind: str
    spec: Any
    table: TableSpec
    meta_inferences: Any = None
    summary_counts: dict = field(default_factory=dict)
    suppression: Any = None
    options: dict = field(default_factory=dict)

    def to_frame(self):
        """The joint-display spec (a copy)."""
        return self.spec.copy()

    def render(self, path, **options):
        """Write the display; the format follows the suffix (.docx, .xlsx, .html, .tex, .md, .txt)."""

        return render(self.table, path, **options)

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


def validate_mechanism_table(results):
    """Check and standardise a mechanism table for joint displays.

    Returns a copy with every optional column present (missing values where
    absent), ``verdict`` normalised to the four verdicts, and
    ``theme_ids`` as a ``;``-separated string.

    Raises
    ------
    cimstats.integrate.CodebookError
        When required columns are missing, ids repeat, or numbers are not
        numeric (all listed in ``report``).

    Examples
    --------
    >>> import pandas as pd
    >>> t = validate_mechanism_table(pd.DataFrame({"hypothesis_id": ["H1"], "mechanism": ["navigation"],
    ...                                            "verdict": ["Supported"], "theme_ids": [["T1", "T2"]]}))
    >>> t.loc[0, "verdict"], t.loc[0, "theme_ids"]
    ('supported', 'T1;T2')
    """
    import pandas as pd

    if not isinstance(results, pd.DataFrame):
        if hasattr(results, "table") and isinstance(getattr(results, "table"), pd.DataFrame):
            results = results.table
        elif hasattr(results, "to_frame"):
            results = results.to_frame()
        else:
            raise CodebookError(
                f"The mechanism table must be a DataFrame (one row per hypothesis); got {type(results).__name__}."
            )
    df = results.copy()
    if "verdict_reason" not in df.columns and "reason" in df.columns:
        df = df.rename(columns={"reason": "verdict_reason"})
    if "hypothesis_id" not in df.columns and "hypothesis" in df.columns:
        df = df.rename(columns={"hypothesis": "hypothesis_id"})
    report = Report()
    missing = [c for c in MECHANISM_TABLE_COLUMNS["required"] if c not in df.columns]
    if missing:
        raise CodebookError(
            f"The mechanism table lacks column(s) {', '.join(missing)}; expected at least "
            f"{', '.join(MECHANISM_TABLE_COLUMNS['required'])} (see cimstats.integrate.MECHANISM_TABLE_COLUMNS)."
        )
    dup = df["hypothesis_id"].astype(str).duplicated()
    if dup.any():
        report.add("J001", f"hypothesis_id {df.loc[dup, 'hypothesis_id'].iloc[0]!r} appears more than once.",
                   column="hypothesis_id", remedy="Keep one row per hypothesis.")
    for c in MECHANISM_TABLE_COLUMNS["optional"]:
        if c not in df.columns:
            df[c] = None
    for c in ("estimate", "ci_lower", "ci_upper", "p_value", "p_adjusted", "n"):
        conv = pd.to_numeric(df[c], errors="coerce")
        bad = conv.isna() & df[c].notna()
        if bad.any():
            report.add("J002", f"Column {c!r} holds non-numeric value {df.loc[bad, c].iloc[0]!r} "
                       f"(row {int(bad.to_numpy().nonzero()[0][0]) + 1}).", column=c)
        df[c] = conv.astype("Float64") if c != "n" else conv.astype("Int64")
    for c in ("p_value", "p_adjusted"):
        out = df[c].notna() & ((df[c] < 0) | (df[c] > 1))
        if out.any():
            report.add("J003", f"Column {c!r} holds {df.loc[out, c].iloc[0]} outside [0, 1].", column=c)
    verdicts = []
    for k, v in enumerate(df["verdict"]):
        try:
            verdicts.append(normalise_verdict(v))
        except CodebookError as exc:
            report.add("J004", f"Row {k + 1}: {exc}", row=k + 1, column="verdict")
            verdicts.append(None)
    if report.has_errors:
        raise CodebookError(f"The mechanism table has {len(report.errors)} problem(s); see `.report` "
                            f"(first: {report.errors[0].message})", report=report)
    df["verdict"] = verdicts
    df["theme_ids"] = [";".join(_split_ids(v)) for v in df["theme_ids"]]
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
    if codebook is None:
        return {"theme_id": theme_id, "name": theme_id, "definition": None, "direction": None, "mechanism": None}
    hit = codebook.themes.loc[codebook.themes["theme_id"] == theme_id]
    if hit.empty:
        return {"theme_id": theme_id, "name": theme_id, "definition": None, "direction": None, "mechanism": None}
    return hit.iloc[0].to_dict()


def _theme_quotes(theme_id: str, codebook, excerpts, *, cases_subset=None, k: int = 1) -> list[tuple[str, Any]]:
    """Up to k (text, case_id) pairs: codebook exemplars first, then coded excerpts."""
    out: list[tuple[str, Any]] = []
    if codebook is not None and cases_subset is None:
        ex = codebook.exemplars
        for r in ex.loc[ex["theme_id"] == theme_id].itertuples(index=False):
            out.append((r.text, r.case_id))
    if excerpts is not None and len(out) < k:
        ex = excerpts.loc[excerpts["theme_id"] == theme_id]
        if cases_subset is not None:
            ex = ex.loc[ex["case_id"].isin(cases_subset)]
        for r in ex.itertuples(index=False):
            out.append((r.text, r.case_id))
    return out[:k]


def _label_mechanism(codebook, mech: str) -> str:
    if codebook is not None and not codebook.mechanisms.empty:
        hit = codebook.mechanisms.loc[codebook.mechanisms["mechanism_id"] == mech, "name"]
        if len(hit):
            return str(hit.iloc[0])
    return mech


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
    results : pandas.DataFrame, optional
        The mechanism table (see the module notes for its columns). Needed by
        ``side_by_side``, ``statistics_by_theme`` and ``convergence``.
    kind : str
        ``"side_by_side"``: mechanism | hypothesis | quantitative result |
        theme | finding and quote | meta-inference;
        ``"statistics_by_theme"``: results of the hypotheses linked to each
        theme, grouped by theme;
        ``"themes_by_group"``: prevalence of each theme (cases coded) across
        groups of a quantitative variable, with an exemplar quote per cell;
        ``"convergence"``: convergence coding matrix (agreement, partial
        agreement, silence, dissonance per theme) with summary counts;
        ``"case_oriented"``: one row per case with its quantitative
        profile, coded themes and a quote.
    codebook : ThemeCodebook, optional
        Themes (names, definitions, directions, exemplars, hypothesis links).
    excerpts : pandas.DataFrame, optional
        Coded excerpts (``case_id, theme_id, text``...; see
        :func:`read_excerpts`). Needed by ``themes_by_group`` and
        ``case_oriented``.
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
    themes : sequence of str, optional
        Themes to show, in order (default: every theme in the codebook,
        else in the excerpts).
    rules, overrides :
        Meta-inference rule table and decisions by people (see
        :func:`suggest_meta_inferences`).
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
        Direction assumed for themes whose codebook states none
        (``supports``, ``contradicts``, ``mixed`` or ``none``, the default,
        which makes the rules suggest silence). Stating directions in the
        codebook is better; the assumption is written in the table notes.

    Returns
    -------
    JointDisplay

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
    >>> jd.meta_inferences[["hypothesis_id", "theme_id", "meta_inference", "decided_by"]].values.tolist()
    [['H1', 'T1', 'confirmation', 'rule:R1']]
    >>> print(jd.table.grid()[2][2].text)
    0.21 [0.05, 0.37]; p = 0.009
    LMM, n = 1,480
    >>> jd.table.grid()[2][4].text
    '“The walking group put me onto the dietitian.” (EN-0012)'

    """
    k = _KIND_SYNONYMS.get(str(kind).strip().lower().replace(" ", "_"))
    if k is None:
        raise CodebookError(f"`kind={kind!r}` is not a joint-display kind; expected one of {', '.join(DISPLAY_KINDS)}.")
    if isinstance(number_format, str):
        number_format = NumberFormat.preset(number_format)
    fmt = number_format or NumberFormat()
    quote = _quote_fn(names, identifier_patterns, max_quote_chars, max_quote_words)
    opts = dict(kind=k, id=id, group_by=group_by, threshold=threshold, max_quote_chars=max_quote_chars,
                max_quote_words=max_quote_words, quotes_per_cell=quotes_per_cell, themes=themes)
    if excerpts is not None:

        excerpts = read_excerpts(excerpts)
    if default_direction not in ("supports", "contradicts", "mixed", "none"):
        raise CodebookError(f"`default_direction={default_direction!r}` is not known; expected supports, "
                            "contradicts, mixed or none.")
    common = dict(codebook=codebook, excerpts=excerpts, fmt=fmt, quote=quote, k_quotes=quotes_per_cell,
                  title=title, number=number, orientation=orientation, opts=opts, lbm=link_by_mechanism,
                  ddir=default_direction)
    if k in ("side_by_side", "statistics_by_theme", "convergence"):
        if results is None:
            raise CodebookError(f"`kind={k!r}` needs the mechanism table as the first argument `results`.")
        res = validate_mechanism_table(results)
        if k == "side_by_side":
            return _side_by_side(res, rules=rules, overrides=overrides, **common)
        if k == "statistics_by_theme":
            return _statistics_by_theme(res, themes=themes, **common)
        return _convergence(res, themes=themes, rules=rules, overrides=overrides, **common)
    if excerpts is None or cases is None:
        raise CodebookError(f"`kind={k!r}` needs `excerpts=` (coded excerpts) and `cases=` (one row per case).")
    if id not in cases.columns:
        raise CodebookError(f"`id={id!r}` is not a column of `cases`; available: {', '.join(map(str, cases.columns))}.")
    if cases[id].duplicated().any():
        raise CodebookError(f"`cases` repeats values of {id!r}; keep one row per case (e.g. the baseline wave).")
    if k == "themes_by_group":
        if group_by is None or group_by not in cases.columns:
            raise CodebookError(f"`group_by={group_by!r}` must name a column of `cases` for kind 'themes_by_group'.")
        return _themes_by_group(cases, id=id, group_by=group_by, group_labels=group_labels, group_title=group_title,
                                themes=themes, threshold=threshold, **common)
    return _case_oriented(cases, id=id, profile=profile, themes=themes, **common)


def _finish_spec(default_title, *, title, number, orientation, default_orientation, **kw) -> TableSpec:
    return TableSpec(title=title or default_title, number=number,
                     orientation=orientation or default_orientation, **kw)


def _mi_label(mi: str, decided_by: str) -> str:
    who = f"rule {decided_by[5:]}" if decided_by.startswith("rule:") else decided_by
    return f"{mi.capitalize()} ({who})"


_MI_NOTE = ("Meta-inferences: confirmation (strands agree), expansion (one strand adds scope or conditions), "
            "discordance (strands disagree), silence (one strand says nothing). Those marked 'rule' were "
            "suggested from the hypothesis verdict and the theme's stated direction by the rule table; others "
            "name the person who decided.")


def _pairs(res, codebook, lbm=True, ddir="none"):
    import pandas as pd

    links = _links(res, codebook, lbm)
    rows = []
    for r in res.itertuples(index=False):
        sub = links.loc[links["hypothesis_id"] == r.hypothesis_id]
        pairs = list(zip(sub["theme_id"], sub["link"])) or [(None, None)]
        for t, how in pairs:
            info = _theme_info(codebook, t) if t else {"direction": "none"}
            rows.append({"hypothesis_id": r.hypothesis_id, "theme_id": t, "link": how, "verdict": r.verdict,
                         "theme_direction": _direction_of(info, ddir) if t else "none",
                         "direction_stated": (not _missing(info.get("direction"))) if t else False})
    return pd.DataFrame(rows, columns=["hypothesis_id", "theme_id", "link", "verdict", "theme_direction",
                                       "direction_stated"])


def _assumption_notes(pairs, ddir, lbm) -> list[str]:
    notes = []
    if ddir != "none" and (pairs["theme_id"].notna() & ~pairs["direction_stated"].astype(bool)).any():
        notes.append(f"Themes whose direction the codebook does not state were taken to be '{ddir}'.")
    if lbm and (pairs["link"] == "shared mechanism").any():
        notes.append("Hypotheses without listed themes are linked to the themes of the same mechanism.")
    return notes


# ---------------------------------------------------------------- side by side
def _side_by_side(res, *, rules, overrides, codebook, excerpts, fmt, quote, k_quotes, title, number, orientation, opts, lbm=True, ddir="none"):
    import pandas as pd

    pairs = _pairs(res, codebook, lbm, ddir)
    mi = suggest_meta_inferences(pairs, rules=rules, overrides=overrides)
    res = res.assign(_order=range(len(res)))
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
                t = p["theme_id"]
                if t is None:
                    cells += [Cell("No linked theme", italic=True), Cell("")]
                    quotes = []
                    finding = ""
                else:
                    info = _theme_info(codebook, t)
                    quotes = [quote(x, c) for x, c in _theme_quotes(t, codebook, excerpts, k=k_quotes)]
                    finding = "" if _missing(info.get("definition")) else str(info["definition"])
                    cells.append(Cell(str(info["name"])))
                    cells.append(Cell("\n".join([x for x in [finding] + quotes if x]), kind="quote" if quotes and not finding else "text"))
                cells.append(Cell(_mi_label(p["meta_inference"], p["decided_by"])))
                body.append(Row(tuple(cells)))
                spec_rows.append({"mechanism": mech, "hypothesis_id": r["hypothesis_id"], "statement": r["statement"],
                                  "estimate": r["estimate"], "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"],
                                  "p_value": r["p_value"], "model": r["model"], "n": r["n"], "verdict": r["verdict"],
                                  "theme_id": t, "finding": finding, "quotes": quotes,
                                  "meta_inference": p["meta_inference"], "decided_by": p["decided_by"]})
    header = (
        (Cell("Mechanism", rowspan=2), Cell("Quantitative strand", colspan=2), Cell("Qualitative strand", colspan=2),
         Cell("Meta-inference", rowspan=2)),
        (Cell("Hypothesis"), Cell("Result"), Cell("Theme"), Cell("Finding and exemplar quote")),
    )
    notes = ["Result: estimate [95% CI]; p-value; model and number of observations. Quotes are pseudonymised "
             "and may be shortened (…).", _MI_NOTE] + _assumption_notes(pairs, ddir, lbm)
    table = _finish_spec("Joint display of mechanism tests and qualitative themes", title=title, number=number,
                         orientation=orientation, default_orientation="landscape", header=header, body=tuple(body),
                         notes=tuple(notes), column_widths=(1.2, 2, 2, 1.4, 3.5, 1.4))
    return JointDisplay("side_by_side", pd.DataFrame(spec_rows), table, meta_inferences=mi, options=opts)


# -------------------------------------------------------- statistics by theme
def _statistics_by_theme(res, *, themes, codebook, excerpts, fmt, quote, k_quotes, title, number, orientation, opts, lbm=True, ddir="none"):
    import pandas as pd

    links = _links(res, codebook, lbm)
    order = list(themes) if themes is not None else (
        codebook.themes["theme_id"].tolist() if codebook is not None else list(dict.fromkeys(links["theme_id"])))
    header = ((Cell("Hypothesis"), Cell("Mechanism"), Cell("Estimate [95% CI]", kind="ci"), Cell("p", kind="p_value"),
               Cell("n", kind="count"), Cell("Model"), Cell("Verdict")),)
    body: list[Row] = []
    spec_rows = []
    for t in order:
        info = _theme_info(codebook, t)
        hs = links.loc[links["theme_id"] == t, "hypothesis_id"].tolist()
        if not hs and codebook is not None and info.get("level", 0) > 0:
            continue  # sub-themes without links are not listed
        d = info.get("direction")
        dir_txt = "" if _missing(d) or d == "none" else f" (stated direction: {d})"
        body.append(Row.group(f"{info['name']}{dir_txt}", 7))
        if not hs:
            body.append(Row((Cell("No linked hypothesis", italic=True, colspan=7),)))
            spec_rows.append({"theme_id": t, "hypothesis_id": None})
            continue
        for h in hs:
            r = res.loc[res["hypothesis_id"] == h].iloc[0].to_dict()
            p = r["p_adjusted"] if not _missing(r["p_adjusted"]) else r["p_value"]
            lab = "" if _missing(r.get("effect_label")) else f"{r['effect_label']} = "
            body.append(Row((
                Cell(f"{h}: {r['statement']}" if not _missing(r["statement"]) else h),
                Cell(_label_mechanism(codebook, r["mechanism"])),
                Cell(lab + fmt.estimate_ci(r["estimate"], r["ci_lower"], r["ci_upper"]), kind="ci",
                     value=None if _missing(r["estimate"]) else float(r["estimate"])),
                Cell(fmt.p(p), kind="p_value", value=None if _missing(p) else float(p)),
                Cell(fmt.count(r["n"]), kind="count", value=None if _missing(r["n"]) else int(r["n"])),
                Cell("" if _missing(r["model"]) else str(r["model"])),
                Cell(r["verdict"] + ("" if _missing(r["verdict_reason"]) else f" ({r['verdict_reason']})")),
            )))
            spec_rows.append({"theme_id": t, "hypothesis_id": h, "estimate": r["estimate"], "ci_lower": r["ci_lower"],
                              "ci_upper": r["ci_upper"], "p_value": p, "n": r["n"], "model": r["model"],
                              "verdict": r["verdict"]})
    if not body:
        raise CodebookError("No theme to show: the codebook and the mechanism table share no theme ids.")
    adj = res["p_adjusted"].notna().any()
    notes = ["Rows are grouped by qualitative theme; each row is a pre-specified hypothesis linked to the theme. "
             "CI = confidence interval." + (" p-values are adjusted for multiple testing." if adj else "")]
    table = _finish_spec("Quantitative results by qualitative theme", title=title, number=number,
                         orientation=orientation, default_orientation="portrait", header=header, body=tuple(body),
                         notes=tuple(notes))
    return JointDisplay("statistics_by_theme", pd.DataFrame(spec_rows), table, options=opts)


# ------------------------------------------------------------- convergence
def _convergence(res, *, themes, rules, overrides, codebook, excerpts, fmt, quote, k_quotes, title, number,
                 orientation, opts, lbm=True, ddir="none"):
    import pandas as pd

    pairs = _pairs(res, codebook, lbm, ddir)
    mi = suggest_meta_inferences(pairs, rules=rules, overrides=overrides)
    links = _links(res, codebook, lbm)
    if themes is not None:
        order = list(themes)
    elif codebook is not None:
        linked = set(links["theme_id"])
        order = [t for t, lvl in zip(codebook.themes["theme_id"], codebook.themes["level"]) if lvl == 0 or t in linked]
    else:
        order = list(dict.fromkeys(links["theme_id"]))
    header = ((Cell("Theme"), Cell("Qualitative finding"), Cell("Quantitative findings"), Cell("Convergence"),
               Cell("Meta-inference")),)
    body: list[Row] = []
    spec_rows = []
    counts = {c: 0 for c in ("agreement", "partial agreement", "silence", "dissonance")}
    for t in order:
        info = _theme_info(codebook, t)
        m = mi.loc[mi["theme_id"] == t]
        if m.empty:
            conv, quant, mis, by = "silence", "No linked hypothesis", "silence", "rule:no link"
        else:
            conv = combine_convergence(m["convergence"].tolist())
            quant = "; ".join(f"{h}: {v}" for h, v in zip(m["hypothesis_id"], m["verdict"]))
            mis = ", ".join(dict.fromkeys(m["meta_inference"]))
            by = ", ".join(dict.fromkeys(m["decided_by"]))
        counts[conv] += 1
        finding = "" if _missing(info.get("definition")) else str(info["definition"])
        stated = not _missing(info.get("direction"))
        direction = _direction_of(info, ddir)
        qual = finding + ("\n" if finding else "") + (f"Stated direction: {direction}" if stated
                                                      else f"Direction not stated (taken as {direction})")
        body.append(Row((Cell(str(info["name"])), Cell(qual), Cell(quant), Cell(conv.capitalize(), bold=True),
                         Cell(f"{mis} ({by.replace('rule:', 'rule ')})"))))
        spec_rows.append({"theme_id": t, "theme": info["name"], "direction": direction, "hypotheses": quant,
                          "convergence": conv, "meta_inference": mis, "decided_by": by})
    body.append(Row.group("Summary", 5))
    for c, n in counts.items():
        body.append(Row((Cell(c.capitalize(), colspan=3), Cell(fmt.count(n), kind="count", value=n, colspan=2)),
                        role="total" if c == "agreement" else "data"))
    notes = ["Convergence coding follows the triangulation protocol: agreement, partial agreement, silence "
             "(one strand says nothing) and dissonance; a theme linked to several hypotheses is coded partial "
             "agreement when their codes differ (silence aside).", _MI_NOTE] + _assumption_notes(pairs, ddir, lbm)
    table = _finish_spec("Convergence coding matrix", title=title, number=number, orientation=orientation,
                         default_orientation="landscape", header=header, body=tuple(body), notes=tuple(notes))
    return JointDisplay("convergence", pd.DataFrame(spec_rows), table, meta_inferences=mi, summary_counts=counts,
                        options=opts)


# -------------------------------------------------------- themes by group
def _themes_by_group(cases, *, id, group_by, group_labels, group_title, themes, threshold, codebook, excerpts, fmt,
                     quote, k_quotes, title, number, orientation, opts, lbm=True, ddir="none"):
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
    desc: dict[str, set[str]] = {t: {t} for t in order}
    if codebook is not None:
        par = dict(zip(codebook.themes["theme_id"], codebook.themes["parent_id"]))
        for t0 in codebook.themes["theme_id"]:
            p = t0
            while p is not None and not _missing(p):
                if p in desc:
                    desc[p].add(t0)
                p = par.get(p)
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
                    quotes = [quote(x, c) for x, c in _theme_quotes(t, None, ex.loc[ex["theme_id"].isin(desc[t])],
                                                                    cases_subset=coded_cases[(i, j)], k=k_quotes)]
                cell = Cell("\n".join([text] + quotes), kind="text")
            cells.append(cell)
            spec_rows.append({"theme_id": t, "group": g, "n_cases": k, "n_group": int(N[j]),
                              "suppressed": "primary" if hide_p else "secondary" if hide_s else "",
                              "quotes": quotes})
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
                         default_orientation="landscape", header=header, body=tuple(body), notes=tuple(notes),
                         footnotes=tuple(footnotes))
    return JointDisplay("themes_by_group", pd.DataFrame(spec_rows), table, suppression=sup,
                        options=dict(opts, n_missing_group=n_missing_group, n_unlinked_excerpts=n_unlinked))


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


def _case_oriented(cases, *, id, profile, themes, codebook, excerpts, fmt, quote, k_quotes, title, number,
                   orientation, opts, lbm=True, ddir="none"):
    import pandas as pd

    if profile is None:
        profile = {}
    if not isinstance(profile, Mapping):
        profile = {c: c for c in profile}
    bad = [c for c in profile if c not in cases.columns]
    if bad:
        raise CodebookError(f"`profile` names {', '.join(map(repr, bad))}, not column(s) of `cases`; "
                            f"available: {', '.join(map(str, cases.columns))}.")
    ids = cases[id].astype("string")
    ex = excerpts
    if themes is not None:
        ex = ex.loc[ex["theme_id"].isin(themes)]
    interviewed = [i for i in ids if i in set(ex["case_id"].dropna())]
    header = ((Cell("Case"),) + tuple(Cell(lbl, kind="number") for lbl in profile.values())
              + (Cell("Coded themes"), Cell("Exemplar quote")),)
    body: list[Row] = []
    spec_rows = []
    name_of = (lambda t: str(_theme_info(codebook, t)["name"]))
    # a profile column is a count when all its values are whole numbers (a count column turns float
    # once it has a missing value); one column, one number format
    counts = {col: _whole_numbers(cases[col]) for col in profile}
    for i in interviewed:
        row = cases.loc[ids == i].iloc[0]
        cells = [Cell(str(i))]
        prof = {}
        for col in profile:
            v = row[col]
            prof[col] = v
            if _missing(v):
                cells.append(Cell(fmt.missing, kind="number"))
            elif counts[col]:
                cells.append(Cell(fmt.count(v), kind="count", value=int(v)))
            elif pd.api.types.is_number(v):
                cells.append(Cell(fmt.estimate(v), kind="number", value=float(v)))
            else:
                cells.append(Cell(str(v)))
        mine = ex.loc[ex["case_id"] == i]
        ts = list(dict.fromkeys(mine["theme_id"]))
        cells.append(Cell("; ".join(name_of(t) for t in ts)))
        qs = [quote(x, None) for x in mine["text"].tolist()[:k_quotes]]
        cells.append(Cell("\n".join(qs), kind="quote"))
        body.append(Row(tuple(cells)))
        spec_rows.append({"case_id": i, **prof, "themes": ";".join(ts), "quotes": qs})
    not_surveyed = sorted(set(ex["case_id"].dropna()) - set(ids.dropna()))
    notes = ["One row per interviewed participant with survey data; quotes are pseudonymised and may be shortened (…)."]
    if not_surveyed:
        notes.append(f"{len(not_surveyed)} interviewed participant(s) without survey data are not shown.")
    if not body:
        raise CodebookError("No case has both survey data and coded excerpts; check that `cases[id]` and "
                            "`excerpts.case_id` use the same pseudonymous ids.")
    table = _finish_spec("Case-oriented joint display", title=title, number=number, orientation=orientation,
                         default_orientation="landscape", header=header, body=tuple(body), notes=tuple(notes))
    return JointDisplay("case_oriented", pd.DataFrame(spec_rows), table,
                        options=dict(opts, n_interviewed_not_surveyed=len(not_surveyed)))
