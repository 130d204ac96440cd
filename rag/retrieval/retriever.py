"""The Retriever: build, load, extend and search an index of Chinese documents.

    from rag import Retriever
    retriever = Retriever.build(["seeds/"], ".rag/index")     # or Retriever.load(".rag/index")
    for hit in retriever.search("12351热线什么时候全面建成？", k=5):
        print(hit.score, hit.doc, " > ".join(hit.heading_path), hit.text[:40])

Modes: ``dense`` (embedding cosine), ``bm25`` (keywords) and ``hybrid`` (both,
fused; the default). Dense scores a chunk by the best of its own vector and its
*sentence views* (see rag.retrieval.passages). The Retriever embeds (through the
cache, see rag.index.embedding), fuses and dedupes; a ``Store`` (rag.index.stores)
keeps the vectors and the keyword index: FAISS + bm25s files in the index
directory (``local``, the default) or a Milvus collection (``milvus``). The
embedding model is loaded only when a build or a dense/hybrid search needs it, so
BM25-only use never imports torch.

The stages are public, so benchmarks time the product's own code:
``query_vector`` -> ``dense_candidates`` / ``keyword_candidates`` -> ``fuse``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag import config
from rag.errors import (
    CorruptIndexError, DocumentError, DocumentNotFoundError, EmptyQueryError, InvalidArgumentError, RagError,
)
from rag.index import embedding as _embedding
from rag.index.embedding import DEFAULT_CACHE, LazyEmbedder, can_late_chunk, embed_chunks, open_cache
from rag.index.embedding_cache import EmbeddingCache, content_hash
from rag.index.settings import IndexSettings
from rag.index.stores import create_store, open_store
from rag.index.stores.base import NewChunks, Scored, Store
from rag.index_store import (
    IndexInfo,
    IndexLock,
    IndexNotFoundError,
    SourceRecord,
    check_model,
    load_index,
    manifest_identity,
    original_path,
    peek_manifest,
    read_manifest,
    read_source_text,
    sha256_file,
    write_index,
)
from rag.retrieval.fusion import CANDIDATES, fuse as fuse_lists
from rag.retrieval.refine import document_lead, refine
from rag.retrieval.passages import passage_text
from rag.text import drop_invalid_characters, normalize
from rag.types import Chunk, Hit
from rag.vocabulary import FUSION_METHODS, MODES, check_choice

#: How long ``Retriever.add`` waits for another process writing the same index.
ADD_LOCK_WAIT = 120.0


@dataclass
class BuildSummary:
    """What a build, an ``add`` or a ``delete_documents`` did."""

    index_dir: str
    documents: int
    chunks: int
    embedded: int
    cached: int
    seconds: float
    dense_kind: str
    views: int = 0            # sentence views in the index
    views_embedded: int = 0   # of which newly embedded (the rest came from the cache)
    problems: list[str] = field(default_factory=list)
    #: One line per document read: format, pages, pages OCR'd, headings, chunks (rag.ingest.FileReport).
    files: list[Any] = field(default_factory=list)
    added: list[str] = field(default_factory=list)      # documents new to the index
    replaced: list[str] = field(default_factory=list)   # documents whose file changed
    unchanged: list[str] = field(default_factory=list)  # documents skipped: same content
    removed: list[str] = field(default_factory=list)    # documents deleted (delete_documents)
    store: str = "local"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class IndexState:
    """Everything a search reads, as one snapshot that is never changed.

    ``add`` and ``delete_documents`` build a new state and swap it in with one
    assignment, and each search reads ``retriever._state`` once, so a search running
    meanwhile sees the old index or the new one, whole. The store is itself an
    immutable snapshot (see rag.index.stores.base). ``source_texts`` and ``leads`` are only caches.
    """

    manifest: dict[str, Any]
    settings: IndexSettings
    store: Store
    sources: dict[str, SourceRecord]
    source_texts: dict[str, str] = field(default_factory=dict)
    #: Document -> (lead sentence, where it ends): the context stage 3 reads later chunks in.
    leads: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def info(self) -> IndexInfo:
        """Counts, format, write identity and the store's section, from the manifest."""
        return IndexInfo.from_manifest(self.manifest)


