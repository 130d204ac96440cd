"""Knowledge bases: the indexes a server answers from, and their documents.

``rag serve --index seeds=.rag/index --index news=/data/news-index`` serves two;
``--indexes DIR`` serves every index folder inside DIR, each named after its
folder. A chat request picks one by ``model`` (``seeds``, ``seeds:local``), the
UI by a selector.

Each knowledge base owns its uploads folder (``<index>-uploads/``, next to the
index, since the index folder is replaced on every write). The uploads folder
is the truth about uploaded documents and the index follows it:

* adding an upload writes the file into the folder first (the previous version
  kept aside), then indexes it; if indexing fails the folder is put back;
* deleting one moves the file aside as ``.NAME.deleting``, removes the document
  from the index (one atomic write), then removes the file;
* ``reconcile()`` (run when the server starts) finishes or undoes whatever a
  crash interrupted, so the folder and the index agree again.

Files aside are hidden (leading dot), so an index rebuilt from the folder never
reads them. All writes to one knowledge base take its lock, one at a time;
searches go on meanwhile and see the old index or the new one, whole.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from rag.errors import DocumentNotFoundError, RagError
from rag.index_store import sha256_file

#: What a knowledge base may be called: it appears in URLs and in ``model`` names
#: (``NAME:generator``), so no ``:`` or ``/``.
NAME_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff._-]{0,63}$")
#: Largest upload accepted per file (override with $RAG_MAX_UPLOAD_MB).
DEFAULT_MAX_UPLOAD_MB = 50

_DELETING = ".deleting"
_PREVIOUS = ".previous"
_PART = ".part"


class KnowledgeBaseNotFoundError(RagError, LookupError):
    """No knowledge base of that name is served."""


class DocumentConflictError(RagError):
    """The request conflicts with the knowledge base's documents (same name from elsewhere, ...)."""


def max_upload_bytes() -> int:
    """The per-file upload limit in bytes (``$RAG_MAX_UPLOAD_MB``, default 50 MB)."""
    value = os.environ.get("RAG_MAX_UPLOAD_MB", "")
    try:
        megabytes = float(value) if value.strip() else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        raise RagError(f"RAG_MAX_UPLOAD_MB must be a number of megabytes, not {value!r}") from None
    return int(megabytes * 1024 * 1024)


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


def safe_upload_name(filename: str, suffixes: Iterable[str]) -> str:
    """The name an uploaded file is kept and indexed under.

    Only the last path component counts (``..\\..\\a.txt`` -> ``a.txt``); leading
    dots are dropped, since hidden files are never indexed when the index is
    rebuilt; control and path characters become ``_``. Raises ``RagError`` for a
    name with nothing left or an unsupported type.
    """
    name = unicodedata.normalize("NFC", str(filename)).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if unicodedata.category(ch)[0] == "C" or ch in '<>:"|?*' else ch for ch in name)
    name = name.strip().lstrip(".").strip()
    allowed = tuple(s.lower() for s in suffixes)
    if not name or name.lower() in allowed:
        raise RagError(f"上传的文件名无效 (the file name {filename!r} has nothing usable left)")
    if Path(name).suffix.lower() not in allowed:
        raise RagError(f"不支持的文件类型 (unsupported file type): {name}; supported: {' '.join(allowed)}")
    return name[:200]


def _supported_suffixes() -> tuple[str, ...]:
    from rag.ingest.loaders import supported_suffixes

    return tuple(supported_suffixes())


