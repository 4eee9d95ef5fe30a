"""National education categories of each team and their ISCED 2011 level."""

from __future__ import annotations

#: country -> list of (national code, national label, ISCED 2011 level, share in the sample)
EDUCATION = {
    "EN": [
        (1, "No formal qualifications", 1, 0.22),
        (2, "GCSE / O-level or equivalent", 2, 0.30),
        (3, "A-level or equivalent", 3, 0.16),
        (4, "Vocational qualification (NVQ 3-4, HNC)", 5, 0.14),
        (5, "First degree", 6, 0.13),
        (6, "Postgraduate degree", 7, 0.05),
    ],
    "NL": [
        (1, "Geen opleiding / basisonderwijs", 1, 0.18),
        (2, "Vmbo / mavo / lbo", 2, 0.30),
        (3, "Havo / vwo", 3, 0.10),
        (4, "Mbo", 4, 0.22),
        (5, "Hbo", 6, 0.14),
        (6, "Wo (universiteit)", 7, 0.06),
    ],
    "NO": [
        (1, "Grunnskole", 2, 0.25),
        (2, "Videregående skole", 3, 0.40),
        (3, "Fagskole", 4, 0.08),
        (4, "Universitet/høgskole, inntil 4 år", 6, 0.18),
        (5, "Universitet/høgskole, over 4 år", 7, 0.09),
    ],
    "ES": [
        (1, "Sin estudios", 0, 0.12),
        (2, "Estudios primarios", 1, 0.33),
        (3, "ESO / EGB / bachillerato elemental", 2, 0.20),
        (4, "Bachillerato / formación profesional", 3, 0.20),
        (5, "Diplomatura / grado", 6, 0.10),
        (6, "Licenciatura / máster / doctorado", 7, 0.05),
    ],
    "GR": [
        (1, "Δημοτικό ή λιγότερο", 1, 0.35),
        (2, "Γυμνάσιο", 2, 0.20),
        (3, "Λύκειο", 3, 0.25),
        (4, "ΤΕΙ / ΙΕΚ", 5, 0.10),
        (5, "Πανεπιστήμιο", 6, 0.08),
        (6, "Μεταπτυχιακό / διδακτορικό", 7, 0.02),
    ],
    "BG": [
        (1, "Основно или по-ниско", 2, 0.20),
        (2, "Средно", 3, 0.45),
        (3, "Полувисше / колеж", 5, 0.10),
        (4, "Висше (бакалавър)", 6, 0.12),
        (5, "Висше (магистър)", 7, 0.12),
        (6, "Доктор", 8, 0.01),
    ],
}
