"""The local store (the default): FAISS and bm25s files inside the index directory.

Files (see rag.index_store for the directory around them)::

    chunks.jsonl      one Chunk per line, in index order (position i = vector i = BM25 doc i)
    vectors.npy       float32 (n_chunks, dim): lets an add extend the index without re-embedding
    views.npy         float32 (n_views, dim): sentence views of the chunks
    view_offsets.npy  int64 (n_chunks + 1,): the views of chunk i are views[off[i]:off[i+1]]
    dense.faiss       the FAISS index over the chunk vectors, then the views
    bm25/             the bm25s index files

A ``LocalStore`` is immutable: ``updated`` builds a new one (FAISS and BM25 are
rebuilt over the kept and the new chunks; vectors are reused, never re-embedded),
so searches running meanwhile keep reading the old one, whole.

A new index is built by ``LocalStoreWriter`` instead: batch by batch, straight into
these files (vectors appended to disk, keyword tokens kept as compact ids), so the
memory a build needs does not grow with the collection's text (see the class).
"""
from __future__ import annotations

import json
import os
import shutil
from array import array
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from rag.errors import CorruptIndexError, IndexMismatchError
from rag.index.embedding_cache import EmbeddingCache, tokenize_passages
from rag.index.stores.base import NewChunks, Scored
from rag.index.stores.bm25_keyword import KeywordIndex, KeywordIndexBuilder, top_k
from rag.index.stores.faiss_dense import DenseIndex
from rag.retrieval.passages import passage_text
from rag.types import Chunk

CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
VIEWS = "views.npy"
VIEW_OFFSETS = "view_offsets.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


