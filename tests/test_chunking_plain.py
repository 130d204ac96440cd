"""Documents without headings (scraped news, plain notes) are cut with their own, larger budget.

Cut at 400 characters, a 730-character news article became two overlapping chunks, and a
question's evidence often straddled the cut, so that neither chunk held it (crud-dev: 23 of
hybrid search's 40 R@1 misses ranked another chunk of the right article first). Such a text
has no sections to keep apart, so it is chunked up to ``ChunkSettings.plain_max_chars``.
"""
from __future__ import annotations

from pathlib import Path

from rag.index.settings import IndexSettings
from rag.ingest import chunk_document
from rag.ingest.chunking import PLAIN_MAX_CHARS, ChunkSettings
from rag.ingest.documents import Document

SENTENCES = [f"会上还通报了第{i}季度全省经济运行的总体情况，各项指标稳中有进，就业和物价总体平稳。" for i in range(1, 17)]
#: A 728-character scraped article: a date header, no headings, the fact in the middle.
CAPTAIN = ("男子篮球队队长阿古斯丁·马雷罗告诉记者，他和队员们都很期待前往中国参加大运会比赛，"
           "也期待与各国大学生运动员交流切磋并取得好成绩。")
QUOTE = "“我们抵达后还有几天时间来训练和调整，我们希望能以最好的状态迎接比赛。”"
ARTICLE = ("2023-07-25，正文：新华社布宜诺斯艾利斯7月23日电，阿根廷代表团启程前往成都参加大运会。"
           + "".join(SENTENCES[:7]) + CAPTAIN + QUOTE + "".join(SENTENCES[7:14]))


def _chunks(text: str, settings: ChunkSettings | None = None, name: str = "a.txt"):
    return chunk_document(Document(name, Path(name), text, "utf-8"), settings)


def test_a_news_article_without_headings_is_one_chunk_up_to_the_plain_budget():
    assert 600 < len(ARTICLE) <= PLAIN_MAX_CHARS
    chunks = _chunks(ARTICLE)
    assert len(chunks) == 1 and chunks[0].heading_path == []
    assert (chunks[0].start, chunks[0].end) == (0, len(ARTICLE))
    # With the heading-aware budget alone (an index built before) it is cut in two, and the
    # captain's sentence and the quote that follows it no longer share a chunk.
    old = _chunks(ARTICLE, ChunkSettings(plain_max_chars=None))
    assert len(old) >= 2 and all(len(c.text) <= 400 for c in old)
    evidence = CAPTAIN + QUOTE
    assert evidence in chunks[0].text and not any(evidence in c.text for c in old)


def test_a_longer_plain_text_is_split_at_the_plain_budget_with_overlap():
    text = ARTICLE + "".join(SENTENCES) * 2
    chunks = _chunks(text)
    assert len(chunks) >= 2
    assert all(len(c.text) <= PLAIN_MAX_CHARS for c in chunks)
    assert max(len(c.text) for c in chunks) > 400
    assert all(a.end > b.start for a, b in zip(chunks, chunks[1:]))  # consecutive pieces overlap


def test_documents_with_headings_keep_the_heading_aware_budget():
    text = "# 全省经济运行情况\n\n" + "".join(SENTENCES[:12]) + "\n\n# 下一步工作\n\n" + "".join(SENTENCES[:3]) + "\n"
    chunks = _chunks(text, name="b.md")
    assert all(c.heading_path for c in chunks)
    assert len(chunks) >= 3 and all(len(c.text) <= ChunkSettings().max_chars for c in chunks)


def test_an_index_written_before_the_plain_budget_keeps_cutting_as_it_did():
    # adding documents to an older index must chunk them as its other documents were
    manifest = IndexSettings(model="fake/m", dim=8).to_manifest()
    assert manifest["chunking"]["plain_max_chars"] == PLAIN_MAX_CHARS
    assert IndexSettings.from_manifest(manifest).chunking.plain_max_chars == PLAIN_MAX_CHARS
    del manifest["chunking"]["plain_max_chars"]
    old = IndexSettings.from_manifest(manifest).chunking
    assert old.plain_max_chars is None
    assert len(_chunks(ARTICLE, old)) >= 2


def test_max_chars_alone_caps_plain_texts_too():
    assert IndexSettings.from_options(max_chars=300).chunking.plain_max_chars is None
    both = IndexSettings.from_options(max_chars=300, plain_max_chars=600).chunking
    assert (both.max_chars, both.plain_max_chars) == (300, 600)
    plain = IndexSettings.from_options(plain_max_chars=500).chunking
    assert (plain.max_chars, plain.plain_max_chars) == (400, 500)
    assert all(len(c.text) <= 300 for c in _chunks(ARTICLE, IndexSettings.from_options(max_chars=300).chunking))


def test_rag_index_records_the_plain_budget_it_was_built_with(make_retriever, tmp_path):
    docs = tmp_path / "news"
    docs.mkdir()
    (docs / "a.txt").write_text(ARTICLE, encoding="utf-8")
    assert len(make_retriever([docs]).chunks) == 1
    small = make_retriever([docs], tmp_path / "small", plain_max_chars=400)
    assert len(small.chunks) >= 2
    assert small.settings.chunking.plain_max_chars == 400
    from rag.retrieval.retriever import Retriever
    assert Retriever.load(tmp_path / "small").settings.chunking.plain_max_chars == 400
