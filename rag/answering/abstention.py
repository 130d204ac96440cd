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
* the sentence must cover enough of the question's words (``coverage``);
* its value must stand in the asked relation to the question: the asked period, role holder, part and measure
  (``rag.answering.relations``).

``AbstentionPolicy`` turns this into a decision: a cascade of these checks with two
coverage cut-offs (calibrated on eval/qa.jsonl and crud-dev together, eval/calibrate.py),
in which the checks that generalize worst are decided by a logistic model over
``features`` instead (``abstention_model.json``, fitted on every development set together
and validated leave-one-set-out by ``python -m eval.fit_abstention``; figures in the README). The sentence judge
(``judge.SentenceJudge``, which reads question and sentence together) weighs in both ways: a sentence it
rates from ``JUDGE_STATES`` on lifts the attribute-word and subject checks, and when it rates every sentence it read
below ``JUDGE_DENIES`` a part that the checks pass is declined (``unstated``). When it abstains the assistant says
``资料中没有找到相关信息。`` and shows the closest passages as "may be related".
For LLM generators the model's own refusal counts too (``is_refusal``).
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from rag.answering import meaning as meaning_check
from rag.answering import relations
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
#: A figure or date that a sentence gives as a forecast or plan (预计到2025年底, 有望实现5.5%的增长)
#: does not state a fact, unless the question asks about plans (预计, 目标, 将 …).
PLANS_ARE_NO_FACT = True
#: The question's organisations (太平洋财险房山支公司, 北京通用人工智能研究院) must be named by
#: the stating sentence's document: another company's figure is no answer.
ORGANISATIONS_BY_DOCUMENT = True
#: For a date question the dated event's clause must not name another subject
#: (ACM成立于1946年 does not date 北京通用人工智能研究院's founding).
EVENT_OF_ANOTHER = True
#: A sentence that names another measure of the same kind instead of the asked one (营业利润 for
#: 营业收入, 进口 for 出口) does not state it.
CONTRASTS = True
#: A value whose clause names a word of the same kind as one of the question's (Cilin ``#`` siblings:
#: 猪肉 for 牛肉, 四季度 for 一季度, 亚军 for 冠军) and not the question's word states another thing.
SIBLINGS = True
#: The relation checks read the values the answer quotes too: when every value of every quoted sentence fails
#: them (文工团 for 哪个剧场, 7000多名职工 for 多少名专职心理咨询师), the part is not supported, though another
#: retrieved sentence that the answer does not quote might pass.
QUOTED_RELATIONS = True
#: A 什么-question for an award or title (什么奖章) needs the sentence to name it (八一勋章,
#: “……”称号): 颁发奖章 says that there was one, not which.
NAMED_AWARDS = True

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
    #: Some stating sentence gives its figure as a fact, not as a forecast or plan; None when the
    #: question asks about plans or for no number or date.
    factual: bool | None = None
    #: Some stating sentence's document names every organisation of the question (None: it names none).
    organisations: bool | None = None
    #: For a date question: some stating sentence dates the event of the question's subject, not of
    #: another one named before the event word (None for other questions).
    own_event: bool | None = None
    #: For a 什么-question about an award or title: some sentence names one (None for other questions).
    award_named: bool | None = None
    #: For a question about a measure with siblings (收入, 出口): some stating sentence does not name a
    #: sibling instead of it (营业利润 for 营业收入); None for other questions.
    measure: bool | None = None
    #: For a question with words that have Cilin siblings (牛肉, 冠军): some stating sentence's value is not
    #: in a clause that names a sibling instead (猪肉价格同比下降26% for 牛肉); None for other questions.
    kind_of_thing: bool | None = None
    #: The relation in which every stating sentence's value fails the question (``relations.NAMES``: another
    #: period's figure, another role's holder, a total for a part, a sibling measure), or every value the answer
    #: quotes does (``QUOTED_RELATIONS``); None when one may answer.
    relation: str | None = None
    #: How closely a stating sentence names the asked attribute by meaning: the best hubness-corrected cosine
    #: of an asked attribute term to a word next to its answer (``meaning.AttributeMeaning``, about -0.1 to
    #: 0.25; 军援 ~ 军事援助 0.18, 大会 ~ 举行 0.01), ``meaning.NAMED_SCORE`` (0.25) when one names it by its
    #: word or a thesaurus form; None when no specific attribute is asked or nothing was compared. From
    #: ``meaning.ATTRIBUTE_SIMILARITY`` (0.06) on it sets ``attribute`` and ``named``.
    attribute_similarity: float | None = None
    #: Index into the hits of the passage holding the best-covering stating sentence (None: no such sentence).
    passage: int | None = None
    #: Best coverage and embedding similarity of the question by any candidate sentence, before the
    #: checks above filter them (a soft signal where a check rejected every sentence).
    best_coverage: float = 0.0
    best_cosine: float = 0.0
    #: The extractive answerer's score of its best sentence (see ``extractive.Weights``).
    best_score: float = 0.0
    #: Hybrid score of the first hit, and its lead over the first hit of another document.
    top_score: float = 0.0
    margin: float = 0.0
    #: How many names, dates and numbers the question has (``lexical.question_entities``).
    entities: int = 0
    #: The sentence judge's best logit over the sentences it read (``judge.SentenceJudge``: above 0 one states the
    #: answer); None when no judge read them.
    judge: float | None = None


