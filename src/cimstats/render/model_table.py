"""Side-by-side tables of several fitted models (one column per model).

:func:`model_table` lays any fitted results next to each other, as journals
print regression tables: one row per term (the union of every model's terms,
aligned by name, blank where a model does not have the term), the estimate with
its standard error or confidence interval beneath it, optional significance
stars, and a block of fit statistics taken from each model's ``glance()``.

The function reads only each result's ``tidy()`` and ``glance()`` tables, so it
takes every kind of fitted result (linear and generalised linear mixed models,
GEE, survey GLMs, structural equation models, mediation, pooled results from
multiple imputation) and plain tidy-shaped DataFrames alike. It returns a
:class:`~cimstats.render.TableSpec`, which every renderer writes (Word, Excel,
HTML, LaTeX, Markdown, text).

Examples
--------
>>> import pandas as pd
>>> from cimstats.render import model_table, to_text
>>> a = pd.DataFrame({"term": ["(Intercept)", "age"], "estimate": [1.5, 0.25],
...                   "std_error": [0.5, 0.05], "p_value": [0.003, 0.0001]})
>>> b = pd.DataFrame({"term": ["(Intercept)", "age", "deprivation"], "estimate": [1.2, 0.2, -0.4],
...                   "std_error": [0.4, 0.05, 0.1], "p_value": [0.003, 0.0001, 0.0002]})
>>> spec = model_table([a, b], names=["Age only", "Adjusted"])
>>> [c.text for c in spec.grid()[0]]
['Term', 'Age only', 'Adjusted']
>>> [c.text for c in spec.grid()[5]]
['deprivation', '', '\u22120.40']
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

__all__ = ["model_table", "model_table_frame", "STATISTICS", "GLANCE_LABELS"]

#: what can be shown beneath each estimate
STATISTICS = ("std_error", "ci", "statistic", "p_value", None)
#: readable row names of common glance() columns
GLANCE_LABELS = {
    "nobs": "Observations", "n_dropped": "Rows set aside", "aic": "AIC", "bic": "BIC", "loglik": "Log likelihood",
    "deviance": "Deviance", "sigma": "Residual SD", "qic": "QIC", "qicu": "QICu", "n_clusters": "Clusters",
    "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA", "srmr": "SRMR", "chisq": "Chi-square", "df": "df",
    "reml_criterion": "REML criterion", "dispersion": "Dispersion", "n_boot": "Bootstrap resamples",
    "m": "Imputations", "family": "Family", "link": "Link", "method": "Method", "estimator": "Estimator",
}
_COUNT_STATS = {"nobs", "n_dropped", "n_clusters", "n_boot", "m", "npar", "iterations", "n_strata", "n_psu"}
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


def _as_tidy(obj, level: float, position: int):
    """(tidy DataFrame, glance DataFrame or None) of one model."""
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj, None
    tidy = getattr(obj, "tidy", None)
    if not callable(tidy):
        raise RenderError(
            f"`results` item {position} is of type {type(obj).__name__}, which has no tidy() table; pass fitted "
            f"results (lmm, glmm, gee, glm, sem, mediation, ...) or tidy-shaped DataFrames.")
    try:
        t = tidy(level=level)
    except TypeError:  # a result whose tidy() takes no level
        t = tidy()
    g = getattr(obj, "glance", None)
    return t, (g() if callable(g) else None)


def _unique_terms(t, position: int) -> list[str]:
    """The model's row names: ``term`` made unique (group, then a counter) so no row is lost."""
    if "term" not in t.columns:
        raise RenderError(
            f"`results` item {position} has no 'term' column (columns: {', '.join(map(str, t.columns))}); "
            f"pass a fitted result or a tidy() table with term, estimate and std_error columns.")
    terms = [str(v) for v in t["term"]]
    if len(set(terms)) < len(terms) and "group" in t.columns and t["group"].nunique(dropna=False) > 1:
        terms = [f"{a} (group {g})" for a, g in zip(terms, t["group"])]
    seen: dict[str, int] = {}
    out = []
    for a in terms:
        k = seen.get(a, 0)
        seen[a] = k + 1
        out.append(a if k == 0 else f"{a} ({k + 1})")
    return out


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def model_table_frame(results: Sequence[Any] | Mapping[str, Any], *, names: Sequence[str] | None = None,
                      level: float = 0.95):
    """The numbers behind :func:`model_table`, one row per (term, model).

    Parameters
    ----------
    results, names, level
        As in :func:`model_table`.

    Returns
    -------
    pandas.DataFrame
        Columns ``term``, ``model`` and every column of the model's ``tidy()``
        (exact values, not rounded), in table order.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"term": ["x"], "estimate": [0.5], "std_error": [0.1]})
    >>> model_table_frame({"A": t, "B": t})[["term", "model", "estimate"]].to_dict("list")
    {'term': ['x', 'x'], 'model': ['A', 'B'], 'estimate': [0.5, 0.5]}
    """
    import pandas as pd

    labels, tidies, _ = _collect(results, names, level)
    frames = []
    for lab, (t, terms) in zip(labels, tidies):
        f = t.reset_index(drop=True).copy()
        f["term"] = terms
        f.insert(1, "model", lab)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _reml_note(labels, glances, shown) -> str:
    """A note naming the models whose likelihood statistics in the fit block are REML values."""
    import pandas as pd

    likelihood = [k for k in ("aic", "bic", "loglik") if k in (shown or ())]
    if not likelihood:
        return ""
    reml = [lab for lab, g in zip(labels, glances)
            if isinstance(g, pd.DataFrame) and "method" in g.columns and len(g)
            and str(g["method"].iloc[0]).upper() == "REML"]
    if not reml:
        return ""
    names = {"aic": "AIC", "bic": "BIC", "loglik": "log likelihood"}
    stats = ", ".join(names[k] for k in likelihood)
    return (f"{', '.join(reml)} {'was' if len(reml) == 1 else 'were'} fitted by REML: {'its' if len(reml) == 1 else 'their'} "
            f"{stats} are REML values, comparable only between models with the same fixed effects; refit with "
            "method='ML' to compare models that differ in fixed effects.")


