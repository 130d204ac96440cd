"""Leads that name the asked value whole (issue 14, ninth pass).

Each test uses sentences of the articles the seen pair-5 questions (eval/crud_heldout5.jsonl, eval/seeds_heldout5.jsonl)
were answered from: the stating sentence was chosen, and the lead was another value of it, a part of the value, or
nothing. Every test switches its rule off and shows the old lead, so it fails without the rule. Small fakes
(tests/test_answer_fakes.py), no model.
"""
from __future__ import annotations

from rag.answering import extractive, lexical
from rag.answering.assistant import Assistant
from rag.answering.lexical import asked_for, counted_noun, question_parts
from test_answer_fakes import FakeRetriever


def _chunks(*docs: tuple[str, str]) -> list[dict]:
    return [dict(chunk_id=f"{doc}#1", doc=doc, heading_path=[], text=text, start=0, end=len(text))
            for doc, text in docs]


def _leads(question: str, *docs: tuple[str, str]) -> list[str]:
    answer = Assistant(FakeRetriever(_chunks(*docs))).ask(question)
    assert not answer.abstained, answer.text
    return [line.split("。[")[0] for line in answer.text.split("\n")]


MEDICINE = ("d1.txt", "2023-07-28，正文：7月21日，国家卫生健康委官网发布消息，国家卫生健康委会同教育部、公安部、审计署、国务院国资委、"
                      "市场监管总局、国家医保局、国家中医药局、国家疾控局、国家药监局等10部门联合召开视频会议，部署开展为期1年的全国医药"
                      "领域腐败问题集中整治工作。")
COUNTY_PLAN = ("d2.txt", "2023-08-14，正文：商务部等9部门近日联合印发《县域商业三年行动计划（2023-2025年）》（以下简称《计划》）。"
                         "另外，《计划》从完善县域商业网络设施和业态、发展农村物流共同配送、推动县域流通企业转型升级、"
                         "丰富农村消费市场、推动农村电商高质量发展、提升优质农产品供给水平、加强农产品流通体系建设等7个方面明确了重点任务。")


def test_a_count_leads_with_what_it_counts(monkeypatch):
    assert counted_noun("国家卫生健康委会同多少个部门联合召开视频会议？") == "部门"
    assert counted_noun("今年全总党组的同志跑了几个省？") == "省"
    assert _leads("国家卫生健康委会同多少个部门联合召开视频会议？", MEDICINE) == ["10部门"]
    assert _leads("《县域商业三年行动计划（2023-2025年）》从几个方面明确了重点任务？", COUNTY_PLAN) == ["7个方面"]
    monkeypatch.setattr(extractive, "COUNTED_NOUNS", False)
    assert _leads("国家卫生健康委会同多少个部门联合召开视频会议？", MEDICINE) == ["10部"]


WORKER = ("s1.txt", "近日，克州总工会党组成员、州教育工会主席艾力江·阿吉向记者介绍。")


def test_a_transliterated_name_is_read_whole_after_the_title_before_it(monkeypatch):
    assert _leads("克州总工会党组成员、州教育工会主席是谁？", WORKER) == ["艾力江·阿吉"]
    monkeypatch.setattr(lexical, "WHOLE_NAMES", False)  # 席艾力江·阿吉 starts inside 主席: only jieba's 艾力江 is left
    assert _leads("克州总工会党组成员、州教育工会主席是谁？", WORKER) == ["艾力江"]


def test_a_surname_led_name_jieba_cut_short_is_completed(monkeypatch):
    text = "台湾呼吸治疗学会理事长朱家成表示，两岸交流意义重大。"
    spans = lexical.typed_spans(text, asked_for("台湾呼吸治疗学会的理事长是谁？"))
    assert "朱家成" in [text[s:e] for s, e in spans]
    monkeypatch.setattr(lexical, "WHOLE_NAMES", False)  # jieba: 朱家 + 成
    spans = lexical.typed_spans(text, asked_for("台湾呼吸治疗学会的理事长是谁？"))
    assert "朱家成" not in [text[s:e] for s, e in spans]


STATION = ("s2.txt", "本报讯（记者李娜 通讯员潘文苑）1月14日，四川省成都市“工会服务户外劳动者日”暨锦江区工会驿站建设管理规范发布会"
                     "在锦江区“U善里”工会驿站举行。")
PLATFORM = ("s3.txt", "随后，全总和各级工会持续“输出”关爱新就业形态劳动者的务实举措，包括全国外卖行业首份全网集体合同落地“饿了么”平台，"
                      "全总首次派出机关干部赴平台企业蹲点。")


