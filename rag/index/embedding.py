"""Chunks and their sentence views through the embedding cache, and the lazily loaded model.

``embed_chunks`` is what a build or an add calls: chunk vectors plus sentence-view
vectors, each from the cache where possible. Views are embedded on their own by
default, or "late-chunked" from the chunk's own forward pass (``embed_late``).
``LazyEmbedder`` loads the model only when something must really be embedded.
"""
from __future__ import annotations

import sqlite3
import sys
import threading
from typing import Any, Sequence

import numpy as np

from rag import config
from rag.index.embedding_cache import EmbeddingCache, EmbedResult, cache_key, content_hash, embed_passages
from rag.retrieval.passages import DEFAULT_VIEW_HEADER, passage_text, sentence_views, view_spans
from rag.types import Chunk
from rag.vocabulary import VIEW_HEADERS, VIEW_METHODS, check_choice

#: How sentence views are embedded: "late" (late chunking: mean of the chunk's own
#: contextual token vectors over the sentence, no extra forward pass) or "separate"
#: (each view text embedded on its own). Measured on eval/qa.jsonl with e5-small, same
#: run (R@1/R@5/MRR@10): separate: hybrid 0.91/0.98/0.943, dense 0.84/0.96/0.892;
#: late: hybrid 0.87/0.98/0.914, dense 0.71/0.95/0.810; no views: hybrid 0.89/0.99/0.922,
#: dense 0.66/0.94/0.772. Late pooling variants (header tokens added, specials/prompt
#: added, chunk mean subtracted) reached hybrid R@1 0.87-0.89 at best: a sentence's
#: contextual tokens mostly say what the whole chunk says. Only separate views keep
#: hybrid R@1 >= 0.90, so they stay the default. Cold `rag index seeds/` (empty cache,
#: model materialised, load ~2 on 2 cores): separate 47.9 s, late 26.5 s; embedding
#: alone, same run: separate 34.5 s, late 17.4 s, no views 15.5 s.
DEFAULT_VIEW_METHOD = "separate"
#: Late-chunked view vectors are cached under the model's key plus this suffix, so
#: they can never be mistaken for the vector of a separately embedded text.
LATE_VIEW_SUFFIX = "#late-view-v1"

#: ``open_cache``'s default: the shared cache in ``config.CACHE_DIR``.
DEFAULT_CACHE: Any = object()

def can_late_chunk(embedder) -> bool:
    """Whether ``embedder`` computes span vectors in the passage's own forward pass."""
    if isinstance(embedder, LazyEmbedder):
        return embedder.can_late_chunk()
    return callable(getattr(embedder, "encode_passages_with_spans", None))


def late_view_key(passage: str, span: tuple[int, int]) -> str:
    """Cache hash of a late-chunked view (filed under ``cache_key(model) + LATE_VIEW_SUFFIX``)."""
    return content_hash(f"{passage}\0{span[0]}:{span[1]}")


def embed_chunks(embedder, chunks: Sequence[Chunk], cache: EmbeddingCache | None = None,
                 views: bool = True, view_method: str = "late", show_progress: bool = False,
                 view_header: str = DEFAULT_VIEW_HEADER):
    """Chunk vectors and sentence views of ``chunks``, from the cache where possible.

    Returns ``(chunk EmbedResult, view vectors, view offsets, views EmbedResult,
    method used)``; the method is "late" (views pooled from the chunk's own forward
    pass, see ``embed_late``), "separate" (each view text embedded on its own, see
    ``embed_views``, with the header ``view_header``) or None (no views). "late" falls
    back to "separate" for an embedder that cannot late-chunk.
    """
    check_choice("view method", view_method, VIEW_METHODS)
    check_choice("view header", view_header, VIEW_HEADERS)
    texts = [passage_text(c) for c in chunks]
    if views and view_method == "late":
        late = embed_late(embedder, chunks, texts, cache=cache, show_progress=show_progress)
        if late is not None:
            return (*late, "late")
    embedded = embed_passages(embedder, texts, cache=cache, show_progress=show_progress, label="embedding chunks")
    if not views:
        return (embedded, *no_views(len(chunks), int(embedder.dim)), None)
    return (embedded, *embed_views(embedder, chunks, cache=cache, show_progress=show_progress,
                                   view_header=view_header), "separate")


