"""Heading detection for Chinese documents, and the heading tree of a document.

Recognised, from strongest to weakest evidence:

* Markdown headings ``# 标题`` (rank = number of ``#``);
* a table of contents (``目录`` followed by lines ``标题……页码``): the TOC is one
  section, and every TOC title found again as a line of the body becomes a
  top-level heading (an *article* of a compilation). TOC titles may be
  truncated (``…``) or carry a number prefix (``24：标题``);
* framed titles ``■ 标题 ■``;
* numbered section headings ``第X编/章/节/条``, ``一、`` ``（一）`` ``1.`` ``（1）``, when
  short and heading-like (no sentence-final punctuation, no full stop inside);
* standalone headlines of newspaper pages: a short line without sentence-final
  punctuation, comma or full stop, that is not a photo credit or byline, that
  is not the first half of a broken sentence, and that is followed by body text
  (or by further headline lines: kicker, title, subtitle).

Before all of these come the headings the format itself states (``Mark``s a
loader found: PDF bookmarks or font sizes, Word heading styles, HTML h1–h6),
with rank = their level; when a document has such headings, the newspaper
headline guess is not used (the format already said what its headings are).
Table rows marked by a loader stand alone: never joined, never headings.

Ranks order headings (smaller = higher); the tree nests a heading under the
nearest preceding heading of smaller rank. A headline that directly follows
another heading with no text in between is nested under it (title stacks).
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.ingest.cleaning import (
    FIXED, HEADING, TEXT, Block, Line, brackets_balanced, continues, ends_complete, join_lines,
    mark_boilerplate, split_lines,
)
from rag.ingest.documents import HEADING, TABLE, Document, Mark
from rag.text import normalize

#: Longest line taken for a newspaper headline.
HEADLINE_MAX_CHARS = 34
#: Longest line taken for a numbered section heading.
NUMBERED_MAX_CHARS = 80

_CN_NUM = "一二三四五六七八九十百零〇两"
_MARKDOWN_RE = re.compile(r"^(#{1,6})\s*(.+?)\s*#*$")
_FRAMED_RE = re.compile(r"^([■□◆◇●★☆▲▼])\s*(.+?)\s*\1$")
# (pattern, rank, kind); the first match wins.
_NUMBERED: list[tuple[re.Pattern[str], int]] = [
    (re.compile(rf"^第[{_CN_NUM}\d]+[编篇部卷]\s*\S"), 2),
    (re.compile(rf"^第[{_CN_NUM}\d]+章\s*\S"), 3),
    (re.compile(rf"^第[{_CN_NUM}\d]+节\s*\S"), 4),
    (re.compile(rf"^[{_CN_NUM}]+、\s*\S"), 5),
    (re.compile(rf"^[（(][{_CN_NUM}]+[)）]\s*\S"), 6),
    (re.compile(r"^\d{1,2}(?:[.．、]|\s)\s*[^\d\s.．%％]"), 7),
    (re.compile(r"^[（(]\d{1,2}[)）]\s*\S"), 8),
    (re.compile(r"^[①-⑳⑴-⒇]\s*\S"), 8),
    (re.compile(rf"^第[{_CN_NUM}\d]+条\s*\S"), 9),
]
RANK_ARTICLE = 1
RANK_TOC = 1
RANK_FRAMED = 2
RANK_HEADLINE = 2

_INNER_STOP_RE = re.compile(r"[。！？；!?;]")
_COMMA_RE = re.compile(r"[，,]")
_CREDIT_RE = re.compile(
    r"(?:摄影?|供图|制图|图|绘)\s*[)）]?$"            # 王海燕、郭微 摄 / 新华社发(胡学军 摄)
    r"|^(?:本报|本刊)?(?:特约)?(?:记者|通讯员)[\s\S]{0,30}$"  # 本报记者 郑莉 郝赫
    r"|^\S{0,8}(?:日报|晚报|新闻)?记者\s*[\u4e00-\u9fff]{2,4}(?:\s+[\u4e00-\u9fff]{2,4})*$"
    r"|^[（(]?(?:据|来源[:：]?)《[^》]+》[)）]?$"       # 据《人民日报》
    r"|^[（(]?(?:责任)?编辑[:：]"
)
_SUBTITLE_RE = re.compile(r"^[—─-]{1,2}\S")
_TOC_TITLE_RE = re.compile(r"^(?:目\s*录|目\s*次|contents)$", re.IGNORECASE)
_TOC_ENTRY_RE = re.compile(r"^(?P<title>\S.*?)\s*(?:[.．·…⋯。\-—_]{2,}|…|\s)\s*(?P<page>\d{1,4})$")
_TOC_PREFIX_RE = re.compile(r"^\d{1,3}\s*[：:、.．]\s*")
_TOC_GROUP_MAX_CHARS = 20


@dataclass
class Heading:
    """A node of a document's heading tree.

    ``start``/``end`` are offsets of the heading line in ``Document.text``;
    ``level`` is the depth in the tree (1 = top level).
    """

    title: str
    kind: str           # markdown | article | toc | framed | numbered | headline | outline | font | style | html
    rank: int
    start: int
    end: int
    line: int
    level: int = 1
    children: list["Heading"] = field(default_factory=list)

    def walk(self):
        """This heading and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Section:
    """The blocks under one heading (the heading's own block first), up to the next heading."""

    heading: Heading | None
    path: list[str]
    blocks: list[Block]
    root: int                 # index of the top-level heading this section belongs to (-1: preamble)

    @property
    def text(self) -> str:
        return "\n".join(block.text for block in self.blocks)


