"""How faithfully each hypothesis of a plan tests the concept of the text it comes from.

The shipped plan tests mechanisms named in two published syntheses. For every
hypothesis the plan records the text (``text``), the concept of that text
(``concept``), the text's definition quoted exactly (``definition``) and how
the package measures the concept (``operationalisation``, the package's own
choice). :func:`fidelity_table` lays these side by side with a verdict:

``faithful``
    The definition is quoted word for word from the cited text, which defines
    the concept, and the plan judges that the measure captures it.
``partial``
    The definition is quoted word for word, but the text only names the
    concept without defining it further, or the plan judges that the measure
    captures part of it (the reason says which).
``distorted``
    The quoted definition is not found word for word in the cited text, or the
    text has no such concept.
``missing``
    A field is absent or the text is not one of :data:`SOURCES`.

Directions, expected signs and operationalisations are the package's own
additions; the texts give none of them.
"""

from __future__ import annotations

import pandas as pd

from .plan import default_plan, read_mechanism_plan

__all__ = ["SOURCES", "FIDELITY_COLUMNS", "fidelity_table", "fidelity_markdown", "plan_page_markdown"]

#: the texts the shipped plan is built on: citation, the passages quoted (word for word, as retrieved)
#: and the concepts each names, with whether the text defines the concept (True) or only names it
SOURCES: dict[str, dict] = {
    "vassilev2014": {
        "short": "Vassilev et al. 2014 (metasynthesis)",
        "citation": "Vassilev I, Rogers A, Kennedy A, Koetsenruijter J. The influence of social networks on "
                    "self-management support: a metasynthesis. BMC Public Health 2014;14:719. "
                    "doi:10.1186/1471-2458-14-719 (abstract, Results).",
        "passages": (
            "The main themes identified were: 1) sharing knowledge and experiences in a personal community; "
            "2) accessing and mediation of resources; 3) self-management support requires awareness of and "
            "ability to deal with network relationships. These translated into line of argument synthesis in "
            "which three network mechanisms were identified. These were network navigation (identifying and "
            "connecting with relevant existing resources in a network), negotiation within networks (re-shaping "
            "relationships, roles, expectations, means of engagement and communication between network "
            "members), and collective efficacy (developing a shared perception and capacity to successfully "
            "perform behaviour through shared effort, beliefs, influence, perseverance, and objectives).",
        ),
        "concepts": {
            "network navigation": True,
            "negotiation within networks": True,
            "collective efficacy": True,
            "sharing knowledge and experiences in a personal community": False,
            "accessing and mediation of resources": False,
            "self-management support requires awareness of and ability to deal with network relationships": False,
        },
    },
    "ce_metasynthesis": {
        "short": "Meta-synthesis of collective efficacy (studies 1998-2018)",
        "citation": "A qualitative meta-synthesis of collective efficacy in health and well-being (studies "
                    "published 1998-2018), abstract.",
        "passages": (
            "Timing of engagement with others, building trust in the group, and legitimising ongoing engagement "
            "with the group arised as central elements of collective efficacy.",
            "The two themes forming third order constructs were related to the presence of continuous "
            "interaction and ongoing relational work between members of the group.",
            "Collective efficacy can develop and be sustained over time in a range of situations where "
            "individuals may not have intense relationships with one another and have limited commitment and "
            "contact with one another.",
        ),
        "concepts": {
            "timing of engagement with others": False,
            "building trust in the group": False,
            "legitimising ongoing engagement with the group": False,
            "continuous interaction": False,
            "ongoing relational work between members of the group": False,
        },
    },
}

FIDELITY_COLUMNS = ["hypothesis_id", "mechanism", "element", "text", "concept", "definition", "operationalisation",
                    "verdict", "reason"]


def _norm(text: str) -> str:
    return " ".join(str(text).split())


