"""semopy as an alternative engine, normalised into cimstats' parameter-table columns.

Only this module imports semopy. semopy handles single-group models on
complete data; its estimates are close to (not identical with) lavaan's
because its optimiser stops earlier, and its information criteria use a
different likelihood scale, so cimstats' own engine is the default.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from cimstats.errors import EstimationError, ModelSpecificationError

__all__ = ["fit_semopy", "SemopyResult"]


@dataclass(frozen=True)
class SemopyResult:
    """A model fitted by semopy; ``tidy()`` uses the same columns as :class:`SEMResult`."""

    table: pd.DataFrame
    nobs: int
    engine: str
    _stats: MappingProxyType

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def fit_measures(self) -> dict:
        """Fit statistics as semopy computes them (its scale for logl/AIC differs from lavaan's)."""
        return dict(self._stats)


def fit_semopy(data, model: str) -> SemopyResult:
    """Fit ``model`` (lavaan syntax without cimstats-only features) with semopy."""
    try:
        import semopy
    except ImportError as exc:  # pragma: no cover - semopy is a dependency
        raise EstimationError("engine='semopy' needs the semopy package; install it with pip.") from exc
    if not isinstance(data, pd.DataFrame):
        data = getattr(data, "data", data)
    if ":=" in model or "==" in model:
        raise ModelSpecificationError(
            "engine='semopy' cannot fit defined parameters (:=) or constraints (==); use engine='cimstats'."
        )
    m = semopy.Model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = m.fit(data)
        ins = m.inspect()
        try:
            st = semopy.calc_stats(m).iloc[0].to_dict()
        except Exception:  # semopy's statistics can fail on some models
            st = {}
    if not getattr(res, "success", True):
        raise EstimationError(f"semopy did not converge: {getattr(res, 'message', '')}.")
    latent = set(m.vars.get("latent", []))
    rows = []
    for r in ins.to_dict("records"):
        lval, op, rval = str(r["lval"]), str(r["op"]), str(r["rval"])
        if op == "~" and rval in latent and lval not in latent:
            lhs, op2, rhs = rval, "=~", lval
        elif op == "~" and rval in latent and lval in latent and rval != lval:
            lhs, op2, rhs = lval, "~", rval
        else:
            lhs, op2, rhs = lval, op, rval
        if op2 == "~~" and (rhs, lhs) < (lhs, rhs):
            pass
        est = float(r["Estimate"])
        se = pd.to_numeric(r["Std. Err"], errors="coerce")
        se = float(se) if pd.notna(se) else 0.0
        rows.append(dict(term=f"{lhs}{op2}{rhs}", lhs=lhs, op=op2, rhs=rhs, label="", group=1,
                         estimate=est, std_error=se))
    t = pd.DataFrame(rows)
    from scipy import stats as sst

    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(t["std_error"] > 0, t["estimate"] / t["std_error"], np.nan)
    t["statistic"] = z
    t["df"] = np.nan
    t["p_value"] = 2 * sst.norm.sf(np.abs(z))
    t["ci_lower"] = t["estimate"] - 1.959963984540054 * t["std_error"]
    t["ci_upper"] = t["estimate"] + 1.959963984540054 * t["std_error"]
    t["std_lv"] = np.nan
    t["std_all"] = np.nan
    stats_out = {str(k): float(v) for k, v in st.items() if np.isscalar(v)}
    return SemopyResult(table=t, nobs=len(data), engine="semopy", _stats=MappingProxyType(stats_out))
