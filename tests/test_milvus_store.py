"""The Milvus store against a real engine: Milvus Lite (pymilvus + milvus-lite, in a local file).

Milvus Lite re-implements Milvus in process; the store uses only API that a Milvus
2.5+ server also has (BM25 function with the jieba analyzer, filtered search,
delete by filter, collection properties), so these tests prove our use of it.
"""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from conftest import FakeEmbedder  # noqa: E402
from rag import Assistant  # noqa: E402
from rag.errors import IndexMismatchError, RagError  # noqa: E402
from rag.index.stores.milvus import MilvusStore, MilvusStoreError  # noqa: E402
from rag.retrieval.retriever import Retriever  # noqa: E402

pytestmark = pytest.mark.milvus


@pytest.fixture
def milvus_uri(tmp_path):
    return str(tmp_path / "milvus" / "kb.db")


@pytest.fixture
def milvus_retriever(make_retriever, small_corpus, milvus_uri, tmp_path):
    (tmp_path / "milvus").mkdir()
    return make_retriever([small_corpus], store="milvus", milvus_uri=milvus_uri, collection="kb")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_in_every_mode_finds_the_passage(milvus_retriever, mode):
    hits = milvus_retriever.search("12351热线什么时候全面建成运行？", k=3, mode=mode)
    assert hits and hits[0].doc == "hotline.md" and "12351" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    source = milvus_retriever.source_text(hits[0].doc)
    assert "12351" in source[hits[0].start:hits[0].end]


def test_the_manifest_names_the_store_and_load_reopens_it_without_flags(milvus_retriever, fake_embedder,
                                                                          milvus_uri):
    manifest = json.loads((milvus_retriever.index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["store"]["kind"] == "milvus" and manifest["store"]["collection"] == "kb"
    assert manifest["store"]["uri"] == milvus_uri
    assert not (milvus_retriever.index_dir / "vectors.npy").exists()  # the vectors live in Milvus
    reloaded = Retriever.load(milvus_retriever.index_dir, embedder=fake_embedder)
    assert reloaded.store.kind == "milvus" and len(reloaded) == len(milvus_retriever)
    assert reloaded.search("大熊猫吃什么", k=1)[0].doc == "panda.md"
    assert sorted(c.id for c in reloaded.chunks) == sorted(c.id for c in milvus_retriever.chunks)


def test_an_added_document_is_found_at_once_and_a_changed_one_replaces_its_chunks(
        milvus_retriever, tmp_path, small_corpus):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "river.md").write_text("# 长江\n\n长江全长6300公里，是中国第一长河。", encoding="utf-8")
    summary = milvus_retriever.add([extra])
    assert summary.added == ["river.md"]
    assert milvus_retriever.search("长江有多长", k=1, mode="bm25")[0].doc == "river.md"
    before = len(milvus_retriever)
    tea_before = sum(c.doc == "tea.txt" for c in milvus_retriever.chunks)
    (small_corpus / "tea.txt").write_text("龙井茶简介\n\n西湖龙井产于杭州，今年新茶每斤售价八千元。\n", encoding="utf-8")
    summary = milvus_retriever.add([small_corpus / "tea.txt"])
    assert summary.replaced == ["tea.txt"]
    tea = [c for c in milvus_retriever.chunks if c.doc == "tea.txt"]
    assert tea and all("清明" not in c.text for c in tea)  # the old chunks are gone
    assert any("八千元" in h.text for h in milvus_retriever.search("龙井多少钱一斤", k=3, mode="hybrid"))
    assert len(milvus_retriever) == before - tea_before + len(tea)


def test_a_deleted_document_is_gone_from_every_mode_and_after_reopening(milvus_retriever, fake_embedder):
    summary = milvus_retriever.delete_documents("panda.md")
    assert summary.removed == ["panda.md"] and "panda.md" not in milvus_retriever.documents
    for mode in ("dense", "bm25", "hybrid"):
        assert all(h.doc != "panda.md" for h in milvus_retriever.search("大熊猫 竹子", k=10, mode=mode))
    reloaded = Retriever.load(milvus_retriever.index_dir, embedder=fake_embedder)
    assert all(c.doc != "panda.md" for c in reloaded.chunks)
    store = reloaded.store
    rows = store.client.query(store.collection, filter='doc == "panda.md"', output_fields=["pk"])
    assert rows == []  # deleted from Milvus, not only hidden


def test_a_failed_write_changes_nothing_and_its_rows_stay_invisible(milvus_retriever, tmp_path, monkeypatch):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "river.md").write_text("# 长江\n\n长江全长6300公里，是中国和亚洲的第一长河，流经十一个省级行政区。"
                                    "长江发源于青藏高原唐古拉山脉各拉丹冬峰西南侧的冰川。", encoding="utf-8")
    store = milvus_retriever.store
    real_insert = store.client.insert
    calls = []

    def insert_then_fail(collection, rows):  # a fault: the server goes away mid-write
        calls.append(collection)
        if collection.endswith("_views"):  # the chunks are written, their sentence views are not
            raise ConnectionError("server went away")
        return real_insert(collection, rows)

    monkeypatch.setattr(store.client, "insert", insert_then_fail)
    with pytest.raises(MilvusStoreError, match="the index is unchanged"):
        milvus_retriever.add([extra])
    monkeypatch.setattr(store.client, "insert", real_insert)
    assert "river.md" not in milvus_retriever.documents
    assert all(h.doc != "river.md" for h in milvus_retriever.search("长江", k=10, mode="bm25"))
    orphans = store.client.query(store.collection, filter='doc == "river.md"', output_fields=["pk"])
    assert orphans  # written but invisible...
    milvus_retriever.delete_documents("tea.txt")  # ...until the next write cleans them up
    assert store.client.query(store.collection, filter='doc == "river.md"', output_fields=["pk"]) == []