class Retriever:
    """Hybrid (dense + BM25) retrieval over an index. See the module docstring.

    Safe to search from many threads while one ``add`` runs (see ``IndexState``).
    """

    def __init__(self, index_dir: str | Path, state: IndexState, embedder=None, fusion: str | None = None,
                 fusion_weights: Sequence[float] | None = None):
        self.index_dir = Path(index_dir)
        self._state = state
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time in this process
        self.fusion = check_choice("fusion", fusion or state.settings.fusion, FUSION_METHODS)
        self.fusion_weights = tuple(fusion_weights or state.settings.fusion_weights)
        self.last_notices: list[str] = []
        self.build_summary: BuildSummary | None = None
        self.cache = DEFAULT_CACHE  # embedding cache for add(): set by build/load
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_lock = threading.Lock()
        if embedder is not None:
            check_model(self.settings, embedder.name, embedder.dim, where=f"index at {self.index_dir}")

    # ---------------------------------------------------------------- building and loading

    @classmethod
    def build(cls, paths: Iterable[str | Path] | str | Path, index_dir: str | Path | None = None,
              settings: IndexSettings | None = None, *, embedder=None, cache=DEFAULT_CACHE,
              show_progress: bool = True, lock_wait: float = 0.0, **options) -> "Retriever":
        """Read ``paths`` (files or folders), chunk, embed and index them into ``index_dir``.

        ``settings`` (an ``IndexSettings``; default: the defaults) says how; keyword
        ``options`` change single settings (``IndexSettings.from_options``: e.g.
        ``model``, ``dense``, ``views``, ``view_method``, ``max_chars``, ``store``,
        ``milvus_uri``, ``collection``). ``embedder``: a ready model instead of
        loading ``settings.model``; ``cache``: an EmbeddingCache, a path to one, or
        None (default: the shared cache in config.CACHE_DIR); ``show_progress``: a
        tqdm bar while embedding.

        The index is written atomically: a failure leaves any previous index intact
        (in Milvus, rows written before the failure stay invisible and are removed by
        the next write). One process writes an index at a time: when another one is
        building or adding to ``index_dir``, this waits ``lock_wait`` seconds (default:
        none), then raises ``IndexBusyError`` naming its pid.
        """
        started = time.perf_counter()
        index_dir = config.index_dir(index_dir)
        settings = _complete_store_settings(IndexSettings.from_options(settings, **options), index_dir)
        with IndexLock(index_dir, wait=lock_wait):
            if settings.store == "local":
                cache_db = open_cache(cache)
                embedder = embedder or LazyEmbedder(settings.model, cache_db, engine=settings.embedding_engine)
                state, summary = _build_streaming(paths, index_dir, settings, embedder, cache_db, show_progress)
                retriever = cls(index_dir, state, embedder=embedder)
                retriever.cache = cache_db
                summary.seconds = round(time.perf_counter() - started, 3)
                retriever.build_summary = summary
                return retriever
            result, problems = _ingest(paths, settings.chunking, progress=show_progress)
            chunks = list(result.chunks)
            if not chunks:
                detail = f": {'; '.join(problems)}" if problems else ""
                raise DocumentError(f"no text to index in {', '.join(map(str, _as_list(paths)))}{detail}")
            _check_unique_ids(chunks)
            sources = [_source_record(d) for d in result.documents]
            cache_db = open_cache(cache)
            embedder = embedder or LazyEmbedder(settings.model, cache_db, engine=settings.embedding_engine)
            new, embedded, views_embedded, method = _embed(embedder, chunks, settings, settings.view_method,
                                                           cache_db, show_progress)
            settings = settings.replace(model=embedder.name, dim=int(embedder.dim), view_method=method,
                                        views=method is not None, embedding_engine=_embedding.engine_of(embedder))
            store = create_store(settings, token_cache=cache_db).updated((), new)
            state = _commit(index_dir, settings, store, sources)
        retriever = cls(index_dir, state, embedder=embedder)
        retriever.cache = cache_db
        retriever.build_summary = BuildSummary(
            index_dir=str(index_dir), documents=len(sources), chunks=len(chunks),
            embedded=embedded.embedded, cached=embedded.cached,
            seconds=round(time.perf_counter() - started, 3), dense_kind=_dense_kind(store),
            views=len(new.views), views_embedded=views_embedded.embedded,
            problems=problems, files=list(result.reports), added=[s.doc for s in sources], store=store.kind)
        return retriever

    @classmethod
    def load(cls, index_dir: str | Path | None = None, *, model: str | None = None,
             embedder=None, fusion: str | None = None, cache=DEFAULT_CACHE) -> "Retriever":
        """Open the index at ``index_dir`` after verifying checksums, counts and format;
        a Milvus index reconnects to the collection its manifest names.

        With ``model`` (or an ``embedder``) the index must have been built with that
        model, else ``IndexMismatchError`` names both. The model itself loads lazily.
        ``cache`` is the embedding cache ``add`` uses (default: the shared one).
        """
        index_dir = config.index_dir(index_dir)
        if model is not None:
            check_model(IndexSettings.from_manifest(read_manifest(index_dir)), model, where=f"index at {index_dir}")
        retriever = cls(index_dir, _load_state(index_dir, cache), embedder=embedder, fusion=fusion)
        retriever.cache = cache
        return retriever

    @classmethod
    def load_or_build(cls, index_dir: str | Path | None, docs_paths: Iterable[str | Path],
                      **settings) -> "Retriever":
        """Load the index at ``index_dir``; build it from ``docs_paths`` when there is none."""
        try:
            return cls.load(index_dir, model=settings.get("model"), embedder=settings.get("embedder"),
                            cache=settings.get("cache", DEFAULT_CACHE))
        except IndexNotFoundError:
            return cls.build(docs_paths, index_dir, **settings)

    @classmethod
    def rebuild(cls, paths: Iterable[str | Path] | str | Path, index_dir: str | Path | None = None,
                **options) -> "Retriever":
        """``build`` into ``index_dir`` keeping where the index there keeps its data: an index
        in Milvus (even one of an older format) is rebuilt into the same collection, not
        silently moved to the local store. ``options`` as for ``build``."""
        index_dir = config.index_dir(index_dir)
        previous = _previous_settings(index_dir)
        if previous is not None and previous.store != "local" and "store" not in options:
            options = {"store": previous.store, "milvus_uri": previous.store_uri,
                       "collection": previous.collection, **options}
        return cls.build(paths, index_dir, **options)

    # ---------------------------------------------------------------- adding and deleting

    def add(self, paths: Iterable[str | Path] | str | Path, show_progress: bool = False,
            force: bool = False, lock_wait: float = ADD_LOCK_WAIT) -> BuildSummary:
        """Add (or replace, by document name) documents, embedding only new chunks.

        All or nothing: if any given file cannot be read or decoded (or a folder holds
        no supported file), ``DocumentError`` names each such file and the index stays
        exactly as it was. A document whose content is unchanged is skipped, unless
        ``force`` (re-index: chunk it again). The index's own settings are used.

        If another process changed the index on disk since it was loaded (say a
        ``rag index ... --index`` run), that newer index is loaded first and the
        documents are added to it, so nothing it holds is lost. While another process
        is writing the index, this waits up to ``lock_wait`` seconds, then raises
        ``IndexBusyError``. Searches keep running meanwhile, on the index as it was.
        """
        started = time.perf_counter()
        with self._write_lock, IndexLock(self.index_dir, wait=lock_wait):
            state = self._reload_if_changed_on_disk()
            result, problems = _ingest(paths, state.settings.chunking, progress=show_progress)
            if problems:
                raise DocumentError(f"nothing added, the index is unchanged: {'; '.join(problems)}")
            summary = self._extend(state, result, force, show_progress)
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    def _extend(self, state: IndexState, result, force: bool, show_progress: bool) -> BuildSummary:
        new_sources = [_source_record(d) for d in result.documents]
        added, replaced, unchanged = [], [], []
        for source in new_sources:
            old = state.sources.get(source.doc)
            if old is None:
                added.append(source.doc)
            elif old.sha256 == source.sha256 and not force:
                unchanged.append(source.doc)
            else:
                replaced.append(source.doc)
        changed = set(added) | set(replaced)
        new_chunks = [c for c in result.chunks if c.doc in changed]
        kept = [c for c in state.store.chunks() if c.doc not in changed] if state.store.kind == "local" else []
        _check_unique_ids(kept + new_chunks)
        info = state.store.describe()
        summary = BuildSummary(
            index_dir=str(self.index_dir), documents=len(state.sources), chunks=len(state.store),
            embedded=0, cached=0, seconds=0.0, dense_kind=info["dense_kind"], views=info.get("views", 0),
            files=list(result.reports), added=added, replaced=replaced, unchanged=unchanged,
            store=state.store.kind)
        if not changed:
            return summary
        settings = state.settings
        embedder = self.embedder
        if settings.views and settings.view_method == "late" and new_chunks and not can_late_chunk(embedder):
            raise RagError(f"the index at {self.index_dir} has late-chunked sentence views, but the embedder "
                           f"{embedder.name!r} cannot late-chunk; rebuild the index with `rag index`")
        new, embedded, views_embedded, _ = _embed(embedder, new_chunks, settings, settings.view_method,
                                                  self._open_cache(), show_progress)
        store = state.store.updated(replaced, new)
        sources = [self._kept_source(state, s) for d, s in state.sources.items() if d not in changed]
        sources += [s for s in new_sources if s.doc in changed]
        self._state = _commit(self.index_dir, settings, store, sources)  # the one swap readers see
        self._clear_query_cache()
        info = store.describe()
        summary.documents, summary.chunks = len(sources), len(store)
        summary.embedded, summary.cached = embedded.embedded, embedded.cached
        summary.views, summary.views_embedded = info.get("views", 0), views_embedded.embedded
        summary.dense_kind = info["dense_kind"]
        return summary

    def delete_documents(self, docs: Iterable[str] | str, lock_wait: float = ADD_LOCK_WAIT) -> BuildSummary:
        """Remove documents (by name) with all their chunks, vectors and sentence views.

        Nothing is embedded, so the model is never loaded. The new index is written
        atomically (a search sees the old index or the new one, never half of a
        document). Unknown names raise ``DocumentNotFoundError`` and change nothing;
        removing every document is refused (an index cannot be empty).
        ``BuildSummary.removed`` lists the documents removed.
        """
        started = time.perf_counter()
        names = list(dict.fromkeys([docs] if isinstance(docs, str) else docs))
        with self._write_lock, IndexLock(self.index_dir, wait=lock_wait):
            state = self._reload_if_changed_on_disk()
            missing = [name for name in names if name not in state.sources]
            if missing:
                raise DocumentNotFoundError(f"no document {', '.join(map(repr, missing))} in the index at "
                                            f"{self.index_dir}")
            if not set(state.sources) - set(names):
                raise RagError("an index cannot be empty: add another document before deleting the last one")
            sources = [self._kept_source(state, s) for d, s in state.sources.items() if d not in set(names)]
            store = state.store.updated(names, None)
            self._state = _commit(self.index_dir, state.settings, store, sources)
            self._clear_query_cache()
        info = store.describe()
        return BuildSummary(
            index_dir=str(self.index_dir), documents=len(sources), chunks=len(store), embedded=0, cached=0,
            seconds=round(time.perf_counter() - started, 3), dense_kind=info["dense_kind"],
            views=info.get("views", 0), removed=names, store=store.kind)

    def _kept_source(self, state: IndexState, source: SourceRecord) -> SourceRecord:
        """A document that stays, ready to be written again: its text and original copied
        over from the index itself."""
        return dataclasses.replace(source, text=self._source_text(state, source.doc),
                                   original_from=original_path(self.index_dir, source))

    def _reload_if_changed_on_disk(self) -> IndexState:
        """The state to write on: the served one, or the index on disk when another process
        wrote a newer one since (then it is also served from now on). Caller holds the lock."""
        state = self._state
        try:
            on_disk = manifest_identity(read_manifest(self.index_dir, locked=True))
        except IndexNotFoundError:
            return state  # deleted meanwhile: nothing newer to lose; the write makes it anew
        if on_disk == state.info.identity:
            return state
        fresh = _load_state(self.index_dir, self.cache)
        embedder = self._embedder
        if embedder is not None:
            check_model(fresh.settings, embedder.name, embedder.dim, where=f"index at {self.index_dir}")
        self._state = fresh
        self._clear_query_cache()
        return fresh

    def _open_cache(self) -> EmbeddingCache | None:
        if not isinstance(self.cache, EmbeddingCache):
            self.cache = open_cache(self.cache)
        return self.cache

    # ---------------------------------------------------------------- searching

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first (``mode``: dense, bm25, hybrid).

        Raises ``EmptyQueryError`` for an empty/whitespace query. A query over
        ``config.MAX_QUERY_CHARS`` characters is truncated; the notice is in
        ``self.last_notices`` (or use ``search_with_notices``). BM25 mode can return
        fewer than ``k`` hits when few chunks share a word with the query.
        """
        hits, _ = self.search_with_notices(query, k=k, mode=mode)
        return hits

    def search_with_notices(self, query: str, k: int = 5, mode: str = "hybrid") -> tuple[list[Hit], list[str]]:
        """Like ``search``, also returning human-readable notices (e.g. truncation)."""
        query, notices = _check_query(query)
        k = _check_k(k)
        check_choice("mode", mode, MODES)
        self.last_notices = notices
        state = self._state  # read once: a concurrent add swapping in a new index does not mix the two
        store = state.store
        depth = max(k * 2, k + 10)
        if mode == "bm25":
            ranked = store.keyword_candidates(query, depth)
        elif mode == "dense":
            ranked = store.dense_candidates(self.query_vector(query), depth)
        else:
            depth = max(CANDIDATES, 2 * k)
            qvec = self.query_vector(query)
            ranked = refine(query, self._fuse(store, query, qvec, store.dense_candidates(qvec, depth),
                                              store.keyword_candidates(query, depth)),
                            context=lambda chunk: self._lead_context(state, chunk))
        return [Hit.from_chunk(chunk, score, mode) for chunk, score in _dedupe(ranked, k)], notices

    def _lead_context(self, state: IndexState, chunk: Chunk) -> str:
        """The lead sentence of ``chunk``'s document when the chunk comes after it ("" for
        the chunk holding it): stage 3 reads a later chunk of a headline-less article in
        the light of what the article is about."""
        lead = state.leads.get(chunk.doc)
        if lead is None:
            try:
                text = read_source_text(self.index_dir, state.sources[chunk.doc])
            except (KeyError, OSError, RagError):
                text = ""
            lead = state.leads[chunk.doc] = document_lead(text)
        return lead[0] if chunk.start >= lead[1] else ""

    def dense_candidates(self, query: str | np.ndarray, depth: int = CANDIDATES) -> list[Scored]:
        """Stage 1, dense: the ``depth`` chunks closest to ``query`` (a text, or its vector
        from ``query_vector``), each scored by the best of its own and its views' cosine."""
        qvec = self.query_vector(query) if isinstance(query, str) else query
        return self._state.store.dense_candidates(qvec, depth)

    def keyword_candidates(self, query: str, depth: int = CANDIDATES) -> list[Scored]:
        """Stage 1, keywords: the ``depth`` best chunks by BM25 (positive scores only)."""
        return self._state.store.keyword_candidates(query, depth)

    def fuse(self, query: str, dense: Sequence[Scored], keyword: Sequence[Scored],
             query_vector: np.ndarray | None = None) -> list[Scored]:
        """Stage 2: one ranking from the two candidate lists, by ``self.fusion``.

        Score fusion (minmax, zscore) first fetches both exact scores of every
        candidate of either list, so a chunk found by one retriever is not scored as
        if the other had missed it; rrf uses the ranks as they are.
        """
        qvec = self.query_vector(query) if query_vector is None else query_vector
        return self._fuse(self._state.store, query, qvec, dense, keyword)

    def _fuse(self, store: Store, query: str, qvec: np.ndarray, dense: Sequence[Scored],
              keyword: Sequence[Scored]) -> list[Scored]:
        chunks = {c.id: c for c, _ in dense}
        chunks.update((c.id, c) for c, _ in keyword)
        if self.fusion == "rrf":
            lists = [{c.id: s for c, s in dense}, {c.id: s for c, s in keyword}]
        else:
            pool = sorted(chunks)
            lists = [store.dense_scores(pool, qvec), store.keyword_scores(pool, query)]
        return [(chunks[cid], score) for cid, score in fuse_lists(lists, self.fusion, self.fusion_weights)
                if cid in chunks]

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding (L2-normalised float32), cached for the last 256 queries,
        so an answerer scoring sentences against the question does not embed it twice."""
        with self._query_cache_lock:
            cached = self._query_cache.get(query)
            if cached is not None:
                self._query_cache.move_to_end(query)
                return cached
        vector = np.asarray(self.embedder.encode_queries([query]), dtype=np.float32)[0]
        with self._query_cache_lock:
            self._query_cache[query] = vector
            if len(self._query_cache) > 256:
                self._query_cache.popitem(last=False)
        return vector

    def clear_query_cache(self) -> None:
        """Forget cached query vectors (benchmarks time the embedding this way)."""
        self._clear_query_cache()

    def _clear_query_cache(self) -> None:
        with self._query_cache_lock:
            self._query_cache.clear()

    # ---------------------------------------------------------------- access

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the index now served (see rag.index_store)."""
        return self._state.manifest

    @property
    def settings(self) -> IndexSettings:
        """The settings the index was built with (from its manifest)."""
        return self._state.settings

    @property
    def index_info(self) -> IndexInfo:
        """What the manifest records about the index as written: counts, format version,
        when it was written, the dense index kind built (see ``rag.index_store.IndexInfo``)."""
        return self._state.info

    @property
    def store(self) -> Store:
        """The store now served (a snapshot: an add swaps in a new one)."""
        return self._state.store

    @property
    def embedder(self):
        """The embedding model the index was built with (loaded on first use)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    # the index's engine: an index of an older version was built by torch
                    embedder = _embedding.load_embedder(self.settings.model, self.settings.embedding_engine or "torch")
                    check_model(self.settings, embedder.name, embedder.dim, where=f"index at {self.index_dir}")
                    self._embedder = embedder
        return self._embedder

    @property
    def model_name(self) -> str:
        return self.settings.model

    @property
    def chunks(self) -> list[Chunk]:
        """All chunks, in index order."""
        return self._state.store.chunks()

    @property
    def documents(self) -> list[str]:
        """Names of the indexed documents."""
        return list(self._state.sources)

    @property
    def sources(self) -> list[SourceRecord]:
        """What the index records about each document (name, path, sha256, chars, added),
        in index order; the texts are not loaded (see ``source_text``)."""
        return [dataclasses.replace(s, text="") for s in self._state.sources.values()]

    def get_chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id (KeyError if there is none)."""
        chunk = self._state.store.get_chunk(chunk_id)
        if chunk is None:
            raise KeyError(f"no chunk {chunk_id!r} in the index at {self.index_dir}")
        return chunk

    def source_text(self, doc: str) -> str:
        """The original decoded text of document ``doc`` (chunk offsets point into it)."""
        return self._source_text(self._state, doc)

    def _source_text(self, state: IndexState, doc: str) -> str:
        text = state.source_texts.get(doc)
        if text is None:
            record = state.sources.get(doc)
            if record is None:
                raise KeyError(f"no document {doc!r} in the index at {self.index_dir}")
            text = state.source_texts[doc] = read_source_text(self.index_dir, record)
        return text

    def page_at(self, doc: str, offset: int) -> int | None:
        """The 1-based page of document ``doc`` holding character ``offset`` of its text
        (None for formats without pages or an unknown document)."""
        from rag.ingest.documents import page_at

        record = self._state.sources.get(doc)
        return page_at(record.page_starts, offset) if record is not None else None

    def original_file(self, doc: str) -> Path | None:
        """The index's own copy of document ``doc``'s original file (None when it keeps none)."""
        record = self._state.sources.get(doc)
        return original_path(self.index_dir, record) if record is not None else None

    def document_kind(self, doc: str) -> str | None:
        """The format of document ``doc`` (txt, md, pdf, docx, html, image, ...)."""
        record = self._state.sources.get(doc)
        return record.kind if record is not None else None

    def __len__(self) -> int:
        return len(self._state.store)

    def __repr__(self) -> str:
        state = self._state
        return (f"Retriever({str(self.index_dir)!r}, store={state.store.kind}, documents={len(state.sources)}, "
                f"chunks={len(state.store)}, model={self.model_name!r})")


