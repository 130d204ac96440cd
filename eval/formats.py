"""Turn a text corpus into real PDF, Word, HTML and scanned files (the format-equivalence check).

Each .txt/.md document is read by rag's own text pipeline and written out with
its structure made explicit the way each format states it: headings as
``<h1>``–``<h6>`` (HTML), as larger bold type (PDF, printed by headless
Chromium, optionally with bookmarks), as ``Heading N`` styles (Word). The PDF
has a running header and a page-number footer on every page, so the loader's
boilerplate removal is exercised too; ``columns=2`` sets the body in two
columns. A scan is the PDF's pages rendered to images (``dpi``) and stored as
an image-only PDF, so only OCR can read it.

    python -m eval.formats seeds/ /tmp/formats     # -> /tmp/formats/{html,pdf,docx,scan}/

Converted files keep the source's stem (``002_….txt`` -> ``002_….pdf``), which is
how ``rag eval`` maps eval/qa.jsonl's ``source`` fields onto them.
"""
from __future__ import annotations

import argparse
import html
import io
import os
import sys
from pathlib import Path
from typing import Iterable

#: Chromium that prints the PDFs (Debian's, installed by scripts/install-browser.sh).
CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
RUNNING_HEADER = "工会工作资料汇编 · 内部资料"
FORMATS = ("html", "pdf", "docx", "scan")

_CSS = """
@page { size: A4; margin: 22mm 18mm 20mm 18mm; }
body { font-family: 'Noto Serif CJK SC', 'Noto Sans CJK SC', serif; font-size: 11pt; line-height: 1.55; }
h1 { font-size: 19pt; font-weight: bold; margin: 14pt 0 8pt; }
h2 { font-size: 16pt; font-weight: bold; margin: 12pt 0 6pt; }
h3 { font-size: 14pt; font-weight: bold; margin: 10pt 0 5pt; }
h4, h5, h6 { font-size: 12.5pt; font-weight: bold; margin: 8pt 0 4pt; }
p { margin: 0 0 5pt; text-align: justify; }
table { border-collapse: collapse; margin: 6pt 0; }
td, th { border: 1px solid #333; padding: 2pt 6pt; font-size: 10.5pt; }
.cols { column-count: 2; column-gap: 10mm; }
nav, footer { font-size: 9pt; color: #555; }
"""


def structure_of(path: Path) -> list[tuple[int, str]]:
    """``(level, text)`` per logical line of a text file: level 1..6 for headings, 0 for body."""
    from rag.ingest.documents import load_document
    from rag.ingest.headings import analyse

    structure = analyse(load_document(path))
    out: list[tuple[int, str]] = []
    for section in structure.sections:
        for k, block in enumerate(section.blocks):
            level = section.heading.level if (k == 0 and section.heading is not None) else 0
            text = section.heading.title if level and section.heading.kind == "markdown" else block.text
            out.append((min(level, 6), text))
    return out


def to_html(items: Iterable[tuple[int, str]], title: str, boilerplate: bool = True,
            columns: int = 1, table: list[list[str]] | None = None) -> str:
    """A web page: headings as h1–h6, body as paragraphs; with ``boilerplate``, navigation,
    a script, a style sheet and a footer around the article, as saved pages have."""
    body: list[str] = []
    for level, text in items:
        tag = f"h{level}" if level else "p"
        body.append(f"<{tag}>{html.escape(text)}</{tag}>")
    if table:
        head, *rows = table
        cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        lines = [f"<tr>{cells}</tr>"] + ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                         for r in rows]
        body.append("<table>" + "".join(lines) + "</table>")
    article = "\n".join(body)
    if columns == 2:
        article = f'<div class="cols">{article}</div>'
    parts = [f"<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style>"]
    if boilerplate:
        parts.append("<script>window.analytics = {track: function () {}};</script>")
    parts.append("</head><body>")
    if boilerplate:
        parts.append('<nav class="menu"><a href="/">首页</a> | <a href="/news">新闻中心</a> | '
                     '<a href="/about">关于我们</a> | <a href="/contact">联系我们</a></nav>')
    parts.append(f"<main><article>{article}</article></main>")
    if boilerplate:
        parts.append('<footer>版权所有 © 2024 中华全国总工会 · 京ICP备00000000号 · '
                     '<a href="/privacy">隐私政策</a></footer>')
    parts.append("</body></html>")
    return "\n".join(parts)


