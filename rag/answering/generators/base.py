"""The interface every answer generator implements."""
from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from rag.errors import GeneratorError

__all__ = ["Generator", "GeneratorError", "collect"]


@runtime_checkable
class Generator(Protocol):
    """A chat language model.

    ``stream(messages)`` takes OpenAI-format chat messages
    (``[{"role": "system"|"user"|"assistant", "content": str}, ...]``) and yields
    the pieces of the assistant's reply as they are produced. Failures (endpoint
    down, model missing, ...) raise ``GeneratorError`` with a message for the user.
    """

    name: str

    def stream(self, messages: list[dict]) -> Iterator[str]: ...


def collect(generator: Generator, messages: list[dict]) -> str:
    """The whole reply of ``generator`` to ``messages`` as one string."""
    return "".join(generator.stream(messages))
