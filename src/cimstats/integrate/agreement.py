"""Prominence of themes and agreement between two coders, for convergence coding.

The triangulation protocol of Farmer, Robinson, Elliott and Eyles (2006)
compares sets of results on the meaning of each theme and on its
*prominence*, "the number of participants mentioning a theme", and asks how
far researchers agree. cimstats records both for every theme:

* :func:`theme_prominence`: distinct participants (``case_id``) among the
  coded excerpts of the theme (a participant counts once however many
  excerpts they have), and the number of excerpts;
* :func:`coder_agreement`: when the excerpts were coded by two coders (the
  ``coder`` column, e.g. the users of a QDA project), percent agreement and
  Cohen's kappa per theme. The unit is a participant (``unit="case"``,
  default), a source document (``"source"``) or an excerpt
  (``"excerpt"``): for each unit either coder coded, each coder did or did
  not apply the theme, and the two columns of yes/no are compared.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from cimstats.integrate._errors import CodebookError

__all__ = ["theme_prominence", "coder_agreement", "AGREEMENT_UNITS"]

#: unit of agreement -> column of the coded-excerpt table
AGREEMENT_UNITS = {"case": "case_id", "source": "source", "excerpt": "excerpt_id"}


def _members(themes, excerpts, descendants):
    ids = list(themes) if themes is not None else sorted(excerpts["theme_id"].dropna().astype(str).unique().tolist())
    desc = {t: set((descendants or {}).get(t, {t})) | {t} for t in ids}
    return ids, desc


def theme_prominence(excerpts, *, themes: Sequence[str] | None = None,
                     descendants: Mapping[str, set] | None = None):
    """How many participants raised each theme.

    Parameters
    ----------
    excerpts : pandas.DataFrame
        Coded excerpts (``case_id``, ``theme_id``; see :func:`read_excerpts`).
    themes : sequence of str, optional
        Themes to count, in order (default: every theme in ``excerpts``).
    descendants : mapping, optional
        Theme id -> ids whose excerpts count toward it (sub-themes).

    Returns
    -------
    pandas.DataFrame
        ``theme_id, n_participants`` (distinct ``case_id`` among the theme's
        excerpts), ``n_excerpts`` and ``n_interviewed`` (distinct
        ``case_id`` in the whole table). Excerpts without a ``case_id`` are
        counted in ``n_excerpts`` only.

    Examples
    --------
    >>> import pandas as pd
    >>> ex = pd.DataFrame({"case_id": ["A", "A", "B", "C"], "theme_id": ["T1", "T1", "T1", "T2"]})
    >>> theme_prominence(ex).values.tolist()
    [['T1', 2, 3, 3], ['T2', 1, 1, 3]]
    """
    import pandas as pd

    ids, desc = _members(themes, excerpts, descendants)
    n_all = int(excerpts["case_id"].dropna().nunique())
    rows = []
    for t in ids:
        sub = excerpts.loc[excerpts["theme_id"].isin(desc[t])]
        rows.append({"theme_id": t, "n_participants": int(sub["case_id"].dropna().nunique()),
                     "n_excerpts": int(len(sub)), "n_interviewed": n_all})
    return pd.DataFrame(rows, columns=["theme_id", "n_participants", "n_excerpts", "n_interviewed"])


def _kappa(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Percent agreement and Cohen's kappa of a 2 x 2 table (a both yes, b first only, c second only, d neither)."""
    n = a + b + c + d
    if n == 0:
        return float("nan"), float("nan")
    po = (a + d) / n
    pe = ((a + b) * (a + c) + (c + d) * (b + d)) / (n * n)
    kappa = float("nan") if pe >= 1.0 else (po - pe) / (1.0 - pe)
    return 100.0 * po, kappa