# --------------------------------------------------------------------------- writing and reading

def _embed(embedder, chunks: Sequence[Chunk], settings: IndexSettings, view_method: str | None, cache,
           show_progress: bool):
    """``(NewChunks, chunk EmbedResult, views EmbedResult, view method used)``: sentence
    views as ``settings`` say, embedded by ``view_method`` (the one a build already uses)."""
    embedded, view_vectors, offsets, views_embedded, method = embed_chunks(
        embedder, chunks, cache=cache, views=settings.views, view_method=view_method or "separate",
        show_progress=show_progress, view_header=settings.view_header)
    new = NewChunks(chunks=list(chunks), vectors=embedded.vectors, views=view_vectors, view_offsets=offsets,
                    keyword_texts=[passage_text(c) for c in chunks])
    return new, embedded, views_embedded, method


#: A streaming build (``_build_streaming``) embeds, tokenizes and writes documents in
#: batches of about this many chunks (whole documents): big enough to keep both cores
#: busy tokenizing and the model's batches full, small enough to hold (~4k chunks and
#: their ~20k sentence views: ~40 MB of vectors).
BUILD_BATCH_CHUNKS = int(config.env("RAG_BUILD_BATCH_CHUNKS") or 4096)


def _build_streaming(paths, index_dir: Path, settings: IndexSettings, embedder, cache,
                     show_progress: bool) -> tuple[IndexState, BuildSummary]:
    """A new local index at ``index_dir``, built as a stream (the caller holds the lock).

    Documents are read file by file (``IngestStream``), chunked, embedded through the
    cache (committed as they are computed, so a killed build resumes) and written in
    batches of ``BUILD_BATCH_CHUNKS`` chunks: each batch's texts go to a staging folder
    beside the index, its vectors and chunks to the store's files there
    (``LocalStoreWriter``), and nothing of it stays in memory but keyword token ids and
    one small record per document. The staged files then become the index the usual
    way (``write_index``: atomic, the previous index untouched until the swap).
    """
    from rag.index.stores.local import LocalStoreWriter
    from rag.index_store import SOURCES_DIR, check_replaceable, staging_dir, writing_into
    from rag.ingest import IngestStream

    paths_list = [Path(p) for p in _as_list(paths)]
    if not paths_list:
        raise DocumentError("no documents given: pass one or more files or folders")
    check_replaceable(index_dir)
    stream = IngestStream(paths_list, settings.chunking, progress=show_progress, batch_chunks=BUILD_BATCH_CHUNKS,
                          on_chunks=_model_preloader(embedder, cache))
    with writing_into(index_dir):
        staging = staging_dir(index_dir)
    texts_dir = staging / SOURCES_DIR
    sources: list[SourceRecord] = []
    reports: list = []
    seen_ids: set[str] = set()
    counts = {"chunks": 0, "embedded": 0, "cached": 0, "views": 0, "views_embedded": 0}
    method: str | None = None
    from tqdm.auto import tqdm

    try:
        with contextlib.ExitStack() as stack:
            writer = None
            bar = stack.enter_context(tqdm(desc="indexing", unit="doc", disable=not show_progress,
                                           dynamic_ncols=True, smoothing=0.05))
            with writing_into(index_dir):
                texts_dir.mkdir()
            for batch in stream:
                for document in batch.documents:
                    source = _source_record(document)
                    path = staging / source.text_file
                    if not path.exists():
                        with writing_into(index_dir):
                            path.write_text(source.text, encoding="utf-8")
                    source.text = ""
                    sources.append(source)
                reports.extend(batch.reports)
                if batch.chunks:
                    _check_unique_ids(batch.chunks, seen_ids)
                    new, embedded, views_embedded, used = _embed(embedder, batch.chunks, settings,
                                                                 method or settings.view_method, cache,
                                                                 show_progress)
                    if writer is None:
                        method = used
                        settings = settings.replace(model=embedder.name, dim=int(embedder.dim), view_method=used,
                                                    views=used is not None,
                                                    embedding_engine=_embedding.engine_of(embedder))
                        with writing_into(index_dir):
                            writer = stack.enter_context(LocalStoreWriter(
                                staging / "store", int(embedder.dim), dense_kind=settings.dense_kind,
                                ef_search=settings.ef_search, nprobe=settings.nprobe, bigrams=settings.bigrams,
                                token_cache=cache))
                    elif used != method:
                        raise RagError(f"sentence views were embedded {method!r} for the first documents but "
                                       f"{used!r} later (the embedder changed?); rebuild with --no-cache")
                    with writing_into(index_dir):
                        writer.add(new)
                    counts["chunks"] += len(new.chunks)
                    counts["views"] += len(new.views)
                    for key, result in (("embedded", embedded), ("views_embedded", views_embedded)):
                        counts[key] += result.embedded
                    counts["cached"] += embedded.cached
                    del new
                # the files' documents counted up front: a big record file is read one batch
                # ahead of the embedding, so counting what was read would show it nearly done
                bar.total = max(stream.documents_expected, stream.documents_seen)
                bar.update(len(batch.documents))
                bar.set_postfix(chunks=counts["chunks"], refresh=False)
                del batch
            bar.total = bar.n  # the estimate counted skipped records and failed files
            bar.refresh()
            problems = [str(p) for p in stream.problems]
            if writer is None:
                detail = f": {'; '.join(problems)}" if problems else ""
                raise DocumentError(f"no text to index in {', '.join(map(str, paths_list))}{detail}")
            with writing_into(index_dir):
                store = writer.finish()
        manifest = write_index(index_dir, store=store, sources=sources, locked=True, staged_sources=texts_dir,
                               manifest_extra=settings.to_manifest(dense_kind=store.dense_kind,
                                                                   dense_index=store.describe().get("dense_index")))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    store = open_store(index_dir, settings, IndexInfo.from_manifest(manifest), token_cache=cache)
    state = IndexState(manifest=manifest, settings=settings, store=store, sources={s.doc: s for s in sources})
    summary = BuildSummary(
        index_dir=str(index_dir), documents=len(sources), chunks=counts["chunks"], embedded=counts["embedded"],
        cached=counts["cached"], seconds=0.0, dense_kind=store.describe()["dense_kind"], views=counts["views"],
        views_embedded=counts["views_embedded"], problems=problems, files=reports,
        added=[s.doc for s in sources], store="local")
    return state, summary