class LocalStore:
    """Chunks, their vectors and sentence views, a FAISS index and a BM25 index, in memory."""

    kind = "local"

    def __init__(self, chunks: Sequence[Chunk], vectors: np.ndarray, views: np.ndarray,
                 view_offsets: np.ndarray, dense: DenseIndex, keyword: KeywordIndex, *,
                 dense_kind: str = "flat", ef_search: int | None = None, nprobe: int | None = None,
                 bigrams: bool = False, token_cache: EmbeddingCache | None = None):
        self._chunks = tuple(chunks)
        self.vectors = _frozen(np.asarray(vectors, dtype=np.float32))
        self.views = _frozen(np.asarray(views, dtype=np.float32))
        self.view_offsets = _frozen(np.asarray(view_offsets, dtype=np.int64))
        self.view_owner = _frozen(np.repeat(np.arange(len(self._chunks)), np.diff(self.view_offsets)))
        self.dense = dense
        # where exact rows are read: these arrays, or (an ``ivf`` index loaded from its
        # folder) the .npy files by ``pread``, so the rows a search reads are not mapped
        # into the process: news-63k's 1.5 GB of float32 vectors never count as its memory
        self._row_files = (NpyRows.of(self.vectors), NpyRows.of(self.views)) if dense.kind == "ivf" else None
        if dense.kind == "ivf":  # (a reader over the rows, not a method: the store and its index must not
            # hold each other, or a replaced store's memory would wait for the cycle collector)
            dense.attach_rows(_row_reader(*(self._row_files or (self.vectors, self.views)), len(self._chunks)))
        self.keyword = keyword
        self.requested_kind = dense_kind
        self.ef_search, self.nprobe = ef_search, nprobe
        self.bigrams = bigrams
        self.token_cache = token_cache  # BM25 tokens of known texts, for rebuilds
        self.positions = {c.id: i for i, c in enumerate(self._chunks)}
        # (query, BM25 scores of every chunk): hybrid search asks for candidates and
        # then for the scores of a pool, from one scan. One tuple, replaced whole.
        self._last_keyword: tuple[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, new: NewChunks, *, dense_kind: str = "flat", ef_search: int | None = None,
              nprobe: int | None = None, bigrams: bool = False,
              token_cache: EmbeddingCache | None = None) -> "LocalStore":
        """A store of ``new`` alone."""
        vectors = np.asarray(new.vectors, dtype=np.float32)
        views = np.asarray(new.views, dtype=np.float32).reshape(-1, vectors.shape[1])
        # One FAISS index: the chunk vectors (positions 0..n-1), then the sentence views.
        params = {k: v for k, v in (("ef_search", ef_search), ("nprobe", nprobe)) if v is not None}
        dense = DenseIndex.build(np.concatenate([vectors, views]), dense_kind, **params)
        texts = list(new.keyword_texts)
        keyword = KeywordIndex.build(texts, bigrams=bigrams,
                                     tokens=tokenize_passages(texts, bigrams=bigrams, cache=token_cache))
        return cls(new.chunks, vectors, views, new.view_offsets, dense, keyword, dense_kind=dense_kind,
                   ef_search=ef_search, nprobe=nprobe, bigrams=bigrams, token_cache=token_cache)

    @classmethod
    def empty(cls, dim: int, **settings) -> "LocalStore":
        """A store of no chunks (``updated`` fills it)."""
        empty = np.zeros((0, dim), dtype=np.float32)
        return cls.build(NewChunks([], empty, empty, np.zeros(1, dtype=np.int64), []), **settings)

    def updated(self, remove_docs: Iterable[str], new: NewChunks | None) -> "LocalStore":
        remove = set(remove_docs)
        if new is not None:
            remove |= {c.doc for c in new.chunks}
        keep = [i for i, c in enumerate(self._chunks) if c.doc not in remove]
        kept_views = [self.views[self.view_offsets[i]:self.view_offsets[i + 1]] for i in keep]
        dim = self.vectors.shape[1]
        chunks = [self._chunks[i] for i in keep]
        vectors = [self.vectors[keep]]
        views = kept_views
        counts = [len(v) for v in kept_views]
        texts = [passage_text(c) for c in chunks]
        if new is not None:
            chunks += list(new.chunks)
            vectors.append(np.asarray(new.vectors, dtype=np.float32).reshape(-1, dim))
            views = views + [np.asarray(new.views, dtype=np.float32).reshape(-1, dim)]
            counts += np.diff(np.asarray(new.view_offsets)).tolist()
            texts += list(new.keyword_texts)
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        all_views = np.concatenate(views) if views else np.zeros((0, dim), np.float32)
        merged = NewChunks(chunks, np.concatenate(vectors), all_views, offsets, texts)
        return LocalStore.build(merged, dense_kind=self.requested_kind, ef_search=self.ef_search,
                                nprobe=self.nprobe, bigrams=self.bigrams, token_cache=self.token_cache)

    # ------------------------------------------------------------------ files

    def save(self, directory: Path) -> dict[str, Any]:
        directory = Path(directory)
        with open(directory / CHUNKS, "w", encoding="utf-8") as fh:
            for chunk in self._chunks:
                fh.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        np.save(directory / VECTORS, self.vectors)
        np.save(directory / VIEWS, self.views)
        np.save(directory / VIEW_OFFSETS, self.view_offsets)
        self.dense.save(directory / DENSE)
        (directory / BM25_DIR).mkdir()
        self.keyword.save(directory / BM25_DIR)
        return {"kind": "local"}

    @classmethod
    def load(cls, directory: Path, *, dim: int, chunks_count: int | None, views_count: int, dense_kind: str, requested_kind: str,
             ef_search: int, nprobe: int, bigrams: bool, tokenizer: str,
             token_cache: EmbeddingCache | None = None) -> "LocalStore":
        """Read the store's files (their checksums are already verified) and check that
        counts and shapes agree with each other and with the manifest."""
        from rag.tokenize_zh import TOKENIZER_VERSION

        if tokenizer != TOKENIZER_VERSION:
            raise IndexMismatchError(
                f"index keyword tokens were made by tokenizer {tokenizer!r}, this program uses "
                f"{TOKENIZER_VERSION!r}; rebuild the index with `rag index`")
        directory = Path(directory)
        chunks = [Chunk.from_dict(json.loads(line))
                  for line in (directory / CHUNKS).read_text(encoding="utf-8").splitlines() if line.strip()]
        # Memory-mapped, and only read here for their shapes: the exact scores of a candidate
        # pool are read from FAISS's own copy of the same vectors (below), so the process
        # holds each vector once. Reading them from these files paged 1.3 GB of news-63k's
        # vectors into the server's memory on top of FAISS's copy.
        vectors = np.load(directory / VECTORS, allow_pickle=False, mmap_mode="r")
        views = np.load(directory / VIEWS, allow_pickle=False, mmap_mode="r")
        view_offsets = np.load(directory / VIEW_OFFSETS, allow_pickle=False)
        dense = DenseIndex.load(directory / DENSE, dense_kind, ef_search, nprobe)
        keyword = KeywordIndex.load(directory / BM25_DIR, num_docs=len(chunks), bigrams=bigrams)
        n, m = len(chunks), views_count
        problems = []
        if chunks_count != n:
            problems.append(f"{n} chunks but the manifest counts {chunks_count}")
        if vectors.shape != (n, dim):
            problems.append(f"vectors have shape {vectors.shape}, expected {(n, dim)}")
        if views.shape != (m, dim):
            problems.append(f"views have shape {views.shape}, expected {(m, dim)}")
        offsets_ok = (view_offsets.shape == (n + 1,) and int(view_offsets[0]) == 0
                      and int(view_offsets[-1]) == m and bool(np.all(np.diff(view_offsets) >= 0)))
        if not offsets_ok:
            problems.append(f"view offsets do not cover {m} views of {n} chunks")
        if dense.ntotal != n + m:
            problems.append(f"dense index holds {dense.ntotal} vectors for {n} chunks and {m} views")
        if dense.dim != dim:
            problems.append(f"dense index has dimension {dense.dim}, manifest says {dim}")
        if keyword.indexed_docs != max(n, 1):
            problems.append(f"BM25 index holds {keyword.indexed_docs} documents for {n} chunks")
        if problems:
            raise CorruptIndexError(f"index at {directory} is inconsistent: {'; '.join(problems)}; "
                                    "rebuild it with `rag index`")
        stored = dense.stored_vectors()  # None for ivf: its vectors stay read from the files
        if stored is not None:
            vectors, views = stored[:n], stored[n:]
        return cls(chunks, vectors, views, view_offsets, dense, keyword, dense_kind=requested_kind,
                   ef_search=ef_search, nprobe=nprobe, bigrams=bigrams, token_cache=token_cache)

    def commit(self) -> None:
        """Nothing to drop: the old files went with the replaced index directory."""

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._chunks)

    def chunks(self) -> list[Chunk]:
        return list(self._chunks)

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        pos = self.positions.get(chunk_id)
        return None if pos is None else self._chunks[pos]

    def dense_ranked(self, query_vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """Top ``depth`` chunk positions by the best cosine of the chunk or one of its views."""
        n = len(self._chunks)
        if not len(self.views):
            return self.dense.search(query_vector, depth)
        # Views crowd the raw list (a chunk may place several), so ask FAISS for more.
        per_chunk = -(-self.dense.ntotal // max(n, 1)) + 1
        best: dict[int, float] = {}
        for pos, score in self.dense.search(query_vector, depth * per_chunk):
            chunk = pos if pos < n else int(self.view_owner[pos - n])
            if score > best.get(chunk, -np.inf):
                best[chunk] = score
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]

    def dense_candidates(self, query_vector: np.ndarray, depth: int) -> list[Scored]:
        return [(self._chunks[pos], score) for pos, score in self.dense_ranked(query_vector, depth)]

    def dense_scores(self, chunk_ids: Sequence[str], query_vector: np.ndarray) -> dict[str, float]:
        positions = np.array([self.positions[i] for i in chunk_ids if i in self.positions], dtype=np.int64)
        vectors, views = self._row_files or (self.vectors, self.views)
        scores = vectors[positions] @ np.asarray(query_vector, dtype=np.float32)
        offsets = self.view_offsets
        spans = [(int(offsets[pos]), int(offsets[pos + 1])) for pos in positions.tolist()]
        if not isinstance(views, np.ndarray):  # rows from the files: all the pool's views in one read
            starts = np.cumsum([0] + [b - a for a, b in spans])
            views = views[np.concatenate([np.arange(a, b) for a, b in spans] or [np.zeros(0, np.int64)])]
            spans = list(zip(starts[:-1].tolist(), starts[1:].tolist()))
        for j, (a, b) in enumerate(spans):
            if b > a:
                scores[j] = max(scores[j], float((views[a:b] @ query_vector).max()))
        return {self._chunks[p].id: float(s) for p, s in zip(positions.tolist(), scores.tolist())}

    def _keyword_scores(self, query: str) -> np.ndarray:
        last = self._last_keyword
        if last is not None and last[0] == query:
            return last[1]
        scores = self.keyword.scores(query)
        self._last_keyword = (query, scores)
        return scores

    def keyword_candidates(self, query: str, depth: int) -> list[Scored]:
        ranked = top_k(self._keyword_scores(query), depth, positive_only=True)
        return [(self._chunks[pos], score) for pos, score in ranked]

    def keyword_scores(self, chunk_ids: Sequence[str], query: str) -> dict[str, float]:
        scores = self._keyword_scores(query)
        return {i: float(scores[self.positions[i]]) for i in chunk_ids if i in self.positions}

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "dense_kind": self.dense.kind, "dense_index": self.dense.describe(),
                "chunks": len(self), "views": len(self.views)}


