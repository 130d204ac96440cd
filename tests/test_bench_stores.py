"""bench/stores.py: the store comparison runs both stores and counts Milvus's calls (real Milvus Lite)."""
from __future__ import annotations

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

pytestmark = pytest.mark.milvus


def test_both_stores_are_timed_and_a_search_that_fits_the_candidate_lists_costs_three_milvus_calls(
        tmp_path, small_corpus):
    from bench.stores import HashEmbedder, run_store

    questions = ["大熊猫吃什么", "12351热线什么时候全面建成运行？"]
    (tmp_path / "work").mkdir()
    rows = {store: run_store(store, small_corpus, tmp_path / "work", questions, embedder=HashEmbedder(),
                             log=lambda message: None)
            for store in ("local", "milvus")}
    assert rows["local"]["chunks"] == rows["milvus"]["chunks"] > 0
    for row in rows.values():
        assert {mode: row["latency"][mode]["count"] for mode in ("dense", "bm25", "hybrid")} == {
            "dense": 2, "bm25": 2, "hybrid": 2}
    calls = rows["milvus"]["milvus_calls"]
    assert calls["bm25"]["calls"] == 1 and set(calls["bm25"]["by_method"]) == {"search"}
    # Chunks, views and BM25 each fit their list whole, so the fusion pool's exact
    # scores are all known from the three searches: no query for vectors or scores.
    assert calls["hybrid"]["calls"] == 3 and calls["hybrid"]["by_method"]["search"]["calls"] == 3
    assert "milvus_calls" not in rows["local"]
