"""Longitudinal measurement invariance: the same items, the same people, two or more waves.

The long table (one row per person and wave) is turned into a wide one (one
row per person) whose columns are named ``<item>_w<wave>``; each wave gets its
own factor ``<factor>_w<wave>``. The models of the sequence are written out in
lavaan syntax by :func:`longitudinal_syntax` and fitted with
:func:`~cimstats.models.sem.fit.sem`; consecutive models are compared by the
same table as the across-group sequence (:func:`~.invariance.comparison_table`).

============  ================================================================
configural    one factor per wave, the same items; everything free per wave
metric        + loadings equal across waves
scalar        + intercepts equal across waves; factor mean 0 at the first
              wave and free at later waves
strict        + residual variances equal across waves
============  ================================================================

In every model the factor variances and covariances are free and the
residuals of the same item at different waves covary (the item-specific
variance that persists over time).
"""

from __future__ import annotations

import math
import re
import warnings
from types import MappingProxyType

import numpy as np
import pandas as pd

from cimstats.errors import MissingDataWarning, ModelSpecificationError
from cimstats.models._result import dropped_frame
from cimstats.models.checks import check_model_columns, check_unique_columns
from cimstats.io.survey import analysis_frame

from .fit import sem
from .invariance import InvarianceResult, check_steps, comparison_table

__all__ = ["longitudinal_invariance", "longitudinal_syntax", "wide_name"]

_SAFE = re.compile(r"[^A-Za-z0-9_]")
_NAME_RE = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
# step -> parameter types held equal across waves
_EQUAL = {
    "configural": (),
    "metric": ("loadings",),
    "scalar": ("loadings", "intercepts"),
    "strict": ("loadings", "intercepts", "residuals"),
}


def _wave_text(w) -> str:
    """A wave value as written in column names: integers without a decimal point."""
    if isinstance(w, (bool, np.bool_)):
        return str(int(w))
    if isinstance(w, (int, np.integer)):
        return str(int(w))
    if isinstance(w, (float, np.floating)) and math.isfinite(w) and float(w).is_integer():
        return str(int(w))
    return _SAFE.sub("_", str(w))


