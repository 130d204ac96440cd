"""Managing the documents of an index: delete, re-index, and what the index records about each."""
from __future__ import annotations

import pytest

from rag.errors import DocumentNotFoundError, RagError
from rag.retrieval.retriever import Retriever


def test_delete_removes_a_document_everywhere_and_persists(small_retriever, tmp_path):
    before = len(small_retriever)
    panda_chunks = [c for c in small_retriever.chunks if c.doc == "panda.md"]
    assert panda_chunks
    summary = small_retriever.delete_documents(["panda.md"])

    assert summary.removed == ["panda.md"] and summary.embedded == 0
    assert "panda.md" not in small_retriever.documents
    assert len(small_retriever) == before - len(panda_chunks)
    for mode in ("bm25", "dense", "hybrid"):
        hits = small_retriever.search("大熊猫主要生活在哪里？", k=10, mode=mode)
        assert all(h.doc != "panda.md" for h in hits)
    assert small_retriever.search("12351热线什么时候建成？", k=1)[0].doc == "hotline.md"

    reloaded = Retriever.load(tmp_path / "index", embedder=small_retriever.embedder, cache=None)
    assert sorted(reloaded.documents) == sorted(small_retriever.documents)
    assert len(reloaded) == len(small_retriever)
    assert all(h.doc != "panda.md" for h in reloaded.search("大熊猫 竹子", k=10, mode="hybrid"))


def test_delete_never_loads_the_model(small_retriever, tmp_path, monkeypatch):
    import rag.index.embedding as embedding_module

    def no_model(name, engine=None):
        raise AssertionError("delete_documents loaded the embedding model")

    monkeypatch.setattr(embedding_module, "load_embedder", no_model)
    reloaded = Retriever.load(tmp_path / "index", cache=tmp_path / "cache.sqlite3")
    reloaded.delete_documents("tea.txt")
    assert "tea.txt" not in Retriever.load(tmp_path / "index").documents


def test_delete_of_an_unknown_document_changes_nothing(small_retriever, tmp_path):
    manifest = (tmp_path / "index" / "manifest.json").read_bytes()
    with pytest.raises(DocumentNotFoundError, match="nope.txt"):
        small_retriever.delete_documents(["panda.md", "nope.txt"])
    assert "panda.md" in small_retriever.documents
    assert (tmp_path / "index" / "manifest.json").read_bytes() == manifest


def test_deleting_the_last_document_is_refused(make_retriever, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "only.md").write_text("# 唯一\n\n这是唯一的一篇文档，讲的是长江的源头。\n", encoding="utf-8")
    retriever = make_retriever([folder], index_dir=tmp_path / "one-index")
    with pytest.raises(RagError, match="cannot be empty"):
        retriever.delete_documents(["only.md"])
    assert retriever.documents == ["only.md"]


def test_each_document_records_when_it_was_added(small_retriever, small_corpus, tmp_path):
    records = {s.doc: s for s in small_retriever.sources}
    assert set(records) == set(small_retriever.documents)
    assert all(s.added and s.added[:2] == "20" for s in records.values())
    assert all(s.text == "" for s in records.values())  # metadata only

    # Unchanged documents keep their time through an add and a reload.
    new = tmp_path / "new.md"
    new.write_text("# 新文档\n\n南海观测站于2019年5月建成。\n", encoding="utf-8")
    small_retriever.add([new])
    reloaded = {s.doc: s for s in Retriever.load(tmp_path / "index").sources}
    assert reloaded["panda.md"].added == records["panda.md"].added
    assert reloaded["new.md"].added


def test_force_re_indexes_an_unchanged_document(small_retriever, small_corpus):
    path = small_corpus / "tea.txt"
    assert small_retriever.add([path]).unchanged == ["tea.txt"]
    summary = small_retriever.add([path], force=True)
    assert summary.replaced == ["tea.txt"] and not summary.unchanged
    assert small_retriever.search("龙井茶产于哪里？", k=1)[0].doc == "tea.txt"