def test_a_quoted_name_before_the_asked_noun_is_the_answer(monkeypatch):
    assert _leads("锦江区那个驿站规范是在哪个驿站发布的？", STATION) == ["“U善里”工会驿站"]
    assert _leads("外卖行业第一份全网集体合同是在哪个平台落地的？", PLATFORM) == ["“饿了么”平台"]
    monkeypatch.setattr(lexical, "QUOTED_HEADS", False)
    assert _leads("外卖行业第一份全网集体合同是在哪个平台落地的？", PLATFORM) != ["“饿了么”平台"]


CALLIGRAPHY = ("s4.txt", "1月22日，在云南省昆明市昆明火车站，云南省总工会举行“送万福、进万家”书法公益活动，邀请10位书法家挥毫泼墨。")
RESERVE = ("d3.txt", "2023-08-14，正文：鹰嘴界国家级自然保护区位于湖南省西南部会同县中部偏东，雪峰山山脉西支南段，沅水支流巫水中段。")


def test_a_place_leads_with_the_whole_chain_of_names_and_the_asked_level(monkeypatch):
    assert _leads("云南省总工会“送万福、进万家”书法公益活动在哪里举行？", CALLIGRAPHY) == ["云南省昆明市昆明火车站"]
    assert "会同县" in _leads("鹰嘴界保护区在湖南哪个县？", RESERVE)[0]
    monkeypatch.setattr(extractive, "PLACE_CHAINS", False)
    assert _leads("云南省总工会“送万福、进万家”书法公益活动在哪里举行？", CALLIGRAPHY) == ["在云南"]
    assert "会同县" not in _leads("鹰嘴界保护区在湖南哪个县？", RESERVE)[0]


TORCH = ("s5.txt", "杭州亚运会聚焦57个比赛场馆、31个训练场馆建设，开展大比武活动。这座形如一朵盛开莲花的建筑，见证着亚运圣火第三次在中国点燃。")


def test_a_which_time_question_is_answered_by_an_ordinal(monkeypatch):
    assert asked_for("杭州亚运会是亚运圣火第几回在中国点燃？").ordinal
    assert asked_for("那篇综述从第几页开始？").units == {"页"}  # a page number stays one
    assert _leads("杭州亚运会是亚运圣火第几回在中国点燃？", TORCH) == ["第三次"]
    monkeypatch.setattr(lexical, "ORDINALS_ASKED", False)
    assert _leads("杭州亚运会是亚运圣火第几回在中国点燃？", TORCH) != ["第三次"]


EXPORTS = ("d4.txt", "2023-08-10，正文：2023年上半年，国有企业和外资企业的出口额分别下降了2.3%和14.5%，仅民营企业保持了1.8%的出口正增长。")


def test_a_pair_asked_respectively_gets_each_members_value(monkeypatch):
    question = "2023年上半年国有企业和外资企业的出口额分别下降了多少？"
    assert question_parts(question) == ["2023年上半年国有企业的出口额分别下降了多少？",
                                        "2023年上半年外资企业的出口额分别下降了多少？"]
    assert _leads(question, EXPORTS) == ["2.3%", "14.5%"]
    assert _leads("2023年上半年外资企业的出口额下降了多少？", EXPORTS) == ["14.5%"]
    monkeypatch.setattr(extractive, "RESPECTIVE", False)  # the first figure after 分别 is 国有企业's
    assert _leads("2023年上半年外资企业的出口额下降了多少？", EXPORTS) == ["2.3%"]
    monkeypatch.setattr(lexical, "PAIRS_OF_AN_ATTRIBUTE", False)
    assert question_parts(question) == [question]


SQUADS = ("s6.txt", "仅2023年，全国省市县三级工会机关就选派6254个蹲点组，共1.82万名机关干部奔赴企业和工业园区，指导帮扶基层工会建设。")


def test_counts_listed_with_their_own_question_words_are_parts(monkeypatch):
    question = "2023年全国省市县三级工会机关选派了多少个蹲点组、多少名机关干部奔赴企业和工业园区？"
    assert _leads(question, SQUADS) == ["6254个", "1.82万名"]
    assert question_parts("遵义全市现在有多少个工会组织、多少名会员？") == ["遵义全市现在有多少个工会组织？",
                                                                       "遵义全市现在有多少名会员？"]
    assert len(question_parts("哪些省份、哪些城市举办了活动？")) == 1
    monkeypatch.setattr(lexical, "COUNTS_LISTED", False)
    assert _leads(question, SQUADS) == ["1.82万名"]


LOANS = ("d5.txt", "2023-07-20，正文：上海金融运行情况发布。6月末，全市普惠小微贷款余额首次超1万亿元，同比增长32.4%。")


