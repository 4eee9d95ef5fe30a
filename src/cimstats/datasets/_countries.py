"""How each country's team wrote its files: raw names, codes, labels, missing codes.

Each raw column is a :class:`RawColumn`: its name, variable label, value labels,
declared missing codes (by reason), and one or more :class:`Mapping` rows
saying how the harmonised (target) variable is obtained from it. The same
specification builds the raw files (target -> raw) and documents the
harmonisation (raw -> target) in ``SCHEMA.md`` and :func:`raw_variable_map`.

Mapping rules (raw value ``x`` -> target value):

``copy``      target = x
``recode``    target = ``map[x]``
``reverse``   target = ``min + max - x`` (a scale keyed the other way)
``linear``    target = ``intercept + slope * x`` (unit conversion)
``format``    target = ``template.format(x, ...)`` (identifiers; ``sources`` lists the raw columns)
``quintile``  target = national quintile (1 = most deprived) of the index ``x`` via ``cutpoints``
              (a value equal to a cut point belongs to the lower interval)
``constant``  target = ``value`` (the file holds one wave only; no raw column)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cimstats.datasets import _design as D
from cimstats.datasets._education import EDUCATION
from cimstats.datasets._generate import (
    CE, DEPRIVATION_INDEX, EQ5D, HEIQ_HDA, HEIQ_HSN, HEIQ_SMI, LEGIT, MEMBER_CE, MEMBER_CE_TEXT, SEMCD, TRUST,
)
from cimstats.datasets._lang import LANG
from cimstats.io import VariableMeta


@dataclass(frozen=True)
class Mapping:
    """How one target variable is obtained from a raw column."""

    target: str
    rule: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RawColumn:
    """One column of a country's raw file."""

    name: str
    label: str
    maps: tuple[Mapping, ...]
    value_labels: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)   # reason -> code ("no_answer", "dont_know", "not_applicable")
    missing_range: tuple | None = None             # SPSS user-missing range declared instead of discrete codes
    storage: str = "numeric"
    measure: str = "scale"
    unit: str | None = None
    direction: str | None = None                   # "same" or "reversed" relative to the target
    source: str | None = None                      # latent column holding the raw value, if not derived from target


@dataclass(frozen=True)
class CountrySpec:
    code: str
    name: str
    language: str
    format: str                    # "sav" or "dta"
    split_waves: bool
    patient: tuple[RawColumn, ...]
    alter: tuple[RawColumn, ...]
    wave_constant: bool = False    # True when each file holds one wave (split_waves)
    tie: tuple[RawColumn, ...] = ()  # the alter-alter tie file (pairs of members who know each other)

    def kinds(self) -> tuple[str, ...]:
        """The kinds of file this team delivered: patients, alters and (when specified) ties."""
        return ("patients", "alters") + (("ties",) if self.tie else ())

    def columns(self, kind: str) -> tuple[RawColumn, ...]:
        """The raw columns of one kind of file."""
        return {"patients": self.patient, "alters": self.alter, "ties": self.tie}[kind]

    def files(self) -> list[tuple[str, str, int | None]]:
        """(file name, kind, wave) of each file this team delivered."""
        ext = self.format
        if self.split_waves:
            return [(f"{self.code}_{kind}_{w}.{ext}", kind, wv)
                    for kind in self.kinds() for w, wv in (("baseline", 0), ("followup", 1))]
        return [(f"{self.code}_{kind}.{ext}", kind, None) for kind in self.kinds()]


#: heiQ questionnaire order used by teams that numbered items by position (heiq01..heiq15)
HEIQ_QUESTIONNAIRE_ORDER = (
    "heiq_hda_1", "heiq_smi_1", "heiq_hsn_1", "heiq_smi_2", "heiq_hda_2", "heiq_hsn_2", "heiq_smi_3",
    "heiq_hda_3", "heiq_hsn_3", "heiq_smi_4", "heiq_hsn_4", "heiq_smi_5", "heiq_hda_4", "heiq_hsn_5",
    "heiq_smi_6",
)

