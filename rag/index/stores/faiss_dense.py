"""Dense vector index: FAISS inner product over L2-normalised vectors (= cosine).

Kinds:

* ``flat``: exact search (``IndexFlatIP``). The default: at this project's scale
  (thousands of chunks) a brute-force scan takes well under a millisecond.
* ``hnsw``: graph search (``IndexHNSWFlat``, inner-product metric); approximate,
  for large corpora. ``ef_search`` trades recall for speed at query time.
* ``ivf``: inverted lists (``IndexIVFFlat`` with a flat quantizer); approximate,
  trained on the vectors, for very large corpora. ``nprobe`` lists are visited.
* ``auto``: ``flat`` below ``AUTO_HNSW_MIN`` vectors, ``hnsw`` from there.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from rag.vocabulary import DENSE_KINDS as KINDS

#: ``kind="auto"`` switches from exact search to HNSW at this many vectors
#: (chunks plus their sentence views). From bench/ on the 2-core machine: an
#: exact scan of 384-dim vectors costs about 5 ms per 100k vectors on one core
#: and loses no recall; above that, HNSW (M=32, efSearch >= 64) kept recall@10
#: at 0.999 on clustered vectors for well under a millisecond.
AUTO_HNSW_MIN = 100_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
#: Real e5 vectors are much harder than synthetic clustered ones: on crud-dev's
#: 19,360 real chunk and view vectors with its 353 real questions (one thread,
#: recall@10 against exact search), efSearch 64 reached 0.937, 128 0.977, 256 0.983,
#: 512 0.985 (3.7 ms at 256 vs 0.7 ms exact at that size). On the 162,136 vectors of
#: news-63k's first 10,000 articles (``rag bench --only collection``) it is worse:
#: about 0.84 at 256 and 0.89 at 1024 with duplicates removed, and anywhere from
#: 0.74 to 0.97 at 512 from one build to the next with them (18,486 vectors there are
#: copies of a repeated sentence, one of them 623 times) — below the 0.98 target, so
#: ``auto`` is not the answer there yet. Indexes record the value they were built with.
HNSW_EF_SEARCH = 256
IVF_NPROBE = 16


def resolve_kind(kind: str, n: int) -> str:
    """The concrete index kind for ``kind`` (maybe ``auto``) and ``n`` vectors."""
    if kind not in KINDS:
        raise ValueError(f"unknown dense index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        return "hnsw" if n >= AUTO_HNSW_MIN else "flat"
    return kind


def _ivf_nlist(n: int) -> int:
    # About 4*sqrt(n) lists, but at least 39 training points per list (FAISS's minimum).
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """FAISS's OpenMP threads set to ``n`` (None: all cores) inside the block, restored after.

    One query is searched on one thread: with two, OpenMP's spinning threads
    made a single flat search 5-29x slower on a busy 2-core machine (bench/).
    Restoring matters: FAISS and torch share the OpenMP runtime's thread setting,
    so a search left at one thread made every later embedding on that thread
    (query vectors, uploads in ``rag serve``) run on one core.
    """
    import os

    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _new_index(vectors: np.ndarray, kind: str, ef_search: int, nprobe: int):
    """A FAISS index of ``kind`` holding ``vectors``."""
    import faiss

    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = ef_search
    else:  # ivf
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, _ivf_nlist(n), faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(vectors)
        index.nprobe = nprobe
    if n:
        index.add(vectors)
    return index


def _reserve(index, n: int) -> None:
    """Make room for ``n`` vectors in a flat (or HNSW's flat) storage at once. Added part by
    part, FAISS's code vector grows by reallocation, which holds the old and the new copy
    at once: 1.0 M vectors (news-63k) peaked at 2.6 GB instead of 1.5 GB. A std::vector
    resized up and back down keeps its capacity, so the adds that follow never move it."""
    import faiss

    storage = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    codes = getattr(storage, "codes", None)
    if codes is None or not hasattr(codes, "resize") or codes.size():
        return
    codes.resize(n * int(storage.code_size))
    codes.resize(0)


class DenseIndex:
    """A FAISS index over the chunk vectors; positions are chunk positions."""

    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str = "flat", ef_search: int = HNSW_EF_SEARCH,
              nprobe: int = IVF_NPROBE) -> "DenseIndex":
        """Index ``vectors`` (n x dim, float32, L2-normalised)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        kind = resolve_kind(kind, len(vectors))
        with _threads(None):  # training and adding use every core
            return cls(_new_index(vectors, kind, ef_search, nprobe), kind)

    @classmethod
    def build_in_parts(cls, parts: Callable[[], Iterable[np.ndarray]], n: int, dim: int, kind: str = "flat",
                       ef_search: int = HNSW_EF_SEARCH, nprobe: int = IVF_NPROBE) -> "DenseIndex":
        """``build`` over ``n`` vectors that ``parts()`` yields part by part (read from disk by a
        streaming build), so nothing but FAISS's own copy is held whole. ``ivf`` trains on
        all of them, so for it the parts are joined first."""
        kind = resolve_kind(kind, n)
        with _threads(None):
            if kind == "ivf":
                vectors = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts()] or
                                         [np.zeros((0, dim), np.float32)])
                return cls(_new_index(vectors, kind, ef_search, nprobe), kind)
            index = _new_index(np.zeros((0, dim), np.float32), kind, ef_search, nprobe)
            _reserve(index, n)
            for part in parts():
                if len(part):
                    index.add(np.ascontiguousarray(part, dtype=np.float32))
        return cls(index, kind)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top ``k`` (position, inner product), best first."""
        k = min(k, self.ntotal)
        if k <= 0:
            return []
        q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
        with _threads(1):
            scores, ids = self.index.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def stored_vectors(self) -> np.ndarray | None:
        """FAISS's own copy of the indexed vectors as a read-only (ntotal, dim) float32 array
        (no copy), or None for a kind that does not keep them contiguous (``ivf``).

        ``flat`` and ``hnsw`` store every vector as added, exactly; a served index reads the
        rows it scores from here instead of from the memory-mapped ``.npy`` files, whose
        pages would otherwise count a second time in the process's memory (news-63k: 1.3 GB
        after 200 questions). The array keeps this index alive.
        """
        import faiss

        index = self.index
        storage = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
        if not isinstance(storage, faiss.IndexFlat):
            return None
        n, d = int(storage.ntotal), int(storage.d)
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        address = faiss.rev_swig_ptr(storage.get_xb(), n * d).__array_interface__["data"][0]
        return np.asarray(_BorrowedRows((self, storage), address, (n, d)))

    def save(self, path: str | Path) -> None:
        """Write the index to ``path``, written by Python piece by piece (no serialised copy
        of a 1.5 GB index in memory), so a full disk raises OSError: faiss's own file
        writer only prints a close error and leaves a truncated file behind."""
        import faiss

        with open(path, "wb") as fh:
            writer = faiss.PyCallbackIOWriter(fh.write)
            try:
                faiss.write_index(self.index, writer)
            finally:
                del writer

    @classmethod
    def load(cls, path: str | Path, kind: str, ef_search: int = HNSW_EF_SEARCH,
             nprobe: int = IVF_NPROBE) -> "DenseIndex":
        import faiss

        index = faiss.read_index(str(path))
        if kind == "hnsw":
            index.hnsw.efSearch = ef_search
        elif kind == "ivf":
            index.nprobe = nprobe
        return cls(index, kind)


class _BorrowedRows:
    """Exposes memory FAISS owns to numpy (read-only) and keeps its owner alive as long as
    any array made from it (the array's ``base``)."""

    def __init__(self, owner, address: int, shape: tuple[int, int]):
        self._owner = owner
        self.__array_interface__ = {"shape": shape, "typestr": "<f4", "data": (address, True), "version": 3}
