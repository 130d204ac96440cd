"""What a stating sentence does not say (issue 14, tenth pass): unanswerable questions whose entities the corpus
names, answered with another value of the right kind. Each rule reads the value's own words in the sentence (the
noun a list item counts, the unit, a rate, the titles of a name, what a date starts, the kind of a name) and is shown
on real sentences of the seen sets, next to a wording it must leave answered. No model, no index.
"""
from __future__ import annotations

import pytest

from rag.answering import relations


def _span(sentence: str, value: str) -> tuple[int, int]:
    start = sentence.index(value)
    return start, start + len(value)


# --- what a count counts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("question,sentence,value,other", [
    # a verb that a noun follows starts the counted noun phrase (参展单位)
    ("第二届大国工匠创新交流大会共设置了多少个展区？", "来自全国47个参展单位500余名劳模工匠参展。", "47个", True),
    ("第二届大国工匠创新交流大会有多少个参展单位？", "来自全国47个参展单位500余名劳模工匠参展。", "47个", False),
])
def test_a_count_of_an_attributive_noun_phrase_counts_that(question, sentence, value, other):
    assert relations.counts_another_thing(question, sentence, _span(sentence, value)) is other


def test_people_or_money_do_not_count_events():
    sentence = "定期组织劳模疗休养累计1853人次，投入9822.5万元用于常态化走访慰问困难劳模。"
    for value in ("1853人次", "9822.5万元"):
        assert relations.sibling_measure("193支宣讲团累计宣讲了多少场次？", "number", sentence, _span(sentence, value))
    assert not relations.sibling_measure("劳模疗休养累计多少人次？", "number", sentence, _span(sentence, "1853人次"))
    held = "全省工会累计开展宣讲2000余场次。"
    assert not relations.sibling_measure("累计宣讲了多少场次？", "number", held, _span(held, "2000余场次"))


@pytest.mark.parametrize("question,sentence,value,rate", [
    ("截至2023年12月，全国工会驿站累计服务户外劳动者多少人次？",
     "截至2023年12月,全国已建成工会驿站超过16万个,覆盖服务职工群众超1亿人,日服务户外劳动者300多万人次。", "300多万人次", True),
    ("全国工会驿站每天服务户外劳动者多少人次？",
     "截至2023年12月,全国已建成工会驿站超过16万个,覆盖服务职工群众超1亿人,日服务户外劳动者300多万人次。", "300多万人次", False),
    ("2022年一年搞劳动竞赛的企事业单位工会有多少家？",
     "据统计，全国开展劳动和技能竞赛的企事业单位工会年均达到58.6万家，参赛职工累计2.9亿人次；", "58.6万家", True),
    ("参赛职工累计有多少人次？",
     "据统计，全国开展劳动和技能竞赛的企事业单位工会年均达到58.6万家，参赛职工累计2.9亿人次；", "2.9亿人次", False),
])
def test_a_rate_does_not_answer_a_total_or_a_years_figure(question, sentence, value, rate):
    assert relations.rate_for_total(question, sentence, _span(sentence, value)) is rate


# --- whose role ---------------------------------------------------------------------------------------------

_ELECTION = "会议履行了有关人事事项的民主程序，选举迪力夏提·柯德尔汗为全总十八届执委会副主席，主席团会议推选朱虎祥为全总书记处书记。"
_REPORT = "会议通过了全总党组书记、副主席、书记处第一书记徐留平代表全总十八届执委会主席团所作工作报告。"


@pytest.mark.parametrize("question,sentence,name,other", [
    ("挪威高级海员工会的主席叫什么名字？", _ELECTION, "迪力夏提·柯德尔汗", True),   # elected 副主席
    ("全总十八届执委会副主席是谁？", _ELECTION, "迪力夏提·柯德尔汗", False),
    ("挪威高级海员工会的主席叫什么名字？", _REPORT, "徐留平", True),               # 副主席 among his titles
    ("全总书记处第一书记是谁？", _REPORT, "徐留平", False),
    ("市公安局局长是谁？", "市公安局局长、副市长李明出席。", "李明", False),           # one of several titles
    ("挪威高级海员工会的主席叫什么名字？", _ELECTION, "朱虎祥", True),             # appointed to another role
    ("全总书记处书记这次主席团推了谁？", _ELECTION, "朱虎祥", False),               # 主席团 is a body, not the role
])
def test_every_title_of_a_name_decides_its_role(question, sentence, name, other):
    assert relations.other_holder(question, sentence, _span(sentence, name)) is other


# --- what a date dates ----------------------------------------------------------------------------------------

def test_a_date_that_starts_a_period_does_not_date_an_event():
    sentence = "经过平等协商，双方对中国实习生月最低底薪增长达成一致意见：2025年1月1日起，中国实习生月最低底薪增长54美元。"
    span = _span(sentence, "2025年1月1日")
    assert relations.start_for_occurrence("中挪海员集体协商中期评估会是哪一天举行的？", sentence, span)
    assert not relations.start_for_occurrence("中国实习生新的最低底薪从哪天开始执行？", sentence, span)