def embed_late(embedder, chunks: Sequence[Chunk], texts: Sequence[str],
               cache: EmbeddingCache | None = None, show_progress: bool = False):
    """Late chunking: each chunk's passage text goes through the model once, giving its
    vector (mean of all tokens) and its views (mean of the tokens of each view span).
    The pooled tokens saw the whole passage, heading path included, so a late view
    has no separate header (a span embedded instead gets the whole path, as before).

    ``(chunk EmbedResult, view vectors, offsets, views EmbedResult)``, or None when
    something must be embedded and ``embedder`` cannot late-chunk. A span the model
    never saw (past its token limit) is embedded as a separate view text instead.
    """
    dim = int(embedder.dim)
    spans = [view_spans(c) for c in chunks]
    hashes = [content_hash(t) for t in texts]
    view_keys = [[late_view_key(t, s) for s in chunk_spans] for t, chunk_spans in zip(texts, spans)]
    flat_keys = [k for keys in view_keys for k in keys]
    model = cache_key(embedder)
    known = cache.get_many(model, hashes, dim) if cache is not None else {}
    known_views = cache.get_many(model + LATE_VIEW_SUFFIX, flat_keys, dim) if cache is not None else {}
    todo: dict[str, int] = {}  # passage hash -> first chunk with that text
    for i, key in enumerate(hashes):
        if key not in todo and (key not in known or any(k not in known_views for k in view_keys[i])):
            todo[key] = i
    if todo and not can_late_chunk(embedder):
        return None
    new_views: dict[str, np.ndarray] = {}
    if todo:
        rows = list(todo.values())
        vectors, per_text = embedder.encode_passages_with_spans(
            [texts[i] for i in rows], [spans[i] for i in rows], show_progress=show_progress)
        lost: list[tuple[str, str]] = []  # (key, view text) of spans past the token limit
        for i, vector, span_vectors in zip(rows, np.asarray(vectors, dtype=np.float32), per_text):
            known[hashes[i]] = vector
            view_texts = sentence_views(chunks[i], "path")
            for j, (key, span_vector) in enumerate(zip(view_keys[i], span_vectors)):
                if np.isnan(span_vector).any():
                    lost.append((key, view_texts[j]))
                else:
                    new_views[key] = np.asarray(span_vector, dtype=np.float32)
        if lost:
            fallback = np.asarray(embedder.encode_passages([t for _, t in lost]), dtype=np.float32)
            new_views.update(zip([k for k, _ in lost], fallback))
        if cache is not None:
            cache.put_many(model, [hashes[i] for i in rows], np.stack([known[hashes[i]] for i in rows]))
            if new_views:
                cache.put_many(model + LATE_VIEW_SUFFIX, list(new_views), np.stack(list(new_views.values())))
        known_views.update(new_views)
    chunk_vectors = np.stack([known[h] for h in hashes]).astype(np.float32) if hashes else np.zeros((0, dim), np.float32)
    view_vectors = (np.stack([known_views[k] for k in flat_keys]).astype(np.float32) if flat_keys
                    else np.zeros((0, dim), np.float32))
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in spans], dtype=np.int64)]).astype(np.int64)
    chunk_result = EmbedResult(vectors=chunk_vectors, embedded=len(todo), cached=len(set(hashes)) - len(todo))
    views_result = EmbedResult(vectors=view_vectors, embedded=len(new_views),
                               cached=len(set(flat_keys)) - len(new_views))
    return chunk_result, view_vectors, offsets, views_result


def embed_views(embedder, chunks: Sequence[Chunk], cache: EmbeddingCache | None = None,
                show_progress: bool = False, view_header: str = DEFAULT_VIEW_HEADER):
    """``(vectors, offsets, EmbedResult)`` of the sentence views of ``chunks``, each view
    text (with the header ``view_header``, see ``sentence_views``) embedded on its own."""
    texts: list[str] = []
    offsets = [0]
    for chunk in chunks:
        texts.extend(sentence_views(chunk, view_header))
        offsets.append(len(texts))
    embedded = embed_passages(embedder, texts, cache=cache, show_progress=show_progress,
                              label="embedding sentence views")
    vectors = np.asarray(embedded.vectors, dtype=np.float32).reshape(len(texts), int(embedder.dim))
    return vectors, np.asarray(offsets, dtype=np.int64), embedded


def no_views(n_chunks: int, dim: int):
    """The ``embed_views`` result of an index without sentence views."""
    empty = np.zeros((0, dim), dtype=np.float32)
    return empty, np.zeros(n_chunks + 1, dtype=np.int64), EmbedResult(vectors=empty, embedded=0, cached=0)


def load_embedder(model: str | None, engine: str | None = None):
    """The embedding model ``model`` (default ``config.DEFAULT_MODEL``), loaded now, on
    ``engine`` (an index's, see ``embeddings.loading.ENGINES``; None: the default here)."""
    from embeddings import load_embedder as load

    return load(model or config.DEFAULT_MODEL, engine=engine)


