"""The Q&A file format and the corpus it refers to.

One JSON object per line::

    {"id": "q001", "question": "…", "answer": "…", "must_contain": ["…"],
     "evidence": "…", "source": "<file name>", "type": "fact",
     "evidence2": "…", "source2": "<file name>"}      # evidence2/source2: multi only

``evidence`` is a verbatim substring of the source file; its position in the
original file text is the gold span that retrieval and citations are scored on.

Documents are matched by file stem (``source_key``), so the same questions score a
corpus converted to PDF, Word, HTML or scans (``002_….txt`` -> ``002_….pdf``); in
text extracted from such files the evidence is found ignoring whitespace, and in
OCR'd text by the position most of its 6-character pieces agree on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError

TYPES = ("fact", "number", "paraphrase", "multi", "unanswerable")
UNANSWERABLE_ANSWER = "资料中没有相关信息"
REQUIRED_KEYS = ("id", "question", "answer", "must_contain", "evidence", "source", "type")
OPTIONAL_KEYS = ("evidence2", "source2")
DOC_SUFFIXES = (".txt", ".md")

#: Where the shipped corpus lives (``seeds/`` next to the ``eval`` package).
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOCS_DIR = REPO_ROOT / "seeds"
DEFAULT_QA_FILE = Path(__file__).resolve().parent / "qa.jsonl"


class QAFileError(RagError):
    """The Q&A file cannot be read or a line is not a JSON object."""


@dataclass(frozen=True)
class GoldSpan:
    """Where one piece of evidence sits in the original text of a source file."""

    source: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass
class QAItem:
    """One question of the set (fields as in the file)."""

    id: str
    question: str
    answer: str
    must_contain: list[str]
    evidence: str
    source: str
    type: str
    evidence2: str = ""
    source2: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    def evidence_pairs(self) -> list[tuple[str, str]]:
        """``(evidence, source)`` for each piece of evidence the question has."""
        pairs = []
        if self.evidence and self.source:
            pairs.append((self.evidence, self.source))
        if self.evidence2 and self.source2:
            pairs.append((self.evidence2, self.source2))
        return pairs

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QAItem":
        known = set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
        return cls(
            id=str(data.get("id", "")),
            question=str(data.get("question", "")),
            answer=str(data.get("answer", "")),
            must_contain=[str(m) for m in data.get("must_contain") or []],
            evidence=str(data.get("evidence") or ""),
            source=str(data.get("source") or ""),
            type=str(data.get("type", "")),
            evidence2=str(data.get("evidence2") or ""),
            source2=str(data.get("source2") or ""),
            extra={k: v for k, v in data.items() if k not in known},
        )


def read_records(path: str | Path) -> list[tuple[int, Any]]:
    """``(line number, parsed JSON)`` for each non-blank line; raises on bad JSON."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise QAFileError(f"Q&A file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise QAFileError(f"Q&A file is not UTF-8: {path} ({exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise QAFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return records


def load_qa(path: str | Path) -> list[QAItem]:
    """The questions of a Q&A file (no validation beyond "each line is an object")."""
    items = []
    for number, record in read_records(path):
        if not isinstance(record, dict):
            raise QAFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        items.append(QAItem.from_dict(record))
    if not items:
        raise QAFileError(f"Q&A file has no questions: {path}")
    return items


def load_sources(docs_dir: str | Path) -> dict[str, str]:
    """File name -> decoded text for every .txt/.md file under ``docs_dir``."""
    docs_dir = Path(docs_dir)
    if not docs_dir.is_dir():
        raise RagError(f"documents folder not found: {docs_dir}")
    sources: dict[str, str] = {}
    for path in sorted(docs_dir.rglob("*")):
        if path.is_file() and path.suffix.lower() in DOC_SUFFIXES:
            sources[path.name] = path.read_text(encoding="utf-8-sig")
    return sources


def sources_from_index(retriever: Any) -> dict[str, str]:
    """Document key -> the text the index stores (decoded or extracted), for any format."""
    return {source_key(doc): retriever.source_text(doc) for doc in retriever.documents}


def find_evidence(evidence: str, text: str) -> tuple[int, int] | None:
    """Span of ``evidence`` in ``text``: verbatim, else ignoring whitespace, else by vote.

    The vote: every 6-character piece of the evidence (whitespace and width
    normalised) found in the text proposes where the evidence starts; the start
    proposed by at least a third of the pieces wins. This finds evidence in OCR'd
    text with a few misread characters.
    """
    start = text.find(evidence)
    if start >= 0:
        return start, start + len(evidence)
    from rag.text import locate, normalize

    span = locate(evidence, text)
    if span is not None:
        return span
    target = normalize(evidence)
    if len(target) < 6:
        return None
    positions = [i for i, ch in enumerate(text) if not ch.isspace()]
    squeezed = normalize("".join(text[i] for i in positions))
    if len(squeezed) != len(positions):  # NFKC changed the length: cannot map back
        return None
    votes: dict[int, int] = {}
    pieces = range(0, len(target) - 5, 3)
    for k in pieces:
        piece = target[k:k + 6]
        found = squeezed.find(piece)
        while found >= 0:
            votes[found - k] = votes.get(found - k, 0) + 1
            found = squeezed.find(piece, found + 1)
    if not votes:
        return None
    best = max(votes, key=lambda v: (votes[v], -v))
    if votes[best] < max(2, len(pieces) / 3):
        return None
    first = max(0, best)
    last = min(len(positions) - 1, best + len(target) - 1)
    return positions[first], positions[last] + 1


def gold_spans(item: QAItem, sources: dict[str, str]) -> list[GoldSpan]:
    """Gold spans of the question's evidence (first occurrence in its source file).

    Evidence that cannot be found yields no span (the validator reports it).
    """
    spans = []
    sources = {source_key(name): text for name, text in sources.items()}
    for evidence, source in item.evidence_pairs():
        text = sources.get(source_key(source))
        if text is None:
            continue
        span = find_evidence(evidence, text)
        if span is not None:
            spans.append(GoldSpan(source_key(source), *span))
    return spans


def source_key(doc: str) -> str:
    """How a document is named for matching: its file stem (hits may carry paths, and a
    converted corpus has other suffixes)."""
    return Path(doc).stem
