"""The ``twolevel_sem`` template of an analysis plan: a construct shared by the members of a cluster.

Collective efficacy is defined as "developing a shared perception and capacity"
of a group. When the members of a group (the named members of a patient's
network) answer items about it themselves, the group's share of their answers
is a property of the group: the between-cluster factor of a two-level
structural equation model. This template fits such a model with
:func:`cimstats.sem` (``level: 1`` / ``level: 2`` blocks, ``cluster=``) on
the rows of the model's level (``alter``: one row per named member, with the
patient's variables joined, so that patient-level variables are constant within
a network and enter the ``between`` block only) and reads the hypothesis's
estimand from a *labelled* parameter of the model, e.g. ``b_shared`` in
``sm ~ b_shared*ce_b``.

A plan entry::

    ce_shared:
      template: twolevel_sem
      level: alter
      wave: 0
      cluster: patient_id
      within: "ce_w =~ member_ce_1 + member_ce_2 + member_ce_3 + member_ce_4"
      between: "ce_b =~ member_ce_1 + member_ce_2 + member_ce_3 + member_ce_4; sm ~ b_shared*ce_b + se"
      covariates: [country]
      min_clusters: 50
      options: 5

``within`` and ``between`` hold lavaan statements (separated by new lines or
``;``) of the two levels. ``covariates`` (optional) are cluster-level
variables added to every regression of the ``between`` block; a categorical
one enters as indicators (first sorted category the reference), as in the
other templates. ``min_clusters`` (default :data:`DEFAULT_MIN_CLUSTERS`) is the
fewest clusters with two or more rows that answer every model variable for
the model to be fitted: with fewer, the hypothesis is *not testable* (a group
property is not estimable from one member per group). ``options`` (the number
of answer options of the indicators) adds rwg(j) to the agreement reported
before the model.

Before the model, the agreement of the indicators (the variables measured at
both levels) within clusters is computed on the rows the model uses, with the
functions of :mod:`cimstats.measures.agreement` as in
:func:`cimstats.mechanisms.shared.shared_efficacy`: ICC(1), ICC(2) and, with
``options``, rwg(j). It is written into the hypothesis's diagnostics with the
usual thresholds, so a reader sees whether aggregating the members' answers
to the cluster is justified.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from cimstats.errors import ModelSpecificationError
from cimstats.measures.agreement import icc as _icc
from cimstats.models.sem.fit import sem as _sem
from cimstats.models.sem.syntax import parse_model

from ._covariates import indicator_columns
from .shared import shared_efficacy

__all__ = ["DEFAULT_MIN_CLUSTERS", "MAX_MIN_CLUSTERS", "twolevel_problems", "twolevel_variables",
           "twolevel_labels", "twolevel_syntax", "fit_twolevel_sem", "PoolingView"]

#: clusters with two or more complete rows needed when the plan does not say (``min_clusters``)
DEFAULT_MIN_CLUSTERS = 30
#: the largest ``min_clusters`` a plan may ask for
MAX_MIN_CLUSTERS = 100_000
#: the largest number of answer options (``options``) for rwg(j)
MAX_OPTIONS = 100
#: usual thresholds for aggregating members' answers to the group (LeBreton and Senter 2008)
ICC1_THRESHOLD = 0.05
RWG_THRESHOLD = 0.70

_LEVEL_LINE = re.compile(r"^\s*level\s*:", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BLOCKS = ("within", "between")


def _statements(text) -> list:
    return parse_model(text)


def _parsed(spec: Mapping) -> tuple[dict, list[str]]:
    """The statements of each block and the problems found reading them."""
    out, problems = {}, []
    for key in _BLOCKS:
        text = spec.get(key)
        if text is None or (isinstance(text, str) and not text.strip()):
            continue  # reported as a missing key (M006)
        if not isinstance(text, str):
            problems.append(f"has {key} {_short(text)}; expected lavaan statements as text")
            continue
        if _LEVEL_LINE.search(text):
            problems.append(f"has a 'level:' line in {key}; the template writes the levels itself, so give only "
                            f"the statements of the {key}-cluster model")
            continue
        try:
            st = _statements(text)
        except ModelSpecificationError as exc:
            problems.append(f"has a {key} block that cannot be read ({str(exc).rstrip('.')})")
            continue
        extra = [s for s in st if s.op in (":=", "==", "<", ">")]
        if extra:
            problems.append(f"defines '{extra[0].text.strip()}' in {key}; defined parameters and constraints are "
                            "not supported in two-level models, so label the parameter itself")
            continue
        out[key] = st
    return out, problems


def _latent(stmts) -> list[str]:
    return list(dict.fromkeys(s.lhs for s in stmts if s.op == "=~"))


def twolevel_labels(spec: Mapping) -> list[str]:
    """The parameter labels a ``twolevel_sem`` model defines (the estimands a hypothesis may name)."""
    blocks, _ = _parsed(spec)
    return list(dict.fromkeys(lab for st in blocks.values() for s in st for lab in s.label if isinstance(lab, str)))


def twolevel_variables(spec: Mapping) -> list[str]:
    """Observed variables of a ``twolevel_sem`` model (both blocks), its covariates and the cluster."""
    blocks, _ = _parsed(spec)
    lv = {v for st in blocks.values() for v in _latent(st)}
    names: list[str] = []
    for st in blocks.values():
        for s in st:
            for v in (s.lhs, s.rhs) if s.op != "=~" else (s.rhs,):
                if v and v not in lv:
                    names.append(v)
    names += [str(c) for c in (spec.get("covariates") or []) if isinstance(c, str)]
    if isinstance(spec.get("cluster"), str):
        names.append(spec["cluster"])
    return list(dict.fromkeys(names))


def _indicators(blocks: Mapping) -> list[str]:
    """Observed variables measured at both levels (split into a within and a between part)."""
    def observed(st):
        lv = set(_latent(st))
        return [v for s in st for v in ((s.rhs,) if s.op == "=~" else (s.lhs, s.rhs)) if v and v not in lv]
    w, b = observed(blocks.get("within", [])), set(observed(blocks.get("between", [])))
    return list(dict.fromkeys(v for v in w if v in b))


def _whole(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _short(v, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def twolevel_problems(spec: Mapping) -> list[tuple[str, str]]:
    """(code, message) for every problem of a ``twolevel_sem`` model entry (messages continue "model 'id' ...").

    ``M024``: the cluster, the two blocks or the covariates cannot be used;
    ``M025``: ``min_clusters`` or ``options`` outside its range.
    """
    out: list[tuple[str, str]] = []
    blocks, problems = _parsed(spec)
    out += [("M024", p) for p in problems]
    cluster = spec.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not _NAME.match(cluster)):
        out.append(("M024", f"has cluster {_short(cluster)}; expected the name of the column that identifies the "
                            "clusters, e.g. patient_id for the members of each patient's network"))
    covs = spec.get("covariates")
    if covs is not None and (not isinstance(covs, list) or not all(isinstance(c, str) and _NAME.match(c)
                                                                   for c in covs)):
        out.append(("M024", f"has covariates {_short(covs)}; expected a list of column or construct names"))
        covs = None
    if len(blocks) == 2:
        lw, lb = set(_latent(blocks["within"])), set(_latent(blocks["between"]))
        both = sorted(lw & lb)
        if both:
            out.append(("M024", f"defines the latent variable '{both[0]}' in both within and between; give the "
                                f"within and the between factor different names (e.g. '{both[0]}_w', "
                                f"'{both[0]}_b')"))
        names = twolevel_variables({k: v for k, v in spec.items() if k != "cluster"})
        if isinstance(cluster, str) and cluster in names:
            out.append(("M024", f"uses its cluster column '{cluster}' as a model variable; the cluster identifier "
                                "cannot be modelled"))
        within_ov = {v for s in blocks["within"] for v in ((s.rhs,) if s.op == "=~" else (s.lhs, s.rhs))
                     if v and v not in lw}
        regs = [s for s in blocks["between"] if s.op == "~"]
        if covs:
            clash = [c for c in covs if c in within_ov]
            if clash:
                out.append(("M024", f"lists covariate '{clash[0]}', which the within block uses too; covariates "
                                    "are cluster-level variables of the between block"))
            if not regs:
                out.append(("M024", "has covariates but no regression ('~') in the between block; covariates are "
                                    "added to the between-level regressions, so write one or leave them out"))
    mc = spec.get("min_clusters")
    if mc is not None and not _whole(mc, 2, MAX_MIN_CLUSTERS):
        out.append(("M025", f"has min_clusters {_short(mc)}; expected a whole number from 2 to {MAX_MIN_CLUSTERS:,} "
                            "(the fewest clusters with two or more complete rows)"))
    opt = spec.get("options")
    if opt is not None and not _whole(opt, 2, MAX_OPTIONS):
        out.append(("M025", f"has options {_short(opt)}; expected the number of answer options of the indicators, "
                            f"a whole number from 2 to {MAX_OPTIONS}"))
    return out


def twolevel_syntax(spec: Mapping, covariate_terms: list[str] | None = None) -> str:
    """The two-level model syntax the template fits: the blocks, with the covariates added to each between regression.

    >>> twolevel_syntax({"within": "f_w =~ y1 + y2", "between": "f_b =~ y1 + y2; z ~ b*f_b"}, ["x"])
    'level: 1\\n  f_w =~ y1 + y2\\nlevel: 2\\n  f_b =~ y1 + y2; z ~ b*f_b\\n  z ~ x\\n'
    """
    lines = ["level: 1"] + [f"  {ln.strip()}" for ln in str(spec["within"]).splitlines() if ln.strip()]
    lines += ["level: 2"] + [f"  {ln.strip()}" for ln in str(spec["between"]).splitlines() if ln.strip()]
    if covariate_terms:
        regs = list(dict.fromkeys(s.lhs for s in parse_model(str(spec["between"])) if s.op == "~"))
        lines += [f"  {y} ~ {' + '.join(covariate_terms)}" for y in regs]
    return "\n".join(lines) + "\n"


def _agreement(used: pd.DataFrame, items: list[str], cluster: str, options) -> tuple[str, dict]:
    """Agreement of the indicators within clusters on the rows the model uses, in words and numbers."""
    if not items:
        return "", {}
    d = used[[cluster] + items].copy()
    d["_score"] = d[items].astype(float).mean(axis=1)
    vals: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rw = None
        if options is not None:  # the same agreement indices as the shared-efficacy report
            se = shared_efficacy(d, items, group=cluster, wave=None, options=int(options), cfa=False)
            r, rw = se.icc, se.rwg
            vals.update(rwg_median=float(rw.median), rwg_mean=float(rw.mean), rwg_truncated=int(rw.n_truncated))
        else:
            r = _icc(d, "_score", cluster)
        vals.update(icc1=float(r.icc1), icc2=float(r.icc2), clusters=int(r.groups), rows=int(r.n))
    txt = (f"agreement of {', '.join(items)} within clusters before aggregation (rows used): ICC(1) "
           f"{vals['icc1']:.3f}, ICC(2) {vals['icc2']:.3f}")
    if rw is not None:
        txt += (f", rwg(j) median {vals['rwg_median']:.3f} (mean {vals['rwg_mean']:.3f}, uniform null on {options} "
                f"options, {vals['rwg_truncated']} truncated to 0)")
    ok_icc = vals["icc1"] > ICC1_THRESHOLD
    ok_rwg = rw is None or vals["rwg_median"] >= RWG_THRESHOLD
    verdict = ("aggregation to the cluster is supported by the usual thresholds" if ok_icc and ok_rwg else
               "aggregation to the cluster is questionable by the usual thresholds")
    txt += (f"; {verdict} (ICC(1) above {ICC1_THRESHOLD:g}" + ("" if rw is None else
                                                             f", median rwg(j) at least {RWG_THRESHOLD:g}") + ")")
    vals["aggregation_supported"] = bool(ok_icc and ok_rwg)
    return txt, vals


def fit_twolevel_sem(fit, spec: Mapping, frame: pd.DataFrame, level: float) -> None:
    """Fit a ``twolevel_sem`` model of a plan on its frame and fill ``fit`` (terms by label, diagnostics).

    ``fit`` receives the fitted :class:`~cimstats.models.sem.twolevel_results.TwoLevelResult`
    (``result``), one term per parameter (``terms``: a labelled parameter under its
    label, any other as ``lhs op rhs@level``), the rows used and set aside, a
    description and the diagnostics (clusters, the agreement of the indicators
    before aggregation, convergence and fit).

    Raises
    ------
    TooFewClusters
        Fewer clusters than ``min_clusters`` have two or more rows with every
        model variable observed (the caller makes the hypothesis not testable).
    ModelSpecificationError, EstimationError
        The model cannot be fitted (the caller records the failure).
    """
    cluster = str(spec["cluster"])
    covs = [str(c) for c in (spec.get("covariates") or [])]
    frame, cov_terms = indicator_columns(frame, covs, syntax_names=True)
    syntax = twolevel_syntax(spec, cov_terms)
    blocks, _ = _parsed(spec)
    names = [v for v in twolevel_variables(spec) if v != cluster and v not in covs] + cov_terms
    complete = frame[names].notna().all(axis=1) & frame[cluster].notna()
    used = frame.loc[complete, list(dict.fromkeys(names + [cluster]))]
    sizes = used.groupby(cluster, sort=False).size()
    n2 = int((sizes >= 2).sum())
    need = int(spec.get("min_clusters", DEFAULT_MIN_CLUSTERS))
    if n2 < need:
        raise TooFewClusters(
            f"only {n2} of the {len(sizes)} clusters ('{cluster}') have two or more rows with every model variable "
            f"observed, and the plan asks for at least {need} (min_clusters), so a cluster-level construct cannot "
            "be estimated")
    for v in names:
        if not pd.api.types.is_numeric_dtype(used[v]):
            raise ModelSpecificationError(f"Column '{v}' is {used[v].dtype}, not numeric; recode it or list it "
                                          "under covariates.")
    items = _indicators(blocks)
    agree_txt, agree = _agreement(used, items, cluster, spec.get("options"))
    data = frame[list(dict.fromkeys(names + [cluster]))]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = _sem(syntax, data, cluster=cluster)
        caught = [str(x.message) for x in w if "set aside" not in str(x.message)]
    t = res.tidy(level=level)
    labelled = t.loc[t["label"].astype(str) != ""].drop_duplicates("label")
    rest = t.loc[t["label"].astype(str) == ""]
    terms = pd.concat([labelled, rest], ignore_index=True)
    terms["term"] = _term_names(terms)
    terms["df"] = np.nan
    fit.result = res
    fit.terms = terms[["term", "estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper"]]
    fit.nobs, fit.n_dropped = int(res.nobs), int(res.n_dropped)
    cov_txt = f"; covariates {', '.join(covs)} in each between regression" if covs else ""
    fit.description = (f"two-level SEM (ML, clusters: {cluster}): within {' '.join(str(spec['within']).split())}; "
                       f"between {' '.join(str(spec['between']).split())}{cov_txt}")
    g = res.glance().iloc[0]
    diag = [f"{int(res.nclusters)} clusters, {n2} with 2+ complete rows (at least {need} required)"]
    if agree_txt:
        diag.append(agree_txt)
    diag.append(f"converged: {bool(g['converged'])}")
    if np.isfinite(float(g["cfi"])) and float(g["df"]) > 0:
        diag.append(f"chi-square {float(g['chisq']):.2f} on {float(g['df']):.0f} df, CFI {float(g['cfi']):.3f}, "
                    f"RMSEA {float(g['rmsea']):.3f}, SRMR within {float(g['srmr_within']):.3f}, between "
                    f"{float(g['srmr_between']):.3f}")
    if fit.n_dropped:
        d = res.dropped
        by = ", ".join(f"{v}: {int(k)}" for v, k in zip(d["variable"], d["n_missing"]))
        diag.append(f"{fit.n_dropped} rows set aside for missing values" + (f" ({by})" if by else ""))
    diag += caught
    fit.diagnostics = "; ".join(diag)
    fit.extra["agreement"] = agree
    fit.extra["clusters_2plus"] = n2


def _term_names(t: pd.DataFrame) -> list[str]:
    """A labelled parameter under its label, any other as ``lhs op rhs@level`` (the names of ``vcov()``)."""
    return [str(lab) if str(lab) else f"{term}@{lev}" for term, lab, lev in zip(t["term"], t["label"], t["level"])]


class PoolingView:
    """The free parameters of a two-level fit under unique names, for pooling over imputations.

    Rubin's rules (:func:`cimstats.models.impute.pooled.pool`) need one row per
    term; a two-level model names a parameter once per level (``y1~1`` within
    and between), so the view names each free parameter as the template's
    terms do (its label, or ``lhs op rhs@level``), with the matching covariance
    matrix and large-sample degrees of freedom (as for other SEMs).
    """

    def __init__(self, result):
        self._r = result
        self.nobs = result.nobs
        self.optimizer = result.optimizer
        self.dropped = result.dropped

    def _free(self) -> pd.DataFrame:
        t = self._r.tidy()
        free = self._r.table["free"].to_numpy() > 0
        t = t.loc[free].copy()
        t["free"] = self._r.table.loc[free, "free"].to_numpy()
        return t.drop_duplicates("free")

    def tidy(self) -> pd.DataFrame:
        t = self._free()
        return pd.DataFrame({"term": _term_names(t), "estimate": t["estimate"].to_numpy(dtype=float),
                             "std_error": t["std_error"].to_numpy(dtype=float)})

    def vcov(self) -> pd.DataFrame:
        names = _term_names(self._free().sort_values("free"))
        V = self._r.vcov()
        return pd.DataFrame(V.to_numpy(dtype=float), index=names, columns=names)

    def glance(self) -> pd.DataFrame:
        return pd.DataFrame([{"nobs": self._r.nobs, "df_residual": math.inf}])


class TooFewClusters(LookupError):
    """Fewer clusters with two or more complete rows than the plan's ``min_clusters`` (the hypothesis is not testable)."""