def _verdict(h: dict) -> tuple[str, str]:
    need = [k for k in ("text", "concept", "definition", "operationalisation") if not str(h.get(k) or "").strip()]
    if need:
        return "missing", f"the plan gives no {', '.join(need)}"
    src = SOURCES.get(h["text"])
    if src is None:
        return "missing", f"text {h['text']!r} is not one of the sources ({', '.join(SOURCES)})"
    concept = _norm(h["concept"]).lower()
    concepts = {c.lower(): d for c, d in src["concepts"].items()}
    if concept not in concepts:
        return "distorted", f"{src['short']} names no concept {h['concept']!r}"
    if not any(_norm(h["definition"]) in _norm(p) for p in src["passages"]):
        return "distorted", f"the definition is not quoted word for word from {src['short']}"
    if not concepts[concept]:
        return "partial", (f"{src['short']} names '{h['concept']}' without defining it further; the "
                           "operationalisation is the package's reading of the name")
    if h.get("fidelity") == "partial":
        return "partial", "the measure captures part of the defined concept (judged in the plan)"
    return "faithful", f"quoted from {src['short']}; the measure is the defined process"


def fidelity_table(plan=None) -> pd.DataFrame:
    """The fidelity table of a plan: each hypothesis with its text, concept, quoted definition and measure.

    Parameters
    ----------
    plan : str, path, dict or MechanismPlan, optional
        The analysis plan (default: the shipped plan).

    Returns
    -------
    DataFrame
        One row per hypothesis, columns ``hypothesis_id, mechanism, element,
        text, concept, definition, operationalisation, verdict, reason``;
        ``text`` is the short name of the source (see :data:`SOURCES`),
        ``verdict`` one of ``faithful``, ``partial``, ``distorted``,
        ``missing`` (see the module notes).

    Examples
    --------
    >>> from cimstats.mechanisms.fidelity import fidelity_table
    >>> t = fidelity_table()
    >>> sorted(set(t["verdict"]))
    ['faithful', 'partial']
    """
    plan = default_plan() if plan is None else read_mechanism_plan(plan)
    rows = []
    for h in plan.hypotheses.to_dict("records"):
        verdict, reason = _verdict(h)
        src = SOURCES.get(str(h.get("text") or ""))
        rows.append({"hypothesis_id": h["hypothesis_id"], "mechanism": plan.mechanism_label(h["mechanism"]),
                     "element": h.get("element") or "", "text": src["short"] if src else str(h.get("text") or ""),
                     "concept": h.get("concept") or "", "definition": h.get("definition") or "",
                     "operationalisation": h.get("operationalisation") or "", "verdict": verdict,
                     "reason": reason})
    return pd.DataFrame(rows, columns=FIDELITY_COLUMNS)


def fidelity_markdown(plan=None) -> str:
    """The fidelity table as Markdown (the body of the documentation page on mechanism hypotheses).

    Definitions are quoted exactly from the texts; everything in the
    operationalisation column is the package's own.
    """
    t = fidelity_table(plan)

    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| Hypothesis | Mechanism (element) | Text | Concept | Definition (quoted) | Operationalisation "
             "(the package's own) | Verdict |", "|---|---|---|---|---|---|---|"]
    for r in t.itertuples(index=False):
        mech = r.mechanism + (f" ({r.element})" if r.element else "")
        lines.append(f"| {cell(r.hypothesis_id)} | {cell(mech)} | {cell(r.text)} | {cell(r.concept)} | "
                     f"\"{cell(r.definition)}\" | {cell(r.operationalisation)} | {cell(r.verdict)}: "
                     f"{cell(r.reason)} |")
    return "\n".join(lines) + "\n"


def _and(ids) -> str:
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def _themes_text(directions) -> str:
    if not directions:
        return "none (a measurement check is never linked to a theme)"
    return ", ".join(f"{t} ({d})" if d else f"{t} (the theme's own direction)" for t, d in directions.items())


