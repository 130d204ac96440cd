"""The names the library, the CLI and the UI accept, in one place.

Each tuple is the full set of choices for one setting; modules that implement
a choice import its tuple from here, and argparse ``choices=`` use the same
tuples, so a new name is added once.
"""
from __future__ import annotations

from typing import Sequence

#: Search modes: embedding cosine, keywords, or both fused.
MODES = ("hybrid", "dense", "bm25")

#: Answer generators (``rag ask --generator``, ``rag serve --generator``, the UI).
GENERATORS = ("extractive", "transformers", "openai", "llamacpp", "local")

#: Kinds of FAISS index for the local store (see rag.index.stores.faiss_dense).
DENSE_KINDS = ("flat", "hnsw", "ivf", "auto")

#: How sentence views are embedded (see rag.index.embedding.DEFAULT_VIEW_METHOD).
VIEW_METHODS = ("late", "separate")

#: What a sentence view carries in front of its sentence (see rag.retrieval.passages.VIEW_HEADERS).
VIEW_HEADERS = ("path", "title", "none")

#: How ``hybrid`` combines the dense and BM25 lists (see rag.retrieval.fusion).
FUSION_METHODS = ("rrf", "minmax", "zscore")

#: Where an index keeps its vectors and keyword index (see rag.index.stores).
STORES = ("local", "milvus")


def check_choice(what: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ``InvalidArgumentError`` listing them."""
    if value not in choices:
        from rag.errors import InvalidArgumentError

        raise InvalidArgumentError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value