def _model_preloader(embedder, cache):
    """For a streaming build: start loading the model in the background (``LazyEmbedder.preload``)
    as soon as it is known to be needed, so the load overlaps reading and chunking. Needed
    when the cache has never seen the model, or when a chunk of the first batch of
    documents is not in the cache. Returns the per-document callback for ``IngestStream``
    (None when there is nothing to preload)."""
    if not isinstance(embedder, LazyEmbedder) or embedder.loaded:
        return None
    if cache is None or not embedder.known_to_cache:
        embedder.preload()
        return None
    key, dim = embedder.cache_key, embedder.dim
    checked = [0]

    def on_chunks(chunks: Sequence[Chunk]) -> None:
        if embedder.loaded or checked[0] >= BUILD_BATCH_CHUNKS or not chunks:
            return  # started already, or the first batch was all cached: embedding loads it if needed
        checked[0] += len(chunks)
        hashes = [content_hash(passage_text(c)) for c in chunks]
        if len(cache.get_many(key, hashes, dim)) < len(set(hashes)):
            embedder.preload()

    return on_chunks


def _commit(index_dir: Path, settings: IndexSettings, store: Store, sources: list[SourceRecord]) -> IndexState:
    """Write the index directory around ``store`` (atomically: the manifest naming the
    new snapshot replaces the old one whole), then let the store drop what only older
    snapshots used. The caller holds the index lock."""
    manifest = write_index(index_dir, store=store, sources=sources,
                           manifest_extra=settings.to_manifest(dense_kind=_dense_kind(store),
                                                             dense_index=store.describe().get("dense_index")),
                           locked=True)
    store.commit()
    return IndexState(manifest=manifest, settings=settings, store=store,
                      sources={s.doc: dataclasses.replace(s, text="") for s in sources})


