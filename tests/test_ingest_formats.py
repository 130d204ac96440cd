"""Real PDF, Word, HTML and scanned files made from the shipped seeds, read back.

The files are generated once per session by ``eval.formats`` (the same converter
the format-equivalence table in the README uses): PDFs printed by headless
Chromium with a CJK font, a running header and page-number footer; Word files
written by python-docx with heading styles; web pages with navigation, script
and footer around the article; scans rendered from the PDFs at 200 dpi.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from eval import formats
from rag.ingest import ingest
from rag.ingest.documents import load_documents
from rag.ingest.layout import garbage_share
from rag.text import normalize

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
NEWS = "000_13023a24b223fec4"        # 4 pages as PDF: text and scan
COMPILATION = "002_5b471ee912e3ac09"  # 34 articles behind a table of contents
PAGE = "004_bc844746af0db849"         # a newspaper page: printed in two columns
TABLE = [["地区", "参赛企业（家）", "参赛职工（万人）"], ["甘肃省", "1200", "35"],
         ["江西省", "860", "21.5"], ["四川省", "1530", "48"]]


def _article_titles() -> list[str]:
    """The compilation's top-level headings as the .txt pipeline finds them (TOC + 34 articles)."""
    result = ingest([SEEDS / f"{COMPILATION}.txt"])
    return [normalize(h.title) for h in result.structures[f"{COMPILATION}.txt"].headings]


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("formats")
    items = {stem: formats.structure_of(SEEDS / f"{stem}.txt") for stem in (NEWS, COMPILATION, PAGE)}
    files: dict[str, Path] = {}
    for stem, its in items.items():
        files[f"{stem}.html"] = out / "html" / f"{stem}.html"
        files[f"{stem}.html"].parent.mkdir(exist_ok=True)
        files[f"{stem}.html"].write_text(formats.to_html(its, stem), encoding="utf-8")
        files[f"{stem}.docx"] = out / "docx" / f"{stem}.docx"
        formats.to_docx(its, files[f"{stem}.docx"])
    files["chinese-styles.docx"] = out / "docx-cn" / f"{COMPILATION}.docx"
    formats.to_docx(items[COMPILATION], files["chinese-styles.docx"], chinese_styles=True)
    files["table.docx"] = out / "docx-table" / "table.docx"
    formats.to_docx(items[NEWS][:3], files["table.docx"], table=TABLE)
    outlined = [(formats.to_html(items[NEWS], NEWS, boilerplate=False), out / "pdf" / f"{NEWS}.pdf"),
                (formats.to_html(items[COMPILATION], COMPILATION, boilerplate=False), out / "pdf" / f"{COMPILATION}.pdf"),
                (formats.to_html(items[PAGE], PAGE, boilerplate=False, columns=2), out / "pdf" / f"{PAGE}.pdf"),
                (formats.to_html(items[NEWS][:4], "table", boilerplate=False, table=TABLE), out / "pdf-table" / "table.pdf")]
    formats.html_to_pdf(outlined, outline=True)
    formats.html_to_pdf([(formats.to_html(items[COMPILATION], COMPILATION, boilerplate=False),
                          out / "pdf-font" / f"{COMPILATION}.pdf")], outline=False)
    for markup, target in outlined:
        files[target.name if target.parent.name == "pdf" else "table.pdf"] = target
    files["font.pdf"] = out / "pdf-font" / f"{COMPILATION}.pdf"
    files["scan.pdf"] = out / "scan" / f"{NEWS}.pdf"
    formats.pdf_to_scan(files[f"{NEWS}.pdf"], files["scan.pdf"], pages=[0, 1])  # OCR is slow: two pages
    files["_items"] = items  # type: ignore[assignment]
    return files


def _load(path: Path):
    documents, problems = load_documents([path])
    assert problems == [], problems
    return documents[0]


# ------------------------------------------------------------------ structure


