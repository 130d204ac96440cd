"""Lexical analysis shared by the answering stage.

What a question asks for (``answer_type``) and whether a sentence holds it
(``matches_type``), the question's content words (``keywords``) and the names
it is about (``question_entities``), and overlap measures between a question
and a passage (``bigrams``, ``lexical_overlap``, ``passages_about``).

The extractive answerer, the abstention policy, the prompt trimmer and the
citation checker all build on these; this module imports none of them.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from rag.text import normalize

# --- what the question asks -----------------------------------------------------

#: Words that say what kind of answer is wanted; they carry no topic.
_QUESTION_WORDS = {
    "什么", "多少", "哪些", "哪里", "哪儿", "哪个", "哪位", "哪一年", "哪年", "哪", "谁", "几",
    "如何", "怎么", "怎样", "怎么样", "为什么", "为何", "是否", "是不是", "有没有", "何时",
    "什么时候", "何地", "吗", "呢", "吧", "啊", "的", "了", "是", "有", "在", "和", "与", "及",
    "请问", "请", "一下", "介绍", "哪些方面", "主要", "情况", "方面", "内容", "那", "那么",
    "这个", "那个", "这些", "我", "你", "他", "她", "它", "们", "都", "也", "还", "被", "把",
    "对", "从", "到", "给", "让", "为", "以", "中", "上", "下", "里", "之", "其", "该", "等",
}
PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)

_DATE_Q = re.compile(r"何时|什么时候|哪一?年|哪一?天|几月|几号|哪个月|日期|什么时间|何年")
_NUMBER_Q = re.compile(r"多少|几|多大|多高|多长|多久|多重|比例|百分|数量|人数|金额|规模")
_PLACE_Q = re.compile(r"哪里|哪儿|在哪|何地|什么地方|哪个(?:省|市|县|区|地区|城市|国家|地方)|哪座|哪些(?:省|市|地区|城市)")
_PERSON_Q = re.compile(r"谁|哪位|何人|什么人|哪些人|姓名|名字")

_NUM_RE = re.compile(r"\d+(?:[.,，]\d+)*|[一二三四五六七八九十百千万亿两〇零]{2,}")
_NUM_UNIT_RE = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:万|亿|千|百)?\s*"
    r"(?:个|名|人|项|家|次|元|届|所|条|支|场|户|件|台|部|篇|处|座|批|期|%|％|倍|余|多|公里|米|吨|亩|万|亿)"
    r"|[一二三四五六七八九十百千两]+\s*(?:万|亿)\s*[个名人项家次元]?"
)
_DATE_RE = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{1,2}\s*月|[一二三四五六七八九十]{1,3}月"
    r"|[〇零一二三四五六七八九]{4}年|今年|去年|明年|近年"
)
_PLACE_RE = re.compile(
    r"[\u4e00-\u9fff]{1,8}(?:省|市|县|区|镇|乡|村|州|旗|盟|岛|港|湾|基地|园区|大会堂|会场|广场|中心|展览馆)"
    r"|(?:在|于|到|赴)(?:北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北"
    r"|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|西藏|宁夏|新疆|香港|澳门|京)"
)


def answer_type(question: str) -> str | None:
    """What the question asks for: "date", "number", "place", "person" or None."""
    if _DATE_Q.search(question):
        return "date"
    if _PLACE_Q.search(question):
        return "place"
    if _PERSON_Q.search(question):
        return "person"
    if _NUMBER_Q.search(question):
        return "number"
    return None


def _has_person(sentence: str) -> bool:
    import jieba.posseg as pseg  # heavy-ish; only for "who" questions

    return any(p.flag == "nr" and len(p.word) >= 2 for p in pseg.cut(sentence))


def matches_type(sentence: str, kind: str | None) -> bool:
    """Whether ``sentence`` contains the kind of thing the question asks for."""
    if kind is None:
        return False
    if kind == "number":
        return bool(_NUM_UNIT_RE.search(sentence))
    if kind == "date":
        return bool(_DATE_RE.search(sentence))
    if kind == "place":
        return bool(_PLACE_RE.search(sentence))
    if kind == "person":
        return _has_person(sentence)
    return False


def keywords(text: str) -> list[str]:
    """Content words of a question (jieba, search mode), question words dropped."""
    import jieba

    seen: dict[str, None] = {}
    for word in jieba.lcut_for_search(normalize(text).lower()):
        word = word.strip()
        if not word or word in _QUESTION_WORDS or PUNCT_RE.fullmatch(word):
            continue
        if len(word) == 1 and not word.isalnum():
            continue
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff":
            continue  # single Chinese characters match almost anything
        seen[word] = None
    return list(seen)


def bigrams(text: str) -> set[str]:
    """Character bigrams of the normalised text, punctuation removed."""
    clean = PUNCT_RE.sub("", normalize(text).lower())
    if len(clean) < 2:
        return {clean} if clean else set()
    return {clean[i:i + 2] for i in range(len(clean) - 1)}


def question_bigrams(question: str) -> set[str]:
    """Character bigrams of the question without its question words (什么, 多少, ...)."""
    text = normalize(question)
    for word in sorted(_QUESTION_WORDS, key=len, reverse=True):
        if len(word) >= 2:
            text = text.replace(word, " ")
    return {b for b in bigrams(text.replace(" ", "|")) if "|" not in b}


def lexical_overlap(words: Sequence[str], q_bigrams: set[str], text: str) -> float:
    """Share of the question's keywords (by length) and bigrams found in ``text``."""
    norm = normalize(text).lower()
    total = sum(len(w) for w in words)
    word_cov = sum(len(w) for w in words if w in norm) / total if total else 0.0
    if q_bigrams:
        bigram_cov = len(q_bigrams & bigrams(text)) / len(q_bigrams)
    else:
        bigram_cov = word_cov
    return 0.5 * word_cov + 0.5 * bigram_cov


