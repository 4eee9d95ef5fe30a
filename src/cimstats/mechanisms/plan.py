"""The analysis plan: mechanisms, constructs, model templates and hypotheses, read from YAML and checked.

A plan has these sections:

``mechanisms``
    The mechanisms the hypotheses test: id -> ``{label, elements}`` (the label
    heads the mechanism's rows in tables; ``elements`` lists the ids a
    hypothesis of that mechanism may give as its ``element``). A plan without
    this section uses the shipped plan's mechanisms (as plans written before
    the section existed did).
``constructs``
    Derived variables, in the schema of the construct table
    (:mod:`cimstats.measures.constructs`): ``scale`` (``instrument`` and
    ``score`` of :func:`cimstats.score_scale`), ``network`` (a column of
    :func:`cimstats.networks.ego_measures`), ``change`` (a column of
    :func:`cimstats.networks.change` ``.egos``), ``wave_difference``
    (follow-up minus baseline of another ego-level variable),
    ``national_quantile`` (``of``, ``by``, ``n``, ``direction``: within-nation
    quantiles, 1 = most deprived, e.g. of equivalised income by country) and
    ``education_group`` (``of``: broad ISCED 2011 group low, medium, high).
    An area code or national index is never a linear term shared across
    countries: use its within-nation quantile. Within
    :func:`cimstats.run`, constructs of the analysis plan (its
    ``instruments``, ``networks`` and ``constructs`` sections) can be named
    without being declared again.
``models``
    One entry per fitted model; every hypothesis naming the model reuses the
    same fit. Templates: ``lmm`` and ``glmm`` (lme4 formula), ``moderated_mediation``
    (x, m, y, moderator, covariates, cluster), ``invariance`` (construct, group:
    across the groups of a column such as ``country``, or ``group: wave`` for
    longitudinal invariance of the same people's answers at waves 0 and 1, with
    :func:`cimstats.longitudinal_invariance`), ``twolevel_sem`` (cluster,
    within, between: a two-level structural equation model of the rows of the
    model's level clustered by ``cluster``, e.g. the named members of each
    patient's network, whose estimand is a labelled parameter; optional
    covariates, min_clusters and options; see
    :mod:`cimstats.mechanisms.twolevel_template`). A model that compares a scale
    across groups or waves names the invariance it needs:
    ``requires_invariance: {construct, level, group}`` (``group`` may be left
    out when the plan tests the construct's invariance in one way only).
    Levels (the unit of a row): ``ego`` (one row per patient at ``wave``),
    ``alter`` (one row per named network member at ``wave``, with the
    patient's variables joined), ``change`` (one row per patient seen at waves
    0 and 1: change constructs, wave differences and baseline values) and
    ``alter_change`` (one row per network member named at both waves, with
    the columns of :func:`cimstats.networks.change` ``.alters``, such as
    ``role_gained``, ``role_dropped`` and ``roles_gained``, and the patient's
    baseline values) and ``followup`` (one row per patient per follow-up
    wave, for ``lmm`` and ``glmm``: see below).

    Change models are ANCOVA by default (follow-up adjusted for baseline):

    ==================  ====================  ==============================================
    model key           values                meaning
    ==================  ====================  ==============================================
    ``level``           ``followup``          every wave after the first: the outcome at
                                              that wave, every other patient variable at
                                              the reference wave, ``wave_difference`` and
                                              network ``change`` constructs between the two
    ``reference``       ``baseline``          reference wave: the first wave (default) or
                        | ``previous``        the wave before each follow-up wave
    ``current``         list of names         predictors taken at the follow-up wave
    ``baseline``        ``auto`` | ``none``   ``auto`` (default): the outcome's value at the
                                              reference wave is added first among the
                                              predictors as ``<outcome>_baseline``
                                              (``<outcome>_previous``); at level ``change``
                                              a ``wave_difference`` outcome is adjusted
                                              for its variable's baseline value
    ==================  ====================  ==============================================

    With more than one follow-up wave a ``followup`` model also gets a fixed
    effect of the follow-up wave (``followup_wave``) and a random intercept
    per patient (``(1 | patient_id)``); with one follow-up wave (two-wave data)
    it is the ANCOVA of follow-up on baseline, whose effect estimates equal
    those of the change regressed on baseline. The model's diagnostics say
    what was added (:func:`change_formula`).
``hypotheses``
    The rows of the mechanism table: id, mechanism, statement, model, estimand,
    expected direction (positive, negative, nonzero; ``holds`` for invariance),
    qualitative theme ids and, optionally, the element of its mechanism the
    hypothesis speaks to (one of the mechanism's ``elements``). ``themes`` is
    a list of theme ids (each link takes the theme's own direction) or a
    mapping theme id -> the direction this hypothesis expects of the link
    (``supports``, ``contradicts``, ``mixed``, ``none``), e.g.
    ``themes: {T1: supports, T3: mixed}``; an invariance check is never linked
    to a theme (``M022``). Optional fields record where the hypothesis comes
    from (read by :func:`cimstats.mechanisms.fidelity.fidelity_table`):
    ``text`` (a source id of :data:`cimstats.mechanisms.fidelity.SOURCES`),
    ``concept`` (the concept of that text the hypothesis tests),
    ``definition`` (the text's definition, quoted exactly),
    ``operationalisation`` (how the package measures the concept: the
    package's own choice) and ``fidelity`` (``faithful`` or ``partial``, the
    plan author's own judgement of the match; see the fidelity table).
``verdict_rules``
    Defaults for :class:`~cimstats.mechanisms.rules.VerdictRules`.

Numeric fields have documented ranges, checked when the plan is read: a
model's ``wave`` is a whole number from 0 to 99 (``M007``) and its
``moderator_values`` a list of 1 to 20 finite numbers (``M020``).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import pandas as pd
import yaml

from cimstats._names import SAFE_NAME_RULE, name_problem
from cimstats.errors import ModelSpecificationError, PlanError, Report
from cimstats.models.formula import parse_formula

from cimstats.measures.constructs import KINDS, Construct, ConstructTable, construct_problems

from .rules import VerdictRules
from .twolevel_template import twolevel_labels, twolevel_problems, twolevel_variables

__all__ = ["MechanismPlan", "Hypothesis", "read_mechanism_plan", "default_plan", "TEMPLATES", "CONSTRUCT_KINDS", "DIRECTIONS", "MECHANISMS", "CE_ELEMENTS",
           "model_outcome", "baseline_column", "change_formula"]

TEMPLATES = {
    "lmm": ("formula",),
    "glmm": ("formula",),
    "moderated_mediation": ("x", "m", "y", "moderator"),
    "mediation": ("x", "m", "y"),
    "invariance": ("construct", "group"),
    "twolevel_sem": ("cluster", "within", "between"),
}
LEVELS = ("ego", "alter", "change", "alter_change", "followup")
#: how a change model adjusts for the outcome's earlier value (``baseline:``) and which earlier wave it uses
#: (``reference:``); see :func:`baseline_column`
BASELINE_OPTIONS = ("auto", "none")
REFERENCE_WAVES = ("baseline", "previous")
#: construct kind -> the keys its definition needs (the construct table of :mod:`cimstats.measures.constructs`)
CONSTRUCT_KINDS = {k: v.required for k, v in KINDS.items()}
DIRECTIONS = ("positive", "negative", "nonzero", "holds")
INVARIANCE_LEVELS = ("configural", "metric", "scalar", "strict")
#: the direction a hypothesis expects of its link to a qualitative theme (as in the theme codebook)
THEME_DIRECTIONS = ("supports", "contradicts", "mixed", "none")
#: optional text fields of a hypothesis that say where it comes from (see cimstats.mechanisms.fidelity)
SOURCE_FIELDS = ("text", "concept", "definition", "operationalisation", "fidelity")
FIDELITY_LEVELS = ("faithful", "partial")
#: the keys a hypothesis entry may have
HYPOTHESIS_KEYS = ("id", "mechanism", "element", "statement", "model", "estimand", "expected", "themes") + SOURCE_FIELDS
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
#: numeric fields of a model and their ranges (checked as codes M007 and M020)
MAX_WAVE = 99
MAX_MODERATOR_VALUES = 20


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis of a plan, as read and checked.

    Attributes
    ----------
    hypothesis_id, mechanism, element, statement, model, estimand, expected : str
    theme_directions : dict
        Theme id -> the direction this hypothesis expects of the link
        (``supports``, ``contradicts``, ``mixed``, ``none``), or ``None`` when
        the plan listed the theme without a direction (the theme's own
        direction in the codebook applies).
    text, concept, definition, operationalisation, fidelity : str
        Where the hypothesis comes from (empty when the plan does not say).
    """

    hypothesis_id: str
    mechanism: str
    statement: str
    model: str
    estimand: str
    expected: str
    element: str = ""
    theme_directions: Mapping[str, str | None] = field(default_factory=dict)
    text: str = ""
    concept: str = ""
    definition: str = ""
    operationalisation: str = ""
    fidelity: str = ""

    @property
    def theme_ids(self) -> list[str]:
        """The linked theme ids, in plan order."""
        return list(self.theme_directions)


