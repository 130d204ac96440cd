"""The chat app's backend, its named API endpoints (via gradio_client) and `rag serve`.

Runs on the small corpus with the fake embedder and the real Assistant, so it is
fast; the browser test (test_ui_browser.py) covers the real seeds index.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serving import SlowGenerator, free_port, stop

from rag.errors import RagError
from rag.types import Answer

pytest.importorskip("gradio")
from ui.app import ChatBackend, build_app, launch  # noqa: E402

QUESTION = "12351热线是什么时候建成的？"
NEW_DOC = """# 海洋观测站

## 建站

南海观测站于2019年5月建成，共布设浮标四十二个，用于监测海水温度。
"""


@pytest.fixture
def slow_generator():
    gen = SlowGenerator()
    yield gen
    gen.release.set()


def generator_factory_with(slow):
    from rag.answering.generators import make_generator

    def factory(name, **settings):
        return slow if name == "local" else make_generator(name, **settings)

    return factory


# ------------------------------------------------------------------ backend


def test_backend_streams_text_then_a_cited_answer(small_retriever):
    backend = ChatBackend(small_retriever)
    items = list(backend.stream(QUESTION, [], "extractive", "hybrid", 3))
    assert isinstance(items[-1], Answer)
    assert any(isinstance(i, str) and i for i in items[:-1])
    answer = items[-1]
    assert not answer.abstained and "[1]" in answer.text
    assert answer.citations[0].doc == "hotline.md"


def test_backend_reuses_one_generator_for_all_modes_and_k(small_retriever):
    made = []

    def factory(name, **settings):
        made.append(name)
        return None

    backend = ChatBackend(small_retriever, generator_factory=factory)
    a1 = backend.assistant("extractive", "hybrid", 3)
    a2 = backend.assistant("extractive", "bm25", 5)
    assert backend.assistant("extractive", "hybrid", 3) is a1 and a1 is not a2
    assert made == ["extractive"]


def test_refused_endpoint_gives_a_clear_error_and_takes_no_slot(small_retriever):
    backend = ChatBackend(small_retriever)
    with pytest.raises(RagError, match="configured endpoint"):
        list(backend.stream(QUESTION, [], "openai", "hybrid", 3, base_url="http://10.0.0.1:8000/v1"))
    gate = backend.gates.for_generator("openai")
    assert gate.running == 0 and gate.waiting == 0


@pytest.mark.parametrize("k", [0, -1, 51, 100000, 2.5, "5", None, True])
def test_k_outside_1_to_50_is_refused(small_retriever, k):
    backend = ChatBackend(small_retriever)
    with pytest.raises(RagError, match="k"):
        list(backend.stream(QUESTION, [], "extractive", "hybrid", k))


def test_generators_and_modes_are_limited_to_what_the_server_offers(small_retriever):
    backend = ChatBackend(small_retriever, generators=["extractive", "openai"])
    with pytest.raises(RagError, match="transformers"):
        backend.assistant("transformers", "hybrid", 3)
    with pytest.raises(RagError, match="mode"):
        backend.assistant("extractive", "keyword-ish", 3)
    assert backend.assistant("extractive", "bm25", 50) is not None


def test_assistant_and_generator_caches_are_bounded(small_retriever):
    import gc
    import weakref

    from rag import Assistant

    class Gen:
        name = "fake-llm"

        def stream(self, messages):
            yield "x"

    made_assistants, made_generators = [], []

    def assistant_factory(*args, **kwargs):
        made_assistants.append(weakref.ref(assistant := Assistant(*args, **kwargs)))
        return assistant

    def generator_factory(name, **settings):
        made_generators.append(weakref.ref(gen := Gen()))
        return gen

    from rag.answering.endpoints import EndpointPolicy

    backend = ChatBackend(small_retriever, assistant_factory=assistant_factory, generator_factory=generator_factory,
                          endpoint_policy=EndpointPolicy.from_operator(allow_user_endpoints=True))
    for mode in ("hybrid", "dense", "bm25"):
        for k in range(1, 51):
            backend.assistant("extractive", mode, k)
    for port in range(60):
        backend.assistant("openai", "hybrid", 5, base_url=f"http://127.0.0.1:{9000 + port}/v1")
    gc.collect()
    assert len(made_assistants) == 210 and len(made_generators) == 61
    assert sum(ref() is not None for ref in made_assistants) <= ChatBackend.MAX_ASSISTANTS
    # a generator lives while cached or while a cached Assistant uses it
    alive_generators = sum(ref() is not None for ref in made_generators)
    assert alive_generators <= ChatBackend.MAX_GENERATORS + ChatBackend.MAX_ASSISTANTS
    first = backend.assistant("extractive", "bm25", 50)  # recently used: still cached
    assert backend.assistant("extractive", "bm25", 50) is first


def test_uploaded_document_is_indexed_answerable_and_kept(small_retriever, tmp_path):
    uploads = tmp_path / "uploads"
    backend = ChatBackend(small_retriever, uploads_dir=uploads)
    upload = tmp_path / "gradio-tmp" / "ocean.md"
    upload.parent.mkdir()
    upload.write_text(NEW_DOC, encoding="utf-8")
    before = len(small_retriever)
    result = backend.add_documents([upload])
    assert [s.name for s in result.stored] == ["ocean.md"] and result.summary.added == ["ocean.md"]
    assert len(small_retriever) > before
    assert (uploads / "ocean.md").read_text(encoding="utf-8") == NEW_DOC
    answer = list(backend.stream("南海观测站哪一年建成？", [], "extractive", "hybrid", 3))[-1]
    assert answer.citations and answer.citations[0].doc == "ocean.md"


def test_file_of_the_wrong_type_is_refused_before_touching_the_index(small_retriever, tmp_path):
    backend = ChatBackend(small_retriever, uploads_dir=tmp_path / "uploads")
    before = len(small_retriever)
    for name, data in (("setup.exe", b"MZ\x90\x00"), ("report.pdf", b"%PDF-1.4")):  # unknown; corrupt
        bad = tmp_path / name
        bad.write_bytes(data)
        with pytest.raises(RagError, match=name):
            backend.add_documents([bad])
    assert len(small_retriever) == before
    assert not (tmp_path / "uploads").exists() or list((tmp_path / "uploads").iterdir()) == []


def test_unreadable_file_leaves_index_and_uploads_untouched(small_retriever, tmp_path):
    backend = ChatBackend(small_retriever, uploads_dir=tmp_path / "uploads")
    bad = tmp_path / "broken.txt"
    bad.write_bytes(bytes(range(256)) * 8)  # not text in any encoding
    before = [c.id for c in small_retriever.chunks]
    with pytest.raises(RagError):
        backend.add_documents([bad])
    assert [c.id for c in small_retriever.chunks] == before
    assert not (tmp_path / "uploads" / "broken.txt").exists()


def test_mixed_upload_adds_nothing_and_names_the_bad_file(small_retriever, tmp_path):
    uploads = tmp_path / "uploads"
    backend = ChatBackend(small_retriever, uploads_dir=uploads)
    tmp = tmp_path / "gradio-tmp"
    tmp.mkdir()
    good, bad = tmp / "ocean.md", tmp / "broken.txt"
    good.write_text(NEW_DOC, encoding="utf-8")
    bad.write_bytes(bytes(range(256)) * 8)
    before = [c.id for c in small_retriever.chunks]
    with pytest.raises(RagError, match="broken.txt") as err:
        backend.add_documents([good, bad])
    assert str(tmp) not in str(err.value)  # no temp paths shown to users
    assert [c.id for c in small_retriever.chunks] == before  # "a bad file leaves the index unchanged"
    assert not uploads.exists() or not list(uploads.iterdir())
    assert str(uploads) not in str(err.value)  # nor the server's folders


# ------------------------------------------------------------------ served app


@pytest.fixture
def served(small_retriever, slow_generator, tmp_path):
    """The app on a free port, with a controllable slow 'local' generator."""
    app = build_app(small_retriever, k=3, uploads_dir=tmp_path / "uploads",
                    generator_factory=generator_factory_with(slow_generator),
                    local_available=True)
    port = free_port()
    launch(app, port=port, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_ask_endpoint_answers_with_citations_for_gradio_client(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    result = client.predict(QUESTION, api_name="/ask")
    assert result["done"] is True and not result["abstained"]
    assert "[1]" in result["text"]
    first = result["citations"][0]
    assert first["doc"] == "hotline.md" and first["heading_path"] == ["职工服务热线", "热线建设"]
    assert "12351" in first["quote"]


def test_ask_endpoint_reports_an_empty_question_as_an_error(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    with pytest.raises(Exception, match="empty"):
        client.predict("   ", api_name="/ask")


def test_ask_endpoint_bounds_k(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    for k in (100000, 0):
        with pytest.raises(Exception, match="1 to 50"):
            client.predict(QUESTION, "extractive", "hybrid", k, api_name="/ask")
    result = client.predict(QUESTION, "extractive", "hybrid", 50, api_name="/ask")
    assert result["done"] and len(result["hits"]) <= 50


def test_slow_llm_answer_does_not_block_extractive_answers(served, slow_generator):
    from gradio_client import Client

    client = Client(served, verbose=False)
    llm_job = client.submit(QUESTION, "local", api_name="/ask")
    assert slow_generator.started.wait(60), "the LLM request never started"
    # While the LLM answer is stuck, another user's extractive answer comes back.
    result = client.predict(QUESTION, "extractive", api_name="/ask")
    assert result["done"] and result["citations"]
    assert not llm_job.done()
    slow_generator.release.set()
    llm = llm_job.result(timeout=60)
    assert llm["generator"] == "slow-llm" and "[1]" in llm["text"]


def test_chat_window_renders_messages_as_html_not_markdown(small_retriever, served):
    """Markdown would turn ![p](url) in a question or a passage into an image the browser fetches."""
    import gradio as gr
    from gradio_client import Client

    app = build_app(small_retriever, local_available=False)
    chat = next(b for b in app.blocks.values() if isinstance(b, gr.Chatbot))
    assert chat.render_markdown is False and chat.latex_delimiters == []

    question = "![p](http://127.0.0.1:9/x.png) 12351热线是什么时候建成的？"
    history = Client(served, verbose=False).predict(question, [], "extractive", "hybrid", 3, "", "", "",
                                                    api_name="/chat")[0]
    user = history[0]["content"]
    user = user if isinstance(user, str) else "".join(part.get("text", "") for part in user)
    assert "![p](http://127.0.0.1:9/x.png)" in user and "<img" not in user


def test_add_documents_endpoint_indexes_an_upload(served, small_retriever, tmp_path):
    from gradio_client import Client, handle_file

    doc = tmp_path / "ocean.md"
    doc.write_text(NEW_DOC, encoding="utf-8")
    client = Client(served, verbose=False)
    message, files = client.predict([handle_file(str(doc))], api_name="/add_documents")
    assert "ocean.md" in message and "status-ok" in message and files is None
    assert "ocean.md" in small_retriever.documents
    assert (tmp_path / "uploads" / "ocean.md").exists()


# ------------------------------------------------------------------ rag serve


def test_a_documents_refresh_keeps_the_users_pick_unless_its_document_is_gone():
    # The page's load refreshes the documents tab; when that lands after the user picked a
    # document, clearing the pick made the next Re-index press act on nothing (a CI failure).
    from ui.app import _document_choices

    kept = _document_choices(["a.md", "b.md"], "b.md")
    assert kept["choices"] == ["a.md", "b.md"] and "value" not in kept
    assert "value" not in _document_choices(["a.md"], None)  # nothing picked yet: the pick may still come
    gone = _document_choices(["a.md"], "b.md")
    assert gone["choices"] == ["a.md"] and gone["value"] is None


def test_port_in_use_is_reported_with_the_port_and_a_way_out():
    from rag.commands.serve import PortInUseError, check_port_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .*already in use.*--port {port + 1}"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once the other program is gone


def test_rag_serve_on_a_busy_port_fails_fast_with_a_message(capsys, tmp_path):
    from rag.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--index", str(tmp_path / "index"), "--port", str(port)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"port {port}" in err and "--port" in err
    assert not (tmp_path / "index").exists()  # nothing was built


def test_uploads_live_next_to_the_index_not_inside_it():
    from rag.commands.serve import uploads_dir_for

    assert uploads_dir_for(Path(".rag/index")) == Path(".rag/index-uploads")


def test_serve_bounds_the_kernel_cache_unless_the_user_chose_one(monkeypatch):
    from rag.memory import limit_memory_growth

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    limit_memory_growth()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "8"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    limit_memory_growth()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"


_FREED_BLOCKS_SCRIPT = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
from rag.memory import release_freed_memory
if sys.argv[1] == "serve":
    from rag.memory import limit_memory_growth
    limit_memory_growth()
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096
p = libc.malloc(4 << 20); ctypes.memset(p, 1, 4 << 20); libc.free(p)  # raises glibc's mmap threshold
blocks = []
for _ in range(200):  # activation-sized blocks, now in the heap
    q = libc.malloc(512 << 10); ctypes.memset(q, 1, 512 << 10); blocks.append(q)
before = rss()
for q in blocks[::2]:  # every other one freed, the rest still in use between them
    libc.free(q)
release_freed_memory()
print((before - rss()) >> 20)
"""


