"""Uploads: safe and distinct names, the uploads folder and the index in step, size limits,
answering while an upload indexes (issue 10, items 4, 8 and 9).

Fast tests use the fake embedder; the crash test kills a real process with SIGKILL
and restarts a real `rag serve` on the real model.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from serving import launched_apps, rag_serve, server_env

from rag.errors import RagError
from rag.uploads import UploadStore, UploadTooLargeError, safe_name

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED = "000_13023a24b223fec4.txt"
NEW_DOC = """# 海洋观测站

## 建站

南海观测站于2019年5月建成，共布设浮标四十二个，用于监测海水温度。
"""


def upload_file(folder: Path, name: str, text: str = NEW_DOC) -> tuple[Path, str]:
    """A temporary copy of an upload (as Gradio keeps it) and the name the user gave it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tmp-{len(list(folder.iterdir()))}{Path(name).suffix}"
    path.write_text(text, encoding="utf-8")
    return path, name


def doc_chunks(retriever) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in retriever.chunks:
        counts[chunk.doc] = counts.get(chunk.doc, 0) + 1
    return counts


def rebuilt(make_retriever, tmp_path, docs: list[Path], uploads: Path):
    """The index `rag serve` rebuilds: the document folders plus the uploads folder."""
    return make_retriever([*docs, uploads.resolve()], tmp_path / "rebuilt")


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("given, stored", [
    (".hidden.txt", "hidden.txt"),
    ("..\\..\\win.txt", "win.txt"),
    ("....win.txt", "win.txt"),
    ("../../etc/passwd.md", "passwd.md"),
    ("报告\x1b]0;title\x07.txt", "报告]0;title.txt"),
    (".txt", "upload.txt"),
    ("  年报 2024 .TXT", "年报 2024.txt"),
    ("CON.txt", "_CON.txt"),
])
def test_safe_names_are_visible_plain_file_names(given, stored):
    assert safe_name(given) == stored


def test_unsafe_names_are_stored_visibly_and_survive_a_rebuild(make_retriever, small_corpus, tmp_path):
    retriever = make_retriever([small_corpus])
    uploads = tmp_path / "uploads"
    store = UploadStore(uploads)
    incoming = tmp_path / "incoming"
    result = store.add(retriever, [upload_file(incoming, ".hidden.txt"),
                                   upload_file(incoming, "..\\..\\win.txt", NEW_DOC.replace("南海", "东海"))])
    assert [(s.original, s.name) for s in result.stored] == [(".hidden.txt", "hidden.txt"),
                                                             ("..\\..\\win.txt", "win.txt")]
    assert sorted(p.name for p in uploads.iterdir()) == ["hidden.txt", "win.txt"]
    live = doc_chunks(retriever)
    assert {"hidden.txt", "win.txt"} <= set(live)
    assert doc_chunks(rebuilt(make_retriever, tmp_path, [small_corpus], uploads)) == live


# ------------------------------------------------------------------ same names


def test_upload_named_like_a_seed_gets_its_own_id_live_and_after_a_rebuild(make_retriever, tmp_path):
    from ui.app import ChatBackend

    retriever = make_retriever([SEEDS])
    seed_chunks = doc_chunks(retriever)[SEED]
    assert seed_chunks > 1
    uploads = tmp_path / "uploads"
    backend = ChatBackend(retriever, uploads_dir=uploads)

    result = backend.add_documents([upload_file(tmp_path / "in", SEED)])
    assert [s.name for s in result.stored] == ["000_13023a24b223fec4 (2).txt"]
    live = doc_chunks(retriever)
    assert live[SEED] == seed_chunks  # the seed is whole
    assert live["000_13023a24b223fec4 (2).txt"] >= 1
    answer = list(backend.stream("南海观测站哪一年建成？", [], "extractive", "hybrid", 3))[-1]
    assert answer.citations[0].doc == "000_13023a24b223fec4 (2).txt"

    again = backend.add_documents([upload_file(tmp_path / "in", SEED, NEW_DOC + "\n补充：浮标已增至五十个。\n")])
    assert [s.name for s in again.stored] == ["000_13023a24b223fec4 (3).txt"]
    same = backend.add_documents([(SEEDS / SEED, SEED)])  # exactly the seed's content: nothing new
    assert same.stored == [] and same.duplicates == [(SEED, SEED)]

    assert doc_chunks(rebuilt(make_retriever, tmp_path, [SEEDS], uploads)) == doc_chunks(retriever)


def test_names_differing_only_in_case_do_not_collide(make_retriever, small_corpus, tmp_path):
    retriever = make_retriever([small_corpus])
    store = UploadStore(tmp_path / "uploads")
    result = store.add(retriever, [upload_file(tmp_path / "in", "TEA.TXT")])
    assert [s.name for s in result.stored] == ["TEA (2).txt"]  # tea.txt is indexed