class KnowledgeBase:
    """One served index: its retriever, uploads folder, documents and answering backend.

    ``backend_factory(retriever)`` makes the object that answers questions over
    this knowledge base (the UI and the API share it); it is made on first use.
    """

    def __init__(self, name: str, retriever: Any, uploads_dir: str | os.PathLike | None = None,
                 backend_factory: Callable[[Any], Any] | None = None) -> None:
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
                    self._backend = self._backend_factory(self.retriever)
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
        manifest = getattr(self.retriever, "manifest", {}) or {}
        counts = manifest.get("counts", {})
        model = manifest.get("model", {})
        dense = manifest.get("dense", {})
        store = manifest.get("store") or {}
        return {
            "name": self.name,
            "documents": len(self.retriever.documents),
            "chunks": len(self.retriever),
            "sentence_views": int(counts.get("views", 0) or 0),
            "model": model.get("name"),
            "dimension": model.get("dim"),
            "dense_index": dense.get("kind"),
            "store": store.get("kind", "local") if isinstance(store, dict) else str(store),
            "format_version": manifest.get("format_version"),
            "updated": manifest.get("created"),
            "writing": self.writing,
        }

    # ---------------------------------------------------------------- writing

    def add_files(self, files: Iterable[tuple[str, str | os.PathLike]]) -> ChangeResult:
        """Add uploaded files, given as ``(original file name, path of its bytes)``.

        Each is kept in the uploads folder under ``safe_upload_name`` and indexed;
        a file with the name of an uploaded document replaces it. All or nothing:
        if any file cannot be indexed, the index and the uploads folder stay as
        they were and ``RagError`` says which file and why.
        """
        suffixes = _supported_suffixes()
        limit = max_upload_bytes()
        staged: dict[str, Path] = {}
        for filename, path in files:
            name = safe_upload_name(filename, suffixes)
            if name in staged:
                raise DocumentConflictError(f"两个上传文件同名 (two uploads are both named {name})")
            size = Path(path).stat().st_size
            if size > limit:
                raise RagError(f"文件过大 (file too large): {name} has {size / 1048576:.1f} MB, the limit is "
                               f"{limit / 1048576:.0f} MB ($RAG_MAX_UPLOAD_MB)")
            if size == 0:
                raise RagError(f"文件为空 (empty file): {name}")
            staged[name] = Path(path)
        if not staged:
            raise RagError("没有选择文件 (no files given)")
        with self._write_lock:
            records = {r.doc: r for r in self.retriever.sources}
            clash = [n for n in staged if n in records and not self._is_upload(records[n])]
            if clash:
                raise DocumentConflictError(
                    f"已有同名文档 (a document named {', '.join(clash)} is already indexed from the documents "
                    "folder): rename the file, or delete that document first")
            self.uploads_dir.mkdir(parents=True, exist_ok=True)
            token = uuid.uuid4().hex[:8]
            placed: list[tuple[Path, Path | None]] = []  # (file in uploads, previous version aside)
            try:
                for name, source in staged.items():
                    target = self.uploads_dir / name
                    part = self.uploads_dir / f".{name}.{token}{_PART}"
                    shutil.copyfile(source, part)
                    previous = None
                    if target.exists():
                        previous = self.uploads_dir / f".{name}.{token}{_PREVIOUS}"
                        os.replace(target, previous)
                    placed.append((target, previous))
                    os.replace(part, target)
                summary = self.retriever.add([target for target, _ in placed], show_progress=True)
            except BaseException:
                for target, previous in reversed(placed):
                    if previous is not None:
                        os.replace(previous, target)
                    else:
                        target.unlink(missing_ok=True)
                for part in self.uploads_dir.glob(f".*.{token}{_PART}"):
                    part.unlink(missing_ok=True)
                raise
            for _, previous in placed:
                if previous is not None:
                    previous.unlink(missing_ok=True)
        return self._result(summary)

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
        """Make the uploads folder and the index agree after an interrupted write.

        Returns what was done, one line each (empty when nothing was needed).
        A ``.NAME.deleting`` file is put back if the index still holds NAME, else
        removed; a ``.NAME.*.previous`` version is put back unless the index holds
        the file now in its place; temporary ``.part`` files are removed; an
        uploaded file the index lacks (or holds another version of) is indexed;
        an uploaded document whose file is gone is removed from the index.
        """
        if not self.uploads_dir.is_dir():
            return []
        actions: list[str] = []
        with self._write_lock:
            records = {r.doc: r for r in self.retriever.sources}
            for entry in sorted(p for p in self.uploads_dir.iterdir() if p.name.startswith(".")):
                actions.extend(self._recover(entry, records))
            files = {p.name: p for p in self.uploads_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
            gone = [doc for doc, r in records.items() if self._is_upload(r) and doc not in files]
            if gone and len(gone) < len(records):
                self.retriever.delete_documents(gone)
                actions.extend(f"removed {doc} from the index: its file in the uploads folder is gone"
                               for doc in gone)
            for name, path in files.items():
                record = records.get(name)
                if record is not None and not self._is_upload(record):
                    actions.append(f"left {name} in the uploads folder unindexed: a document of that name "
                                   "comes from the documents folder")
                elif record is None or record.sha256 != sha256_file(path):
                    try:
                        self.retriever.add([path], show_progress=True)
                        actions.append(f"indexed {name} from the uploads folder")
                    except RagError as exc:
                        actions.append(f"could not index {name} from the uploads folder: {exc}")
        return actions

    def _recover(self, entry: Path, records: dict[str, Any]) -> list[str]:
        """Finish or undo the interrupted write that left ``entry`` aside."""
        if entry.name.endswith(_PART):
            entry.unlink(missing_ok=True)
            return []
        if entry.name.endswith(_DELETING):
            name = entry.name[1:-len(_DELETING)]
            if name in records:
                os.replace(entry, self.uploads_dir / name)
                return [f"kept {name}: its deletion had not reached the index"]
            entry.unlink()
            return [f"finished deleting {name}"]
        if entry.name.endswith(_PREVIOUS):
            name = entry.name[1:-len(_PREVIOUS)].rsplit(".", 1)[0]
            current, indexed = self.uploads_dir / name, records.get(name)
            if indexed is not None and current.is_file() and indexed.sha256 == sha256_file(current):
                entry.unlink()
                return []
            os.replace(entry, current)
            return [f"restored the previous version of {name}: the new one never reached the index"]
        return []

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
