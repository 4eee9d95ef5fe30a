"""File formats cimstats reads and writes, and recognising a file by its content.

A file's extension is a claim; its first bytes are the evidence.
:func:`sniff_format` reads those bytes so that a Stata file saved as ``.sav``
is reported as such instead of failing deep inside a reader.

Examples
--------
>>> format_from_extension("wave1.ZSAV")
'zsav'
>>> format_from_extension("notes.txt") is None
True
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: extension -> format name
EXTENSIONS: dict[str, str] = {
    ".sav": "sav",
    ".zsav": "zsav",
    ".por": "por",
    ".dta": "dta",
    ".sas7bdat": "sas7bdat",
    ".xpt": "xpt",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: format -> human name used in messages
FORMAT_NAMES: dict[str, str] = {
    "sav": "SPSS .sav",
    "zsav": "SPSS compressed .zsav",
    "por": "SPSS portable .por",
    "dta": "Stata .dta",
    "sas7bdat": "SAS .sas7bdat",
    "xpt": "SAS transport .xpt",
    "csv": "CSV text",
    "parquet": "Parquet",
}

READ_FORMATS = tuple(FORMAT_NAMES)
WRITE_FORMATS = ("sav", "zsav", "por", "dta", "xpt", "csv", "parquet")

_SAS7BDAT_MAGIC = bytes.fromhex("000000000000000000000000c2ea8160b31411cfbd92080009c7318c181f1011")


def format_from_extension(path: str | os.PathLike) -> str | None:
    """The format an extension names, or ``None`` for an unknown extension."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def sniff_format(head: bytes) -> str | None:
    """The format the first bytes of a file show, or ``None`` when they show none.

    ``"text"`` is returned for content that looks like plain text (a CSV
    candidate).

    Examples
    --------
    >>> sniff_format(b"$FL2@(#) IBM SPSS STATISTICS")
    'sav'
    >>> sniff_format(b"<stata_dta><header><release>118")
    'dta'
    >>> sniff_format(b"id,age\\n1,50\\n")
    'text'
    """
    if head.startswith(b"$FL2"):
        return "sav"
    if head.startswith(b"$FL3"):
        return "zsav"
    if head.startswith(b"<stata_dta>"):
        return "dta"
    if len(head) >= 2 and head[0] in range(102, 116) and head[1] in (1, 2):
        # Stata 5-15 binary header: release byte, then byte order (1 = MSF, 2 = LSF)
        return "dta"
    if head.startswith(_SAS7BDAT_MAGIC):
        return "sas7bdat"
    if head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD") or head.startswith(
        b"HEADER RECORD*******LIBV8"
    ):
        return "xpt"
    if head.startswith(b"PAR1"):
        return "parquet"
    if b"SPSS PORT FILE" in head[:512] or b"SPSSPORT" in head[:1024]:
        return "por"
    if head and b"\x00" not in head[:4096]:
        return "text"
    return None


def compatible(claimed: str, found: str | None) -> bool:
    """Whether content sniffed as ``found`` can be read as ``claimed``."""
    if found is None:
        return claimed == "por"  # EBCDIC portable files are not recognised by their bytes
    if claimed == found:
        return True
    if {claimed, found} <= {"sav", "zsav"}:
        return True
    if claimed == "csv":
        return found == "text"
    if claimed == "por":
        return found in ("text", "por")
    return False


def short_reason(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an underlying error, without its full stop, for use inside ours.

    Examples
    --------
    >>> short_reason(ValueError("Magic bytes not found. Either corrupt or not parquet."))
    'Magic bytes not found'
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = re.split(r"(?<=[.!?])\s", text)[0].rstrip(".!? ")
    return first if len(first) <= limit else first[: limit - 3] + "..."
