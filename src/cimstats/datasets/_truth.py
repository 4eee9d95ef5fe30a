"""The planted parameters of the demo study, in harmonised variable names."""

from __future__ import annotations

import copy

import pandas as pd

from cimstats.datasets import _design as D


def _icc(practice_sd, other_var, item_error_var=0.0):
    vp = practice_sd ** 2
    return vp / (vp + other_var + item_error_var)


_ROUNDING_VAR = 1.0 / 6.0  # mean variance added by unbiased random rounding


def _truth() -> dict:
    a = {m: D.A_DIV + D.A_DIV_X_DEP * m for m in (-1, 0, 1)}
    ce_other = D.CE_SD_PATIENT ** 2 + D.CE_SD_OCCASION ** 2
    sm_other = D.SM_SD_RESID ** 2
    return {
        "description": (
            "Parameters planted by cimstats.datasets.demo_study. Equations hold for every seed; "
            "realised counts are in DemoStudy.summary()."
        ),
        "definitions": {
            "diversity": "number of distinct tie types (partner, family, friend, weak_tie, group, professional, pet) "
                         "among the patient's named alters at that wave; 0 with no network",
            "network_size": "number of named alters at that wave",
            "ce": "collective-efficacy score: mean of ce_1..ce_8 (1-5); in the equations, the mean of all eight "
                  "generated answers before item missingness was applied",
            "sm": "self-management: expected heiQ item response (1-4); every heiq_* item (heiq_smi_*, heiq_hda_*, "
                  "heiq_hsn_*) has this expectation, so any heiQ scale mean estimates it",
            "m": "area_deprivation - 2 (-1 = most deprived area, 0 = middle, +1 = least deprived)",
            "dep_c": "2 - area_deprivation (+1 = most deprived area, 0 = middle, -1 = least deprived)",
            "realloc": "1 when at least one alter named at both waves does a support work type (illness_work, "
                       "everyday_work, emotional_work) at follow-up that they did not do at baseline; else 0",
            "n_lost": "baseline alters of a retained patient who are not named at follow-up",
            "n_added": "follow-up alters who were not named at baseline",
            "p_knowledge": "share of the patient's alters who share knowledge and experiences (knowledge_work = 1)",
            "early_help_share": "share of the patient's alters who began to help before or at the diagnosis or "
                                "health event (help_onset = 1)",
            "effective_size_reported": "Burt's effective size from the alters' reported numbers of other alters "
                                       "known: size - sum(n_known_others) / size",
            "effective_size": "Burt's effective size from the alter-alter tie table (alter_ties: which pairs of "
                              "named members know each other): size - 2 t / size, t the number of pairs; equal to "
                              "effective_size_reported, since each member's n_known_others counts the pairs "
                              "naming it",
            "group_trust": "latent trust in the group, measured by trust_1..trust_3 (score group_trust of "
                           "ce_group_process) and, per alter, by alter_trust",
            "legitimacy": "latent legitimacy of ongoing help, measured by legit_1..legit_4 (score legitimacy of "
                          "ce_group_process)",
            "contact_drift": "the patient's drift in contact frequency with alters named at both waves; measured "
                             "by the change in mean_contact_freq",
            "se": "self-efficacy: expected SEMCD-6 item response (1-10), drawn independently of collective "
                  "efficacy",
        },
        "collective_efficacy": {
            "outcome": "ce",
            "equation": "ce = intercept + country[c] + diversity*a + m*a_dep + diversity*m*a_int "
                        "+ (early_help_share - centre)*a_timing + (group_trust - mean)*a_trust "
                        "+ u_practice + w_patient + v_occasion (follow-up also + (legitimacy - mean)*a_legit "
                        "+ contact_drift*a_contact)",
            "early_help_share": D.A_TIMING,
            "group_trust": D.A_TRUST,
            "follow_up": {"legitimacy": D.A_LEGIT, "contact_drift": D.A_CONTACT},
            "intercept": D.CE_INTERCEPT,
            "diversity": D.A_DIV,
            "m": D.A_DEP,
            "diversity:m": D.A_DIV_X_DEP,
            "country": dict(D.CE_COUNTRY),
            "sd_practice": D.CE_SD_PRACTICE,
            "sd_patient": D.CE_SD_PATIENT,
            "sd_occasion": D.CE_SD_OCCASION,
            "item_noise_sd": D.CE_ITEM_NOISE,
            "a_path_by_area_deprivation": {str(2 + m): v for m, v in a.items()},
            "holds_at_waves": [0, 1],
        },
        "self_management": {
            "outcome": "sm",
            "equation": "sm = intercept + country[c] + ce*b + diversity*c_prime + m*sm_dep "
                        "+ (p_knowledge - centre)*c_know + (effective_size_reported - size + centre)*c_broker "
                        "+ (se - mean)*b_se + u_practice + e (baseline); follow-up: see follow_up",
            "p_knowledge": D.C_KNOW,
            "effective_size_given_size": D.C_BROKER,
            "se": D.B_SE,
            "intercept": D.SM_INTERCEPT,
            "ce": D.B_CE,
            "diversity": D.C_DIV,
            "m": D.SM_DEP,
            "country": dict(D.SM_COUNTRY),
            "sd_practice": D.SM_SD_PRACTICE,
            "sd_residual": D.SM_SD_RESID,
            "item_noise_sd": D.HEIQ_ITEM_NOISE,
            "holds_at_waves": [0],
        },
        "mediation": {
            "path": "diversity -> ce -> sm, a-path moderated by area deprivation (baseline)",
            "a_by_area_deprivation": {str(2 + m): v for m, v in a.items()},
            "b": D.B_CE,
            "direct": D.C_DIV,
            "indirect_by_area_deprivation": {str(2 + m): v * D.B_CE for m, v in a.items()},
            "index_of_moderated_mediation": D.A_DIV_X_DEP * D.B_CE,
        },
        "self_efficacy": {
            "outcome": "expected SEMCD item response (1-10)",
            "equation": "se = mean + sd_patient*z_patient + e_occasion (independent of collective efficacy); "
                        "self-management rises by b_se per SEMCD point (see self_management)",
            "mean": D.SE_MEAN, "sd_patient": D.SE_SD_PATIENT, "sd_occasion": D.SE_SD,
            "item_noise_sd": D.SE_ITEM_NOISE, "b_se": D.B_SE,
        },
        "icc_practice": {
            "note": "conditional on the planted fixed effects (country, diversity, deprivation, ce)",
            "ce_latent": _icc(D.CE_SD_PRACTICE, ce_other),
            "ce_score_expected": _icc(D.CE_SD_PRACTICE, ce_other, (D.CE_ITEM_NOISE ** 2 + _ROUNDING_VAR) / 8),
            "sm_latent": _icc(D.SM_SD_PRACTICE, sm_other),
            "heiq_smi_mean_expected": _icc(D.SM_SD_PRACTICE, sm_other, (D.HEIQ_ITEM_NOISE ** 2 + _ROUNDING_VAR) / 6),
        },
        "illness_work": {
            "level": "alter",
            "equation": "logit P(illness_work = 1) = intercept[tie_type] + dep_c * slope[tie_type]",
            "intercept": {t: v[0] for t, v in D.ILLNESS_WORK.items()},
            "dep_c": {t: v[1] for t, v in D.ILLNESS_WORK.items()},
            "holds_at": "baseline alters and alters first named at follow-up",
        },
        "everyday_work": {
            "equation": "logit P = intercept[tie_type] + inner*[circle == 1]",
            "intercept": dict(D.EVERYDAY_WORK), "inner": D.EVERYDAY_INNER,
        },
        "emotional_work": {
            "equation": "logit P = intercept[tie_type] + inner*[circle == 1] + outer*[circle == 3]",
            "intercept": dict(D.EMOTIONAL_WORK), "inner": D.EMOTIONAL_INNER, "outer": D.EMOTIONAL_OUTER,
        },
        "follow_up": {
            "retention_equation": "logit P(retained) = intercept + dep_c*b_dep + (age - 63)/10*b_age",
            "retention_intercept": D.RETAIN_INTERCEPT, "retention_dep_c": D.RETAIN_DEP,
            "retention_age_per_decade": D.RETAIN_AGE,
            "expected_retention": 0.73,
            "sm_change_equation": "sm[1] - sm[0] = intercept + realloc*b_realloc + n_lost*b_lost "
                                  "+ n_added*b_added + e",
            "sm_change": {"intercept": D.D_INTERCEPT, "realloc": D.D_REALLOC, "n_lost": D.D_LOST,
                          "n_added": D.D_ADDED, "sd_residual": D.D_SD},
            "alter_kept_by_circle": {"1": D.ALTER_KEEP_P[0], "2": D.ALTER_KEEP_P[1], "3": D.ALTER_KEEP_P[2]},
            "new_alters_mean": D.NEW_ALTERS_MEAN,
            "p_circle_move": D.P_CIRCLE_MOVE,
            "circle_move_equation": "a retained member moves one circle with probability p_circle_move; inward "
                                    "(towards the patient) with p_inward[gained] where gained = took on new "
                                    "support work at follow-up (clipped at the inner and outer circle)",
            "p_inward": {"gained": D.P_INWARD_IF_GAINED, "not_gained": D.P_INWARD_OTHERWISE},
            "role_gain": "expit(%s + %s * z_patient), z_patient ~ N(0, 1)" % (D.GAIN_INTERCEPT, D.GAIN_PROPENSITY_SD),
            "p_role_loss": D.P_LOSE_WORK,
        },
        "missingness": {
            "items": "semcd_*, ce_*, heiq_*, eq5d_*",
            "item_equation": "logit P(missing) = intercept + sd*z_patient + age_per_decade*(age - 63)/10",
            "intercept": D.MISS_INTERCEPT, "sd": D.MISS_SD, "age_per_decade": D.MISS_AGE,
            "expected_item_rate": 0.09,
            "share_dont_know": D.P_DONT_KNOW,
            "income_equiv": D.MISS_INCOME, "education_isced": D.MISS_EDUCATION, "hba1c_mmol": D.MISS_HBA1C,
            "contact_freq": D.MISS_CONTACT,
        },
        "network": {
            "no_network_equation": "logit P(no alters) = logit(p) + b*z_neighbourhood",
            "p": D.P_NO_NETWORK, "b": D.NO_NETWORK_DEPRIVATION,
            "size_equation": "1 + Poisson(mean * exp(-0.1 * z_neighbourhood))", "mean": D.EXTRA_ALTERS_MEAN,
            "circle_p": list(D.CIRCLE_P),
        },
        "hba1c_mmol": {"equation": "hba1c = intercept + (sm - 2.8)*b_sm + dep_c*b_dep + e; at follow-up also "
                                   "+ realloc*b_realloc",
                       "intercept": D.HBA1C_INTERCEPT, "sm": D.HBA1C_SM, "dep_c": D.HBA1C_DEP, "sd": D.HBA1C_SD,
                       "follow_up": {"realloc": D.HBA1C_REALLOC,
                                     "realloc_total": D.HBA1C_REALLOC + D.HBA1C_SM * D.D_REALLOC}},
        "eq5d": {"equation": "level = 1 + #(severity > thresholds); severity = age_b*(age-63) + sm_b*(sm-2.8) "
                             "+ dep_b*dep_c + shift[dimension] + noise",
                 "age": D.EQ5D_AGE, "sm": D.EQ5D_SM, "dep_c": D.EQ5D_DEP,
                 "thresholds": list(D.EQ5D_THRESHOLDS), "shift": dict(D.EQ5D_SHIFT)},
        "processes": {
            "note": "each mechanism process is driven by a patient propensity drawn independently of network "
                    "composition; the coefficients are those of the equations of collective_efficacy and "
                    "self_management",
            "knowledge_work": {"equation": "logit P = intercept + sd*z_patient", "intercept": D.KNOW_INTERCEPT,
                               "sd": D.KNOW_SD, "centre": D.KNOW_CENTRE},
            "help_onset": {"equation": "P(onset 1) = expit(intercept + sd*z_patient); onsets 2, 3 share the rest",
                           "intercept": D.ONSET_INTERCEPT, "sd": D.ONSET_SD, "centre": D.ONSET_CENTRE},
            "alter_ties": {"equation": "pair tied with probability min(0.95, r/(size - 1)), "
                                       "r = exp(log_mean + log_sd*z_patient)",
                           "log_mean": D.TIES_LOG_MEAN, "log_sd": D.TIES_LOG_SD, "centre": D.TIES_CENTRE},
            "group_trust": {"mean": D.TRUST_MEAN, "sd": D.TRUST_SD, "item_noise_sd": D.TRUST_ITEM_NOISE,
                            "alter_trust_noise_sd": D.ALTER_TRUST_NOISE},
            "legitimacy": {"mean": D.LEGIT_MEAN, "sd": D.LEGIT_SD, "item_noise_sd": D.LEGIT_ITEM_NOISE},
            "contact_drift": {"sd": D.CONTACT_DRIFT_SD, "alter_noise_sd": D.CONTACT_NOISE,
                              "equation": "contact[1] = round(contact[0] + d + e), clipped to 1-5, for alters "
                                          "named at both waves"},
        },
        "shared_collective_efficacy": _shared_ce(),
        "design": {"countries": list(D.COUNTRIES), "patients_per_country": dict(D.N_PATIENTS),
                   "practices_per_area": {k: list(v) for k, v in D.PRACTICES_PER_AREA.items()},
                   "areas_per_country": 3},
    }


