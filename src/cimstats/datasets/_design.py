"""Design constants and planted parameters of the demo study.

Everything the generator plants lives here, so that :func:`planted_truth`
and the generator read the same numbers.
"""

from __future__ import annotations


#: country codes in the order files are written
COUNTRIES: tuple[str, ...] = ("EN", "NL", "NO", "ES", "GR", "BG")

COUNTRY_NAMES = {
    "EN": "England (United Kingdom)",
    "NL": "Netherlands",
    "NO": "Norway",
    "ES": "Spain",
    "GR": "Greece",
    "BG": "Bulgaria",
}

#: patients recruited at baseline per country (fixed by design; 1,700 in all)
N_PATIENTS = {"EN": 300, "NL": 290, "NO": 280, "ES": 290, "GR": 270, "BG": 270}

#: GP practices in each of the three areas (area 1 = most deprived ... 3 = least)
PRACTICES_PER_AREA = {
    "EN": (4, 4, 3),
    "NL": (4, 3, 4),
    "NO": (3, 4, 3),
    "ES": (4, 4, 4),
    "GR": (3, 3, 4),
    "BG": (4, 3, 3),
}

#: mean neighbourhood deprivation (national z-score, higher = more deprived) per area
AREA_DEPRIVATION_MEAN = {1: 1.0, 2: 0.0, 3: -1.0}
NEIGHBOURHOOD_SD = 0.45

TIE_TYPES: tuple[str, ...] = ("partner", "family", "friend", "weak_tie", "group", "professional", "pet")
WORK_TYPES: tuple[str, ...] = ("illness_work", "everyday_work", "emotional_work")

#: probability of each circle for a named alter (inner, middle, outer)
CIRCLE_P = (0.36, 0.35, 0.29)

#: tie type given circle (rows: circle 1..3; columns: TIE_TYPES)
TIE_GIVEN_CIRCLE = (
    (0.30, 0.44, 0.12, 0.01, 0.01, 0.04, 0.08),
    (0.02, 0.35, 0.30, 0.10, 0.08, 0.12, 0.03),
    (0.00, 0.15, 0.20, 0.30, 0.15, 0.18, 0.02),
)

CORESIDENT_P = {"partner": 0.90, "family": 0.25, "friend": 0.02, "weak_tie": 0.01,
                "group": 0.0, "professional": 0.0, "pet": 0.95}
CONTACT_MEAN_BY_CIRCLE = (4.3, 3.4, 2.5)

# ---------------------------------------------------------------- network size
P_NO_NETWORK = 0.055          # baseline share of patients naming nobody (before deprivation shift)
NO_NETWORK_DEPRIVATION = 0.35  # log-odds shift of naming nobody per unit of neighbourhood deprivation
EXTRA_ALTERS_MEAN = 2.15       # named alters = 1 + Poisson(mean * exp(-0.1 * deprivation))

# ---------------------------------------------------------------- alter level
#: illness work, log-odds: intercept and slope on area deprivation contrast
#: dep_c = 2 - area_deprivation (+1 most deprived area, 0 middle, -1 least deprived); the weak-tie slope
#: keeps the navigation contrast (NAV3) detectable when the model also adjusts for individual deprivation
ILLNESS_WORK = {
    "partner": (1.2, 0.0),
    "family": (0.4, 0.3),
    "friend": (-0.6, 0.0),
    "weak_tie": (-1.6, 1.5),
    "group": (-0.8, 0.6),
    "professional": (1.0, -0.4),
    "pet": (-2.5, 0.0),
}
#: everyday and emotional work, log-odds by tie type, plus circle shifts
EVERYDAY_WORK = {"partner": 1.5, "family": 0.6, "friend": -0.3, "weak_tie": -0.9,
                 "group": -1.2, "professional": -1.8, "pet": 0.3}
EMOTIONAL_WORK = {"partner": 1.4, "family": 0.7, "friend": 0.6, "weak_tie": -0.8,
                  "group": -0.2, "professional": -1.0, "pet": 1.0}
EVERYDAY_INNER = 0.5
EMOTIONAL_INNER = 0.8
EMOTIONAL_OUTER = -0.4

# ---------------------------------------------------------------- patient level
#: collective efficacy score (mean of ce_1..ce_8, 1-5):
#: ce = CE_INTERCEPT + country + A_DIV*diversity + A_DEP*m + A_DIV_X_DEP*diversity*m + u_practice + w_patient + v
#: where m = area_deprivation - 2 (-1 most deprived, 0, +1 least deprived)
CE_INTERCEPT = 2.55
A_DIV = 0.14
A_DEP = 0.05
A_DIV_X_DEP = 0.12
CE_COUNTRY = {"EN": 0.0, "NL": 0.10, "NO": 0.05, "ES": 0.12, "GR": -0.05, "BG": -0.15}
CE_SD_PRACTICE = 0.10
CE_SD_PATIENT = 0.33   # persistent across waves
CE_SD_OCCASION = 0.27
CE_ITEM_NOISE = 0.55

