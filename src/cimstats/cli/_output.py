"""Everything the ``cimstats`` command prints goes through :func:`say`.

Labels, file names and messages come from survey files, dictionaries and QDA
projects. A terminal obeys the control characters in them: an ANSI or OSC
escape sequence hidden in a variable label could recolour the screen, rewrite
the window title, hide text or plant a clickable link. :func:`terminal_text`
shows every such character as a visible escape (``\\x1b``, ``\\u202e``)
instead, so the text reaches the screen as inert characters. Newlines and
tabs are kept; a carriage return, which would overwrite the line, is shown
as ``\\r``.

Examples
--------
>>> terminal_text("label \\x1b[31mred\\x1b[0m")
'label \\\\x1b[31mred\\\\x1b[0m'
>>> terminal_text("two\\nlines\\tok")
'two\\nlines\\tok'
"""

from __future__ import annotations

import re
import sys

__all__ = ["terminal_text", "say"]

# C0 controls but tab and newline, DEL, C1 controls (CSI, OSC... in 8 bits), and the bidirectional controls that
# reorder what is shown (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def terminal_text(text) -> str:
    """``text`` with every control character that a terminal would act on written as a visible escape."""
    return _CONTROL.sub(_visible, str(text))


def say(*parts, file=None, sep: str = " ", end: str = "\n") -> None:
    """Print like :func:`print`, with :func:`terminal_text` applied to everything printed."""
    stream = file if file is not None else sys.stdout
    stream.write(terminal_text(sep.join(str(p) for p in parts)) + end)
