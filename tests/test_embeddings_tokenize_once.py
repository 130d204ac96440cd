"""Each text is tokenized once and fed to the model directly (``SentenceTransformerEmbedder``),
with the same vectors as ``SentenceTransformer.encode``; models that cannot be fed that way go
through ``encode``; on a GPU the next texts are tokenized on a second thread (forced here).

Fast tests use tiny models built offline from a hand-written vocabulary (random weights, fixed
seed): a fast BERT tokenizer (with ``token_type_ids``), a slow one, and a static-embedding model
whose first module is not a Transformer. The real model is checked on real texts (slow)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from tiny_models import TEXTS, static_model, tiny_bert

ROOT = Path(__file__).resolve().parents[1]
MAX_TOKENS = 24  # several TEXTS are longer: truncation is exercised


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {"fast": tiny_bert(root / "fast", slow=False, max_tokens=MAX_TOKENS),
            "slow": tiny_bert(root / "slow", slow=True, max_tokens=MAX_TOKENS),
            "static": static_model(root / "static")}


def _embedder(path: Path, **options):
    from embeddings.st_embedder import SentenceTransformerEmbedder

    # "e5" in the name: the passage/query prompts are used, as for the default model
    return SentenceTransformerEmbedder(str(path), name="tiny/e5-test", device="cpu", precision="fp32",
                                       max_seq_length=MAX_TOKENS, **options)


def _reference(embedder, texts, prompt):
    return embedder.model.encode(list(texts), prompt=prompt or None, normalize_embeddings=True,
                                 convert_to_numpy=True, batch_size=4)


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rag-embed-prefetch"]


def test_texts_are_tokenized_once_and_give_the_vectors_of_sentence_transformers_encode(models, monkeypatch):
    from embeddings import st_embedder

    embedder = _embedder(models["fast"], tokens_per_batch=64)  # several batches
    assert embedder.tokenizes_once
    calls = {"tokenize": 0, "preprocess": 0}
    tokenize, preprocess = st_embedder._TokenizeOnce.encode, embedder.model[0].preprocess

    def count_tokenize(self, prompted, offsets):
        calls["tokenize"] += len(prompted)
        return tokenize(self, prompted, offsets)

    def count_preprocess(*args, **kwargs):
        calls["preprocess"] += 1
        return preprocess(*args, **kwargs)

    monkeypatch.setattr(st_embedder._TokenizeOnce, "encode", count_tokenize)
    monkeypatch.setattr(embedder.model[0], "preprocess", count_preprocess)
    vectors = embedder.encode_passages(TEXTS)
    # once per text, plus the one-off check against the model's own preprocessing (3 probe texts;
    # sentence-transformers preprocesses the prompt alone once more to learn its length)
    assert calls["tokenize"] == len(TEXTS) + 3 and 1 <= calls["preprocess"] <= 2
    calls.update(tokenize=0, preprocess=0)
    again = embedder.encode_passages(TEXTS[::-1])[::-1]
    assert calls == {"tokenize": len(TEXTS), "preprocess": 0}
    expected = _reference(embedder, TEXTS, "passage: ")
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(again, vectors, atol=1e-6)
    query = embedder.encode_queries(["北京的天气"])
    np.testing.assert_allclose(query, _reference(embedder, ["北京的天气"], "query: "), atol=1e-6)
    assert embedder.encode_passages([]).shape == (0, 32)


def test_tokens_that_differ_from_the_models_own_send_texts_through_encode(models):
    embedder = _embedder(models["fast"])
    embedder.model.max_seq_length = 8  # changed after loading: the private tokenizer still cuts at 24
    vectors = embedder.encode_passages(TEXTS)
    assert not embedder.tokenizes_once
    np.testing.assert_allclose(vectors, _reference(embedder, TEXTS, "passage: "), atol=1e-6)


@pytest.mark.parametrize("kind", ["slow", "static"])
def test_models_that_cannot_be_fed_directly_go_through_encode(models, kind):
    embedder = _embedder(models[kind])
    assert not embedder.tokenizes_once
    vectors = embedder.encode_passages(TEXTS)
    np.testing.assert_allclose(vectors, _reference(embedder, TEXTS, "passage: "), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(RagError, match="late-chunked sentence views need a fast tokenizer"):
        embedder.encode_passages_with_spans(TEXTS[:2], [[(0, 2)], [(0, 2)]])


def test_span_vectors_are_means_of_the_tokens_inside_each_span(models):
    import torch

    embedder = _embedder(models["fast"], tokens_per_batch=64)
    texts = ["北京是中国的首都。今天天气很好。", "大熊猫吃竹子。", "熊猫" * 20]
    spans = [[(0, 9), (9, 16)], [(0, 7)], [(0, 4), (30, 40)]]  # the last one lies past the token limit
    vectors, views = embedder.encode_passages_with_spans(texts, spans)
    np.testing.assert_allclose(vectors, embedder.encode_passages(texts), atol=1e-6)
    hf = embedder.model.tokenizer
    prompt = embedder.passage_prompt
    for text, text_spans, got in zip(texts, spans, views):
        encoded = hf(prompt + text, truncation=True, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0].numpy()
        with torch.inference_mode():
            tokens = embedder.model({**encoded, "modality": "text"})["token_embeddings"][0].numpy()
        middle = offsets.mean(axis=1)
        for (a, b), row in zip(text_spans, got):
            inside = (offsets[:, 1] > offsets[:, 0]) & (middle >= a + len(prompt)) & (middle < b + len(prompt))
            if not inside.any():
                assert np.isnan(row).all()
                continue
            mean = tokens[inside].mean(axis=0)
            np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-5)
    assert np.isnan(views[2][1]).all() and not np.isnan(views[2][0]).any()


def test_prefetching_on_a_second_thread_gives_the_same_vectors_and_leaves_no_thread(models, monkeypatch):
    from embeddings.st_embedder import prefetched

    plain = _embedder(models["fast"], texts_per_window=3, tokens_per_batch=64)
    ahead = _embedder(models["fast"], texts_per_window=3, tokens_per_batch=64, prefetch=True)
    assert not plain.prefetch and ahead.prefetch  # on a CPU no thread unless asked for
    expected = plain.encode_passages(TEXTS)
    assert np.array_equal(ahead.encode_passages(TEXTS), expected)
    np.testing.assert_allclose(expected, _reference(plain, TEXTS, "passage: "), atol=1e-6)
    spans = [[(0, min(2, len(t)))] for t in TEXTS]
    one, one_views = plain.encode_passages_with_spans(TEXTS, spans)
    two, two_views = ahead.encode_passages_with_spans(TEXTS, spans)
    assert np.array_equal(one, two)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one_views, two_views))
    assert _prefetch_threads() == []
    from embeddings import st_embedder

    threaded = []
    monkeypatch.setattr(st_embedder, "prefetched", lambda *a, **k: threaded.append(a) or prefetched(*a, **k))
    ahead.encode_queries(["北京的天气"])  # a call that fits one window has nothing to overlap: no thread
    ahead.encode_passages(TEXTS[:3])
    assert threaded == []
    ahead.encode_passages(TEXTS[:4])
    assert len(threaded) == 1


def test_an_error_while_tokenizing_ahead_surfaces_and_stops_the_thread(models):
    ahead = _embedder(models["fast"], texts_per_window=2, prefetch=True)
    ahead.encode_passages(TEXTS[:2])  # the token check is done
    with pytest.raises(TypeError):
        ahead.encode_passages(["北京", "今天", "熊猫", None, "竹子"])  # the second window cannot be tokenized
    assert _prefetch_threads() == []
    assert ahead.encode_passages(["北京"]).shape == (1, 32)  # the embedder still works


def test_prefetched_stops_its_thread_when_the_consumer_stops_early():
    from embeddings.st_embedder import prefetched

    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetched(items(), depth=1)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert _prefetch_threads() == []
    assert len(produced) <= 4  # at most one item ahead in the queue and one being made

    def failing():
        yield "first"
        raise ValueError("cannot tokenize this")

    stream = prefetched(failing(), depth=2)
    assert next(stream) == "first"
    with pytest.raises(ValueError, match="cannot tokenize this"):
        next(stream)
    assert _prefetch_threads() == []


@pytest.mark.slow
def test_the_default_model_on_real_texts_equals_sentence_transformers_encode():
    from embeddings.materialize import E5_SMALL, materialize
    from embeddings.st_embedder import SentenceTransformerEmbedder
    from rag.ingest import ingest
    from rag.retrieval.passages import passage_text, sentence_views, view_spans

    chunks = ingest([ROOT / "seeds"]).chunks[:24]
    texts = [passage_text(c) for c in chunks] + [v for c in chunks[:6] for v in sentence_views(c)]
    texts.append("".join(passage_text(c) for c in chunks[:8]))  # past the 512-token limit
    embedder = SentenceTransformerEmbedder(str(materialize()), name=E5_SMALL, device="cpu", precision="fp32")
    assert embedder.tokenizes_once
    vectors = embedder.encode_passages(texts)
    expected = embedder.model.encode(texts, prompt="passage: ", normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, expected, atol=2e-6)
    questions = ["12351热线什么时候全面建成？", "大熊猫吃什么？"]
    np.testing.assert_allclose(embedder.encode_queries(questions),
                               embedder.model.encode(questions, prompt="query: ", normalize_embeddings=True),
                               atol=2e-6)
    passages = [passage_text(c) for c in chunks]
    pooled, views = embedder.encode_passages_with_spans(passages, [view_spans(c) for c in chunks])
    np.testing.assert_allclose(pooled, vectors[:len(passages)], atol=2e-6)
    assert sum(len(v) for v in views) > len(passages) and not any(np.isnan(v).all() for v in views if len(v))


def test_a_build_hands_the_embedder_as_many_texts_per_call_as_it_asks_for(fake_embedder, monkeypatch, models):
    from rag.index import embedding_cache

    texts = [f"第{i}条新闻。" for i in range(10)]
    embedding_cache.embed_passages(fake_embedder, texts)
    assert [len(c) for c in fake_embedder.passage_calls] == [10]  # COMMIT_EVERY (256) texts a call
    fake_embedder.passage_calls.clear()
    fake_embedder.texts_per_call = 4  # as SentenceTransformerEmbedder on a GPU (GPU_TEXTS_PER_CALL)
    embedding_cache.embed_passages(fake_embedder, texts)
    assert [len(c) for c in fake_embedder.passage_calls] == [4, 4, 2]
    fake_embedder.passage_calls.clear()
    monkeypatch.setattr(embedding_cache, "_COMMIT_OVERRIDE", "5")  # RAG_EMBED_COMMIT_EVERY=5 wins
    monkeypatch.setattr(embedding_cache, "COMMIT_EVERY", 5)
    embedding_cache.embed_passages(fake_embedder, texts)
    assert [len(c) for c in fake_embedder.passage_calls] == [5, 5]
    assert _embedder(models["fast"]).texts_per_call is None  # on a CPU: the cache's own default


def test_questions_from_many_threads_at_once_get_the_vectors_they_get_alone(models):
    """A server embeds questions on many threads; they share the model's tokenizer, whose
    settings must not be changed while another thread is tokenizing (the tokenizers library
    raises then)."""
    from concurrent.futures import ThreadPoolExecutor

    embedder = _embedder(models["fast"])
    questions = [t for t in TEXTS if t] * 6
    alone = [embedder.encode_queries([q]) for q in questions]
    embedder.model.tokenizer(["北京"], padding=True)  # transformers' own call changes the settings back
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: embedder.encode_queries([q]), questions))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, atol=1e-6)
