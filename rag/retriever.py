"""The Retriever: build, load, extend and search an index of Chinese documents.

    from rag import Retriever
    retriever = Retriever.build(["seeds/"], ".rag/index")     # or Retriever.load(".rag/index")
    for hit in retriever.search("12351热线什么时候全面建成？", k=5):
        print(hit.score, hit.doc, " > ".join(hit.heading_path), hit.text[:40])

Modes: ``dense`` (embedding cosine via FAISS), ``bm25`` (keywords) and
``hybrid`` (both, fused; the default). Dense scores a chunk by the best of its
own vector and its *sentence views* (each sentence embedded with the chunk's
heading path), so one sentence that answers the question is not drowned by the
rest of a 400-character chunk. Views are embedded on their own by default, or
"late-chunked" from the chunk's own forward pass (``view_method="late"``: about
half the build time, lower R@1; see ``DEFAULT_VIEW_METHOD``). The embedding
model is loaded only when a build or a dense/hybrid search needs it, so
BM25-only use never imports torch.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag import config
from rag.errors import DocumentError, DocumentNotFoundError, EmptyQueryError, InvalidArgumentError, RagError
from rag.index import embedding as _embedding
from rag.index.embedding import DEFAULT_CACHE as _UNSET
from rag.index.embedding import DEFAULT_VIEW_METHOD, LazyEmbedder, can_late_chunk, embed_chunks
from rag.index.embedding import no_views as _no_views
from rag.index.embedding import open_cache as _open_cache
from rag.index.embedding_cache import EmbeddingCache, content_hash, tokenize_passages
from rag.index.stores.bm25_keyword import KeywordIndex, top_k
from rag.index.stores.faiss_dense import HNSW_EF_SEARCH, IVF_NPROBE, DenseIndex, resolve_kind
from rag.index_store import (
    IndexLock,
    IndexNotFoundError,
    SourceRecord,
    StoredIndex,
    check_model,
    load_index,
    manifest_identity,
    original_path,
    read_manifest,
    read_source_text,
    sha256_file,
    write_index,
)
from rag.retrieval.fusion import CANDIDATES, DEFAULT_FUSION, DEFAULT_FUSION_WEIGHTS, fuse
from rag.retrieval.fusion import METHODS as FUSION_METHODS
from rag.retrieval.passages import passage_text
from rag.text import normalize
from rag.types import Chunk, Hit
from rag.vocabulary import MODES
from rag.vocabulary import check_choice as _check_choice


@dataclass(frozen=True)
class _ModelInfo:
    """The name and dimension of the index's model, for rewriting an index without loading it."""

    name: str
    dim: int


@dataclass
class BuildSummary:
    """What a build or an ``add`` did."""

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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- ingestion adapter

def _chunk_settings(chunk_settings=None, max_chars: int | None = None):
    from rag.ingest.chunking import ChunkSettings

    try:
        if chunk_settings is None:
            settings = ChunkSettings()
        elif isinstance(chunk_settings, dict):
            settings = ChunkSettings(**chunk_settings)
        else:
            settings = chunk_settings
        if max_chars is not None:
            settings = dataclasses.replace(settings, max_chars=int(max_chars))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"invalid chunk settings: {exc}") from exc
    return settings


def _ingest(paths: Iterable[str | Path], settings, progress: bool = False):
    from rag.ingest import ingest

    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise DocumentError("no documents given: pass one or more files or folders")
    result = ingest(paths, settings, progress=progress)
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


def _check_unique_ids(chunks: Sequence[Chunk]) -> None:
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.id in seen:
            raise DocumentError(f"two chunks share the id {chunk.id!r}: two documents are named "
                                f"{chunk.doc!r}; rename one of them")
        seen.add(chunk.id)



# --------------------------------------------------------------------------- the retriever

