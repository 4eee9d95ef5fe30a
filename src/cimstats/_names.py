"""The one rule for ids and names that become part of a file name.

Model ids, hypothesis ids, study ids and table names of a plan or a data
dictionary end up in the names of the files cimstats writes
(``models/<model id>_terms.csv``, ``data/<table>.parquet``...). A name that
holds a path separator or ``..`` would put a file outside the output folder,
and some names cannot be files on every system. Such names are refused when
the plan or the dictionary is checked, before anything is written.

The rule (:data:`SAFE_NAME_RULE`): letters, digits, ``_``, ``-`` and ``.``;
not starting with ``.`` or ``-``, not ending with ``.``; no ``..``; at most
:data:`MAX_NAME_LENGTH` characters; not a name Windows reserves for devices
(``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``, with
or without an extension).

Examples
--------
>>> name_problem("ce_mediation") is None
True
>>> name_problem("../../ESCAPED")
"holds '/', which a file name cannot hold"
>>> name_problem("NUL")
'is a name Windows reserves for a device'
"""

from __future__ import annotations

import re

__all__ = ["SAFE_NAME_RULE", "MAX_NAME_LENGTH", "name_problem", "is_safe_name"]

#: longest id or name that becomes part of a file name
MAX_NAME_LENGTH = 64

#: the rule in words, for error messages
SAFE_NAME_RULE = (f"letters, digits, '_', '-' and '.' only, not starting with '.' or '-', not ending with '.', "
                  f"no '..', at most {MAX_NAME_LENGTH} characters, and not a Windows device name such as CON or NUL")

_ALLOWED = re.compile(r"[A-Za-z0-9_.-]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def name_problem(name) -> str | None:
    """What is wrong with ``name`` as part of a file name (a phrase), or ``None`` when it follows the rule."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not text"
    if name == "":
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    for sep in ("/", "\\"):
        if sep in name:
            return f"holds {sep!r}, which a file name cannot hold"
    if ".." in name:
        return "holds '..'"
    if not _ALLOWED.fullmatch(name):
        bad = next(ch for ch in name if not _ALLOWED.fullmatch(ch))
        return f"holds {bad!r}"
    if name[0] in ".-":
        return f"starts with {name[0]!r}"
    if name.endswith("."):
        return "ends with '.'"
    if name.split(".")[0].upper() in _RESERVED:
        return "is a name Windows reserves for a device"
    return None


def is_safe_name(name) -> bool:
    """True when ``name`` follows :data:`SAFE_NAME_RULE`."""
    return name_problem(name) is None
