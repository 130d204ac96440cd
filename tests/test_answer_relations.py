"""The relation between a stating sentence's value and the question (issue 14, eighth pass).

A sentence can name the question's subject and attribute next to a value of the asked kind and
still not answer it: another period's figure, the holder of a neighbouring role, a total for a part,
a sibling measure. Each rule is shown on small real sentences (from the seen sets' failures), once
declined with the rule on and answered with it off, and next to a wording that the rule must leave
answered. Fake retriever and embedder, no model.
"""
from __future__ import annotations

import pytest

from rag.answering import lexical, relations
from rag.answering.abstention import AbstentionPolicy, gather_evidence
from rag.answering.assistant import Assistant
from rag.answering.extractive import ExtractiveAnswerer
from rag.answering.lexical import asked_for, attribute_near, term_positions, typed_spans
from test_answer_fakes import FakeRetriever


def _retriever(*docs: tuple[str, str] | tuple[str, str, list[str]]) -> FakeRetriever:
    chunks = []
    for doc, text, *heading in docs:
        chunks.append(dict(chunk_id=f"{doc}#1", doc=doc, heading_path=heading[0] if heading else [], text=text,
                           start=0, end=len(text)))
    return FakeRetriever(chunks)


def _reason(question: str, *docs) -> tuple[str | None, str | None]:
    """The cascade's reason and the evidence's relation for a one-part question over ``docs``."""
    retriever = _retriever(*docs)
    hits = retriever.search(question, k=5)
    part = ExtractiveAnswerer(retriever.embedder).analyze(question, hits, retriever.source_text)[0]
    evidence = gather_evidence(part, hits, retriever.source_text)
    return AbstentionPolicy(decision="cascade").reason(evidence), evidence.relation


def _ask(question: str, *docs):
    return Assistant(_retriever(*docs)).ask(question)


def _span(sentence: str, value: str) -> tuple[int, int]:
    start = sentence.index(value)
    return start, start + len(value)


# --- the holder of a neighbouring role -----------------------------------------------------------------

_DEPUTIES = ("10月7日，同为全国总工会十八代表的四川德阳市网约车行业工会联合会副主席张锐、福建经纬集团工会主席柳海榕"
             "先后抵京，他们的行李里放着两个笔记本。")


@pytest.mark.parametrize("question,sentence,name,other", [
    ("四川德阳市网约车行业工会联合会主席是谁？", _DEPUTIES, "张锐", True),       # 副主席 is no 主席
    ("四川德阳市网约车行业工会联合会主席是谁？", _DEPUTIES, "柳海榕", True),     # another body's 主席
    ("福建经纬集团工会副主席是谁？", _DEPUTIES, "柳海榕", True),                # 主席 is no 副主席
    ("福建经纬集团工会主席是谁？", _DEPUTIES, "柳海榕", False),
    ("四川德阳市网约车行业工会联合会副主席是谁？", _DEPUTIES, "张锐", False),
    ("北京市应急管理局局长是谁？", "北京市水务局局长潘安君介绍了灾情。", "潘安君", True),
    ("北京市水务局局长是谁？", "北京市水务局局长潘安君介绍了灾情。", "潘安君", False),
    ("托万买里村的驻村第一书记叫什么？", "自治区总工会驻村工作队总领队、阿热买里村第一书记赵多新说。", "赵多新", True),
    ("全总主席是谁？", "中华全国总工会主席王东明出席会议。", "王东明", False),          # the question's short form
    ("武汉梨园街搞义诊那次，街道人武部长叫什么？", "洪山区梨园街道人武部长尹敦维说。", "尹敦维", False),  # a wider body
    ("谁是阿根廷代表团的队长？", "阿根廷代表团队长阿古斯丁·马雷罗表示。", "阿古斯丁·马雷罗", False),
    ("北京市应急管理局局长是谁？", "会议由潘安君主持。", "潘安君", False),              # no title: nothing to read
])
def test_a_name_titled_with_another_role_or_body_does_not_hold_the_asked_role(question, sentence, name, other):
    assert relations.other_holder(question, sentence, _span(sentence, name)) is other


def test_the_holder_of_a_neighbouring_role_is_declined():
    doc = ("d1.txt", _DEPUTIES)
    assert _reason("福建经纬集团工会副主席是谁？", doc) == ("other_role", "other_role")
    answer = _ask("福建经纬集团工会主席是谁？", doc)
    assert not answer.abstained and answer.text.startswith("柳海榕")


def test_without_the_relation_checks_the_neighbouring_holder_is_answered(monkeypatch):
    monkeypatch.setattr(relations, "RELATIONS", False)
    assert not _ask("福建经纬集团工会副主席是谁？", ("d1.txt", _DEPUTIES)).abstained


# --- another period --------------------------------------------------------------------------------------