_ITEM_LABELS = {
    **{f"semcd_{k}": t for k, t in enumerate((
        "keep fatigue from interfering", "keep pain or discomfort from interfering",
        "keep emotional distress from interfering", "keep other symptoms from interfering",
        "do tasks to reduce need to see a doctor", "do things other than medication to reduce illness impact"), 1)},
    **{f"ce_{k}": t for k, t in enumerate((
        "people close to me and I can work together on my diabetes",
        "we can rely on each other when my health gets worse",
        "together we can find the help I need",
        "we can agree who does what when I need support",
        "we keep going even when managing my illness is hard",
        "we share the same goals for my health",
        "I trust the people around me to act when needed",
        "we can change how we do things when my needs change"), 1)},
    **{f"heiq_smi_{k}": f"self-monitoring and insight, item {k}" for k in range(1, 7)},
    **{f"heiq_hda_{k}": f"health-directed activity, item {k}" for k in range(1, 5)},
    **{f"heiq_hsn_{k}": f"health service navigation, item {k}" for k in range(1, 6)},
    **{f"trust_{k}": t for k, t in enumerate((
        "I can count on the people around me to do what they say they will do for my health",
        "the people who help me are honest with me and with each other about my illness",
        "I trust the group of people around me to act together when I need it"), 1)},
    **{f"legit_{k}": t for k, t in enumerate((
        "it feels right to me to keep accepting help from the people around me",
        "I do not feel I ask too much when I keep asking them for help",
        "the people who help me see continuing to help as a normal part of our relationship",
        "the people around me feel it is their place to keep helping with my illness"), 1)},
    "eq5d_mo": "mobility", "eq5d_sc": "self-care", "eq5d_ua": "usual activities",
    "eq5d_pd": "pain / discomfort", "eq5d_ad": "anxiety / depression",
}


def _scale_labels(lo: int, hi: int, anchors: tuple, reversed_: bool) -> dict:
    """Value labels of raw codes; ``anchors`` are in target order (all points or the two ends)."""
    if len(anchors) == hi - lo + 1:
        target = dict(zip(range(lo, hi + 1), anchors))
    else:
        target = {lo: anchors[0], hi: anchors[-1]}
    if not reversed_:
        return target
    return dict(sorted((lo + hi - t, lab) for t, lab in target.items()))


def _items(cc, names, targets, lo, hi, anchors, *, reversed_=False, missing=None, missing_range=None,
           stem="", measure="ordinal"):
    lang = LANG[cc]
    out = []
    for pos, (raw, tgt) in enumerate(zip(names, targets), 1):
        rule = Mapping(tgt, "reverse", {"min": lo, "max": hi}) if reversed_ else Mapping(tgt, "copy")
        text = _ITEM_LABELS.get(tgt, tgt.replace("_", " "))
        labels = _scale_labels(lo, hi, anchors, reversed_)
        miss = dict(missing or {})
        for reason, code in miss.items():
            if not str(code).startswith("."):
                labels[code] = lang[reason]
        label = f"{stem}: {text}" if cc == "EN" else f"{stem} {pos}"
        out.append(RawColumn(raw, label, (rule,), labels, miss,
                             missing_range, measure=measure, direction="reversed" if reversed_ else "same"))
    return out


def _yesno(cc, name, target, codes: tuple, label_key, missing=None):
    """codes = (code for yes, code for no)."""
    lang = LANG[cc]
    yes, no = codes
    return RawColumn(name, lang["vars"][label_key], (Mapping(target, "recode", {"map": {yes: 1, no: 0}}),),
                     {yes: lang["yes"], no: lang["no"]} if not isinstance(yes, str) else {},
                     dict(missing or {}), storage="string" if isinstance(yes, str) else "numeric",
                     measure="nominal", direction="same")


def _education(cc, name, missing):
    lang = LANG[cc]
    cats = EDUCATION[cc]
    labels = {c[0]: c[1] for c in cats}
    for reason, code in missing.items():
        if not str(code).startswith("."):
            labels[code] = lang[reason]
    return RawColumn(name, lang["vars"]["educ"],
                     (Mapping("education_isced", "recode", {"map": {c[0]: c[2] for c in cats}}),),
                     labels, dict(missing), measure="ordinal", source="education_national")


