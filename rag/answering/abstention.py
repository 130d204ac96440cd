"""Deciding when the documents do not hold the answer.

The evidence is the extractive answerer's best sentence score (embedding
similarity + keyword overlap + rank + answer type of the best sentence among
the retrieved passages). Below ``ABSTAIN_THRESHOLD`` the assistant says
``资料中没有找到相关信息。`` and shows the closest passages as "may be related".
For LLM generators the model's own refusal counts too (``is_refusal``).
The threshold was calibrated on eval/qa.jsonl (answerable vs unanswerable
questions) to keep wrong abstentions rare; see ``calibrate``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from rag.answering.lexical import keywords, question_entities, unmentioned
from rag.answering.prompts import NOT_FOUND
from rag.text import normalize

#: Best-sentence score under which the assistant abstains (see module docstring).
#: On eval/qa.jsonl (e5-small, hybrid, k=5) answerable questions scored 1.10-2.2 and
#: the near-miss unanswerable ones 1.31-1.75: the score cannot separate those (the
#: entity check does), so the threshold sits just under the lowest answerable
#: score and only catches questions far from every document.
ABSTAIN_THRESHOLD = 1.0
#: The same without an embedder (no cosine term): lowest answerable was 0.24.
ABSTAIN_THRESHOLD_LEXICAL = 0.2

_REFUSAL_RE = re.compile(
    r"没有找到相关信息|没有找到|未找到|找不到|没有提到|未提及|没有提及|没有相关信息|没有涉及|未涉及"
    r"|无法回答|无法根据|不包含|没有包含|无相关|not (?:found|mentioned)|no (?:relevant )?information"
    r"|cannot answer|can't answer",
    re.IGNORECASE,
)


@dataclass
class AbstentionPolicy:
    """Abstain when the evidence score is below ``threshold``."""

    threshold: float = ABSTAIN_THRESHOLD

    def should_abstain(self, evidence: float) -> bool:
        """True when the evidence is too weak to answer."""
        return evidence < self.threshold


#: When an LLM refuses although the question passed every abstention check, the
#: assistant abstains only if the extractive evidence is below this; otherwise it
#: shows the extractive answer (see ``Assistant``). Equal to ABSTAIN_THRESHOLD, so
#: by default a refusal never overrides the retrieval evidence: on eval/qa.jsonl the
#: old prompt's refusals hit answerable questions (江西组建了多少支劳模工匠宣讲团？),
#: and with the current prompt the 0.5B model refused 0 of 101 questions while the
#: unanswerable ones it saw got invented numbers (caught by the citation check)
#: instead, so refusals carry no evidence to calibrate a higher threshold on.
REFUSAL_THRESHOLD = 1.0

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


@dataclass
class Calibration:
    """The chosen threshold and how it does on the calibration questions."""

    threshold: float
    precision: float   # of abstentions, the share on unanswerable questions
    recall: float      # of unanswerable questions, the share abstained on
    wrong_abstention_rate: float  # of answerable questions, the share abstained on


def evaluate(threshold: float, answerable: Sequence[float], unanswerable: Sequence[float]) -> Calibration:
    """Abstention precision/recall at ``threshold`` given the evidence scores of both sets."""
    abstain_ok = sum(1 for s in unanswerable if s < threshold)
    abstain_bad = sum(1 for s in answerable if s < threshold)
    total = abstain_ok + abstain_bad
    return Calibration(
        threshold=threshold,
        precision=abstain_ok / total if total else 1.0,
        recall=abstain_ok / len(unanswerable) if unanswerable else 1.0,
        wrong_abstention_rate=abstain_bad / len(answerable) if answerable else 0.0,
    )


def calibrate(answerable: Sequence[float], unanswerable: Sequence[float],
              max_wrong_abstentions: float = 0.03) -> Calibration:
    """The threshold with the best recall whose wrong-abstention rate stays within the limit.

    Candidate thresholds are midpoints between consecutive observed scores.
    """
    values = sorted(set(answerable) | set(unanswerable))
    candidates: Iterable[float] = [values[0] - 1e-6] + [
        (a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    best = None
    for t in candidates:
        result = evaluate(t, answerable, unanswerable)
        if result.wrong_abstention_rate > max_wrong_abstentions:
            continue
        if best is None or (result.recall, result.precision) > (best.recall, best.precision):
            best = result
    return best or evaluate(values[0] - 1e-6, answerable, unanswerable)


def missing_entities(question: str, hits: Sequence) -> list[str]:
    """Entities of the question that none of the retrieved passages mention.

    A question about 宁夏 answered from passages that never say 宁夏 is about
    something the documents do not cover, however similar the rest looks.
    Provincial names also match without their suffix (宁夏回族自治区 ~ 宁夏).
    """
    return unmentioned(question_entities(question), hits)



#: Abstain when less of the question's keywords (by length) than this occur in the
#: retrieved passages. On eval/qa.jsonl the answerable questions had at least 0.38,
#: an off-topic question such as 量子计算机是谁发明的？ has 0.18.
MIN_KEYWORD_COVERAGE = 0.3


def keyword_coverage(question: str, hits: Sequence) -> float:
    """Share (by length) of the question's content words found in the passages or their headings."""
    haystack = normalize(" ".join(" ".join(h.heading_path) + " " + h.text for h in hits)).lower()
    words = keywords(question)
    total = sum(len(w) for w in words)
    return sum(len(w) for w in words if w in haystack) / total if total else 1.0