_HELICOPTERS = ("d1.txt", "2023-08-10 15:22，正文：据俄国家技术集团首席执行官说，俄罗斯去年一共生产296架军用直升机，"
                          "产量相比2021年翻倍，2023年的产量还将继续增加。")


def test_last_years_figure_does_not_answer_this_years_question():
    # 去年 in a 2023 article is 2022; the sentence names 2023 as well, but not for this value.
    assert _reason("俄罗斯今年上半年生产了多少架军用直升机？", _HELICOPTERS)[1] == "other_period"
    assert _reason("俄罗斯去年生产了多少架军用直升机？", _HELICOPTERS)[1] is None
    assert _reason("俄罗斯2022年生产了多少架军用直升机？", _HELICOPTERS)[1] is None


def test_without_the_relation_checks_another_years_figure_is_answered(monkeypatch):
    assert _ask("俄罗斯今年上半年生产了多少架军用直升机？", _HELICOPTERS).abstained
    monkeypatch.setattr(relations, "RELATIONS", False)
    assert not _ask("俄罗斯今年上半年生产了多少架军用直升机？", _HELICOPTERS).abstained


@pytest.mark.parametrize("sentence,value,years", [
    # the value of the base is the base's; the change is the period's
    ("2025年1月1日起，中国实习生月最低底薪在2024年239美元的基础上增长54美元。", "239美元", {2024}),
    ("2025年1月1日起，中国实习生月最低底薪在2024年239美元的基础上增长54美元。", "54美元", {2025}),
    ("今年上半年，个人住房贷款累计发放3.5万亿元，较去年同期多发放超过5100亿元。", "3.5万亿元", set()),
    ("《军事观察》称，相比2022年的296架，俄罗斯在2021年的军用直升机总产量仅为134架。", "296架", {2022}),
])
def test_the_period_of_a_value_is_its_clauses_not_a_comparison_base(sentence, value, years):
    stated = relations.value_period(sentence, _span(sentence, value))
    assert set(stated.years) == years
    if value == "3.5万亿元":
        assert stated.relative == {0}  # 今年, not the 去年 of 较去年同期


def test_a_sentence_without_a_time_has_the_period_of_its_title():
    heading = ["2024年全国工会为职工解难题办实事成效显著"]
    doc = ("d1.txt", "农民工求学圆梦行动帮助30万农民工提升学历，“金秋助学”活动服务职工8.7万人。"
                     "各项工作均好于2022年。", heading)  # the question's year is named, not for this figure
    assert _reason("2022年全年“金秋助学”活动服务了多少名职工？", doc)[1] == "other_period"
    assert _reason("2024年“金秋助学”活动服务了多少名职工？", doc)[1] is None


def test_a_done_figure_or_past_date_does_not_answer_a_question_about_plans():
    done = ("d1.txt", "加强工会驿站阵地建设，建成驿站18.61万个，年服务群众近8亿人次。")
    planned = ("d2.txt", "全总计划明年再建工会驿站1000个。")
    assert _reason("全总明年打算再建多少个工会驿站？", done)[1] == "other_period"
    assert _reason("全总明年打算再建多少个工会驿站？", planned)[1] is None
    opened = "中国空间站空间科学与应用项目申报系统已于北京时间7月20日正式开通。"
    assert relations.reported_for_future("评审结果将于哪天公布？", "date", opened, _span(opened, "7月20日"))
    assert not relations.reported_for_future("申报系统是哪天开通的？", "date", opened, _span(opened, "7月20日"))
    sentence = "9月25日，第二届大会将在北京开幕。"
    assert not relations.reported_for_future("大会将于哪天开幕？", "date", sentence, _span(sentence, "9月25日"))


# --- a part, a total ---------------------------------------------------------------------------------------

def test_those_who_took_part_are_not_those_who_achieved():
    trained = ("d1.txt", "在驻村点举办了为期15天的保安技能培训班，来自阿湖乡三个村的50位村民免费参加了培训。")
    assert _reason("阿湖乡那个保安培训班结业后有几个人拿到了保安证？", trained)[1] == "other_part"
    assert _reason("阿湖乡那个保安技能培训班有几个人参加了培训？", trained)[1] is None
    sentence = "共有200人参加比赛，其中50人获奖。"
    assert not relations.takers_for_achievers("多少人获奖？", sentence, _span(sentence, "50人"))
    assert relations.takers_for_achievers("多少人获奖？", sentence, _span(sentence, "200人"))


def test_a_figure_per_unit_does_not_answer_a_total():
    sentence = "到2023年底，确保每个街镇至少建设或试点1个社区就业服务站点。"
    assert relations.per_unit_for_total("上海全市一共建多少个社区就业服务站点？", sentence, _span(sentence, "1个"))
    assert not relations.per_unit_for_total("上海每个街镇至少建多少个社区就业服务站点？", sentence, _span(sentence, "1个"))


