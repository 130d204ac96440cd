"""The meaning check of the asked attribute (rag/answering/meaning.py).

A sentence that names the asked attribute in other words (军事援助 for 军援, 批准逮捕 for 批捕)
states it; one that gives a value of another attribute (收入 for 研发投入) or a word that is close
to everything (举行 for 大会) does not. The slow tests use the real model: its word vectors are
what the check is made of. The fast ones pin down the words compared and the cache.
"""
from __future__ import annotations

import numpy as np
import pytest

from rag.answering import extractive, meaning
from rag.answering.abstention import AbstentionPolicy, gather_evidence
from rag.answering.extractive import ExtractiveAnswerer
from rag.answering.lexical import is_role
from rag.answering.meaning import AttributeMeaning, phrases, window
from rag.types import Hit


def _hits(*texts: str) -> list[Hit]:
    return [Hit(f"d{i}.txt#1", f"d{i}.txt", [], t, 0, len(t), 1.0 - 0.1 * i) for i, t in enumerate(texts)]


class CountingEmbedder:
    """Wraps an embedder and counts the texts it is asked to embed as queries."""

    def __init__(self, inner):
        self.inner, self.queries = inner, []

    def encode_queries(self, texts):
        self.queries.extend(texts)
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts, show_progress=False):
        return self.inner.encode_passages(texts)


# --- fast: what is compared -----------------------------------------------------------

def test_the_words_compared_are_words_and_word_pairs_without_figures():
    words = phrases("向台湾提供价值3.45亿美元的装备、培训等军事援助")
    assert "军事援助" in words  # 军事 + 援助, as jieba cuts it
    assert "装备" in words and "台湾" in words
    assert not any(c.isdigit() for w in words for c in w)


def test_the_window_is_the_clause_of_the_answer_and_its_neighbourhood():
    sentence = "其中20名犯罪嫌疑人因涉嫌诈骗罪被呼和浩特市人民检察院批准逮捕。另有3人在逃。"
    start = sentence.index("20名")
    (piece,) = window(sentence, [(start, start + 3)])
    assert "批准逮捕" in piece          # the clause goes on past the fixed width
    assert "在逃" not in piece           # but not into the next sentence
    assert window(sentence, []) == [sentence]


def test_roles_and_kinds_of_people_are_left_to_the_lexical_check():
    # 副庭长 ~ 庭长 and 负责人 ~ 董事长 are close in meaning and are not the same role.
    assert all(is_role(t) for t in ("副庭长", "省委书记", "负责人", "一把手", "女代表"))
    assert not any(is_role(t) for t in ("军援", "新措施", "满意度", "装机容量"))


def test_word_vectors_are_cached_and_embedded_in_one_batch(fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    check = AttributeMeaning(counting)
    first = check.similarities(["军援"], [["提供价值3.45亿美元的军事援助"], ["装备、培训"]])
    asked = len(counting.queries)
    assert asked > 0 and len(first) == 2
    again = check.similarities(["军援"], [["提供价值3.45亿美元的军事援助"], ["装备、培训"]])
    assert again == first
    assert len(counting.queries) == asked  # nothing embedded twice
    small = AttributeMeaning(fake_embedder, cache_size=3)  # a long-running server's cache stays bounded
    assert small.similarities(["军援"], [["提供价值3.45亿美元的军事援助"], ["装备、培训"]]) == first
    assert len(small._vectors) <= 3


# --- slow: the real model -------------------------------------------------------------

@pytest.fixture(scope="module")
def check(seeds_retriever):
    return AttributeMeaning(seeds_retriever.embedder)


def _score(check, term, sentence, value):
    start = sentence.index(value)
    return check.similarities([term], [window(sentence, [(start, start + len(value))])])[0]


@pytest.mark.slow
@pytest.mark.parametrize("term,sentence,value", [
    ("军援", "当地时间7月28日，白宫网站宣布向台湾提供价值3.45亿美元的装备、培训等军事援助。", "3.45亿美元"),
    ("批捕", "其中20名犯罪嫌疑人因涉嫌诈骗罪被呼和浩特市人民检察院批准逮捕。", "20名"),
    ("满意度", "12351热线全年受理职工群众来电149万通，职工满意率达98.8%。", "98.8%"),
])
def test_an_attribute_named_in_other_words_is_accepted(check, term, sentence, value):
    assert _score(check, term, sentence, value) >= meaning.ATTRIBUTE_SIMILARITY


@pytest.mark.slow
@pytest.mark.parametrize("term,sentence,value", [
    ("投入", "其中，主品牌“汤臣倍健”实现收入32.84亿元，同比增长39.11%。", "32.84亿元"),       # another measure
    ("冬天", "班夫国家公园是国际游客的热门目的地，每年夏天有超过400万人涌入这里。", "400万人"),  # another season
    ("藏书", "该活动累计招募60余名学生志愿者，共录入27000余册图书信息。", "27000余册"),        # books entered, not held
    ("大会", "7月28日晚，湖北省第十六届中学生运动会开幕式在鄂州国际会展中心举行。", "鄂州国际会展中心"),  # a hub word
])
def test_a_different_attribute_is_rejected(check, term, sentence, value):
    assert _score(check, term, sentence, value) < meaning.ATTRIBUTE_SIMILARITY


@pytest.mark.slow
def test_every_asked_term_must_be_named(check):
    sentence = "迄今为止，汤臣倍健已开发出30多种定制原料，在功能性新产品研发等领域获得60多项专利。"
    start = sentence.index("30多种")
    pieces = window(sentence, [(start, start + 4)])
    # 研发 alone is named; 研发投入 asks for 投入 too.
    assert check.similarities(["研发"], [pieces])[0] >= meaning.ATTRIBUTE_SIMILARITY
    assert check.similarities(["研发", "投入"], [pieces])[0] < meaning.ATTRIBUTE_SIMILARITY


@pytest.mark.slow
def test_a_paraphrased_attribute_supports_the_answer_and_a_different_one_does_not(seeds_retriever, monkeypatch):
    answerer = ExtractiveAnswerer(seeds_retriever.embedder)
    policy = AbstentionPolicy()

    def decide(question, text):
        hits = _hits(text)
        part = answerer.analyze(question, hits)[0]
        evidence = gather_evidence(part, hits)
        return part, evidence, policy.reason(evidence)

    question = "7月28号白宫宣布给台湾的那笔军援价值多少？"
    text = "当地时间7月28日，白宫网站宣布向台湾提供价值3.45亿美元的装备、培训等军事援助。"
    part, evidence, reason = decide(question, text)
    assert reason is None and part.lead == "3.45亿美元"
    assert evidence.attribute and evidence.attribute_similarity >= meaning.ATTRIBUTE_SIMILARITY

    _, evidence, reason = decide("汤臣倍健上半年的研发投入是多少？", "上半年，汤臣倍健实现营业收入53.73亿元，同比增长24.6%。")
    assert reason == "no_attribute"
    assert evidence.attribute_similarity is not None and evidence.attribute_similarity < meaning.ATTRIBUTE_SIMILARITY

    monkeypatch.setattr(extractive, "MEANING", False)  # the lexical check alone declines the paraphrase
    _, evidence, reason = decide(question, text)
    assert reason == "no_attribute" and evidence.attribute_similarity is None
