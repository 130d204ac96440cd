"""Knowledge bases: the indexes a server answers from, and their documents.

``rag serve --index seeds=.rag/index --index news=/data/news-index`` serves two;
``--indexes DIR`` serves every index folder inside DIR, each named after its
folder. A chat request picks one by ``model`` (``seeds``, ``seeds:local``), the
UI by a selector.

Each knowledge base owns its uploads folder (``<index>-uploads/``, next to the
index, since the index folder is replaced on every write), which ``rag serve``
indexes together with ``--docs`` whenever it rebuilds the index. Uploads go
through the knowledge base's ``ChatBackend`` (``rag.server.backend``), the same
path for the UI and the API. Deleting an uploaded document moves its file aside
as ``.NAME.deleting``, removes the document from the index (one atomic write),
then removes the file; ``reconcile()`` (run when the server starts) puts the file
back if a crash left the document in the index, else finishes the deletion.
Searches go on during every write and see the old index or the new one, whole.
"""
from __future__ import annotations

import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from rag.errors import DocumentNotFoundError, RagError

#: What a knowledge base may be called: it appears in URLs and in ``model`` names
#: (``NAME:generator``), so no ``:`` or ``/``.
NAME_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff._-]{0,63}$")

_DELETING = ".deleting"


class KnowledgeBaseNotFoundError(RagError, LookupError):
    """No knowledge base of that name is served."""


class DocumentConflictError(RagError):
    """The request conflicts with the knowledge base's documents (same name from elsewhere, ...)."""


def uploads_dir_for(index_dir: Path) -> Path:
    """Where uploaded documents are kept: next to the index, not inside it
    (the index directory is replaced atomically on every write)."""
    index_dir = Path(index_dir)
    return index_dir.with_name(index_dir.name + "-uploads")


# ------------------------------------------------------------------ naming and specs


def check_name(name: str) -> str:
    """``name`` if it may name a knowledge base, else a ``RagError`` saying why."""
    if not NAME_RE.match(name or ""):
        raise RagError(f"knowledge base name {name!r} is not allowed: use letters, digits, Chinese "
                       "characters, '.', '_' or '-' (no ':' or '/'), at most 64 characters")
    return name


def default_name(index_dir: Path) -> str:
    """The name of an index given without ``NAME=``: its folder's name, made URL-safe."""
    name = re.sub(r"[^A-Za-z0-9\u4e00-\u9fff._-]+", "-", Path(index_dir).resolve().name).strip(".-_")[:64]
    return name or "default"


