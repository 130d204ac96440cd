"""Which loader reads which file: a small registry by suffix.

A loader turns one file into ``Document``s (``rag.ingest.documents``)::

    class MyLoader:
        kind = "jsonl"
        suffixes = (".jsonl",)
        def load(self, path: Path, name: str) -> list[Document]: ...

    register(MyLoader())

``name`` is the name the file gets in the index (its path relative to the
folder it was found in); a loader that makes several documents from one file
names each uniquely, e.g. ``f"{name}#{n}"``. On failure a loader raises
``DocumentError`` with a message naming the file and the reason (encrypted,
corrupt, no text...). Loader modules import their parsing libraries inside
``load``, so registering them keeps ``import rag`` light. A loader of files holding
many records may also offer ``iter_load(path, name)``: the same documents, one at a
time, so an index build reads such a file as a stream (``rag.ingest.records``).
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

from rag.ingest.documents import Document


@runtime_checkable
class Loader(Protocol):
    """Reads files with one of ``suffixes`` into documents of format ``kind``."""

    kind: str
    suffixes: tuple[str, ...]

    def load(self, path: Path, name: str) -> list[Document]:
        """The documents in ``path`` (usually one); raises ``DocumentError``."""
        ...


#: The loaders that ship with rag, as "module:class".
BUILTIN_LOADERS = (
    "rag.ingest.plaintext:TextLoader",
    "rag.ingest.pdf:PdfLoader",
    "rag.ingest.image:ImageLoader",
    "rag.ingest.docx:DocxLoader",
    "rag.ingest.html:HtmlLoader",
    "rag.ingest.tables:CsvLoader",
    "rag.ingest.tables:XlsxLoader",
    "rag.ingest.records:JsonlLoader",
)

_REGISTRY: dict[str, Loader] = {}
_DEFAULTS_LOADED = False
_lock = threading.Lock()


def register(loader: Loader) -> Loader:
    """Make ``loader`` read its suffixes (a later registration of a suffix wins)."""
    for suffix in loader.suffixes:
        _REGISTRY[suffix.lower()] = loader
    return loader


def _load_defaults() -> None:
    global _DEFAULTS_LOADED
    if _DEFAULTS_LOADED:
        return
    with _lock:
        if _DEFAULTS_LOADED:
            return
        from importlib import import_module

        for spec in BUILTIN_LOADERS:
            module, cls = spec.split(":")
            loader = getattr(import_module(module), cls)()
            for suffix in loader.suffixes:
                _REGISTRY.setdefault(suffix, loader)  # an explicit register() wins
        _DEFAULTS_LOADED = True


def loader_for(path: str | Path) -> Loader | None:
    """The loader for ``path``'s suffix (case-insensitive), or None when none reads it.

    Inside ``rag.ingest.records.one_doc_per_line()`` plain text files are read one
    document per line."""
    _load_defaults()
    suffix = Path(path).suffix.lower()
    from rag.ingest.records import LinesLoader, lines_mode

    if lines_mode() and suffix in LinesLoader.suffixes:
        return LinesLoader()
    return _REGISTRY.get(suffix)


def supported_suffixes() -> tuple[str, ...]:
    """Every suffix some loader reads, sorted."""
    _load_defaults()
    return tuple(sorted(_REGISTRY))


# ------------------------------------------------------------------ progress

_progress = threading.local()


@contextlib.contextmanager
def show_progress(enabled: bool) -> Iterator[None]:
    """Within this block (this thread), loaders show per-page progress bars."""
    previous = getattr(_progress, "enabled", False)
    _progress.enabled = enabled
    try:
        yield
    finally:
        _progress.enabled = previous


def progress_enabled() -> bool:
    """Whether the current load should show progress bars (see ``show_progress``)."""
    return getattr(_progress, "enabled", False)


def page_bar(total: int, desc: str):
    """A tqdm bar over ``total`` pages when progress is on and the file is long enough to wait for."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="page", leave=False,
                disable=not progress_enabled() or total < 2)
