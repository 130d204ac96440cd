"""Whether a stating sentence's value stands in the relation to the question that the question asks.

A retrieved sentence may name the question's subject and attribute next to a value of the asked kind
and still not answer it: the value is another period's (去年 for 今年上半年, a reported date for one
that 将 come), a total for the part asked (参加培训的50位村民 for those who 拿到保安证), the holder of
a neighbouring role (副主席张锐 for 主席, 北京市水务局局长 for 应急管理局局长), or a sibling measure
of the same thing (a change for the level: 净利润较上年同期增加2402.16万元 for 净利润是多少; a share for a
count; households for people; a count for a rank). Each check below reads what the sentence itself
says about its value (the words of the value's clause, the title right before a name, the time the
sentence gives the value) and finds a mismatch only on positive evidence: a sentence that says nothing
either way passes. ``mismatch`` names the relation a sentence's every value fails, and
``abstention.gather_evidence`` declines when every stating sentence fails one (``Evidence.relation``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.answering.lexical import (_ORG_SUFFIXES, _PLACE_SUFFIXES, _ROLE_END_RE, _ROLE_RE, _UNITS, asked_for,
                                   is_generic_name, names_term, suffix_spans, time_scope)
from rag.text import normalize

#: Read the relations between a stating sentence's value and the question (see the module docstring).
RELATIONS = True
#: What ``mismatch`` may answer, and the cascade reason each becomes (``AbstentionPolicy.reason``).
OTHER_PERIOD = "other_period"   # another year/period, or a reported date/figure for a future one
OTHER_ROLE = "other_role"       # the holder of another role or of the role in another body
OTHER_PART = "other_part"       # a total for a part (or a part/per-unit figure for a total)
OTHER_MEASURE = "other_measure"  # a sibling measure of the same thing (change for level, share for count …)
OTHER_OWNER = "other_owner"     # another person's or thing's value (20多岁的小伙子 for the girl's age)
NAMES = (OTHER_PERIOD, OTHER_ROLE, OTHER_PART, OTHER_MEASURE, OTHER_OWNER)

#: Where a clause ends (a comma between digits is part of a number: 1,189).
_CLAUSE_BREAK_RE = re.compile(r"[，；;。！？!?：:]|,(?!\d)")
#: Where a piece of a sentence ends (a list of figures runs on over commas up to these).
_PIECE_BREAK_RE = re.compile(r"[；;。！？!?]")


def _clause_start(text: str, pos: int) -> int:
    return max((m.end() for m in _CLAUSE_BREAK_RE.finditer(text, 0, pos)), default=0)


def _clause_end(text: str, pos: int) -> int:
    m = _CLAUSE_BREAK_RE.search(text, pos)
    return m.start() if m else len(text)


def _piece(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max((m.end() for m in _PIECE_BREAK_RE.finditer(text, 0, start)), default=0)
    m = _PIECE_BREAK_RE.search(text, end)
    return lo, (m.start() if m else len(text))


# --- the period a value is given for ---------------------------------------------------------------

#: Years named relative to the text's own (今年 = the year it was written in).
_RELATIVE_YEARS = {"今年": 0, "本年": 0, "去年": -1, "上年": -1, "前年": -2, "明年": 1, "后年": 2}
_RELATIVE_RE = re.compile("|".join(_RELATIVE_YEARS))
#: A year that is only the base of a comparison (较去年同期增长, 比上年减少, 与2022年相比) gives no period.
_BASE_RE = re.compile(r"(?:比|较|与|同|同比|相比|对比|超过|高于|低于)\s*(?:今年|去年|上年|前年|\d{4}\s*年)(?:同期|全年|水平)?(?!的)"
                      r"|(?:今年|去年|上年|前年|\d{4}\s*年)\s*同期"
                      # 在2024年239美元的基础上增长54美元: the base, not the period of the change
                      r"|在[^，,。；;]{0,20}?的?基础上")
#: A figure for the whole year, and periods within one (see ``lexical.time_scope``).
_FULL_YEAR_RE = re.compile(r"全年|全年度|一整年")
#: Seasons by their words (冬天, 夏季, 暑期).
_SEASONS = {"春天": "春", "春季": "春", "夏天": "夏", "夏季": "夏", "暑期": "夏", "暑假": "夏", "秋天": "秋", "秋季": "秋",
            "冬天": "冬", "冬季": "冬", "寒假": "冬"}
_SEASON_RE = re.compile("|".join(_SEASONS))
#: The dateline of a news article (2023-07-13 10:25，正文：): the year its 今年 means.
_DATELINE_RE = re.compile(r"^\s*(\d{4})-\d{1,2}-\d{1,2}")


def document_year(text: str | None) -> int | None:
    """The year a document was written in, from its dateline (``2023-07-13 10:25，正文：``); None without one."""
    m = _DATELINE_RE.match(text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Period:
    """The years (absolute, and relative to the writing year) and sub-year periods a text gives."""

    years: frozenset[int] = frozenset()
    relative: frozenset[int] = frozenset()
    #: Month ranges (上半年 = (1, 6)); the whole year is (1, 12) when the text says 全年.
    months: frozenset[tuple[int, int]] = frozenset()
    #: Seasons (春, 夏, 秋, 冬; 暑期 is summer, 寒假 winter).
    seasons: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.years or self.relative or self.months or self.seasons)

    def resolved(self, year: int | None) -> frozenset[int]:
        """The absolute years, with the relative ones resolved against the writing ``year`` (when known)."""
        return self.years | (frozenset(year + r for r in self.relative) if year is not None else frozenset())


def period(text: str) -> Period:
    """The period ``text`` gives its figures for: its years (2022年, and 今年/去年 relative to the writing
    year) and sub-year periods (上半年, 7月份, 全年), comparison bases (较去年同期) left out."""
    norm = _BASE_RE.sub(" ", normalize(text))
    scope = time_scope(norm)
    months = set(scope.periods)
    if _FULL_YEAR_RE.search(norm):
        months.add((1, 12))
    relative = {_RELATIVE_YEARS[m.group(0)] for m in _RELATIVE_RE.finditer(norm)}
    years = set(scope.years)
    seasons = {_SEASONS[m.group(0)] for m in _SEASON_RE.finditer(norm)}
    return Period(frozenset(years), frozenset(relative), frozenset(months), frozenset(seasons))


def value_period(sentence: str, span: tuple[int, int]) -> Period:
    """The period ``sentence`` gives the value at ``span`` for: the times its clause names, or else the
    nearest ones before it in the sentence (去年，俄罗斯一共生产296架 … ; news names the period once and
    lists figures after it). Empty when the sentence names none before or in the value's clause."""
    start, end = span
    lo, hi = _clause_start(sentence, start), _clause_end(sentence, end)
    for m in _BASE_RE.finditer(sentence, lo, hi):
        if m.start() <= start and end <= m.end():  # 在2024年239美元的基础上: the value is the base's
            return period(re.sub(r"^(?:比|较|与|同|同比|相比|对比|超过|高于|低于|在)", "", m.group(0)).replace("同期", ""))
    found = period(sentence[lo:hi])
    while found.empty and lo > 0:
        hi = lo - 1
        lo = _clause_start(sentence, hi)
        found = period(sentence[lo:hi])
    return found


