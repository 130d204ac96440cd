"""The compact answer prompt for small local models, and how odd LLM replies are handled.

Fakes only (tests/test_answer_fakes.py): no model is needed.
"""
from __future__ import annotations

import re

import pytest

from rag.answering.abstention import drop_refusal_sentences, has_answer_text
from rag.answering.assistant import Assistant
from rag.answering.citations import check_answer
from rag.answering.prompts import (EXAMPLE_ANSWER, NOT_FOUND, PromptBudget, answer_messages, format_passages,
                                   trim_passage)
from rag.types import Hit
from test_answer_fakes import FakeRetriever, ScriptedGenerator

LOW = 0.3
GANSU_Q = "甘肃省工会开展了多少项劳动竞赛？"

FILLER = "省总工会持续推进产业工人队伍建设改革，组织职工参加各类培训和交流活动。"
LONG = FILLER * 6 + "据统计，全省各级工会组织开展各类劳动竞赛1.2万项（次）。" + FILLER * 6


@pytest.fixture
def retriever():
    return FakeRetriever()


def _hit(text, n=1, heading=("甘肃省工会", "劳动竞赛")):
    return Hit(f"c{n}", f"doc{n}.txt", list(heading), text, 0, len(text), 1.0)


# --- passage budget ----------------------------------------------------------------------

def test_long_passage_is_trimmed_below_the_limit_around_the_answering_sentence():
    trimmed = trim_passage(LONG, GANSU_Q, 120)
    assert len(LONG) > 400
    assert len(trimmed.replace("……", "")) <= 120
    assert "1.2万项" in trimmed
    assert trimmed.startswith("……") and trimmed.endswith("……")  # gaps are marked


def test_kept_sentences_are_verbatim_and_in_document_order():
    trimmed = trim_passage(LONG, GANSU_Q, 150)
    pieces = [p for p in trimmed.split("……") if p]
    positions = [LONG.index(p) for p in pieces]
    assert positions == sorted(positions)


def test_focus_span_from_the_extractive_answer_is_kept_first():
    text = "甲乙丙丁戊己庚辛壬癸。" * 10 + "劳动竞赛的开展，为重点工程建设提供了坚实基础。" + FILLER * 4
    focus_start = text.index("劳动竞赛的开展")
    trimmed = trim_passage(text, "甲乙丙丁", 60, focus=(focus_start, focus_start + 5))
    assert "劳动竞赛的开展" in trimmed


def test_one_sentence_longer_than_the_limit_is_cut_around_the_question_words():
    sentence = "，".join(["各地工会开展了多项活动"] * 30) + "，甘肃省工会开展劳动竞赛1.2万项" + "，其他工作也取得了进展" * 30 + "。"
    trimmed = trim_passage(sentence, GANSU_Q, 80)
    assert len(trimmed.replace("……", "")) <= 80 and "劳动竞赛1.2万项" in trimmed


def test_short_passages_and_unlimited_budgets_are_left_whole():
    assert trim_passage("短段落。", GANSU_Q, 220) == "短段落。"
    assert trim_passage(LONG, GANSU_Q, None) == LONG


def test_prompt_numbers_passages_with_heading_and_puts_the_question_last():
    hits = [_hit(LONG, 1), _hit("江西工会开展劳动竞赛3.6万项。", 2, ("江西省工会",))]
    messages = answer_messages(GANSU_Q, hits, PromptBudget(passages=2, chars=120))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert re.search(r"\[\d+\]", messages[2]["content"]) and messages[2]["content"] == EXAMPLE_ANSWER
    user = messages[-1]["content"]
    assert "[1] 甘肃省工会 > 劳动竞赛\n" in user and "[2] 江西省工会\n" in user
    assert user.rstrip().endswith(f"<question>{GANSU_Q}</question>")
    assert len(user) < 120 + 200  # the long passage was trimmed


def test_prompt_prefix_is_the_same_for_every_question():
    # llama.cpp reuses the cached prefix only if it is byte-identical.
    a = answer_messages(GANSU_Q, [_hit(LONG)], PromptBudget())
    b = answer_messages("大会在什么时候开幕？", [_hit("大会于2023年10月9日在北京开幕。")], PromptBudget())
    assert a[:3] == b[:3]


