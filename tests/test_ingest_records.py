"""Collections that come as one file: JSON Lines, and plain text with one document per line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rag.ingest import ingest
from rag.ingest.records import one_doc_per_line

ROOT = Path(__file__).resolve().parents[1]
FAKE_RAG = Path(__file__).resolve().parent / "rag_fake_model.py"

RECORDS = [
    {"id": "rail-1", "title": "京沪高铁  开通", "text": "京沪高速铁路全长1318公里，设计时速350公里，2011年6月30日正式开通运营。",
     "metadata": {"source": "新华社", "date": "2011-06-30"}},
    "这一行不是 JSON",
    {"text": "大熊猫主要生活在四川、陕西和甘肃的山区竹林中，以竹子为主要食物。"},
    {"id": "rail-1", "text": "重复的编号：这条记录不应进入索引。"},
    {"id": 7, "text": ""},
    {"id": 8, "title": "龙井", "text": "西湖龙井是绿茶的一种，产于浙江省杭州市西湖周围的群山之中。"},
]


def _write_jsonl(path: Path) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in RECORDS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_records_become_documents_named_by_id_with_the_title_as_heading(tmp_path):
    result = ingest([_write_jsonl(tmp_path / "news.jsonl")])
    assert [d.name for d in result.documents] == ["news.jsonl:rail-1", "news.jsonl:3", "news.jsonl:8"]
    rail = result.documents[0]
    assert (rail.record_id, rail.title, rail.metadata) == ("rail-1", "京沪高铁 开通", RECORDS[0]["metadata"])
    assert str(rail.path).endswith("news.jsonl:1")  # provenance: file and line
    assert len({d.sha256 for d in result.documents}) == 3  # one source each, not the file's hash
    chunk = result.chunks_of("news.jsonl:rail-1")[0]
    assert chunk.heading_path == ["京沪高铁 开通"]
    assert rail.text[chunk.start:chunk.end].endswith("正式开通运营。")
    # every bad record is named with its line and reason; the good ones still load
    notes = "\n".join(rail.notes)
    assert "line 2: not a JSON object" in notes
    assert "line 4: the id 'rail-1' was used by an earlier line" in notes
    assert "line 5: no \"text\"" in notes


def test_a_jsonl_file_without_any_usable_record_is_a_named_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "只有标题"}\n[1, 2]\n', encoding="utf-8")
    result = ingest([bad])
    assert not result.documents
    assert len(result.problems) == 1
    message = str(result.problems[0])
    assert "bad.jsonl: no document in the file" in message and "line 1" in message


def test_one_doc_per_line_names_lines_or_the_ids_they_carry(tmp_path):
    news = tmp_path / "news.txt"
    news.write_text("2023-08-16 18:24:57，正文：英特尔发布了新版本的超分辨率技术。\n\n"
                    "A17\t第二篇：京东集团今日发布第二季度财报，营收2879亿元。\n"
                    "2023-08-16 18:02:41，正文：含\t制表符的正文不是编号。\n", encoding="utf-8")
    assert [d.name for d in ingest([news]).documents] == ["news.txt"]  # off by default
    with one_doc_per_line():
        result = ingest([news])
    assert [d.name for d in result.documents] == ["news.txt:1", "news.txt:A17", "news.txt:4"]
    assert result.documents[1].text.startswith("第二篇")
    assert [d.name for d in ingest([news]).documents] == ["news.txt"]  # the mode ends with the block


def test_rag_index_reads_jsonl_and_one_doc_per_line_and_cites_records(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    _write_jsonl(docs / "records.jsonl")
    (docs / "lines.txt").write_text("第一篇：成都大熊猫繁育研究基地成立于1987年。\n第二篇：12351热线全面建成。\n",
                                    encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(tmp_path / "cache")}

    def rag(*args):
        return subprocess.run([sys.executable, str(FAKE_RAG), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    index = str(tmp_path / "index")
    built = rag("index", str(docs), "--index", index, "--one-doc-per-line", "--quiet")
    assert built.returncode == 0, built.stderr
    assert "indexed 5 documents" in built.stdout
    assert "line 2: not a JSON object" in built.stdout
    found = rag("search", "京沪高速铁路全长多少公里", "--index", index, "--json", "--mode", "bm25")
    hits = json.loads(found.stdout)
    assert hits[0]["doc"] == "records.jsonl:rail-1"
    assert hits[0]["heading_path"] == ["京沪高铁 开通"]
    answer = rag("ask", "成都大熊猫繁育研究基地成立于哪一年？", "--index", index, "--json")
    cited = json.loads(answer.stdout)
    assert cited["citations"] and cited["citations"][0]["doc"] == "lines.txt:1"


def test_a_build_ingest_keeps_no_structures_and_the_same_chunks(tmp_path):
    """Index builds drop each document's line/block analysis once chunked (news-5k: peak RSS
    of ingest 196 -> 60 MiB); the chunks are the same."""
    path = _write_jsonl(tmp_path / "news.jsonl")
    kept, dropped = ingest([path]), ingest([path], keep_structures=False)
    assert kept.structures and not dropped.structures and not dropped.headings
    assert [c.to_dict() for c in dropped.chunks] == [c.to_dict() for c in kept.chunks]
    assert [r.line() for r in dropped.reports] == [r.line() for r in kept.reports]


def test_bench_collection_times_the_keyword_side_of_a_one_doc_per_line_build(tmp_path, monkeypatch):
    from bench import collection

    news = tmp_path / "news.txt"
    news.write_text("".join(f"2023-08-{i % 28 + 1:02d} 10:00，正文：第{i}篇报道说，京沪高速铁路全长1318公里，设计时速350公里。"
                            f"沿线设有{i}个车站。\n" for i in range(30)), encoding="utf-8")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = collection.run(news, one_doc_per_line=True, limit=20, tokens_per_s=1000.0, log=lambda _m: None)
    assert result["documents"] == 20 and result["chunks"] >= 20
    assert set(result["stages_s"]) == {"read + chunk", "BM25 tokenize (parallel)", "BM25 index"}
    assert result["characters_to_embed"] > result["characters"] > 0
    assert result["extrapolated_embedding_s"] > 0 and "not measured" in result["extrapolation"]
