"""A LlamaIndex retriever over a ``rag`` index.

::

    from rag.integrations.llamaindex import RagLlamaIndexRetriever
    retriever = RagLlamaIndexRetriever.from_index(".rag/index", k=5)
    for result in retriever.retrieve("12351热线什么时候全面建成？"):
        result.score, result.node.get_content(), result.node.metadata["doc"]

It is a ``llama_index.core.retrievers.BaseRetriever``, so it works with
``RetrieverQueryEngine`` and the rest of LlamaIndex. Each ``NodeWithScore``
holds a ``TextNode`` (the passage, id = chunk id, provenance in ``metadata``;
see ``rag.integrations.hit_metadata``) and the retrieval score. Needs
``llama-index-core`` (``pip install 'rag-zh[llamaindex]'``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise ImportError("rag.integrations.llamaindex needs llama-index-core: "
                      "pip install 'rag-zh[llamaindex]'") from exc

from rag.integrations import hit_metadata
from rag.types import Hit
from rag.vocabulary import MODES

__all__ = ["RagLlamaIndexRetriever", "hit_to_node"]


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One retrieved passage as a LlamaIndex ``NodeWithScore``."""
    node = TextNode(id_=hit.chunk_id, text=hit.text, metadata=hit_metadata(hit))
    return NodeWithScore(node=node, score=float(hit.score))


class RagLlamaIndexRetriever(BaseRetriever):
    """Search of a ``rag.Retriever`` (``k`` passages, ``mode`` hybrid/dense/bm25) for LlamaIndex."""

    def __init__(self, retriever: Any, k: int = 5, mode: str = "hybrid", **kwargs: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if not 1 <= int(k) <= 50:
            raise ValueError(f"k must be between 1 and 50, not {k!r}")
        self.retriever, self.k, self.mode = retriever, int(k), mode
        super().__init__(**kwargs)

    @classmethod
    def from_index(cls, index_dir: str | Path, **kwargs: Any) -> "RagLlamaIndexRetriever":
        """Open the index at ``index_dir`` (``rag.Retriever.load``) and wrap it."""
        from rag import Retriever

        return cls(Retriever.load(index_dir), **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [hit_to_node(hit) for hit in self.retriever.search(query_bundle.query_str, k=self.k,
                                                                  mode=self.mode)]
