"""rag: retrieval-augmented question answering over Chinese documents.

Public API (names are stable; other programs rely on them)::

    from rag import Retriever, Hit, Assistant, Answer, Citation, Chunk

Importing ``rag`` is light: heavy modules (faiss, torch, the model) load only
when a retriever or model is actually used.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from rag.types import Answer, Chunk, Citation, Hit

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Hit", "Retriever"]

_LAZY = {
    "Retriever": "rag.retrieval.retriever",
    "Assistant": "rag.answering.assistant",
}

if TYPE_CHECKING:  # pragma: no cover
    from rag.answering.assistant import Assistant
    from rag.retrieval.retriever import Retriever


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