def gather_evidence(part, hits: Sequence, source_text: Callable[[str], str | None] | None = None) -> Evidence:
    """The evidence for one ``PartAnswer`` of the extractive answerer over ``hits`` (``source_text``,
    doc -> text, lets it check what a stating passage's whole document names)."""
    from rag.answering.lexical import (asked_for, asked_nouns, attribute_terms, event_terms, mentions_term,
                                       question_entities, states_topic, unmentioned)

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
    similarity = _attribute_similarity(support) if terms else None
    if any(s.attribute_similarity is not None and s.attribute_similarity >= meaning_check.ATTRIBUTE_SIMILARITY
           for s in support):
        named = True  # a sentence names it in other words (军事援助 for 军援), so the passages do
    # The sentence that states the fact must itself cover the question, not a neighbour.
    stating = [s for s in support if s.attribute] if attribute else support
    factual = organisations = own_event = award_named = measure = None
    if PLANS_ARE_NO_FACT and kind in ("number", "date") and stating and not _PLAN_Q_RE.search(normalize(question)):
        facts = [s for s in stating if not s.answer_spans or not all(planned(s.text, a) for a in s.answer_spans)]
        factual, stating = bool(facts), facts or stating
    orgs = question_organisations(question) if ORGANISATIONS_BY_DOCUMENT else []
    if orgs and stating:
        texts = _document_texts(hits, source_text)
        named_orgs = [s for s in stating if all(_names_organisation(texts[hits[s.hit_index].doc], o) for o in orgs)]
        organisations, stating = bool(named_orgs), named_orgs or stating
    contrasts = contrasted_words(question) if CONTRASTS else []
    if contrasts and stating:
        plain = [s for s in stating if not names_instead(s.text, contrasts)]
        measure, stating = bool(plain), plain or stating
    kinds = sibling_words(question) if SIBLINGS else []
    kind_of_thing = None
    if kinds and stating:
        plain = [s for s in stating if not values_of_another(s.text, s.answer_spans, kinds)]
        kind_of_thing, stating = bool(plain), plain or stating
    relation = None
    if relations.RELATIONS and stating and kind is not None:
        contexts: dict[int, relations.Context] = {}
        found = []
        for s in stating:
            if s.hit_index not in contexts:
                contexts[s.hit_index] = relations.context_of(hits[s.hit_index], source_text)
            found.append(relations.mismatch(question, kind, s.text, s.answer_spans, contexts[s.hit_index]))
        plain = [s for s, f in zip(stating, found) if f is None]
        relation, stating = (None, plain) if plain else (found[0], stating)
        if relation is None and QUOTED_RELATIONS:
            relation = _quoted_relation(part, kind, hits, source_text, contexts)
    events_asked = event_terms(question) if EVENT_OF_ANOTHER and kind == "date" else []
    if events_asked and stating:
        own = [s for s in stating if not event_of_another(question, s.text, events_asked)]
        own_event, stating = bool(own), own or stating
    awards = [n for n in asked_nouns(question) if _AWARD_RE.search(n)] if NAMED_AWARDS else []
    if awards:
        award_named = any(names_award(s.text, awards, question) for s in support)
    entities = question_entities(question)
    return Evidence(
        question=question,
        missing=unmentioned(entities, hits) if hits else entities,
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
        factual=factual,
        organisations=organisations,
        own_event=own_event,
        award_named=award_named,
        measure=measure,
        kind_of_thing=kind_of_thing,
        relation=relation,
        attribute_similarity=similarity,
        passage=max(stating, key=lambda s: s.lexical).hit_index if stating else None,
        best_coverage=max((s.lexical for s in part.scored), default=0.0),
        best_cosine=max((s.cosine for s in part.scored), default=0.0),
        best_score=max((s.score for s in part.scored), default=0.0),
        top_score=hits[0].score if hits else 0.0,
        margin=_margin(hits),
        entities=len(entities),
        judge=max((s.judge for s in part.scored if s.judge is not None), default=None),
    )


