"""Whether a stating sentence's value stands in the relation to the question that the question asks.

A retrieved sentence may name the question's subject and attribute next to a value of the asked kind
and still not answer it: the value is another period's (去年 for 今年上半年, a reported date for one
that 将 come), a total for the part asked (参加培训的50位村民 for those who 拿到保安证), the holder of
a neighbouring role (副主席张锐 for 主席, 北京市水务局局长 for 应急管理局局长), or a sibling measure
of the same thing (a change for the level: 净利润较上年同期增加2402.16万元 for 净利润是多少; a share for a
count; households for people; a count for a rank; a daily rate for a total; a sum spent on something else), a date
that only starts a period (2025年1月1日起) or is the day a reporter learned the news, or a name of another kind than
a 哪个-question asks (全国总工会 for 哪座城市). Each check below reads what the sentence itself
says about its value (the words of the value's clause, the title right before a name, the time the
sentence gives the value) and finds a mismatch only on positive evidence: a sentence that says nothing
either way passes. ``mismatch`` names the relation a sentence's every value fails, and
``abstention.gather_evidence`` declines when every stating sentence fails one (``Evidence.relation``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.answering.lexical import (_MODIFIER_TERMS, _ORG_SUFFIXES, _PLACE_SUFFIXES, _ROLE_RE, _UNITS, asked_for,
                                   attribute_terms, is_generic_name, mentions_term, names_term, suffix_spans,
                                   time_scope)
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
#: A season named with its year in one word (今夏 = 今年夏天, 去冬 = 去年冬天).
_YEAR_SEASON_RE = re.compile(r"(今|去|明)(春|夏|秋|冬)")
_YEAR_OF_SEASON = {"今": 0, "去": -1, "明": 1}
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
    for m in _YEAR_SEASON_RE.finditer(norm):
        relative.add(_YEAR_OF_SEASON[m.group(1)])
        seasons.add(m.group(2))
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
    (("开始", "连载", "开播", "首播", "开机"), ("完结", "结束", "停播", "杀青", "完本")),
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


#: A date that starts a period (2025年1月1日起, 自7月以来): from then on something holds, nothing happens on it.
_FROM_ON_RE = re.compile(r"^\s*(?:开始)?(?:起|以来|至今)")
#: A question asking when something starts or takes effect: a date that starts a period answers it.
_START_Q_RE = re.compile(r"开始|起|实施|施行|生效|执行|启动|实行|开通|上线|推行|运行|试行|以来")


def start_for_occurrence(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether a date question asks when an event happened (评估会是哪一天举行的) and the date only starts a period
    (2025年1月1日起，中国实习生月最低底薪……增长) in a piece of the sentence that does not name the event."""
    from rag.answering.lexical import event_terms, states_event

    q = normalize(question)
    if _START_Q_RE.search(q) or not _FROM_ON_RE.search(normalize(sentence[span[1]:span[1] + 6])):
        return False
    events = event_terms(question)
    lo, hi = _piece(sentence, *span)
    return bool(events) and not states_event(sentence[lo:hi], events)


#: A date that a news report was learned or written on (8月11日，极目新闻记者从湖北鄂州花湖机场了解到): the date
#: of the report, not of what it reports.
_REPORTED_ON_RE = re.compile(r"^\s*[，,]?\s*(?:[^，,。；;]{0,12}记者|[^，,。；;]{0,4}从)[^，,。；;]{0,24}?(?:获悉|了解到|得知|采访)")
_REPORT_Q_RE = re.compile(r"获悉|了解到|得知|采访|报道")


