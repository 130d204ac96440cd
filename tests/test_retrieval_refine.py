"""Stage 3 of hybrid search (rag.retrieval.refine): which of near-equal fused passages
holds what the question asks, read two sentences at a time and, for a later chunk of a
headline-less article, after the article's lead sentence."""
from __future__ import annotations

from rag.overlap import best_sentence_overlap, keywords, question_bigrams
from rag.retrieval.refine import LEAD_CHARS, document_lead, refine
from rag.types import Chunk


def _chunk(cid: str, text: str, doc: str = "a.txt", start: int = 0, path=()) -> Chunk:
    return Chunk(id=cid, doc=doc, heading_path=list(path), text=text, start=start, end=start + len(text))


def test_a_fact_told_over_two_sentences_is_read_together():
    question = "阿根廷代表团的队长是谁？"
    split = _chunk("split", "阿根廷代表团昨天启程前往成都。队长马雷罗说，队员们很期待比赛。")
    partial = _chunk("partial", "阿根廷代表团在机场举行出征仪式，代表团成员五十七人。天气晴朗。")
    words, bigrams = keywords(question), question_bigrams(question)
    assert (best_sentence_overlap(words, bigrams, split.text, window=2)
            > best_sentence_overlap(words, bigrams, split.text, window=1))
    fused = [(partial, 0.2), (split, 0.0)]
    assert [c.id for c, _ in refine(question, fused, window=1)][0] == "partial"
    assert [c.id for c, _ in refine(question, fused)][0] == "split"  # two sentences by default


def test_a_later_chunk_is_read_after_its_articles_lead():
    question = "国家能源集团在湖南的投资金额是多少？"
    lead = "国家能源集团董事长一行在长沙会谈"
    later = _chunk("later", "近年来在湘投资达123.89亿元，建成一批重点项目。", start=300)
    other = _chunk("other", "湖南省加大能源投资力度，投资逐年增加。", doc="b.txt", start=300)
    fused = [(other, 0.1), (later, 0.0)]
    assert [c.id for c, _ in refine(question, fused)][0] == "other"
    by_doc = {"a.txt": lead, "b.txt": "暴雨过后各地抢修电网"}
    reordered = refine(question, fused, context=lambda c: by_doc[c.doc])
    assert [c.id for c, _ in reordered][0] == "later"
    # a chunk with a heading path is read after its headings, not after a lead
    headed = _chunk("headed", later.text, start=300, path=["天气预报"])
    assert [c.id for c, _ in refine(question, [(other, 0.1), (headed, 0.0)],
                                     context=lambda c: lead)][0] == "other"


def test_the_lead_is_the_first_real_sentence_after_a_scraped_header():
    text = "2023-07-25，正文： 新华社电。王毅在约翰内斯堡会见俄罗斯联邦安全会议秘书帕特鲁舍夫。王毅表示……"
    lead, end = document_lead(text)
    assert lead == "王毅在约翰内斯堡会见俄罗斯联邦安全会议秘书帕特鲁舍夫。"  # 新华社电。 is too short
    assert text[:end].endswith(lead)
    long_text = "正文：" + "很长的句子" * 40 + "。"
    assert len(document_lead(long_text)[0]) == LEAD_CHARS
    assert document_lead("") == ("", 0)


def test_hybrid_search_reads_a_later_chunk_after_its_articles_lead(make_retriever, tmp_path):
    docs = tmp_path / "news"
    docs.mkdir()
    filler = "".join(f"会上还通报了第{i}季度全省经济运行的总体情况，各项指标稳中有进，就业物价总体平稳。"
                     for i in range(1, 11))
    (docs / "a.txt").write_text(
        "2023-08-17 13:18，正文：国家能源集团董事长刘国跃一行在长沙与湖南省省长会谈。" + filler
        + "近年来在湘投资达123.89亿元，建成投产宝庆电厂等一批重点项目。", encoding="utf-8")
    (docs / "b.txt").write_text(
        "2023-08-02，正文：暴雨过后各地抢修电网，供电逐步恢复。" + filler
        + "湖南省将加大能源投资力度，投资逐年增加，重点项目加快建设。", encoding="utf-8")
    retriever = make_retriever([docs], plain_max_chars=400)  # cut each article in two
    by_doc = {}
    for chunk in retriever.chunks:
        by_doc.setdefault(chunk.doc, []).append(chunk)
    assert all(len(chunks) >= 2 for chunks in by_doc.values())
    state = retriever._state
    first, *later = sorted(by_doc["a.txt"], key=lambda c: c.start)
    assert retriever._lead_context(state, first) == ""  # the chunk holding the lead
    assert retriever._lead_context(state, later[-1]).startswith("国家能源集团董事长")
    question = "国家能源集团在湖南的投资金额是多少？"
    store, qvec = retriever.store, retriever.query_vector(question)
    fused = retriever.fuse(question, store.dense_candidates(qvec, 50), store.keyword_candidates(question, 50))
    with_lead = dict((c.id, s) for c, s in refine(question, fused, context=lambda c: retriever._lead_context(state, c)))
    without = dict((c.id, s) for c, s in refine(question, fused))
    answer = later[-1]
    assert "123.89亿元" in answer.text and with_lead[answer.id] > without[answer.id]
    hits = {h.chunk_id: h.score for h in retriever.search(question, k=4)}
    assert abs(hits[answer.id] - with_lead[answer.id]) < 1e-9  # search reads it after the lead