def test_the_parts_of_a_question_lead_with_different_values(monkeypatch):
    question = "上海普惠小微贷款到6月底余额有多少，涨了多少？"
    assert _leads(question, LOANS) == ["1万亿元", "32.4%"]
    assert asked_for("中国实习生的月最低底薪涨了多少？").units >= {"美元", "%"}  # an amount or a rate
    monkeypatch.setattr(extractive, "DISTINCT_PARTS", False)
    assert _leads(question, LOANS) == ["1万亿元", "1万亿元"]


def test_money_is_asked_by_what_the_counted_thing_ends_in(monkeypatch):
    assert "元" in asked_for("绥化给健在的全国劳模每人发了多少春节慰问金？").units
    monkeypatch.setattr(lexical, "MONEY_NOUNS", False)
    assert "元" not in asked_for("绥化给健在的全国劳模每人发了多少春节慰问金？").units


def test_a_who_question_about_an_expert_asks_for_a_person():
    assert asked_for("帮忙确定鹰嘴界那个甲虫是新种的专家是谁？").role
    text = "经请教该类群专家贵州大学陈祥盛教授，最终确定为新种。"
    spans = lexical.typed_spans(text, asked_for("帮忙确定鹰嘴界那个甲虫是新种的专家是谁？"))
    assert [text[s:e] for s, e in spans] == ["陈祥盛"]


POWER = ("s7.txt", "2月26日，横岗村山上的10千伏线路出现覆冰。上虞供电公司连夜对故障点进行切除隔离，到晚上9时10分，该线路恢复正常供电。")


def test_a_what_time_question_is_answered_by_a_time_of_day(monkeypatch):
    assert asked_for("横岗村那条结冰的10千伏线路几点恢复供电的？").date == "time"
    assert asked_for("报告提出了哪几点建议？").kind != "date"
    assert "9时10分" in _leads("横岗村那条结冰的10千伏线路几点恢复供电的？", POWER)[0]
    monkeypatch.setattr(lexical, "CLOCK_TIMES", False)
    assert Assistant(FakeRetriever(_chunks(POWER))).ask("横岗村那条结冰的10千伏线路几点恢复供电的？").abstained


RAIN = ("d6.txt", "2023-08-10，正文：受降雨影响，预计11日下午至13日，松花江流域中东部面雨量将达20至55毫米，其中松花江下游面雨量55至70毫米；")
PROFIT = ("d7.txt", "2023-08-06，正文：伯克希尔·哈撒韦第二季度财报显示，营业利润同比增长7%至100亿美元。")


def test_a_range_of_figures_leads_whole(monkeypatch):
    assert _leads("松花江下游面雨量预计会达到多少毫米？", RAIN) == ["55至70毫米"]
    assert _leads("伯克希尔·哈撒韦第二季度的营业利润是多少？", PROFIT) == ["100亿美元"]  # 7% is another measure
    monkeypatch.setattr(extractive, "NUMBER_RANGES", False)
    assert _leads("松花江下游面雨量预计会达到多少毫米？", RAIN) == ["70毫米"]


TRIAL = ("d8.txt", "2023-07-27，正文：另据《纽约时报》报道，特朗普还将于2024年3月在纽约州法院面临伪造商业记录的刑事指控审判，"
                   "该案件涉及其在2016年大选期间向艳星丹尼尔斯支付“封口费”一事。")


def test_a_date_question_leads_with_the_date_of_its_own_verb(monkeypatch):
    assert _leads("特朗普纽约那个封口费的案子什么时候审？", TRIAL) == ["2024年3月"]
    monkeypatch.setattr(extractive, "DATED_VERBS", False)  # the clause of 2016年 shares 封口费 with the question
    assert _leads("特朗普纽约那个封口费的案子什么时候审？", TRIAL) == ["2016年"]


def test_a_saving_is_asked_as_a_rate_or_an_amount(monkeypatch):
    assert "%" in asked_for("十里花廊靠撒花籽不买现成的花，成本能省多少？").units
    monkeypatch.setattr(lexical, "CHANGES", False)
    assert "%" not in asked_for("十里花廊靠撒花籽不买现成的花，成本能省多少？").units



HOSTS = ("s8.txt", "500多天前，杭州奥体中心体育场举行了一场誓师大会——浙江省总工会、第19届亚运会组委会、杭州市总工会联合主办的"
                   "“当好主人翁 亚运立新功”劳动和技能竞赛启动。")


def test_a_question_for_several_bodies_leads_with_the_list(monkeypatch):
    question = "“当好主人翁 亚运立新功”劳动和技能竞赛由哪几家单位联合主办？"
    assert _leads(question, HOSTS) == ["浙江省总工会、第19届亚运会组委会、杭州市总工会"]
    monkeypatch.setattr(extractive, "LISTED_NAMES", False)
    assert len(_leads(question, HOSTS)[0]) < 10
