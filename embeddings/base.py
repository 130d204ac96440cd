"""The interface between ``rag`` and an embedding model."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``name`` identifies the model (recorded in an index's manifest so that an
    index is never queried with vectors from another model); ``dim`` is the
    vector size. Queries and passages are encoded separately because some
    models (e5) need different prefixes for each.
    """

    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


def load_embedder(name_or_path: str | None = None, **options) -> Embedder:
    """Load the configured embedding model (see embeddings/README in the module docs)."""
    from embeddings.loading import load  # heavy: imports torch lazily

    return load(name_or_path, **options)
