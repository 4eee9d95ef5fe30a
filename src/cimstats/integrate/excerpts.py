"""Coded excerpts: from CSV or from a QDA project through a code -> theme mapping; case linkage.

The coded-excerpt table has one row per excerpt coded with a theme:

==============  =============================================================
``excerpt_id``  identifier of the excerpt (selection guid for QDA imports)
``case_id``     pseudonymous participant id, the key shared with the survey
``theme_id``    theme from the codebook
``text``        the excerpt
``source``      document or interview it comes from
``start, end``  character positions in the source (when known)
``code``        the QDA code it came from (QDA imports)
``coder``       who coded it
==============  =============================================================

Codes are mapped to themes by a user-editable table (columns ``code`` and
``theme_id``; ``code`` may hold a code guid, its path ``Parent > Child`` or
its name). :func:`mapping_template` writes one row per code to fill in.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

from cimstats._files import atomic_write
from cimstats.errors import CimstatsWarning, RenderError, Report
from cimstats.integrate._errors import CodebookError

__all__ = [
    "EXCERPT_COLUMNS",
    "read_excerpts",
    "excerpts_from_qdpx",
    "mapping_template",
    "read_mapping",
    "link_cases",
    "UnmappedCodesWarning",
]

EXCERPT_COLUMNS = ["excerpt_id", "case_id", "theme_id", "text", "source", "start", "end", "code", "coder"]


class UnmappedCodesWarning(CimstatsWarning):
    """Some codings were not turned into excerpts because their code maps to no theme (counted)."""


def _standardise(df, where: str):
    import pandas as pd

    df = df.copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    ren = {"participant": "case_id", "participant_id": "case_id", "case": "case_id", "theme": "theme_id",
           "quote": "text", "excerpt": "text", "id": "excerpt_id", "document": "source", "user": "coder"}
    df = df.rename(columns={k: v for k, v in ren.items() if k in df.columns and v not in df.columns})
    missing = [c for c in ("case_id", "theme_id", "text") if c not in df.columns]
    if missing:
        raise CodebookError(
            f"{where} lacks column(s) {', '.join(missing)}; expected case_id, theme_id and text "
            "(and optionally excerpt_id, source, start, end, code, coder)."
        )
    for c in EXCERPT_COLUMNS:
        if c not in df.columns:
            df[c] = None
    if df["excerpt_id"].isna().all():
        df["excerpt_id"] = [f"E{k + 1}" for k in range(len(df))]
    for c in ("start", "end"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    for c in ("excerpt_id", "case_id", "theme_id", "text", "source", "code", "coder"):
        df[c] = df[c].astype("string")
    return df[EXCERPT_COLUMNS + [c for c in df.columns if c not in EXCERPT_COLUMNS]]


def read_excerpts(path_or_frame) -> Any:
    """Read coded excerpts from a CSV file (or standardise a DataFrame).

    Parameters
    ----------
    path_or_frame : str, path-like or pandas.DataFrame
        Needs columns ``case_id, theme_id, text`` (synonyms: ``participant``,
        ``theme``, ``quote``); other columns of :data:`EXCERPT_COLUMNS` are
        optional and extra columns are kept.

    Returns
    -------
    pandas.DataFrame
        The coded-excerpt table (:data:`EXCERPT_COLUMNS` first).

    Examples
    --------
    >>> import pandas as pd
    >>> ex = read_excerpts(pd.DataFrame({"participant": ["EN-0001"], "theme": ["T1"], "quote": ["We walk together."]}))
    >>> ex[["excerpt_id", "case_id", "theme_id"]].values.tolist()
    [['E1', 'EN-0001', 'T1']]
    """
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return _standardise(path_or_frame, "The excerpts table")
    p = Path(path_or_frame)
    if not p.exists():
        raise CodebookError(f"The excerpts file '{p}' does not exist; check the path.")
    df = pd.read_csv(p, dtype=str, keep_default_na=False).replace({"": None})
    return _standardise(df, f"The excerpts CSV '{p}'")


def mapping_template(project, path=None):
    """A code -> theme mapping table to fill in, one row per code of a QDA project.

    Columns: ``code`` (the code guid), ``code_path``, ``code_name``,
    ``n_codings`` and an empty ``theme_id``. Save it (``path=``, CSV), fill
    in ``theme_id`` for the codes that belong to a theme, and pass it to
    :func:`excerpts_from_qdpx`. A code may appear on several rows to map it to
    several themes.
    """
    import pandas as pd

    counts = project.codings["code_guid"].value_counts()
    out = pd.DataFrame({
        "code": project.codes["guid"],
        "code_path": project.codes["path"],
        "code_name": project.codes["name"],
        "n_codings": [int(counts.get(g, 0)) for g in project.codes["guid"]],
        "theme_id": "",
    })
    if path is not None:
        atomic_write(path, out.to_csv(index=False), error=RenderError)
    return out


def read_mapping(path_or_frame):
    """Read a code -> theme mapping (CSV with ``code`` and ``theme_id``, or a dict ``code -> theme_id``)."""
    import pandas as pd

    if isinstance(path_or_frame, Mapping):
        rows = []
        for k, v in path_or_frame.items():
            for t in ([v] if isinstance(v, str) else list(v)):
                rows.append({"code": str(k), "theme_id": str(t)})
        return pd.DataFrame(rows, columns=["code", "theme_id"])
    if isinstance(path_or_frame, pd.DataFrame):
        df = path_or_frame.copy()
    else:
        p = Path(path_or_frame)
        if not p.exists():
            raise CodebookError(f"The code-to-theme mapping '{p}' does not exist; write one with mapping_template().")
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("code", "theme_id") if c not in df.columns]
    if missing:
        raise CodebookError(f"The code-to-theme mapping lacks column(s) {', '.join(missing)}; expected code and theme_id.")
    df = df.loc[df["theme_id"].fillna("").astype(str).str.strip() != ""].copy()
    df["code"] = df["code"].astype(str).str.strip()
    df["theme_id"] = df["theme_id"].astype(str).str.strip()
    return df[["code", "theme_id"]].reset_index(drop=True)


def excerpts_from_qdpx(project, mapping, *, case_ids: Mapping[str, str] | None = None, codebook=None,
                       include_children: bool = True):
    """Coded excerpts from a QDA project, mapping its codes onto themes.

    Parameters
    ----------
    project : QDAProject
        From :func:`cimstats.read_qdpx`.
    mapping : path, DataFrame or dict
        Code -> theme table (see :func:`read_mapping`); ``code`` matches a
        code guid, then a code path (``Parent > Child``), then a unique code
        name.
    case_ids : dict, optional
        Source name (or guid) -> pseudonymous case id. Without it the case
        is the QDA case holding the source, or else the source name.
    codebook : ThemeCodebook, optional
        When given, theme ids in the mapping must exist in it.
    include_children : bool
        Codings with a sub-code of a mapped code count for the parent's
        theme too (default), unless the sub-code has its own mapping.

    Returns
    -------
    pandas.DataFrame
        The coded-excerpt table. Codings whose code maps to no theme are
        counted in an :class:`UnmappedCodesWarning` and in
        ``result.attrs["unmapped_codings"]``; nothing else is dropped.

    Raises
    ------
    CodebookError
        When mapping entries match no code, a name is ambiguous, or a theme
        is not in ``codebook`` (all listed in ``report``).
    """
    import pandas as pd

    mp = read_mapping(mapping)
    codes = project.codes
    report = Report()
    by_guid = set(codes["guid"])
    path_to_guid = dict(zip(codes["path"], codes["guid"]))
    name_groups = codes.groupby("name")["guid"].apply(list).to_dict()
    resolved: dict[str, list[str]] = {}
    for k, r in enumerate(mp.itertuples(index=False)):
        code = r.code
        if code in by_guid:
            g = code
        elif code in path_to_guid:
            g = path_to_guid[code]
        elif code in name_groups and len(name_groups[code]) == 1:
            g = name_groups[code][0]
        elif code in name_groups:
            report.add("M002", f"Mapping row {k + 1}: code name {code!r} is shared by {len(name_groups[code])} codes.",
                       row=k + 1, remedy="Use the code path 'Parent > Child' or the guid.")
            continue
        else:
            report.add("M001", f"Mapping row {k + 1}: code {code!r} is not a code guid, path or name in the project.",
                       row=k + 1, remedy="Copy codes from mapping_template(project).")
            continue
        if codebook is not None and r.theme_id not in set(codebook.themes["theme_id"]):
            report.add("M003", f"Mapping row {k + 1}: theme {r.theme_id!r} is not in the codebook.", row=k + 1)
            continue
        resolved.setdefault(g, [])
        if r.theme_id not in resolved[g]:
            resolved[g].append(r.theme_id)
    if report.has_errors:
        raise CodebookError(f"The code-to-theme mapping has {len(report.errors)} problem(s); see `.report` "
                            f"(first: {report.errors[0].message})", report=report)
    if include_children:
        parent = dict(zip(codes["guid"], codes["parent"]))
        for g in codes["guid"]:
            if g in resolved:
                continue
            p = parent.get(g)
            while p is not None and isinstance(p, str):
                if p in resolved:
                    resolved[g] = list(resolved[p])
                    break
                p = parent.get(p)

    cod = project.codings
    case_of_source: dict[str, str] = {}
    if case_ids is not None:
        for s_guid, s_name in zip(project.sources["guid"], project.sources["name"]):
            if s_name in case_ids:
                case_of_source[s_guid] = str(case_ids[s_name])
            elif s_guid in case_ids:
                case_of_source[s_guid] = str(case_ids[s_guid])
    elif not project.case_sources.empty:
        for r in project.case_sources.itertuples(index=False):
            case_of_source.setdefault(r.source_guid, r.case)
    rows = []
    unmapped = 0
    for r in cod.itertuples(index=False):
        themes = resolved.get(r.code_guid, [])
        if not themes:
            unmapped += 1
            continue
        case = case_of_source.get(r.source_guid, r.source if case_ids is None else None)
        for t in themes:
            rows.append({
                "excerpt_id": r.selection_guid or r.coding_guid, "case_id": case, "theme_id": t, "text": r.text,
                "source": r.source, "start": r.start, "end": r.end, "code": r.code_path, "coder": r.user,
            })
    if unmapped:
        warnings.warn(
            f"{unmapped} of {len(cod)} codings have codes that map to no theme and are not excerpts; "
            "add their codes to the mapping if they belong to a theme.",
            UnmappedCodesWarning, stacklevel=2,
        )
    out = _standardise(pd.DataFrame(rows, columns=EXCERPT_COLUMNS), "The QDA excerpts")
    no_case = int(out["case_id"].isna().sum())
    if no_case:
        warnings.warn(f"{no_case} excerpts come from sources missing from `case_ids`; their case_id is missing.",
                      CimstatsWarning, stacklevel=2)
    out.attrs["unmapped_codings"] = unmapped
    return out


def link_cases(cases, excerpts, *, id: str = "patient_id", themes: list[str] | None = None):
    """Join quantitative cases and qualitative excerpts by pseudonymous id.

    Parameters
    ----------
    cases : pandas.DataFrame
        One row per case (e.g. survey participants who were interviewed),
        with the id column ``id``.
    excerpts : pandas.DataFrame
        Coded-excerpt table (``case_id`` holds the same ids).
    id : str
        The id column of ``cases``.
    themes : list of str, optional
        Themes to report (default: every theme in ``excerpts``).

    Returns
    -------
    pandas.DataFrame
        ``cases`` plus ``n_excerpts`` and one 0/1 column ``theme:<id>`` per
        theme (1 when the case has at least one excerpt of that theme). The
        ids in excerpts without a case row are listed in
        ``attrs["unmatched_excerpt_ids"]`` (and warned about); cases without
        excerpts have zeros.

    Examples
    --------
    >>> import pandas as pd
    >>> cases = pd.DataFrame({"patient_id": ["A", "B"], "ce": [3.1, 4.0]})
    >>> ex = read_excerpts(pd.DataFrame({"case_id": ["A", "A", "C"], "theme_id": ["T1", "T2", "T1"], "text": ["x", "y", "z"]}))
    >>> out = link_cases(cases, ex)
    >>> out[["patient_id", "n_excerpts", "theme:T1", "theme:T2"]].values.tolist()
    [['A', 2, 1, 1], ['B', 0, 0, 0]]
    """
    import pandas as pd

    if id not in cases.columns:
        raise CodebookError(f"`id={id!r}` is not a column of `cases`; available: {', '.join(map(str, cases.columns))}.")
    dup = cases[id].duplicated()
    if dup.any():
        raise CodebookError(
            f"`cases` has {int(dup.sum())} repeated value(s) of {id!r} (e.g. {cases.loc[dup, id].iloc[0]!r}); "
            "keep one row per case (e.g. one wave) before linking."
        )
    ex = excerpts
    ids = cases[id].astype("string")
    themes = themes if themes is not None else sorted(ex["theme_id"].dropna().unique().tolist())
    out = cases.copy()
    n = ex.groupby("case_id").size()
    out["n_excerpts"] = [int(n.get(i, 0)) for i in ids]
    for t in themes:
        have = set(ex.loc[ex["theme_id"] == t, "case_id"].dropna())
        out[f"theme:{t}"] = [int(i in have) for i in ids]
    unmatched = sorted(set(ex["case_id"].dropna()) - set(ids.dropna()))
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} case id(s) in the excerpts have no row in `cases` (e.g. {unmatched[0]!r}); "
            "their excerpts are not linked.",
            CimstatsWarning, stacklevel=2,
        )
    out.attrs["unmatched_excerpt_ids"] = unmatched
    return out
