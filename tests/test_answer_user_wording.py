"""Answerable questions in users' words that were declined (issue 14, tenth pass: false abstentions).

Each test uses a question of a seen set and the sentence of its gold passage that states the answer (pairs 3 to 6,
eval/qa.jsonl): the passage was retrieved first, and the question was declined because of how the
user put it: a pointing 几 read as a question word (这几年), a time word or pronoun taken for the asked attribute
(去年, 这边), a name written with a space or a date with leading zeros, 一辆 for the text's 每辆, a region named
in full where the passage says 自治区, a word of the question taken for a sibling of another, the 计划 of a
document's title read as a plan asked. Every test switches its rule off and shows the old reading, so it fails
without the rule. Small fakes (tests/test_answer_fakes.py), no model.
"""
from __future__ import annotations

from rag.answering import abstention, lexical
from rag.answering.assistant import Assistant
from rag.answering.lexical import about_entities, asked_for, attribute_terms, standard_wording, unmentioned
from rag.types import Hit
from test_answer_fakes import FakeRetriever


def _chunks(*docs: tuple[str, str], heading: str = "") -> list[dict]:
    return [dict(chunk_id=f"{doc}#{i}", doc=doc, heading_path=[heading] if heading else [], text=text, start=0,
                 end=len(text)) for i, (doc, text) in enumerate(docs)]


def _ask(question: str, *docs: tuple[str, str], heading: str = "") -> str | None:
    """The answer's first line (its lead), or None when declined."""
    answer = Assistant(FakeRetriever(_chunks(*docs, heading=heading))).ask(question)
    return None if answer.abstained else answer.text.split("\n")[0]


def _hit(text: str, doc: str = "d.txt", heading: str = "") -> Hit:
    return Hit(chunk_id=doc + "#1", doc=doc, text=text, score=1.0, heading_path=[heading] if heading else [],
               start=0, end=len(text))


WARMTH = ("s0.txt", "“两节”送温暖活动累计筹集资金218.7亿元，慰问职工4250.6万人次；")


def test_a_pointing_few_is_no_question_word(monkeypatch):
    question = "两节送温暖这几年一共筹了多少钱？"
    assert standard_wording(question) == "两节送温暖这些年一共筹了多少钱？"
    assert "元" in asked_for(standard_wording(question)).units
    assert standard_wording("需要提前几天预约？") == "需要提前几天预约？"  # still how many days
    assert _ask(question, WARMTH).startswith("218.7亿元")
    monkeypatch.setattr(lexical, "POINTING_FEW", False)  # 几年: a duration asked, and no span in years
    assert "年" in asked_for(standard_wording(question)).units
    assert _ask(question, WARMTH) is None


def test_a_pointing_few_counts_what_the_question_counts(monkeypatch):
    question = "机器人、BIM技术员、无人机操作员这几个数字技能工种有多少名职工参加了省级选拔赛？"
    assert "工种" not in attribute_terms(standard_wording(question))
    monkeypatch.setattr(lexical, "POINTING_FEW", False)  # 这几个工种: 工种 taken for what 几 asks
    assert "工种" in attribute_terms(standard_wording(question))


DRIVERS = ("s4.txt", "建设各类“司机之家”1万家，“暖途”专项行动服务500万人次。")


def test_a_time_word_is_no_asked_attribute(monkeypatch):
    question = "货车司机那个暖途行动去年服务了多少人次？"
    assert attribute_terms(question) == []
    assert attribute_terms("以色列反司改游行，3月份那会儿上街的有多少人？") == ["上街"]
    assert _ask(question, DRIVERS).startswith("500万人次")
    monkeypatch.setattr(lexical, "TIME_WORDS_NAME_NO_ATTRIBUTE", False)  # 去年 asked next to the figure
    assert attribute_terms(question) == ["去年"]
    assert _ask(question, DRIVERS) is None


def test_a_pointing_pronoun_is_no_asked_attribute(monkeypatch):
    question = "台湾学生夏令营广东这边带队的是谁？"
    assert attribute_terms(question) == ["带队"]
    # 我国 is a pronoun that names a place: it stays a topic (7月末我国外汇储备 is not any country's reserve)
    assert lexical.topic_terms("7月末我国外汇储备规模是多少？") == ["月末", "我国"]
    monkeypatch.setattr(lexical, "TIME_WORDS_NAME_NO_ATTRIBUTE", False)
    assert attribute_terms(question) == ["这边", "带队"]