def plan_page_markdown(plan=None) -> str:
    """The documentation page on the shipped plan's hypotheses (``docs/mechanisms.md``), generated from the plan.

    A test keeps the committed page equal to this text; regenerate the page
    after editing the plan with
    ``python -c "from cimstats.mechanisms.fidelity import plan_page_markdown as p; print(p(), end='')" > docs/mechanisms.md``.
    """
    plan = default_plan() if plan is None else read_mechanism_plan(plan)
    lines = [
        "# Mechanism hypotheses",
        "",
        "<!-- generated by cimstats.mechanisms.fidelity.plan_page_markdown from the shipped plan "
        "(src/cimstats/mechanisms/default_plan.yaml); tests/test_fidelity.py keeps it in sync -->",
        "",
        "The shipped analysis plan tests three network mechanisms named in a metasynthesis of social networks "
        "and chronic-illness self-management support, and the elements of collective efficacy named in a "
        "meta-synthesis of collective efficacy in health and well-being. Every hypothesis tests a process "
        "variable measured for that purpose in the demo study, and the plan records, for each, the text, the "
        "concept, the text's definition quoted exactly and the measure used.",
        "",
        "What comes from the texts and what the package adds:",
        "",
        "- From the texts: the names of the mechanisms, themes and elements, and the quoted definitions.",
        "- The package's own: every statement, expected direction, operationalisation (the measures and "
        "models), the link of each hypothesis to a theme with its expected direction, and the fidelity "
        "verdict. The texts give no directions or measures.",
        "",
        "## Sources",
        "",
    ]
    for key, src in SOURCES.items():
        lines.append(f"- `{key}`: {src['citation']}")
    lines += ["", "## Fidelity table", "",
              "One row per hypothesis (generated by `cimstats.mechanisms.fidelity.fidelity_table`). "
              "*faithful*: the text defines the concept and the measure is the defined process; *partial*: the "
              "text only names the concept (the elements of collective efficacy and the themes are named, not "
              "defined, in the abstracts quoted), or the measure captures part of it.", "",
              fidelity_markdown(plan).rstrip(), "", "## Hypotheses", "",
              "Change hypotheses compare follow-up adjusted for baseline (ANCOVA: models at level `followup` take "
              "the outcome at every follow-up wave and add its baseline value as a covariate by default); "
              "hypotheses on collective efficacy adjust for self-efficacy (SEMCD-6), the competing individual "
              "explanation; deprivation is the national quintile of the country's small-area index, and "
              "individual deprivation the national income quintile and broad education (ISCED).", ""]
    shared = [h.hypothesis_id for h in plan.hypothesis_list()
              if (plan.models.get(h.model) or {}).get("template") == "twolevel_sem"]
    if shared:
        lines += [f"{_and(shared)} {'treats' if len(shared) == 1 else 'treat'} collective efficacy as a property the "
                  "members of a network share: a two-level model (template `twolevel_sem`) of the members' own "
                  "answers, whose network-level factor is the shared perception; the members' agreement (ICC(1), "
                  "ICC(2), rwg(j)) is computed before the model and reported with the estimate, so a reader can "
                  "judge whether aggregating their answers to the network is justified, and the hypothesis is not "
                  "testable when fewer networks than the plan's `min_clusters` have two or more reporting "
                  "members.", ""]
    lines += ["| Hypothesis | Statement | Model | Estimand | Expected | Themes (expected direction) |",
              "|---|---|---|---|---|---|"]
    for h in plan.hypothesis_list():
        cells = [h.hypothesis_id, h.statement, f"`{h.model}`", f"`{h.estimand}`", h.expected,
                 _themes_text(h.theme_directions)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Models", "", "| Model | Template | Level | Specification |", "|---|---|---|---|"]
    for mid, spec in plan.models.items():
        detail = "; ".join(f"{k}: `{v}`" for k, v in spec.items() if k not in ("template", "level"))
        lines.append(f"| `{mid}` | {spec['template']} | {spec.get('level', 'ego')} | "
                     f"{detail.replace('|', chr(92) + '|')} |")
    lines += ["", "## Constructs", "", "| Construct | Kind | Definition |", "|---|---|---|"]
    for cid, spec in plan.constructs.items():
        detail = "; ".join(f"{k}: `{v}`" for k, v in spec.items() if k != "kind")
        lines.append(f"| `{cid}` | {spec['kind']} | {detail} |")
    return "\n".join(lines) + "\n"
