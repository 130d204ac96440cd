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


def _streamed_lines(path: Path) -> Iterator[tuple[int, str]] | None:
    """``_lines(path)`` read line by line instead of whole, for a UTF-8 file (BOM or not);
    None for any other encoding (those go through the whole-file decoder). A first pass
    checks that the whole file decodes and is not binary, exactly as ``read_text_file``
    would, so both give the same lines or the same error."""
    import codecs

    from rag.ingest.plaintext import _MAX_CONTROL_SHARE

    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return None
            encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
            decoder = codecs.getincrementaldecoder(encoding)()
            fh.seek(0)
            chars = controls = 0
            nul = False
            for block in iter(lambda: fh.read(1 << 20), b""):
                text = decoder.decode(block)
                chars += len(text)
                nul = nul or "\x00" in text
                controls += sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file ({exc.strerror or exc}); skipped") from exc
    if nul or controls > _MAX_CONTROL_SHARE * max(chars, 1):
        raise DocumentError(f"{path}: looks like binary data, not text (decoded as {encoding}); skipped")

    def lines() -> Iterator[tuple[int, str]]:
        line_no = 0
        # newline="": lines end at \n, \r or \r\n as splitlines() has them; splitlines() then
        # splits what else it splits at (\u2028, \x1c, ...), so the numbering is _lines'.
        with open(path, encoding=encoding, newline="") as fh:
            for physical in fh:
                for line in physical.splitlines():
                    line_no += 1
                    yield line_no, line

    return lines()


def stream_records(loader, path: Path, name: str) -> Iterator[Document]:
    """``loader.load(path, name)`` one document at a time, reading the file line by line
    (a UTF-8 file; others are read whole). The notes about skipped records go to the
    first document once the file is read (so a caller that reports on it must look at
    its notes after the last document); a file without any usable record raises the
    same ``DocumentError`` as ``load``."""
    lines = _streamed_lines(path)
    if lines is None:
        yield from loader.load(path, name)
        return
    records = _Records(path, name, loader.kind)
    first: Document | None = None
    for _ in loader.read(records, lines):
        while records.documents:
            document = records.documents.pop()
            first = first or document
            yield document
    records.documents = [first] if first is not None else []
    records.result()  # raises for a file without documents; adds the notes to the first one


class _RecordFileLoader:
    """A file of one record per line: ``read`` turns lines into records; the whole file
    (``load``) or one document at a time (``iter_load``, see ``stream_records``)."""

    kind = ""

    def load(self, path: Path, name: str) -> list[Document]:
        records = _Records(path, name, self.kind)
        for _ in self.read(records, _lines(path)):
            pass
        return records.result()

    def iter_load(self, path: Path, name: str) -> Iterator[Document]:
        """``load``, one document at a time (see ``stream_records``)."""
        return stream_records(self, path, name)

    def read(self, records: _Records, lines: Iterator[tuple[int, str]]) -> Iterator[None]:
        raise NotImplementedError


class JsonlLoader(_RecordFileLoader):
    """``.jsonl``: one JSON object per line, ``{"text": ..., "id"?, "title"?, "metadata"?}``."""

    kind = "jsonl"
    suffixes = (".jsonl", ".ndjson")

    def read(self, records: _Records, lines: Iterator[tuple[int, str]]) -> Iterator[None]:
        """Add the records of ``lines`` to ``records``, pausing at each line."""
        for line_no, line in lines:
            yield
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
        yield


class LinesLoader(_RecordFileLoader):
    """Plain text, one document per non-empty line (``FILE:LINE``, or ``FILE:ID`` for ``ID\\tTEXT``)."""

    kind = "line"
    suffixes = (".txt", ".text")

    def read(self, records: _Records, lines: Iterator[tuple[int, str]]) -> Iterator[None]:
        """Add the records of ``lines`` to ``records``, pausing after each line."""
        for line_no, line in lines:
            if not line.strip():
                continue
            match = _LINE_ID_RE.match(line)
            if match:
                records.add(line_no, line[match.end():], match.group(1))
            else:
                records.add(line_no, line)
            yield


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