def _show(v) -> str:
    """A value as the user wrote it (numpy scalars as plain numbers, strings quoted)."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


def wide_name(name: str, wave) -> str:
    """The wide column (or factor) name of ``name`` at ``wave``: ``<name>_w<wave>``.

    Wave values are written as they are (integers without a decimal point);
    characters other than letters, digits and ``_`` become ``_``.

    Examples
    --------
    >>> wide_name("ce_1", 0), wide_name("F", 1.0), wide_name("ce_1", "follow-up")
    ('ce_1_w0', 'F_w1', 'ce_1_wfollow_up')
    """
    return f"{name}_w{_wave_text(wave)}"


def _parse_partial(partial, items, factor) -> dict:
    """``partial`` -> {"loadings": set, "intercepts": set, "residuals": set} of item names."""
    if isinstance(partial, str):
        partial = (partial,)
    out = {"loadings": set(), "intercepts": set(), "residuals": set()}
    for entry in partial:
        text = str(entry).strip()
        m = re.fullmatch(r"(\S+)\s*=~\s*(\S+)", text)
        if m:
            if m.group(1) != factor:
                raise ModelSpecificationError(
                    f"`partial` lists '{text}', but the factor is called '{factor}'; write e.g. "
                    f"'{factor} =~ {items[1]}'."
                )
            kind, item = "loadings", m.group(2)
        elif (m := re.fullmatch(r"(\S+)\s*~\s*1", text)):
            kind, item = "intercepts", m.group(1)
        elif (m := re.fullmatch(r"(\S+)\s*~~\s*(\S+)", text)):
            if m.group(1) != m.group(2):
                raise ModelSpecificationError(
                    f"`partial` lists '{text}', a covariance of two items; only an item's residual variance "
                    f"('{m.group(1)} ~~ {m.group(1)}') can be freed across waves."
                )
            kind, item = "residuals", m.group(1)
        elif _NAME_RE.match(text):
            kind, item = None, text
        else:
            raise ModelSpecificationError(
                f"`partial` lists '{text}'; expected an item name (frees its loading, intercept and residual "
                f"variance across waves) or one parameter: '{factor} =~ item', 'item ~ 1' or 'item ~~ item'."
            )
        if item not in items:
            raise ModelSpecificationError(
                f"`partial` names '{item}', which is not one of `items` ({', '.join(items)})."
            )
        if kind == "loadings" and item == items[0]:
            raise ModelSpecificationError(
                f"`partial` frees the loading of '{item}', the marker item whose loading is fixed at 1 at every "
                f"wave; put another item first in `items` to make it the marker."
            )
        if kind is None:
            out["intercepts"].add(item)
            out["residuals"].add(item)
            if item != items[0]:
                out["loadings"].add(item)
        else:
            out[kind].add(item)
    return out


def longitudinal_syntax(items, waves, *, factor: str = "F", step: str = "configural", partial=()) -> str:
    """The lavaan model of one step of the longitudinal invariance sequence, written out.

    Parameters
    ----------
    items : sequence of str
        Item names (as in the long table); the first is the marker.
    waves : sequence
        Wave values in model order (the first is the reference wave).
    factor : str
        Factor name; the factor at each wave is ``wide_name(factor, wave)``.
    step : {"configural", "metric", "scalar", "strict"}
    partial : sequence of str
        Items (or single parameters) exempt from the equality constraints; see
        :func:`longitudinal_invariance`.

    Returns
    -------
    str
        lavaan syntax for the wide data (columns ``wide_name(item, wave)``).
        Equal parameters share the labels ``load_<item>``, ``int_<item>`` and
        ``res_<item>``.

    Examples
    --------
    >>> print(longitudinal_syntax(["a", "b", "c"], [0, 1], step="metric"))
    # one factor per wave; 'a' is the marker (loading 1 at every wave)
    F_w0 =~ 1*a_w0 + load_b*b_w0 + load_c*c_w0
    F_w1 =~ 1*a_w1 + load_b*b_w1 + load_c*c_w1
    # factor variances and covariances
    F_w0 ~~ F_w0
    F_w1 ~~ F_w1
    F_w0 ~~ F_w1
    # factor means: 0 at every wave
    F_w0 ~ 0*1
    F_w1 ~ 0*1
    # item intercepts
    a_w0 ~ 1
    a_w1 ~ 1
    b_w0 ~ 1
    b_w1 ~ 1
    c_w0 ~ 1
    c_w1 ~ 1
    # residual variances
    a_w0 ~~ a_w0
    a_w1 ~~ a_w1
    b_w0 ~~ b_w0
    b_w1 ~~ b_w1
    c_w0 ~~ c_w0
    c_w1 ~~ c_w1
    # the same item at different waves: residual covariances
    a_w0 ~~ a_w1
    b_w0 ~~ b_w1
    c_w0 ~~ c_w1
    """
    check_steps(step)
    items = list(items)
    equal = _EQUAL[step]
    free = _parse_partial(partial, items, factor)
    fac = [wide_name(factor, w) for w in waves]
    lines = [f"# one factor per wave; '{items[0]}' is the marker (loading 1 at every wave)"]
    for w, f in zip(waves, fac):
        terms = [f"1*{wide_name(items[0], w)}"]
        for it in items[1:]:
            lab = f"load_{it}*" if "loadings" in equal and it not in free["loadings"] else ""
            terms.append(f"{lab}{wide_name(it, w)}")
        lines.append(f"{f} =~ " + " + ".join(terms))
    lines.append("# factor variances and covariances")
    lines += [f"{f} ~~ {f}" for f in fac]
    lines += [f"{fac[i]} ~~ {fac[j]}" for i in range(len(fac)) for j in range(i + 1, len(fac))]
    if "intercepts" in equal:
        lines.append("# factor means: 0 at the first wave, free at later waves")
        lines += [f"{f} ~ {'0' if k == 0 else 'NA'}*1" for k, f in enumerate(fac)]
    else:
        lines.append("# factor means: 0 at every wave")
        lines += [f"{f} ~ 0*1" for f in fac]
    lines.append("# item intercepts")
    for it in items:
        lab = f"int_{it}*" if "intercepts" in equal and it not in free["intercepts"] else ""
        lines += [f"{wide_name(it, w)} ~ {lab}1" for w in waves]
    lines.append("# residual variances")
    for it in items:
        lab = f"res_{it}*" if "residuals" in equal and it not in free["residuals"] else ""
        lines += [f"{wide_name(it, w)} ~~ {lab}{wide_name(it, w)}" for w in waves]
    lines.append("# the same item at different waves: residual covariances")
    for it in items:
        cols = [wide_name(it, w) for w in waves]
        lines += [f"{cols[i]} ~~ {cols[j]}" for i in range(len(cols)) for j in range(i + 1, len(cols))]
    return "\n".join(lines)


def _check_columns(df, items, id, wave):
    if isinstance(items, str):
        items = [items]
    items = list(items)
    for name, col in (("id", id), ("wave", wave)):
        if col not in df.columns:
            avail = ", ".join(map(str, list(df.columns)[:12]))
            raise ModelSpecificationError(
                f"`{name}=` is '{col}', which is not a column of `data`; available columns: {avail}."
            )
    absent = [c for c in items if c not in df.columns]
    if absent:
        avail = ", ".join(map(str, list(df.columns)[:12]))
        raise ModelSpecificationError(
            f"`items` lists {', '.join(map(repr, absent))}, which {'is' if len(absent) == 1 else 'are'} not "
            f"a column of `data`; available columns: {avail}."
        )
    check_unique_columns(df, items + [id, wave])
    dup = sorted({c for c in items if items.count(c) > 1})
    if dup:
        raise ModelSpecificationError(f"`items` lists {', '.join(map(repr, dup))} more than once; give each item once.")
    if len(items) < 3:
        raise ModelSpecificationError(
            f"`items` has {len(items)} item(s); a factor at each wave needs at least 3 items to be identified, "
            f"so list 3 or more."
        )
    for c in items:
        if c in (id, wave):
            raise ModelSpecificationError(f"`items` lists '{c}', which is also the `id` or `wave` column.")
        if not _NAME_RE.match(str(c)):
            raise ModelSpecificationError(
                f"`items` lists '{c}', which cannot be used in model syntax; rename it to letters, digits, "
                f"'_' or '.' (starting with a letter)."
            )
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise ModelSpecificationError(
                f"Item column '{c}' of `data` is {df[c].dtype}, not numeric; recode it to numbers before fitting."
            )
    check_model_columns(df, items)
    for col in (id, wave):
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise ModelSpecificationError(
                f"Column '{col}' is missing in {int(bad.sum())} row(s) (first at row {_show(df.index[bad][0])}); "
                f"every row must name its person and wave, so fill or remove those rows."
            )
    return items


def _to_wide(df, items, id, wave, waves, factor):
    """Reshape the long table; returns (wide frame, waves, columns table)."""
    present = list(pd.unique(df[wave]))
    if waves is None:
        try:
            waves = sorted(present)
        except TypeError:
            waves = sorted(present, key=str)
    else:
        waves = [waves] if isinstance(waves, (str, int, float, np.integer)) else list(waves)
        if len(set(waves)) < len(waves):
            raise ModelSpecificationError(f"`waves` lists a wave twice ({', '.join(map(str, waves))}); give each once.")
    if len(waves) < 2:
        raise ModelSpecificationError(
            f"Longitudinal invariance needs at least 2 waves; found {len(waves)} "
            f"({', '.join(map(str, waves)) or 'none'}) in column '{wave}' (check `waves=` and the `wave` column)."
        )
    texts = [_wave_text(w) for w in waves]
    if len(set(texts)) < len(texts):
        raise ModelSpecificationError(
            f"The waves {', '.join(map(_show, waves))} give the same column suffixes ({', '.join(texts)}); "
            f"recode column '{wave}' to distinct labels."
        )
    sub = df.loc[df[wave].isin(waves), [id, wave] + items]
    for w in waves:
        at = sub.loc[sub[wave] == w, items]
        if len(at) == 0 or at.isna().all(axis=None):
            raise ModelSpecificationError(
                f"Wave {_show(w)} has no {'rows' if len(at) == 0 else 'observed item values'} in `data` "
                f"(waves found in column '{wave}': {', '.join(map(str, sorted(present, key=str)))}); "
                f"drop it from `waves=`."
            )
    dup = sub.duplicated([id, wave], keep=False).to_numpy()
    if dup.any():
        ex = sub.loc[dup].iloc[0]
        raise ModelSpecificationError(
            f"`data` has {int(sub.loc[dup, [id, wave]].drop_duplicates().shape[0])} person-wave pair(s) with more "
            f"than one row (e.g. {id} {_show(ex[id])} at {wave} {_show(ex[wave])}); keep one row per person and wave."
        )
    people = pd.Index(pd.unique(sub[id]), name=id)
    wide = pd.DataFrame({id: people})
    rows = []
    for w in waves:
        at = sub.loc[sub[wave] == w].set_index(id)
        for it in items:
            col = wide_name(it, w)
            wide[col] = at[it].reindex(people).to_numpy(dtype=float)
            rows.append(dict(item=it, wave=w, column=col, factor=wide_name(factor, w),
                             n_observed=int(np.isfinite(wide[col]).sum())))
    present_at = np.column_stack([people.isin(sub.loc[sub[wave] == w, id]) for w in waves])
    return wide, tuple(waves), pd.DataFrame(rows), present_at


def longitudinal_invariance(data, items, *, id: str, wave: str, waves=None, factor: str = "F",
                            estimator: str = "ML", missing: str = "listwise",
                            steps=("configural", "metric", "scalar", "strict"), partial=()) -> InvarianceResult:
    """Fit the longitudinal measurement-invariance sequence and compare the models.

    The same items answered by the same people at two or more waves: is the
    scale measuring the same thing, in the same units, at every wave? Each
    step adds equality constraints across waves (configural -> metric ->
    scalar -> strict) and is compared with the step before it.

    Parameters
    ----------
    data : pandas.DataFrame or Survey
        Long table: one row per person and wave, with an ``id`` column, a
        ``wave`` column and the item columns.
    items : sequence of str
        The item columns (at least 3). The first item is the marker: its
        loading is fixed at 1 at every wave.
    id : str
        Column identifying the person (e.g. ``"patient_id"``).
    wave : str
        Column identifying the wave (e.g. ``"wave"``).
    waves : sequence, optional
        The waves to use, in model order (the first is the reference wave
        whose factor mean is 0); default: every wave in the data, sorted. Rows
        at other waves are not used.
    factor : str
        Name of the factor; at each wave it is ``<factor>_w<wave>``.
    estimator : {"ML", "MLR"}
        With ``"MLR"`` the fit indices are the robust ones and the differences
        are Satorra-Bentler (2001) scaled, as ``lavaan::lavTestLRT``.
    missing : {"listwise", "fiml"}
        ``"listwise"``: people missing any item at any wave (including people
        absent at a wave) are set aside and counted. ``"fiml"``: everyone with
        at least one observed item is kept (full-information ML).
    steps : sequence of {"configural", "metric", "scalar", "strict"}
    partial : sequence of str
        Partial invariance: an item name frees that item's loading, intercept
        and residual variance across waves; single parameters are written
        ``"F =~ ce_3"`` (loading), ``"ce_3 ~ 1"`` (intercept) or
        ``"ce_3 ~~ ce_3"`` (residual variance), with the long item names.

    Returns
    -------
    InvarianceResult
        ``across == "waves"``; ``group`` reads e.g. ``"waves 0, 1"``.
        ``table`` has one row per model (``model, npar, df, chisq, p_value,
        chisq_scaled, scaling_factor, aic, bic, cfi, tli, rmsea, srmr,
        chisq_diff, df_diff, p_diff, rmsea_diff, delta_cfi, delta_rmsea,
        method``); ``fits`` the :class:`SEMResult` of each step (whose
        ``spec.model`` is the syntax fitted); ``nobs`` people used,
        ``n_dropped`` those set aside, ``dropped_reasons`` (reason -> number
        of people) and ``dropped`` (per wide column ``<item>_w<wave>``: how
        many of the people set aside lacked it); ``items``, ``waves``; ``columns`` (``item, wave, column,
        factor, n_observed``: which wide column holds each item at each wave
        and how many people answered it); ``wide`` the data fitted (one row
        per person: the ``id`` column, then ``<item>_w<wave>`` wave by wave).

    Raises
    ------
    ModelSpecificationError
        A column is absent, an item is not numeric, fewer than 3 items or 2
        waves, a wave without data, a person with two rows at one wave, a
        missing id or wave, an unknown step or partial parameter.

    Notes
    -----
    The model (shown for items ``a, b, c`` at waves 0 and 1; see
    :func:`longitudinal_syntax`)::

        F_w0 =~ 1*a_w0 + load_b*b_w0 + load_c*c_w0      # metric: shared labels
        F_w1 =~ 1*a_w1 + load_b*b_w1 + load_c*c_w1
        F_w0 ~~ F_w0;  F_w1 ~~ F_w1;  F_w0 ~~ F_w1      # free (co)variances
        F_w0 ~ 0*1;    F_w1 ~ NA*1                       # scalar: later means free
        a_w0 ~ int_a*1;  a_w1 ~ int_a*1  (b, c alike)    # scalar
        a_w0 ~~ res_a*a_w0;  a_w1 ~~ res_a*a_w1          # strict
        a_w0 ~~ a_w1;  b_w0 ~~ b_w1;  c_w0 ~~ c_w1       # residual covariances

    In the configural and metric models intercepts are free at every wave and
    the factor means fixed at 0. The chi-square difference of consecutive
    steps, its RMSEA (``sqrt(max(0, (dX2 - ddf) / (N ddf)))``), and the
    changes in CFI and RMSEA are those of :func:`invariance`. A common
    reading (Chen 2007): invariance holds when CFI drops by less than 0.01
    and RMSEA rises by less than 0.015 (or the difference test is not
    significant).

    R equivalent (wide data ``w``, the syntax of each step from
    :func:`longitudinal_syntax`)::

        fits <- lapply(syntaxes, cfa, data = w, meanstructure = TRUE)  # missing = "fiml"
        lavTestLRT(fits$configural, fits$metric, fits$scalar, fits$strict)

    or with semTools (equivalent models: the same chi-square, df and fit
    indices)::

        measEq.syntax("F_w0 =~ a_w0 + b_w0 + c_w0; F_w1 =~ a_w1 + b_w1 + c_w1",
                      data = w, ID.fac = "marker", longFacNames = list(F = c("F_w0", "F_w1")),
                      longIndNames = list(a = c("a_w0", "a_w1"), b = c("b_w0", "b_w1"),
                                          c = c("c_w0", "c_w1")),
                      long.equal = c("loadings", "intercepts"), auto = "all", return.fit = TRUE)

    Validated against: lavaan 0.6-14 ``cfa()`` + ``lavTestLRT()`` (ML and MLR,
    listwise and FIML) and semTools 0.5-6 ``measEq.syntax`` on the demo study's
    collective-efficacy items at waves 0 and 1, and on three waves with a
    planted non-invariant intercept (tests/reference/sem_longitudinal.R).

    References
    ----------
    Widaman, K. F., Ferrer, E. & Conger, R. D. (2010). Factorial invariance
    within longitudinal structural equation models. Child Development
    Perspectives 4(1):10-18.

    Examples
    --------
    >>> import warnings
    >>> import cimstats
    >>> from cimstats import datasets
    >>> p = datasets.demo_study().patients
    >>> items = [f"ce_{i}" for i in range(1, 9)]
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     inv = cimstats.longitudinal_invariance(p, items, id="patient_id", wave="wave")
    >>> inv.group, inv.table["model"].tolist()
    ('waves 0, 1', ['configural', 'metric', 'scalar', 'strict'])
    >>> inv.columns["column"].tolist()[:2]
    ['ce_1_w0', 'ce_2_w0']
    >>> inv.nobs + inv.n_dropped == p["patient_id"].nunique()
    True
    """
    df = analysis_frame(data, error=ModelSpecificationError)
    steps = check_steps(steps)
    mode = {"ml": "fiml", "fiml": "fiml", "direct": "fiml", "listwise": "listwise"}.get(str(missing).lower())
    if mode is None:
        raise ModelSpecificationError(f"`missing` is '{missing}'; expected 'listwise' or 'fiml'.")
    if not isinstance(factor, str) or not _NAME_RE.match(factor):
        raise ModelSpecificationError(f"`factor` is {factor!r}; expected a name of letters, digits and '_'.")
    items = _check_columns(df, items, id, wave)
    wide, waves, columns, present_at = _to_wide(df, items, id, wave, waves, factor)
    clash = sorted(set(columns["column"]) & ({id} | {wide_name(factor, w) for w in waves}))
    if clash:
        raise ModelSpecificationError(
            f"The wide column name {clash[0]!r} would be both an item at a wave and the `id` column or a factor; "
            f"rename the `factor` or the column."
        )
    for s in steps:  # unknown partial entries are reported before any fitting
        longitudinal_syntax(items, waves, factor=factor, step=s, partial=partial)
    _check_partial_identified(items, factor, partial, steps)
    cols = columns["column"].tolist()
    Y = wide[cols].to_numpy(dtype=float)
    observed = np.isfinite(Y)
    dropped: dict[str, int] = {}
    if mode == "listwise":
        absent = ~present_at.all(axis=1)
        incomplete = ~absent & ~observed.all(axis=1)
        if absent.any():
            dropped["absent at one or more waves (listwise deletion)"] = int(absent.sum())
        if incomplete.any():
            dropped["an item missing at a wave they took part in (listwise deletion)"] = int(incomplete.sum())
        keep = ~(absent | incomplete)
    else:
        none = ~observed.any(axis=1)
        if none.any():
            dropped["no observed item at any wave"] = int(none.sum())
        keep = ~none
    n_people = len(wide)
    # per wide column: how many of the people set aside lacked it
    by_column = {c: int((~keep & ~observed[:, j]).sum()) for j, c in enumerate(cols)}
    wide = wide.loc[keep].reset_index(drop=True)
    if dropped:
        warnings.warn(
            f"{sum(dropped.values())} of {n_people} people were set aside: "
            + "; ".join(f"{k}: {v}" for k, v in dropped.items()) + ".",
            MissingDataWarning, stacklevel=2,
        )
    columns = columns.assign(n_observed=[int(np.isfinite(wide[c]).sum()) for c in cols])
    fits = {}
    for s in steps:
        model = longitudinal_syntax(items, waves, factor=factor, step=s, partial=partial)
        fits[s] = sem(model, wide, estimator=estimator, missing=mode, meanstructure=True)
    robust = str(estimator).upper() == "MLR"
    return InvarianceResult(
        table=comparison_table(fits, robust=robust), fits=MappingProxyType(fits),
        group="waves " + ", ".join(map(str, waves)), estimator=str(estimator).upper(), across="waves",
        nobs=int(len(wide)), n_dropped=int(sum(dropped.values())),
        dropped=dropped_frame({c: k for c, k in by_column.items() if k}), dropped_reasons=MappingProxyType(dropped),
        items=tuple(items), waves=waves, columns=columns, wide=wide,
    )


def _check_partial_identified(items, factor, partial, steps):
    """The later waves' factor means need one item whose loading and intercept both stay equal."""
    if not any("intercepts" in _EQUAL[s] for s in steps):
        return
    free = _parse_partial(partial, items, factor)
    anchors = [it for it in items if it not in free["loadings"] and it not in free["intercepts"]]
    if not anchors:
        raise ModelSpecificationError(
            "`partial` frees the loading or intercept of every item, so the factor means of later waves are "
            "not identified in the scalar model; keep at least one item (e.g. the marker) fully invariant."
        )
