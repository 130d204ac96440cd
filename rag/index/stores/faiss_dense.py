"""Dense vector index: FAISS inner product over L2-normalised vectors (= cosine).

Kinds:

* ``flat``: exact search (``IndexFlatIP``). What ``auto`` (the default) builds below
  ``AUTO_APPROX_MIN`` vectors: at thousands of chunks a brute-force scan takes well under
  a millisecond.
* ``hnsw``: graph search (``IndexHNSWFlat``, inner-product metric); approximate.
  ``ef_search`` trades recall for speed at query time. Keeps every vector in memory.
* ``ivf``: inverted lists of 8-bit scalar-quantized codes (``IndexIVFScalarQuantizer``,
  384 bytes a 384-d vector instead of 1,536), ``nprobe`` lists visited, and the
  candidates re-scored exactly from the float32 rows (the index's ``.npy`` files, read
  on demand): the scores it returns are exact inner products. For big collections.
* ``auto``: ``flat`` below ``AUTO_APPROX_MIN`` vectors, ``ivf`` from there.

Why ``ivf`` for big collections (measured on the 162,136 real chunk and view vectors of
news-63k's first 10,000 articles with 300 crud-dev questions, README "Index and search"):
e5 vectors sit close together (a question's 10th and 100th best passages differ by
~0.013 in cosine), which graph search handles badly when the collection repeats
sentences (HNSW recall@10 0.90-0.94 with the copies kept, 0.99 with one node per
distinct vector), and which compressed codes alone rank badly (PQ), but inverted lists
visited widely with exact re-scoring reach recall@10 0.99 for ~400 bytes a vector.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from rag.vocabulary import DENSE_KINDS as KINDS

#: ``kind="auto"`` switches from exact search to ``ivf`` at this many vectors (chunks
#: plus their sentence views): an exact scan of 384-d vectors costs ~10 ms per 100k
#: vectors on one core of the 2-core machine (17-21 ms at 162k, 126 ms at 1.0 M; README "Scale").
AUTO_APPROX_MIN = 100_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
#: On crud-dev's 19,360 real vectors efSearch 64 reached recall@10 0.937, 128 0.977,
#: 256 0.983; on news-63k's 162,136 (which repeat sentences: 18,486 copies, one 623
#: times) 0.90-0.94 at 128-1024 — the copies fill each other's neighbour lists.
#: Indexes record the value they were built with.
HNSW_EF_SEARCH = 256

#: ``nprobe`` 0 = automatic: ``ivf_nprobe`` (a sixth of the lists, and enough of them on a small index).
IVF_NPROBE = 0
#: Lists probed: 1 / IVF_PROBE_SHARE of them. On the 162k real vectors (1,610 lists, crud-dev
#: questions): an eighth gave recall@10 0.988-0.991, a sixth 0.993-0.995, a quarter 0.996; at
#: 1.0 M vectors a sixth costs ~20 ms a question at load 7 (a quarter 36 ms).
IVF_PROBE_SHARE = 6
#: ... and at least the lists holding this many vectors (a small index: all of them; ~1 ms of codes):
#: on seeds' 3,040 real vectors 16 of its 77 lists found only 0.958 of the true 10.
IVF_MIN_SCANNED = 20_000
#: At least this many candidates are re-scored exactly (a search for more re-scores them all).
IVF_RESCORE_MIN = 100
#: k-means of the lists trains on at most this many vectors per list (FAISS wants >= 39).
IVF_TRAIN_PER_LIST = 64


def resolve_kind(kind: str, n: int) -> str:
    """The concrete index kind for ``kind`` (maybe ``auto``) and ``n`` vectors."""
    if kind not in KINDS:
        raise ValueError(f"unknown dense index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        return "ivf" if n >= AUTO_APPROX_MIN else "flat"
    return kind


def ivf_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4*sqrt(n) (1,610 at 162k, 4,000 at 1.0 M), but
    at least 39 training points per list (FAISS's minimum). More lists probed in the same
    share found more of the true neighbours (162k: an eighth of 256 / 1,024 / 2,048 lists
    gave recall@10 0.934 / 0.981 / 0.988) for the same scan."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def ivf_nprobe(nlist: int, n: int, nprobe: int = IVF_NPROBE) -> int:
    """Lists to visit among ``nlist`` holding ``n`` vectors: ``nprobe`` when given (> 0), else
    a sixth of them, at least 16 and at least enough for ``IVF_MIN_SCANNED`` vectors."""
    if nprobe > 0:
        return min(int(nprobe), nlist)
    return min(nlist, max(16, -(-nlist // IVF_PROBE_SHARE), -(-nlist * IVF_MIN_SCANNED // max(n, 1))))


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


def _new_index(vectors: np.ndarray, kind: str, ef_search: int, nprobe: int, n: int | None = None):
    """A FAISS index of ``kind`` holding ``vectors`` (for ``ivf``: trained on them, sized for
    ``n`` vectors, and empty when ``n`` is given: the caller adds them)."""
    import faiss

    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = ef_search
    else:  # ivf
        size = len(vectors) if n is None else n
        nlist = ivf_nlist(size)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        if len(vectors):
            index.train(_training_sample(vectors, nlist))
        index.nprobe = ivf_nprobe(nlist, size, nprobe)
        if n is not None:
            return index
    if len(vectors):
        index.add(vectors)
    return index


def _training_sample(vectors: np.ndarray, nlist: int) -> np.ndarray:
    """Evenly spaced rows, at most ``IVF_TRAIN_PER_LIST`` per list (k-means time grows with them)."""
    step = max(1, len(vectors) // (IVF_TRAIN_PER_LIST * nlist))
    return np.ascontiguousarray(vectors[::step], dtype=np.float32)


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


#: Float32 rows of the indexed vectors by position (an int64 array), for exact re-scoring.
Rows = Callable[[np.ndarray], np.ndarray]


class DenseIndex:
    """A FAISS index over the chunk vectors; positions are chunk positions.

    ``rows``: where ``ivf`` reads the exact float32 vectors of its candidates (set by the
    store with ``attach_rows``; an index built from an array in memory reads that array).
    Without it ``ivf`` returns its 8-bit codes' approximate scores."""

    def __init__(self, index, kind: str, rows: Rows | None = None):
        self.index = index
        self.kind = kind
        self.rows = rows

    def attach_rows(self, rows: Rows | None) -> None:
        """Read exact vectors for re-scoring from ``rows`` (see the class)."""
        self.rows = rows

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str = "flat", ef_search: int = HNSW_EF_SEARCH,
              nprobe: int = IVF_NPROBE) -> "DenseIndex":
        """Index ``vectors`` (n x dim, float32, L2-normalised)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        kind = resolve_kind(kind, len(vectors))
        with _threads(None):  # training and adding use every core
            index = _new_index(vectors, kind, ef_search, nprobe)
        return cls(index, kind, rows=(lambda positions: vectors[positions]) if kind == "ivf" else None)

    @classmethod
    def build_in_parts(cls, parts: Callable[[], Iterable[np.ndarray]], n: int, dim: int, kind: str = "flat",
                       ef_search: int = HNSW_EF_SEARCH, nprobe: int = IVF_NPROBE) -> "DenseIndex":
        """``build`` over ``n`` vectors that ``parts()`` yields part by part (read from disk by a
        streaming build), so nothing but FAISS's own copy is held whole. ``parts`` is called
        twice for ``ivf``: a first pass copies out its k-means sample (every step-th vector),
        a second fills the trained index."""
        kind = resolve_kind(kind, n)
        with _threads(None):
            if kind == "ivf":  # trained on a sample taken in a first pass, filled in a second
                step = max(1, n // (IVF_TRAIN_PER_LIST * ivf_nlist(n)))
                # Every step-th row, copied into one array: a strided view would keep its whole
                # part alive (news-63k: 1.3 GB of parts held through the k-means).
                sample, filled, seen = np.empty(((n + step - 1) // step, dim), np.float32), 0, 0
                for part in parts():
                    rows = part[(-seen) % step::step]
                    if filled + len(rows) > len(sample):
                        raise ValueError(f"the parts hold more than the {n:,} vectors announced")
                    sample[filled:filled + len(rows)] = rows
                    filled += len(rows)
                    seen += len(part)
                    del part, rows
                index = _new_index(sample[:filled], kind, ef_search, nprobe, n=n)
                del sample
            else:
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
        """Top ``k`` (position, inner product), best first. ``ivf`` re-scores at least
        ``IVF_RESCORE_MIN`` candidates exactly (when it has ``rows``)."""
        k = min(k, self.ntotal)
        if k <= 0:
            return []
        q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
        rescore = self.kind == "ivf" and self.rows is not None
        with _threads(1):
            scores, ids = self.index.search(q, min(max(k, IVF_RESCORE_MIN), self.ntotal) if rescore else k)
        if not rescore:
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        found = ids[0][ids[0] >= 0]
        exact = np.asarray(self.rows(found), dtype=np.float32) @ q[0]
        order = np.lexsort((found, -exact))[:k]  # best first; ties by position
        return [(int(found[j]), float(exact[j])) for j in order]

    def describe(self) -> dict:
        """The index's own parameters, for the manifest (``ivf``: lists, lists probed, codes)."""
        import faiss

        if self.kind == "hnsw":
            hnsw = self.index.hnsw
            return {"M": int(hnsw.nb_neighbors(1)), "ef_construction": int(hnsw.efConstruction),
                    "ef_search": int(hnsw.efSearch)}
        if self.kind == "ivf":
            ivf = faiss.downcast_index(faiss.extract_index_ivf(self.index))
            codes = "sq8" if isinstance(ivf, faiss.IndexIVFScalarQuantizer) else "float32"
            return {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe), "codes": codes,
                    "rescored_at_least": IVF_RESCORE_MIN}
        return {}

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
        elif kind == "ivf" and nprobe > 0:  # 0: what the build chose, kept in the file
            index.nprobe = min(int(nprobe), int(index.nlist))
        return cls(index, kind)


class _BorrowedRows:
    """Exposes memory FAISS owns to numpy (read-only) and keeps its owner alive as long as
    any array made from it (the array's ``base``)."""

    def __init__(self, owner, address: int, shape: tuple[int, int]):
        self._owner = owner
        self.__array_interface__ = {"shape": shape, "typestr": "<f4", "data": (address, True), "version": 3}
