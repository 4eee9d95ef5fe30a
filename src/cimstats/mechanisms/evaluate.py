"""Fit every model of an analysis plan once and fill the mechanism table."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from cimstats.errors import CimstatsError, EstimationError, ModelSpecificationError, PlanError
from cimstats.models.glmm.fit import glmm as _glmm
from cimstats.models.mediation.fit import mediation as _mediation
from cimstats.models.mixed.fit import lmm as _lmm
from cimstats.models.sem.criteria import fit_change_holds as _chen_holds
from cimstats.models.sem.invariance import invariance as _invariance
from cimstats.models.sem.longitudinal import longitudinal_invariance as _longitudinal_invariance

from cimstats.measures.constructs import Construct, Measures, Unavailable
from cimstats.measures.networks.change import alter_role_changes
from cimstats.measures.networks.core import SUPPORT

from ._covariates import indicator_columns
from .adjust import p_adjust
from .options import option_problems
from .plan import (INVARIANCE_LEVELS, MechanismPlan, baseline_column, change_formula, default_plan,
                   invariance_models_for, model_outcome, read_mechanism_plan)
from .results import MechanismResult, TABLE_COLUMNS
from .twolevel_template import TooFewClusters, fit_twolevel_sem
from .rules import VerdictRules, apply_rules
from cimstats.measures.scales import load_instrument

__all__ = ["test_mechanisms", "p_adjust", "model_frame"]

_ID = "patient_id"


# ---------------------------------------------------------------- input tables
def _frame(obj) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    data = getattr(obj, "data", None)
    if isinstance(data, pd.DataFrame):
        return data
    raise PlanError(f"`data` holds a {type(obj).__name__} where a table (DataFrame or Survey) was expected; "
                    "pass the harmonised patients and alters tables.")


def _tables(data) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(patients, alters) from a demo study, a harmonise result, a dict, a tuple or one DataFrame."""
    if hasattr(data, "patients") and hasattr(data, "alters"):
        return _frame(data.patients), _frame(data.alters)
    surveys = getattr(data, "surveys", None)
    if isinstance(surveys, Mapping):
        if "patients" not in surveys:
            raise PlanError(f"The harmonise result has tables {', '.join(map(repr, surveys))}; expected one named "
                            "'patients' (and 'alters' for network hypotheses).")
        return _frame(surveys["patients"]), (_frame(surveys["alters"]) if "alters" in surveys else None)
    if isinstance(data, Mapping):
        if "patients" not in data:
            raise PlanError(f"`data` is a mapping with keys {', '.join(map(repr, data))}; expected 'patients' "
                            "and 'alters'.")
        return _frame(data["patients"]), (_frame(data["alters"]) if data.get("alters") is not None else None)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):  # (patients, alters[, alter_ties])
        return _frame(data[0]), (None if data[1] is None else _frame(data[1]))
    return _frame(data), None


def _ties(data) -> pd.DataFrame | None:
    """The alter-alter tie table (``alter_ties``) of the data, when it has one (else None)."""
    if hasattr(data, "patients") and hasattr(data, "alters"):
        t = getattr(data, "alter_ties", None)
    elif isinstance(getattr(data, "surveys", None), Mapping):
        t = data.surveys.get("alter_ties")
    elif isinstance(data, Mapping):
        t = data.get("alter_ties")
    elif isinstance(data, (tuple, list)) and len(data) == 3:
        t = data[2]
    else:
        t = None
    return None if t is None else _frame(t)


def _check_tables(patients: pd.DataFrame, alters: pd.DataFrame | None) -> None:
    """Key columns of the harmonised tables: present, and unique where they must be."""
    if _ID not in patients.columns:
        raise PlanError(f"The patient table has no 'patient_id' column (columns: {', '.join(map(str, patients.columns[:8]))}"
                        f"{' ...' if patients.shape[1] > 8 else ''}); pass the harmonised patients table "
                        "(see the demo study's SCHEMA.md).")
    if patients.empty:
        raise PlanError("The patient table has no rows; pass the harmonised patients table with at least one patient.")
    if patients[_ID].isna().any():
        raise PlanError(f"The patient table has {int(patients[_ID].isna().sum())} row(s) without a patient_id; "
                        "every row needs one, so remove or identify those rows.")
    key = [_ID, "wave"] if "wave" in patients.columns else [_ID]
    dup = patients.duplicated(key, keep=False)
    if dup.any():
        first = patients.loc[dup, key].iloc[0].tolist()
        raise PlanError(f"The patient table repeats ({', '.join(key)}) in {int(dup.sum())} rows (first: {first}); "
                        "expected one row per patient per wave, so remove the duplicates.")
    if "wave" in patients.columns and not pd.api.types.is_numeric_dtype(patients["wave"]):
        raise PlanError(f"The patient table's 'wave' column has type {patients['wave'].dtype}; expected wave numbers "
                        "(0 baseline, 1 follow-up), so convert it with pandas.to_numeric.")
    if alters is not None:
        miss = [c for c in (_ID, "alter_id") if c not in alters.columns]
        if miss:
            raise PlanError(f"The alter table lacks column(s) {', '.join(miss)}; expected one row per named network "
                            "member per wave with patient_id and alter_id (see the demo study's SCHEMA.md).")
        unknown = ~alters[_ID].isin(set(patients[_ID]))
        if unknown.any():
            ex = alters.loc[unknown, _ID].astype(str).iloc[0]
            raise PlanError(f"The alter table names {int(unknown.sum())} network member(s) of patients absent from the "
                            f"patient table (first: patient_id '{ex}'); pass matching patients and alters tables.")


