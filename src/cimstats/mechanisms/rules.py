"""Verdict rules: how an estimate, its interval and p-value become a verdict.

The rules are stated, stored with the result, and can be changed by the user
(``test_mechanisms(..., rules={...})`` or a callable).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping

from cimstats.errors import PlanError
from cimstats.models.sem.criteria import CHEN_2007

__all__ = ["VerdictRules", "VERDICTS", "apply_rules"]

VERDICTS = ("supported", "not supported", "contrary", "not testable")


@dataclass(frozen=True)
class VerdictRules:
    """Stated rules that turn a fitted estimand into a verdict.

    Parameters
    ----------
    level : float, default 0.95
        Confidence level of the intervals used for verdicts.
    basis : {"auto", "ci", "p_value", "p_adjusted"}, default "auto"
        ``"ci"``: supported when the interval excludes 0 on the expected side,
        contrary when it excludes 0 on the other side, otherwise not supported.
        ``"p_value"`` / ``"p_adjusted"``: the same with ``p < alpha`` in place of
        the interval (direction from the sign of the estimate). ``"auto"``: the
        interval rule, and additionally ``p_adjusted < alpha`` when a
        multiple-testing adjustment was requested.
    alpha : float, default 0.05
    invariance_criterion : {"fit_change", "chisq", "both"}, default "fit_change"
        When a level of measurement invariance holds. ``"fit_change"`` follows
        Chen (2007): a level fails when, against the previous level, CFI drops
        by more than ``max_cfi_drop`` *supplemented by* a rise in RMSEA above
        ``max_rmsea_rise`` or in SRMR above ``max_srmr_rise_metric`` (equal
        loadings) or ``max_srmr_rise_scalar`` (equal intercepts, equal
        residuals); otherwise it holds. ``"chisq"``: the chi-square difference
        test is not significant at ``alpha``. ``"both"``: both of these.
    max_cfi_drop, max_rmsea_rise, max_srmr_rise_metric, max_srmr_rise_scalar : float
        Chen's cut-offs by default (0.010, 0.015, 0.030, 0.010).

    References
    ----------
    Chen FF (2007). Sensitivity of goodness of fit indexes to lack of
    measurement invariance. Structural Equation Modeling 14(3):464-504.
    """

    level: float = 0.95
    basis: str = "auto"
    alpha: float = 0.05
    invariance_criterion: str = "fit_change"
    max_cfi_drop: float = CHEN_2007["max_cfi_drop"]
    max_rmsea_rise: float = CHEN_2007["max_rmsea_rise"]
    max_srmr_rise_metric: float = CHEN_2007["max_srmr_rise_metric"]
    max_srmr_rise_scalar: float = CHEN_2007["max_srmr_rise_scalar"]

    def __post_init__(self):
        problems = []
        if not (0.5 < float(self.level) < 1):
            problems.append(f"level={self.level!r} (expected a number between 0.5 and 1, e.g. 0.95)")
        if self.basis not in ("auto", "ci", "p_value", "p_adjusted"):
            problems.append(f"basis={self.basis!r} (expected auto, ci, p_value or p_adjusted)")
        if not (0 < float(self.alpha) < 1):
            problems.append(f"alpha={self.alpha!r} (expected a number between 0 and 1)")
        if self.invariance_criterion not in ("fit_change", "chisq", "both"):
            problems.append(f"invariance_criterion={self.invariance_criterion!r} (expected fit_change, chisq or both)")
        if problems:
            raise PlanError("The verdict rules hold " + "; ".join(problems) + "; correct these values.")

    @classmethod
    def from_any(cls, rules: "VerdictRules | Mapping | None", base: "VerdictRules | None" = None) -> "VerdictRules":
        base = base or cls()
        if rules is None:
            return base
        if isinstance(rules, VerdictRules):
            return rules
        if not isinstance(rules, Mapping):
            raise PlanError(f"`rules` must be a VerdictRules, a dict or a callable; got {type(rules).__name__}.")
        names = {f.name for f in fields(cls)}
        unknown = [k for k in rules if k not in names]
        if unknown:
            raise PlanError(f"The verdict rules name unknown setting(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(sorted(names))}.")
        return cls(**{**asdict(base), **dict(rules)})

    def describe(self, adjusted: str | None) -> str:
        """The rules in one paragraph (written under the rendered table)."""
        pct = f"{self.level * 100:g}%"
        if self.basis in ("ci", "auto"):
            core = (f"supported when the {pct} interval excludes 0 on the expected side; contrary when it excludes 0 "
                    f"on the other side; otherwise not supported")
            if self.basis == "auto" and adjusted:
                core += f", and supported or contrary only when the {adjusted}-adjusted p < {self.alpha:g}"
        else:
            core = (f"supported when {self.basis.replace('_', ' ')} < {self.alpha:g} with the estimate on the expected "
                    f"side; contrary when on the other side; otherwise not supported")
        fit_change = (f"CFI does not drop by more than {self.max_cfi_drop:g}, or it does but neither RMSEA rises "
                      f"by more than {self.max_rmsea_rise:g} nor SRMR by more than {self.max_srmr_rise_metric:g} "
                      f"(loadings) or {self.max_srmr_rise_scalar:g} (intercepts, residuals) (Chen 2007)")
        inv = {"fit_change": fit_change,
               "chisq": f"chi-square difference p >= {self.alpha:g}",
               "both": f"chi-square difference p >= {self.alpha:g} and {fit_change}"}[self.invariance_criterion]
        return (f"Verdicts: {core}. Measurement invariance holds at a level when, against the previous level, {inv}. "
                f"Not testable: a variable is absent, a wave is missing, a model could not be fitted, or the "
                f"invariance the comparison needs did not hold.")


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def apply_rules(row: Mapping[str, Any], rules: VerdictRules | Callable, adjusted: str | None) -> tuple[str, str]:
    """Verdict and reason for one filled row of the mechanism table (``expected`` not ``holds``)."""
    if callable(rules) and not isinstance(rules, VerdictRules):
        verdict, reason = rules(dict(row))
        if verdict not in VERDICTS:
            raise PlanError(f"The verdict rule returned {verdict!r}; expected one of {', '.join(VERDICTS)}.")
        return verdict, str(reason)
    est, lo, hi = row.get("estimate"), row.get("ci_lower"), row.get("ci_upper")
    exp = row.get("expected")
    sign_wanted = {"positive": 1, "negative": -1, "nonzero": 0}[exp]
    basis = rules.basis
    pct = f"{rules.level * 100:g}% CI"
    if basis in ("auto", "ci"):
        if not (_finite(lo) and _finite(hi)):
            return "not testable", "the model gave no confidence interval for the estimand"
        side = 1 if lo > 0 else (-1 if hi < 0 else 0)
        ci_txt = f"{pct} {float(lo):.3g} to {float(hi):.3g}"
        if side == 0:
            return "not supported", f"{ci_txt} includes 0"
        if basis == "auto" and adjusted:
            p = row.get("p_adjusted")
            if _finite(p) and float(p) >= rules.alpha:
                return "not supported", f"{ci_txt} excludes 0 but {adjusted}-adjusted p = {float(p):.3g} >= {rules.alpha:g}"
        where = "above" if side > 0 else "below"
        if sign_wanted == 0 or side == sign_wanted:
            return "supported", f"{ci_txt} lies {where} 0, as expected ({exp})"
        return "contrary", f"{ci_txt} lies {where} 0, opposite to the expected {exp} direction"
    p = row.get(basis)
    if not (_finite(p) and _finite(est)):
        return "not testable", f"the model gave no {basis.replace('_', ' ')} for the estimand"
    p = float(p)
    if p >= rules.alpha:
        return "not supported", f"{basis.replace('_', ' ')} = {p:.3g} >= {rules.alpha:g}"
    side = 1 if float(est) > 0 else -1
    if sign_wanted == 0 or side == sign_wanted:
        return "supported", f"{basis.replace('_', ' ')} = {p:.3g} < {rules.alpha:g}, estimate on the expected side"
    return "contrary", f"{basis.replace('_', ' ')} = {p:.3g} < {rules.alpha:g}, estimate opposite to the expected {exp} direction"
