"""The filled mechanism table and its views (tidy, summary, publication table)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from cimstats.errors import PlanError

from .adjust import p_adjust
from .rules import VerdictRules, apply_rules

__all__ = ["MechanismResult", "TABLE_COLUMNS"]

TABLE_COLUMNS = [
    "hypothesis_id", "mechanism", "element", "statement", "model_id", "template", "model", "estimand", "expected",
    "required_variables", "theme_ids", "estimate", "std_error", "statistic", "df", "ci_lower", "ci_upper", "p_value",
    "p_adjusted", "n", "n_dropped", "diagnostics", "verdict", "verdict_reason",
]

def _mechanism_label(plan, mechanism: str) -> str:
    """The plan's label of a mechanism; for a plan that declares none, the shipped plan's (else the id)."""
    spec = (getattr(plan, "mechanisms", None) or {}).get(mechanism)
    if spec and spec.get("label"):
        return str(spec["label"])
    from .plan import _shipped_mechanisms

    return str((_shipped_mechanisms().get(mechanism) or {}).get("label") or mechanism)


@dataclass(frozen=True)
class MechanismResult:
    """Result of :func:`cimstats.test_mechanisms`: the filled mechanism table.

    Attributes
    ----------
    table : DataFrame
        One row per hypothesis (columns in ``TABLE_COLUMNS``); it is the input
        contract of :func:`cimstats.joint_display` (``results=``).
    models : DataFrame
        One row per model of the plan: model_id, template, status (fitted, not
        testable, failed), reason, model, nobs, n_dropped, diagnostics.
    fits : mapping
        model_id -> fitted result object (``None`` when not fitted):
        ``LmmResult`` for ``lmm``, ``GlmmResult`` for ``glmm``,
        ``MediationResult`` for ``mediation``/``moderated_mediation`` and
        ``InvarianceResult`` for ``invariance``; :meth:`fit` does the same
        with a helpful error.
    plan : Plan
    rules : VerdictRules or callable
    adjust : str or None
    seed, n_boot : bootstrap settings
    waves : tuple
        Waves present in the patient table.
    rules_text : str
        The verdict rules in words (printed with the table).
    """

    table: pd.DataFrame
    models: pd.DataFrame
    fits: MappingProxyType
    plan: Any
    rules: Any
    adjust: str | None
    seed: int | None
    n_boot: int
    waves: tuple
    rules_text: str

    # ------------------------------------------------------------ fitted models
    def fit(self, model_id: str):
        """The fitted result object of one model of the plan (e.g. for a caterpillar or path figure).

        Raises
        ------
        PlanError
            ``model_id`` is not a model of the plan, or the model was not
            fitted (the reason is given).
        """
        if model_id not in self.fits:
            raise PlanError(f"`model_id` is {model_id!r}, not a model of plan '{self.plan.name}'; models: "
                            f"{', '.join(self.fits)}.")
        res = self.fits[model_id]
        if res is None:
            why = self.models.set_index("model_id").loc[model_id, "reason"]
            raise PlanError(f"Model {model_id!r} was not fitted ({why}); fix the cause and run test_mechanisms again.")
        return res

    # ------------------------------------------------------------ re-judging
    def with_rules(self, rules=None, *, adjust="same") -> "MechanismResult":
        """The same fits judged by other verdict rules (and optionally another adjustment), without refitting.

        Parameters
        ----------
        rules : VerdictRules, dict or callable, optional
            As in :func:`cimstats.test_mechanisms`; a dict overrides the current rules.
        adjust : {"holm", "bh", None, "same"}
        """
        adj = self.adjust if adjust == "same" else adjust
        base = self.rules if isinstance(self.rules, VerdictRules) else VerdictRules()
        if callable(rules) and not isinstance(rules, (VerdictRules, dict)):
            rule_fn = rules
        else:
            rule_fn = VerdictRules.from_any(rules, base)
        t = self.table.copy()
        tested = (t["template"] != "invariance") & t["estimate"].notna()
        if isinstance(rule_fn, VerdictRules) and rule_fn.level != base.level:
            raise PlanError("`rules` changes the confidence level, which needs refitting; call "
                            "cimstats.test_mechanisms(..., level=...) instead.")
        inv = ["invariance_criterion", "max_cfi_drop", "max_rmsea_rise", "max_srmr_rise_metric", "max_srmr_rise_scalar"]
        if isinstance(rule_fn, VerdictRules) and {rule_fn.invariance_criterion, base.invariance_criterion} & {"chisq",
                                                                                                              "both"}:
            inv.append("alpha")  # the chi-square difference test uses alpha
        if (isinstance(rule_fn, VerdictRules) and (t["template"] == "invariance").any()
                and any(getattr(rule_fn, k) != getattr(base, k) for k in inv)):
            raise PlanError("`rules` changes the measurement-invariance criteria, which decide which models are fitted; "
                            "call cimstats.test_mechanisms(..., rules=...) to refit with them.")
        padj = p_adjust(t["p_value"].where(tested).to_numpy(dtype=float), adj)
        t["p_adjusted"] = padj
        for i in t.index[tested]:
            v, r = apply_rules(t.loc[i].to_dict(), rule_fn, adj)
            t.loc[i, "verdict"] = v
            t.loc[i, "verdict_reason"] = r
        text = rule_fn.describe(adj) if isinstance(rule_fn, VerdictRules) else (
            "Verdicts by a user-supplied rule. Not testable: " + base.describe(adj).split("Not testable:")[1].strip())
        return replace(self, table=t, rules=rule_fn, adjust=adj, rules_text=text)

    # ------------------------------------------------------------ views
    def tidy(self) -> pd.DataFrame:
        """One row per hypothesis with the shared columns.

        Columns: term (hypothesis id), estimand, estimate, std_error,
        statistic, df, p_value, p_adjusted, ci_lower, ci_upper, n, verdict.
        """
        t = self.table
        out = pd.DataFrame({"term": t["hypothesis_id"], "estimand": t["estimand"]})
        for c in ("estimate", "std_error", "statistic", "df", "p_value", "p_adjusted", "ci_lower", "ci_upper", "n",
                  "verdict"):
            out[c] = t[c].to_numpy()
        return out

    def glance(self) -> pd.DataFrame:
        """One row: counts of hypotheses by verdict, models fitted, adjustment, bootstrap settings."""
        v = self.table["verdict"].value_counts()
        return pd.DataFrame([{
            "n_hypotheses": len(self.table), **{f"n_{k.replace(' ', '_')}": int(v.get(k, 0)) for k in
                                                ("supported", "not supported", "contrary", "not testable")},
            "n_models": len(self.models), "n_models_fitted": int((self.models["status"] == "fitted").sum()),
            "adjust": self.adjust, "n_boot": self.n_boot, "seed": self.seed,
            "waves": ",".join(map(str, self.waves)),
        }])

    def summary(self) -> str:
        """The mechanism table as text, with verdict reasons and the rules."""
        lines = [f"Mechanism tests (plan '{self.plan.name}', {len(self.table)} hypotheses; "
                 f"adjustment: {self.adjust or 'none'})", ""]
        for r in self.table.itertuples(index=False):
            head = f"{r.hypothesis_id} [{r.mechanism}] {r.verdict.upper()}"
            lines.append(head)
            lines.append(f"  {r.statement}")
            if pd.notna(r.estimate):
                ci = (f", {self._level_pct()} CI {r.ci_lower:.4g} to {r.ci_upper:.4g}"
                      if pd.notna(r.ci_lower) else "")
                p = f", p = {r.p_value:.3g}" if pd.notna(r.p_value) else ""
                pa = f", adjusted p = {r.p_adjusted:.3g}" if pd.notna(r.p_adjusted) else ""
                lines.append(f"  {r.estimand} = {r.estimate:.4g}{ci}{p}{pa}; n = {r.n}")
            lines.append(f"  model: {r.model}")
            lines.append(f"  reason: {r.verdict_reason}")
            if isinstance(r.diagnostics, str) and r.diagnostics:
                lines.append(f"  diagnostics: {r.diagnostics}")
            lines.append("")
        lines.append(self.rules_text)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from cimstats.render import text_formats

        try:
            return text_formats.to_html(self.to_table_spec())
        except Exception:  # rendering for notebooks only; the text form is always available
            return "<pre>" + self.summary().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

    def _level_pct(self) -> str:
        lv = getattr(self.rules, "level", 0.95)
        return f"{lv * 100:g}%"

    def to_table_spec(self, *, title: str = "Pre-specified tests of network mechanisms", number=None,
                      number_format=None):
        """A publication table (:class:`cimstats.render.TableSpec`) grouped by mechanism.

        Columns: Hypothesis, Statement, Estimand, Estimate, CI, p, adjusted p, n,
        Verdict; verdict reasons and the rules are written as notes.
        """
        from cimstats.render import NumberFormat, TableSpec
        from cimstats.render.spec import Footnote

        fmt = number_format or NumberFormat()
        t = self.table
        ci = [fmt.ci(lo, hi) if pd.notna(lo) else "" for lo, hi in zip(t["ci_lower"], t["ci_upper"])]
        frame = pd.DataFrame({
            "mechanism": [_mechanism_label(self.plan, m) for m in t["mechanism"]],
            "hypothesis_id": t["hypothesis_id"], "statement": t["statement"], "estimand": t["estimand"],
            "estimate": t["estimate"], "ci": ci, "p_value": t["p_value"], "p_adjusted": t["p_adjusted"],
            "n": t["n"].astype("float"), "verdict": list(t["verdict"]),
        })
        labels = {"hypothesis_id": "Hypothesis", "statement": "Statement", "estimand": "Estimand",
                  "estimate": "Estimate", "ci": f"{self._level_pct()} CI", "p_value": "p",
                  "p_adjusted": f"Adjusted p ({self.adjust})" if self.adjust else "Adjusted p",
                  "n": "n", "verdict": "Verdict"}
        kinds = {"estimate": "estimate", "ci": "ci", "p_value": "p_value", "p_adjusted": "p_value", "n": "count"}
        foot = tuple(Footnote(str(h), f"{v}: {r}") for h, v, r in
                     zip(t["hypothesis_id"], t["verdict"], t["verdict_reason"]))
        return TableSpec.from_frame(frame, title=title, kinds=kinds, number_format=fmt, group_by="mechanism",
                                    header_labels=labels, notes=(self.rules_text,), footnotes=foot,
                                    number=number, orientation="landscape")
