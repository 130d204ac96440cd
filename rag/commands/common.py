"""Arguments shared by several subcommands."""
from __future__ import annotations

import argparse

from rag import config


def add_index_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        metavar="DIR",
        default=None,
        help=f"index directory (default: $RAG_INDEX or {config.DEFAULT_INDEX_DIR})",
    )
