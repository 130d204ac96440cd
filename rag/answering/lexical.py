"""What a question asks for and what it is about: the lexical side of answering.

``asked_for`` (the kind of answer: a number in some unit, a date, a person,
place or organisation), ``typed_spans``/``new_spans`` (where a sentence holds
such an answer), ``focus_terms``/``attribute_terms`` (the asked attribute:
队长, 装机容量), ``question_entities`` (the names, dates and numbers the
question is about) and ``question_parts`` (the parts of a multi-part
question). Overlap measures live in ``rag.overlap``.

The extractive answerer, the abstention policy, the prompt trimmer and the
citation checker build on these; this module imports none of them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from rag.overlap import PUNCT_RE, QUESTION_WORDS, keywords
from rag.text import normalize
from rag.tokenize_zh import jieba_pos_tokenizer, jieba_tokenizer

# --- what the question asks -----------------------------------------------------

_DATE_Q = re.compile(r"何时|什么时候|啥时候?|哪一?年|哪一?天|几月|几号|哪个月|日期|什么时间|何年|哪天|几时|(?<!哪)几点(?:钟|几分)?(?![\u4e00-\u9fff]{0,2}(?:建议|意见|要求|措施|做法|经验|举措|原因|理由|问题|内容))")
_NUMBER_Q = re.compile(r"多少|几|多大|多高|多长|多久|多重|比例|百分|数量|人数|金额|规模|占比|增速|增幅")
_PLACE_Q = re.compile(
    r"哪里|哪儿|在哪|何地|什么地方|哪座|"
    r"哪[个些一]?(?:省|市|县|区|地区|城市|国家|地方|镇|乡|村|港口|机场|车站|场馆|景区|海域|街道|口岸)")
_GEO_Q = re.compile(r"哪[个一]?(?:省|市|县|地区|城市|国家|镇|乡|村)")
_PERSON_Q = re.compile(r"谁|哪位|何人|什么人|哪些人|姓名|名字|叫什么|叫啥")
_ORG_Q = re.compile(
    r"哪[个些一家]?[\u4e00-\u9fff]{0,4}?(?:单位|公司|机构|企业|部门|组织|团队|学校|医院|大学|银行|协会|代表团|媒体|平台|集团|品牌)")

_NUM_RE = re.compile(r"\d+(?:[.,，]\d+)*|[一二三四五六七八九十百千万亿两〇零]{2,}")
#: A number, Arabic or Chinese, with an optional magnitude and approximation (1.2万, 3000余, 百余).
_NUMBER = r"(?:\d+(?:[.,]\d+)*|[一二三四五六七八九十两百千]+)\s*(?:万|亿|千|百)*\s*(?:余|多)?\s*(?:万|亿)?"
_NUM_UNIT_RE = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:万|亿|千|百)?\s*"
    r"(?:个(?!月)|名|人|项|家|次|元|届|所|条|支|场|户|件|台|部|篇|处|座|批|期|页|%|％|倍|余|多|公里|米|吨|亩|万|亿)"
    r"|[一二三四五六七八九十百千两]+\s*(?:万|亿)\s*[个名人项家次元]?"
)
_DATE_RE = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{1,2}\s*月|[一二三四五六七八九十]{1,3}月"
    r"|[〇零一二三四五六七八九]{4}年|今年|去年|明年|近年"
)
_YEAR_SPAN_RE = re.compile(r"(?:\d{4}|[〇零一二三四五六七八九]{4})\s*年(?:底|初|末)?")
_DAY_SPAN_RE = re.compile(r"(?:\d{4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*[日号]"
                          r"(?:\s*(?:至|到|-|—|－|~)\s*(?:\d{1,2}\s*月\s*)?\d{1,2}\s*[日号])?"
                          r"|(?<![\d月])\d{1,2}\s*[日号](?![报])"
                          r"|[一二三四五六七八九十]{1,3}月[一二三四五六七八九十]{1,3}[日号]")
_MONTH_SPAN_RE = re.compile(r"(?:\d{4}\s*年\s*)?\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?|[一二三四五六七八九十]{1,3}月")
#: A time of day (9时10分, 10时, 18:30, 下午3点半) answers 几点.
_CLOCK_SPAN_RE = re.compile(r"(?:(?:凌晨|早上|上午|中午|下午|晚上|傍晚|夜间)\s*)?(?<![\d.])\d{1,2}\s*(?:[时点](?:\s*\d{1,2}\s*分|半|整)?|:\d{2})(?![\d])")
#: 几点 asks for a time of day.
CLOCK_TIMES = True
_WHEN_SPAN_RE = re.compile(_DAY_SPAN_RE.pattern + "|" + _MONTH_SPAN_RE.pattern + "|" + _YEAR_SPAN_RE.pattern
                           + r"|(?:今年|去年|明年|当年|上半年|下半年|年底|年初|月底|月初)")
_PLACE_SUFFIXES = re.compile(
    r"(?:省|市|县|区|镇|乡|村|州|旗|盟|岛|港|湾|基地|园区|大会堂|会场|广场|中心|展览馆|机场|车站|口岸|码头|场馆|体育馆"
    r"|体育场|会展中心|国际会议中心|酒店|大厦|街道|社区)(?![\u4e00-\u9fff]?[长委级])")
_PLACE_RE = re.compile(
    r"(?:在|于|到|赴)(?:北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北"
    r"|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|西藏|宁夏|新疆|香港|澳门|京)"
)
_ORG_SUFFIXES = re.compile(
    r"(?:公司|集团|银行|大学|学院|医院|协会|学会|委员会|研究院|研究所|研究中心|实验室|基金会|联合会|总工会|工会|政府"
    r"|法院|检察院|部(?![署分门位件长])|厅|(?<![布格结大全开])局(?![面势限部长])|(?<![部签])署(?![名])|委(?![托屈员])|(?<![举创开主承协合兴])办(?![理法公事])|代表团|俱乐部"
    r"|学校|小学|中学|幼儿园|电视台|日报|报社|通讯社|新闻网|组委会|办公室|党委|中心(?![城区])|平台|品牌|股份)"
    r"(?![\u4e00-\u9fff]?[生长员])")
#: Where a name stops when read leftwards from its suffix (举行成都大运会 -> 成都大运会).
_NAME_STOP = set("的在了和与及将被把为从于对是等着由向让给举行召开位于来自其这那")
#: A transliterated foreign name (阿古斯丁·马雷罗, 乔·拜登); the second part stops before a verb or particle.
_FOREIGN_NAME_RE = re.compile(
    r"[\u4e00-\u9fff]{1,4}[·•・](?:(?![告表说称指认在是和等的与及对向将也还都于被把为从曾已就则])[\u4e00-\u9fff]){1,5}")


#: A person named in Latin letters (Fidji Simo, Jean-Pierre Dupont): two or three capitalised words.
_LATIN_NAME_RE = re.compile(r"(?<![A-Za-z])[A-Z][a-z]+(?:-[A-Z][a-z]+)?(?: [A-Z][a-z]+(?:-[A-Z][a-z]+)?){1,2}(?![A-Za-z])")
#: A person question is answered by a name in Latin letters too (Instacart CEO Fidji Simo), and a role in
#: them (CEO) is the asked attribute, not a name the answer is about.
LATIN_PEOPLE = True


#: Titles and roles a person holds (主任, 董事长, 第一作者).
_ROLES = (r"主任|主席|书记|院长|校长|队长|局长|部长|厅长|处长|科长|经理|董事长|总裁|会长|秘书长|市长|省长|县长|区长|镇长"
          r"|村长|社长|主编|教授|研究员|院士|民警|医生|发言人|负责人|总统|总理|首相|外长|大使|导演|教练|主持人|创始人"
          r"|CEO|CFO|CTO|COO")
#: A name right after a title (中心主任李全民在致辞中, 队长阿古斯丁): Chinese news writes it so.
_TITLED_NAME_RE = re.compile(
    rf"(?:{_ROLES})"
    r"((?:(?![在说表称指认是和等的与及对向将也还都于被把为从曾已就则告介透兼由])[\u4e00-\u9fff]){2,3})")
#: A quoted or titled name (“川工之家”, 《祖国颂》).
_QUOTED_RE = re.compile(r"“[^”]{2,16}”|《[^》]{1,20}》|「[^」]{2,16}」")


def suffix_spans(sentence: str, suffixes: re.Pattern, longest: int = 10) -> list[tuple[int, int]]:
    """Names ending in one of ``suffixes``, read leftwards up to ``longest`` characters or a stop character."""
    spans = []
    for m in suffixes.finditer(sentence):
        start = m.start()
        while start > 0 and m.start() - start < longest:
            char = sentence[start - 1]
            if not ("\u4e00" <= char <= "\u9fff" or char.isalnum() or char in "（）()·") or char in _NAME_STOP:
                break
            start -= 1
        if m.start() - start >= 1:
            spans.append((start, m.end()))
    return spans


#: Measure words and units a "多少X" / "几X" question can ask a number in.
_UNITS = sorted(set(
    "个 名 人 位 项 家 次 元 届 所 条 支 场 户 件 台 部 篇 处 座 批 期 倍 吨 亩 米 岁 天 年 月 日 周 枚 门 辆 艘 架 套 份 块 颗 "
    "只 头 株 棵 斤 克 升 度 通 笔 起 例 层 间 张 本 册 首 集 轮 款 种 类 票 席 栋 幢 点 分 秒 根 片 箱 包 瓶 袋 口 页 "
    "公里 千米 公顷 平方米 平方公里 千克 公斤 小时 分钟 人次 批次 架次 班次 车次 万人 千瓦 兆瓦 吉瓦 千瓦时 美元 欧元 "
    "港元 日元 英镑 卢布 百分点 个月 周岁 立方米 标箱 万吨 亿吨 对 双".split()), key=len, reverse=True)
_MAGNITUDE = "万亿千百十"
#: Units that count the same thing: a question in 名 is answered by 人 or 人次.
_UNIT_GROUPS = [
    {"名", "人", "位", "人次", "万人", "户"},
    {"元", "美元", "欧元", "港元", "日元", "英镑", "卢布"},
    {"%", "％", "百分点", "个百分点", "个基点", "基点", "成", "倍"},
    {"天", "日", "小时", "分钟", "年", "个月", "月", "周", "秒"},
    {"岁", "周岁"},
    # pieces of hardware (几块GPU: 8颗), and temperatures (多少度: 190°C)
    {"块", "颗", "片", "枚", "张"},
    {"度", "℃", "°C", "摄氏度"},
    {"个", "家", "项", "所", "座", "处", "支", "条", "件"},
]
#: Words of a question about money (a 价格战, a price war, is none: 多少企业不想打价格战 counts firms).
_MONEY_Q = re.compile(r"钱|资金|金额|费用|投资|价格(?!指数|战)|售价|(?<![评代物])价(?!值观|格指数|指数|格战)|收入|利润|营收|造价|成本|赔付|赔偿|补贴|奖金|票价|工资|薪|预算|罚款|市值|身价|估值"
                       r"|信贷|贷款|融资|授信")
_RATE_Q = re.compile(r"比例|占比|百分|率|增速|增幅|增长了?多少|下降了?多少|上涨了?多少|提高了?多少|降低了?多少")
#: 涨了多少 / 跌了多少 is answered by a rate (同比增长32.4%) or by an amount in the question's unit (增长54美元).
_CHANGE_Q = re.compile(r"(?<![上下])(?:涨|跌|省|节省|节约|少|减少)了?多少(?!钱|元|块)")
_AGE_Q = re.compile(r"多大年纪|年龄|几岁|多少岁")
_DURATION_Q = re.compile(r"多久|多长时间|多少时间|几天|多少天|几年|多少年|几个月|多少个月|几小时|多少小时")


@dataclass(frozen=True)
class Asked:
    """What a question asks for: the kind of answer and, for numbers, the units it may come in.

    ``kind`` is "number", "date", "person", "place", "org" or None (a phrase:
    什么/哪些/如何 questions); ``units`` is empty when any number will do;
    ``date`` narrows a date to "year", "month", "day" or "any".
    """

    kind: str | None
    units: frozenset[str] = frozenset()
    date: str = "any"
    #: The unit exactly as the question says it (几家 -> 家), when it names one.
    unit: str | None = None
    #: A place question asks for a city, province, country ... (哪个城市), not any venue or body.
    geo: bool = False
    #: A person question asks who holds a role (校长叫什么名字, 谁是队长): a person's name, not a body.
    role: bool = False
    #: A 第几 question asks for a rank or edition (第几回 -> 第三次), not a count.
    ordinal: bool = False


#: Nouns for people by what they do (讲师叫什么名字): the answer is a person's name, not a body.
_PERSON_NOUNS = ("讲师|教师|老师|教练|医生|记者|选手|队员|主持人|教授|律师|工程师|创始人|负责人|发言人|获得者|得主"
                 "|专家|学者|歌手|运动员|演员|球员|作家|画家|科学家|设计师|志愿者|司机|工匠|劳模|网友|嫌疑人")


def asked_for(question: str) -> Asked:
    """The kind of answer ``question`` asks for (see ``Asked``)."""
    asked = _asked_for(question)
    if CHANGES and asked.kind == "number" and asked.units and _CHANGE_Q.search(normalize(question)):
        return Asked("number", asked.units | _UNIT_GROUPS[2], unit=asked.unit)
    return asked


#: 涨了多少 takes a rate as well as the question's own unit (``_CHANGE_Q``).
CHANGES = True


def _asked_for(question: str) -> Asked:
    q = normalize(question)
    kind = answer_type(q)
    if kind == "date":
        if CLOCK_TIMES and re.search(r"几点|几时几分", q):
            return Asked("date", date="time")  # 几点恢复供电 -> 9时10分
        if re.search(r"哪一?年|何年|几几年", q):
            return Asked("date", date="year")
        if re.search(r"哪一?天|几号|几月几日|哪天|几日|日期", q):
            return Asked("date", date="day")
        if re.search(r"几月|哪个月", q):
            return Asked("date", date="month")
        return Asked("date")
    if kind == "place":
        return Asked("place", geo=bool(_GEO_Q.search(q)))
    if kind == "person":
        return Asked("person", role=bool(re.search(rf"(?:{_ROLES}|理事长|作者|厂长|总经理|司令|指挥官|领队|主帅|冠军|{_PERSON_NOUNS})", q)))
    if kind != "number":
        return Asked(kind)
    if re.search(r"页码|第几页|哪一页|多少页", q):
        return Asked("number", frozenset({"页"}), unit="页")
    if ORDINALS_ASKED and re.search(r"第几", q):
        return Asked("number", ordinal=True)
    if _AGE_Q.search(q):
        return Asked("number", frozenset({"岁", "周岁"}))
    if _DURATION_Q.search(q):
        return Asked("number", frozenset(_UNIT_GROUPS[3]))
    for m in re.finditer(r"(?:多少|几)", q):
        rest = q[m.end():]
        if COUNTED_KINDS and re.match(r"大(?![约概小型])[\u4e00-\u9fff]", rest):
            return Asked("number", frozenset({"大"}), unit="大")  # 几大工程 is answered by 5大工程, 四大领域
        if _leading_unit(rest) is None:
            rest = rest.lstrip(_MAGNITUDE)  # 多少亿元 -> 元, but 多少千瓦 stays 千瓦
        if _MONEY_Q.match(rest) or rest.startswith("人民币"):
            return Asked("number", frozenset(_UNIT_GROUPS[1]))
        noun = re.match(r"[\u4e00-\u9fff]{2,6}?(?=[，,。？?；;、]|$|的|给|发|用|交|花|拿|收)", rest)
        if MONEY_NOUNS and noun and _MONEY_NOUN_RE.search(noun.group(0)):
            return Asked("number", frozenset(_UNIT_GROUPS[1]))  # 多少春节慰问金 is answered in 元
        unit = _leading_unit(rest)
        if unit == "个":  # the all-purpose measure word: 多少个来电 is answered in 通
            return Asked("number", unit=unit)
        if unit:
            return Asked("number", _unit_group(unit), unit=unit)
    if _RATE_Q.search(q):
        return Asked("number", frozenset(_UNIT_GROUPS[2]))
    if _MONEY_Q.search(q):
        return Asked("number", frozenset(_UNIT_GROUPS[1]))
    for pattern, units in _MEASURE_Q if MEASURES and not _NOT_A_MEASURE_Q.search(q) else ():
        if pattern.search(q):  # 主塔有多高 is answered in 米, not by 5座
            return Asked("number", units)
    return Asked("number")


#: 几大工程 asks how many kinds (5大工程, 四大领域): 大 is its measure word.
COUNTED_KINDS = True


def counted_noun(question: str) -> str | None:
    """The noun a 多少/几 question counts, after its measure word (多少个部门 -> 部门, 跑了几个省 -> 省, 几个方面 -> 方面);
    None when the question counts nothing by name. The answer's figure is the one followed by it (10部门, 21个省)."""
    q = normalize(question)
    for m in re.finditer(r"多少|几(?![乎])", q):
        rest = q[m.end():]
        unit = _leading_unit(rest)
        if unit is None or unit in ("大",):
            continue
        tokens = list(jieba_pos_tokenizer().cut(rest[len(unit):len(unit) + 8]))
        noun = tokens[0].word if tokens and tokens[0].flag.startswith("n") and len(tokens[0].word) <= 4 else ""
        after = rest[len(unit):]
        if not noun and re.match(r"[\u4e00-\u9fff](?:[？?，,、。]|$)", after):
            noun = after[0]  # 几个村？
        if noun:
            return noun
    return None


