"""The HTTP API (rag.server): OpenAI-compatible /v1 and REST /api, in-process over ASGI.

Runs on the small corpus with the fake embedder and the real Assistant, so it is
fast. The real `rag serve` process with the official `openai` client is in
test_server_process.py; the schemathesis run in test_server_schemathesis.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving import SlowGenerator

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rag.server.api import ServeSettings, create_app  # noqa: E402
from rag.server.auth import AccessPolicy  # noqa: E402
from rag.server.backend import ChatBackend  # noqa: E402
from rag.server.concurrency import Gates  # noqa: E402
from rag.server.knowledge_bases import KnowledgeBase, KnowledgeBases  # noqa: E402

QUESTION = "12351热线是什么时候建成的？"
KEY = "test-api-key-0123456789"


def make_client(retriever, tmp_path, *, policy=None, gates=None, settings=None, generator_factory=None,
                max_upload_bytes=10_000_000):
    gates = gates or Gates()
    settings = settings or ServeSettings()

    def backend(r, uploads):
        return ChatBackend(r, gates=gates, uploads_dir=uploads, generators=settings.generators,
                           max_upload_bytes=max_upload_bytes,
                           **({"generator_factory": generator_factory} if generator_factory else {}))

    base = KnowledgeBase("small", retriever, uploads_dir=tmp_path / "uploads", backend_factory=backend)
    return TestClient(create_app(KnowledgeBases([base]), policy=policy, settings=settings))


@pytest.fixture
def client(small_retriever, tmp_path):
    return make_client(small_retriever, tmp_path)


def sse_events(text: str) -> list:
    """The data of each server-sent event ("[DONE]" as a string, the rest parsed)."""
    events = []
    for block in text.split("\n\n"):
        data = [line[len("data: "):] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            payload = "\n".join(data)
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# ------------------------------------------------------------------ /v1


def test_models_lists_each_knowledge_base_and_its_generators(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["small", "small:extractive"]
    assert client.get("/v1/models/small").json()["id"] == "small"
    assert client.get("/v1/models/other").status_code == 404


def test_chat_completion_carries_markers_and_the_citation_list(client, small_retriever):
    response = client.post("/v1/chat/completions", json={
        "model": "small", "messages": [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": QUESTION}]})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "small"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "[1]" in choice["message"]["content"] and "2023年12月29日" in choice["message"]["content"]
    rag = body["rag"]
    assert rag["knowledge_base"] == "small" and rag["abstained"] is False
    citation = rag["citations"][0]
    assert set(citation) == {"n", "chunk_id", "doc", "heading_path", "page", "quote", "start", "end"}
    assert citation["n"] == 1 and citation["doc"] == "hotline.md" and citation["page"] is None
    assert citation["heading_path"] == ["职工服务热线", "热线建设"]
    source = small_retriever.source_text("hotline.md")
    assert source[citation["start"]:citation["end"]] == citation["quote"]


def test_streaming_sends_openai_chunks_then_citations_then_done(client):
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "small:extractive", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": QUESTION}]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode("utf-8"))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "[1]" in text
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(final) == 1 and final[0]["choices"][0]["finish_reason"] == "stop"
    assert final[0]["rag"]["citations"][0]["doc"] == "hotline.md"
    assert chunks[-1]["choices"] == [] and "usage" in chunks[-1]  # include_usage: one last chunk


def test_follow_ups_are_resolved_against_the_messages(client):
    first = client.post("/v1/chat/completions", json={
        "model": "small", "messages": [{"role": "user", "content": "京沪高速铁路全长多少公里？"}]}).json()
    answer = first["choices"][0]["message"]["content"]
    assert "1318" in answer
    follow = client.post("/v1/chat/completions", json={"model": "small", "messages": [
        {"role": "user", "content": "京沪高速铁路全长多少公里？"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": [{"type": "text", "text": "那它设计时速是多少？"}]}]}).json()
    assert "京沪高速铁路" in follow["rag"]["search_query"]
    assert "350" in follow["choices"][0]["message"]["content"]


def test_an_abstention_is_a_normal_reply_with_the_flag(client):
    body = client.post("/v1/chat/completions", json={
        "model": "small", "messages": [{"role": "user", "content": "量子计算机的工作原理是什么？"}]}).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "没有找到" in body["choices"][0]["message"]["content"]
    assert body["rag"]["abstained"] is True and body["rag"]["citations"] == []


@pytest.mark.parametrize("payload, status, needle", [
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "small"),
    ({"model": "small:gpt-9", "messages": [{"role": "user", "content": "x"}]}, 400, "gpt-9"),
    ({"model": "small", "messages": []}, 400, "messages"),
    ({"model": "small", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "last message"),
    ({"model": "small", "messages": [{"role": "user", "content": "   "}]}, 400, "no text"),
    ({"model": "small", "messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
    ({"model": "small", "messages": [{"role": "user", "content": "长" * 200_001}]}, 400, "characters"),
])
def test_bad_chat_requests_get_openai_error_bodies(client, payload, status, needle):
    response = client.post("/v1/chat/completions", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"]
    if status == 404:
        assert error["code"] == "model_not_found"


def test_a_full_queue_is_a_429_with_retry_after(small_retriever, tmp_path):
    gates = Gates({"fast": 1})
    client = make_client(small_retriever, tmp_path, gates=gates, settings=ServeSettings(max_waiting=0))
    gate = gates.for_generator("extractive")
    assert gate.try_enter(timeout=0)  # another request holds the only slot
    try:
        response = client.post("/v1/chat/completions", json={
            "model": "small", "messages": [{"role": "user", "content": QUESTION}]})
        assert response.status_code == 429 and response.headers["retry-after"]
        assert response.json()["error"]["type"] == "rate_limit_error"
        rest = client.post("/api/knowledge-bases/small/ask", json={"question": QUESTION})
        assert rest.status_code == 429
    finally:
        gate.leave()
    ok = client.post("/v1/chat/completions", json={"model": "small",
                                                   "messages": [{"role": "user", "content": QUESTION}]})
    assert ok.status_code == 200


def test_a_language_model_streams_its_draft_as_reasoning_then_the_checked_answer(small_retriever, tmp_path):
    slow = SlowGenerator("2023年12月29日，全国总工会宣布：12351工会服务职工热线", "全面建成运行 [1]。")
    slow.release.set()
    client = make_client(small_retriever, tmp_path,
                         settings=ServeSettings(generators=("extractive", "local")),
                         generator_factory=lambda name, **kw: slow if name == "local" else None)
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "small:local", "stream": True,
            "messages": [{"role": "user", "content": QUESTION}]}) as response:
        events = sse_events(response.read().decode("utf-8"))
    deltas = [e["choices"][0]["delta"] for e in events[:-1] if e["choices"]]
    draft = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert "全面建成运行" in draft
    final = events[-2]
    assert final["rag"]["generator"] == "slow-llm"
    assert content.strip() and "[1]" in content and final["rag"]["citations"][0]["n"] == 1


# ------------------------------------------------------------------ access control


def test_with_credentials_every_api_call_needs_the_bearer_key(small_retriever, tmp_path):
    client = make_client(small_retriever, tmp_path, policy=AccessPolicy(api_keys=(KEY,)))
    for method, path in [("get", "/v1/models"), ("get", "/api/knowledge-bases"),
                         ("get", "/api/knowledge-bases/small/documents")]:
        assert getattr(client, method)(path).status_code == 401
        bad = getattr(client, method)(path, headers={"Authorization": "Bearer wrong-key-0123456"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        ok = getattr(client, method)(path, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
    denied = client.post("/v1/chat/completions", json={"model": "small",
                                                       "messages": [{"role": "user", "content": QUESTION}]})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/openapi.json").status_code == 200  # the schema itself is public


def test_a_ui_login_also_works_as_a_bearer_token(small_retriever, tmp_path):
    client = make_client(small_retriever, tmp_path, policy=AccessPolicy(logins=(("alice", "wonderland-42"),)))
    assert client.get("/v1/models", headers={"Authorization": "Bearer alice:wonderland-42"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer alice:wrong-password"}).status_code == 401


# ------------------------------------------------------------------ REST


def test_status_search_and_ask(client, small_retriever):
    [status] = client.get("/api/knowledge-bases").json()
    assert status["name"] == "small" and status["documents"] == 4 and status["chunks"] == len(small_retriever)
    assert status["model"] == "fake/char-bigram" and status["writing"] is False
    assert status["store"] == "local" and status["dimension"] == 64 and status["dense_index"] == "flat"
    assert status["sentence_views"] == len(small_retriever.store.views) > 0
    assert client.get("/api/knowledge-bases/small").json() == status
    assert client.get("/api/knowledge-bases/other").status_code == 404

    hits = client.post("/api/knowledge-bases/small/search", json={"query": "大熊猫吃什么", "k": 2,
                                                                  "mode": "bm25"}).json()["hits"]
    assert len(hits) <= 2 and hits[0]["doc"] == "panda.md" and hits[0]["page"] is None
    assert client.post("/api/knowledge-bases/small/search", json={"query": "x", "k": 0}).status_code == 422

    answer = client.post("/api/knowledge-bases/small/ask", json={"question": QUESTION}).json()
    assert "[1]" in answer["text"] and answer["citations"][0]["doc"] == "hotline.md"
    follow = client.post("/api/knowledge-bases/small/ask", json={
        "question": "那它设计时速是多少？",
        "history": [{"role": "user", "content": "京沪高速铁路全长多少公里？"},
                    {"role": "assistant", "content": "1318公里[1]"}]}).json()
    assert "350" in follow["text"]


def test_documents_list_add_reindex_delete(client, small_retriever, tmp_path):
    docs = {d["name"]: d for d in client.get("/api/knowledge-bases/small/documents").json()}
    assert set(docs) == {"hotline.md", "panda.md", "tea.txt", "rail.md"}
    assert docs["tea.txt"]["type"] == "txt" and docs["tea.txt"]["chunks"] >= 1
    assert docs["tea.txt"]["added"] and docs["tea.txt"]["uploaded"] is False and docs["tea.txt"]["pages"] is None

    text = "# 海洋观测站\n\n南海观测站于2019年5月建成，共布设浮标四十二个。\n".encode("utf-8")
    added = client.post("/api/knowledge-bases/small/documents",
                        files=[("files", ("ocean.md", text, "text/markdown"))])
    assert added.status_code == 200, added.text
    assert added.json()["added"] == ["ocean.md"] and added.json()["documents"] == 5
    assert (tmp_path / "uploads" / "ocean.md").read_bytes() == text
    hits = client.post("/api/knowledge-bases/small/search", json={"query": "南海观测站浮标"}).json()["hits"]
    assert hits[0]["doc"] == "ocean.md"
    listed = {d["name"]: d for d in client.get("/api/knowledge-bases/small/documents").json()}
    assert listed["ocean.md"]["uploaded"] is True

    assert client.post("/api/knowledge-bases/small/reindex/ocean.md").json()["replaced"] == ["ocean.md"]

    deleted = client.delete("/api/knowledge-bases/small/documents/ocean.md")
    assert deleted.status_code == 200 and deleted.json()["removed"] == ["ocean.md"]
    assert not (tmp_path / "uploads" / "ocean.md").exists()
    assert "ocean.md" not in small_retriever.documents
    assert client.delete("/api/knowledge-bases/small/documents/ocean.md").status_code == 404
    assert client.post("/api/knowledge-bases/small/reindex/nope.md").status_code == 404


def test_an_upload_named_like_a_document_gets_its_own_name(client, small_retriever, tmp_path):
    text = "龙井茶的另一篇介绍：狮峰龙井最为有名。\n".encode("utf-8")
    added = client.post("/api/knowledge-bases/small/documents",
                        files=[("files", ("../tea.txt", text, "text/plain"))]).json()
    assert added["added"] == ["tea (2).txt"]  # never replaces the indexed tea.txt
    assert {"tea.txt", "tea (2).txt"} <= set(small_retriever.documents)
    same = client.post("/api/knowledge-bases/small/documents",
                       files=[("files", ("again.txt", text, "text/plain"))]).json()
    assert same["added"] == [] and same["unchanged"] == ["again.txt (= tea (2).txt)"]


def test_bad_uploads_change_nothing(small_retriever, tmp_path):
    client = make_client(small_retriever, tmp_path, max_upload_bytes=1000)
    before = sorted(small_retriever.documents)
    wrong_type = client.post("/api/knowledge-bases/small/documents",
                             files=[("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream"))])
    assert wrong_type.status_code == 400 and "tool.exe" in wrong_type.json()["detail"]
    too_big = client.post("/api/knowledge-bases/small/documents",
                          files=[("files", ("big.txt", "长" * 2000, "text/plain"))])
    assert too_big.status_code == 413 and "big.txt" in too_big.json()["detail"]
    assert sorted(small_retriever.documents) == before
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_an_interrupted_deletion_is_undone_or_finished_on_start(client, small_retriever, tmp_path):
    from rag.server.knowledge_bases import KnowledgeBase

    text = "# 海洋观测站\n\n南海观测站于2019年5月建成。\n".encode("utf-8")
    client.post("/api/knowledge-bases/small/documents", files=[("files", ("ocean.md", text, "text/markdown"))])
    uploads = tmp_path / "uploads"
    base = KnowledgeBase("small", small_retriever, uploads_dir=uploads)
    # A crash after the file was moved aside but before the index changed: put back.
    (uploads / "ocean.md").rename(uploads / ".ocean.md.deleting")
    assert base.reconcile() == ["kept ocean.md: its deletion had not reached the index"]
    assert (uploads / "ocean.md").read_bytes() == text
    # A crash after the index changed but before the file was removed: finished.
    (uploads / "ocean.md").rename(uploads / ".ocean.md.deleting")
    small_retriever.delete_documents(["ocean.md"])
    assert base.reconcile() == ["finished deleting ocean.md"]
    assert not any(uploads.iterdir())


def test_unknown_paths_and_methods(client):
    assert client.get("/api/nothing-here").status_code == 404
    response = client.put("/api/knowledge-bases/small/documents")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    assert client.get("/v1/nothing").json()["error"]["message"]


# ------------------------------------------------------------------ several knowledge bases


def test_model_picks_the_knowledge_base(make_retriever, small_corpus, tmp_path):
    other = tmp_path / "other-docs"
    other.mkdir()
    (other / "river.md").write_text("# 长江\n\n长江全长约6300公里，是中国第一长河。\n", encoding="utf-8")
    gates = Gates()

    def backend(r, uploads):
        return ChatBackend(r, gates=gates, uploads_dir=uploads, generators=["extractive"])

    bases = KnowledgeBases([
        KnowledgeBase("small", make_retriever([small_corpus], index_dir=tmp_path / "small"), backend_factory=backend),
        KnowledgeBase("rivers", make_retriever([other], index_dir=tmp_path / "rivers"), backend_factory=backend)])
    client = TestClient(create_app(bases))
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [
        "small", "small:extractive", "rivers", "rivers:extractive"]

    def ask(model, question):
        return client.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": question}]}).json()

    river = ask("rivers", "长江全长多少公里？")
    assert "6300" in river["choices"][0]["message"]["content"]
    assert river["rag"]["knowledge_base"] == "rivers" and river["rag"]["citations"][0]["doc"] == "river.md"
    assert ask("small", "长江全长多少公里？")["rag"]["abstained"] is True  # not in that knowledge base
    assert [b["name"] for b in client.get("/api/knowledge-bases").json()] == ["small", "rivers"]
    assert [d["name"] for d in client.get("/api/knowledge-bases/rivers/documents").json()] == ["river.md"]


def test_index_specs_name_knowledge_bases(tmp_path):
    from rag.errors import RagError
    from rag.server.knowledge_bases import default_name, parse_index_specs

    assert parse_index_specs(["seeds=/data/a", "/data/news-index"]) == [
        ("seeds", Path("/data/a")), ("news-index", Path("/data/news-index"))]
    assert default_name(tmp_path / ".rag" / "index") == "index"
    folder = tmp_path / "kbs"
    for name in ("法规", "news"):
        (folder / name).mkdir(parents=True)
        (folder / name / "manifest.json").write_text("{}")
    (folder / "not-an-index").mkdir()
    assert [n for n, _ in parse_index_specs([], folder)] == ["news", "法规"]
    with pytest.raises(RagError, match="two knowledge bases"):
        parse_index_specs(["a=/x", "a=/y"])
    with pytest.raises(RagError, match="not allowed"):
        parse_index_specs(["bad:name=/x"])
    with pytest.raises(RagError, match="no index folders"):
        parse_index_specs([], folder / "not-an-index")
