"""A sentence answers a question only when it states the fact about what the question asks.

Rules that hold for Chinese questions in general, each tested on its own: the
asked year or period (a figure for 2023年7月 does not answer 2023年6月), the dated
event of a date question (a dateline does not date a congress), the question's
names near the stating sentence, answer spans that name something (同一城市 and
第二届 do not), and the question's topic. Small fakes, no model.
"""
from __future__ import annotations

import pytest

from rag.answering import lexical
from rag.answering.assistant import Assistant
from rag.answering.lexical import (about_entities, asked_for, attribute_near, documents_naming, question_entities, event_terms, key_topic, mentions_term, names_in_context,
                                   new_spans, states_event,
                                   subject_names, time_conflict, time_scope, topic_terms, typed_spans)
from test_answer_fakes import FakeRetriever


def _chunks(*docs: tuple[str, str]) -> list[dict]:
    return [dict(chunk_id=f"{doc}#1", doc=doc, heading_path=[], text=text, start=0, end=len(text))
            for doc, text in docs]


def _assistant(*docs: tuple[str, str]) -> Assistant:
    return Assistant(FakeRetriever(_chunks(*docs)))


# --- the asked year or period -----------------------------------------------------------

@pytest.mark.parametrize("question,sentence,conflict", [
    ("2023年6月银行结汇多少亿美元？", "2023年7月，银行结汇1677亿美元，售汇1825亿美元。", True),
    ("2023年7月银行结汇多少亿美元？", "2023年7月，银行结汇1677亿美元，售汇1825亿美元。", False),
    ("中国机械工业2023年7月份的增加值同比增长了多少？", "上半年，中国机械工业增加值同比增长9.7%。", True),
    ("2023年上半年贸易顺差是多少？", "2023年1-6月，贸易顺差2491亿美元。", False),    # 1-6月 is 上半年
    ("国家能源集团2023年在湘投资了多少？", "2020年至今在湘投资达123.89亿元。", False),  # an open range covers it
    ("国家能源集团2019年在湘投资了多少？", "2020年至今在湘投资达123.89亿元。", True),
    ("7月份CPI同比涨了多少？", "国家统计局8月9日发布数据，CPI同比下降0.3%。", False),  # a day is no period
    ("今年的营业收入是多少？", "2022年营业收入为3亿元。", False),                    # the question names no time
])
def test_a_sentence_about_another_year_or_period_does_not_answer(question, sentence, conflict):
    assert time_conflict(question, sentence) is conflict


def test_time_scope_reads_years_ranges_and_periods():
    scope = time_scope("2018—2020年，1-7月累计，二季度，7月份")
    assert scope.years == {2018, 2019, 2020}
    assert scope.periods == {(1, 7), (4, 6), (7, 7)}


def test_a_figure_for_another_month_abstains_and_the_asked_month_is_answered():
    assistant = _assistant(("d1.txt", "中国国家外汇管理局15日公布数据显示，按美元计值，2023年7月，银行结汇1677亿美元，"
                                      "售汇1825亿美元。"))
    assert assistant.ask("2023年6月银行结汇多少亿美元？").abstained
    answer = assistant.ask("2023年7月银行结汇多少亿美元？")
    assert not answer.abstained and answer.text.startswith("1677亿美元")


# --- the dated event ---------------------------------------------------------------------

def test_a_date_question_names_the_event_it_dates():
    assert "举行" in event_terms("中挪海员集体协商中期评估会是哪一天举行的？")
    assert "上任" in event_terms("国家外汇管理局副局长王春英是哪一年上任的？")
    assert event_terms("中挪海员集体协商中期评估会有多少人参加？") == []   # not a date question
    assert states_event("双方于3月5日在泉州召开评估会", ["举行"])            # the same event, another verb
    assert not states_event("2025年1月1日起，中国实习生月最低底薪增长54美元", ["举行", "评估会"])


def test_a_date_for_another_event_abstains_and_the_event_s_date_is_answered():
    other = ("d2.txt", "经过平等协商，双方对中国实习生月最低底薪增长达成一致意见：2025年1月1日起，"
                       "中国实习生月最低底薪增长54美元。双方在福建省泉州市举行中挪海员集体协商中期评估会。")
    assert _assistant(other).ask("中挪海员集体协商中期评估会是哪一天举行的？").abstained
    dated = ("d3.txt", "3月5日，双方在福建省泉州市举行中挪海员集体协商中期评估会，围绕协议部分内容进行磋商。")
    answer = _assistant(dated).ask("中挪海员集体协商中期评估会是哪一天举行的？")
    assert not answer.abstained and answer.text.startswith("3月5日")


# --- the question's names near the stating sentence ---------------------------------------