# ---------------------------------------------------------------- workspace
class _Unavailable(Exception):
    """A variable or table needed by a model cannot be built; the message is the verdict reason."""


class _Workspace:
    """Builds the analysis frames from the plan's constructs, each computed once (or taken from ``measures``)."""

    def __init__(self, patients: pd.DataFrame, alters: pd.DataFrame | None, plan: MechanismPlan, measures=None,
                 ties: pd.DataFrame | None = None):
        self.patients = patients.reset_index(drop=True)
        self.alters = alters
        self.ties = ties
        self.plan = plan
        self.measures = Measures.coerce(measures)
        self.waves = sorted(pd.unique(self.patients["wave"].dropna()).tolist()) if "wave" in self.patients else [0]
        self._ego = self.patients.copy()
        if "wave" not in self._ego:
            self._ego["wave"] = 0
        self._built: dict[str, str | None] = {}
        self._change = None
        self._changes: dict[tuple, pd.DataFrame] = {}
        self.notes: list[str] = []
        self.measures.check_rows(self._ego)

    def construct(self, name: str) -> Construct | None:
        spec = self.plan.constructs.get(name)
        return None if spec is None else Construct.from_spec(name, spec)

    # ---- ego-level columns
    def ego_column(self, name: str) -> None:
        """Make ``name`` a column of the ego table or raise _Unavailable."""
        if name in self._built:
            if self._built[name] is not None:
                raise _Unavailable(self._built[name])
            return
        try:
            self._build(name)
            self._built[name] = None
        except _Unavailable as exc:
            self._built[name] = str(exc)
            raise

    def _build(self, name: str) -> None:
        c = self.construct(name)
        if c is None:
            if name not in self._ego.columns:
                raise _Unavailable(f"variable '{name}' is absent from the patient table")
            return
        try:
            if c.kind == "scale":
                self._ego[name] = self.measures.scale(c, self._ego)
            elif c.kind == "network":
                self._ego[name] = self.measures.network(c, self._ego, self.alters, self.ties)
            elif c.kind == "cluster_mean":  # e.g. the school average of the pupils' intake scores
                self.ego_column(c.definition["of"])
                self.ego_column(c.definition["by"])
                self._ego[name] = c.compute(self._ego, c.definition["of"], c.definition["by"])
            elif c.kind == "national_quantile":  # e.g. national income quintile, 1 = lowest income
                self.ego_column(c.definition["of"])
                self.ego_column(c.definition["by"])
                d = c.definition
                self._ego[name] = c.compute(self._ego, d["of"], d["by"], d["direction"], d["n"])
            elif c.kind == "education_group":
                self.ego_column(c.definition["of"])
                self._ego[name] = c.compute(self._ego, c.definition["of"])
            elif c.kind == "wave_difference":
                self.ego_column(c.definition["of"])
                if not {0, 1} <= set(self.waves):
                    raise _Unavailable(f"construct '{name}' needs waves 0 and 1; the data hold wave(s) "
                                       f"{', '.join(map(str, self.waves))} only")
            # kind "change": change level only (see change_frame)
        except Unavailable as exc:
            raise _Unavailable(str(exc)) from None

    def items_of(self, construct: str) -> list[str]:
        spec = self.plan.constructs.get(construct)
        if spec is None or spec["kind"] != "scale":
            raise _Unavailable(f"construct '{construct}' is not a scale; invariance needs its items")

        ins = load_instrument(spec["instrument"])
        rule = next((r for r in ins.scores if r.id == spec["score"]), None)
        if rule is None:
            raise _Unavailable(f"instrument '{ins.id}' has no score '{spec['score']}'")
        absent = [i for i in rule.items if i not in self._ego.columns]
        if absent:
            raise _Unavailable(f"construct '{construct}' needs item(s) {', '.join(absent)}, absent from the patient table")
        return list(rule.items)

    def _network_change(self):
        try:
            return self.measures.network_change(self._ego, self.alters, waves=(0, 1), ties=self.ties)
        except Unavailable as exc:
            raise _Unavailable(str(exc)) from None

    # ---- frames per level
    def ego_frame(self, names: list[str], wave) -> pd.DataFrame:
        for n in names:
            self.ego_column(n)
        df = self._ego
        if wave is not None:
            if wave not in self.waves:
                raise _Unavailable(f"the model is specified for wave {wave}; the data hold wave(s) "
                                   f"{', '.join(map(str, self.waves))}")
            df = df.loc[df["wave"] == wave]
        return df[list(dict.fromkeys(names))].reset_index(drop=True)

    def change_frame(self, names: list[str]) -> pd.DataFrame:
        if not {0, 1} <= set(self.waves):
            raise _Unavailable(f"the hypothesis needs two waves (0 and 1); the data hold wave(s) "
                               f"{', '.join(map(str, self.waves))} only")
        uses_network = any((self.plan.constructs.get(n) or {}).get("kind") == "change" for n in names)
        if self._change is None and self.alters is None and not uses_network:
            # no network change needed: the patients seen at both waves, from the patient table
            both = self._ego.loc[self._ego["wave"] == 1, _ID]
            ch = pd.DataFrame({_ID: both[both.isin(set(self._ego.loc[self._ego["wave"] == 0, _ID]))]})
        else:
            if self._change is None:
                ch = self._network_change()[0]
                self._change = ch.reset_index(drop=("patient_id" in ch.columns))
            ch = self._change
        for n in names:  # build every ego-level column first, so the wave slices below carry them
            spec = self.plan.constructs.get(n)
            if spec is None or spec["kind"] != "change":
                self.ego_column(n)
        base = self._ego.loc[self._ego["wave"] == 0]
        out = ch[[_ID]].copy()
        for n in names:
            c = self.construct(n)
            if c is not None and c.kind == "change":
                meas = c.definition["measure"]
                if meas not in ch.columns:
                    raise _Unavailable(f"change measure '{meas}' is not computed by cimstats.networks.change")
                out[n] = pd.to_numeric(ch[meas], errors="coerce").to_numpy(dtype=float)
            elif c is not None and c.kind == "wave_difference":
                self.ego_column(n)
                out[n] = c.compute(self._ego, c.definition["of"], out[_ID], (0, 1))
            else:
                self.ego_column(n)
                out[n] = out[_ID].map(base.set_index(_ID)[n]).to_numpy()
        return out[list(dict.fromkeys(names))].reset_index(drop=True)

    def frame_for(self, model_id: str) -> pd.DataFrame:
        """The analysis frame of one model of the plan, at its level (raises _Unavailable with the reason)."""
        spec = self.plan.models[model_id]
        lvl = spec.get("level", "ego")
        wave = spec.get("wave")
        if spec["template"] == "invariance":
            if spec["group"] == "wave":  # longitudinal: the same people at each wave (long format)
                if len(self.waves) < 2:
                    raise _Unavailable(f"longitudinal invariance needs two waves; the data hold wave(s) "
                                       f"{', '.join(map(str, self.waves))} only")
                return self.ego_frame([_ID, "wave"] + self.items_of(spec["construct"]), None)
            return self.ego_frame(self.items_of(spec["construct"]) + [spec["group"]], wave)
        names = self.plan.required_variables(model_id)
        if lvl == "ego":
            return self.ego_frame(names, wave)
        if lvl == "followup":
            return self.followup_frame(spec, names)
        if lvl == "change":
            base = baseline_column(spec, self.plan.constructs)
            return self.change_frame(names + ([base[1]] if base and base[1] not in names else []))
        if lvl == "alter_change":
            return self.alter_change_frame(names)
        return self.alter_frame(names, wave)

    def followup_pairs(self, reference: str) -> list[tuple]:
        """(reference wave, follow-up wave) for every follow-up wave of the study."""
        w = self.waves
        if len(w) < 2:
            raise _Unavailable(f"the hypothesis needs two waves or more (a baseline and a follow-up); the data "
                               f"hold wave(s) "
                               f"{', '.join(map(str, w))} only")
        return [(w[0] if reference == "baseline" else w[k - 1], w[k]) for k in range(1, len(w))]

    def _network_change_between(self, ref, t) -> pd.DataFrame:
        if (ref, t) not in self._changes:
            try:
                ch = self.measures.network_change(self._ego, self.alters, waves=(ref, t))[0]
            except Unavailable as exc:
                raise _Unavailable(str(exc)) from None
            self._changes[(ref, t)] = ch.reset_index(drop=("patient_id" in ch.columns))
        return self._changes[(ref, t)]

    def followup_frame(self, spec: Mapping, names: list[str]) -> pd.DataFrame:
        """One row per patient per follow-up wave (the patient seen at that wave and at its reference wave).

        The outcome and the variables listed under ``current`` are taken at the
        follow-up wave; every other patient variable at the reference wave
        (the baseline, or the previous wave with ``reference: previous``);
        ``wave_difference`` and network ``change`` constructs span the two
        waves. The outcome's value at the reference wave is added as
        ``<outcome>_baseline`` (``<outcome>_previous``) unless ``baseline:
        none``; ``patient_id`` and ``wave`` (the follow-up wave) are always
        columns.
        """
        pairs = self.followup_pairs(spec.get("reference", "baseline"))
        outcome = model_outcome(spec)
        current = set(spec.get("current") or ())
        base = baseline_column(spec, self.plan.constructs)
        kinds = {n: (self.plan.constructs.get(n) or {}).get("kind") for n in names}
        for n in names:
            if kinds[n] != "change":
                self.ego_column(n)
        if base:
            self.ego_column(base[1])
        parts = []
        for ref, t in pairs:
            at_ref = self._ego.loc[self._ego["wave"] == ref].drop_duplicates(_ID).set_index(_ID)
            at_t = self._ego.loc[self._ego["wave"] == t]
            ids = at_t.loc[at_t[_ID].isin(at_ref.index), _ID].reset_index(drop=True)
            at_t = at_t.drop_duplicates(_ID).set_index(_ID)
            out = pd.DataFrame({_ID: ids})
            for n in names:
                if n in (_ID, "wave"):
                    continue
                c = self.construct(n)
                if kinds[n] == "change":
                    ch = self._network_change_between(ref, t)
                    meas = c.definition["measure"]
                    if meas not in ch.columns:
                        raise _Unavailable(f"change measure '{meas}' is not computed by cimstats.networks.change")
                    out[n] = ids.map(pd.to_numeric(ch.set_index(_ID)[meas], errors="coerce")).to_numpy(dtype=float)
                elif kinds[n] == "wave_difference":
                    out[n] = c.compute(self._ego, c.definition["of"], ids, (ref, t))
                elif n == outcome or n in current:
                    out[n] = ids.map(at_t[n]).to_numpy()
                else:
                    out[n] = ids.map(at_ref[n]).to_numpy()
            if base:
                out[base[0]] = ids.map(at_ref[base[1]]).to_numpy()
            out["wave"] = t
            parts.append(out)
        frame = pd.concat(parts, ignore_index=True)
        extra = []
        if len(pairs) > 1:  # several follow-up waves: a fixed effect of the wave (see change_formula)
            frame["followup_wave"] = "wave " + frame["wave"].astype(str)
            extra = ["followup_wave"]
        cols = list(dict.fromkeys(names + ([base[0]] if base else []) + [_ID, "wave"] + extra))
        return frame[cols].reset_index(drop=True)

    def alter_change_frame(self, names: list[str]) -> pd.DataFrame:
        """One row per network member named at both waves, with role changes and the patient's baseline values."""
        if not {0, 1} <= set(self.waves):
            raise _Unavailable(f"the hypothesis needs two waves (0 and 1); the data hold wave(s) "
                               f"{', '.join(map(str, self.waves))} only")
        al = self._network_change()[1]
        al = al.loc[al["status"] == "retained"].reset_index(drop=True)
        if al.empty:
            raise _Unavailable("no network member is named at both waves")
        out = al.copy()
        if "role_gained" not in out.columns:  # a change table from before these columns were computed
            out = alter_role_changes(out, SUPPORT)
        ego_names = [n for n in names if n not in out.columns]
        for n in ego_names:
            self.ego_column(n)
        base = self._ego.loc[self._ego["wave"] == 0].drop_duplicates(_ID).set_index(_ID)
        for n in ego_names:
            out[n] = out[_ID].map(base[n]).to_numpy()
        return out[list(dict.fromkeys(names))].reset_index(drop=True)

    def alter_frame(self, names: list[str], wave) -> pd.DataFrame:
        if self.alters is None:
            raise _Unavailable("no alter table was given")
        A = self.alters
        if wave is not None:
            if "wave" in A.columns and wave not in set(A["wave"].dropna().tolist()):
                raise _Unavailable(f"the alter table holds no wave {wave}")
            A = A.loc[A["wave"] == wave] if "wave" in A.columns else A
        ego_names = [n for n in names if n not in A.columns]
        for n in ego_names:
            self.ego_column(n)
        E = self._ego if wave is None else self._ego.loc[self._ego["wave"] == wave]
        out = A[[c for c in names if c in A.columns] + ([_ID] if _ID not in names else [])].copy()
        idx = E.drop_duplicates(_ID).set_index(_ID)
        for n in ego_names:
            out[n] = out[_ID].map(idx[n]).to_numpy()
        return out[list(dict.fromkeys(names))].reset_index(drop=True)


