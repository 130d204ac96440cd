"""The relation checks read the values the answer quotes (``abstention.QUOTED_RELATIONS``).

A part is supported when some stating sentence's value stands in the asked relation to the question; the
answer, though, quotes the best-scored sentence, which need not be that one. When every value of every
quoted sentence fails the relation checks (7000多名职工 for 多少名专职心理咨询师, 文工团 for 哪个剧场), the answer
would state another thing than asked, so the part is declined. Sentences from seeds/ (大庆市总工会's report).
"""
from __future__ import annotations

import pytest

from rag.answering import abstention, relations
from rag.answering.abstention import AbstentionPolicy, gather_evidence
from rag.answering.extractive import ExtractiveAnswerer
from test_answer_relations import _retriever

_COUNSELLING = ("daqing_counselling.txt", "打造大庆市职工心理疏导工作室，现已为7000多名职工提供免费心理咨询、心理疏导、"
                                          "心理讲座等心理健康服务。")
_MODELS = ("daqing_models.txt", "近年来，大庆市总工会共评选出全国劳模15人、省级劳模121人、市级劳模837人，推出“龙江工匠”25人、"
                                "“大庆工匠”97人、“全国五一劳动奖章”15人、“省五一劳动奖章”51人，创建市级劳模和工匠人才创新工作室"
                                "百余个，组织6500余名劳模职工省内外疗、休养。")


def _decide(question: str, *docs) -> tuple[str | None, str | None]:
    """The shipped policy's reason for a one-part question over ``docs``, and the answer's lead."""
    retriever = _retriever(*docs)
    hits = retriever.search(question, k=5)
    part = ExtractiveAnswerer(retriever.embedder).analyze(question, hits, retriever.source_text)[0]
    return AbstentionPolicy().reason(gather_evidence(part, hits, retriever.source_text)), part.lead


@pytest.fixture
def quoted_relations(monkeypatch):
    def switch(on: bool) -> None:
        monkeypatch.setattr(abstention, "QUOTED_RELATIONS", on)
    return switch


def test_a_quoted_count_of_another_thing_is_declined(quoted_relations, monkeypatch):
    # The answer would quote 7000多名职工 (those counselled, not counsellors); 劳模15人 of the other sentence passes
    # the relation checks but is not what the answer says.
    question = "大庆市职工心理疏导工作室有多少名专职心理咨询师？"
    quoted_relations(True)
    assert _decide(question, _COUNSELLING, _MODELS) == ("other_measure", "7000多名")
    # (relations.VALUES_OF_THE_ATTRIBUTE reads 组织6500余名劳模职工 alone of the other sentence, so declines it too;
    # off here to show this check alone)
    monkeypatch.setattr(relations, "VALUES_OF_THE_ATTRIBUTE", False)
    quoted_relations(False)
    assert _decide(question, _COUNSELLING, _MODELS) == (None, "7000多名")


def test_a_quoted_value_that_states_the_asked_thing_is_answered(quoted_relations):
    quoted_relations(True)
    reason, lead = _decide("大庆市总工会共评选出多少名全国劳模？", _COUNSELLING, _MODELS)
    assert reason is None and lead == "15人"