@pytest.mark.parametrize("which", [f"{COMPILATION}.pdf", "font.pdf", f"{COMPILATION}.docx",
                                   "chinese-styles.docx", f"{COMPILATION}.html"])
def test_the_34_article_titles_are_top_level_headings_whatever_the_format(made, which):
    """PDF with bookmarks, PDF without (font size), Word Heading 1 and 标题 1 styles, HTML h1."""
    result = ingest([made[which]])
    structure = result.structures[result.documents[0].name]
    top = [normalize(h.title) for h in structure.headings]
    expected = _article_titles()
    assert len(expected) == 35 and top == expected  # 目录 + 34 articles, in order
    chunks = result.chunks
    assert all(len(c.heading_path) >= 1 for c in chunks if c.start > structure.headings[1].start)


def test_pdf_text_is_the_printed_text_without_running_header_footer_or_page_numbers(made):
    document = _load(made[f"{NEWS}.pdf"])
    printed = formats.printed_text(made["_items"][NEWS])
    assert formats.char_accuracy(document.text, printed) >= 0.995
    assert formats.RUNNING_HEADER not in document.text and "内部资料" not in document.text
    assert "第 1 页" not in document.text and "第 2 页" not in document.text
    assert document.kind == "pdf" and document.pages == 4 and document.ocr_pages == []
    assert "⼯" not in document.text  # Kangxi radicals from the font's map are fixed


def test_lines_broken_by_the_page_width_are_joined_again(made):
    result = ingest([made[f"{NEWS}.pdf"], SEEDS / f"{NEWS}.txt"])
    pdf_chunks = [normalize(c.text) for c in result.chunks_of(f"{NEWS}.pdf")]
    txt_chunks = [normalize(c.text) for c in result.chunks_of(f"{NEWS}.txt")]
    assert pdf_chunks == txt_chunks   # same chunks, character for character


def test_two_columns_are_read_column_by_column(made):
    document = _load(made[f"{PAGE}.pdf"])
    text = normalize(document.text)
    paragraphs = [normalize(t) for level, t in made["_items"][PAGE] if not level and len(t) > 30]
    positions = [text.find(p) for p in paragraphs]
    assert all(pos >= 0 for pos in positions), "a paragraph was cut up by the column order"
    assert positions == sorted(positions)


def test_pdf_without_bookmarks_gets_headings_from_font_size(made):
    result = ingest([made["font.pdf"]])
    document = result.documents[0]
    assert {m.source for m in document.marks if m.kind == "heading"} == {"font"}
    kinds = {h.kind for h in result.structures[document.name].all_headings()}
    assert "font" in kinds


def test_pages_are_recorded_and_every_chunk_knows_its_page(made):
    result = ingest([made[f"{COMPILATION}.pdf"]])
    document = result.documents[0]
    assert document.pages == 89 == len(document.page_starts)
    assert all(1 <= c.page <= 89 for c in result.chunks)
    chunk = next(c for c in result.chunks if "昌吉州" in c.text and c.page > 60)
    assert chunk.page == document.page_at(chunk.start)
    assert document.text[document.page_starts[chunk.page - 1]:chunk.start].count("\n\n") == 0


@pytest.mark.parametrize("which", ["table.pdf", "table.docx"])
def test_tables_stay_tables_and_no_chunk_cuts_a_row(made, which):
    from rag.ingest.chunking import ChunkSettings

    result = ingest([made[which]], ChunkSettings(max_chars=60))
    text = result.documents[0].text
    rows = [" | ".join(row) for row in TABLE]
    for row in rows:
        assert row in text
    for chunk in result.chunks:
        for row in rows:
            cut = any(0 < len(piece) < len(row) and (chunk.text.startswith(piece) or chunk.text.endswith(piece))
                      for piece in (row[:k] for k in range(5, len(row))))
            assert not cut or row in chunk.text


