"""Word .docx: paragraphs and tables in document order, headings from styles and outline levels.

python-docx (MIT) reads the file. A paragraph is a heading when its style is
``Heading N`` / ``标题 N`` (or ``Title``), or when it or its style (through the
style's ancestors) sets an outline level. Numbered and bulleted paragraphs get
their list number written out (``1.``, ``一、``, ``（1）``, ``•``) from the
document's numbering definitions, so "一、…" items read as they print. Tables
become one line per row. A .docx has no fixed pages (Word lays them out when
printing), so its chunks carry no page.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.documents import Document, TextBuilder

_HEADING_STYLE_RE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_CN_DIGITS = "零一二三四五六七八九"


class DocxLoader:
    """Word 2007+ documents."""

    kind = "docx"
    suffixes = (".docx",)

    def load(self, path: Path, name: str) -> list[Document]:
        return [read_docx(path, name)]


def _open(path: Path):
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise DocumentError(f"{path}: an old Word .doc file or a password-protected .docx; "
                            "skipped (save it as an unprotected .docx)")
    if not zipfile.is_zipfile(path):
        raise DocumentError(f"{path}: not a Word .docx file (not a zip package; corrupt or renamed?); skipped")
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except zipfile.BadZipFile as exc:
        raise DocumentError(f"{path}: the .docx file is corrupt ({exc}); skipped") from exc
    if "word/document.xml" not in names:
        raise DocumentError(f"{path}: a zip file but not a Word document (no word/document.xml: "
                            "a renamed .zip, .xlsx or .pptx?); skipped")
    try:
        return docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DocumentError(f"{path}: the .docx file is corrupt ({type(exc).__name__}: {exc}); skipped") from exc
    except Exception as exc:  # lxml syntax errors and the like
        raise DocumentError(f"{path}: the .docx file cannot be read ({type(exc).__name__}); skipped") from exc


def heading_level(paragraph) -> int | None:
    """Level 1..9 of a heading paragraph (style name, then outline level), else None."""
    style = paragraph.style
    seen = 0
    while style is not None and seen < 10:
        match = _HEADING_STYLE_RE.match((style.name or "").strip())
        if match:
            return max(1, int(match.group(1)))
        if (style.name or "").strip().lower() in ("title", "标题"):
            return 1
        level = _outline_level(style.element)
        if level is not None:
            return level
        style = style.base_style
        seen += 1
    return _outline_level(paragraph._p)


def _outline_level(element) -> int | None:
    ppr = element.find(f"{_W}pPr")
    node = ppr.find(f"{_W}outlineLvl") if ppr is not None else None
    if node is None:
        return None
    value = int(node.get(f"{_W}val", "9"))
    return value + 1 if value < 9 else None   # 9 = body text


class _Numbering:
    """Writes out list numbers (Word computes them when it lays out the page)."""

    def __init__(self, document) -> None:
        self.formats: dict[tuple[str, int], tuple[str, str, int]] = {}
        self.counters: dict[str, list[int]] = {}
        try:
            numbering = document.part.numbering_part.element
        except (NotImplementedError, KeyError, AttributeError):
            return
        abstract = {}
        for node in numbering.findall(f"{_W}abstractNum"):
            levels = {}
            for lvl in node.findall(f"{_W}lvl"):
                fmt = lvl.find(f"{_W}numFmt")
                text = lvl.find(f"{_W}lvlText")
                start = lvl.find(f"{_W}start")
                levels[int(lvl.get(f"{_W}ilvl", "0"))] = (
                    fmt.get(f"{_W}val", "decimal") if fmt is not None else "decimal",
                    text.get(f"{_W}val", "%1.") if text is not None else "%1.",
                    int(start.get(f"{_W}val", "1")) if start is not None else 1)
            abstract[node.get(f"{_W}abstractNumId")] = levels
        for num in numbering.findall(f"{_W}num"):
            ref = num.find(f"{_W}abstractNumId")
            levels = abstract.get(ref.get(f"{_W}val")) if ref is not None else None
            for ilvl, spec in (levels or {}).items():
                self.formats[(num.get(f"{_W}numId"), ilvl)] = spec

    @staticmethod
    def _num_pr(paragraph):
        """The paragraph's numbering properties, else its style's (``List Number`` sets them there)."""
        ppr = paragraph._p.find(f"{_W}pPr")
        numpr = ppr.find(f"{_W}numPr") if ppr is not None else None
        style = paragraph.style
        depth = 0
        while numpr is None and style is not None and depth < 10:
            ppr = style.element.find(f"{_W}pPr")
            numpr = ppr.find(f"{_W}numPr") if ppr is not None else None
            style = style.base_style
            depth += 1
        return numpr

    def label(self, paragraph) -> str:
        numpr = self._num_pr(paragraph)
        if numpr is None:
            return ""
        num_id = numpr.find(f"{_W}numId")
        ilvl = numpr.find(f"{_W}ilvl")
        num = num_id.get(f"{_W}val") if num_id is not None else None
        level = int(ilvl.get(f"{_W}val", "0")) if ilvl is not None else 0
        if num is None or num == "0" or (num, level) not in self.formats:
            return ""
        counters = self.counters.setdefault(num, [0] * 9)
        counters[level] += 1
        for deeper in range(level + 1, 9):
            counters[deeper] = 0
        fmt, text, start = self.formats[(num, level)]
        if fmt == "bullet":
            return "• "
        if fmt == "none":
            return ""

        def value(k: int) -> str:
            k_fmt = self.formats.get((num, k), (fmt, text, start))
            return _format_number(counters[k] + k_fmt[2] - 1, k_fmt[0])

        label = re.sub(r"%(\d)", lambda m: value(int(m.group(1)) - 1), text)
        return label + ("" if label.endswith(("、", "．", "）", ")", " ")) else " ")


def _format_number(n: int, fmt: str) -> str:
    if fmt in ("chineseCounting", "chineseCountingThousand", "ideographTraditional", "taiwaneseCounting",
               "chineseLegalSimplified"):
        return _chinese_number(n)
    if fmt == "lowerLetter":
        return chr(ord("a") + (n - 1) % 26)
    if fmt == "upperLetter":
        return chr(ord("A") + (n - 1) % 26)
    if fmt in ("lowerRoman", "upperRoman"):
        roman = _roman(n)
        return roman.lower() if fmt == "lowerRoman" else roman
    if fmt == "decimalEnclosedCircle" and 1 <= n <= 20:
        return chr(0x2460 + n - 1)
    return str(n)


def _chinese_number(n: int) -> str:
    if n < 10:
        return _CN_DIGITS[n]
    if n < 20:
        return "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _CN_DIGITS[n // 10] + "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    return str(n)


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out


def _table_rows(table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:   # a merged cell repeats; keep it once
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(p.text for p in cell.paragraphs))
        rows.append(cells)
    return rows


def read_docx(path: Path, name: str) -> Document:
    """Read one .docx file into a ``Document``. Raises ``DocumentError``."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = _open(path)
    numbering = _Numbering(document)
    out = TextBuilder()
    for element in document.element.body.iterchildren():
        if element.tag == f"{_W}p":
            paragraph = Paragraph(element, document)
            text = paragraph.text
            level = heading_level(paragraph)
            label = numbering.label(paragraph)
            if level is not None and text.strip():
                out.heading(label + text, level, "style")
            else:
                for line in text.split("\n"):  # soft line breaks stay lines
                    out.paragraph(label + line if line.strip() else "")
                    label = ""
        elif element.tag == f"{_W}tbl":
            out.table(_table_rows(Table(element, document)))
    return out.document(name, path, "docx")