def test_the_names_must_stand_in_the_sentence_or_just_before_it():
    text = "国家能源集团董事长一行来湘调研。座谈中介绍，2020年至今在湘投资达123.89亿元。"
    start = text.index("2020")
    assert names_in_context(["国家能源集团"], text, start, len(text))
    far = "韦尔股份发布公告。公司业务稳定。市场反应平淡。7月19日，伊利集团原董事长郑俊怀被判刑。"
    start = far.index("7月19日")
    assert not names_in_context(["韦尔股份"], far, start, len(far))
    assert names_in_context(["韦尔股份"], far, start, len(far), header="韦尔股份公告")  # the heading names it


def test_the_question_s_people_and_codes_are_its_subject_places_and_bodies_are_not():
    assert subject_names("K210次列车上的招聘会一共提供了多少个岗位？") == ["K210"]
    assert subject_names("柳海榕在福建经纬集团工作了多少年？") == ["柳海榕"]
    assert subject_names("首届全国“红旗杯”班组长大赛一共有多少名选手参赛？") == ["红旗杯"]
    assert subject_names("阿古斯丁·马雷罗今年多大年纪？") == ["阿古斯丁·马雷"]   # where the name ends is unclear
    # 全省, 该公司, 各级工会 refer back to places and bodies without their names.
    assert subject_names("这五年全国工会一共拿出多少钱来帮生活困难的职工？") == []
    assert subject_names("华为鸿蒙4重新绘制了多少个表情符号？") == []             # 鸿蒙 is no person


def test_a_figure_stated_far_from_the_question_s_subject_abstains():
    far = ("d4.txt", "2月26日，第4届列车企业招聘会在K210次列车上开启。求职者纷纷前来咨询。现场气氛十分热烈。"
                     "据了解，全国工会就业服务平台为求职者提供岗位超150万个。")
    assert _assistant(far).ask("K210次列车上的招聘会一共提供了多少个岗位？").abstained
    near = ("d5.txt", "2月26日，第4届列车企业招聘会在K210次列车上开启。招聘会一共提供岗位300个。")
    answer = _assistant(near).ask("K210次列车上的招聘会一共提供了多少个岗位？")
    assert not answer.abstained and answer.text.startswith("300个")


# --- answer spans that name something -----------------------------------------------------

def test_spans_that_only_point_at_a_place_or_body_are_no_answer():
    city = asked_for("第八届全国职工职业技能大赛的决赛在哪个城市举行？")
    assert city.geo
    sentence = "这也是全国职工职业技能大赛首次将6个工种的决赛放在同一城市举行。"
    assert not typed_spans(sentence, city)
    assert not typed_spans("全总和各级工会要把数字化思维贯穿工会工作", city)     # a body is not a city
    assert typed_spans("决赛在江苏省南京市举行", city)


def test_an_ordinal_is_not_a_count():
    asked = asked_for("全国工会融媒平台有多少注册用户？")
    assert not new_spans("第二届工匠大会、新就业形态劳动者工会工作三年行动计划", asked, "全国工会融媒平台有多少注册用户？")
    assert new_spans("平台注册用户达二百万人", asked, "全国工会融媒平台有多少注册用户？")


def test_a_role_is_held_by_a_person_not_a_body():
    asked = asked_for("韦尔股份的董事长是谁？")
    assert asked.kind == "person" and asked.role
    sentence = "伊利集团原董事长郑俊怀因挪用公款被判刑"
    assert {sentence[s:e] for s, e in typed_spans(sentence, asked)} == {"郑俊怀"}
    assert not typed_spans("市委、市政府高度重视", asked_for("黄安村的村党支部书记叫什么名字？"))


def test_a_modified_or_generic_half_of_an_attribute_is_not_the_attribute():
    assert not mentions_term("来自各地的近2000名代表出席盛会", "女代表")     # 女代表 is not any 代表
    assert mentions_term("总容量达440万千瓦", "装机容量")                     # 容量 stands for 装机容量
    assert not mentions_term("该集团两家参建单位获奖", "试点单位")            # 单位 says nothing


def test_a_deputy_or_former_holder_is_not_the_asked_role():
    assert not mentions_term("广西西江开发投资集团有限公司副总经理覃仕华介绍", "总经理")
    assert not mentions_term("该店经理王某介绍", "总经理")                    # a role's half is no role
    assert not mentions_term("伊利集团原董事长郑俊怀被判刑", "董事长")
    assert mentions_term("广西西江开发投资集团有限公司总经理覃仕华介绍", "总经理")
    deputy = ("d1.txt", "广西西江开发投资集团有限公司副总经理覃仕华介绍，长洲船闸通过能力日趋饱和。")
    assert _assistant(deputy).ask("广西西江开发投资集团有限公司的总经理是谁？").abstained
    answer = _assistant(deputy).ask("广西西江开发投资集团有限公司的副总经理是谁？")
    assert not answer.abstained and answer.text.startswith("覃仕华")