# ------------------------------------------------------------------ size limit


def test_upload_over_the_limit_is_refused_before_anything_is_stored(small_retriever, tmp_path):
    from ui.app import ChatBackend

    backend = ChatBackend(small_retriever, uploads_dir=tmp_path / "uploads", max_upload_bytes=2_000)
    big = upload_file(tmp_path / "in", "big.txt", NEW_DOC * 40)
    before = doc_chunks(small_retriever)
    with pytest.raises(UploadTooLargeError, match=r"file too large.*0\.002 MB.*big\.txt"):
        backend.add_documents([big, upload_file(tmp_path / "in", "small.txt")])
    assert doc_chunks(small_retriever) == before
    assert not (tmp_path / "uploads").exists() or list((tmp_path / "uploads").iterdir()) == []


@pytest.fixture
def served_app(small_retriever, tmp_path):
    """build_app(small_retriever, **settings) served on 127.0.0.1; yields a starter."""
    pytest.importorskip("gradio")
    with launched_apps(small_retriever, uploads_dir=tmp_path / "uploads") as start:
        yield start


def _files_under(folder: Path) -> set[Path]:
    """Files with content under ``folder`` (Gradio 6.31 leaves an empty tmp* file per upload
    request whatever the app does; what matters is that no uploaded bytes stay behind)."""
    return {p for p in folder.rglob("*") if p.is_file() and p.stat().st_size} if folder.is_dir() else set()


def test_served_upload_limit_refuses_big_files_and_leaves_no_temp_file(served_app, small_retriever, tmp_path):
    from gradio.utils import get_upload_folder
    from gradio_client import handle_file

    client = served_app(max_upload_mb=0.01)  # 10 kB
    gradio_tmp = Path(get_upload_folder())
    before_tmp = _files_under(gradio_tmp)
    before = doc_chunks(small_retriever)
    big = tmp_path / "big.txt"
    big.write_text(NEW_DOC * 200, encoding="utf-8")  # ~30 kB
    with pytest.raises(Exception, match="exceeds the maximum file size of 10000 bytes"):
        client.predict([handle_file(str(big))], api_name="/add_documents")  # refused by the client ...
    import httpx

    with big.open("rb") as fh:  # ... and by the server, for a client that does not check
        response = httpx.post(f"{client.src.rstrip('/')}/gradio_api/upload", files={"files": ("big.txt", fh)})
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert _files_under(gradio_tmp) - before_tmp == set()
    assert doc_chunks(small_retriever) == before
    assert not (tmp_path / "uploads").exists() or list((tmp_path / "uploads").iterdir()) == []

    ok = tmp_path / "ocean.md"
    ok.write_text(NEW_DOC, encoding="utf-8")
    message, _ = client.predict([handle_file(str(ok))], api_name="/add_documents")
    assert "status-ok" in message and "ocean.md" in small_retriever.documents
    assert _files_under(gradio_tmp) - before_tmp == set()  # Gradio's copies are gone too
    assert (tmp_path / "uploads" / "ocean.md").read_text(encoding="utf-8") == NEW_DOC


# ------------------------------------------------------------------ answering during an upload


def test_a_question_is_answered_while_a_bigger_upload_indexes(served_app, small_retriever, fake_embedder,
                                                              tmp_path):
    """The upload is held inside embedding (on the index worker) until the question is answered."""
    from gradio_client import handle_file

    embedding = threading.Event()
    release = threading.Event()
    niceness: list[int] = []
    encode = fake_embedder.encode_passages

    def held_encode(texts, show_progress=False):
        if not threading.current_thread().name.startswith("rag-index"):
            return encode(texts, show_progress=show_progress)  # answering embeds sentences too
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        embedding.set()
        assert release.wait(120), "the test never released the upload"
        return encode(texts, show_progress=show_progress)

    fake_embedder.encode_passages = held_encode
    client = served_app()
    book = tmp_path / "ocean-report.md"
    book.write_text("\n".join(NEW_DOC.replace("四十二", str(i)) for i in range(300)), encoding="utf-8")
    upload = client.submit([handle_file(str(book))], api_name="/add_documents")
    try:
        assert embedding.wait(120), "the upload never started embedding"
        answer = client.predict("12351热线是什么时候建成的？", api_name="/ask")
        assert answer["citations"] and answer["citations"][0]["doc"] == "hotline.md"
        assert not upload.done()
    finally:
        release.set()
    message, _ = upload.result(timeout=120)
    assert "status-ok" in message and "ocean-report.md" in small_retriever.documents
    if sys.platform.startswith("linux"):
        assert niceness[0] > os.getpriority(os.PRIO_PROCESS, 0)  # indexed below answering's priority


# ------------------------------------------------------------------ reconciling


