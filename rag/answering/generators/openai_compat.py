"""Any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp server, hosted APIs).

Plain HTTP with streaming server-sent events (``"stream": true``). Settings, or
else environment variables:

* ``base_url``: RAG_OPENAI_BASE_URL, OPENAI_BASE_URL (default http://127.0.0.1:11434/v1, Ollama)
* ``model``: RAG_OPENAI_MODEL (default qwen2.5:0.5b-instruct)
* ``api_key``: RAG_OPENAI_API_KEY, OPENAI_API_KEY (optional for local servers);
  ``api_key=""`` sends no key and never reads the environment (a server calling an
  endpoint its user named must not send its own key there: see
  ``rag.answering.endpoints``)
"""
from __future__ import annotations

import json
from typing import Iterator

from rag.config import env as _env
from rag.errors import GeneratorError

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"
DEFAULT_MODEL = "qwen2.5:0.5b-instruct"


class OpenAICompatGenerator:
    """Streams chat completions from an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None, max_tokens: int = 512, temperature: float = 0.0,
                 timeout: float = 120.0, connect_timeout: float = 5.0, **_ignored) -> None:
        self.base_url = (base_url or _env("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL")
                         or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or _env("RAG_OPENAI_MODEL") or DEFAULT_MODEL
        self.api_key = _env("RAG_OPENAI_API_KEY", "OPENAI_API_KEY") if api_key is None else api_key
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Yield the reply's text pieces as the server streams them."""
        import httpx

        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": messages, "stream": True,
                "temperature": self.temperature, "max_tokens": self.max_tokens}
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        try:
            # no redirects: the key and the passages go to this URL and nowhere else
            with httpx.stream("POST", self.url, json=body, headers=headers, timeout=timeout,
                              follow_redirects=False) as response:
                if response.status_code >= 400:
                    detail = response.read().decode("utf-8", "replace")[:300]
                    raise GeneratorError(
                        f"the chat endpoint {self.url} answered HTTP {response.status_code}: {detail}")
                yield from self._events(response.iter_lines())
        except httpx.TimeoutException as exc:
            raise GeneratorError(f"the chat endpoint {self.url} timed out ({exc.__class__.__name__})") from exc
        except httpx.HTTPError as exc:
            raise GeneratorError(f"cannot reach the chat endpoint {self.url}: {exc}") from exc

    def _events(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            line = line.strip()
            if not line or line.startswith(":") or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise GeneratorError(f"the chat endpoint {self.url} sent malformed data: {data[:100]!r}") from exc
            if "error" in event:
                raise GeneratorError(f"the chat endpoint {self.url} reported an error: {event['error']}")
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or (choice.get("message") or {}).get("content")
                if piece:
                    yield piece