def periods_conflict(asked: Period, stated: Period, year: int | None) -> bool:
    """Whether ``stated`` is another period than ``asked``: both name years (relative ones resolved by the
    writing ``year``, or compared as they are when neither names an absolute year) and share none, or
    both name periods within a year and share none (上半年 asked, 全年 stated)."""
    if asked.empty or stated.empty:
        return False
    a, s = asked.resolved(year), stated.resolved(year)
    if a and s and not a & s:
        return True
    if year is None and not asked.years and not stated.years and asked.relative and stated.relative \
            and not asked.relative & stated.relative:
        return True
    if asked.seasons and stated.seasons and not asked.seasons & stated.seasons:
        return True  # 每年夏天有超过400万人 for 冬天
    return bool(asked.months and stated.months and not asked.months & stated.months)


#: A question about what is still to come (将于哪天公布, 明年打算再建多少).
_FUTURE_Q_RE = re.compile(r"将于|将在|将要|即将|定于|定在|拟于|计划|预计|打算|明年|未来|届时|何时将|什么时候将|规划|目标|力争")
#: Words that present a value as still to come, in the piece of the sentence that gives it.
_FUTURE_RE = re.compile(r"将|计划|预计|预期|打算|拟|定于|即将|有望|届时|目标|力争|争取|确保|明年|未来|规划"
                        r"|到(?:今年|明年|\d{4}年)?(?:年底|年末|底)")