#: 第几回 / 第几名 asks for an ordinal (第三次, 第十三名): ``typed_spans`` reads 第 + numeral (+ measure word).
ORDINALS_ASKED = True
_ORDINAL_ANSWER_RE = re.compile(r"第\s*[一二三四五六七八九十百零〇两\d]+\s*(?:次|届|名|位|个|回|轮|期|批|季|场|天|年|条|项|章|节|号|家|部|代)?"
                                r"|首(?:次|届|位|个|批|期|轮)")
#: What the counted thing of a money question ends in (慰问金, 保证金, 学费, 罚款) says the answer is in 元.
MONEY_NOUNS = True
_MONEY_NOUN_RE = re.compile(r"(?:[^基黄现]金|费|款|钱|薪|租)$")


#: What a height, length, weight or area is measured in: 多高 / 重量 asks for 米 / 吨, not any figure.
MEASURES = True
_LENGTHS = frozenset("米 千米 公里 厘米 毫米 英尺 海里 m km cm mm".split())
#: ... unless something else is high (气温有多高, 价格多高, 占比有多高, 排名多高).
_NOT_A_MEASURE_Q = re.compile(r"温|价|费|比|率|指数|水平|分数|成绩|排名|频率|声")
_MEASURE_Q = [
    (re.compile(r"多高|多深|多远|多宽|(?:高度|深度)(?!重视|评价|关注|肯定|赞扬|警惕|契合|融合|一致|认可|参与|合作)"
                r"|宽度|距离|海拔|身高|长度"), _LENGTHS),
    (re.compile(r"(?<!占比有)多长(?!时间)"), _LENGTHS),
    (re.compile(r"多重|重量|体重|净重|多少斤|多少公斤"), frozenset("吨 千克 公斤 克 斤 万吨 亿吨 kg".split())),
    (re.compile(r"面积|占地多大|多大面积"), frozenset("平方米 平方公里 公顷 亩 平方千米 万亩".split())),
]


#: A unit that begins a dictionary word is that word only where jieba cuts it so in context: 多少人参与
#: counts 人 (人 + 参与, though the dictionary has 人参); 多少款物 asks for no unit (款物).
COUNT_PARSE = True


def _leading_unit(text: str) -> str | None:
    """The measure word or unit ``text`` starts with (个坐席 -> 个, 毫米 -> 毫米, 款物 -> None)."""
    segmenter = jieba_tokenizer()
    tagger = jieba_pos_tokenizer()

    first = next(iter(tagger.cut(text[:6])), None)
    if first is not None and first.flag == "q" and len(first.word) <= 3:
        return first.word  # a unit jieba knows (毫米, 公顷)
    unit = next((u for u in _UNITS if text.startswith(u)), None)
    if unit is None:
        return None
    # 款物 and 人民币 are nouns, not 款 + 物 or 人 + 民币: the unit must not begin a dictionary word that
    # jieba cuts in context too (多少人参与 is 人 + 参与, not 人参).
    first = segmenter.lcut(text[:6])[0] if COUNT_PARSE and text else None
    for extra in (1, 2):
        word = text[:len(unit) + extra]
        if len(word) > len(unit) and word not in _UNITS and segmenter.FREQ.get(word, 0) >= 5 \
                and (first is None or len(first) > len(unit)):
            return None
    return unit


#: A duration question (多长时间) is answered by 4个多月 and 两个半小时 too, not only by 4个月 (see ``typed_spans``).
DURATION_FRACTIONS = True
_DURATION_UNITS = frozenset({"小时", "个月", "天"})

#: A number in any unit (or a percentage).
_ANY_UNIT_RE = re.compile(
    rf"{_NUMBER}\s*(?:{'|'.join(map(re.escape, [u for u in _UNITS if u not in _UNIT_GROUPS[3] and u != '周岁']))}|%|％)(?!月)")
#: A figure in 万 or 亿 before the noun it counts (1.4亿农业转移人口落户城镇) is a count without a measure word.
BARE_MAGNITUDES = True
_BARE_MAGNITUDE_RE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*(?:万|亿)(?![\d万亿元])(?=[\u4e00-\u9fff])")


def _unit_group(unit: str) -> frozenset[str]:
    for group in _UNIT_GROUPS:
        if unit in group:
            return frozenset(group)
    return frozenset({unit})


#: Colloquial question words and their written forms (啥时候 ~ 什么时候): user-worded questions say them.
_COLLOQUIAL_WH = (("啥时候", "什么时候"), ("啥时", "什么时候"), ("为啥", "为什么"), ("干啥", "做什么"), ("啥", "什么"),
                  ("咋样", "怎么样"), ("咋", "怎么"))
#: ``standard_wording`` applies them.
COLLOQUIAL_WORDS = True
#: 几 after a pointing word is no question word but "these few" (这几个工种, 那几年, 近几年, 前几天): ``standard_wording``
#: writes it 些 (这些工种, 近些年, 近些月), so that 这几年一共筹了多少钱 asks for money, not for years, and 这几个工种有多少名职工
#: counts 职工, not 工种. (提前几天 still asks how many days.)
POINTING_FEW = True
_POINTING_FEW_RE = re.compile(r"(?<=[这那])几个?(?=[\u4e00-\u9fff])|(?<=[近头])几个?(?=年|天|月|周)|(?<=(?<!提)前)几个?(?=年|天|月|周)")


def standard_wording(question: str) -> str:
    """``question`` with its colloquial question words written out (普里戈任啥时候跟普京见的面 -> 什么时候) and a
    pointing 几 as 些 (这几年 -> 这些年, see ``POINTING_FEW``), so that what it asks for is read as from the written form."""
    if not COLLOQUIAL_WORDS:
        return question
    for said, written in _COLLOQUIAL_WH:
        question = question.replace(said, written)
    return _POINTING_FEW_RE.sub("些", question) if POINTING_FEW else question


#: A question for the first and last day of something (从几号办到几号, 哪天到哪天) ...
_DATE_WH = r"(?:几月几[日号]|几号|几日|哪一?天|什么时候|何时)"
_RANGE_Q = re.compile(rf"{_DATE_WH}[^，,。？?；;]{{0,8}}?(?:到|至|持续到|延续到){_DATE_WH}")
#: ... is answered by a range of dates (7月10日持续至7月28日, 1月22日至2月4日, 7月10日-28日).
_DATE_RANGE_RE = re.compile(
    r"(?:\d{4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*[日号](?:\s*\d{1,2}\s*[时点])?[^，,。；;！!？?、]{0,6}?(?:至|到|-|—|－|~|～)"
    r"\s*(?:\d{4}\s*年\s*)?(?:\d{1,2}\s*月\s*)?\d{1,2}\s*[日号]")


def asks_date_range(question: str) -> bool:
    """Whether ``question`` asks from when to when (从几号办到几号)."""
    return bool(_RANGE_Q.search(normalize(question)))


def date_range_spans(sentence: str) -> list[tuple[int, int]]:
    """The ranges of days ``sentence`` states (从7月10日持续至7月28日 -> 7月10日持续至7月28日)."""
    return [m.span() for m in _DATE_RANGE_RE.finditer(sentence)]


def answer_type(question: str) -> str | None:
    """What the question asks for: "date", "number", "place", "person", "org" or None."""
    if _DATE_Q.search(question):
        return "date"
    if re.search(r"哪几|哪些", question) and not _PLACE_Q.search(question) and not _ORG_Q.search(question):
        return None  # a list of things (哪几类), not a count
    if re.search(r"(?:多少|几)[^？?，,。]*?什么(?!时候|地方|时间)", question):
        return None  # 利用抵达后的几天时间做什么: the last question word is what is asked
    if _ORG_Q.search(question):
        return "org"
    if _PLACE_Q.search(question):
        return "place"
    if _PERSON_Q.search(question):
        return "person"
    if _NUMBER_Q.search(question) and not (WHAT_KIND_FIRST and _WHAT_KIND_Q.search(question)
                                          and not re.search(r"多少|几", question)):
        return "number"
    return None


#: A question that asks 什么 + a noun (呈现什么趋势) asks for that kind of thing, also when it names a
#: measure (论文数量呈现什么趋势 asks for a trend, not a count).
WHAT_KIND_FIRST = True
_WHAT_KIND_Q = re.compile(r"什么(?!时候|地方|时间)[\u4e00-\u9fff]")


_ONE_OF_RE = re.compile(r"一\s*[\u4e00-\u9fff]")