def _load_state(index_dir: Path, cache) -> IndexState:
    """The index at ``index_dir``, verified. A writer replacing it while it is read makes
    its files fail their checksums: then the new index is read instead (up to 3 tries)."""
    for attempt in range(3):
        before = _identity_on_disk(index_dir)
        try:
            return _load_state_once(index_dir, cache)
        except CorruptIndexError:
            if attempt == 2 or _identity_on_disk(index_dir) == before:
                raise
    raise AssertionError("unreachable")


def _identity_on_disk(index_dir: Path):
    try:
        return manifest_identity(read_manifest(index_dir))
    except RagError:
        return None


def _load_state_once(index_dir: Path, cache) -> IndexState:
    stored = load_index(index_dir)
    settings = IndexSettings.from_manifest(stored.manifest)
    token_cache = cache if isinstance(cache, EmbeddingCache) else None
    store = open_store(index_dir, settings, stored.info, token_cache=token_cache)
    return IndexState(manifest=stored.manifest, settings=settings, store=store, sources=stored.sources)


def _previous_settings(index_dir: Path) -> IndexSettings | None:
    """The settings in the manifest at ``index_dir`` even when the index cannot be loaded
    (older format, another model); None when there is none or it is unreadable."""
    manifest = peek_manifest(index_dir)
    if manifest is None:
        return None
    try:
        return IndexSettings.from_manifest(manifest)
    except (ValueError, TypeError, AttributeError, RagError):
        return None


