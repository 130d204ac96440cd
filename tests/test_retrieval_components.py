"""Tokenizer, BM25 index, dense index, fusion and embedding cache on their own (no model)."""
from __future__ import annotations

import numpy as np
import pytest

from rag.index.embedding_cache import EmbeddingCache, content_hash, embed_passages
from rag.index.stores.bm25_keyword import KeywordIndex, top_k
from rag.index.stores.faiss_dense import AUTO_APPROX_MIN, DenseIndex, resolve_kind
from rag.retrieval.fusion import fuse, rrf, score_fusion
from rag.tokenize_zh import cjk_bigrams, number_tokens, tokenize


# --------------------------------------------------------------------------- tokenizer

def test_tokenize_keeps_decimal_number_with_unit_and_its_prefixes():
    tokens = tokenize("全国工会建成各类工会户外劳动者服务站点13.08万个。")
    assert {"13.08", "13.08万", "13.08万个"} <= set(tokens)


def test_tokenize_number_glued_to_word_also_emits_bare_number():
    tokens = tokenize("12351热线全面建成")
    assert "12351" in tokens and "12351热线" in tokens and "热线" in tokens


def test_tokenize_folds_width_and_case():
    assert "12351" in tokenize("“１２３５１”职工热线")
    assert "gdp" in tokenize("GDP增长5.2%")
    assert "5.2%" in tokenize("GDP增长5.2%")


def test_tokenize_drops_punctuation_whitespace_and_stopwords():
    tokens = tokenize("请问，大熊猫 吃 什么？")
    assert {"大熊猫", "熊猫", "吃"} <= set(tokens)
    assert not any(t in tokens for t in ("，", "？", " ", "什么", "请问"))


def test_tokenize_removes_thousands_separators():
    assert "1335" in tokenize("投入运营1,335家")


def test_tokenize_english_query_gives_lowercase_words():
    assert set(tokenize("What is the 12351 Hotline?")) == {"12351", "hotline"}


def test_number_tokens_and_bigrams_helpers():
    assert number_tokens("共85人，增长5.2%。") == ["85人"]
    assert number_tokens("13.08万个") == ["13.08万", "13.08万个"]
    assert cjk_bigrams("大熊猫a竹子") == ["大熊", "熊猫", "竹子"]
    assert "熊猫" in tokenize("大熊猫", bigrams=True)


# --------------------------------------------------------------------------- BM25

TEXTS = [
    "全国工会建成各类工会户外劳动者服务站点13.08万个",
    "12351工会服务职工热线全面建成运行",
    "大熊猫主要生活在四川的竹林中",
    "西湖龙井是绿茶的一种",
]


def test_bm25_ranks_the_text_sharing_the_number_first():
    index = KeywordIndex.build(TEXTS)
    assert index.search("户外服务站点有13.08万个吗", 2)[0][0] == 0
    assert index.search("12351", 2)[0][0] == 1


def test_bm25_scores_cover_every_text_and_unknown_words_score_zero():
    index = KeywordIndex.build(TEXTS)
    scores = index.scores("完全无关的词语比如火星")
    assert scores.shape == (4,) and not scores.any()
    assert index.search("完全无关的词语比如火星", 3) == []


def test_bm25_save_load_round_trip(tmp_path):
    index = KeywordIndex.build(TEXTS)
    index.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path, num_docs=4)
    np.testing.assert_allclose(index.scores("熊猫 竹林"), loaded.scores("熊猫 竹林"))
    assert loaded.indexed_docs == 4


def test_top_k_orders_by_score_then_position():
    scores = np.array([0.5, 2.0, 0.5, 0.0])
    assert top_k(scores, 3) == [(1, 2.0), (0, 0.5), (2, 0.5)]
    assert top_k(scores, 10, positive_only=True) == [(1, 2.0), (0, 0.5), (2, 0.5)]


# --------------------------------------------------------------------------- dense

