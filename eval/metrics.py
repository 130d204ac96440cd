"""Pure metric functions: retrieval ranking, answers, citations, abstention, latency.

Spans are ``(doc, start, end)`` character offsets into the original file text;
documents are compared by file name (``eval.qa.source_key``).

Gold relevance: a retrieved span is relevant to a piece of evidence when they
are in the same file and overlap by at least half of the evidence's length.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

from eval.qa import GoldSpan, source_key
from rag.text import normalize

Span = tuple[str, int, int]
RETRIEVAL_KS = (1, 3, 5, 10)
_MARKER_RE = re.compile(r"\[\d+\]")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


# --- spans -------------------------------------------------------------------

def overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    """Number of characters two half-open spans share."""
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def covers(span: Span, gold: GoldSpan) -> bool:
    """Gold relevance: same file, overlap >= half of the evidence's length."""
    doc, start, end = span
    if source_key(doc) != source_key(gold.source):
        return False
    return overlap(start, end, gold.start, gold.end) * 2 >= gold.length


def cites(span: Span, gold: GoldSpan) -> bool:
    """A citation points at the evidence: same file, overlap >= half of the shorter span.

    Citations quote single sentences, which may be shorter than the evidence,
    so the bar is half of whichever span is shorter; mere adjacency never counts.
    """
    doc, start, end = span
    if source_key(doc) != source_key(gold.source):
        return False
    shorter = min(end - start, gold.length)
    return shorter > 0 and overlap(start, end, gold.start, gold.end) * 2 >= shorter


# --- retrieval -----------------------------------------------------------------

def coverage(ranking: Sequence[Span], golds: Sequence[GoldSpan]) -> list[set[int]]:
    """For each rank, the indices of the gold spans it covers *for the first time*.

    A span repeated later in the ranking (duplicate hit) covers nothing new, so
    duplicates can never raise a metric; they only take up a rank.
    """
    seen_spans: set[tuple[str, int, int]] = set()
    found: set[int] = set()
    out = []
    for span in ranking:
        key = (source_key(span[0]), span[1], span[2])
        new: set[int] = set()
        if key not in seen_spans:
            seen_spans.add(key)
            new = {i for i, gold in enumerate(golds) if i not in found and covers(span, gold)}
            found |= new
        out.append(new)
    return out


def recall_at(ranking: Sequence[Span], golds: Sequence[GoldSpan], k: int) -> float:
    """1.0 when any gold span is covered in the top ``k`` (either evidence for multi)."""
    return 1.0 if any(coverage(ranking[:k], golds)) else 0.0


def all_found_at(ranking: Sequence[Span], golds: Sequence[GoldSpan], k: int) -> float:
    """1.0 when *every* gold span is covered in the top ``k`` ("both found" for multi)."""
    if not golds:
        return 0.0
    found = set().union(*coverage(ranking[:k], golds)) if ranking else set()
    return 1.0 if len(found) == len(golds) else 0.0


def mrr_at(ranking: Sequence[Span], golds: Sequence[GoldSpan], k: int = 10) -> float:
    """Reciprocal rank of the first relevant span within the top ``k`` (0 if none)."""
    for rank, new in enumerate(coverage(ranking[:k], golds), 1):
        if new:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranking: Sequence[Span], golds: Sequence[GoldSpan], k: int = 10) -> float:
    """nDCG@k with binary gains: each gold span counts once, at the first rank covering it.

    The ideal ranking puts one span per gold at ranks 1..len(golds).
    """
    if not golds:
        return 0.0
    dcg = sum(len(new) / math.log2(rank + 1)
              for rank, new in enumerate(coverage(ranking[:k], golds), 1))
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(golds), k) + 1))
    return min(1.0, dcg / ideal)


def retrieval_scores(ranking: Sequence[Span], golds: Sequence[GoldSpan]) -> dict[str, float]:
    """R@1/3/5/10, MRR@10, nDCG@10 and both@5/both@10 for one question."""
    scores = {f"R@{k}": recall_at(ranking, golds, k) for k in RETRIEVAL_KS}
    scores["MRR@10"] = mrr_at(ranking, golds, 10)
    scores["nDCG@10"] = ndcg_at(ranking, golds, 10)
    scores["both@5"] = all_found_at(ranking, golds, 5)
    scores["both@10"] = all_found_at(ranking, golds, 10)
    return scores


# --- answers -------------------------------------------------------------------

def strip_markers(text: str) -> str:
    """The answer without its ``[n]`` citation markers."""
    return _MARKER_RE.sub("", text)


def contains_fact(text: str, fact: str) -> bool:
    """``fact`` occurs in ``text`` ignoring whitespace and full/half-width forms."""
    return normalize(fact) in normalize(strip_markers(text))


def key_facts_present(answer: str, must_contain: Sequence[str]) -> bool:
    """Every key fact is in the answer (an empty answer has none; no facts -> False)."""
    return bool(must_contain) and bool(answer.strip()) and all(contains_fact(answer, f) for f in must_contain)


def _f1_chars(text: str) -> list[str]:
    return [c for c in normalize(strip_markers(text))
            if not unicodedata.category(c).startswith("P")]


def char_f1(prediction: str, reference: str) -> float:
    """Character-level F1 (multiset overlap) on normalised text without punctuation."""
    pred, ref = _f1_chars(prediction), _f1_chars(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def citation_hits_gold(citations: Iterable[Span], golds: Sequence[GoldSpan]) -> bool:
    """Some citation points at some gold evidence span (see ``cites``)."""
    return any(cites(span, gold) for span in citations for gold in golds)


def citation_precision(citations: Sequence[Span], golds: Sequence[GoldSpan]) -> float | None:
    """Share of an answer's citations that point at some gold evidence span (see ``cites``).

    ``None`` for an answer without citations (precision is undefined there;
    ``citation_hit`` already counts such answers as misses).
    """
    if not citations:
        return None
    return sum(1 for span in citations if any(cites(span, gold) for gold in golds)) / len(citations)


def claimed_facts(answer: str, question: str, must_contain: Sequence[str]) -> list[str]:
    """The key facts an answer states: the ``must_contain`` strings it contains plus the
    numbers it states that the question did not already mention."""
    facts = [m for m in must_contain if contains_fact(answer, m)]
    asked = set(_NUMBER_RE.findall(normalize(question)))
    body = normalize(strip_markers(answer))
    facts += [n for n in _NUMBER_RE.findall(body) if n not in asked]
    return facts


def is_grounded(answer: str, question: str, must_contain: Sequence[str], quotes: Sequence[str]) -> bool:
    """Every key fact stated in the answer also appears in a cited quote."""
    cited = normalize("".join(quotes))
    return all(normalize(fact) in cited for fact in claimed_facts(answer, question, must_contain))


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0 (undefined)."""
    return numerator / denominator if denominator else None


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Precision/recall of abstaining on unanswerable questions, and the false-abstention rate.

    precision = unanswerable among abstentions; recall = abstentions among
    unanswerable; false_abstention_rate = abstentions among answerable. Each is
    ``None`` when its denominator is empty.
    """
    pairs = list(zip(abstained, answerable))
    true_abstain = sum(1 for a, ok in pairs if a and not ok)
    return {
        "abstention_precision": ratio(true_abstain, sum(1 for a, _ in pairs if a)),
        "abstention_recall": ratio(true_abstain, sum(1 for _, ok in pairs if not ok)),
        "false_abstention_rate": ratio(sum(1 for a, ok in pairs if a and ok), sum(1 for _, ok in pairs if ok)),
    }


# --- aggregation -------------------------------------------------------------

def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values; ``None`` when there are none."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