def _deprivation(cc, name):
    spec = DEPRIVATION_INDEX[cc]
    if spec["kind"] == "decile":
        worst_first = (lambda d: 11 - d) if spec["higher_is_more_deprived"] else (lambda d: d)
        q = Mapping("deprivation_q", "recode", {"map": {d: int(np.ceil(worst_first(d) / 2)) for d in range(1, 11)}})
    else:
        q = Mapping("deprivation_q", "quintile", {"cutpoints": list(spec["cutpoints"]),
                                                  "higher_is_more_deprived": spec["higher_is_more_deprived"]})
    return RawColumn(name, spec["label"], (Mapping("deprivation_index", "copy"), q),
                     measure="ordinal" if spec["kind"] == "decile" else "scale",
                     direction="higher = more deprived" if spec["higher_is_more_deprived"] else "higher = less deprived")


def _build(cc, *, fmt, split, names, sex, area, wave, miss, income_missing, edu_missing, reverse,
           heiq_names, alter_names, circle, ties, work_codes, contact_reversed, coresident_codes, alter_miss):
    lang = LANG[cc]
    v = lang["vars"]
    P = []
    P.append(RawColumn(names["id"], v["id"], (Mapping("patient_id", "format", {"template": cc + "-{:04d}"}),),
                       measure="nominal", source="local_no"))
    P.append(RawColumn(names["practice"], v["practice"],
                       (Mapping("practice_id", "format", {"template": cc + "-P{:02d}"}),),
                       measure="nominal", source="practice_no"))
    area_codes, area_map = area
    P.append(RawColumn(names["area"], v["area"],
                       (Mapping("area_deprivation", "recode", {"map": dict(area_map)}),
                        Mapping("area_id", "recode", {"map": {r: f"{cc}-A{t}" for r, t in area_map.items()}})),
                       dict(zip(area_codes, lang["area_labels"])), measure="nominal"))
    if wave is not None:
        wname, wmap, wlabels, wstorage = wave
        P.append(RawColumn(wname, v["wave"], (Mapping("wave", "recode", {"map": dict(wmap)}),),
                           wlabels, storage=wstorage, measure="ordinal"))
    P.append(RawColumn(names["age"], v["age"], (Mapping("age", "copy"),), unit="years"))
    smap, slabels = sex
    P.append(RawColumn(names["sex"], v["sex"], (Mapping("sex", "recode", {"map": dict(smap)}),), slabels,
                       storage="string" if isinstance(next(iter(smap)), str) else "numeric", measure="nominal"))
    P.append(_education(cc, names["educ"], edu_missing))
    cur = D.CURRENCY[cc]
    P.append(RawColumn(names["income"], v["income"],
                       (Mapping("income_equiv", "linear", {"intercept": 0.0, "slope": D.EUR_PER_UNIT[cur]}),),
                       {} if str(next(iter(income_missing.values()))).startswith(".") else
                       {c: lang[r] for r, c in income_missing.items()},
                       dict(income_missing), unit=f"{cur} per year", source="income_national"))
    P.append(_deprivation(cc, names["dep"]))
    agree_missing = miss["agree"]
    P += _items(cc, names["semcd"], SEMCD, 1, 10, lang["semcd"], reversed_="semcd" in reverse,
                missing=miss["semcd"], missing_range=miss.get("range"), stem=v["semcd"])
    P += _items(cc, names["ce"], CE, 1, 5, lang["agree5"], reversed_="ce" in reverse,
                missing=agree_missing, missing_range=miss.get("range"), stem=v["ce"])
    P += _items(cc, heiq_names[0], heiq_names[1], 1, 4, lang["agree4"], reversed_="heiq" in reverse,
                missing=agree_missing, missing_range=miss.get("range"), stem=v["heiq"])
    P += _items(cc, names["eq5d"], EQ5D, 1, 5, lang["eq5d"], reversed_=False,
                missing={"no_answer": agree_missing["no_answer"]}, missing_range=miss.get("range"),
                stem=v["eq5d"])
    if D.HBA1C_UNIT[cc] == "%":
        hb = Mapping("hba1c_mmol", "linear", {"intercept": -2.15 * 10.929, "slope": 10.929})
        unit = "% (DCCT/NGSP)"
    else:
        hb = Mapping("hba1c_mmol", "copy")
        unit = "mmol/mol (IFCC)"
    P.append(RawColumn(names["hba1c"], v["hba1c"], (hb,), unit=unit, source="hba1c_raw"))
    # group-process items (added to every team's questionnaire in the same form: raw name = target name)
    P += _items(cc, TRUST + LEGIT, TRUST + LEGIT, 1, 5, lang["agree5"], missing=agree_missing,
                missing_range=miss.get("range"), stem="Group processes")

    A = []
    A.append(RawColumn(alter_names["id"], v["id"], (Mapping("patient_id", "format", {"template": cc + "-{:04d}"}),),
                       measure="nominal", source="local_no"))
    A.append(RawColumn(alter_names["alter"], v["alter"],
                       (Mapping("alter_id", "format", {"template": cc + "-{:04d}-A{:02d}",
                                                       "sources": [alter_names["id"], alter_names["alter"]]}),),
                       measure="nominal", source="alter_no"))
    if wave is not None:
        A.append(RawColumn(wname, v["wave"], (Mapping("wave", "recode", {"map": dict(wmap)}),),
                           wlabels, storage=wstorage, measure="ordinal"))
    circ_rev = circle == "reversed"
    A.append(RawColumn(alter_names["circle"], v["circle"],
                       (Mapping("circle", "reverse", {"min": 1, "max": 3}) if circ_rev else Mapping("circle", "copy"),),
                       _scale_labels(1, 3, lang["circle"], circ_rev), measure="ordinal",
                       direction="reversed" if circ_rev else "same"))
    A.append(RawColumn(alter_names["tie"], v["tie"], (Mapping("tie_type", "recode", {"map": dict(ties)}),),
                       {code: lang["ties"][t] for code, t in ties.items()}, measure="nominal"))
    for key in D.WORK_TYPES:
        A.append(_yesno(cc, alter_names[key], key, work_codes, key))
    cmiss = dict(alter_miss)
    clabels = _scale_labels(1, 5, lang["contact"], contact_reversed)
    for r, c in cmiss.items():
        if not str(c).startswith("."):
            clabels[c] = lang[r]
    A.append(RawColumn(alter_names["contact"], v["contact"],
                       (Mapping("contact_freq", "reverse", {"min": 1, "max": 5}) if contact_reversed
                        else Mapping("contact_freq", "copy"),),
                       clabels, cmiss, measure="ordinal", direction="reversed" if contact_reversed else "same"))
    A.append(_yesno(cc, alter_names["coresident"], "coresident", coresident_codes, "coresident"))
    A.extend(_process_alter_columns(cc))
    # the alter-alter tie file: one row per pair of named members who know each other
    T = [RawColumn(alter_names["id"], v["id"], (Mapping("patient_id", "format", {"template": cc + "-{:04d}"}),),
                   measure="nominal", source="local_no")]
    if wave is not None:
        T.append(RawColumn(wname, v["wave"], (Mapping("wave", "recode", {"map": dict(wmap)}),),
                           wlabels, storage=wstorage, measure="ordinal"))
    for end, (name, label) in zip(("a", "b"), TIE_COLUMNS[cc]):
        T.append(RawColumn(name, label, (Mapping(f"alter_{end}", "format", {"template": cc + "-{:04d}-A{:02d}",
                                                                             "sources": [alter_names["id"], name]}),),
                           measure="nominal", source=f"alter_no_{end}"))
    return CountrySpec(cc, D.COUNTRY_NAMES[cc], {"EN": "English", "NL": "Dutch", "NO": "Norwegian",
                                                  "ES": "Spanish", "GR": "Greek", "BG": "Bulgarian"}[cc],
                       fmt, split, tuple(P), tuple(A), wave_constant=split, tie=tuple(T))


