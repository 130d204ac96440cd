"""``rag``'s retriever in other frameworks' own terms (optional extras).

* ``rag.integrations.langchain``: ``RagRetriever``, a LangChain ``BaseRetriever``
  returning ``Document``s (``pip install 'rag-zh[langchain]'``);
* ``rag.integrations.llamaindex``: ``RagLlamaIndexRetriever``, a LlamaIndex
  ``BaseRetriever`` returning ``NodeWithScore``s (``pip install 'rag-zh[llamaindex]'``).

Both carry each passage's provenance in the metadata: ``doc``, ``heading_path``,
``page``, ``start``/``end`` (character offsets into the original text), ``score``,
``chunk_id`` and the retrieval ``mode``.
"""
from __future__ import annotations

from typing import Any

from rag.types import Hit


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """The provenance of a retrieved passage, as both integrations put it in metadata."""
    return {
        "doc": hit.doc,
        "heading_path": list(hit.heading_path),
        "heading": " > ".join(hit.heading_path),
        "page": getattr(hit, "page", None),
        "start": hit.start,
        "end": hit.end,
        "score": float(hit.score),
        "chunk_id": hit.chunk_id,
        "mode": hit.mode,
    }
