"""The retriever inside LangChain and LlamaIndex, with the real packages (the optional extras)."""
from __future__ import annotations

import asyncio

import pytest

QUESTION = "12351热线是什么时候建成的？"


def test_langchain_retriever_returns_documents_with_provenance(small_retriever):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from rag.integrations.langchain import RagRetriever

    retriever = RagRetriever(retriever=small_retriever, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(QUESTION)
    assert 1 <= len(docs) <= 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert "12351" in top.page_content
    meta = top.metadata
    assert meta["doc"] == "hotline.md"
    assert meta["heading_path"] == ["职工服务热线", "热线建设"]
    assert meta["page"] is None  # text files have no pages
    source = small_retriever.source_text("hotline.md")
    assert "12351" in source[meta["start"]:meta["end"]]
    assert meta["score"] >= docs[-1].metadata["score"]
    assert top.id == meta["chunk_id"] == small_retriever.search(QUESTION, k=1)[0].chunk_id


def test_langchain_retriever_composes_in_a_chain_and_runs_async(small_retriever):
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda
    from rag.integrations.langchain import RagRetriever

    retriever = RagRetriever(retriever=small_retriever, k=2, mode="bm25")
    chain = retriever | RunnableLambda(lambda docs: "\n".join(f"[{d.metadata['doc']}] {d.page_content}"
                                                             for d in docs))
    assert "[hotline.md]" in chain.invoke(QUESTION)
    docs = asyncio.run(retriever.ainvoke("大熊猫吃什么？"))
    assert docs[0].metadata["doc"] == "panda.md" and docs[0].metadata["mode"] == "bm25"


def test_langchain_retriever_from_an_index_folder_and_bad_settings(small_retriever, tmp_path):
    pytest.importorskip("langchain_core")
    from rag.integrations.langchain import RagRetriever

    retriever = RagRetriever.from_index(small_retriever.index_dir, k=1, mode="bm25")  # BM25: no model load
    assert retriever.invoke("龙井茶")[0].metadata["doc"] == "tea.txt"
    with pytest.raises(ValueError, match="mode"):
        RagRetriever(retriever=small_retriever, mode="fuzzy")


def test_llamaindex_retriever_returns_scored_nodes_with_provenance(small_retriever):
    pytest.importorskip("llama_index.core")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore
    from rag.integrations.llamaindex import RagLlamaIndexRetriever

    retriever = RagLlamaIndexRetriever(small_retriever, k=3)
    assert isinstance(retriever, BaseRetriever)
    results = retriever.retrieve(QUESTION)
    assert 1 <= len(results) <= 3 and all(isinstance(r, NodeWithScore) for r in results)
    top = results[0]
    assert "12351" in top.node.get_content()
    assert top.node.metadata["doc"] == "hotline.md" and top.node.metadata["heading"] == "职工服务热线 > 热线建设"
    assert top.node.node_id == top.node.metadata["chunk_id"]
    assert top.score == pytest.approx(top.node.metadata["score"])
    with pytest.raises(ValueError, match="k must"):
        RagLlamaIndexRetriever(small_retriever, k=0)