@dataclass(frozen=True, eq=False)
class IndexState:
    """Everything a search reads, as one snapshot that is never changed.

    ``Retriever.add`` builds a new state and swaps it in with one assignment, and
    each search reads ``retriever._state`` once, so a search running during an add
    sees the old index or the new one, whole (positions, vectors, BM25 and the
    chunk list always belong together). ``source_texts`` is only a cache.
    """

    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray        # (n_chunks, dim), read-only
    dense: DenseIndex          # chunk vectors at positions 0..n-1, then the views
    keyword: KeywordIndex
    views: np.ndarray          # (n_views, dim), read-only
    view_offsets: np.ndarray   # (n_chunks + 1,): views of chunk i are views[off[i]:off[i+1]]
    view_owner: np.ndarray     # (n_views,): the chunk of each view
    sources: dict[str, SourceRecord]
    positions: dict[str, int]  # chunk id -> position
    dup_keys: tuple[int, ...]  # same passage text (a notice printed twice) is returned once
    source_texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, stored: StoredIndex) -> "IndexState":
        chunks = tuple(stored.chunks)
        vectors = _frozen(np.ascontiguousarray(stored.vectors, dtype=np.float32))
        dim = vectors.shape[1]
        views = stored.views if stored.views is not None else np.zeros((0, dim), dtype=np.float32)
        offsets = (np.asarray(stored.view_offsets, dtype=np.int64) if stored.view_offsets is not None
                   else np.zeros(len(chunks) + 1, dtype=np.int64))
        return cls(
            manifest=stored.manifest, chunks=chunks, vectors=vectors, dense=stored.dense,
            keyword=stored.keyword, views=_frozen(np.ascontiguousarray(views, dtype=np.float32)),
            view_offsets=_frozen(offsets),
            view_owner=_frozen(np.repeat(np.arange(len(chunks)), np.diff(offsets))),
            sources=dict(stored.sources), positions={c.id: i for i, c in enumerate(chunks)},
            dup_keys=tuple(hash(normalize(c.text)) for c in chunks))


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


#: How long ``Retriever.add`` waits for another process writing the same index.
ADD_LOCK_WAIT = 120.0