def planned_engine(model: str | None, engine: str | None = None) -> str:
    """The engine ``load_embedder(model, engine)`` will run, known without loading it."""
    from embeddings.loading import planned_engine as plan

    return plan(model or config.DEFAULT_MODEL, engine)


def engine_of(embedder) -> str | None:
    """The engine an embedder runs on ("torch", "onnx-int8"), None when it does not say."""
    return getattr(embedder, "engine", None)


def open_cache(cache=DEFAULT_CACHE) -> EmbeddingCache | None:
    """The embedding cache for ``cache``: the shared one (default), None/False for none,
    an ``EmbeddingCache`` as is, or a path to a cache file."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, EmbeddingCache):
        return cache
    try:
        return EmbeddingCache() if cache is DEFAULT_CACHE else EmbeddingCache(cache)
    except (sqlite3.OperationalError, OSError) as exc:
        # The cache only saves time: a full disk or an unwritable folder must not stop a build.
        print(f"warning: cannot open the embedding cache ({exc}); going on without it", file=sys.stderr)
        return None


class LazyEmbedder:
    """Loads the model named ``requested`` only when something must really be embedded.

    A rebuild whose passages are all in the embedding cache needs the model's
    name, cache key and dimension only; the cache remembers them from the last
    time this name was loaded, so such a rebuild never starts torch.
    """

    def __init__(self, requested: str, cache: EmbeddingCache | None = None, engine: str | None = None):
        self.requested = requested
        # the engine it will run on (an index's, or the default here): int8 vectors are
        # cached under their own key, so what the cache remembers is per engine
        self._planned = planned_engine(requested, engine)
        self._info_key = requested if self._planned == "torch" else f"{requested}|{self._planned}"
        self._cache = cache
        self._info = cache.model_info(self._info_key) if cache is not None else None
        self._model = None
        self._lock = threading.Lock()
        self._preloading: threading.Thread | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def known_to_cache(self) -> bool:
        """Whether the cache remembers this model's name, key and dimension (a build whose
        passages are all cached then never loads it)."""
        return self._info is not None

    def preload(self) -> None:
        """Start loading the model in a background thread, for a build that will need it:
        the load (imports, weights, an ONNX Runtime session: seconds) then overlaps reading
        and chunking the documents instead of following it. Anything that needs the model
        waits for that load; if it fails, the next use loads again and raises the error."""
        if self._model is not None or self._preloading is not None:
            return

        def load() -> None:
            try:
                self._get()
            except Exception:  # reported by the build's own use of the model
                pass

        # not a daemon: the interpreter must not exit half-way through an import
        self._preloading = threading.Thread(target=load, name="rag-model-preload")
        self._preloading.start()

    def _get(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = load_embedder(self.requested, self._planned)
                    if self._cache is not None:
                        self._cache.put_meta(f"engine:{self._info_key}", engine_of(model) or "")
                        self._cache.put_model_info(self._info_key, cache_key(model), model.name, model.dim)
                        self._cache.put_meta(f"late-chunking:{self._info_key}",
                                             "1" if can_late_chunk(model) else "0")
                    self._model = model
        return self._model

    def can_late_chunk(self) -> bool:
        """Whether the model late-chunks (see ``embed_late``); remembered by the cache, so
        a rebuild from a warm cache can tell without loading the model."""
        if self._model is None and self._info and self._cache is not None:
            known = self._cache.get_meta(f"late-chunking:{self._info_key}")
            if known is not None:
                return known == "1"
        return can_late_chunk(self._get())

    @property
    def engine(self) -> str | None:
        """The engine of the model (as the cache remembers it, so no load is needed)."""
        if self._model is None and self._info and self._cache is not None:
            known = self._cache.get_meta(f"engine:{self._info_key}")
            if known is not None:
                return known or None
        return engine_of(self._get())

    @property
    def name(self) -> str:
        return self._info[1] if self._model is None and self._info else self._get().name

    @property
    def dim(self) -> int:
        return self._info[2] if self._model is None and self._info else int(self._get().dim)

    @property
    def cache_key(self) -> str:
        return self._info[0] if self._model is None and self._info else cache_key(self._get())

    def encode_queries(self, texts):
        return self._get().encode_queries(texts)

    def encode_passages(self, texts, show_progress: bool = False):
        return self._get().encode_passages(texts, show_progress=show_progress)

    def __getattr__(self, attr):  # anything else the model offers (token counts, ...)
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._get(), attr)
