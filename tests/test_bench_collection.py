"""The ``collection`` section of ``rag bench``: slices of an .xz collection, builds kept across
runs, and an extrapolation that says what it is."""
from __future__ import annotations

import json
import lzma
import sys

import numpy as np
import pytest

from bench import collection, run
from rag.index.stores.faiss_dense import ivf_nlist


def _build(kind, slice_, documents, wall_s, **extra):
    return {"kind": kind, "slice": slice_, "documents": documents, "wall_s": wall_s, "peak_rss_tree_mib": 900.0,
            "load_before": [2.0, 2.0, 2.0], "load_after": [2.5, 2.0, 2.0], "when": "today", **extra}


def test_a_slice_of_an_xz_collection_is_its_first_lines_as_plain_text(tmp_path):
    packed = tmp_path / "news.txt.xz"
    with lzma.open(packed, "wt", encoding="utf-8") as fh:
        fh.writelines(f"2023-08-{i % 28 + 1:02d}，正文：第{i}篇\n" for i in range(50))
    part = collection.slice_of(packed, 20, tmp_path)
    assert part.suffix == ".txt" and part.read_text(encoding="utf-8").splitlines()[-1].endswith("第19篇")
    assert len(collection.slice_of(packed, None, tmp_path).read_text(encoding="utf-8").splitlines()) == 50
    assert collection._characters(packed) == sum(len(f"2023-08-{i % 28 + 1:02d}，正文：第{i}篇") for i in range(50))


def test_builds_of_earlier_runs_are_kept_and_the_full_build_is_extrapolated_with_labels():
    earlier = collection.finish_section({"builds": [
        _build("keyword only (BM25)", "all", 63668, 1200.0, characters=45_000_000, characters_to_embed=94_000_000,
               chunks=150_000, views=850_000),
        _build("keyword only (BM25)", 10000, 10000, 300.0, characters=7_000_000, characters_to_embed=14_000_000)]})
    now = collection.finish_section({"builds": [
        _build("keyword only (BM25)", 10000, 10000, 200.0, characters=7_000_000, characters_to_embed=14_000_000),
        _build("dense + BM25 (rag index)", 10000, 10000, 2200.0, embedded=60_000, from_cache=20_000,
               chunks=24_000, views=56_000, cpu="native")], "full_file_characters": 45_000_000})
    merged = collection.merge(earlier, now)
    slices = sorted((b["kind"], str(b["slice"]), b["wall_s"]) for b in merged["builds"])
    assert slices == [("dense + BM25 (rag index)", "10000", 2200.0), ("keyword only (BM25)", "10000", 200.0),
                      ("keyword only (BM25)", "all", 1200.0)]  # the 10k keyword build was redone: newest kept
    cpu, gpu = merged["extrapolation"]
    # the whole file's measured keyword side + 94 M characters at the slice's cold rate:
    # (2200 - 200) s for 75% fresh of 14 M characters -> 2,667 s per 14 M characters
    assert cpu[1] == pytest.approx((1200 + 94e6 * (2000 / 0.75) / 14e6) / 3600, rel=1e-3)
    assert "measured keyword-only build of the whole file" in cpu[2] and "cold cache" in cpu[2]
    assert "H200" in gpu[0] and "rag bench --only gpu" in gpu[2] and gpu[1] < cpu[1]
    titles = [t["title"] for t in merged["tables"]]
    assert any("NOT measured end to end" in t for t in titles)
    # a later build of the whole file whose vectors nearly all came from the cache (a resumed build)
    # says nothing about the embedding rate: the cold 10k slice stays the basis, not a division by ~0
    resumed = _build("dense + BM25 (rag index)", "all", 63668, 900.0, embedded=2_000, from_cache=851_000,
                     chunks=80_000, views=773_000, cpu="native")
    cpu_again, _ = collection.merge(merged, collection.finish_section(
        {"builds": [resumed], "full_file_characters": 45_000_000}))["extrapolation"]
    assert cpu_again == cpu
    # with only such builds there is no CPU figure, and the row says why
    only_cached = collection.finish_section({"builds": [
        _build("keyword only (BM25)", "all", 63668, 1200.0, characters=45_000_000, characters_to_embed=94_000_000),
        resumed], "full_file_characters": 45_000_000})
    cpu_none, gpu_still = only_cached["extrapolation"]
    assert cpu_none[1] is None and "not extrapolated" in cpu_none[2] and "100%" in cpu_none[2]
    assert gpu_still[1] > 0


