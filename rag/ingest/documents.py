"""The document model every loader produces, and finding/loading files.

A ``Document`` is the same thing whatever the original format: the extracted
text, the structure the format itself states (``Mark``: headings with a level,
table rows), the page each character came from, and provenance. Offsets
everywhere in the pipeline (``Chunk.start``/``end``, heading spans, marks,
page starts) refer to ``Document.text``. For .txt/.md that is the file decoded
with ``Document.encoding`` after removing a byte-order mark, line endings left
exactly as they are in the file (``\\r\\n`` stays two characters); for other
formats it is the text the loader extracted, which the index stores next to a
copy of the original file.

Which loader reads which suffix is decided by ``rag.ingest.loaders``. A file
that cannot be read, has an unsupported type, or holds no text is reported as a
``Problem`` naming the file and the reason; the other files still load.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rag.errors import DocumentError, RagError

HEADING, TABLE = "heading", "table"


@dataclass
class Mark:
    """Structure a format states explicitly, over ``text[start:end]`` (whole lines).

    ``kind`` is ``heading`` (``level`` 1 = top) or ``table`` (one table row per
    line; rows are never joined with other lines or cut). ``source`` says where
    the mark came from: ``outline`` (PDF bookmarks), ``font`` (PDF font size),
    ``style`` (Word heading styles / outline levels), ``html`` (h1–h6), ``table``.
    """

    start: int
    end: int
    kind: str
    level: int = 0
    source: str = ""


@dataclass
class Document:
    """One source file as text plus structure and provenance.

    ``name`` is the file's path relative to the folder it was found in (just the
    file name when the file was given directly), with ``/`` separators; it is
    what chunks store in ``Chunk.doc``. ``kind`` is the format (``txt``, ``md``,
    ``pdf``, ``docx``, ``html``, ``image``, ``csv``, ``xlsx``). ``page_starts[i]``
    is the offset in ``text`` where page ``i + 1`` begins (empty: the format has
    no pages); ``ocr_pages`` lists the 1-based pages whose text came from OCR.
    """

    name: str
    path: Path
    text: str
    encoding: str = "utf-8"
    kind: str = "txt"
    page_starts: list[int] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    #: Things the user should know that did not stop the file (a page without text, ...).
    notes: list[str] = field(default_factory=list)
    #: For a document that is one record of a bigger file (``rag.ingest.records``): the
    #: record's own id, title and metadata, and a hash of the record (not of the file).
    record_id: str | None = None
    title: str = ""
    metadata: dict = field(default_factory=dict)
    sha256: str = ""

    @property
    def pages(self) -> int:
        """Number of pages (0 for formats without pages)."""
        return len(self.page_starts)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``text[offset]``, or None for a format without pages."""
        return page_at(self.page_starts, offset)


def page_at(page_starts: list[int], offset: int) -> int | None:
    """The 1-based page whose start is the last one at or before ``offset`` (None: no pages)."""
    if not page_starts:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))


@dataclass
class Problem:
    """A file that was skipped, with a message meant for the user."""

    path: Path
    message: str

    def __str__(self) -> str:
        return self.message


def load_document(path: str | os.PathLike, name: str | None = None) -> Document:
    """Read one file with the loader for its suffix.

    Raises ``DocumentError`` (naming the file and the reason) when the type is
    not supported or the file cannot be read; a loader that yields several
    documents (one per record) returns the first here, see ``load_file``.
    """
    documents = load_file(path, name)
    return documents[0]


def load_file(path: str | os.PathLike, name: str | None = None) -> list[Document]:
    """All documents in one file (most formats: exactly one). Raises ``DocumentError``."""
    from rag.ingest.loaders import loader_for, supported_suffixes

    path = Path(path)
    loader = loader_for(path)
    if loader is None:
        raise DocumentError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r} "
                            f"(supported: {' '.join(supported_suffixes())}); skipped")
    try:
        if path.stat().st_size == 0:
            raise DocumentError(f"{path}: the file is empty (0 bytes, no text to index); skipped")
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file ({exc.strerror or exc}); skipped") from exc
    cached = _cache_get(loader, path, name or path.name)
    if cached is not None:
        return [cached]
    documents = loader.load(path, name or path.name)
    if not documents:
        raise DocumentError(f"{path}: no text found in the file; skipped")
    if len(documents) == 1:
        _cache_put(loader, path, documents[0])
    return documents


