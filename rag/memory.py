"""Keeping a long-running process's memory flat: `rag serve`, and `rag index` of a big collection.

Two things grow a process that embeds text for hours or answers questions all day. oneDNN
caches compiled kernels per input shape, and passages and questions come in every length;
and glibc's malloc raises its mmap threshold to the largest block freed (up to 32 MB), so
after the first batches the activation tensors come from the heap, where small long-lived
objects between them keep freed pages resident. `rag serve` grew by ~110 MB over 200
questions; a bf16 build embedding 7,800 news passages grew by 860 MB (README *Large
collections*). ``limit_memory_growth`` bounds oneDNN's cache and glibc's arenas and turns on
``release_freed_memory`` (glibc's ``malloc_trim``), which hands free heap pages back after a
question (the server) or after each commit of embeddings (``embed_passages``). A library
user's process is left alone: nothing is trimmed there unless it calls ``enable``. A fixed
mmap threshold would do the same but made every tensor of a build a fresh mapping (~1.5×
slower passage embedding).
"""
from __future__ import annotations

import ctypes
import os
import threading
import time

#: The least time between two trims (a trim walks every free block; questions come faster).
MIN_INTERVAL_S = 1.0

_lock = threading.Lock()
_last = 0.0
_enabled = False
_trim = None


def limit_memory_growth() -> None:
    """Keep a long-running process's memory flat (call before torch is imported).

    oneDNN's kernel cache is bounded to 8 entries unless the user chose a size (a server
    grew ~270 MB over its first 100 questions with the default; 8 halve that growth;
    embedding passages it is most of a build's growth, and costs no measurable speed);
    glibc's per-thread malloc arenas are capped (Gradio answers on a pool of threads); and
    the memory freed by a question or a batch of embeddings goes back to the system
    (``release_freed_memory``).
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        pass
    enable()


def enable() -> bool:
    """Let ``release_freed_memory`` trim from now on (``limit_memory_growth`` calls this); False
    where the C library has no ``malloc_trim`` (not glibc): then it does nothing."""
    global _enabled, _trim
    try:
        _trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
    _enabled = True
    return True


def release_freed_memory(force: bool = False) -> bool:
    """Return the heap's free pages to the system, at most once per ``MIN_INTERVAL_S`` unless
    ``force``; True when a trim ran."""
    global _last
    if not _enabled:
        return False
    now = time.monotonic()
    if not force and now - _last < MIN_INTERVAL_S:
        return False
    if not _lock.acquire(blocking=False):  # another thread is trimming
        return False
    try:
        _trim(0)
        _last = time.monotonic()
    finally:
        _lock.release()
    return True
