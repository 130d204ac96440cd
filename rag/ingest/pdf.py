"""PDF: the text layer in reading order, page by page; OCR for pages without usable text.

* pypdfium2 (Apache-2.0/BSD-3, Google's PDFium, the engine of Chrome's viewer)
  opens the file (encrypted or corrupt files are refused with a clear message),
  gives every character with its box, font size and weight, reads the outline
  (bookmarks) and renders pages for OCR. Pages are read one at a time and
  released, so memory stays flat on long files.
* Ruled tables come from pdfplumber (MIT, on pdfminer.six), asked only about
  pages that draw lines: its pure-Python parsing is ~50x slower than PDFium.
* Reading order, two-column pages, running headers/footers/page numbers and
  heading sizes: ``rag.ingest.layout``. Headings come from the outline when the
  file has one, else from font size and weight relative to the body text; the
  Chinese heading patterns of ``rag.ingest.headings`` apply on top. Broken lines
  are re-joined by the same rules as .txt (``rag.ingest.cleaning``).
* Tables: one line per row, cells separated by `` | `` (the first row is the
  header); rows are marked so they are never joined or cut.
* A page whose text layer is empty or garbage (no ToUnicode map: private-use,
  replacement or ``(cid:N)`` characters) is rendered and read by OCR.
"""
from __future__ import annotations

import logging
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest import layout, ocr
from rag.ingest.documents import HEADING, TABLE, Document, Mark
from rag.ingest.layout import Line, Word, fix_text
from rag.ingest.loaders import page_bar
from rag.text import normalize

#: Fewer non-space characters than this on a page: its text layer is empty.
MIN_PAGE_CHARS = 5
#: A page whose text is more garbage than this share is read by OCR.
MAX_GARBAGE_SHARE = 0.2
#: Chromium, Word and LibreOffice break words at most this far apart (points) into one word.
_X_TOLERANCE = 1.5

for _name in ("pdfminer", "pdfplumber"):
    logging.getLogger(_name).setLevel(logging.ERROR)  # font-descriptor warnings on every page


class PdfLoader:
    """.pdf files, text layer and scans alike."""

    kind = "pdf"
    suffixes = (".pdf",)

    def load(self, path: Path, name: str) -> list[Document]:
        return [read_pdf(path, name)]


def _check_readable(path: Path) -> tuple[int, list[tuple[int, str, int]]]:
    """Open with PDFium: ``(pages, outline)``; ``DocumentError`` for encrypted/corrupt/truncated files.

    The outline is ``(level, title, page index)`` per bookmark (level 1 = top).
    """
    import pypdfium2 as pdfium

    with open(path, "rb") as fh:
        head = fh.read(1024)
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 2048))
        tail = fh.read()
    if b"%PDF-" not in head:
        raise DocumentError(f"{path}: not a PDF file (no %PDF header); skipped")
    if b"%%EOF" not in tail:
        raise DocumentError(f"{path}: the PDF is truncated (it ends before its end-of-file marker: "
                            "an incomplete download or copy?); skipped")
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError(f"{path}: the PDF is encrypted and needs a password; "
                                "skipped (save an unprotected copy to index it)") from exc
        raise DocumentError(f"{path}: the PDF is corrupt or unreadable ({exc}); skipped") from exc
    try:
        outline = []
        for bookmark in pdf.get_toc(max_depth=6):
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            title = fix_text(bookmark.get_title() or "").strip()
            if index is not None and title:
                outline.append((bookmark.level + 1, title, int(index)))
        return len(pdf), outline
    finally:
        pdf.close()


def _font_is_bold(textpage, index: int, cache: dict) -> bool:
    import ctypes

    import pypdfium2.raw as raw

    obj = raw.FPDFText_GetTextObject(textpage, index)
    key = ctypes.cast(obj, ctypes.c_void_p).value
    if key not in cache:
        weight = raw.FPDFText_GetFontWeight(textpage, index)
        buffer = ctypes.create_string_buffer(256)
        flags = ctypes.c_int()
        raw.FPDFText_GetFontInfo(textpage, index, buffer, 256, ctypes.byref(flags))
        name = buffer.value.decode("latin-1", "replace").lower()
        cache[key] = weight >= 600 or any(k in name for k in ("bold", "heavy", "black", "semibold", "demi"))
    return cache[key]


