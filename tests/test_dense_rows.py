"""A served local index reads exact scores from FAISS's copy of the vectors, not from the .npy files.

Hybrid search scores its candidate pool exactly; reading those rows from the memory-mapped
vectors.npy/views.npy paged them into the process on top of FAISS's own copy (1.3 GB at
news-63k after 200 questions). flat and HNSW keep every vector exactly, so the rows come
from there: the same numbers, held once.
"""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from rag.index.stores.local import VECTORS, VIEWS

QUESTIONS = ["12351热线什么时候全面建成？", "大熊猫主要吃什么？", "京沪高铁设计时速是多少？", "明前龙井什么时候采摘？",
             "司机之家有多少家？"]


def _mapped_rss_kb(path: Path) -> int | None:
    """Resident kB of this process's mappings of ``path`` (None: not mapped at all)."""
    found, total, current = False, 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0] and ":" in fields[3]:  # a mapping's header line
            current = len(fields) >= 6 and fields[5] == str(path)
            found = found or current
        elif current and fields and fields[0] == "Rss:":
            total += int(fields[1])
    return total if found else None


def _expected_scores(index_dir: Path, store, query_vector: np.ndarray, ids: list[str]) -> dict[str, float]:
    """Exact scores computed as before, from rows of the .npy files (same arithmetic as
    ``LocalStore.dense_scores``, so equal to the last bit)."""
    vectors, views = np.load(index_dir / VECTORS), np.load(index_dir / VIEWS)
    positions = np.array([store.positions[i] for i in ids], dtype=np.int64)
    scores = vectors[positions] @ np.asarray(query_vector, dtype=np.float32)
    for j, pos in enumerate(positions.tolist()):
        a, b = int(store.view_offsets[pos]), int(store.view_offsets[pos + 1])
        if b > a:
            scores[j] = max(scores[j], float((views[a:b] @ query_vector).max()))
    return dict(zip(ids, scores.tolist()))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_served_scores_come_from_faiss_and_match_the_files(make_retriever, small_corpus, tmp_path, kind):
    from rag.retrieval.retriever import Retriever

    index_dir = tmp_path / "index"
    built = make_retriever([small_corpus], index_dir, dense=kind)
    served = Retriever.load(index_dir, embedder=built.embedder, cache=None)
    store = served.store
    assert store.dense.kind == kind
    # the very vectors the build wrote, read from FAISS's storage (not a copy, not the files)
    assert np.array_equal(store.vectors, np.load(index_dir / VECTORS))
    assert np.array_equal(store.views, np.load(index_dir / VIEWS))
    for array in (store.vectors, store.views):
        assert not isinstance(array, np.memmap) and not array.flags.writeable
        assert np.shares_memory(array, store.dense.stored_vectors())
    ids = [c.id for c in store.chunks()]
    for question in QUESTIONS:
        qvec = served.query_vector(question)
        assert store.dense_scores(ids, qvec) == _expected_scores(index_dir, store, qvec, ids)
        assert served.search(question, k=5, mode="hybrid")
    # searching never paged a row of the .npy files into this process
    for name in (VECTORS, VIEWS):
        assert _mapped_rss_kb(index_dir / name) in (None, 0), name


def test_hybrid_results_identical_to_scoring_from_the_files(make_retriever, small_corpus, tmp_path):
    """Same hits, same scores as a store that reads its rows from the .npy files."""
    from rag.retrieval.retriever import Retriever

    index_dir = tmp_path / "index"
    built = make_retriever([small_corpus], index_dir)
    from_faiss = Retriever.load(index_dir, embedder=built.embedder, cache=None)
    from_files = Retriever.load(index_dir, embedder=built.embedder, cache=None)
    store = from_files.store
    store.vectors = np.load(index_dir / VECTORS, mmap_mode="r")
    store.views = np.load(index_dir / VIEWS, mmap_mode="r")
    for question in QUESTIONS:
        a = [(h.chunk_id, h.score) for h in from_faiss.search(question, k=5, mode="hybrid")]
        b = [(h.chunk_id, h.score) for h in from_files.search(question, k=5, mode="hybrid")]
        assert a and a == b


def test_rows_keep_the_faiss_index_alive(make_retriever, small_corpus, tmp_path):
    from rag.retrieval.retriever import Retriever

    index_dir = tmp_path / "index"
    built = make_retriever([small_corpus], index_dir)
    served = Retriever.load(index_dir, embedder=built.embedder, cache=None)
    vectors = served.store.vectors
    del served
    gc.collect()
    # the retriever, its store and FAISS index are gone but for what the array keeps
    assert np.array_equal(vectors, np.load(index_dir / VECTORS))


def test_ivf_keeps_reading_the_files(make_retriever, small_corpus, tmp_path):
    """IVF keeps its vectors in inverted lists, not in one array: its rows still come from the
    memory-mapped files, with the same scores."""
    from rag.retrieval.retriever import Retriever

    index_dir = tmp_path / "index"
    built = make_retriever([small_corpus], index_dir, dense="ivf")
    served = Retriever.load(index_dir, embedder=built.embedder, cache=None)
    store = served.store
    assert store.dense.kind == "ivf" and store.dense.stored_vectors() is None
    ids = [c.id for c in store.chunks()]
    qvec = served.query_vector(QUESTIONS[0])
    assert store.dense_scores(ids, qvec) == _expected_scores(index_dir, store, qvec, ids)
