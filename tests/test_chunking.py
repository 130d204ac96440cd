from pathlib import Path

import pytest

from rag.ingest.chunking import ChunkSettings, source_passage
from rag.ingest.cleaning import comparable
from rag.ingest.documents import Document
from rag.ingest import chunk_document, ingest
from rag.text import locate, normalize, split_sentences

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
COMPILATION = "002_5b471ee912e3ac09.txt"
PAGE_003 = "003_10162de0611f52fa.txt"
PAGE_004 = "004_bc844746af0db849.txt"


@pytest.fixture(scope="module")
def seeds():
    return ingest([SEEDS])


def test_every_chunk_holds_exactly_its_source_span_minus_whitespace_and_dropped_boilerplate(seeds):
    for document in seeds.documents:
        dropped = seeds.structures[document.name].dropped
        for chunk in seeds.chunks_of(document.name):
            assert 0 <= chunk.start < chunk.end <= len(document.text)
            passage = source_passage(document.text, chunk, dropped)
            assert comparable(chunk.text) == comparable(passage), chunk.id
            # The span is tight: it starts and ends on the chunk's first/last character.
            assert document.text[chunk.start] == chunk.text[0]
            assert document.text[chunk.end - 1] == chunk.text[-1]


def test_every_sentence_of_a_chunk_can_be_located_inside_its_span(seeds):
    document = seeds.document(PAGE_004)
    for chunk in seeds.chunks_of(PAGE_004):
        for sentence in split_sentences(chunk.text):
            assert locate(sentence, document.text, chunk.start, chunk.end) is not None


def test_chunks_respect_the_size_budget_and_sections_that_fit_stay_whole(seeds):
    settings = ChunkSettings()
    assert all(len(c.text) <= settings.max_chars for c in seeds.chunks)
    # A long 001 item is split, its title only in the first piece.
    titled = [c for c in seeds.chunks if c.heading_path[-1:] == ["全国总工会对加快推进工会数字化转型作出全面部署"]]
    assert len(titled) >= 2
    assert "###" not in titled[1].text
    assert titled[0].text.startswith("### 全国总工会对加快推进工会数字化转型作出全面部署")


def test_long_sections_split_at_sentence_ends_with_a_small_overlap(seeds):
    chunks = [c for c in seeds.chunks_of(COMPILATION)
              if c.heading_path == ["中国工会第十七次全国代表大会以来工作综述", "二、为广大职工建功立业搭建舞台"]]
    assert len(chunks) >= 2
    for chunk in chunks:
        assert chunk.text[-1] in "。！？；…”" or chunk.text.endswith("舞台")
    source = seeds.document(COMPILATION).text
    overlaps = []
    for a, b in zip(chunks, chunks[1:]):
        if a.end > b.start:
            overlaps.append(a.end - b.start)
            assert source[b.start:a.end] in a.text[-ChunkSettings().overlap_chars - 1:]
        else:
            assert source[a.end:b.start].strip() == ""   # no text falls between two chunks
    assert overlaps and all(o <= ChunkSettings().overlap_chars for o in overlaps)


def test_no_chunk_of_the_compilation_mixes_two_articles(seeds):
    structure = seeds.structures[COMPILATION]
    articles = [h for h in structure.headings if h.kind == "article"]
    starts = [a.start for a in articles]
    for chunk in seeds.chunks_of(COMPILATION):
        inside = [s for s in starts if chunk.start < s < chunk.end]
        assert not inside, (chunk.heading_path, chunk.text[:40])
        if chunk.start >= starts[0]:
            owner = max((a for a in articles if a.start <= chunk.start), key=lambda a: a.start)
            assert chunk.heading_path[0] == owner.title


def test_no_chunk_of_a_newspaper_page_spans_two_headline_items(seeds):
    for name in (PAGE_003, PAGE_004):
        roots = seeds.structures[name].headings
        for chunk in seeds.chunks_of(name):
            inside = [h for h in roots if chunk.start < h.start < chunk.end]
            # Only a heading-only title stack may lead into the item it introduces.
            assert all(h.start <= chunk.start + 40 for h in inside), (name, chunk.heading_path)


def test_the_repeated_auction_condition_is_indexed_once(seeds):
    condition = normalize("具有完全民事行为能力的个人或法人；在中华人民共和国境内注册的企业单位均可参加。")
    chunks = seeds.chunks_of(PAGE_003)
    # Lines 三 and 四 (which differ) stay; 五..二十 repeat 四 (with a doubled phrase) and go.
    assert sum(normalize(c.text).count(condition) for c in chunks) == 2
    assert all("五、竞买人" not in c.text and "二十、" not in c.text for c in chunks)
    assert [line.number for line in seeds.structures[PAGE_003].dropped] == list(range(176, 207, 2))
    assert len([c for c in chunks if c.heading_path == ["拍卖公告"]]) <= 2


def test_chunk_ids_are_stable_across_runs_and_unique(seeds):
    again = ingest([SEEDS])
    assert [c.id for c in again.chunks] == [c.id for c in seeds.chunks]
    assert len({c.id for c in seeds.chunks}) == len(seeds.chunks)
    assert all(len(c.id) == 16 and int(c.id, 16) >= 0 for c in seeds.chunks)


