"""Files that hold many documents: JSON Lines, and plain text with one document per line.

Big collections arrive like this (news dumps, exports of a CMS, CRUD-RAG's
``news-63k.txt``), not as one file per document.

* ``.jsonl``/``.ndjson`` (``JsonlLoader``, always on): one JSON object per line with
  ``text`` and optional ``id``, ``title`` and ``metadata`` (an object). A record is
  the document ``FILE:ID`` (``FILE:LINE`` without an id); its title is its first
  line and a level-1 heading, so it heads every chunk's heading path and every
  citation.
* plain text with one document per line (``LinesLoader``, on inside
  ``one_doc_per_line()``, which ``rag index --one-doc-per-line`` uses): each
  non-empty line of a ``.txt`` file is the document ``FILE:LINE``, or ``FILE:ID``
  when the line starts with an id and a tab (``ID\\tTEXT``).

A record that cannot be read (not JSON, no ``text``, a repeated id) is skipped
and named, with its line, in a note of the file's first document; the other
records still load. Each record's text is stored as a source of its own: its
``path`` is ``FILE:LINE`` (no copy of the whole file per record), and its
``sha256`` is that of the record, so editing one record re-indexes only it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any, Iterator

from rag.errors import DocumentError
from rag.ingest.documents import HEADING, Document, Mark
from rag.ingest.plaintext import read_text_file

#: An id at the start of a line of a one-document-per-line file: a short token without
#: spaces (so the date that starts a news line is never taken for one), then a tab.
_LINE_ID_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.:/#-]{0,63})\t")
#: Notes per file about skipped records; the count of the rest is given.
_MAX_NOTES = 20


def _record_sha(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class _Records:
    """Collects the documents of one file and the notes about records it skipped."""

    def __init__(self, path: Path, name: str, kind: str) -> None:
        self.path, self.name, self.kind = path, name, kind
        self.documents: list[Document] = []
        self.skipped: list[str] = []
        self._names: set[str] = set()

    def add(self, line_no: int, text: str, record_id: str | None = None, title: str = "",
            metadata: dict[str, Any] | None = None) -> None:
        doc = f"{self.name}:{record_id if record_id is not None else line_no}"
        if doc in self._names:
            self.skip(line_no, f"the id {record_id!r} was used by an earlier line")
            return
        marks = []
        if title:
            marks.append(Mark(0, len(title), HEADING, level=1, source=self.kind))
            text = f"{title}\n{text}"
        self._names.add(doc)
        self.documents.append(Document(
            name=doc, path=Path(f"{self.path}:{line_no}"), text=text, kind=self.kind, marks=marks,
            record_id=record_id, title=title, metadata=dict(metadata or {}),
            sha256=_record_sha(self.kind, doc, text, json.dumps(metadata or {}, sort_keys=True))))

    def skip(self, line_no: int, why: str) -> None:
        self.skipped.append(f"{self.path}: line {line_no}: {why}; skipped")

    def result(self) -> list[Document]:
        if not self.documents:
            detail = f" ({'; '.join(self.skipped[:3])})" if self.skipped else ""
            raise DocumentError(f"{self.path}: no document in the file{detail}; skipped")
        notes = self.skipped[:_MAX_NOTES]
        if len(self.skipped) > _MAX_NOTES:
            notes.append(f"{self.path}: {len(self.skipped) - _MAX_NOTES} more lines skipped")
        self.documents[0].notes.extend(notes)
        return self.documents


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    text, _ = read_text_file(path)
    for line_no, line in enumerate(text.splitlines(), 1):
        yield line_no, line


class JsonlLoader:
    """``.jsonl``: one JSON object per line, ``{"text": ..., "id"?, "title"?, "metadata"?}``."""

    kind = "jsonl"
    suffixes = (".jsonl", ".ndjson")

    def load(self, path: Path, name: str) -> list[Document]:
        records = _Records(path, name, self.kind)
        for line_no, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                records.skip(line_no, f"not a JSON object ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                records.skip(line_no, f"a JSON {type(record).__name__}, not an object with \"text\"")
                continue
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                records.skip(line_no, "no \"text\" (a non-empty string) in the object")
                continue
            record_id = record.get("id")
            if record_id is not None and not isinstance(record_id, (str, int)) or record_id == "":
                records.skip(line_no, f"\"id\" must be a non-empty string or a number, not {record_id!r}")
                continue
            title = record.get("title") or ""
            metadata = record.get("metadata") or {}
            if not isinstance(title, str) or not isinstance(metadata, dict):
                records.skip(line_no, "\"title\" must be a string and \"metadata\" an object")
                continue
            records.add(line_no, text, None if record_id is None else str(record_id),
                        " ".join(title.split()), metadata)
        return records.result()


class LinesLoader:
    """Plain text, one document per non-empty line (``FILE:LINE``, or ``FILE:ID`` for ``ID\\tTEXT``)."""

    kind = "line"
    suffixes = (".txt", ".text")

    def load(self, path: Path, name: str) -> list[Document]:
        records = _Records(path, name, self.kind)
        for line_no, line in _lines(path):
            if not line.strip():
                continue
            match = _LINE_ID_RE.match(line)
            if match:
                records.add(line_no, line[match.end():], match.group(1))
            else:
                records.add(line_no, line)
        return records.result()


_mode = threading.local()


@contextlib.contextmanager
def one_doc_per_line(enabled: bool = True) -> Iterator[None]:
    """Within this block (this thread), ``.txt`` files are read one document per line."""
    previous = getattr(_mode, "enabled", False)
    _mode.enabled = enabled
    try:
        yield
    finally:
        _mode.enabled = previous


def lines_mode() -> bool:
    """Whether ``.txt`` files are being read one document per line (see ``one_doc_per_line``)."""
    return getattr(_mode, "enabled", False)