def test_a_quoted_name_with_a_space_is_found():
    passage = _hit("小年夜（1月22日）播出“温暖有你 共赴美好”2025年新就业形态劳动者新春联谊会。")
    assert unmentioned(["温暖有你 共赴美好"], [passage]) == []


def test_a_date_with_leading_zeros_names_the_day(monkeypatch):
    passage = _hit("湖南省气象台08月05日16时发布【高温橙色预警】：张家界、常德、益阳局部地区将达39℃以上。")
    assert unmentioned(["8月5日"], [passage]) == []
    monkeypatch.setattr(lexical, "UNPADDED_DATES", False)
    assert unmentioned(["8月5日"], [passage]) == ["8月5日"]


BUS = ("d0429.txt", "毛瑞平表示，这种无人驾驶智能微公交车已经在河北雄安新区、重庆市等重点城市得到推广应用，"
                    "每辆车价值120万元以上，可以同时容纳19人坐、立。")


def test_one_of_a_measure_is_each(monkeypatch):
    question = "东风这种无人驾驶小巴一辆多少钱？"
    assert "每辆" in lexical.attribute_keys("一辆")
    assert _ask(question, BUS).startswith("120万元")
    monkeypatch.setattr(lexical, "PER_ONE", False)  # neither 小巴 nor 一辆 next to 120万元
    assert _ask(question, BUS) is None


VILLAGE = [_hit("近年来，新疆维吾尔自治区总工会驻村工作队扎根阿图什市4个村子，让当地村民长技能、鼓口袋。", "s4.txt", "驻村"),
           _hit("在自治区总工会驻村工作队10年的耕耘中，阿热买里村的村容村貌焕然一新。", "s4.txt", "驻村")]


def test_a_region_is_named_by_its_level_in_its_document(monkeypatch):
    assert about_entities(["新疆维吾尔自治区", "阿热买里村"], list(reversed(VILLAGE)), 0)
    assert about_entities(["新疆", "阿热买里村"], list(reversed(VILLAGE)), 0)
    # not when no passage of the document names the region
    assert not about_entities(["西藏", "阿热买里村"], list(reversed(VILLAGE)), 0)
    monkeypatch.setattr(lexical, "REGIONS_BY_LEVEL", False)
    assert not about_entities(["新疆维吾尔自治区", "阿热买里村"], list(reversed(VILLAGE)), 0)


def test_measure_words_and_a_price_war():
    assert asked_for("中美之间原先有多少对对话交流机制？").unit == "对"
    assert "元" not in asked_for("饿了么的调研里有多少企业不想打价格战？").units
    assert "元" in asked_for("武汉到武当山的旅游计次票价格是多少？").units


def test_a_pointer_and_a_time_word_are_no_topic():
    assert lexical.topic_terms("西昌那起旅店命案的在逃嫌犯最后在哪座城市落网？")[:2] == ["西昌", "旅店"]
    assert lexical.topic_terms("这轮大雨下完，密云水库多蓄了多少水？") == ["大雨"]
    assert "原先" not in lexical.topic_terms("中美之间原先从哪年起被美方冻结的？")


def test_a_word_the_question_names_is_no_sibling(monkeypatch):
    question = "WCBA全明星周末三分球及技巧挑战赛的正赛和单项决赛将于哪天举行？"
    sentence = "据介绍，三分球及技巧挑战赛预赛、星锐赛将于16日举行，正赛和单项决赛将于17日举行。"
    spans = [(sentence.index("17日"), sentence.index("17日") + 3)]
    assert not abstention.values_of_another(sentence, spans, abstention.sibling_words(question))
    monkeypatch.setattr(abstention, "OWN_WORDS_NO_SIBLINGS", False)  # 决赛 taken for a sibling of 挑战赛
    assert abstention.values_of_another(sentence, spans, abstention.sibling_words(question))


def test_a_plan_word_in_a_title_asks_for_no_plan(monkeypatch):
    from rag.answering import relations

    question = "根据《县域商业三年行动计划（2023-2025年）》，到2025年全国将打造多少个县域商业“领跑县”？"
    sentence = "到2025年，在全国打造500个左右的县域商业“领跑县”，建设改造一批县级物流配送中心。"
    span = (sentence.index("500个"), sentence.index("500个") + 4)
    assert not relations.reported_for_future(question, "number", sentence, span)
    monkeypatch.setattr(relations, "TITLES_ARE_NAMES", False)  # 计划 of the title read as a plan asked
    assert relations.reported_for_future(question, "number", sentence, span)