# ---------------------------------------------------------------- fitted models
@dataclass
class _Fit:
    model_id: str
    template: str
    status: str = "fitted"  # fitted | not testable | failed
    reason: str = ""
    result: Any = None
    terms: pd.DataFrame | None = None  # term, estimate, std_error, statistic, df, p_value, ci_lower, ci_upper
    nobs: int | None = None
    n_dropped: int | None = None
    description: str = ""
    diagnostics: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _fit_lmm_like(fit: _Fit, spec, frame, level: float, glmm: bool) -> None:
    formula = spec["formula"]
    caught = []
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if glmm:
            res = _glmm(formula, frame, family=spec.get("family", "binomial"))
        else:
            res = _lmm(formula, frame)
        caught = [str(x.message) for x in w]
    tidy = res.tidy().copy()
    if level != 0.95 and hasattr(res, "conf_int"):
        ci = res.conf_int(level=level)
        tidy["ci_lower"] = np.asarray(ci["ci_lower"], dtype=float)
        tidy["ci_upper"] = np.asarray(ci["ci_upper"], dtype=float)
    fit.result = res
    fit.terms = tidy
    fit.nobs = int(getattr(res, "nobs", len(frame)))
    fit.n_dropped = int(getattr(res, "n_dropped", 0) or 0)
    kind = f"GLMM ({spec.get('family', 'binomial')}, logit)" if glmm else "LMM (REML, Satterthwaite df)"
    fit.description = f"{kind}: {formula}"
    diag = []
    g = res.glance() if hasattr(res, "glance") else None
    if g is not None and "converged" in g.columns:
        diag.append(f"converged: {bool(g['converged'].iloc[0])}")
    if getattr(res, "singular", False):
        diag.append("singular fit (a random-effect variance estimated as zero)")
    ng = getattr(res, "ngroups", None)
    if isinstance(ng, Mapping) and ng:
        diag.append("groups: " + ", ".join(f"{k} {v}" for k, v in ng.items()))
    if fit.n_dropped:
        by = getattr(res, "dropped_by_column", None)
        txt = ", ".join(f"{k}: {v}" for k, v in dict(by).items()) if isinstance(by, Mapping) else ""
        diag.append(f"{fit.n_dropped} rows set aside for missing values" + (f" ({txt})" if txt else ""))
    other = [c for c in caught if "set aside" not in c and "Singular fit" not in c]
    diag += other
    fit.diagnostics = "; ".join(diag)