def test_serve_gives_memory_a_question_freed_back_to_the_system():
    """100 of 200 blocks of 512 KB freed while the others between them are still in use: glibc keeps
    the freed ones resident in its heap (its mmap threshold grew to the 4 MB block freed first);
    a server (``limit_memory_growth``) hands them back with ``release_freed_memory``."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    returned_mb = {mode: int(subprocess.run([sys.executable, "-c", _FREED_BLOCKS_SCRIPT, mode], env=env, check=True,
                                            capture_output=True, text=True).stdout) for mode in ("library", "serve")}
    assert returned_mb["library"] <= 5, returned_mb  # not a server: nothing trimmed
    assert returned_mb["serve"] >= 45, returned_mb  # 100 × 512 KB


def test_a_served_question_is_followed_by_giving_freed_memory_back(small_retriever, monkeypatch):
    from rag import memory

    trims = []
    monkeypatch.setattr(memory, "_enabled", True)
    monkeypatch.setattr(memory, "_trim", lambda pad: trims.append(pad) or 1)
    monkeypatch.setattr(memory, "_last", 0.0)
    items = list(ChatBackend(small_retriever).stream(QUESTION, [], "extractive", "hybrid", 3))
    assert isinstance(items[-1], Answer) and trims == [0]
    list(ChatBackend(small_retriever).stream(QUESTION, [], "extractive", "hybrid", 3))
    assert trims == [0]  # at most once per MIN_INTERVAL_S


def test_serve_rebuilds_an_index_of_an_older_format_but_not_a_corrupt_one(make_retriever, small_corpus,
                                                                          fake_embedder, tmp_path, capsys):
    import json

    from rag.commands.serve import open_index
    from rag.errors import CorruptIndexError

    index_dir = tmp_path / "index"
    make_retriever([small_corpus], index_dir)
    settings = {"embedder": fake_embedder, "cache": tmp_path / "cache.sqlite3", "show_progress": False}
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    current = manifest["format_version"]
    manifest["format_version"] = current - 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    retriever = open_index(index_dir, [small_corpus], **settings)
    assert len(retriever) > 0
    assert json.loads(manifest_path.read_text(encoding="utf-8"))["format_version"] == current
    assert "rebuilding it from" in capsys.readouterr().err

    dense = index_dir / "dense.faiss"
    dense.write_bytes(dense.read_bytes()[: dense.stat().st_size // 2])
    with pytest.raises(CorruptIndexError):
        open_index(index_dir, [small_corpus], **settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_rag_serve_beyond_loopback_without_credentials_is_refused(host, tmp_path):
    """A real `rag serve --host <not loopback>` stops with the ways out, before loading anything."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--index", f"none={tmp_path / 'missing'}",
         "--host", host, "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
        env={k: v for k, v in os.environ.items() if k not in ("RAG_API_KEY", "RAG_UI_AUTH")})
    assert done.returncode == 1
    assert "refusing to listen" in done.stderr
    assert "--api-key" in done.stderr and "--auth" in done.stderr and "--insecure-no-auth" in done.stderr
    assert not (tmp_path / "missing").exists()  # refused before building anything


def test_rag_serve_with_insecure_no_auth_starts_and_warns(small_retriever, tmp_path):
    """`--insecure-no-auth` is the explicit way to listen beyond loopback unprotected; it warns."""
    import subprocess
    import sys
    import time

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--index", str(small_retriever.index_dir),
             "--host", "0.0.0.0", "--port", str(port), "--insecure-no-auth"],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while "chat UI:" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    assert "WARNING: --insecure-no-auth" in text
    assert text.index("WARNING") < text.index("chat UI:")