@dataclass
class Structure:
    """What ingestion learned about one document."""

    document: Document
    lines: list[Line]
    blocks: list[Block]
    headings: list[Heading]          # roots of the heading tree
    sections: list[Section]
    dropped: list[Line]              # boilerplate lines left out
    toc: tuple[int, int] | None      # source span of the table of contents

    def all_headings(self) -> list[Heading]:
        return [h for root in self.headings for h in root.walk()]


# ---------------------------------------------------------------- line tests

def markdown_heading(text: str) -> tuple[int, str] | None:
    """``(rank, title)`` for a Markdown ATX heading line, else None."""
    match = _MARKDOWN_RE.match(text)
    if not match or not match.group(2).strip("# "):
        return None
    return len(match.group(1)), match.group(2)


def framed_heading(text: str) -> str | None:
    """The title of a framed heading such as ``■ 凝聚团结奋斗正能量 ■``, else None."""
    match = _FRAMED_RE.match(text)
    return match.group(2) if match and len(match.group(2)) <= HEADLINE_MAX_CHARS * 2 else None


def numbered_rank(text: str) -> int | None:
    """The rank of a numbered section heading (``一、`` ``（一）`` ``1.`` ``第X章``...), else None.

    Only short, heading-like lines count: a numbered line that ends a sentence or
    holds a full stop (a list item such as ``一、拍卖标的：…拍卖。``) is not a heading.
    """
    if len(text) > NUMBERED_MAX_CHARS or ends_complete(text) or _INNER_STOP_RE.search(text):
        return None
    if text.startswith(("一是", "二是", "三是")):
        return None
    for pattern, rank in _NUMBERED:
        if pattern.match(text):
            return rank
    return None


def is_credit(text: str) -> bool:
    """Photo credits, bylines and source lines (``王海燕、郭微 摄``, ``本报记者 郑莉``)."""
    return bool(_CREDIT_RE.search(text))


def headline_shape(text: str) -> bool:
    """A line shaped like a headline: short, no sentence punctuation, no comma
    (a trailing ellipsis is allowed: ``工会驻村工作队来了以后……``)."""
    if not 2 <= len(text) <= HEADLINE_MAX_CHARS:
        return False
    bare = text.rstrip("…⋯")
    if len(bare) < 2 or (bare == text and ends_complete(text)) or ends_complete(bare):
        return False
    if _INNER_STOP_RE.search(text) or _COMMA_RE.search(text):
        return False
    if text[0] in "，。、；：！？）》」』”’%…" or text[-1] in "，、（(“‘《「『":
        return False
    if is_credit(text) or text.isdigit() or not brackets_balanced(text):
        return False
    return True


