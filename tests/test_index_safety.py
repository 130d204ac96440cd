"""Data safety of the index under concurrency, other processes, crashes and bad input.

Searches racing ``Retriever.add``, another process rewriting the index while a
retriever holds it, all-or-nothing adds, the manifest's own checksum, recovery
after crashes (real ``rag index`` processes killed at chosen steps through
``RAG_FAULT``), concurrent writers and a full disk.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import SMALL_DOCS
from rag.errors import CorruptIndexError, DocumentError
from rag.index_store import (
    FAULT_ENV, FAULT_EXIT, MANIFEST, MANIFEST_CHECKSUM, IndexBusyError, manifest_checksum, manifest_identity,
    read_manifest,
)
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
    assert len(observed) > 50  # searches really overlapped the adds
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


# --------------------------------------------------------------------------- item 11: the manifest's own checksum

def _edit_manifest(index_dir: Path, edit, resign: bool = False) -> None:
    path = index_dir / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    if resign:  # what someone who knows the format would do
        manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def test_edited_fusion_weights_in_the_manifest_are_refused(small_retriever):
    def edit(manifest):
        manifest["retrieval"]["fusion_weights"] = [0.0, 5.0]

    _edit_manifest(small_retriever.index_dir, edit)
    with pytest.raises(CorruptIndexError, match="own checksum"):
        Retriever.load(small_retriever.index_dir)


@pytest.mark.parametrize("resign", [False, True], ids=["checksum-stale", "checksum-recomputed"])
def test_swapped_chunk_texts_with_chunks_jsonl_dropped_from_the_file_list_are_refused(small_retriever, resign):
    index_dir = small_retriever.index_dir
    chunks_path = index_dir / "chunks.jsonl"
    rows = [json.loads(line) for line in chunks_path.read_text(encoding="utf-8").splitlines()]
    rows[0]["text"], rows[1]["text"] = rows[1]["text"], rows[0]["text"]
    chunks_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _edit_manifest(index_dir, lambda m: m["files"].pop("chunks.jsonl"), resign=resign)
    with pytest.raises(CorruptIndexError, match="own checksum" if not resign else "does not list chunks.jsonl"):
        Retriever.load(index_dir)


# --------------------------------------------------------------------------- item 5: recovery after crashes

def _siblings(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.parent.iterdir()
                  if p.name.startswith(f".{index_dir.name}.") and not p.name.endswith(".lock"))


def test_recovery_skips_a_half_deleted_backup_and_removes_leftovers(small_retriever):
    """Two crashes: one while deleting a replaced index (half of it gone), then one
    between the two renames of the next write. The complete copy must come back."""
    index_dir = small_retriever.index_dir
    complete = index_dir.with_name(f".{index_dir.name}.old-11111111")
    half = index_dir.with_name(f".{index_dir.name}.old-22222222")
    shutil.copytree(index_dir, half)
    (half / "view_offsets.npy").unlink()
    (half / "dense.faiss").unlink()
    os.rename(index_dir, complete)
    newer = complete.stat().st_mtime + 60
    os.utime(half, (newer, newer))  # the damaged one looks newest

    reloaded = Retriever.load(index_dir)
    assert reloaded.chunks == small_retriever.chunks
    assert _siblings(index_dir) == []


def test_an_add_after_a_crash_between_the_renames_restores_the_index_first(small_retriever, tmp_path, monkeypatch):
    import rag.index_store

    monkeypatch.setattr(rag.index_store, "RECOVERY_WAIT", 1.0)  # a regression fails fast, not in 60 s
    index_dir = small_retriever.index_dir
    os.rename(index_dir, index_dir.with_name(f".{index_dir.name}.old-33333333"))
    new = tmp_path / "moon.md"
    new.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日返回地球。", encoding="utf-8")
    assert small_retriever.add([new]).added == ["moon.md"]
    assert len(Retriever.load(index_dir).documents) == 5
    assert _siblings(index_dir) == []


def test_recovery_after_a_crash_in_cleanup_then_one_between_the_renames(small_corpus, tmp_path):
    """Real `rag index` processes killed (os._exit) at chosen steps of the swap."""
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    extra1, extra2 = tmp_path / "extra1", tmp_path / "extra2"
    for folder, text in ((extra1, "第一份补充：南水北调中线工程2014年通水。"), (extra2, "第二份补充：港珠澳大桥2018年通车。")):
        folder.mkdir()
        (folder / f"{folder.name}.txt").write_text(text, encoding="utf-8")
    assert run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=cache).returncode == 0

    crashed = run_rag("index", str(small_corpus), str(extra1), "--index", str(index_dir), "--quiet",
                      cache_dir=cache, env={FAULT_ENV: "discard"})
    assert crashed.returncode == FAULT_EXIT, crashed.stderr
    assert any(".trash-" in name for name in _siblings(index_dir))  # the replaced index, not yet deleted
    crashed = run_rag("index", str(small_corpus), str(extra2), "--index", str(index_dir), "--quiet",
                      cache_dir=cache, env={FAULT_ENV: "swap"})
    assert crashed.returncode == FAULT_EXIT, crashed.stderr
    assert not index_dir.exists()

    loaded = Retriever.load(index_dir)  # restores the last complete index: the one with extra1
    assert "extra1.txt" in loaded.documents and "extra2.txt" not in loaded.documents
    assert _siblings(index_dir) == []


# --------------------------------------------------------------------------- item 6: concurrent writers, full disk

def _stopped_writer(small_corpus: Path, index_dir: Path, cache: Path) -> subprocess.Popen:
    """A `rag index` process stopped (SIGSTOP) right after it took the index lock."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(cache), FAULT_ENV: "locked:stop"}
    proc = subprocess.Popen([sys.executable, str(FAKE_RAG), "index", str(small_corpus), "--index", str(index_dir),
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the writer did not stop at the lock"
    return proc


def test_second_rag_index_on_the_same_folder_says_who_is_building(small_corpus, tmp_path):
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    first = _stopped_writer(small_corpus, index_dir, cache)
    try:
        second = run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=cache)
        assert second.returncode == 1
        assert f"is being built by pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert len(Retriever.load(index_dir)) > 0


def test_an_add_waits_for_a_running_rag_index_then_keeps_its_documents(small_retriever, small_corpus, tmp_path):
    index_dir = small_retriever.index_dir
    (small_corpus / "late.md").write_text("# 后来的文档\n\n三峡大坝2006年全线建成。", encoding="utf-8")
    writer = _stopped_writer(small_corpus, index_dir, tmp_path / "cache2")
    upload = tmp_path / "upload.md"
    upload.write_text("# 上传\n\n天宫空间站2022年建成。", encoding="utf-8")
    try:
        with pytest.raises(IndexBusyError, match=f"pid {writer.pid}"):
            small_retriever.add([upload], lock_wait=0.2)
        threading.Timer(1.0, os.kill, (writer.pid, signal.SIGCONT)).start()
        summary = small_retriever.add([upload], lock_wait=120)
    finally:
        os.kill(writer.pid, signal.SIGCONT)
        writer.communicate(timeout=120)
    assert summary.added == ["upload.md"]
    assert {"late.md", "upload.md"} <= set(Retriever.load(index_dir).documents)


def test_a_dead_writers_lock_is_taken_over(small_corpus, tmp_path):
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    crashed = run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=cache,
                      env={FAULT_ENV: "locked"})
    assert crashed.returncode == FAULT_EXIT
    lock = index_dir.with_name(f".{index_dir.name}.lock")
    assert lock.read_text().strip().isdigit()  # the dead writer's pid is still in it
    done = run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=cache)
    assert done.returncode == 0, done.stderr
    assert not lock.exists()


def test_a_full_disk_during_rag_index_is_a_clear_error_and_keeps_the_index(small_corpus, tmp_path):
    """The file size limit (RLIMIT_FSIZE) makes every write past 4 KB fail as a full disk would."""
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    assert run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=cache).returncode == 0
    before = Retriever.load(index_dir).chunks
    (small_corpus / "more.md").write_text("# 更多\n\n" + "长江经济带发展战略。" * 200, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(tmp_path / "cache-full")}

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    full = subprocess.run([sys.executable, str(FAKE_RAG), "index", str(small_corpus), "--index", str(index_dir),
                           "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size)
    assert full.returncode == 1
    assert "cannot write the index" in full.stderr and "unchanged" in full.stderr
    assert "Traceback" not in full.stderr
    assert Retriever.load(index_dir).chunks == before
    assert _siblings(index_dir) == []
