"""Answering for a server: Assistants per settings over one retriever, behind the gates.

The chat UI and the HTTP API of one knowledge base share one ``ChatBackend``, and
every backend of a server shares one ``Gates``, so the local model answers one
request at a time whichever door a request came through.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from rag import memory
from rag.answering.assistant import check_k
from rag.answering.endpoints import EndpointPolicy
from rag.errors import RagError
from rag.server.concurrency import Gates, IndexWorker
from rag.types import Answer
from rag.uploads import DEFAULT_MAX_UPLOAD_MB, UploadResult, UploadStore
from rag.vocabulary import MODES as MODE_VALUES


def upload_types() -> tuple[str, ...]:
    """Every suffix the ingestion loaders read: what an upload may be."""
    from rag.ingest.loaders import supported_suffixes

    return supported_suffixes()


UPLOAD_TYPES = upload_types()


class LRUCache:
    """A dict that keeps at most ``size`` entries, dropping the least recently used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be at least 1, got {size}")
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        return key in self._items


class ChatBackend:
    """Answers for the UI and the API over one retriever: generators and Assistants per
    settings, the gates, and uploads.

    Holds no retrieval or answering logic of its own. One generator object is
    shared by all Assistants that use it (a local model is loaded once, not
    once per retrieval mode or k). Both caches are bounded (least recently used
    entries go first), since the settings come from requests.

    ``generators`` are the generator names requests may choose (default: all);
    ``endpoint_policy`` decides which OpenAI-compatible endpoint, and key, a
    request's base URL gets (default: the operator's endpoint from the
    environment, user-typed URLs refused; see ``rag.answering.endpoints``).
    Uploads are kept in ``uploads_dir`` (default: a temporary folder) and may be
    at most ``max_upload_bytes`` each (None: no limit).
    """

    #: Assistants kept (one per generator, endpoint, mode and k in use).
    MAX_ASSISTANTS = 32
    #: Generators kept (one per generator name and endpoint in use; a cached Assistant
    #: keeps its own generator alive too).
    MAX_GENERATORS = 8

    def __init__(
        self,
        retriever: Any,
        *,
        assistant_factory: Callable[..., Any] | None = None,
        generator_factory: Callable[..., Any] | None = None,
        gates: Gates | None = None,
        uploads_dir: Path | None = None,
        assistant_settings: dict[str, Any] | None = None,
        endpoint_policy: EndpointPolicy | None = None,
        generators: Iterable[str] | None = None,
        max_upload_bytes: int | None = int(DEFAULT_MAX_UPLOAD_MB * 1e6),
        index_worker: IndexWorker | None = None,
    ) -> None:
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
        if uploads_dir is None:  # uploads are not kept past this process
            self._uploads_tmp = tempfile.TemporaryDirectory(prefix="rag-uploads-")
            uploads_dir = Path(self._uploads_tmp.name)
        self.uploads = UploadStore(uploads_dir, max_bytes=max_upload_bytes)
        self.index_worker = index_worker or IndexWorker()
        self.assistant_settings = dict(assistant_settings or {})
        self.endpoint_policy = endpoint_policy or EndpointPolicy.from_operator()
        self.generators = None if generators is None else frozenset(generators)
        self._generators = LRUCache(self.MAX_GENERATORS)
        self._assistants = LRUCache(self.MAX_ASSISTANTS)
        self._lock = threading.Lock()

    def assistant(self, generator: str, mode: str, k: int,
                  base_url: str | None = None, model: str | None = None,
                  api_key: str | None = None) -> Any:
        """The (cached) Assistant for these settings; may raise ``RagError``.

        ``base_url``/``model``/``api_key`` matter for the ``openai`` generator only
        and pass through ``endpoint_policy``.
        """
        if self.generators is not None and generator not in self.generators:
            raise RagError(f"此服务器不提供回答方式 {generator!r} (this server does not offer the "
                           f"generator {generator!r}; choose one of: {', '.join(sorted(self.generators))})")
        if mode not in MODE_VALUES:
            raise RagError(f"未知的检索方式 {mode!r} (unknown retrieval mode; choose one of: "
                           f"{', '.join(MODE_VALUES)})")
        k = check_k(k)
        extra: dict[str, Any] = {}
        if generator == "openai":
            extra = self.endpoint_policy.settings_for(base_url, model, api_key)
        gen_key = (generator, tuple(sorted(extra.items())))
        key = (gen_key, mode, k)
        with self._lock:  # also serialises model loading
            gen = self._generators.get_or_make(gen_key, lambda: self.generator_factory(generator, **extra))
            return self._assistants.get_or_make(key, lambda: self.assistant_factory(
                self.retriever, generator=gen, k=k, mode=mode, **self.assistant_settings))

    def stream(self, question: str, history: list[dict], generator: str, mode: str, k: int,
               base_url: str | None = None, model: str | None = None, api_key: str | None = None,
               max_waiting: int | None = None) -> Iterator[str | int | Answer]:
        """Yield ``int`` (requests ahead while waiting), then text pieces, then the Answer.

        Bad settings raise before any waiting; with ``max_waiting`` a full queue raises
        ``QueueFullError`` at once (the HTTP API's bound; the UI waits in Gradio's queue).
        """
        assistant = self.assistant(generator, mode, k, base_url, model, api_key)  # bad settings fail first
        gate = self.gates.for_generator(generator)
        for ahead in gate.wait_turns(max_waiting=max_waiting):
            yield ahead
        try:
            yield from assistant.stream(question, history)
        finally:
            gate.leave()
            memory.release_freed_memory()

    def add_documents(self, files: Sequence[Path | tuple[Path, str]]) -> UploadResult:
        """Store uploads in the uploads folder and add them to the index.

        ``files``: paths, or ``(path, original name)`` where the path is a temporary
        copy. Each is stored under a safe name no indexed document has (``a (2).txt``
        when ``a.txt`` exists; see ``rag.uploads``) before it is indexed, so the
        uploads folder and the index always agree. Uploads are indexed one at a time
        on the index worker, below the priority of answering. Files of the wrong
        type or over the size limit are refused before anything is queued; a file
        the retriever cannot read leaves the folder and the index unchanged.
        """
        pairs = [(Path(f[0]), str(f[1])) if isinstance(f, tuple) else (Path(f), Path(f).name) for f in files]
        bad = [original for _, original in pairs if Path(original).suffix.lower() not in UPLOAD_TYPES]
        if bad:
            raise RagError(f"不支持的文件类型 (unsupported file type): {', '.join(bad)}；"
                           f"支持 (supported): {' '.join(UPLOAD_TYPES)}")
        try:
            self.uploads.check_sizes(pairs)
            return self.index_worker.run(self.uploads.add, self.retriever, pairs, show_progress=True)
        except RagError as exc:
            message = self._user_paths(str(exc), pairs)
            if message == str(exc):
                raise
            raise type(exc)(message) from exc

    def _user_paths(self, message: str, pairs: list[tuple[Path, str]]) -> str:
        """Uploads by name in messages: no temporary or server folders shown to users."""
        for path, original in pairs:
            message = message.replace(str(path), original)
        folder = str(self.uploads.directory.resolve())
        return message.replace(folder + os.sep, "").replace(folder, "")