#: A plan word inside a quoted title (《县域商业三年行动计划（2023-2025年）》) is part of a document's name: the
#: question that names the document does not ask about a plan for it.
TITLES_ARE_NAMES = True
_TITLE_RE = re.compile(r"《[^》]*》")
#: Words that present a date as past (已于7月20日正式开通, 日前).
_PAST_RE = re.compile(r"已于|已经|已|曾|日前|此前|早在")


def reported_for_future(question: str, kind: str | None, sentence: str, span: tuple[int, int]) -> bool:
    """Whether ``question`` asks about something still to come and ``sentence`` gives the value at ``span``
    as done: for a date, its piece of the sentence says it is past (已于7月20日正式开通) and nothing
    future; for a figure asked as a plan (明年打算再建多少个), its piece names no plan or future at all
    (建成驿站18.61万个)."""
    q = _TITLE_RE.sub("", normalize(question)) if TITLES_ARE_NAMES else normalize(question)
    if not _FUTURE_Q_RE.search(q):
        return False
    lo, hi = _piece(sentence, *span)
    piece = normalize(sentence[lo:hi])
    if _FUTURE_RE.search(piece):
        return False
    if kind == "date":
        return bool(_PAST_RE.search(piece))
    return kind == "number" and bool(re.search(r"明年|打算|计划|预计|规划|未来|拟|目标|力争", q))


#: Events that come in pairs: a date of one does not date the other (开幕式 for 闭幕式).
_EVENT_PAIRS = [
    (("开幕", "揭幕", "启幕", "开赛"), ("闭幕", "落幕", "收官")),
    (("开工", "动工", "开建"), ("竣工", "完工", "建成", "落成")),
    (("出发", "启程", "离开"), ("抵达", "到达", "抵京", "返回")),
    (("上任", "就任", "任职"), ("卸任", "离任", "辞职", "离职")),
]