@dataclass(frozen=True)
class MechanismPlan:
    """A checked analysis plan.

    Attributes
    ----------
    name : str
    constructs, models : mapping
        Read-only mappings name -> specification (dict).
    hypotheses : DataFrame
        One row per hypothesis: hypothesis_id, mechanism, statement, model,
        template, level, wave, estimand, expected, required_variables (``;``
        separated), theme_ids (``;`` separated), element, theme_directions
        (dict theme id -> expected direction or None) and the source fields
        text, concept, definition, operationalisation, fidelity (empty
        strings when not given). :meth:`hypothesis` gives one row as a
        :class:`Hypothesis`.
    verdict_rules : mapping
    source : str
    """

    name: str
    constructs: Mapping[str, dict]
    models: Mapping[str, dict]
    hypotheses: pd.DataFrame
    verdict_rules: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    mechanisms: Mapping[str, dict] = field(default_factory=dict)
    declares_mechanisms: bool = True

    def mechanism_label(self, mechanism: str) -> str:
        """The label of a mechanism for tables (its id when the plan gives none)."""
        spec = self.mechanisms.get(mechanism) or {}
        return str(spec.get("label") or mechanism)

    def hypothesis(self, hypothesis_id: str) -> Hypothesis:
        """One hypothesis of the plan as a :class:`Hypothesis`.

        Raises
        ------
        PlanError
            ``hypothesis_id`` is not a hypothesis of the plan.

        Examples
        --------
        >>> from cimstats.mechanisms import read_mechanism_plan
        >>> p = read_mechanism_plan({"models": {"m": {"template": "lmm", "formula": "y ~ x + (1 | g)"}},
        ...     "hypotheses": [{"id": "H1", "mechanism": "negotiation", "model": "m", "estimand": "x",
        ...                     "expected": "positive", "themes": {"T1": "supports", "T3": "mixed"}}]})
        >>> p.hypothesis("H1").theme_directions
        {'T1': 'supports', 'T3': 'mixed'}
        """
        hit = self.hypotheses.loc[self.hypotheses["hypothesis_id"] == hypothesis_id]
        if hit.empty:
            raise PlanError(f"`hypothesis_id` is {hypothesis_id!r}, not a hypothesis of plan '{self.name}'; ids: "
                            f"{', '.join(self.hypotheses['hypothesis_id'])}.")
        return _hypothesis_from_row(hit.iloc[0].to_dict())

    def hypothesis_list(self) -> list[Hypothesis]:
        """Every hypothesis of the plan as a :class:`Hypothesis`, in plan order."""
        return [_hypothesis_from_row(r) for r in self.hypotheses.to_dict("records")]

    def required_variables(self, model_id: str) -> list[str]:
        """Harmonised variables and constructs a model needs (constructs expanded to what they use)."""
        return _model_variables(self.models[model_id])

    def to_dict(self) -> dict:
        """The plan as a dict that :func:`read_mechanism_plan` reads back (hypotheses in the YAML form)."""
        hyps = []
        for h in self.hypotheses.to_dict("records"):
            d = {"id": h["hypothesis_id"], "mechanism": h["mechanism"], "statement": h["statement"],
                 "model": h["model"], "estimand": h["estimand"], "expected": h["expected"],
                 "themes": _themes_yaml(h)}
            if h.get("element"):
                d["element"] = h["element"]
            for k in SOURCE_FIELDS:
                if h.get(k):
                    d[k] = h[k]
            hyps.append(d)
        out = {"plan": self.name}
        if self.declares_mechanisms and self.mechanisms:
            out["mechanisms"] = {k: dict(v) for k, v in self.mechanisms.items()}
        return {**out, "constructs": {k: dict(v) for k, v in self.constructs.items()},
                "models": {k: dict(v) for k, v in self.models.items()}, "hypotheses": hyps,
                "verdict_rules": dict(self.verdict_rules)}

    def subset(self, hypotheses) -> "MechanismPlan":
        """A plan with only the named hypotheses, the models they use and the invariance models those require.

        Parameters
        ----------
        hypotheses : str or list of str
            Hypothesis ids, or mechanism names (all hypotheses of that mechanism).

        Raises
        ------
        PlanError
            An id is neither a hypothesis of the plan nor a mechanism.

        Examples
        --------
        >>> from cimstats.mechanisms import default_plan
        >>> p = default_plan().subset(["CE1"])
        >>> sorted(p.models), p.hypotheses["hypothesis_id"].tolist()
        (['ce_invariance', 'ce_mediation'], ['CE1'])
        """
        want = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
        ids = self.hypotheses["hypothesis_id"].tolist()
        mechs = set(self.hypotheses["mechanism"])
        unknown = [h for h in want if h not in ids and h not in mechs]
        if unknown:
            raise PlanError(f"`hypotheses` names {', '.join(map(repr, unknown))}, which is neither a hypothesis id "
                            f"nor a mechanism of plan '{self.name}'; ids: {', '.join(ids)}.")
        keep = self.hypotheses.loc[self.hypotheses["hypothesis_id"].isin(want) | self.hypotheses["mechanism"].isin(want)]
        models = list(dict.fromkeys(keep["model"]))
        for mid in list(models):
            ri = self.models[mid].get("requires_invariance")
            if ri:
                models += [m for m in invariance_models_for(self.models, ri) if m not in models]
        return MechanismPlan(name=self.name, constructs=self.constructs,
                    models=MappingProxyType({m: self.models[m] for m in self.models if m in models}),
                    hypotheses=keep.reset_index(drop=True), verdict_rules=self.verdict_rules, source=self.source,
                    mechanisms=self.mechanisms, declares_mechanisms=self.declares_mechanisms)