# ------------------------------------------------------------------ extraction cache
# Reading a scan by OCR takes seconds per page; rebuilding an index of unchanged files
# must not redo it. Loaders with an ``extraction_version`` (PDF, images) keep what they
# extracted in <cache>/documents/, keyed by the file's bytes and that version (bump it
# whenever the loader's output changes, so stale text is never served).

def _cache_key(loader, path: Path) -> str | None:
    import hashlib

    version = getattr(loader, "extraction_version", None)
    if not version or os.environ.get("RAG_DOCUMENT_CACHE", "1") in ("0", "off"):
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return f"{loader.kind}-v{version}-{digest.hexdigest()[:40]}"


def _cache_dir() -> Path:
    from rag import config

    return Path(config.CACHE_DIR) / "documents"


def _cache_get(loader, path: Path, name: str) -> Document | None:
    import json

    key = _cache_key(loader, path)
    if key is None:
        return None
    try:
        data = json.loads((_cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
        return Document(name=name, path=path, text=data["text"], encoding=data["encoding"], kind=data["kind"],
                        page_starts=list(data["page_starts"]), ocr_pages=list(data["ocr_pages"]),
                        marks=[Mark(**m) for m in data["marks"]], notes=list(data["notes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_put(loader, path: Path, document: Document) -> None:
    import dataclasses
    import json
    import tempfile

    key = _cache_key(loader, path)
    if key is None:
        return
    data = {"text": document.text, "encoding": document.encoding, "kind": document.kind,
            "page_starts": document.page_starts, "ocr_pages": document.ocr_pages,
            "marks": [dataclasses.asdict(m) for m in document.marks], "notes": document.notes}
    try:
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, suffix=".part", delete=False) as fh:
            json.dump(data, fh, ensure_ascii=False)
        os.replace(fh.name, folder / f"{key}.json")
    except OSError:
        pass  # the cache is an optimisation: a read-only home must not stop indexing


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def collect_paths(paths: list[str | os.PathLike] | str | os.PathLike) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Expand files and folders into ``(path, name)`` pairs, in a stable order.

    Folders are walked recursively (hidden entries skipped) and their files
    sorted by relative path. Files of a type no loader reads are returned as
    problems, by name, so nothing is skipped in silence. A path that does not
    exist raises ``RagError``.
    """
    from rag.ingest.loaders import loader_for, supported_suffixes

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[tuple[Path, str]] = []
    problems: list[Problem] = []
    supported = " ".join(supported_suffixes())
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RagError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(
                (p for p in path.rglob("*") if p.is_file() and not _is_hidden(p.relative_to(path))),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            readable = [p for p in files if loader_for(p) is not None]
            for p in files:
                if loader_for(p) is None:
                    problems.append(Problem(p, f"{p}: unsupported file type {p.suffix or '(no suffix)'!r} "
                                               f"(supported: {supported}); skipped"))
            if not files:
                problems.append(Problem(path, f"{path}: no files in this folder"))
            found.extend((p, p.relative_to(path).as_posix()) for p in readable)
        elif loader_for(path) is not None:
            found.append((path, path.name))
        else:
            problems.append(Problem(path, f"{path}: unsupported file type {path.suffix or '(no suffix)'!r} "
                                          f"(supported: {supported}); skipped"))
    return _unique_names(found), problems


def _unique_names(found: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Drop repeated files and give clashing names their parent folder as prefix."""
    seen_files: set[Path] = set()
    result: list[tuple[Path, str]] = []
    names: set[str] = set()
    for path, name in found:
        resolved = path.resolve()
        if resolved in seen_files:
            continue
        seen_files.add(resolved)
        unique = name
        parent = path.resolve().parent
        while unique in names and parent != parent.parent:
            unique = f"{parent.name}/{unique}"
            parent = parent.parent
        names.add(unique)
        result.append((path, unique))
    return result


def load_documents(paths: list[str | os.PathLike] | str | os.PathLike,
                   progress: bool = False) -> tuple[list[Document], list[Problem]]:
    """Load every supported file under ``paths`` (files or folders).

    Returns the documents in a stable order (arguments in order, folder
    contents sorted by relative path) and the problems: files of an unsupported
    type, encrypted, corrupt, empty or without text, each with a message naming
    the file. One bad file never stops the others. Raises ``RagError`` only for
    a path that does not exist. ``progress`` shows per-page progress bars for
    long files (PDF parsing, OCR).
    """
    from rag.ingest.loaders import show_progress

    pairs, problems = collect_paths(paths)
    documents: list[Document] = []
    with show_progress(progress):
        for path, name in pairs:
            documents.extend(load_or_note(path, name, problems))
    return documents, problems


def iter_or_note(path: Path, name: str, problems: list[Problem]) -> Iterator[Document]:
    """The documents of one file as they are read, for a loader that can stream (one
    record per line: ``iter_load``), else ``load_or_note``'s list. A failure becomes a
    ``Problem`` in ``problems`` (documents read before it have been yielded)."""
    from rag.ingest.loaders import loader_for

    loader = loader_for(path)
    if loader is None or not hasattr(loader, "iter_load"):
        yield from load_or_note(path, name, problems)
        return
    try:
        if path.stat().st_size == 0:
            raise DocumentError(f"{path}: the file is empty (0 bytes, no text to index); skipped")
        yield from loader.iter_load(path, name)
    except DocumentError as exc:
        problems.append(Problem(path, str(exc)))
    except OSError as exc:
        problems.append(Problem(path, f"{path}: cannot read the file ({exc.strerror or exc}); skipped"))
    except MemoryError:
        problems.append(Problem(path, f"{path}: too large to read in memory; skipped"))


def load_or_note(path: Path, name: str, problems: list[Problem]) -> list[Document]:
    """``load_file(path, name)``, or no documents and a ``Problem`` naming the file appended
    to ``problems`` (one bad file never stops the others)."""
    try:
        return load_file(path, name)
    except DocumentError as exc:
        problems.append(Problem(path, str(exc)))
    except MemoryError:
        problems.append(Problem(path, f"{path}: too large to read in memory; skipped"))
    except Exception as exc:  # a parser bug on one odd file must not stop the others
        problems.append(Problem(path, f"{path}: cannot read the file "
                                      f"({type(exc).__name__}: {exc}); skipped"))
    return []


class TextBuilder:
    """Builds a document's text line by line, recording marks and page starts.

    Loaders of structured formats (Word, HTML, spreadsheets) add headings,
    paragraphs and tables; ``document()`` returns the ``Document``.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.marks: list[Mark] = []
        self.page_starts: list[int] = []

    def _add(self, text: str) -> tuple[int, int]:
        if self._length:
            self._parts.append("\n")
            self._length += 1
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        return start, self._length

    def paragraph(self, text: str) -> None:
        """A paragraph (newlines inside are kept as line breaks)."""
        text = text.strip()
        if text:
            self._add(text)

    def heading(self, text: str, level: int, source: str) -> None:
        """A heading of ``level`` (1 = top) as one line."""
        text = " ".join(text.split())
        if text:
            start, end = self._add(text)
            self.marks.append(Mark(start, end, HEADING, max(1, min(level, 9)), source))

    def table(self, rows: list[list[str]]) -> None:
        """A table: one line per row, cells joined by `` | ``, marked so rows stay whole."""
        lines = [" | ".join(" ".join(cell.split()) for cell in row) for row in rows]
        lines = [line for line in lines if line.replace("|", "").strip()]
        if lines:
            start, end = self._add("\n".join(lines))
            self.marks.append(Mark(start, end, TABLE, source="table"))

    def new_page(self) -> None:
        """The next line starts a new page."""
        self.page_starts.append(self._length + (1 if self._length else 0))

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def document(self, name: str, path: Path, kind: str, encoding: str = "utf-8") -> Document:
        """The ``Document``; ``DocumentError`` when no text was found."""
        text = self.text
        if not text.strip():
            raise DocumentError(f"{path}: no text found in the file; skipped")
        return Document(name=name, path=path, text=text, encoding=encoding, kind=kind,
                        page_starts=list(self.page_starts), marks=list(self.marks))
