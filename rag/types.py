"""Plain data types that flow between the stages of the pipeline.

documents -> Chunk (ingestion) -> Hit (retrieval) -> Answer with Citations (answering)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Chunk:
    """A passage of one source document, cut along its headings.

    ``start``/``end`` are character offsets into the *original* file text (as
    decoded, before any cleaning). ``text`` is the cleaned passage: the same
    characters as ``source[start:end]`` except that whitespace is normalised
    (line breaks inside sentences re-joined, full-width spaces folded) and
    repeated boilerplate lines are dropped. ``page`` is the 1-based page of the
    original (PDF, scans) where the chunk starts; None for formats without pages.
    For formats other than .txt/.md the "original file text" is the text the
    loader extracted, which the index stores.
    """

    id: str
    doc: str
    heading_path: list[str]
    text: str
    start: int
    end: int
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chunk":
        return cls(
            id=data["id"],
            doc=data["doc"],
            heading_path=list(data["heading_path"]),
            text=data["text"],
            start=int(data["start"]),
            end=int(data["end"]),
            page=None if data.get("page") is None else int(data["page"]),
        )


@dataclass
class Hit:
    """A retrieved chunk with its score (higher is better) for one query."""

    chunk_id: str
    doc: str
    heading_path: list[str]
    text: str
    start: int
    end: int
    score: float
    mode: str = "hybrid"
    #: 1-based page where the passage starts (None: the format has no pages).
    page: int | None = None

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float, mode: str) -> "Hit":
        return cls(chunk.id, chunk.doc, list(chunk.heading_path), chunk.text,
                   chunk.start, chunk.end, float(score), mode, chunk.page)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    """One numbered source of an answer: the exact supporting sentence(s).

    ``start``/``end`` locate ``quote`` in the original file text, so a UI can
    highlight the sentence rather than the whole chunk. ``page`` is the 1-based
    page of the original where the quote starts (None: the format has no pages).
    """

    n: int
    chunk_id: str
    doc: str
    heading_path: list[str]
    quote: str
    start: int
    end: int
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What the assistant says, with the evidence behind it."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    hits: list[Hit] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    generator: str = "extractive"
    # The query actually sent to retrieval (differs from ``question`` for follow-ups).
    search_query: str = ""
    # Sentences of a generated answer that no shown passage supports.
    unsupported: list[str] = field(default_factory=list)
    # Human-readable notices: truncated question, generator fell back, ...
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