def _page_words(page) -> tuple[list[Word], float, float]:
    """Words of a PDFium page from its text layer (PDFium's own character map), and its size."""
    import pypdfium2.raw as raw

    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        words: list[Word] = []
        current: list[tuple[str, float, float, float, float, float, bool]] = []
        bold_cache: dict = {}

        def flush() -> None:
            if current:
                words.append(Word(text=fix_text("".join(c[0] for c in current)),
                                  x0=min(c[1] for c in current), x1=max(c[2] for c in current),
                                  top=min(c[3] for c in current), bottom=max(c[4] for c in current),
                                  size=current[0][5], bold=current[0][6]))
                current.clear()

        for i in range(textpage.count_chars()):
            code = raw.FPDFText_GetUnicode(textpage, i)
            ch = chr(code) if code else ""
            if not ch or ch.isspace() or raw.FPDFText_IsGenerated(textpage, i) == 1:
                flush()
                continue
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            size = raw.FPDFText_GetFontSize(textpage, i)
            char = (ch, left, right, height - top, height - bottom, size, _font_is_bold(textpage, i, bold_cache))
            if current:
                prev = current[-1]
                middle = (char[3] + char[4]) / 2
                same_line = min(c[3] for c in current) - 1 <= middle <= max(c[4] for c in current) + 1
                gap = left - prev[2]
                if (not same_line or gap > max(_X_TOLERANCE, 0.25 * size) or gap < -0.5 * size
                        or abs(size - prev[5]) > 0.5 or char[6] != prev[6]):
                    flush()
            current.append(char)
        flush()
        return [w for w in words if w.text.strip()], float(width), float(height)
    finally:
        textpage.close()


def _has_rules(page) -> bool:
    """Whether the page draws lines or boxes (a ruled table needs them)."""
    import pypdfium2.raw as raw

    for _ in page.get_objects(filter=[raw.FPDF_PAGEOBJ_PATH], max_depth=2):
        return True
    return False


def _page_tables(page) -> tuple[list[Line], list[tuple[float, float, float, float]]]:
    """Ruled tables of a pdfplumber page as ``Line``s with rows, and their boxes."""
    tables, boxes = [], []
    try:
        found = page.find_tables()
    except Exception:  # a table finder failure must not lose the page's text
        page.close()
        return [], []
    for table in found:
        rows = []
        for row in table.extract():
            cells = [fix_text(" ".join((cell or "").split())) for cell in row]
            if any(cells):
                rows.append(" | ".join(cells))
        if len(rows) < 2:
            continue
        x0, top, x1, bottom = table.bbox
        tables.append(Line(text="\n".join(rows), x0=x0, x1=x1, top=top, bottom=bottom, size=0.0, rows=rows))
        boxes.append(table.bbox)
    page.close()  # pdfplumber keeps every parsed page otherwise
    return tables, boxes


def _inside(word: Word, box: tuple[float, float, float, float]) -> bool:
    x0, top, x1, bottom = box
    cx, cy = (word.x0 + word.x1) / 2, (word.top + word.bottom) / 2
    return x0 <= cx <= x1 and top <= cy <= bottom


def _needs_ocr(words: list[Word], has_images: bool) -> bool:
    """An empty text layer over an image (a scan), or a garbage one (no ToUnicode map)."""
    text = "".join(w.text for w in words)
    if len(normalize(text)) < MIN_PAGE_CHARS:
        return has_images
    return layout.garbage_share(text) > MAX_GARBAGE_SHARE