def _unit_vectors(n=200, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_dense_index_finds_the_vector_itself_first(kind, tmp_path):
    vectors = _unit_vectors()
    index = DenseIndex.build(vectors, kind)
    assert index.kind == kind and index.ntotal == 200
    pos, score = index.search(vectors[17], 3)[0]
    assert pos == 17 and score == pytest.approx(1.0, abs=1e-4)
    index.save(tmp_path / "d.faiss")
    loaded = DenseIndex.load(tmp_path / "d.faiss", kind)
    assert loaded.search(vectors[17], 1)[0][0] == 17


def test_dense_flat_scores_are_exact_inner_products():
    vectors = _unit_vectors(50)
    got = DenseIndex.build(vectors, "flat").search(vectors[3], 50)
    expected = vectors @ vectors[3]
    for pos, score in got:
        assert score == pytest.approx(float(expected[pos]), abs=1e-5)


def test_dense_auto_kind_switches_at_documented_threshold():
    assert resolve_kind("auto", AUTO_APPROX_MIN - 1) == "flat"
    assert resolve_kind("auto", AUTO_APPROX_MIN) == "ivf"
    with pytest.raises(ValueError, match="unknown dense index kind"):
        resolve_kind("annoy", 10)


# --------------------------------------------------------------------------- fusion

def test_rrf_rewards_agreement_and_lists_each_position_once():
    fused = rrf([{1: 0.9, 2: 0.8, 3: 0.1}, {2: 10.0, 4: 5.0}])
    positions = [p for p, _ in fused]
    assert positions[0] == 2
    assert sorted(positions) == [1, 2, 3, 4]


def test_minmax_fusion_keeps_a_clear_leader_of_one_list():
    # dense barely prefers 1 over 2; bm25 strongly prefers 2 -> 2 wins; 5 only in bm25.
    fused = score_fusion([{1: 0.80, 2: 0.79, 3: 0.50}, {2: 12.0, 1: 1.0, 3: 0.0, 5: 0.5}])
    assert fused[0][0] == 2
    assert {p for p, _ in fused} == {1, 2, 3, 5}


def test_zscore_fusion_and_dispatch():
    fused = fuse([{1: 0.9, 2: 0.1}, {1: 3.0, 2: 1.0}], method="zscore")
    assert fused[0][0] == 1
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse([{1: 1.0}], method="max")


# --------------------------------------------------------------------------- embedding cache

def test_cache_embeds_each_distinct_text_once(tmp_path, fake_embedder):
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    first = embed_passages(fake_embedder, ["甲", "乙", "甲"], cache=cache)
    assert (first.embedded, first.cached) == (2, 0)
    assert fake_embedder.passages_encoded == 2
    second = embed_passages(fake_embedder, ["乙", "甲", "丙"], cache=cache)
    assert (second.embedded, second.cached) == (1, 2)
    assert fake_embedder.passage_calls[-1] == ["丙"]
    np.testing.assert_allclose(second.vectors[1], first.vectors[0])


def test_cache_is_per_model_and_persists_across_connections(tmp_path, fake_embedder):
    from conftest import FakeEmbedder

    path = tmp_path / "c.sqlite3"
    with EmbeddingCache(path) as cache:
        embed_passages(fake_embedder, ["文本"], cache=cache)
    with EmbeddingCache(path) as cache:
        assert cache.count(fake_embedder.name) == 1
        other = FakeEmbedder(name="other/model")
        assert embed_passages(other, ["文本"], cache=cache).embedded == 1
        assert embed_passages(fake_embedder, ["文本"], cache=cache).embedded == 0
        assert cache.get_many(fake_embedder.name, [content_hash("文本")], fake_embedder.dim)


def test_cache_ignores_vectors_of_another_dimension(tmp_path, fake_embedder):
    from conftest import FakeEmbedder

    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    embed_passages(fake_embedder, ["文本"], cache=cache)
    same_name_other_dim = FakeEmbedder(name=fake_embedder.name, dim=32)
    result = embed_passages(same_name_other_dim, ["文本"], cache=cache)
    assert result.embedded == 1 and result.vectors.shape == (1, 32)


def test_a_which_page_question_yields_the_measure_word_once():
    tokens = tokenize("秋季工作总结在第几页？")
    assert tokens.count("页") == 1
    assert "页" in tokenize("秋季工作总结 第9页")
    assert "届" in tokenize("这是第几届大会")
    assert "个" not in tokenize("一共几个")   # stopword measure words stay out


def test_parallel_bm25_tokenizing_gives_the_same_tokens_in_order():
    """Many texts are tokenized by worker processes (real ones): same tokens, same order."""
    from rag.tokenize_zh import tokenize, tokenize_many

    texts = [f"第{i}条：全国工会建成各类户外劳动者服务站点13.08万个，投入运营“司机之家”{i}家。" for i in range(1200)]
    texts[7] = ""
    parallel = tokenize_many(texts, workers=2, parallel_min=1000)
    assert parallel == [tokenize(t) for t in texts]


def test_faiss_thread_settings_leave_torchs_threads_alone():
    """FAISS and torch share OpenMP's thread setting: a one-thread search (and an all-core
    build) must not leave later embeddings on that thread with another thread count."""
    import torch

    from rag.index.stores.faiss_dense import DenseIndex

    before = torch.get_num_threads()
    vectors = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            index = DenseIndex.build(vectors, "flat")
            assert torch.get_num_threads() == threads
            assert index.search(vectors[3], 5)[0][0] == 3
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_a_loaded_index_reads_its_vectors_from_faiss_and_still_scores_and_adds(small_retriever, fake_embedder,
                                                                                tmp_path):
    """Served indexes hold each vector once: the rows they score come from FAISS's copy (see
    tests/test_dense_rows.py), and adding documents still works from there."""
    from rag.retrieval.retriever import Retriever

    loaded = Retriever.load(small_retriever.index_dir, embedder=fake_embedder, cache=tmp_path / "cache.sqlite3")
    store = loaded._state.store
    faiss_rows = store.dense.stored_vectors()
    assert np.shares_memory(store.vectors, faiss_rows) and np.shares_memory(store.views, faiss_rows)
    assert [h.doc for h in loaded.search("京沪高铁全长多少公里", k=1, mode="hybrid")] == ["rail.md"]
    extra = tmp_path / "extra.md"
    extra.write_text("# 虹桥\n\n上海虹桥站是京沪高铁的终点站之一。\n", encoding="utf-8")
    loaded.add([extra])
    assert loaded.search("虹桥站", k=1, mode="hybrid")[0].doc == "extra.md"