def coder_agreement(excerpts, *, coders: Sequence[str] | None = None, unit: str = "case",
                    themes: Sequence[str] | None = None, descendants: Mapping[str, set] | None = None):
    """Percent agreement and Cohen's kappa between two coders, per theme.

    Parameters
    ----------
    excerpts : pandas.DataFrame
        Coded excerpts with a ``coder`` column naming who coded each row.
    coders : pair of str, optional
        The two coders to compare (default: the two coders of the table;
        required when it has more than two).
    unit : {"case", "source", "excerpt"}
        What is compared (see the module notes); the units are those either
        coder coded with any theme.
    themes, descendants :
        As for :func:`theme_prominence`.

    Returns
    -------
    pandas.DataFrame or None
        ``theme_id, unit, n_units, both, first_only, second_only, neither,
        percent_agreement, kappa, coders``; None when the table names fewer
        than two coders (agreement cannot be computed). ``kappa`` is missing
        when chance agreement is 1 (both coders applied the theme to every
        unit, or to none).

    Raises
    ------
    cimstats.integrate.CodebookError
        When ``unit`` is unknown, its column is empty, the table has more
        than two coders and ``coders`` is not given, or ``coders`` names a
        coder absent from the table.

    Examples
    --------
    >>> import pandas as pd
    >>> ex = pd.DataFrame({"case_id": ["A", "B", "C", "A", "B", "D"], "theme_id": ["T1"] * 6,
    ...                    "coder": ["ann", "ann", "ann", "bo", "bo", "bo"]})
    >>> r = coder_agreement(ex)
    >>> r[["n_units", "both", "first_only", "second_only"]].values.tolist(), float(r.loc[0, "percent_agreement"])
    ([[4, 2, 1, 1]], 50.0)
    """
    import pandas as pd

    if unit not in AGREEMENT_UNITS:
        raise CodebookError(f"`unit={unit!r}` is not known; expected one of {', '.join(AGREEMENT_UNITS)}.")
    col = AGREEMENT_UNITS[unit]
    if "coder" not in excerpts.columns:
        return None
    present = [c for c in pd.unique(excerpts["coder"].dropna().astype(str))]
    if coders is None:
        if len(present) < 2:
            return None
        if len(present) > 2:
            raise CodebookError(f"The excerpts name {len(present)} coders ({', '.join(present)}); pass `coders=` "
                                "with the two to compare.")
        coders = sorted(present)
    coders = [str(c) for c in coders]
    if len(coders) != 2 or coders[0] == coders[1]:
        raise CodebookError(f"`coders` must name two different coders; got {coders!r}.")
    absent = [c for c in coders if c not in present]
    if absent:
        raise CodebookError(f"`coders` names {', '.join(map(repr, absent))}, who coded no excerpt; coders in the "
                            f"table: {', '.join(present) or 'none'}.")
    ex = excerpts.loc[excerpts["coder"].astype("string").isin(coders)]
    if ex[col].isna().all():
        raise CodebookError(f"Agreement by {unit} needs the `{col}` column of the excerpts, which is empty; "
                            f"choose another `unit`.")
    ex = ex.loc[ex[col].notna()]
    universe = sorted(ex[col].astype(str).unique())
    ids, desc = _members(themes, excerpts, descendants)
    rows = []
    for t in ids:
        sub = ex.loc[ex["theme_id"].isin(desc[t])]
        s1 = set(sub.loc[sub["coder"] == coders[0], col].astype(str))
        s2 = set(sub.loc[sub["coder"] == coders[1], col].astype(str))
        a = len(s1 & s2)
        b = len(s1 - s2)
        c = len(s2 - s1)
        d = len(universe) - a - b - c
        pa, k = _kappa(a, b, c, d)
        rows.append({"theme_id": t, "unit": unit, "n_units": len(universe), "both": a, "first_only": b,
                     "second_only": c, "neither": d, "percent_agreement": pa, "kappa": k,
                     "coders": f"{coders[0]} vs {coders[1]}"})
    return pd.DataFrame(rows, columns=["theme_id", "unit", "n_units", "both", "first_only", "second_only", "neither",
                                       "percent_agreement", "kappa", "coders"])
