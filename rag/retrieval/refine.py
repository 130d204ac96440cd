"""Stage 3 of hybrid search: finer ranking of the best few fused passages.

Near-duplicate news (three articles on the same wildfire, one article split
into two chunks) fuse to almost the same score, though only one of them holds
the sentence that matches the question. The ``REFINE_DEPTH`` best passages are
re-scored by their fused score plus ``REFINE_WEIGHT`` times the best coverage
of the query's words and bigrams by ``REFINE_WINDOW`` consecutive sentences of
theirs (``rag.overlap``), read after the passage's context: its heading path, or
for a later chunk of a document without headings (a scraped news article) the
document's lead sentence (``document_lead``), which names what the article is
about when the chunk itself no longer does.

Measured with e5-small, hybrid z-score fusion (R@1 before -> after): eval/qa.jsonl
0.91 -> 0.92, crud-dev 0.852 -> 0.873 at weight 3 (2: 0.92 / 0.867, 4: 0.92 / 0.873,
6: 0.92 / 0.870), depth 10 (one sentence, no lead). Two sentences and the lead
(eval/qa.jsonl's 120 answerable / crud-dev's 338, R@1 and MRR@10): 0.925 / 0.953 ->
0.925 / 0.951 and 0.864 / 0.921 -> 0.882 / 0.931 (two sentences alone 0.876 / 0.928,
the lead alone 0.870 / 0.923; three sentences 0.876).
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from rag.overlap import best_sentence_overlap, keywords, question_bigrams
from rag.text import body_start, sentence_spans

T = TypeVar("T")

#: How many of the best fused passages are re-scored.
REFINE_DEPTH = 10
#: Weight of the best sentences' coverage (0..1) against the fused score (a sum of z-scores).
REFINE_WEIGHT = 3.0
#: How many consecutive sentences are read together for the coverage.
REFINE_WINDOW = 2
#: The lead sentence of a document is cut to this many characters.
LEAD_CHARS = 60
#: A lead sentence shorter than this (a photo credit, ``新华社北京电``) is skipped for the next one.
LEAD_MIN_CHARS = 8


def document_lead(text: str) -> tuple[str, int]:
    """``(lead, end)``: the first sentence of a document's body (after a scraped article's
    ``2023-07-31，正文：`` header) of at least ``LEAD_MIN_CHARS`` characters, cut to
    ``LEAD_CHARS``, and the offset in ``text`` where that sentence ends; ``("", 0)``
    when there is none."""
    body = body_start(text)
    for start, end in sentence_spans(text):
        start = max(start, body)
        if end - start >= LEAD_MIN_CHARS:
            return text[start:min(end, start + LEAD_CHARS)], end
    return "", 0


def refine(query: str, ranked: Sequence[tuple[T, float]], depth: int = REFINE_DEPTH,
           weight: float = REFINE_WEIGHT, window: int = REFINE_WINDOW,
           context: Callable[[T], str] | None = None) -> list[tuple[T, float]]:
    """``ranked`` (chunks with fused scores, best first) with its first ``depth`` re-scored and re-sorted.

    ``context(chunk)``: text read in front of a chunk that has no heading path (the
    retriever passes its document's lead for a chunk after the lead); default none.
    """
    if weight <= 0 or len(ranked) < 2:
        return list(ranked)
    words, q_bigrams = keywords(query), question_bigrams(query)
    head = []
    for chunk, score in ranked[:depth]:
        path = getattr(chunk, "heading_path", []) or []
        header = " ".join(path) if path else (context(chunk) if context is not None else "")
        coverage = best_sentence_overlap(words, q_bigrams, chunk.text, header, window=window)
        head.append((chunk, score + weight * coverage))
    head.sort(key=lambda item: -item[1])
    return head + list(ranked[depth:])