def test_reconcile_indexes_stored_uploads_the_index_lacks(make_retriever, small_corpus, tmp_path):
    retriever = make_retriever([small_corpus])
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "ocean.md").write_text(NEW_DOC, encoding="utf-8")  # stored, then the process died
    (uploads / "tea.txt").write_text("另一份同名的文件：茶叶价格表。\n", encoding="utf-8")  # clashes
    (uploads / ".upload-1234.part").write_text("half", encoding="utf-8")
    (uploads / ".legacy.md.part").write_text("half", encoding="utf-8")

    report = UploadStore(uploads).reconcile(retriever)
    assert sorted(report.indexed) == ["ocean.md", "tea (2).txt"]
    assert sorted(report.removed) == [".legacy.md.part", ".upload-1234.part"]
    assert sorted(p.name for p in uploads.iterdir()) == ["ocean.md", "tea (2).txt"]
    assert {"ocean.md", "tea (2).txt", "tea.txt"} <= set(retriever.documents)
    assert UploadStore(uploads).reconcile(retriever).lines() == []  # in step now
    assert doc_chunks(rebuilt(make_retriever, tmp_path, [small_corpus], uploads)) == doc_chunks(retriever)


def test_reconcile_restores_indexed_uploads_whose_file_is_gone(make_retriever, small_corpus, tmp_path):
    retriever = make_retriever([small_corpus])
    uploads = tmp_path / "uploads"
    UploadStore(uploads).add(retriever, [upload_file(tmp_path / "in", "ocean.md")])
    (uploads / "ocean.md").unlink()  # what a crash in the old copy-after-indexing order left

    report = UploadStore(uploads).reconcile(retriever)
    assert report.restored == ["ocean.md"]
    assert (uploads / "ocean.md").read_text(encoding="utf-8") == NEW_DOC
    assert doc_chunks(rebuilt(make_retriever, tmp_path, [small_corpus], uploads)) == doc_chunks(retriever)


def test_reconcile_moves_an_unreadable_stored_file_aside(make_retriever, small_corpus, tmp_path):
    retriever = make_retriever([small_corpus])
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "ocean.md").write_text(NEW_DOC, encoding="utf-8")
    (uploads / "broken.txt").write_bytes(bytes(range(256)) * 8)
    report = UploadStore(uploads).reconcile(retriever)
    assert report.indexed == ["ocean.md"]
    assert len(report.rejected) == 1 and report.rejected[0].startswith("broken.txt")
    assert (uploads / ".rejected" / "broken.txt").exists() and not (uploads / "broken.txt").exists()


def test_failed_indexing_removes_the_stored_file(small_retriever, tmp_path):
    uploads = tmp_path / "uploads"
    bad = tmp_path / "in" / "broken.txt"
    bad.parent.mkdir()
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(RagError, match="broken.txt"):
        UploadStore(uploads).add(small_retriever, [upload_file(tmp_path / "in", "ocean.md"), bad])
    assert list(uploads.iterdir()) == []
    assert "ocean.md" not in small_retriever.documents


# ------------------------------------------------------------------ kill -9


KILL_DURING_ADD = """
import os, signal, sys
from pathlib import Path
from rag.retriever import Retriever
from rag.uploads import UploadStore

index, uploads, upload = map(Path, sys.argv[1:4])
retriever = Retriever.load(index)
retriever.add = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # dies before the swap
UploadStore(uploads).add(retriever, [(upload, "ocean.md")])
print("not killed")
"""


@pytest.mark.slow
def test_kill_9_between_storing_and_indexing_is_repaired_by_rag_serve(seeds_index, tmp_path):
    from gradio_client import Client

    from rag.retriever import Retriever

    index = tmp_path / "index"
    shutil.copytree(seeds_index, index)
    uploads = tmp_path / "index-uploads"
    upload, _ = upload_file(tmp_path / "in", "ocean.md")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}

    child = subprocess.run([sys.executable, "-c", KILL_DURING_ADD, str(index), str(uploads), str(upload)],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert [p.name for p in uploads.iterdir()] == ["ocean.md"]  # stored before indexing ...
    assert "ocean.md" not in Retriever.load(index).documents   # ... and the index never got it

    log = tmp_path / "serve.log"
    with rag_serve(["--index", str(index), "--docs", str(SEEDS)], log, env=server_env(PYTHONPATH=str(ROOT))) as base:
        answer = Client(base + "/", verbose=False).predict("南海观测站哪一年建成？", api_name="/ask")
    assert "uploads: indexed upload missing from the index: ocean.md" in log.read_text(errors="replace")
    assert answer["citations"] and answer["citations"][0]["doc"] == "ocean.md"

    live = doc_chunks(Retriever.load(index))
    rebuild = Retriever.build([SEEDS, uploads], tmp_path / "rebuilt", show_progress=False)
    assert doc_chunks(rebuild) == live and "ocean.md" in live
