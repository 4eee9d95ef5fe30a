"""Entry point of the ``cimstats`` command.

Each command lives in its own module ``cimstats.cli.cmd_<name>`` exposing
``register(subparsers)``, which adds a sub-parser whose ``func(args)`` does the
work by calling the public API and returns an exit code.

Everything printed goes through :func:`cimstats.cli._output.say`, which
shows control characters (terminal escape sequences hidden in labels or file
names) as visible escapes.

Errors raised on purpose (:class:`cimstats.errors.CimstatsError`) are printed
as one sentence, without a traceback, and the command exits with status 2.
``--debug`` shows the traceback instead. The sentence names the command's
options as typed on the command line: where the library names one of its
Python arguments in backquotes (`` `format` ``, `` `columns=` ``), the
option that sets it (``--format``, ``--variables``) is named instead (see
:func:`cli_words`; a command module may list the Python arguments whose
option has another name in ``API_FLAGS``).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings

from cimstats import __version__
from cimstats.cli._output import say

#: command modules, in the order they appear in ``cimstats --help``
COMMANDS: list[str] = ["inspect", "demo", "harmonise", "dictionary", "score", "networks", "qdpx", "joint", "run", "power"]


class _Parser(argparse.ArgumentParser):
    """argparse's messages quote what was typed (file names, choices): printed through :func:`say` too."""

    def _print_message(self, message, file=None):
        if message:
            say(message, file=file or sys.stderr, end="")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # warnings name labels and values from the files read: they reach the terminal through say() as well
    say(f"cimstats: {category.__name__}: {message}", file=file or sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cimstats",
        description=(
            "Harmonise labelled survey files, score scales and network measures, fit "
            "multilevel and structural equation models, and build joint displays."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cimstats {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"cimstats.cli.cmd_{name}")
        module.register(sub)
    return parser


def flag_names(parser: argparse.ArgumentParser, command: str | None) -> dict[str, str]:
    """Python argument name -> the option that sets it, for one command.

    Every option's destination maps to its long option (``out_of_range`` ->
    ``--out-of-range``); the command module's ``API_FLAGS`` adds the library
    arguments whose option is named differently (``columns`` -> ``--variables``).
    """
    names: dict[str, str] = {}
    sub = None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(command)
    if sub is None:
        return names
    for action in sub._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest != "help":
            names[action.dest] = longs[0]
    module = sys.modules.get(f"cimstats.cli.cmd_{command}")
    names.update(getattr(module, "API_FLAGS", {}))
    return names


def cli_words(message: str, names: dict[str, str]) -> str:
    """``message`` with each backquoted Python argument name replaced by its command-line option.

    Examples
    --------
    >>> cli_words("`format`='x' is not a survey format; check `columns=` (e.g. columns=['a']).",
    ...           {"format": "--format", "columns": "--variables"})
    "`--format`='x' is not a survey format; check `--variables`."
    """
    if not names:
        return message
    pattern = re.compile(r"`(" + "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True)) + r")(?:=([^`]*))?`")

    def swap(m: re.Match) -> str:
        value = (m.group(2) or "").strip()
        # a Python value ({...}, [...]) is not what the option takes: name the option alone
        if not value or value[0] in "{[(":
            return f"`{names[m.group(1)]}`"
        return f"`{names[m.group(1)]}={value}`"

    out = pattern.sub(swap, message)
    # a parenthesised Python example of an argument that now reads as an option is left out
    for k in names:
        out = re.sub(r"\s*\((?:e\.g\.|for example)[^()]*\b" + re.escape(k) + r"=(?:[^()]|\([^()]*\))*\)", "", out)
    return out


def main(argv: list[str] | None = None) -> int:
    from cimstats.errors import CimstatsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except CimstatsError as exc:
        if args.debug:
            raise
        say(f"cimstats: error: {cli_words(str(exc), flag_names(parser, args.command))}", file=sys.stderr)
        if getattr(exc, "report", None) is not None and len(exc.report):
            say(exc.report.summary(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("cimstats: interrupted; no partial output was kept.", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: still one sentence, traceback on --debug
        if args.debug:
            raise
        say(
            f"cimstats: unexpected error ({type(exc).__name__}: {exc}); "
            "re-run with --debug to see where it happened.",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