def test_another_model_or_dimension_is_refused_naming_both(milvus_retriever, make_retriever, small_corpus,
                                                           milvus_uri, tmp_path):
    with pytest.raises(IndexMismatchError) as err:
        make_retriever([small_corpus], tmp_path / "other", store="milvus", milvus_uri=milvus_uri,
                       collection="kb", embedder=FakeEmbedder(name="other/model", dim=32))
    assert "fake/char-bigram" in str(err.value) and "other/model" in str(err.value)
    assert "64" in str(err.value) and "32" in str(err.value)
    assert not (tmp_path / "other").exists()  # nothing half-written
    assert milvus_retriever.search("大熊猫", k=1, mode="bm25")[0].doc == "panda.md"


def test_a_missing_collection_or_an_unreachable_server_is_a_clear_error(milvus_retriever, fake_embedder):
    store = milvus_retriever.store
    store.client.drop_collection("kb")
    with pytest.raises(MilvusStoreError, match="collection 'kb'.*does not exist"):
        Retriever.load(milvus_retriever.index_dir, embedder=fake_embedder)
    with pytest.raises(MilvusStoreError, match="cannot reach the Milvus server at http://127.0.0.1:9"):
        MilvusStore.create("http://127.0.0.1:9", "kb", 64, "fake/char-bigram", True)


