"""Answering for a server: Assistants per settings over one retriever, behind the gates.

The chat UI and the HTTP API of one knowledge base share one ``ChatBackend``, and
every backend of a server shares one ``Gates``, so the local model answers one
request at a time whichever door the request came through.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Iterator

from rag.errors import RagError
from rag.server.concurrency import Gates
from rag.types import Answer
from rag.vocabulary import MODES

#: Assistants kept per backend (one per generator, mode and k in use).
MAX_ASSISTANTS = 32


class ChatBackend:
    """Calls ``rag`` to answer: a generator and an Assistant per settings, and the gates.

    Holds no retrieval or answering logic of its own. One generator object is
    shared by all Assistants that use it (a local model is loaded once, not once
    per retrieval mode or k). ``generators`` are the names requests may choose
    (default: all).
    """

    def __init__(self, retriever: Any, *, assistant_factory: Callable[..., Any] | None = None,
                 generator_factory: Callable[..., Any] | None = None, gates: Gates | None = None,
                 generators: Iterable[str] | None = None, **assistant_settings: Any) -> None:
        self.retriever = retriever
        if assistant_factory is None:
            from rag import Assistant

            assistant_factory = Assistant
        if generator_factory is None:
            from rag.answering.generators import make_generator

            generator_factory = make_generator
        self.assistant_factory = assistant_factory
        self.generator_factory = generator_factory
        self.gates = gates or Gates()
        self.generators = None if generators is None else frozenset(generators)
        self.assistant_settings = assistant_settings
        self._generators: dict[Any, Any] = {}
        self._assistants: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def assistant(self, generator: str, mode: str, k: int) -> Any:
        """The (cached) Assistant for these settings; ``RagError`` for settings not offered."""
        if self.generators is not None and generator not in self.generators:
            raise RagError(f"this server does not offer the generator {generator!r}; "
                           f"choose one of: {', '.join(sorted(self.generators))}")
        if mode not in MODES:
            raise RagError(f"unknown retrieval mode {mode!r}; choose one of: {', '.join(MODES)}")
        key = (generator, mode, int(k))
        with self._lock:  # also serialises model loading
            if generator not in self._generators:
                self._generators[generator] = self.generator_factory(generator)
            if key not in self._assistants:
                if len(self._assistants) >= MAX_ASSISTANTS:
                    self._assistants.pop(next(iter(self._assistants)))
                self._assistants[key] = self.assistant_factory(
                    self.retriever, generator=self._generators[generator], k=int(k), mode=mode,
                    **self.assistant_settings)
            return self._assistants[key]

    def stream(self, question: str, history: list[dict], generator: str, mode: str, k: int,
               max_waiting: int | None = None) -> Iterator[str | int | Answer]:
        """Yield ``int`` (requests ahead while waiting), then text pieces, then the Answer.

        Bad settings raise before any waiting; with ``max_waiting`` a full queue
        raises ``QueueFullError`` at once.
        """
        assistant = self.assistant(generator, mode, k)
        gate = self.gates.for_generator(generator)
        for ahead in gate.wait_turns(max_waiting=max_waiting):
            yield ahead
        try:
            yield from assistant.stream(question, history)
        finally:
            gate.leave()