def test_html_keeps_the_article_and_drops_navigation_scripts_and_footer(made):
    document = _load(made[f"{NEWS}.html"])
    assert "首页" not in document.text and "新闻中心" not in document.text
    assert "版权所有" not in document.text and "analytics" not in document.text
    printed = formats.printed_text(made["_items"][NEWS])
    assert normalize(document.text) == normalize(printed)
    assert [m.level for m in document.marks if m.kind == "heading"]


def test_docx_numbered_lists_and_outline_levels(tmp_path):
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    style = document.styles.add_style("章节标题", WD_STYLE_TYPE.PARAGRAPH)
    ppr = style.element.get_or_add_pPr()
    level = OxmlElement("w:outlineLvl")
    level.set(qn("w:val"), "0")
    ppr.append(level)
    document.add_paragraph("劳动竞赛情况", style="章节标题")
    document.add_paragraph("全省开展劳动竞赛。")
    document.add_paragraph("参赛企业1200家", style="List Number")
    document.add_paragraph("参赛职工35万人", style="List Number")
    path = tmp_path / "outline.docx"
    document.save(path)
    result = ingest([path])
    text = result.documents[0].text
    assert "1. 参赛企业1200家" in text and "2. 参赛职工35万人" in text
    assert [h.title for h in result.structures["outline.docx"].headings] == ["劳动竞赛情况"]


# ------------------------------------------------------------------ scans and OCR


def test_a_scanned_pdf_is_read_by_ocr_page_by_page(made):
    scan = _load(made["scan.pdf"])
    assert scan.kind == "pdf" and scan.ocr_pages == [1, 2]
    text_layer = _load(made[f"{NEWS}.pdf"])
    for page in (1, 2):  # against what the same pages say in the text-layer PDF
        printed = text_layer.text[text_layer.page_starts[page - 1]:text_layer.page_starts[page]]
        read = scan.text[scan.page_starts[page - 1]:scan.page_starts[page] if page < scan.pages else None]
        assert formats.char_accuracy(read, printed) >= 0.97
    assert formats.RUNNING_HEADER not in scan.text and "第 1 页" not in scan.text


