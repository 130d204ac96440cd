"""Page layout shared by PDF text layers and OCR: positioned words -> lines in reading order.

A page is a list of ``Word``s (a run of text with its box and font size, from a
PDF's text layer or an OCR line). ``page_lines`` turns them into ``Line``s in
reading order: a page set in two columns is read column by column (a title or
table spanning both columns stays where it is between them); tables arrive as
ready ``Line``s with ``rows``. ``drop_running_lines`` removes running headers,
footers and page numbers that repeat on the pages of a document, and
``font_levels`` ranks heading lines by their size relative to the body text.
"""
from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from rag.text import normalize

#: Lines this close to the top or bottom edge (share of the page height) can be running headers/footers.
MARGIN_ZONE = 0.1
#: A heading is at least this much larger than the body text (or bold at body size).
HEADING_SIZE_RATIO = 1.12

_PAGE_NUMBER_RE = re.compile(
    r"^(?:[-–—_·•\s]*\d{1,4}[-–—_·•\s]*"            # 12, - 12 -, — 12 —
    r"|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?"  # 第 12 页, 第12页 共30页
    r"|\d{1,4}\s*/\s*\d{1,4}"                         # 12 / 30
    r"|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"  # Page 12 of 30
    r"|[ivxlcdm]{1,6})$", re.IGNORECASE)


@dataclass
class Word:
    """A run of text on a page with its box (points, origin top-left) and font."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool = False


@dataclass
class Line:
    """One line of a page in reading order (or a whole table, with ``rows``)."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool = False
    rows: list[str] = field(default_factory=list)   # a table: one text line per row
    column: int = 0                                 # 0: full width, 1: left, 2: right

    @property
    def is_table(self) -> bool:
        return bool(self.rows)


# CJK Radicals Supplement characters that PDF fonts map glyphs of ordinary characters to
# (NFKC leaves these alone; the Kangxi radicals block it maps itself).
_RADICALS = dict(zip(
    "⺠⻅⻆⻉⻋⻓⻔⻙⻚⻛⻜⻠⻢⻥⻦⻧⻨⻩⻪⻬⻮⻰⻳⺁⺇⻁⻄⻝⻣⻤⺼⻈⻐⺰",
    "民见角贝车长门韦页风飞饣马鱼鸟卤麦黄黾齐齿龙龟厂几虎西食骨鬼月讠钅纟"))


def fix_text(text: str) -> str:
    """Undo what broken PDF font maps do to Chinese text: Kangxi radicals and CJK
    compatibility ideographs (``⼯`` U+2F2F for ``工``) become the ideographs they
    stand for; NUL and other control characters are dropped."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0x2E80 <= code <= 0x2FDF or 0xF900 <= code <= 0xFAFF:
            ch = _RADICALS.get(ch) or unicodedata.normalize("NFKC", ch)
        elif code < 32 and ch not in "\t":
            continue
        out.append(ch)
    return "".join(out)


def garbage_share(text: str) -> float:
    """Share of characters that say the text layer has no usable character map:
    private-use and replacement characters, pdfminer's ``(cid:N)`` placeholders."""
    cids = len(re.findall(r"\(cid:\d+\)", text))
    stripped = re.sub(r"\(cid:\d+\)", "", text)
    chars = [c for c in stripped if not c.isspace()]
    bad = sum(1 for c in chars if c == "\ufffd" or 0xE000 <= ord(c) <= 0xF8FF or 0xF0000 <= ord(c))
    total = len(chars) + cids
    return (bad + cids) / total if total else 0.0


def _needs_space(left: str, right: str) -> bool:
    return bool(left) and bool(right) and left[-1].isascii() and right[0].isascii() \
        and left[-1].isalnum() and right[0].isalnum()