def _shared_ce() -> dict:
    vb, vm = D.MEMBER_CE_BETWEEN_VAR, D.MEMBER_CE_VIEW_SD ** 2
    item_err = (D.MEMBER_CE_ITEM_NOISE ** 2 + _ROUNDING_VAR) / D.MEMBER_CE_ITEMS
    return {
        "items": [f"member_ce_{k}" for k in range(1, D.MEMBER_CE_ITEMS + 1)],
        "equation": "view[member] = ce_true[patient, baseline] + e_member, e_member ~ N(0, view_sd); "
                    "item = view + N(0, item_noise_sd), randomly rounded and clipped to 1-5",
        "wave": 0,
        "p_report": D.MEMBER_CE_P_REPORT,
        "view_sd": D.MEMBER_CE_VIEW_SD,
        "item_noise_sd": D.MEMBER_CE_ITEM_NOISE,
        "between_variance": vb,
        "icc1_view": vb / (vb + vm),
        "icc1_score_expected": vb / (vb + vm + item_err),
        "note": "the member score is the mean of the items; ICC(1) over networks (patient_id) of the member "
                "score is about icc1_score_expected (clipping to 1-5 raises it slightly, to about 0.28-0.30); "
                "between_variance is the variance of baseline ce_true over patients who name a network",
        "network_factor": "the patient's baseline ce_true: every reporting member's view centres on it, so it is "
                          "the factor the members' reports share between networks (the between-network factor "
                          "of member_ce_1..member_ce_4 in a two-level model clustered by patient_id)",
        "self_management_on_network_factor": D.B_CE,
        "self_management_equation": "sm = ... + b*ce + ... (see self_management), with ce the patient's own CE-8 "
                                    "score, which measures the same ce_true; se is drawn independently of ce_true; "
                                    "so self-management rises by b per unit of the network factor, beyond "
                                    "self-efficacy (hypothesis CE8)",
        "self_management_note": "b is on the scale of ce_true; the between-network factor of the 1-5 member items "
                                "is slightly compressed by clipping and diversity and deprivation enter both "
                                "equations, so an estimate adjusted for se and country lies a little above b "
                                "(benchmarks/demo_power.py reports the mean over seeds)",
    }


