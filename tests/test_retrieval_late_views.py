"""Late-chunked sentence views: one forward pass per chunk gives its vector and its views."""
from __future__ import annotations

import numpy as np
import pytest

from rag.index.embedding import LATE_VIEW_SUFFIX
from rag.index.embedding_cache import EmbeddingCache
from rag.retrieval.passages import passage_text, sentence_views, view_spans
from rag.retrieval.retriever import Retriever
from rag.types import Chunk


class LateFakeEmbedder:
    """The fake embedder plus ``encode_passages_with_spans``: a span's vector is the
    fake vector of the span's characters. Counts forward passes (texts it was given)."""

    def __init__(self, fake, lose_spans_from: int | None = None):
        self.fake = fake
        self.name, self.dim = fake.name, fake.dim
        self.forward_texts: list[str] = []
        self.lose_spans_from = lose_spans_from  # spans starting here are "past the token limit"

    def encode_queries(self, texts):
        return self.fake.encode_queries(texts)

    def encode_passages(self, texts, show_progress: bool = False):
        return self.fake.encode_passages(texts, show_progress=show_progress)

    def encode_passages_with_spans(self, texts, spans_per_text, show_progress: bool = False):
        self.forward_texts.extend(texts)
        vectors = np.stack([self.fake._vector(t) for t in texts]).astype(np.float32)
        views = []
        for text, spans in zip(texts, spans_per_text):
            rows = [np.full(self.dim, np.nan, np.float32)
                    if self.lose_spans_from is not None and a >= self.lose_spans_from
                    else self.fake._vector(text[a:b]) for a, b in spans]
            views.append(np.asarray(rows, dtype=np.float32).reshape(len(spans), self.dim))
        return vectors, views


@pytest.fixture
def late_embedder(fake_embedder):
    return LateFakeEmbedder(fake_embedder)


def _build(paths, index_dir, embedder, cache, **settings):
    settings.setdefault("view_method", "late")
    return Retriever.build(paths, index_dir, embedder=embedder, cache=cache, show_progress=False, **settings)


def test_view_spans_point_at_the_view_sentences_inside_the_passage_text():
    chunk = Chunk("v#1", "v.txt", ["标题", "小标题"],
                  "第一句话说的是一件很长很长的事情，足够长了。短句。第三句话同样说得足够长，也超过二十个字了吧。", 0, 50)
    text = passage_text(chunk)
    header = "标题 > 小标题\n"
    assert [header + text[a:b] for a, b in view_spans(chunk)] == sentence_views(chunk)
    bare = Chunk("v#2", "v.txt", [], chunk.text, 0, 50)
    assert [passage_text(bare)[a:b] for a, b in view_spans(bare)] == sentence_views(bare)
    assert view_spans(Chunk("v#3", "v.txt", [], "只有一句话。", 0, 6)) == []


def test_a_cold_build_runs_each_chunk_through_the_model_exactly_once(small_corpus, tmp_path, late_embedder):
    retriever = _build([small_corpus], tmp_path / "idx", late_embedder, tmp_path / "c.sqlite3")
    texts = [passage_text(c) for c in retriever.chunks]
    assert sorted(late_embedder.forward_texts) == sorted(set(texts))
    assert late_embedder.fake.passage_calls == []  # no view was embedded on its own
    spans = [view_spans(c) for c in retriever.chunks]
    assert len(retriever.store.views) == sum(map(len, spans)) > 0
    assert retriever.manifest["dense"]["view_method"] == "late"
    summary = retriever.build_summary
    assert summary.embedded == len(set(texts)) and summary.views_embedded == summary.views
    # each view is the (fake) vector of its span of the passage text
    pos = next(i for i, s in enumerate(spans) if s)
    a, b = spans[pos][0]
    first = retriever.store.views[retriever.store.view_offsets[pos]]
    assert np.allclose(first, late_embedder.fake._vector(texts[pos][a:b]))


def test_late_views_survive_reload_and_add(small_corpus, tmp_path, late_embedder):
    built = _build([small_corpus], tmp_path / "idx", late_embedder, tmp_path / "c.sqlite3")
    reloaded = Retriever.load(tmp_path / "idx", embedder=late_embedder, cache=tmp_path / "c.sqlite3")
    assert np.array_equal(reloaded.store.views, built.store.views)
    assert np.array_equal(reloaded.store.view_offsets, built.store.view_offsets)
    new = tmp_path / "moon.md"
    new.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日携带月球背面样品返回地球。这是人类首次从月球背面采样返回。",
                   encoding="utf-8")
    before = len(late_embedder.forward_texts)
    summary = reloaded.add([new])
    assert len(late_embedder.forward_texts) == before + 1 and summary.views == len(built.store.views) + 2
    assert reloaded.manifest["dense"]["view_method"] == "late"
    assert reloaded.search("人类首次从月球背面采样返回", k=1, mode="dense")[0].doc.endswith("moon.md")


