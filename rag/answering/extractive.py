"""The extractive answerer: the asked span first, then the source sentence that holds it.

No language model: sentences of the retrieved passages are scored by
embedding similarity to the question, keyword overlap (jieba words and
character bigrams), the passage's retrieval rank, and whether they hold what
the question asks for (a number in the asked unit for 多少个, a date for 何时, a
name for 谁, ...) next to the asked attribute (队长, 装机容量; also named in other words, by
the embedding model's word vectors: 军事援助 for 军援, see ``rag.answering.meaning``). For such a
question the answer leads with that span and its ``[n]`` marker, then quotes
the sentence (``149万通。[1]“12351热线全年受理职工群众来电149万通……”``);
otherwise it quotes the best sentences, each followed by its marker. A
multi-part question (``起拍价是多少？保证金要交多少？``) gets one such answer per
part, each with its own citation. Every Citation locates its sentence in the
original file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rag.answering.citations import make_citation
from rag.answering import meaning as meaning_check
from rag.answering.meaning import AttributeMeaning, window
from rag.answering.lexical import (NEAR, Asked, about_entities, asked_for, asked_nouns, asks_date_range, attribute_keys,
                                   attribute_near, attribute_terms, counted_noun, date_range_spans, documents_naming, event_terms,
                                   focus_terms, frame_terms, head_noun, head_spans, is_role, key_topic, names_term,
                                   mentions_term, named_spans, names_in_context, new_spans, ordinal_conflict, passages_about,
                                   question_entities, question_parts, standard_wording, states_event, subject_names,
                                   time_conflict)
from rag.overlap import PUNCT_RE, bigrams, keywords, lexical_overlap, question_bigrams
from rag.text import body_start, normalize, sentence_spans
from rag.types import Citation, Hit

#: Clause boundaries for shortening a long quote around the answer.
_CLAUSE_RE = re.compile(r"[^，,；;：:]+[，,；;：:]?")
_GAP = "……"

# --- scoring -----------------------------------------------------------------

@dataclass
class Weights:
    """How the sentence score combines its signals (chosen on eval/qa.jsonl, checked on crud-dev)."""

    cosine: float = 1.0
    #: Word overlap with the question counts less than meaning: the sentence that states the
    #: answer shares fewer of the question's words than one that restates it (0.6 before; 0.45
    #: fitted on eval/qa.jsonl and crud-dev together with ``margin``).
    lexical: float = 0.45
    context: float = 0.2
    rank: float = 0.05
    answer_type: float = 0.15
    #: ... in the very unit the question names (几家 -> 1335家 rather than 797个).
    exact_unit: float = 0.05
    #: The sentence names the asked attribute (队长, 装机容量) right next to a span of the
    #: asked kind: it states the fact, where others only repeat the question's words.
    attribute: float = 0.15
    #: ... and leads when it scores within this window of a best sentence that does not.
    attribute_window: float = 0.3
    #: A sentence that states its figures for another year or period than the question asks.
    time_conflict: float = 0.2
    #: A sentence whose context does not name the question's names (another company's figure).
    off_subject: float = 0.0
    #: Penalty per 100 characters beyond ``long_sentence`` (long run-on "sentences"
    #: of newspaper pages cover many keywords without answering anything).
    length: float = 0.1
    long_sentence: int = 100
    #: Sentences within this margin of the best one are quoted as well (up to 3): when the scores
    #: cannot tell the stating sentence from its neighbour, both are shown (0.04 before; 0.10 fitted on
    #: both sets: key facts +0.04 on each, median answer +1 / +7 characters).
    margin: float = 0.10
    #: ... and within this one when the best sentence states nothing of the asked kind (哪种艺术形式, 会游泳吗): what puts it
    #: first is its overlap with the question's words, which a sentence restating the question has as much as the stating
    #: one (0.15: crud-dev 3 questions right that were not, none lost, median answer +2 characters; validation pair 7 one).
    unstated_margin: float = 0.15
    #: A sentence with the asked kind (number, date, ...) leads when it scores within
    #: this window of a best sentence that lacks it.
    type_window: float = 0.15
    #: For a question without an asked kind (什么, 哪些), the share of the words around its question word
    #: (``lexical.frame_terms``: 阻碍 … 正常运行 of 阻碍了什么的正常运行) that the sentence names: the stating
    #: sentence names them next to the answer, a restating one names the subject (债务上限危机) instead
    #: (0.1: crud-dev +2 key facts, 0.15-0.2 the same with one gold citation fewer; eval/qa.jsonl unchanged).
    frame: float = 0.1


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
    #: Spans of ``text`` that are what the question asks for and that it does not already say.
    answer_spans: list[tuple[int, int]] = field(default_factory=list)
    #: It names the asked attribute (next to an answer span when the question asks for a kind).
    attribute: bool = False
    #: Its passage mentions every name, date and number the question does.
    about: bool = True
    #: It states no other year or period than the question asks about (see ``lexical.time_conflict``).
    timely: bool = True
    #: For a date question, it names the dated event (举行, 出生 …); None for other questions.
    event: bool | None = None
    #: The question's names occur in it or just before it (see ``lexical.names_in_context``), and its
    #: document names the question's most specific topic word (see ``lexical.key_topic``).
    subject: bool = True
    #: How well the words next to its answer spans name every asked attribute term by meaning (hubness-corrected
    #: cosine, ``meaning.AttributeMeaning``); None where not computed (no attribute asked, a person or role asked,
    #: the lexical check already accepted it, or a lower candidate).
    attribute_similarity: float | None = None
    #: The sentence judge's logit that it states the answer (``judge.SentenceJudge``: above 0 it does); None where
    #: not judged (no judge, or below the first ``JUDGE_CANDIDATES``).
    judge: float | None = None


@dataclass
class PartAnswer:
    """The answer to one part of a (possibly multi-part) question."""

    question: str
    #: All candidate sentences, best first.
    scored: list[ScoredSentence]
    #: The sentences quoted for this part.
    chosen: list[ScoredSentence]
    #: The asked span the answer leads with (``149万通``), if one was found.
    lead: str | None = None


@dataclass
class ExtractiveResult:
    """Selected sentences, the answer text with markers, and the evidence behind it."""

    text: str
    citations: list[Citation]
    sentences: list[ScoredSentence]
    #: Best sentence score (of the first part).
    confidence: float
    #: Best sentence cosine and lexical overlap, for calibration and debugging.
    features: dict[str, float] = field(default_factory=dict)
    #: One entry per part of the question (one for a simple question).
    parts: list[PartAnswer] = field(default_factory=list)
    #: Per part, whether it was answered (False: the documents do not hold it).
    answered: list[bool] = field(default_factory=list)

    @property
    def lead(self) -> str | None:
        """The asked span the (first part of the) answer leads with."""
        return self.parts[0].lead if self.parts else None

    @property
    def leads(self) -> list[str]:
        """The asked spans of the answered parts: the facts any other answer must state too."""
        return [p.lead for p, ok in zip(self.parts, self.answered) if ok and p.lead]


#: A 什么-question is answered by the quoted name next to what it asks for (see ``lexical.named_spans``).
NAMED_ANSWERS = True
#: A single question answered with a lead quotes one sentence more when a third sentence within the margin
#: holds a span of the asked kind too: close figures of one article (国内 and 海外, 每股 and in total) are
#: all shown rather than the lead's and one neighbour's only.
CLOSE_FIGURES = True
#: Adjacent quoted sentences of one passage are merged into one quote and one citation. Off: each
#: sentence is cited on its own, so a citation points at exactly the sentence that states the fact (a
#: merged citation of a restating sentence and the stating one no longer covered the stating evidence).
MERGE_ADJACENT = False
#: A 哪-question that names the kind of thing it asks for (哪座环形山, 哪个大会) is answered by a name ending
#: in it (塞曼环形山): the sentence that holds one states the answer, and the lead is that name.
HEAD_NOUN = True
#: A figure qualified otherwise than the question asks (海外 for a question that does not say it, 每股 for a
#: total, 环比 for 同比) is no answer span: see ``off_qualifier``.
QUALIFIERS = True
#: A 哪些-question is answered by an enumeration (A、B、C等): such a sentence holds a span of the asked kind.
LIST_ANSWERS = True
#: A question word the sentence spells out in full (自研 ~ 自主研发) counts in its word overlap.
ABBREVIATED_WORDS = True
#: ... at this weight (0.5 and 0.3 cost crud-dev one question as much as they gained; 0.2: +1, none lost).
ABBREVIATED_WEIGHT = 0.2
#: The lead is never a span inside a longer answer span of its sentence (姚明 inside 姚明路).
WHOLE_SPANS = True
#: A candidate sentence whose words next to its answer mean the asked attribute (``meaning.AttributeMeaning``:
#: 军事援助 for 军援) names it, as one that says the attribute's own word does.
MEANING = True
#: ... checked for this many of the best candidate sentences that could state the answer (4 gave the same answers
#: on every set and embedded ~1.7x the words). (Scoring such a sentence up as well, like one naming the attribute by
#: its word, moved two leads to a wrong figure: not done.)
MEANING_CANDIDATES = 2
#: A page's credits and copyright lines (来源：… 责任编辑：…, 版权说明：未经授权不得转载) are no candidate sentences: they
#: name a newspaper or an editor next to nothing the article reports, and a 谁/哪家 question took them for its answer.
BOILERPLATE_DROPPED = True
_BOILERPLATE_RE = re.compile(r"版权说明|版权所有|不得转载|禁止转载|未经.{0,12}授权|(?:责任|流程)编辑\s*[：:]|^(?:来源|编辑|校对|审核)\s*[：:][^，。]{0,20}(?:编辑|$)")
#: A question for the first and last day of something (从几号办到几号) is answered by a range of dates, which
#: dates its event (see ``lexical.asks_date_range``).
DATE_RANGES = True
#: A sentence of the asked year or edition leads over a better-scored one of another within
#: ``Weights.attribute_window`` (see ``select``).
TIMELY_FIRST = True
#: The lead is the value whose clause is of the asked year and names the asked attribute (see ``lead``).
CLAUSE_LEAD = True
#: A sentence that names a compound attribute of the question in full next to its value (短期贷款增加253亿元) leads over a
#: better-scored one within ``Weights.attribute_window`` that names it by a half only (住户贷款增加396亿元 for 短期贷款).
FULL_ATTRIBUTE_FIRST = True
#: The sentence judge (``rag.answering.judge``) reads the question with each of this many best candidate sentences,
#: and the one it rates best, less ``JUDGE_RANK_PRIOR`` per place below the first, is scored first; ``select``'s
#: preferences (a span of the asked kind, the asked year or edition, the attribute named) still apply to it, since
#: the judge reads topic and meaning, not editions or verbs (第二届 for 第一届, 转账 for 追回). Chosen on the held-out
#: pair 6 (the first sentence holds every key fact: 0.81 -> 0.93; validation pairs 7-9: 0.80 -> 0.84; eval/HISTORY.md).
JUDGE_CANDIDATES = 4
JUDGE_RANK_PRIOR = 0.5
#: The judge's pick holds a span of the asked kind when the first candidate does.
JUDGE_TYPED = True


def names_in_full(sentence: ScoredSentence, terms: Sequence[str]) -> bool:
    """Whether one of ``terms`` occurs as written within ``NEAR`` characters of an answer span of ``sentence``."""
    text = sentence.text
    for term in terms:
        for m in re.finditer(re.escape(term), text):
            if any(-NEAR <= s - m.end() <= NEAR or -NEAR <= m.start() - e <= NEAR for s, e in sentence.answer_spans):
                return True
    return False


#: An answer whose best sentence holds no span of the asked kind quotes the sentences within ``Weights.unstated_margin``.
UNSTATED_MARGIN = True


#: A figure said only by its order (数百人, 几十家, 上千名) leads no answer where a sentence states it (see ``select``).
VAGUE_FIGURES = True
_VAGUE_BEFORE = "数几上成"
_MAGNITUDES = "十百千万"


def vague_figure(text: str, span: tuple[int, int]) -> bool:
    """Whether ``text[span]`` is a magnitude written in Chinese after 数, 几, 上 or 成 (数百人, 几十家, 上千名): an
    order of magnitude, not a count (上一年 and 完成一项 are no such figures)."""
    start, end = span
    return 0 < start < end and text[start - 1] in _VAGUE_BEFORE and text[start] in _MAGNITUDES


#: The longest quoted name an answer leads with.
LONG_NAME = 32

MIN_SENTENCE_CHARS = 6
MAX_CANDIDATES = 10
#: Quotes longer than this are shortened to the clauses around the answer.
QUOTE_CHARS = 90
#: A shortened quote is the run of clauses that names the most of the question's words, each counted
#: once (the subject and the words around the question word together), not clauses grown greedily
#: around the one that repeats the most of them (that cut 不得向无证车辆提供运营服务 off 高德打车聚合平台……).
WINDOW_CLIP = True
#: ... the words around the question word (``lexical.frame_terms``: 契合 of 与哪个重要思想相契合) counting
#: double: the answer stands next to them.
CLIP_FRAME = True


class ExtractiveAnswerer:
    """Select and quote source sentences; see the module docstring.

    ``embedder`` (optional) is an ``embeddings.Embedder``; without one only the
    lexical signals are used. Sentence vectors are cached per chunk id.
    """

    def __init__(self, embedder=None, weights: Weights | None = None, max_sentences: int = 3,
                 max_candidates: int = MAX_CANDIDATES,
                 query_vector: Callable[[str], np.ndarray] | None = None, lead_quotes: int = 2,
                 judge=None) -> None:
        self.embedder = embedder
        #: A ``judge.SentenceJudge``, ``"default"`` (the shipped one, loaded on first use unless ``RAG_JUDGE=0``) or
        #: None (the lexical scores alone).
        self.judge = judge
        #: Sentences quoted after a lead span (more hedge against a wrong best sentence, longer answers).
        self.lead_quotes = lead_quotes
        # The retriever has usually just embedded the same query: reuse its vector.
        self.query_vector = query_vector
        self.weights = weights or Weights()
        self.max_sentences = max_sentences
        self.max_candidates = max_candidates
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}
        #: The meaning check of the asked attribute (None without an embedder).
        self.meaning = AttributeMeaning(embedder) if embedder is not None else None

    # candidate sentences ----------------------------------------------------
    @staticmethod
    def candidates(hits: Sequence[Hit]) -> list[tuple[int, tuple[int, int], str]]:
        """(hit index, span in hit.text, sentence) for every usable sentence.

        An article header (``2023-07-31，正文：``) is cut off the sentence it starts.
        """
        out = []
        for i, hit in enumerate(hits):
            headings = {normalize(h) for h in hit.heading_path}
            for start, end in sentence_spans(hit.text):
                start = body_start(hit.text, start, end)  # never quote 2023-07-31，正文：
                sentence = hit.text[start:end]
                norm = normalize(sentence)
                if len(PUNCT_RE.sub("", norm)) < MIN_SENTENCE_CHARS or norm in headings:
                    continue
                if BOILERPLATE_DROPPED and _BOILERPLATE_RE.search(norm):
                    continue  # 来源：陕西日报流程编辑：TF031 版权说明：… states nothing the article reports
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

    def score(self, question: str, hits: Sequence[Hit],
              source_text: Callable[[str], str] | None = None) -> list[ScoredSentence]:
        """All candidate sentences of ``hits``, best first."""
        cands = self.candidates(hits)
        if not cands:
            return []
        w = self.weights
        words = keywords(question)
        q_bigrams = question_bigrams(question)
        asked = asked_for(question)
        attributes = attribute_terms(question)
        entities = question_entities(question)
        events = event_terms(question)
        nouns = asked_nouns(question) if NAMED_ANSWERS else []
        frame = frame_terms(question) if asked.kind is None else []
        head = head_noun(question) if HEAD_NOUN and asked.kind in (None, "place", "org") else None
        verb = place_event(question) if PLACE_EVENTS and asked.kind == "place" and not attributes else None
        about = [about_entities(entities, hits, i) for i in range(len(hits))]
        context = [lexical_overlap(words, q_bigrams, " ".join(h.heading_path) + " " + h.text) for h in hits]
        # Section bodies rarely repeat their subject: the heading path counts with the sentence.
        lexical = [_overlap(words, q_bigrams, " ".join(hits[i].heading_path) + " " + text) for i, _, text in cands]
        framed = [_frame_share(frame, " ".join(hits[i].heading_path) + " " + text) for i, _, text in cands]
        cheap = [w.lexical * lex + w.context * context[i] + w.rank / (1 + i) + w.frame * f
                 for (i, _, _), lex, f in zip(cands, lexical, framed)]
        # What the sentence states (answer spans, the attribute) is worth finding out for the
        # best candidates by cheap signals only (names need jieba's tagger), and embedding for fewer.
        order = list(np.argsort(cheap)[::-1][: 3 * self.max_candidates])
        facts = {j: self._facts(question, asked, attributes, hits[cands[j][0]], cands[j][2], events, nouns, head,
                                verb) for j in order}
        for j, (spans, attribute, exact, timely, event) in facts.items():
            cheap[j] += ((w.answer_type if spans else 0.0) + (w.attribute if attribute or event else 0.0)
                         - (0.0 if timely else w.time_conflict))
        keep = sorted(sorted(facts, key=lambda j: cheap[j], reverse=True)[: self.max_candidates])
        cands = [cands[j] for j in keep]
        lexical = [lexical[j] for j in keep]
        framed = [framed[j] for j in keep]
        found = [facts[j] for j in keep]
        vectors = self._sentence_vectors(hits, cands)
        if vectors is not None:
            cosines = vectors @ self._query(question)
        else:
            cosines = np.zeros(len(cands), dtype=np.float32)
        names = subject_names(question)
        topical = documents_naming(key_topic(question, hits), hits, source_text)
        scored = []
        for (i, span, text), lex, cos, f, (spans, attribute, exact, timely, event) in zip(cands, lexical, cosines,
                                                                                         framed, found):
            too_long = max(0, len(text) - w.long_sentence) / 100
            subject = topical[i] and names_in_context(names, hits[i].text, span[0], span[1],
                                                      " ".join(hits[i].heading_path))
            score = (w.cosine * float(cos) + w.lexical * lex + w.context * context[i] + w.rank / (1 + i) + w.frame * f
                     + (w.answer_type if spans else 0.0) + (w.exact_unit if exact else 0.0)
                     + (w.attribute if attribute or event else 0.0) - (0.0 if timely else w.time_conflict)
                     - (0.0 if subject else w.off_subject) - w.length * min(too_long, 3))
            scored.append(ScoredSentence(i, span, text, score, float(cos), lex, bool(spans), spans, attribute, about[i],
                                         timely, event, subject))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    @staticmethod
    def _facts(question: str, asked: Asked, attributes: list[str], hit: Hit, text: str,
               events: Sequence[str] = (), nouns: Sequence[str] = (), head: str | None = None,
               verb: str | None = None) -> tuple[list[tuple[int, int]], bool, bool, bool, bool | None]:
        """The sentence's answer spans, whether it names the asked attribute (next to an answer
        span when the question asks for a kind of thing), whether a span is in the exact unit asked,
        whether it states no other year or period than the question's, and for a date question
        whether it names the dated event. For a 什么-question the answer spans are the quoted names
        next to the thing it asks for (``nouns``: 主题为“……”), which state it as well. A name ending in the
        noun a 哪-question asks for (``head``: 塞曼环形山 for 哪座环形山) is an answer span that states it. For a
        place question with a verb (``verb``: 在哪里举行), a place next to that verb (在广州举行) states it."""
        spans = new_spans(text, asked, question) if asked.kind else named_spans(text, nouns, question)
        if not asked.kind and not spans and LIST_ANSWERS and _LIST_Q.search(question):
            spans = [m.span() for m in _LIST_RE.finditer(text) if normalize(m.group(0)) not in normalize(question)]
        if QUALIFIERS and asked.kind == "number":
            spans = [span for span in spans if not off_qualifier(question, text, span)]
        ranged = asked.kind == "date" and DATE_RANGES and asks_date_range(question)
        if ranged:
            # 从几号办到几号 is answered by a range (7月10日持续至7月28日), which dates the event asked about (办 is
            # rarely repeated: 托管时间从…): a sentence with single days states one end of something at most.
            spans = date_range_spans(text)
        heads = head_spans(text, head, question)
        if heads:
            spans = heads + [s for s in spans if s not in heads]
        exact = bool(asked.unit) and any(text[s:e].rstrip().endswith(asked.unit) for s, e in spans)
        # The date a date question asks for is no conflict: only the rest of the sentence counts.
        rest = text
        if asked.kind == "date":
            for s, e in sorted(spans, reverse=True):
                rest = rest[:s] + " " + rest[e:]
        timely = not time_conflict(question, rest) and not ordinal_conflict(question, rest)
        event = states_event(" ".join(hit.heading_path) + " " + text, events) if events else None
        if ranged and spans:
            event = True
        if heads:
            return spans, True, exact, timely, event
        if not attributes:
            if verb is not None:
                return spans, places_event(text, spans, verb), exact, timely, event
            return spans, bool(spans) and not asked.kind, exact, timely, event
        # The attribute's own word, a half of it or a thesaurus synonym (``lexical.attribute_keys``); other words
        # for it are read by meaning afterwards (``attribute_meaning``).
        if not asked.kind:
            header_text = " ".join(hit.heading_path) + " " + text
            return (spans, bool(spans) or any(mentions_term(header_text, t) for t in attributes),
                    exact, timely, event)
        # A rank (第十三名) states what a 排第几 question asks, however the ranking is named.
        return (spans, attribute_near(text, spans, attributes) or (ORDINAL_STATES and asked.ordinal and bool(spans)),
                exact, timely, event)

    # selection --------------------------------------------------------------
    def select(self, scored: list[ScoredSentence], question: str = "") -> list[ScoredSentence]:
        """The best sentence plus up to two more within the margin, no near-duplicates (``question``: the part
        asked, for the attribute its value must be named by)."""
        if not scored:
            return []
        best = scored[0]
        if not best.type_match:
            typed = next((s for s in scored if s.type_match), None)
            if typed is not None and typed.score >= best.score - self.weights.type_window:
                best = typed
        if VAGUE_FIGURES and best.type_match and all(vague_figure(best.text, span) for span in best.answer_spans):
            # 数百人 only says the order of a figure; a sentence that states it (300多人) answers 多少人.
            precise = next((s for s in scored if s.type_match and s.timely >= best.timely
                            and not all(vague_figure(s.text, span) for span in s.answer_spans)), None)
            if precise is not None and precise.score >= best.score - self.weights.type_window:
                best = precise
        if TIMELY_FIRST and not best.timely:
            # A sentence of another year or edition (第二届 for 第一届) gives another event's value: one of the asked
            # year within the window answers instead.
            timely = next((s for s in scored if s.timely and s.type_match >= best.type_match), None)
            if timely is not None and timely.score >= best.score - self.weights.attribute_window:
                best = timely
        if not best.attribute:
            # The sentence that states the asked attribute (队长 + the name) beats one that
            # only repeats the question's words (the team's departure ceremony).
            stating = next((s for s in scored if s.attribute and s.type_match >= best.type_match), None)
            if stating is not None and stating.score >= best.score - self.weights.attribute_window:
                best = stating
        compounds = [t for t in attribute_terms(question) if len(t) >= 3] if FULL_ATTRIBUTE_FIRST and question else []
        if compounds and best.type_match and not names_in_full(best, compounds):
            # 短期贷款增加多少: 住户贷款增加396亿元 names 贷款 only, 短期贷款增加253亿元 the asked loans themselves.
            full = next((s for s in scored if s.type_match and s.timely >= best.timely and names_in_full(s, compounds)),
                        None)
            if full is not None and full.score >= best.score - self.weights.attribute_window:
                best = full
        chosen = [best]
        margin = self.weights.margin if best.type_match or not UNSTATED_MARGIN else self.weights.unstated_margin
        for cand in scored:
            if cand is best:
                continue
            if len(chosen) >= self.max_sentences or cand.score < scored[0].score - margin:
                break
            cb = bigrams(cand.text)
            if any(_jaccard(cb, bigrams(c.text)) > 0.5 for c in chosen):
                continue
            chosen.append(cand)
        return chosen

    def lead(self, question: str, sentence: ScoredSentence, taken: Sequence[str] = ()) -> str | None:
        """The answer span ``sentence`` holds whose clause covers the question's words best, then the one
        closest to the asked attribute or the question's words; none of ``taken`` (another part's lead)."""
        asked = asked_for(question)
        text = sentence.text
        # A quoted name is one span however long (“国家互联网基础资源管理系统”).
        spans = [s for s in sentence.answer_spans
                 if s[1] - s[0] <= (LONG_NAME if text[s[0]] in "“《「" else 16)]
        if PLACE_CHAINS and asked.kind == "place":
            spans = _chained(spans)
        if taken:
            spans = [s for s in spans if _lead_text(text, s, asked) not in taken]
        if not spans:
            return None
        if WHOLE_SPANS:  # 姚明 of 姚明路 (jieba's cut) is part of the name the title rule reads whole
            # ... but a person's name is not part of the body named after it (王东明代表中华全国总工会).
            longest = 2 if asked.kind == "person" else 99
            spans = [a for a in spans if not any(b != a and b[0] <= a[0] and a[1] <= b[1]
                                                 and ((b[1] - b[0]) - (a[1] - a[0]) <= longest
                                                      or (WHOLE_NAMES_LEAD and "·" in text[b[0]:b[1]]))
                                                 for b in spans)]
        head = head_noun(question) if HEAD_NOUN and asked.kind in (None, "place", "org") else None
        if head and any(text[s:e].endswith(head) for s, e in spans):
            spans = [(s, e) for s, e in spans if text[s:e].endswith(head)]
        geo = _GEO_ASKED_RE.search(normalize(question)) if PLACE_CHAINS and asked.geo else None
        if geo and any(text[s:e].endswith(geo.group(1)) for s, e in spans):  # 哪个县 -> 会同县, not 湖南省
            spans = [(s, e) for s, e in spans if text[s:e].endswith(geo.group(1))]
        if RESPECTIVE:
            bound = _respective(question, text, spans)
            if bound is not None:
                return _lead_text(text, bound, asked)
        counted = counted_noun(question) if COUNTED_NOUNS and asked.kind == "number" and not asked.ordinal else None
        terms = attribute_terms(question) or keywords(question)
        found = [m.span() for t in terms for key in _term_keys(t) for m in re.finditer(re.escape(key), sentence.text)]
        words, q_bigrams = keywords(question), question_bigrams(question)

        def context(span: tuple[int, int]) -> float:
            # The clause that holds a value says what it is a value of: 关闭违法网站 7704 家, not
            # 约谈网站 5518 家, for 关闭了多少家违法网站.
            return -round(lexical_overlap(words, q_bigrams, clause_around(sentence.text, *span)), 3)

        def distance(span: tuple[int, int]) -> float:
            # The answer usually follows what it is about (装机容量达440万千瓦, 三分王的董可尔).
            return min((span[0] - e if span[0] >= e else 1.5 * max(0, s - span[1]) + 1 for s, e in found), default=0)

        # What the value is of: the asked attribute (上限), for a date the words next to the question word (截止).
        named = attribute_terms(question) or (focus_terms(question) if asked.kind == "date" else [])
        place_verb = place_event(question) if PLACE_EVENTS and asked.kind == "place" and not named else None
        if place_verb is not None:
            named = [place_verb]  # 在哪里举行: the place of the clause that says 举行 (在广州举行), not 龙岗区 of another
        if DATED_VERBS and asked.kind == "date":
            # 封口费的案子什么时候审: the date of the clause that says 审(判), not 2016年 of the case's story.
            verb = _WHEN_VERB_RE.search(normalize(question))
            if verb and verb.group(1) not in _EMPTY_CHARS:
                named = list(named) + [verb.group(1)]

        def stated(span: tuple[int, int]) -> tuple[int, int]:
            # Of several values in one sentence, the one whose clause is of the asked year (2021年仅剩2.2%, not 2019年
            # 该节目的毛利率为46.6%) and names the asked attribute (上限为22875元, not 下限为4575元; 到8月10日截止, not
            # 7月20日开通) answers; the overlap with the question's other words comes after.
            if not CLAUSE_LEAD:
                return 0, 0
            clause = clause_around(sentence.text, *span)
            rest = clause.replace(sentence.text[span[0]:span[1]], " ")
            other_time = time_conflict(question, rest)
            return int(other_time), -int(any(mentions_term(clause, t) if len(t) > 1 else t in clause for t in named))

        def counts(span: tuple[int, int]) -> int:
            # 跑了几个省 is answered by 21个省, not 24项 of the same sentence.
            # Only where the measure word says nothing (个) or the question names none: 多少处火场仍处于失控 is 600多处.
            return -int(counted is not None and (asked.unit == "个" or not asked.units)
                        and _counted_end(text, span, counted) is not None)

        def said(span: tuple[int, int]) -> int:
            # Of the names ending in the asked noun, one the question does not already say (“U善里”工会驿站, not
            # 锦江区工会驿站 for 锦江区那个驿站…在哪个驿站).
            if not head:
                return 0
            own = normalize(text[span[0]:span[1]])[:-len(head)] if text[span[0]:span[1]].endswith(head) else ""
            return int(bool(own) and bool(bigrams(own) & q_bigrams))

        start, end = min(spans, key=lambda s: (stated(s), counts(s), said(s), context(s), distance(s), s[0]))
        if counted is not None:
            # 10部 of 10部门, 7个 of 7个方面: the figure with what it counts.
            stop = _counted_end(text, (start, end), counted)
            # ... not a part of a longer noun (309个省级|重点建设项目 for 多少个省级重点项目)
            if stop is not None and (text[end - 1] == "个" or stop - end < len(counted) or len(counted) == 1) \
                    and not _continues(text, stop):
                end = stop
        if LISTED_NAMES and asked.kind in ("org", "place", "person") and _SEVERAL_Q.search(normalize(question)):
            # 由哪几家单位联合主办: the names listed with the chosen one (浙江省总工会、…、杭州市总工会), not one of them.
            start, end = _listed(text, spans, (start, end))
        if NUMBER_RANGES and asked.kind == "number":
            # 以每瓶60至80元不等, 5至7年, 1600-1700m: the figure is the range's upper end; the lead is the range.
            low = _RANGE_START_RE.search(text, max(0, start - 12), start)
            # ... a bare figure or one in the same unit (2名~3名), not another measure (增长7%至100亿美元)
            if low is not None and low.end() == start and (not low.group(1) or text[start:end].endswith(low.group(1))):
                start = low.start()
        return _lead_text(text, (start, end), asked)

    def answer_part(self, question: str, hits: Sequence[Hit], single: bool = True,
                    source_text: Callable[[str], str] | None = None, taken: Sequence[str] = ()) -> PartAnswer:
        """Score, choose and find the lead for one (part of a) question; ``taken``: the leads of the
        question's earlier parts, which this part's lead does not repeat."""
        scored = on_topic(question, self.score(question, hits, source_text), hits)
        if MEANING and self.meaning is not None:
            scored = self.attribute_meaning(question, scored)
        scored = self.judged(question, scored)
        chosen = self.select(scored, question)
        lead = self.lead(question, chosen[0]) if chosen else None
        if DISTINCT_PARTS and lead is not None and lead in taken:
            # Another part asks another value (利率多少，比去年低了多少): not the one an earlier part led with.
            lead = self.lead(question, chosen[0], taken)
            if lead is None:
                other = next((s for s in chosen[1:] if s.type_match and self.lead(question, s, taken)), None)
                if other is not None:
                    chosen = [other] + [s for s in chosen if s is not other]
                    lead = self.lead(question, other, taken)
        if lead is not None or not single:
            extra = [s for s in chosen[self.lead_quotes:self.lead_quotes + 1]
                     if single and lead is not None and s.type_match and CLOSE_FIGURES]
            chosen = chosen[:self.lead_quotes] + extra
        return PartAnswer(question, scored, chosen, lead)

    def sentence_judge(self):
        """The ``judge.SentenceJudge`` in use, or None."""
        if self.judge == "default":
            from rag.answering.judge import default_judge
            return default_judge(self.embedder)
        return self.judge

    def judged(self, question: str, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """``scored`` with ``judge`` set for the first ``JUDGE_CANDIDATES`` sentences and the one the judge rates
        best (less ``JUDGE_RANK_PRIOR`` per place) first, at the first one's score at least (so the margins of
        ``select`` count from where they did)."""
        judge = self.sentence_judge()
        if judge is None or not scored:
            return scored
        top = scored[:JUDGE_CANDIDATES]
        for s, logit in zip(top, judge.scores(question, [s.text for s in top])):
            s.judge = logit
        # Never a sentence without a span of the asked kind for one with: the judge reads whether a sentence
        # is about the asked fact (华星科技公司总部位于深圳 for 哪年成立的), the span is what answers it.
        able = [k for k in range(len(top)) if top[k].type_match >= top[0].type_match or not JUDGE_TYPED]
        pick = max(able, key=lambda k: top[k].judge - JUDGE_RANK_PRIOR * k)
        if pick == 0:
            return scored
        best = top[pick]
        best.score = max(best.score, scored[0].score)
        return [best] + [s for s in scored if s is not best]

    def attribute_meaning(self, question: str, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """``scored`` with ``attribute_similarity`` set for the best ``MEANING_CANDIDATES`` sentences that could
        state the answer (about the question's names, timely, of the asked kind) and do not name the asked
        attribute by its word; from ``meaning.ATTRIBUTE_SIMILARITY`` on they name it (``attribute``), which
        ``select`` and ``abstention.gather_evidence`` read. The order of ``scored`` is kept."""
        terms = attribute_terms(question)
        asked = asked_for(question)
        # A role is named in full or not at all (副庭长 is no 庭长, 省委副书记 no 省委书记): words of one kind are
        # close in meaning, so who holds a role stays with the lexical check.
        # Only a value's attribute is checked: for a question without an asked kind (原因是什么) the words next
        # to nothing are the topic's (野火 for 起火).
        if not terms or not scored or asked.kind in (None, "person") or asked.role or any(is_role(t) for t in terms):
            return scored
        able = [s for s in scored if s.about and s.timely and s.subject and s.type_match]
        todo = [s for s in able[:MEANING_CANDIDATES] if not s.attribute]
        if not todo:
            return scored
        sims = self.meaning.similarities(terms, [window(s.text, s.answer_spans) for s in todo])
        for s, sim in zip(todo, sims):
            s.attribute_similarity = sim
            if sim is not None and sim >= meaning_check.ATTRIBUTE_SIMILARITY:
                s.attribute = True
        return scored

    def analyze(self, question: str, hits: Sequence[Hit],
                source_text: Callable[[str], str] | None = None) -> list[PartAnswer]:
        """Each part of ``question`` scored against ``hits``, with its chosen sentences and lead
        (``source_text``, doc -> text, lets it check what a passage's whole document is about)."""
        questions = question_parts(standard_wording(question))
        parts: list[PartAnswer] = []
        for q in questions:
            # an earlier part's lead counts where its sentence states its attribute (else it may well be declined)
            # (or where it asks no attribute for its sentence to state: 建了多少家 -> 1.2万家 is no answer to the next part)
            taken = [p.lead for p in parts if p.lead is not None and p.chosen
                     and (p.chosen[0].attribute or (UNNAMED_PARTS_TAKEN and not attribute_terms(p.question)))]
            parts.append(self.answer_part(q, hits, single=len(questions) == 1, source_text=source_text, taken=taken))
        return parts

    def render(self, parts: Sequence[PartAnswer], hits: Sequence[Hit],
               source_text: Callable[[str], str] | None = None,
               unsupported: Sequence[bool] | None = None) -> ExtractiveResult:
        """The answer text and citations for ``parts``; a part flagged in ``unsupported`` says it was not found."""
        from rag.answering.prompts import NOT_FOUND

        pieces, citations = [], []
        for k, part in enumerate(parts):
            if unsupported is not None and unsupported[k]:
                pieces.append(f"{part.question.rstrip('？?')}：{NOT_FOUND}")
                continue
            led = False
            frame = frame_terms(part.question, abstract=True) if CLIP_FRAME else ()
            # The lead's sentence is cited on its own, so its citation is exactly what states the lead.
            groups = (_merge_adjacent(part.chosen[:1], hits) + _merge_adjacent(part.chosen[1:], hits)
                      if part.lead is not None else _merge_adjacent(part.chosen, hits))
            for hit_index, start, end in groups:
                hit = hits[hit_index]
                quote = hit.text[start:end]
                n = _citation_number(citations, hit, start, end)
                if n is None:
                    n = len(citations) + 1
                    citations.append(make_citation(n, hit, quote, source_text))
                if part.lead is not None and not led:
                    pieces.append(f"{part.lead}。[{n}]“{clip(quote, part.lead, keywords(part.question), frame=frame)}”")
                    led = True
                    continue
                pieces.append(f"{clip(quote, None, keywords(part.question), frame=frame)}[{n}]")
        kept = [p for k, p in enumerate(parts) if unsupported is None or not unsupported[k]]
        chosen = [s for part in kept for s in part.chosen]
        best = parts[0].scored[0] if parts and parts[0].scored else None
        scored = [s for part in parts for s in part.scored]
        return ExtractiveResult(
            text="\n".join(pieces) if len(parts) > 1 else "".join(pieces),
            citations=citations,
            sentences=chosen,
            confidence=best.score if best else 0.0,
            features={
                "score": best.score if best else 0.0,
                "cosine": max((s.cosine for s in scored), default=0.0),
                "lexical": max((s.lexical for s in scored), default=0.0),
            },
            parts=list(parts),
            answered=[not (unsupported is not None and unsupported[k]) for k in range(len(parts))],
        )

    def answer(self, question: str, hits: Sequence[Hit],
               source_text: Callable[[str], str] | None = None) -> ExtractiveResult:
        """Answer ``question`` from ``hits``: per part, the asked span and the quote, with [n] markers."""
        return self.render(self.analyze(question, hits, source_text), hits, source_text)


_term_keys = attribute_keys

#: A place answer is the whole chain of place names it is part of (在云南省昆明市昆明火车站 -> 云南省昆明市昆明火车站,
#: not 在云南), without the preposition; 哪个县/哪个市 leads with the name ending in 县/市.
PLACE_CHAINS = True
_GEO_ASKED_RE = re.compile(r"哪[个一]?(省|市|县|区|镇|乡|村|州)")
#: A transliterated name (艾力江·阿吉) is read whole, not by the part jieba tags (艾力江).
WHOLE_NAMES_LEAD = True
#: 国有企业和外资企业的出口额分别下降了2.3%和14.5%: the value in the position of the member the question asks about.
RESPECTIVE = True
#: A count leads with what it counts (10部门, 7个方面), and the figure followed by the counted noun is preferred.
COUNTED_NOUNS = True
#: The parts of one question lead with different values.
DISTINCT_PARTS = True
#: ... also after a part that names no attribute (建了多少家), whose sentence cannot state one.
UNNAMED_PARTS_TAKEN = True
#: A question for several bodies, places or people (哪些单位, 哪几家, 哪两家) leads with the names listed together.
LISTED_NAMES = True
_SEVERAL_Q = re.compile(r"哪(?:些|几|两|三)|分别是谁")


def _listed(text: str, spans: Sequence[tuple[int, int]], chosen: tuple[int, int]) -> tuple[int, int]:
    """``chosen`` widened over the spans joined to it by 、/和/与/及 (a list of names)."""
    start, end = chosen
    # (a span read across a bracket, 张蓝泽)广州市社会科学院, is no name of the list)
    ordered = sorted(span for span in set(spans) if not re.search(r"[)）(（]", text[span[0]:span[1]]))
    grew = True
    while grew:
        grew = False
        for s, e in ordered:
            if e <= start and re.fullmatch(r"\s*(?:、|和|与|及|以及|、以及)\s*", text[e:start]):
                start, grew = s, True
            elif s >= end and re.fullmatch(r"\s*(?:、|和|与|及|以及|、以及)\s*", text[end:s]):
                end, grew = e, True
    return start, end


#: A place question with a verb after its question word (在哪里举行, 建在哪儿 excepted) is answered by a place next
#: to that verb or a word for the same event (在广州举行, 于北京召开): such a sentence states the asked attribute, where
#: another place of the article (龙岗区取得一金) does not.
PLACE_EVENTS = True
_PLACE_WORD_RE = re.compile(r"(?:哪里|哪儿|在哪|何地|什么地方)(?:里|儿)?(?:会|将|要|能|可以)?")


def place_event(question: str) -> str | None:
    """The verb of two or more characters right after a place question's question word (举行 of 在哪里举行), else None."""
    from rag.tokenize_zh import jieba_pos_tokenizer

    m = _PLACE_WORD_RE.search(normalize(question))
    if not m:
        return None
    first = next(iter(jieba_pos_tokenizer().cut(normalize(question)[m.end():m.end() + 8])), None)
    if first is None or not first.flag.startswith("v") or len(first.word) < 2:
        return None
    return first.word


def places_event(text: str, spans: Sequence[tuple[int, int]], verb: str) -> bool:
    """Whether a place span of ``text`` comes right before ``verb`` or a word for the same event (在广州举行)."""
    return any(states_event(text[e:e + 6], [verb]) for _, e in spans)


#: A figure that ends a range (60至80元) leads with the whole range.
NUMBER_RANGES = True
_RANGE_START_RE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*([^\d\s，,。；;、]{0,2}?)\s*(?:至|到|-|—|~|～|－)\s*")
#: A date question's verb after its question word (什么时候审, 哪天到) names the clause whose date answers it.
DATED_VERBS = True
_WHEN_VERB_RE = re.compile(r"(?:什么时候|何时|哪一?天|哪一?年|几月几[日号]|几号|几点)(?:正式|才|会|将|要|能|就)?([\u4e00-\u9fff])")
_EMPTY_CHARS = set("的了是在把被给有到去来")
#: An ordinal answers a 第几 question by itself (see ``_facts``).
ORDINAL_STATES = True


def _chained(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` plus the union of each run of overlapping ones (在云南 + 云南省昆明市昆明火车站)."""
    out = list(spans)
    for s, e in sorted(spans):
        for cs, ce in out:
            if (cs, ce) != (s, e) and cs < e and s < ce and (min(cs, s), max(ce, e)) not in out:
                out.append((min(cs, s), max(ce, e)))
                break
    return out


def _lead_text(text: str, span: tuple[int, int], asked: Asked) -> str:
    if VAGUE_FIGURES and asked.kind == "number" and vague_figure(text, span):
        span = (span[0] - 1, span[1])  # 数百人, not 百人
    lead = text[span[0]:span[1]].strip()
    if PLACE_CHAINS and asked.kind == "place" and len(lead) > 3 and lead[0] in "在于到赴":
        lead = lead[1:]
    return lead


def _continues(text: str, at: int) -> bool:
    """Whether the word that ends at ``text[:at]`` runs on past it (a noun cut in two by jieba's first guess)."""
    from rag.tokenize_zh import jieba_pos_tokenizer

    if at >= len(text) or not ("\u4e00" <= text[at] <= "\u9fff"):
        return False
    first = next(iter(jieba_pos_tokenizer().cut(text[at:at + 6])), None)
    return first is not None and first.flag.startswith("n") and len(first.word) >= 2


def _counted_end(text: str, span: tuple[int, int], noun: str) -> int | None:
    """Where ``noun`` ends when it follows the figure ``text[span]`` (21个|省, 10部|门 overlapping its end), else None."""
    start, end = span
    if text.startswith(noun, end):
        return end + len(noun)
    for k in range(1, len(noun)):
        if end - k > start and text.startswith(noun, end - k):
            return end - k + len(noun)
    return None


def _respective(question: str, text: str, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The span bound to the member ``question`` names in ``text``'s "A和B……分别……X和Y" (None when not so)."""
    m = re.search(r"([^，。；;：:！？]{2,60}?)分别", text)
    if not m:
        return None
    members = [part.split("的")[0] for part in re.split(r"和|与|及|、", m.group(1).split("，")[-1]) if part]
    if len(members) < 2:
        return None
    values = sorted(s for s in spans if s[0] >= m.end())
    if len(values) < len(members):
        return None
    q = normalize(question)
    named = [k for k, member in enumerate(members) if len(member) >= 2 and normalize(member) in q]
    if len(named) != 1:
        return None
    return values[named[0]]

#: A question that asks for several things (哪些食品, 哪几类, 哪些方面) ...
_LIST_Q = re.compile(r"哪些|哪几")
#: ... is answered by an enumeration: three or more short items joined by 、 and closed by 等 (特殊膳食食品、茶叶及相关制品、蔬菜制品等).
_LIST_RE = re.compile(r"[^，。；;：:、“”\s]{2,10}(?:、[^，。；;：:、“”\s]{2,10}){2,}等[^，。；;：:、\s]{0,8}")


def _overlap(words: Sequence[str], q_bigrams: set[str], text: str) -> float:
    """``lexical_overlap``, a question word the text spells out in full counting as named (自研 ~ 自主研发,
    see ``lexical.names_term``): news writes the long form where a question says the short one."""
    base = lexical_overlap(words, q_bigrams, text)
    if not ABBREVIATED_WORDS:
        return base
    norm = normalize(text).lower()
    total = sum(len(w) for w in words)
    spelled = sum(len(w) for w in words if len(w) >= 2 and w not in norm and names_term(norm, w))
    return base + ABBREVIATED_WEIGHT * spelled / total if total else base


#: Qualifiers that tell close figures of one article apart: (the plain side, the marked side, whether they qualify
#: the figures of the whole sentence piece or of their clause only). A figure whose nearest qualifier is marked
#: (海外, 每股, 环比) does not answer a question that does not say it, and one of either side does not answer a
#: question that names the other (国内 for 海外, 同比 for 环比).
_QUALIFIER_PAIRS = [
    (("国内", "境内"), ("海外", "境外", "国外"), True),   # 海外市场实际销售收入82.06亿美元，同比下降8.72%
    ((), ("每股", "每10股"), False),
    (("同比",), ("环比",), False),                        # 同比下降2.25%，环比增长24.5%
]
_PIECE_BREAK_RE = re.compile(r"[；;。！？!?]")


def off_qualifier(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the figure ``sentence[span]`` is qualified otherwise than ``question`` asks: the nearest
    qualifier before it (海外 of 自研游戏海外市场实际销售收入82.06亿美元) is marked and the question does not
    say it, or the question names the other side of the pair."""
    q = normalize(question)
    piece_start = max((m.end() for m in _PIECE_BREAK_RE.finditer(sentence, 0, span[0])), default=0)
    clause_start = max((m.end() for m in _CLAUSE_BREAK_RE.finditer(sentence, 0, span[0])), default=0)
    for plain, marked, whole_piece in _QUALIFIER_PAIRS:
        before = sentence[piece_start if whole_piece else clause_start:span[0]]
        found = [(before.rfind(w), w in marked) for w in plain + marked if w in before]
        if not found:
            continue
        _, is_marked = max(found)
        side, other = (marked, plain) if is_marked else (plain, marked)
        if any(w in q for w in side):
            continue
        if is_marked or any(w in q for w in other):
            return True
    return False

#: What separates the clauses of a sentence (a comma between digits is part of a number: 1,189).
_CLAUSE_BREAK_RE = re.compile(r"[，；;。！？!?、：:]|,(?!\d)")


def _frame_share(terms: Sequence[str], text: str) -> float:
    """The share of ``terms`` (see ``lexical.frame_terms``) that ``text`` names."""
    if not terms:
        return 0.0
    return sum(1 for t in terms if mentions_term(text, t)) / len(terms)


def clause_around(sentence: str, start: int, end: int) -> str:
    """The clause of ``sentence`` that holds ``sentence[start:end]``, from the break before it to the
    break after it (约谈网站 5518 家 of 累计约谈网站 5518 家、关闭违法网站 7704 家)."""
    left = max((m.end() for m in _CLAUSE_BREAK_RE.finditer(sentence, 0, start)), default=0)
    right = next((m.start() for m in _CLAUSE_BREAK_RE.finditer(sentence, end)), len(sentence))
    return sentence[left:right]


def clip(sentence: str, anchor: str | None, words: Sequence[str], limit: int = QUOTE_CHARS,
         frame: Sequence[str] = ()) -> str:
    """``sentence``, or when longer than ``limit`` the clauses around ``anchor`` (or around the most
    question words) with ``……`` where text was left out. Never cuts inside a clause."""
    if len(sentence) <= limit:
        return sentence
    clauses = [m.group(0) for m in _CLAUSE_RE.finditer(sentence)]
    if len(clauses) < 2:
        return sentence
    if WINDOW_CLIP:
        lo, hi = _best_window(clauses, anchor, words, frame, limit)
    else:
        lo, hi = _greedy_window(clauses, anchor, words, limit)
    text = "".join(clauses[lo:hi + 1])
    if hi < len(clauses) - 1:
        text = text.rstrip("，,；;：:") + _GAP
    return (_GAP if lo > 0 else "") + text


def _best_window(clauses: Sequence[str], anchor: str | None, words: Sequence[str], frame: Sequence[str],
                 limit: int) -> tuple[int, int]:
    """The first and last clause of the run, at most ``limit`` characters (or one clause), that holds
    ``anchor`` and names the most of ``words`` and ``frame``; the longest of equal ones, then the first."""
    lengths = [len(c) for c in clauses]
    best, best_key = (0, 0), None
    for lo in range(len(clauses)):
        size = 0
        for hi in range(lo, len(clauses)):
            size += lengths[hi]
            if size > limit and hi > lo:
                break
            text = "".join(clauses[lo:hi + 1])
            key = (bool(anchor) and anchor in text,
                   sum(len(w) for w in words if w in text) + sum(2 * len(t) for t in frame if mentions_term(text, t)),
                   size, -lo)
            if best_key is None or key > best_key:
                best, best_key = (lo, hi), key
            if size > limit:
                break
    return best


def _greedy_window(clauses: Sequence[str], anchor: str | None, words: Sequence[str], limit: int) -> tuple[int, int]:
    """The clauses grown from the one with the most question words (the rule before ``WINDOW_CLIP``)."""
    def weight(c: str) -> float:
        return sum(len(w) for w in words if w in c) + (100 if anchor and anchor in c else 0)

    center = max(range(len(clauses)), key=lambda i: (weight(clauses[i]), -i))
    lo = hi = center
    while True:
        options = [i for i in (lo - 1, hi + 1) if 0 <= i < len(clauses)]
        size = sum(len(c) for c in clauses[lo:hi + 1])
        options = [i for i in options if size + len(clauses[i]) <= limit]
        if not options:
            break
        pick = max(options, key=lambda i: (weight(clauses[i]), i == hi + 1))
        lo, hi = min(lo, pick), max(hi, pick)
    return lo, hi


def _citation_number(citations: Sequence[Citation], hit: Hit, start: int, end: int) -> int | None:
    """The number of an existing citation of the same sentence (a part answered by it already)."""
    for c in citations:
        if c.chunk_id == hit.chunk_id and c.quote == hit.text[start:end]:
            return c.n
    return None


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
    if not MERGE_ADJACENT:
        return [(s.hit_index, s.span[0], s.span[1]) for s in chosen]
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
