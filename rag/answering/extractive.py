"""The extractive answerer: quote the one to three source sentences that best answer.

No language model: sentences of the retrieved passages are scored by
embedding similarity to the question, keyword overlap (jieba words and
character bigrams), the passage's retrieval rank, and whether they contain
what the question asks for (a number for 多少, a date for 何时, a place for
哪里, a person for 谁). The chosen sentences are quoted verbatim, each followed
by a ``[n]`` marker whose Citation locates it in the original file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rag.answering.abstention import passages_about
from rag.text import normalize, sentence_spans
from rag.types import Citation, Hit

# --- question analysis -------------------------------------------------------

#: Words that say what kind of answer is wanted; they carry no topic.
_QUESTION_WORDS = {
    "什么", "多少", "哪些", "哪里", "哪儿", "哪个", "哪位", "哪一年", "哪年", "哪", "谁", "几",
    "如何", "怎么", "怎样", "怎么样", "为什么", "为何", "是否", "是不是", "有没有", "何时",
    "什么时候", "何地", "吗", "呢", "吧", "啊", "的", "了", "是", "有", "在", "和", "与", "及",
    "请问", "请", "一下", "介绍", "哪些方面", "主要", "情况", "方面", "内容", "那", "那么",
    "这个", "那个", "这些", "我", "你", "他", "她", "它", "们", "都", "也", "还", "被", "把",
    "对", "从", "到", "给", "让", "为", "以", "中", "上", "下", "里", "之", "其", "该", "等",
}
_PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)

_DATE_Q = re.compile(r"何时|什么时候|哪一?年|哪一?天|几月|几号|哪个月|日期|什么时间|何年")
_NUMBER_Q = re.compile(r"多少|几|多大|多高|多长|多久|多重|比例|百分|数量|人数|金额|规模")
_PLACE_Q = re.compile(r"哪里|哪儿|在哪|何地|什么地方|哪个(?:省|市|县|区|地区|城市|国家|地方)|哪座|哪些(?:省|市|地区|城市)")
_PERSON_Q = re.compile(r"谁|哪位|何人|什么人|哪些人|姓名|名字")

_NUM_RE = re.compile(r"\d+(?:[.,，]\d+)*|[一二三四五六七八九十百千万亿两〇零]{2,}")
_NUM_UNIT_RE = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:万|亿|千|百)?\s*"
    r"(?:个|名|人|项|家|次|元|届|所|条|支|场|户|件|台|部|篇|处|座|批|期|%|％|倍|余|多|公里|米|吨|亩|万|亿)"
    r"|[一二三四五六七八九十百千两]+\s*(?:万|亿)\s*[个名人项家次元]?"
)
_DATE_RE = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{1,2}\s*月|[一二三四五六七八九十]{1,3}月"
    r"|[〇零一二三四五六七八九]{4}年|今年|去年|明年|近年"
)
_PLACE_RE = re.compile(
    r"[\u4e00-\u9fff]{1,8}(?:省|市|县|区|镇|乡|村|州|旗|盟|岛|港|湾|基地|园区|大会堂|会场|广场|中心|展览馆)"
    r"|(?:在|于|到|赴)(?:北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北"
    r"|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|西藏|宁夏|新疆|香港|澳门|京)"
)


def answer_type(question: str) -> str | None:
    """What the question asks for: "date", "number", "place", "person" or None."""
    if _DATE_Q.search(question):
        return "date"
    if _PLACE_Q.search(question):
        return "place"
    if _PERSON_Q.search(question):
        return "person"
    if _NUMBER_Q.search(question):
        return "number"
    return None


def _has_person(sentence: str) -> bool:
    import jieba.posseg as pseg  # heavy-ish; only for "who" questions

    return any(p.flag == "nr" and len(p.word) >= 2 for p in pseg.cut(sentence))


def matches_type(sentence: str, kind: str | None) -> bool:
    """Whether ``sentence`` contains the kind of thing the question asks for."""
    if kind is None:
        return False
    if kind == "number":
        return bool(_NUM_UNIT_RE.search(sentence))
    if kind == "date":
        return bool(_DATE_RE.search(sentence))
    if kind == "place":
        return bool(_PLACE_RE.search(sentence))
    if kind == "person":
        return _has_person(sentence)
    return False


def keywords(text: str) -> list[str]:
    """Content words of a question (jieba, search mode), question words dropped."""
    import jieba

    seen: dict[str, None] = {}
    for word in jieba.lcut_for_search(normalize(text).lower()):
        word = word.strip()
        if not word or word in _QUESTION_WORDS or _PUNCT_RE.fullmatch(word):
            continue
        if len(word) == 1 and not word.isalnum():
            continue
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff":
            continue  # single Chinese characters match almost anything
        seen[word] = None
    return list(seen)


def bigrams(text: str) -> set[str]:
    """Character bigrams of the normalised text, punctuation removed."""
    clean = _PUNCT_RE.sub("", normalize(text).lower())
    if len(clean) < 2:
        return {clean} if clean else set()
    return {clean[i:i + 2] for i in range(len(clean) - 1)}


def _question_bigrams(question: str) -> set[str]:
    text = normalize(question)
    for word in sorted(_QUESTION_WORDS, key=len, reverse=True):
        if len(word) >= 2:
            text = text.replace(word, " ")
    return {b for b in bigrams(text.replace(" ", "|")) if "|" not in b}


def lexical_overlap(words: Sequence[str], q_bigrams: set[str], text: str) -> float:
    """Share of the question's keywords (by length) and bigrams found in ``text``."""
    norm = normalize(text).lower()
    total = sum(len(w) for w in words)
    word_cov = sum(len(w) for w in words if w in norm) / total if total else 0.0
    if q_bigrams:
        bigram_cov = len(q_bigrams & bigrams(text)) / len(q_bigrams)
    else:
        bigram_cov = word_cov
    return 0.5 * word_cov + 0.5 * bigram_cov


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
                if len(_PUNCT_RE.sub("", norm)) < MIN_SENTENCE_CHARS or norm in headings:
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
        q_bigrams = _question_bigrams(question)
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
                    quote=quote, start=start, end=end)
