"""The ``gpu`` section of ``rag bench``: opt-in, skipped without CUDA, the texts a build embeds,
and a model of the configured one's shape with random weights (for a GPU machine the weights
cannot be copied to)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bench import gpu, run


def test_the_gpu_section_runs_only_when_named():
    assert "gpu" not in run.parse_sections(None)
    assert run.parse_sections("gpu") == ["gpu"]


def test_without_cuda_the_section_is_skipped_and_says_why(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    results = run.run_suite(["gpu"], quick=True, out=tmp_path, log=lambda _m: None)
    assert results["skipped"]["gpu"] == "torch sees no CUDA device"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["skipped"]["gpu"] == "torch sees no CUDA device"
    assert "Embedding on a GPU: not measured (torch sees no CUDA device)" in (tmp_path / "results.md").read_text()


def test_python_m_bench_run_reports_a_skipped_gpu_section_as_skipped_not_as_an_error(tmp_path):
    import subprocess
    import sys

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.fail("this test checks the no-GPU path; on a GPU machine run rag bench --only gpu instead")
    subprocess.run([sys.executable, "-m", "bench.run", "--only", "gpu", "--quick", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    assert json.loads((tmp_path / "results.json").read_text())["skipped"] == {"gpu": "torch sees no CUDA device"}


def test_rag_bench_passes_the_random_weights_folder_to_the_section(tmp_path, monkeypatch):
    import argparse

    monkeypatch.delenv("RAG_BENCH_RANDOM_WEIGHTS", raising=False)
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    args = parser.parse_args(["--only", "gpu", "--random-weights", str(tmp_path)])
    run.apply_overrides(args)
    import os

    assert os.environ["RAG_BENCH_RANDOM_WEIGHTS"] == str(tmp_path.resolve())


def test_the_texts_are_the_chunks_and_sentence_views_a_one_doc_per_line_build_embeds(tmp_path):
    from rag.ingest import ingest
    from rag.ingest.records import one_doc_per_line
    from rag.retrieval.passages import passage_text, sentence_views

    lines = ["2023-08-01，正文：本市今年新建公园十二座。绿地面积增加三成。市民满意度达到九成。",
             "2023-08-02，正文：全市公交线路调整二十条。新增夜班线路五条。调整自下月起实施。",
             "2023-08-03，正文：暑期游泳馆延长开放时间。每天开放至晚上十点。"]
    source = tmp_path / "news.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts, counts = gpu.collection_passages(source, None, log=lambda _m: None)
    with one_doc_per_line(True):
        chunks = ingest([source]).chunks
    expected = [t for c in chunks for t in [passage_text(c), *sentence_views(c)]]
    assert texts == expected
    assert counts["documents"] == 3 and counts["chunks"] == len(chunks)
    assert counts["views"] == len(expected) - len(chunks) > 0
    assert counts["characters"] == sum(len(line) for line in lines)
    first_two, _ = gpu.collection_passages(source, 2, log=lambda _m: None)
    assert first_two == expected[:len(first_two)] and len(first_two) < len(expected)


@pytest.mark.slow
def test_a_random_weight_model_has_the_shape_of_the_configured_one_and_embeds_like_it(tmp_path):
    from transformers import AutoConfig

    from embeddings.materialize import E5_SMALL, materialize
    from embeddings.st_embedder import SentenceTransformerEmbedder

    real = materialize()
    shape = tmp_path / "shape"  # the real folder, with a small config so the test stays quick
    shutil.copytree(real, shape, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((shape / "config.json").read_text())
    config.update(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128)
    (shape / "config.json").write_text(json.dumps(config))
    pooling = json.loads((shape / "1_Pooling" / "config.json").read_text())
    (shape / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "word_embedding_dimension": 64}))
    (shape / "model.safetensors").write_bytes(b"not read")  # weights in the folder are ignored

    model_dir = gpu.random_weight_model(shape, tmp_path / "random")
    assert AutoConfig.from_pretrained(model_dir).to_dict()["num_hidden_layers"] == 2
    assert (model_dir / "model.safetensors").read_bytes() != b"not read"
    assert (model_dir / "tokenizer.json").read_bytes() == (real / "tokenizer.json").read_bytes()

    embedder = SentenceTransformerEmbedder(str(model_dir), name=E5_SMALL, device="cpu", precision="fp32")
    assert embedder.dim == 64 and embedder.passage_prompt == "passage: "
    vectors = embedder.encode_passages(["今年新建公园十二座。", "全市公交线路调整二十条。"])
    assert vectors.shape == (2, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    lengths = gpu.token_lengths(embedder, ["今年新建公园十二座。"])
    assert lengths == [len(embedder.model.tokenizer("passage: 今年新建公园十二座。")["input_ids"])]
    # the same seed gives the same weights (a rerun measures the same model)
    again = gpu.random_weight_model(shape, tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()


def test_the_section_reports_tokenizing_apart_from_the_model(tmp_path):
    """What the GPU section prints for each pass, measured here on a CPU with a tiny model: the
    embedder's own timings split the wall time into tokenizing, waiting for tokens and the model."""
    from embeddings.st_embedder import SentenceTransformerEmbedder
    from tiny_models import TEXTS, tiny_bert

    texts = TEXTS * 20
    embedder = SentenceTransformerEmbedder(str(tiny_bert(tmp_path / "tiny")), name="tiny/e5-test", device="cpu",
                                           precision="fp32", max_seq_length=24, tokens_per_batch=96,
                                           texts_per_window=50, prefetch=True)
    embedder.encode_passages(texts[:3])  # the one-off token check is not part of what is timed
    parts = gpu.timed_parts(embedder, lambda: (embedder.encode_passages(texts), 1.5)[1])
    assert parts["s"] == 1.5  # the run's own wall time (on a GPU: synchronised around the call)
    lengths = [len(ids) for ids in embedder.model.tokenizer(["passage: " + t for t in texts], truncation=True,
                                                            max_length=24)["input_ids"]]
    assert parts["tokens"] == sum(lengths)
    assert parts["padded_tokens"] >= parts["tokens"] and parts["batches"] >= len(texts) // 50
    assert parts["tokenize_s"] > 0 and parts["wait_s"] >= 0 and parts["model_s"] > 0
    line = gpu.describe_parts(parts)
    assert line.startswith("1.5 s: tokenizing ") and "model loop waiting for tokens" in line
    out = {"device": "GPU", "precision": "bf16", "weights": "random", "matmul_tflops": 800.0, "chunks": 1,
           "views": 2, "tokens": parts["tokens"], "limit": 10, "collection": "news.txt", "characters": 100,
           "read_chunk_s": 1.0, "tokens_per_s": 1e6, "passages_per_s": 10.0, "tokens_per_batch": 96,
           "texts_per_batch": 8, "embed_runs_s": [1.5], "tokenize_s": 0.5, "fraction_of_matmul_peak": 0.1,
           "tflops": 80.0, "mean_tokens": 20.0, "seconds_per_million_characters": 1.0,
           "peak_gpu_memory_gib": 1.0, "embed_parts": [parts], "without_prefetch": parts}
    rows = gpu.tables(out)[0]["rows"]
    assert ["pass 1: where the time went", "1.5 s", line] in rows
    assert ["tokenizing on the same thread instead", "1.5 s", line] in rows
