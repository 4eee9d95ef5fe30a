"""Every command-line argument explains itself, and errors name the options as typed on the command line."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from cimstats.cli.main import COMMANDS, build_parser, cli_words, main

def _walk(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield path + [name], "(the command itself)", helps.get(name)
                yield from _walk(sub, path + [name])
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_argument_and_option_has_a_help_line():
    parser = build_parser()
    seen, missing = set(), []
    for path, what, text in _walk(parser, ["cimstats"]):
        if len(path) > 1:
            seen.add(path[1])
        if not text or text == argparse.SUPPRESS or not str(text).strip():
            missing.append(f"{' '.join(path)} {what}")
    assert seen == set(COMMANDS)
    assert not missing, missing


def test_errors_name_the_command_line_option(tmp_path, capsys):
    f = tmp_path / "x.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(f, index=False)
    assert main(["inspect", str(f), "--format", "xyz"]) == 2
    err = capsys.readouterr().err
    assert "`--format`" in err and "`format`" not in err
    assert main(["inspect", str(f), "--variables", "zz"]) == 2
    err = capsys.readouterr().err
    assert "`--variables`" in err and "columns=" not in err
    assert main(["networks", str(f), "--egos", str(f)]) == 2
    err = capsys.readouterr().err
    assert "`--ego-column`" in err and "columns=" not in err
    assert main(["score", str(f), "--instrument", "no_such_scale"]) == 2
    assert "`--instrument=" in capsys.readouterr().err


@pytest.mark.parametrize("message, expected", [
    ("`out_of_range='x'` is not known.", "`--out-of-range='x'` is not known."),
    ("check `columns=` (e.g. columns={'ego': 'pid'}).", "check `--ego-column`."),
    ("map them with `items={item: column}`.", "map them with `--map`."),
    ("`outcome` is not a column.", "`outcome` is not a column."),  # not an option of the command: unchanged
])
def test_cli_words(message, expected):
    assert cli_words(message, {"out_of_range": "--out-of-range", "columns": "--ego-column", "items": "--map"}) == expected