class Retriever:
    """Hybrid (dense + BM25) retrieval over an index directory. See the module docstring.

    Safe to search from many threads while one ``add`` runs (see ``IndexState``).
    """

    def __init__(self, stored: StoredIndex, embedder=None, fusion: str | None = None,
                 fusion_weights: Sequence[float] | None = None):
        self.index_dir = Path(stored.root)
        self._state = IndexState.from_stored(stored)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one add() at a time in this process
        retrieval = self.manifest.get("retrieval", {})
        self.fusion = fusion or retrieval.get("fusion", DEFAULT_FUSION)
        if self.fusion not in FUSION_METHODS:
            raise InvalidArgumentError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSION_METHODS)}")
        self.fusion_weights = tuple(fusion_weights or retrieval.get("fusion_weights", DEFAULT_FUSION_WEIGHTS))
        self.last_notices: list[str] = []
        self.build_summary: BuildSummary | None = None
        self.cache = _UNSET  # embedding cache for add(): set by build/load
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_lock = threading.Lock()
        if embedder is not None:
            check_model(self.manifest, embedder.name, embedder.dim, where=f"index at {self.index_dir}")

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the index now served (see rag.index_store)."""
        return self._state.manifest

    # The current state's parts, for tests and benchmarks that look inside.
    _chunks = property(lambda self: self._state.chunks)
    _vectors = property(lambda self: self._state.vectors)
    _views = property(lambda self: self._state.views)
    _view_offsets = property(lambda self: self._state.view_offsets)
    _dense = property(lambda self: self._state.dense)
    _keyword = property(lambda self: self._state.keyword)

    # ---------------------------------------------------------------- building and loading

    @classmethod
    def build(cls, paths: Iterable[str | Path] | str | Path, index_dir: str | Path | None = None, *,
              model: str | None = None, embedder=None, chunk_settings=None, max_chars: int | None = None,
              dense: str = "flat", ef_search: int = HNSW_EF_SEARCH, nprobe: int = IVF_NPROBE,
              bigrams: bool = False, views: bool = True, view_method: str = DEFAULT_VIEW_METHOD,
              fusion: str = DEFAULT_FUSION,
              fusion_weights: Sequence[float] = DEFAULT_FUSION_WEIGHTS,
              cache=_UNSET, show_progress: bool = True, lock_wait: float = 0.0) -> "Retriever":
        """Read ``paths`` (files or folders), chunk, embed and index them into ``index_dir``.

        Settings: ``model`` (embedding model name or path; default config.DEFAULT_MODEL)
        or a ready ``embedder``; ``chunk_settings`` (rag.ingest.chunking.ChunkSettings or dict)
        and/or ``max_chars``; ``dense`` index kind (flat, hnsw, ivf, auto) with
        ``ef_search``/``nprobe``; ``bigrams`` (CJK bigrams in BM25); ``views``
        (sentence views too; see ``sentence_views``) and ``view_method`` (see
        ``VIEW_METHODS``); ``fusion`` and
        ``fusion_weights`` for hybrid search; ``cache`` (an EmbeddingCache, a path to
        one, or None for no cache; default: the shared cache in config.CACHE_DIR);
        ``show_progress`` (tqdm bar while embedding).
        The index is written atomically: a failure leaves any previous index intact.
        Only one process writes an index at a time: when another one is building or
        adding to ``index_dir``, this waits ``lock_wait`` seconds (default: none),
        then raises ``IndexBusyError`` naming its pid.
        """
        started = time.perf_counter()
        index_dir = config.index_dir(index_dir)
        resolve_kind(_check_choice("dense", dense, ("flat", "hnsw", "ivf", "auto")), 0)
        _check_choice("fusion", fusion, FUSION_METHODS)
        settings = _chunk_settings(chunk_settings, max_chars)
        with IndexLock(index_dir, wait=lock_wait):
            result, problems = _ingest(paths, settings, progress=show_progress)
            chunks = list(result.chunks)
            if not chunks:
                detail = f": {'; '.join(problems)}" if problems else ""
                raise DocumentError(f"no text to index in {', '.join(map(str, _as_list(paths)))}{detail}")
            _check_unique_ids(chunks)
            sources = [_source_record(d) for d in result.documents]
            cache_db = _open_cache(cache)
            embedder = embedder or LazyEmbedder(model or config.DEFAULT_MODEL, cache_db)
            embedded, view_vectors, offsets, views_embedded, method = embed_chunks(
                embedder, chunks, cache=cache_db, views=views, view_method=view_method,
                show_progress=show_progress)
            stored = _write(index_dir, chunks, embedded.vectors, sources, embedder, settings, dense,
                            ef_search, nprobe, bigrams, fusion, fusion_weights, cache=cache_db,
                            views=view_vectors, view_offsets=offsets, with_views=views, view_method=method)
        retriever = cls(stored, embedder=embedder)
        retriever.cache = cache_db
        retriever.build_summary = BuildSummary(
            index_dir=str(index_dir), documents=len(sources), chunks=len(chunks),
            embedded=embedded.embedded, cached=embedded.cached,
            seconds=round(time.perf_counter() - started, 3), dense_kind=stored.dense.kind,
            views=len(view_vectors), views_embedded=views_embedded.embedded,
            problems=problems, files=list(result.reports), added=[s.doc for s in sources])
        return retriever

    @classmethod
    def load(cls, index_dir: str | Path | None = None, *, model: str | None = None,
             embedder=None, fusion: str | None = None, cache=_UNSET) -> "Retriever":
        """Open the index at ``index_dir`` after verifying checksums, counts and format.

        With ``model`` (or an ``embedder``) the index must have been built with that
        model, else ``IndexMismatchError`` names both. The model itself loads lazily.
        ``cache`` is the embedding cache ``add`` uses (default: the shared one).
        """
        index_dir = config.index_dir(index_dir)
        if model is not None:
            check_model(read_manifest(index_dir), model, where=f"index at {index_dir}")
        stored = load_index(index_dir, _load_dense, _load_keyword)
        retriever = cls(stored, embedder=embedder, fusion=fusion)
        retriever.cache = cache
        return retriever

    @classmethod
    def load_or_build(cls, index_dir: str | Path | None, docs_paths: Iterable[str | Path],
                      **settings) -> "Retriever":
        """Load the index at ``index_dir``; build it from ``docs_paths`` when there is none."""
        try:
            return cls.load(index_dir, model=settings.get("model"), embedder=settings.get("embedder"),
                            cache=settings.get("cache", _UNSET))
        except IndexNotFoundError:
            return cls.build(docs_paths, index_dir, **settings)

    # ---------------------------------------------------------------- incremental adds

    def add(self, paths: Iterable[str | Path] | str | Path, show_progress: bool = False,
            force: bool = False, lock_wait: float = ADD_LOCK_WAIT) -> BuildSummary:
        """Add (or replace, by document name) documents, embedding only new chunks.

        All or nothing: if any given file cannot be read or decoded (or a folder holds
        no .txt/.md file), ``DocumentError`` names each such file and the index stays
        exactly as it was. A document whose content is unchanged is skipped, unless
        ``force`` (re-index: chunk it again, e.g. after the chunking rules changed).
        The new index is written atomically.

        If another process changed the index on disk since it was loaded (say a
        ``rag index ... --index`` run), that newer index is loaded first and the
        documents are added to it, so nothing it holds is lost. While another process
        is writing the index, this waits up to ``lock_wait`` seconds, then raises
        ``IndexBusyError``. Searches keep running meanwhile, on the index as it was.
        """
        started = time.perf_counter()
        with self._write_lock, IndexLock(self.index_dir, wait=lock_wait):
            state = self._reload_if_changed_on_disk()
            settings = _chunk_settings(state.manifest.get("chunking") or None)
            result, problems = _ingest(paths, settings, progress=show_progress)
            if problems:
                raise DocumentError(f"nothing added, the index is unchanged: {'; '.join(problems)}")
            summary, stored = self._extend(state, result, settings, show_progress, force)
            if stored is not None:
                self._state = IndexState.from_stored(stored)  # the one swap readers see
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    def _reload_if_changed_on_disk(self) -> IndexState:
        """The state to add to: the served one, or the index on disk when another process
        wrote a newer one since (then it is also served from now on). Caller holds the lock."""
        state = self._state
        try:
            on_disk = manifest_identity(read_manifest(self.index_dir))
        except IndexNotFoundError:
            return state  # deleted meanwhile: nothing newer to lose; the add writes it anew
        if on_disk == manifest_identity(state.manifest):
            return state
        stored = load_index(self.index_dir, _load_dense, _load_keyword)
        embedder = self._embedder
        if embedder is not None:
            check_model(stored.manifest, embedder.name, embedder.dim, where=f"index at {self.index_dir}")
        self._state = state = IndexState.from_stored(stored)
        return state

    def _extend(self, state: IndexState, result, settings, show_progress: bool, force: bool):
        """``(summary, StoredIndex or None)``: ``state`` plus the ingested documents, written."""
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
        keep = [i for i, c in enumerate(state.chunks) if c.doc not in set(replaced)]
        new_chunks = [c for c in result.chunks if c.doc in changed]
        chunks = [state.chunks[i] for i in keep] + new_chunks
        _check_unique_ids(chunks)
        summary = BuildSummary(
            index_dir=str(self.index_dir), documents=len(state.sources) + len(added), chunks=len(chunks),
            embedded=0, cached=0, seconds=0.0, dense_kind=state.dense.kind, views=len(state.views),
            files=list(result.reports), added=added, replaced=replaced, unchanged=unchanged)
        if not changed:
            return summary, None
        embedder = self.embedder
        with_views = bool(state.manifest.get("dense", {}).get("sentence_views", True))
        view_method = state.manifest.get("dense", {}).get("view_method") or "separate"
        if with_views and view_method == "late" and new_chunks and not can_late_chunk(embedder):
            raise RagError(f"the index at {self.index_dir} has late-chunked sentence views, but the embedder "
                           f"{embedder.name!r} cannot late-chunk; rebuild the index with `rag index`")
        embedded, new_views, new_offsets, views_embedded, _ = embed_chunks(
            embedder, new_chunks, cache=self._open_cache(), views=with_views, view_method=view_method,
            show_progress=show_progress)
        vectors = np.concatenate([state.vectors[keep], embedded.vectors]) if new_chunks else state.vectors[keep]
        kept_views = [state.views[state.view_offsets[i]:state.view_offsets[i + 1]] for i in keep]
        view_vectors = np.concatenate(kept_views + [new_views]).astype(np.float32, copy=False)
        counts = [len(v) for v in kept_views] + np.diff(new_offsets).tolist()
        view_offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        sources = [dataclasses.replace(s, text=self._source_text(state, d),
                                       original_from=original_path(self.index_dir, s))
                   for d, s in state.sources.items() if d not in changed]
        sources += [s for s in new_sources if s.doc in changed]
        m = state.manifest
        stored = _write(self.index_dir, chunks, vectors, sources, embedder, settings,
                        m["dense"]["requested"], m["dense"].get("ef_search", HNSW_EF_SEARCH),
                        m["dense"].get("nprobe", IVF_NPROBE), m["bm25"].get("bigrams", False),
                        self.fusion, self.fusion_weights, cache=self._open_cache(),
                        views=view_vectors, view_offsets=view_offsets, with_views=with_views,
                        view_method=view_method if with_views else None)
        summary.documents = len(sources)
        summary.embedded, summary.cached = embedded.embedded, embedded.cached
        summary.views, summary.views_embedded = len(view_vectors), views_embedded.embedded
        summary.dense_kind = stored.dense.kind
        return summary, stored

    def delete_documents(self, docs: Iterable[str] | str, lock_wait: float = ADD_LOCK_WAIT) -> BuildSummary:
        """Remove documents (by name) with all their chunks, vectors and sentence views.

        Nothing is embedded, so the model is never loaded. The new index is written
        atomically (a search sees the old index or the new one, never half of a
        document). Unknown names raise ``DocumentNotFoundError`` and change nothing;
        removing every document is refused (an index cannot be empty).
        ``BuildSummary.removed`` lists the documents removed. Like ``add``, it works on
        the newest index on disk and waits ``lock_wait`` seconds for another writer.
        """
        started = time.perf_counter()
        names = list(dict.fromkeys([docs] if isinstance(docs, str) else docs))
        with self._write_lock, IndexLock(self.index_dir, wait=lock_wait):
            state = self._reload_if_changed_on_disk()
            missing = [name for name in names if name not in state.sources]
            if missing:
                raise DocumentNotFoundError(f"no document {', '.join(map(repr, missing))} in the index at "
                                            f"{self.index_dir}")
            gone = set(names)
            keep = [i for i, c in enumerate(state.chunks) if c.doc not in gone]
            if not keep:
                raise RagError("an index cannot be empty: add another document before deleting the last one")
            chunks = [state.chunks[i] for i in keep]
            kept_views = [state.views[state.view_offsets[i]:state.view_offsets[i + 1]] for i in keep]
            view_vectors = np.concatenate(kept_views).astype(np.float32, copy=False)
            view_offsets = np.concatenate([[0], np.cumsum([len(v) for v in kept_views], dtype=np.int64)])
            sources = [dataclasses.replace(s, text=self._source_text(state, d),
                                           original_from=original_path(self.index_dir, s))
                       for d, s in state.sources.items() if d not in gone]
            m = state.manifest
            dense, model = m["dense"], m["model"]
            with_views = bool(dense.get("sentence_views", True))
            # The manifest's model entry is all _write needs of the embedder: no model load.
            model_info = _ModelInfo(name=model["name"], dim=int(model["dim"]))
            stored = _write(self.index_dir, chunks, state.vectors[keep], sources, model_info,
                            _chunk_settings(m.get("chunking") or None), dense["requested"],
                            dense.get("ef_search", HNSW_EF_SEARCH), dense.get("nprobe", IVF_NPROBE),
                            m["bm25"].get("bigrams", False), self.fusion, self.fusion_weights,
                            cache=self._open_cache(), views=view_vectors,
                            view_offsets=view_offsets.astype(np.int64), with_views=with_views,
                            view_method=dense.get("view_method") if with_views else None)
            self._state = IndexState.from_stored(stored)
        return BuildSummary(
            index_dir=str(self.index_dir), documents=len(sources), chunks=len(chunks), embedded=0, cached=0,
            seconds=round(time.perf_counter() - started, 3), dense_kind=stored.dense.kind,
            views=len(view_vectors), removed=names)

    @property
    def sources(self) -> list[SourceRecord]:
        """What the index records about each document (name, path, sha256, chars, added),
        in index order; the texts are not loaded (see ``source_text``)."""
        return [dataclasses.replace(s, text="") for s in self._state.sources.values()]

    def _open_cache(self) -> EmbeddingCache | None:
        if not isinstance(self.cache, EmbeddingCache):
            self.cache = _open_cache(self.cache)
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
        _check_choice("mode", mode, MODES)
        self.last_notices = notices
        state = self._state  # read once: an add() swapping in a new index does not mix the two
        if mode == "bm25":
            ranked = state.keyword.search(query, max(k * 2, k + 10))
        elif mode == "dense":
            ranked = self._dense_ranked(self.query_vector(query), max(k * 2, k + 10), state)
        else:
            ranked = self._hybrid_ranked(query, max(CANDIDATES, 2 * k), state)
        hits = [Hit.from_chunk(state.chunks[pos], score, mode) for pos, score in _dedupe(state, ranked, k)]
        return hits, notices

    def _hybrid_ranked(self, query: str, depth: int, state: IndexState) -> list[tuple[int, float]]:
        qvec = self.query_vector(query)
        dense_top = self._dense_ranked(qvec, depth, state)
        bm25_all = state.keyword.scores(query)
        bm25_top = top_k(bm25_all, depth, positive_only=True)
        if self.fusion == "rrf":
            return fuse([dict(dense_top), dict(bm25_top)], "rrf", self.fusion_weights)
        # Score fusion: exact scores of both retrievers for every candidate of either.
        pool = np.array(sorted({p for p, _ in dense_top} | {p for p, _ in bm25_top}), dtype=np.int64)
        dense_scores = self._dense_scores(pool, qvec, state)
        return fuse([dict(zip(pool.tolist(), dense_scores.tolist())),
                     dict(zip(pool.tolist(), bm25_all[pool].tolist()))],
                    self.fusion, self.fusion_weights)

    def _dense_ranked(self, qvec: np.ndarray, depth: int, state: IndexState | None = None) -> list[tuple[int, float]]:
        """Top ``depth`` chunks by the best cosine of the chunk or one of its sentence views."""
        state = state or self._state
        n = len(state.chunks)
        if not len(state.views):
            return state.dense.search(qvec, depth)
        # Views crowd the raw list (a chunk may place several), so ask FAISS for more.
        per_chunk = -(-state.dense.ntotal // max(n, 1)) + 1
        best: dict[int, float] = {}
        for pos, score in state.dense.search(qvec, depth * per_chunk):
            chunk = pos if pos < n else int(state.view_owner[pos - n])
            if score > best.get(chunk, -np.inf):
                best[chunk] = score
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]

    def _dense_scores(self, positions: np.ndarray, qvec: np.ndarray,
                      state: IndexState | None = None) -> np.ndarray:
        """Exact dense score of each chunk position: max over the chunk and its sentence views."""
        state = state or self._state
        scores = state.vectors[positions] @ qvec
        offsets = state.view_offsets
        for j, pos in enumerate(positions.tolist()):
            a, b = int(offsets[pos]), int(offsets[pos + 1])
            if b > a:
                scores[j] = max(scores[j], float((state.views[a:b] @ qvec).max()))
        return scores

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

    # ---------------------------------------------------------------- access

    @property
    def embedder(self):
        """The embedding model the index was built with (loaded on first use)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    embedder = _load_embedder(self.manifest["model"]["name"])
                    check_model(self.manifest, embedder.name, embedder.dim, where=f"index at {self.index_dir}")
                    self._embedder = embedder
        return self._embedder

    @property
    def model_name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def chunks(self) -> list[Chunk]:
        """All chunks, in index order."""
        return list(self._state.chunks)

    @property
    def documents(self) -> list[str]:
        """Names of the indexed documents."""
        return list(self._state.sources)

    def get_chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id (KeyError if there is none)."""
        state = self._state
        try:
            return state.chunks[state.positions[chunk_id]]
        except KeyError:
            raise KeyError(f"no chunk {chunk_id!r} in the index at {self.index_dir}") from None

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
        return len(self._state.chunks)

    def __repr__(self) -> str:
        state = self._state
        return (f"Retriever({str(self.index_dir)!r}, documents={len(state.sources)}, "
                f"chunks={len(state.chunks)}, model={self.model_name!r})")


def _dedupe(state: IndexState, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    out, seen = [], set()
    for pos, score in ranked:
        key = state.dup_keys[pos]
        if key in seen:
            continue
        seen.add(key)
        out.append((pos, score))
        if len(out) == k:
            break
    return out


# --------------------------------------------------------------------------- helpers

def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def _load_embedder(model: str | None):
    return _embedding.load_embedder(model)  # looked up at call time: tests replace it there


def _load_dense(path: Path, manifest: dict) -> DenseIndex:
    dense = manifest.get("dense", {})
    return DenseIndex.load(path, dense.get("kind", "flat"), dense.get("ef_search", HNSW_EF_SEARCH),
                           dense.get("nprobe", IVF_NPROBE))


def _load_keyword(directory: Path, manifest: dict, n_chunks: int) -> KeywordIndex:
    from rag.errors import IndexMismatchError
    from rag.tokenize_zh import TOKENIZER_VERSION

    bm25 = manifest.get("bm25", {})
    if bm25.get("tokenizer") != TOKENIZER_VERSION:
        raise IndexMismatchError(
            f"index keyword tokens were made by tokenizer {bm25.get('tokenizer')!r}, this program uses "
            f"{TOKENIZER_VERSION!r}; rebuild the index with `rag index`")
    return KeywordIndex.load(directory, num_docs=n_chunks, bigrams=bool(bm25.get("bigrams", False)))


def _write(index_dir, chunks, vectors, sources, embedder, settings, dense_kind, ef_search, nprobe,
           bigrams, fusion, fusion_weights, cache: EmbeddingCache | None = None,
           views: np.ndarray | None = None, view_offsets: np.ndarray | None = None,
           with_views: bool = True, view_method: str | None = "separate") -> StoredIndex:
    """Index and write (callers hold ``IndexLock(index_dir)``); the StoredIndex written."""
    if views is None:
        views, view_offsets = _no_views(len(chunks), int(np.asarray(vectors).shape[1]))[:2]
    # One FAISS index: the chunk vectors (positions 0..n-1), then the sentence views.
    dense = DenseIndex.build(np.concatenate([np.asarray(vectors, dtype=np.float32), views]), dense_kind,
                             ef_search=ef_search, nprobe=nprobe)
    texts = [passage_text(c) for c in chunks]
    keyword = KeywordIndex.build(texts, bigrams=bigrams,
                                 tokens=tokenize_passages(texts, bigrams=bigrams, cache=cache))
    manifest = write_index(
        index_dir, chunks=chunks, vectors=vectors, dense=dense, keyword=keyword, sources=sources,
        views=views, view_offsets=view_offsets, locked=True,
        manifest_extra={
            "model": {"name": embedder.name, "dim": int(embedder.dim)},
            "chunking": dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings),
            "passage_text": "heading path joined by ' > ', newline, chunk text",
            "dense": {"kind": dense.kind, "requested": dense_kind, "ef_search": ef_search, "nprobe": nprobe,
                      "sentence_views": with_views, "view_method": view_method if with_views else None},
            "bm25": KeywordIndex.describe(bigrams),
            "retrieval": {"fusion": fusion, "fusion_weights": list(fusion_weights)},
        },
    )
    return StoredIndex(root=Path(index_dir), manifest=manifest, chunks=list(chunks), vectors=vectors,
                       dense=dense, keyword=keyword,
                       sources={s.doc: dataclasses.replace(s, text="") for s in sources},
                       views=views, view_offsets=view_offsets)



def _check_query(query: str) -> tuple[str, list[str]]:
    if not isinstance(query, str) or not query.strip():
        raise EmptyQueryError("the query is empty: type a question or some keywords")
    query = query.strip()
    notices: list[str] = []
    if len(query) > config.MAX_QUERY_CHARS:
        notices.append(f"the query has {len(query)} characters; only the first "
                       f"{config.MAX_QUERY_CHARS} were used")
        query = query[: config.MAX_QUERY_CHARS]
    return query, notices


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgumentError(f"k must be a whole number of at least 1, not {k!r}")
    return int(k)
