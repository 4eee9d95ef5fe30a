"""Vectorised generation of the demo study in harmonised variable names.

The generator works in the harmonised (target) coding; the country files are
derived from these tables afterwards (:mod:`cimstats.datasets._countries`),
so the tables built here are exactly what a correct harmonisation of the raw
files must give back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.special import ndtr, ndtri

from cimstats.datasets import _design as D
from cimstats.datasets._education import EDUCATION

SEMCD = [f"semcd_{k}" for k in range(1, 7)]
CE = [f"ce_{k}" for k in range(1, 9)]
HEIQ_SMI = [f"heiq_smi_{k}" for k in range(1, 7)]
HEIQ_HDA = [f"heiq_hda_{k}" for k in range(1, 5)]
HEIQ_HSN = [f"heiq_hsn_{k}" for k in range(1, 6)]
HEIQ = HEIQ_SMI + HEIQ_HDA + HEIQ_HSN
EQ5D = ["eq5d_mo", "eq5d_sc", "eq5d_ua", "eq5d_pd", "eq5d_ad"]
ITEMS = SEMCD + CE + HEIQ + EQ5D
#: group-process items of collective efficacy: trust in the group, legitimacy of ongoing help (1-5)
TRUST = [f"trust_{k}" for k in range(1, 4)]
LEGIT = [f"legit_{k}" for k in range(1, 5)]
PROCESS_ITEMS = TRUST + LEGIT
#: alter-level process columns: knowledge exchange (0/1), onset of help (1-3), trust (1-5),
#: number of the other named alters this alter knows (alter-alter ties)
ALTER_PROCESS = ["knowledge_work", "help_onset", "alter_trust", "n_known_others"]
#: collective efficacy of the patient's network as a reporting member sees it (1-5; baseline, a subsample
#: of members; missing for the others)
MEMBER_CE = [f"member_ce_{k}" for k in range(1, D.MEMBER_CE_ITEMS + 1)]
MEMBER_CE_TEXT = ("together we can work on the patient's diabetes",
                  "we can rely on each other when health gets worse",
                  "we can agree who does what when support is needed",
                  "we can change how we work when needs change")[:D.MEMBER_CE_ITEMS]

PATIENT_COLUMNS = (
    ["patient_id", "country", "area_id", "area_deprivation", "practice_id", "wave", "age", "sex",
     "education_isced", "income_equiv", "deprivation_index", "deprivation_q"]
    + ITEMS + ["hba1c_mmol"] + PROCESS_ITEMS
)
ALTER_COLUMNS = ["patient_id", "alter_id", "wave", "circle", "tie_type", "illness_work",
                 "everyday_work", "emotional_work", "contact_freq", "coresident"] + ALTER_PROCESS + MEMBER_CE

#: the alter-alter tie table: one row per pair of a patient's named members who know each other (per wave)
ALTER_TIE_COLUMNS = ["patient_id", "wave", "alter_a", "alter_b"]

# national deprivation indices: continuous ones are loc + scale * z (z = neighbourhood
# deprivation, higher = more deprived), rounded; quintile cut points at the normal quintiles
_QZ = np.array([-0.8416, -0.2533, 0.2533, 0.8416])
DEPRIVATION_INDEX = {
    "EN": {"name": "imd_decile", "kind": "decile", "higher_is_more_deprived": False,
           "label": "IMD 2015 decile of the LSOA (1 = most deprived 10%)"},
    "NL": {"name": "statusscore", "kind": "continuous", "loc": 0.10, "scale": -0.80, "digits": 2,
           "higher_is_more_deprived": False,
           "label": "SCP statusscore van de postcode (hoger = hogere status)"},
    "NO": {"name": "levekar", "kind": "decile", "higher_is_more_deprived": True,
           "label": "Levekårsindeks for bydelen, desil (10 = dårligste levekår)"},
    "ES": {"name": "medea", "kind": "continuous", "loc": 0.0, "scale": 0.90, "digits": 3,
           "higher_is_more_deprived": True,
           "label": "Índice de privación MEDEA de la sección censal (mayor = más privación)"},
    "GR": {"name": "deiktis", "kind": "continuous", "loc": 50.0, "scale": 15.0, "digits": 1,
           "higher_is_more_deprived": True,
           "label": "Δείκτης στέρησης δημοτικής ενότητας 0-100 (υψηλότερος = μεγαλύτερη στέρηση)"},
    "BG": {"name": "bednost", "kind": "continuous", "loc": 22.0, "scale": 7.0, "digits": 1,
           "higher_is_more_deprived": True,
           "label": "Дял на живеещите под линията на бедност в общината, %"},
}
for _spec in DEPRIVATION_INDEX.values():
    if _spec["kind"] == "continuous":
        cuts = np.round(_spec["loc"] + _spec["scale"] * _QZ, _spec["digits"])
        _spec["cutpoints"] = tuple(float(c) for c in np.sort(cuts))


def deprivation_quintile(country: str, index: np.ndarray) -> np.ndarray:
    """Within-country (national) quintile, 1 = most deprived, from a raw national index value."""
    spec = DEPRIVATION_INDEX[country]
    index = np.asarray(index, dtype=float)
    if spec["kind"] == "decile":
        worst_first = index if not spec["higher_is_more_deprived"] else 11 - index
        return np.ceil(worst_first / 2).astype(int)
    above = (index[:, None] > np.asarray(spec["cutpoints"])[None, :]).sum(1)
    return (5 - above) if spec["higher_is_more_deprived"] else (1 + above)


def _deprivation_index(country: str, z: np.ndarray) -> np.ndarray:
    spec = DEPRIVATION_INDEX[country]
    if spec["kind"] == "decile":
        tenth = np.clip(np.floor(ndtr(z) * 10), 0, 9)  # 9 = most deprived tenth
        return (1 + tenth) if spec["higher_is_more_deprived"] else (10 - tenth)
    return np.round(spec["loc"] + spec["scale"] * z, spec["digits"])


def _stochastic_round(x: np.ndarray, lo: float, hi: float, rng) -> np.ndarray:
    """Round to integers with E[result] = x (for x inside [lo, hi])."""
    x = np.clip(x, lo, hi)
    fl = np.floor(x)
    return np.clip(fl + (rng.random(x.shape) < (x - fl)), lo, hi)


def _items(true: np.ndarray, k: int, noise: float, lo: float, hi: float, rng) -> np.ndarray:
    x = true[:, None] + rng.normal(0.0, noise, (len(true), k))
    return _stochastic_round(x, lo, hi, rng)


def _within_rank(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted group vector."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=int)
    start = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    lengths = np.diff(np.r_[start, n])
    return np.arange(n) - np.repeat(start, lengths)


def _draw_alters(owner: np.ndarray, dep_c: np.ndarray, rng) -> dict:
    """Circle, tie type, contact, co-residence and support work of new alters."""
    n = len(owner)
    circle = 1 + (rng.random(n)[:, None] > np.cumsum(D.CIRCLE_P)[None, :-1]).sum(1)
    cum = np.cumsum(np.asarray(D.TIE_GIVEN_CIRCLE), axis=1)
    cum[:, -1] = 1.0
    tie = (rng.random(n)[:, None] > cum[circle - 1]).sum(1)
    tie = np.minimum(tie, len(D.TIE_TYPES) - 1)
    # at most one partner per patient: later partners are family
    partner = tie == 0
    if partner.any():
        idx = np.flatnonzero(partner)
        order = np.argsort(owner[idx], kind="stable")
        rank = np.empty(len(idx), dtype=int)
        rank[order] = _within_rank(owner[idx][order])
        tie[idx[rank > 0]] = 1
    names = np.asarray(D.TIE_TYPES)
    cores_p = np.array([D.CORESIDENT_P[t] for t in D.TIE_TYPES])[tie]
    coresident = (rng.random(n) < cores_p).astype(int)
    contact = np.clip(np.round(np.asarray(D.CONTACT_MEAN_BY_CIRCLE)[circle - 1] + rng.normal(0, 0.8, n)), 1, 5)
    work = _draw_work(tie, circle, dep_c[owner], rng)
    return {"circle": circle, "tie": tie, "tie_type": names[tie], "coresident": coresident,
            "contact_freq": contact, **work}


def _draw_work(tie, circle, dep_c, rng) -> dict:
    b = np.array([D.ILLNESS_WORK[t][0] for t in D.TIE_TYPES])[tie]
    g = np.array([D.ILLNESS_WORK[t][1] for t in D.TIE_TYPES])[tie]
    ev = np.array([D.EVERYDAY_WORK[t] for t in D.TIE_TYPES])[tie] + D.EVERYDAY_INNER * (circle == 1)
    em = (np.array([D.EMOTIONAL_WORK[t] for t in D.TIE_TYPES])[tie]
          + D.EMOTIONAL_INNER * (circle == 1) + D.EMOTIONAL_OUTER * (circle == 3))
    n = len(tie)
    return {
        "illness_work": (rng.random(n) < expit(b + g * dep_c)).astype(int),
        "everyday_work": (rng.random(n) < expit(ev)).astype(int),
        "emotional_work": (rng.random(n) < expit(em)).astype(int),
    }


def _alter_ties(owner: np.ndarray, r: np.ndarray, n_patients: int, rng, pairs: list | None = None) -> np.ndarray:
    """Number of the other alters of the same patient each alter knows (alter-alter ties drawn per pair).

    ``owner`` must be sorted; a pair of alters of patient i is tied with probability
    ``min(0.95, r[i] / (size_i - 1))``, so an alter knows about ``r[i]`` others whatever the size.
    When ``pairs`` is a list, the tied pairs are appended to it as (row, row) arrays
    (rows of ``owner``, the first before the second); the draws are the same either way.
    """
    deg = np.zeros(len(owner), dtype=int)
    sizes = np.bincount(owner, minlength=n_patients)
    start = np.r_[0, np.cumsum(sizes)[:-1]]
    for i in np.flatnonzero(sizes >= 2):
        k = sizes[i]
        p = min(0.95, r[i] / (k - 1))
        a, b = np.triu_indices(k, 1)
        tied = rng.random(len(a)) < p
        deg[start[i]:start[i] + k] = np.bincount(np.r_[a[tied], b[tied]], minlength=k)
        if pairs is not None:
            pairs.append(np.column_stack([start[i] + a[tied], start[i] + b[tied]]))
    return deg


def _tie_rows(pairs: list, rows: np.ndarray | None = None) -> np.ndarray:
    """The collected tied pairs as one (n, 2) array of alter rows (mapped through ``rows`` when given)."""
    out = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=int)
    return out if rows is None else rows[out]


def _per_patient_mean(owner: np.ndarray, x: np.ndarray, n_patients: int) -> np.ndarray:
    """Mean of ``x`` over each patient's alters (NaN with no alters)."""
    cnt = np.bincount(owner, minlength=n_patients)
    tot = np.bincount(owner, weights=x, minlength=n_patients)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _process_alters(owner: np.ndarray, z_know, z_onset, trust_g, rng) -> dict:
    """Knowledge exchange, onset of help and trust of new alters (driven by patient propensities)."""
    n = len(owner)
    know = (rng.random(n) < expit(D.KNOW_INTERCEPT + D.KNOW_SD * z_know[owner])).astype(int)
    p1 = expit(D.ONSET_INTERCEPT + D.ONSET_SD * z_onset[owner])
    u = rng.random(n)
    onset = np.where(u < p1, 1, np.where(u < p1 + (1 - p1) / 2, 2, 3))
    trust = np.clip(np.round(trust_g[owner] + rng.normal(0, D.ALTER_TRUST_NOISE, n)), 1, 5)
    return {"knowledge_work": know, "help_onset": onset, "alter_trust": trust}