def _is_subtitle(text: str) -> bool:
    """``——写在2024年全国两会召开之际``: a dash, then a short phrase."""
    return (bool(_SUBTITLE_RE.match(text)) and len(text) <= HEADLINE_MAX_CHARS + 6
            and not ends_complete(text) and not _INNER_STOP_RE.search(text))


def _body_like(text: str) -> bool:
    """Text that can follow a headline: a sentence, a clause with commas, a credit."""
    return (len(text) > HEADLINE_MAX_CHARS or ends_complete(text) or is_credit(text)
            or bool(_INNER_STOP_RE.search(text) or _COMMA_RE.search(text)))


def is_headline(lines: Sequence[Line], i: int, depth: int = 0) -> bool:
    """Is ``lines[i]`` a standalone headline, judging by it and the lines after it?

    Besides ``headline_shape`` (commas allowed when a ``——`` subtitle follows), the
    next line must not continue it as a broken sentence, and must be body text,
    a credit line, a subtitle, or (for title stacks) itself a headline.
    """
    text = lines[i].text
    nxt = _next_text(lines, i)
    if nxt is None:
        return False
    subtitle_follows = _is_subtitle(nxt)
    if _is_kicker(text):
        return depth < 3 and is_headline(lines, _next_index(lines, i), depth + 1)
    if not headline_shape(text):
        commas_ok = subtitle_follows and headline_shape(_COMMA_RE.sub("", text))
        if not commas_ok:
            return False
    if continues(text, nxt):
        return False
    if subtitle_follows or _body_like(nxt):
        return True
    return depth < 3 and is_headline(lines, _next_index(lines, i), depth + 1)


def _is_kicker(text: str) -> bool:
    """A lead-in line above a title, ending in a dash: ``…各项工作取得新进展——``."""
    return (text.endswith("——") and len(text) <= 2 * HEADLINE_MAX_CHARS
            and not _INNER_STOP_RE.search(text))


def _next_index(lines: Sequence[Line], i: int) -> int:
    j = i + 1
    while j < len(lines) and lines[j].boilerplate:
        j += 1
    return j


def _next_text(lines: Sequence[Line], i: int) -> str | None:
    j = _next_index(lines, i)
    return lines[j].text if j < len(lines) else None


# ---------------------------------------------------------- table of contents

@dataclass
class TocEntry:
    title: str
    page: int
    truncated: bool
    line: int            # index into lines


def _toc_entry(line: Line, index: int) -> TocEntry | None:
    return parse_toc_entry(line.text, index)


def parse_toc_entry(text: str, index: int = -1) -> TocEntry | None:
    """The title and page of a table-of-contents line (``标题……页码``), else None.

    ``index`` is stored as the entry's line index.
    """
    match = _TOC_ENTRY_RE.match(text)
    if not match or len(match.group("title")) > 60:
        return None
    raw = match.group("title")
    title = raw.rstrip(".．·…⋯。-—_ ")
    if len(title) < 2:
        return None
    # An ellipsis between title and page number may mean the title was cut short.
    between = text[len(title):match.start("page")]
    truncated = "…" in between or "⋯" in between
    return TocEntry(title=title, page=int(match.group("page")), truncated=truncated, line=index)


def is_toc_title(text: str) -> bool:
    """Whether ``text`` is the title of a table of contents (目录, 目次, Contents)."""
    return bool(_TOC_TITLE_RE.match(text.replace(" ", "").replace("\u3000", "")))


def find_toc(lines: Sequence[Line], min_entries: int = 3) -> tuple[int, int, list[TocEntry]] | None:
    """Find a table of contents: ``(first, last, entries)`` as indices into ``lines``.

    A TOC is a run of at least ``min_entries`` entry lines (title + page number,
    pages not decreasing), optionally preceded by a ``目录`` line; short group
    lines between entries (``二、单位工会``) belong to it.
    """
    best: tuple[int, int, list[TocEntry]] | None = None
    i = 0
    while i < len(lines):
        entry = _toc_entry(lines[i], i)
        if entry is None:
            i += 1
            continue
        entries = [entry]
        j = i + 1
        last = i
        while j < len(lines):
            nxt = _toc_entry(lines[j], j)
            if nxt is not None and nxt.page >= entries[-1].page:
                entries.append(nxt)
                last = j
            elif len(lines[j].text) > _TOC_GROUP_MAX_CHARS or j - last > 2:
                break
            j += 1
        if len(entries) >= min_entries and (best is None or len(entries) > len(best[2])):
            first = _toc_start(lines, i)
            best = (first, last, entries)
        i = max(last, i) + 1
    return best