def model_outcome(spec: Mapping) -> str | None:
    """The outcome (the variable on the left of the formula) of an lmm or glmm model; None for other templates.

    >>> model_outcome({"template": "lmm", "formula": "sm ~ realloc + (1 | practice_id)"})
    'sm'
    """
    if spec.get("template") not in ("lmm", "glmm"):
        return None
    try:
        names = formula_names(str(spec.get("formula", "")), template=spec["template"])
    except ModelSpecificationError:
        return None
    return names[0] if names else None


def baseline_column(spec: Mapping, constructs: Mapping | None = None) -> tuple[str, str] | None:
    """The baseline covariate an ANCOVA change model adds: ``(name in the formula, variable it is read from)``.

    Change hypotheses compare follow-up adjusted for the earlier value of the
    outcome (ANCOVA), by default (``baseline: auto``):

    - at level ``followup`` the outcome is taken at the follow-up wave and its
      value at the reference wave becomes ``<outcome>_baseline`` (or
      ``<outcome>_previous`` with ``reference: previous``); for an outcome that
      is a ``wave_difference`` of ``x``, it is ``x_baseline`` (the same effect
      estimates as for the follow-up value itself);
    - at level ``change`` an outcome that is a ``wave_difference`` of ``x`` is
      adjusted for ``x`` (its baseline value at that level).

    ``None`` when the model adjusts for nothing: ``baseline: none``, another
    level or template, or an outcome with no earlier value (a network change
    measure).

    >>> spec = {"template": "lmm", "level": "followup", "formula": "sm ~ realloc + (1 | practice_id)"}
    >>> baseline_column(spec)
    ('sm_baseline', 'sm')
    >>> baseline_column({**spec, "reference": "previous"})
    ('sm_previous', 'sm')
    >>> baseline_column({"template": "lmm", "level": "change", "formula": "d ~ realloc"}, {"d": {"kind": "wave_difference", "of": "sm"}})
    ('sm', 'sm')
    """
    lvl = spec.get("level", "ego")
    if lvl not in ("followup", "change") or spec.get("baseline", "auto") == "none":
        return None
    y = model_outcome(spec)
    if y is None:
        return None
    c = (constructs or {}).get(y) or {}
    src = c.get("of") if c.get("kind") == "wave_difference" else (None if c.get("kind") == "change" else y)
    if not src or (lvl == "change" and c.get("kind") != "wave_difference"):
        return None
    if lvl == "change":
        return str(src), str(src)
    return f"{src}_{'previous' if spec.get('reference') == 'previous' else 'baseline'}", str(src)


