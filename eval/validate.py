"""Check a Q&A file against the schema and the corpus; report every violation.

Per question: the schema (keys, types), a known ``type``, a unique ``id``, the
evidence is 15-80 characters and occurs verbatim (exactly once) in its source
file, every ``must_contain`` string occurs in the evidence (or evidence2) and in
the reference answer, multi questions carry evidence2/source2, unanswerable
ones follow their conventions. Per set: the minimum counts per type, every
corpus file covered, and at least a third of the answerable questions share no
run of more than 6 characters with their evidence (so keyword matching alone
cannot answer them).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.qa import (OPTIONAL_KEYS, REQUIRED_KEYS, TYPES, UNANSWERABLE_ANSWER, QAItem,
                     load_sources, read_records, source_key)
from rag.text import normalize

EVIDENCE_MIN, EVIDENCE_MAX = 15, 80
MAX_SHARED_RUN = 6
MIN_NO_OVERLAP_SHARE = 1 / 3
#: Minimum counts for a full evaluation set (issue 6). ``None`` disables.
DEFAULT_MINIMUMS = {"total": 80, "unanswerable": 8, "multi": 5, "paraphrase": 10}
SET_ID = "<set>"


@dataclass(frozen=True)
class Violation:
    """One problem, tied to a question id (or ``<set>`` / ``line N``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest common substring of ``a`` and ``b``."""
    if not a or not b:
        return 0
    best = 0
    previous = [0] * (len(b) + 1)
    for ca in a:
        current = [0] * (len(b) + 1)
        for j, cb in enumerate(b, 1):
            if ca == cb:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def shared_run(item: QAItem) -> int:
    """Longest run the question shares with any of its evidence (normalised text)."""
    question = normalize(item.question)
    return max((longest_common_run(question, normalize(ev)) for ev, _ in item.evidence_pairs()),
               default=0)


def _check_schema(where: str, record: dict[str, Any]) -> list[Violation]:
    out = []
    for key in REQUIRED_KEYS:
        if key not in record:
            out.append(Violation(where, f"missing key '{key}'"))
    for key in record:
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            out.append(Violation(where, f"unknown key '{key}'"))
    for key in ("id", "question", "answer", "evidence", "source", "type", *OPTIONAL_KEYS):
        if key in record and not isinstance(record[key], str):
            out.append(Violation(where, f"'{key}' must be a string, got {type(record[key]).__name__}"))
    must = record.get("must_contain")
    if "must_contain" in record and not (isinstance(must, list) and all(isinstance(m, str) for m in must)):
        out.append(Violation(where, "'must_contain' must be a list of strings"))
    return out


def _check_evidence(where: str, label: str, evidence: str, source: str,
                    sources: dict[str, str]) -> list[Violation]:
    out = []
    if not evidence or not source:
        return [Violation(where, f"{label}: evidence and source are required")]
    n = len(evidence)
    if not EVIDENCE_MIN <= n <= EVIDENCE_MAX:
        out.append(Violation(where, f"{label}: evidence is {n} characters (must be {EVIDENCE_MIN}-{EVIDENCE_MAX})"))
    text = sources.get(source_key(source))
    if text is None:
        out.append(Violation(where, f"{label}: source file '{source}' is not in the corpus"))
        return out
    count = text.count(evidence)
    if count == 0:
        out.append(Violation(where, f"{label}: evidence is not a verbatim substring of {source}: {evidence!r}"))
    elif count > 1:
        out.append(Violation(where, f"{label}: evidence occurs {count} times in {source} (gold span is ambiguous)"))
    return out


def _check_item(where: str, item: QAItem, sources: dict[str, str]) -> list[Violation]:
    out = []
    if item.type not in TYPES:
        out.append(Violation(where, f"unknown type '{item.type}' (one of {', '.join(TYPES)})"))
    if not item.question.strip():
        out.append(Violation(where, "empty question"))
    if not item.answer.strip():
        out.append(Violation(where, "empty answer"))
    if item.type == "unanswerable":
        if item.answer != UNANSWERABLE_ANSWER:
            out.append(Violation(where, f"unanswerable: answer must be '{UNANSWERABLE_ANSWER}'"))
        if item.must_contain:
            out.append(Violation(where, "unanswerable: must_contain must be empty"))
        if item.evidence or item.source or item.evidence2 or item.source2:
            out.append(Violation(where, "unanswerable: evidence and source must be empty"))
        return out
    if item.type not in TYPES:
        return out
    out += _check_evidence(where, "evidence", item.evidence, item.source, sources)
    if item.type == "multi":
        out += _check_evidence(where, "evidence2", item.evidence2, item.source2, sources)
        if item.evidence2 and item.evidence2 == item.evidence and item.source2 == item.source:
            out.append(Violation(where, "multi: evidence2 repeats evidence"))
    elif item.evidence2 or item.source2:
        out.append(Violation(where, f"evidence2/source2 are only for multi questions (type is {item.type})"))
    if not item.must_contain:
        out.append(Violation(where, "must_contain is empty (answerable questions need key facts)"))
    evidences = [item.evidence] + ([item.evidence2] if item.type == "multi" else [])
    answer = normalize(item.answer)
    for fact in item.must_contain:
        if not fact.strip():
            out.append(Violation(where, "must_contain has an empty string"))
            continue
        if not any(fact in ev for ev in evidences if ev):
            out.append(Violation(where, f"must_contain {fact!r} is not in the evidence"))
        if normalize(fact) not in answer:
            out.append(Violation(where, f"must_contain {fact!r} is not in the reference answer"))
    if item.type == "multi" and item.evidence2:
        for label, ev in (("evidence", item.evidence), ("evidence2", item.evidence2)):
            if not any(fact in ev for fact in item.must_contain):
                out.append(Violation(where, f"multi: no must_contain string comes from {label}"))
    return out


def _check_set(items: list[QAItem], sources: dict[str, str], minimums: dict[str, int] | None,
               names: dict[str, str] | None = None) -> list[Violation]:
    out = []
    counts = Counter(item.type for item in items)
    if minimums:
        if len(items) < minimums.get("total", 0):
            out.append(Violation(SET_ID, f"{len(items)} questions (need at least {minimums['total']})"))
        for kind, need in minimums.items():
            if kind != "total" and counts[kind] < need:
                out.append(Violation(SET_ID, f"{counts[kind]} '{kind}' questions (need at least {need})"))
    covered = {source_key(s) for item in items for _, s in item.evidence_pairs()}
    for name in sorted(set(sources) - covered):
        out.append(Violation(SET_ID, f"corpus file {(names or {}).get(name, name)} is not covered by any question"))
    answerable = [item for item in items if item.answerable and item.type in TYPES]
    if answerable:
        free = sum(1 for item in answerable if shared_run(item) <= MAX_SHARED_RUN)
        share = free / len(answerable)
        if share < MIN_NO_OVERLAP_SHARE:
            out.append(Violation(SET_ID, (
                f"only {free}/{len(answerable)} ({share:.0%}) answerable questions share no run of more than "
                f"{MAX_SHARED_RUN} characters with their evidence (need at least a third)")))
    return out


def validate_records(records: list[tuple[int, Any]], sources: dict[str, str],
                     minimums: dict[str, int] | None = DEFAULT_MINIMUMS) -> list[Violation]:
    """Every violation in parsed records ``(line number, object)``."""
    names = {source_key(name): name for name in sources}
    sources = {source_key(name): text for name, text in sources.items()}
    out: list[Violation] = []
    items: list[QAItem] = []
    seen: dict[str, int] = {}
    for number, record in records:
        if not isinstance(record, dict):
            out.append(Violation(f"line {number}", "not a JSON object"))
            continue
        qid = record.get("id")
        where = str(qid) if isinstance(qid, str) and qid else f"line {number}"
        if not (isinstance(qid, str) and qid.strip()):
            out.append(Violation(where, "missing or empty id"))
        elif qid in seen:
            out.append(Violation(where, f"duplicate id (also on line {seen[qid]})"))
        else:
            seen[qid] = number
        schema = _check_schema(where, record)
        out += schema
        if schema:
            continue
        item = QAItem.from_dict(record)
        items.append(item)
        out += _check_item(where, item, sources)
    out += _check_set(items, sources, minimums, names)
    return out


def validate_file(path: str | Path, docs_dir: str | Path,
                  minimums: dict[str, int] | None = DEFAULT_MINIMUMS) -> list[Violation]:
    """Every violation in the Q&A file ``path`` against the corpus in ``docs_dir``."""
    return validate_records(read_records(path), load_sources(docs_dir), minimums)


def statistics(path: str | Path) -> dict[str, Any]:
    """Counts per type and per source file, and the share with no long shared run."""
    from eval.qa import load_qa

    items = load_qa(path)
    per_source: Counter[str] = Counter()
    for item in items:
        for _, source in item.evidence_pairs():
            per_source[source_key(source)] += 1
    answerable = [item for item in items if item.answerable]
    free = sum(1 for item in answerable if shared_run(item) <= MAX_SHARED_RUN)
    return {
        "questions": len(items),
        "per_type": dict(sorted(Counter(item.type for item in items).items())),
        "per_source": dict(sorted(per_source.items())),
        "no_long_overlap": free,
        "no_long_overlap_share": free / len(answerable) if answerable else 0.0,
    }