def _diversity(owner: np.ndarray, tie: np.ndarray, n_patients: int) -> np.ndarray:
    """Number of distinct tie types named by each patient (0 with no network)."""
    seen = np.zeros((n_patients, len(D.TIE_TYPES)), dtype=bool)
    seen[owner, tie] = True
    return seen.sum(1)


def _member_ce(seed: int, alters: pd.DataFrame, patient_id: np.ndarray, ce_t0: np.ndarray) -> np.ndarray:
    """Members' own collective-efficacy items (NaN for members who did not report; see ``_design``).

    The network-level factor the reporting members share is ``ce_t0``, the baseline collective
    efficacy of the patient's network (ce_true), which the patient's own CE-8 score measures too;
    self-management rises by ``D.B_CE`` per unit of it (the patient's score enters the self-management
    equation), independently of self-efficacy: the planted value of hypothesis CE8
    (``planted_truth()["shared_collective_efficacy"]["self_management_on_network_factor"]``).
    """
    rng = np.random.default_rng([seed, D.MEMBER_CE_STREAM])
    out = np.full((len(alters), D.MEMBER_CE_ITEMS), np.nan)
    base = np.flatnonzero(alters["wave"].to_numpy() == 0)
    report = base[rng.random(len(base)) < D.MEMBER_CE_P_REPORT]
    index = pd.Index(patient_id)
    owner = index.get_indexer(alters["patient_id"].to_numpy()[report])
    view = ce_t0[owner] + rng.normal(0.0, D.MEMBER_CE_VIEW_SD, len(report))
    out[report] = _items(view, D.MEMBER_CE_ITEMS, D.MEMBER_CE_ITEM_NOISE, 1, 5, rng)
    return out


