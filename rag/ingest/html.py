"""Saved web pages (.html, .htm): the main content only, h1–h6 as headings.

lxml (BSD) parses the page. Scripts, styles, forms and the parts of a page that
are not its content (``nav``, ``aside``, ``footer``, a page-level ``header``,
ARIA navigation/banner/contentinfo roles, and elements whose class or id says
menu, sidebar, breadcrumb, footer, share, comment, advert, copyright...) are
removed; then the ``<main>``/``<article>`` holding the most text is read, else
the body. Headings keep their level; tables become one line per row; list
items keep their numbers (``1.``) or a bullet.
"""
from __future__ import annotations

import re
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.documents import Document, TextBuilder
from rag.ingest.plaintext import decode_bytes

_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button",
              "select", "input", "textarea", "nav", "aside", "footer", "object", "embed", "map", "dialog")
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
_BOILERPLATE_RE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|menu|sidebar|side-bar|breadcrumbs?|footer|foot|share|sharing|social|"
    r"comments?|advert|ads?|banner|copyright|related|recommend|toolbar|topbar|pagination|pager|cookie)"
    r"(?:$|[\s_-])", re.IGNORECASE)
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "blockquote", "pre", "li", "dt", "dd",
               "figure", "figcaption", "address", "center", "ul", "ol", "dl", "body", "hr", "caption"}
_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_\-]+)", re.IGNORECASE)


class HtmlLoader:
    """Web pages saved as HTML."""

    kind = "html"
    suffixes = (".html", ".htm", ".xhtml")

    def load(self, path: Path, name: str) -> list[Document]:
        return [read_html(path, name)]


def _decode(data: bytes, label: str) -> tuple[str, str]:
    match = _CHARSET_RE.search(data[:4096])
    if match:
        encoding = match.group(1).decode("ascii").lower()
        if encoding in ("gb2312", "gbk"):
            encoding = "gb18030"   # a superset: pages labelled GB2312 often hold GBK characters
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(data, label)


def _is_boilerplate(element) -> bool:
    if element.tag in _DROP_TAGS:
        return True
    if (element.get("role") or "").lower() in _DROP_ROLES or element.get("hidden") is not None:
        return True
    if element.tag == "header" and not any(a.tag in ("article", "main") for a in element.iterancestors()):
        return True
    names = f"{element.get('class') or ''} {element.get('id') or ''}"
    if element.tag in ("main", "article", "body") or not names.strip():
        return False
    return bool(_BOILERPLATE_RE.search(names))


def _text_length(element) -> int:
    return len("".join(element.itertext()).split())


def main_content(root):
    """The element holding the page's content (boilerplate already removed)."""
    candidates = [e for e in root.iter("main", "article") if _text_length(e) > 0]
    if candidates:
        return max(candidates, key=lambda e: len("".join(e.itertext())))
    body = root.find("body")
    return body if body is not None else root


class _Walker:
    def __init__(self, out: TextBuilder) -> None:
        self.out = out
        self.line: list[str] = []

    def flush(self) -> None:
        text = " ".join("".join(self.line).split())
        self.line = []
        if text:
            self.out.paragraph(text)

    def walk(self, element, list_label: str = "") -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.out.heading("".join(element.itertext()), int(tag[1]), "html")
            self._tail(element)
            return
        if tag == "table":
            self.flush()
            rows = []
            for tr in element.iter("tr"):
                rows.append([" ".join("".join(c.itertext()).split()) for c in tr if c.tag in ("td", "th")])
            self.out.table(rows)
            self._tail(element)
            return
        if tag == "pre":
            self.flush()
            for line in "".join(element.itertext()).splitlines():
                self.out.paragraph(line)
            self._tail(element)
            return
        if tag == "br":
            self.flush()
            self._tail(element)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self.flush()
        if tag == "li" and list_label:
            self.line.append(list_label)
        if element.text:
            self.line.append(element.text)
        number = 0
        for child in element:
            label = ""
            if child.tag == "li":
                if tag == "ol":
                    number += 1
                    label = f"{number}. "
                elif tag == "ul":
                    label = "• "
            self.walk(child, label)
        if block:
            self.flush()
        self._tail(element)

    def _tail(self, element) -> None:
        if element.tail:
            self.line.append(element.tail)


def read_html(path: Path, name: str) -> Document:
    """Read one saved web page into a ``Document``. Raises ``DocumentError``."""
    import lxml.etree
    import lxml.html

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file ({exc.strerror or exc}); skipped") from exc
    text, encoding = _decode(data, str(path))
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"),
                                             parser=lxml.html.HTMLParser(encoding="utf-8", remove_comments=True))
    except (lxml.etree.ParserError, ValueError) as exc:
        raise DocumentError(f"{path}: not a readable HTML page ({exc}); skipped") from exc
    for element in list(root.iter()):
        if isinstance(element.tag, str) and element.getparent() is not None and _is_boilerplate(element):
            element.drop_tree()
    out = TextBuilder()
    walker = _Walker(out)
    walker.walk(main_content(root))
    walker.flush()
    return out.document(name, path, "html", encoding)