def _toc_start(lines: Sequence[Line], entry: int, lookback: int = 3) -> int:
    """First line of a TOC whose first entry is ``lines[entry]``: a ``目录`` line up to
    ``lookback`` lines above (with only short group lines between), else the short
    numbered group lines (``一、各级工会``) directly above the entry."""
    for k in range(entry - 1, max(entry - 1 - lookback, -1), -1):
        text = lines[k].text
        if _TOC_TITLE_RE.match(text.replace(" ", "")):
            return k
        if len(text) > _TOC_GROUP_MAX_CHARS:
            break
    first = entry
    while first > 0 and len(lines[first - 1].text) <= _TOC_GROUP_MAX_CHARS \
            and numbered_rank(lines[first - 1].text) is not None:
        first -= 1
    return first


def _toc_key(title: str) -> str:
    return normalize(title)


def match_toc_titles(lines: Sequence[Line], toc: tuple[int, int, list[TocEntry]]) -> dict[int, TocEntry]:
    """Map line index -> TOC entry for each TOC title found again in the body, in order."""
    _, last, entries = toc
    found: dict[int, TocEntry] = {}
    cursor = last + 1
    for entry in entries:
        keys = {_toc_key(entry.title), _toc_key(_TOC_PREFIX_RE.sub("", entry.title))}
        keys.discard("")
        for j in range(cursor, len(lines)):
            line = lines[j]
            if line.boilerplate or len(line.text) > len(entry.title) + 40:
                continue
            key = _toc_key(line.text)
            if key in keys or (entry.truncated and any(key.startswith(k) for k in keys)):
                found[j] = entry
                cursor = j + 1
                break
    return found


# ----------------------------------------------------------------- analysis

@dataclass
class _LineInfo:
    role: str
    kind: str | None = None
    rank: int | None = None
    title: str | None = None


def _marked_lines(lines: Sequence[Line], marks: Sequence[Mark]) -> dict[int, Mark]:
    """Line index -> the mark covering that line's first character."""
    if not marks:
        return {}
    ordered = sorted(marks, key=lambda m: m.start)
    starts = [m.start for m in ordered]
    found: dict[int, Mark] = {}
    for i, line in enumerate(lines):
        k = bisect.bisect_right(starts, line.start) - 1
        if k >= 0 and ordered[k].start <= line.start < ordered[k].end:
            found[i] = ordered[k]
    return found


