"""The UI's HTML helpers: markers, source cards, abstentions, status line."""
from __future__ import annotations

import re

from rag.types import Answer, Citation, Hit
from ui import render

PASSAGE = ("记者从1月21日至22日在京召开的全总执委会议上获悉。12351热线全年受理职工群众来电149万通，"
           "职工满意度达98.8%。深化“工会帮就业”行动。")
QUOTE = "12351热线全年受理职工群众来电149万通，职工满意度达98.8%。"


def hit(chunk_id="d#1", text=PASSAGE, score=0.8731, doc="004.txt", path=("要闻", "热线")):
    return Hit(chunk_id, doc, list(path), text, 10, 10 + len(text), score)


def citation(n=1, chunk_id="d#1", quote=QUOTE, doc="004.txt", path=("要闻", "热线")):
    return Citation(n, chunk_id, doc, list(path), quote, 40, 40 + len(quote))


def cited_answer():
    return Answer(
        question="12351热线受理了多少来电？",
        text="热线全年受理来电149万通 [1]。满意度98.8% [1][2]。",
        citations=[citation(1), citation(2, "d#2", "职工满意度达98.8%。", doc="000.txt", path=())],
        hits=[hit(), hit("d#2", "满意度调查显示职工满意度达98.8%。", 0.5, doc="000.txt", path=())],
        timings={"retrieve": 0.1234, "answer": 0.5, "total": 0.6234},
    )


def test_markers_become_links_to_their_source_cards_with_the_quote_as_tooltip():
    html = render.link_markers("来电149万通 [1]。", [citation(1)], turn=3)
    link = re.search(r'<a class="cite" href="#src-3-1"[^>]*title="([^"]*)"[^>]*>\[1\]</a>', html)
    assert link, html
    assert "004.txt · 要闻 › 热线" in link.group(1)
    assert "149万通" in link.group(1)


def test_marker_groups_like_1_2_become_one_link_per_number():
    cits = [citation(1), citation(2, "d#2")]
    html = render.link_markers("事实[1, 2]，另一事实[1，2]", cits, turn=1)
    assert html.count('href="#src-1-1"') == 2
    assert html.count('href="#src-1-2"') == 2


def test_markers_without_a_citation_stay_visible_but_are_not_links():
    html = render.link_markers("无来源 [7]", [citation(1)], turn=1)
    assert "[7]" in html and "src-1-7" not in html and "cite-missing" in html


def test_answer_text_is_escaped_so_documents_cannot_inject_html():
    html = render.link_markers('<script>alert("x")</script> [1]', [citation(1, quote='"<b>')], 1)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'title="004.txt · 要闻 › 热线\n&quot;&lt;b&gt;"' in html


def test_supporting_sentence_is_marked_inside_its_passage():
    html = render.highlighted_passage(PASSAGE, QUOTE)
    assert f"<mark>{QUOTE}</mark>" in html.replace("&quot;", '"')
    assert html.startswith("记者从")


def test_quote_with_different_whitespace_is_still_found_in_the_passage():
    passage = "上一句。12351热线全年受理\n职工群众来电149万通。下一句。"
    start, end = render.highlight_span(passage, "12351热线全年受理职工群众来电149万通。")
    assert passage[start:end] == "12351热线全年受理\n职工群众来电149万通。"


def test_long_passages_are_trimmed_around_the_highlight():
    passage = "甲" * 1000 + QUOTE + "乙" * 1000
    html = render.highlighted_passage(passage, QUOTE, context=50)
    assert html.startswith("…" + "甲" * 50 + "<mark>")
    assert html.endswith("乙" * 50 + "…")


def test_quote_missing_from_passage_is_shown_highlighted_below_it():
    html = render.highlighted_passage("完全不同的段落。", "引用的句子。")
    assert "完全不同的段落。" in html and "<mark>引用的句子。</mark>" in html


def test_sources_panel_lists_each_citation_with_doc_heading_path_and_score():
    html = render.sources_html(cited_answer(), turn=2)
    assert 'id="src-2-1"' in html and 'id="src-2-2"' in html
    assert "004.txt" in html and "要闻 › 热线" in html
    assert "0.873" in html and "0.500" in html
    assert "（正文）" in html  # a passage before any heading
    assert html.count("<mark>") == 2


def test_an_abstention_says_so_and_lists_may_be_related_passages():
    answer = Answer(question="火星基地的工会主席是谁？", text="资料中没有找到相关信息。", abstained=True,
                    hits=[hit(), hit("d#2", "另一段。", 0.2)])
    panel = render.sources_html(answer, 1)
    assert "资料中没有找到答案" in panel and "可能相关" in panel
    assert panel.count('class="src-card related"') == 2
    message = render.answer_html(answer, 1)
    assert "未找到答案" in message and "资料中没有找到相关信息。" in message


def test_answer_message_shows_notices_and_unsupported_sentences():
    answer = cited_answer()
    answer.notices = ["问题过长，只使用了前 2000 字。"]
    answer.unsupported = ["火星上有工会。"]
    html = render.answer_html(answer, 1)
    assert "问题过长" in html and "火星上有工会。" in html


def test_streaming_message_shows_pending_markers_and_a_cursor():
    html = render.streaming_html("一句话 [1")
    assert "cursor" in html and "cite-pending" not in html
    html = render.streaming_html("一句话 [1]")
    assert '<span class="cite cite-pending">[1]</span>' in html


def test_sources_panel_keeps_earlier_answers_folded_below_the_newest():
    panel = render.sources_panel(["<p>first</p>", "<p>second</p>"])
    assert panel.index("second") < panel.index("first")
    assert "<details" in panel and panel.index("<details") < panel.index("first")
    assert render.sources_panel([]) == render.EMPTY_SOURCES


def test_status_line_reports_retrieval_and_answer_time():
    text = render.status_text(cited_answer())
    assert "检索 0.12 s" in text and "回答 0.50 s" in text and "合计 0.62 s" in text
    assert "2 处引用" in text and "抽取式" in text


def test_user_text_is_shown_as_typed_never_as_markup():
    html = render.user_html("![p](http://127.0.0.1:9/x.png) <img src=x onerror=alert(1)>\n第二行")
    assert "<img" not in html and "&lt;img" in html
    assert "![p](http://127.0.0.1:9/x.png)" in html and "<br>第二行" in html


def test_answer_text_keeps_its_line_breaks_outside_the_marker_tooltips():
    html = render.link_markers("第一段 [1]\n\n第二段", [citation(1)], turn=1)
    assert "第一段 " in html and "<br><br>第二段" in html
    assert 'title="004.txt · 要闻 › 热线\n' in html  # the tooltip keeps its own newline
