"""Embedding models: how they are named, loaded or materialized.

``load_embedder(name_or_path)`` returns an object with the ``Embedder``
interface below. ``rag`` only talks to that interface.
"""
from embeddings.base import Embedder, load_embedder

__all__ = ["Embedder", "load_embedder"]
