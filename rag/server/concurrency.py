"""Per-generator admission gates for answering, shared by the chat UI and the HTTP API.

Gradio's concurrency limits apply per *event*, but which generator a chat
request needs is only known from that request's settings. So the chat event
itself gets a generous Gradio limit, and each generator family passes through
its own gate here:

* ``fast``   extractive answers: retrieval plus sentence selection, short CPU
  work; a few run side by side.
* ``local``  the in-process LLM: one generation at a time (llama.cpp/torch
  models are not safe to call from two threads, and on a small CPU two
  generations only halve each other's speed).
* ``remote`` OpenAI-compatible endpoints: I/O bound, several at once.

A request waiting for its gate polls with a short timeout and reports its
wait to the caller between polls, so the worker thread is released and a
waiting LLM request never holds up an extractive one. The HTTP API also bounds
each gate's queue (``max_waiting``): past it a request is turned away at once
(``QueueFullError``, HTTP 429) instead of holding a connection and a thread.
"""
from __future__ import annotations

import threading
from typing import Iterator

from rag.errors import RagError

#: Generators answered without a language model.
FAST_GENERATORS = {"extractive"}
#: Generators that call a model over HTTP.
REMOTE_GENERATORS = {"openai"}

DEFAULT_LIMITS = {"fast": 4, "local": 1, "remote": 4}


class QueueFullError(RagError):
    """Too many requests already wait for this gate; try again later."""


def gate_name(generator: str) -> str:
    """Which gate a generator's requests go through."""
    key = (generator or "extractive").lower()
    if key in FAST_GENERATORS:
        return "fast"
    if key in REMOTE_GENERATORS:
        return "remote"
    return "local"


class Gate:
    """A counting semaphore that also knows how many requests are waiting."""

    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"gate {name!r} needs a limit of at least 1, got {limit}")
        self.name = name
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0

    def try_enter(self, timeout: float) -> bool:
        """Enter within ``timeout`` seconds; False if the gate is still full."""
        if self._sem.acquire(timeout=timeout):
            with self._lock:
                self.running += 1
            return True
        return False

    def leave(self) -> None:
        with self._lock:
            self.running -= 1
        self._sem.release()

    def wait_turns(self, poll: float = 0.5, max_waiting: int | None = None) -> Iterator[int]:
        """Enter the gate; while it is full, yield how many requests are ahead.

        Iteration ends once the caller holds a slot; the caller must then call
        ``leave()`` when done (in a ``finally``). With ``max_waiting``, a request
        that would have to queue behind that many others raises ``QueueFullError``
        (on the first ``next()``) and is not counted.
        """
        with self._lock:
            if max_waiting is not None and self.running >= self.limit and self.waiting >= max_waiting:
                raise QueueFullError(
                    f"服务繁忙，请稍后再试 (busy: {self.waiting} requests already wait for the "
                    f"{self.name!r} answerers; try again shortly)")
            self.waiting += 1
        try:
            while not self.try_enter(poll):
                with self._lock:
                    ahead = self.waiting - 1
                yield ahead
        finally:
            with self._lock:
                self.waiting -= 1


class Gates:
    """The set of gates of one app."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self.gates = {name: Gate(name, limit) for name, limit in merged.items()}

    def for_generator(self, generator: str) -> Gate:
        return self.gates[gate_name(generator)]


#: How much lower than answering the index worker runs (Linux nice increment).
INDEX_WORKER_NICE = 10


class IndexWorker:
    """Runs index writes (uploads) one at a time on one thread of their own.

    The thread runs at a lower CPU priority than the threads that answer
    (``nice`` +``INDEX_WORKER_NICE`` on Linux, where nice is per thread and
    inherited by the threads torch starts from it), so a long upload slows
    questions down as little as the machine allows. ``run`` blocks the calling
    request until its job is done and returns its result (or raises its error).
    """

    def __init__(self, nice: int = INDEX_WORKER_NICE) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.nice = nice
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-index",
                                            initializer=self._lower_priority)
        self._lock = threading.Lock()
        self.pending = 0  # jobs queued or running

    def _lower_priority(self) -> None:
        import os
        import sys

        if self.nice and sys.platform.startswith("linux"):  # elsewhere it would renice the process
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError:
                pass

    def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the worker thread (after earlier jobs); its result."""
        import contextvars

        with self._lock:
            self.pending += 1
        try:
            context = contextvars.copy_context()  # progress bars of the calling request follow it
            return self._executor.submit(context.run, fn, *args, **kwargs).result()
        finally:
            with self._lock:
                self.pending -= 1
