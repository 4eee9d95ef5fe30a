"""Stable issue codes of the dictionary and harmonisation stage.

Codes never change meaning between versions so that users can filter a
report on them. ``D`` codes are found by reading the dictionary tables,
``R`` codes by parsing rules (both before any data is touched), and ``H``
codes while harmonising data.

Examples
--------
>>> from cimstats.dictionary.codes import CODES
>>> CODES["R101"]
'unknown rule name'
"""

from __future__ import annotations

CODES: dict[str, str] = {
    # dictionary tables (no data needed)
    "D001": "dictionary table missing",
    "D002": "required column missing from a table",
    "D003": "unknown column in a table",
    "D004": "required cell empty",
    "D005": "duplicate key (two rows for one study, variable, category or target x study)",
    "D006": "value not among the allowed choices",
    "D007": "number expected",
    "D008": "mapping names a study that is not in the studies table",
    "D009": "mapping or category names a target variable that is not in the variables table",
    "D010": "categorical target variable has no categories",
    "D011": "valid range has min greater than max",
    "D012": "category code outside the target's valid range",
    "D013": "target variable has no mapping for a study",
    "D014": "study data file not found",
    "D015": "table could not be read",
    "D016": "categories given for a target whose type has no categories",
    "D018": "variable label longer than 80 characters (the Stata limit)",
    "D017": "table mismatch: a variable's table has no studies, or a mapping pairs a study with another table's target",
    # rules (no data needed)
    "R101": "unknown rule name",
    "R102": "rule arguments cannot be parsed",
    "R103": "required rule argument missing",
    "R104": "unknown rule argument",
    "R105": "wrong number of source variables for the rule",
    "R106": "rule produces a code that is not a category of the target",
    "R107": "unknown unit or unsupported unit conversion",
    "R108": "invalid band breaks or labels",
    "R109": "invalid quantile specification",
    "R110": "case_when expression cannot be parsed",
    "R111": "case_when refers to a variable not listed as a source",
    "R112": "status and rule disagree",
    "R113": "rule does not fit the target's type",
    "R114": "numeric rule argument outside its documented range",
    # harmonisation (data)
    "H201": "study data could not be read",
    "H202": "source variable not found in the study data",
    "H203": "source codes not covered by the rule (unmapped)",
    "H204": "label named in a rule is not a value label of the source variable",
    "H205": "source values have the wrong type for the rule",
    "H206": "harmonised values outside the target's valid range",
    "H207": "harmonised values that are not categories of the target",
    "H208": "required target variable has missing values",
    "H209": "source value labels disagree with the target's categories",
    "H210": "study given as data is not in the studies table, or a study has no data",
    "H211": "identifiers are not unique",
    "H212": "too few valid items for a sum or mean",
    "H213": "no case_when condition matched",
    "H214": "harmonised values of an integer target are not whole numbers",
    "H215": "source value labels contradict the target's categories code by code (swapped codes or a reversed scale)",
}

#: how serious each harmonisation code is, in one place: ``error`` (the harmonised data cannot be
#: trusted until it is fixed; ``cimstats run`` stops), ``warning`` (values were set missing for a
#: stated reason, counted in the report; the run goes on) or ``info`` (a note). A plan or
#: ``harmonise(accept=...)`` can accept named codes, which then become notes.
SEVERITY: dict[str, str] = {
    "H201": "error", "H202": "error", "H203": "error", "H204": "error", "H205": "warning", "H206": "warning",
    "H207": "warning", "H208": "error", "H209": "warning", "H210": "warning", "H211": "error", "H212": "info",
    "H213": "warning", "H214": "warning", "H215": "error",
}

#: reasons a harmonised cell is missing; every missing cell has exactly one
MISSING_REASONS: dict[str, str] = {
    "system_missing": "source cell was empty (system missing)",
    "source_missing": "source cell held a declared missing code",
    "recoded_missing": "the rule maps the source value to missing on purpose",
    "declared_missing": "the rule maps the source value to a missing code declared in the target's categories",
    "unmapped": "source code not covered by the rule, or not a category of the target",
    "type_mismatch": "source value could not be read as the type the rule needs",
    "out_of_range": "harmonised value outside the target's valid range",
    "too_few_items": "fewer valid items than the rule's minimum",
    "no_match": "no case_when condition matched and there is no else",
    "impossible": "the study cannot provide this target",
    "no_mapping": "the dictionary has no usable mapping for this target and study",
}

REASON_ORDER = tuple(MISSING_REASONS)
REASON_CODE = {r: i + 1 for i, r in enumerate(REASON_ORDER)}  # 0 = not missing