#: raw names and labels of the two members of a pair in each team's tie file (the lower member number first)
TIE_COLUMNS = {
    "EN": (("alter_no_a", "First member of the pair (member number)"),
           ("alter_no_b", "Second member of the pair, who knows the first (member number)")),
    "NL": (("alter_nr_1", "Eerste netwerklid van het paar (alternummer)"),
           ("alter_nr_2", "Tweede netwerklid van het paar, dat het eerste kent (alternummer)")),
    "NO": (("alter_1", "Første nettverksmedlem i paret (nummer)"),
           ("alter_2", "Andre nettverksmedlem i paret, som kjenner det første (nummer)")),
    "ES": (("contacto_a", "Primer contacto del par (número de contacto)"),
           ("contacto_b", "Segundo contacto del par, que conoce al primero (número de contacto)")),
    "GR": (("melos_a", "Πρώτο μέλος του ζεύγους (αριθμός μέλους)"),
           ("melos_b", "Δεύτερο μέλος του ζεύγους, που γνωρίζει το πρώτο (αριθμός μέλους)")),
    "BG": (("chlen_1", "Първи член на двойката (номер)"),
           ("chlen_2", "Втори член на двойката, който познава първия (номер)")),
}


def _process_alter_columns(cc) -> list[RawColumn]:
    """Alter questions on support processes, asked by every team in the same form (raw name = target name)."""
    lang = LANG[cc]
    return [
        RawColumn("knowledge_work", "Shares knowledge and experiences about the illness",
                  (Mapping("knowledge_work", "copy"),), {1: lang["yes"], 0: lang["no"]}, measure="nominal",
                  direction="same"),
        RawColumn("help_onset", "When this member began to help, relative to the diagnosis or health event",
                  (Mapping("help_onset", "copy"),),
                  {1: "before or at the diagnosis / health event", 2: "within the first year after it",
                   3: "more than a year after it"}, measure="ordinal", direction="same"),
        RawColumn("alter_trust", "How much the patient trusts this member with their health (1-5)",
                  (Mapping("alter_trust", "copy"),), {1: "not at all", 5: "completely"}, measure="ordinal",
                  direction="same"),
        RawColumn("n_known_others", "How many of the other named members this member knows",
                  (Mapping("n_known_others", "copy"),), measure="scale", direction="same"),
    ] + [
        RawColumn(name, f"Member's own view (1-5): {text}",
                  (Mapping(name, "copy"),), {1: "strongly disagree", 5: "strongly agree"}, measure="ordinal",
                  direction="same")
        for name, text in zip(MEMBER_CE, MEMBER_CE_TEXT)
    ]