def test_the_day_a_reporter_learned_the_news_dates_nothing_reported():
    sentence = "8月11日，极目新闻记者从湖北鄂州花湖机场了解到，机场近日首次开启“双跑道运行”模式。"
    span = _span(sentence, "8月11日")
    assert relations.reporting_date("鄂州花湖机场预留的第三条跑道计划什么时候开工建设？", sentence, span)
    held = "8月11日，第二届大会在鄂州花湖机场开幕。"
    assert not relations.reporting_date("第二届大会是哪天开幕的？", held, _span(held, "8月11日"))


def test_the_end_of_a_serial_does_not_date_its_start():
    sentence = "作为现象级小说，《诡秘之主》融汇了西方奇幻元素，2020年完结至今持续受到国内外读者热烈追捧。"
    assert relations.other_event("《诡秘之主》是哪一年开始连载的？", sentence, _span(sentence, "2020年"))
    assert not relations.other_event("《诡秘之主》是哪一年完结的？", sentence, _span(sentence, "2020年"))


# --- which kind of place or body ------------------------------------------------------------------------------

@pytest.mark.parametrize("question,name,other", [
    ("工会服务站点双15工程发布会是在哪座城市举行的？", "全国总工会", True),
    ("在昆明火车站写福字的10位书法家来自哪个书法家协会？", "云南省总工会", True),
    ("学青会手球女子组的比赛具体在南宁哪个场馆打？", "广西南宁市", True),
    ("廖泽萌在哪个外卖平台当骑手？", "全国工会", True),
    ("大会在哪个城市举行？", "北京市", False),
    ("恒大汽车获得了哪家公司的战略投资？", "长安汽车", False),          # no ending to read
    ("比赛在哪个场馆举行？", "国家体育馆", False),
])
def test_a_which_question_asks_for_a_kind_of_name(question, name, other):
    sentence = f"活动由{name}举办。"
    assert relations.other_kind_of_name(question, sentence, _span(sentence, name)) is other


# --- which year's season -------------------------------------------------------------------------------------

def test_a_season_named_with_its_year_is_that_years():
    sentence = "全省发电装机规模达5841万千瓦，顺利应对今夏第一波最大负荷4165万千瓦用电高峰考验。"
    span = _span(sentence, "4165万千瓦")
    context = relations.Context(year=2023)
    assert relations.span_mismatch("湖南去年夏天用电最大负荷是多少？", "number", sentence, span, context) == "other_period"
    assert relations.span_mismatch("湖南今年夏天用电最大负荷是多少？", "number", sentence, span, context) is None


# --- what a sum is spent on ----------------------------------------------------------------------------------

def test_a_sum_spent_on_something_else_does_not_answer():
    sentence = "定期组织劳模疗休养累计1853人次，投入9822.5万元用于常态化走访慰问困难劳模。"
    span = _span(sentence, "9822.5万元")
    assert relations.spent_on_another("江西劳模疗休养一共花了多少钱？", sentence, span)
    assert not relations.spent_on_another("江西走访慰问困难劳模投入了多少钱？", sentence, span)


# --- who follows a title -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sentence,question,word", [
    ("小米集团创始人、董事长兼首席执行官雷军出席座谈。", "小马智行科技有限公司的董事长是谁？", "兼首席"),
    ("各分公司工会主席由同级党委副书记兼任。", "北大荒集团工会的现任主席是谁？", "由同级"),
])
def test_what_follows_a_title_with_jian_or_you_is_no_name(sentence, question, word):
    from rag.answering.lexical import asked_for, typed_spans

    assert word not in [sentence[s:e] for s, e in typed_spans(sentence, asked_for(question))]


# --- through the whole answering path -------------------------------------------------------------------------

def test_a_question_whose_only_date_starts_a_period_is_declined():
    from test_answer_relations import _reason

    # the heading names the meeting and its 举行; the one date of the text starts the new wage
    doc = ("d1.txt", "经过平等协商，双方对中国实习生月最低底薪增长达成一致意见：2025年1月1日起，中国实习生月最低底薪增长54美元。",
           ["中挪海员集体协商中期评估会在泉州举行"])
    assert _reason("中挪海员集体协商中期评估会是哪一天举行的？", doc) == ("other_period", "other_period")
    assert _reason("中国实习生月最低底薪从哪天开始增长？", doc)[1] is None


def test_a_deputy_among_a_names_titles_is_declined_by_the_titles_alone(monkeypatch):
    from rag.answering import lexical
    from test_answer_relations import _reason

    monkeypatch.setattr(lexical, "ROLE_COMPOUNDS", False)
    deputy = ("d1.txt", "吉林日报7月27日讯，省委副书记、省长胡玉亭出席会议并讲话。")
    assert _reason("现任吉林省委书记是谁？", deputy) == ("other_role", "other_role")
