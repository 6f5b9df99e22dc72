"""The ``cirscope`` command line: builds the parser from the command modules and dispatches.

Each command lives in its own module with ``register(subparsers)`` and ``run(args)``; heavy
imports (torch, open_clip, Ray) stay inside the commands, so ``cirscope --help`` is quick.
"""

from __future__ import annotations

import argparse
import sys

from cirscope._core.errors import ModelLoadError
from cirscope._core.text import terminal_text
from cirscope._version import __version__
from cirscope.cli import _audit, _bench, _demo, _embed, _eval, _export_page, _toy_eval
from cirscope.cli._errors import CliError

#: The commands, in the order ``cirscope --help`` lists them.
COMMANDS = (_embed, _toy_eval, _eval, _audit, _bench, _demo, _export_page)


def build_parser() -> argparse.ArgumentParser:
    """The ``cirscope`` argument parser with every command."""
    parser = argparse.ArgumentParser(prog="cirscope", description="Explore image-embedding spaces.")
    parser.add_argument("--version", action="version", version=f"cirscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``cirscope`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (CliError, ModelLoadError, FileNotFoundError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"cirscope {args.command}: error: {terminal_text(message)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