def typed_spans(sentence: str, asked: Asked | str | None, tagged: bool = True) -> list[tuple[int, int]]:
    """Spans of ``sentence`` that are what ``asked`` asks for (numbers in its units, dates, names ...).
    ``tagged=False`` leaves out the names only jieba's tagger finds (cheaper)."""
    if isinstance(asked, str) or asked is None:
        asked = Asked(asked)
    kind = asked.kind
    if kind is None:
        return []
    if kind == "number":
        if asked.ordinal:
            return [m.span() for m in _ORDINAL_ANSWER_RE.finditer(sentence)]
        if asked.units == {"大"}:  # 5大工程: the count and what it counts
            pattern = re.compile(rf"{_NUMBER}\s*大[\u4e00-\u9fff]{{2}}")
        elif asked.units:
            units = "|".join(re.escape(u) for u in sorted(asked.units | {"%"} if "%" in asked.units else asked.units,
                                                           key=len, reverse=True))
            # A duration of half or more than a whole unit puts 个 and 多/半 between its figure and unit (4个多月,
            # 两个半小时).
            between = r"(?:个)?(?:多|半)?" if DURATION_FRACTIONS and _DURATION_UNITS <= asked.units else ""
            pattern = re.compile(rf"{_NUMBER}\s*{between}(?:{units})(?!月)")
        else:
            pattern = _ANY_UNIT_RE
        dates = [m.span() for m in _WHEN_SPAN_RE.finditer(sentence)]
        # 第二届 is an ordinal, not a count of 届.
        found = list(pattern.finditer(sentence))
        if BARE_MAGNITUDES and not asked.units:
            found += [m for m in _BARE_MAGNITUDE_RE.finditer(sentence)
                      if not any(f.start() <= m.start() < f.end() for f in found)]
        spans = [m.span() for m in found if not any(ds <= m.start() < de for ds, de in dates)
                 and not sentence[max(0, m.start() - 1):m.start()] == "第"
                 # Without an asked unit, 一 and a measure word is an article (一场盛会, 一起经历), not a count.
                 and (asked.units or asked.unit or not _ONE_OF_RE.fullmatch(sentence[m.start():m.end()]))]
        if "页" in asked.units:  # a table-of-contents line ends in its bare page number
            spans += [m.span(1) for m in re.finditer(r"(\d{1,4})\s*$", sentence)]
        return spans
    if kind == "date":
        pattern = {"year": _YEAR_SPAN_RE, "month": _MONTH_SPAN_RE, "day": _DAY_SPAN_RE,
                   "time": _CLOCK_SPAN_RE}.get(asked.date, _WHEN_SPAN_RE)
        return [m.span() for m in pattern.finditer(sentence)]
    if kind == "place":
        if asked.geo:  # 哪个城市: a place name, not a venue or a body
            spans = suffix_spans(sentence, _GEO_SUFFIXES) + _tagged_spans(sentence, ("ns",), tagged)
        else:
            spans = [m.span() for m in _PLACE_RE.finditer(sentence)] + suffix_spans(sentence, _PLACE_SUFFIXES)
            spans += suffix_spans(sentence, _ORG_SUFFIXES) + _tagged_spans(sentence, ("ns", "nt"), tagged)
        return _unquoted(sentence, named_only(sentence, spans))
    if kind == "org":
        return _unquoted(sentence, named_only(sentence, suffix_spans(sentence, _ORG_SUFFIXES)
                                          + _tagged_spans(sentence, ("nt",), tagged)))
    if kind == "person":
        tagged_people = _tagged_spans(sentence, ("nr", "nrfg"), tagged)
        people = ([m.span() for m in _FOREIGN_NAME_RE.finditer(sentence)] + tagged_people
                  + ([m.span() for m in _LATIN_NAME_RE.finditer(sentence)] if LATIN_PEOPLE else [])
                  + [m.span(1) for m in _TITLED_NAME_RE.finditer(sentence)])
        if WHOLE_NAMES:
            people = _whole_names(sentence, people, tagged_people)
        if WORD_ENDS_ARE_NO_NAMES:
            people = [span for span in people if not _ends_a_word(sentence, span[0])]
        if asked.role:  # 校长叫什么名字: a person's name (jieba tags many two-character words as names: 荆楚)
            return _unquoted(sentence, [(s, e) for s, e in people if e - s != 2 or sentence[s] in _SURNAMES
                                        or (s, e) not in tagged_people])
        # 谁 is often an organisation (谁认为… -> 韩国超导低温学会); 叫什么名字 a quoted name.
        return _unquoted(sentence, people + named_only(
            sentence, suffix_spans(sentence, _ORG_SUFFIXES) + _tagged_spans(sentence, ("nt",), tagged))) + [
            m.span() for m in _QUOTED_RE.finditer(sentence)]
    return []


#: People's names read whole: a transliterated name starts after the title before it (州教育工会主席艾力江·阿吉, not
#: 席艾力江·阿吉, which ``WORD_ENDS_ARE_NO_NAMES`` drops), and a surname-led two-character name jieba cut short takes the
#: one-character noun after it (朱家|成, 胡珊|珊, 陈滢|竹) or a surname before it (高|凤林).
WHOLE_NAMES = True
_NAME_AFTER_RE = re.compile(r"[\u4e00-\u9fff]")