def _fit_mediation(fit: _Fit, spec, frame, level: float, n_boot: int, seed, client=None) -> None:

    covs = list(spec.get("covariates") or [])
    frame, cov_names = indicator_columns(frame, covs)
    ms = spec["m"]
    kwargs = dict(x=spec["x"], m=ms, y=spec["y"], covariates=cov_names or None, n_boot=n_boot, seed=seed,
                  level=level, sensitivity=False, client=client, progress=False)
    if spec.get("moderator"):
        kwargs["moderator"] = spec["moderator"]
        kwargs["moderated_paths"] = tuple(spec.get("moderated_paths", ("a",)))
        if spec.get("moderator_values") is not None:
            kwargs["moderator_values"] = spec["moderator_values"]
    if spec.get("cluster"):
        kwargs["cluster"] = spec["cluster"]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = _mediation(frame, **kwargs)
        caught = [str(x.message) for x in w]
    tidy = res.tidy()
    fit.result = res
    fit.terms = tidy[["term", "estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper"]].copy()
    fit.nobs, fit.n_dropped = int(res.nobs), int(res.n_dropped)
    mod = f", {spec['moderator']} moderating the a-path" if spec.get("moderator") else ""
    fit.description = (f"{'moderated ' if spec.get('moderator') else ''}mediation {spec['x']} -> {ms} -> {spec['y']}{mod}; "
                       f"{res.ci} bootstrap ({res.n_boot} resamples, {res.resampling})")
    diag = [f"{res.n_clusters} clusters resampled" if res.n_clusters else "case resampling",
            f"seed {res.seed}"]
    if res.n_boot_failed:
        diag.append(f"{res.n_boot_failed} resamples failed")
    if fit.n_dropped:
        diag.append(f"{fit.n_dropped} rows set aside for missing values")
    diag += caught
    fit.diagnostics = "; ".join(diag)