def test_the_collection_section_runs_only_when_named():
    assert "collection" not in run.parse_sections(None)
    assert run.parse_sections("collection") == ["collection"]
    with pytest.raises(run.SectionSkipped, match="quick"):
        collection.run_section(quick=True, log=lambda _m: None)


def test_rag_bench_collection_builds_slices_in_child_processes_and_reports_them(tmp_path, monkeypatch):
    news = tmp_path / "news.txt.xz"
    with lzma.open(news, "wt", encoding="utf-8") as fh:
        fh.writelines(f"2023-08-{i % 28 + 1:02d} 10:00，正文：第{i}篇报道说，京沪高速铁路全长1318公里，"
                      f"设计时速350公里，沿线设有{i}个车站。\n" for i in range(40))
    monkeypatch.setenv("RAG_BENCH_COLLECTION", str(news))
    monkeypatch.setenv("RAG_BENCH_COLLECTION_LIMIT", "15,all")
    monkeypatch.setenv("RAG_BENCH_COLLECTION_WORKDIR", str(tmp_path / "work"))
    monkeypatch.delenv("RAG_BENCH_COLLECTION_DENSE", raising=False)
    out = tmp_path / "out"
    results = run.run_suite(["collection"], quick=False, out=out, log=lambda _m: None)
    assert "collection" not in results["skipped"], results["skipped"]
    builds = results["collection"]["builds"]
    assert [(b["slice"], b["documents"]) for b in builds] == [(15, 15), ("all", 40)]
    assert all(b["peak_rss_tree_mib"] > 0 and b["wall_s"] > 0 and b["chunks"] >= b["documents"] for b in builds)
    assert "Builds of news-63k" in (out / "results.md").read_text(encoding="utf-8")
    # a later run of one slice keeps the other's figures
    monkeypatch.setenv("RAG_BENCH_COLLECTION_LIMIT", "15")
    again = run.run_suite(["collection"], quick=False, out=out, log=lambda _m: None)
    assert sorted(str(b["slice"]) for b in again["collection"]["builds"]) == ["15", "all"]


def test_a_measured_child_reports_its_cpu_seconds_and_a_dense_row_names_its_engine(tmp_path):
    # a child that burns ~0.3 s of CPU: its CPU time is counted, not the parent's
    r = collection.measured_child([sys.executable, "-c",
                                   "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"])
    assert 0.25 <= r["cpu_s"] < 5 and r["wall_s"] >= 0.25
    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text(json.dumps({"model": {"name": "m", "dim": 384, "engine": "onnx-int8"}}))
    assert collection._index_engine(index) == "onnx-int8"
    assert collection._index_engine(tmp_path / "missing") == "?"
    section = collection.finish_section({"builds": [
        _build("dense + BM25 (rag index)", 10000, 10000, 2200.0, cpu_s=4200.0, engine="onnx-int8", cpu="native",
               chunks=24_000, views=56_000)]})
    (table,) = [t for t in section["tables"] if t["title"].startswith("Builds")]
    row = dict(zip(table["headers"], table["rows"][0]))
    assert row["CPU min"] == pytest.approx(70.0) and row["CPU, engine"] == "native, onnx-int8"