def test_a_lite_file_another_process_holds_is_a_clear_error(milvus_retriever, milvus_uri):
    import subprocess
    import sys

    code = ("import sys\nfrom rag.index.stores.milvus import connect\n"
            f"try:\n    connect({milvus_uri!r})\nexcept Exception as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "one process use a file at a time" in result.stdout, result.stdout + result.stderr[-500:]


def test_serve_rebuilds_an_outdated_milvus_index_into_milvus(milvus_retriever, small_corpus, fake_embedder,
                                                             tmp_path):
    from rag.commands.serve import open_index

    manifest_path = milvus_retriever.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["format_version"] = 1  # an index of an older format: serve rebuilds it from --docs
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    milvus_retriever.store.close()
    rebuilt = open_index(milvus_retriever.index_dir, [small_corpus], embedder=fake_embedder,
                         cache=tmp_path / "cache.sqlite3", show_progress=False)
    assert rebuilt.store.kind == "milvus" and rebuilt.settings.collection == "kb"
    assert rebuilt.search("大熊猫", k=1, mode="bm25")[0].doc == "panda.md"


def test_a_milvus_build_needs_a_uri(make_retriever, small_corpus, monkeypatch):
    with pytest.raises(RagError, match="needs a URI"):
        make_retriever([small_corpus], store="milvus")


def test_the_assistant_answers_over_milvus_with_citations(milvus_retriever):
    answer = Assistant(milvus_retriever).ask("12351职工服务热线什么时候全面建成运行？")
    assert not answer.abstained and answer.citations
    assert answer.citations[0].doc == "hotline.md" and "2023年12月29日" in answer.text + answer.citations[0].quote


def test_the_fusion_pool_scores_are_exact_and_what_the_candidate_lists_hold_costs_no_call(
        milvus_retriever, make_retriever, small_corpus, tmp_path, fake_embedder, monkeypatch):
    local = make_retriever([small_corpus], tmp_path / "local-index")
    every = [c.id for c in local.chunks]
    store = milvus_retriever.store
    fresh = Retriever.load(milvus_retriever.index_dir, embedder=fake_embedder).store  # has listed nothing
    for query in ["12351热线什么时候全面建成运行？", "大熊猫吃什么", "龙井茶的价格"]:
        qvec = milvus_retriever.query_vector(query)
        store.dense_candidates(qvec, 2)  # short lists: most of the pool lies below their floors
        store.keyword_candidates(query, 2)
        dense = store.dense_scores(every, qvec)
        expected = local.store.dense_scores(every, qvec)  # exact: every vector and view at hand
        assert dense.keys() == set(every)
        assert all(abs(dense[c] - expected[c]) < 1e-5 for c in every), (dense, expected)
        assert store.keyword_scores(every, query) == pytest.approx(fresh.keyword_scores(every, query))

    calls = []

    class Counting:
        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self.client, name)

    query = "大熊猫吃什么"
    qvec = milvus_retriever.query_vector(query)
    store.dense_candidates(qvec, 50)  # the small corpus fits in both lists whole
    store.keyword_candidates(query, 50)
    monkeypatch.setattr(store, "client", Counting(store.client))
    assert store.dense_scores(every, qvec) == pytest.approx(local.store.dense_scores(every, qvec))
    store.keyword_scores(every, query)
    assert calls == []


def test_a_knowledge_base_over_milvus_reports_its_store_and_model_from_the_index_settings(milvus_retriever):
    from rag.server.knowledge_bases import KnowledgeBase

    status = KnowledgeBase("kb", milvus_retriever).status()
    assert status["store"] == "milvus" and status["dense_index"] == "milvus-flat"
    assert status["model"] == "fake/char-bigram" and status["dimension"] == 64
    assert status["chunks"] == len(milvus_retriever) and status["documents"] == 4
    assert status["sentence_views"] == milvus_retriever.store.describe()["views"] > 0
    milvus_retriever.delete_documents("panda.md")  # the status follows the index as written
    after = KnowledgeBase("kb", milvus_retriever).status()
    assert after["documents"] == 3 and after["sentence_views"] == milvus_retriever.store.describe()["views"]


def test_cli_index_into_milvus_then_search_without_flags(monkeypatch, tmp_path, small_corpus, fake_embedder, capsys):
    import rag.index.embedding as embedding_module
    from rag import config
    from rag.cli import main

    monkeypatch.setattr(embedding_module, "load_embedder", lambda name, engine=None: fake_embedder)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    (tmp_path / "m").mkdir()
    index = tmp_path / "cli-index"
    assert main(["index", str(small_corpus), "--index", str(index), "--store", "milvus",
                 "--milvus-uri", str(tmp_path / "m" / "kb.db"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Milvus collection 'rag_cli_index'" in out
    assert main(["search", "京沪高铁全长多少公里", "--index", str(index), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["doc"] == "rail.md"
    shutil.rmtree(tmp_path / "m", ignore_errors=True)
