"""Meta-inferences: what a pairing of a quantitative result and a qualitative theme means.

The categories are the established ones for integrating strands in a
mixed-methods study: **confirmation** (the strands agree), **expansion**
(they agree in part, or one adds scope or conditions to the other),
**discordance** (they disagree) and **silence** (one strand says nothing on
the matter). In a convergence coding matrix (triangulation protocol) the
same judgements are called agreement, partial agreement, dissonance and
silence.

cimstats *suggests* a meta-inference from two inputs, by a visible rule
table (:data:`DEFAULT_RULES`, one row per combination):

* the hypothesis **verdict** from the mechanism table: ``supported``,
  ``not supported``, ``contrary`` (significant in the opposite direction)
  or ``not testable``;
* the theme's **stated direction** from the codebook: ``supports`` (the
  qualitative finding describes the mechanism working as hypothesised),
  ``contradicts``, ``mixed`` or ``none``.

Users can pass their own rule table and override any pairing; every
decision records who made it (``rule:<id>`` or the user's name) and why.
"""

from __future__ import annotations

from typing import Any

from cimstats.integrate.codebook import CodebookError
from cimstats.mechanisms.rules import VERDICTS
from cimstats.errors import Report

__all__ = ["DEFAULT_RULES", "META_INFERENCES", "CONVERGENCE", "VERDICTS", "suggest_meta_inferences",
           "normalise_verdict", "combine_convergence"]

META_INFERENCES = ("confirmation", "expansion", "discordance", "silence")
#: meta-inference -> convergence-coding category
CONVERGENCE = {"confirmation": "agreement", "expansion": "partial agreement",
               "discordance": "dissonance", "silence": "silence"}
_VERDICT_SYNONYMS = {
    "supported": "supported", "support": "supported", "confirmed": "supported",
    "not supported": "not supported", "not_supported": "not supported", "unsupported": "not supported",
    "null": "not supported", "no effect": "not supported",
    "contrary": "contrary", "contradicted": "contrary", "opposite": "contrary", "reversed": "contrary",
    "not testable": "not testable", "not_testable": "not testable", "untestable": "not testable",
    "not tested": "not testable", "": "not testable",
}


def normalise_verdict(v: Any) -> str:
    """Map a verdict (with common synonyms) onto :data:`VERDICTS`; missing -> ``not testable``."""
    if v is None or (isinstance(v, float) and v != v):
        return "not testable"
    key = str(v).strip().lower()
    if key in _VERDICT_SYNONYMS:
        return _VERDICT_SYNONYMS[key]
    raise CodebookError(
        f"Verdict {v!r} in the mechanism table is not known; expected one of {', '.join(VERDICTS)}."
    )


def _default_rules():
    import pandas as pd

    rows = [
        ("R1", "supported", "supports", "confirmation", "Both strands find the mechanism working as hypothesised."),
        ("R2", "supported", "mixed", "expansion", "The effect is found; interviews add conditions or exceptions."),
        ("R3", "supported", "contradicts", "discordance", "The effect is found but interviews describe the opposite."),
        ("R4", "supported", "none", "silence", "The effect is found; interviews say nothing about it."),
        ("R5", "not supported", "supports", "discordance", "Interviews describe the mechanism but no effect is found."),
        ("R6", "not supported", "mixed", "expansion", "No overall effect; interviews suggest it works only for some."),
        ("R7", "not supported", "contradicts", "confirmation", "Neither strand finds the mechanism working as hypothesised."),
        ("R8", "not supported", "none", "silence", "No effect is found; interviews say nothing about it."),
        ("R9", "contrary", "supports", "discordance", "The effect runs opposite to what interviews describe."),
        ("R10", "contrary", "mixed", "expansion", "The effect runs opposite; interviews describe both directions."),
        ("R11", "contrary", "contradicts", "confirmation", "Both strands find the opposite of the hypothesis."),
        ("R12", "contrary", "none", "silence", "An opposite effect is found; interviews say nothing about it."),
        ("R13", "not testable", "supports", "silence", "The quantitative strand could not test the hypothesis."),
        ("R14", "not testable", "mixed", "silence", "The quantitative strand could not test the hypothesis."),
        ("R15", "not testable", "contradicts", "silence", "The quantitative strand could not test the hypothesis."),
        ("R16", "not testable", "none", "silence", "Neither strand addresses the hypothesis."),
    ]
    return pd.DataFrame(rows, columns=["rule_id", "verdict", "theme_direction", "meta_inference", "rationale"])


#: the default rule table (copy it, edit rows, and pass it as ``rules=``)
DEFAULT_RULES = _default_rules()


