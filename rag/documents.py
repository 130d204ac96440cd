"""Loading .txt/.md documents from files and folders.

Offsets everywhere in the pipeline (``Chunk.start``/``end``, heading spans)
refer to ``Document.text``: the file decoded with the encoding reported in
``Document.encoding``, *after* removing a leading byte-order mark and with line
endings left exactly as they are in the file (``\\r\\n`` stays two characters).

A file that cannot be read, decoded, or that holds no text is reported as a
``Problem`` and skipped; the other files still load.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, RagError

#: File suffixes that are loaded (case-insensitive).
SUPPORTED_SUFFIXES = (".txt", ".md")

# Tried in this order. GB18030 is a superset of GBK and GB2312.
_FALLBACK_ENCODINGS = ("gb18030",)
# Share of control characters above which a decoded file is taken for binary.
_MAX_CONTROL_SHARE = 0.01


@dataclass
class Document:
    """One decoded source file.

    ``name`` is the file's path relative to the folder it was found in (just the
    file name when the file was given directly), with ``/`` separators; it is
    what chunks store in ``Chunk.doc``.
    """

    name: str
    path: Path
    text: str
    encoding: str


@dataclass
class Problem:
    """A file that was skipped, with a message meant for the user."""

    path: Path
    message: str

    def __str__(self) -> str:
        return self.message


def decode_bytes(data: bytes, label: str = "file") -> tuple[str, str]:
    """Decode ``data``: UTF-8 (BOM stripped), UTF-16 with BOM, then GB18030.

    Returns ``(text, encoding)``. Raises ``DocumentError`` naming ``label``
    when no encoding fits or the result looks like binary data.
    """
    if data.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8", *_FALLBACK_ENCODINGS)
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            raise DocumentError(
                f"{label}: looks like binary data, not text (decoded as {encoding}); skipped"
            )
        return text, encoding
    tried = ", ".join(candidates)
    raise DocumentError(f"{label}: cannot decode the file as text (tried {tried}); skipped")


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return controls > _MAX_CONTROL_SHARE * max(len(text), 1)


def load_document(path: str | os.PathLike, name: str | None = None) -> Document:
    """Read and decode one file. Raises ``DocumentError`` (naming the file) on failure."""
    path = Path(path)
    label = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{label}: cannot read the file ({exc.strerror or exc}); skipped") from exc
    text, encoding = decode_bytes(data, label)
    if not text.strip():
        raise DocumentError(f"{label}: the file is empty (no text to index); skipped")
    return Document(name=name or path.name, path=path, text=text, encoding=encoding)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def collect_paths(paths: list[str | os.PathLike] | str | os.PathLike) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Expand files and folders into ``(path, name)`` pairs, in a stable order.

    Folders are walked recursively (hidden entries skipped) and their files
    sorted by relative path. A path that does not exist raises ``RagError``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[tuple[Path, str]] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RagError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(
                (p for p in path.rglob("*")
                 if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                 and not _is_hidden(p.relative_to(path))),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            if not files:
                problems.append(Problem(path, f"{path}: no .txt or .md files in this folder"))
            found.extend((p, p.relative_to(path).as_posix()) for p in files)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.append((path, path.name))
        else:
            problems.append(Problem(path, f"{path}: not a .txt or .md file; skipped"))
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


def load_documents(paths: list[str | os.PathLike] | str | os.PathLike) -> tuple[list[Document], list[Problem]]:
    """Load every .txt/.md file under ``paths`` (files or folders).

    Returns the documents in a stable order (arguments in order, folder
    contents sorted by relative path) and the problems: files that could not
    be decoded or are empty, each with a message naming the file. Raises
    ``RagError`` only for a path that does not exist.
    """
    pairs, problems = collect_paths(paths)
    documents: list[Document] = []
    for path, name in pairs:
        try:
            documents.append(load_document(path, name))
        except DocumentError as exc:
            problems.append(Problem(path, str(exc)))
    return documents, problems