def _num(prefix, k, start=1, sep=""):
    return [f"{prefix}{sep}{i}" for i in range(start, start + k)]


_TIES_STD = {1: "partner", 2: "family", 3: "friend", 4: "weak_tie", 5: "group", 6: "professional", 7: "pet"}


def _specs() -> dict[str, CountrySpec]:
    heiq_pos = ([f"heiq{i:02d}" for i in range(1, 16)], list(HEIQ_QUESTIONNAIRE_ORDER))
    S = {}
    S["EN"] = _build(
        "EN", fmt="sav", split=True,
        names=dict(id="pid", practice="practice", area="area", age="age", sex="sex", educ="educ",
                   income="eqinc", dep="imd_decile", hba1c="hba1c",
                   semcd=_num("se", 6), ce=_num("ce", 8),
                   eq5d=["mobility", "selfcare", "usualact", "pain", "anxiety"]),
        sex=({1: 1, 2: 2}, {1: "Male", 2: "Female"}),
        area=((1, 2, 3), {1: 1, 2: 2, 3: 3}), wave=None,
        miss={"semcd": {"no_answer": 99, "dont_know": 98}, "agree": {"no_answer": 99, "dont_know": 98}},
        income_missing={"no_answer": -9}, edu_missing={"no_answer": 99}, reverse=(),
        heiq_names=(_num("hq_smi", 6) + _num("hq_hda", 4) + _num("hq_hsn", 5), HEIQ_SMI + HEIQ_HDA + HEIQ_HSN),
        alter_names=dict(id="pid", alter="alter_no", circle="circle", tie="tie", illness_work="ill_work",
                         everyday_work="day_work", emotional_work="emo_work", contact="contact",
                         coresident="coresid"),
        circle="same", ties=_TIES_STD, work_codes=(1, 0), contact_reversed=True, coresident_codes=(1, 0),
        alter_miss={"no_answer": 9})
    S["NL"] = _build(
        "NL", fmt="sav", split=False,
        names=dict(id="respnr", practice="praktijk", area="wijk", age="leeftijd", sex="geslacht",
                   educ="opleiding", income="inkomen", dep="statusscore", hba1c="hba1c",
                   semcd=_num("zeff_", 6), ce=_num("ke_", 8),
                   eq5d=["eq_mob", "eq_zorg", "eq_dagact", "eq_pijn", "eq_angst"]),
        sex=({0: 1, 1: 2}, {0: "Man", 1: "Vrouw"}),
        area=((1, 2, 3), {1: 3, 2: 2, 3: 1}),
        wave=("meting", {1: 0, 2: 1}, {1: "Nulmeting", 2: "Follow-up 12 maanden"}, "numeric"),
        miss={"semcd": {"no_answer": -9, "dont_know": -8}, "agree": {"no_answer": -9, "dont_know": -8},
              "range": ((-9, -1),)},
        income_missing={"no_answer": -9}, edu_missing={"no_answer": -9}, reverse=("ce",),
        heiq_names=(_num("heiq_zi", 6) + _num("heiq_ga", 4) + _num("heiq_nz", 5), HEIQ_SMI + HEIQ_HDA + HEIQ_HSN),
        alter_names=dict(id="respnr", alter="alter_nr", circle="cirkel", tie="relatie", illness_work="ziektewerk",
                         everyday_work="dagelijks_werk", emotional_work="emotioneel_werk", contact="contact",
                         coresident="samenwonend"),
        circle="same", ties={1: "family", 2: "partner", 3: "friend", 4: "weak_tie", 5: "group",
                             6: "professional", 7: "pet"},
        work_codes=(1, 2), contact_reversed=False, coresident_codes=(1, 2), alter_miss={"no_answer": -9})
    S["NO"] = _build(
        "NO", fmt="dta", split=False,
        names=dict(id="id", practice="legekontor", area="omrade", age="alder", sex="kjonn", educ="utdanning",
                   income="inntekt", dep="levekar", hba1c="hba1c_pst",
                   semcd=_num("mestring", 6), ce=_num("kollektiv", 8),
                   eq5d=["eq_gange", "eq_personlig", "eq_vanlig", "eq_smerte", "eq_angst"]),
        sex=({"M": 1, "K": 2}, {}),
        area=((10, 20, 30), {10: 1, 20: 2, 30: 3}),
        wave=("bolge", {0: 0, 12: 1}, {0: "Baseline", 12: "12 måneder"}, "numeric"),
        miss={"semcd": {"no_answer": ".a", "dont_know": ".b"}, "agree": {"no_answer": ".a", "dont_know": ".b"}},
        income_missing={"no_answer": ".a"}, edu_missing={"no_answer": ".a"}, reverse=(),
        heiq_names=heiq_pos,
        alter_names=dict(id="id", alter="alter", circle="sirkel", tie="relasjon", illness_work="sykdomsarbeid",
                         everyday_work="hverdagsarbeid", emotional_work="emosjonelt_arbeid", contact="kontakt",
                         coresident="bor_sammen"),
        circle="same", ties=_TIES_STD, work_codes=(1, 0), contact_reversed=False, coresident_codes=(1, 0),
        alter_miss={"no_answer": ".a"})
    S["ES"] = _build(
        "ES", fmt="sav", split=True,
        names=dict(id="id_paciente", practice="centro", area="zona", age="edad", sex="sexo", educ="estudios",
                   income="ingresos", dep="medea", hba1c="hba1c",
                   semcd=_num("autoef_", 6), ce=_num("ec_", 8),
                   eq5d=["eq_movilidad", "eq_cuidado", "eq_actividades", "eq_dolor", "eq_ansiedad"]),
        sex=({1: 2, 2: 1}, {1: "Mujer", 2: "Hombre"}),
        area=((1, 2, 3), {1: 2, 2: 1, 3: 3}), wave=None,
        miss={"semcd": {"no_answer": 99, "dont_know": 99}, "agree": {"no_answer": 9, "dont_know": 9}},
        income_missing={"no_answer": -1}, edu_missing={"no_answer": 9}, reverse=(),
        heiq_names=(_num("heiq_am", 6) + _num("heiq_as", 4) + _num("heiq_ns", 5), HEIQ_SMI + HEIQ_HDA + HEIQ_HSN),
        alter_names=dict(id="id_paciente", alter="id_contacto", circle="circulo", tie="vinculo",
                         illness_work="trabajo_enfermedad", everyday_work="trabajo_cotidiano",
                         emotional_work="trabajo_emocional", contact="frecuencia", coresident="convive"),
        circle="same", ties=_TIES_STD, work_codes=(1, 2), contact_reversed=True, coresident_codes=(1, 2),
        alter_miss={"no_answer": 9})
    S["GR"] = _build(
        "GR", fmt="dta", split=False,
        names=dict(id="kodikos", practice="iatreio", area="periochi", age="ilikia", sex="fylo", educ="ekpaideusi",
                   income="eisodima", dep="deiktis", hba1c="hba1c",
                   semcd=_num("aftoapotel_", 6), ce=_num("syll_", 8),
                   eq5d=["eq_kinisi", "eq_frontida", "eq_drast", "eq_ponos", "eq_agxos"]),
        sex=({1: 1, 2: 2}, {1: "Άνδρας", 2: "Γυναίκα"}),
        area=((1, 2, 3), {1: 1, 2: 2, 3: 3}),
        wave=("kyma", {1: 0, 2: 1}, {1: "Αρχική μέτρηση", 2: "12 μήνες"}, "numeric"),
        miss={"semcd": {"no_answer": ".a", "dont_know": ".b"}, "agree": {"no_answer": ".a", "dont_know": ".b"}},
        income_missing={"no_answer": ".a"}, edu_missing={"no_answer": ".a"}, reverse=("semcd",),
        heiq_names=heiq_pos,
        alter_names=dict(id="kodikos", alter="melos", circle="kyklos", tie="sxesi", illness_work="ergasia_astheneias",
                         everyday_work="kathimerini_ergasia", emotional_work="synaisthimatiki_ergasia",
                         contact="epafi", coresident="synoikei"),
        circle="reversed", ties=_TIES_STD, work_codes=(1, 0), contact_reversed=False, coresident_codes=(1, 0),
        alter_miss={"no_answer": ".a"})
    S["BG"] = _build(
        "BG", fmt="dta", split=False,
        names=dict(id="nomer", practice="praktika", area="rayon", age="vazrast", sex="pol", educ="obrazovanie",
                   income="dohod", dep="bednost", hba1c="hba1c",
                   semcd=_num("samoef_", 6), ce=_num("kolektiv_", 8),
                   eq5d=["eq_dvizhenie", "eq_grizha", "eq_deynosti", "eq_bolka", "eq_trevozhnost"]),
        sex=({0: 1, 1: 2}, {0: "Мъж", 1: "Жена"}),
        area=((1, 2, 3), {1: 3, 2: 2, 3: 1}),
        wave=("vulna", {"T1": 0, "T2": 1}, {}, "string"),
        miss={"semcd": {"no_answer": ".a", "dont_know": ".b"}, "agree": {"no_answer": ".a", "dont_know": ".b"}},
        income_missing={"no_answer": ".a"}, edu_missing={"no_answer": ".a"}, reverse=("heiq",),
        heiq_names=heiq_pos,
        alter_names=dict(id="nomer", alter="chlen", circle="krug", tie="vruzka", illness_work="bolest_rabota",
                         everyday_work="ezhednevna_rabota", emotional_work="emocionalna_rabota",
                         contact="kontakt", coresident="zhivee_zaedno"),
        circle="same", ties=_TIES_STD, work_codes=(1, 0), contact_reversed=False, coresident_codes=(1, 0),
        alter_miss={"no_answer": ".a"})
    return S