def test_a_figure_for_other_grades_does_not_answer_a_grade():
    sentence = "目前，锦江区已建成工会驿站175个，其中三星级以上服务站点79个、省级最美驿站18个。"
    assert relations.other_grade("锦江区的工会驿站里五星级的有几个？", sentence)
    assert not relations.other_grade("锦江区的工会驿站里三星级以上的有几个？", sentence)
    assert not relations.other_grade("锦江区一共建成多少个工会驿站？", sentence)


# --- a sibling measure ----------------------------------------------------------------------------------

@pytest.mark.parametrize("question,sentence,value,other", [
    ("丽江股份2023年上半年净利润是多少？", "净利润较上年同期增加2402.16万元。", "2402.16万元", True),   # a change
    ("丽江股份净利润比上年同期增加了多少？", "净利润较上年同期增加2402.16万元。", "2402.16万元", False),
    ("公司净利润是多少？", "净利润同比增长20%至5亿元。", "5亿元", False),                           # the new level
    ("说正念锻炼没用的那篇论文，一共调查了多少参与者？", "在近95%基于锻炼的实验中，研究缺乏统计功效。", "95%", True),
    ("梨园街那次义诊总共给多少居民看了？", "梨园街道共有军转干部家庭1675户。", "1675户", True),   # households
    ("梨园街那次义诊总共给多少户家庭看了？", "梨园街道共有军转干部家庭1675户。", "1675户", False),
    ("途虎养车捐款了多少人民币？", "途虎养车宣布向保定市慈善协会捐款300万元人民币。", "300万元", False),
    ("户籍人口城镇化率是多少？", "户籍人口城镇化率达47.7%。", "47.7%", False),
])
def test_a_sibling_measure_of_the_asked_one(question, sentence, value, other):
    assert relations.sibling_measure(question, asked_for(question).kind, sentence, _span(sentence, value)) is other


def test_a_count_does_not_answer_a_rank(monkeypatch):
    count = ("d1.txt", "2022年，中国有效专利数量继续增长。科技百强企业363项科技成果国际领先，发明专利数量累计超过19万件。")
    ranked = ("d2.txt", "广州在全球城市指数中上升4名，位于全球第56位。")
    # A 第几 question asks for an ordinal (lexical.ORDINALS_ASKED): a count is no answer span at all ...
    assert _reason("2022年中国有效专利数量全球排第几？", count)[0] == "no_span"
    # ... and where counts were spans, the relation check declined it as another measure.
    monkeypatch.setattr(lexical, "ORDINALS_ASKED", False)
    assert _reason("2022年中国有效专利数量全球排第几？", count)[1] == "other_measure"
    assert relations.states_rank("广州在2022年的全球城市指数中排名第几？", ranked[1])
    assert not relations.states_rank("2022年中国有效专利数量全球排第几？", "轻工业200多种产品产量世界第一。")


def test_a_figure_in_a_title_is_no_value():
    sentence = "两部门联合印发《上海市“15分钟就业服务圈”社区就业服务站点建设指引》。"
    assert relations.span_mismatch("上海计划建多少个社区就业服务站点？", "number", sentence,
                                   _span(sentence, "15分")) == "other_measure"


# --- the words of the question (lexical) -------------------------------------------------------------------

def test_a_modifier_term_alone_does_not_name_the_measure(monkeypatch):
    sentence = "该机最大起飞重量141吨，载重量32至36吨。"
    spans = [_span(sentence, "141吨")]
    assert not attribute_near(sentence, spans, ["最大", "航程"])
    assert attribute_near(sentence, spans, ["最大", "起飞重量"])
    monkeypatch.setattr(lexical, "MODIFIERS_ALONE_NAME_NOTHING", False)
    assert attribute_near(sentence, spans, ["最大", "航程"])


def test_a_numbered_kind_is_not_named_by_another_number(monkeypatch):
    text = "已建成工会驿站175个，其中三星级以上服务站点79个。"
    assert term_positions(text, "五星级") == []
    assert text.index("三星级") in term_positions(text, "三星级")
    monkeypatch.setattr(lexical, "NUMBERED_KINDS", False)
    assert term_positions(text, "五星级") != []


def test_colloquial_question_words_ask_for_a_date_or_a_name():
    assert asked_for("芭比在日本啥时候上映？").kind == "date"
    assert asked_for("德州那家给老人送面的面馆叫啥？").kind == "person"


def test_a_figure_in_wan_or_yi_before_its_noun_is_a_count(monkeypatch):
    sentence = "截至2022年，1.4亿农业转移人口落户城镇，户籍人口城镇化率达47.7%。"
    asked = asked_for("有多少农业转移人口落户城镇？")
    assert "1.4亿" in [sentence[s:e] for s, e in typed_spans(sentence, asked)]
    monkeypatch.setattr(lexical, "BARE_MAGNITUDES", False)
    assert "1.4亿" not in [sentence[s:e] for s, e in typed_spans(sentence, asked)]