def _complete_store_settings(settings: IndexSettings, index_dir: Path) -> IndexSettings:
    """Fill in what a store needs that the caller may leave out: for Milvus an absolute
    Lite path and a collection named after the index directory."""
    if settings.store != "milvus":
        return settings
    from rag.index.stores.milvus import default_collection, normalize_uri

    return settings.replace(store_uri=normalize_uri(settings.store_uri),
                            collection=settings.collection or default_collection(index_dir))


def _dense_kind(store: Store) -> str:
    return str(store.describe().get("dense_kind", store.kind))


# --------------------------------------------------------------------------- ingestion adapter

def _ingest(paths: Iterable[str | Path] | str | Path, chunking, progress: bool = False):
    from rag.ingest import ingest

    paths = [Path(p) for p in _as_list(paths)]
    if not paths:
        raise DocumentError("no documents given: pass one or more files or folders")
    result = ingest(paths, chunking, progress=progress, keep_structures=False)
    problems = [str(p) for p in (result.problems or [])]
    return result, problems


def _source_record(document) -> SourceRecord:
    doc = getattr(document, "name", None) or getattr(document, "doc", None)
    text = document.text
    path = str(getattr(document, "path", "") or "")
    sha = getattr(document, "sha256", None)
    if not sha:  # hash of the file's bytes: tells whether the file changed on disk
        sha = sha256_file(Path(path)) if path and Path(path).is_file() else content_hash(text)
    return SourceRecord(doc=str(doc), path=path, sha256=str(sha), text=text, chars=len(text),
                        added=time.strftime("%Y-%m-%dT%H:%M:%S%z"), kind=getattr(document, "kind", "txt"),
                        page_starts=list(getattr(document, "page_starts", []) or []),
                        original_from=Path(path) if path and Path(path).is_file() else None)