def _fit_invariance(fit: _Fit, spec, frame, items: list[str], needed: str, rules: VerdictRules) -> None:
    group = spec["group"]
    longitudinal = group == "wave"
    model = f"{spec['construct'].upper()}_F =~ " + " + ".join(items)
    missing = spec.get("missing", "listwise")
    if longitudinal:
        n_all = frame[_ID].nunique()
    else:
        n_all = len(frame)
        frame = frame.dropna(subset=[group] if missing == "fiml" else items + [group]).reset_index(drop=True)
    top = INVARIANCE_LEVELS.index(needed)
    steps = list(INVARIANCE_LEVELS[: max(top, 1) + 1])
    failed: dict[str, str] = {}
    res = None
    while len(steps) >= 1 and res is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if longitudinal:
                    res = _longitudinal_invariance(frame, items, id=_ID, wave="wave", steps=tuple(steps),
                                                           missing=missing)
                else:
                    res = _invariance(model, frame, group=group, steps=tuple(steps), missing=missing)
        except (ModelSpecificationError, EstimationError, np.linalg.LinAlgError) as exc:
            failed[steps[-1]] = str(exc).split(";")[0]
            steps = steps[:-1]
    if longitudinal:
        fit.nobs, fit.n_dropped = (res.nobs, res.n_dropped) if res is not None else (n_all, 0)
        waves = sorted(frame["wave"].dropna().unique())
        fit.description = (f"longitudinal CFA (ML, {missing}) of {len(items)} items of '{spec['construct']}' at waves "
                           f"{', '.join(str(int(w)) for w in waves)} (one factor per wave, each item's residuals "
                           f"correlated across waves)")
    else:
        fit.nobs, fit.n_dropped = len(frame), n_all - len(frame)
        fit.description = (f"multi-group CFA (ML, {missing}) of {len(items)} items of '{spec['construct']}' across "
                           f"{group} ({frame[group].nunique()} groups)")
    held: dict[str, tuple[str, str, dict]] = {}
    if res is None:
        fit.status, fit.reason = "not testable", f"the configural model could not be fitted ({failed.get('configural', '')})"
        return
    fit.result = res
    t = res.table.set_index("model")
    prev_ok = True
    prev_failed = None  # the lowest level that was tested and did not hold
    for lv in INVARIANCE_LEVELS:
        if lv in failed:
            held[lv] = ("not testable", f"the {lv} model could not be fitted ({failed[lv]})", {})
            prev_ok = False
            continue
        if prev_failed is not None and lv in t.index:
            held[lv] = ("fails", f"{prev_failed} invariance, which it presupposes, does not hold", {})
            continue
        if lv not in t.index:
            continue
        r = t.loc[lv]
        vals = {k: (None if pd.isna(r.get(k)) else float(r.get(k))) for k in
                ("delta_cfi", "delta_rmsea", "p_diff", "chisq_diff", "df_diff", "cfi", "rmsea", "srmr")}
        i = INVARIANCE_LEVELS.index(lv)
        prev_lv = next((p_ for p_ in reversed(INVARIANCE_LEVELS[:i]) if p_ in t.index), None)
        prev_srmr = t.loc[prev_lv, "srmr"] if prev_lv is not None and "srmr" in t.columns else np.nan
        vals["delta_srmr"] = (None if vals["srmr"] is None or pd.isna(prev_srmr)
                              else vals["srmr"] - float(prev_srmr))
        if lv == "configural":
            held[lv] = ("holds", f"configural model fitted: CFI {vals['cfi']:.3f}, RMSEA {vals['rmsea']:.3f}", vals)
            continue
        if not prev_ok:
            held[lv] = ("not testable", "a lower level of invariance did not hold", vals)
            continue
        dc, dr, ds, p = vals["delta_cfi"], vals["delta_rmsea"], vals["delta_srmr"], vals["p_diff"]
        fit_ok = fit_change_holds(rules, lv, dc, dr, ds)
        chi_ok = p is not None and p >= rules.alpha
        ok = {"fit_change": fit_ok, "chisq": chi_ok, "both": fit_ok and chi_ok}[rules.invariance_criterion]
        srmr_txt = f", delta SRMR {ds:+.4f}" if ds is not None else ""
        txt = (f"against the previous level: delta CFI {dc:+.4f}, delta RMSEA {dr:+.4f}{srmr_txt}, chi-square "
               f"difference {vals['chisq_diff']:.2f} on {vals['df_diff']:.0f} df, p = {p:.3g}"
               ) if None not in (dc, dr, p) else "fit change unavailable"
        held[lv] = ("holds" if ok else "fails", txt, vals)
        prev_ok = ok
        if not ok:
            prev_failed = lv
    fit.extra["levels"] = held
    fit.terms = pd.DataFrame([{"term": lv, "estimate": v[2].get("delta_cfi"), "std_error": np.nan,
                               "statistic": v[2].get("chisq_diff"), "df": v[2].get("df_diff"),
                               "p_value": v[2].get("p_diff"), "ci_lower": np.nan, "ci_upper": np.nan}
                              for lv, v in held.items()])
    fit.diagnostics = "; ".join(f"{lv}: {v[0]}" for lv, v in held.items())


