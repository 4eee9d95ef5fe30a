"""Wald inference on fixed effects, shared by the linear and generalised mixed models and GEE.

One place computes, from the estimates, their covariance matrix and (for
t-tests) the denominator degrees of freedom: the standard errors, the test
statistics, the p-values and the confidence intervals at any level. The
``lmm``, ``glmm`` and ``gee`` results take their ``params``, ``std_errors``,
``pvalues``, ``conf_int()``, ``vcov()`` and the fixed-effect rows of
``tidy()`` from :class:`WaldFixedEffects`; with infinite degrees of freedom
the tests are z-tests.

The module also holds the one way the model summaries write numbers
(:func:`summary_table`): enough digits to read small variances, p-values
below 0.0001 written as ``<0.0001``.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

__all__ = ["fit_notes", "WaldFixedEffects", "wald_table", "exponentiate_table", "check_level", "resolve_level",
           "summary_table", "SUMMARY_FORMAT", "ratio_label", "dropped_phrase",
           "publication_table", "random_rows", "ratio_summary_columns"]

#: how summaries write numbers: at least four significant digits, plain minus, no thousands separator
SUMMARY_FORMAT = NumberFormat(decimals=4, p_decimals=4, p_threshold=1e-4, minus="-", thousands="", missing="")


def check_level(level, name: str = "level") -> float:
    """A confidence level as a float strictly between 0 and 1, or a clear error."""
    ok = isinstance(level, (int, float, np.integer, np.floating)) and not isinstance(level, (bool, np.bool_))
    if not ok or not 0 < float(level) < 1:
        raise ModelSpecificationError(
            f"`{name}` is {level!r}; expected a confidence level between 0 and 1, e.g. 0.95.")
    return float(level)


def resolve_level(args: tuple, level, conf_level, owner: str) -> float:
    """The level of a ``tidy()`` call, still accepting the old positional or ``conf_level=`` form.

    The old forms give a ``DeprecationWarning`` (they will be removed in the
    next release); ``level=`` is the keyword every result shares.
    """
    if len(args) > 1:
        raise ModelSpecificationError(
            f"{owner}.tidy() takes its options by keyword; it received {len(args)} positional values, so write "
            f"tidy(level=0.95).")
    old, how = None, ""
    if args:
        old, how = args[0], "as the first positional argument"
    if conf_level is not None:
        if old is not None:
            raise ModelSpecificationError(
                f"{owner}.tidy() received the confidence level twice (positionally and as `conf_level=`); "
                f"give it once, as `level=`.")
        old, how = conf_level, "as `conf_level=`"
    if old is not None:
        if level != 0.95:
            raise ModelSpecificationError(
                f"{owner}.tidy() received both `level={level!r}` and the old form {how} ({old!r}); give only "
                f"`level=`.")
        warnings.warn(f"Giving the confidence level of {owner}.tidy() {how} is deprecated and will stop working "
                      f"in the next release; write tidy(level={old!r}).", DeprecationWarning, stacklevel=3)
        level = old
    return check_level(level)


def wald_table(names: Sequence[str], estimate, vcov, df=None, *, level: float = 0.95) -> pd.DataFrame:
    """Wald tests and intervals of the fixed effects.

    Parameters
    ----------
    names : sequence of str
        The terms.
    estimate : array
        The estimates.
    vcov : 2-d array
        Their covariance matrix.
    df : array, optional
        Denominator degrees of freedom of each t-test (Satterthwaite);
        ``None`` or infinite values give z-tests with normal quantiles.
    level : float
        Coverage of the intervals.

    Returns
    -------
    pandas.DataFrame
        term, estimate, std_error, statistic (estimate / std_error), df,
        p_value (two-sided), ci_lower, ci_upper.
    """
    level = check_level(level)
    beta = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.diag(np.asarray(vcov, dtype=float)))
    dfs = np.full(len(beta), np.inf) if df is None else np.asarray(df, dtype=float)
    stat = beta / se
    inf = np.isinf(dfs)
    finite_df = np.where(inf, 1, dfs)
    p = np.where(inf, 2 * stats.norm.sf(np.abs(stat)), 2 * stats.t.sf(np.abs(stat), finite_df))
    q = np.where(inf, stats.norm.ppf(0.5 + level / 2), stats.t.ppf(0.5 + level / 2, finite_df))
    return pd.DataFrame({"term": list(names), "estimate": beta, "std_error": se, "statistic": stat, "df": dfs,
                         "p_value": p, "ci_lower": beta - q * se, "ci_upper": beta + q * se})


def ratio_label(link: str) -> str | None:
    """``"odds ratio"`` (logit link), ``"rate ratio"`` (log link) or ``None`` (no ratio reading)."""
    return {"logit": "odds ratio", "log": "rate ratio"}.get(link)


def exponentiate_table(table: pd.DataFrame, link: str) -> pd.DataFrame:
    """The estimates and interval limits of a Wald table as odds ratios (logit) or rate ratios (log link).

    ``std_error`` becomes the delta-method standard error of the ratio;
    statistic, df and p-value are those of the link-scale test.
    """
    if ratio_label(link) is None:
        raise ModelSpecificationError(
            f"`exponentiate=True` gives odds or rate ratios only for logit and log links; this model uses "
            f"the {link} link, so report the estimates on the link scale."
        )
    out = table.copy()
    est = table["estimate"].to_numpy(dtype=float)
    out["estimate"] = np.exp(est)
    out["std_error"] = np.exp(est) * table["std_error"].to_numpy(dtype=float)
    out["ci_lower"] = np.exp(out["ci_lower"])
    out["ci_upper"] = np.exp(out["ci_upper"])
    return out


class WaldFixedEffects:
    """Fixed-effect accessors of a result whose inference is Wald on its estimates and their covariance.

    A subclass implements ``_wald_parts()`` returning ``(names, estimates,
    covariance matrix)`` and, for t-tests, ``_wald_df()`` returning the
    denominator degrees of freedom (the default, ``None``, gives z-tests).
    """

    def _wald_parts(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _wald_df(self):
        return None

    def _wald(self, level: float = 0.95) -> pd.DataFrame:
        names, beta, vcov = self._wald_parts()
        return wald_table(names, beta, vcov, self._wald_df(), level=level)

    @property
    def params(self) -> pd.Series:
        """The fixed-effect estimates (link scale for GLMM and GEE)."""
        names, beta, _ = self._wald_parts()
        return pd.Series(np.asarray(beta, dtype=float), index=list(names), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        names, _, vcov = self._wald_parts()
        return pd.Series(np.sqrt(np.diag(vcov)), index=list(names), name="std_error")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the fixed effects (t-tests with the model's df, or z-tests)."""
        t = self._wald()
        return pd.Series(t["p_value"].to_numpy(), index=t["term"].tolist(), name="p_value")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates."""
        names, _, vcov = self._wald_parts()
        names = list(names)
        return pd.DataFrame(np.array(vcov, dtype=float), index=names, columns=names)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence intervals of the fixed effects (t quantiles with the model's df, or normal).

        Returns
        -------
        pandas.DataFrame
            ci_lower, ci_upper, indexed by term.
        """
        t = self._wald(level)
        return pd.DataFrame({"ci_lower": t["ci_lower"].to_numpy(), "ci_upper": t["ci_upper"].to_numpy()},
                            index=t["term"].tolist())