def _check_unique_ids(chunks: Sequence[Chunk], seen: set[str] | None = None) -> None:
    """``DocumentError`` if two chunks share an id (``seen``: ids of earlier batches, updated)."""
    seen = set() if seen is None else seen
    for chunk in chunks:
        if chunk.id in seen:
            raise DocumentError(f"two chunks share the id {chunk.id!r}: two documents are named "
                                f"{chunk.doc!r}; rename one of them")
        seen.add(chunk.id)


def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


# --------------------------------------------------------------------------- search helpers

def _dedupe(ranked: Sequence[Scored], k: int) -> list[Scored]:
    """The first ``k`` of ``ranked``, the same passage text (a notice printed twice) once."""
    out: list[Scored] = []
    seen: set[str] = set()
    for chunk, score in ranked:
        key = normalize(chunk.text)
        if key in seen:
            continue
        seen.add(key)
        out.append((chunk, score))
        if len(out) == k:
            break
    return out


def _check_query(query: str) -> tuple[str, list[str]]:
    notices: list[str] = []
    if isinstance(query, str):
        query, dropped = drop_invalid_characters(query)
        if dropped:
            notices.append(f"{dropped} invalid characters (undecodable bytes, lone surrogates) were dropped "
                           "from the query")
    if not isinstance(query, str) or not query.strip():
        raise EmptyQueryError("the query is empty: type a question or some keywords")
    query = query.strip()
    if len(query) > config.MAX_QUERY_CHARS:
        notices.append(f"the query has {len(query)} characters; only the first "
                       f"{config.MAX_QUERY_CHARS} were used")
        query = query[: config.MAX_QUERY_CHARS]
    return query, notices


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgumentError(f"k must be a whole number of at least 1, not {k!r}")
    return int(k)