#: self-management (expected heiQ item response, 1-4):
#: sm = SM_INTERCEPT + country + B_CE*ce + C_DIV*diversity + SM_DEP*m + u_practice + e
SM_INTERCEPT = 1.85
B_CE = 0.30
C_DIV = 0.03
SM_DEP = 0.04
SM_COUNTRY = {"EN": 0.0, "NL": 0.05, "NO": 0.08, "ES": -0.03, "GR": -0.06, "BG": -0.10}
SM_SD_PRACTICE = 0.065
SM_SD_RESID = 0.30
HEIQ_ITEM_NOISE = 0.40

#: self-efficacy (SEMCD-6 item expectation, 1-10): occasion noise around the patient's level
#: (SE_MEAN, SE_SD_PATIENT below)
SE_SD = 1.0
SE_ITEM_NOISE = 1.0

#: change in self-management between waves (retained patients):
#: sm1 = sm0 + D_INTERCEPT + D_REALLOC*realloc + D_LOST*n_lost + D_ADDED*n_added + e
D_INTERCEPT = -0.15
D_REALLOC = 0.18
D_LOST = -0.03
D_ADDED = 0.02
D_SD = 0.15
#: role re-allocation: a retained alter gains a work type with probability
#: expit(GAIN_INTERCEPT + GAIN_PROPENSITY_SD * z_patient); loses one with P_LOSE_WORK
GAIN_INTERCEPT = -2.0
GAIN_PROPENSITY_SD = 0.9
P_LOSE_WORK = 0.10
#: alter retention by circle, circle moves and new alters at follow-up
ALTER_KEEP_P = (0.88, 0.75, 0.60)
P_CIRCLE_MOVE = 0.12
#: direction of a move (negotiation: relationships re-shaped with roles): inward with this probability
#: when the member took on new support work at follow-up, otherwise with the second
P_INWARD_IF_GAINED = 0.85
P_INWARD_OTHERWISE = 0.40
NEW_ALTERS_MEAN = 0.5

#: follow-up retention: logit = RETAIN_INTERCEPT + RETAIN_DEP*dep_c + RETAIN_AGE*(age-63)/10
RETAIN_INTERCEPT = 1.02  # gives about 73% retained over the design
RETAIN_DEP = -0.25
RETAIN_AGE = -0.10

#: HbA1c (mmol/mol) and EQ-5D-5L
HBA1C_INTERCEPT = 56.0
HBA1C_SM = -6.0
HBA1C_DEP = 2.0
HBA1C_SD = 11.0
#: negotiation and glycaemic control: at follow-up, HbA1c (mmol/mol) of a patient with role re-allocation
#: (realloc = 1) is HBA1C_REALLOC lower, on top of the path through self-management
#: (HBA1C_SM * D_REALLOC); added to the follow-up value only, without a random draw
HBA1C_REALLOC = -3.0
EQ5D_SM = -0.8
EQ5D_AGE = 0.02
EQ5D_DEP = 0.15
EQ5D_THRESHOLDS = (0.35, 1.05, 1.75, 2.45)
EQ5D_SHIFT = {"eq5d_mo": 0.0, "eq5d_sc": -0.5, "eq5d_ua": -0.1, "eq5d_pd": 0.35, "eq5d_ad": 0.15}

#: item missingness: logit = MISS_INTERCEPT + MISS_SD * z_patient (+ MISS_AGE per decade)
MISS_INTERCEPT = -2.55
MISS_SD = 0.7
MISS_AGE = 0.10
P_DONT_KNOW = 0.3   # share of missing attitude answers that were "don't know" (rest: no answer)
MISS_INCOME = 0.12
MISS_EDUCATION = 0.03
MISS_HBA1C = 0.10
MISS_CONTACT = 0.03

#: equivalised income: mean of EUR per year by country; exchange rates to EUR (fixed, 2014 averages)
INCOME_EUR = {"EN": 24000, "NL": 26000, "NO": 38000, "ES": 16000, "GR": 11000, "BG": 5000}
CURRENCY = {"EN": "GBP", "NL": "EUR", "NO": "NOK", "ES": "EUR", "GR": "EUR", "BG": "BGN"}
EUR_PER_UNIT = {"GBP": 1.2403, "EUR": 1.0, "NOK": 0.1196, "BGN": 0.5113}

#: HbA1c units reported by each team (DCCT % or IFCC mmol/mol)
HBA1C_UNIT = {"EN": "mmol/mol", "NL": "mmol/mol", "NO": "%", "ES": "%", "GR": "%", "BG": "%"}


def pct_to_mmol(pct):
    """IFCC (mmol/mol) from DCCT/NGSP (%): ``10.929 * (pct - 2.15)``."""
    return 10.929 * (pct - 2.15)


