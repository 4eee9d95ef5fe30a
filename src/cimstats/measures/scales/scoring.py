"""Score questionnaire scales from item responses, following the instrument's rules.

The numeric kernel :func:`score_items` takes an item matrix (persons x items,
NaN = missing) and returns scores and valid-item counts; :func:`score_scale`
checks the data against the instrument, calls the kernel for each score and
wraps everything in a frozen :class:`ScaleScores` result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cimstats.errors import Report, ScaleError
from cimstats.measures.scales.instrument import Instrument, ScoreRule, load_instrument
from cimstats.render.notebook import notebook_html

#: status values in ``ScaleScores.detail``
STATUS = ("complete", "prorated", "missing")
_DIMS = ("mo", "sc", "ua", "pd", "ad")


def score_items(x: np.ndarray, *, method: str, min_valid: int, prorate: bool = True,
                lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                transform: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kernel: score one (sub)scale from an already reverse-keyed item matrix.

    Parameters
    ----------
    x : ndarray (n_persons, n_items)
        Responses, NaN where missing.
    method : {"mean", "sum"}
        ``mean`` = mean of valid items; ``sum`` = sum when complete, otherwise
        ``n_items * mean of valid items`` when ``prorate`` (prorated sum).
    min_valid : int
        Fewest valid items that still give a score; fewer gives NaN.
    lo, hi : ndarray (n_items,), optional
        Lowest and highest possible response per item, for the 0-100 transform.
    transform : {None, "0-100"}
        ``100 * (score - lowest possible) / (highest possible - lowest possible)``.

    Returns
    -------
    score, n_valid : ndarray
    """
    x = np.asarray(x, dtype=float)
    valid = ~np.isnan(x)
    n_valid = valid.sum(axis=1)
    k = x.shape[1]
    total = np.where(valid, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n_valid
    if method == "mean":
        score = mean
        smin, smax = (None if lo is None else lo.mean()), (None if hi is None else hi.mean())
    elif method == "sum":
        score = np.where(n_valid == k, total, mean * k if prorate else np.nan)
        smin, smax = (None if lo is None else lo.sum()), (None if hi is None else hi.sum())
    else:  # pragma: no cover - guarded by instrument validation
        raise ValueError(method)
    score = np.where(n_valid >= min_valid, score, np.nan)
    if transform == "0-100":
        score = 100.0 * (score - smin) / (smax - smin)
    return score, n_valid


def _value_set_lookup(levels: np.ndarray, value_set: Any, complete: np.ndarray, argname: str) -> np.ndarray:
    """EQ-5D index for integer level rows (n, 5); NaN where incomplete."""
    out = np.full(levels.shape[0], np.nan)
    if isinstance(value_set, Mapping) and "decrements" in value_set:
        intercept = float(value_set.get("intercept", 1.0))
        constant = float(value_set.get("constant", 0.0))
        dec = value_set["decrements"]
        table = np.zeros((5, 6))
        for d, dim in enumerate(_DIMS):
            got = dec.get(dim, dec.get(f"eq5d_{dim}")) if isinstance(dec, Mapping) else None
            if got is None:
                raise ScaleError(f"`{argname}` has no decrements for dimension '{dim}'; expected a mapping "
                                 f"of level (2-5) to decrement for each of {', '.join(_DIMS)}.")
            for lev in range(1, 6):
                v = got.get(lev, got.get(str(lev), 0.0 if lev == 1 else None)) if isinstance(got, Mapping) \
                    else (list(got)[lev - 1] if len(got) == 5 else None)
                if v is None:
                    raise ScaleError(f"`{argname}` gives no decrement for dimension '{dim}' level {lev}; "
                                     "give levels 2 to 5 (level 1 defaults to 0).")
                table[d, lev] = float(v)
        lv = levels[complete].astype(int)
        dsum = sum(table[d, lv[:, d]] for d in range(5))
        any_problem = (lv > 1).any(axis=1)
        out[complete] = intercept - dsum - np.where(any_problem, constant, 0.0)
        return out
    if isinstance(value_set, pd.DataFrame):
        cols = list(value_set.columns)
        if len(cols) != 2:
            raise ScaleError(f"`{argname}` has columns {cols}; expected two columns: the five-digit "
                             "state and its value.")
        value_set = dict(zip(value_set.iloc[:, 0].astype(str), value_set.iloc[:, 1].astype(float)))
    if isinstance(value_set, pd.Series):
        value_set = {str(k): float(v) for k, v in value_set.items()}
    if not isinstance(value_set, Mapping):
        raise ScaleError(f"`{argname}` is a {type(value_set).__name__}; expected a mapping of five-digit "
                         "state to value, a two-column table, or {'intercept', 'constant', 'decrements'}.")
    lookup = {str(k).strip(): float(v) for k, v in value_set.items()}
    codes = (levels[complete].astype(int) * np.array([10000, 1000, 100, 10, 1])).sum(axis=1)
    vals = np.array([lookup.get(str(c), np.nan) for c in codes], dtype=float)
    missing_states = sorted({str(c) for c, v in zip(codes, vals) if np.isnan(v)})
    if missing_states:
        raise ScaleError(f"`{argname}` has no value for health state(s) {', '.join(missing_states[:5])}"
                         f"{' ...' if len(missing_states) > 5 else ''}; expected a value for every observed "
                         "state: supply the full value set (3125 states).")
    out[complete] = vals
    return out


@dataclass(frozen=True)
class ScaleScores:
    """Scores of one instrument with, per person and score, how each was obtained.

    Attributes
    ----------
    instrument : Instrument
    scores : DataFrame
        One row per person (index of ``data``), one column per score.
    detail : DataFrame
        Long table, one row per person x score: ``row, score, n_items, n_valid,
        status`` (complete / prorated / missing) and ``rule`` (the rule applied).
    report : Report
        Data problems found (out-of-range responses set aside, value set not given ...).
    item_columns : dict
        Instrument item id -> data column used.
    """

    instrument: Instrument
    scores: pd.DataFrame
    detail: pd.DataFrame
    report: Report = field(default_factory=Report)
    item_columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def nobs(self) -> int:
        return int(len(self.scores))

    @property
    def n_missing(self) -> dict[str, int]:
        """Number of persons without a score, per score."""
        return {c: int(self.scores[c].isna().sum()) for c in self.scores.columns}

    def _numeric_scores(self) -> list[str]:
        """Score columns that are numbers (not the EQ-5D profile strings)."""
        return [c for c in self.scores.columns if pd.api.types.is_numeric_dtype(self.scores[c].dtype)]

    def wide(self) -> pd.DataFrame:
        """Scores with ``<score>_n_valid`` and ``<score>_status`` columns, one row per person."""
        out = {}
        for sid in self.scores.columns:
            d = self.detail[self.detail["score"] == sid]
            out[sid] = self.scores[sid]
            out[f"{sid}_n_valid"] = pd.Series(d["n_valid"].to_numpy(), index=self.scores.index)
            out[f"{sid}_status"] = pd.Series(d["status"].to_numpy(), index=self.scores.index)
        return pd.DataFrame(out, index=self.scores.index)

    def join(self, data: pd.DataFrame) -> pd.DataFrame:
        """``data`` with the score columns of :meth:`wide` added (rows matched by index)."""
        if hasattr(data, "data") and isinstance(getattr(data, "data"), pd.DataFrame):
            data = data.data
        clash = [c for c in self.wide().columns if c in data.columns]
        if clash:
            raise ScaleError(f"`data` already has column(s) {', '.join(clash[:5])}; drop or rename them "
                             "before joining the scores.")
        return data.join(self.wide())

    def tidy(self) -> pd.DataFrame:
        """One row per numeric score: mean with its standard error and 95% t interval.

        Columns ``term, estimate, std_error, statistic, df, p_value, ci_lower,
        ci_upper, n, n_missing, n_prorated``; ``statistic`` and ``p_value`` are
        not defined for a descriptive mean and are NaN.
        """
        from scipy import stats

        rows = []
        for sid in self._numeric_scores():
            s = self.scores[sid].dropna()
            n = len(s)
            d = self.detail[self.detail["score"] == sid]
            est = s.mean() if n else np.nan
            se = s.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
            q = stats.t.ppf(0.975, n - 1) if n > 1 else np.nan
            rows.append({"term": sid, "estimate": est, "std_error": se, "statistic": np.nan,
                         "df": float(n - 1) if n > 1 else np.nan, "p_value": np.nan,
                         "ci_lower": est - q * se, "ci_upper": est + q * se, "n": n,
                         "n_missing": int((d["status"] == "missing").sum()),
                         "n_prorated": int((d["status"] == "prorated").sum())})
        return pd.DataFrame(rows)

    def glance(self) -> pd.DataFrame:
        """One row: instrument, persons, and counts of complete, prorated and missing scores."""
        st = self.detail["status"].value_counts()
        return pd.DataFrame([{
            "instrument": self.instrument.id, "nobs": self.nobs, "n_scores": self.scores.shape[1],
            "n_complete": int(st.get("complete", 0)), "n_prorated": int(st.get("prorated", 0)),
            "n_missing": int(st.get("missing", 0)), "n_issues": len(self.report),
        }])

    def summary(self) -> str:
        """Text summary: one line per score with n, mean, SD, prorated and missing counts."""
        lines = [f"{self.instrument.name}: {self.nobs} persons"]
        t = self.tidy()
        for _, r in t.iterrows():
            s = self.scores[r["term"]]
            lines.append(f"  {r['term']:<32} n={r['n']:<6} mean={r['estimate']:.3f} sd={s.std():.3f} "
                         f"prorated={r['n_prorated']} missing={r['n_missing']}")
        if len(self.report):
            lines.append(self.report.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ScaleScores {self.instrument.id}: {self.nobs} persons x {self.scores.shape[1]} scores>"

    def _repr_html_(self) -> str:
        return notebook_html(repr(self).strip("<>"), table=self.tidy(), more="scores.tidy()")


def _has_total(ins) -> bool:
    """Whether one score of the instrument covers every item (a total score)."""
    items = set(ins.item_ids)
    return any(set(sc.items) >= items for sc in ins.scores) or any(sc.scores for sc in ins.scores)


def _prepare(data, instrument, *, items=None, scores=None, min_valid=None, out_of_range: str = "error"):
    """Check the inputs of :func:`score_scale` and build the keyed item matrix; every check scoring makes.

    Returns ``(data, instrument, min_valid, colmap, rules, X, report)``; raises
    :class:`ScaleError` as :func:`score_scale` does. :func:`scale_reliability`
    uses it to check its input exactly as scoring does without scoring again.
    """
    if hasattr(data, "data") and isinstance(getattr(data, "data"), pd.DataFrame):
        data = data.data
    if not isinstance(data, pd.DataFrame):
        raise ScaleError(f"`data` is a {type(data).__name__}; expected a pandas DataFrame or a Survey "
                         "with one row per person.")
    if out_of_range not in ("error", "report"):
        raise ScaleError(f"`out_of_range='{out_of_range}'` is not an option; expected 'error' or 'report'.")
    ins = load_instrument(instrument)
    items = dict(items or {})
    unknown = sorted(set(items) - set(ins.item_ids))
    if unknown:
        raise ScaleError(f"`items=` maps {', '.join(repr(u) for u in unknown)}, which "
                         f"{'is not an item' if len(unknown) == 1 else 'are not items'} of '{ins.id}'; "
                         f"its items are {', '.join(ins.item_ids)}.")
    min_valid = dict(min_valid or {})
    for sid, mv in min_valid.items():
        if sid not in ins.score_ids:
            raise ScaleError(f"`min_valid=` names '{sid}', which is not a score of '{ins.id}'; its scores "
                             f"are {', '.join(ins.score_ids)}.")
        n = ins.score(sid).n_items
        if isinstance(mv, bool) or not isinstance(mv, (int, np.integer)) or not 1 <= mv <= n:
            raise ScaleError(f"`min_valid['{sid}']` is {mv!r}; expected a whole number from 1 to {n}.")
    colmap = {i: items.get(i, i) for i in ins.item_ids}
    seen_cols: dict[str, str] = {}
    for i, c in items.items():
        if c in seen_cols:
            raise ScaleError(f"`items=` maps both '{seen_cols[c]}' and '{i}' to column '{c}'; map each item "
                             "to its own column.")
        seen_cols[c] = i
    if scores is not None:
        scores = [scores] if isinstance(scores, str) else list(scores)
        bad = [x for x in scores if x not in ins.score_ids]
        if bad:
            if any("total" in str(x).lower() for x in bad) and not _has_total(ins):
                raise ScaleError(f"`scores=` asks for {', '.join(map(repr, bad))}, but '{ins.id}' has no total "
                                 "score (its scales measure separate constructs and are scored and analysed one "
                                 f"by one), so name one or more of its scales instead: {', '.join(ins.score_ids)}.")
            raise ScaleError(f"`scores=` names {', '.join(map(repr, bad))}, not a score of '{ins.id}'; its "
                             f"scores are {', '.join(ins.score_ids)}.")
        wanted = set(scores)
        for sc in reversed(ins.scores):  # add components of combined scores
            if sc.id in wanted:
                wanted.update(sc.scores)
        rules = [sc for sc in ins.scores if sc.id in wanted]
    else:
        rules = list(ins.scores)
    # only items used by a requested score must be present
    used = {i for s in rules for i in s.items}
    absent = [f"'{colmap[i]}'" + (f" (item {i})" if colmap[i] != i else "")
              for i in ins.item_ids if i in used and colmap[i] not in data.columns]
    rep = Report()
    if absent:
        raise ScaleError(f"`data` has no column {', '.join(absent[:6])}{' ...' if len(absent) > 6 else ''} "
                         f"needed by '{ins.id}'; map your column names with `items={{item: column}}`, or "
                         "score only some scales with `scores=[...]`.")

    # numeric item matrix with range checks
    n = len(data)
    X = {}
    for iid in ins.item_ids:
        if iid not in used:
            continue
        col = colmap[iid]
        s = data[col]
        num = pd.to_numeric(s, errors="coerce")
        nonnum = num.isna() & s.notna()
        if nonnum.any():
            bad = s[nonnum]
            raise ScaleError(f"Column '{col}' (item {iid}) holds non-numeric responses such as "
                             f"{bad.iloc[0]!r} in row {bad.index[0]!r} ({int(nonnum.sum())} in all); expected "
                             "numbers: recode text answers to their numeric codes first.",
                             report=rep)
        v = num.to_numpy(dtype=float, na_value=np.nan)
        it = ins.item(iid)
        if it.values is not None:
            ok = np.isin(v, np.asarray(it.values)) | np.isnan(v)
            expected = "one of " + ", ".join(f"{x:g}" for x in it.values)
        else:
            ok = np.isnan(v) | ((v >= it.min) & (v <= it.max) & (v == np.round(v)))
            expected = f"a whole number from {it.min:g} to {it.max:g}"
        if not ok.all():
            rows = data.index[~ok]
            vals = sorted({float(x) for x in v[~ok]})
            rep.add("S201", f"column '{col}' (item {iid}) has {int((~ok).sum())} response(s) outside the "
                    f"declared range, values {', '.join(f'{x:g}' for x in vals[:6])}, in rows "
                    f"{', '.join(map(str, rows[:5]))}{' ...' if len(rows) > 5 else ''}; expected {expected}.",
                    column=col, row=None if len(rows) > 1 else int(np.flatnonzero(~ok)[0]),
                    remedy="Recode or set these to missing; with out_of_range='report' they are set aside "
                           "as missing.")
            v = np.where(ok, v, np.nan)
        if iid in ins.reverse:
            v = it.min + it.max - v
        X[iid] = v
    if rep.has_errors and out_of_range == "error":
        first = rep.errors[0]
        raise ScaleError(f"Item responses for '{ins.id}' are out of range ({len(rep.errors)} item(s) affected, "
                         f"all listed in `.report`): {first.message.rstrip('.')}; recode them, or pass "
                         "out_of_range='report' to set them aside as missing.", report=rep)

    return data, ins, min_valid, colmap, rules, X, rep


def score_scale(data, instrument, *, items: Mapping[str, str] | None = None,
                scores: Sequence[str] | None = None, min_valid: Mapping[str, int] | None = None,
                value_set: Any = None, out_of_range: str = "error") -> ScaleScores:
    """Score an instrument's scales from item responses.

    Parameters
    ----------
    data : DataFrame or Survey
        One row per person (per wave); declared missing codes must already be NaN.
    instrument : str, path, mapping or Instrument
        A shipped instrument id (see ``cimstats.scales.list_instruments()``), a
        YAML file, or a loaded :class:`Instrument`.
    items : mapping, optional
        Instrument item id -> column of ``data``; items not mapped are looked
        up under their own id.
    scores : sequence of str, optional
        Compute only these scores (e.g. three of the eight heiQ scales); only their
        items need to be in ``data``. Scores they combine are included automatically.
    min_valid : mapping, optional
        Score id -> fewest valid items, overriding the instrument's rule
        (the override is written into ``rule``).
    value_set : optional
        For ``value_set`` scores (EQ-5D index): a mapping of five-digit state to
        value, a two-column table, or ``{"intercept": 1, "constant": c,
        "decrements": {"mo": {2: .., 3: .., 4: .., 5: ..}, ...}}`` (value =
        intercept - constant [if any level > 1] - sum of decrements). Without it the
        index is not computed and an ``S204`` report row says so.
    out_of_range : {"error", "report"}
        Responses outside the item's declared range (or not whole numbers when the
        range is discrete): ``"error"`` raises; ``"report"`` sets them aside as
        missing and lists them in ``report`` (code ``S201``), counted per item.

    Returns
    -------
    ScaleScores

    Raises
    ------
    ScaleError
        Mapped columns absent (S203), non-numeric responses (S202), responses out
        of range with ``out_of_range="error"`` (S201), bad ``min_valid``.

    Notes
    -----
    Reverse-keyed items are reversed as ``min + max - x`` using the item's
    declared range. A mean score is the mean of valid items; it counts as
    *prorated* when some items are missing but at least ``min_valid`` are valid.
    A prorated sum is ``n_items x mean of valid items``. The 0-100 transform is
    ``100 (score - lowest possible) / (highest possible - lowest possible)``.

    Examples
    --------
    >>> import pandas as pd, cimstats
    >>> d = pd.DataFrame({"semcd_1": [8, 2], "semcd_2": [6, None], "semcd_3": [7, None],
    ...                   "semcd_4": [9, None], "semcd_5": [5, 3], "semcd_6": [7, 4]})
    >>> res = cimstats.score_scale(d, "semcd6")
    >>> res.wide()[["semcd", "semcd_n_valid", "semcd_status"]]
       semcd  semcd_n_valid semcd_status
    0    7.0              6     complete
    1    NaN              3      missing
    """
    data, ins, min_valid, colmap, rules, X, rep = _prepare(data, instrument, items=items, scores=scores,
                                                           min_valid=min_valid, out_of_range=out_of_range)
    out_scores: dict[str, np.ndarray] = {}
    detail = []
    idx = data.index
    for sc in rules:
        mv = int(min_valid.get(sc.id, sc.min_valid))
        rule = sc.rule + (f" [min_valid overridden to {mv}]" if sc.id in min_valid else "")
        if sc.scores:
            M = np.column_stack([out_scores[s] for s in sc.scores]).astype(float)
            score, nv = score_items(M, method="mean", min_valid=len(sc.scores))
        else:
            M = np.column_stack([X[i] for i in sc.items])
            lo = np.array([ins.item(i).min for i in sc.items])
            hi = np.array([ins.item(i).max for i in sc.items])
            if sc.method in ("mean", "sum"):
                score, nv = score_items(M, method=sc.method, min_valid=mv, prorate=sc.prorate,
                                        lo=lo, hi=hi, transform=sc.transform)
            else:
                nv = (~np.isnan(M)).sum(axis=1)
                complete = nv == M.shape[1]
                if sc.method == "profile":
                    digits = np.where(np.isnan(M), 0, M).astype(int)
                    prof = ["".join(map(str, r)) for r in digits]
                    score = np.array([p if c else None for p, c in zip(prof, complete)], dtype=object)
                else:  # value_set
                    if value_set is None:
                        rep.add("S204", f"score '{sc.id}' needs a value set and none was given, so it was "
                                "not computed.", severity="info",
                                remedy="Pass value_set= with the country value set you are licensed to use.")
                        continue
                    score = _value_set_lookup(M, value_set, complete, "value_set")
        k = sc.n_items
        if sc.method == "profile":
            is_missing = np.array([s is None for s in score])
        else:
            is_missing = np.isnan(score.astype(float))
        status = np.where(is_missing, "missing", np.where(nv < k, "prorated", "complete"))
        out_scores[sc.id] = score
        detail.append(pd.DataFrame({"row": idx, "score": sc.id, "n_items": k, "n_valid": nv.astype(int),
                                    "status": status, "rule": rule}))
    score_df = pd.DataFrame({k: (v if v.dtype == object else v.astype(float)) for k, v in out_scores.items()},
                            index=idx)
    detail_df = pd.concat(detail, ignore_index=True) if detail else pd.DataFrame(
        columns=["row", "score", "n_items", "n_valid", "status", "rule"])
    return ScaleScores(instrument=ins, scores=score_df, detail=detail_df, report=rep, item_columns=colmap)