def change_formula(spec: Mapping, constructs: Mapping | None = None, n_followup_waves: int = 1) -> tuple[str, list[str]]:
    """The formula a change model is fitted with, and notes saying what was added and why.

    The outcome's baseline value (see :func:`baseline_column`) is put first
    among the predictors when the formula does not name it already. At level
    ``followup`` with more than one follow-up wave the model also gets a fixed
    effect of the follow-up wave (``followup_wave``) and a random intercept
    per patient (``(1 | patient_id)``), since each patient contributes one row
    per follow-up wave. With one follow-up wave nothing else is added, so
    two-wave data give the ANCOVA of follow-up on baseline.

    >>> spec = {"template": "lmm", "level": "followup", "formula": "sm ~ realloc + (1 | practice_id)"}
    >>> change_formula(spec)[0]
    'sm ~ sm_baseline + realloc + (1 | practice_id)'
    >>> change_formula(spec, n_followup_waves=2)[0]
    'sm ~ sm_baseline + realloc + (1 | practice_id) + followup_wave + (1 | patient_id)'
    """
    formula = str(spec.get("formula", ""))
    notes: list[str] = []
    base = baseline_column(spec, constructs)
    lvl = spec.get("level", "ego")
    if base is not None:
        names = formula_names(formula, template=spec["template"])
        ref = "previous-wave" if spec.get("reference") == "previous" else "baseline"
        what = "follow-up" if lvl == "followup" else "the change in"
        if base[0] not in names[1:]:
            lhs, rhs = formula.split("~", 1)
            formula = f"{lhs.rstrip()} ~ {base[0]} + {rhs.strip()}"
            notes.append(f"ANCOVA: {what} {base[1]} adjusted for its {ref} value ({base[0]}), added by default "
                         "(write baseline: none in the model to leave it out)")
        else:
            notes.append(f"ANCOVA: {what} {base[1]} adjusted for its {ref} value ({base[0]})")
    if lvl == "followup" and n_followup_waves > 1:
        spec_f = parse_formula(formula, glm_terms=spec.get("template") == "glmm")
        groups = {g for r in spec_f.random for g in r.group_vars}
        formula += " + followup_wave" + ("" if "patient_id" in groups else " + (1 | patient_id)")
        notes.append(f"{n_followup_waves} follow-up waves: one row per patient per follow-up wave, with a fixed "
                     "effect of the follow-up wave and a random intercept per patient")
    return formula, notes


def invariance_models_for(models: Mapping, requirement: Mapping) -> list[str]:
    """The invariance models of a plan that test what ``requirement`` (a ``requires_invariance`` entry) needs.

    >>> models = {"a": {"template": "invariance", "construct": "ce", "group": "country"},
    ...           "b": {"template": "invariance", "construct": "ce", "group": "wave"}}
    >>> invariance_models_for(models, {"construct": "ce", "level": "scalar", "group": "wave"})
    ['b']
    >>> invariance_models_for(models, {"construct": "ce", "level": "metric"})
    ['a', 'b']
    """
    return [m for m, s in models.items()
            if isinstance(s, Mapping) and s.get("template") == "invariance"
            and s.get("construct") == requirement.get("construct")
            and (not requirement.get("group") or s.get("group") == requirement.get("group"))]


def default_plan() -> MechanismPlan:
    """The shipped plan covering network navigation, collective efficacy and negotiation.

    Examples
    --------
    >>> from cimstats.mechanisms import default_plan
    >>> p = default_plan()
    >>> p.hypotheses["hypothesis_id"].tolist()
    ['NAV1', 'NAV2', 'NAV3', 'NAV4', 'CE1', 'CE2', 'CE3', 'NEG1', 'NEG2', 'NEG3', 'NEG4', 'CE4', 'CE5', 'CE6', 'CE7', 'CE8']
    """
    text = resources.files("cimstats.mechanisms").joinpath("default_plan.yaml").read_text(encoding="utf-8")
    return read_mechanism_plan(yaml.safe_load(text), source="default_plan.yaml")