# --------------------------------------------------------------------------- summaries
def _decimals(x: float) -> int:
    """Decimals that show at least four significant digits of ``x`` (at most ten)."""
    ax = abs(x)
    if ax == 0 or ax >= 1 or not math.isfinite(ax):
        return SUMMARY_FORMAT.decimals
    return int(min(10, max(SUMMARY_FORMAT.decimals, 3 - math.floor(math.log10(ax)))))


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def summary_cell(v, kind: str = "number") -> Cell:
    """One summary cell: ``number`` (four significant digits), ``df`` (two decimals), ``p_value``,
    ``count`` or ``text``; missing values are blank."""
    fmt = SUMMARY_FORMAT
    if kind == "text":
        return Cell("" if _missing(v) else str(v))
    if _missing(v):
        return Cell("", kind="p_value" if kind == "p_value" else "number")
    if kind == "p_value":
        return Cell(fmt.p(v), kind="p_value", value=float(v))
    if kind == "count":
        return Cell(fmt.count(v), kind="count", value=int(v))
    x = float(v)
    if kind == "df":
        return Cell(fmt.estimate(x, 2), kind="number", value=x)
    return Cell(fmt.estimate(x, _decimals(x)), kind="number", value=x)


def summary_table(title: str, frame: pd.DataFrame, columns: Sequence[tuple[str, str, str]], *,
                  notes: Sequence[str] = ()) -> TableSpec:
    """A summary table: one row per frame row, columns given as ``(column, header, kind)``."""
    header = (tuple(Cell(label) for _, label, _ in columns),)
    body = tuple(Row(tuple(summary_cell(r[c], k) for c, _, k in columns))
                 for r in frame.to_dict("records"))
    return TableSpec(title=title, header=header, body=body, notes=tuple(notes))


def fit_notes(optimizer, singular: bool = False, singular_detail: str = "") -> tuple[str, ...]:
    """The notes under a mixed model's summary: how the optimiser finished, and a singular fit if any."""
    o = optimizer
    notes = [f"Optimizer: {o.method}; {'converged' if o.converged else 'NOT converged'} after "
             f"{o.iterations} iterations ({o.evaluations} evaluations), max |gradient| {o.gradient_norm:.2g}."]
    if singular:
        notes.append(f"Singular fit: {singular_detail}.")
    return tuple(notes)


