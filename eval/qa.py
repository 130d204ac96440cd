"""The Q&A file format and the corpus it refers to.

One JSON object per line::

    {"id": "q001", "question": "…", "answer": "…", "must_contain": ["…"],
     "evidence": "…", "source": "<file name>", "type": "fact",
     "evidence2": "…", "source2": "<file name>"}      # evidence2/source2: multi only

``evidence`` is a verbatim substring of the source file; its position in the
original file text is the gold span that retrieval and citations are scored on.
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


def gold_spans(item: QAItem, sources: dict[str, str]) -> list[GoldSpan]:
    """Gold spans of the question's evidence (first occurrence in its source file).

    Evidence that cannot be found yields no span (the validator reports it).
    """
    spans = []
    for evidence, source in item.evidence_pairs():
        text = sources.get(source_key(source))
        if text is None:
            continue
        start = text.find(evidence)
        if start >= 0:
            spans.append(GoldSpan(source_key(source), start, start + len(evidence)))
    return spans


def source_key(doc: str) -> str:
    """How a document is named for matching: its file name (hits may carry paths)."""
    return Path(doc).name