def html_to_pdf(pages: list[tuple[str, Path]], outline: bool = True, header: str = RUNNING_HEADER) -> None:
    """Print each ``(html, target)`` to PDF with headless Chromium (A4, running header,
    ``第 N 页`` footer; ``outline`` adds bookmarks from the headings)."""
    from playwright.sync_api import sync_playwright

    header_html = (f'<div style="font-size:8pt; width:100%; text-align:center; '
                   f"font-family:'Noto Sans CJK SC'\">{html.escape(header)}</div>")
    footer_html = ('<div style="font-size:8pt; width:100%; text-align:center; '
                   "font-family:'Noto Sans CJK SC'\">第 <span class=\"pageNumber\"></span> 页</div>")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            for markup, target in pages:
                page.set_content(markup, wait_until="load")
                target.parent.mkdir(parents=True, exist_ok=True)
                page.pdf(path=str(target), format="A4", display_header_footer=True,
                         header_template=header_html, footer_template=footer_html,
                         margin={"top": "22mm", "bottom": "20mm", "left": "18mm", "right": "18mm"},
                         outline=outline, tagged=outline, print_background=False)
        finally:
            browser.close()


def to_docx(items: Iterable[tuple[int, str]], target: Path, chinese_styles: bool = False,
            table: list[list[str]] | None = None) -> None:
    """A Word file: headings in ``Heading N`` styles (or, with ``chinese_styles``, styles
    named ``标题 N`` as a Chinese Word names them), body in Normal."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    for level, text in items:
        if not level:
            document.add_paragraph(text)
            continue
        if chinese_styles:
            name = f"标题 {level}"
            if name not in [s.name for s in document.styles]:
                style = document.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
                style.base_style = document.styles["Normal"]
                style.font.bold = True
            document.add_paragraph(text, style=name)
        else:
            document.add_heading(text, level=level)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    target.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(target))


def pdf_to_scan(source: Path, target: Path, dpi: int = 200, pages: list[int] | None = None) -> None:
    """An image-only PDF of ``source``'s pages (0-based ``pages``, default all) rendered
    at ``dpi`` in grey: a scanned document."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(source))
    try:
        images = [pdf[i].render(scale=dpi / 72).to_pil().convert("L")
                  for i in (range(len(pdf)) if pages is None else pages)]
    finally:
        pdf.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    target.write_bytes(buffer.getvalue())


def convert_corpus(source_dir: Path, out_dir: Path, formats: Iterable[str] = FORMATS,
                   outline: bool = True, dpi: int = 200) -> dict[str, Path]:
    """Convert every .txt/.md file of ``source_dir`` into ``out_dir/<format>/<stem>.<ext>``."""
    formats = list(formats)
    sources = sorted(p for p in Path(source_dir).iterdir() if p.suffix.lower() in (".txt", ".md"))
    folders = {fmt: Path(out_dir) / fmt for fmt in formats}
    printed: list[tuple[str, Path]] = []
    for path in sources:
        items = structure_of(path)
        if "html" in formats:
            folders["html"].mkdir(parents=True, exist_ok=True)
            (folders["html"] / f"{path.stem}.html").write_text(to_html(items, path.stem), encoding="utf-8")
        if "docx" in formats:
            to_docx(items, folders["docx"] / f"{path.stem}.docx")
        if "pdf" in formats or "scan" in formats:
            pdf_dir = folders.get("pdf", Path(out_dir) / "pdf")
            printed.append((to_html(items, path.stem, boilerplate=False), pdf_dir / f"{path.stem}.pdf"))
    if printed:
        html_to_pdf(printed, outline=outline)
    if "scan" in formats:
        for _, pdf in printed:
            pdf_to_scan(pdf, folders["scan"] / pdf.name, dpi=dpi)
    return folders


def printed_text(items: Iterable[tuple[int, str]]) -> str:
    """The text a converted file shows (what OCR or a loader should give back)."""
    return "\n".join(text for _, text in items)


def char_accuracy(extracted: str, reference: str) -> float:
    """1 - character error rate of ``extracted`` against ``reference``.

    Errors are the reference characters not matched, in order, by the extracted
    text (deletions, substitutions) plus extracted characters matching nothing
    (insertions), over the reference length. Both sides are compared after NFKC
    and without whitespace (``rag.text.normalize``), so full-/half-width
    punctuation and line breaks are not errors.
    """
    from difflib import SequenceMatcher

    from rag.text import normalize

    a, b = normalize(reference), normalize(extracted)
    if not a:
        return 1.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return 1 - ((len(a) - matched) + (len(b) - matched)) / len(a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.formats", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder of .txt/.md files (e.g. seeds)")
    parser.add_argument("out", type=Path, help="output folder (html/, pdf/, docx/, scan/ are made in it)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ",".join(FORMATS))
    parser.add_argument("--no-outline", action="store_true", help="PDF without bookmarks (headings from font size)")
    parser.add_argument("--dpi", type=int, default=200, help="resolution of the scans (default 200)")
    args = parser.parse_args(argv)
    folders = convert_corpus(args.source, args.out, args.formats.split(","), not args.no_outline, args.dpi)
    for fmt, folder in folders.items():
        print(f"{fmt}: {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
