"""The command line: one module per command, its parser and its handler together.

Each ``*_cmd`` module has ``NAME``, ``add_parser(subparsers)`` and ``run(args) -> int``. Only
this package sees argparse; below it, library functions take typed arguments. Parsers import
nothing heavy, so ``genrescope --help`` is fast; a handler imports what its command needs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from genrescope.version import __version__

#: the commands in the order ``genrescope --help`` lists them
COMMANDS = ("predict", "info", "features", "dataset", "train", "evaluate", "compare", "embed", "models", "export",
            "serve", "plot", "filters", "tag", "learn")

EPILOG = "Run 'genrescope COMMAND --help' for the options of one command."


def _module(name: str):
    return importlib.import_module(f"genrescope.commands.{name}_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genrescope",
        description="Tell what genre a piece of music is, and how that belief moves through the song.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"genrescope {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        _module(name).add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Audio warnings (damaged, silent) as one line each, like the errors; others as Python shows them."""
    from genrescope.errors import DamagedAudioWarning, SilentAudioWarning

    if issubclass(category, (DamagedAudioWarning, SilentAudioWarning)):
        print(f"genrescope: warning: {message}", file=file or sys.stderr)
    else:
        import warnings

        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrescope`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    import warnings

    from genrescope.errors import GenrescopeError

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(_module(args.command).run(args) or 0)
    except GenrescopeError as e:
        print(f"genrescope: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genrescope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head
        return 0


__all__ = ["COMMANDS", "build_parser", "main"]