def read_mechanism_plan(plan, *, source: str | None = None, constructs=None) -> MechanismPlan:
    """Read and check an analysis plan (a YAML file path, YAML text, a dict or a :class:`MechanismPlan`).

    ``constructs`` (a :class:`~cimstats.measures.constructs.ConstructTable` or
    a ``constructs:`` mapping) adds constructs declared elsewhere, e.g. by the
    analysis plan of a :func:`cimstats.run`: the plan may name them without
    declaring them, and a name it declares too must have the same definition.

    Every problem is collected first; a plan with problems raises one
    :class:`~cimstats.errors.PlanError` whose ``report`` lists them all (codes
    ``M001``-``M025``; ``M018``: a model id that cannot be part of a file name; ``M019``: a formula that cannot be read;
    ``M020``: moderator values outside their range; ``M021``: themes that are neither a list of ids nor a mapping
    of ids to directions; ``M022``: an invariance check linked to a theme; ``M023``: a source field that is not
    text, or an unknown hypothesis field; ``M024``: a ``twolevel_sem`` model whose cluster, ``within`` or
    ``between`` statements or covariates cannot be used; ``M025``: its ``min_clusters`` or ``options`` outside
    their range).

    Raises
    ------
    PlanError
        The plan cannot be read or breaks one or more rules.

    Examples
    --------
    >>> from cimstats.mechanisms import read_mechanism_plan
    >>> bad = {"models": {"m1": {"template": "lmx"}}, "hypotheses": [{"id": "H1", "model": "m2"}]}
    >>> try:
    ...     read_mechanism_plan(bad)
    ... except Exception as e:
    ...     print(len(e.report) > 2)
    True
    """
    if isinstance(plan, MechanismPlan) and constructs is None:
        return plan
    if isinstance(plan, MechanismPlan):
        plan, source = plan.to_dict(), source or plan.source
    external = None
    if constructs is not None:
        external = constructs if isinstance(constructs, ConstructTable) else ConstructTable.from_spec(constructs)
    if isinstance(plan, (str, Path)):
        p = Path(plan)
        if isinstance(plan, Path) or (len(str(plan)) < 1000 and "\n" not in str(plan) and p.suffix in (".yaml", ".yml")):
            if not p.exists():
                raise PlanError(f"The plan file '{p}' does not exist; give a path to a YAML plan or a dict.")
            if not p.is_file():
                raise PlanError(f"The plan file '{p}' is a folder or a device, not a file; give a path to a YAML plan.")
            source = source or str(p)
            try:
                text = p.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise PlanError(f"The plan file '{p}' is not UTF-8 text (byte {exc.start} cannot be decoded), so it "
                                "is not a YAML plan; give the YAML file, saved as UTF-8.") from None
        else:
            text = str(plan)
            source = source or "<yaml text>"
        try:
            plan = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PlanError(f"The plan '{source}' is not valid YAML ({str(exc).splitlines()[0]}); fix the syntax.") from exc
        except RecursionError:
            raise PlanError(f"The plan '{source}' nests lists or mappings too deeply to be read; fix the YAML.") from None
    source = source or "<dict>"
    if not isinstance(plan, Mapping):
        raise PlanError(f"The plan '{source}' must be a mapping with sections constructs, models, hypotheses; "
                        f"got {type(plan).__name__}.")
    rep = Report()
    known_sections = {"plan", "version", "mechanisms", "constructs", "models", "hypotheses", "verdict_rules",
                      "description"}
    for k in plan:
        if k not in known_sections:
            rep.add("M001", f"Unknown section {k!r}.", file=source,
                    remedy=f"Use one of {', '.join(sorted(known_sections))}.")
    constructs = plan.get("constructs") or {}
    models = plan.get("models") or {}
    hyps = plan.get("hypotheses") or []
    if not isinstance(constructs, Mapping):
        rep.add("M002", "Section 'constructs' must map names to specifications.", file=source)
        constructs = {}
    if not isinstance(models, Mapping) or not models:
        rep.add("M002", "Section 'models' must map model ids to specifications and name at least one model.",
                file=source)
        models = models if isinstance(models, Mapping) else {}
    if not isinstance(hyps, list) or not hyps:
        rep.add("M002", "Section 'hypotheses' must be a non-empty list.", file=source)
        hyps = hyps if isinstance(hyps, list) else []

    for name, spec in constructs.items():
        for what, msg in construct_problems(name, spec):
            rep.add("M003" if what == "kind" else "M004", msg, file=source,
                    remedy=f"Use one of {', '.join(CONSTRUCT_KINDS)}." if what == "kind" else None)
    if external is not None:  # constructs declared by the analysis plan: one table, one definition per name
        for name, c in external.items():
            own = constructs.get(name)
            if isinstance(own, Mapping) and not construct_problems(name, own) and \
                    Construct.from_spec(name, own).key != c.key:
                rep.add("M003", f"construct {name!r} is defined as {Construct.from_spec(name, own).describe()} here "
                                f"and as {c.describe()} in the construct table of the analysis plan.", file=source,
                        remedy="Give one of them another name.")
        constructs = {**external.to_spec(), **constructs}

    mech_spec, mech_problems = _mechanisms_section(plan.get("mechanisms"))
    for msg in mech_problems:
        rep.add("M012", msg, file=source, remedy="Write mechanisms: {ID: {label: TEXT, elements: [ID, ...]}}.")
    elements = {m: tuple(v.get("elements") or ()) for m, v in mech_spec.items()}

    for mid, spec in models.items():
        where = f"model {mid!r}"
        bad = name_problem(mid)
        if bad:  # the id becomes part of file names (models/<id>_terms.csv)
            rep.add("M018", f"{where}: the model id {bad}; ids name output files, so they must use {SAFE_NAME_RULE}.",
                    file=source, remedy="Rename the model (and the hypotheses naming it).")
        if not isinstance(spec, Mapping):
            rep.add("M005", f"{where} must be a mapping with a 'template'.", file=source)
            continue
        tpl = spec.get("template")
        if tpl not in TEMPLATES:
            rep.add("M005", f"{where} has template {tpl!r}.", file=source,
                    remedy=f"Use one of {', '.join(TEMPLATES)}.")
            continue
        for key in TEMPLATES[tpl]:
            if not spec.get(key):
                rep.add("M006", f"{where} (template {tpl}) lacks {key!r}.", file=source)
        lvl = spec.get("level", "ego")
        if lvl not in LEVELS:
            rep.add("M007", f"{where} has level {lvl!r}.", file=source, remedy=f"Use one of {', '.join(LEVELS)}.")
        if lvl == "followup" and tpl not in ("lmm", "glmm"):
            rep.add("M007", f"{where} has level followup with template {tpl}; the follow-up level is for lmm and glmm "
                            "models.", file=source, remedy="Use template lmm or glmm, or another level.")
        if spec.get("baseline", "auto") not in BASELINE_OPTIONS:
            rep.add("M007", f"{where} has baseline {_short(spec.get('baseline'))}; expected auto (the outcome's "
                            "baseline value is a covariate: ANCOVA) or none.", file=source)
        if spec.get("reference", "baseline") not in REFERENCE_WAVES or (
                "reference" in spec and lvl != "followup"):
            rep.add("M007", f"{where} has reference {_short(spec.get('reference'))} at level {lvl}; expected "
                            "baseline or previous, at level followup only.", file=source)
        cur = spec.get("current")
        if cur is not None:
            used = _model_variables(spec) if tpl in ("lmm", "glmm") else []
            if lvl != "followup" or not isinstance(cur, list) or not all(isinstance(c, str) and c in used[1:]
                                                                            for c in cur):
                rep.add("M007", f"{where} has current {_short(cur)}; expected, at level followup, a list of "
                                "predictors of its formula measured at the follow-up wave.", file=source)
        if "wave" in spec and spec["wave"] is not None and not _whole(spec["wave"], 0, MAX_WAVE):
            rep.add("M007", f"{where} has wave {_short(spec['wave'])}; expected a whole wave number from 0 to "
                            f"{MAX_WAVE}.", file=source)
        mv = spec.get("moderator_values")
        if mv is not None and not (isinstance(mv, list) and 1 <= len(mv) <= MAX_MODERATOR_VALUES and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in mv)):
            rep.add("M020", f"{where} has moderator_values {_short(mv)}; expected a list of 1 to "
                            f"{MAX_MODERATOR_VALUES} finite numbers.", file=source,
                    remedy="Write e.g. moderator_values: [1, 2, 3].")
        if tpl in ("lmm", "glmm") and spec.get("formula"):
            try:
                formula_names(str(spec["formula"]), template=tpl)
            except ModelSpecificationError as exc:
                rep.add("M019", f"{where} has a formula that cannot be used: {exc}", file=source,
                        remedy="Write it as in lme4 with the functions the formula grammar lists.")
        if tpl == "glmm" and spec.get("family", "binomial") not in ("binomial", "poisson"):
            rep.add("M007", f"{where} has family {spec.get('family')!r}.", file=source,
                    remedy="Use binomial or poisson.")
        if tpl == "twolevel_sem":
            for code, msg in twolevel_problems(spec):
                rep.add(code, f"{where} {msg}.", file=source,
                        remedy="See cimstats.mechanisms.twolevel_template for the keys of a two-level model.")
        if tpl == "invariance" and spec.get("construct") and spec["construct"] not in constructs:
            rep.add("M008", f"{where} names construct {spec['construct']!r}, which is not defined under constructs.",
                    file=source)
        if tpl == "invariance" and spec.get("missing", "listwise") not in ("listwise", "fiml"):
            rep.add("M007", f"{where} has missing {spec.get('missing')!r}.", file=source, remedy="Use listwise or fiml.")
        ri = spec.get("requires_invariance")
        if ri is not None:
            if not isinstance(ri, Mapping) or ri.get("level") not in INVARIANCE_LEVELS or not ri.get("construct"):
                rep.add("M009", f"{where} has requires_invariance {ri!r}; expected "
                        "{construct: NAME, level: configural|metric|scalar|strict, group: COLUMN or wave}.",
                        file=source)
            else:
                found = invariance_models_for(models, ri)
                across = f" across {ri['group']}" if ri.get("group") else ""
                if not found:
                    rep.add("M009", f"{where} requires invariance of {ri['construct']!r}{across}, but no model of the "
                            f"plan tests it.", file=source,
                            remedy="Add a model with template: invariance for that construct and group.")
                elif len(found) > 1:
                    rep.add("M009", f"{where} requires invariance of {ri['construct']!r}, which models "
                            f"{', '.join(found)} test in different ways.", file=source,
                            remedy="Name the one needed with group: in requires_invariance.")

    rows = []
    seen = set()
    for k, h in enumerate(hyps, start=1):
        if not isinstance(h, Mapping):
            rep.add("M010", f"Hypothesis {k} must be a mapping.", file=source, row=k)
            continue
        hid = h.get("id")
        where = f"hypothesis {hid!r} (entry {k})"
        if not hid or not _ID.match(str(hid)) or name_problem(str(hid)):
            rep.add("M010", f"{where} needs an id starting with a letter and using {SAFE_NAME_RULE}.",
                    file=source, row=k)
        elif hid in seen:
            rep.add("M011", f"{where}: the id is used twice.", file=source, row=k, remedy="Give every hypothesis its own id.")
        seen.add(hid)
        mech = h.get("mechanism")
        if mech not in mech_spec:
            rep.add("M012", f"{where} has mechanism {mech!r}.", file=source, row=k,
                    remedy=f"Use one of {', '.join(mech_spec)}, or declare it under mechanisms.")
        mid = h.get("model")
        if mid not in models:
            rep.add("M013", f"{where} names model {mid!r}, which is not defined under models.", file=source, row=k,
                    remedy=f"Use one of {', '.join(map(str, models)) or '(none defined)'}.")
        if not h.get("estimand"):
            rep.add("M014", f"{where} lacks an estimand.", file=source, row=k)
        exp = h.get("expected")
        if exp not in DIRECTIONS:
            rep.add("M015", f"{where} has expected direction {exp!r}.", file=source, row=k,
                    remedy=f"Use one of {', '.join(DIRECTIONS)}.")
        mspec = models.get(mid) if isinstance(models.get(mid), Mapping) else {}
        if mspec.get("template") == "invariance" and h.get("estimand") not in INVARIANCE_LEVELS:
            rep.add("M014", f"{where}: an invariance estimand must be one of {', '.join(INVARIANCE_LEVELS)}; "
                    f"got {h.get('estimand')!r}.", file=source, row=k)
        if mspec.get("template") == "twolevel_sem" and h.get("estimand"):
            labels = twolevel_labels(mspec)
            if h.get("estimand") not in labels:
                rep.add("M014", f"{where}: the estimand of a two-level model must be a parameter label of its "
                                f"within or between statements (such as b in 'y ~ b*f'); got {_short(h.get('estimand'))}"
                                f"{', labels: ' + ', '.join(labels) if labels else ' and the model labels none'}.",
                        file=source, row=k, remedy="Label the parameter in the model and name the label.")
        element = h.get("element")
        allowed = elements.get(mech, ())
        if element is not None and element not in allowed:
            rep.add("M017", f"{where} has element {element!r}.", file=source, row=k,
                    remedy=(f"Use one of {', '.join(allowed)} or leave it out." if allowed else
                            f"Mechanism {mech!r} declares no elements: leave it out, or list it under "
                            "mechanisms.<id>.elements."))
        theme_dirs, theme_problems = _theme_links(h.get("themes"))
        for msg in theme_problems:
            rep.add("M021", f"{where}: {msg}", file=source, row=k,
                    remedy="Write themes: [T1, T2] or themes: {T1: supports, T3: mixed}, with directions "
                           f"{', '.join(THEME_DIRECTIONS)}.")
        if theme_dirs and mspec.get("template") == "invariance":
            rep.add("M022", f"{where} tests measurement invariance and links theme(s) "
                            f"{', '.join(map(str, theme_dirs))}; a measurement check says nothing about a theme.",
                    file=source, row=k, remedy="Leave out its themes.")
        src_fields = {}
        for key in SOURCE_FIELDS:
            val = h.get(key)
            if val is not None and not isinstance(val, str):
                rep.add("M023", f"{where} has {key} {_short(val)}; expected text.", file=source, row=k,
                        remedy=f"Write {key} as a quoted string or leave it out.")
                val = None
            src_fields[key] = "" if val is None else " ".join(val.split())
        if src_fields["fidelity"] and src_fields["fidelity"] not in FIDELITY_LEVELS:
            rep.add("M023", f"{where} has fidelity {src_fields['fidelity']!r}.", file=source, row=k,
                    remedy=f"Use one of {', '.join(FIDELITY_LEVELS)} or leave it out.")
        unknown_keys = [str(x) for x in h if x not in HYPOTHESIS_KEYS]
        if unknown_keys:
            rep.add("M023", f"{where} has unknown field(s) {', '.join(map(repr, unknown_keys))}.", file=source,
                    row=k, remedy=f"Use only {', '.join(HYPOTHESIS_KEYS)}.")
        themes = list(theme_dirs)
        rows.append({
            "hypothesis_id": str(hid), "mechanism": str(mech), "statement": str(h.get("statement") or ""),
            "model": str(mid), "template": str(mspec.get("template", "")), "level": str(mspec.get("level", "ego")),
            "wave": mspec.get("wave"), "estimand": str(h.get("estimand") or ""), "expected": str(exp),
            "required_variables": ";".join(_model_variables(mspec, constructs)) if mspec else "",
            "theme_ids": ";".join(map(str, themes)), "element": "" if element is None else str(element),
            "theme_directions": theme_dirs, **src_fields,
        })
    rules = plan.get("verdict_rules") or {}
    if rules:

        try:
            VerdictRules.from_any(rules)
        except PlanError as exc:
            rep.add("M016", f"verdict_rules: {exc}", file=source)
    if rep.has_errors:
        first = rep.errors[0].message
        raise PlanError(f"The analysis plan '{source}' has {len(rep.errors)} problem(s), listed in `.report` "
                        f"(first: {first}); fix them and read the plan again.", report=rep)
    cols = ["hypothesis_id", "mechanism", "statement", "model", "template", "level", "wave", "estimand", "expected",
            "required_variables", "theme_ids", "element", "theme_directions", *SOURCE_FIELDS]
    return MechanismPlan(name=str(plan.get("plan", "plan")), constructs=MappingProxyType({k: dict(v) for k, v in constructs.items()}),
                models=MappingProxyType({k: dict(v) for k, v in models.items()}),
                hypotheses=pd.DataFrame(rows, columns=cols), verdict_rules=MappingProxyType(dict(rules)),
                source=source, mechanisms=MappingProxyType({k: dict(v) for k, v in mech_spec.items()}),
                declares_mechanisms="mechanisms" in plan)