def fit_change_holds(rules: VerdictRules, level: str, delta_cfi, delta_rmsea, delta_srmr) -> bool:
    """Chen's (2007) rule with the cut-offs of ``rules`` (see :mod:`cimstats.models.sem.criteria`)."""
    return _chen_holds(level, delta_cfi, delta_rmsea, delta_srmr, max_cfi_drop=rules.max_cfi_drop,
                  max_rmsea_rise=rules.max_rmsea_rise, max_srmr_rise_metric=rules.max_srmr_rise_metric,
                  max_srmr_rise_scalar=rules.max_srmr_rise_scalar)


def invariance_level_holds(fit: _Fit, level: str) -> tuple[bool | None, str]:
    """(holds?, reason) for one level of an invariance fit; None when it could not be assessed."""
    if fit.status != "fitted":
        return None, fit.reason
    levels = fit.extra.get("levels", {})
    if level not in levels:
        return None, f"the {level} level was not fitted"
    st, why, _ = levels[level]
    return (True if st == "holds" else (None if st == "not testable" else False)), why


def model_frame(data, model_id: str, plan=None, *, measures=None) -> pd.DataFrame:
    """The analysis frame that :func:`test_mechanisms` fits one model of the plan on.

    Constructs (scale scores, network measures, change measures, wave
    differences) are built exactly as for the mechanism tests, so the frame can
    be exported and refitted in other software (e.g. lme4 or lavaan) to check
    a result.

    Parameters
    ----------
    data : as for :func:`test_mechanisms`
    model_id : str
        A model of the plan.
    plan : optional
        The analysis plan (default: the shipped plan).
    measures : DataFrame or Measures, optional
        Constructs already computed (as for :func:`test_mechanisms`).

    Returns
    -------
    DataFrame
        One row per unit of the model's level, one column per variable the
        model needs (missing values kept; the model sets them aside).

    Raises
    ------
    PlanError
        ``model_id`` is not a model of the plan, or the frame cannot be built
        (the reason is given).

    Examples
    --------
    >>> from cimstats import datasets
    >>> from cimstats.mechanisms import model_frame
    >>> model_frame(datasets.demo_study(), "knowledge_navigation").columns.tolist()
    ['sm', 'knowledge_share', 'brokerage', 'network_size', 'diversity', 'se', 'country', 'practice_id']
    """
    plan = default_plan() if plan is None else read_mechanism_plan(plan)
    if model_id not in plan.models:
        raise PlanError(f"`model_id` is {model_id!r}, not a model of plan '{plan.name}'; models: "
                        f"{', '.join(plan.models)}.")
    patients, alters = _tables(data)
    _check_tables(patients, alters)
    try:
        return _Workspace(patients, alters, plan, measures, ties=_ties(data)).frame_for(model_id)
    except _Unavailable as exc:
        raise PlanError(f"The frame of model {model_id!r} cannot be built: {exc}; supply the missing data.") from None