def read_pdf(path: Path, name: str) -> Document:
    """Read one PDF into a ``Document`` (see the module docstring). Raises ``DocumentError``."""
    import pypdfium2 as pdfium

    n_pages, outline = _check_readable(path)
    pages: list[list[Line]] = []
    heights: list[float] = []
    ocr_pages: list[int] = []
    notes: list[str] = []
    missing_ocr: list[int] = []
    plumber = None  # pdfplumber, opened only when a page has ruled lines (tables)
    pdf = pdfium.PdfDocument(str(path))
    try:
        with page_bar(n_pages, name) as bar:
            for index in range(n_pages):
                page = pdf[index]
                try:
                    words, width, height = _page_words(page)
                    ruled = _has_rules(page)
                    has_images = _has_images(page)
                    tables, boxes = [], []
                    if ruled:
                        if plumber is None:
                            import pdfplumber

                            plumber = pdfplumber.open(str(path))
                        tables, boxes = _page_tables(plumber.pages[index])
                except DocumentError:
                    raise
                except Exception as exc:
                    raise DocumentError(f"{path}: page {index + 1} cannot be read "
                                        f"({type(exc).__name__}: {exc}); skipped") from exc
                finally:
                    page.close()
                if _needs_ocr(words, has_images) and not tables:
                    if ocr.available():
                        image = _render(pdf, index)
                        words = ocr.ocr_words(image, scale=72 / ocr.OCR_DPI)
                        ocr_pages.append(index + 1)
                        if not words:
                            notes.append(f"page {index + 1}: no text found, not even by OCR")
                    else:
                        missing_ocr.append(index + 1)
                else:
                    words = [w for w in words if not any(_inside(w, box) for box in boxes)]
                pages.append(layout.page_lines(words, width, tables))
                heights.append(height)
                bar.update(1)
    finally:
        pdf.close()
        if plumber is not None:
            plumber.close()
    if missing_ocr:
        raise ocr.OcrUnavailableError(
            f"{path}: page(s) {_ranges(missing_ocr)} have no usable text layer (scanned?) and OCR is not "
            "installed: pip install 'rag-zh[ocr]'; skipped")
    layout.drop_running_lines(pages, heights)
    return _assemble(path, name, pages, outline, ocr_pages, notes)


def _has_images(page) -> bool:
    import pypdfium2.raw as raw

    for _ in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        return True
    return False


def _render(pdf, index: int):
    page = pdf[index]
    try:
        return page.render(scale=ocr.OCR_DPI / 72).to_numpy()
    finally:
        page.close()


def _assemble(path: Path, name: str, pages: list[list[Line]], outline: list[tuple[int, str, int]],
              ocr_pages: list[int], notes: list[str]) -> Document:
    body = layout.body_size([p for k, p in enumerate(pages) if k + 1 not in ocr_pages]) or 0.0
    if body:
        pages = [layout.merge_heading_lines(lines, body) if k + 1 not in ocr_pages else lines
                 for k, lines in enumerate(pages)]
    heading_at = _outline_headings(pages, outline)
    source = "outline"
    if not heading_at and body:
        levels = layout.font_levels([p for k, p in enumerate(pages) if k + 1 not in ocr_pages], body)
        source = "font"
        for k, lines in enumerate(pages):
            if k + 1 in ocr_pages:
                continue
            for j, line in enumerate(lines):
                level = layout.level_of(line, body, levels)
                if level is not None:
                    heading_at[(k, j)] = level
    text_parts: list[str] = []
    page_starts: list[int] = []
    marks: list[Mark] = []
    offset = 0
    for k, lines in enumerate(pages):
        if k:
            text_parts.append("\n\n")
            offset += 2
        page_starts.append(offset)
        for j, line in enumerate(lines):
            if j:
                text_parts.append("\n")
                offset += 1
            text = "\n".join(line.rows) if line.is_table else line.text
            if line.is_table:
                marks.append(Mark(offset, offset + len(text), TABLE, source="table"))
            elif (k, j) in heading_at:
                marks.append(Mark(offset, offset + len(text), HEADING, heading_at[(k, j)], source))
            text_parts.append(text)
            offset += len(text)
    text = "".join(text_parts)
    if not normalize(text):
        raise DocumentError(f"{path}: no text found in the PDF (not even by OCR); skipped")
    return Document(name=name, path=path, text=text, encoding="pdf", kind="pdf", page_starts=page_starts,
                    ocr_pages=ocr_pages, marks=marks, notes=notes)


def _outline_headings(pages: list[list[Line]], outline: list[tuple[int, str, int]]) -> dict[tuple[int, int], int]:
    """``(page, line) -> level`` for each bookmark found as a line on its page (or the next)."""
    found: dict[tuple[int, int], int] = {}
    for level, title, index in outline:
        key = normalize(title)
        if not key:
            continue
        for k in (index, index + 1):
            if not 0 <= k < len(pages):
                continue
            match = next((j for j, line in enumerate(pages[k])
                          if (k, j) not in found and not line.is_table
                          and (normalize(line.text) == key
                               or (len(key) >= 6 and normalize(line.text).startswith(key)
                                   and len(normalize(line.text)) <= len(key) + 4))), None)
            if match is not None:
                found[(k, match)] = min(level, 6)
                break
    return found


def _ranges(pages: list[int]) -> str:
    """``1-3, 7`` for [1, 2, 3, 7]."""
    out, start, prev = [], pages[0], pages[0]
    for p in pages[1:] + [None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ", ".join(out)
