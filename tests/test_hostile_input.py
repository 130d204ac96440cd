"""Questions with characters that are not text (issue 10, item 6): an undecodable byte in a
command-line argument, a lone surrogate ("\\ud800") over HTTP. Real processes: ``rag
search``/``rag ask``/``rag serve`` with the tests' fake embedding model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serving import rag_serve, server_env

from test_index_safety import FAKE_RAG, ROOT, run_rag

#: ``rag search $'12351\xff热线'``: Python hands the program "12351\udcff热线".
QUERY_WITH_A_BAD_BYTE = b"12351\xff" + "热线".encode("utf-8")


@pytest.fixture
def fake_index(small_corpus, tmp_path) -> Path:
    index_dir = tmp_path / "index"
    built = run_rag("index", str(small_corpus), "--index", str(index_dir), "--quiet", cache_dir=tmp_path / "cache")
    assert built.returncode == 0, built.stderr
    return index_dir


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_rag_search_drops_an_undecodable_byte(fake_index, tmp_path, mode):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(FAKE_RAG), "search", QUERY_WITH_A_BAD_BYTE, "--index",
                             str(fake_index), "--mode", mode, "--json"], cwd=ROOT, env=env,
                            capture_output=True, timeout=120)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "Traceback" not in stderr, stderr
    assert "invalid characters" in stderr
    hits = json.loads(result.stdout)
    assert hits[0]["doc"] == "hotline.md" and "12351" in hits[0]["text"]


def test_rag_ask_drops_an_undecodable_byte(fake_index, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(tmp_path / "cache")}
    question = QUERY_WITH_A_BAD_BYTE + "什么时候建成？".encode("utf-8")
    result = subprocess.run([sys.executable, str(FAKE_RAG), "ask", question, "--index", str(fake_index)],
                            cwd=ROOT, env=env, capture_output=True, timeout=120)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "Traceback" not in stderr, stderr
    assert "2023年12月29日" in result.stdout.decode("utf-8")


@pytest.fixture
def served(fake_index, small_corpus, tmp_path):
    """`rag serve` (fake model, extractive answers) in its own process."""
    log = tmp_path / "serve.log"
    env = server_env(PYTHONPATH=str(ROOT), RAG_CACHE_DIR=str(tmp_path / "cache"))
    with rag_serve(["--index", str(fake_index), "--docs", str(small_corpus), "--generator", "extractive"], log,
                   env=env, program=(sys.executable, str(FAKE_RAG)), timeout=180) as base:
        yield base + "/", log


def _post_json(url: str, body: bytes):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _raw_json(payload) -> bytes:
    """JSON as an attacker writes it: "\\ud800" stays an escape (a lone surrogate once decoded),
    which an HTTP client library would refuse to encode."""
    body = json.dumps(payload).encode("ascii")
    assert b"\\ud800" in body
    return body


QUESTION = "12351\ud800热线什么时候建成？"


def test_a_lone_surrogate_over_the_rest_api_is_a_clean_client_error(served):
    """The REST API's JSON parser refuses the escape itself (422, not a crash), and the
    server goes on answering."""
    url, log = served
    with urllib.request.urlopen(f"{url}api/knowledge-bases", timeout=30) as response:
        kb = json.loads(response.read())[0]["name"]
    for path, payload in (("ask", {"question": QUESTION}), ("search", {"query": QUESTION})):
        with pytest.raises(urllib.error.HTTPError) as err:
            _post_json(f"{url}api/knowledge-bases/{kb}/{path}", _raw_json(payload))
        assert err.value.code == 422 and "unicode string" in err.value.read().decode("utf-8")
    answer = _post_json(f"{url}api/knowledge-bases/{kb}/ask",
                        json.dumps({"question": "12351热线什么时候建成？"}).encode("utf-8"))
    assert "2023年12月29日" in answer["text"]
    assert "Traceback" not in log.read_text(errors="replace")


def test_a_lone_surrogate_through_the_ui_ask_endpoint_is_dropped(served):
    url, log = served
    with urllib.request.urlopen(f"{url}gradio_api/info", timeout=30) as response:
        parameters = json.loads(response.read())["named_endpoints"]["/ask"]["parameters"]
    data = [QUESTION] + [p.get("parameter_default") for p in parameters[1:]]
    request = urllib.request.Request(f"{url}gradio_api/call/ask", data=_raw_json({"data": data}), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=120) as response:
        lines = response.read().decode("utf-8").splitlines()
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    final = json.loads([line.split(": ", 1)[1] for line in lines if line.startswith("data: ")][-1])
    assert events[-1] == "complete", final
    assert final[0]["done"] is True and "2023年12月29日" in final[0]["text"]
    assert "Traceback" not in log.read_text(errors="replace")
