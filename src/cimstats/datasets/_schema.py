"""Render ``SCHEMA.md`` (the harmonised target schema and every country's raw-to-target map)."""

from __future__ import annotations

from cimstats.datasets import _design as D
from cimstats.datasets._countries import COUNTRY_SPECS, HEIQ_QUESTIONNAIRE_ORDER, Mapping, RawColumn
from cimstats.datasets._education import EDUCATION
from cimstats.datasets._generate import DEPRIVATION_INDEX

#: harmonised patient table: (name, type, codes / range, meaning)
PATIENT_SCHEMA = [
    ("patient_id", "string", "`CC-NNNN`, e.g. `EN-0001`", "patient; country prefix + 4-digit number"),
    ("country", "string", "EN, NL, NO, ES, GR, BG", "EN = England (UK), NL = Netherlands, NO = Norway, ES = Spain, GR = Greece, BG = Bulgaria"),
    ("area_id", "string", "`CC-A1`..`CC-A3`", "study area; the digit equals `area_deprivation`"),
    ("area_deprivation", "integer", "1, 2, 3", "1 = most deprived of the country's three areas, 3 = least deprived"),
    ("practice_id", "string", "`CC-PNN`, e.g. `NL-P07`", "GP practice (nested in area)"),
    ("wave", "integer", "0, 1", "0 = baseline, 1 = 12-month follow-up"),
    ("age", "integer", "30-91", "age in years at that wave"),
    ("sex", "integer", "1, 2", "1 = male, 2 = female"),
    ("education_isced", "integer", "0-8", "highest completed education, ISCED 2011 level"),
    ("income_equiv", "float", "EUR per year", "equivalised household income converted to euro at fixed rates"),
    ("deprivation_index", "float", "national units", "the country's own small-area deprivation index (see below); not comparable across countries"),
    ("deprivation_q", "integer", "1-5", "national quintile of `deprivation_index`, 1 = most deprived"),
    ("semcd_1 .. semcd_6", "integer", "1-10", "SEMCD-6 self-efficacy items, higher = more confident"),
    ("ce_1 .. ce_8", "integer", "1-5", "collective efficacy of the personal community, higher = more"),
    ("heiq_smi_1 .. heiq_smi_6", "integer", "1-4", "heiQ-like self-monitoring and insight, higher = more (strongly agree)"),
    ("heiq_hda_1 .. heiq_hda_4", "integer", "1-4", "heiQ-like health-directed activity"),
    ("heiq_hsn_1 .. heiq_hsn_5", "integer", "1-4", "heiQ-like health service navigation"),
    ("eq5d_mo, eq5d_sc, eq5d_ua, eq5d_pd, eq5d_ad", "integer", "1-5", "EQ-5D-5L mobility, self-care, usual activities, pain/discomfort, anxiety/depression; 1 = no problems, 5 = extreme"),
    ("hba1c_mmol", "float", "mmol/mol (IFCC)", "latest HbA1c; % (DCCT) converted with mmol/mol = 10.929 x (% - 2.15)"),
    ("trust_1 .. trust_3", "integer", "1-5", "trust in the group of people who help (instrument `ce_group_process`, score `group_trust`), higher = more"),
    ("legit_1 .. legit_4", "integer", "1-5", "legitimacy of ongoing help: items 1-2 as the patient sees it, 3-4 as the members see it (reported by the patient); higher = more"),
]

ALTER_SCHEMA = [
    ("patient_id", "string", "as in the patient table", "the patient (ego) who named the alter"),
    ("alter_id", "string", "`CC-NNNN-ANN`, e.g. `EN-0001-A03`", "named network member; the same id at both waves"),
    ("wave", "integer", "0, 1", "0 = baseline, 1 = 12-month follow-up"),
    ("circle", "integer", "1, 2, 3", "1 = inner, 2 = middle, 3 = outer circle of importance"),
    ("tie_type", "string", ", ".join(D.TIE_TYPES), "relationship to the patient (weak_tie = acquaintance/neighbour; group = group or organisation)"),
    ("illness_work", "integer", "0, 1", "helps with the illness (diabetes) itself"),
    ("everyday_work", "integer", "0, 1", "helps with everyday tasks"),
    ("emotional_work", "integer", "0, 1", "gives emotional support"),
    ("contact_freq", "integer", "1-5", "1 = less than monthly, 2 = monthly, 3 = fortnightly, 4 = weekly, 5 = daily"),
    ("coresident", "integer", "0, 1", "lives with the patient"),
    ("knowledge_work", "integer", "0, 1", "shares knowledge and experiences about the illness (a kind of support)"),
    ("help_onset", "integer", "1, 2, 3", "when the member began to help: 1 = before or at the diagnosis or health event, 2 = within the first year after it, 3 = later"),
    ("alter_trust", "integer", "1-5", "how much the patient trusts this member with their health"),
    ("n_known_others", "integer", "0 or more", "how many of the patient's other named members this member knows (alter-alter ties)"),
    ("member_ce_1 .. member_ce_4", "integer", "1-5", "collective efficacy of the patient's network as the member sees it (the member's own answers; about 40% of members at baseline, missing for the others and at follow-up); higher = more"),
]

