"""Plain text and Markdown (.txt, .md): UTF-8 (BOM ok), UTF-16 with BOM, else GB18030."""
from __future__ import annotations

import codecs
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.documents import Document

# Tried in this order. GB18030 is a superset of GBK and GB2312.
_FALLBACK_ENCODINGS = ("gb18030",)
# Share of control characters above which a decoded file is taken for binary.
_MAX_CONTROL_SHARE = 0.01


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


def read_text_file(path: Path) -> tuple[str, str]:
    """``(text, encoding)`` of a text file; ``DocumentError`` naming it on failure."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file ({exc.strerror or exc}); skipped") from exc
    return decode_bytes(data, str(path))


class TextLoader:
    """.txt and .md: the decoded file is the text; headings come from its lines."""

    kind = "txt"
    suffixes = (".txt", ".md", ".markdown", ".text")

    def load(self, path: Path, name: str) -> list[Document]:
        text, encoding = read_text_file(path)
        if not text.strip():
            raise DocumentError(f"{path}: the file is empty (no text to index); skipped")
        kind = "md" if path.suffix.lower() in (".md", ".markdown") else "txt"
        return [Document(name=name, path=path, text=text, encoding=encoding, kind=kind)]