def test_news_words_for_the_same_attribute_count():
    assert mentions_term("公司主营收入4915.32万元，同比上升24.75%", "增长")   # 上升 ~ 增长
    assert mentions_term("增值服务业务在第二季度实现营收742.11亿元", "收入")  # 营收 ~ 收入
    stated = ("d1.txt", "恒誉环保2023一季报显示，公司主营收入4915.32万元，同比上升24.75%。")
    answer = _assistant(stated).ask("恒誉环保的主营收入增长了多少？")
    assert not answer.abstained and answer.text.startswith("24.75%")


def test_a_name_inside_a_quoted_name_or_a_two_character_non_name_is_no_answer():
    city = asked_for("第八届全国职工职业技能大赛的决赛在哪个城市举行？")
    assert not typed_spans("组织开展了第八届全国职工职业技能大赛、首届全国“红旗杯”班组长大赛", city)
    head = asked_for("湖北省文化和旅游厅厅长是谁？")
    assert not typed_spans("我省还将举办第四届荆楚乡村文化旅游节等众多重大节会活动", head)
    assert typed_spans("湖北省文化和旅游厅厅长李晓红在会上讲话", head)


def test_the_topic_is_what_the_question_is_about_besides_what_it_asks():
    assert topic_terms("量子计算机的工作原理是什么？") == ["量子", "计算机"]
    assert topic_terms("火星上有没有水？") == ["火星"]
    assert "一些" not in topic_terms("一些国家开始探索什么的新路径？")   # a determiner is no topic
    assert "坐席" not in topic_terms("全国总工会本级12351热线呼叫中心设有多少个坐席？")  # what is asked


# --- the document the stating sentence comes from ------------------------------------------

class _DocumentRetriever(FakeRetriever):
    """A FakeRetriever whose documents are longer than their retrieved passages."""

    def __init__(self, chunks, documents):
        super().__init__(chunks)
        self.documents = documents

    def source_text(self, doc):
        return self.documents[doc]


def test_the_key_topic_is_the_question_s_most_specific_word_that_a_passage_names():
    hits = FakeRetriever(_chunks(("d1.txt", "今日，韦尔股份股价下跌。"),
                                 ("d2.txt", "伊利集团原董事长郑俊怀被判刑。"))).search("韦尔股份的董事长是谁？")
    assert key_topic("韦尔股份的董事长是谁？", hits) == "韦尔"          # not 股份, an everyday word
    assert key_topic("火星上有没有水？", hits) is None                   # no passage names 火星
    assert documents_naming("韦尔", hits) == [h.doc == "d1.txt" for h in hits]


def test_a_figure_from_a_document_about_something_else_abstains():
    chunks = _chunks(("d1.txt", "今日，韦尔股份股价下跌，成交额达12.3亿元。"),
                     ("d2.txt", "整体来看，2023年上半年，三大运营商合计实现归母净利润近1018亿元，同比增长约9%。"))
    assistant = _assistant(*[(c["doc"], c["text"]) for c in chunks])
    assert assistant.ask("韦尔股份2023年上半年的净利润是多少？").abstained
    assert not assistant.ask("三大运营商2023年上半年的归母净利润是多少？").abstained
    stated = ("d3.txt", "韦尔股份发布2023年半年报，上半年实现净利润3.2亿元。")
    answer = _assistant(("d2.txt", chunks[1]["text"]), stated).ask("韦尔股份2023年上半年的净利润是多少？")
    assert not answer.abstained and answer.text.startswith("3.2亿元")


def test_the_whole_document_and_abbreviations_count_for_the_key_topic():
    # The stating passage of a long document need not repeat the name; its document does.
    question = "服务保障亚运会的劳动竞赛围绕多少个比赛场馆展开？"
    passage = "聚焦57个比赛场馆、31个训练场馆建设，开展大比武、大练兵活动。"
    chunks = _chunks(("d1.txt", passage), ("d2.txt", "亚运会劳动和技能竞赛进入冲刺阶段，场馆建设全部完工。"))
    documents = {"d1.txt": "服务保障杭州亚运会劳动和技能竞赛启动。" + passage, "d2.txt": chunks[1]["text"]}
    assert key_topic(question, FakeRetriever(chunks).search(question)) == "劳动竞赛"   # ~ 劳动和技能竞赛
    answer = Assistant(_DocumentRetriever(chunks, documents)).ask(question)
    assert not answer.abstained and answer.text.startswith("57个")
    documents["d1.txt"] = "杭州市体育局发布场馆开放安排。" + passage                        # another document
    assert Assistant(_DocumentRetriever(chunks, documents)).ask(question).abstained
    hits = FakeRetriever(_chunks(("d1.txt", "全国总工会本级热线呼叫中心正式启用。"))).search("全总")
    assert documents_naming("全总", hits) == [True]                      # 全总 ~ 全国总工会
    assert documents_naming("韦尔", hits) == [False]