ALTER_TIE_SCHEMA = [
    ("patient_id", "string", "as in the patient table", "the patient (ego) who named both members"),
    ("wave", "integer", "0, 1", "0 = baseline, 1 = 12-month follow-up"),
    ("alter_a", "string", "an `alter_id` of that patient and wave", "first member of the pair (the lower member number)"),
    ("alter_b", "string", "an `alter_id` of that patient and wave", "second member of the pair, who knows the first"),
]

_REASONS = {"no_answer": "no answer / refused", "dont_know": "don't know", "not_recorded": "not recorded"}


def _fmt_map(d: dict, limit: int = 12) -> str:
    items = list(d.items())
    text = ", ".join(f"{k!r}->{v!r}" if isinstance(k, str) or isinstance(v, str) else f"{k}->{v}"
                     for k, v in items[:limit])
    return text + (" ..." if len(items) > limit else "")


def _rule_text(m: Mapping) -> str:
    p = m.params
    if m.rule == "copy":
        return "copy"
    if m.rule == "reverse":
        return f"reverse: {p['min']} + {p['max']} - x"
    if m.rule == "recode":
        return "recode " + _fmt_map(p["map"], 10)
    if m.rule == "linear":
        if p["intercept"]:
            return f"linear: {p['intercept']:.5g} + {p['slope']:.5g} x"
        return f"linear: {p['slope']:.5g} x"
    if m.rule == "format":
        src = f" of ({', '.join(p['sources'])})" if "sources" in p else ""
        return f"format `{p['template']}`{src}"
    if m.rule == "quintile":
        side = "higher = more deprived" if p["higher_is_more_deprived"] else "higher = less deprived"
        return f"quintile, cut points {p['cutpoints']} ({side})"
    return m.rule


def _missing_text(col: RawColumn) -> str:
    parts = []
    if col.missing_range:
        parts.append("range " + ", ".join(f"{lo} to {hi}" for lo, hi in col.missing_range))
    for reason, code in col.missing.items():
        parts.append(f"{code} = {_REASONS.get(reason, reason)}")
    return "; ".join(parts)


def _labels_text(col: RawColumn) -> str:
    if not col.value_labels:
        return ""
    if len(col.value_labels) > 8:
        ks = list(col.value_labels.items())
        return f"{ks[0][0]} '{ks[0][1]}' ... {ks[-1][0]} '{ks[-1][1]}' ({len(ks)} labels)"
    return "; ".join(f"{k} '{v}'" for k, v in col.value_labels.items())


def _esc(text) -> str:
    return str(text).replace("|", "\\|") if text is not None else ""


