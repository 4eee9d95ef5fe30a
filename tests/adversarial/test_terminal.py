"""Terminal escapes: what ``cimstats`` prints never carries a control sequence from a file to the terminal."""

from __future__ import annotations

import re
import warnings

import pandas as pd
import pytest

from cimstats.cli._output import terminal_text
from cimstats.cli.main import main
from cimstats.io import Survey, VariableMeta, write_survey

# clear screen, recolour, set the window title (OSC 0), a hyperlink (OSC 8), 8-bit CSI, a right-to-left override
SEQUENCES = ["\x1b[2J", "\x1b[31m", "\x1b]0;owned\x07", "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\",
             "\x9b31m", "\u202e", "\r"]
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _assert_inert(text: str) -> None:
    assert not _RAW.search(text), repr(_RAW.search(text).group(0))


@pytest.mark.parametrize("seq", SEQUENCES)
def test_terminal_text_shows_controls_as_visible_escapes(seq):
    out = terminal_text(f"a{seq}b\nc\td")
    _assert_inert(out)
    assert out.startswith("a") and out.endswith("b\nc\td")


def test_inspect_prints_labels_without_escape_sequences(tmp_path, capsys):
    label = "Age " + "".join(SEQUENCES[:5])
    s = Survey(pd.DataFrame({"age": [40.0, 50.0], "name": ["x\x1b[8mhidden", "y"]}),
               {"age": VariableMeta("age", label=label, value_labels={40.0: "forty\x1b[5m"}),
                "name": VariableMeta("name", storage="string")})
    sav = tmp_path / "esc\x1b[1m.sav"
    write_survey(s, sav)
    assert main(["inspect", str(sav)]) == 0
    out = capsys.readouterr()
    _assert_inert(out.out)
    _assert_inert(out.err)
    assert "\\x1b[2J" in out.out and "forty\\x1b[5m" in out.out and "\\x1b[8mhidden" in out.out


def test_errors_and_argparse_messages_are_inert(tmp_path, capsys):
    missing = tmp_path / "no\x1b]0;owned\x07such.sav"
    assert main(["inspect", str(missing)]) == 2
    _assert_inert(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(["qdpx", "x.qdpx", "--positions", "\x1b[31mred"])
    _assert_inert(capsys.readouterr().err)


def test_warnings_shown_by_the_command_are_inert(tmp_path, capsys, monkeypatch):
    import cimstats.cli.cmd_inspect as cmd

    def noisy(args):
        warnings.warn("label \x1b[31mred", UserWarning)
        return 0

    monkeypatch.setattr(cmd, "run", noisy)
    assert main(["inspect", "whatever.sav"]) == 0
    err = capsys.readouterr().err
    _assert_inert(err)
    assert "\\x1b[31m" in err