# --- an aside between the attribute and its value; the article's year ------------------------

def test_an_aside_in_brackets_does_not_part_an_attribute_from_its_value():
    text = "项目公司息税折旧摊销前利润率（EBITDA margin，按二季度口径计算）为80.74%，继续保持高效运营。"
    span = (text.index("80.74%"), text.index("80.74%") + len("80.74%"))
    assert attribute_near(text, [span], ["利润率"])
    # The same number of characters that are not an aside do part them.
    plain = "项目公司息税折旧摊销前利润率在本季度由于租金收缴情况良好继续上升为80.74%。"
    span = (plain.index("80.74%"), plain.index("80.74%") + len("80.74%"))
    assert not attribute_near(plain, [span], ["利润率"])


def test_a_year_that_another_passage_of_the_article_names_counts_for_it(monkeypatch):
    first = dict(chunk_id="d0720.txt#1", doc="d0720.txt", heading_path=[], start=0,
                 text="2023-08-08 20:29，正文：中新社北京8月8日电 中国机械工业联合会8日发布2023年上半年机械工业经济运行情况。")
    second = dict(chunk_id="d0720.txt#2", doc="d0720.txt", heading_path=[], start=200,
                  text="上半年，中国机械工业实现出口3926亿美元。实现贸易顺差2491亿美元，同比增长41.2%。")
    other = dict(chunk_id="d0001.txt#1", doc="d0001.txt", heading_path=[], start=0,
                 text="2023年，全国货物贸易进出口总值稳中有进。")
    for c in (first, second, other):
        c["end"] = c["start"] + len(c["text"])
    hits = FakeRetriever([first, second, other]).search("2023年上半年中国机械工业贸易顺差额")
    by_doc = {h.chunk_id: i for i, h in enumerate(hits)}
    assert about_entities(["2023"], hits, by_doc["d0720.txt#2"])
    assert not about_entities(["2023", "机械"], hits[by_doc["d0720.txt#2"]:by_doc["d0720.txt#2"] + 1], 0)
    # Another document's year does not count: the passage alone does not name it.
    assert not about_entities(["2023"], [hits[by_doc["d0720.txt#2"]], hits[by_doc["d0001.txt#1"]]], 0)
    answer = Assistant(FakeRetriever([first, second, other])).ask("2023年上半年，中国机械工业的贸易顺差额是多少？")
    assert answer.text.startswith("2491亿美元。[")
    monkeypatch.setattr(lexical, "YEARS_BY_DOCUMENT", False)
    answer = Assistant(FakeRetriever([first, second, other])).ask("2023年上半年，中国机械工业的贸易顺差额是多少？")
    assert not answer.text.startswith("2491亿美元")


def test_the_general_secretary_is_not_the_secretary_of_a_village_branch():
    assert not mentions_term("要深入贯彻落实习近平总书记对防汛救灾工作的重要指示精神", "书记")
    assert mentions_term("黄安村党支部书记王建军带领村民转移", "书记")
    assert mentions_term("习近平总书记强调", "总书记")                    # asked in full, it is the role
    text = ("d1.txt", "门头沟区黄安村全力抢险。要深入贯彻落实习近平总书记对防汛救灾工作的重要指示精神，全力搜救被困人员。")
    assert _assistant(text).ask("北京门头沟区黄安村的村党支部书记叫什么名字？").abstained


# --- people news names by surname only -------------------------------------------------------

@pytest.mark.parametrize("question,names", [
    ("刘某某需要赔偿多少元的生态损害损失？", ["刘某某"]),
    ("警方对张某作出什么处罚？", ["张某"]),
    ("某些国家的人口是多少？", []),        # 某些 is no name
    ("位于某地的活动有多少人？", []),      # nor 于某地
])
def test_a_person_named_by_surname_and_mou_is_whom_the_question_is_about(question, names):
    assert [e for e in question_entities(question) if "某" in e] == names


def test_a_question_about_liu_mou_is_not_answered_from_another_case():
    other = ("d1.txt", "该起诉状中表明原告诉讼请求为：赔偿原告精神损失费10万元，附带赔偿名誉损失费100万元。")
    assert _assistant(other).ask("刘某某需要赔偿多少元的生态损害损失？").abstained
    same = ("d2.txt", "法院判决刘某赔偿生态环境损害损失12万元，并公开赔礼道歉。")   # 刘某某 ~ 刘某
    answer = _assistant(same).ask("刘某某需要赔偿多少元的生态损害损失？")
    assert not answer.abstained and answer.text.startswith("12万元")
