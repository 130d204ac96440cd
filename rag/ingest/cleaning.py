"""Cleaning that keeps provenance: every cleaned character knows its source offset.

The unit of work is the physical ``Line`` (one line of the original file, with
surrounding whitespace stripped and odd whitespace - full-width spaces, tabs,
no-break spaces, ``\\r`` - folded into single spaces). Each line keeps ``pos``:
``pos[k]`` is the offset in ``Document.text`` of ``line.text[k]``.

Lines are grouped into ``Block``s: a line that a page layout broke in the
middle of a sentence is re-joined with the line that continues it (blank lines
in between are allowed). Lines that repeat the same text three or more times in
a document (ignoring list numbers, e.g. ``四、…`` ``五、…``) are boilerplate: only
the first occurrence is kept, the others are marked ``boilerplate`` and left
out of blocks.

Nothing here decides what a heading is; ``rag.ingest.headings`` passes a ``role`` per
line to ``join_lines`` so that headings are not glued to body text.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rag.text import SENTENCE_END, normalize

_LINE_BREAK_RE = re.compile(r"\r\n|[\n\r\u2028\u2029\x85\v\f]")
# Characters that carry no text and are dropped from cleaned lines.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
_CLOSERS = "”’」』）)】》\"'"
# A line ending like this is a complete sentence (or a lead-in to a list/quote):
# it is never joined with the next line.
_COMPLETE_END_RE = re.compile(rf"(?:[{re.escape(SENTENCE_END)}：:]|——)[{re.escape(_CLOSERS)}]*$")
# A line ending like this cannot be complete.
_DANGLING_END = set("，,、（(“‘《「『[【")
# A line starting like this continues the previous one.
_CONTINUATION_START = set("，,。、；;：:！!？?）)》」』”’%％…·")
_CJK_NUMBER_UNITS = set("万亿千百十余多个名人家元次项件位户台套吨米")

#: List-number prefixes ignored when comparing lines for boilerplate.
ENUM_PREFIX_RE = re.compile(
    r"^(?:[（(]?(?:[一二三四五六七八九十百零〇两]+|\d{1,3})[)）]?[、.．,，:：]?"
    r"|第[一二三四五六七八九十百零〇两\d]+[条项点款]"
    r"|[①-⑳⑴-⒇⒈-⒛]"
    r"|[-*•·●○◆◇■□▲△]\s)\s*"
)
_DOUBLED_RE = re.compile(r"(.{4,}?)\1+")
#: Doubled phrases are collapsed only in lines up to this long. The regex above
#: costs time quadratic in the line's length (a 2 MB line would take hours); page
#: headers and footers, the lines it is for, are short. Longer lines are compared
#: as they are, so cleaning stays linear in the size of any input.
DOUBLED_MAX_CHARS = 256


class _Spanned:
    """Text whose characters map to source offsets through ``pos``."""

    pos: list[int]

    @property
    def start(self) -> int:
        return self.pos[0]

    @property
    def end(self) -> int:
        return self.pos[-1] + 1


@dataclass
class Line(_Spanned):
    """One non-blank physical line of a document, cleaned, with its source offsets."""

    number: int      # 1-based line number in the file
    text: str        # content, odd whitespace folded to single spaces, stripped
    pos: list[int]   # pos[k] = offset in the source of text[k]
    boilerplate: bool = False


@dataclass
class Block(_Spanned):
    """One logical line: one or more physical lines joined back together."""

    lines: list[Line]
    text: str = ""
    pos: list[int] = field(default_factory=list)

    @classmethod
    def from_lines(cls, lines: Sequence[Line]) -> "Block":
        block = cls(lines=[])
        for line in lines:
            block.append(line)
        return block

    def append(self, line: Line) -> None:
        if self.text and _needs_space(self.text[-1], line.text[0]):
            self.text += " "
            self.pos.append(self.pos[-1] + 1)
        self.text += line.text
        self.pos.extend(line.pos)
        self.lines.append(line)

    @property
    def number(self) -> int:
        return self.lines[0].number


def _needs_space(left: str, right: str) -> bool:
    """Joining two Latin words needs a space; joining Chinese text does not."""
    return left.isascii() and right.isascii() and left.isalnum() and right.isalnum()


def clean_segment(source: str, start: int, end: int) -> tuple[str, list[int]]:
    """Clean ``source[start:end]``: fold whitespace runs to one space, drop invisible
    characters, strip both ends. Returns the text and the source offset of each character."""
    chars: list[str] = []
    pos: list[int] = []
    pending_space: int | None = None
    for i in range(start, end):
        ch = source[i]
        if ch in _INVISIBLE:
            continue
        if ch.isspace() or unicodedata.category(ch) == "Zs":
            if pending_space is None:
                pending_space = i
            continue
        if pending_space is not None and chars:
            chars.append(" ")
            pos.append(pending_space)
        pending_space = None
        chars.append(ch)
        pos.append(i)
    return "".join(chars), pos


def split_lines(source: str) -> list[Line]:
    """The non-blank lines of ``source``, cleaned (see ``clean_segment``)."""
    lines: list[Line] = []
    start = 0
    number = 1
    for match in _LINE_BREAK_RE.finditer(source):
        _add_line(lines, source, start, match.start(), number)
        start = match.end()
        number += 1
    _add_line(lines, source, start, len(source), number)
    return lines


def _add_line(lines: list[Line], source: str, start: int, end: int, number: int) -> None:
    text, pos = clean_segment(source, start, end)
    if text:
        lines.append(Line(number=number, text=text, pos=pos))


def comparable(text: str) -> str:
    """``rag.text.normalize`` plus invisible characters removed: the form in which a
    chunk's text and its source span are compared."""
    return normalize("".join(ch for ch in text if ch not in _INVISIBLE))


