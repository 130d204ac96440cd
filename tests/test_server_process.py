"""`rag serve` as a user starts it, used through the official `openai` Python client.

One process on one port serves the UI, the OpenAI-compatible API and the REST
API; these tests start it on the session's seeds index with an API key and a
free loopback port. (The refusal to listen beyond loopback without credentials
is tested in test_ui_app.py.)
"""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from serving import rag_serve

pytestmark = pytest.mark.slow
openai = pytest.importorskip("openai")

KEY = "process-test-key-0123456789"
# From eval/qa.jsonl (q033): the answer is in seeds/004 ("149万通").
QUESTION = "2024年12351热线全年接了多少个职工群众来电？"
EXPECTED = "149万"


@pytest.fixture(scope="module")
def server(seeds_index, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-api") / "serve.log"
    with rag_serve(["--index", f"seeds={seeds_index}", "--api-key", KEY], log, ready_path="/v1/models") as base:
        yield base


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=240)


def test_openai_client_lists_the_knowledge_base_as_a_model(client):
    ids = [m.id for m in client.models.list()]
    assert "seeds" in ids and "seeds:extractive" in ids


def test_openai_client_gets_a_cited_answer(client):
    completion = client.chat.completions.create(
        model="seeds", messages=[{"role": "user", "content": QUESTION}])
    text = completion.choices[0].message.content
    assert EXPECTED in text and "[1]" in text
    assert completion.choices[0].finish_reason == "stop"
    rag = completion.model_extra["rag"]
    assert rag["abstained"] is False and rag["knowledge_base"] == "seeds"
    first = rag["citations"][0]
    assert first["n"] == 1 and first["doc"].endswith(".txt") and first["heading_path"]
    assert EXPECTED in first["quote"] and first["end"] > first["start"]


def test_openai_client_streams_a_cited_answer(client):
    stream = client.chat.completions.create(
        model="seeds", stream=True, messages=[{"role": "user", "content": QUESTION}])
    text, finish, rag = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        rag = (chunk.model_extra or {}).get("rag") or rag
    assert EXPECTED in text and "[1]" in text and finish == "stop"
    assert rag is not None and rag["citations"][0]["n"] == 1 and EXPECTED in rag["citations"][0]["quote"]


def test_openai_client_follow_up_and_abstention(client):
    first = client.chat.completions.create(model="seeds", messages=[{"role": "user", "content": QUESTION}])
    follow = client.chat.completions.create(model="seeds", messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "那它是哪一年全面建成的？"}])
    assert "12351" in follow.model_extra["rag"]["search_query"]
    none = client.chat.completions.create(model="seeds",
                                          messages=[{"role": "user", "content": "量子计算机的工作原理是什么？"}])
    assert none.model_extra["rag"]["abstained"] is True
    assert none.choices[0].message.content  # a normal reply that says so


def test_without_the_key_the_api_refuses_and_the_ui_asks_for_a_login(server):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong-key-0123456789", max_retries=0).models.list()
    request = urllib.request.Request(f"{server}/api/knowledge-bases")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request, timeout=30)
    assert denied.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as login_first:  # Gradio's app config needs the login
        urllib.request.urlopen(f"{server}/config", timeout=30)
    assert login_first.value.code == 401


def test_one_port_serves_the_ui_the_schema_and_the_docs(server):
    for path, needle in [("/", "<html"), ("/openapi.json", '"/v1/chat/completions"'), ("/docs", "swagger")]:
        with urllib.request.urlopen(f"{server}{path}", timeout=30) as response:
            assert needle in response.read().decode("utf-8", errors="replace").lower()
