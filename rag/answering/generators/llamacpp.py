"""A GGUF chat model run in-process by llama.cpp (through ``xllamacpp``).

``xllamacpp`` ships prebuilt CPU wheels (no compiler needed) and embeds the
llama.cpp server: requests are OpenAI chat-completion dicts, the GGUF's own
chat template is applied, and prompt prefixes are cached between requests
(a follow-up question over the same passages skips most of the prefill).
One loaded model is shared by every generator that asks for the same file
and settings, so the UI and the CLI in one process never load it twice.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from rag import config
from rag.errors import GeneratorError

__all__ = ["LlamaCppGenerator"]

_DONE = object()

#: Stop decoding when a small model starts a new turn or a new passage block
#: instead of ending its answer.
DEFAULT_STOP = ("<|im_end|>", "<|endoftext|>", "\n\n\n", "<passages>", "<question>", "问题：")


def _default_threads() -> int:
    # llama.cpp is fastest with one thread per physical core; more only contend.
    return max(1, min(8, os.cpu_count() or 1))


def _error_message(chunk: Any) -> str | None:
    """The error carried by a server reply chunk, if it is one."""
    if not isinstance(chunk, dict):
        return f"unexpected reply from llama.cpp: {chunk!r}"
    if isinstance(chunk.get("error"), dict):
        return str(chunk["error"].get("message") or chunk["error"])
    if chunk.get("error"):
        return str(chunk["error"])
    if "choices" not in chunk and ("code" in chunk or "message" in chunk):
        return str(chunk.get("message") or chunk)
    return None


class LlamaCppGenerator:
    """Chat with a local GGUF model through llama.cpp, streaming tokens.

    ``model_path`` defaults to the bundled offline model (assembled on first
    use, see ``rag.answering.local_model``). ``n_ctx`` must hold the prompt
    plus ``max_tokens``; ``n_threads`` defaults to the number of CPUs.
    ``temperature=0`` decodes greedily (reproducible answers).
    """

    name = "llamacpp"

    _servers: ClassVar[dict[tuple, Any]] = {}
    _servers_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: str | os.PathLike | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, max_tokens: int = 200, temperature: float = 0.0,
                 n_batch: int = 2048, n_ubatch: int = 512, seed: int = 0,
                 stop: Sequence[str] | None = DEFAULT_STOP, *,
                 model: str | os.PathLike | None = None, max_new_tokens: int | None = None,
                 threads: int | None = None, **_ignored: Any) -> None:
        # ``model``/``max_new_tokens``/``threads`` are the names other generators use.
        path = model_path or model or config.llm_model()
        if path is None:
            from rag.answering.local_model import ensure_local_gguf

            path = ensure_local_gguf()
        self.model_path = Path(path).expanduser().resolve()
        if not self.model_path.is_file():
            raise GeneratorError(f"model not found: {self.model_path}")
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads or threads or _default_threads())
        self.max_tokens = int(max_new_tokens or max_tokens)
        self.temperature = float(temperature)
        self.n_batch = int(n_batch)
        self.n_ubatch = int(n_ubatch)
        self.seed = int(seed)
        self.stop = list(stop or [])
        #: Token counts and speeds llama.cpp reported for the last reply
        #: (prompt_n: prompt tokens actually processed, cache_n: reused from the
        #: previous prompt, prompt_ms, predicted_n, predicted_per_second, ...).
        self.last_stats: dict[str, Any] = {}

    # loading -------------------------------------------------------------------
    @property
    def _key(self) -> tuple:
        return (str(self.model_path), self.n_ctx, self.n_threads, self.n_batch, self.n_ubatch)

    def load(self) -> Any:
        """Load the model (once per file and settings, shared across instances)."""
        server = self._servers.get(self._key)
        if server is not None:
            return server
        with self._servers_lock:
            server = self._servers.get(self._key)
            if server is None:
                server = self._servers[self._key] = self._start_server()
        return server

    def _start_server(self) -> Any:
        # llama.cpp's OpenMP threads spin while waiting by default; on a busy CPU
        # (other processes, or the UI's own threads) spinning threads starve each
        # other: measured on 2 shared cores, decoding fell from ~8 to ~0.5 tokens/s.
        # Sleeping waits cost little when the CPU is idle. Must be set before
        # libgomp loads; an explicit setting by the user wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import xllamacpp
        except ImportError as exc:
            raise GeneratorError(
                f"the llama.cpp backend is not installed ({exc}); pip install -e '.[llm]'") from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = self.n_ctx
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_ubatch
        params.n_parallel = 1  # one slot: its KV cache keeps the last prompt for reuse
        params.cache_prompt = True
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.verbosity = 0
        try:
            return xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp reports every load failure the same way
            raise GeneratorError(
                f"llama.cpp cannot load {self.model_path} (not a valid GGUF, or out of memory): {exc}"
            ) from exc

    @classmethod
    def unload_all(cls) -> None:
        """Drop every loaded model (frees memory once no stream still uses it)."""
        with cls._servers_lock:
            cls._servers.clear()

    # generation ----------------------------------------------------------------
    def _request(self, messages: list[dict]) -> dict:
        return {
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "cache_prompt": True,
            "stop": self.stop,
            "stream_options": {"include_usage": True},  # the last chunk carries timings
        }

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Yield the reply to ``messages`` piece by piece as llama.cpp decodes it.

        Closing the iterator early stops the decoding. Raises ``GeneratorError``
        when the model cannot be loaded or the request fails (e.g. the prompt
        does not fit ``n_ctx``).
        """
        server = self.load()
        request = self._request(messages)
        pieces: queue.Queue = queue.Queue()
        cancel = threading.Event()
        stats: dict[str, Any] = {}
        self.last_stats = stats

        def on_chunk(chunk: Any) -> bool:
            error = _error_message(chunk)
            if error is not None:
                pieces.put(GeneratorError(f"llama.cpp failed: {error}"))
                return True
            if isinstance(chunk.get("timings"), dict):
                stats.update(chunk["timings"])
            if isinstance(chunk.get("usage"), dict):
                stats["prompt_tokens"] = chunk["usage"].get("prompt_tokens")
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.put(text)
            return cancel.is_set()  # True asks the server to stop decoding

        def run() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # bad request (ValueError) or server failure
                pieces.put(GeneratorError(f"llama.cpp rejected the request: {exc}"))
            finally:
                pieces.put(_DONE)

        worker = threading.Thread(target=run, name="llamacpp-stream", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, GeneratorError):
                    raise item
                yield item
        finally:
            cancel.set()
            worker.join()