def parse_index_specs(values: Iterable[str], indexes_dir: str | os.PathLike | None = None,
                      ) -> list[tuple[str, Path]]:
    """``[(name, index_dir)]`` from ``NAME=DIR`` / ``DIR`` values and a folder of indexes.

    In ``indexes_dir`` every sub-folder holding a ``manifest.json`` is one knowledge
    base named after the folder. Names must be unique.
    """
    specs: list[tuple[str, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        if sep and not Path(value).exists():  # NAME=DIR (a folder whose name holds '=' is a DIR)
            specs.append((check_name(name.strip()), Path(path.strip())))
        else:
            specs.append((check_name(default_name(Path(value))), Path(value)))
    if indexes_dir is not None:
        folder = Path(indexes_dir)
        if not folder.is_dir():
            raise RagError(f"--indexes {folder}: not a folder")
        found = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
        if not found:
            raise RagError(f"--indexes {folder}: no index folders inside (none holds a manifest.json); "
                           "build one with `rag index DOCS --index "
                           f"{folder / 'NAME'}`")
        specs.extend((check_name(default_name(p)), p) for p in found)
    seen: dict[str, Path] = {}
    for name, path in specs:
        if name in seen:
            raise RagError(f"two knowledge bases are called {name!r} ({seen[name]} and {path}); "
                           "name them with NAME=DIR")
        seen[name] = path
    return specs


# ------------------------------------------------------------------ documents


@dataclass
class DocumentInfo:
    """One indexed document as the documents list shows it."""

    name: str
    type: str                 # file type by suffix: txt, md, pdf, ...
    chunks: int
    chars: int
    pages: int | None = None  # for paged formats (PDF); None where there are no pages
    added: str | None = None  # ISO time this version entered the index; None: not recorded
    uploaded: bool = False    # kept in the uploads folder (else read from a --docs folder)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ChangeResult:
    """What an add, delete or re-index did to a knowledge base."""

    knowledge_base: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KnowledgeBase:
    """One served index: its retriever, uploads folder, documents and answering backend.

    ``backend_factory(retriever, uploads_dir)`` makes its ``ChatBackend`` (answers and
    uploads; the UI and the API share it), on first use.
    """

    def __init__(self, name: str, retriever: Any, uploads_dir: str | os.PathLike | None = None,
                 backend_factory: Callable[[Any, Path], Any] | None = None) -> None:
        self.name = check_name(name)
        self.retriever = retriever
        index_dir = Path(getattr(retriever, "index_dir", "."))
        self.uploads_dir = Path(uploads_dir) if uploads_dir is not None else uploads_dir_for(index_dir)
        self._backend_factory = backend_factory
        self._backend: Any = None
        self._write_lock = threading.Lock()
        self._backend_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.name!r}, {self.retriever!r})"

    @property
    def backend(self) -> Any:
        """The answering backend of this knowledge base (made on first use)."""
        if self._backend is None:
            with self._backend_lock:
                if self._backend is None:
                    if self._backend_factory is None:
                        raise RagError(f"knowledge base {self.name!r} has no answering backend")
                    self._backend = self._backend_factory(self.retriever, self.uploads_dir)
        return self._backend

    # ---------------------------------------------------------------- reading

    @property
    def writing(self) -> bool:
        """Whether a document is being added, deleted or re-indexed right now."""
        return self._write_lock.locked()

    def _is_upload(self, record: Any) -> bool:
        path = Path(getattr(record, "path", "") or "")
        try:
            return path.parent.resolve() == self.uploads_dir.resolve() and path.name == record.doc
        except OSError:
            return False

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document with its type, chunk count, pages and when it was added."""
        counts = Counter(chunk.doc for chunk in self.retriever.chunks)
        pages: dict[str, int] = {}
        for chunk in self.retriever.chunks:
            page = getattr(chunk, "page", None)
            if isinstance(page, int):
                pages[chunk.doc] = max(page, pages.get(chunk.doc, 0))
        out = []
        for record in self.retriever.sources:
            recorded_pages = getattr(record, "pages", None)
            out.append(DocumentInfo(
                name=record.doc, type=(Path(record.doc).suffix.lstrip(".").lower() or "txt"),
                chunks=counts.get(record.doc, 0), chars=int(getattr(record, "chars", 0) or 0),
                pages=recorded_pages if isinstance(recorded_pages, int) else pages.get(record.doc),
                added=getattr(record, "added", None), uploaded=self._is_upload(record)))
        return out

    def status(self) -> dict[str, Any]:
        """What the index holds and how it was built (for ``GET /api/knowledge-bases/NAME``)."""
        settings, info = self.retriever.settings, self.retriever.index_info
        return {
            "name": self.name,
            "documents": len(self.retriever.documents),
            "chunks": len(self.retriever),
            "sentence_views": info.views,
            "model": settings.model,
            "dimension": settings.dim,
            "dense_index": info.dense_built,
            "store": settings.store,
            "format_version": info.format_version,
            "updated": info.created,
            "writing": self.writing,
        }

    # ---------------------------------------------------------------- writing

    def add_files(self, files: Iterable[tuple[str, str | os.PathLike]]) -> ChangeResult:
        """Add uploaded files, given as ``(original file name, path of its bytes)``.

        They go through the backend's ``add_documents`` like the UI's uploads:
        stored in the uploads folder under a safe name no indexed document has,
        then indexed, all or nothing (see ``rag.uploads``). A file whose content is
        already indexed is reported in ``unchanged``.
        """
        pairs = [(Path(path), str(filename)) for filename, path in files]
        if not pairs:
            raise RagError("没有选择文件 (no files given)")
        result = self.backend.add_documents(pairs)
        change = self._result(result.summary)
        change.added = [s.name for s in result.stored]
        change.unchanged = [f"{original} (= {doc})" for original, doc in result.duplicates]
        return change

    def delete(self, doc: str) -> ChangeResult:
        """Remove document ``doc`` from the index and, if it was uploaded, from the uploads folder.

        A document read from a ``--docs`` folder stays on disk there (it comes
        back only if the index is rebuilt from that folder).
        """
        with self._write_lock:
            records = {r.doc: r for r in self.retriever.sources}
            if doc not in records:
                raise DocumentNotFoundError(f"知识库 {self.name} 中没有文档 {doc!r} (no such document)")
            upload = self.uploads_dir / doc if self._is_upload(records[doc]) else None
            aside = None
            if upload is not None and upload.exists():
                aside = self.uploads_dir / f".{doc}{_DELETING}"
                os.replace(upload, aside)
            try:
                summary = self.retriever.delete_documents([doc])
            except BaseException:
                if aside is not None:
                    os.replace(aside, upload)
                raise
            if aside is not None:
                aside.unlink(missing_ok=True)
        return self._result(summary)

    def reindex(self, doc: str) -> ChangeResult:
        """Read document ``doc`` again from its file and replace its chunks (atomically).

        The file is the uploads folder's copy for an upload, else the path the
        document was indexed from. Raises ``DocumentNotFoundError`` for an unknown
        name and ``DocumentConflictError`` when the file is gone.
        """
        with self._write_lock:
            records = {r.doc: r for r in self.retriever.sources}
            record = records.get(doc)
            if record is None:
                raise DocumentNotFoundError(f"知识库 {self.name} 中没有文档 {doc!r} (no such document)")
            path = self.uploads_dir / doc if self._is_upload(record) else Path(record.path or "")
            if not record.path or not path.is_file():
                raise DocumentConflictError(f"找不到 {doc} 的原文件 (its file {path} is gone): delete the "
                                            "document, or put the file back")
            if path.name != doc:
                raise DocumentConflictError(
                    f"{doc} was indexed as part of a folder; re-index that folder with `rag index`")
            summary = self.retriever.add([path], show_progress=True, force=True)
        return self._result(summary)

    def reconcile(self) -> list[str]:
        """Finish or undo deletions a crash interrupted, so the uploads folder and the
        index agree again (run before the server starts). Returns what was done."""
        if not self.uploads_dir.is_dir():
            return []
        actions: list[str] = []
        with self._write_lock:
            documents = set(self.retriever.documents)
            for entry in sorted(self.uploads_dir.glob(f".*{_DELETING}")):
                name = entry.name[1:-len(_DELETING)]
                if name in documents:
                    os.replace(entry, self.uploads_dir / name)
                    actions.append(f"kept {name}: its deletion had not reached the index")
                else:
                    entry.unlink()
                    actions.append(f"finished deleting {name}")
        return actions

    def _result(self, summary: Any) -> ChangeResult:
        return ChangeResult(
            knowledge_base=self.name, added=list(getattr(summary, "added", []) or []),
            replaced=list(getattr(summary, "replaced", []) or []),
            unchanged=list(getattr(summary, "unchanged", []) or []),
            removed=list(getattr(summary, "removed", []) or []),
            problems=list(getattr(summary, "problems", []) or []),
            documents=len(self.retriever.documents), chunks=len(self.retriever),
            seconds=float(getattr(summary, "seconds", 0.0) or 0.0))


class KnowledgeBases:
    """The knowledge bases of one server, by name, in the order given (the first is the default)."""

    def __init__(self, bases: Iterable[KnowledgeBase]) -> None:
        self._bases: dict[str, KnowledgeBase] = {}
        for base in bases:
            if base.name in self._bases:
                raise RagError(f"two knowledge bases are called {base.name!r}")
            self._bases[base.name] = base
        if not self._bases:
            raise RagError("no knowledge base to serve")

    @property
    def names(self) -> list[str]:
        return list(self._bases)

    @property
    def default(self) -> KnowledgeBase:
        return next(iter(self._bases.values()))

    def get(self, name: str) -> KnowledgeBase:
        """The knowledge base called ``name`` (``KnowledgeBaseNotFoundError`` naming the others)."""
        try:
            return self._bases[name]
        except KeyError:
            raise KnowledgeBaseNotFoundError(
                f"no knowledge base {name!r}; this server has: {', '.join(self._bases)}") from None

    def __iter__(self):
        return iter(self._bases.values())

    def __len__(self) -> int:
        return len(self._bases)
