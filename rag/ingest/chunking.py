"""Heading-aware chunking.

One chunk per section (a heading, its own text, up to the next heading) when it
fits ``ChunkSettings.max_chars``; a longer section is split at sentence
boundaries (``rag.text.sentence_spans``: 。！？；… and line ends) with an overlap
of up to ``overlap_chars`` characters of whole sentences; a section shorter
than ``min_chars`` is merged with the next section of the same top-level item
(a heading with nothing under it always goes with its first subsection).
Merging never crosses a top-level heading, so a chunk never spans two articles
of a compilation or two headline items of a newspaper page.

Provenance contract (tested for every chunk of every seed)
----------------------------------------------------------
``chunk.start``/``chunk.end`` are offsets into ``Document.text``; they cover
the chunk's first to last character. Let ``kept(source, start, end)`` be
``source[start:end]`` with the boilerplate lines that ingestion dropped inside
that span removed (``source_passage`` below computes it). Then::

    comparable(chunk.text) == comparable(source_passage(source, chunk, dropped))

where ``rag.ingest.cleaning.comparable`` is ``rag.text.normalize`` (NFKC, no whitespace)
minus invisible characters. In words: the chunk holds exactly the characters
of its source span, in order, except whitespace and dropped boilerplate.
Every sentence of a chunk can therefore be found with ``rag.text.locate``
inside ``source[start:end]``.

Chunk ids are ``sha1(doc, heading path, text)`` truncated to 16 hex digits, so
an unchanged passage keeps its id across runs; ``assign_ids`` makes them unique
within a corpus.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.ingest.cleaning import Line
from rag.ingest.headings import Section, parse_toc_entry
from rag.text import sentence_spans
from rag.types import Chunk

_SOFT_KINDS = {"numbered"}
#: Default ``ChunkSettings.plain_max_chars`` of a new index.
PLAIN_MAX_CHARS = 800
_SOFT_BREAKS = "，,、：:"


@dataclass
class ChunkSettings:
    """Chunk size policy (characters of cleaned text).

    ``overlap_chars`` is capped at a quarter and ``min_chars`` at half of ``max_chars``.
    ``toc_entries`` adds one small chunk per table-of-contents line.
    """

    max_chars: int = 400
    overlap_chars: int = 60
    min_chars: int = 80
    #: Also give every table-of-contents line its own chunk (see ``toc_entry_chunks``).
    toc_entries: bool = True
    #: Longest chunk of a document in which no heading was found (a scraped news article, a
    #: plain note); None: ``max_chars``. Such a text has no sections to keep apart, and cut at
    #: 400 characters a 730-character article became two overlapping chunks that each held half
    #: of what a question asks about (see README *Documents and chunking*). 800 characters are
    #: about e5's 512-token window.
    plain_max_chars: int | None = PLAIN_MAX_CHARS

    def __post_init__(self) -> None:
        if self.max_chars < 50:
            raise ValueError(f"max_chars must be at least 50, got {self.max_chars}")
        if self.overlap_chars < 0 or self.min_chars < 0:
            raise ValueError("overlap_chars and min_chars cannot be negative")
        # Capped so that a small max_chars (e.g. --max-chars 100) still works.
        self.overlap_chars = min(self.overlap_chars, self.max_chars // 4)
        self.min_chars = min(self.min_chars, self.max_chars // 2)
        if self.plain_max_chars is not None and self.plain_max_chars < 50:
            raise ValueError(f"plain_max_chars must be at least 50, got {self.plain_max_chars}")

    def for_sections(self, sections: Sequence[Section]) -> "ChunkSettings":
        """The settings that cut a document of these ``sections``: ``plain_max_chars`` as the
        size budget when none of them has a heading."""
        if self.plain_max_chars is None or self.plain_max_chars == self.max_chars:
            return self
        if any(section.path for section in sections if section.blocks):
            return self
        return dataclasses.replace(self, max_chars=self.plain_max_chars)


@dataclass
class _Piece:
    """Text of one or more sections, ready to be cut, with per-character source offsets."""

    path: list[str]
    text: str
    pos: list[int]
    root: int
    soft: bool          # starts at a soft (numbered) heading, or has no heading
    heading_only: bool  # nothing but its heading line

    def __len__(self) -> int:
        return len(self.text)


def _piece(section: Section) -> _Piece:
    text = ""
    pos: list[int] = []
    for block in section.blocks:
        if text:
            text += "\n"
            pos.append(pos[-1] + 1)
        text += block.text
        pos.extend(block.pos)
    heading = section.heading
    return _Piece(path=list(section.path), text=text, pos=pos, root=section.root,
                  soft=heading is None or heading.kind in _SOFT_KINDS,
                  heading_only=heading is not None and len(section.blocks) == 1)


def _common_prefix(a: list[str], b: list[str]) -> list[str]:
    out = []
    for x, y in zip(a, b):
        if x != y:
            break
        out.append(x)
    return out


def _join(a: _Piece, b: _Piece, path: list[str]) -> _Piece:
    # A heading with nothing under it joins the item it introduces.
    root, soft = (b.root, b.soft) if a.heading_only else (a.root, a.soft)
    return _Piece(path=path, text=a.text + "\n" + b.text, pos=a.pos + [a.pos[-1] + 1] + b.pos,
                  root=root, soft=soft, heading_only=a.heading_only and b.heading_only)


def merge_small(pieces: Sequence[_Piece], settings: ChunkSettings) -> list[_Piece]:
    """Merge tiny sections forward within one top-level item.

    A section that is nothing but its heading always goes with the next section
    (a title stack such as ``# 2023`` / ``# 全国工会十大新闻``), taking its path.
    """
    out: list[_Piece] = []
    carry: _Piece | None = None
    for piece in pieces:
        if carry is not None:
            if carry.heading_only:
                piece = _join(carry, piece, piece.path)
            elif (carry.root == piece.root and piece.soft
                  and len(carry) + 1 + len(piece) <= settings.max_chars):
                piece = _join(carry, piece, _common_prefix(carry.path, piece.path))
            else:
                out.append(carry)
            carry = None
        if piece.heading_only or len(piece) < settings.min_chars:
            carry = piece
        else:
            out.append(piece)
    if carry is not None:
        previous = out[-1] if out else None
        if (previous is not None and previous.root == carry.root and carry.soft
                and len(previous) + 1 + len(carry) <= settings.max_chars):
            out[-1] = _join(previous, carry, _common_prefix(previous.path, carry.path))
        else:
            out.append(carry)
    return out


def _units(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text``, over-long sentences cut at commas (or hard)."""
    units: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        while end - start > max_chars:
            cut = start + max_chars
            for k in range(start + max_chars - 1, start + max_chars // 2, -1):
                if text[k] in _SOFT_BREAKS:
                    cut = k + 1
                    break
            units.append((start, cut))
            start = cut
        units.append((start, end))
    return units


def split_piece(piece: _Piece, settings: ChunkSettings) -> list[tuple[int, int]]:
    """Character ranges of ``piece.text``, each at most ``max_chars`` long, ending at sentence ends.

    Consecutive ranges overlap by the last whole sentence(s) of the previous range
    that fit in ``overlap_chars``, or, when the last sentence is longer, by its last
    clause(s) after a comma.
    """
    text = piece.text
    if len(text) <= settings.max_chars:
        return [(0, len(text))]
    units = _units(text, settings.max_chars)
    ranges: list[tuple[int, int]] = []
    i, start = 0, units[0][0]
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - start <= settings.max_chars:
            j += 1
        ranges.append((start, units[j][1]))
        if j + 1 >= len(units):
            break
        limit = units[j + 1][1] - settings.max_chars   # the next range may not start before this
        k = j + 1
        while (k - 1 > i and units[j][1] - units[k - 1][0] <= settings.overlap_chars
               and units[k - 1][0] >= limit):
            k -= 1
        if k <= j:
            i, start = k, units[k][0]
        else:
            tail = _clause_tail(text, units[j], settings.overlap_chars)
            i, start = j + 1, (tail if tail is not None and tail >= limit else units[j + 1][0])
    return ranges


def _clause_tail(text: str, unit: tuple[int, int], budget: int, shortest: int = 8) -> int | None:
    """Start of the longest run of final clauses of ``unit`` (after a comma) within ``budget``."""
    begin, end = unit
    for k in range(max(begin, end - budget - 1), end - shortest):
        if text[k] in _SOFT_BREAKS and k + 1 > begin:
            return k + 1
    return None


def chunk_id(doc: str, path: Sequence[str], text: str, salt: str = "") -> str:
    """Stable id of a passage: sha1 of document, heading path and text (16 hex digits)."""
    digest = hashlib.sha1()
    for part in (doc, "\x1e".join(path), text, salt):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:16]


def chunk_sections(doc: str, sections: Sequence[Section], settings: ChunkSettings | None = None) -> list[Chunk]:
    """Cut one document's sections into chunks (ids unique within the document)."""
    settings = (settings or ChunkSettings()).for_sections(sections)
    pieces = merge_small([_piece(s) for s in sections if s.blocks], settings)
    chunks: list[Chunk] = []
    for piece in pieces:
        for a, b in split_piece(piece, settings):
            while a < b and piece.text[a].isspace():
                a += 1
            while b > a and piece.text[b - 1].isspace():
                b -= 1
            if a == b:
                continue
            text = piece.text[a:b]
            chunks.append(Chunk(id="", doc=doc, heading_path=list(piece.path), text=text,
                                start=piece.pos[a], end=piece.pos[b - 1] + 1))
    if settings.toc_entries:
        for section in sections:
            if section.heading is not None and section.heading.kind == "toc":
                chunks.extend(toc_entry_chunks(doc, section))
    assign_ids(chunks)
    return chunks


def toc_entry_chunks(doc: str, section: Section) -> list[Chunk]:
    """One chunk per entry line (``标题……页码``) of a table-of-contents section.

    The whole TOC is chunked like any section too; these extra one-line chunks
    let a question about one article ("X 那篇从第几页开始") find its line instead
    of a 400-character list of titles. A short non-entry line (``三、企业工会``)
    is a group: it joins the heading path of the entries under it.
    """
    chunks: list[Chunk] = []
    group: list[str] = []
    for block in section.blocks[1:]:  # blocks[0] is the TOC title line
        text = block.text.strip()
        if not text:
            continue
        if parse_toc_entry(text) is None:
            group = [text] if len(text) <= 20 else []
            continue
        offset = block.text.index(text)
        chunks.append(Chunk(id="", doc=doc, heading_path=list(section.path) + group, text=text,
                            start=block.pos[offset], end=block.pos[offset + len(text) - 1] + 1))
    return chunks


def assign_ids(chunks: Iterable[Chunk], seen: set[str] | None = None) -> None:
    """Give each chunk its content id; a repeat of an id already used gets a counter salt."""
    seen = set() if seen is None else seen
    for chunk in chunks:
        base = chunk_id(chunk.doc, chunk.heading_path, chunk.text)
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = chunk_id(chunk.doc, chunk.heading_path, chunk.text, salt=str(n))
        seen.add(candidate)
        chunk.id = candidate


def source_passage(source: str, chunk: Chunk, dropped: Sequence[Line] = ()) -> str:
    """``source[chunk.start:chunk.end]`` without the dropped boilerplate lines inside it."""
    parts: list[str] = []
    cursor = chunk.start
    for line in sorted(dropped, key=lambda l: l.start):
        if line.start >= chunk.start and line.end <= chunk.end:
            parts.append(source[cursor:line.start])
            cursor = line.end
    parts.append(source[cursor:chunk.end])
    return "".join(parts)