def _whole_names(sentence: str, people: list[tuple[int, int]], tagged: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for s, e in people:
        dot = next((k for k in range(s, e) if sentence[k] in "·•・"), None)
        if dot is not None:
            while dot - s > 2 and _ends_a_word(sentence, s):
                s += 1
        elif (s, e) in tagged and e - s == 2:
            if sentence[s] in _SURNAMES:
                rest = list(jieba_pos_tokenizer().cut(sentence[e:e + 6]))
                if (len(rest) >= 2 and len(rest[0].word) == 1 and rest[0].flag in ("n", "ng", "nr", "nrfg")
                        and not rest[1].flag.startswith(("n", "m", "q"))):
                    e += 1
            elif s > 0 and sentence[s - 1] in _SURNAMES and (s < 2 or not _NAME_AFTER_RE.match(sentence[s - 2])
                                                             or _ends_a_word(sentence, s - 2)):
                s -= 1
        out.append((s, e))
    return out


#: A "name" jieba tags whose first character ends the word before it (团所作 of 主席团所作, 团会议 of 主席团会议) is
#: the rest of a sentence cut wrongly, not a person.
WORD_ENDS_ARE_NO_NAMES = True


def _ends_a_word(sentence: str, start: int) -> bool:
    """Whether ``sentence[start]`` ends a word of two or three characters that begins before it (主席团)."""
    freq = jieba_tokenizer().FREQ
    return any(freq.get(sentence[start - k:start + 1], 0) >= 50 for k in (1, 2) if start - k >= 0)


#: Suffixes of place names a 哪个城市/省/国家 question is answered with.
_GEO_SUFFIXES = re.compile(r"(?:省|市|县|区|镇|乡|村|州|旗|盟|岛)(?![\u4e00-\u9fff]?[长委级政])")
#: A span that only points at a place or body (同一城市, 该市, 各级工会, 全省) names none:
#: a determiner followed by a generic noun (本溪市 and 全州县 are names).
_DETERMINER_RE = re.compile(
    r"(?:同一|该|本|这|那|各级|各|其|此|每|某|全|我|上述|当地|所在)(?:个|家|所|座)?"
    r"(?:城市|市|省|县|区|地|地区|国|国家|镇|乡|村|州|港|岛|公司|单位|企业|部门|工会|机构|组织|学校|医院|银行|集团"
    r"|中心|平台|项目|协会|委员会|政府|局|厅|部|办|基地|园区|场馆|会场|社区|街道|地方)")


def _unquoted(sentence: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` without those inside a quoted name (红旗 of “红旗杯”班组长大赛 is no place)."""
    quotes = [m.span() for m in _QUOTED_RE.finditer(sentence)]
    return [(s, e) for s, e in spans if not any(qs < s and e <= qe and (s, e) != (qs + 1, qe - 1) for qs, qe in quotes)]


def named_only(sentence: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` without those that only point at a place or body (see ``_DETERMINER_RE``)."""
    return [(s, e) for s, e in spans
            if not _DETERMINER_RE.fullmatch(normalize(sentence[s:e])) and normalize(sentence[s:e]) not in _GENERIC]


def _tagged_spans(sentence: str, flags: tuple[str, ...], tagged: bool = True) -> list[tuple[int, int]]:
    if not tagged:
        return []
    tagger = jieba_pos_tokenizer()  # heavy-ish; only for person/place/organisation questions

    spans, pos = [], 0
    for pair in tagger.cut(sentence):
        if pair.flag in flags and len(pair.word) >= 2:
            spans.append((pos, pos + len(pair.word)))
        pos += len(pair.word)
    return spans


#: Words that only say what kind of answer is wanted; they are not the asked attribute.
_TYPE_WORDS = {"名字", "姓名", "时间", "时候", "日期", "比例", "数量", "人数", "金额", "钱", "年纪", "年龄", "地方", "城市",
               "面积", "长度", "高度", "重量", "体积", "价格", "价钱", "费用", "数额", "总额", "百分之", "页码", "多长", "多大",
               "国家", "单位", "公司", "机构", "人", "哪些", "哪个", "一天", "一年", "具体", "分别", "大概", "大约", "左右",
               "多少", "什么", "哪里", "情况", "方面", "内容", "一共", "总共", "共", "主要", "现在", "目前", "现任", "当时",
               "先生", "女士"}
_WH_RE = re.compile(r"多少|几|谁|什么|哪|何时|何地|何人|多大|多高|多长|多久|多重|如何|怎样|怎么")
_FILLER_RE = re.compile(r"(?:是|有|为|的|了|叫|一共|总共|约|达|达到|在|将|到底|究竟|分别|各|都|还|又|能|可以|要|需要|设有|拥有)+$")


def focus_terms(question: str) -> list[str]:
    """The asked attribute: the words next to the question word (装机容量是多少 -> 装机容量,
    多少个坐席 -> 坐席, 谁是代表团的队长 -> 队长), without words that only name the answer type."""
    return [term for term, _ in _focus(question)]


def _focus(question: str) -> list[tuple[str, bool]]:
    """``focus_terms`` with, for each, whether it names the asked attribute: the words
    counted by 多少个X (多少家国家级的示范职工书屋 -> 示范, 职工, 书屋), the role in 谁是X的Y, or
    the words right before the question word (装机容量是多少, 职工满意度是多少). Decided by
    position only: jieba's part-of-speech tags are too unreliable here (选手/v, 满意度/ns)."""
    segmenter = jieba_tokenizer()

    q = normalize(question)
    names = {e.lower() for e in question_entities(question)}
    out: dict[str, bool] = {}
    for clause in re.split(r"[，,？?。；;！!：:]", q):
        m = _WH_RE.search(clause)
        if not m:
            continue
        after = clause[m.end():]
        if m.group(0) == "哪":
            after = after.lstrip("个些位家种年天一")
        elif _leading_unit(after) is None:
            after = after.lstrip(_MAGNITUDE)
        unit = _leading_unit(after)
        if unit:
            after = after[len(unit):]
        # 多少个坐席: the counted words are the attribute; 哪位球员: the words after 哪 are the
        # answer's category, not an attribute of the subject.
        counted = bool(unit) and m.group(0) != "哪"
        if after.startswith("是") and "的" in after:  # 谁是X的Y -> Y
            after, counted = after.split("的")[-1], True
        after = re.sub(r"^(?:是|为|叫|有|的)+", "", _FILLER_RE.sub("", after))
        phrase = _words(_modified(segmenter.lcut(after.split("的")[-1] if counted else after)))[:3]
        for word in phrase:
            out[word] = out.get(word, False) or counted
        if phrase and (counted or m.group(0) == "哪"):
            continue
        before = _FILLER_RE.sub("", clause[:m.start()]).split("的")[-1]
        if ORDINALS_ASKED and m.group(0) == "几" and before.endswith("第"):
            # 排名第几: the attribute is 排名, not 排名第; 项目里排第几: 排 only says a rank is asked (jieba: 里排)
            before = re.sub(r"(?<!名)(?:排在|排)$", "", before[:-1])
        tokens = segmenter.lcut(before)
        for word in _words(_modified(tokens) if MODIFIED_BEFORE else tokens)[-2:]:
            out[word] = out.get(word, False) or not phrase
    # A role is asked, not a name, also when written in Latin letters (Instacart的CEO叫什么名字).
    return [(w, attr) for w, attr in out.items()
            if not any(w != o and w in o for o in out)
            and (w.lower() not in names or (LATIN_PEOPLE and _ROLE_RE.fullmatch(w)))]


#: The words before the question word keep a one-character modifier too (选出的副主席兼秘书长是谁 asks for
#: the 副主席, which a sentence naming the 主席 who presided does not state).
MODIFIED_BEFORE = True


def _modified(tokens: list[str]) -> list[str]:
    """``tokens`` with a one-character modifier joined to the noun it changes (女 + 代表 -> 女代表)."""
    out: list[str] = []
    for token in tokens:
        if out and out[-1] in _MODIFIERS and len(token) >= 2:
            out[-1] += token
        else:
            out.append(token)
    return out


def _words(tokens) -> list[str]:
    """The content words of a run of tokens (question words, particles, numbers dropped)."""
    return [t for t in tokens if _content(t)]


def _content(word: str) -> bool:
    word = word.strip()
    return (len(word) >= 2 and word not in _TYPE_WORDS and word not in QUESTION_WORDS
            and not PUNCT_RE.fullmatch(word) and not _WH_RE.match(word) and not _NUM_RE.fullmatch(word))


#: Attribute nouns too general to be stated next to their value (问题, 方式): an answer
#: that explains them rarely repeats the word, so they are no evidence either way.
_ABSTRACT = set(
    "问题 方式 信息 目标 情况 影响 趋势 理由 作物 东西 工具 措施 方面 内容 原因 主题 作用 意义 特点 举措 领域 方向 手段 "
    "途径 办法 方法 政策 要求 任务 重点 变化 结果 效果 成效 成果 活动 项目 工作 事件 行动 服务 数量 规模 水平 程度 情形 "
    "原则 形式 类型 种类 技术 设施 产品 方案 计划 机制 模式 标准 条件 能力 作品 功能 优势 地位 角色 部分 名称 看法 观点 "
    "态度 建议 做法 经验 表现 安排 进展 状况 背景 过程 特色 亮点 挑战 困难 风险 前景 现象 原理 理念 精神 价值 贡献".split())


#: Verbs that carry no attribute of their own (变成多少, 在于什么, 加起来有多少).
_LIGHT_VERBS = set(
    "起来 加起来 开始 变成 成为 在于 出现 产生 进行 开展 实现 属于 包括 采用 获得 提供 达到 表示 认为 需要 做 "
    "发生 形成 带来 推出 举行 举办 召开 完成 参加 参与 上去 下来 出来 用于 用来 涉及 针对 体现".split())


#: Nouns a measure word already says (多少篇文章: 篇 counts articles), so text need not repeat them.
_IMPLIED_NOUNS = {"篇": {"文章", "稿件", "论文", "报道"}, "名": {"人", "人员"}, "位": {"人", "人员"},
                  "首": {"歌", "歌曲", "诗"}, "部": {"作品", "电影"}}


def attribute_terms(question: str) -> list[str]:
    """The specific nouns among ``focus_terms`` (坐席, 董事长, 装机容量): an answer states them
    next to its value, so a passage that never names them does not hold the answer. A date
    question has none: what it dates is an event (启用, 召开), stated anywhere in the sentence."""
    q = normalize(question)
    asked = asked_for(q)
    if asked.kind == "date" or "页" in asked.units or _DURATION_Q.search(q) or _AGE_Q.search(q):
        return []
    if MEASURES and asked.units and any(asked.units == units and p.search(q) for p, units in _MEASURE_Q):
        return []  # 钢箱梁有多重: the unit says what is asked; 钢箱梁 is what it is asked of
    implied = _IMPLIED_NOUNS.get(asked.unit or "", set())
    terms = [term for term, attribute in _focus(question)
             if attribute and term not in _ABSTRACT and term not in _GENERIC and term not in _LIGHT_VERBS
             and term not in implied and not (TIME_WORDS_NAME_NO_ATTRIBUTE and is_time_word(term))]
    return [t for t in terms if not _is_predicate(t, q)] if PREDICATES_DROPPED else terms


#: A word that says when relative to the asker's now, or only points (去年, 今年底, 那会儿, 原先, 这边) is no asked
#: attribute and no topic: 去年服务了多少人次 asks for 服务 in the year before, which the stating sentence dates by its
#: article (or by 2024年), never by repeating 去年; 广东这边带队的是谁 asks who led 广东's group, which no sentence calls
#: 这边. A period of the report itself (上半年, 中期, 全年) is named by the text and stays. (The time itself is the
#: relations' concern: ``relations`` compares the asked period.)
TIME_WORDS_NAME_NO_ATTRIBUTE = True
_DEICTIC_TIME_RE = re.compile(r"[今去明前后当近本上下昨](?:年|月|天|日|周|星期)(?:底|初|末|中|内)?|年内|月内"
                              r"|[这那][会阵](?:儿|子)?|[这那]时(?:候)?|[这那](?:天|年|月|日)|[这那]段(?:时间|日子)|最近|近来|近期|如今|眼下|当下"
                              r"|原先|原来|当初|起初|起先|早先|先前"
                              # and places said by pointing (这边, 那里); not 我国, 本市: they name a place
                              r"|[这那](?:边|里|儿|头|块)")


def is_time_word(word: str) -> bool:
    """Whether ``word`` says when relative to the asker's now (去年, 今年底, 近日, 那会儿, 原先) or only points at a place
    (这边, 那里): see ``TIME_WORDS_NAME_NO_ATTRIBUTE``."""
    return bool(_DEICTIC_TIME_RE.fullmatch(word))


#: ``attribute_terms`` leaves out predicate words of user-worded questions (投了, 都行, 能找到): what they
#: say is how the question is put, not what is asked, and no stating sentence repeats them.
PREDICATES_DROPPED = True

#: Tags of function words: particles, conjunctions, prepositions, modal particles (and "e", interjections, below; not "eng").
_FUNCTION_TAGS = ("u", "c", "p", "y")
#: Modal verbs: a verb right after one is the question's predicate (就能找到, 可以买到, 会加剧).
_MODALS = {"能", "能够", "可以", "可", "会", "要", "得以"}
#: An adverb joined to a modal or copula, which jieba may keep as one word (都行/n, 就能, 也是).
_ADVERB_MODAL_RE = re.compile(r"[都就才也还便即又再均皆][行能会可好是有要得]")
#: A modal joined to a one-character verb, which jieba keeps as one word (得交, 要交, 能拿, 得花).
_MODAL_VERB_RE = re.compile(r"[得要能会该需][交付花拿给领买卖缴填办用等走跑吃住]")


def _is_predicate(term: str, question: str) -> bool:
    """Whether ``term`` is a predicate of ``question`` rather than a word naming an attribute: a word with
    a function word in it (投了, 开着, 可以), an adverb joined to a modal (都行), or a verb right after a
    modal verb (能找到, 会加剧). Not decided by the word's own tag alone: jieba tags real attribute
    words as verbs (坐席/v, 判赔/v, 上涨/v), which stay."""
    if _ADVERB_MODAL_RE.fullmatch(term) or _MODAL_VERB_RE.fullmatch(term):
        return True
    tagger = jieba_pos_tokenizer()
    if any(pair.flag.startswith(_FUNCTION_TAGS) or pair.flag == "e" for pair in tagger.cut(term)):
        return True
    pairs = list(tagger.cut(question))
    for i, pair in enumerate(pairs):
        if pair.word == term and pair.flag == "v" and i > 0:
            before = pairs[i - 1]
            if before.word in _MODALS:
                return True
    return False


def frame_terms(question: str, abstract: bool = False) -> list[str]:
    """The words around the question word that frame the answer (阻碍, 正常运行 of 阻碍了什么的正常运行; 取得
    of 党的建设取得了什么): ``focus_terms``, without abstract nouns (作品, 主题, 目标: a stating sentence rarely
    repeats them) unless ``abstract``; for a why-question also the words a cause follows (因为, 由于)."""
    terms = [t for t in focus_terms(question) if abstract or (t not in _ABSTRACT and t not in _GENERIC)]
    if WHY_FRAME and re.search(r"为什么|为何|原因", normalize(question)):
        terms += ["因为", "由于"]  # 认为LK-99不是超导体，因为……
    return terms


#: A why-question's frame includes the words a cause follows (因为, 由于).
WHY_FRAME = True


#: A question that asks for a thing by its kind: 举行了什么军事演习, 主题是什么, 哪种艺术形式.
_WHAT_RE = re.compile(r"(?<!为)什么(?:样)?(?:的)?|哪[种类项个些](?:的)?")


def asked_nouns(question: str) -> list[str]:
    """What a 什么-question asks for, in its own words: the noun right after the question word
    (举行了什么军事演习 -> 军事演习, 什么样的音乐风格 -> 音乐风格, 哪种艺术形式 -> 艺术形式), or when
    nothing follows it the word right before it (大会的主题是什么 -> 主题, 取得了什么 -> 取得).
    Unlike ``attribute_terms`` abstract nouns count (主题, 机制, 优惠): the sentence that states
    the answer names them (大会主题为“……”). Empty for other questions."""
    if asked_for(question).kind is not None:
        return []
    segmenter = jieba_tokenizer()
    tagger = jieba_pos_tokenizer()
    q = normalize(question)
    out: list[str] = []
    for clause in re.split(r"[，,？?。；;！!：:]", q):
        m = _WH_RE.search(clause)
        if not m:
            continue
        what = _WHAT_RE.match(clause, m.start())
        if not what:
            continue
        noun = ""
        for pair in list(tagger.cut(clause[what.end():]))[:2]:  # nouns only: 机制 of 什么机制激发…
            if not pair.flag.startswith(("n", "vn")) or len(noun) + len(pair.word) > 4:
                break
            noun += pair.word
        if len(noun) >= 2 and _content(noun):
            out.append(noun)
            continue
        if PUNCT_RE.sub("", clause[what.end():]).strip("的了呢吗"):
            continue  # something other than a noun follows (什么安全防护机制): not guessed
        before = [t for t in _words(segmenter.lcut(_FILLER_RE.sub("", clause[:m.start()]).split("的")[-1]))
                  if t not in _LIGHT_VERBS]
        out += before[-1:]
    return list(dict.fromkeys(out))


#: What may stand between the asked noun and the quoted name that names it: 主题为“……”,
#: 以“……”为主题, 名为“……”的军事演习, 简称“……”.
_NOUN_THEN_NAME = {"", "为", "是", "叫", "名为", "称为", "为：", "是：", "：", ":"}
_NAME_THEN_NOUN = {"", "的", "为", "这一", "这个"}


def named_spans(sentence: str, nouns: Sequence[str], question: str) -> list[tuple[int, int]]:
    """Quoted names in ``sentence`` (“通用智能，人机共生”, 《天鹅湖》) that name what a 什么-question asks
    for (``nouns``, see ``asked_nouns``): 主题为“……”, 以“……”为主题, 名为“……”的军事演习, or a name that
    ends in the noun (“国家互联网基础资源管理系统”). A quote that the noun follows with a word or two
    between them is the start of the name (“抱团结对”带新机制): the span runs to the noun's end.
    A name the question already says is none."""
    if not nouns:
        return []
    q = normalize(question)
    positions = [(p, p + len(key), key == noun) for noun in nouns for key in attribute_keys(noun)
                 for p in term_positions(sentence, key)]
    out = []
    for m in _SHORT_QUOTED_RE.finditer(sentence):
        s, e = m.span()
        if normalize(m.group(0)[1:-1]) in q:
            continue
        # A long quote is a name only when the noun follows it (“……示范企业”荣誉称号): before it, or
        # ending in it, it is more often what someone said (“……拦截了这枚导弹”).
        short = e - s - 2 <= _NAME_CHARS
        for ps, pe, full in positions:
            if short and s < ps and pe == e - 1:  # …管理系统”
                out.append((s, e))
                break
            if short and pe <= s and sentence[pe:s] in _NOUN_THEN_NAME:
                out.append((s, e))
                break
            if ps >= e:
                gap = sentence[e:ps]
                if gap in _NAME_THEN_NOUN:
                    out.append((s, e))
                    break
                if full and len(gap) <= 3 and not _CLAUSE_STOP_RE.search(gap) and "的" not in gap:
                    out.append((s, pe))  # “抱团结对”带新机制, “石”志不渝志愿服务队
                    break
    return out


#: A 哪-question that names the kind of thing it asks for (哪座环形山, 哪个大会, 哪家出版社): the measure word.
_WHICH_RE = re.compile(r"哪[个座家所部项条支位种类只名间届一]?")


def head_noun(question: str) -> str | None:
    """The noun a 哪-question asks for by its kind, when names of that kind end in it (哪座环形山 -> 环形山,
    哪个大会 -> 大会, 哪家出版社 -> 出版社): the answer is a name ending in it (塞曼环形山, 中央文献出版社).
    None for words that only say the answer's type (城市, 国家, 单位, 公司) and for one character (镇)."""
    tagger = jieba_pos_tokenizer()
    q = normalize(question)
    for m in _WHICH_RE.finditer(q):
        if q[m.end():m.end() + 1] in ("些", "里", "儿", "天", "年", "方", "样"):
            continue
        noun = ""
        window = q[m.end():m.end() + 8]
        for pair in list(tagger.cut(window))[:3]:
            if not pair.flag.startswith(("n", "vn")) or len(noun) + len(pair.word) > 6:
                break
            if noun and QUOTED_HEADS and re.match(r"的[？?]?$", window[len(noun) + len(pair.word):] or "的"):
                break  # 在哪个平台落地的: 落地 is the verb, however jieba tags it
            noun += pair.word
        if len(noun) >= 2 and noun not in _TYPE_WORDS and not _WH_RE.search(noun):
            return noun
    return None


def head_spans(sentence: str, noun: str | None, question: str) -> list[tuple[int, int]]:
    """Names in ``sentence`` that end in ``noun`` (see ``head_noun``): the nouns right before it, read
    leftwards, holding a proper name (塞曼环形山, 中国石油大学, 川投简阳气电项目), not a thing of that
    kind only (资格股票, 本届大会), nor one the question says already."""
    if not noun:
        return []
    tagger = jieba_pos_tokenizer()
    q = normalize(question)
    out = []
    if QUOTED_HEADS:
        for m in re.finditer(re.escape(noun), sentence):
            quoted = _QUOTED_HEAD_RE.search(sentence[:m.start()])
            if quoted and normalize(quoted.group(1)) not in q:
                out.append((quoted.start(), m.end()))
    for s, e in suffix_spans(sentence, re.compile(re.escape(noun)), longest=16):
        start, proper, pos = e, False, s
        ends = {s}
        for pair in tagger.cut(sentence[s:e + 4]):
            ends.add(max(ends) + len(pair.word))
        if e not in ends:
            continue  # 交易 of 上海证券交易所 is no name of a 交易
        tokens = []
        for pair in tagger.cut(sentence[s:e]):
            tokens.append((pos, pos + len(pair.word), pair.flag))
            pos += len(pair.word)
        def kept(k: int) -> bool:
            ts, te, flag = tokens[k]
            return (te > e - len(noun) or flag.startswith(_NAME_FLAGS) or flag in ("n", "nz")
                    or (flag == "m" and sentence[ts:te].isdigit()))

        k = len(tokens) - 1
        while k >= 0:
            # One character jieba split off a name (川投/简/阳气电项目) is kept when a proper name precedes it.
            if not kept(k) and not (tokens[k][1] - tokens[k][0] == 1 and k > 0 and kept(k - 1)
                                    and tokens[k - 1][2].startswith(_NAME_FLAGS)):
                break
            start = tokens[k][0]
            proper = proper or tokens[k][2].startswith(_NAME_FLAGS)
            k -= 1
        if start < e - len(noun) and proper and normalize(sentence[start:e]) not in q \
                and not any(qs < e <= qe for qs, qe in out):
            out.append((start, e))
    return out


#: A quoted name right before the noun a 哪-question asks for names one of its kind: 落地“饿了么”平台 for 在哪个平台,
#: 在锦江区“U善里”工会驿站 for 在哪个驿站 (up to four characters of the noun's own words between).
QUOTED_HEADS = True
_QUOTED_HEAD_RE = re.compile(r"[“「《]([^”」》]{1,20})[”」》][\u4e00-\u9fff]{0,4}$")


#: jieba's tags for proper names (people, places, bodies, abbreviations, Latin words).
_NAME_FLAGS = ("nr", "ns", "nt", "j", "eng")


_CLAUSE_STOP_RE = re.compile(r"[，,。；;！!？?：:“”《》]")
#: Quoted names, one character and long titles included (“石”志不渝志愿服务队, “2023年港澳台青年学生实习计划示范企业”).
_SHORT_QUOTED_RE = re.compile(r"“[^”]{1,30}”|《[^》]{1,30}》|「[^」]{1,30}」")
#: The longest quote that counts as a name wherever the noun stands.
_NAME_CHARS = 16


#: (The first of the pair holds no 的: 个人缴费基数的下限和上限 pairs 下限 and 上限, each of 个人缴费基数.)
_SPLIT_PAIR_RE = re.compile(
    r"(?P<a>(?:\d{4}年|[\u4e00-\u7683\u7685-\u9fff]{2,6}?))(?:和|与|及|、)(?P<b>(?:\d{4}年|[\u4e00-\u9fff]{2,6}?))"
    r"(?P<mid>的[\u4e00-\u9fff]{1,6}?)?(?P<rest>(?:各|分别)[^，。？?]*?(?:多少|几|什么|哪)[^，。？?]*)")


#: 国有企业和外资企业的出口额分别下降了多少 asks one value of each member (the attribute after the pair).
PAIRS_OF_AN_ATTRIBUTE = True


def question_parts(question: str) -> list[str]:
    """The sub-questions of a multi-part question, each standalone; ``[question]`` for a simple one.

    ``起拍价是多少？保证金要交多少？`` -> two questions; ``2023年和2024年各开展了多少…`` -> one per
    year; ``…新增多少会员，2024年又新增多少？`` -> the later clause gets the earlier one's topic.
    """
    q = question.strip()
    m = _SPLIT_PAIR_RE.search(q)
    if m and (m.group("mid") is None or PAIRS_OF_AN_ATTRIBUTE):
        head, tail = q[:m.start()], q[m.end():]
        a, b = m.group("a"), m.group("b")
        if m.group("mid") and len(a) > len(b) and not a.endswith("年"):
            # the leftmost match starts early (半年国有企业和外资企业): the pair is as long as its second member
            head, a = head + a[:len(a) - len(b)], a[len(a) - len(b):]
        mid = m.group("mid") or ""
        return [head + x + mid + m.group("rest") + tail for x in (a, b)]
    asks = list(_WH_PHRASE_RE.finditer(q)) if WH_PHRASES else []
    if len(asks) >= 2 and all(re.fullmatch(r"[、，,和及与并]?", q[a.end():b.start()]) for a, b in zip(asks, asks[1:])):
        # 于何时在何地召开, 在哪一天、由哪个平台发布: one question per asked phrase, the others left out.
        return [q[:asks[0].start()] + a.group(0) + q[asks[-1].end():] for a in asks]
    pieces = [p.strip() for p in re.split(r"(?<=[？?])|[；;]|[，,](?=[^，,]*(?:多少|几|谁|什么|哪|何时))", q)
              if p and p.strip(" ？?。")]
    asking = [p for p in pieces if _WH_RE.search(p)]
    if len(asking) < 2:
        listed = _listed_questions(q.rstrip("？?。")) if LISTED_PARTS else [q]
        if len(listed) < 2:
            return [question]
        # 创新实施几大工程、积极开展几大行动: the later questions are about what the first is about.
        # 选派了多少个蹲点组、多少名机关干部: a later count keeps the first one's words before its question word whole.
        return [listed[0] + "？"] + [(listed[0][:_WH_RE.search(listed[0]).start()] if re.match(r"多少|几", later)
                                     else _subject(listed[0])) + later + "？" for later in listed[1:]]
    # Clauses that ask nothing (工会驿站的数量，…) are the topic of every part.
    topic = "".join(p for p in pieces[:pieces.index(asking[0])] if not _WH_RE.search(p))
    if not topic and "：" in asking[0]:
        topic, asking[0] = asking[0].split("：", 1)
    parts, previous = [], ""
    for piece in asking:
        subject = ""
        # 比6月份涨了多少 compares the previous part's subject: its own date is no subject.
        compared = COMPARED_PARTS and bool(_COMPARED_RE.match(piece))
        if previous and not topic and (not question_entities(piece) or compared):
            subject = _carried_subject(previous)  # 保证金要交多少 -> 温州海关…手表 + 保证金要交多少
            if attribute_terms(piece) and not compared:  # a new attribute replaces the previous one (起拍价 -> 保证金)
                for drop in (_TYPE_WORDS, set(focus_terms(previous)[-1:]), _TYPE_WORDS):
                    term = next((t for t in sorted(drop, key=len, reverse=True)
                                 if subject.endswith(t) and len(subject) - len(t) >= 4), None)
                    if term is not None:
                        subject = subject[: -len(term)]
                subject = subject.rstrip("的")
        part = topic + subject + piece
        if not focus_terms(piece) and previous:
            part = part.rstrip("？?。") + "".join(attribute_terms(previous))
        parts.append(part.rstrip("？?。") + "？")
        previous = part
    return parts


#: Question phrases of one clause that each ask for something else (于何时 and 在何地, 在哪一天 and 由哪个平台) ...
WH_PHRASES = True
_WH_PHRASE_RE = re.compile(r"(?:是)?(?:于|在|由|从|到|被)?(?:何时|何地|哪一?天|哪一?年|哪里|哪儿|什么时候|什么地方|何处"
                           r"|哪[个家所座位][\u4e00-\u9fff]{0,4}?(?=[、，,和及与并]|[于在由从到被]|正式|召开|举办|举行|发布|编辑|主办|出版))")
#: ... and clauses after 、 that ask a question of their own (创新实施几大工程、积极开展几大行动) are parts.
LISTED_PARTS = True


def _listed_questions(piece: str) -> list[str]:
    """``piece`` cut at each 、 that ends a question and starts another with words of its own before its
    question word (创新实施几大工程、积极开展几大行动), not at the 、 of a list (直播、赛事、俱乐部收入合计是多少,
    哪些省份、哪些城市)."""
    out, start = [], 0
    for m in re.finditer("、", piece):
        left, right = piece[start:m.start()], piece[m.end():]
        if _WH_RE.search(left) and (re.match(r"[^，,、？?]{2,}?(?:多少|几|谁|什么|哪|何时)", right)
                                    or (COUNTS_LISTED and re.match(r"(?:多少|几)[\u4e00-\u9fff]", right)
                                        and re.search(r"(?:多少|几)[\u4e00-\u9fff]", left)
                                        and asked_for(left).kind == "number")):
            out.append(left)
            start = m.end()
    return out + [piece[start:]]


#: 多少个蹲点组、多少名机关干部: two counts, one part each (a list of 哪些 stays one question).
COUNTS_LISTED = True


#: A part that starts with a comparison (比6月份涨了多少, 较上年增长多少) is about the previous part's subject.
COMPARED_PARTS = True
_COMPARED_RE = re.compile(r"(?:比|较|相比|同比|环比)")


def _subject(question: str) -> str:
    """What a question is about: its text before the question word (四川工会的手机应用叫什么 -> 四川工会的手机应用)."""
    m = _WH_RE.search(question)
    text = question[:m.start()] if m else question
    return _FILLER_RE.sub("", text)


#: A later part does not carry the earlier part's own time and verb (…工作队2024年4月拿出多少钱？给村民办的培训班多长时间？:
#: the training is no 2024年4月 event, and 拿出 is not what it asks about).
PARTS_OWN_TIME = True
_TRAILING_TIME_RE = re.compile(r"(?:(?:\d{2,4}|[今去前明全上下])\s*年|[上下]半年|\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?)+"
                               r"(?P<verb>[\u4e00-\u9fff]{0,2})$")


def _carried_subject(previous: str) -> str:
    """``_subject`` of an earlier part as a later part's subject: without a time and verb that end it (2024年4月拿出),
    which date and say the earlier part's event, unless what follows the time is that part's attribute (2023年营收)."""
    subject = _subject(previous)
    m = _TRAILING_TIME_RE.search(subject) if PARTS_OWN_TIME else None
    if m is None or len(subject[:m.start()]) < 4 or (m.group("verb") and m.group("verb") in attribute_terms(previous)):
        return subject
    return subject[:m.start()].rstrip("的在于到")


def _has_subject(piece: str) -> bool:
    m = _WH_RE.search(piece)
    before = piece[:m.start()] if m else piece
    return len(PUNCT_RE.sub("", before)) >= 4


#: One-character modifiers that make a different thing of the noun they precede: 女代表 is
#: not any 代表, 副局长 not the 局长, 新会员 not all members.
_MODIFIERS = set("女男副新老前原现首正")


def mentions_term(text: str, term: str) -> bool:
    """Whether ``text`` mentions ``term``, or for a compound of 3+ characters its first or last two
    (装机容量 ~ 容量); a modified noun (女代表) only in full; see ``term_positions``."""
    return bool(term_positions(normalize(text).lower(), term.lower()))


def new_spans(sentence: str, asked: Asked, question: str, tagged: bool = True) -> list[tuple[int, int]]:
    """``typed_spans`` that say something the question does not already say."""
    q = normalize(question)
    said = [q] + (list(_numeral_forms(q)) if NUMERAL_FORMS else [])  # 百米 said, 100米 is no answer
    if POINTED_ONE_SAID:  # 这篇综述论文 says 一篇: 发表一篇系统性综述 restates it, 494篇 answers
        said += ["一" + m.group(1) for m in _POINTED_RE.finditer(q)]
    out = []
    for s, e in typed_spans(sentence, asked, tagged):
        text = normalize(sentence[s:e])
        if text and not any(text in form for form in said):
            out.append((s, e))
    return out


#: A question that points at one thing (这篇论文, 该项目) already says 一 of its measure word (一篇, 一项).
POINTED_ONE_SAID = True
_POINTED_RE = re.compile(r"[这那该此本](篇|项|个|位|名|家|种|次|件|条|座|所|届|批|期|份|部|场|台|辆)")


#: A name, ordinal or figure of the question also counts written with its numbers otherwise
#: (首届 ~ 第一届, 百米 ~ 100米, 一季度 ~ 第一季度; see ``rag.answering.thesaurus.numeral_forms``).
NUMERAL_FORMS = True


@lru_cache(maxsize=4096)
def _numeral_forms(text: str) -> tuple[str, ...]:
    from rag.answering.thesaurus import numeral_forms

    return tuple(numeral_forms(text))


def matches_type(sentence: str, kind: str | None) -> bool:
    """Whether ``sentence`` contains the kind of thing the question asks for."""
    return bool(typed_spans(sentence, Asked(kind))) if kind else False


# --- what the question is about --------------------------------------------------

_PLACE_SUFFIX_RE = re.compile(r"(?:省|市|县|区|州|盟|旗|镇|乡|村|自治区|江|河|湖|山|海|岛)$")
_PROVINCES = set(
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 "
    "四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门".split())
_ORDINAL_RE = re.compile(r"第[一二三四五六七八九十百零〇\d]+[次届期个轮批]"
                         # a session of a congress's term (十八届二次执委会议 is not 十八届三次)
                         r"|(?<![第\d一二三四五六七八九十])[一二三四五六七八九十]{1,3}届[一二三四五六七八九十]{1,2}次")
_YEAR_RE = re.compile(r"(?<!\d)\d{4}(?!\d)")
_MONTH_RE = re.compile(r"(?<![\d.])(1[0-2]|0?[1-9])\s*月(?!\d*日)")
#: Numbers that name something (the 12351 hotline, train K210, 10.5): 3+ digits or a decimal.
_CODE_RE = re.compile(r"(?<![\dA-Za-z.])(?:\d{3,}|\d+\.\d+)(?![\d.])")
_DAY_RE = re.compile(r"(?<!\d)\d{1,2}月\d{1,2}[日号]")
#: Generic words jieba tags as names that do not pin down what is asked.
_GENERIC = {"中国", "全国", "工会", "总工会", "职工", "中华", "中华全国总工会", "新时代", "省", "市", "城市", "国家", "地方",
            "政府", "公司", "部门", "单位", "机构", "地区", "全市", "全省", "全区", "当地"}


#: Quoted and titled names of a question count among its names (see ``question_entities``).
QUOTED_NAMES = True
#: So do organisations named by their suffix (see ``question_entities``): off, a question's
#: words before 平台, 银行, 品牌 are too often no name (要求网约车平台, 暴利税不会超过银行).
ORG_NAMES = False


_GENERIC_PREFIXES = ("全国", "全省", "全市", "各级", "基层", "地方", "本级", "中国", "中华全国")


def is_generic_name(name: str) -> bool:
    """Whether ``name`` is a place, or generic words after a place (全国工会, 各级工会, 意大利政府,
    甘肃省总工会): text refers back to such bodies without naming them (全省, 政府)."""
    tagger = jieba_pos_tokenizer()

    words = [(p.word, p.flag) for p in tagger.cut(name) if p.word.strip()]
    while words and (words[0][1] == "ns" or words[0][0] in _PROVINCES or words[0][0] in _GENERIC_PREFIXES):
        words = words[1:]
    rest = "".join(w for w, _ in words)
    for prefix in _GENERIC_PREFIXES:
        rest = rest[len(prefix):] if rest.startswith(prefix) else rest
    return not rest or rest in _GENERIC or all(w in _GENERIC or len(w) == 1 for w, _ in words)


#: Characters that point at something (那台, 这位, 该项): no name starts with them.
_POINTING = set("这那该此每各某其")


def question_entities(question: str) -> list[str]:
    """Names, ordinals, years, months and long numbers in the question: things an answer must be about."""
    import unicodedata
    tagger = jieba_pos_tokenizer()

    text = unicodedata.normalize("NFKC", question)  # keep spaces: English words stay apart
    found: dict[str, None] = {}
    for m in _ORDINAL_RE.finditer(text):
        found[m.group(0)] = None
    for m in _YEAR_RE.finditer(text):
        found[m.group(0)] = None
    for m in _MONTH_RE.finditer(text):
        found[m.group(1) + "月"] = None
    for m in _DAY_RE.finditer(text):
        found[m.group(0).replace("号", "日")] = None
    for m in _CODE_RE.finditer(text):
        if not _YEAR_RE.fullmatch(m.group(0)):
            found[m.group(0)] = None
    if QUOTED_NAMES:
        # A quoted or titled name (“红旗杯”, 《指南》) is a name the answer must be about.
        for m in re.finditer(r"[“《「\"]([^”》」\"]{2,10})[”》」\"]", text):
            found[m.group(1)] = None
    # A person news names by surname only (刘某某, 张某): whom the question is about.
    for m in _ANONYMOUS_RE.finditer(text):
        found[m.group(0)] = None
    for m in _HONORIFIC_RE.finditer(text):  # 张先生, 李女士: a person news names by surname only
        found[m.group(0)] = None
    if ORG_NAMES:
        # An organisation named by its suffix (韦尔股份, 太平洋财险房山支公司), unless it is only
        # generic words (全国工会, 各级工会): jieba tags few of them.
        for s, e in named_only(text, suffix_spans(text, _ORG_SUFFIXES)):
            name = text[s:e]
            if len(name) >= 4 and not re.search(r"哪|什么|谁|多少|几|年", name) and not is_generic_name(name):
                found[name] = None
    for pair in tagger.cut(text):
        word = pair.word.strip()
        if len(word) < 2 or word in _GENERIC:
            continue
        # jieba's name tags are noisy (惠民/nr, 东西/ns): keep only the reliable kinds.
        strong = (
            (pair.flag == "ns" and (word in _PROVINCES or bool(_PLACE_SUFFIX_RE.search(word))))
            # (not a pointing word jieba took for a name: 那台羽 of 那台羽管键琴)
            or (pair.flag in ("nr", "nrt") and len(word) >= 3 and word[0] not in _POINTING)
            or pair.flag == "nt"
            # Latin words count only as acronyms/codes (WCBA, MVP, BIM), so English questions still work.
            or (pair.flag == "eng" and (word.isupper() or any(c.isdigit() for c in word)))
        )
        if strong:
            found[word] = None
    return list(found)


def passages_about(question: str, hits: Sequence) -> set[int]:
    """Indexes of the passages that mention every name (place, organisation,
    person) in the question. Years, months, numbers and ordinals are left out: a
    question about 2023 and 2024 is answered from two passages, one for each year."""
    names = [e for e in question_entities(question)
             if not (_ORDINAL_RE.fullmatch(e) or _YEAR_RE.fullmatch(e) or _CODE_RE.fullmatch(e) or e.endswith(("月", "日")))]
    return {i for i, hit in enumerate(hits) if not unmentioned(names, _document_passages(hits, i))}


#: A name of the question counts for a passage when another retrieved passage of its document names it: an
#: article names its place or body once (武汉市洪山区梨园街道) and then says 街道, 该院, 全省.
NAMES_BY_DOCUMENT = True


def _document_passages(hits: Sequence, index: int) -> list:
    """``hits[index]`` and, with ``NAMES_BY_DOCUMENT``, the other retrieved passages of its document."""
    if not NAMES_BY_DOCUMENT:
        return [hits[index]]
    return [hits[index]] + [h for k, h in enumerate(hits) if k != index and _same_article(h, hits[index])]


def _same_article(a, b) -> bool:
    """Whether two passages are of one article: one document without headings (a scraped news file is one
    article; a page with headings holds many, and a passage may run from one into the next)."""
    return (getattr(a, "doc", None) == getattr(b, "doc", None)
            and not getattr(a, "heading_path", None) and not getattr(b, "heading_path", None))


#: One-character names of provinces that news text uses on their own (在湘投资, 粤港澳); only
#: those that rarely mean anything else.
_PROVINCE_ABBREVIATIONS = {"湖南": "湘", "湖北": "鄂", "广东": "粤", "河南": "豫", "安徽": "皖", "福建": "闽", "江西": "赣",
                           "河北": "冀", "山西": "晋", "贵州": "黔", "云南": "滇", "甘肃": "陇", "广西": "桂", "上海": "沪",
                           "重庆": "渝", "海南": "琼"}


#: A person named by surname and 某 (刘某某, 张某), not 某些/某种 (位于某地).
_ANONYMOUS_RE = re.compile(r"[王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
                           r"阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文]"
                           r"某某?(?![些种个地天年月项类位家次处])")
#: A person named by surname and 先生/女士 (张先生, 李女士).
_HONORIFIC_RE = re.compile(_ANONYMOUS_RE.pattern.split("某")[0] + r"(?:先生|女士)")


def unmentioned(entities: Iterable[str], hits: Sequence) -> list[str]:
    """The ``entities`` that no passage of ``hits`` (text or heading path) mentions;
    provincial names also match without their suffix (宁夏回族自治区 ~ 宁夏) or by their
    one-character name (湖南 ~ 在湘)."""
    haystack = normalize(" ".join(" ".join(h.heading_path) + " " + h.text for h in hits)).lower()
    if UNPADDED_DATES:
        haystack = _PADDED_DATE_RE.sub("", haystack)
    missing = []
    for entity in entities:
        key = normalize(entity).lower()  # as the haystack: “温暖有你 共赴美好” is written with a space
        short = re.sub(r"(?:回族自治区|维吾尔自治区|壮族自治区|自治区|省|市)$", "", key)
        if key in haystack or (len(short) >= 2 and short in haystack):
            continue
        if key.endswith("某某") and key[:-1] in haystack:  # 刘某某 ~ 刘某
            continue
        if short in _PROVINCE_ABBREVIATIONS and _PROVINCE_ABBREVIATIONS[short] in haystack:
            continue
        if NUMERAL_FORMS and any(f.lower() in haystack for f in _numeral_forms(entity)):
            continue  # 第一届 ~ 首届, 第12届 ~ 第十二届
        if QUARTER_MONTHS and _in_a_named_quarter(key, haystack):
            continue  # 4到6月 ~ 第二季度 (``time_conflict`` still checks the period itself)
        if SHORTENED_NAMES and len(key) >= 3 and not re.search(r"\d", key) and names_term(haystack, key):
            continue  # 社科院 ~ 社会科学院, 克宫 ~ 克里姆林宫: a user's short form of the name a passage writes out
        missing.append(entity)
    return missing


#: A name of three or more characters counts as named by a passage that writes it out (社科院 ~ 社会科学院: its characters in
#: order, a few apart, see ``names_term``).
SHORTENED_NAMES = True
#: A month of the question (6月 of 4到6月) counts as named by a passage that names its quarter (第二季度, Q2).
QUARTER_MONTHS = True
#: A date a passage writes with leading zeros (湖南省气象台08月05日16时发布) names the question's 8月5日.
UNPADDED_DATES = True
_PADDED_DATE_RE = re.compile(r"(?<![\d.])0(?=\d\s*[月日号时])")


def _in_a_named_quarter(entity: str, haystack: str) -> bool:
    m = re.fullmatch(r"(\d{1,2})月", entity)
    if not m or not 1 <= int(m.group(1)) <= 12:
        return False
    q = (int(m.group(1)) - 1) // 3 + 1
    return bool(re.search(rf"(?<!前)[{'一二三四'[q - 1]}{q}]季度|q{q}", haystack))


#: A year of the question counts for a passage when another retrieved passage of its document names
#: it: a news article says its year once, in its date line or first paragraph.
YEARS_BY_DOCUMENT = True


def about_entities(entities: Sequence[str], hits: Sequence, index: int) -> bool:
    """Whether passage ``hits[index]`` mentions every one of the question's ``entities`` (see
    ``unmentioned``); a year also counts when a retrieved passage of the same document names it."""
    missing = unmentioned(entities, [hits[index]])
    if missing and YEARS_BY_DOCUMENT and all(_YEAR_RE.fullmatch(e) for e in missing):
        doc = getattr(hits[index], "doc", None)
        missing = unmentioned(missing, [h for h in hits if getattr(h, "doc", None) == doc])
    if missing and NAMES_BY_DOCUMENT:  # names; a year is ``YEARS_BY_DOCUMENT``'s
        names = [e for e in missing if not _YEAR_RE.fullmatch(e)]
        missing = [e for e in missing if e not in names] + unmentioned(names, _document_passages(hits, index))
    if missing and REGIONS_BY_LEVEL:
        missing = [e for e in missing if not _region_by_level(e, hits, index)]
    return not missing


#: A province or region of the question counts for a passage that refers to it by its level (自治区总工会, 全省,
#: 市委) when a retrieved passage of the same document names it: a report names 新疆维吾尔自治区总工会 once and then
#: says 自治区总工会, so 新疆总工会 and 新疆维吾尔自治区总工会 are both about that passage.
REGIONS_BY_LEVEL = True
_AUTONOMOUS_REGIONS = {"内蒙古", "广西", "西藏", "宁夏", "新疆"}
_MUNICIPALITIES = {"北京", "天津", "上海", "重庆"}
_LEVEL_RE = {"自治区": re.compile(r"自治区|全区"),
             "市": re.compile(r"全市|本市|该市|市委|市政府|市总工会|市级"),
             "省": re.compile(r"全省|本省|该省|省委|省政府|省总工会|省级")}


def _region_by_level(entity: str, hits: Sequence, index: int) -> bool:
    """Whether ``entity``, a province-level name (新疆, 新疆维吾尔自治区, 陕西省), is referred to by ``hits[index]`` by
    its level (see ``REGIONS_BY_LEVEL``)."""
    short = re.sub(r"(?:回族自治区|维吾尔自治区|壮族自治区|自治区|省|市)$", "", entity)
    if short not in _PROVINCES:
        return False
    level = "自治区" if short in _AUTONOMOUS_REGIONS else "市" if short in _MUNICIPALITIES else "省"
    if not _LEVEL_RE[level].search(normalize(hits[index].text)):
        return False
    doc = getattr(hits[index], "doc", None)
    return not unmentioned([entity], [h for h in hits if getattr(h, "doc", None) == doc])


# --- whether a sentence states the fact about what the question asks ---------------

#: Sub-year periods, as the months they cover (上半年 = 1-6月).
_PERIOD_MONTHS = {
    "上半年": (1, 6), "下半年": (7, 12), "一季度": (1, 3), "二季度": (4, 6), "三季度": (7, 9), "四季度": (10, 12),
    "前三季度": (1, 9), "前两个月": (1, 2), "前两月": (1, 2), "前三个月": (1, 3), "前4个月": (1, 4),
    "前5个月": (1, 5), "前7个月": (1, 7), "前8个月": (1, 8), "前10个月": (1, 10), "前11个月": (1, 11),
}
_PERIOD_RE = re.compile(r"(?:第)?(?:前三季度|[一二三四]季度|上半年|下半年|前两个?月|前三个月|前\d{1,2}个月)|Q[1-4]")
_MONTH_RANGE_RE = re.compile(r"(?<![\d.])(\d{1,2})\s*(?:月份?\s*)?(?:-|—|－|~|～|至|到)\s*(\d{1,2})\s*月(?:份)?(?!\s*\d{1,2}\s*[日号])")
#: A month that is a period (7月份的增加值), not part of a day (8月8日电).
_PERIOD_MONTH_RE = re.compile(r"(?<![\d.\-—－~～至到])(1[0-2]|0?[1-9])\s*月(?:份)?(?!\s*\d{1,2}\s*[日号])")
_YEAR_RANGE_RE = re.compile(r"(?<!\d)(\d{4})\s*年?\s*(?:-|—|－|~|～|至|到)\s*(\d{4})\s*年")
_YEAR_SINCE_RE = re.compile(r"(?<!\d)(\d{4})\s*年?\s*(?:以来|至今|起|开始|后)")
_YEAR_TOKEN_RE = re.compile(r"(?<!\d)(\d{4})\s*年")


@dataclass(frozen=True)
class TimeScope:
    """The years and the sub-year periods (as month ranges) a text states figures for."""

    years: frozenset[int] = frozenset()
    #: Earliest year of an open range (2020年至今, 2018年以来), if any.
    since: int | None = None
    periods: frozenset[tuple[int, int]] = frozenset()


def time_scope(text: str) -> TimeScope:
    """The years and periods (上半年, 1-7月, 7月份, 二季度) ``text`` names; days (8月8日) are left out,
    since a dateline or an event day does not say which period a figure is for."""
    norm = normalize(text)
    years: set[int] = set()
    since = None
    for m in _YEAR_RANGE_RE.finditer(norm):
        lo, hi = sorted((int(m.group(1)), int(m.group(2))))
        years.update(range(lo, min(hi, lo + 50) + 1))
    for m in _YEAR_SINCE_RE.finditer(norm):
        since = min(since or 9999, int(m.group(1)))
    years.update(int(m.group(1)) for m in _YEAR_TOKEN_RE.finditer(norm))
    periods: set[tuple[int, int]] = set()
    rest = norm
    for m in _MONTH_RANGE_RE.finditer(norm):
        lo, hi = int(m.group(1)), int(m.group(2))
        if 1 <= lo <= hi <= 12:
            periods.add((lo, hi))
        rest = rest.replace(m.group(0), " ", 1)
    for m in _PERIOD_RE.finditer(rest):
        word = m.group(0).lstrip("第")
        if word.startswith("Q"):
            q = int(word[1])
            periods.add((3 * q - 2, 3 * q))
        elif word in _PERIOD_MONTHS:
            periods.add(_PERIOD_MONTHS[word])
        else:
            n = re.search(r"\d+", word)
            if n and 1 <= int(n.group(0)) <= 12:
                periods.add((1, int(n.group(0))))
    rest = _PERIOD_RE.sub(" ", rest)
    for m in _PERIOD_MONTH_RE.finditer(rest):
        month = int(m.group(1))
        periods.add((month, month))
    return TimeScope(frozenset(years), since, frozenset(periods))


def time_conflict(question: str, sentence: str) -> bool:
    """Whether ``sentence`` states its figures for another year or period than ``question`` asks
    about: it names years (or periods) and none of them is the asked one (2023年6月 asked,
    2023年7月 stated; 7月份 asked, 上半年 stated). A sentence that names no time says nothing
    either way; 2020年至今 covers 2023."""
    asked, stated = time_scope(question), time_scope(sentence)
    if asked.years and (stated.years or stated.since):
        covered = bool(asked.years & stated.years) or (stated.since is not None
                                                       and any(y >= stated.since for y in asked.years))
        if not covered:
            return True
    return bool(asked.periods and stated.periods and not asked.periods & stated.periods)


#: A sentence that names another edition of the asked event (第二届 for 第一届/首届 俄罗斯-非洲峰会) states another event's
#: figures and dates, as one of another year does (see ``ordinal_conflict``).
ORDINALS = True
_EDITION_RE = re.compile(r"第\s*([一二三四五六七八九十百零〇两\d]+)\s*(届|次|期|轮|季)|首(届|次|期|轮|季)")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _edition_number(text: str) -> int | None:
    """The number of an ordinal (二 -> 2, 十八 -> 18, 12 -> 12), None when it is no plain number."""
    if text.isdigit():
        return int(text)
    if "百" in text:
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS.get(tens, 1 if not tens else -100) * 10 + (_CN_DIGITS.get(ones, -100) if ones else 0)
    return _CN_DIGITS.get(text) if len(text) == 1 else None


def _editions(text: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for m in _EDITION_RE.finditer(normalize(text)):
        number = 1 if m.group(3) else _edition_number(m.group(1))
        if number is not None and number >= 0:
            found.setdefault(m.group(3) or m.group(2), set()).add(number)
    return found


def ordinal_conflict(question: str, sentence: str) -> bool:
    """Whether ``sentence`` names editions (第二届) of a measure word the question names an edition of (第一届,
    首届), and not the asked one."""
    if not ORDINALS:
        return False
    asked = _editions(question)
    if not asked:
        return False
    stated = _editions(sentence)
    return any(measure in stated and not numbers & stated[measure] for measure, numbers in asked.items())


#: Verbs that name the same event in news text (举行 ~ 召开 ~ 开幕).
_EVENT_SYNONYMS = [
    {"举行", "举办", "召开", "开幕", "揭幕", "启幕", "开赛"},
    {"启动", "开始", "开启", "启用", "上线", "推出", "实施", "施行", "开通", "开工", "开放"},
    {"成立", "组建", "建立", "挂牌", "设立", "创建", "创立"},
    {"建成", "竣工", "完工", "通车", "通航", "投用", "投运", "投产", "落成", "开通", "投入使用", "交付使用"},
    {"出生", "生于", "出世"},
    {"上任", "任职", "担任", "就任", "当选", "履新", "出任", "任命"},
    {"发布", "公布", "印发", "出台", "颁布", "发表", "宣布"},
    {"结束", "闭幕", "落幕", "收官"},
    {"签署", "签订", "签约"},
    {"获得", "荣获", "获评", "获颁", "被评为", "授予"},
]


def event_terms(question: str) -> list[str]:
    """What a date question dates (哪一天举行 -> 举行, 哪一年成为产改试点 -> 产改 …): the words next
    to its question word, names left out. A sentence that gives a date for something else
    (a dateline, another event) does not answer it. Empty for other questions."""
    if asked_for(question).kind != "date":
        return []
    segmenter = jieba_tokenizer()

    q = normalize(question)
    names = {e.lower() for e in question_entities(question)}
    for clause in re.split(r"[，,？?。；;！!：:]", q):
        m = _DATE_Q.search(clause)
        if not m:
            continue
        # What follows the question word is the event (哪一年建成通航的); with nothing after it,
        # what precedes it (潘从明获得国家科技进步二等奖是在哪一年).
        after = re.sub(r"^(?:是|为|的|了|才|将|会|能|要)+", "", _FILLER_RE.sub("", clause[m.end():]))
        words = [w for w in _words(segmenter.lcut(after)) if w.lower() not in names and w not in _GENERIC]
        strong = [w for w in words if w not in _LIGHT_VERBS and w not in _ABSTRACT]
        if strong:
            return strong
        # A one-character verb after the question word is the event (在哪个国家造的 -> 造: 制造于 names it).
        verbs = [p.word for p in jieba_pos_tokenizer().cut(after)
                 if ONE_CHARACTER_EVENTS and p.flag == "v" and len(p.word) == 1 and p.word not in _EMPTY_VERBS]
        if verbs:
            return verbs
        # A light verb (开始, 举行) says little on its own: the words before the question word count too.
        before = _FILLER_RE.sub("", clause[:m.start()])
        dated_noun = ["日期"] if m.group(0) == "日期" else []  # 开幕日期是哪天: 日期 is the question word
        timed = _timed_event(segmenter.lcut(before) + dated_noun) if TIMED_EVENTS else None
        if timed is not None and timed.lower() not in names:
            return [timed]
        return words + [w for w in _words(segmenter.lcut(before))[-2:] if w.lower() not in names and w not in _GENERIC]
    return []


#: A date question that names the time of its event (申报系统的截止时间是什么时候, 开幕日期是哪天) dates that event
#: (截止, 开幕), not the thing it belongs to (系统, 峰会): see ``_timed_event``.
TIMED_EVENTS = True


def _timed_event(tokens: Sequence[str]) -> str | None:
    """The event of words that end in its time or date (… 截止|时间, 开幕日期), else None."""
    words = [t for t in tokens if t.strip()]
    if not words:
        return None
    last = words[-1]
    for noun in ("时间", "日期"):
        if last == noun and len(words) > 1:
            event = words[-2]
        elif last.endswith(noun) and len(last) > len(noun) + 1:
            event = last[:-len(noun)]
        else:
            continue
        return event if len(event) >= 2 and _content(event) and event not in _GENERIC else None
    return None


#: A date question's one-character verb (造, 建, 办) is its event when no longer word follows the question word.
ONE_CHARACTER_EVENTS = True
#: One-character verbs that name no event of their own.
_EMPTY_VERBS = set("是有在为到做用给让叫说看去来要会能")


def states_event(text: str, terms: Sequence[str]) -> bool:
    """Whether ``text`` names one of the event ``terms`` (or a verb for the same event)."""
    norm = normalize(text).lower()
    for term in terms:
        if mentions_term(norm, term):
            return True
        for group in _EVENT_SYNONYMS:
            if term in group and any(v in norm for v in group):
                return True
    return False


#: Characters between an answer span and the attribute it belongs to (会员总数12.2万人).
NEAR = 12


def attribute_keys(term: str) -> list[str]:
    """How an attribute may be written: in full, or for a compound its first or last two characters
    (装机容量 ~ 容量), except a noun after a modifier that changes it (女代表 is not 代表) and a role
    (总经理 is not any 经理); and the words news text uses for the same attribute (营收 ~ 收入, 上升 ~ 增长),
    Cilin's synonyms of the term (年轻人 ~ 小伙子) and its numbers written otherwise (百米 ~ 100米)."""
    role = _role_in(term)
    if HEAD_WORDS and term in _HEAD_WORDS:  # 一把手: whoever heads the body (庭长, 主任, 书记 …)
        return [term] + [r for r in _HEAD_ROLES if r != term]
    if (len(term) == 3 and term[0] in _MODIFIERS) or _ROLE_RE.fullmatch(term):
        keys = [term]
    elif role:  # 省委书记: in full or as the role (书记), never by its organisation (省委 of 省委副书记)
        keys = [term, role]
    else:
        # A generic half says nothing (试点单位 is not any 单位).
        keys = [term] + [key for key in ([term[:2], term[-2:]] if len(term) >= 3 else [])
                         if key not in _GENERIC and key not in _TYPE_WORDS]
    per = _ONE_MEASURE_RE.fullmatch(term) if PER_ONE else None
    if per:  # 一辆多少钱 asks what each costs: news says 每辆车价值120万元
        keys += [k for k in dict.fromkeys(("每" + per.group(1), "每" + per.group(2))) if k not in keys]
    for key in list(keys):
        for group in _ATTRIBUTE_SYNONYMS:
            if key in group:
                keys += [k for k in group if k not in keys]
    if SYNONYMS and not _ROLE_RE.fullmatch(term) and not role and term not in _ABSTRACT:
        keys += [k for k in _written_as(term) if k not in keys]
    return keys


#: A question's 一 + measure word (一辆多少钱, 一个月交多少, 一张票) asks for the figure of each, which the stating
#: sentence writes 每 + measure word (每辆车, 每月, 每张).
PER_ONE = True
_ONE_MEASURE_RE = re.compile(r"一((?:个)?(辆|台|张|份|件|套|只|瓶|盒|袋|斤|公斤|吨|平方米|平米|亩|人|位|名|户|家|次|天|周|月|年|小时|间|栋|部|本|杯|碗|条|块))")


#: A colloquial word for whoever heads a body (一把手, 掌门人) is named by the head's title (庭长林文学, 营销部主任
#: 姚明路): Cilin has 一把手 only as 老手 (an expert), and titles are too many to list as synonyms.
HEAD_WORDS = True
_HEAD_WORDS = {"一把手", "第一把手", "掌门人", "当家人", "掌舵人", "头儿"}  # not 负责人: a title of its own
_HEAD_ROLES = ([c + "长" for c in "局处厅庭院馆部所站行校社会团队组科市省县区镇村署司"]
               + ["董事长", "理事长", "主任", "主席", "书记", "总经理", "总裁", "负责人"])


#: An attribute also counts in the words Cilin lists as meaning the same (年轻人 ~ 小伙子, 开工 ~ 动工)
#: and with its numbers written otherwise (百米 ~ 100米, 首届 ~ 第一届); roles aside (书记 ~ 秘书 is
#: another sense: a role is named in full, see ``term_positions``). See ``rag.answering.thesaurus``.
SYNONYMS = True


@lru_cache(maxsize=4096)
def _written_as(term: str) -> tuple[str, ...]:
    from rag.answering import thesaurus

    return tuple(thesaurus.forms(term)[1:])


#: Words news text uses for the same attribute (a 增长 question is answered by 同比上升24.75%).
_ATTRIBUTE_SYNONYMS = [
    {"增长", "上升", "增加", "提高", "上涨", "增幅", "增速"},
    {"下降", "减少", "下滑", "降低", "下跌", "降幅"},
    {"收入", "营收"},
]
_ROLE_RE = re.compile(rf"(?:{_ROLES}|总经理|副总经理|厂长|司令|总监|总编辑|行长|所长|站长|团长|领队)")
_ROLE_END_RE = re.compile(rf"(?:{_ROLE_RE.pattern})$")
_PERSON_NOUN_RE = re.compile(rf"(?:{_PERSON_NOUNS}|人$)")
#: A role named with its body (省委书记, 工会主席) is that role (see ``attribute_keys``).
ROLE_COMPOUNDS = True


def is_role(term: str) -> bool:
    """Whether ``term`` names a role or kind of person (董事长, 副庭长, 省委书记, 一把手, 负责人, 女代表): such a
    word is named in full or not at all (see ``attribute_keys``)."""
    return bool(_ROLE_RE.search(term) or term in _HEAD_WORDS or _PERSON_NOUN_RE.search(term)
                or any(term.endswith(r) for r in _HEAD_ROLES)
                or (len(term) == 3 and term[0] in _MODIFIERS and term[1:] in ("代表", "会员", "委员", "成员", "职工")))


def _role_in(term: str) -> str | None:
    """The role a compound attribute ends in (省委书记 -> 书记), None for a role alone or another term."""
    m = _ROLE_END_RE.search(term) if ROLE_COMPOUNDS else None
    return m.group(0) if m and m.start() > 0 and m.group(0) != term else None


def term_positions(text: str, term: str) -> list[int]:
    """Where ``text`` names the attribute ``term`` (see ``attribute_keys``), leaving out what only
    looks like it: a deputy (副总经理 for 总经理) or a former holder (原董事长) of an asked role, and
    for a compound the start of another one (营业利润 for 营业收入, when jieba knows both)."""
    segmenter = jieba_tokenizer()

    found = []
    for key in attribute_keys(term):
        for m in re.finditer(re.escape(key), text):
            p = m.start()
            before = text[p - 1] if p else ""
            if before == "副" and not term.startswith("副"):
                continue
            if before in "原前总" and (_ROLE_RE.fullmatch(term) or _ROLE_RE.fullmatch(key)):
                continue  # 原董事长, 总书记 (not the 书记 of a village branch)
            if NUMBERED_KINDS and key != term and term[0] in _NUMERALS and p and text[p - 1] in _NUMERALS \
                    and text[p - 1] != term[0]:
                continue  # 三星级 is no 五星级, 二等奖 no 一等奖
            if len(term) >= 4 and key == term[:2]:
                compound = text[p:p + len(term)]
                if compound != term and len(compound) == len(term) and segmenter.FREQ.get(compound, 0) > 0:
                    continue
            found.append(p)
    return sorted(set(found))


#: A kind named with its number (五星级, 一等奖) is not named by the same word with another number (三星级).
NUMBERED_KINDS = True
_NUMERALS = frozenset("一二三四五六七八九十两0123456789")


def attribute_near(sentence: str, spans: Sequence[tuple[int, int]], attributes: Sequence[str]) -> bool:
    """Whether ``sentence`` names one of ``attributes`` within ``NEAR`` characters of a span of ``spans``.
    (Requiring every attribute, 党支部 as well as 书记, cost more answerable questions than it caught.)"""
    if MODIFIERS_ALONE_NAME_NOTHING and any(t not in _MODIFIER_TERMS for t in attributes):
        attributes = [t for t in attributes if t not in _MODIFIER_TERMS]
    positions = [p for t in attributes for p in term_positions(sentence, t)]
    return any(_distance(sentence, p, s, e) <= NEAR for s, e in spans for p in positions)


#: A term that only says which value of a measure is asked (最大 of 最大航程, 平均 of 平均工资) names no
#: measure: next to another term of the question it does not count alone (最大起飞重量141吨 does not
#: state the 最大航程).
MODIFIERS_ALONE_NAME_NOTHING = True
_MODIFIER_TERMS = frozenset("最大 最高 最低 最小 最多 最少 最长 最短 最快 最慢 最早 最晚 平均 累计 合计 总计 全年 年均 人均 日均 "
                            "单日 单月 首次 首个 目前 现在 当前".split())


#: An aside in brackets: 息税折旧摊销前利润率（EBITDA margin）为80.74%.
_ASIDE_RE = re.compile(r"（[^（）]*）|\([^()]*\)")


def _distance(sentence: str, p: int, start: int, end: int) -> int:
    """Characters between position ``p`` and the span ``start:end``, an aside in brackets left out:
    it says the attribute again in other words and does not separate it from its value."""
    if start - NEAR <= p <= end + NEAR:
        return 0
    gap = sentence[p:start] if p < start else sentence[end:p]
    return len(_ASIDE_RE.sub("", gap))


#: The most common surnames: a two-character word jieba tags as a name counts as one only with them.
_SURNAMES = set("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
                "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")


def subject_names(question: str) -> list[str]:
    """The names a sentence that answers ``question`` must be about: the people, codes (K210,
    12351) and quoted names (“红旗杯”) of the question. Places and organisations are left out:
    news text refers back to them without their name (全省, 该公司, 各级工会); dates too
    (``time_conflict`` checks those)."""
    import unicodedata
    tagger = jieba_pos_tokenizer()

    text = unicodedata.normalize("NFKC", question)
    names: dict[str, None] = {}
    foreign = list(_FOREIGN_NAME_RE.finditer(text))
    for m in foreign:
        # Where the name ends in a question is unclear (马木提江·艾依提家后院): its first part and
        # two characters of the second identify the person.
        dot = re.search(r"[·•・]", m.group(0))
        first = m.group(0)[:dot.start()]
        if FOREIGN_NAME_START:  # nor where it starts (那个听大卫·鲍伊): the first part's last word
            words = jieba_tokenizer().lcut(first)
            first = words[-1] if len(words[-1]) >= 2 else first[-2:]
        names[first + m.group(0)[dot.start():dot.end() + 2]] = None
    pos = 0
    for pair in tagger.cut(text):
        start, pos = pos, pos + len(pair.word)
        # jieba tags many two-character words as names (惠民, 鸿蒙): those need a common surname.
        if (pair.flag in ("nr", "nrfg") and (len(pair.word) >= 3 or (len(pair.word) == 2 and pair.word[0] in _SURNAMES))
                and pair.word[0] not in _POINTING
                and not any(m.start() <= start < m.end() for m in foreign)):
            names[pair.word] = None
    for m in _CODE_RE.finditer(text):
        if not _YEAR_RE.fullmatch(m.group(0)):
            names[m.group(0)] = None
    for m in re.finditer(r"(?<![A-Za-z\d])[A-Za-z]+-?\d+[A-Za-z\d]*", text):  # K210, C919, LK-99
        names[m.group(0)] = None
    for m in re.finditer(r"[“《「\"]([^”》」\"]{2,10})[”》」\"]", text):
        names[m.group(1)] = None
    return list(names)


#: A foreign name of a question starts at the last word before its dot (大卫·鲍伊 of 那个听大卫·鲍伊).
FOREIGN_NAME_START = True


#: Sentences before the stating one in which the question's names may stand (Chinese news
#: names its subject once, then goes on: 国家能源集团……。2020年至今在湘投资达123.89亿元).
SUBJECT_WINDOW = 2


def names_in_context(names: Sequence[str], text: str, start: int, end: int, header: str = "",
                     window: int = SUBJECT_WINDOW) -> bool:
    """Whether every name of ``names`` occurs in ``text[start:end]`` (a sentence), in one of the
    ``window`` sentences before it, or in ``header`` (the heading path)."""
    if not names:
        return True
    from rag.text import sentence_spans

    before = [s for s, e in sentence_spans(text) if e <= start]
    lo = before[-window] if len(before) >= window else 0
    missing = unmentioned(names, [_Passage(header, text[lo:end])])
    if missing and TITLES_PERSIST:
        missing = [n for n in missing if not _title_in_force(n, text, start)]
    return not missing


#: A title in 《》 (《自然-人类行为》) stays the subject of the passage until another title is named: a report on a
#: paper names the journal once, then says 论文作者, 该研究.
TITLES_PERSIST = True


def _title_in_force(name: str, text: str, start: int) -> bool:
    """Whether ``text`` names ``name`` as a title (《name》) before ``start`` and no other title after it."""
    at = text.rfind("《" + name, 0, start)
    return at >= 0 and "《" not in text[at + 1:start]


@dataclass
class _Passage:
    header: str
    text: str

    @property
    def heading_path(self) -> list[str]:
        return [self.header] if self.header else []


#: Words that only point at or count things (一些国家, 这些措施): no topic of their own.
_DETERMINERS = set("一些 这些 那些 有些 某些 部分 各种 各类 所有 相关 其他 其它 有关 这个 那个 这种 那种 这次 那次 "
                   "此次 本次 当前 今后 未来 之前 之后 之间 之中 当中 以来 期间 过程 一个 一种 一次 一项 这项 该项"
                   # and words that bound a time (截至今年3月底): rare in everyday text, so no key topic
                   " 截至 截止 迄今 至今".split())


#: A pointing word and a measure word (这篇, 该项, 那位; users' 那起命案, 这轮大雨, 这回): it points back at the topic,
#: it is none.
_POINTER_RE = re.compile(r"[这那该此本每各某其][个篇位名家项种次件条只座所届批期份部场台辆本则起轮回波番趟宗桩例]")


def topic_terms(question: str) -> list[str]:
    """The words that say what a question is about, besides what it asks (量子计算机 of
    量子计算机的工作原理是什么): its content words, the asked attribute, question words, numbers,
    times said relative to now (去年, 原先: a passage dates its fact otherwise) and generic words left out.
    Passages that state none of them are about something else, however many everyday words (工作, 没有, 水)
    they share with it."""
    segmenter = jieba_tokenizer()

    asked = {t for t in focus_terms(question)}
    words = []
    for word in segmenter.lcut(normalize(question)):
        if (_content(word) and word not in asked and word not in _LIGHT_VERBS and word not in _ABSTRACT
                and word not in _GENERIC and word not in _DETERMINERS and not _POINTER_RE.fullmatch(word)
                and not re.search(r"哪|什么|谁|多少|几", word)
                and not (TIME_WORDS_NAME_NO_ATTRIBUTE and is_time_word(word))):
            words.append(word)
    return list(dict.fromkeys(words))


def states_topic(question: str, hits: Sequence) -> bool | None:
    """Whether some passage of ``hits`` names one of the question's ``topic_terms`` (None when it has none)."""
    terms = topic_terms(question)
    if not terms:
        return None
    text = " ".join(" ".join(h.heading_path) + " " + h.text for h in hits)
    return any(mentions_term(text, t) for t in terms)



#: A passage that answers must come from a document about the question's most specific topic word.
REQUIRE_KEY_TOPIC = True
#: ... also when it names it in a longer form (全总 ~ 全国总工会, see ``names_term``).
ABBREVIATIONS = True


def names_term(text: str, term: str) -> bool:
    """Whether ``text`` (normalized, lower case) names ``term``, also as the long form of an
    abbreviation (全总 ~ 全国总工会: its characters in order, at most three characters apart: 劳动竞赛 ~ 劳动和技能竞赛)."""
    if term in text:
        return True
    if not ABBREVIATIONS or len(term) < 2:
        return False
    return re.search("".join(re.escape(c) + ("" if k == len(term) - 1 else r"[^\W\d_]{0,3}?")
                             for k, c in enumerate(term)), text) is not None


def key_topic(question: str, hits: Sequence) -> str | None:
    """The question's most specific topic word that some passage of ``hits`` names: the rarest of its
    ``topic_terms`` in everyday text (jieba's word frequencies), so the name of the company, place or
    project (韦尔, 构网, 机械) rather than 股份, 基地, 工业. None when no passage names any."""
    segmenter, tagger = jieba_tokenizer(), jieba_pos_tokenizer()

    times = {p.word for p in tagger.cut(normalize(question)) if p.flag == "t"} | {"月份", "年份", "年度"}
    text = normalize(" ".join(" ".join(h.heading_path) + " " + h.text for h in hits)).lower()
    named = [t for t in topic_terms(question) if t not in times and names_term(text, t.lower())]
    if not named:
        return None
    return min(named, key=lambda t: (segmenter.FREQ.get(t, 0), -len(t)))


@lru_cache(maxsize=32)
def _folded(text: str) -> str:
    """``normalize(text).lower()``, kept for the few documents answered from last (a server asks
    about the same documents again and again; the source texts are the retriever's own cached strings)."""
    return normalize(text).lower()


def documents_naming(term: str | None, hits: Sequence, source_text=None) -> list[bool]:
    """Per hit, whether its document names ``term`` (see ``key_topic``): the whole document when
    ``source_text`` (doc -> text) is given, else its retrieved passages (heading paths included);
    all True when ``term`` is None."""
    if term is None or not REQUIRE_KEY_TOPIC:
        return [True] * len(hits)
    key = term.lower()
    by_doc: dict[str, str] = {}
    for h in hits:
        by_doc[h.doc] = by_doc.get(h.doc, "") + " " + " ".join(h.heading_path) + " " + h.text
    found = {}
    for doc, text in by_doc.items():
        if names_term(normalize(text).lower(), key):
            found[doc] = True
            continue
        try:
            whole = source_text(doc) if source_text is not None else None
        except (KeyError, OSError):  # a document the store no longer has: its passages decide
            whole = None
        found[doc] = bool(whole) and names_term(_folded(whole), key)
    return [found[h.doc] for h in hits]