COUNTRY_SPECS: dict[str, CountrySpec] = _specs()


# ---------------------------------------------------------------------------- encoding
def _encode(col: RawColumn, target: pd.DataFrame, latent: pd.DataFrame) -> np.ndarray:
    """Raw values of one column from harmonised values (inverse of its first mapping)."""
    m = col.maps[0]
    if col.source is not None:
        return latent[col.source].to_numpy()
    x = target[m.target]
    if m.rule == "copy":
        return x.to_numpy()
    if m.rule == "reverse":
        return (m.params["min"] + m.params["max"] - x).to_numpy()
    if m.rule == "recode":
        inverse = {t: r for r, t in m.params["map"].items()}
        return x.map(inverse).to_numpy()
    raise ValueError(f"no encoder for rule {m.rule}")  # pragma: no cover - specification error


def raw_frame(spec: CountrySpec, kind: str, target: pd.DataFrame, latent: pd.DataFrame,
              reasons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One country file kind as (analysis values, missing-code record, metadata).

    ``target``, ``latent`` and ``reasons`` are row-aligned (same length and
    order). The analysis values hold missing cells as missing; the record
    holds the team's missing code of each declared-missing cell (``None``
    elsewhere), as :class:`cimstats.io.Survey` keeps them.
    """

    cols = spec.columns(kind)
    data, record, meta = {}, {}, {}
    n = len(target)
    for col in cols:
        values = _encode(col, target, latent)
        tgt = col.maps[0].target
        string = col.storage == "string"
        arr = np.array(values, dtype=object) if string else np.array(values, dtype=float)
        if tgt in reasons.columns:
            r = reasons[tgt].to_numpy()
            gone = pd.notna(r)
            if gone.any():
                arr[gone] = None if string else np.nan
                codes = np.full(n, None, dtype=object)
                for reason, code in col.missing.items():
                    codes[r == reason] = code
                if pd.notna(codes).any():  # reasons without a declared code stay blank (system-missing)
                    record[col.name] = codes
        data[col.name] = arr
        declared = tuple(sorted(set(col.missing.values()), key=str)) if col.missing_range is None else ()
        meta[col.name] = VariableMeta(
            col.name, label=col.label, value_labels=dict(col.value_labels), measure=col.measure,
            missing_codes=declared, missing_ranges=col.missing_range or (), storage=col.storage,
        )
    df = pd.DataFrame(data)
    miss = pd.DataFrame(record, index=df.index, dtype=object)
    return df, miss, meta


def variable_map() -> pd.DataFrame:
    """One row per (country, file kind, raw column, target): the harmonisation rules."""
    rows = []
    for cc, spec in COUNTRY_SPECS.items():
        for kind in spec.kinds():
            cols = spec.columns(kind)
            files = [f for f, k, _ in spec.files() if k == kind]
            for col in cols:
                for m in col.maps:
                    rows.append({
                        "country": cc, "file_kind": kind, "files": ";".join(files), "format": spec.format,
                        "raw_name": col.name, "target": m.target, "rule": m.rule, "params": dict(m.params),
                        "label": col.label, "value_labels": dict(col.value_labels),
                        "missing_codes": dict(col.missing), "missing_range": col.missing_range,
                        "storage": col.storage, "measure": col.measure, "unit": col.unit,
                        "direction": col.direction,
                    })
            if spec.split_waves:
                for f, k, w in spec.files():
                    if k == kind:
                        rows.append({
                            "country": cc, "file_kind": kind, "files": f, "format": spec.format,
                            "raw_name": None, "target": "wave", "rule": "constant", "params": {"value": w},
                            "label": None, "value_labels": {}, "missing_codes": {}, "missing_range": None,
                            "storage": "numeric", "measure": "ordinal", "unit": None, "direction": None,
                        })
    return pd.DataFrame(rows)
