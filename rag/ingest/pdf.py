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
    #: What was extracted is cached under this version (OCR is slow; see rag.ingest.documents):
    #: bump it whenever this loader, rag.ingest.layout or rag.ingest.ocr change their output.
    extraction_version = 2

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


def _font_is_bold(textpage, index: int) -> bool:
    """Whether the character's font is bold (weight >= 600, or Bold/Heavy/Black in its name)."""
    import ctypes

    import pypdfium2.raw as raw

    if raw.FPDFText_GetFontWeight(textpage, index) >= 600:
        return True
    buffer = ctypes.create_string_buffer(256)
    flags = ctypes.c_int()
    raw.FPDFText_GetFontInfo(textpage, index, buffer, 256, ctypes.byref(flags))
    name = buffer.value.decode("latin-1", "replace").lower()
    return any(k in name for k in ("bold", "heavy", "black", "semibold", "demi"))


def _page_words(page) -> tuple[list[Word], float, float]:
    """Words of a PDFium page from its text layer (PDFium's own character map), and its size.

    A word is a run of characters on one line without a gap, in one font size;
    its weight is that of its first character.
    """
    import pypdfium2.raw as raw

    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        words: list[Word] = []
        chars: list[str] = []
        box = [0.0, 0.0, 0.0, 0.0]   # x0, x1, top, bottom of the current word
        size = 0.0
        bold = False
        last_right = 0.0

        def flush() -> None:
            if chars:
                words.append(Word(text=fix_text("".join(chars)), x0=box[0], x1=box[1], top=box[2],
                                  bottom=box[3], size=size, bold=bold))
                chars.clear()

        for i in range(textpage.count_chars()):
            code = raw.FPDFText_GetUnicode(textpage, i)
            ch = chr(code) if code else ""
            if not ch or ch.isspace() or raw.FPDFText_IsGenerated(textpage, i) == 1:
                flush()
                continue
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            top, bottom = height - top, height - bottom
            char_size = raw.FPDFText_GetFontSize(textpage, i)
            if chars:
                middle = (top + bottom) / 2
                gap = left - last_right
                if (not box[2] - 1 <= middle <= box[3] + 1 or gap > max(_X_TOLERANCE, 0.25 * char_size)
                        or gap < -0.5 * char_size or abs(char_size - size) > 0.5):
                    flush()
            if not chars:
                box[:] = [left, right, top, bottom]
                size, bold = char_size, _font_is_bold(textpage, i)
            else:
                box[0], box[1] = min(box[0], left), max(box[1], right)
                box[2], box[3] = min(box[2], top), max(box[3], bottom)
            chars.append(ch)
            last_right = right
        flush()
        return [w for w in words if w.text.strip()], float(width), float(height)
    finally:
        textpage.close()


def _drawn_objects(page) -> tuple[bool, bool]:
    """``(has paths, has images)``: whether the page draws lines/boxes (a ruled table needs
    them) and images (a scan). Raw calls: PDFium wrapper objects per character cost ~50x more."""
    import pypdfium2.raw as raw

    paths = images = False
    for k in range(raw.FPDFPage_CountObjects(page.raw)):
        kind = raw.FPDFPageObj_GetType(raw.FPDFPage_GetObject(page.raw, k))
        if kind == raw.FPDF_PAGEOBJ_PATH:
            paths = True
        elif kind in (raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_FORM):
            images = True  # a form XObject may hold the scanned image
        if paths and images:
            break
    return paths, images


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
                    ruled, has_images = _drawn_objects(page)
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