def boilerplate_key(text: str) -> str:
    """The form in which lines are compared for repeats: no list-number prefix,
    width/space-normalised, an accidentally doubled phrase collapsed (in lines up
    to ``DOUBLED_MAX_CHARS``)."""
    key = normalize(ENUM_PREFIX_RE.sub("", text, count=1))
    if len(key) > DOUBLED_MAX_CHARS or not _repeats_a_4gram(key):
        return key
    return _DOUBLED_RE.sub(r"\1", key)


def _repeats_a_4gram(text: str) -> bool:
    """Whether some 4 characters occur twice: a doubled phrase (4+ characters) must."""
    grams = {text[i:i + 4] for i in range(len(text) - 3)}
    return len(grams) < len(text) - 3


def mark_boilerplate(lines: Sequence[Line], min_repeats: int = 3, min_chars: int = 12,
                     exempt: Callable[[Line], bool] | None = None) -> list[Line]:
    """Mark lines whose text repeats ``min_repeats`` or more times in the document.

    Lines are compared by ``boilerplate_key``; keys shorter than ``min_chars``
    are never boilerplate, nor are lines for which ``exempt`` is true (the same
    section heading may legitimately open several articles). The first occurrence is kept; the others get ``boilerplate=True`` and are
    returned.
    """
    keys = [None if exempt is not None and exempt(line) else boilerplate_key(line.text)
            for line in lines]
    counts = Counter(key for key in keys if key is not None and len(key) >= min_chars)
    seen: set[str] = set()
    dropped: list[Line] = []
    for line, key in zip(lines, keys):
        if key is None or counts.get(key, 0) < min_repeats:
            continue
        if key in seen:
            line.boilerplate = True
            dropped.append(line)
        seen.add(key)
    return dropped


def ends_complete(text: str) -> bool:
    """True when ``text`` ends a sentence (。！？；… closing quotes allowed), or ends
    in a colon or dash that introduces what follows."""
    return bool(_COMPLETE_END_RE.search(text))


class _Segmenter:
    """rag's own jieba tokenizer (``rag.tokenize_zh.jieba_tokenizer``: one dictionary for the
    whole program, private, so words other modules add to jieba's global one do not change joins)."""

    @staticmethod
    def cut(text: str) -> list[str]:
        from rag.tokenize_zh import jieba_tokenizer

        return list(jieba_tokenizer().cut(text, HMM=False))