def test_a_changed_passage_gets_a_new_id_and_the_others_keep_theirs():
    text = "# 一\n\n第一节的正文。\n\n# 二\n\n第二节的正文。\n"
    before = chunk_document(Document("d.md", Path("d.md"), text, "utf-8"), ChunkSettings(min_chars=0))
    after = chunk_document(Document("d.md", Path("d.md"), text.replace("第二节", "第2节"), "utf-8"),
                           ChunkSettings(min_chars=0))
    assert before[0].id == after[0].id
    assert before[1].id != after[1].id


def test_identical_passages_still_get_unique_ids():
    text = "# 甲\n\n同样的正文。\n\n# 甲\n\n同样的正文。\n"
    chunks = chunk_document(Document("d.md", Path("d.md"), text, "utf-8"), ChunkSettings(min_chars=0))
    assert len(chunks) == 2 and chunks[0].id != chunks[1].id


def test_tiny_sections_merge_with_a_sibling_under_the_same_parent():
    text = ("# 报告\n\n一、短节\n\n一句话。\n\n二、第二节\n\n" + "内容很充实的一句话。" * 10 + "\n\n"
            "# 另一篇\n\n只有一句。\n")
    chunks = chunk_document(Document("d.md", Path("d.md"), text, "utf-8"), ChunkSettings(min_chars=40))
    first = chunks[0]
    assert "一、短节" in first.text and "二、第二节" in first.text
    assert first.heading_path == ["报告"]
    # ... but never across a top-level heading.
    assert chunks[-1].heading_path == ["另一篇"] and "报告" not in chunks[-1].text


def test_max_chars_setting_controls_the_chunk_size(seeds):
    small = ingest([SEEDS / COMPILATION], ChunkSettings(max_chars=300))
    assert max(len(c.text) for c in small.chunks) <= 300
    assert len(small.chunks) > len(seeds.chunks_of(COMPILATION))


@pytest.mark.parametrize("kwargs", [{"max_chars": 10}, {"overlap_chars": -1}, {"min_chars": -5}])
def test_impossible_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        ChunkSettings(**kwargs)


def test_overlap_and_minimum_are_capped_for_small_budgets():
    settings = ChunkSettings(max_chars=100)
    assert settings.overlap_chars == 25 and settings.min_chars == 50


def test_rag_chunks_jsonl_prints_exactly_the_chunk_fields(capsys):
    import json

    from rag.cli import main

    assert main(["chunks", str(SEEDS / PAGE_004), "--jsonl", "--max-chars", "300"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(set(row) == {"id", "doc", "heading_path", "text", "start", "end", "page"} for row in rows)
    assert all(row["page"] is None for row in rows)  # a .txt file has no pages
    assert all(len(row["text"]) <= 300 for row in rows)
    assert any("中挪海员" in row["text"] for row in rows)   # not \\u-escaped


def test_rag_chunks_summary_reports_headings_sizes_and_problems(tmp_path, capsys):
    from rag.cli import main

    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "a.md").write_text("# 标题\n\n正文一句。\n", encoding="utf-8")
    assert main(["chunks", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 document(s)" not in out and "1 document(s), 1 chunk(s), 1 problem(s)" in out
    assert "[markdown] 标题" in out and "median" in out and "p90" in out
    assert "empty.txt" in out


def test_rag_chunks_on_a_missing_path_fails_with_a_clear_message(capsys):
    from rag.cli import main

    assert main(["chunks", "/no/such/folder"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


SMALL_COMPILATION = ("目录\n\n一、地方工会\n\n春季工作总结……1\n夏季工作总结　　3\n\n二、企业工会\n\n秋季工作…　　5\n\n"
                     "春季工作总结\n\n春天做了很多事。\n\n夏季工作总结\n\n夏天也做了很多事。\n\n"
                     "秋季工作回顾与展望\n\n秋天收获满满。\n")


def test_every_toc_line_also_gets_its_own_chunk_under_its_group():
    document = Document("c.txt", Path("c.txt"), SMALL_COMPILATION, "utf-8")
    chunks = chunk_document(document)
    entries = [c for c in chunks if c.heading_path[:1] == ["目录"] and "\n" not in c.text]
    assert [(c.heading_path, c.text) for c in entries] == [
        (["目录", "一、地方工会"], "春季工作总结……1"),
        (["目录", "一、地方工会"], "夏季工作总结 3"),
        (["目录", "二、企业工会"], "秋季工作… 5"),
    ]
    for chunk in entries:   # provenance: the span is exactly the TOC line
        assert comparable(document.text[chunk.start:chunk.end]) == comparable(chunk.text)
    # The whole TOC is still one chunk too, and ids stay unique.
    assert any(c.heading_path == ["目录"] and "春季工作总结" in c.text and "秋季工作" in c.text for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_toc_entry_chunks_can_be_turned_off():
    document = Document("c.txt", Path("c.txt"), SMALL_COMPILATION, "utf-8")
    chunks = chunk_document(document, ChunkSettings(toc_entries=False))
    assert not [c for c in chunks if c.heading_path[:1] == ["目录"] and "\n" not in c.text]


def test_each_article_of_the_seed_compilation_has_a_toc_entry_chunk(seeds):
    entries = [c for c in seeds.chunks_of(COMPILATION) if c.heading_path[:1] == ["目 录"] and "\n" not in c.text]
    assert len(entries) == 34
    assert (["目 录", "三、企业工会"], "北大荒集团工会工作综述 125") in [(c.heading_path, c.text) for c in entries]