def test_assistant_shows_local_models_at_most_the_budgeted_passages(retriever):
    gen = ScriptedGenerator("全省各级工会组织开展各类劳动竞赛1.2万项[1]。")
    assistant = Assistant(retriever, generator=gen, k=4,
                          budget=PromptBudget(passages=2, chars=100))
    answer = assistant.ask(GANSU_Q)
    shown = gen.calls[0][-1]["content"]
    assert shown.count("\n[") == 2 and "[2] " in shown and "[3] " not in shown
    assert len(answer.hits) == 2  # the markers refer to the shown passages
    assert answer.citations[0].doc == answer.hits[0].doc == "gansu.txt"


def test_passage_with_the_best_extractive_sentence_is_always_shown(retriever):
    gen = ScriptedGenerator("全省各级工会组织开展各类劳动竞赛1.2万项[1]。")
    assistant = Assistant(retriever, generator=gen, k=4,
                          budget=PromptBudget(passages=1, chars=100))
    # The fake retriever ranks by bigram overlap; a question phrased after the
    # congress passage ranks it first while the answer is in gansu.txt.
    answer = assistant.ask("大会代表汇聚北京，甘肃省各级工会组织开展了多少项劳动竞赛？")
    extractive_doc = assistant.extractive.answer(answer.search_query, retriever.search(answer.search_query, k=4))
    assert answer.hits[0].doc == extractive_doc.citations[0].doc


# --- odd replies of a small model ----------------------------------------------------------

def test_bare_marker_reply_falls_back_to_the_quotes(retriever):
    answer = Assistant(retriever, generator=ScriptedGenerator("[2]")).ask(GANSU_Q)
    assert not answer.abstained and answer.generator == "extractive"
    assert "1.2万项" in answer.text and answer.citations
    assert any("本地模型未能作答" in n for n in answer.notices)


def test_reply_that_only_restates_the_question_falls_back_to_the_quotes(retriever):
    gen = ScriptedGenerator("甘肃省工会开展了劳动竞赛[1]。")
    answer = Assistant(retriever, generator=gen).ask(GANSU_Q)
    assert answer.generator == "extractive" and "1.2万项" in answer.text


def test_marker_first_reply_is_checked_like_any_other():
    hits = [_hit("据统计，全省各级工会组织开展各类劳动竞赛1.2万项（次）。")]
    checked = check_answer("[1]全省各级工会开展劳动竞赛1.2万项。", hits)
    assert checked.text == "全省各级工会开展劳动竞赛1.2万项。[1]" and not checked.unsupported
    wrong = check_answer("[1]全省各级工会开展劳动竞赛1.5万项。", hits)  # number not in the passage
    assert wrong.citations == [] and wrong.unsupported == ["全省各级工会开展劳动竞赛1.5万项。"]


def test_not_found_sentence_after_a_real_answer_is_dropped_not_flagged(retriever):
    gen = ScriptedGenerator("全省各级工会组织开展各类劳动竞赛1.2万项[1]。" + NOT_FOUND)
    answer = Assistant(retriever, generator=gen).ask(GANSU_Q)
    assert answer.generator == "scripted" and not answer.abstained
    assert NOT_FOUND not in answer.text and answer.unsupported == []


def test_unsupported_sentence_stays_flagged_next_to_a_supported_one(retriever):
    gen = ScriptedGenerator("全省各级工会组织开展各类劳动竞赛1.2万项[1]。甘肃还建成了500个职工书屋[1]。")
    answer = Assistant(retriever, generator=gen).ask(GANSU_Q)
    assert answer.unsupported == ["甘肃还建成了500个职工书屋。"]
    assert "500个职工书屋[1]" not in answer.text


def test_reply_helpers():
    assert not has_answer_text("[2]") and not has_answer_text(" [1][2]。") and has_answer_text("有[1]")
    assert drop_refusal_sentences("甲有3项[1]。" + NOT_FOUND) == "甲有3项[1]。"
    assert drop_refusal_sentences(NOT_FOUND) == NOT_FOUND


def test_format_passages_without_budget_keeps_whole_passages():
    assert LONG in format_passages([_hit(LONG)], GANSU_Q)


def test_short_real_answers_are_not_mistaken_for_restating_the_question():
    from rag.answering.abstention import only_restates

    assert only_restates("全国工会建成的户外劳动者服务站点[2]。", "全国工会建成的户外劳动者服务站点有多少个？")
    assert not only_restates("郑久强[1]。", "被称作“华夏第一炼钢工”的人叫什么？")
    assert not only_restates("1335家[1]。", "工会一共办起来几家？")
