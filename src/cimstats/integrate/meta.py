"""Meta-inferences: what a pairing of a quantitative result and a qualitative theme means.

The three categories of "fit" between the strands are those of Fetters,
Curry and Creswell (2013), *Achieving integration in mixed methods
designs: principles and practices*, Health Services Research 48(6 Pt 2),
2134-2156 (:data:`FIT_DEFINITIONS` summarises them in the package's words; not quotations):

* **confirmation**: the findings of each strand confirm the results of the
  other;
* **expansion**: the findings diverge and expand insight into the
  phenomenon, by addressing different aspects of it or describing
  complementary aspects of it;
* **discordance**: the findings are inconsistent, incongruous, contradict,
  conflict or disagree with each other.

**silence** is not one of their categories: it comes from the convergence
coding of the triangulation protocol of Farmer, Robinson, Elliott and Eyles
(2006, Qualitative Health Research 16(3), 377-394): one set of results
covers the theme while the other is silent on it. cimstats uses it when one
strand says nothing (a hypothesis that could not be tested, a theme that
states no direction).

cimstats *suggests* a meta-inference from two inputs, by a visible rule
table (:data:`DEFAULT_RULES`, one row per combination; the rules are the
package's own operationalisation, not part of either source):

* the hypothesis **verdict** from the mechanism table: ``supported``,
  ``not supported``, ``contrary`` (significant in the opposite direction)
  or ``not testable``;
* the **expected direction** of the theme for that hypothesis: set per
  hypothesis-theme pair by the hypothesis (``theme_directions``), else the
  theme's own direction in the codebook: ``supports`` (the qualitative
  finding describes the mechanism working as hypothesised),
  ``contradicts``, ``mixed`` or ``none``.

A suggestion stays **"suggested, needs review"** until a named person
confirms or overrides it in a review file (:func:`read_reviews`: columns
``hypothesis_id, theme_id, decision, reviewer, date, reason``). Every row
records its ``status``, who decided (``rule:<id>`` or the reviewer), when and
why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cimstats.integrate.codebook import CodebookError
from cimstats.mechanisms.rules import VERDICTS
from cimstats.errors import Report

__all__ = ["DEFAULT_RULES", "META_INFERENCES", "CONVERGENCE", "VERDICTS", "suggest_meta_inferences",
           "normalise_verdict", "combine_convergence", "FIT_DEFINITIONS", "CONVERGENCE_CODES", "REVIEW_COLUMNS",
           "REVIEW_STATUSES", "read_reviews", "review_template"]

META_INFERENCES = ("confirmation", "expansion", "discordance", "silence")
#: the categories of fit of Fetters, Curry and Creswell (2013) and silence (Farmer et al. 2006), each
#: summarised in the package's own words (a paraphrase to cite, not a quotation)
FIT_DEFINITIONS = {
    "confirmation": ("Fetters, Curry and Creswell 2013",
                     "the findings of each kind of data confirm those of the other."),
    "expansion": ("Fetters, Curry and Creswell 2013",
                  "the findings of the two kinds of data diverge and widen the understanding of the phenomenon, by "
                  "speaking to different or complementary aspects of it."),
    "discordance": ("Fetters, Curry and Creswell 2013",
                    "the qualitative and quantitative findings are inconsistent with, or contradict, each other."),
    "silence": ("Farmer et al. 2006, triangulation protocol",
                "one set of results covers a theme while the other says nothing about it."),
}
#: convergence codes of a theme in the convergence coding matrix: the four meta-inferences, plus
#: ``partial agreement``, which is cimstats's own code for a theme whose linked hypotheses reach
#: different meta-inferences (it is not one of Fetters et al.'s categories)
CONVERGENCE_CODES = ("confirmation", "expansion", "discordance", "partial agreement", "silence")
#: meta-inference -> convergence code of a single pairing (the same word: expansion is not partial agreement)
CONVERGENCE = {m: m for m in META_INFERENCES}
#: columns of a review file (one row per decision)
REVIEW_COLUMNS = ["hypothesis_id", "theme_id", "decision", "reviewer", "date", "reason"]
#: status of a meta-inference
REVIEW_STATUSES = ("suggested, needs review", "confirmed", "overridden")
_PENDING = REVIEW_STATUSES[0]
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

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or not str(v).strip()


def review_template(meta_inferences, path=None):
    """A review file to fill in: one row per suggested meta-inference still needing review.

    Columns are :data:`REVIEW_COLUMNS` plus ``suggested`` (the rule's
    suggestion, for reference). Write ``confirm`` in ``decision`` to accept
    the suggestion or a meta-inference (confirmation, expansion, discordance,
    silence) to override it; give ``reviewer`` (a name), ``date``
    (YYYY-MM-DD) and ``reason``.
    """
    import pandas as pd

    mi = meta_inferences
    todo = mi.loc[mi["status"] == _PENDING] if "status" in mi.columns else mi
    out = pd.DataFrame({"hypothesis_id": todo["hypothesis_id"].astype(str), "theme_id": todo["theme_id"],
                        "suggested": todo["meta_inference"], "decision": "", "reviewer": "", "date": "",
                        "reason": ""})
    out = out[["hypothesis_id", "theme_id", "suggested", "decision", "reviewer", "date", "reason"]]
    if path is not None:
        out.to_csv(path, index=False)
    return out.reset_index(drop=True)


def read_reviews(reviews):
    """Read the reviewers' decisions on suggested meta-inferences.

    Parameters
    ----------
    reviews : str, path-like, pandas.DataFrame, list of dict or dict
        A CSV or YAML file (a list of mappings, or ``reviews:`` holding one),
        a table, or a list of mappings, with the columns of
        :data:`REVIEW_COLUMNS`:

        ``hypothesis_id``
            the hypothesis (required);
        ``theme_id``
            the theme (required: a decision is about one pair);
        ``decision``
            ``confirm`` (accept the rule's suggestion) or the meta-inference
            that replaces it (``confirmation``, ``expansion``,
            ``discordance``, ``silence``);
        ``reviewer``
            the person who decided (a name; required);
        ``date``
            when, as YYYY-MM-DD (required);
        ``reason``
            why (required when the decision overrides the suggestion).

        A dict ``{(hypothesis_id, theme_id): {decision, reviewer, date,
        reason}}`` is also accepted.

    Returns
    -------
    pandas.DataFrame
        One row per decision with the columns of :data:`REVIEW_COLUMNS`.

    Raises
    ------
    cimstats.integrate.CodebookError
        Listing every row that lacks a field, names an unknown decision or
        gives a date that is not YYYY-MM-DD, or repeats a pair.

    Examples
    --------
    >>> r = read_reviews([{"hypothesis_id": "H1", "theme_id": "T1", "decision": "confirm",
    ...                    "reviewer": "A. Reviewer", "date": "2026-11-30", "reason": ""}])
    >>> r[["hypothesis_id", "decision", "reviewer"]].values.tolist()
    [['H1', 'confirm', 'A. Reviewer']]
    """
    import pandas as pd

    where = "The reviews"
    if isinstance(reviews, dict) and reviews and all(isinstance(k, tuple) for k in reviews):
        rows = [dict(v, hypothesis_id=k[0], theme_id=k[1]) for k, v in reviews.items()]
        df = pd.DataFrame(rows)
    elif isinstance(reviews, pd.DataFrame):
        df = reviews.copy()
    elif isinstance(reviews, (list, tuple)):
        df = pd.DataFrame(list(reviews))
    elif isinstance(reviews, (str, Path)):
        p = Path(reviews)
        where = f"The review file '{p}'"
        if not p.is_file():
            raise CodebookError(f"The review file '{p}' does not exist; write one with review_template().")
        if p.suffix.lower() in (".yaml", ".yml", ".json"):
            import yaml

            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise CodebookError(f"The review file '{p}' is not valid YAML ({exc}); fix the syntax.") from exc
            if isinstance(data, dict):
                data = data.get("reviews")
            if not isinstance(data, list):
                raise CodebookError(f"The review file '{p}' must hold a list of decisions (or `reviews:` with one); "
                                    f"found {type(data).__name__}.")
            df = pd.DataFrame(data)
        else:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
    else:
        raise CodebookError(f"`reviews` must be a file, a table or a list of decisions; got {type(reviews).__name__}.")
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "decided_by" in df.columns and "reviewer" not in df.columns:
        df = df.rename(columns={"decided_by": "reviewer"})
    missing = [c for c in REVIEW_COLUMNS if c not in df.columns and c != "reason"]
    if missing:
        raise CodebookError(f"{where} lacks column(s) {', '.join(missing)}; expected {', '.join(REVIEW_COLUMNS)}.")
    if "reason" not in df.columns:
        df["reason"] = ""
    report = Report()
    seen = set()
    for k, r in enumerate(df.to_dict("records"), start=1):
        pair = (str(r["hypothesis_id"]).strip(), str(r["theme_id"]).strip())
        for c in ("hypothesis_id", "theme_id", "decision", "reviewer", "date"):
            if _blank(r[c]):
                report.add("V001", f"Review row {k} has no {c}.", row=k, column=c,
                           remedy="Every decision names the pair, the decision, the reviewer and the date.")
        dec = "" if _blank(r["decision"]) else str(r["decision"]).strip().lower()
        if dec and dec != "confirm" and dec not in META_INFERENCES:
            report.add("V002", f"Review row {k} has decision {r['decision']!r}; expected confirm or one of "
                       f"{', '.join(META_INFERENCES)}.", row=k, column="decision")
        if dec and dec != "confirm" and _blank(r["reason"]):
            report.add("V003", f"Review row {k} overrides the suggestion for {pair[0]} x {pair[1]} without a reason.",
                       row=k, column="reason", remedy="Say why in `reason`.")
        d = "" if _blank(r["date"]) else str(r["date"]).strip()[:10]
        if d and not _DATE.match(d):
            report.add("V004", f"Review row {k} has date {r['date']!r}; expected YYYY-MM-DD.", row=k, column="date")
        elif d:
            try:
                pd.Timestamp(d)
            except ValueError:
                report.add("V004", f"Review row {k} has date {r['date']!r}, which is not a calendar date.", row=k,
                           column="date")
        if pair in seen:
            report.add("V005", f"Review row {k} repeats the pair {pair[0]} x {pair[1]}.", row=k,
                       remedy="Keep one decision per hypothesis-theme pair.")
        seen.add(pair)
    if report.has_errors:
        raise CodebookError(f"{where} has {len(report.errors)} problem(s); see `.report` "
                            f"(first: {report.errors[0].message})", report=report)
    out = pd.DataFrame({
        "hypothesis_id": df["hypothesis_id"].astype(str).str.strip(),
        "theme_id": df["theme_id"].astype(str).str.strip(),
        "decision": df["decision"].astype(str).str.strip().str.lower(),
        "reviewer": df["reviewer"].astype(str).str.strip(),
        "date": [str(x).strip()[:10] for x in df["date"]],
        "reason": ["" if _blank(x) else str(x).strip() for x in df["reason"]],
    }, columns=REVIEW_COLUMNS)
    return out.reset_index(drop=True)


def suggest_meta_inferences(pairs, *, rules=None, overrides=None, reviews=None):
    """Suggest a meta-inference for each hypothesis-theme pairing; apply reviewers' decisions.

    Parameters
    ----------
    pairs : pandas.DataFrame
        One row per pairing with ``hypothesis_id``, ``theme_id``,
        ``verdict`` and ``theme_direction`` (``direction`` is accepted): the
        direction expected of that theme for that hypothesis.
    rules : pandas.DataFrame, optional
        Columns ``rule_id, verdict, theme_direction, meta_inference,
        rationale`` (default :data:`DEFAULT_RULES`). Every verdict x
        direction combination met must have exactly one rule.
    overrides : pandas.DataFrame, list of dict or dict, optional
        Decisions by people that replace the rule: rows with
        ``hypothesis_id`` (and optionally ``theme_id``, else all its
        themes), ``meta_inference``, ``decided_by`` (required: a name) and
        ``reason``. A dict ``{(hypothesis_id, theme_id) or hypothesis_id:
        (meta_inference, decided_by[, reason])}`` is also accepted. Prefer
        ``reviews``, which also records the date.
    reviews : path, DataFrame or list of dict, optional
        The review file (see :func:`read_reviews`): a named person confirms
        or overrides each suggestion.

    Returns
    -------
    pandas.DataFrame
        ``pairs`` plus ``meta_inference``, ``convergence``, ``decided_by``
        (``rule:<id>`` or the person), ``rationale``, ``status`` (one of
        :data:`REVIEW_STATUSES`), ``suggested`` (the rule's suggestion),
        ``reviewer``, ``review_date`` and ``review_reason``.

    Examples
    --------
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"hypothesis_id": ["H1", "H2"], "theme_id": ["T1", "T2"],
    ...                       "verdict": ["supported", "not supported"], "theme_direction": ["supports", "supports"]})
    >>> out = suggest_meta_inferences(pairs, reviews=[{"hypothesis_id": "H2", "theme_id": "T2",
    ...     "decision": "expansion", "reviewer": "R. Author", "date": "2026-11-30",
    ...     "reason": "effect only in deprived areas"}])
    >>> out[["meta_inference", "status", "decided_by"]].values.tolist()
    [['confirmation', 'suggested, needs review', 'rule:R1'], ['expansion', 'overridden', 'R. Author']]
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
        d = "none" if _blank(r.theme_direction) else str(r.theme_direction)
        hit = table.get((v, d))
        if hit is None:
            raise CodebookError(f"No rule covers verdict {v!r} with theme direction {d!r} "
                                f"(hypothesis {r.hypothesis_id}, theme {r.theme_id}); add a row to `rules`.")
        out_mi.append(hit[1])
        out_by.append(f"rule:{hit[0]}")
        out_why.append(hit[2])
    df["meta_inference"] = out_mi
    df["suggested"] = out_mi
    df["decided_by"] = out_by
    df["rationale"] = out_why
    df["status"] = _PENDING
    df["reviewer"] = None
    df["review_date"] = None
    df["review_reason"] = None

    # overrides by people (no date recorded)
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
            df.loc[mask, "reviewer"] = str(who)
            df.loc[mask, "status"] = ["confirmed" if s == o["meta_inference"] else "overridden"
                                      for s in df.loc[mask, "suggested"]]
            df.loc[mask, "review_reason"] = str(o.get("reason") or "")
            df.loc[mask, "rationale"] = str(o.get("reason") or "") or "Decided by the research team."
        if report.has_errors:
            raise CodebookError(f"The meta-inference overrides have {len(report.errors)} problem(s); see `.report` "
                                f"(first: {report.errors[0].message})", report=report)
    if reviews is not None:
        rv = read_reviews(reviews)
        report = Report()
        for k, o in enumerate(rv.to_dict("records"), start=1):
            mask = (df["hypothesis_id"].astype(str) == o["hypothesis_id"]) & (df["theme_id"].astype(str) == o["theme_id"])
            if not mask.any():
                report.add("V006", f"Review row {k} names hypothesis {o['hypothesis_id']!r} and theme "
                           f"{o['theme_id']!r}, which are not a pair of this display.", row=k,
                           remedy="Start from review_template(display.meta_inferences).")
                continue
            if o["decision"] == "confirm":
                df.loc[mask, "status"] = "confirmed"
                df.loc[mask, "meta_inference"] = df.loc[mask, "suggested"]
            else:
                df.loc[mask, "status"] = ["confirmed" if s == o["decision"] else "overridden"
                                          for s in df.loc[mask, "suggested"]]
                df.loc[mask, "meta_inference"] = o["decision"]
            df.loc[mask, "decided_by"] = o["reviewer"]
            df.loc[mask, "reviewer"] = o["reviewer"]
            df.loc[mask, "review_date"] = o["date"]
            df.loc[mask, "review_reason"] = o["reason"]
            if o["reason"]:
                df.loc[mask, "rationale"] = o["reason"]
        if report.has_errors:
            raise CodebookError(f"The reviews have {len(report.errors)} problem(s); see `.report` "
                                f"(first: {report.errors[0].message})", report=report)
    df["convergence"] = [CONVERGENCE[m] for m in df["meta_inference"]]
    return df


def combine_convergence(categories) -> str:
    """One convergence code for a theme linked to several hypotheses.

    Silence is ignored when other codes are present; a single remaining
    meta-inference is kept (expansion stays expansion); a mixture of
    different meta-inferences becomes ``partial agreement``, cimstats's own
    code (not a category of Fetters et al. 2013).

    Examples
    --------
    >>> combine_convergence(["confirmation", "silence"]), combine_convergence(["expansion", "expansion"])
    ('confirmation', 'expansion')
    >>> combine_convergence(["confirmation", "discordance"])
    'partial agreement'
    """
    cats = [c for c in categories if c != "silence"]
    if not cats:
        return "silence"
    s = set(cats)
    return cats[0] if len(s) == 1 else "partial agreement"
