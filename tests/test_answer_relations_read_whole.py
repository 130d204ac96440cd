"""The relation checks read what a sentence says of the asked thing, not what it says in passing (issue 14).

``relations.mismatch`` declines a sentence only when every value it reads fails the question, so a value that
is no candidate at all used to clear it: 发电装机规模达5841万千瓦 cleared 今夏……最大负荷4165万千瓦 for 去年夏天的最大负荷,
市长殷勇 cleared the 董事长 of other companies for 小马智行's, 广西 (a place of no known kind) cleared 广西南宁市 for 哪个场馆.
Each rule reads only the values that may answer, and says nothing when none may. Real sentences from crud-dev
(d0099, d0175, d0232, d0110); fake retriever and embedder, no model.
"""
from __future__ import annotations

import pytest

from rag.answering import relations
from test_answer_relations import _reason, _span

# --- values given for another measure (relations.VALUES_OF_THE_ATTRIBUTE) ----------------------------------------

_HUNAN = ("d0232.txt", "2023-08-15，正文：他说，近年来，湖南锚定习近平总书记擘画的“三高四新”美好蓝图，全力推进“三大支撑八项重点”"
                       "工作，着力强化以电力为重点的能源体系建设，全面提升能源供给能力，全省发电装机规模达5841万千瓦，"
                       "顺利应对今夏第一波最大负荷4165万千瓦用电高峰考验。")


def test_a_value_of_another_measure_does_not_clear_the_asked_ones_period(monkeypatch):
    # 4165万千瓦 is this summer's 最大负荷; 5841万千瓦 (装机规模) and 八项 are no 负荷 at all.
    assert _reason("湖南去年夏天用电最大负荷是多少？", _HUNAN) == ("other_period", "other_period")
    assert _reason("湖南用电最大负荷是多少？", _HUNAN) == (None, None)
    monkeypatch.setattr(relations, "VALUES_OF_THE_ATTRIBUTE", False)
    assert _reason("湖南去年夏天用电最大负荷是多少？", _HUNAN) == (None, None)


@pytest.mark.parametrize("question,sentence,values", [
    # the clause names the attribute, or names no other thing before its value (2021年仅剩2.2%)
    ("湖南去年夏天用电最大负荷是多少？", _HUNAN[1], ["4165万千瓦"]),
    ("到2021年这节目毛利率还剩多少？", "2019年该节目的毛利率为46.6%，2021年仅剩2.2%。", ["46.6%", "2.2%"]),
    # no value may answer: all are read
    ("湖南去年用电量是多少？", "全省发电装机规模达5841万千瓦。", ["5841万千瓦"]),
])
def test_the_values_read_are_those_that_may_be_the_asked_attributes(question, sentence, values):
    spans = [_span(sentence, v) for v in ("4165万千瓦", "5841万千瓦", "46.6%", "2.2%") if v in sentence]
    read = relations.values_of_attribute(question, sentence, spans)
    assert [sentence[a:b] for a, b in read] == values


def test_an_index_given_as_a_percentage_is_its_level_not_a_share():
    sentence = "7月份，原材料购进价格指数为52.4%，较上月上升7.4个百分点。"
    assert relations.span_mismatch("7月份原材料购进价格指数是多少？", "number", sentence, _span(sentence, "52.4%")) is None
    assert relations.span_mismatch("有多少名参与者？", "number", "参与者中95%为女性。", (5, 8)) == "other_measure"


# --- titles held together, and the asked body's other roles (relations.HELD_TOGETHER) ------------------------------

_BEIJING = ("d0099.txt", "撰文 | 范俊生日前，市委副书记、市长殷勇分别与小米集团创始人、董事长兼首席执行官雷军，阿里巴巴集团董事会主席"
                         "兼首席执行官、阿里云智能集团董事长兼首席执行官张勇，小马智行科技有限公司首席执行官彭军座谈。")


@pytest.mark.parametrize("question,name,other", [
    ("小马智行科技有限公司的董事长是谁？", "彭军", True),     # the asked company's 首席执行官, not its 董事长
    ("小马智行科技有限公司的董事长是谁？", "张勇", True),     # 阿里云智能集团董事长 (兼 another title)
    ("小马智行科技有限公司的董事长是谁？", "雷军", True),     # 董事长 of the 小米集团 the chain named before
    ("小米集团董事长是谁？", "雷军", False),
    ("阿里云智能集团董事长是谁？", "张勇", False),
    ("小马智行科技有限公司首席执行官是谁？", "彭军", False),
    ("小马智行科技有限公司的董事长是谁？", "殷勇", False),     # 市长: says nothing of a company's role
])
def test_every_title_held_together_is_read_with_its_body(question, name, other):
    sentence = _BEIJING[1]
    assert relations.other_holder(question, sentence, _span(sentence, name)) is other


def test_a_name_whose_titles_say_nothing_of_the_role_does_not_clear_the_others(monkeypatch):
    assert _reason("小马智行科技有限公司的董事长是谁？", _BEIJING) == ("other_role", "other_role")
    assert _reason("小米集团董事长是谁？", _BEIJING) == (None, None)
    monkeypatch.setattr(relations, "HELD_TOGETHER", False)
    assert _reason("小马智行科技有限公司的董事长是谁？", _BEIJING) == (None, None)


_SHIYAN = ("d0175.txt", "湖北省十堰市生态环境局土壤生态环境科科长贺娴在十堰市郧西县观音镇刘家湾村的一处污水净化池前介绍，"
                        "净化池通过植物根系固定污水里的活性污泥，利用植物根系和仿生填料创造出微生物适宜环境，加快微生物新陈代谢，实现污水净化。")


def test_the_head_of_a_unit_of_the_asked_body_is_not_its_head():
    sentence = _SHIYAN[1]
    assert relations.other_holder("十堰市生态环境局局长是谁？", sentence, _span(sentence, "贺娴")) is True
    assert relations.other_holder("十堰市生态环境局土壤生态环境科科长是谁？", sentence, _span(sentence, "贺娴")) is False


# --- names of no known kind (relations.KINDS_DECIDE) -------------------------------------------------------------

_HANDBALL = ("d0110.txt", "学青会执委会 供图 8月13日，第一届全国学生(青年)运动会手球女子组比赛在广西南宁市开赛，"
                          "共有9支球队从预选赛中晋级决赛阶段的比赛。")


def test_a_name_of_no_known_kind_does_not_clear_a_city_for_a_venue(monkeypatch):
    assert _reason("学青会手球女子组的比赛具体在南宁哪个场馆打？", _HANDBALL) == ("other_owner", "other_owner")
    assert _reason("学青会手球女子组的比赛在哪个城市举行？", _HANDBALL)[1] is None
    monkeypatch.setattr(relations, "KINDS_DECIDE", False)
    assert _reason("学青会手球女子组的比赛具体在南宁哪个场馆打？", _HANDBALL)[1] is None


def test_a_city_needs_no_ending_so_a_bare_name_still_answers_a_city_question(monkeypatch):
    sentence = "比赛在北京国家体育馆举行。"
    spans = [_span(sentence, "北京"), _span(sentence, "国家体育馆")]
    assert relations.mismatch("比赛在哪座城市举行？", "place", sentence, spans) is None
    monkeypatch.setattr(relations, "_SUFFIXED_KINDS", relations._SUFFIXED_KINDS + ("geo",))
    assert relations.mismatch("比赛在哪座城市举行？", "place", sentence, spans) == "other_owner"
