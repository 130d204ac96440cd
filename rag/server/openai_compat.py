"""The OpenAI chat-completions protocol over knowledge bases.

A request's ``model`` names a knowledge base, optionally with a generator:
``seeds`` (the server's default generator) or ``seeds:local``. Its ``messages``
carry the conversation: the last one is the question, the user and assistant
turns before it are the history that follow-ups (``那江西呢？``) are resolved
against. System prompts are ignored: the answer comes from the documents.

The reply is an ordinary chat completion whose content carries the ``[n]``
markers; the extra top-level field ``rag`` carries what a program needs to show
the sources (see ``rag_extra``): ``citations`` (n, doc, heading_path, page,
quote, start, end, chunk_id), ``abstained``, the passages retrieved, notices.

Streaming follows OpenAI's server-sent events exactly: a first chunk with the
role, content deltas, a last chunk with ``finish_reason`` (and ``rag``), an
optional usage chunk, then ``data: [DONE]``. Extractive answers stream as
content. A language model's raw draft streams as ``delta.reasoning_content``
(the "thinking" convention chat front ends show folded away), because only the
checked answer, with unsupported markers removed, may be shown as sourced; the
checked answer then follows as content. While a request waits for a busy
answerer, SSE comment lines (``: queued``) keep the connection alive.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.errors import RagError
from rag.types import Answer, Citation, Hit

#: Separates the knowledge base from the generator in a model name (``seeds:local``).
MODEL_SEPARATOR = ":"
#: The most messages one request may carry (a long chat is still far below this).
MAX_MESSAGES = 200
#: The most characters of text all messages of one request may carry together.
MAX_CONVERSATION_CHARS = 200_000
DONE = "data: [DONE]\n\n"


class ProtocolError(RagError, ValueError):
    """The request is well-formed JSON but not a question this API can answer (HTTP 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# ------------------------------------------------------------------ request


class ContentPart(BaseModel):
    """One part of a message's content; only ``text`` parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=64)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields this server reads. Sampling settings (temperature, max_tokens, …) are
    accepted and ignored: answers are extractive or from the generator's own settings."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200, examples=["seeds"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="only one choice is produced")


def split_model(model: str) -> tuple[str, str | None]:
    """``"seeds:local"`` -> ``("seeds", "local")``; ``"seeds"`` -> ``("seeds", None)``."""
    kb, _, generator = model.strip().partition(MODEL_SEPARATOR)
    return kb.strip(), (generator.strip() or None)


def message_text(content: str | list[ContentPart] | None) -> str:
    """The text of a message's content (text parts joined; images and the like skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content if part.type in ("text", "input_text"))


def conversation(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """``(question, history)`` from chat messages: the last message must be the user's."""
    if sum(len(message_text(m.content)) for m in messages) > MAX_CONVERSATION_CHARS:
        raise ProtocolError(f"the messages carry more than {MAX_CONVERSATION_CHARS} characters; "
                            "send the question with a shorter history", param="messages")
    last = messages[-1]
    if last.role != "user":
        raise ProtocolError(f"the last message must come from the user (it is a {last.role!r} message)",
                            param="messages")
    question = message_text(last.content).strip()
    if not question:
        raise ProtocolError("the last user message has no text: ask a question about the documents",
                            param="messages")
    history = [{"role": m.role, "content": message_text(m.content)} for m in messages[:-1]
               if m.role in ("user", "assistant") and message_text(m.content).strip()]
    return question, history


# ------------------------------------------------------------------ response


def citation_dict(citation: Citation) -> dict[str, Any]:
    """A citation for the wire: n, chunk_id, doc, heading_path, page, quote, start, end."""
    return {"n": citation.n, "chunk_id": citation.chunk_id, "doc": citation.doc,
            "heading_path": list(citation.heading_path), "page": getattr(citation, "page", None),
            "quote": citation.quote, "start": citation.start, "end": citation.end}


def hit_dict(hit: Hit) -> dict[str, Any]:
    """A retrieved passage for the wire (with its page where the document has pages)."""
    return {"chunk_id": hit.chunk_id, "doc": hit.doc, "heading_path": list(hit.heading_path),
            "page": getattr(hit, "page", None), "text": hit.text, "start": hit.start, "end": hit.end,
            "score": round(float(hit.score), 6)}


def answer_dict(answer: Answer) -> dict[str, Any]:
    """An ``Answer`` for the wire (``Answer.to_dict`` with pages and rounded scores)."""
    return {"question": answer.question, "text": answer.text,
            "citations": [citation_dict(c) for c in answer.citations], "abstained": answer.abstained,
            "hits": [hit_dict(h) for h in answer.hits], "generator": answer.generator,
            "search_query": answer.search_query, "unsupported": list(answer.unsupported),
            "notices": list(answer.notices), "timings": dict(answer.timings)}


def rag_extra(answer: Answer, knowledge_base: str) -> dict[str, Any]:
    """The ``rag`` field of a completion: everything about the answer except its text.

    ``hits`` are the passages the answer drew on; when ``abstained`` is true they
    are the passages that may be related.
    """
    extra = answer_dict(answer)
    extra.pop("text")
    extra.pop("question")
    return {"knowledge_base": knowledge_base, **extra}


def usage(answer: Answer) -> dict[str, int] | None:
    """Token counts, when the generator reported them (llama.cpp does); else None."""
    prompt = answer.timings.get("prompt_tokens")
    completion = answer.timings.get("generated_tokens")
    if prompt is None and completion is None:
        return None
    prompt_n, completion_n = int(prompt or 0), int(completion or 0)
    return {"prompt_tokens": prompt_n, "completion_tokens": completion_n,
            "total_tokens": prompt_n + completion_n}


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(answer: Answer, *, model: str, knowledge_base: str, id: str | None = None,
               created: int | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished answer."""
    return {
        "id": id or new_id(), "object": "chat.completion", "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text, "refusal": None},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage(answer),
        "rag": rag_extra(answer, knowledge_base),
    }


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def sse(data: dict[str, Any]) -> str:
    """One server-sent event carrying ``data`` as JSON."""
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def stream_events(pieces: Iterable[int | str | Answer], *, model: str, knowledge_base: str,
                  live_content: bool, include_usage: bool = False, id: str | None = None,
                  created: int | None = None) -> Iterator[str]:
    """Server-sent events for an answer as the backend produces it.

    ``pieces`` yields ints (requests ahead while queued), text pieces, then the
    ``Answer``. With ``live_content`` (extractive answers, whose streamed text is
    final) pieces go out as content; otherwise as ``reasoning_content``, and the
    checked ``Answer.text`` follows as content. A ``RagError`` raised while
    answering becomes an ``error`` event, as OpenAI sends it mid-stream.
    """
    id, created = id or new_id(), created or int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        return sse({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
                    **extra})

    yield chunk({"role": "assistant", "content": ""})
    streamed = ""
    answer: Answer | None = None
    try:
        for piece in pieces:
            if isinstance(piece, Answer):
                answer = piece
                break
            if isinstance(piece, int):
                yield f": queued, {piece} ahead\n\n"
            elif piece:
                streamed += piece
                yield chunk({"content": piece} if live_content else {"reasoning_content": piece})
    except RagError as exc:
        yield sse(error_body(str(exc), type="server_error" if not isinstance(exc, ProtocolError) else
                             "invalid_request_error"))
        yield DONE
        return
    if answer is None:
        yield sse(error_body("the answer ended before it was complete", type="server_error"))
        yield DONE
        return
    if not live_content:
        yield chunk({"content": answer.text})
    elif answer.text != streamed:  # should not happen for extractive answers; keep content final
        rest = answer.text[len(streamed):] if answer.text.startswith(streamed) else "\n\n" + answer.text
        yield chunk({"content": rest})
    yield chunk({}, "stop", rag=rag_extra(answer, knowledge_base))
    if include_usage:
        yield sse({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [], "usage": usage(answer)})
    yield DONE


def models_list(names: Iterable[str], created: int) -> dict[str, Any]:
    """``GET /v1/models``: one model per knowledge base and per knowledge base:generator."""
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": created, "owned_by": "rag-zh"}
                     for name in names]}
