"""The ``rag`` command line: one subcommand per module in ``rag/commands``.

Each command module exposes ``register(subparsers)``, which adds its parser and
sets ``func`` to a function ``run(args) -> int``. Command modules import heavy
libraries inside ``run`` only, so ``rag --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

from rag.errors import RagError

COMMAND_MODULES = [
    "rag.commands.chunks",   # rag chunks
    "rag.commands.index",    # rag index, rag search
    "rag.commands.ask",      # rag ask, rag chat
    "rag.commands.eval",     # rag eval
    "rag.commands.serve",    # rag serve
    "rag.commands.bench",    # rag bench
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Question answering over Chinese documents, with cited sources.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RagError as exc:
        from rag.commands.common import terminal_safe

        print(f"rag {args.command}: error: {terminal_safe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
