"""Number formatting by stated journal conventions.

A :class:`NumberFormat` says how estimates, confidence intervals, p-values,
counts, percentages, degrees of freedom and fit indices are written. It is the
one place where a column kind gets its format: every table builder asks it
(``count``, ``estimate``, ``p``, ``fit_index``, ``df`` or :meth:`NumberFormat.format`
with the kind's name), so the same kind of number looks the same in every
table. Presets approximate common house styles; every field can be changed, so
the convention used is always explicit and reproducible.

Examples
--------
>>> from cimstats.render import NumberFormat
>>> f = NumberFormat()
>>> f.estimate(0.1234), f.ci(-0.05, 0.31), f.p(0.0004), f.p(0.0312)
('0.12', '[−0.05, 0.31]', '<0.001', '0.031')
>>> apa = NumberFormat.preset("apa")
>>> apa.p(0.0004), apa.p(0.0312), apa.ci(1.2, 3.456)
('< .001', '.031', '[1.20, 3.46]')
>>> NumberFormat.preset("bmj").ci(1.2, 3.456)
'1.20 to 3.46'
>>> f.count(1425), f.df(63.0), f.df(1414.843), f.fit_index(0.99612), f.fit_index(1.0)
('1,425', '63', '1,414.84', '0.996', '1.000')
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Any

from cimstats.errors import RenderError

__all__ = ["NumberFormat", "PRESETS", "KINDS", "COLUMN_KINDS"]

#: column kinds a NumberFormat writes (see :meth:`NumberFormat.format`)
KINDS = ("count", "estimate", "number", "p_value", "percent", "fit_index", "df")

#: the number kind of each column of the saved result tables (``tidy()`` terms, invariance fit steps),
#: so every table built from them writes a column the same way
COLUMN_KINDS = {
    "estimate": "estimate", "std_error": "estimate", "statistic": "estimate", "ci_lower": "estimate",
    "ci_upper": "estimate", "chisq": "estimate", "chisq_diff": "estimate",
    "p_value": "p_value", "p_diff": "p_value", "p_adjusted": "p_value",
    "df": "df", "df_diff": "df",
    "cfi": "fit_index", "tli": "fit_index", "rmsea": "fit_index", "srmr": "fit_index", "delta_cfi": "fit_index",
    "delta_tli": "fit_index", "delta_rmsea": "fit_index", "delta_srmr": "fit_index",
    "npar": "count", "nobs": "count", "n": "count", "n_dropped": "count",
}

_CI_STYLES = ("brackets", "parentheses", "to", "dash")
_P_STYLES = ("exact", "threshold", "stars")


@dataclass(frozen=True)
class NumberFormat:
    """How numbers are written in rendered tables.

    Parameters
    ----------
    decimals : int
        Decimals for estimates and CI limits (default 2).
    p_decimals : int
        Decimals for p-values at or above ``p_threshold`` (default 3).
    p_threshold : float
        p-values below this are written as ``"<threshold"`` (default 0.001).
    p_leading_zero : bool
        Write ``0.031`` (True) or ``.031`` (False, APA/AMA style).
    p_space : bool
        Put a space between ``<`` and the number (``"< .001"``).
    p_style : {"exact", "threshold", "stars"}
        ``"exact"`` writes the value (with the threshold floor);
        ``"threshold"`` writes only ``"<0.05"``/``"≥0.05"`` style;
        ``"stars"`` writes the value followed by significance stars.
    ci_style : {"brackets", "parentheses", "to", "dash"}
        ``[a, b]``, ``(a, b)``, ``a to b`` or ``a–b``; intervals with a negative
        limit fall back from ``dash`` to ``to`` because ``-1–2`` is ambiguous.
    minus : str
        The minus sign (default the typographic ``"−"``, U+2212; use ``"-"``
        for plain ASCII).
    decimal_mark : str
        ``"."`` or e.g. ``"·"`` (Lancet mid-line point) or ``","``.
    thousands : str
        Thousands separator for counts (default ``","``; ``""`` for none).
    percent_decimals : int
        Decimals for percentages (default 0).
    fit_decimals : int
        Decimals for fit indices (CFI, TLI, RMSEA, SRMR and their changes;
        default 3, as lavaan prints them and as the usual cut-offs such as
        a CFI drop of 0.010 need).
    df_decimals : int
        Decimals for degrees of freedom that are not whole numbers
        (Satterthwaite or Kenward-Roger df; default 2). Whole df are written
        as counts (``63``, ``1,049``).
    missing : str
        Text for a missing value (default ``"–"``).
    """

    decimals: int = 2
    p_decimals: int = 3
    p_threshold: float = 0.001
    p_leading_zero: bool = True
    p_space: bool = False
    p_style: str = "exact"
    ci_style: str = "brackets"
    minus: str = "\u2212"
    decimal_mark: str = "."
    thousands: str = ","
    percent_decimals: int = 0
    missing: str = "\u2013"
    fit_decimals: int = 3
    df_decimals: int = 2

    def __post_init__(self):
        if self.ci_style not in _CI_STYLES:
            raise RenderError(
                f"`ci_style={self.ci_style!r}` is not a known style; expected one of {', '.join(_CI_STYLES)}."
            )
        if self.p_style not in _P_STYLES:
            raise RenderError(
                f"`p_style={self.p_style!r}` is not a known style; expected one of {', '.join(_P_STYLES)}."
            )
        for name in ("decimals", "p_decimals", "percent_decimals", "fit_decimals", "df_decimals"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0 or v > 12:
                raise RenderError(f"`{name}={v!r}` must be an integer between 0 and 12.")
        if not (0 < self.p_threshold < 1):
            raise RenderError(f"`p_threshold={self.p_threshold!r}` must lie strictly between 0 and 1.")

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **changes: Any) -> "NumberFormat":
        """A house-style preset (``default``, ``apa``, ``ama``, ``bmj``, ``lancet``, ``ascii``), optionally changed.

        The presets follow the published author instructions as commonly
        applied (APA 7: p without leading zero, ``p < .001``; AMA/JAMA: the same
        p style with CIs written ``a to b``; BMJ: ``a to b`` and ``<0.001``;
        Lancet: mid-line decimal point and ``a–b``). Check your target
        journal's current guide and override fields as needed.
        """
        try:
            base = PRESETS[name]
        except KeyError:
            raise RenderError(
                f"`preset={name!r}` is not a known number-format preset; expected one of {', '.join(sorted(PRESETS))}."
            ) from None
        return replace(base, **changes) if changes else base

    # ------------------------------------------------------------------ pieces
    def _num(self, x: float, decimals: int) -> str:
        s = f"{abs(x):,.{decimals}f}".replace(",", "\x00")
        s = s.replace(".", self.decimal_mark).replace("\x00", self.thousands)
        # avoid "-0.00": the sign follows the rounded value
        if x < 0 and float(f"{abs(x):.{decimals}f}") != 0.0:
            s = self.minus + s
        return s

    @staticmethod
    def _missing(x: Any) -> bool:
        if x is None:
            return True
        import pandas as pd

        try:
            r = pd.isna(x)
        except (TypeError, ValueError):  # pragma: no cover - exotic scalars
            return False
        return bool(r) if isinstance(r, (bool,)) or getattr(r, "shape", None) == () else False

    def estimate(self, x: Any, decimals: int | None = None) -> str:
        """Format an estimate (coefficient, mean difference, odds ratio...)."""
        if self._missing(x):
            return self.missing
        x = float(x)
        if math.isinf(x):
            return ("" if x > 0 else self.minus) + "\u221e"
        return self._num(x, self.decimals if decimals is None else decimals)

    number = estimate

    def count(self, k: Any) -> str:
        """Format a count with the thousands separator (``1,425``).

        A count stored as a float (``5.0``, as counts are after a missing value
        made the column float) is written as the whole number it is; a value
        that is not whole (a weighted or averaged count) is written with
        ``decimals`` rather than cut to an integer.
        """
        if self._missing(k):
            return self.missing
        if not isinstance(k, numbers.Integral):
            x = float(k)
            if math.isinf(x):
                return ("" if x > 0 else self.minus) + "\u221e"
            if not x.is_integer():
                return self._num(x, self.decimals)
        k = int(k)
        s = f"{abs(k):,d}".replace(",", self.thousands)
        return (self.minus if k < 0 else "") + s

    def df(self, x: Any) -> str:
        """Format degrees of freedom: whole df as a count (``63``), others with ``df_decimals`` (``1,414.84``).

        Infinite df (a z test, as for GLMM Wald tests) are written ``∞``.
        """
        if self._missing(x):
            return self.missing
        x = float(x)
        if math.isinf(x):
            return ("" if x > 0 else self.minus) + "\u221e"
        if x.is_integer():
            return self.count(x)
        return self._num(x, self.df_decimals)

    def fit_index(self, x: Any) -> str:
        """Format a fit index or its change (CFI, TLI, RMSEA, SRMR) with ``fit_decimals`` (``0.996``, ``1.000``)."""
        if self._missing(x):
            return self.missing
        return self._num(float(x), self.fit_decimals)

    def format(self, kind: str, x: Any) -> str:
        """Format ``x`` as a number of the column kind ``kind`` (one of :data:`KINDS`).

        ``estimate`` and ``number`` are estimates, ``p_value`` p-values; the
        other kinds call the method of the same name.
        """
        if kind in ("estimate", "number"):
            return self.estimate(x)
        if kind == "p_value":
            return self.p(x)
        if kind in ("count", "percent", "fit_index", "df"):
            return getattr(self, kind)(x)
        raise RenderError(f"Number kind {kind!r} is not known; expected one of {', '.join(KINDS)}.")

    def percent(self, x: Any, *, sign: bool = True) -> str:
        """Format a percentage given on the 0-100 scale."""
        if self._missing(x):
            return self.missing
        return self._num(float(x), self.percent_decimals) + ("%" if sign else "")

    def ci(self, lower: Any, upper: Any, decimals: int | None = None) -> str:
        """Format a confidence interval in the chosen style."""
        if self._missing(lower) or self._missing(upper):
            return self.missing
        a, b = self.estimate(lower, decimals), self.estimate(upper, decimals)
        style = self.ci_style
        if style == "dash" and (a.startswith(self.minus) or b.startswith(self.minus)):
            style = "to"
        if style == "brackets":
            return f"[{a}, {b}]"
        if style == "parentheses":
            return f"({a}, {b})"
        if style == "to":
            return f"{a} to {b}"
        return f"{a}\u2013{b}"

    def p(self, p: Any) -> str:
        """Format a p-value (``"<0.001"`` below the threshold)."""
        if self._missing(p):
            return self.missing
        p = float(p)
        if not (0.0 <= p <= 1.0):
            raise RenderError(f"p-value {p!r} lies outside [0, 1]; check the `p_value` column.")
        sp = " " if self.p_space else ""

        def plain(v: float, d: int) -> str:
            s = f"{v:.{d}f}".replace(".", self.decimal_mark)
            if not self.p_leading_zero and s.startswith("0"):
                s = s[1:]
            return s

        if self.p_style == "threshold":
            cut = 0.05
            return f"<{sp}{plain(cut, 2)}" if p < cut else f"\u2265{sp}{plain(cut, 2)}"
        thr_dec = max(self.p_decimals, len(repr(self.p_threshold).split(".")[-1]))
        if p < self.p_threshold:
            out = f"<{sp}{plain(self.p_threshold, thr_dec)}"
        else:
            out = plain(p, self.p_decimals)
            # with fewer decimals than the threshold needs, a p that rounds to 0 is floored
            if float(f"{p:.{self.p_decimals}f}") == 0.0:
                out = f"<{sp}{plain(10 ** -self.p_decimals, self.p_decimals)}"
        if self.p_style == "stars":
            stars = "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
            out += stars
        return out

    def estimate_ci(self, est: Any, lower: Any, upper: Any) -> str:
        """Estimate followed by its interval, e.g. ``0.12 [0.03, 0.21]``."""
        if self._missing(est):
            return self.missing
        ci = self.ci(lower, upper)
        if ci == self.missing:
            return self.estimate(est)
        if self.ci_style in ("to", "dash"):
            return f"{self.estimate(est)} ({ci})"
        return f"{self.estimate(est)} {ci}"


PRESETS: dict[str, NumberFormat] = {
    "default": NumberFormat(),
    "apa": NumberFormat(p_leading_zero=False, p_space=True, ci_style="brackets"),
    "ama": NumberFormat(p_leading_zero=False, p_space=True, ci_style="to"),
    "bmj": NumberFormat(ci_style="to"),
    "lancet": NumberFormat(decimal_mark="\u00b7", ci_style="dash", p_decimals=4, p_threshold=0.0001),
    "ascii": NumberFormat(minus="-", missing="-"),
}