def render_schema() -> str:
    """The text of ``SCHEMA.md``."""
    L = []
    L.append("# The demo study: harmonised schema and country files\n")
    L.append("Generated from the specification in `cimstats.datasets` (`render_schema()`); "
             "a test checks that this file matches it. The machine-readable form of the "
             "per-country tables is `cimstats.datasets.raw_variable_map()`.\n")
    L.append("The demo study is synthetic: no real patient, practice or interview is described. "
             "It follows the design of a six-country study of personal networks and type 2 "
             "diabetes self-management: 6 countries x 3 areas of contrasting deprivation x 3-4 GP "
             "practices, 1,700 patients at baseline, about 5,000 named network members (alters) placed "
             "in three concentric circles, and a 12-month follow-up of about 73% of patients with "
             "persistent alter ids.\n")
    L.append("## 1. Harmonised target schema\n")
    L.append("### Patient table (one row per patient per wave)\n")
    L.append("| name | type | codes / unit | meaning |\n|---|---|---|---|")
    for r in PATIENT_SCHEMA:
        L.append("| " + " | ".join(_esc(x) for x in r) + " |")
    L.append("\nPatients lost to follow-up have no wave-1 row. Missing values are missing (NaN); the "
             "raw files say why (section 3).\n")
    L.append("### Alter table (one row per named network member per wave)\n")
    L.append("| name | type | codes / unit | meaning |\n|---|---|---|---|")
    for r in ALTER_SCHEMA:
        L.append("| " + " | ".join(_esc(x) for x in r) + " |")
    L.append("\nAn alter named at both waves keeps its `alter_id`; alters of a retained patient named only at "
             "baseline were lost, those named only at follow-up were added. Patients who named nobody "
             "have no alter rows.\n")
    L.append("### Alter-alter tie table (one row per pair of a patient's named members who know each other, per wave)\n")
    L.append("| name | type | codes / unit | meaning |\n|---|---|---|---|")
    for r in ALTER_TIE_SCHEMA:
        L.append("| " + " | ".join(_esc(x) for x in r) + " |")
    L.append("\nThe patient was asked, for every pair of named members, whether the two know each other; a "
             "pair not listed does not. Ties are undirected and each pair is listed once. An alter's "
             "`n_known_others` is the number of pairs that name it, so the two tables agree exactly. "
             "The tie table is what the network measures need for density, Burt's effective size and "
             "constraint, and the Gould-Fernandez brokerage roles (`cimstats.networks.structure`, "
             "`cimstats.networks.brokerage`; see the network measures page of the documentation).\n")
    L.append("### Derived quantities used by the planted truth\n")
    L.append("- `diversity`: number of distinct `tie_type` values among a patient's alters at that wave (0-7; 0 with no network).")
    L.append("- `ce`: mean of `ce_1..ce_8`; `sm`: mean of heiQ items (any heiQ scale); `m = area_deprivation - 2`; `dep_c = 2 - area_deprivation`.")
    L.append("- `realloc`: 1 when an alter named at both waves does a support work type at follow-up that they did not do at baseline.")
    L.append("- See `planted_truth()` for every equation and coefficient.\n")

    L.append("## 2. Files\n")
    L.append("| country | team language | format | files | waves |\n|---|---|---|---|---|")
    for cc, spec in COUNTRY_SPECS.items():
        files = ", ".join(f"`{f}`" for f, _, _ in spec.files())
        waves = "one file per wave" if spec.split_waves else "both waves in one file (wave variable)"
        L.append(f"| {cc} {spec.name} | {spec.language} | .{spec.format} | {files} | {waves} |")
    L.append("\nAll files are UTF-8. SPSS files declare user-missing codes (discrete or a range); "
             "Stata files use extended missing values `.a` (no answer) and `.b` (don't know). A blank "
             "(system-missing) value means not recorded (HbA1c) or not asked.\n")

    L.append("## 3. Raw variable -> target, per country\n")
    L.append("Rules: `copy`; `recode a->b`; `reverse: min + max - x` (scale keyed the other way); "
             "`linear` (unit or currency conversion); `format` (identifiers, Python format template); "
             "`quintile` (national quintile from cut points, a value equal to a cut point belongs to "
             "the lower interval, 1 = most deprived); `constant` (file holds one wave).\n")
    for cc, spec in COUNTRY_SPECS.items():
        L.append(f"### {cc}: {spec.name} ({spec.language}, .{spec.format})\n")
        dep = DEPRIVATION_INDEX[cc]
        L.append(f"Deprivation index `{dep['name']}`: {dep['label']}. Income in {D.CURRENCY[cc]} per year "
                 f"(x {D.EUR_PER_UNIT[D.CURRENCY[cc]]} = EUR). HbA1c in {D.HBA1C_UNIT[cc]}.\n")
        for kind in spec.kinds():
            cols = spec.columns(kind)
            files = [f for f, k, _ in spec.files() if k == kind]
            L.append(f"**{kind} file{'s' if len(files) > 1 else ''}**: {', '.join('`' + f + '`' for f in files)}\n")
            L.append("| raw name | target | rule | value labels | missing codes | direction / unit | label |")
            L.append("|---|---|---|---|---|---|---|")
            for col in cols:
                for i, m in enumerate(col.maps):
                    L.append("| " + " | ".join(_esc(x) for x in (
                        f"`{col.name}`" + (" (string)" if col.storage == "string" else ""), m.target,
                        _rule_text(m), _labels_text(col) if i == 0 else "(as above)",
                        _missing_text(col) if i == 0 else "",
                        "; ".join(x for x in (col.direction, col.unit) if x), col.label if i == 0 else "")) + " |")
            if spec.split_waves:
                for f, k, w in spec.files():
                    if k == kind:
                        L.append(f"| (none) | wave | constant {w} in `{f}` |  |  |  |  |")
            L.append("")
        L.append("Education (national code -> ISCED 2011): " + "; ".join(
            f"{c[0]} '{c[1]}' -> {c[2]}" for c in EDUCATION[cc]) + ".\n")
    L.append("### heiQ item order of the NO, GR and BG questionnaires\n")
    L.append("`heiq01..heiq15` are numbered by position in the questionnaire: " + ", ".join(
        f"heiq{i:02d} = {t}" for i, t in enumerate(HEIQ_QUESTIONNAIRE_ORDER, 1)) + ".\n")
    L.append("## 4. Other demo files\n")
    L.append("- `themes.yaml`: the theme codebook (themes, mechanisms with definitions, central elements "
             "of collective efficacy, links to quantitative constructs) and invented interview excerpts "
             "linked to participant ids (`CC-NNNN` ids are also surveyed; `CC-Qnn` ids were interviewed only).")
    L.append("- `coded_excerpts.csv`: one row per coded excerpt: `excerpt_id, participant_id, country, surveyed, "
             "theme, theme_name, code, code_name, mechanism, element, excerpt, invented`.")
    L.append("- `planted_truth.json`: `{seed, parameters: planted_truth(), realised: per-country counts}`; "
             "`summary.txt` and `summary.md`: counts per country and the file list.")
    L.append("- Output layout of `cimstats demo --out DIR`: `raw/` (country files), `qualitative/` (themes.yaml, "
             "coded_excerpts.csv), `truth/planted_truth.json`, `SCHEMA.md`, `summary.txt`, `summary.md`.\n")
    return "\n".join(L)
