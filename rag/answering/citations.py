"""Checking the citations of a generated answer against the passages shown.

For every sentence of the answer:

* ``[n]`` markers that do not name a shown passage are dropped;
* the sentence is checked against each passage it cites: the share of its
  character bigrams found in the passage (``support``) must reach
  ``SUPPORT_THRESHOLD``, and every number it states must occur in the passage;
* citations that fail are removed; a sentence left with no supporting
  citation gets the marker of a shown passage that does support it, or else is
  flagged in ``Answer.unsupported`` (and never shown as sourced).

Each kept marker becomes one ``Citation`` whose quote is the passage sentence
that best matches the answer sentence, located in the original file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from rag.overlap import bigrams
from rag.text import normalize, sentence_spans
from rag.types import Citation, Hit

#: Minimum share of an answer sentence's character bigrams that its cited
#: passage must contain. Chosen on eval/qa.jsonl: each reference answer against
#: the retrieved passage holding its evidence (104 pairs) vs the other retrieved
#: passages (396): at 0.5 recall 0.88 / precision 0.94, at 0.6 recall 0.88 /
#: precision 0.97, at 0.7 recall 0.86 / precision 0.98.
SUPPORT_THRESHOLD = 0.6

_MARKER_RE = re.compile(r"\s*[\[【［]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】］]")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class AnswerSentence:
    """One sentence of a generated answer and the passage numbers it cites."""

    text: str                      # without markers
    cited: list[int] = field(default_factory=list)


@dataclass
class CheckedAnswer:
    """The answer with only supported markers, its citations and flagged sentences."""

    text: str
    citations: list[Citation]
    unsupported: list[str]
    removed: list[tuple[str, int]] = field(default_factory=list)  # (sentence, passage n)


def parse_answer(text: str) -> list[AnswerSentence]:
    """Split an answer into sentences with the ``[n]`` markers that follow each.

    Markers written after the sentence's end punctuation (``…。[1]``) belong to
    that sentence, not to the next one.
    """
    sentences: list[AnswerSentence] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        lead = re.match(rf"(?:{_MARKER_RE.pattern})+", piece)
        if lead and sentences:
            sentences[-1].cited.extend(_numbers(lead.group(0)))
            piece = piece[lead.end():]
        cited = _numbers(piece)
        body = _MARKER_RE.sub("", piece).strip()
        if body:
            sentences.append(AnswerSentence(body, cited))
        elif cited and sentences:
            sentences[-1].cited.extend(cited)
    for s in sentences:
        s.cited = list(dict.fromkeys(s.cited))
    return sentences


def _numbers(text: str) -> list[int]:
    out = []
    for group in _MARKER_RE.findall(text):
        out.extend(int(x) for x in re.findall(r"\d+", group))
    return out


def _claim(sentence: str) -> str:
    return re.sub(r"[\W_]+", "", normalize(sentence))


def support(sentence: str, passage: str) -> float:
    """Share of ``sentence``'s character bigrams that occur in ``passage`` (0..1)."""
    grams = bigrams(_claim(sentence))
    if not grams:
        return 0.0
    return len(grams & bigrams(passage)) / len(grams)


def numbers_supported(sentence: str, passage: str) -> bool:
    """Whether every number stated in ``sentence`` occurs in ``passage``."""
    norm_passage = normalize(passage).replace(",", "")
    found = set(_NUMBER_RE.findall(norm_passage))
    return all(num in found for num in _NUMBER_RE.findall(normalize(sentence).replace(",", "")))


def is_supported(sentence: str, passage: str, threshold: float = SUPPORT_THRESHOLD) -> bool:
    """The sentence is backed by the passage: enough shared bigrams and all numbers present."""
    return support(sentence, passage) >= threshold and numbers_supported(sentence, passage)


def best_sentence(claim: str, passage: str) -> tuple[int, int]:
    """Span in ``passage`` of its sentence that best matches ``claim``."""
    spans = sentence_spans(passage) or [(0, len(passage))]
    grams = bigrams(_claim(claim))

    def score(span: tuple[int, int]) -> tuple[float, int]:
        sb = bigrams(passage[span[0]:span[1]])
        covered = len(grams & sb) / len(grams) if grams else 0.0
        return covered, -(span[1] - span[0])

    return max(spans, key=score)


def check_answer(text: str, hits: Sequence[Hit], threshold: float = SUPPORT_THRESHOLD,
                 source_text: Callable[[str], str] | None = None) -> CheckedAnswer:
    """Check every sentence of a generated ``text`` against the passages ``hits``.

    Markers are passage numbers (``[1]`` is ``hits[0]``) and stay so in the
    returned text, which matches what was streamed except for removed markers.
    """
    parts: list[str] = []
    unsupported: list[str] = []
    removed: list[tuple[str, int]] = []
    best_quote: dict[int, tuple[float, str]] = {}
    for sentence in parse_answer(text):
        kept = []
        for n in sentence.cited:
            if 1 <= n <= len(hits) and is_supported(sentence.text, hits[n - 1].text, threshold):
                kept.append(n)
            else:
                removed.append((sentence.text, n))
        if not kept and _claim(sentence.text):
            # Uncited or wrongly cited: attach the shown passage that supports it, if any.
            candidates = [(support(sentence.text, h.text), n) for n, h in enumerate(hits, start=1)
                          if is_supported(sentence.text, h.text, threshold)]
            if candidates:
                kept.append(max(candidates)[1])
        if not kept:
            unsupported.append(sentence.text)
        for n in kept:
            passage = hits[n - 1].text
            s, e = best_sentence(sentence.text, passage)
            value = support(sentence.text, passage[s:e])
            if n not in best_quote or value > best_quote[n][0]:
                best_quote[n] = (value, passage[s:e])
        parts.append(sentence.text + "".join(f"[{n}]" for n in kept))
    citations = [make_citation(n, hits[n - 1], best_quote[n][1], source_text)
                 for n in sorted(best_quote)]
    return CheckedAnswer("".join(parts), citations, unsupported, removed)


def make_citation(n: int, hit: Hit, quote: str,
                  source_text: Callable[[str], str] | None = None) -> Citation:
    """A Citation for ``quote`` from ``hit``, located in the original file when possible.

    Falls back to the chunk's own span when the source is unavailable or the
    quote cannot be found there (never to a wrong place).
    """
    from rag.text import locate

    span = None
    if source_text is not None:
        try:
            source = source_text(hit.doc)
        except Exception:  # a missing source file must not break the answer
            source = None
        if source:
            span = locate(quote, source, hit.start, min(hit.end, len(source)))
    start, end = span if span else (hit.start, hit.end)
    return Citation(n=n, chunk_id=hit.chunk_id, doc=hit.doc, heading_path=list(hit.heading_path),
                    quote=quote, start=start, end=end, page=getattr(hit, "page", None))
