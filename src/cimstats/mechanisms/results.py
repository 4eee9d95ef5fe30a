"""The filled mechanism table and its views (tidy, summary, publication table)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import PlanError
from cimstats.models._result import (FittedResult, OptimizerSummary, ResultSummary, dropped_frame,
                                     not_available)

from .adjust import p_adjust
from .rules import VerdictRules, apply_rules
from .plan import _shipped_mechanisms
from cimstats.models.mediation.kernel import adjusted_interval, percentile_interval
from cimstats.render import NumberFormat, TableSpec
from cimstats.render.spec import Footnote

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

    return str((_shipped_mechanisms().get(mechanism) or {}).get("label") or mechanism)


#: templates whose intervals are bootstrap intervals (recomputed from the stored draws at another level)
_BOOTSTRAP_TEMPLATES = ("mediation", "moderated_mediation")


@dataclass(frozen=True)
class MechanismResult(FittedResult):
    """Result of :func:`cimstats.test_mechanisms`: the filled mechanism table.

    It honours the result contract (:class:`cimstats.models._result.FittedResult`,
    kind ``"mechanisms"``). What the views need from the analysis plan (its
    name, the hypotheses with their statements, mechanisms and themes) is in
    the table itself and in ``plan_name``; a result read back with
    :func:`cimstats.load_result` therefore has the same tidy, glance, summary,
    publication table and forest plot as the original, but no ``plan`` object
    and no fitted models (``fit()`` says so; save each fitted model with its
    own ``save`` to keep it).

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
        ``MediationResult`` for ``mediation``/``moderated_mediation``,
        ``InvarianceResult`` for ``invariance`` and ``TwoLevelResult`` for
        ``twolevel_sem``; :meth:`fit` does the same
        with a helpful error.
    plan : MechanismPlan
    rules : VerdictRules or callable
    adjust : str or None
    seed, n_boot : bootstrap settings
    waves : tuple
        Waves present in the patient table.
    rules_text : str
        The verdict rules in words (printed with the table).
    plan_name : str
        The name of the analysis plan (taken from ``plan`` when not given).
    level : float
        Confidence level of the intervals in ``table`` (the rules' level).
    intervals : dict
        What :meth:`tidy` needs to give intervals at another level: for each
        hypothesis whose interval is a bootstrap interval, the bootstrap draws
        of its estimand, the interval method and its acceleration (filled from
        ``fits`` when not given).
    dropped_counts : DataFrame
        Rows set aside for missing values, per model and variable (see :attr:`dropped`).
    mechanism_labels : dict
        Mechanism id -> the label tables and figures show (the plan's
        ``mechanisms:`` labels; taken from ``plan`` when not given, and kept
        when the result is saved).
    """

    kind = "mechanisms"

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
    plan_name: str | None = None
    level: float | None = None
    intervals: Any = None
    dropped_counts: Any = None
    mechanism_labels: Any = None

    def __post_init__(self):
        if self.plan_name is None:
            object.__setattr__(self, "plan_name", str(getattr(self.plan, "name", "") or ""))
        if self.level is None:
            object.__setattr__(self, "level", float(getattr(self.rules, "level", 0.95)))
        if self.intervals is None:
            object.__setattr__(self, "intervals", _intervals_from_fits(self.table, self.fits))
        if self.dropped_counts is None:
            object.__setattr__(self, "dropped_counts", _dropped_from_fits(self.models, self.fits))
        if self.mechanism_labels is None:
            object.__setattr__(self, "mechanism_labels", {str(m): _mechanism_label(self.plan, str(m))
                                                          for m in pd.unique(self.table["mechanism"].dropna())})

    # ------------------------------------------------------------ fitted models
    def fit(self, model_id: str):
        """The fitted result object of one model of the plan (e.g. for a caterpillar or path figure).

        Raises
        ------
        PlanError
            ``model_id`` is not a model of the plan, or the model was not
            fitted (the reason is given).
        """
        known = list(self.fits) or [str(m) for m in self.models["model_id"]]
        if model_id not in known:
            raise PlanError(f"`model_id` is {model_id!r}, not a model of plan '{self.plan_name}'; models: "
                            f"{', '.join(known)}.")
        if model_id not in self.fits:
            raise not_available(f"The fitted model {model_id!r}", "mechanisms")
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
    def tidy(self, *, level: float | None = None) -> pd.DataFrame:
        """One row per hypothesis with the shared columns.

        Parameters
        ----------
        level : float, optional
            Confidence level of ``ci_lower`` and ``ci_upper``; by default the
            level the tests were run at (``self.level``, the rules' level).
            At another level, bootstrap intervals (mediation templates) are
            computed again from the stored draws with the same method, and the
            other intervals as estimate +/- quantile x std_error with the t
            quantile on the row's df (the normal quantile when there is no df).
            Rows without an interval (invariance checks, hypotheses not
            testable) stay empty.

        Returns
        -------
        DataFrame
            Columns: term (hypothesis id), estimand, estimate, std_error,
            statistic, df, p_value, p_adjusted, ci_lower, ci_upper, n,
            verdict. ``statistic`` is the test statistic of the estimand (t or
            z; for an invariance check the chi-square difference) and NaN where
            there is none.
        """
        t = self.table
        out = pd.DataFrame({"term": t["hypothesis_id"], "estimand": t["estimand"]})
        for c in ("estimate", "std_error", "statistic", "df", "p_value", "p_adjusted", "ci_lower", "ci_upper", "n",
                  "verdict"):
            out[c] = t[c].to_numpy()
        if level is None or level == self.level:
            return out
        lo, hi = self._intervals_at(level)
        out["ci_lower"] = lo
        out["ci_upper"] = hi
        return out

    def _intervals_at(self, level) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < float(level) < 1:
            raise PlanError(f"`level` is {level!r}; expected a confidence level between 0 and 1, e.g. 0.95.")

        level = float(level)
        t = self.table
        est = t["estimate"].to_numpy(dtype=float)
        se = t["std_error"].to_numpy(dtype=float)
        df = t["df"].to_numpy(dtype=float)
        has_ci = t["ci_lower"].notna().to_numpy() & t["ci_upper"].notna().to_numpy()
        q = 1 - (1 - level) / 2
        lo, hi = np.full(len(t), np.nan), np.full(len(t), np.nan)
        for i, hid in enumerate(t["hypothesis_id"]):
            if not has_ci[i]:
                continue
            boot = self.intervals.get(str(hid))
            if boot is not None:
                draws = np.asarray(boot["draws"], dtype=float)[:, None]
                if boot["ci"] == "percentile":
                    a, b = percentile_interval(draws, level)
                else:
                    acc = None if boot["ci"] == "bc" else np.array([float(boot["acceleration"])])
                    a, b = adjusted_interval(draws, np.array([est[i]]), level, acc)
                lo[i], hi[i] = float(a[0]), float(b[0])
            elif t["template"].iloc[i] in _BOOTSTRAP_TEMPLATES:
                continue  # a bootstrap interval whose draws were not kept: not recomputed
            else:
                z = stats.t.ppf(q, df[i]) if np.isfinite(df[i]) else stats.norm.ppf(q)
                lo[i], hi[i] = est[i] - z * se[i], est[i] + z * se[i]
        return lo, hi

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

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the hypothesis estimates (rows and columns: hypothesis ids).

        The diagonal is the square of ``std_error`` (NaN where a hypothesis has
        no standard error: invariance checks, hypotheses not testable). Two
        estimands of the same mediation model get the covariance of their
        bootstrap draws. Every other off-diagonal entry is 0: the models are
        fitted one by one and the covariance between their estimates is not
        estimated, so do not combine estimates of different models with this
        matrix as if it were complete.
        """
        t = self.table
        ids = [str(h) for h in t["hypothesis_id"]]
        se = t["std_error"].to_numpy(dtype=float)
        v = np.diag(se ** 2)
        models = [str(m) for m in t["model_id"]]
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                bi, bj = self.intervals.get(ids[i]), self.intervals.get(ids[j])
                if bi is None or bj is None or models[i] != models[j]:
                    continue
                x, y = np.asarray(bi["draws"], dtype=float), np.asarray(bj["draws"], dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                c = float(np.cov(x[ok], y[ok], ddof=1)[0, 1]) if ok.sum() > 1 else np.nan
                v[i, j] = v[j, i] = c
        return pd.DataFrame(v, index=pd.Index(ids, name="term"), columns=ids)

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows set aside for missing values, per model: ``variable`` is ``"<model_id>: <column>"``.

        Each model of the plan is fitted on its own rows, so the counts are
        per model and variable (a row missing several variables counts under
        each); a model that reports only its total is listed as
        ``"<model_id>: any model variable"``. The models table has the number
        of rows each model set aside (``n_dropped``).
        """
        return dropped_frame(self.dropped_counts)

    @property
    def optimizer(self) -> OptimizerSummary:
        """A mechanism result runs no optimisation of its own; the summary says so.

        ``checks`` lists, per fitted model, whether it converged (as its own
        diagnostics report it); ``converged`` is False when any model reports
        that it did not. Each model's optimiser is ``result.fit(model_id).optimizer``.
        """
        checks, ok = [], True
        for r in self.models.itertuples(index=False):
            if r.status != "fitted":
                continue
            m = re.search(r"converged: (True|False)", str(r.diagnostics or ""))
            if m:
                checks.append(f"{r.model_id}: converged {m.group(1)}")
                ok = ok and m.group(1) == "True"
        return OptimizerSummary(
            method="none (collects the fitted models of the plan)", start=(), final=(), iterations=0,
            evaluations=0, gradient_norm=0.0, converged=ok,
            message="the mechanism tests run no optimisation of their own; each fitted model reports its own",
            checks=tuple(checks))

    def summary(self) -> ResultSummary:
        """The mechanism table with verdicts, the verdict reasons and the rules.

        Returns
        -------
        ResultSummary
            A header (plan, number of hypotheses, adjustment, verdict counts),
            the publication table (:meth:`to_table_spec`, verdict reasons as
            footnotes) and the rules as a note. The paragraph-per-hypothesis
            text of earlier versions is :meth:`to_text`.
        """
        g = self.glance().iloc[0]
        counts = ", ".join(f"{int(g['n_' + k.replace(' ', '_')])} {k}" for k in
                           ("supported", "not supported", "contrary", "not testable"))
        return ResultSummary(
            title=f"Mechanism tests (plan '{self.plan_name}', {len(self.table)} hypotheses; "
                  f"adjustment: {self.adjust or 'none'})",
            lines=(f"  verdicts: {counts}",
                   f"  models: {int(g['n_models_fitted'])} of {int(g['n_models'])} fitted; bootstrap "
                   f"{self.n_boot} resamples, seed {self.seed}"),
            tables=(self.to_table_spec(),), notes=(self.rules_text,))

    def to_text(self) -> str:
        """The mechanism table as text: one paragraph per hypothesis with its verdict reason, then the rules."""
        lines = [f"Mechanism tests (plan '{self.plan_name}', {len(self.table)} hypotheses; "
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
        return self.to_text()

    def _level_pct(self) -> str:
        return f"{self.level * 100:g}%"

    def to_table_spec(self, *, title: str = "Pre-specified tests of network mechanisms", number=None,
                      number_format=None):
        """A publication table (:class:`cimstats.render.TableSpec`) grouped by mechanism.

        Columns: Hypothesis, Statement, Estimand, Estimate, CI, p, adjusted p, n,
        Verdict; verdict reasons and the rules are written as notes. A table pooled
        over multiply imputed data sets (column ``fmi``) adds the fraction of missing
        information and names the number of imputations in a note.
        """

        fmt = number_format or NumberFormat()
        t = self.table
        ci = [fmt.ci(lo, hi) if pd.notna(lo) else "" for lo, hi in zip(t["ci_lower"], t["ci_upper"])]
        frame = pd.DataFrame({
            "mechanism": [self.mechanism_labels.get(str(m)) or _mechanism_label(self.plan, m) for m in t["mechanism"]],
            "hypothesis_id": t["hypothesis_id"], "statement": t["statement"], "estimand": t["estimand"],
            "estimate": t["estimate"], "ci": ci, "p_value": t["p_value"], "p_adjusted": t["p_adjusted"],
            "n": t["n"].astype("float"), "verdict": list(t["verdict"]),
        })
        labels = {"hypothesis_id": "Hypothesis", "statement": "Statement", "estimand": "Estimand",
                  "estimate": "Estimate", "ci": f"{self._level_pct()} CI", "p_value": "p",
                  "p_adjusted": f"Adjusted p ({self.adjust})" if self.adjust else "Adjusted p",
                  "n": "n", "verdict": "Verdict"}
        kinds = {"estimate": "estimate", "ci": "ci", "p_value": "p_value", "p_adjusted": "p_value", "n": "count"}
        notes = (self.rules_text,)
        if "fmi" in t.columns:
            frame.insert(list(frame.columns).index("verdict"), "fmi", pd.to_numeric(t["fmi"], errors="coerce"))
            labels["fmi"] = "FMI"
            kinds["fmi"] = "estimate"
            m = pd.to_numeric(t["m"], errors="coerce").dropna() if "m" in t.columns else pd.Series(dtype=float)
            imps = f" over {int(m.max())} imputed data sets" if len(m) else ""
            notes += (f"Estimates pooled{imps} by Rubin's rules; FMI is the fraction of missing information.",)
        foot = tuple(Footnote(str(h), f"{v}: {r}") for h, v, r in
                     zip(t["hypothesis_id"], t["verdict"], t["verdict_reason"]))
        return TableSpec.from_frame(frame, title=title, kinds=kinds, number_format=fmt, group_by="mechanism",
                                    header_labels=labels, notes=notes, footnotes=foot,
                                    number=number, orientation="landscape")

    # ------------------------------------------------------------ saving
    def _state(self) -> dict:
        rules = ({"kind": "rules", **dataclasses.asdict(self.rules)} if isinstance(self.rules, VerdictRules)
                 else {"kind": "user"})
        return {"table": _plain(self.table), "table_dtypes": _extension_dtypes(self.table),
                "models": _plain(self.models), "models_dtypes": _extension_dtypes(self.models),
                "plan_name": self.plan_name, "rules": rules, "adjust": self.adjust,
                "seed": None if self.seed is None else int(self.seed), "n_boot": int(self.n_boot),
                "waves": [w.item() if hasattr(w, "item") else w for w in self.waves], "rules_text": self.rules_text,
                "level": float(self.level),
                "intervals": {h: {"draws": np.asarray(v["draws"], dtype=float), "ci": str(v["ci"]),
                                  "acceleration": float(v["acceleration"])} for h, v in self.intervals.items()},
                "dropped_counts": dropped_frame(self.dropped_counts),
                "mechanism_labels": {str(k): str(v) for k, v in (self.mechanism_labels or {}).items()}}

    @classmethod
    def _from_state(cls, state: dict) -> "MechanismResult":
        r = dict(state["rules"])
        rules = VerdictRules(**{k: v for k, v in r.items() if k != "kind"}) if r.get("kind") == "rules" else None
        return cls(table=_typed(state["table"], state["table_dtypes"]),
                   models=_typed(state["models"], state["models_dtypes"]), fits=MappingProxyType({}), plan=None,
                   rules=rules, adjust=state["adjust"], seed=state["seed"], n_boot=int(state["n_boot"]),
                   waves=tuple(state["waves"]), rules_text=state["rules_text"], plan_name=state["plan_name"],
                   level=float(state["level"]),
                   intervals={h: {"draws": np.asarray(v["draws"], dtype=float), "ci": v["ci"],
                                  "acceleration": float(v["acceleration"])} for h, v in state["intervals"].items()},
                   dropped_counts=state["dropped_counts"], mechanism_labels=state.get("mechanism_labels"))


def _extension_dtypes(df: pd.DataFrame) -> dict:
    """Columns with a nullable dtype (Int64, boolean...) whose missing values JSON keeps as null."""
    return {str(c): str(df[c].dtype) for c in df.columns
            if isinstance(df[c].dtype, pd.api.extensions.ExtensionDtype) and str(df[c].dtype)[:1].isupper()}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in _extension_dtypes(df):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def _typed(df: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    out = df.copy()
    for c, dt in dtypes.items():
        out[c] = pd.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in out[c]],
                          dtype=dt)
    return out


def _intervals_from_fits(table: pd.DataFrame, fits) -> dict:
    """Bootstrap draws, interval method and acceleration of every hypothesis with a bootstrap interval."""
    out = {}
    for r in table.itertuples(index=False):
        if r.template not in _BOOTSTRAP_TEMPLATES or pd.isna(r.ci_lower):
            continue
        fit = (fits or {}).get(r.model_id)
        boot = getattr(fit, "boot", None)
        if not isinstance(boot, pd.DataFrame) or r.estimand not in boot.columns:
            continue
        j = list(boot.columns).index(r.estimand)
        acc = getattr(fit, "acceleration", None)
        out[str(r.hypothesis_id)] = {"draws": boot[r.estimand].to_numpy(dtype=float), "ci": str(fit.ci),
                                     "acceleration": float(acc[j]) if acc is not None else float("nan")}
    return out


def _dropped_from_fits(models: pd.DataFrame, fits) -> pd.DataFrame:
    """Rows set aside per model and variable (``"<model_id>: <variable>"``)."""
    counts: dict = {}
    for r in models.itertuples(index=False):
        if r.status != "fitted":
            continue
        fit = (fits or {}).get(r.model_id)
        d = getattr(fit, "dropped", None)
        by = getattr(fit, "dropped_by_column", None)
        if isinstance(d, pd.DataFrame) and {"variable", "n_missing"} <= set(d.columns):
            items = zip(d["variable"], d["n_missing"])
        elif isinstance(by, Mapping):
            items = by.items()
        elif pd.notna(r.n_dropped) and int(r.n_dropped) > 0:
            items = [("any model variable", int(r.n_dropped))]
        else:
            items = []
        for v, n in items:
            if int(n) > 0:
                counts[f"{r.model_id}: {v}"] = int(n)
    return dropped_frame(counts)
