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
    SourceRecord,
    StoredIndex,
    check_model,
    load_index,
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


def _ingest(paths: Iterable[str | Path], settings):
    from rag.ingest import ingest

    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise DocumentError("no documents given: pass one or more files or folders")
    result = ingest(paths, settings)
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
                        added=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def _check_unique_ids(chunks: Sequence[Chunk]) -> None:
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.id in seen:
            raise DocumentError(f"two chunks share the id {chunk.id!r}: two documents are named "
                                f"{chunk.doc!r}; rename one of them")
        seen.add(chunk.id)



# --------------------------------------------------------------------------- the retriever

class Retriever:
    """Hybrid (dense + BM25) retrieval over an index directory. See the module docstring."""

    def __init__(self, stored: StoredIndex, embedder=None, fusion: str | None = None,
                 fusion_weights: Sequence[float] | None = None):
        self.index_dir = Path(stored.root)
        self._apply(stored)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        retrieval = self.manifest.get("retrieval", {})
        self.fusion = fusion or retrieval.get("fusion", DEFAULT_FUSION)
        if self.fusion not in FUSION_METHODS:
            raise InvalidArgumentError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSION_METHODS)}")
        self.fusion_weights = tuple(fusion_weights or retrieval.get("fusion_weights", DEFAULT_FUSION_WEIGHTS))
        self.last_notices: list[str] = []
        self.build_summary: BuildSummary | None = None
        self.cache = _UNSET  # embedding cache for add(): set by build/load
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        if embedder is not None:
            check_model(self.manifest, embedder.name, embedder.dim, where=f"index at {self.index_dir}")

    def _apply(self, stored: StoredIndex) -> None:
        self.manifest = stored.manifest
        self._chunks = stored.chunks
        self._vectors = np.ascontiguousarray(stored.vectors, dtype=np.float32)
        self._dense = stored.dense
        self._keyword = stored.keyword
        dim = self._vectors.shape[1]
        views = stored.views if stored.views is not None else np.zeros((0, dim), dtype=np.float32)
        self._views = np.ascontiguousarray(views, dtype=np.float32)
        offsets = stored.view_offsets
        self._view_offsets = (np.asarray(offsets, dtype=np.int64) if offsets is not None
                              else np.zeros(len(self._chunks) + 1, dtype=np.int64))
        self._view_owner = np.repeat(np.arange(len(self._chunks)), np.diff(self._view_offsets))
        self._sources = stored.sources
        self._source_cache: dict[str, str] = {}
        self._positions = {c.id: i for i, c in enumerate(self._chunks)}
        # Same passage text (e.g. a notice printed on two pages) is returned once.
        self._dup_keys = [hash(normalize(c.text)) for c in self._chunks]

    # ---------------------------------------------------------------- building and loading

    @classmethod
    def build(cls, paths: Iterable[str | Path] | str | Path, index_dir: str | Path | None = None, *,
              model: str | None = None, embedder=None, chunk_settings=None, max_chars: int | None = None,
              dense: str = "flat", ef_search: int = HNSW_EF_SEARCH, nprobe: int = IVF_NPROBE,
              bigrams: bool = False, views: bool = True, view_method: str = DEFAULT_VIEW_METHOD,
              fusion: str = DEFAULT_FUSION,
              fusion_weights: Sequence[float] = DEFAULT_FUSION_WEIGHTS,
              cache=_UNSET, show_progress: bool = True) -> "Retriever":
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
        """
        started = time.perf_counter()
        index_dir = config.index_dir(index_dir)
        resolve_kind(_check_choice("dense", dense, ("flat", "hnsw", "ivf", "auto")), 0)
        _check_choice("fusion", fusion, FUSION_METHODS)
        settings = _chunk_settings(chunk_settings, max_chars)
        result, problems = _ingest(paths, settings)
        chunks = list(result.chunks)
        if not chunks:
            detail = f": {'; '.join(problems)}" if problems else ""
            raise DocumentError(f"no text to index in {', '.join(map(str, _as_list(paths)))}{detail}")
        _check_unique_ids(chunks)
        sources = [_source_record(d) for d in result.documents]
        cache_db = _open_cache(cache)
        embedder = embedder or LazyEmbedder(model or config.DEFAULT_MODEL, cache_db)
        embedded, view_vectors, offsets, views_embedded, method = embed_chunks(
            embedder, chunks, cache=cache_db, views=views, view_method=view_method, show_progress=show_progress)
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
            problems=problems, added=[s.doc for s in sources])
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
        from rag.index_store import IndexNotFoundError

        try:
            return cls.load(index_dir, model=settings.get("model"), embedder=settings.get("embedder"),
                            cache=settings.get("cache", _UNSET))
        except IndexNotFoundError:
            return cls.build(docs_paths, index_dir, **settings)

    # ---------------------------------------------------------------- incremental adds

    def add(self, paths: Iterable[str | Path] | str | Path, show_progress: bool = False,
            force: bool = False) -> BuildSummary:
        """Add (or replace, by document name) documents, embedding only new chunks.

        A document whose content is unchanged is skipped, unless ``force`` (re-index:
        chunk it again, e.g. after the chunking rules changed). The new index is written
        atomically; if any file cannot be read, nothing changes and ``DocumentError``
        says which file and why.
        """
        started = time.perf_counter()
        settings = _chunk_settings(self.manifest.get("chunking") or None)
        result, problems = _ingest(paths, settings)
        if problems and not result.chunks:
            raise DocumentError(f"nothing added: {'; '.join(problems)}")
        new_sources = [_source_record(d) for d in result.documents]
        added, replaced, unchanged = [], [], []
        for source in new_sources:
            old = self._sources.get(source.doc)
            if old is None:
                added.append(source.doc)
            elif old.sha256 == source.sha256 and not force:
                unchanged.append(source.doc)
            else:
                replaced.append(source.doc)
        changed = set(added) | set(replaced)
        keep = [i for i, c in enumerate(self._chunks) if c.doc not in set(replaced)]
        new_chunks = [c for c in result.chunks if c.doc in changed]
        chunks = [self._chunks[i] for i in keep] + new_chunks
        _check_unique_ids(chunks)
        embedder = self.embedder
        with_views = bool(self.manifest.get("dense", {}).get("sentence_views", True))
        view_method = self.manifest.get("dense", {}).get("view_method") or "separate"
        if with_views and view_method == "late" and new_chunks and not can_late_chunk(embedder):
            raise RagError(f"the index at {self.index_dir} has late-chunked sentence views, but the embedder "
                           f"{embedder.name!r} cannot late-chunk; rebuild the index with `rag index`")
        embedded, new_views, new_offsets, views_embedded, _ = embed_chunks(
            embedder, new_chunks, cache=self._open_cache(), views=with_views, view_method=view_method,
            show_progress=show_progress)
        vectors = np.concatenate([self._vectors[keep], embedded.vectors]) if new_chunks else self._vectors[keep]
        kept_views = [self._views[self._view_offsets[i]:self._view_offsets[i + 1]] for i in keep]
        view_vectors = np.concatenate(kept_views + [new_views]).astype(np.float32, copy=False)
        counts = [len(v) for v in kept_views] + np.diff(new_offsets).tolist()
        view_offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        sources = [s for d, s in self._sources.items() if d not in changed]
        for source in sources:
            source.text = self.source_text(source.doc)
        sources += [s for s in new_sources if s.doc in changed]
        summary = BuildSummary(
            index_dir=str(self.index_dir), documents=len(sources), chunks=len(chunks),
            embedded=embedded.embedded, cached=embedded.cached, seconds=0.0,
            dense_kind=self._dense.kind, views=len(view_vectors), views_embedded=views_embedded.embedded,
            problems=problems, added=added, replaced=replaced, unchanged=unchanged)
        if changed:
            m = self.manifest
            stored = _write(self.index_dir, chunks, vectors, sources, embedder, settings,
                            m["dense"]["requested"], m["dense"].get("ef_search", HNSW_EF_SEARCH),
                            m["dense"].get("nprobe", IVF_NPROBE), m["bm25"].get("bigrams", False),
                            self.fusion, self.fusion_weights, cache=self._open_cache(),
                            views=view_vectors, view_offsets=view_offsets, with_views=with_views,
                            view_method=view_method if with_views else None)
            self._apply(stored)
            self._query_cache.clear()
            summary.dense_kind = stored.dense.kind
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    def delete_documents(self, docs: Iterable[str] | str) -> BuildSummary:
        """Remove documents (by name) with all their chunks, vectors and sentence views.

        Nothing is embedded, so the model is never loaded. The new index is written
        atomically (a search sees the old index or the new one, never half of a
        document). Unknown names raise ``DocumentNotFoundError`` and change nothing;
        removing every document is refused (an index cannot be empty).
        ``BuildSummary.removed`` lists the documents removed.
        """
        started = time.perf_counter()
        names = list(dict.fromkeys([docs] if isinstance(docs, str) else docs))
        missing = [name for name in names if name not in self._sources]
        if missing:
            raise DocumentNotFoundError(f"no document {', '.join(map(repr, missing))} in the index at "
                                        f"{self.index_dir}")
        gone = set(names)
        keep = [i for i, c in enumerate(self._chunks) if c.doc not in gone]
        if not keep:
            raise RagError("an index cannot be empty: add another document before deleting the last one")
        chunks = [self._chunks[i] for i in keep]
        kept_views = [self._views[self._view_offsets[i]:self._view_offsets[i + 1]] for i in keep]
        view_vectors = np.concatenate(kept_views).astype(np.float32, copy=False)
        view_offsets = np.concatenate([[0], np.cumsum([len(v) for v in kept_views], dtype=np.int64)])
        sources = [dataclasses.replace(s, text=self.source_text(d))
                   for d, s in self._sources.items() if d not in gone]
        m = self.manifest
        dense, model = m["dense"], m["model"]
        with_views = bool(dense.get("sentence_views", True))
        # The manifest's model entry is all _write needs of the embedder: no model load.
        model_info = _ModelInfo(name=model["name"], dim=int(model["dim"]))
        stored = _write(self.index_dir, chunks, self._vectors[keep], sources, model_info,
                        _chunk_settings(m.get("chunking") or None), dense["requested"],
                        dense.get("ef_search", HNSW_EF_SEARCH), dense.get("nprobe", IVF_NPROBE),
                        m["bm25"].get("bigrams", False), self.fusion, self.fusion_weights,
                        cache=self._open_cache(), views=view_vectors, view_offsets=view_offsets.astype(np.int64),
                        with_views=with_views, view_method=dense.get("view_method") if with_views else None)
        self._apply(stored)
        self._query_cache.clear()
        return BuildSummary(
            index_dir=str(self.index_dir), documents=len(sources), chunks=len(chunks), embedded=0, cached=0,
            seconds=round(time.perf_counter() - started, 3), dense_kind=stored.dense.kind,
            views=len(view_vectors), removed=names)

    @property
    def sources(self) -> list[SourceRecord]:
        """What the index records about each document (name, path, sha256, chars, added),
        in index order; the texts are not loaded (see ``source_text``)."""
        return [dataclasses.replace(s, text="") for s in self._sources.values()]

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
        if mode == "bm25":
            ranked = self._bm25_ranked(query, max(k * 2, k + 10))
        elif mode == "dense":
            ranked = self._dense_ranked(self.query_vector(query), max(k * 2, k + 10))
        else:
            ranked = self._hybrid_ranked(query, max(CANDIDATES, 2 * k))
        hits = [Hit.from_chunk(self._chunks[pos], score, mode) for pos, score in self._dedupe(ranked, k)]
        return hits, notices

    def _bm25_ranked(self, query: str, depth: int) -> list[tuple[int, float]]:
        return self._keyword.search(query, depth)

    def _hybrid_ranked(self, query: str, depth: int) -> list[tuple[int, float]]:
        qvec = self.query_vector(query)
        dense_top = self._dense_ranked(qvec, depth)
        bm25_all = self._keyword.scores(query)
        bm25_top = top_k(bm25_all, depth, positive_only=True)
        if self.fusion == "rrf":
            return fuse([dict(dense_top), dict(bm25_top)], "rrf", self.fusion_weights)
        # Score fusion: exact scores of both retrievers for every candidate of either.
        pool = np.array(sorted({p for p, _ in dense_top} | {p for p, _ in bm25_top}), dtype=np.int64)
        dense_scores = self._dense_scores(pool, qvec)
        return fuse([dict(zip(pool.tolist(), dense_scores.tolist())),
                     dict(zip(pool.tolist(), bm25_all[pool].tolist()))],
                    self.fusion, self.fusion_weights)

    def _dense_ranked(self, qvec: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """Top ``depth`` chunks by the best cosine of the chunk or one of its sentence views."""
        n = len(self._chunks)
        if not len(self._views):
            return self._dense.search(qvec, depth)
        # Views crowd the raw list (a chunk may place several), so ask FAISS for more.
        per_chunk = -(-self._dense.ntotal // max(n, 1)) + 1
        best: dict[int, float] = {}
        for pos, score in self._dense.search(qvec, depth * per_chunk):
            chunk = pos if pos < n else int(self._view_owner[pos - n])
            if score > best.get(chunk, -np.inf):
                best[chunk] = score
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]

    def _dense_scores(self, positions: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Exact dense score of each chunk position: max over the chunk and its sentence views."""
        scores = self._vectors[positions] @ qvec
        offsets = self._view_offsets
        for j, pos in enumerate(positions.tolist()):
            a, b = int(offsets[pos]), int(offsets[pos + 1])
            if b > a:
                scores[j] = max(scores[j], float((self._views[a:b] @ qvec).max()))
        return scores

    def _dedupe(self, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        out, seen = [], set()
        for pos, score in ranked:
            key = self._dup_keys[pos]
            if key in seen:
                continue
            seen.add(key)
            out.append((pos, score))
            if len(out) == k:
                break
        return out

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding (L2-normalised float32), cached for the last 256 queries,
        so an answerer scoring sentences against the question does not embed it twice."""
        cached = self._query_cache.get(query)
        if cached is not None:
            self._query_cache.move_to_end(query)
            return cached
        vector = np.asarray(self.embedder.encode_queries([query]), dtype=np.float32)[0]
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
        return list(self._chunks)

    @property
    def documents(self) -> list[str]:
        """Names of the indexed documents."""
        return list(self._sources)

    def get_chunk(self, chunk_id: str) -> Chunk:
        """The chunk with this id (KeyError if there is none)."""
        try:
            return self._chunks[self._positions[chunk_id]]
        except KeyError:
            raise KeyError(f"no chunk {chunk_id!r} in the index at {self.index_dir}") from None

    def source_text(self, doc: str) -> str:
        """The original decoded text of document ``doc`` (chunk offsets point into it)."""
        if doc not in self._source_cache:
            record = self._sources.get(doc)
            if record is None:
                raise KeyError(f"no document {doc!r} in the index at {self.index_dir}")
            self._source_cache[doc] = read_source_text(self.index_dir, record)
        return self._source_cache[doc]

    def __len__(self) -> int:
        return len(self._chunks)

    def __repr__(self) -> str:
        return (f"Retriever({str(self.index_dir)!r}, documents={len(self._sources)}, "
                f"chunks={len(self)}, model={self.model_name!r})")


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
        views=views, view_offsets=view_offsets,
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
