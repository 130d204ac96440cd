"""A name the user shortens is named by a passage that writes it out (issue 14, eleventh pass: false abstentions).

Users write the short form of a long name (社科院 for 社会科学院, 克宫 for 克里姆林宫); news writes the full one. A
question's name of three or more characters counts as named by a passage that has its characters in order, a few
apart (``lexical.names_term``, the rule already used for topic words and organisations); a two-character name does
not, it would be found in any two words (呼吁全市 for 呼市). Sentences from the development corpus (crud_heldout4
crudd028, crud_heldout6 crudf030); small fakes, no model. Each test switches the rule off and shows the old reading.
"""
from __future__ import annotations

from rag.answering import lexical
from rag.answering.assistant import Assistant
from rag.answering.lexical import unmentioned
from rag.types import Hit
from test_answer_fakes import FakeRetriever


def _hit(text: str, doc: str = "d.txt") -> Hit:
    return Hit(chunk_id=doc + "#1", doc=doc, text=text, score=1.0, heading_path=[], start=0, end=len(text))


ACADEMY = _hit("推介会上，西藏自治区社会科学院党组副书记、院长索林说，该“绿皮书”最大的亮点就是记录和见证了新世纪以来西藏“三农”的发展历程。")
KREMLIN = ("d0546.txt", "航空追踪数据显示，他曾多次在莫斯科和圣彼得堡之间飞行，克里姆林宫方面11日透露，"
                        "普里戈仁曾于6月29日在克里姆林宫会见了普京。")


def test_a_shortened_name_is_named_by_its_full_form(monkeypatch):
    assert unmentioned(["西藏社科院"], [ACADEMY]) == []
    monkeypatch.setattr(lexical, "SHORTENED_NAMES", False)
    assert unmentioned(["西藏社科院"], [ACADEMY]) == ["西藏社科院"]


def test_a_two_character_name_and_a_name_with_figures_are_not_read_apart():
    assert unmentioned(["呼市"], [_hit("公安机关呼吁全市居民提高警惕。")]) == ["呼市"]
    assert unmentioned(["C919"], [_hit("C9型飞机于19日首飞。")]) == ["C919"]
    assert unmentioned(["北京大学"], [_hit("北京市属高校的大学生。")]) == ["北京大学"]  # too far apart


def test_a_question_with_a_shortened_name_is_answered(monkeypatch):
    question = "普里戈任兵变后啥时候跟普京在克宫见的面？"
    chunks = [dict(chunk_id="d0546.txt#0", doc=KREMLIN[0], heading_path=[], text=KREMLIN[1], start=0,
                   end=len(KREMLIN[1]))]
    answer = Assistant(FakeRetriever(chunks)).ask(question)
    assert not answer.abstained and answer.text.startswith("6月29日")
    monkeypatch.setattr(lexical, "SHORTENED_NAMES", False)  # 克宫见 (as jieba cuts it) is in no passage
    assert Assistant(FakeRetriever(chunks)).ask(question).abstained
