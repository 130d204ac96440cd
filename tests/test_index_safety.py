"""Data safety of the index under concurrency, other processes and bad input.

Searches racing ``Retriever.add``, another process rewriting the index while a
retriever holds it, and all-or-nothing adds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import SMALL_DOCS
from rag.errors import DocumentError
from rag.index_store import manifest_identity, read_manifest
from rag.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parents[1]
FAKE_RAG = Path(__file__).resolve().parent / "rag_fake_model.py"


def run_rag(*args: str, cache_dir: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``rag ARGS`` in a child process, with the fake model and a private embedding cache."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(cache_dir), **(env or {})}
    return subprocess.run([sys.executable, str(FAKE_RAG), *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _long_doc(i: int, paragraphs: int) -> str:
    body = "\n\n".join(f"第{p}段：编号{i}的报告记录了{p * 7 + i}项工作，涉及城市{i}的交通、教育和医疗。"
                       for p in range(paragraphs))
    return f"# 报告{i}\n\n{body}\n"


# --------------------------------------------------------------------------- item 2: search during add

QUERIES = ["12351热线什么时候建成", "大熊猫吃什么", "京沪高铁有多长", "报告3的交通", "城市5教育"]


def _results(retriever, query, mode):
    return [(h.chunk_id, h.text, round(h.score, 4)) for h in retriever.search(query, k=4, mode=mode)]


def test_searches_during_adds_see_the_old_or_the_new_index_whole(make_retriever, tmp_path, fake_embedder):
    """Threads search while adds grow and shrink the index; every result must be the
    exact result of one index version (no errors, no chunk from the wrong position)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SMALL_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    for i in range(8):
        (corpus / f"report{i}.md").write_text(_long_doc(i, 12), encoding="utf-8")
    retriever = make_retriever([corpus], tmp_path / "index")
    versions = [tmp_path / "v0"]
    shutil.copytree(retriever.index_dir, versions[0])

    stop = threading.Event()
    observed: list[tuple[str, str, list]] = []
    errors: list[BaseException] = []

    def searcher(seed: int) -> None:
        n = seed
        while not stop.is_set():
            query, mode = QUERIES[n % len(QUERIES)], ("bm25", "dense", "hybrid")[n % 3]
            n += 1
            try:
                observed.append((query, mode, _results(retriever, query, mode)))
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so searches interleave with the swap
    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    try:
        for t in threads:
            t.start()
        for step in range(12):
            # Alternately shrink report{step} to one paragraph and grow it back, so chunk
            # positions shift and the chunk count changes with every add.
            path = corpus / f"report{step % 8}.md"
            path.write_text(_long_doc(step % 8, 1 if step % 2 == 0 else 15), encoding="utf-8")
            retriever.add([path])
            versions.append(tmp_path / f"v{len(versions)}")
            shutil.copytree(retriever.index_dir, versions[-1])
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(old)

    assert not errors, f"{len(errors)} searches failed, first: {errors[0]!r}"
    expected: dict[tuple[str, str], list] = {}
    for version in versions:
        reloaded = Retriever.load(version, embedder=fake_embedder)
        for query in QUERIES:
            for mode in ("bm25", "dense", "hybrid"):
                expected.setdefault((query, mode), []).append(_results(reloaded, query, mode))
    assert len(observed) > 100
    wrong = [(q, m) for q, m, result in observed if result not in expected[(q, m)]]
    assert not wrong, f"{len(wrong)} of {len(observed)} searches returned a result of no index version"


# --------------------------------------------------------------------------- item 7: another process wrote the index

def test_add_keeps_documents_another_process_indexed_meanwhile(small_retriever, small_corpus, tmp_path):
    index_dir = small_retriever.index_dir
    ext = tmp_path / "ext2"
    ext.mkdir()
    (ext / "external.txt").write_text("外部文档\n\n青藏铁路全长1956公里，2006年7月1日全线通车。", encoding="utf-8")
    # A real second process rebuilds the index with one more document ...
    done = run_rag("index", str(small_corpus), str(ext), "--index", str(index_dir), "--quiet",
                   cache_dir=tmp_path / "cache2")
    assert done.returncode == 0, done.stderr
    assert "external.txt" in Retriever.load(index_dir).documents
    # ... then this process, which loaded the index before, adds an upload.
    upload = tmp_path / "upload" / "moon.md"
    upload.parent.mkdir()
    upload.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日携带月球背面样品返回地球。", encoding="utf-8")
    summary = small_retriever.add([upload])
    assert summary.added == ["moon.md"]
    on_disk = Retriever.load(index_dir)
    assert {"external.txt", "moon.md"} <= set(on_disk.documents)
    assert set(small_retriever.documents) == set(on_disk.documents)
    assert small_retriever.search("青藏铁路", k=1, mode="bm25")[0].doc == "external.txt"


def test_every_write_of_an_index_has_a_new_generation(small_retriever, tmp_path):
    first = manifest_identity(read_manifest(small_retriever.index_dir))
    new = tmp_path / "new.md"
    new.write_text("# 新闻\n\n长江大桥于1957年建成通车。", encoding="utf-8")
    small_retriever.add([new])
    second = manifest_identity(read_manifest(small_retriever.index_dir))
    assert second[0] == first[0] + 1 and second[1] != first[1]
    assert manifest_identity(small_retriever.manifest) == second


# --------------------------------------------------------------------------- item 10: all or nothing

def test_add_of_a_good_and_a_bad_file_adds_neither(small_retriever, tmp_path):
    good, bad = tmp_path / "ocean.md", tmp_path / "broken.txt"
    good.write_text("# 海洋观测\n\n南海观测站于2015年建成。", encoding="utf-8")
    bad.write_bytes(bytes(range(256)) * 8)  # not text in any encoding
    chunks, identity = small_retriever.chunks, manifest_identity(read_manifest(small_retriever.index_dir))
    with pytest.raises(DocumentError, match="broken.txt") as err:
        small_retriever.add([good, bad])
    assert "unchanged" in str(err.value)
    assert small_retriever.chunks == chunks and "ocean.md" not in small_retriever.documents
    assert manifest_identity(read_manifest(small_retriever.index_dir)) == identity
    assert "ocean.md" not in Retriever.load(small_retriever.index_dir).documents


def test_add_of_a_folder_with_one_bad_file_adds_nothing(small_retriever, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "ocean.md").write_text("# 海洋观测\n\n南海观测站于2015年建成。", encoding="utf-8")
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    before = small_retriever.chunks
    with pytest.raises(DocumentError, match="empty.txt"):
        small_retriever.add([folder])
    assert small_retriever.chunks == before