# --- what the question is about --------------------------------------------------

_PLACE_SUFFIX_RE = re.compile(r"(?:省|市|县|区|州|盟|旗|镇|乡|村|自治区)$")
_PROVINCES = set(
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 "
    "四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门".split())
_ORDINAL_RE = re.compile(r"第[一二三四五六七八九十百零〇\d]+[次届期]")
_YEAR_RE = re.compile(r"(?<!\d)\d{4}(?!\d)")
#: Generic words jieba tags as names that do not pin down what is asked.
_GENERIC = {"中国", "全国", "工会", "总工会", "职工", "中华", "中华全国总工会", "新时代", "省", "市"}


def question_entities(question: str) -> list[str]:
    """Names, ordinals and years in the question: things an answer must be about."""
    import unicodedata

    import jieba.posseg as pseg

    text = unicodedata.normalize("NFKC", question)  # keep spaces: English words stay apart
    found: dict[str, None] = {}
    for m in _ORDINAL_RE.finditer(text):
        found[m.group(0)] = None
    for m in _YEAR_RE.finditer(text):
        found[m.group(0)] = None
    for pair in pseg.cut(text):
        word = pair.word.strip()
        if len(word) < 2 or word in _GENERIC:
            continue
        # jieba's name tags are noisy (惠民/nr, 东西/ns): keep only the reliable kinds.
        strong = (
            (pair.flag == "ns" and (word in _PROVINCES or bool(_PLACE_SUFFIX_RE.search(word))))
            or (pair.flag in ("nr", "nrt") and len(word) >= 3)
            or pair.flag == "nt"
            # Latin words count only as acronyms/codes (WCBA, MVP, BIM), so English questions still work.
            or (pair.flag == "eng" and (word.isupper() or any(c.isdigit() for c in word)))
        )
        if strong:
            found[word] = None
    return list(found)


def passages_about(question: str, hits: Sequence) -> set[int]:
    """Indexes of the passages that mention every name (place, organisation,
    person) in the question. Years and ordinals are left out: a question about
    2023 and 2024 is answered from two passages, one for each year."""
    names = [e for e in question_entities(question)
             if not (_ORDINAL_RE.fullmatch(e) or _YEAR_RE.fullmatch(e))]
    return {i for i, hit in enumerate(hits) if not unmentioned(names, [hit])}


def unmentioned(entities: Iterable[str], hits: Sequence) -> list[str]:
    """The ``entities`` that no passage of ``hits`` (text or heading path) mentions;
    provincial names also match without their suffix (宁夏回族自治区 ~ 宁夏)."""
    haystack = normalize(" ".join(" ".join(h.heading_path) + " " + h.text for h in hits)).lower()
    missing = []
    for entity in entities:
        key = entity.lower()
        short = re.sub(r"(?:回族自治区|维吾尔自治区|壮族自治区|自治区|省|市)$", "", key)
        if key not in haystack and (len(short) < 2 or short not in haystack):
            missing.append(entity)
    return missing