def _classify_lines(lines: Sequence[Line], marked: dict[int, Mark] | None = None
                    ) -> tuple[list[_LineInfo], tuple[int, int] | None]:
    marked = marked or {}
    infos = [_LineInfo(TEXT) for _ in lines]
    headline_guess = not any(m.kind == HEADING for m in marked.values())
    for i, mark in marked.items():
        if mark.kind == HEADING:
            infos[i] = _LineInfo(FIXED, kind=mark.source or "marked", rank=max(1, mark.level),
                                 title=lines[i].text)
        elif mark.kind == TABLE:
            infos[i] = _LineInfo(FIXED, kind="table-row")
    toc = find_toc(lines)
    toc_span = None
    if toc is not None:
        first, last, _ = toc
        for k in range(first, last + 1):
            if k not in marked:
                infos[k] = _LineInfo(FIXED, kind="toc-line")
        title_line = lines[first].text
        # A table of contents stays one (kind "toc", which gives one chunk per entry line)
        # even when the format marked its title as a heading.
        rank = max(1, marked[first].level) if first in marked and marked[first].kind == HEADING else RANK_TOC
        infos[first] = _LineInfo(FIXED, kind="toc", rank=rank,
                                 title=title_line if _TOC_TITLE_RE.match(title_line.replace(" ", "")) else "目录")
        for j, entry in match_toc_titles(lines, toc).items():
            if j not in marked:
                infos[j] = _LineInfo(FIXED, kind="article", rank=RANK_ARTICLE, title=lines[j].text)
        toc_span = (lines[first].start, lines[last].end)
    for i, line in enumerate(lines):
        if infos[i].role == FIXED or line.boilerplate:
            continue
        text = line.text
        if (md := markdown_heading(text)) is not None:
            infos[i] = _LineInfo(FIXED, kind="markdown", rank=md[0], title=md[1])
        elif (framed := framed_heading(text)) is not None:
            infos[i] = _LineInfo(FIXED, kind="framed", rank=RANK_FRAMED, title=framed)
        elif numbered_rank(text) is not None:
            infos[i] = _LineInfo(HEADING, kind="numbered")
        elif headline_guess and is_headline(lines, i):
            infos[i] = _LineInfo(HEADING, kind="headline", rank=RANK_HEADLINE, title=text)
    return infos, toc_span


def _heading_like(line: Line) -> bool:
    text = line.text
    return (numbered_rank(text) is not None or markdown_heading(text) is not None
            or framed_heading(text) is not None)


def analyse(document: Document) -> Structure:
    """Clean ``document``, find its headings and cut it into sections."""
    lines = split_lines(document.text)
    marked = _marked_lines(lines, document.marks)
    marked_ids = {id(lines[i]) for i in marked}
    dropped = mark_boilerplate(lines, exempt=lambda line: _heading_like(line) or id(line) in marked_ids)
    infos, toc_span = _classify_lines(lines, marked)
    index_of = {id(line): k for k, line in enumerate(lines)}
    blocks = join_lines(lines, lambda k: infos[k].role)

    headings: list[Heading] = []
    block_heads: list[Heading | None] = []
    for block in blocks:
        info = infos[index_of[id(block.lines[0])]]
        block_heads.append(_block_heading(block, info))
    roots, sections = _build_tree(blocks, block_heads)
    headings.extend(roots)
    return Structure(document=document, lines=lines, blocks=blocks, headings=headings,
                     sections=sections, dropped=dropped, toc=toc_span)


def _block_heading(block: Block, info: _LineInfo) -> Heading | None:
    if info.kind is None or info.kind in ("toc-line", "table-row"):
        return None
    text = block.text
    if info.kind == "numbered":
        rank = numbered_rank(text)
        if rank is None:
            return None
        return Heading(text, "numbered", rank, block.start, block.end, block.number)
    if info.kind == "headline" and len(block.lines) > 1:
        return None   # it turned out to be the first half of a broken sentence
    assert info.rank is not None and info.title is not None
    return Heading(info.title, info.kind, info.rank, block.start, block.end, block.number)


def _build_tree(blocks: Sequence[Block], heads: Sequence[Heading | None]) -> tuple[list[Heading], list[Section]]:
    roots: list[Heading] = []
    stack: list[Heading] = []
    sections: list[Section] = []
    current = Section(heading=None, path=[], blocks=[], root=-1)
    previous_was_heading = False
    for block, head in zip(blocks, heads):
        if head is None:
            current.blocks.append(block)
            previous_was_heading = False
            continue
        if (previous_was_heading and stack and head.kind == "headline"
                and stack[-1].kind in ("headline", "framed", "article", "markdown")
                and head.rank <= stack[-1].rank):
            head.rank = stack[-1].rank + 1   # a title stack: kicker / title / subtitle
        while stack and stack[-1].rank >= head.rank:
            stack.pop()
        if stack:
            stack[-1].children.append(head)
        else:
            roots.append(head)
        stack.append(head)
        head.level = len(stack)
        if current.blocks:
            sections.append(current)
        current = Section(heading=head, path=[h.title for h in stack], blocks=[block],
                          root=len(roots) - 1)
        previous_was_heading = True
    if current.blocks:
        sections.append(current)
    return roots, sections
