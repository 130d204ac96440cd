"""Moved: the Retriever now lives in ``rag.retrieval.retriever`` (``from rag import Retriever``).

Kept so that code written against ``rag.retriever`` goes on working.
"""
from rag.retrieval.retriever import ADD_LOCK_WAIT, BuildSummary, IndexState, Retriever

__all__ = ["ADD_LOCK_WAIT", "BuildSummary", "IndexState", "Retriever"]