def _join_words(words: list[Word]) -> str:
    words = sorted(words, key=lambda w: w.x0)
    text = words[0].text
    for prev, word in zip(words, words[1:]):
        gap = word.x0 - prev.x1
        size = max(prev.size, word.size, 1.0)
        # A gap between Chinese characters is a space only when wide (justified lines
        # stretch them); next to a Latin letter or digit a narrow one is (``综述 1``).
        latin = bool(text) and (text[-1].isascii() and text[-1].isalnum()
                                or word.text[0].isascii() and word.text[0].isalnum())
        if gap > 0.5 * size or (gap > 0.15 * size and latin):
            text += " "
        text += word.text
    return text


def _group_lines(words: list[Word], column: int) -> list[Line]:
    """Words of one column -> lines (words whose vertical middles fall in the same band)."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top, w.x0)):
        middle = (word.top + word.bottom) / 2
        for line in reversed(lines[-3:]):
            top = min(w.top for w in line)
            bottom = max(w.bottom for w in line)
            if top <= middle <= bottom:
                line.append(word)
                break
        else:
            lines.append([word])
    out = []
    for line in lines:
        sizes = [w.size for w in line for _ in w.text] or [line[0].size]
        chars = sum(len(w.text) for w in line)
        out.append(Line(text=_join_words(line), x0=min(w.x0 for w in line), x1=max(w.x1 for w in line),
                        top=min(w.top for w in line), bottom=max(w.bottom for w in line),
                        size=statistics.median(sizes),
                        bold=sum(len(w.text) for w in line if w.bold) >= 0.8 * chars, column=column))
    return out


def find_gutter(words: list[Word], width: float) -> float | None:
    """The x of the gap between two text columns, or None for a one-column page.

    Two columns: some x in the middle of the page has at least a fifth of the
    characters wholly on each side and few in words crossing it.
    """
    total = sum(len(w.text) for w in words)
    if total < 40:
        return None
    best: tuple[float, float] | None = None
    steps = 60
    for k in range(steps + 1):
        x = width * (0.3 + 0.4 * k / steps)
        left = sum(len(w.text) for w in words if w.x1 <= x)
        right = sum(len(w.text) for w in words if w.x0 >= x)
        crossing = total - left - right
        if left >= 0.2 * total and right >= 0.2 * total and crossing <= 0.15 * total:
            score = min(left, right) - 3 * crossing
            if best is None or score > best[0]:
                best = (score, x)
    return best[1] if best else None


def page_lines(words: list[Word], width: float, tables: list[Line] | None = None) -> list[Line]:
    """The page's lines in reading order (see the module docstring)."""
    tables = tables or []
    gutter = find_gutter(words, width)
    if gutter is None:
        lines = _group_lines(words, 0) + tables
        return sorted(lines, key=lambda l: (l.top, l.x0))
    left = [w for w in words if w.x1 <= gutter]
    right = [w for w in words if w.x0 >= gutter]
    spanning = [w for w in words if w.x1 > gutter and w.x0 < gutter]
    lines = _group_lines(left, 1) + _group_lines(right, 2) + _group_lines(spanning, 0)
    for table in tables:
        table.column = 1 if table.x1 <= gutter else 2 if table.x0 >= gutter else 0
        lines.append(table)
    # Bands between full-width elements: the left column, then the right, then the element.
    full = sorted((l for l in lines if l.column == 0), key=lambda l: l.top)
    ordered: list[Line] = []
    placed: set[int] = set()
    bounds = [l.top for l in full] + [float("inf")]
    previous = float("-inf")
    for k, bound in enumerate(bounds):
        for column in (1, 2):
            band = [l for l in lines if l.column == column and previous <= l.top < bound and id(l) not in placed]
            band.sort(key=lambda l: (l.top, l.x0))
            ordered.extend(band)
            placed.update(id(l) for l in band)
        if k < len(full):
            ordered.append(full[k])
            placed.add(id(full[k]))
            previous = full[k].top
    return ordered


def is_page_number(text: str) -> bool:
    """``12``, ``- 12 -``, ``第 12 页``, ``12 / 30``, ``Page 12 of 30``, ``xii``."""
    return bool(_PAGE_NUMBER_RE.match(text.strip()))