def word_crosses(left: str, right: str, context: int = 6) -> bool:
    """True when a dictionary word spans the boundary between ``left`` and ``right``
    (``绍兴地`` + ``区陆续`` -> ``地区``): the break fell inside a word."""
    if not left or not right:
        return False
    if not (_is_cjk(left[-1]) and _is_cjk(right[0])):
        return False
    a, b = left[-context:], right[:context]
    offset = 0
    for word in _Segmenter.cut(a + b):
        if offset < len(a) < offset + len(word):
            return True
        offset += len(word)
    return False


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


_PAIRS = {"“": "”", "‘": "’", "《": "》", "（": "）", "(": ")", "「": "」", "『": "』", "【": "】", "[": "]"}
_CLOSING = {close: open_ for open_, close in _PAIRS.items()}


def _open_brackets(text: str) -> int:
    """How many quotes/brackets ``text`` opens without closing (-1: closes one it never opened)."""
    depth = 0
    for ch in text:
        if ch in _PAIRS:
            depth += 1
        elif ch in _CLOSING:
            depth -= 1
            if depth < 0:
                return -1
    return depth


def brackets_balanced(text: str) -> bool:
    """True when every quote/bracket opened in ``text`` is closed in it, and vice versa."""
    return _open_brackets(text) == 0


def continues(left: str, right: str) -> bool:
    """Strong evidence that ``right`` is the rest of a sentence broken after ``left``.

    ``left`` must not end a sentence; then any of: ``left`` ends in a comma,
    enumeration comma or opening bracket, or leaves a quote open that ``right``
    closes (``开展“建功‘十四五’`` / ``奋进新征程”…``); ``right`` starts with punctuation that
    cannot open a line; a number is split from its unit (``188.3`` / ``万人次``);
    a word spans the break (``绍兴地`` / ``区``).
    """
    if not left or not right or ends_complete(left):
        return False
    if left[-1] in _DANGLING_END or right[0] in _CONTINUATION_START:
        return True
    if _open_brackets(left) > 0 and _open_brackets(right) < 0:
        return True
    if left[-1].isdigit() and (right[0].isdigit() or right[0] in _CJK_NUMBER_UNITS or right[0] == "."):
        return True
    # Between two short lines a word across the break is weak evidence (处处闻啼鸟 /
    # 市总工会 would make 鸟市); there, the left line must at least be a clause.
    if max(len(left), len(right)) <= SHORT_LINE_CHARS and not _CLAUSE_RE.search(left):
        return False
    return word_crosses(left, right)


_CLAUSE_RE = re.compile(r"[，,、：:]")
#: Two consecutive lines this short are not joined without evidence of a broken word.
SHORT_LINE_CHARS = 20

#: Roles ``join_lines`` understands.
FIXED, HEADING, TEXT = "fixed", "heading", "text"


def join_lines(lines: Sequence[Line], role: Callable[[int], str] | None = None) -> list[Block]:
    """Group the non-boilerplate ``lines`` into blocks, re-joining broken sentences.

    ``role(i)`` tells how line ``i`` (index into ``lines``) may be joined:
    ``FIXED`` lines (Markdown headings, table-of-contents lines...) always stand
    alone; a block started by a ``HEADING`` line, or followed by one, is joined
    only on strong evidence (``continues``); ``TEXT`` lines that do not end a
    sentence are joined with the next line when they are longer than
    ``SHORT_LINE_CHARS`` or hold a comma (a wrapped paragraph).
    """
    role = role or (lambda i: TEXT)
    blocks: list[Block] = []
    block_role = TEXT
    for i, line in enumerate(lines):
        if line.boilerplate:
            continue
        this_role = role(i)
        if blocks and _should_join(blocks[-1], block_role, line, this_role):
            blocks[-1].append(line)
            continue
        blocks.append(Block.from_lines([line]))
        block_role = this_role
    return blocks


def _should_join(block: Block, block_role: str, line: Line, line_role: str) -> bool:
    if FIXED in (block_role, line_role) or ends_complete(block.text):
        return False
    if continues(block.text, line.text):
        return True
    # Without evidence, only a line of a wrapped paragraph (a long line, or a clause
    # cut short) is joined: short phrases (verse, a signature, a date) stay apart.
    last = block.lines[-1].text
    wrapped = len(last) > SHORT_LINE_CHARS or bool(_CLAUSE_RE.search(last))
    return block_role == TEXT and line_role == TEXT and wrapped