def suggest_meta_inferences(pairs, *, rules=None, overrides=None):
    """Suggest a meta-inference for each hypothesis-theme pairing.

    Parameters
    ----------
    pairs : pandas.DataFrame
        One row per pairing with ``hypothesis_id``, ``theme_id``,
        ``verdict`` and ``theme_direction`` (``direction`` is accepted).
    rules : pandas.DataFrame, optional
        Columns ``rule_id, verdict, theme_direction, meta_inference,
        rationale`` (default :data:`DEFAULT_RULES`). Every verdict x
        direction combination met must have exactly one rule.
    overrides : pandas.DataFrame, list of dict or dict, optional
        Decisions by people that replace the rule: rows with
        ``hypothesis_id`` (and optionally ``theme_id``, else all its
        themes), ``meta_inference``, ``decided_by`` (required: a name) and
        ``reason``. A dict ``{(hypothesis_id, theme_id) or hypothesis_id:
        (meta_inference, decided_by[, reason])}`` is also accepted.

    Returns
    -------
    pandas.DataFrame
        ``pairs`` plus ``meta_inference``, ``convergence``, ``decided_by``
        (``rule:<id>`` or the person) and ``rationale``.

    Examples
    --------
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"hypothesis_id": ["H1", "H2"], "theme_id": ["T1", "T2"],
    ...                       "verdict": ["supported", "not supported"], "theme_direction": ["supports", "supports"]})
    >>> out = suggest_meta_inferences(pairs, overrides={"H2": ("expansion", "R. Author", "effect only in deprived areas")})
    >>> out[["meta_inference", "convergence", "decided_by"]].values.tolist()
    [['confirmation', 'agreement', 'rule:R1'], ['expansion', 'partial agreement', 'R. Author']]
    """
    import pandas as pd


    rules = DEFAULT_RULES if rules is None else rules
    need = {"rule_id", "verdict", "theme_direction", "meta_inference"}
    if not need <= set(rules.columns):
        raise CodebookError(f"`rules` lacks column(s) {', '.join(sorted(need - set(rules.columns)))}; "
                            "start from cimstats.integrate.DEFAULT_RULES.")
    bad = set(rules["meta_inference"]) - set(META_INFERENCES)
    if bad:
        raise CodebookError(f"`rules` uses meta-inference(s) {', '.join(sorted(bad))}; expected {', '.join(META_INFERENCES)}.")
    table: dict[tuple[str, str], tuple[str, str, str]] = {}
    for r in rules.itertuples(index=False):
        key = (normalise_verdict(r.verdict), str(r.theme_direction))
        if key in table:
            raise CodebookError(f"`rules` has two rules for verdict {key[0]!r} and direction {key[1]!r}; keep one.")
        table[key] = (str(r.rule_id), str(r.meta_inference), str(getattr(r, "rationale", "") or ""))
    df = pairs.copy()
    if "theme_direction" not in df.columns and "direction" in df.columns:
        df = df.rename(columns={"direction": "theme_direction"})
    out_mi, out_by, out_why = [], [], []
    for r in df.itertuples(index=False):
        v = normalise_verdict(r.verdict)
        d = "none" if r.theme_direction is None or (isinstance(r.theme_direction, float) and r.theme_direction != r.theme_direction) else str(r.theme_direction)
        hit = table.get((v, d))
        if hit is None:
            raise CodebookError(f"No rule covers verdict {v!r} with theme direction {d!r} "
                                f"(hypothesis {r.hypothesis_id}, theme {r.theme_id}); add a row to `rules`.")
        out_mi.append(hit[1])
        out_by.append(f"rule:{hit[0]}")
        out_why.append(hit[2])
    df["meta_inference"] = out_mi
    df["decided_by"] = out_by
    df["rationale"] = out_why

    # overrides by people
    if overrides is not None:
        if isinstance(overrides, dict):
            rows = []
            for k, v in overrides.items():
                h, t = (k if isinstance(k, tuple) else (k, None))
                v = (v,) if isinstance(v, str) else tuple(v)
                rows.append({"hypothesis_id": h, "theme_id": t, "meta_inference": v[0],
                             "decided_by": v[1] if len(v) > 1 else None, "reason": v[2] if len(v) > 2 else ""})
            ov = pd.DataFrame(rows)
        else:
            ov = pd.DataFrame(overrides)
        report = Report()
        for k, o in enumerate(ov.to_dict("records")):
            if o.get("meta_inference") not in META_INFERENCES:
                report.add("I001", f"Override {k + 1} gives meta-inference {o.get('meta_inference')!r}; expected one of "
                           f"{', '.join(META_INFERENCES)}.", row=k + 1)
                continue
            who = o.get("decided_by")
            if who is None or not str(who).strip() or str(who).startswith("rule:"):
                report.add("I002", f"Override {k + 1} (hypothesis {o.get('hypothesis_id')}) does not say who decided.",
                           row=k + 1, remedy="Add `decided_by` with a name.")
                continue
            mask = df["hypothesis_id"].astype(str) == str(o.get("hypothesis_id"))
            t = o.get("theme_id")
            if t is not None and not (isinstance(t, float) and t != t):
                mask &= df["theme_id"].astype(str) == str(t)
            if not mask.any():
                report.add("I003", f"Override {k + 1} names hypothesis {o.get('hypothesis_id')!r}"
                           + (f" and theme {t!r}" if t is not None else "") + ", which is not in the display.", row=k + 1)
                continue
            df.loc[mask, "meta_inference"] = o["meta_inference"]
            df.loc[mask, "decided_by"] = str(who)
            df.loc[mask, "rationale"] = str(o.get("reason") or "") or "Decided by the research team."
        if report.has_errors:
            raise CodebookError(f"The meta-inference overrides have {len(report.errors)} problem(s); see `.report` "
                                f"(first: {report.errors[0].message})", report=report)
    df["convergence"] = [CONVERGENCE[m] for m in df["meta_inference"]]
    return df


def combine_convergence(categories) -> str:
    """One convergence code for a theme linked to several hypotheses.

    Silence is ignored when other categories are present; a single
    remaining category is kept; any mixture becomes ``partial agreement``.

    Examples
    --------
    >>> combine_convergence(["agreement", "silence"]), combine_convergence(["agreement", "dissonance"])
    ('agreement', 'partial agreement')
    """
    cats = [c for c in categories if c != "silence"]
    if not cats:
        return "silence"
    s = set(cats)
    return cats[0] if len(s) == 1 else "partial agreement"
