"""`rag serve` as a user starts it, used through the official `openai` Python client.

One process on one port serves the UI, the OpenAI-compatible API and the REST
API; these tests start it on the session's seeds index with an API key and a
free loopback port. (The refusal to listen beyond loopback without credentials
is tested in test_ui_app.py.)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
openai = pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[1]
KEY = "process-test-key-0123456789"
# From eval/qa.jsonl (q033): the answer is in seeds/004 ("149万通").
QUESTION = "2024年12351热线全年接了多少个职工群众来电？"
EXPECTED = "149万"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", "serve", *args]


def server_env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("RAG_API_KEY", "RAG_UI_AUTH"):
        env.pop(name, None)
    return env


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (401: the key is required)
        except OSError:
            time.sleep(1)
    pytest.fail(f"rag serve did not answer at {url} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def server(seeds_index, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve-api") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(serve_command("--index", f"seeds={seeds_index}", "--host", "127.0.0.1",
                                              "--port", str(port), "--api-key", KEY),
                                stdout=out, stderr=subprocess.STDOUT, env=server_env(), cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/v1/models", proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


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
