"""Entry point of the ``cimstats`` command.

Each command lives in its own module ``cimstats.cli.cmd_<name>`` exposing
``register(subparsers)``, which adds a sub-parser whose ``func(args)`` does the
work by calling the public API and returns an exit code.

Errors raised on purpose (:class:`cimstats.errors.CimstatsError`) are printed
as one sentence, without a traceback, and the command exits with status 2.
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cimstats import __version__

#: command modules, in the order they appear in ``cimstats --help``
COMMANDS: list[str] = ["inspect", "demo", "harmonise", "dictionary", "score", "networks", "qdpx", "joint", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def main(argv: list[str] | None = None) -> int:
    from cimstats.errors import CimstatsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CimstatsError as exc:
        if args.debug:
            raise
        print(f"cimstats: error: {exc}", file=sys.stderr)
        if getattr(exc, "report", None) is not None and len(exc.report):
            print(exc.report.summary(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cimstats: interrupted; no partial output was kept.", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: still one sentence, traceback on --debug
        if args.debug:
            raise
        print(
            f"cimstats: unexpected error ({type(exc).__name__}: {exc}); "
            "re-run with --debug to see where it happened.",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
