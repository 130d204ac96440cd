"""Document formats: PDF text-layer parsing and OCR speed, in pages per second.

The seeds are printed to PDF by headless Chromium (``eval.formats``, CJK font,
running header and footer), then read back by ``rag.ingest.pdf`` (PDFium text
layer, layout, headings); the first seed's pages are rendered to a 200-dpi scan
and read by OCR. The extraction cache is off, so every page is really parsed.
Wall-clock and CPU seconds are both reported: on a shared machine the CPU time
says what the code costs, the wall time what a user waited.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from statistics import median

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``fn`` over ``repeats`` runs, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return median(walls), median(cpus), result


def run(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from bench.run import SectionSkipped
    from eval import formats
    from rag.ingest import ocr
    from rag.ingest.documents import load_file

    if not formats.CHROMIUM.exists():
        raise SectionSkipped(f"no Chromium at {formats.CHROMIUM} to print the test PDFs")
    previous = os.environ.get("RAG_DOCUMENT_CACHE")
    os.environ["RAG_DOCUMENT_CACHE"] = "off"
    try:
        with tempfile.TemporaryDirectory(prefix="rag-bench-formats-") as tmp:
            out = Path(tmp)
            seeds = sorted(SEEDS.glob("*.txt"))[:2] if quick else sorted(SEEDS.glob("*.txt"))
            log(f"   printing {len(seeds)} seed(s) to PDF")
            formats.html_to_pdf([(formats.to_html(formats.structure_of(p), p.stem, boilerplate=False),
                                  out / f"{p.stem}.pdf") for p in seeds], outline=True)
            pdfs = sorted(out.glob("*.pdf"))
            repeats = 1 if quick else 3
            wall, cpu, docs = _timed(lambda: [load_file(p)[0] for p in pdfs], repeats)
            pages = sum(d.pages for d in docs)
            rows = [{"what": "PDF text layer (PDFium + layout)", "pages": pages, "wall_s": round(wall, 3),
                     "cpu_s": round(cpu, 3), "pages_per_s": round(pages / wall, 1),
                     "pages_per_cpu_s": round(pages / max(cpu, 1e-9), 1)}]
            log(f"   text layer: {pages} pages in {wall:.2f} s ({pages / wall:.1f} pages/s, "
                f"{pages / max(cpu, 1e-9):.1f} per CPU second)")
            if ocr.available():
                scan = out / "scan" / pdfs[0].name
                formats.pdf_to_scan(pdfs[0], scan)
                if quick:  # one page is enough to see OCR work
                    import pypdfium2 as pdfium

                    doc = pdfium.PdfDocument(str(scan))
                    one = pdfium.PdfDocument.new()
                    one.import_pages(doc, [0])
                    one.save(str(scan))
                    one.close()
                    doc.close()
                ocr.engine()  # model load is not per page
                wall, cpu, doc = _timed(lambda: load_file(scan)[0], 1)
                rows.append({"what": "OCR of a 200-dpi scan (RapidOCR PP-OCRv4, onnxruntime)",
                             "pages": doc.pages, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                             "pages_per_s": round(doc.pages / wall, 3),
                             "pages_per_cpu_s": round(doc.pages / max(cpu, 1e-9), 3)})
                log(f"   OCR: {doc.pages} page(s) in {wall:.1f} s ({doc.pages / wall:.3f} pages/s)")
    finally:
        if previous is None:
            os.environ.pop("RAG_DOCUMENT_CACHE", None)
        else:
            os.environ["RAG_DOCUMENT_CACHE"] = previous
    load = os.getloadavg()
    return {"rows": rows, "load_avg": list(load), "tables": [{
        "title": "Document formats (pages per second; the extraction cache off)",
        "headers": ["what", "pages", "wall s", "CPU s", "pages/s", "pages per CPU s"],
        "rows": [[r["what"], r["pages"], r["wall_s"], r["cpu_s"], r["pages_per_s"], r["pages_per_cpu_s"]]
                 for r in rows]}],
        "notes": [f"load average {load[0]:.1f} at the end of this section (2 cores): wall time grows with it"]}