def dropped_phrase(nobs: int, n_dropped: int, by_column: dict, word: str = "dropped") -> str:
    """``Observations: 180 used, 25 dropped (x: 25 missing)``."""
    return (f"Observations: {nobs} used, {n_dropped} {word}"
            + (f" ({', '.join(f'{k}: {v}' for k, v in by_column.items())} missing)" if n_dropped and by_column
               else ""))


def publication_table(fixed: pd.DataFrame, *, level: float, title: str, notes: Sequence[str] = (),
                      ratios: pd.DataFrame | None = None, ratio_name: str | None = None, show_df: bool = False,
                      random: pd.DataFrame | None = None, number=None, number_format=None) -> TableSpec:
    """The publication table of a model's fixed effects (and variance components).

    Parameters
    ----------
    fixed : DataFrame
        The Wald table (:func:`wald_table`) at ``level``.
    level : float
        Its coverage (written in the CI header).
    title : str
    notes : sequence of str
    ratios : DataFrame, optional
        The same table exponentiated (:func:`exponentiate_table`); adds a
        column "Odds ratio [CI]" or "Rate ratio [CI]".
    ratio_name : str, optional
        "odds ratio" or "rate ratio".
    show_df : bool
        Add the degrees-of-freedom column (t-tests).
    random : DataFrame, optional
        Rows ``label``, ``estimate`` (standard deviations and correlations of
        the random effects), shown in a second row group.
    number, number_format
        Table number; :class:`~cimstats.render.NumberFormat` (default two decimals).
    """
    fmt = number_format or NumberFormat()
    pct = f"{level * 100:g}%"
    header = ["Term", "Estimate", "SE", f"{pct} CI"]
    if ratios is not None:
        header.append(f"{(ratio_name or 'ratio').capitalize()} [{pct} CI]")
    if show_df:
        header.append("df")
    header.append("p")
    ncol = len(header)

    def num(v, kind="estimate", decimals=None):
        missing = _missing(v)
        return Cell(fmt.missing if missing else fmt.estimate(v, decimals), kind=kind,
                    value=None if missing else float(v))

    body = []
    rows = fixed.to_dict("records")
    ratio_rows = ratios.to_dict("records") if ratios is not None else [None] * len(rows)
    grouped = random is not None and len(random) > 0
    if grouped:
        body.append(Row.group("Fixed effects", ncol))
    for r, e in zip(rows, ratio_rows):
        cells = [Cell(str(r["term"])), num(r["estimate"]), num(r["std_error"]),
                 Cell(fmt.ci(r["ci_lower"], r["ci_upper"]), kind="ci")]
        if e is not None:
            cells.append(Cell(fmt.estimate_ci(e["estimate"], e["ci_lower"], e["ci_upper"]), kind="ci"))
        if show_df:
            cells.append(num(r["df"], "number"))
        p = r["p_value"]
        cells.append(Cell(fmt.p(p), kind="p_value", value=None if _missing(p) else float(p)))
        body.append(Row(tuple(cells)))
    if grouped:
        body.append(Row.group("Random effects (standard deviations and correlations)", ncol))
        for label, est in zip(random["label"], random["estimate"]):
            body.append(Row((Cell(str(label)), num(est)) + tuple(Cell("") for _ in range(ncol - 2))))
    return TableSpec(title=title, header=(tuple(Cell(h) for h in header),), body=tuple(body),
                     notes=tuple(notes), number=number)


def random_rows(varcorr: pd.DataFrame) -> pd.DataFrame:
    """``label``, ``estimate`` rows of the standard deviations and correlations of a ``varcorr()`` table."""
    labels = []
    for g, t1, t2 in zip(varcorr["group"], varcorr["term1"], varcorr["term2"]):
        if g == "Residual":
            labels.append("Residual SD")
        elif t2 is None or (isinstance(t2, float) and np.isnan(t2)) or t2 == "":
            labels.append(f"{g}: SD {t1}")
        else:
            labels.append(f"{g}: correlation {t1}, {t2}")
    return pd.DataFrame({"label": labels, "estimate": varcorr["sdcor"].to_numpy(dtype=float)})


def ratio_summary_columns(tidy: pd.DataFrame, link: str):
    """The fixed-effects frame and columns of a GLMM or GEE summary (odds or rate ratios added for logit/log)."""
    cols = [("term", "Term", "text"), ("estimate", "Estimate", "number"), ("std_error", "Std. Error", "number"),
            ("statistic", "z value", "number"), ("p_value", "Pr(>|z|)", "p_value"),
            ("ci_lower", "95% CI lower", "number"), ("ci_upper", "95% CI upper", "number")]
    ratio = ratio_label(link)
    if ratio:
        e = exponentiate_table(tidy, link)
        tidy = tidy.assign(ratio=e["estimate"], ratio_lower=e["ci_lower"], ratio_upper=e["ci_upper"])
        name = ratio.capitalize()
        cols += [("ratio", name, "number"), ("ratio_lower", f"{name} lower", "number"),
                 ("ratio_upper", f"{name} upper", "number")]
    return tidy, cols
