"""LLM generators: the OpenAI-compatible client against a local fake server, a tiny local
transformers model, and the generator registry."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from serving import free_port

from rag.answering.assistant import Assistant
from rag.answering.generators import make_generator
from rag.answering.generators.base import Generator, collect
from rag.answering.generators.openai_compat import OpenAICompatGenerator
from rag.errors import GeneratorError
from test_answer_fakes import FakeRetriever


# --- a fake OpenAI-compatible server ------------------------------------------------

class FakeOpenAI:
    """Streams ``reply`` as SSE chat-completion chunks; records the requests."""

    def __init__(self, reply="", status=200, stream_error=None):
        self.reply = reply
        self.status = status
        self.stream_error = stream_error
        self.requests: list[dict] = []
        self.headers: list[dict] = []


@pytest.fixture
def fake_openai():
    state = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            state.requests.append(json.loads(self.rfile.read(length)))
            state.headers.append(dict(self.headers))
            if self.path != "/v1/chat/completions":
                self.send_response(404)
                self.end_headers()
                return
            if state.status != 200:
                body = json.dumps({"error": {"message": "model not loaded"}}).encode()
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [state.reply[i:i + 4] for i in range(0, len(state.reply), 4)]
            events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
            events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
            if state.stream_error:
                events.append({"error": {"message": state.stream_error}})
            for event in events:
                self.wfile.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b": keep-alive comment\n\ndata: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_openai_generator_streams_the_reply_pieces(fake_openai):
    fake_openai.reply = "全省各级工会组织开展各类劳动竞赛1.2万项[1]。"
    gen = OpenAICompatGenerator(base_url=fake_openai.base_url, model="m1", api_key="secret")
    pieces = list(gen.stream([{"role": "user", "content": "你好"}]))
    assert len(pieces) > 1 and "".join(pieces) == fake_openai.reply
    request = fake_openai.requests[0]
    assert request["stream"] is True and request["model"] == "m1"
    assert request["messages"] == [{"role": "user", "content": "你好"}]
    assert fake_openai.headers[0]["Authorization"] == "Bearer secret"


def test_openai_settings_come_from_the_environment(monkeypatch, fake_openai):
    monkeypatch.setenv("RAG_OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("RAG_OPENAI_MODEL", "env-model")
    monkeypatch.delenv("RAG_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_openai.reply = "好"
    gen = make_generator("openai")
    assert collect(gen, [{"role": "user", "content": "x"}]) == "好"
    assert fake_openai.requests[0]["model"] == "env-model"
    assert "Authorization" not in fake_openai.headers[0]


def test_openai_endpoint_down_is_a_clear_generator_error():
    gen = OpenAICompatGenerator(base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    with pytest.raises(GeneratorError, match="cannot reach the chat endpoint"):
        collect(gen, [{"role": "user", "content": "x"}])


def test_openai_http_error_names_the_status(fake_openai):
    fake_openai.status = 503
    gen = OpenAICompatGenerator(base_url=fake_openai.base_url)
    with pytest.raises(GeneratorError, match="HTTP 503.*model not loaded"):
        collect(gen, [{"role": "user", "content": "x"}])


def test_openai_error_event_mid_stream_is_a_generator_error(fake_openai):
    fake_openai.reply = "部分回答"
    fake_openai.stream_error = "out of memory"
    gen = OpenAICompatGenerator(base_url=fake_openai.base_url)
    with pytest.raises(GeneratorError, match="out of memory"):
        collect(gen, [{"role": "user", "content": "x"}])


def test_assistant_with_openai_generator_gives_checked_citations(fake_openai):
    fake_openai.reply = "全省各级工会组织开展各类劳动竞赛1.2万项[1]。"
    retriever = FakeRetriever()
    assistant = Assistant(retriever, generator="openai", base_url=fake_openai.base_url)
    items = list(assistant.stream("甘肃省工会开展了多少项劳动竞赛？"))
    answer = items[-1]
    assert "".join(items[:-1]) == fake_openai.reply
    assert answer.generator == "openai" and not answer.unsupported
    assert answer.citations[0].n == 1 and answer.citations[0].doc == "gansu.txt"
    # The passages and the question went to the model, passages wrapped as data.
    user = fake_openai.requests[0]["messages"][-1]["content"]
    assert "<passages>" in user and "甘肃省工会开展了多少项劳动竞赛" in user


def test_assistant_survives_a_dead_endpoint_with_the_extractive_answer():
    retriever = FakeRetriever()
    assistant = Assistant(retriever, generator="openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    answer = assistant.ask("甘肃省工会开展了多少项劳动竞赛？")
    assert "1.2万项" in answer.text and answer.citations
    assert answer.generator == "extractive"
    assert any("cannot reach" in n for n in answer.notices)


# --- registry ------------------------------------------------------------------------

def test_extractive_needs_no_generator_object():
    assert make_generator("extractive") is None


def test_unknown_generator_name_lists_the_choices():
    with pytest.raises(GeneratorError, match="extractive, transformers, openai"):
        make_generator("gpt-17")


def test_transformers_without_a_model_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    with pytest.raises(GeneratorError, match="needs a model"):
        make_generator("transformers")


def test_transformers_with_a_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(GeneratorError, match="model not found"):
        make_generator("transformers", model=str(tmp_path / "nope"))


def test_generators_follow_the_protocol(fake_openai):
    assert isinstance(OpenAICompatGenerator(base_url=fake_openai.base_url), Generator)


# --- a tiny local transformers model ---------------------------------------------------

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer LLaMA with a character-level tokenizer built offline."""
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llm")
    # Chinese characters only (ASCII maps to <unk>), so the streamer can flush every character.
    chars = sorted(set("甘肃省工会开展了多少项劳动竞赛全各级组织类万次资料中没有找到相关信息。，？！"))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # never predict <unk>/<s>/</s>, so the reply has max_new_tokens characters
        model.lm_head.weight[:3] = 0.0
        model.lm_head.weight[3:] *= 50.0
    model.save_pretrained(path)
    return path


def test_transformers_generator_streams_tokens_greedily(tiny_model_dir):
    gen = make_generator("transformers", model=str(tiny_model_dir), max_new_tokens=12)
    messages = [{"role": "system", "content": "资料"}, {"role": "user", "content": "甘肃开展了多少项竞赛？"}]
    pieces = list(gen.stream(messages))
    assert 1 < len(pieces) <= 12
    # Greedy decoding: the same prompt gives the same reply.
    assert "".join(gen.stream(messages)) == "".join(pieces)


def test_assistant_with_a_random_local_model_never_shows_unsourced_text(tiny_model_dir):
    # A random model writes gibberish: it must not be presented as a sourced answer.
    retriever = FakeRetriever()
    assistant = Assistant(retriever, generator="transformers", model=str(tiny_model_dir),
                          max_new_tokens=10)
    answer = assistant.ask("甘肃省工会开展了多少项劳动竞赛？")
    for citation in answer.citations:
        assert citation.quote in retriever.search(citation.quote, k=1)[0].text
    assert answer.generator in ("extractive", "transformers")
    if answer.generator == "extractive":
        assert "1.2万项" in answer.text


def test_a_broken_model_directory_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    gen = make_generator("transformers", model=str(tmp_path))
    with pytest.raises(GeneratorError, match="cannot load the model"):
        collect(gen, [{"role": "user", "content": "x"}])
