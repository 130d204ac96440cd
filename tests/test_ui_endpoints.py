"""The server's OpenAI key goes to the server's own endpoint only (issue 10, item 1).

Real HTTP everywhere: the app is served on 127.0.0.1 and called with
gradio_client, and both the operator's endpoint and the address a user types
are real OpenAI-compatible servers (tests/openai_recorder.py) that record the
Authorization header of every request they get.
"""
from __future__ import annotations

import pytest

from openai_recorder import recording_endpoint
from serving import launched_apps, rag_serve, server_env

pytest.importorskip("gradio")

QUESTION = "12351热线是什么时候建成的？"
SERVER_KEY = "sk-server-secret-0123456789"
USER_KEY = "sk-user-typed-key"


@pytest.fixture
def endpoints():
    with recording_endpoint() as own, recording_endpoint() as typed:
        yield own, typed


@pytest.fixture
def serve_app(small_retriever, monkeypatch):
    """Serve build_app(small_retriever, **settings) on a free port; yields a gradio_client factory."""
    monkeypatch.setenv("RAG_OPENAI_API_KEY", SERVER_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with launched_apps(small_retriever) as start:
        yield start


def _chat(client, url: str, key: str = "") -> str:
    """One turn through the chat window's own event; returns the status line HTML."""
    result = client.predict(QUESTION, [], "openai", "hybrid", 3, url, "m", key, api_name="/chat")
    return result[2]


def test_server_key_reaches_only_the_configured_endpoint_and_typed_urls_are_refused(serve_app, endpoints):
    own, typed = endpoints
    client = serve_app(base_url=own.base_url, model="served-model")

    answer = client.predict(QUESTION, "openai", api_name="/ask")
    assert answer["generator"] == "openai" and "[1]" in answer["text"]
    assert own.authorizations == [f"Bearer {SERVER_KEY}"]
    assert own.requests[0].body["model"] == "served-model"

    with pytest.raises(Exception, match="allow-user-endpoints"):
        client.predict(QUESTION, "openai", "hybrid", 3, typed.base_url, api_name="/ask")
    status = _chat(client, typed.base_url)
    assert "status-error" in status and "allow-user-endpoints" in status
    status = _chat(client, typed.base_url, key=USER_KEY)
    assert "status-error" in status
    assert typed.requests == []  # the typed address never heard from the server

    _chat(client, own.base_url + "/")  # the server's own URL, as the settings show it
    assert own.authorizations[-1] == f"Bearer {SERVER_KEY}"
    assert own.requests[-1].body["model"] == "served-model"  # the user's "m" is not the server's choice


def test_allowed_user_endpoints_never_get_the_server_key(serve_app, endpoints):
    own, typed = endpoints
    client = serve_app(base_url=own.base_url, allow_user_endpoints=True)

    answer = client.predict(QUESTION, "openai", "hybrid", 3, typed.base_url, api_name="/ask")
    assert answer["generator"] == "openai" and "[1]" in answer["text"]
    client.predict(QUESTION, "openai", "hybrid", 3, typed.base_url, "m", USER_KEY, api_name="/ask")
    _chat(client, typed.base_url)
    _chat(client, typed.base_url, key=USER_KEY)
    assert typed.authorizations == [None, f"Bearer {USER_KEY}", None, f"Bearer {USER_KEY}"]
    assert not any(SERVER_KEY in str(r.headers) or SERVER_KEY in str(r.body) for r in typed.requests)
    assert own.requests == []

    client.predict(QUESTION, "openai", api_name="/ask")  # the server's own endpoint keeps its key
    assert own.authorizations == [f"Bearer {SERVER_KEY}"]


def test_user_endpoint_must_be_an_http_url_without_credentials(serve_app, endpoints):
    own, _ = endpoints
    client = serve_app(base_url=own.base_url, allow_user_endpoints=True)
    for url in ("file:///etc/passwd", "http://user:pw@127.0.0.1:1/v1", "127.0.0.1:8000"):
        with pytest.raises(Exception, match="URL"):
            client.predict(QUESTION, "openai", "hybrid", 3, url, api_name="/ask")
    assert own.requests == []


@pytest.mark.slow
def test_rag_serve_sends_its_environment_key_to_its_endpoint_only(seeds_index, tmp_path, endpoints):
    """`rag serve` as started by an operator: key in the environment, --allow-user-endpoints."""
    from gradio_client import Client

    own, typed = endpoints
    log = tmp_path / "serve.log"
    env = server_env(OPENAI_API_KEY=SERVER_KEY)
    env.pop("RAG_OPENAI_API_KEY", None)
    with rag_serve(["--index", str(seeds_index), "--base-url", own.base_url, "--allow-user-endpoints"], log,
                   env=env) as base:
        client = Client(base + "/", verbose=False)
        question = "2024年12351热线全年接了多少个职工群众来电？"
        typed_answer = client.predict(question, "openai", "hybrid", 5, typed.base_url, api_name="/ask")
        own_answer = client.predict(question, "openai", api_name="/ask")
    assert not typed_answer["abstained"] and not own_answer["abstained"], (typed_answer, own_answer)
    assert typed.authorizations == [None]
    assert own.authorizations == [f"Bearer {SERVER_KEY}"]