def mmol_to_pct(mmol):
    """DCCT/NGSP (%) from IFCC (mmol/mol): ``mmol / 10.929 + 2.15``."""
    return mmol / 10.929 + 2.15

# ---------------------------------------------------------------- mechanism processes
# Each mechanism of the default analysis plan is planted through a process variable of its own,
# driven by a patient-level propensity drawn independently of network composition, so the
# composition effects above keep their planted values.

#: sharing knowledge and experiences (alter level, 0/1): logit P = KNOW_INTERCEPT + KNOW_SD * z_patient;
#: self-management rises by C_KNOW per unit share of alters who share knowledge (centred at KNOW_CENTRE)
KNOW_INTERCEPT = -0.3
KNOW_SD = 1.0
C_KNOW = 0.20
KNOW_CENTRE = 0.44
#: mediation of resources: alter-alter ties drawn with pair probability min(0.95, r / (size - 1)),
#: r = exp(TIES_LOG_MEAN + TIES_LOG_SD * z_patient) (the expected ties per alter); self-management
#: rises by C_BROKER per unit of Burt's effective size at a given network size (= -C_BROKER per
#: unit of the mean number of ties an alter has to other alters, centred at TIES_CENTRE)
TIES_LOG_MEAN = 0.0
TIES_LOG_SD = 0.6
C_BROKER = 0.08
TIES_CENTRE = 0.92
#: self-efficacy (SEMCD-6 item expectation, 1-10) is drawn independently of collective efficacy:
#: se = SE_MEAN + SE_SD_PATIENT * z; self-management rises by B_SE per SEMCD point (centred at SE_MEAN)
SE_MEAN = 6.0
SE_SD_PATIENT = 1.6
B_SE = 0.05
#: timing of engagement (alter level): help_onset 1 = began to help before or at the diagnosis or
#: health event, 2 = within the first year after it, 3 = later; P(onset 1) = expit(ONSET_INTERCEPT
#: + ONSET_SD * z_patient), onsets 2 and 3 share the rest equally. Collective efficacy rises by
#: A_TIMING per unit share of alters engaged at onset 1 (centred at ONSET_CENTRE)
ONSET_INTERCEPT = -0.4
ONSET_SD = 1.0
A_TIMING = 0.40
ONSET_CENTRE = 0.41
#: building trust in the group: latent group trust g = TRUST_MEAN + TRUST_SD * z_patient; trust items
#: trust_1..trust_3 (1-5) measure g; alter_trust (1-5) = g + ALTER_TRUST_NOISE noise; collective
#: efficacy rises by A_TRUST per unit of g (centred at TRUST_MEAN)
TRUST_MEAN = 3.3
TRUST_SD = 0.6
TRUST_ITEM_NOISE = 0.5
ALTER_TRUST_NOISE = 0.8
A_TRUST = 0.25
#: legitimising ongoing engagement: latent legitimacy l = LEGIT_MEAN + LEGIT_SD * z_patient, measured
#: by legit_1..legit_4 (1-5; items 1-2 the patient's view, 3-4 the members' view as the patient
#: reports it); collective efficacy at follow-up rises by A_LEGIT per unit of l (centred)
LEGIT_MEAN = 3.4
LEGIT_SD = 0.6
LEGIT_ITEM_NOISE = 0.5
A_LEGIT = 0.30
#: continuous interaction: contact frequency of alters named at both waves drifts by the patient's
#: d ~ N(0, CONTACT_DRIFT_SD) plus N(0, CONTACT_NOISE) per alter (then rounded to 1-5); collective
#: efficacy at follow-up rises by A_CONTACT per unit of d
CONTACT_DRIFT_SD = 0.5
CONTACT_NOISE = 0.4
A_CONTACT = 0.32
#: collective efficacy as a shared property: at baseline about MEMBER_CE_P_REPORT of the named members
#: answer MEMBER_CE_ITEMS collective-efficacy items (1-5) about the patient's network themselves. A
#: reporting member's view = the patient's ce_true + N(0, MEMBER_CE_VIEW_SD); each item = view +
#: N(0, MEMBER_CE_ITEM_NOISE), randomly rounded to 1-5. Drawn last, from a separate random stream
#: (seed, MEMBER_CE_STREAM), so every other column is the same as without them.
MEMBER_CE_P_REPORT = 0.40
MEMBER_CE_ITEMS = 4
MEMBER_CE_VIEW_SD = 0.90
MEMBER_CE_ITEM_NOISE = 0.60
MEMBER_CE_STREAM = 4345
#: variance of baseline ce_true over patients who name a network (0.351-0.361 over seeds 1, 2, 3 and
#: 20140601); the between-network variance behind the planted ICC(1) of the member reports
MEMBER_CE_BETWEEN_VAR = 0.355
