"""How a new index is made durable before it is swapped in.

A one-document-per-line collection stores one source text per record; an fsync per file
commits ext4's journal and flushes the disk every time (news-63k: 63,668 files, 4-5
minutes). From ``SYNCFS_MIN_FILES`` files on, one ``syncfs`` of the filesystem does it;
small indexes keep their per-file fsyncs. The spies below wrap the real calls (the
files are really flushed); only the write error is injected, since a disk cannot be made
to fail here.
"""
from __future__ import annotations

import errno
import os

import pytest

from rag import index_store
from rag.index_store import SYNCFS_MIN_FILES, IndexWriteError


@pytest.fixture
def flush_calls(monkeypatch):
    """Counts of real fsync and syncfs calls made while writing an index."""
    calls = {"fsync": 0, "syncfs": 0}
    real_fsync, real_syncfs = os.fsync, index_store.syncfs

    def fsync(fd):
        calls["fsync"] += 1
        return real_fsync(fd)

    def syncfs(fd):
        done = real_syncfs(fd)
        calls["syncfs"] += int(done)
        return done

    monkeypatch.setattr(index_store.os, "fsync", fsync)
    monkeypatch.setattr(index_store, "syncfs", syncfs)
    return calls


def _collection(tmp_path, records: int):
    path = tmp_path / "news.txt"
    path.write_text("".join(f"2023-08-{1 + i % 28:02d} 10:00，正文：第{i}号新闻，某市举办了第{i}届读书节活动，"
                            f"共有{100 + i}人参加。\n" for i in range(records)), encoding="utf-8")
    return path


def test_kernel_syncfs_is_used_here():
    """This Linux reports writeback errors to syncfs (5.8+), so big indexes use it."""
    fd = os.open(".", os.O_RDONLY)
    try:
        assert index_store.syncfs(fd) is True
    finally:
        os.close(fd)


def test_a_one_doc_per_line_index_is_flushed_by_one_syncfs(make_retriever, tmp_path, flush_calls):
    from rag.ingest.records import one_doc_per_line
    from rag.retrieval.retriever import Retriever

    records = SYNCFS_MIN_FILES * 2
    with one_doc_per_line(True):
        built = make_retriever([_collection(tmp_path, records)], tmp_path / "index")
    assert built.build_summary.documents == records
    files = [p for p in (tmp_path / "index").rglob("*") if p.is_file()]
    assert len(files) > records  # a source text per record, plus the store's files
    assert flush_calls == {"fsync": 0, "syncfs": 1}
    loaded = Retriever.load(tmp_path / "index")
    assert len(loaded.documents) == records
    assert loaded.search("第7届读书节", k=3, mode="bm25")


def test_a_small_index_keeps_an_fsync_per_file(make_retriever, small_corpus, tmp_path, flush_calls):
    built = make_retriever([small_corpus], tmp_path / "index")
    files = [p for p in built.index_dir.rglob("*") if p.is_file()]
    assert len(files) < SYNCFS_MIN_FILES
    assert flush_calls == {"fsync": len(files), "syncfs": 0}  # the manifest too: it is written before


def test_a_failed_syncfs_keeps_the_previous_index(make_retriever, tmp_path, monkeypatch):
    from rag.ingest.records import one_doc_per_line
    from rag.retrieval.retriever import Retriever

    collection = _collection(tmp_path, SYNCFS_MIN_FILES * 2)
    with one_doc_per_line(True):
        first = make_retriever([collection], tmp_path / "index")
    before = [h.chunk_id for h in first.search("第7届读书节", k=3, mode="bm25")]

    def io_error(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(index_store, "syncfs", io_error)
    collection.write_text(collection.read_text(encoding="utf-8") + "新的一行：第999届读书节。\n", encoding="utf-8")
    with one_doc_per_line(True), pytest.raises(IndexWriteError, match="Input/output error"):
        make_retriever([collection], tmp_path / "index")
    monkeypatch.undo()
    reloaded = Retriever.load(tmp_path / "index")
    assert len(reloaded.documents) == SYNCFS_MIN_FILES * 2
    assert [h.chunk_id for h in reloaded.search("第7届读书节", k=3, mode="bm25")] == before
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]