# --------------------------------------------------------------------------- streaming build

#: Vectors read back from disk per FAISS add.
_READ_ROWS = 65_536


class LocalStoreWriter:
    """Writes a new local store's files batch by batch into ``directory`` (a staging folder).

    ``add`` appends each batch's chunks to ``chunks.jsonl`` and its vectors and views to
    files on disk, and keeps only the batch's keyword tokens, as ids
    (``KeywordIndexBuilder``); ``finish`` then builds the BM25 index from those ids and
    the FAISS index from the vectors read back part by part. So what a build holds
    grows by ~4 bytes per keyword token and a few bytes per chunk, not by the
    chunks' text and vectors: news-63k (150k chunks, 850k views) was measured in
    README "Indexing news-63k". The files are exactly ``LocalStore.save``'s.
    Use as a context manager: the tokenizer's worker processes stop at the end.
    """

    def __init__(self, directory: Path, dim: int, *, dense_kind: str = "flat", ef_search: int | None = None,
                 nprobe: int | None = None, bigrams: bool = False, token_cache: EmbeddingCache | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self.dense_kind = dense_kind
        self.dense_params = {k: v for k, v in (("ef_search", ef_search), ("nprobe", nprobe)) if v is not None}
        self.token_cache = token_cache
        self.keyword = KeywordIndexBuilder(bigrams=bigrams)
        self.chunks = 0
        self.views = 0
        self._view_counts = array("q")
        self._chunks_file = open(self.directory / CHUNKS, "w", encoding="utf-8")
        self._vectors_file = open(self.directory / (VECTORS + ".part"), "wb")
        self._views_file = open(self.directory / (VIEWS + ".part"), "wb")
        self._pool_context = None
        self._pool = None
        self.final_kind: str | None = None

    def __enter__(self) -> "LocalStoreWriter":
        from rag.tokenize_zh import tokenizer_pool

        self._pool_context = tokenizer_pool()
        self._pool = self._pool_context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._close_files(quiet=exc[0] is not None)  # a failed write must not hide the first error
        self._stop_pool()

    def _stop_pool(self) -> None:
        if self._pool_context is not None:
            context, self._pool_context, self._pool = self._pool_context, None, None
            context.__exit__(None, None, None)

    def add(self, new: NewChunks) -> None:
        """Write one batch: its chunks, vectors, views and keyword tokens."""
        vectors = np.ascontiguousarray(new.vectors, dtype=np.float32).reshape(-1, self.dim)
        views = np.ascontiguousarray(new.views, dtype=np.float32).reshape(-1, self.dim)
        for chunk in new.chunks:
            self._chunks_file.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        self._vectors_file.write(vectors.tobytes())
        self._views_file.write(views.tobytes())
        self._view_counts.extend(np.diff(np.asarray(new.view_offsets, dtype=np.int64)).tolist())
        self.keyword.add(tokenize_passages(list(new.keyword_texts), bigrams=self.keyword.bigrams,
                                           cache=self.token_cache, pool=self._pool))
        self.chunks += len(new.chunks)
        self.views += len(views)

    def finish(self) -> "StagedStore":
        """Close the files, build the keyword and dense indexes; the staged store to write."""
        self._close_files()
        self._stop_pool()  # no more tokenizing: the workers' memory is not needed for the rest
        offsets = np.concatenate([[0], np.cumsum(np.frombuffer(self._view_counts, dtype=np.int64))]).astype(np.int64)
        np.save(self.directory / VIEW_OFFSETS, offsets)
        keyword = self.keyword.build()
        self.keyword = KeywordIndexBuilder(bigrams=self.keyword.bigrams)  # its ids are no longer needed
        (self.directory / BM25_DIR).mkdir()
        keyword.save(self.directory / BM25_DIR)
        del keyword
        dense = DenseIndex.build_in_parts(self._vector_parts, self.chunks + self.views, self.dim,
                                          self.dense_kind, **self.dense_params)
        dense.save(self.directory / DENSE)
        self.final_kind = dense.kind
        dense_index = dense.describe()
        del dense
        for name, rows in ((VECTORS, self.chunks), (VIEWS, self.views)):
            _npy_from_raw(self.directory / (name + ".part"), self.directory / name, rows, self.dim)
        return StagedStore(self.directory, chunks=self.chunks, views=self.views, dense_kind=self.final_kind,
                           dense_index=dense_index)

    def _vector_parts(self) -> Iterator[np.ndarray]:
        """The chunk vectors, then the views (FAISS's order), read from disk part by part
        (plain reads, not a memory map: mapped pages would count as the build's memory)."""
        for name in (VECTORS, VIEWS):
            with open(self.directory / (name + ".part"), "rb") as fh:
                while True:
                    part = np.fromfile(fh, dtype=np.float32, count=_READ_ROWS * self.dim)
                    if not part.size:
                        break
                    yield part.reshape(-1, self.dim)

    def _close_files(self, quiet: bool = False) -> None:
        for fh in (self._chunks_file, self._vectors_file, self._views_file):
            if not fh.closed:
                try:
                    fh.close()
                except OSError:
                    if not quiet:
                        raise


class StagedStore:
    """A local store whose files a ``LocalStoreWriter`` wrote into a staging folder; what
    ``rag.index_store.write_index`` needs of a store to put it into the new index."""

    kind = "local"
    FILES = (CHUNKS, VECTORS, VIEWS, VIEW_OFFSETS, DENSE, BM25_DIR)

    def __init__(self, directory: Path, *, chunks: int, views: int, dense_kind: str,
                 dense_index: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self._chunks, self._views, self.dense_kind = chunks, views, dense_kind
        self.dense_index = dense_index or {}

    def __len__(self) -> int:
        return self._chunks

    def save(self, directory: Path) -> dict[str, Any]:
        for name in self.FILES:  # same filesystem: renames, no copies
            os.replace(self.directory / name, Path(directory) / name)
        return {"kind": "local"}

    def commit(self) -> None:
        """Nothing to drop (see ``LocalStore.commit``)."""

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "dense_kind": self.dense_kind, "dense_index": self.dense_index,
                "chunks": self._chunks, "views": self._views}


def _row_reader(vectors, views, n: int):
    """Float32 rows by FAISS position (``n`` chunk vectors, then the views), in the order asked."""
    dim = vectors.shape[1]

    def rows(positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        is_view = positions >= n
        out = np.empty((len(positions), dim), dtype=np.float32)
        if (~is_view).any():
            out[~is_view] = vectors[positions[~is_view]]
        if is_view.any():
            out[is_view] = views[positions[is_view] - n]
        return out

    return rows


class NpyRows:
    """Rows of a float32 .npy file read on demand with ``pread``: what a search reads goes
    through the page cache (shared, reclaimable) without being mapped into the process,
    so a served index's memory does not grow with the rows its searches have touched
    (a memory map's touched pages count as the process's own). Rows are read sorted and
    runs of neighbouring rows in one call. The open file keeps this snapshot readable
    after the index folder is replaced."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int]):
        self.path, self.offset, self.shape = Path(path), int(offset), (int(shape[0]), int(shape[1]))
        self._fd = os.open(self.path, os.O_RDONLY)
        self._row_bytes = self.shape[1] * 4

    @classmethod
    def of(cls, array: np.ndarray) -> "NpyRows | np.ndarray":
        """A reader for a memory-mapped .npy array (``np.load(..., mmap_mode="r")``); any
        other array as it is."""
        base = array
        while base is not None and not isinstance(base, np.memmap):
            base = base.base
        whole = (isinstance(base, np.memmap) and getattr(base, "filename", None) is not None
                 and base.shape == array.shape and base.dtype == np.float32
                 and base.__array_interface__["data"][0] == array.__array_interface__["data"][0])
        return cls(Path(base.filename), base.offset, array.shape) if whole else array

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() >= self.shape[0]):
            raise IndexError(f"row out of range for {self.path} ({self.shape[0]} rows)")
        if not len(positions):
            return np.empty((0, self.shape[1]), dtype=np.float32)
        unique, inverse = np.unique(positions, return_inverse=True)
        block = np.empty((len(unique), self.shape[1]), dtype=np.float32)
        view, size = memoryview(block).cast("B"), self._row_bytes
        starts = np.flatnonzero(np.diff(unique, prepend=-2) != 1)  # runs of neighbouring rows
        ends = np.append(starts[1:], len(unique))
        for start, end, row in zip(starts.tolist(), ends.tolist(), unique[starts].tolist()):
            want = (end - start) * size
            if os.preadv(self._fd, [view[start * size:end * size]], self.offset + row * size) != want:
                raise OSError(f"{self.path} is shorter than its header says")
        return block[inverse.reshape(-1)]

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def _npy_from_raw(raw: Path, target: Path, rows: int, dim: int) -> None:
    """``target`` as a .npy file of float32 (rows, dim) holding ``raw``'s bytes; ``raw`` removed."""
    expected = rows * dim * 4
    if raw.stat().st_size != expected:
        raise RuntimeError(f"{raw} holds {raw.stat().st_size} bytes, expected {expected}")
    with open(target, "wb") as out, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(
            out, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (rows, dim)})
        shutil.copyfileobj(src, out, 1 << 22)
    raw.unlink()
