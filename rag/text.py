"""Small text utilities shared by chunking, answering and evaluation.

Cleaning changes only whitespace (re-joined lines, folded full-width spaces),
so a cleaned passage can always be found again in the original text by
comparing the two with whitespace removed: that is what ``locate`` does.
"""
from __future__ import annotations

import re
import unicodedata

#: Characters that end a sentence in Chinese (and mixed) text.
SENTENCE_END = "。！？!?；;…"
#: Closing quotes/brackets that belong to the sentence they follow.
_CLOSERS = "”’」』）)】》\"'"

_SENTENCE_RE = re.compile(
    rf"[^{SENTENCE_END}\n]*(?:[{SENTENCE_END}]+[{_CLOSERS}]*|\n|$)"
)
_WS_RE = re.compile(r"\s+")
#: A scraped news article's header before its body: date, time, source, then 正文：
#: (``2023-07-31 15:51，正文：``, ``来源：央视网 | 2023年07月25日 15:29:10，正文：``).
_ARTICLE_HEADER_RE = re.compile(r"[^。！？!?\n]{0,80}?正文\s*[:：]\s*")
# Lone surrogates: what Python makes of undecodable bytes in a command-line argument,
# or a "\ud800" escape in JSON. No UTF-8 encoder or tokenizer accepts them.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def drop_invalid_characters(text: str) -> tuple[str, int]:
    """``text`` without lone surrogates, and how many were dropped."""
    cleaned, dropped = _SURROGATE_RE.subn("", text)
    return cleaned, dropped


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences of ``text``.

    A sentence ends after 。！？；… (plus any closing quotes) or at a line end.
    Leading/trailing whitespace is excluded from each span; empty sentences are
    dropped.
    """
    spans: list[tuple[int, int]] = []
    for match in _SENTENCE_RE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see ``sentence_spans``)."""
    return [text[s:e] for s, e in sentence_spans(text)]


def normalize(text: str) -> str:
    """NFKC (full-width -> half-width letters, digits, punctuation) and no whitespace.

    Used for matching, never for display.
    """
    return _WS_RE.sub("", unicodedata.normalize("NFKC", text))


def locate(quote: str, source: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Find ``quote`` in ``source[start:end]`` ignoring whitespace differences.

    Returns the span in ``source`` coordinates (from the quote's first to its
    last non-space character), or ``None`` when it is not there.
    """
    end = len(source) if end is None else end
    target = _WS_RE.sub("", quote)
    if not target:
        return None
    positions = [i for i in range(start, end) if not source[i].isspace()]
    squeezed = "".join(source[i] for i in positions)
    found = squeezed.find(target)
    if found < 0:
        return None
    return positions[found], positions[found + len(target) - 1] + 1


def body_start(text: str, start: int = 0, end: int | None = None) -> int:
    """Where the body begins in ``text[start:end]`` after a scraped article's header
    (``2023-07-31，正文：``), or ``start`` when there is none. The header carries no
    meaning for retrieval or answers, but stays in the text so offsets keep pointing
    into the original file."""
    m = _ARTICLE_HEADER_RE.match(text, start, len(text) if end is None else end)
    return m.end() if m else start
