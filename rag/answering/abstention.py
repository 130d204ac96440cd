"""Deciding when the documents do not hold the answer, from what the retrieved text supports.

For each part of the question the extractive answerer's candidate sentences
say what the passages state (``gather_evidence``):

* every name, date and number of the question must occur in a retrieved
  passage (``missing``);
* for a question that asks for a kind of thing (a number in some unit, a date,
  a person, a place, an organisation), some sentence of a passage about the
  question's names must hold such a span that the question does not already
  say (``typed``);
* when the question asks for a specific attribute (队长, 装机容量, 坐席), the
  sentence should name it next to that span (``attribute``), or else cover the
  question's words closely;
* the sentence must cover enough of the question's words (``coverage``).

``AbstentionPolicy`` turns this into a decision with two coverage cut-offs,
calibrated on eval/qa.jsonl and crud-dev together (see eval/calibrate.py for
the figures, cross-set included). When it abstains the assistant says
``资料中没有找到相关信息。`` and shows the closest passages as "may be related".
For LLM generators the model's own refusal counts too (``is_refusal``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.answering.lexical import question_entities, unmentioned
from rag.answering.prompts import NOT_FOUND
from rag.text import normalize

#: Lowest coverage of the question's words by a supporting sentence (see ``AbstentionPolicy``),
#: and the same when no supporting sentence names the asked attribute next to its answer.
#: Fitted on eval/qa.jsonl and crud-dev together (python -m eval.calibrate): the pair with
#: the best abstention recall whose false-abstention rate stays within 0.03 on each set
#: (0.05 / 0.80 since the fourth pass; fitted on crud-dev alone the second is 0.80 too).
MIN_COVERAGE = 0.05
MIN_COVERAGE_WITHOUT_ATTRIBUTE = 0.80
#: A stating sentence must be about the question's names (see ``lexical.names_in_context``).
REQUIRE_SUBJECT = True

_REFUSAL_RE = re.compile(
    r"没有找到相关信息|没有找到|未找到|找不到|没有提到|未提及|没有提及|没有相关信息|没有涉及|未涉及"
    r"|无法回答|无法根据|不包含|没有包含|无相关|not (?:found|mentioned)|no (?:relevant )?information"
    r"|cannot answer|can't answer",
    re.IGNORECASE,
)


@dataclass
class Evidence:
    """What the retrieved passages support for one (part of a) question."""

    question: str
    #: Names, dates and numbers of the question that no retrieved passage mentions.
    missing: list[str]
    #: What the question asks for ("number", "date", "person", "place", "org" or None).
    kind: str | None
    #: Some sentence of a passage about the question's names holds a span of that kind.
    typed: bool
    #: Such a sentence names the asked attribute next to its span; None when no specific attribute is asked.
    attribute: bool | None
    #: Best coverage of the question's words (keywords and bigrams) by such a sentence, 0..1.
    coverage: float
    #: Best embedding similarity of such a sentence to the question.
    cosine: float
    #: Some retrieved passage names the asked attribute at all; None when no specific attribute is asked.
    named: bool | None = None
    #: Some such sentence states its figures for the year or period the question asks about
    #: (or names none): 2023年7月 does not answer a question about 2023年6月.
    timely: bool = True
    #: For a date question, some such sentence names the dated event (举行, 出生 …); None otherwise.
    event: bool | None = None
    #: Some such sentence is about the question's names: they occur in it or just before it, and its
    #: document names the question's most specific topic word (韦尔 of 韦尔股份的董事长是谁, not another
    #: company's chairman).
    subject: bool = True
    #: Some passage names one of the question's topic words (量子计算机); None when it has none.
    topic: bool | None = None
    #: The question asks who holds a role (总经理是谁): only a sentence naming the role next to a
    #: person states it, however closely it covers the question otherwise.
    role: bool = False


def gather_evidence(part, hits: Sequence) -> Evidence:
    """The evidence for one ``PartAnswer`` of the extractive answerer over ``hits``."""
    from rag.answering.lexical import (asked_for, attribute_terms, mentions_term, question_entities, states_topic,
                                       unmentioned)

    question = part.question
    asked = asked_for(question)
    kind = asked.kind
    typed = [s for s in part.scored if s.about and (s.type_match or kind is None)]
    # Only a sentence about the asked year/period, and for a date question about the dated event, states the fact.
    timely = [s for s in typed if s.timely]
    dated = [s for s in timely if s.event is not False]
    events = [s.event for s in timely if s.event is not None]
    support = [s for s in dated if s.subject] if REQUIRE_SUBJECT else dated
    terms = attribute_terms(question)
    attribute = any(s.attribute for s in support) if terms else None
    passages = " ".join(" ".join(h.heading_path) + " " + h.text for h in hits)
    named = any(mentions_term(passages, t) for t in terms) if terms else None
    # The sentence that states the fact must itself cover the question, not a neighbour.
    stating = [s for s in support if s.attribute] if attribute else support
    return Evidence(
        question=question,
        missing=unmentioned(question_entities(question), hits) if hits else question_entities(question),
        kind=kind,
        typed=bool(typed),
        attribute=attribute,
        coverage=max((s.lexical for s in stating), default=0.0),
        cosine=max((s.cosine for s in stating), default=0.0),
        named=named,
        timely=bool(timely) or not typed,
        event=any(events) if events else None,
        subject=bool(support) or not dated,
        topic=states_topic(question, hits) if hits else None,
        role=asked.role and bool(terms),
    )


@dataclass
class AbstentionPolicy:
    """Abstain when the evidence does not support an answer (see the module docstring).

    A part is supported when none of its names is missing, a sentence holds the
    asked kind of span (if a kind is asked), and that sentence covers at least
    ``min_coverage`` of the question's words, or ``min_coverage_without_attribute``
    when the question asks for a specific attribute that no such sentence names.
    """

    min_coverage: float = MIN_COVERAGE
    min_coverage_without_attribute: float = MIN_COVERAGE_WITHOUT_ATTRIBUTE

    require_span: bool = True

    @classmethod
    def lenient(cls) -> "AbstentionPolicy":
        """Abstain only when a name, date or number of the question is in no passage."""
        return cls(min_coverage=0.0, min_coverage_without_attribute=0.0, require_span=False)

    def reason(self, evidence: Evidence) -> str | None:
        """Why the evidence does not support an answer (``missing``, ``off_topic``, ``no_span``, ``other_time``,
        ``no_event``, ``other_subject``, ``no_attribute``, ``low_coverage``), or None when it does."""
        if evidence.missing:
            return "missing"
        if not self.require_span:
            return None
        if evidence.topic is False:
            return "off_topic"
        if not evidence.typed:
            return "no_span"
        if not evidence.timely:
            return "other_time"
        if evidence.event is False:
            return "no_event"
        if not evidence.subject:
            return "other_subject"
        if evidence.named is False:
            return "no_attribute"
        if evidence.attribute is False and (evidence.role or evidence.coverage < self.min_coverage_without_attribute):
            return "no_attribute"
        if evidence.coverage < self.min_coverage:
            return "low_coverage"
        return None

    def should_abstain(self, evidence: Evidence) -> bool:
        """True when the evidence is too weak to answer."""
        return self.reason(evidence) is not None


#: When an LLM refuses although the evidence passed ``AbstentionPolicy``, the
#: assistant abstains only if the extractive answer's best sentence score is below
#: this; otherwise it shows the extractive answer (see ``Assistant``). Scores are
#: positive, so by default a refusal never overrides the retrieval evidence: on
#: eval/qa.jsonl the old prompt's refusals hit answerable questions
#: (江西组建了多少支劳模工匠宣讲团？), and with the current prompt the 0.5B model refused
#: 0 of 101 questions while the unanswerable ones it saw got invented numbers (caught
#: by the citation check) instead, so refusals carry no evidence to calibrate on.
REFUSAL_THRESHOLD = 0.0

_MARKERS_RE = re.compile(r"[\[【［]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]】］]")
_NOT_FOUND_KEY = normalize(NOT_FOUND)[:8]


def _without_markers(text: str) -> str:
    return _MARKERS_RE.sub("", normalize(text))


def has_answer_text(text: str) -> bool:
    """Whether a reply says anything besides ``[n]`` markers and punctuation (``"[2]"`` does not)."""
    return bool(re.sub(r"[\W_]+", "", _without_markers(text)))


def is_refusal(text: str) -> bool:
    """Whether a model's reply says the passages do not contain the answer.

    A reply that is (or starts with, markers aside: ``[1]资料中没有找到…``)
    the not-found sentence, or a short reply that only says so, counts; a long
    answer mentioning "未提及" in passing does not. An empty or markers-only
    reply is not a refusal: the model said nothing (see ``has_answer_text``).
    """
    norm = normalize(text)
    clean = _without_markers(text).lstrip("。.，,：: ")
    if not has_answer_text(text):
        return False
    if clean.startswith(_NOT_FOUND_KEY):
        return True
    cites = clean != norm  # a reply that cites passages is an answer, even if partly negative
    return not cites and len(clean) <= 40 and bool(_REFUSAL_RE.search(clean))


def only_restates(reply: str, question: str, min_new: int = 2) -> bool:
    """Whether a reply merely repeats the question (fewer than ``min_new`` characters it lacks).

    A small model sometimes answers 全国工会建成的户外劳动者服务站点[3]。 to
    全国工会建成的户外劳动者服务站点有多少个？: supported by the passage, but no
    answer. Characters, not bigrams, so a short real answer (郑久强。) is kept.
    """
    def chars(text: str) -> set[str]:
        return set(re.sub(r"[\W_]+", "", text.lower()))

    return len(chars(_without_markers(reply)) - chars(normalize(question))) < min_new


def drop_refusal_sentences(text: str) -> str:
    """The reply without its not-found sentences (``…[1]。资料中没有找到相关信息。`` keeps the answer)."""
    from rag.text import sentence_spans

    kept = [text[s:e] for s, e in sentence_spans(text)
            if not _without_markers(text[s:e]).lstrip("。.，,：: ").startswith(_NOT_FOUND_KEY)]
    return "".join(kept) if kept else text


def missing_entities(question: str, hits: Sequence) -> list[str]:
    """Entities of the question that none of the retrieved passages mention.

    A question about 宁夏 answered from passages that never say 宁夏 is about
    something the documents do not cover, however similar the rest looks.
    Provincial names also match without their suffix (宁夏回族自治区 ~ 宁夏).
    """
    return unmentioned(question_entities(question), hits)
