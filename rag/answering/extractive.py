"""The extractive answerer: quote the one to three source sentences that best answer.

No language model: sentences of the retrieved passages are scored by
embedding similarity to the question, keyword overlap (jieba words and
character bigrams), the passage's retrieval rank, and whether they contain
what the question asks for (a number for 多少, a date for 何时, a place for
哪里, a person for 谁). The chosen sentences are quoted verbatim, each followed
by a ``[n]`` marker whose Citation locates it in the original file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rag.answering.citations import make_citation
from rag.answering.lexical import (PUNCT_RE, answer_type, bigrams, keywords, lexical_overlap, matches_type,
                                   passages_about, question_bigrams)
from rag.text import normalize, sentence_spans
from rag.types import Citation, Hit

# --- scoring -----------------------------------------------------------------

@dataclass
class Weights:
    """How the sentence score combines its signals (tuned on eval/qa.jsonl)."""

    cosine: float = 1.0
    lexical: float = 0.6
    context: float = 0.2
    rank: float = 0.05
    answer_type: float = 0.15
    #: Penalty per 100 characters beyond ``long_sentence`` (long run-on "sentences"
    #: of newspaper pages cover many keywords without answering anything).
    length: float = 0.1
    long_sentence: int = 100
    #: Sentences within this margin of the best one are quoted as well (up to 3).
    margin: float = 0.04
    #: A sentence with the asked kind (number, date, ...) leads when it scores within
    #: this window of a best sentence that lacks it.
    type_window: float = 0.15


@dataclass
class ScoredSentence:
    """A candidate sentence of one retrieved passage and its score."""

    hit_index: int          # index into the hits list
    span: tuple[int, int]   # span in hit.text
    text: str
    score: float
    cosine: float = 0.0
    lexical: float = 0.0
    type_match: bool = False


@dataclass
class ExtractiveResult:
    """Selected sentences, the answer text with markers, and the evidence strength."""

    text: str
    citations: list[Citation]
    sentences: list[ScoredSentence]
    #: Best sentence score (the abstention evidence).
    confidence: float
    #: Best sentence cosine and lexical overlap, for calibration and debugging.
    features: dict[str, float] = field(default_factory=dict)


MIN_SENTENCE_CHARS = 6
MAX_CANDIDATES = 8


class ExtractiveAnswerer:
    """Select and quote source sentences; see the module docstring.

    ``embedder`` (optional) is an ``embeddings.Embedder``; without one only the
    lexical signals are used. Sentence vectors are cached per chunk id.
    """

    def __init__(self, embedder=None, weights: Weights | None = None, max_sentences: int = 3,
                 max_candidates: int = MAX_CANDIDATES,
                 query_vector: Callable[[str], np.ndarray] | None = None) -> None:
        self.embedder = embedder
        # The retriever has usually just embedded the same query: reuse its vector.
        self.query_vector = query_vector
        self.weights = weights or Weights()
        self.max_sentences = max_sentences
        self.max_candidates = max_candidates
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    # candidate sentences ----------------------------------------------------
    @staticmethod
    def candidates(hits: Sequence[Hit]) -> list[tuple[int, tuple[int, int], str]]:
        """(hit index, span in hit.text, sentence) for every usable sentence."""
        out = []
        for i, hit in enumerate(hits):
            headings = {normalize(h) for h in hit.heading_path}
            for start, end in sentence_spans(hit.text):
                sentence = hit.text[start:end]
                norm = normalize(sentence)
                if len(PUNCT_RE.sub("", norm)) < MIN_SENTENCE_CHARS or norm in headings:
                    continue
                out.append((i, (start, end), sentence))
        return out

    def _sentence_vectors(self, hits: Sequence[Hit], cands) -> np.ndarray | None:
        if self.embedder is None or not cands:
            return None
        keys = [(hits[i].chunk_id, s, e) for i, (s, e), _ in cands]
        missing = [(key, text) for key, (_, _, text) in zip(keys, cands) if key not in self._cache]
        if missing:
            vectors = np.asarray(self.embedder.encode_passages([t for _, t in missing]), dtype=np.float32)
            for (key, _), vec in zip(missing, vectors):
                self._cache[key] = vec
            if len(self._cache) > 50_000:  # bound memory in a long-running server
                self._cache.clear()
        return np.stack([self._cache[k] for k in keys])

    def _query(self, question: str) -> np.ndarray:
        if self.query_vector is not None:
            try:
                return np.asarray(self.query_vector(question), dtype=np.float32).reshape(-1)
            except Exception:  # fall back to encoding it ourselves
                pass
        return np.asarray(self.embedder.encode_queries([question]), dtype=np.float32)[0]

    def score(self, question: str, hits: Sequence[Hit]) -> list[ScoredSentence]:
        """All candidate sentences of ``hits``, best first."""
        cands = self.candidates(hits)
        if not cands:
            return []
        w = self.weights
        words = keywords(question)
        q_bigrams = question_bigrams(question)
        kind = answer_type(question)
        context = [lexical_overlap(words, q_bigrams, " ".join(h.heading_path) + " " + h.text) for h in hits]
        # Section bodies rarely repeat their subject: the heading path counts with the sentence.
        lexical = [lexical_overlap(words, q_bigrams, " ".join(hits[i].heading_path) + " " + text)
                   for i, _, text in cands]
        # Keep the embedding work bounded: the best candidates by cheap signals.
        if len(cands) > self.max_candidates:
            cheap = [w.lexical * lex + w.context * context[i] + w.rank / (1 + i)
                     for (i, _, _), lex in zip(cands, lexical)]
            keep = sorted(np.argsort(cheap)[::-1][: self.max_candidates])
            cands = [cands[j] for j in keep]
            lexical = [lexical[j] for j in keep]
        vectors = self._sentence_vectors(hits, cands)
        if vectors is not None:
            q = self._query(question)
            cosines = vectors @ q
        else:
            cosines = np.zeros(len(cands), dtype=np.float32)
        scored = []
        for (i, span, text), lex, cos in zip(cands, lexical, cosines):
            typed = matches_type(text, kind) if kind else False
            too_long = max(0, len(text) - w.long_sentence) / 100
            score = (w.cosine * float(cos) + w.lexical * lex + w.context * context[i]
                     + w.rank / (1 + i) + (w.answer_type if typed else 0.0) - w.length * min(too_long, 3))
            scored.append(ScoredSentence(i, span, text, score, float(cos), lex, typed))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    # selection --------------------------------------------------------------
    def select(self, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """The best sentence plus up to two more within the margin, no near-duplicates."""
        if not scored:
            return []
        best = scored[0]
        if not best.type_match:
            typed = next((s for s in scored if s.type_match), None)
            if typed is not None and typed.score >= best.score - self.weights.type_window:
                best = typed
        chosen = [best]
        for cand in scored:
            if cand is best:
                continue
            if len(chosen) >= self.max_sentences or cand.score < scored[0].score - self.weights.margin:
                break
            cb = bigrams(cand.text)
            if any(_jaccard(cb, bigrams(c.text)) > 0.5 for c in chosen):
                continue
            chosen.append(cand)
        return chosen

    def answer(self, question: str, hits: Sequence[Hit],
               source_text: Callable[[str], str] | None = None) -> ExtractiveResult:
        """Quote the best sentences of ``hits`` for ``question`` with [n] markers."""
        scored = on_topic(question, self.score(question, hits), hits)
        chosen = self.select(scored)
        groups = _merge_adjacent(chosen, hits)
        parts, citations = [], []
        for n, (hit_index, start, end) in enumerate(groups, start=1):
            hit = hits[hit_index]
            quote = hit.text[start:end]
            citations.append(make_citation(n, hit, quote, source_text))
            parts.append(f"{quote}[{n}]")
        best = scored[0] if scored else None
        return ExtractiveResult(
            text="".join(parts),
            citations=citations,
            sentences=chosen,
            confidence=best.score if best else 0.0,
            features={
                "score": best.score if best else 0.0,
                "cosine": max((s.cosine for s in scored), default=0.0),
                "lexical": max((s.lexical for s in scored), default=0.0),
            },
        )


def on_topic(question: str, scored: list[ScoredSentence], hits: Sequence[Hit]) -> list[ScoredSentence]:
    """Only sentences of passages that mention every entity the question names,
    when any passage does: a question about 江西 is not answered from 甘肃's
    section that happens to share its wording."""
    about = passages_about(question, hits)
    kept = [s for s in scored if s.hit_index in about]
    return kept or scored


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _merge_adjacent(chosen: list[ScoredSentence], hits: Sequence[Hit]) -> list[tuple[int, int, int]]:
    """Chosen sentences as (hit index, start, end), adjacent ones of a chunk merged.

    Sentences of the same passage that follow each other (only whitespace in
    between) become one quote, in document order; groups keep score order.
    """
    groups: list[list[int]] = []  # [hit_index, start, end]
    for s in chosen:
        start, end = s.span
        merged = False
        for g in groups:
            if g[0] != s.hit_index:
                continue
            text = hits[g[0]].text
            if g[2] <= start and not text[g[2]:start].strip():
                g[2] = end
                merged = True
            elif end <= g[1] and not text[end:g[1]].strip():
                g[1] = start
                merged = True
            if merged:
                break
        if not merged:
            groups.append([s.hit_index, start, end])
    return [(g[0], g[1], g[2]) for g in groups]
