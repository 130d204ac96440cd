"""The ``openai`` generator against a real OpenAI-compatible server.

llama.cpp's own HTTP server (shipped in the ``llm`` extra's xllamacpp) serves
the offline Qwen GGUF on 127.0.0.1; the assistant asks it a real question about
the seeds through plain HTTP, exactly as it would ask Ollama or vLLM.
"""
from __future__ import annotations

import urllib.request

import pytest
from serving import free_port

from rag.answering.assistant import Assistant

pytestmark = [pytest.mark.llm, pytest.mark.slow]


@pytest.fixture(scope="module")
def llama_http_server():
    xllamacpp = pytest.importorskip("xllamacpp", reason="llm extra not installed (pip install -e '.[llm]')")
    from rag.answering.local_model import ensure_local_gguf

    params = xllamacpp.CommonParams()
    params.model.path = str(ensure_local_gguf())
    params.n_ctx = 4096
    params.port = free_port()
    params.hostnames = ["127.0.0.1"]
    params.verbosity = 0
    server = xllamacpp.Server(params)  # listens until garbage-collected
    base_url = f"http://127.0.0.1:{params.port}/v1"
    with urllib.request.urlopen(f"{base_url}/models", timeout=30) as response:
        assert response.status == 200
    yield base_url
    del server


def test_openai_generator_answers_a_seeds_question_with_a_checked_citation(llama_http_server, seeds_retriever):
    assistant = Assistant(seeds_retriever, generator="openai", base_url=llama_http_server, model="qwen")
    answer = assistant.ask("江西组建了多少支劳模工匠宣讲团？")

    assert answer.generator == "openai", answer.notices
    assert not answer.abstained
    assert "193" in answer.text and "[1]" in answer.text
    cited = {c.doc for c in answer.citations}
    assert cited == {"002_5b471ee912e3ac09.txt"}
    source = seeds_retriever.source_text("002_5b471ee912e3ac09.txt")
    quote = answer.citations[0]
    assert "193" in source[quote.start:quote.end]
