"""Giving the memory a long-running server has freed back to the system.

glibc's malloc raises its mmap threshold to the largest block freed (up to 32 MB), so after the
first questions the activation tensors of query embedding and of the meaning check's word batches
come from the heap, where small long-lived objects between them keep freed pages resident: `rag
serve` grew by ~110 MB over 200 questions. ``release_freed_memory`` (glibc's ``malloc_trim``)
hands those free pages back after a question. A fixed mmap threshold would do the same but made
every tensor of a build a fresh mapping (~1.5× slower passage embedding in the server).
"""
from __future__ import annotations

import ctypes
import threading
import time

#: The least time between two trims (a trim walks every free block; questions come faster).
MIN_INTERVAL_S = 1.0

_lock = threading.Lock()
_last = 0.0
_enabled = False
_trim = None


def enable() -> bool:
    """Let ``release_freed_memory`` trim from now on (a server calls this); False where the C
    library has no ``malloc_trim`` (not glibc): then it does nothing."""
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