# ---------------------------------------------------------------- the verb
def test_mechanisms(data, plan=None, *, hypotheses=None, adjust: str | None = "holm", rules=None,
                    seed: int | None = 20240601, n_boot: int = 2000, level: float | None = None,
                    measures=None, client=None) -> MechanismResult:
    """Test pre-specified network mechanisms and fill the mechanism table with verdicts.

    Parameters
    ----------
    data : DemoStudy, HarmonisationResult, dict, tuple or DataFrame
        The harmonised patient table (one row per patient per wave) and alter
        table (one row per named network member per wave): an object with
        ``.patients`` and ``.alters`` (``cimstats.datasets.demo_study()``), a
        harmonise result with tables ``patients`` and ``alters``, a dict with
        those keys, a ``(patients, alters)`` tuple, or the patient table alone
        (network hypotheses are then not testable). The alter-alter tie table
        (who knows whom: ``.alter_ties``, the harmonised table ``alter_ties``,
        the key ``"alter_ties"`` or a third tuple element) is used when present;
        constructs built from it (effective size, constraint, brokerage roles)
        are not testable without it.
    plan : str, path, dict or MechanismPlan, optional
        The analysis plan (see :mod:`cimstats.mechanisms.plan`); default the
        shipped plan (:func:`default_plan`).
    hypotheses : str or list of str, optional
        Test only these hypothesis ids (or every hypothesis of these
        mechanisms); only the models they use, and the invariance models those
        require, are fitted (see :meth:`MechanismPlan.subset`).
    adjust : {"holm", "bh", None}, default "holm"
        Multiple-testing adjustment across the hypotheses that have a p-value
        (invariance checks are not counted).
    rules : VerdictRules, dict or callable, optional
        Verdict rules; a dict overrides the plan's ``verdict_rules``; a callable
        receives the filled row (dict) and returns ``(verdict, reason)``.
    seed : int, optional
        Seed of the bootstrap resampling.
    n_boot : int, default 2000
        Bootstrap resamples for mediation templates.
    level : float, optional
        Confidence level (default the rules' ``level``, 0.95).
    measures : DataFrame or Measures, optional
        Constructs already computed by the measure stage: a table keyed by
        ``patient_id`` and ``wave`` with one column per scale score or network
        measure (a construct's column is found by its name, or by the score or
        measure it is built from), or a
        :class:`~cimstats.measures.constructs.Measures` (which can also hold the
        network change between the waves). Only constructs it lacks are
        computed; the numbers are the same as without it.
    client : None, "process", dask.distributed.Client or scheduler address
        Where the bootstrap resamples of mediation templates are computed
        (see :mod:`cimstats._parallel`); the results are the same anywhere.

    Returns
    -------
    MechanismResult
        ``table``: one row per hypothesis with columns hypothesis_id, mechanism,
        statement, model_id, template, model, estimand, expected,
        required_variables, theme_ids, estimate, std_error, ci_lower, ci_upper,
        p_value, p_adjusted, n, n_dropped, diagnostics, verdict, verdict_reason;
        ``models``: one row per model (model_id, template, status, reason,
        model, nobs, n_dropped, diagnostics, seconds); ``fits``: model_id ->
        the fitted result object (``LmmResult``, ``GlmmResult``,
        ``MediationResult``, ``InvarianceResult``, ``TwoLevelResult`` for
        ``twolevel_sem``; ``None`` when not fitted),
        also reachable as ``result.fit(model_id)``.

    Raises
    ------
    PlanError
        The plan is malformed (all problems in ``.report``); ``hypotheses``,
        ``adjust``, ``n_boot`` (a whole number from 50 to 100,000), ``seed``,
        ``level`` or the rules are invalid; ``data`` is not a table or lacks
        ``patient_id``; ``measures`` does not match the patient table.

    Notes
    -----
    Each model is fitted once and every hypothesis naming it reads its estimand
    from the same fit. A hypothesis is "not testable" (with the reason) when a
    variable it needs is absent, a wave is missing, the model cannot be fitted
    or the measurement invariance its comparison needs did not hold; it is
    never dropped.

    Examples
    --------
    >>> import cimstats
    >>> res = cimstats.test_mechanisms(cimstats.datasets.demo_study(), hypotheses=["NAV1", "CE1"],
    ...                                n_boot=200, seed=1)
    >>> print(res.table[["hypothesis_id", "verdict"]].to_string(index=False))
    hypothesis_id   verdict
             NAV1 supported
              CE1 supported
    >>> res.fit("knowledge_navigation").nobs
    1412
    """
    problems = option_problems(adjust=adjust, n_boot=n_boot, level=level, seed=seed)
    if problems:
        raise PlanError(problems[0][1])
    plan = default_plan() if plan is None else read_mechanism_plan(plan)
    if hypotheses is not None:
        plan = plan.subset(hypotheses)
    if callable(rules) and not isinstance(rules, (VerdictRules, Mapping)):
        vr = VerdictRules.from_any(dict(plan.verdict_rules))
        rule_fn: VerdictRules | Callable = rules
    else:
        vr = VerdictRules.from_any(rules, VerdictRules.from_any(dict(plan.verdict_rules)))
        rule_fn = vr
    if level is not None:
        vr = VerdictRules.from_any({"level": level}, vr)
        if isinstance(rule_fn, VerdictRules):
            rule_fn = vr
    n_boot = int(n_boot)
    patients, alters = _tables(data)
    _check_tables(patients, alters)
    ws = _Workspace(patients, alters, plan, measures, ties=_ties(data))

    # the highest invariance level any hypothesis or model needs, per invariance model
    needed: dict[str, str] = {}
    for mid, spec in plan.models.items():
        if spec["template"] == "invariance":
            lv = [h for h in plan.hypotheses.itertuples() if h.model == mid]
            req = [h.estimand for h in lv] + [s["requires_invariance"]["level"] for s in plan.models.values()
                                              if s.get("requires_invariance")
                                              and mid in invariance_models_for(plan.models, s["requires_invariance"])]
            needed[mid] = max(req or ["metric"], key=INVARIANCE_LEVELS.index)

    fits: dict[str, _Fit] = {}
    order = sorted(plan.models, key=lambda m: plan.models[m]["template"] != "invariance")
    for mid in order:
        spec = plan.models[mid]
        tpl = spec["template"]
        fit = _Fit(mid, tpl)
        fits[mid] = fit
        t0 = time.perf_counter()
        try:
            ri = spec.get("requires_invariance")
            if ri:
                inv = next(iter(invariance_models_for(plan.models, ri)), None)
                if inv is None:
                    raise _Unavailable(f"the plan has no invariance model for '{ri['construct']}', which this model "
                                       f"requires at the {ri['level']} level")
                ok, why = invariance_level_holds(fits[inv], ri["level"])
                across = "waves" if plan.models[inv]["group"] == "wave" else plan.models[inv]["group"]
                if ok is not True:
                    raise _Unavailable(f"measurement invariance of '{ri['construct']}' across {across} was not "
                                       f"established at the {ri['level']} level ({why})")
                fit.extra["invariance"] = f"{ri['construct']}: {ri['level']} invariance across {across} holds ({why})"
            frame = ws.frame_for(mid)
            if tpl == "invariance":
                items = ws.items_of(spec["construct"])
                _fit_invariance(fit, spec, frame, items, needed.get(mid, "metric"), vr)
                continue
            if tpl in ("lmm", "glmm"):
                notes: list[str] = []
                if spec.get("level") in ("change", "followup"):  # ANCOVA by default (see change_formula)
                    n_fu = frame["wave"].nunique() if spec.get("level") == "followup" else 1
                    formula, notes = change_formula(spec, plan.constructs, n_fu)
                    spec = {**spec, "formula": formula}
                _fit_lmm_like(fit, spec, frame, vr.level, glmm=(tpl == "glmm"))
                fit.diagnostics = "; ".join(x for x in (*notes, fit.diagnostics) if x)
            elif tpl == "twolevel_sem":
                try:
                    fit_twolevel_sem(fit, spec, frame, vr.level)
                except TooFewClusters as exc:
                    raise _Unavailable(str(exc)) from None
            else:
                _fit_mediation(fit, spec, frame, vr.level, n_boot, seed, client)
            if fit.extra.get("invariance"):
                fit.diagnostics = "; ".join(x for x in (fit.diagnostics, fit.extra["invariance"]) if x)
        except _Unavailable as exc:
            fit.status, fit.reason = "not testable", str(exc)
        except CimstatsError as exc:
            fit.status, fit.reason = "failed", f"the model could not be fitted: {str(exc).rstrip('.')}"
        finally:
            fit.seconds = time.perf_counter() - t0

    # ---- fill the table
    rows = []
    for h in plan.hypotheses.itertuples(index=False):
        fit = fits[h.model]
        row = {c: None for c in TABLE_COLUMNS}
        row.update(hypothesis_id=h.hypothesis_id, mechanism=h.mechanism, statement=h.statement, model_id=h.model,
                   element=h.element, template=h.template, model=fit.description or h.template, estimand=h.estimand,
                   expected=h.expected, required_variables=h.required_variables, theme_ids=h.theme_ids,
                   n=fit.nobs, n_dropped=fit.n_dropped, diagnostics=fit.diagnostics)
        if fit.status != "fitted":
            row.update(verdict="not testable", verdict_reason=fit.reason)
            rows.append(row)
            continue
        if h.template == "invariance":
            ok, why = invariance_level_holds(fit, h.estimand)
            vals = fit.extra["levels"].get(h.estimand, (None, None, {}))[2]
            row.update(estimate=vals.get("delta_cfi"), statistic=vals.get("chisq_diff"), p_value=vals.get("p_diff"))
            if ok is None:
                row.update(verdict="not testable", verdict_reason=f"{h.estimand} invariance could not be assessed: {why}")
            elif ok:
                row.update(verdict="supported", verdict_reason=f"{h.estimand} invariance holds ({why})")
            else:
                row.update(verdict="not supported", verdict_reason=f"{h.estimand} invariance fails ({why})")
            row["_inv"] = True
            rows.append(row)
            continue
        t = fit.terms
        hit = t.loc[t["term"].astype(str) == h.estimand]
        if hit.empty:
            row.update(verdict="not testable",
                       verdict_reason=f"the estimand '{h.estimand}' is not a term of the fitted model; terms: "
                                      f"{', '.join(t['term'].astype(str))}")
            rows.append(row)
            continue
        r = hit.iloc[0]
        row.update(estimate=float(r["estimate"]), std_error=float(r["std_error"]), statistic=float(r["statistic"]),
                   df=float(r["df"]) if pd.notna(r["df"]) else None, p_value=float(r["p_value"]),
                   ci_lower=float(r["ci_lower"]), ci_upper=float(r["ci_upper"]))
        rows.append(row)

    is_test = [r["verdict"] is None for r in rows]
    p = [r["p_value"] if t else np.nan for r, t in zip(rows, is_test)]
    padj = p_adjust([np.nan if v is None else v for v in p], adjust) if adjust else np.asarray(p, dtype=float)
    for r, t, pa in zip(rows, is_test, padj):
        r.pop("_inv", None)
        if t:
            r["p_adjusted"] = float(pa) if np.isfinite(pa) else None
            r["verdict"], r["verdict_reason"] = apply_rules(r, rule_fn, adjust)
        elif r["p_value"] is not None and r.get("p_adjusted") is None:
            r["p_adjusted"] = None

    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for c in ("estimate", "std_error", "statistic", "df", "p_value", "p_adjusted", "ci_lower", "ci_upper"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    for c in ("n", "n_dropped"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype("Int64")
    models = pd.DataFrame([{"model_id": f.model_id, "template": f.template, "status": f.status, "reason": f.reason,
                            "model": f.description, "nobs": f.nobs, "n_dropped": f.n_dropped,
                            "diagnostics": f.diagnostics, "seconds": f.seconds} for f in fits.values()])
    return MechanismResult(
        table=table, models=models, fits=MappingProxyType({k: f.result for k, f in fits.items()}), plan=plan,
        rules=rule_fn, adjust=adjust, seed=seed, n_boot=n_boot, waves=tuple(ws.waves),
        rules_text=vr.describe(adjust) if isinstance(rule_fn, VerdictRules) else
        "Verdicts by a user-supplied rule. Not testable: " + vr.describe(adjust).split("Not testable:")[1].strip(),
    )


# the verb's name starts with "test": keep test collectors from mistaking it for a test
test_mechanisms.__test__ = False
