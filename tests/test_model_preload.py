"""A build that needs the embedding model starts loading it in the background while it
reads and chunks the documents; one that does not need it never loads it.

The model is a stand-in (``tests.conftest.FakeEmbedder``) behind the real ``LazyEmbedder``
and build; the stand-in loader records which thread loaded it.
"""
from __future__ import annotations

import threading

import pytest

import rag.index.embedding
from rag.errors import RagError
from rag.retrieval.retriever import Retriever
from tests.conftest import FakeEmbedder


@pytest.fixture
def loads(monkeypatch):
    """Each model load: the name of the thread that did it."""
    threads: list[str] = []

    def load_embedder(name, engine=None):
        threads.append(threading.current_thread().name)
        return FakeEmbedder()

    monkeypatch.setattr(rag.index.embedding, "load_embedder", load_embedder)
    return threads


def _build(docs, index_dir, cache):
    return Retriever.build([docs], index_dir, model="fake/char-bigram", cache=cache, show_progress=False)


def test_a_cold_build_loads_the_model_in_the_background(loads, small_corpus, tmp_path):
    built = _build(small_corpus, tmp_path / "index", tmp_path / "cache.sqlite3")
    assert loads == ["rag-model-preload"]
    assert built.build_summary.embedded == built.build_summary.chunks > 0
    assert built.search("12351热线什么时候建成", k=1, mode="dense")[0].doc == "hotline.md"


def test_a_rebuild_from_the_cache_never_loads_the_model(loads, small_corpus, tmp_path):
    cache = tmp_path / "cache.sqlite3"
    _build(small_corpus, tmp_path / "index", cache)
    loads.clear()
    rebuilt = _build(small_corpus, tmp_path / "index", cache)
    assert loads == [] and rebuilt.build_summary.embedded == 0


def test_a_new_document_starts_the_load_while_reading(loads, small_corpus, tmp_path):
    """The cache knows the model, so only a chunk it lacks says the model will be needed."""
    cache = tmp_path / "cache.sqlite3"
    _build(small_corpus, tmp_path / "index", cache)
    loads.clear()
    (small_corpus / "moon.md").write_text("# 月球探测\n\n嫦娥六号于2024年6月从月球背面带回样品。", encoding="utf-8")
    rebuilt = _build(small_corpus, tmp_path / "index", cache)
    assert loads == ["rag-model-preload"]
    assert rebuilt.build_summary.embedded >= 1
    assert rebuilt.search("嫦娥六号带回了什么", k=1, mode="dense")[0].doc == "moon.md"


def test_a_model_that_fails_to_load_fails_the_build_with_its_error(monkeypatch, small_corpus, tmp_path):
    def broken(name, engine=None):
        raise RagError(f"cannot load the embedding model {name!r}: weights missing")

    monkeypatch.setattr(rag.index.embedding, "load_embedder", broken)
    with pytest.raises(RagError, match="weights missing"):
        _build(small_corpus, tmp_path / "index", tmp_path / "cache.sqlite3")
    assert not (tmp_path / "index").exists()