# --- what a count counts, whose age, which season ----------------------------------------------------------

@pytest.mark.parametrize("question,sentence,value,other", [
    ("大庆市职工心理疏导工作室有多少名专职心理咨询师？", "工作室现已为7000多名职工提供免费心理咨询。", "7000多名", True),
    ("大庆市职工心理疏导工作室有多少名专职心理咨询师？", "工作室配备8名专职心理咨询师。", "8名", False),
    ("有多少名职工参加了省级选拔赛？", "共有7000名一线职工参加省级选拔赛。", "7000名", False),
    ("全国总工会本级12351热线呼叫中心设有多少个坐席？", "热线中心配备有两个客服座席和3名律师。", "两个", False),
    ("一共有多少人参加？", "共有3万人参加。", "3万人", False),  # a count that names nothing
])
def test_a_count_of_another_thing_does_not_answer(question, sentence, value, other):
    assert relations.counts_another_thing(question, sentence, _span(sentence, value)) is other


def test_an_age_is_the_age_of_the_noun_it_qualifies():
    sentence = "在这危急时刻，一位20多岁的小伙子毫不犹豫跳入了江中，先把小女孩救上岸。"
    span = _span(sentence, "20多岁")
    assert relations.age_of_another("被救上岸的小女孩今年几岁？", sentence, span)
    assert not relations.age_of_another("跳江救人的小伙子多少岁？", sentence, span)


def test_another_seasons_figure_does_not_answer():
    doc = ("d1.txt", "班夫国家公园是国际游客的热门目的地，每年夏天有超过400万人涌入这里。")
    assert _reason("班夫国家公园每年冬天大概有多少游客？", doc)[1] == "other_period"
    assert _reason("班夫国家公园每年夏天大概有多少游客？", doc)[1] is None


def test_only_names_titled_right_before_them_decide_a_role_question():
    # 严峻考验 is read as a name: untitled, it says nothing, and the titled name decides.
    sentence = "北京市水务局局长潘安君介绍，这对北京市防洪工程体系是一次严峻考验。"
    spans = [_span(sentence, "潘安君"), _span(sentence, "严峻考验")]
    assert relations.mismatch("北京市应急管理局局长是谁？", "person", sentence, spans) == "other_role"
    assert relations.mismatch("北京市水务局局长是谁？", "person", sentence, spans) is None


@pytest.mark.parametrize("question,sentence,value", [
    ("现在有多少款电视通过了帧绮映画MAX认证？", "已有TCL、海信等多家电视品牌共超60款机型通过帧绮映画MAX认证。", "60款"),
    ("联想问天WA7780 G3里头装了几块GPU？", "联想问天WA7780 G3加载了8颗NVIDIA HGX H800 NVLink GPU。", "8颗"),
])
def test_the_asked_noun_elsewhere_in_the_piece_says_what_is_counted(question, sentence, value):
    assert not relations.counts_another_thing(question, sentence, _span(sentence, value))


@pytest.mark.parametrize("question,sentence,value,other", [
    ("丽江股份上半年扣除非经常性损益后的净利润是多少？", "丽江股份上半年实现净利润98.82万元。", "98.82万元", True),
    ("丽江股份上半年扣非净利润是多少？", "扣除非经常性损益后的净利润为80万元。", "80万元", False),
    ("今年1到7月累计，PPI平均同比降了多少？", "上述6个行业合计影响PPI同比下降约3.21个百分点。", "3.21个百分点", True),
    ("2021年的广州，平均一万个人里有多少在读大学生？", "每万人在校大学生数增长至2021年的1396人。", "1396人", False),
])
def test_a_qualified_measure_is_not_stated_by_the_plain_one(question, sentence, value, other):
    assert relations.unqualified(question, sentence, _span(sentence, value)) is other


def test_the_date_of_the_paired_event_does_not_answer():
    sentence = "7月28日晚，湖北省第十六届中学生运动会开幕式在鄂州国际会展中心举行。"
    span = _span(sentence, "7月28日")
    assert relations.other_event("湖北省第十六届中学生运动会的闭幕式定在哪天？", sentence, span)
    assert not relations.other_event("湖北省第十六届中学生运动会的开幕式是哪天？", sentence, span)


def test_a_time_unit_with_mei_is_no_qualifier_of_the_measure():
    sentence = "2025年1月1日起，中国实习生月最低底薪在2024年239美元的基础上增长54美元。"
    assert not relations.unqualified("2024年中国实习生每个月的最低底薪是多少？", sentence, _span(sentence, "239美元"))