def other_event(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether a date question asks for one of a pair of events (闭幕) and the date's piece of the sentence
    names only the other (7月28日晚……运动会开幕式在鄂州举行)."""
    q = normalize(question)
    lo, hi = _piece(sentence, *span)
    piece = normalize(sentence[lo:hi])
    for a, b in _EVENT_PAIRS:
        for asked, other in ((a, b), (b, a)):
            if any(w in q for w in asked) and not any(w in q for w in other):
                if any(w in piece for w in other) and not any(w in piece for w in asked):
                    return True
    return False


# --- who holds which role ---------------------------------------------------------------------------

#: What stands between a title and the items before it (、 separates two titled people).
_ITEM_BREAK_RE = re.compile(r"[，,、；;。！？!?：:“”\"（）()《》\s]")
#: Marks before a title that make it another role (副主席 is no 主席, 原局长 no 局长).
_OTHER_HOLDER = ("副", "原", "前", "代", "名誉", "常务", "执行")


def _title_before(sentence: str, start: int) -> str:
    """The title phrase right before a name (北京市水务局局长 of 北京市水务局局长潘安君): from the last item break."""
    lo = max((m.end() for m in _ITEM_BREAK_RE.finditer(sentence, 0, start)), default=0)
    return normalize(sentence[lo:start])


def _asked_role(question: str) -> tuple[str, str] | None:
    """The role a 谁-question asks the holder of and the body before it (局长, 北京市应急管理局 of
    北京市应急管理局局长是谁); None when it names no title."""
    q = normalize(question)
    found = [m for m in _ROLE_RE.finditer(q)]
    if not found:
        return None
    m = found[-1]
    role = m.group(0)
    start = m.start()
    # 第一书记, 副主席, 常务副主席: the marks before the role are part of what is asked.
    prefix = re.search(r"(?:第一|常务|执行|名誉)?副?$", q[:start]).group(0)
    role, start = prefix + role, start - len(prefix)
    body = re.split(r"[，,。？?！!、]", q[:start])[-1]
    body = re.sub(r"^(?:请问|那么|那个|现任|目前|现在|当前)+|(?:的|现任|目前|现在|当前)+$", "", body)
    return role, body


def _bodies(text: str) -> list[str]:
    """The named bodies and places of a title phrase (北京市水务局, 阿热买里村)."""
    spans = suffix_spans(text, _ORG_SUFFIXES) + suffix_spans(text, _PLACE_SUFFIXES)
    names = [text[s:e] for s, e in spans]
    return [n for n in names if len(n) >= 3 and not is_generic_name(n) and not re.match(r"[该本各此其这那全]", n)]


def other_holder(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the name at ``span`` is titled, right before it, as the holder of another role than the
    question asks (副主席张锐 for 主席, 主席柳海榕 for 副主席, 原局长) or of the role in another body
    (北京市水务局局长潘安君 for 北京市应急管理局局长, 阿热买里村第一书记 for 托万买里村的驻村第一书记).
    A name without a title right before it says nothing either way."""
    asked = _asked_role(question)
    if asked is None:
        return False
    role, body = asked
    title = _title_before(sentence, span[0])
    end = _ROLE_END_RE.search(title)
    if not title or end is None:
        return False  # not titled right before the name: nothing to read
    if not title.endswith(role):
        # 主席 for 副主席, 党支部书记 for 第一书记; a title of another kind (副市长 for 局长) may be one of
        # several the person holds (市公安局局长、副市长李某): nothing to read.
        base = role.removeprefix("第一").removeprefix("常务").removeprefix("执行").removeprefix("名誉").lstrip("副")
        return base != role and title.endswith(base)
    before = title[:-len(role)]
    if any(before.endswith(m) for m in _OTHER_HOLDER):
        return True
    # A body of the title differs from the question's when the question names one of the same kind (局, 村,
    # 工会) and it is neither that one nor its long form; a wider body the question leaves out (洪山区 of
    # 洪山区梨园街道人武部长) says nothing.
    q = normalize(question).lower()
    asked_bodies = _bodies(body.lower()) + _bodies(q)  # the body alone: 管理局局长 hides the suffix from the question
    for name in _bodies(before):
        low = name.lower()
        same_kind = [b for b in asked_bodies if b[-1] == low[-1]]
        if same_kind and not names_term(q, low) and not any(names_term(low, b) for b in same_kind):
            return True
    return False


# --- a part, a total, a unit --------------------------------------------------------------------------

#: A question about a total (一共, 总共) or about a share per unit (每个, 人均).
_TOTAL_Q_RE = re.compile(r"一共|总共|共计|总计|合计|总数|总量|总额|全部加起来")
_PER_RE = re.compile(r"每(?:个|家|人|位|名|户|所|天|日|年|月|周|次|场|一)|人均|户均|日均|场均|平均每|每[\u4e00-\u9fff]{1,3}(?:至少|最多|不少于|不超过)")
#: Words for those who achieved something (获奖, 拿到证书) and for those who took part (参加, 覆盖).
_OUTCOME_RE = re.compile(r"获奖|得奖|拿了?奖|获得|拿到|取得|考取|通过|合格|结业|毕业|夺得|获评|荣获|中标|录取|入选|晋级|获证|持证|胜出|夺冠")
_TAKING_PART_RE = re.compile(r"参加|参与|参赛|报名|覆盖|吸引|涉及|参训|参会|到场|参展")


def per_unit_for_total(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the question asks a total (全市一共建多少个) and the value's clause gives a figure per unit
    (每个街镇至少建设1个), or asks one per unit (每天最多) and the clause gives none (共计发送)."""
    q = normalize(question)
    lo, hi = _clause_start(sentence, span[0]), _clause_end(sentence, span[1])
    clause = normalize(sentence[lo:hi])
    if _TOTAL_Q_RE.search(q) and not _PER_RE.search(q):
        return bool(_PER_RE.search(clause))
    return False


def takers_for_achievers(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the question counts those who achieved something (多少个班组拿了奖, 几个人拿到了保安证) and
    the value counts those who took part: its clause names no achievement and its piece of the sentence
    says they took part (50位村民免费参加了培训, 吸引……覆盖11300余个班组)."""
    q = normalize(question)
    if not _OUTCOME_RE.search(q) or _TAKING_PART_RE.search(q):
        return False
    lo, hi = _clause_start(sentence, span[0]), _clause_end(sentence, span[1])
    if _OUTCOME_RE.search(normalize(sentence[lo:hi])):
        return False
    plo, _ = _piece(sentence, *span)
    before = normalize(sentence[plo:hi])
    return bool(_TAKING_PART_RE.search(before)) and not _OUTCOME_RE.search(before)


#: A grade named with its number (五星级, 一等奖, 三级).
_GRADE_RE = re.compile(r"([一二三四五六七八九十\d]+)(星级|星|等奖|级|档|类)")


def other_grade(question: str, sentence: str) -> bool:
    """Whether the question asks about a numbered grade (五星级的有几个) that ``sentence`` names only with
    other numbers (其中三星级以上服务站点79个): its figures are for other grades or for all of them."""
    asked = {(m.group(1), m.group(2)) for m in _GRADE_RE.finditer(normalize(question))}
    if not asked:
        return False
    stated = {(m.group(1), m.group(2)) for m in _GRADE_RE.finditer(normalize(sentence))}
    kinds = {k for _, k in asked}
    return not asked & stated and any(k in kinds for _, k in stated)


# --- a sibling measure ------------------------------------------------------------------------------

#: A question about a change (增长了多少, 同比, 比去年多了多少): a change answers it.
_CHANGE_Q_RE = re.compile(r"增|减|降|升|涨|跌|提高|变化|变动|多了|少了|幅|比上|较上|同比|环比|翻|缩|扩大|回落|下滑")
#: A change word right before a value (净利润较上年同期增加2402.16万元, 同比上升209.44%).
_CHANGE_BEFORE_RE = re.compile(r"(?:增加|减少|增长|下降|上升|提高|降低|下滑|上涨|下跌|回落|扩大|缩小|增|减|降|升|涨|跌|多|少)"
                               r"了?(?:约|近|超|逾|超过|达|达到)?\s*$")
#: ... unless it ends in the new level (增长20%至5亿元: 5亿元 is a level).
_TO_LEVEL_RE = re.compile(r"(?:至|到|为)\s*$")


def change_for_level(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the question asks a level (净利润是多少) and the value is a change (较上年同期增加2402.16万元)."""
    if _CHANGE_Q_RE.search(normalize(question)):
        return False
    before = normalize(sentence[_clause_start(sentence, span[0]):span[0]])
    return bool(_CHANGE_BEFORE_RE.search(before[-8:])) and not _TO_LEVEL_RE.search(before)


#: A question for a rank (全球排第几, 名列第几) is answered by an ordinal (第二, 首位, 榜首).
_RANK_Q_RE = re.compile(r"排第几|排名第几|第几名|第几位|名列第几|位列第几|位居第几|居第几|排在第几|排名多少|排行第几")
_RANK_RE = re.compile(r"第[一二三四五六七八九十百\d]+|首位|榜首|首|冠军|前[一二三四五六七八九十\d]+|最[高大多]")
#: A question counting things or people (多少参与者, 几个人) and not a share of anything.
_SHARE_Q_RE = re.compile(r"比例|占比|百分|率|%|％|成|倍|增|减|降|升|涨|跌|幅|提高|比重|份额|多少点")
_PEOPLE_Q_RE = re.compile(r"几个人|(?:多少|几)(?:位|名)?(?:人(?!民)|居民|村民|职工|群众|患者|病人|游客|学生|员工|参与者|志愿者|选手|代表|观众|儿童|孩子|老人)"
                          # ... not a body or place of theirs (多少职工夜校, 多少职工之家)
                          r"(?!夜校|之家|书屋|驿站|服务|中心|活动|组织|队伍|学校|医院|群体)")
_HOUSEHOLD_Q_RE = re.compile(r"户|家庭|家")
#: What a count of people is given in (人, 名, 位, 人次), or a bare figure.
_PERSON_UNIT_RE = re.compile(r"(?:人|名|位|人次|员)(?:次)?$|\d$|[万亿千百十余多]$")


def states_rank(question: str, sentence: str) -> bool:
    """Whether ``sentence`` gives a rank (第56位, 首位, 世界第一) in a clause that names a word of ``question``
    (位于全球第56位 for 全球排第几): an ordinal is no answer span, so the rank is read here."""
    from rag.overlap import keywords

    words = [w for w in keywords(question) if len(w) >= 2 and not _RANK_Q_RE.search(w) and "第" not in w]
    text = normalize(sentence)
    for m in _RANK_RE.finditer(text):
        clause = text[_clause_start(text, m.start()):_clause_end(text, m.end())]
        if any(w in clause for w in words):
            return True
    return False


#: Nouns that a count names without saying what is counted (3万人, 5个方面).
_EMPTY_COUNTED = frozenset("人 人次 名 位 个 家 项 次 种 类 方面 批 年 天 元 万 亿 多 余".split())


def _nouns(text: str) -> str:
    """The noun phrase ``text`` starts with (jieba words tagged as nouns, at most three): 专职心理咨询师."""
    from rag.tokenize_zh import jieba_pos_tokenizer

    words = []
    for pair in jieba_pos_tokenizer().cut(text[:16]):
        if not (pair.flag.startswith("n") or pair.flag in ("j", "eng", "vn")) or len(words) == 3:
            break
        words.append(pair.word)
    return "".join(words)


def counted_noun(question: str) -> str | None:
    """What a 多少/几 question counts (专职心理咨询师 of 有多少名专职心理咨询师, 分论坛 of 多少个分论坛); None when the
    question word is not followed by a noun (是多少, 多少钱)."""
    q = normalize(question)
    m = re.search(r"多少|几", q)
    if not m:
        return None
    rest = q[m.end():]
    for unit in _UNITS:  # the measure word (名, 个) is no part of the noun
        if rest.startswith(unit) and len(rest) > len(unit):
            rest = rest[len(unit):]
            break
    noun = _nouns(rest)
    return noun if len(noun) >= 2 and noun not in _EMPTY_COUNTED else None


def _same_thing(asked: str, stated: str) -> bool:
    """Whether two counted nouns may name the same thing: one contains the other, they share a two-character
    word or their head character (座席 ~ 坐席), or the thesaurus gives one as a form of the other."""
    from rag.answering import thesaurus

    if asked in stated or stated in asked or asked[-1] == stated[-1]:
        return True
    if {asked[i:i + 2] for i in range(len(asked) - 1)} & {stated[i:i + 2] for i in range(len(stated) - 1)}:
        return True
    return stated in thesaurus.forms(asked) or asked in thesaurus.forms(stated)


def counts_another_thing(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` counts another thing than the question (7000多名职工 for 多少名专职心理咨询师,
    3名律师 for 多少个坐席): the noun right after it is neither the question's counted noun nor like it."""
    asked = counted_noun(question)
    if asked is None:
        return False
    stated = _nouns(normalize(sentence[span[1]:]))
    if len(stated) < 2 or stated in _EMPTY_COUNTED or _same_thing(asked, stated):
        return False
    # The asked noun elsewhere in the piece says what is counted (多家电视品牌共超60款机型; 8颗NVIDIA……GPU).
    lo, hi = _piece(sentence, *span)
    piece = normalize(sentence[lo:hi]).lower()
    return asked.lower() not in piece and asked[-2:].lower() not in piece


#: Qualifiers that make a measure another one (扣非净利润 is not 净利润, 人均 not the total): how a question says
#: it, and the ways a sentence stating it may write it.
_QUALIFIERS = [
    (("扣非", "扣除非经常性损益"), ("扣非", "扣除非经常性损益")),
    (("归母", "归属于母公司", "归属于上市公司股东"), ("归母", "归属于母公司", "归属于上市公司股东", "归属母公司")),
    (("调整后",), ("调整后",)),
    (("人均",), ("人均", "每人", "每名", "每位", "平均每", "每万人")),
    (("户均",), ("户均", "每户", "平均每户")),
    (("每股",), ("每股",)),
    (("平均",), ("平均", "均值", "均价", "人均", "户均", "每")),
]


def unqualified(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the question qualifies its measure (扣除非经常性损益后的净利润, 人均, 平均) and the piece of the
    sentence that gives the value does not (实现净利润98.82万元; 6个行业合计影响PPI同比下降约3.21个百分点)."""
    q = normalize(question)
    lo, hi = _piece(sentence, *span)
    piece = normalize(sentence[lo:hi])
    return any(any(w in q for w in asked) and not any(w in piece for w in forms) for asked, forms in _QUALIFIERS)


def age_of_another(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether an age at ``span`` is given for someone the question does not ask about: ``X岁的`` names whose
    age it is (20多岁的小伙子 for 小女孩今年几岁)."""
    if not normalize(sentence[span[0]:span[1]]).endswith("岁"):
        return False
    after = normalize(sentence[span[1]:])
    if not after.startswith("的"):
        return False
    owner = _nouns(after[1:])
    return len(owner) >= 2 and not names_term(normalize(question), owner) and not _same_thing(owner, normalize(question))


def sibling_measure(question: str, kind: str | None, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` is another measure of the same thing than the question asks: a change
    for a level (``change_for_level``), a share for a count
    (95% for 多少参与者), households for people (1675户 for 多少居民)."""
    if kind != "number":
        return False
    q = normalize(question)
    value = normalize(sentence[span[0]:span[1]])
    if change_for_level(question, sentence, span) or unqualified(question, sentence, span):
        return True
    if counts_another_thing(question, sentence, span):
        return True
    if re.search(r"[%％]|百分点$", value) and re.search(r"多少|几", q) and not _SHARE_Q_RE.search(q):
        return True
    unit = asked_for(question).unit
    if unit and re.fullmatch(r"[一两]\s*([\u4e00-\u9fff])", value) and value[-1] != unit:
        return True  # 一套 (标准体系) is an article, no count of the 个 asked
    if _PEOPLE_Q_RE.search(q) and not _HOUSEHOLD_Q_RE.search(q) and not _PERSON_UNIT_RE.search(value):
        return True  # households, papers or a share for a count of people (1675户 for 多少居民)
    return False


def _in_title(sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` is part of a title (《上海市“15分钟就业服务圈”……建设指引》): it names a
    document, it is no figure of anything."""
    opened = sentence.rfind("《", 0, span[0])
    return opened >= 0 and sentence.rfind("》", 0, span[0]) < opened and "》" in sentence[span[1]:]


# --- the sentence as a whole -------------------------------------------------------------------------

@dataclass
class Context:
    """What the checks know besides the sentence: the writing year of its document (None: unknown)
    and the titles above it (heading path, the document's title line)."""

    year: int | None = None
    titles: str = ""


def context_of(hit, source_text=None) -> Context:
    """The ``Context`` of a sentence of ``hit``: its document's writing year (dateline of the document, or
    of the passage when it is the first) and the titles above it (heading path; the document's first line
    when it is a short title)."""
    whole = None
    if source_text is not None:
        try:
            whole = source_text(hit.doc)
        except (KeyError, OSError):
            whole = None
    year = document_year(whole) or document_year(hit.text)
    titles = " ".join(hit.heading_path)
    if whole:
        first = next((line.strip() for line in whole.splitlines() if line.strip()), "")
        if len(first) <= 40 and not _DATELINE_RE.match(first):
            titles = first + " " + titles
    return Context(year, titles.strip())


def span_mismatch(question: str, kind: str | None, sentence: str, span: tuple[int, int],
                  context: Context | None = None, asked_period: Period | None = None) -> str | None:
    """The relation (one of ``NAMES``) in which the value at ``span`` of ``sentence`` fails the question, or None."""
    context = context or Context()
    if kind == "number" and _in_title(sentence, span):
        return OTHER_MEASURE
    asked_period = asked_period if asked_period is not None else period(question)
    if kind in ("number", "person", "place", "org") and not asked_period.empty:
        stated = value_period(sentence, span)
        if stated.empty and context.titles:
            stated = period(context.titles)
        if periods_conflict(asked_period, stated, context.year):
            return OTHER_PERIOD
    if kind in ("date", "number") and reported_for_future(question, kind, sentence, span):
        return OTHER_PERIOD
    if kind == "date" and other_event(question, sentence, span):
        return OTHER_PERIOD
    if kind == "person" and other_holder(question, sentence, span):
        return OTHER_ROLE
    if kind == "number" and (per_unit_for_total(question, sentence, span)
                             or takers_for_achievers(question, sentence, span)):
        return OTHER_PART
    if sibling_measure(question, kind, sentence, span):
        return OTHER_MEASURE
    if kind == "number" and age_of_another(question, sentence, span):
        return OTHER_OWNER
    return None


def mismatch(question: str, kind: str | None, sentence: str, spans: Sequence[tuple[int, int]],
             context: Context | None = None) -> str | None:
    """The relation in which every value of ``sentence`` (its answer ``spans``) fails the question, or None
    when one of them may answer it (or it has none: nothing to read)."""
    if not RELATIONS or not spans or kind is None:
        return None
    if kind == "person" and _asked_role(question) is not None:
        # Only a name titled right before it says whose role it holds; the others (严峻考验 read as a name,
        # a name in passing) say nothing either way, so they neither answer nor clear the sentence.
        titled = [s for s in spans if _ROLE_END_RE.search(_title_before(sentence, s[0]))]
        if titled and all(other_holder(question, sentence, s) for s in titled):
            return OTHER_ROLE
    if kind == "number" and other_grade(question, sentence):
        return OTHER_PART
    if kind == "number" and _RANK_Q_RE.search(normalize(question)) and not states_rank(question, sentence):
        return OTHER_MEASURE  # a count for a rank (19万件 for 全球排第几)
    asked_period = period(question)
    found = [span_mismatch(question, kind, sentence, s, context, asked_period) for s in spans]
    return None if any(f is None for f in found) else found[0]