def test_a_rebuild_reuses_cached_late_views_without_a_forward_pass(small_corpus, tmp_path, late_embedder):
    first = _build([small_corpus], tmp_path / "a", late_embedder, tmp_path / "c.sqlite3")
    passes = len(late_embedder.forward_texts)
    again = _build([small_corpus], tmp_path / "b", late_embedder, tmp_path / "c.sqlite3")
    assert len(late_embedder.forward_texts) == passes
    assert again.build_summary.embedded == 0 and again.build_summary.views_embedded == 0
    assert np.array_equal(again.store.views, first.store.views) and np.array_equal(again.store.vectors, first.store.vectors)


def test_late_views_are_cached_apart_from_separately_embedded_texts(small_corpus, tmp_path, late_embedder):
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    late = _build([small_corpus], tmp_path / "late", late_embedder, cache)
    assert cache.count(late_embedder.name) == len({passage_text(c) for c in late.chunks})
    assert cache.count(late_embedder.name + LATE_VIEW_SUFFIX) == len(late.store.views)
    # the separate method embeds the view texts themselves and gets other vectors
    separate = _build([small_corpus], tmp_path / "sep", late_embedder, cache, view_method="separate")
    assert separate.manifest["dense"]["view_method"] == "separate"
    assert len(separate.store.views) == len(late.store.views) and not np.allclose(separate.store.views, late.store.views)
    assert np.array_equal(separate.store.vectors, late.store.vectors)


def test_an_embedder_that_cannot_late_chunk_embeds_views_separately(small_corpus, tmp_path, fake_embedder):
    retriever = _build([small_corpus], tmp_path / "idx", fake_embedder, tmp_path / "c.sqlite3")
    assert retriever.manifest["dense"]["view_method"] == "separate"
    views = [v for c in retriever.chunks for v in sentence_views(c)]
    assert np.allclose(retriever.store.views, fake_embedder.encode_passages(views))


def test_a_span_past_the_token_limit_is_embedded_as_its_own_text(small_corpus, tmp_path, fake_embedder):
    embedder = LateFakeEmbedder(fake_embedder, lose_spans_from=30)
    retriever = _build([small_corpus], tmp_path / "idx", embedder, tmp_path / "c.sqlite3")
    lost = [v for c in retriever.chunks for (a, _), v in zip(view_spans(c), sentence_views(c)) if a >= 30]
    assert lost and sorted(t for call in fake_embedder.passage_calls for t in call) == sorted(lost)
    assert not np.isnan(retriever.store.views).any()


def test_no_sentence_views_means_no_views_and_no_method(small_corpus, tmp_path, late_embedder):
    retriever = _build([small_corpus], tmp_path / "idx", late_embedder, tmp_path / "c.sqlite3", views=False)
    assert len(retriever.store.views) == 0 and retriever.manifest["dense"]["view_method"] is None
    assert late_embedder.forward_texts == [] and late_embedder.fake.passages_encoded == len(retriever)


def test_cli_index_picks_the_view_method(monkeypatch, tmp_path, small_corpus, late_embedder, capsys):
    import rag.index.embedding as embedding_module
    from rag import config
    from rag.cli import main

    monkeypatch.setattr(embedding_module, "load_embedder", lambda name, engine=None: late_embedder)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    for method in ("separate", "late"):
        index = tmp_path / method
        assert main(["index", str(small_corpus), "--index", str(index), "--quiet", "--view-method", method]) == 0
        assert Retriever.load(index).manifest["dense"]["view_method"] == method
    assert "sentence views" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real model

@pytest.mark.slow
def test_late_view_vectors_are_the_mean_of_the_tokens_inside_the_span():
    from embeddings import load_embedder

    embedder = load_embedder(engine="torch")
    text = "标题 > 小标题\n第一句话说的是一件很长很长的事情，足够长了。第三句话同样说得足够长，也超过二十个字了吧。"
    spans = [(9, 31), (31, len(text))]
    vectors, views = embedder.encode_passages_with_spans([text], [spans])
    assert np.allclose(vectors, embedder.encode_passages([text]), atol=1e-5)
    prompted = embedder.passage_prompt + text
    tokens = embedder.model.encode([prompted], output_value="token_embeddings")[0].float().numpy()
    offsets = embedder.model.tokenizer(prompted, return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) == len(tokens)
    shift = len(embedder.passage_prompt)
    for (a, b), view in zip(spans, views[0]):
        inside = [i for i, (s, e) in enumerate(offsets) if e > s and a + shift <= (s + e) / 2 < b + shift]
        assert inside
        mean = tokens[inside].mean(axis=0)
        assert np.allclose(view, mean / np.linalg.norm(mean), atol=1e-3)
    assert float(views[0][0] @ views[0][1]) < 0.9999  # two spans, two different vectors