def _quoted_relation(part, kind: str, hits: Sequence, source_text, contexts: dict) -> str | None:
    """The relation in which every value of every sentence the answer quotes (``part.chosen``) fails the question
    (``relations.mismatch``), or None when one may answer it or no quoted sentence holds a value."""
    found = None
    for s in getattr(part, "chosen", None) or ():
        if not s.answer_spans:
            continue
        if s.hit_index not in contexts:
            contexts[s.hit_index] = relations.context_of(hits[s.hit_index], source_text)
        failed = relations.mismatch(part.question, kind, s.text, s.answer_spans, contexts[s.hit_index])
        if failed is None:
            return None
        found = found or failed
    return found


def _attribute_similarity(support: Sequence) -> float | None:
    """The best ``attribute_similarity`` of the stating sentences ``support``, ``meaning.NAMED_SCORE`` for one that names the
    attribute by its word; None when none was compared."""
    if any(s.attribute and s.attribute_similarity is None for s in support):
        return meaning_check.NAMED_SCORE
    values = [s.attribute_similarity for s in support if s.attribute_similarity is not None]
    return max(values) if values else None


def _margin(hits: Sequence) -> float:
    """How far the first hit's score leads the first hit of another document (0 when none)."""
    other = next((h.score for h in hits[1:] if h.doc != hits[0].doc), None) if hits else None
    return hits[0].score - other if other is not None else 0.0


#: A question about plans or forecasts: a planned figure answers it.
_PLAN_Q_RE = re.compile(r"预计|预期|计划|规划|有望|力争|争取|目标|将|未来|明年|要|拟|打算|到\d{4}年"
                        # 什么时候能通车, 哪年才会建成: a date asked with a modal is a future one
                        r"|(?:什么时候|何时|哪一?年|哪天|几月)才?(?:能|会|可以|可)")
#: Words that make what follows in their clause a forecast or plan (预计到2025年底前可实现300颗).
_PLAN_RE = re.compile(r"预计|预期|计划|规划|有望|力争|争取|目标|拟|打算")
_CLAUSE_RE = re.compile(r"[，,；;。！!？?：:]")