_TRUTH = _truth()


def planted_truth(*, as_frame: bool = False):
    """The parameters planted in the demo study, in harmonised variable names.

    Parameters
    ----------
    as_frame : bool, default False
        Return the headline coefficients as a long table instead of the full
        nested dictionary.

    Returns
    -------
    dict or pandas.DataFrame
        The dictionary has one block per equation (``collective_efficacy``,
        ``self_management``, ``mediation``, ``icc_practice``, ``illness_work``,
        ``everyday_work``, ``emotional_work``, ``follow_up``, ``missingness``,
        ``network``, ...), each with its ``equation`` and coefficients, and a
        ``definitions`` block defining every derived quantity (``diversity``,
        ``ce``, ``sm``, ``m``, ``dep_c``, ``realloc``...). The table has
        columns ``block, outcome, term, estimate, scale``.

    Notes
    -----
    The equations hold for every seed; only the draws change. Recovering a
    coefficient from a fitted model of the harmonised data is the test that
    each later stage does what it says.

    Examples
    --------
    >>> from cimstats.datasets import planted_truth
    >>> t = planted_truth()
    >>> t["collective_efficacy"]["diversity"], t["self_management"]["ce"]
    (0.14, 0.3)
    >>> planted_truth(as_frame=True).columns.tolist()
    ['block', 'outcome', 'term', 'estimate', 'scale']
    """
    truth = copy.deepcopy(_TRUTH)
    if not as_frame:
        return truth
    rows = []
    ce = truth["collective_efficacy"]
    for term in ("intercept", "diversity", "m", "diversity:m"):
        rows.append(("collective_efficacy", "ce", term, ce[term], "ce score (1-5)"))
    sm = truth["self_management"]
    for term in ("intercept", "ce", "diversity", "m"):
        rows.append(("self_management", "sm", term, sm[term], "heiQ item mean (1-4)"))
    for k, v in truth["mediation"]["indirect_by_area_deprivation"].items():
        rows.append(("mediation", "sm", f"indirect[area_deprivation={k}]", v, "heiQ item mean (1-4)"))
    rows.append(("mediation", "sm", "index_of_moderated_mediation",
                 truth["mediation"]["index_of_moderated_mediation"], "heiQ item mean (1-4)"))
    for k in ("ce_latent", "ce_score_expected", "sm_latent", "heiq_smi_mean_expected"):
        rows.append(("icc_practice", k.split("_")[0], k, truth["icc_practice"][k], "proportion"))
    for t, v in truth["illness_work"]["intercept"].items():
        rows.append(("illness_work", "illness_work", f"tie_type[{t}]", v, "log-odds"))
    for t, v in truth["illness_work"]["dep_c"].items():
        rows.append(("illness_work", "illness_work", f"tie_type[{t}]:dep_c", v, "log-odds"))
    for term, v in truth["follow_up"]["sm_change"].items():
        if term != "sd_residual":
            rows.append(("follow_up", "sm change", term, v, "heiQ item mean (1-4)"))
    return pd.DataFrame(rows, columns=["block", "outcome", "term", "estimate", "scale"])