@functools.lru_cache(maxsize=1)
def _shipped_mechanisms() -> dict:
    """The mechanisms section of the shipped plan (data, read once)."""
    text = resources.files("cimstats.mechanisms").joinpath("default_plan.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text).get("mechanisms") or {})


def _mechanisms_section(spec) -> tuple[dict, list[str]]:
    """The mechanisms a plan declares (id -> {label, elements}) and the problems of the section.

    A plan without the section uses the shipped plan's mechanisms, as plans
    written before mechanisms were declared in the plan did.
    """
    if spec is None:
        return {k: dict(v) for k, v in _shipped_mechanisms().items()}, []
    if not isinstance(spec, Mapping) or not spec:
        return {}, [f"Section 'mechanisms' is {_short(spec)}; expected a mapping of mechanism ids to "
                    "{label, elements}."]
    out, problems = {}, []
    for mid, v in spec.items():
        v = {} if v is None else v
        if not isinstance(mid, str) or not _ID.match(mid) or not isinstance(v, Mapping):
            problems.append(f"mechanisms entry {_short(mid)} must be an id starting with a letter mapped to "
                            "{label: TEXT, elements: [ID, ...]}.")
            continue
        unknown = [k for k in v if k not in ("label", "elements", "description")]
        el = v.get("elements") or []
        if unknown or not isinstance(el, list) or not all(isinstance(e, str) and _ID.match(e) for e in el):
            problems.append(f"mechanisms entry {mid!r} has {_short(dict(v))}; expected label, description and "
                            "elements (a list of ids).")
            continue
        out[mid] = {"label": str(v.get("label") or mid), "elements": list(el),
                    **({"description": str(v["description"])} if v.get("description") else {})}
    return out, problems


def __getattr__(name: str):
    # the shipped plan's mechanism ids and elements, kept under their former names (read from the plan's data)
    if name == "MECHANISMS":
        return tuple(_shipped_mechanisms())
    if name == "CE_ELEMENTS":
        return tuple(e for v in _shipped_mechanisms().values() for e in (v.get("elements") or ()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def formula_names(formula: str, *, template: str = "glmm") -> list[str]:
    """Variable names in an lme4 formula, read by the model formula parser.

    Function names (``log10``, ``offset``, ``I``, ``cbind`` ...) are not
    variables; the columns inside ``offset()`` and ``cbind()`` are. Order:
    outcome, predictors, grouping factors, offset columns.

    Parameters
    ----------
    formula : str
    template : {"glmm", "lmm"}
        The model template the formula belongs to: a ``glmm`` formula may hold
        ``offset()`` terms and a ``cbind(successes, failures)`` outcome, an
        ``lmm`` formula neither (as the verbs that fit them).

    Raises
    ------
    ModelSpecificationError
        When the formula cannot be read or uses a function outside the grammar
        of its template.

    Examples
    --------
    >>> formula_names("n ~ log10(dose) + scale_score + offset(log(t)) + (1 | practice_id)")
    ['n', 'dose', 'scale_score', 'practice_id', 't']
    """
    return parse_formula(formula, glm_terms=template != "lmm").variables()


def _theme_links(themes) -> tuple[dict, list[str]]:
    """Theme id -> expected direction (None: the theme's own) from a plan's ``themes`` entry, and its problems.

    >>> _theme_links(["T1", "T2"])
    ({'T1': None, 'T2': None}, [])
    >>> _theme_links({"T1": "supports", "T3": "mixed"})
    ({'T1': 'supports', 'T3': 'mixed'}, [])
    >>> _theme_links("T1; T2")[0]
    {'T1': None, 'T2': None}
    """
    if themes is None:
        return {}, []
    if isinstance(themes, str):
        return {t.strip(): None for t in themes.replace(",", ";").split(";") if t.strip()}, []
    if isinstance(themes, Mapping):
        out, problems = {}, []
        for t, d in themes.items():
            if not isinstance(t, (str, int)) or isinstance(t, bool) or not str(t).strip():
                problems.append(f"theme id {_short(t)} is not an id")
            elif d is not None and d not in THEME_DIRECTIONS:
                problems.append(f"theme {t!r} has direction {_short(d)}; expected one of {', '.join(THEME_DIRECTIONS)}")
            else:
                out[str(t)] = d
        return out, problems
    if isinstance(themes, list):
        bad = [t for t in themes if not isinstance(t, (str, int)) or isinstance(t, bool)]
        if bad:
            return {}, [f"themes {_short(themes)} hold {_short(bad[0])}, which is not a theme id"]
        return {str(t): None for t in themes}, []
    return {}, [f"themes is {_short(themes)}; expected a list of theme ids or a mapping of theme ids to directions"]


def _themes_yaml(row: Mapping):
    """A hypothesis row's themes in the YAML form: a list when no link has its own direction, else a mapping."""
    dirs = row.get("theme_directions")
    if not isinstance(dirs, Mapping):
        return [t for t in str(row.get("theme_ids") or "").split(";") if t]
    if all(v is None for v in dirs.values()):
        return list(dirs)
    return dict(dirs)


def _hypothesis_from_row(r: Mapping) -> Hypothesis:
    dirs = r.get("theme_directions")
    if not isinstance(dirs, Mapping):
        dirs = {t: None for t in str(r.get("theme_ids") or "").split(";") if t}
    return Hypothesis(hypothesis_id=str(r["hypothesis_id"]), mechanism=str(r["mechanism"]),
                      statement=str(r["statement"]), model=str(r["model"]), estimand=str(r["estimand"]),
                      expected=str(r["expected"]), element=str(r.get("element") or ""),
                      theme_directions=dict(dirs), **{k: str(r.get(k) or "") for k in SOURCE_FIELDS})


def _whole(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _short(v, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model_variables(spec: Mapping, constructs: Mapping | None = None) -> list[str]:
    tpl = spec.get("template")
    names: list[str] = []
    if tpl in ("lmm", "glmm"):
        try:
            names = formula_names(str(spec.get("formula", "")), template=tpl)
        except ModelSpecificationError:
            names = []  # an unreadable formula is reported by the plan check (M019)
    elif tpl in ("mediation", "moderated_mediation"):
        m = spec.get("m")
        ms = [m] if isinstance(m, str) else list(m or [])
        names = [spec.get("x"), *ms, spec.get("y")]
        if spec.get("moderator"):
            names.append(spec["moderator"])
        names += list(spec.get("covariates") or [])
        if spec.get("cluster"):
            names.append(spec["cluster"])
    elif tpl == "invariance":
        names = [spec.get("construct"), spec.get("group")]
    elif tpl == "twolevel_sem":
        names = twolevel_variables(spec)
    return [str(n) for n in names if n]
