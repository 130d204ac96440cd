"""A LangChain retriever over a ``rag`` index.

::

    from rag.integrations.langchain import RagRetriever
    retriever = RagRetriever.from_index(".rag/index", k=5)        # or RagRetriever(retriever=Retriever.load(...))
    docs = retriever.invoke("12351热线什么时候全面建成？")
    docs[0].page_content, docs[0].metadata["doc"], docs[0].metadata["heading_path"], docs[0].metadata["page"]

It is a ``langchain_core.retrievers.BaseRetriever``, so it plugs into any chain
(``retriever | format_docs``), agent tool or ``EnsembleRetriever``. Each
``Document`` has the passage as ``page_content``, the chunk id as ``id`` and the
provenance in ``metadata`` (see ``rag.integrations.hit_metadata``). Needs
``langchain-core`` (``pip install 'rag-zh[langchain]'``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise ImportError("rag.integrations.langchain needs langchain-core: pip install 'rag-zh[langchain]'") from exc
from pydantic import ConfigDict, Field

from rag.integrations import hit_metadata
from rag.types import Hit
from rag.vocabulary import MODES

__all__ = ["RagRetriever", "hit_to_document"]


def hit_to_document(hit: Hit) -> Document:
    """One retrieved passage as a LangChain ``Document``."""
    return Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.chunk_id)


class RagRetriever(BaseRetriever):
    """Hybrid (or dense, or BM25) search of a ``rag.Retriever`` as a LangChain retriever.

    ``retriever``: a loaded ``rag.Retriever`` (or anything with its ``search``);
    ``k``: passages per query; ``mode``: ``hybrid`` (default), ``dense`` or ``bm25``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any = Field(description="a rag.Retriever")
    k: int = Field(default=5, ge=1, le=50)
    mode: str = "hybrid"

    def model_post_init(self, context: Any) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")

    @classmethod
    def from_index(cls, index_dir: str | Path, **kwargs: Any) -> "RagRetriever":
        """Open the index at ``index_dir`` (``rag.Retriever.load``) and wrap it."""
        from rag import Retriever

        return cls(retriever=Retriever.load(index_dir), **kwargs)

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(hit) for hit in self.retriever.search(query, k=self.k, mode=self.mode)]