def planned(sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` of ``sentence`` is a forecast or plan: a plan word stands
    before it in its clause (预期中国经济2023年有望实现5.5%的增长)."""
    start = max((m.end() for m in _CLAUSE_RE.finditer(sentence, 0, span[0])), default=0)
    return bool(_PLAN_RE.search(sentence, start, span[0]))


#: Organisations a question names by a suffix that rarely follows anything but a name.
_ORGANISATION_RE = re.compile(r"(?:公司|集团|研究院|研究所|分局|大学|学院|医院|协会|学会|基金会"
                              # and named events (2023世界机器人大会), whose words the document must name
                              r"|大会|博览会|交易会|论坛|峰会|运动会|锦标赛)")


def question_organisations(question: str) -> list[str]:
    """The organisations ``question`` names (太平洋财险房山支公司, 良庆公安分局): the words before one
    of ``_ORGANISATION_RE``'s suffixes back to a preposition or particle (贵州以顺丰公司 -> 顺丰公司),
    at least four characters, not generic words (该公司, 各级工会, 保险公司) nor a verb's object (送往医院)."""
    from rag.answering.lexical import is_generic_name, named_only, suffix_spans
    from rag.tokenize_zh import jieba_pos_tokenizer

    text = normalize(question)
    out = []
    for s, e in named_only(text, suffix_spans(text, _ORGANISATION_RE)):
        words = list(jieba_pos_tokenizer().cut(text[s:e]))
        # (and after a place or time word: 房山暴雨后|保险公司 is no organisation's name)
        words = words[max((i + 1 for i, p in enumerate(words[:-1]) if p.flag[:1] in "pcuf"), default=0):]
        if len(words) >= 2 and words[-2].flag.startswith("v") and words[-2].flag != "vn":
            continue
        name = "".join(p.word for p in words)
        head = [p for p in words if not _ORGANISATION_RE.fullmatch(p.word)]
        if len(head) == 1 and head[0].flag not in _NAME_FLAGS:
            continue  # 保险公司, 生产公司: a kind of organisation, not one
        if len(name) < 4 or re.search(r"哪|什么|谁|多少|几|年|这|那|该|其|各|某", name) or is_generic_name(name):
            continue
        out.append(name)
    return out


def _document_texts(hits: Sequence, source_text) -> dict[str, str]:
    """Per document of ``hits``: its whole text when ``source_text`` gives it, and its retrieved passages."""
    texts: dict[str, str] = {}
    for h in hits:
        texts[h.doc] = texts.get(h.doc, "") + " " + " ".join(h.heading_path) + " " + h.text
    for doc in texts:
        try:
            whole = source_text(doc) if source_text is not None else None
        except (KeyError, OSError):
            whole = None
        if whole:
            texts[doc] += " " + whole
    return {doc: normalize(text).lower() for doc, text in texts.items()}


_EVENT_RE = re.compile(r"(?:大会|博览会|交易会|论坛|峰会|运动会|锦标赛)$")


def _names_organisation(text: str, name: str) -> bool:
    """Whether ``text`` names the organisation ``name``, also without the places and verbs it starts
    with (北京通用人工智能研究院 ~ 通用人工智能研究院, 湖南省希望国家能源集团 ~ 国家能源集团) or in a
    shortened form (see ``lexical.names_term``)."""
    from rag.answering.lexical import names_term
    from rag.tokenize_zh import jieba_pos_tokenizer

    words = list(jieba_pos_tokenizer().cut(name.lower()))
    if _EVENT_RE.search(name):  # an event's name is written out or shortened: its words, in any order
        return all(p.word in text for p in words if len(p.word) >= 2 and not p.word.isdigit())
    while True:
        if names_term(text, "".join(p.word for p in words)):
            return True
        if len(words) < 3 or not (words[0].flag == "ns" or (words[0].flag.startswith("v") and words[0].flag != "vn")):
            return False
        words = words[1:]


#: Events a thing does itself (成立, 出生): the name before the event word is whose event it is.
_OWN_EVENTS = ("成立", "创立", "创建", "创办", "建立", "组建", "始建", "诞生", "出生")
_NAME_FLAGS = ("nr", "nrt", "nrfg", "ns", "nt", "nz", "eng", "j")


def event_of_another(question: str, sentence: str, events: Sequence[str]) -> bool:
    """Whether ``sentence`` dates the question's founding or birth (``_OWN_EVENTS``) for a subject the
    question does not name: a name stands before the event word in its clause and shares no topic
    word or name with the question (ACM（国际计算机协会）成立于1946年 for 北京通用人工智能研究院)."""
    from rag.answering.lexical import names_term, question_entities, topic_terms
    from rag.tokenize_zh import jieba_pos_tokenizer

    own = [e for e in events if e in _OWN_EVENTS]
    if not own:
        return False
    norm = normalize(sentence).lower()
    words = [t.lower() for t in topic_terms(question) + question_entities(question) if t not in own]
    found = False
    for event in own:
        for m in re.finditer(re.escape(event), norm):
            start = max((c.end() for c in _CLAUSE_RE.finditer(norm, 0, m.start())), default=0)
            before = norm[start:m.start()]
            if any(names_term(before, w) for w in words):
                return False
            if any(p.flag in _NAME_FLAGS and len(p.word) >= 2 for p in jieba_pos_tokenizer().cut(before)) \
                    or _ORGANISATION_RE.search(before):
                found = True
            else:
                return False  # no name of its own (该院成立于, 于2010年成立): the question's subject
    return found


#: Measures of one kind that are not the same (营业收入 is not 营业利润, 出口 not 进口), with the
#: words news uses for each (营收 ~ 收入).
_CONTRASTS = [
    {"收入": ("收入", "营收"), "利润": ("利润", "盈利"), "成本": ("成本",), "支出": ("支出",), "亏损": ("亏损",)},
    {"出口": ("出口",), "进口": ("进口",)},
    {"买入": ("买入",), "卖出": ("卖出",)},
]


def contrasted_words(question: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each measure of ``_CONTRASTS`` that the question names, alone among its siblings: how
    it is written and how its siblings are."""
    q = normalize(question)
    out = []
    for group in _CONTRASTS:
        named = [w for w, forms in group.items() if any(f in q for f in forms)]
        if len(named) == 1:
            others = tuple(f for w, forms in group.items() if w != named[0] for f in forms)
            out.append((group[named[0]], others))
    return out


def names_instead(sentence: str, contrasts: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    """Whether ``sentence`` names a sibling of an asked measure and not the measure itself
    (营业利润同比增长7%至100亿美元 for 营业收入)."""
    text = normalize(sentence)
    return any(any(f in text for f in others) and not any(f in text for f in forms) for forms, others in contrasts)


#: Only common nouns have siblings that name another thing: Cilin's ``#`` groups of verbs hold near
#: synonyms (打工 # 务工), and names are checked as names (美国 # 英国, but text says 美方, 该国).
SIBLING_TAGS = ("n", "s", "t")


#: A sibling the question names itself is no other thing (挑战赛的正赛和单项决赛将于哪天举行: 决赛, a sibling of 挑战赛, is
#: what it asks about, so 正赛和单项决赛将于17日举行 states it).
OWN_WORDS_NO_SIBLINGS = True


def sibling_words(question: str) -> list[tuple[frozenset[str], frozenset[str]]]:
    """For each common noun of ``question`` (two or more characters, not a name) that Cilin puts among
    others of its kind: how it may be written (itself, its synonyms and numeral forms) and its siblings
    (牛肉 -> 猪肉, 羊肉 …), siblings that contain or are part of one of its forms left out (冻猪肉, 猪肉), and so are
    the question's own words (``OWN_WORDS_NO_SIBLINGS``)."""
    from rag.answering import thesaurus
    from rag.tokenize_zh import jieba_pos_tokenizer

    out = []
    seen = set()
    q = normalize(question)
    for pair in jieba_pos_tokenizer().cut(q):
        word = pair.word
        if len(word) < 2 or word in seen or pair.flag not in SIBLING_TAGS or re.search(r"哪|什么|谁|多少|几", word):
            continue
        seen.add(word)
        others = thesaurus.siblings(word)
        if not others:
            continue
        forms = frozenset(thesaurus.forms(word))
        others = frozenset(o for o in others if not any(o in f or f in o for f in forms)
                           and not (OWN_WORDS_NO_SIBLINGS and o in q))
        if others:
            out.append((forms, others))
    return out


def values_of_another(sentence: str, spans: Sequence[tuple[int, int]],
                      words: Sequence[tuple[frozenset[str], frozenset[str]]]) -> bool:
    """Whether every answer span of ``sentence`` stands in a clause that names a sibling of one of the
    question's ``words`` (see ``sibling_words``) and none of its forms: 7月猪肉价格同比下降26% for 牛肉,
    not 牛肉价格上涨5%，猪肉价格下降26% (whose 5% is the beef's)."""
    if not spans:
        return False
    for start, end in spans:
        lo = max((m.end() for m in _CLAUSE_RE.finditer(sentence, 0, start)), default=0)
        stop = _CLAUSE_RE.search(sentence, end)
        clause = normalize(sentence[lo:stop.start() if stop else len(sentence)])
        if not any(any(o in clause for o in others) and not any(f in clause for f in forms)
                   for forms, others in words):
            return False
    return True


#: Nouns for an award or title that a 什么-question asks the name of.
_AWARD_RE = re.compile(r"(?:奖章|勋章|奖牌|奖项|称号|荣誉|奖杯|奖状)$")


#: What an award or title is called in text (生命科学奖, 八一勋章, 全国五一劳动奖章, “……”称号).
_AWARD_HEAD_RE = re.compile(r"奖章|勋章|奖牌|奖杯|奖状|称号|奖")
#: What may stand before an award word without naming it (颁发奖章, 获得的称号, 该奖项).
_NOT_A_NAME = ("颁发", "获得", "荣获", "获颁", "授予", "颁", "获", "得", "的", "了", "枚", "个", "项", "大", "该", "此", "这",
               "等", "和", "及", "与", "等", "各", "类", "种", "重", "嘉", "褒", "夸", "领", "发", "授")


def names_award(sentence: str, nouns: Sequence[str], question: str) -> bool:
    """Whether ``sentence`` names an award or title, as a 什么-question about one (``nouns``: 奖章, 奖项)
    needs: a quoted name next to the noun (see ``lexical.named_spans``) or an award word after a name
    the question does not already say (生命科学奖, 八一勋章), not after a verb or particle (颁发奖章)."""
    from rag.answering.lexical import named_spans

    if named_spans(sentence, nouns, question):
        return True
    q = normalize(question)
    text = normalize(sentence)
    for m in _AWARD_HEAD_RE.finditer(text):
        before = text[max(0, m.start() - 2):m.start()]
        if not before or not re.match(r"[\u4e00-\u9fff\w”》」]", before[-1:]):
            continue
        if before.endswith(_NOT_A_NAME):
            continue
        if text[max(0, m.start() - 4):m.end()] not in q:
            return True
    return False


#: The learned decision's inputs, in the order of the shipped model's weights (see ``features``).
#: Flags are 1.0 where a check found evidence *against* an answer.
FEATURES = (
    "missing",            # a name, date or number of the question is in no passage
    "off_topic",          # no passage names a topic word of the question
    "no_span",            # no sentence about the question's names holds the asked kind of span
    "other_time",         # the typed sentences all state another year or period
    "no_event",           # a date question whose dated event no sentence names
    "other_subject",      # no typed sentence is about the question's names
    "planned",            # the stating sentences only give forecasts or plans
    "other_organisation",  # the stating documents do not name the question's organisation
    "other_event",        # the stated date is another subject's founding or birth
    "contrast",           # the stating sentences name another measure (营业利润 for 营业收入)
    "sibling",            # ... or another thing of the same kind (猪肉 for 牛肉)
    "award_unnamed",      # a 什么-question about an award that no sentence names
    "attribute_asked",    # the question asks for a specific attribute (队长, 装机容量)
    "no_attribute",       # ... and no stating sentence names it next to its span
    "named_nowhere",      # ... and no passage names it at all
    "role_unnamed",       # a 谁-question about a role that no stating sentence names
    "attribute_similarity",  # how closely a stating sentence names the asked attribute by meaning (0: not measured)
    "attribute_unmeasured",  # an attribute is asked but no stating sentence was compared
    "coverage",           # best coverage of the question's words by a stating sentence, 0..1
    "cosine",             # best embedding similarity of a stating sentence to the question
    "no_attribute_coverage",  # coverage where the attribute is not named (the old 0.80 cut-off's input)
    "best_coverage",      # best coverage by any candidate sentence, before the checks
    "best_cosine",        # best similarity of any candidate sentence
    "best_score",         # the extractive answerer's best sentence score
    "top_score",          # hybrid score of the first hit
    "margin",             # its lead over the first hit of another document
    "passage_rank",       # 1 / (1 + rank) of the stating sentence's passage (0: no stating sentence)
    "entities",           # how many names, dates and numbers the question has
    "kind_number", "kind_date", "kind_person", "kind_place", "kind_org",  # what the question asks for
)

#: The reason ``AbstentionPolicy.reason`` gives when a feature weighs most against an answer.
FEATURE_REASONS = {
    "missing": "missing", "off_topic": "off_topic", "no_span": "no_span", "award_unnamed": "no_span",
    "other_time": "other_time", "no_event": "no_event", "other_subject": "other_subject",
    "other_organisation": "other_subject", "other_event": "other_subject", "planned": "planned",
    "contrast": "no_attribute", "sibling": "no_attribute", "no_attribute": "no_attribute",
    "named_nowhere": "no_attribute", "role_unnamed": "no_attribute", "attribute_asked": "no_attribute",
    "no_attribute_coverage": "no_attribute", "attribute_similarity": "no_attribute",
    "attribute_unmeasured": "no_attribute",
}


def features(evidence: Evidence) -> dict[str, float]:
    """``evidence`` as the numbers the learned decision weighs, named as in ``FEATURES``.

    Every check of ``gather_evidence`` becomes a 0/1 flag (1: evidence against an answer; a check
    that does not apply is 0), next to the coverages and similarities of the best stating sentence
    and of the best sentence before the checks, the retrieval signals (top hybrid score, its margin
    over another document, the rank of the stating passage), the number of the question's names and
    the asked kind. Cheap: no retrieval, no model.
    """
    e = evidence
    no_attribute = e.attribute is False
    f = {
        "missing": float(bool(e.missing)),
        "off_topic": float(e.topic is False),
        "no_span": float(not e.typed),
        "other_time": float(not e.timely),
        "no_event": float(e.event is False),
        "other_subject": float(not e.subject),
        "planned": float(e.factual is False),
        "other_organisation": float(e.organisations is False),
        "other_event": float(e.own_event is False),
        "contrast": float(e.measure is False),
        "sibling": float(e.kind_of_thing is False),
        "award_unnamed": float(e.award_named is False),
        "attribute_asked": float(e.attribute is not None),
        "no_attribute": float(no_attribute),
        "named_nowhere": float(e.named is False),
        "role_unnamed": float(e.role and no_attribute),
        "attribute_similarity": e.attribute_similarity if e.attribute_similarity is not None else 0.0,
        "attribute_unmeasured": float(e.attribute is not None and e.attribute_similarity is None),
        "coverage": e.coverage,
        "cosine": e.cosine,
        "no_attribute_coverage": e.coverage if no_attribute else 0.0,
        "best_coverage": e.best_coverage,
        "best_cosine": e.best_cosine,
        "best_score": e.best_score,
        "top_score": e.top_score,
        "margin": e.margin,
        "passage_rank": 1.0 / (1 + e.passage) if e.passage is not None else 0.0,
        "entities": float(e.entities),
    }
    for kind in ("number", "date", "person", "place", "org"):
        f["kind_" + kind] = float(e.kind == kind)
    return f


#: A model's scope when it decides every part (see ``AbstentionModel.scope``).
ALL = ("*",)
#: What ``AbstentionPolicy.reason`` may answer.
REASONS = ("missing", "off_topic", "no_span", "other_time", "no_event", "other_subject", "planned", "no_attribute",
           "low_coverage", "unstated") + relations.NAMES

#: The shipped learned decision (written by ``python -m eval.fit_abstention``).
MODEL_PATH = Path(__file__).with_name("abstention_model.json")
MODEL_FORMAT = 1


class AbstentionModelError(ValueError):
    """The abstention model file is unreadable or does not match ``FEATURES``."""


@dataclass(frozen=True)
class AbstentionModel:
    """A logistic regression over ``features``: the probability that the passages do not hold
    the answer is ``sigmoid(bias + sum(weight * (x - mean) / scale))``; a part whose probability is
    at least ``threshold`` is unsupported. ``gates`` are the checks that decide alone, before the
    model (certain by construction)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    gates: tuple[str, ...] = ()
    #: Which parts it decides: ``ALL``, or the parts the cascade declines for one of these reasons
    #: (``("other_subject",)``: a softened cascade); the cascade's decision stands for the others.
    scope: tuple[str, ...] = ("*",)
    #: What it was fitted on and how it did (free-form, for people; see README).
    info: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == n):
            raise AbstentionModelError(f"abstention model: {n} features but {len(self.mean)} means, "
                                       f"{len(self.scale)} scales and {len(self.weights)} weights")
        unknown = [name for name in (*self.features, *self.gates) if name not in FEATURES]
        if unknown:
            raise AbstentionModelError(f"abstention model: unknown features {unknown} (known: {', '.join(FEATURES)})")
        reasons = [name for name in self.scope if self.scope != ALL and name not in REASONS]
        if reasons:
            raise AbstentionModelError(f"abstention model: unknown scope {reasons} (known: {', '.join(REASONS)})")

    def contributions(self, evidence: Evidence) -> dict[str, float]:
        """Each feature's term of the model's sum (positive: against an answer)."""
        x = features(evidence)
        return {name: w * (x[name] - m) / s
                for name, m, s, w in zip(self.features, self.mean, self.scale, self.weights)}

    def probability(self, evidence: Evidence) -> float:
        """The probability that the passages do not hold the answer to this part."""
        z = self.bias + sum(self.contributions(evidence).values())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_dict(self) -> dict:
        return {"format": MODEL_FORMAT, "features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias,
                "threshold": self.threshold, "gates": list(self.gates), "scope": list(self.scope), "info": self.info}

    @classmethod
    def from_dict(cls, data: dict) -> "AbstentionModel":
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise AbstentionModelError(f"abstention model: format {data.get('format') if isinstance(data, dict) else data!r}"
                                       f" is not {MODEL_FORMAT}")
        try:
            return cls(tuple(data["features"]), tuple(map(float, data["mean"])), tuple(map(float, data["scale"])),
                       tuple(map(float, data["weights"])), float(data["bias"]), float(data["threshold"]),
                       tuple(data.get("gates", ())), tuple(data.get("scope", ALL)), dict(data.get("info", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise AbstentionModelError(f"abstention model: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> "AbstentionModel":
        """Read a model written by ``to_dict`` (JSON)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AbstentionModelError(f"cannot read the abstention model {path}: {exc}") from exc
        return cls.from_dict(data)


@functools.lru_cache(maxsize=1)
def shipped_model() -> AbstentionModel:
    """The model shipped next to this module (read once, on first use)."""
    return AbstentionModel.load(MODEL_PATH)


#: How ``AbstentionPolicy`` decides unless told: ``"calibrated"`` (the cascade with ``shipped_model``
#: deciding the parts in its scope, fitted on every development set together) or ``"cascade"`` (the
#: hand-ordered checks and two coverage cut-offs alone).
DECISION = "calibrated"
DECISIONS = ("calibrated", "cascade")
#: From this logit of the sentence judge (``judge.SentenceJudge``) on, a part that only the attribute-word checks
#: (``no_attribute`` by the attribute's name, ``low_coverage``) or the subject checks (``other_subject``: no stating
#: sentence next to the question's names, or its document does not name the question's organisation) would decline is
#: answered; the relation, time, edition, plan and sibling checks stay as they are. Abstention recall on eval/qa.jsonl
#: and crud-dev stays >= 0.80 from 1.5 on (at 1.0 crud-dev falls to 0.79); 1.5 and 2.0 decide the development sets
#: alike, and 2.0 keeps a sentence of another act declined (转账30万元 for 追回了多少钱, 1.8). The subject checks were
#: added in session 18 (validation pairs 6-10: 7 of 8 answerable questions declined as other_subject rate >= 2.4, none
#: of 21 unanswerable ones do); eval/HISTORY.md.
JUDGE_STATES = 2.0
#: Below this logit for every sentence it read, the judge finds no sentence that states the answer, and a part that
#: every other check passes is declined (``unstated``). The judge's low logits are noisy (a plain 重约1.8吨 rates -2.2
#: for 重量是多少), so this is a safety net set below every answerable question of the development and validation sets
#: (about 1,300): it declines one more unanswerable question in each of four validation sets (pairs 7-10, both corpora;
#: questions the judge was not trained on) and answers none fewer; from -2.3 on it declines answerable ones too
#: (eval/HISTORY.md, session 18).
JUDGE_DENIES = -2.4


@dataclass
class AbstentionPolicy:
    """Abstain when the evidence does not support an answer (see the module docstring).

    ``decision="cascade"``: a part is supported when none of its names is missing, a sentence
    holds the asked kind of span (if a kind is asked), no check finds it about another subject,
    time or measure, and that sentence covers at least ``min_coverage`` of the question's words,
    or ``min_coverage_without_attribute`` when the question asks for a specific attribute that no
    such sentence names.

    ``decision="calibrated"``: ``model`` (default: the shipped ``abstention_model.json``, read on
    first use) decides the parts in its scope (every part, or those the cascade declines for the
    reasons it softens): unsupported when its probability is at least its threshold or one of its
    gates fires (and, deciding every part, when the coverage is below a ``min_coverage`` raised
    above the default). The cascade decides the other parts.
    """

    min_coverage: float = MIN_COVERAGE
    min_coverage_without_attribute: float = MIN_COVERAGE_WITHOUT_ATTRIBUTE

    require_span: bool = True
    decision: str = DECISION
    model: AbstentionModel | None = None

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown abstention decision {self.decision!r} (choose from {', '.join(DECISIONS)})")

    @classmethod
    def lenient(cls) -> "AbstentionPolicy":
        """Abstain only when a name, date or number of the question is in no passage."""
        return cls(min_coverage=0.0, min_coverage_without_attribute=0.0, require_span=False)

    def reason(self, evidence: Evidence) -> str | None:
        """Why the evidence does not support an answer (``missing``, ``off_topic``, ``no_span``, ``other_time``,
        ``no_event``, ``other_subject``, ``planned``, ``no_attribute``, ``low_coverage``, ``unstated`` (the sentence
        judge rates no sentence it read from ``JUDGE_DENIES`` on), or a relation of ``relations.NAMES``:
        ``other_period``, ``other_role``, ``other_part``, ``other_measure``, ``other_owner``), or None when it does.
        For the learned decision it names the evidence that weighs most against an answer."""
        if not self.require_span:
            return "missing" if evidence.missing else None
        if self.decision == "cascade":
            reason = self._cascade(evidence)
        else:
            model = self.model or shipped_model()
            if model.scope == ALL:
                reason = self._learned(model, evidence)
            else:
                reason = self._cascade(evidence)
                if reason in model.scope:
                    reason = self._learned(model, evidence, reason)
        if reason is None and evidence.judge is not None and evidence.judge < JUDGE_DENIES:
            return "unstated"
        return reason

    def probability(self, evidence: Evidence) -> float:
        """The learned model's probability that the passages do not hold the answer to this part."""
        return (self.model or shipped_model()).probability(evidence)

    def _learned(self, model: AbstentionModel, evidence: Evidence, reason: str | None = None) -> str | None:
        """The model's decision on a part: None, or ``reason`` (the cascade's) or else the reason of
        the feature that weighs most against an answer."""
        f = features(evidence)
        gated = [g for g in model.gates if f[g]]
        if gated:
            return FEATURE_REASONS.get(gated[0], "low_coverage")
        if self.min_coverage > MIN_COVERAGE and evidence.coverage < self.min_coverage:
            return "low_coverage"
        if model.probability(evidence) < model.threshold:
            return None
        if reason is not None:
            return reason
        against = max(model.contributions(evidence).items(), key=lambda item: item[1])[0]
        return FEATURE_REASONS.get(against, "low_coverage")

    def _cascade(self, evidence: Evidence) -> str | None:
        """Today's hand-ordered checks: the first that fails names the reason."""
        if evidence.missing:
            return "missing"
        if evidence.topic is False:
            return "off_topic"
        if not evidence.typed:
            return "no_span"
        if not evidence.timely:
            return "other_time"
        if evidence.event is False:
            return "no_event"
        # A sentence the judge reads as stating the answer is about the question's subject, however far from the
        # question's names it stands or whatever its document calls the organisation (该行 for 工商银行北京分行).
        lifted = evidence.judge is not None and evidence.judge >= JUDGE_STATES
        if not evidence.subject and not lifted:
            return "other_subject"
        if evidence.factual is False:
            return "planned"
        if (evidence.organisations is False and not lifted) or evidence.own_event is False:
            return "other_subject"
        if evidence.measure is False or evidence.kind_of_thing is False:
            return "no_attribute"
        if evidence.relation is not None:
            return evidence.relation
        if evidence.award_named is False:
            return "no_span"
        # The checks below read the asked attribute's word and the question's words: a sentence the judge reads as
        # stating the answer says it in other words (设了几个点 answered by 设立服务网点12个). A coverage floor raised
        # above the default is the caller's and holds.
        if not lifted and evidence.named is False:
            return "no_attribute"
        if not lifted and evidence.attribute is False and (evidence.role or
                                                           evidence.coverage < self.min_coverage_without_attribute):
            return "no_attribute"
        if evidence.coverage < self.min_coverage and not (lifted and self.min_coverage <= MIN_COVERAGE):
            return "low_coverage"
        return None

    def should_abstain(self, evidence: Evidence) -> bool:
        """True when the evidence is too weak to answer."""
        return self.reason(evidence) is not None


def declines(reasons: Sequence[str | None]) -> bool:
    """Whether a question is declined, from its parts' ``AbstentionPolicy.reason``: only when every part
    is unsupported. A multi-part question answers the parts it can and marks the others (see
    ``ExtractiveAnswerer.render``); a question without parts (no passages) is declined."""
    return all(r is not None for r in reasons)


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