def test_an_image_is_read_by_ocr_and_an_empty_one_is_reported(made, tmp_path):
    import pypdfium2 as pdfium
    from PIL import Image

    pdf = pdfium.PdfDocument(str(made[f"{NEWS}.pdf"]))
    page = pdf[0].render(scale=200 / 72).to_pil()
    page.crop((0, 0, page.width, page.height // 4)).save(tmp_path / "page.png")  # OCR is slow: a quarter
    pdf.close()
    Image.new("RGB", (800, 600), "white").save(tmp_path / "blank.png")
    documents, problems = load_documents([tmp_path])
    assert [d.name for d in documents] == ["page.png"] and documents[0].kind == "image"
    assert "团结动员亿万职工" in normalize(documents[0].text)
    assert [p.path.name for p in problems] == ["blank.png"]
    assert "no text found" in problems[0].message


def test_garbage_text_layers_are_recognised():
    assert garbage_share("\ue000\ue001\ue002工会") > 0.5
    assert garbage_share("(cid:12)(cid:13)(cid:14)") == 1.0
    assert garbage_share("全国总工会宣布热线建成。") == 0.0


# ------------------------------------------------------------------ bad input


def _encrypted_pdf(source: Path, target: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner")
    with open(target, "wb") as fh:
        writer.write(fh)


def test_bad_files_are_listed_with_their_reason_and_the_good_ones_still_load(made, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("全国总工会宣布12351热线全面建成。", encoding="utf-8")
    (folder / "b.pdf").write_bytes(made[f"{NEWS}.pdf"].read_bytes())
    (folder / "c.html").write_bytes(made[f"{NEWS}.html"].read_bytes())
    _encrypted_pdf(made[f"{NEWS}.pdf"], folder / "locked.pdf")
    data = made[f"{NEWS}.pdf"].read_bytes()
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 2])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("photos/cat.txt", "not a word document")
    (folder / "renamed.docx").write_bytes(buffer.getvalue())
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "notes.xyz").write_text("?", encoding="utf-8")
    result = ingest([folder])
    assert sorted(d.name for d in result.documents) == ["b.pdf", "c.html", "good.txt"]
    reasons = {p.path.name: p.message for p in result.problems}
    assert set(reasons) == {"locked.pdf", "truncated.pdf", "renamed.docx", "empty.pdf", "notes.xyz"}
    assert "encrypted" in reasons["locked.pdf"] and "password" in reasons["locked.pdf"]
    assert "truncated" in reasons["truncated.pdf"]
    assert "not a Word document" in reasons["renamed.docx"]
    assert "empty" in reasons["empty.pdf"] and "0 bytes" in reasons["empty.pdf"]
    assert "unsupported file type" in reasons["notes.xyz"]
    assert all(name in message for name, message in reasons.items())
    assert {r.doc for r in result.reports} == {"b.pdf", "c.html", "good.txt"}


def test_rag_chunks_prints_a_line_per_file_and_every_file_it_did_not_index(made, tmp_path, capsys):
    from rag.cli import main

    (tmp_path / "a.txt").write_text("全国总工会宣布12351热线全面建成。", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(made[f"{NEWS}.pdf"].read_bytes())
    (tmp_path / "c.html").write_bytes(made[f"{NEWS}.html"].read_bytes())
    (tmp_path / "d.pdf").write_bytes(b"%PDF-1.7 broken")
    assert main(["chunks", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 document(s)" in out and "1 problem(s)" in out
    assert "b.pdf: pdf, 4 pages, " in out and "c.html: html, " in out and "a.txt: txt, " in out
    assert "not indexed: " in out and "d.pdf" in out


def test_a_300_page_pdf_loads_with_progress_and_bounded_memory(tmp_path):
    """Memory of reading 300 pages stays within a small margin of reading 30 (pages are released)."""
    page = "<p>" + "全国总工会推进产业工人队伍建设改革，职工技能水平持续提升。" * 12 + "</p>"

    def book(n: int) -> str:
        body = "".join(f'<h2>第{k}节 工作进展</h2>{page}<div style="page-break-after: always"></div>'
                       for k in range(1, n + 1))
        return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>"

    big, small = tmp_path / "big.pdf", tmp_path / "small.pdf"
    formats.html_to_pdf([(book(300), big), (book(30), small)], outline=False)
    script = ("import json, resource, sys; from rag.ingest.documents import load_documents; "
              "docs, problems = load_documents([sys.argv[1]], progress=True); "
              "print(json.dumps({'pages': docs[0].pages, 'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))")
    runs = {}
    for path in (small, big):
        env = {**os.environ, "RAG_DOCUMENT_CACHE": "off", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                              cwd=ROOT, timeout=600, check=True, env=env)
        runs[path.name] = (json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr)
    assert runs["big.pdf"][0]["pages"] == 300 and runs["small.pdf"][0]["pages"] == 30
    assert "/300 [" in runs["big.pdf"][1] and "page/s" in runs["big.pdf"][1]  # the per-page progress bar
    grown_mb = (runs["big.pdf"][0]["rss_kb"] - runs["small.pdf"][0]["rss_kb"]) / 1024
    assert grown_mb < 60, f"reading 300 pages took {grown_mb:.0f} MB more than 30 pages"


# ------------------------------------------------------------------ index, pages, originals


def test_the_index_keeps_originals_and_pages_and_citations_carry_the_page(made, make_retriever, tmp_path):
    from rag import Assistant

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / f"{COMPILATION}.pdf").write_bytes(made[f"{COMPILATION}.pdf"].read_bytes())
    (docs / "note.txt").write_text("全国总工会宣布12351热线全面建成。", encoding="utf-8")
    retriever = make_retriever([docs])
    summary = retriever.build_summary
    assert [(f.doc, f.kind, f.pages) for f in summary.files] == [(f"{COMPILATION}.pdf", "pdf", 89),
                                                               ("note.txt", "txt", 0)]
    original = retriever.original_file(f"{COMPILATION}.pdf")
    assert original is not None and original.read_bytes() == (docs / f"{COMPILATION}.pdf").read_bytes()
    assert original.is_relative_to(retriever.index_dir)
    assert retriever.original_file("note.txt").read_text(encoding="utf-8").startswith("全国总工会")
    hits = retriever.search("昌吉州教育工会五年工作综述", k=3, mode="bm25")
    assert hits[0].doc.endswith(".pdf") and hits[0].page is not None and hits[0].page > 60
    note = retriever.search("12351热线全面建成", k=1, mode="bm25")[0]
    assert note.doc == "note.txt" and note.page is None
    answer = Assistant(retriever).ask("昌吉州教育工会的工作综述讲了什么？")
    pdf_citations = [c for c in answer.citations if c.doc.endswith(".pdf")]
    assert pdf_citations and all(c.page == retriever.page_at(c.doc, c.start) for c in pdf_citations)
    # Reloaded from disk (and after an add), pages and originals are still there.
    from rag.retriever import Retriever

    (docs / "more.txt").write_text("新疆北方建设集团工会助力企业高质量发展。", encoding="utf-8")
    retriever.add([docs / "more.txt"])
    again = Retriever.load(retriever.index_dir, embedder=retriever.embedder)
    assert again.page_at(f"{COMPILATION}.pdf", hits[0].start) == hits[0].page
    assert again.original_file(f"{COMPILATION}.pdf").read_bytes() == original.read_bytes()


def test_rag_ask_output_shows_the_page():
    from rag.commands.ask import format_answer
    from rag.types import Answer, Citation

    answer = Answer(question="q", text="甲。[1]", citations=[Citation(1, "c", "r.pdf", ["标题"], "甲。", 5, 7, 12)])
    out = io.StringIO()
    format_answer(answer, out)
    assert "[1] r.pdf · 标题 (第12页 · p. 12, 字符 5–7)" in out.getvalue()


def test_the_ui_shows_the_page_and_serves_the_original_at_it(made, make_retriever, tmp_path):
    import socket
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    from rag import Assistant
    from ui import render
    from ui.app import DEFAULT_KNOWLEDGE_BASE, ORIGINALS_ROUTE, build_app, launch

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / f"{COMPILATION}.pdf").write_bytes(made[f"{COMPILATION}.pdf"].read_bytes())
    (docs / "note.txt").write_text("全国总工会宣布12351热线全面建成。", encoding="utf-8")
    retriever = make_retriever([docs])
    doc = f"sub/{COMPILATION}.pdf"
    answer = Assistant(retriever).ask("昌吉州教育工会的工作综述讲了什么？")
    citation = next(c for c in answer.citations if c.doc == doc)
    base = f"{ORIGINALS_ROUTE}/{DEFAULT_KNOWLEDGE_BASE}"
    html = render.sources_html(answer, 1, lambda d, p: render.original_href(d, p, base))
    assert f"第{citation.page}页 · p. {citation.page}" in html
    assert f'href="{base}/{quote(doc, safe="")}#page={citation.page}"' in html

    app = build_app(retriever)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(app, port=port, block=False, quiet=True)
    try:
        base = f"http://127.0.0.1:{port}{base}/"
        with urllib.request.urlopen(base + quote(doc, safe="")) as response:
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.read() == (docs / "sub" / f"{COMPILATION}.pdf").read_bytes()
        with urllib.request.urlopen(base + "note.txt") as response:
            assert response.read().decode("utf-8").startswith("全国总工会")
        for probe in ("..%2F..%2Fmanifest.json", "../manifest.json", quote(str(retriever.index_dir / "manifest.json"),
                                                                            safe=""), "missing.pdf"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + probe)
            assert err.value.code == 404
    finally:
        app.close()