def reporting_date(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the date at ``span`` is when the reporter learned the news (8月11日，极目新闻记者从……了解到) and the
    question asks about an event, not the report."""
    if _REPORT_Q_RE.search(normalize(question)):
        return False
    return bool(_REPORTED_ON_RE.search(normalize(sentence[span[1]:span[1] + 48])))


# --- who holds which role ---------------------------------------------------------------------------

#: What stands between a title and the items before it (、 separates two titled people).
_ITEM_BREAK_RE = re.compile(r"[，,、；;。！？!?：:“”\"（）()《》\s]")
#: Marks before a title that make it another role (副主席 is no 主席, 原局长 no 局长).
_OTHER_HOLDER = ("副", "原", "前", "代", "名誉", "常务", "执行")
#: The roles a title may end in: ``lexical``'s, and the chief officers (首席执行官, 首席财务官) it knows only as CEO, CFO.
_TITLE_ROLE_RE = re.compile(rf"(?:{_ROLE_RE.pattern}|首席[\u4e00-\u9fff]{{1,3}}官)")
_TITLE_ROLE_END_RE = re.compile(rf"(?:{_TITLE_ROLE_RE.pattern})$")


def _title_before(sentence: str, start: int) -> str:
    """The title phrase right before a name (北京市水务局局长 of 北京市水务局局长潘安君): from the last item break."""
    lo = max((m.end() for m in _ITEM_BREAK_RE.finditer(sentence, 0, start)), default=0)
    return normalize(sentence[lo:start])


def _asked_role(question: str) -> tuple[str, str] | None:
    """The role a 谁-question asks the holder of and the body before it (局长, 北京市应急管理局 of
    北京市应急管理局局长是谁); None when it names no title."""
    q = normalize(question)
    # 主席团 and 书记处 are bodies (全总书记处书记这次主席团推了谁 asks for a 书记)
    found = [m for m in _TITLE_ROLE_RE.finditer(q) if q[m.end():m.end() + 1] not in ("团", "处")]
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


#: Words that give the role a name is appointed or elected to after it (选举张三为副主席, 推选李四为书记处书记).
_APPOINTED_RE = re.compile(r"(?:当选为?|被?选举为|被?推选为|被?任命为|出任|担任|兼任|为|任)")
#: What separates the titles of one person (党组书记、副主席、书记处第一书记; 书记兼主席).
_TITLES_SPLIT_RE = re.compile(r"[、和及兼]")


def _titles_of(sentence: str, span: tuple[int, int]) -> tuple[list[str], list[str]]:
    """The titles a sentence gives the name at ``span``: the chain right before it (党组书记、副主席、书记处第一书记徐留平),
    each title of one item held 兼 another apart (董事长兼首席执行官), and those it is appointed to right after it
    (迪力夏提·柯德尔汗为全总十八届执委会副主席); only titles ending in a role. A title of the chain without a body of its
    own is given the body the chain named last before it (小米集团创始人、董事长兼首席执行官雷军: 小米集团's 董事长)."""
    items: list[str] = []
    start = span[0]
    while True:
        title = _title_before(sentence, start)
        if not title or not _TITLE_ROLE_END_RE.search(title):
            break
        items.insert(0, title)
        lo = max((m.end() for m in _ITEM_BREAK_RE.finditer(sentence, 0, start)), default=0)
        if lo < 1 or sentence[lo - 1] != "、":
            break
        start = lo - 1
    before: list[str] = []
    body = ""
    for item in items:
        for title in item.split("兼") if HELD_TOGETHER else (item,):
            if not _TITLE_ROLE_END_RE.search(title):
                continue
            role = _TITLE_ROLE_END_RE.search(title).group(0)
            own = _bodies(title[:-len(role)])
            if own:
                body = own[-1]
            before.append(title if own or not body or not HELD_TOGETHER else body + title)
    after: list[str] = []
    rest = normalize(sentence[span[1]:])
    m = _APPOINTED_RE.match(rest)
    if m:
        phrase = _CLAUSE_BREAK_RE.split(rest[m.end():], maxsplit=1)[0]
        after = [t for t in _TITLES_SPLIT_RE.split(phrase) if _TITLE_ROLE_END_RE.search(t)]
    return before, after


#: One name's titles are read one by one: those held 兼 each other (董事长兼首席执行官) and those of a chain that names
#: its body once (小米集团创始人、董事长); a title naming the asked body with another role (小马智行科技有限公司首席执行官 for
#: its 董事长, 十堰市生态环境局土壤生态环境科科长 for its 局长) is another's; bodies of companies compare as one kind
#: (阿里云智能集团 is another 公司 than 小马智行科技有限公司).
HELD_TOGETHER = True


def _same_kind(a: str, b: str) -> bool:
    """Whether two bodies are of one kind: the same last character (局, 村, 会), or both companies (公司, 集团)."""
    return a[-1] == b[-1] or (HELD_TOGETHER and _name_kind(a) == "company" and _name_kind(b) == "company")


def _title_verdict(question: str, role: str, body: str, title: str) -> bool | None:
    """Whether ``title`` makes its holder someone else than the holder of the asked ``role`` of ``body``: True (副主席
    for 主席, 北京市水务局局长 for 应急管理局局长, 小马智行科技有限公司首席执行官 for its 董事长), False (the asked role),
    None (a title of another kind in no asked body: 副市长 for 局长 may be one of several the person holds, and says
    nothing)."""
    if not title.endswith(role):
        # 主席 for 副主席, 党支部书记 for 第一书记
        base = role.removeprefix("第一").removeprefix("常务").removeprefix("执行").removeprefix("名誉").lstrip("副")
        if base != role and title.endswith(base):
            return True
        # the asked body's holder of another role
        asked = normalize(body).lower()
        return True if HELD_TOGETHER and len(asked) >= 3 and asked in title.lower() else None
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
        same_kind = [b for b in asked_bodies if _same_kind(b, low)]
        if same_kind and not names_term(q, low) and not any(names_term(low, b) for b in same_kind):
            return True
    return False


def other_holder(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the name at ``span`` is titled as the holder of another role than the question asks (副主席张锐 for
    主席, 主席柳海榕 for 副主席, 原局长, 选举……为副主席) or of the role in another body (北京市水务局局长潘安君 for
    北京市应急管理局局长, 阿热买里村第一书记 for 托万买里村的驻村第一书记), and by none of its titles as the asked
    role's holder. A name without a title right before it (or one it is appointed to after it) says nothing either way."""
    verdicts = role_verdicts(question, sentence, span)
    return True in verdicts and False not in verdicts


def role_verdicts(question: str, sentence: str, span: tuple[int, int]) -> list[bool | None]:
    """What each title of the name at ``span`` says of it holding the role the question asks (``_title_verdict``);
    empty when the question asks no role or the name has no title."""
    asked = _asked_role(question)
    if asked is None:
        return []
    role, body = asked
    before, after = _titles_of(sentence, span)
    verdicts = [_title_verdict(question, role, body, t) for t in before]
    # The roles a name is appointed to are all the sentence gives it: one of another kind makes it another's.
    verdicts += [v if v is not None else True for v in (_title_verdict(question, role, body, t) for t in after)]
    return verdicts


def titled(sentence: str, span: tuple[int, int]) -> bool:
    """Whether the name at ``span`` has a title right before it or one it is appointed to right after it."""
    before, after = _titles_of(sentence, span)
    return bool(before or after)


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


def _nouns(text: str, attributive: bool = False) -> str:
    """The noun phrase ``text`` starts with (jieba words tagged as nouns, at most three): 专职心理咨询师; with
    ``attributive``, a verb that a noun follows starts one too (参展单位 after a count: 47个参展单位)."""
    from rag.tokenize_zh import jieba_pos_tokenizer

    pairs = list(jieba_pos_tokenizer().cut(text[:16]))
    words = []
    for i, pair in enumerate(pairs):
        nominal = pair.flag.startswith("n") or pair.flag in ("j", "eng", "vn")
        leading_verb = (attributive and i == 0 and pair.flag == "v" and len(pair.word) == 2 and len(pairs) > 1
                        and (pairs[1].flag.startswith("n") or pairs[1].flag == "vn"))
        if not (nominal or leading_verb) or len(words) == 3:
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
    3名律师 for 多少个坐席, 47个参展单位 for 多少个展区): the noun right after it is neither the question's counted noun
    nor like it."""
    asked = counted_noun(question)
    if asked is None:
        return False
    stated = _nouns(normalize(sentence[span[1]:]), attributive=True)
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
    if re.search(r"[%％]|百分点$", value) and re.search(r"多少|几", q) and not _SHARE_Q_RE.search(q) \
            and (not VALUES_OF_THE_ATTRIBUTE or counted_noun(question) is not None or asked_for(question).unit):
        return True  # a share for a count; not for a level that is a share itself (价格指数是多少: 52.4%)
    unit = asked_for(question).unit
    if unit and re.fullmatch(r"[一两]\s*([\u4e00-\u9fff])", value) and value[-1] != unit:
        return True  # 一套 (标准体系) is an article, no count of the 个 asked
    if _PEOPLE_Q_RE.search(q) and not _HOUSEHOLD_Q_RE.search(q) and not _PERSON_UNIT_RE.search(value):
        return True  # households, papers or a share for a count of people (1675户 for 多少居民)
    if _EVENTS_Q_RE.search(q) and not _EVENT_UNIT_RE.search(value):
        return True  # people or money for a count of events (1853人次, 9822.5万元 for 宣讲了多少场次)
    return rate_for_total(question, sentence, span)


#: A question counting events (多少场次, 几场, 几期) and the units a count of events is given in (or a bare figure).
_EVENTS_Q_RE = re.compile(r"(?:多少|几)(?:个)?(?:场次|场(?![馆地所景站院])|期|轮)")
_EVENT_UNIT_RE = re.compile(r"(?<!人)(?:场|次|期|轮)$|\d$|[万千百十余多]$")
#: A figure per day, week, month or year (日服务300多万人次, 年均58.6万家): a rate, not a total.
_RATE_RE = re.compile(r"(?:年|月|周|日)均|平均每?(?:年|月|周|天|日)|每(?:年|月|周|天|日)")
_DAILY_VERB_RE = re.compile(r"^(?:日|每日|单日)(?:服务|接待|处理|发送|运送|产|生产|销售|吞吐|访问|均)")
#: A question asking a rate (每天, 日均) itself, and one asking a total (累计, 一共).
_RATE_Q_RE = re.compile(r"每|均|一天|单日|当天|当日")
_CUMULATIVE_Q_RE = re.compile(r"累计|一共|总共|共计|总计|合计")


def rate_for_total(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the question asks a total or a given year's figure (累计服务多少人次, 2022年……有多少家) and the value's
    clause gives a rate per day or year (日服务户外劳动者300多万人次, 年均达到58.6万家)."""
    q = normalize(question)
    if _RATE_Q_RE.search(q) or not (_CUMULATIVE_Q_RE.search(q) or period(q).years):
        return False
    before = normalize(sentence[_clause_start(sentence, span[0]):span[0]])
    return bool(_RATE_RE.search(before) or _DAILY_VERB_RE.search(before))


def _in_title(sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` is part of a title (《上海市“15分钟就业服务圈”……建设指引》): it names a
    document, it is no figure of anything."""
    opened = sentence.rfind("《", 0, span[0])
    return opened >= 0 and sentence.rfind("》", 0, span[0]) < opened and "》" in sentence[span[1]:]


#: What a sum is spent on, right after it (投入9822.5万元用于常态化走访慰问困难劳模, 投入1.02亿元资金支持……建设).
_PURPOSE_RE = re.compile(r"^(?:资金|经费|元)?\s*(?:用于|用来|用作|专门用于|支持|资助)")
#: Words for money itself, which say nothing of what it is spent on.
_MONEY_WORDS = frozenset("资金 经费 投入 投资 钱 费用 金额 花费 支出 款项 专项".split())


def spent_on_another(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether the value at ``span`` is a sum the sentence says is spent on something (用于……) whose clause leaves out
    an attribute word of the question (投入9822.5万元用于常态化走访慰问困难劳模 for 劳模疗休养一共花了多少钱)."""
    after = normalize(sentence[span[1]:])
    if not _PURPOSE_RE.match(after):
        return False
    terms = [t for t in attribute_terms(question) if t not in _MONEY_WORDS]
    clause = normalize(sentence[_clause_start(sentence, span[0]):_clause_end(sentence, span[1])])
    return bool(terms) and not all(mentions_term(clause, t) for t in terms)


# --- the kind of thing a 哪个-question names ---------------------------------------------------------------

#: Kinds of place and body by the words that end their names (哪座城市 asks for a 市, not a 工会); a question's head
#: noun (城市 of 哪座城市) ends in one of them too. Kinds left out (部门, 单位, 机构, 联合会) may be any of these.
_NAME_KINDS = {
    "geo": ("城市", "省", "市", "县", "区", "镇", "乡", "村", "州", "国", "国家", "地区"),
    "venue": ("场馆", "剧场", "剧院", "体育馆", "体育场", "展览馆", "博物馆", "会堂", "礼堂", "大厦", "酒店", "广场",
              "影院", "会展中心", "机场", "车站", "码头", "馆"),
    "union": ("工会", "总工会"),
    "association": ("协会", "学会", "商会", "研究会"),
    "company": ("公司", "集团", "企业", "平台"),
    "school": ("大学", "学院", "学校", "中学", "小学", "幼儿园"),
    "hospital": ("医院",),
    "troupe": ("文工团", "艺术团", "剧团", "乐团"),
    "team": ("球队", "俱乐部", "代表队"),
}
_WHICH_RE = re.compile(r"哪(?:一)?(?:个|家|座|所|支|些|种)?([\u4e00-\u9fff]{1,6})")


def _name_kind(name: str) -> str | None:
    """The kind ``_NAME_KINDS`` gives a name (or a head noun) by its longest ending; None when none fits."""
    found = [(len(end), kind) for kind, ends in _NAME_KINDS.items() for end in ends if name.endswith(end)]
    return max(found)[1] if found else None


#: See ``mismatch``: names of no known kind say nothing of the kind a 哪个-question asks, where names of that kind
#: carry their ending (场馆, 工会, 协会, 学校, 医院, 剧团); a city (北京) or a company (华为) often goes without one.
KINDS_DECIDE = True
_SUFFIXED_KINDS = ("venue", "union", "association", "school", "hospital", "troupe")


def _asked_name_kind(question: str) -> str | None:
    """The kind of place or body a 哪个-question asks for (venue of 哪个场馆), None when it asks none of them."""
    m = _WHICH_RE.search(normalize(question))
    head = _nouns(m.group(1), attributive=True) if m else ""
    return _name_kind(head) if head else None


def other_kind_of_name(question: str, sentence: str, span: tuple[int, int]) -> bool:
    """Whether a 哪个-question asks for a kind of place or body (哪座城市, 哪个外卖平台, 哪个书法家协会, 哪个场馆) and the
    name at ``span`` ends as another kind (全国总工会 for 城市, 云南省总工会 for 协会, 广西南宁市 for 场馆)."""
    asked = _asked_name_kind(question)
    stated = _name_kind(normalize(sentence[span[0]:span[1]]))
    return asked is not None and stated is not None and asked != stated


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
    if kind == "date" and (other_event(question, sentence, span) or start_for_occurrence(question, sentence, span)
                             or reporting_date(question, sentence, span)):
        return OTHER_PERIOD
    if kind in ("place", "org") and other_kind_of_name(question, sentence, span):
        return OTHER_OWNER
    if kind == "person" and other_holder(question, sentence, span):
        return OTHER_ROLE
    if kind == "number" and (per_unit_for_total(question, sentence, span)
                             or takers_for_achievers(question, sentence, span)):
        return OTHER_PART
    if sibling_measure(question, kind, sentence, span):
        return OTHER_MEASURE
    if kind == "number" and spent_on_another(question, sentence, span):
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
        # a name in passing) say nothing either way, so they neither answer nor clear the sentence; nor do names
        # whose titles all say nothing of the asked role (市长殷勇 for a company's 董事长: ``HELD_TOGETHER``).
        named = [s for s in spans if (any(v is not None for v in role_verdicts(question, sentence, s))
                                      if HELD_TOGETHER else titled(sentence, s))]
        if named and all(other_holder(question, sentence, s) for s in named):
            return OTHER_ROLE
    if kind in ("place", "org") and KINDS_DECIDE and _asked_name_kind(question) in _SUFFIXED_KINDS:
        # As with titles: only a name whose ending gives its kind says which kind of place or body it is; one
        # that does not (广西, 学青会执委 read as a name) neither answers a 哪个场馆 question nor clears the sentence.
        kinds = [_name_kind(normalize(sentence[a:b])) for a, b in spans]
        if any(kinds) and all(other_kind_of_name(question, sentence, s) for s, k in zip(spans, kinds) if k):
            return OTHER_OWNER
    if kind == "number" and other_grade(question, sentence):
        return OTHER_PART
    if kind == "number" and _RANK_Q_RE.search(normalize(question)) and not states_rank(question, sentence):
        return OTHER_MEASURE  # a count for a rank (19万件 for 全球排第几)
    asked_period = period(question)
    if VALUES_OF_THE_ATTRIBUTE:
        spans = values_of_attribute(question, sentence, spans)
    found = [span_mismatch(question, kind, sentence, s, context, asked_period) for s in spans]
    return None if any(f is None for f in found) else found[0]


#: Of a sentence's values, only those that may be given for the asked attribute are read: those whose clause names
#: it, and those whose clause names no other thing before them (2021年仅剩2.2% after 2019年该节目的毛利率为46.6%).
#: 全省发电装机规模达5841万千瓦 says nothing of the 最大负荷 a question asks, so it cannot clear 今夏第一波最大负荷
#: 4165万千瓦 of the asked 去年夏天 (``extractive``'s lead prefers the same values). All are read when none may.
VALUES_OF_THE_ATTRIBUTE = True


def values_of_attribute(question: str, sentence: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``spans`` that may be values of the question's attribute (see ``VALUES_OF_THE_ATTRIBUTE``; a modifier
    such as 最大 alone names none), or all of them when none may or the question names no attribute."""
    terms = [t for t in attribute_terms(question) if t not in _MODIFIER_TERMS]
    if not terms:
        return list(spans)

    def may_be(span: tuple[int, int]) -> bool:
        lo = _clause_start(sentence, span[0])
        clause = sentence[lo:_clause_end(sentence, span[1])]
        return any(mentions_term(clause, t) for t in terms) or not _names_a_thing(sentence[lo:span[0]])

    return [s for s in spans if may_be(s)] or list(spans)


def _names_a_thing(text: str) -> bool:
    """Whether ``text`` holds a noun of two or more characters (规模, 发电装机; not a time word or a number)."""
    from rag.tokenize_zh import jieba_pos_tokenizer

    return any(len(p.word) >= 2 and (p.flag.startswith("n") or p.flag in ("vn", "j")) and not re.search(r"\d", p.word)
               for p in jieba_pos_tokenizer().cut(normalize(text)))