def generate(seed: int) -> dict:
    """Generate the study; returns a dict of DataFrames (see :func:`cimstats.datasets.demo_study`)."""
    rng = np.random.default_rng(seed)

    # ------------------------------------------------------------ design
    country, area, practice_no = [], [], []
    for cc in D.COUNTRIES:
        n = D.N_PATIENTS[cc]
        per_area = np.full(3, n // 3) + (np.arange(3) < n % 3)
        areas = np.repeat([1, 2, 3], per_area)
        first = np.cumsum((0,) + D.PRACTICES_PER_AREA[cc])
        prac = np.empty(n, dtype=int)
        for a in range(3):
            k = D.PRACTICES_PER_AREA[cc][a]
            share = rng.dirichlet(np.full(k, 8.0))
            prac[areas == a + 1] = first[a] + 1 + rng.choice(k, size=per_area[a], p=share)
        perm = rng.permutation(n)  # patient numbers do not reveal area or practice
        country.append(np.full(n, cc))
        area.append(areas[perm])
        practice_no.append(prac[perm])
    country = np.concatenate(country)
    area = np.concatenate(area)
    practice_no = np.concatenate(practice_no)
    n = len(country)
    local_no = np.concatenate([np.arange(1, D.N_PATIENTS[cc] + 1) for cc in D.COUNTRIES])
    patient_id = np.array([f"{c}-{k:04d}" for c, k in zip(country, local_no)], dtype=object)
    practice_id = np.array([f"{c}-P{k:02d}" for c, k in zip(country, practice_no)], dtype=object)
    area_id = np.array([f"{c}-A{k}" for c, k in zip(country, area)], dtype=object)
    prac_codes, prac_index = np.unique(practice_id, return_inverse=True)

    m = area - 2            # -1 most deprived area, 0, +1 least deprived
    dep_c = -m              # +1 most deprived area
    z_dep = np.vectorize(D.AREA_DEPRIVATION_MEAN.get)(area) + rng.normal(0, D.NEIGHBOURHOOD_SD, n)
    dep_index = np.empty(n)
    dep_q = np.empty(n, dtype=int)
    for cc in D.COUNTRIES:
        sel = country == cc
        dep_index[sel] = _deprivation_index(cc, z_dep[sel])
        dep_q[sel] = deprivation_quintile(cc, dep_index[sel])

    age = np.clip(np.round(rng.normal(63, 11, n)), 30, 90)
    sex = 1 + (rng.random(n) < 0.45).astype(int)
    z_edu = -0.35 * z_dep + rng.normal(0, 1, n)
    edu_nat = np.empty(n, dtype=int)
    isced = np.empty(n, dtype=int)
    for cc in D.COUNTRIES:
        sel = country == cc
        cats = EDUCATION[cc]
        p = np.array([c[3] for c in cats])
        cut = ndtri(np.cumsum(p / p.sum())[:-1]) * np.sqrt(1 + 0.35 ** 2 * 1.2)
        k = (z_edu[sel][:, None] > cut[None, :]).sum(1)
        edu_nat[sel] = np.array([c[0] for c in cats])[k]
        isced[sel] = np.array([c[2] for c in cats])[k]
    income_nat = np.empty(n)
    income_eur = np.empty(n)
    for cc in D.COUNTRIES:
        sel = country == cc
        rate = D.EUR_PER_UNIT[D.CURRENCY[cc]]
        log_inc = (np.log(D.INCOME_EUR[cc]) - 0.5 * 0.4 ** 2 + 0.15 * z_edu[sel] - 0.12 * z_dep[sel]
                   + rng.normal(0, 0.35, sel.sum()))
        income_nat[sel] = np.round(np.exp(log_inc) / rate, -2)
        income_eur[sel] = income_nat[sel] * rate

    # ------------------------------------------------------------ baseline networks
    p_none = expit(logit(D.P_NO_NETWORK) + D.NO_NETWORK_DEPRIVATION * z_dep)
    no_net = rng.random(n) < p_none
    size0 = np.where(no_net, 0, 1 + rng.poisson(D.EXTRA_ALTERS_MEAN * np.exp(-0.1 * z_dep)))
    owner0 = np.repeat(np.arange(n), size0)
    alter_no0 = _within_rank(owner0) + 1
    a0 = _draw_alters(owner0, dep_c, rng)
    div0 = _diversity(owner0, a0["tie"], n)

    # ------------------------------------------------------------ mechanism processes (patient propensities)
    z_know, z_onset, z_ties = rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 1, n)
    trust_g = D.TRUST_MEAN + D.TRUST_SD * rng.normal(0, 1, n)
    legit_l = D.LEGIT_MEAN + D.LEGIT_SD * rng.normal(0, 1, n)
    drift = rng.normal(0, D.CONTACT_DRIFT_SD, n)
    se_person = D.SE_MEAN + D.SE_SD_PATIENT * rng.normal(0, 1, n)
    ties_r = np.exp(D.TIES_LOG_MEAN + D.TIES_LOG_SD * z_ties)
    p0 = _process_alters(owner0, z_know, z_onset, trust_g, rng)
    pairs0: list = []
    deg0 = _alter_ties(owner0, ties_r, n, rng, pairs0)

    def centred_share(owner, x, centre):
        v = _per_patient_mean(owner, x, n) - centre
        return np.where(np.isnan(v), 0.0, v)   # no alters: no contribution

    early0 = centred_share(owner0, (p0["help_onset"] == 1).astype(float), D.ONSET_CENTRE)
    know0 = centred_share(owner0, p0["knowledge_work"].astype(float), D.KNOW_CENTRE)
    ties0 = centred_share(owner0, deg0.astype(float), D.TIES_CENTRE)

    # ------------------------------------------------------------ patient outcomes, baseline
    u_ce = rng.normal(0, D.CE_SD_PRACTICE, len(prac_codes))[prac_index]
    u_sm = rng.normal(0, D.SM_SD_PRACTICE, len(prac_codes))[prac_index]
    w_ce = rng.normal(0, D.CE_SD_PATIENT, n)
    ce_c = np.vectorize(D.CE_COUNTRY.get)(country)
    sm_c = np.vectorize(D.SM_COUNTRY.get)(country)

    def ce_true(div, occasion, early):
        return (D.CE_INTERCEPT + ce_c + D.A_DIV * div + D.A_DEP * m + D.A_DIV_X_DEP * div * m
                + D.A_TIMING * early + D.A_TRUST * (trust_g - D.TRUST_MEAN)
                + u_ce + w_ce + occasion)

    ce_t0 = ce_true(div0, rng.normal(0, D.CE_SD_OCCASION, n), early0)
    ce_items0 = _items(ce_t0, 8, D.CE_ITEM_NOISE, 1, 5, rng)
    ce_score0 = ce_items0.mean(1)
    se_t0 = se_person + rng.normal(0, D.SE_SD, n)
    sm_t0 = (D.SM_INTERCEPT + sm_c + D.B_CE * ce_score0 + D.C_DIV * div0 + D.SM_DEP * m + u_sm
             + D.C_KNOW * know0 - D.C_BROKER * ties0 + D.B_SE * (se_t0 - D.SE_MEAN)
             + rng.normal(0, D.SM_SD_RESID, n))

    def outcomes(ce_items, ce_score, sm_t, age_now, se_t, hba1c_shift=0.0):
        heiq = _items(sm_t, len(HEIQ), D.HEIQ_ITEM_NOISE, 1, 4, rng)
        semcd = _items(se_t, 6, D.SE_ITEM_NOISE, 1, 10, rng)
        sev = (D.EQ5D_AGE * (age_now - 63) + D.EQ5D_SM * (sm_t - 2.8) + D.EQ5D_DEP * dep_c
               + rng.normal(0, 0.6, n))
        eq = np.empty((n, 5))
        for j, name in enumerate(EQ5D):
            val = sev + D.EQ5D_SHIFT[name] + rng.normal(0, 0.6, n)
            eq[:, j] = 1 + (val[:, None] > np.asarray(D.EQ5D_THRESHOLDS)[None, :]).sum(1)
        mmol = np.clip(D.HBA1C_INTERCEPT + D.HBA1C_SM * (sm_t - 2.8) + D.HBA1C_DEP * dep_c
                       + rng.normal(0, D.HBA1C_SD, n) + hba1c_shift, 30, 130)
        raw = np.empty(n)
        harm = np.empty(n)
        for cc in D.COUNTRIES:
            sel = country == cc
            if D.HBA1C_UNIT[cc] == "%":
                raw[sel] = np.round(D.mmol_to_pct(mmol[sel]), 1)
                harm[sel] = D.pct_to_mmol(raw[sel])
            else:
                raw[sel] = np.round(mmol[sel])
                harm[sel] = raw[sel]
        items = np.column_stack([semcd, ce_items, heiq, eq])
        return items, se_t, raw, harm

    items0, se_t0, hba_raw0, hba0 = outcomes(ce_items0, ce_score0, sm_t0, age, se_t0)
    proc0 = np.column_stack([_items(trust_g, 3, D.TRUST_ITEM_NOISE, 1, 5, rng),
                             _items(legit_l, 4, D.LEGIT_ITEM_NOISE, 1, 5, rng)])

    # ------------------------------------------------------------ follow-up
    p_ret = expit(D.RETAIN_INTERCEPT + D.RETAIN_DEP * dep_c + D.RETAIN_AGE * (age - 63) / 10)
    retained = rng.random(n) < p_ret
    keep_p = np.asarray(D.ALTER_KEEP_P)[a0["circle"] - 1]
    kept = retained[owner0] & (rng.random(len(owner0)) < keep_p)
    # kept alters: circles move, contact drifts, support work is re-negotiated; a member who takes on
    # new support work moves inward more often (the circles are set once the work is drawn below)
    u_move = rng.random(len(owner0))
    u_step = rng.random(len(owner0))
    # continuous interaction: contact drifts with the patient's drift d (plus noise per alter)
    contact1 = np.clip(np.round(a0["contact_freq"] + drift[owner0]
                                + rng.normal(0, D.CONTACT_NOISE, len(owner0))), 1, 5)
    propensity = rng.normal(0, 1, n)
    p_gain = expit(D.GAIN_INTERCEPT + D.GAIN_PROPENSITY_SD * propensity)[owner0]
    work1 = {}
    gained = np.zeros(len(owner0), dtype=int)
    for w in D.WORK_TYPES:
        before = a0[w]
        u = rng.random(len(owner0))
        after = np.where(before == 1, (u >= D.P_LOSE_WORK).astype(int), (u < p_gain).astype(int))
        work1[w] = after
        gained += (kept & (before == 0) & (after == 1)).astype(int)
    move = kept & (u_move < D.P_CIRCLE_MOVE)
    p_inward = np.where(gained > 0, D.P_INWARD_IF_GAINED, D.P_INWARD_OTHERWISE)
    step = np.where(u_step < p_inward, -1, 1)
    circle1 = np.where(move, np.clip(a0["circle"] + step, 1, 3), a0["circle"])
    n_roles_gained = np.bincount(owner0, weights=gained, minlength=n).astype(int)
    realloc = (n_roles_gained > 0).astype(int)
    n_lost = np.bincount(owner0, weights=(retained[owner0] & ~kept), minlength=n).astype(int)
    n_added = np.where(retained, rng.poisson(D.NEW_ALTERS_MEAN, n), 0)
    owner_new = np.repeat(np.arange(n), n_added)
    alter_no_new = size0[owner_new] + _within_rank(owner_new) + 1
    a_new = _draw_alters(owner_new, dep_c, rng)
    # a new alter cannot be a second partner
    has_partner = np.zeros(n, dtype=bool)
    has_partner[owner0[kept & (a0["tie"] == 0)]] = True
    second = (a_new["tie"] == 0) & has_partner[owner_new]
    a_new["tie"] = np.where(second, 1, a_new["tie"])
    a_new["tie_type"] = np.asarray(D.TIE_TYPES)[a_new["tie"]]

    owner1 = np.r_[owner0[kept], owner_new]
    tie1 = np.r_[a0["tie"][kept], a_new["tie"]]
    div1 = _diversity(owner1, tie1, n)
    size1 = np.bincount(owner1, minlength=n)
    p_new = _process_alters(owner_new, z_know, z_onset, trust_g, rng)
    proc1 = {k: np.r_[p0[k][kept], p_new[k]] for k in p0}
    order1 = np.argsort(owner1, kind="stable")
    deg1 = np.empty(len(owner1), dtype=int)
    pairs1: list = []
    deg1[order1] = _alter_ties(owner1[order1], ties_r, n, rng, pairs1)
    early1 = centred_share(owner1, (proc1["help_onset"] == 1).astype(float), D.ONSET_CENTRE)

    ce_t1 = (ce_true(div1, rng.normal(0, D.CE_SD_OCCASION, n), early1)
             + D.A_LEGIT * (legit_l - D.LEGIT_MEAN) + D.A_CONTACT * drift)
    ce_items1 = _items(ce_t1, 8, D.CE_ITEM_NOISE, 1, 5, rng)
    ce_score1 = ce_items1.mean(1)
    sm_t1 = (sm_t0 + D.D_INTERCEPT + D.D_REALLOC * realloc + D.D_LOST * n_lost + D.D_ADDED * n_added
             + rng.normal(0, D.D_SD, n))
    se_t1 = se_person + rng.normal(0, D.SE_SD, n)
    items1, se_t1, hba_raw1, hba1 = outcomes(ce_items1, ce_score1, sm_t1, age + 1, se_t1,
                                             hba1c_shift=D.HBA1C_REALLOC * realloc)
    proc1_items = np.column_stack([_items(trust_g, 3, D.TRUST_ITEM_NOISE, 1, 5, rng),
                                   _items(legit_l, 4, D.LEGIT_ITEM_NOISE, 1, 5, rng)])

    # ------------------------------------------------------------ tables
    def patient_frame(rows, wave, items, hba, age_now, proc):
        df = pd.DataFrame({
            "patient_id": patient_id[rows], "country": country[rows], "area_id": area_id[rows],
            "area_deprivation": area[rows], "practice_id": practice_id[rows],
            "wave": np.full(rows.sum(), wave), "age": age_now[rows], "sex": sex[rows],
            "education_isced": isced[rows].astype(float), "income_equiv": income_eur[rows],
            "deprivation_index": dep_index[rows], "deprivation_q": dep_q[rows],
        })
        df = pd.concat([df, pd.DataFrame(items[rows], columns=ITEMS)], axis=1)
        df["hba1c_mmol"] = hba[rows]
        df[PROCESS_ITEMS] = proc[rows]
        return df

    all_rows = np.ones(n, dtype=bool)
    pf0 = patient_frame(all_rows, 0, items0, hba0, age, proc0)
    pf1 = patient_frame(retained, 1, items1, hba1, age + 1, proc1_items)
    patients = pd.concat([pf0, pf1], ignore_index=True)
    row_patient = np.r_[np.arange(n), np.flatnonzero(retained)]
    row_wave = np.r_[np.zeros(n, int), np.ones(retained.sum(), int)]

    latent = pd.DataFrame({
        "patient_id": patient_id[row_patient], "wave": row_wave,
        "network_size": np.r_[size0, size1[retained]],
        "diversity": np.r_[div0, div1[retained]],
        "ce_true": np.r_[ce_t0, ce_t1[retained]],
        "ce_score_complete": np.r_[ce_score0, ce_score1[retained]],
        "sm_true": np.r_[sm_t0, sm_t1[retained]],
        "se_true": np.r_[se_t0, se_t1[retained]],
        "group_trust_true": np.r_[trust_g, trust_g[retained]],
        "legitimacy_true": np.r_[legit_l, legit_l[retained]],
        "contact_drift": np.r_[np.zeros(n), drift[retained]],
        "retained": np.r_[retained, np.ones(retained.sum(), bool)],
        "realloc": np.r_[np.zeros(n, int), realloc[retained]],
        "n_roles_gained": np.r_[np.zeros(n, int), n_roles_gained[retained]],
        "n_lost": np.r_[np.zeros(n, int), n_lost[retained]],
        "n_added": np.r_[np.zeros(n, int), n_added[retained]],
        "neighbourhood_deprivation": z_dep[row_patient],
        "education_national": edu_nat[row_patient],
        "income_national": income_nat[row_patient],
        "hba1c_raw": np.r_[hba_raw0, hba_raw1[retained]],
        "practice_effect_ce": u_ce[row_patient],
        "practice_effect_sm": u_sm[row_patient],
        "local_no": local_no[row_patient],
        "practice_no": practice_no[row_patient],
    })

    def alter_frame(owner, alter_no, wave, circle, tie_type, work, contact, cores, proc, deg):
        pid = patient_id[owner]
        return pd.DataFrame({
            "patient_id": pid,
            "alter_id": [f"{p}-A{k:02d}" for p, k in zip(pid, alter_no)],
            "wave": np.full(len(owner), wave), "circle": circle, "tie_type": tie_type,
            "illness_work": work["illness_work"], "everyday_work": work["everyday_work"],
            "emotional_work": work["emotional_work"], "contact_freq": contact.astype(float),
            "coresident": cores, "knowledge_work": proc["knowledge_work"], "help_onset": proc["help_onset"],
            "alter_trust": proc["alter_trust"].astype(float), "n_known_others": deg,
        })

    al0 = alter_frame(owner0, alter_no0, 0, a0["circle"], a0["tie_type"], a0, a0["contact_freq"], a0["coresident"],
                      p0, deg0)
    nk = int(kept.sum())
    k = kept
    al1_kept = alter_frame(owner0[k], alter_no0[k], 1, circle1[k], a0["tie_type"][k],
                           {w: work1[w][k] for w in D.WORK_TYPES}, contact1[k], a0["coresident"][k],
                           {c: v[:nk] for c, v in proc1.items()}, deg1[:nk])
    al1_new = alter_frame(owner_new, alter_no_new, 1, a_new["circle"], a_new["tie_type"], a_new,
                          a_new["contact_freq"], a_new["coresident"],
                          {c: v[nk:] for c, v in proc1.items()}, deg1[nk:])
    alters = pd.concat([al0, al1_kept, al1_new], ignore_index=True)
    # who knows whom: the tied pairs behind n_known_others, as alter ids (rows of al0, and of al1_kept + al1_new)
    t0 = _tie_rows(pairs0)
    t1 = _tie_rows(pairs1, order1)
    alter_ties = pd.concat([
        pd.DataFrame({"patient_id": f["patient_id"].to_numpy()[t[:, 0]], "wave": w,
                      "alter_a": f["alter_id"].to_numpy()[t[:, 0]], "alter_b": f["alter_id"].to_numpy()[t[:, 1]]})
        for w, f, t in ((0, al0, t0), (1, pd.concat([al1_kept, al1_new], ignore_index=True), t1))
    ], ignore_index=True)
    swap = alter_ties["alter_a"].to_numpy() > alter_ties["alter_b"].to_numpy()
    alter_ties.loc[swap, ["alter_a", "alter_b"]] = alter_ties.loc[swap, ["alter_b", "alter_a"]].to_numpy()
    alter_ties = alter_ties.sort_values(["wave", "patient_id", "alter_a", "alter_b"], kind="stable",
                                        ignore_index=True)
    alters = alters.sort_values(["wave", "patient_id", "alter_id"], kind="stable", ignore_index=True)

    # ------------------------------------------------------------ missingness
    miss_z = rng.normal(0, 1, n)[row_patient]
    age_rows = patients["age"].to_numpy()
    p_miss = expit(D.MISS_INTERCEPT + D.MISS_SD * miss_z + D.MISS_AGE * (age_rows - 63) / 10)
    nrow = len(patients)
    reasons = {}
    values = patients[ITEMS].to_numpy(copy=True)
    mask = rng.random((nrow, len(ITEMS))) < p_miss[:, None]
    dk = rng.random((nrow, len(ITEMS))) < D.P_DONT_KNOW
    for j, col in enumerate(ITEMS):
        mj = mask[:, j]
        if mj.any():
            r = np.full(nrow, None, dtype=object)
            r[mj] = np.where(dk[mj, j] & (col not in EQ5D), "dont_know", "no_answer")
            reasons[col] = r
    values[mask] = np.nan
    patients[ITEMS] = values
    for col, p in (("income_equiv", D.MISS_INCOME), ("education_isced", D.MISS_EDUCATION)):
        mj = rng.random(nrow) < p
        patients.loc[mj, col] = np.nan
        r = np.full(nrow, None, dtype=object)
        r[mj] = "no_answer"
        reasons[col] = r
    mh = rng.random(nrow) < D.MISS_HBA1C
    patients.loc[mh, "hba1c_mmol"] = np.nan
    r = np.full(nrow, None, dtype=object)
    r[mh] = "not_recorded"
    reasons["hba1c_mmol"] = r
    mc = rng.random(len(alters)) < D.MISS_CONTACT
    alters.loc[mc, "contact_freq"] = np.nan
    patient_reasons = pd.DataFrame(reasons, index=patients.index)
    ra = np.full(len(alters), None, dtype=object)
    ra[mc] = "no_answer"
    alter_reasons = pd.DataFrame({"contact_freq": ra}, index=alters.index)

    # ------------------------------------------------------------ members' own collective efficacy
    # drawn last and from its own stream: every column above is unchanged by it
    alters[MEMBER_CE] = _member_ce(seed, alters, patient_id, ce_t0)

    for c in ("age", "sex", "area_deprivation", "deprivation_q", "wave"):
        patients[c] = patients[c].astype(int)
    for c in ("circle", "illness_work", "everyday_work", "emotional_work", "coresident", "wave",
              "knowledge_work", "help_onset", "n_known_others"):
        alters[c] = alters[c].astype(int)
    return {
        "patients": patients[PATIENT_COLUMNS],
        "alters": alters[ALTER_COLUMNS],
        "latent": latent,
        "patient_missing_reasons": patient_reasons,
        "alter_missing_reasons": alter_reasons,
        "alter_ties": alter_ties[ALTER_TIE_COLUMNS],
    }