def _running_key(text: str) -> str:
    return re.sub(r"\d+", "#", normalize(text))


def drop_running_lines(pages: list[list[Line]], heights: list[float]) -> int:
    """Remove running headers, footers and page numbers from ``pages`` (in place).

    A line in the top or bottom ``MARGIN_ZONE`` of its page goes when it is a page
    number, or when the same text (digits ignored) stands in the margin of at
    least half of the pages (and of two pages at least). Returns how many lines went.
    """
    def in_margin(line: Line, height: float) -> bool:
        return line.bottom <= MARGIN_ZONE * height or line.top >= (1 - MARGIN_ZONE) * height

    counts: Counter[str] = Counter()
    for lines, height in zip(pages, heights):
        counts.update({_running_key(l.text) for l in lines if not l.is_table and in_margin(l, height)})
    threshold = max(2, (len(pages) + 1) // 2)
    removed = 0
    for lines, height in zip(pages, heights):
        keep = []
        for line in lines:
            if not line.is_table and in_margin(line, height) and (
                    is_page_number(line.text) or (len(pages) >= 2 and counts[_running_key(line.text)] >= threshold)):
                removed += 1
                continue
            keep.append(line)
        lines[:] = keep
    return removed


def body_size(pages: list[list[Line]]) -> float | None:
    """The font size most characters are set in."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if not line.is_table:
                sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else None


def is_heading_line(line: Line, body: float) -> bool:
    """Larger than the body text (or bold at body size), short, and not a sentence."""
    text = line.text.strip()
    if line.is_table or not text or len(text) > 60 or text[-1] in "。；;，,：:":
        return False
    if line.size >= body * HEADING_SIZE_RATIO:
        return True
    return line.bold and abs(line.size - body) < 0.5 and len(text) <= 40


def merge_heading_lines(lines: list[Line], body: float) -> list[Line]:
    """A heading wrapped over two or three lines becomes one line."""
    out: list[Line] = []
    run = 0
    for line in lines:
        prev = out[-1] if out else None
        if (prev is not None and run < 3 and is_heading_line(prev, body) and is_heading_line(line, body)
                and abs(prev.size - line.size) < 0.3 and prev.bold == line.bold and prev.column == line.column
                and 0 <= line.top - prev.bottom < 0.8 * line.size and len(prev.text) >= 8):
            joined = prev.text + (" " if _needs_space(prev.text, line.text) else "") + line.text
            out[-1] = Line(text=joined, x0=min(prev.x0, line.x0), x1=max(prev.x1, line.x1), top=prev.top,
                           bottom=line.bottom, size=prev.size, bold=prev.bold, column=prev.column)
            run += 1
            continue
        run = 0
        out.append(line)
    return out


def font_levels(pages: list[list[Line]], body: float) -> dict[float, int]:
    """Heading level per rounded font size (largest = 1); bold body-size lines come last.

    Empty when "headings" would be a quarter of all lines or more: then the sizes
    do not mark headings (a poster, a slide deck) and the text patterns decide.
    """
    candidates = [l for lines in pages for l in lines if is_heading_line(l, body)]
    total = sum(1 for lines in pages for l in lines if not l.is_table)
    if not candidates or len(candidates) > 0.25 * total:
        return {}
    sizes = sorted({round(l.size * 2) / 2 for l in candidates if l.size >= body * HEADING_SIZE_RATIO},
                   reverse=True)[:5]
    levels = {size: k + 1 for k, size in enumerate(sizes)}
    levels[-1.0] = len(sizes) + 1  # bold at body size
    return levels


def level_of(line: Line, body: float, levels: dict[float, int]) -> int | None:
    """The heading level of ``line`` by ``font_levels``, or None for body text."""
    if not levels or not is_heading_line(line, body):
        return None
    if line.size >= body * HEADING_SIZE_RATIO:
        return levels.get(round(line.size * 2) / 2)
    return levels.get(-1.0)