def test_distinct_rows_stand_for_all_their_copies():
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[[10, 20, 30]] = vectors[5]  # four rows, one vector
    distinct = collection._DistinctRows(vectors)
    assert len(distinct.first) == 47 and list(distinct.first[:6]) == [0, 1, 2, 3, 4, 5]
    from rag.index.stores.faiss_dense import DenseIndex

    distinct.dense = DenseIndex.build(vectors[distinct.first], "flat")
    hits = distinct.search(vectors[5], 6)
    assert [pos for pos, _ in hits[:4]] == [5, 10, 20, 30] and len(hits) == 6
    assert all(score == hits[0][1] for _, score in hits[:4]) and hits[4][1] < hits[0][1]


def test_dense_recall_compares_hnsw_and_ivf_with_exact_search_on_the_index_vectors(small_retriever, fake_embedder):
    index = small_retriever.index_dir
    queries = fake_embedder.encode_queries(["热线什么时候建成", "大熊猫吃什么", "龙井茶产地"])
    result = collection.dense_recall(index, queries, lambda _: None, ef_sweep=(16, 64), probe_shares=(2, 1))
    n = len(np.load(index / "vectors.npy")) + len(np.load(index / "views.npy"))
    assert result["vectors"] == n and result["questions"] == 3
    kinds = [(r["kind"], r["setting"]) for r in result["kinds"]]
    nlist = ivf_nlist(n)
    distinct = "hnsw M=32, one node per distinct vector"
    assert kinds == [("flat (exact)", None), ("hnsw M=32", "efSearch 16"), ("hnsw M=32", "efSearch 64"),
                     (distinct, "efSearch 16"), (distinct, "efSearch 64"),
                     (f"ivf {nlist} lists, sq8, re-scored", f"nprobe {-(-nlist // 2)} (1/2)"),
                     (f"ivf {nlist} lists, sq8, re-scored", f"nprobe {nlist} (1/1)")]
    # a few dozen vectors: a graph is searched exhaustively, and every list probed with
    # exact re-scoring is exact search: the same top 10 as exact search
    for r in result["kinds"][:5] + result["kinds"][6:]:
        assert r["recall_at_10"] == 1.0, r
    assert all(r["p50_ms_at_400"] > 0 and r["cpu_p50_ms"] >= 0 for r in result["kinds"])
    section = collection.finish_section({"builds": [], "serving": {
        "slice": 10000, "chunks_questions": 3, "load": [1.0] * 3, "dense_recall": result,
        "search": {"p50_ms": 1.0, "p95_ms": 2.0},
        "serve": {"rss_after_load_mb": 1, "questions": 3, "rss_after_queries_mb": 2, "peak_rss_mb": 2,
                  "http_p50_ms": 1.0, "http_p95_ms": 2.0}}})
    (table,) = [t for t in section["tables"] if "real vectors" in t["title"]]
    assert [row[:2] for row in table["rows"]] == [[kind, setting or ""] for kind, setting in kinds]
    assert "CPU ms p50 (k=10)" in table["headers"]
    assert result["skipped"] is None and "left out" not in table["title"]
    # above the size limit the HNSW rows (hours of graph building at news-63k's size) are left out, and say so
    big = collection.dense_recall(index, queries, lambda _: None, ef_sweep=(16,), probe_shares=(1,),
                                  hnsw_max_vectors=n - 1)
    assert [r["kind"] for r in big["kinds"]] == ["flat (exact)", f"ivf {nlist} lists, sq8, re-scored"]
    assert f"HNSW rows left out at {n:,} vectors" in collection.recall_table(big, "all")["title"]
    # results of the earlier bench (HNSW rows by efSearch) still print
    old = {"vectors": 10, "questions": 1, "load": [1.0], "kinds": [
        {"kind": "flat (exact)", "ef_search": None, "recall_at_10": 1.0, "p50_ms": 1.0, "p95_ms": 1.0},
        {"kind": "hnsw M=32", "ef_search": 128, "recall_at_10": 0.8, "p50_ms": 1.0, "p95_ms": 1.0}]}
    assert [row[:3] for row in collection.recall_table(old, 10000)["rows"]] == [
        ["flat (exact)", "", 1.0], ["hnsw M=32", "efSearch 128", 0.8]]