def _collect(results, names, level):
    import pandas as pd

    if isinstance(results, Mapping):
        items = list(results.items())
        labels = [str(k) for k, _ in items]
        objs = [v for _, v in items]
        if names is not None:
            raise RenderError("`names` was given along with a mapping of results; name the models either by the "
                              "mapping's keys or by `names`, not both.")
    elif isinstance(results, pd.DataFrame) or hasattr(results, "tidy"):
        objs, labels = [results], None
    else:
        try:
            objs = list(results)
        except TypeError:
            raise RenderError(f"`results` is of type {type(results).__name__}; pass a list of fitted results "
                              f"(or a mapping of model name to result).") from None
        labels = None
    if not objs:
        raise RenderError("`results` is empty; pass at least one fitted result.")
    if labels is None:
        if names is None:
            labels = [f"({i + 1})" for i in range(len(objs))]
        else:
            labels = [str(n) for n in names]
            if len(labels) != len(objs):
                raise RenderError(f"`names` has {len(labels)} entries but {len(objs)} results were given; "
                                  f"give one name per result.")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise RenderError(f"`level={level!r}` must be a confidence level between 0 and 1, such as 0.95.")
    tidies, glances = [], []
    for i, obj in enumerate(objs, start=1):
        t, g = _as_tidy(obj, level, i)
        if "estimate" not in t.columns:
            raise RenderError(f"`results` item {i} has no 'estimate' column (columns: "
                              f"{', '.join(map(str, t.columns))}); pass a fitted result or its tidy() table.")
        tidies.append((t, _unique_terms(t, i)))
        glances.append(g)
    return labels, tidies, glances


def model_table(results: Sequence[Any] | Mapping[str, Any], *, names: Sequence[str] | None = None,
                level: float = 0.95, statistic: str | None = "std_error", stars: bool = False,
                glance: Sequence[str] = ("nobs", "aic", "bic"), title: str | None = None,
                term_labels: Mapping[str, str] | None = None, number_format: NumberFormat | None = None,
                **spec_options) -> TableSpec:
    """Several fitted models side by side, one column per model (as R's ``modelsummary``).

    Parameters
    ----------
    results : sequence of fitted results, or mapping of name to result
        Any fitted results (``lmm``, ``glmm``, ``gee``, ``glm``, ``sem``,
        ``mediation``, pooled results...) or tidy-shaped DataFrames (a
        ``term`` and an ``estimate`` column, optionally ``std_error``,
        ``ci_lower``, ``ci_upper``, ``statistic``, ``p_value``). A mapping
        names the columns by its keys.
    names : sequence of str, optional
        Column headings, one per result; default ``(1)``, ``(2)``, ...
    level : float
        Confidence level of the intervals (passed to each ``tidy()``).
    statistic : {"std_error", "ci", "statistic", "p_value", None}
        What is written beneath each estimate: the standard error in
        parentheses, the confidence interval in brackets, the test statistic,
        the p-value, or nothing.
    stars : bool
        Mark estimates with ``*`` p < 0.05, ``**`` p < 0.01, ``***`` p < 0.001
        (explained in a note).
    glance : sequence of str
        Columns of each model's ``glance()`` shown in the fit block below the
        terms (a model without the statistic gets a blank cell); ``()`` for none.
    title : str, optional
        Table title (default "Model estimates").
    term_labels : mapping, optional
        Term -> text shown in the first column (terms not listed keep their names).
    number_format : NumberFormat, optional
        Number convention (default :class:`~cimstats.render.NumberFormat`).
    **spec_options
        Other :class:`~cimstats.render.TableSpec` fields (``number``,
        ``caption``, ``notes``, ``label``, ``orientation``).

    Returns
    -------
    TableSpec
        Header ``Term`` plus one column per model; for each term an estimate
        row (cell ``value`` is the exact estimate of that model's ``tidy()``)
        and, unless ``statistic=None``, a row beneath; then a ``Fit`` group
        with the glance statistics. Render it with :func:`cimstats.render.render`
        or any ``to_*`` renderer.

    Raises
    ------
    RenderError
        When a result has no tidy table, a table lacks a ``term`` or
        ``estimate`` column, ``names`` does not match the number of results,
        or ``statistic`` is not one of the choices.

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100), "z": rng.normal(size=100)})
    >>> d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
    >>> m1 = cimstats.lmm("y ~ x + (1 | g)", d)
    >>> m2 = cimstats.glm("y ~ x + z", d)
    >>> spec = cimstats.model_table({"Mixed": m1, "Survey GLM": m2}, statistic="ci", stars=True)
    >>> [c.text for c in spec.grid()[0]]
    ['Term', 'Mixed', 'Survey GLM']
    >>> spec.to_frame()["Term"].tolist()[:6]
    ['(Intercept)', '', 'x', '', 'z', '']
    """
    import pandas as pd

    if statistic not in STATISTICS:
        raise RenderError(f"`statistic={statistic!r}` is not known; use one of "
                          f"{', '.join(repr(s) for s in STATISTICS)}.")
    if isinstance(glance, str):
        glance = (glance,)
    fmt = number_format or NumberFormat()
    labels, tidies, glances = _collect(results, names, level)
    term_labels = dict(term_labels or {})
    order: dict[str, None] = {}
    for _, terms in tidies:
        order.update(dict.fromkeys(terms))
    by_model = []
    for t, terms in tidies:
        by_model.append({a: r for a, r in zip(terms, t.to_dict("records"))})
    pct = f"{level * 100:g}%"

    def star(p) -> str:
        if not stars:
            return ""
        p = _num(p)
        for cut, mark in _STARS:
            if p < cut:
                return mark
        return ""

    body: list[Row] = []
    for term in order:
        est_cells = [Cell(term_labels.get(term, term))]
        sub_cells = [Cell("")]
        for rows in by_model:
            r = rows.get(term)
            if r is None:
                est_cells.append(Cell("", kind="estimate"))
                sub_cells.append(Cell("", kind="estimate"))
                continue
            e = _num(r.get("estimate"))
            est_cells.append(Cell("" if math.isnan(e) else fmt.estimate(e) + star(r.get("p_value")), kind="estimate",
                                  value=None if math.isnan(e) else e))
            if statistic == "std_error":
                s = _num(r.get("std_error"))
                sub_cells.append(Cell("" if math.isnan(s) else f"({fmt.estimate(s)})", kind="estimate",
                                      value=None if math.isnan(s) else s))
            elif statistic == "ci":
                lo, hi = _num(r.get("ci_lower")), _num(r.get("ci_upper"))
                ok = not (math.isnan(lo) or math.isnan(hi))
                sub_cells.append(Cell(fmt.ci(lo, hi) if ok else "", kind="ci"))
            elif statistic == "statistic":
                s = _num(r.get("statistic"))
                sub_cells.append(Cell("" if math.isnan(s) else f"({fmt.estimate(s)})", kind="number",
                                      value=None if math.isnan(s) else s))
            elif statistic == "p_value":
                p = _num(r.get("p_value"))
                sub_cells.append(Cell("" if math.isnan(p) else f"({fmt.p(p)})", kind="p_value",
                                      value=None if math.isnan(p) else p))
        body.append(Row(tuple(est_cells)))
        if statistic is not None:
            body.append(Row(tuple(sub_cells)))
    ncols = len(labels) + 1
    if glance:
        gl_rows = []
        for key in glance:
            cells = [Cell(GLANCE_LABELS.get(key, key))]
            found = False
            for g in glances:
                v = None
                if isinstance(g, pd.DataFrame) and key in g.columns and len(g):
                    v = g[key].iloc[0]
                if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                    cells.append(Cell("", kind="number"))
                    continue
                found = True
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                    cells.append(Cell(str(v)))
                elif key in _COUNT_STATS:
                    cells.append(Cell(fmt.count(v), kind="count", value=int(v)))
                else:
                    f = _num(v)
                    cells.append(Cell(fmt.estimate(f), kind="number", value=f) if not math.isnan(f)
                                 else Cell(str(v)))
            if found:
                gl_rows.append(Row(tuple(cells)))
        if gl_rows:
            body.append(Row.group("Fit", ncols))
            body.extend(gl_rows)
    notes = list(spec_options.pop("notes", ()) or ())
    if isinstance(notes, str):
        notes = [notes]
    beneath = {"std_error": "Standard errors in parentheses.",
               "ci": f"{pct} confidence intervals in brackets.",
               "statistic": "Test statistics in parentheses.",
               "p_value": "p-values in parentheses.", None: ""}[statistic]
    if beneath:
        notes.append(beneath)
    if stars:
        notes.append("* p < 0.05, ** p < 0.01, *** p < 0.001.")
    reml_note = _reml_note(labels, glances, glance)
    if reml_note:
        notes.append(reml_note)
    header = ((Cell("Term"),) + tuple(Cell(lab) for lab in labels),)
    return TableSpec(title="Model estimates" if title is None else str(title), header=header, body=tuple(body),
                     notes=tuple(notes), **spec_options)
