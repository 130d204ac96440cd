"""``rag ask`` and ``rag chat`` (the retriever replaced by the answering fakes)."""
from __future__ import annotations

import io
import json

import pytest

from rag import cli
from rag.answering.assistant import Assistant
from rag.commands import ask as ask_cmd
from test_answer_fakes import FakeRetriever


@pytest.fixture(autouse=True)
def fake_assistant(monkeypatch):
    made = []

    def make(args):
        assistant = Assistant(FakeRetriever(), generator=args.generator, k=args.k, mode=args.mode)
        made.append((args, assistant))
        return assistant

    monkeypatch.setattr(ask_cmd, "_assistant", make)
    return made


def test_ask_prints_the_answer_and_numbered_sources(capsys):
    assert cli.main(["ask", "甘肃省工会开展了多少项劳动竞赛？"]) == 0
    out = capsys.readouterr().out
    assert "1.2万项" in out
    assert "来源：" in out and "[1] gansu.txt · 甘肃省工会第十二次代表大会以来工作综述" in out
    assert "“据统计，全省各级工会组织开展各类劳动竞赛1.2万项" in out


def test_ask_json_has_the_answer_fields_unescaped(capsys):
    assert cli.main(["ask", "甘肃省工会开展了多少项劳动竞赛？", "--json", "--k", "3", "--mode", "bm25"]) == 0
    raw = capsys.readouterr().out
    assert "甘肃" in raw  # ensure_ascii=False
    data = json.loads(raw)
    assert set(data) >= {"question", "text", "citations", "abstained", "hits", "timings", "generator"}
    assert data["citations"][0]["doc"] == "gansu.txt"
    assert {"n", "chunk_id", "doc", "heading_path", "quote", "start", "end"} <= set(data["citations"][0])
    assert len(data["hits"]) == 3 and data["hits"][0]["mode"] == "bm25"


def test_ask_abstention_lists_related_passages(capsys):
    assert cli.main(["ask", "量子计算机是谁发明的？"]) == 0
    out = capsys.readouterr().out
    assert "资料中没有找到相关信息。" in out and "可能相关的段落" in out and "来源：" not in out


def test_ask_empty_question_is_a_clear_error(capsys):
    assert cli.main(["ask", "  "]) == 1
    assert "question is empty" in capsys.readouterr().err


def test_ask_rejects_an_unknown_generator(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ask", "问题", "--generator", "gpt-17"])


def test_chat_keeps_history_for_followups_and_ends_at_eof(fake_assistant):
    parser = cli.build_parser()
    args = parser.parse_args(["chat"])
    stdin = io.StringIO("甘肃省工会开展了多少项劳动竞赛？\n\n那江西呢？\n")
    out = io.StringIO()
    assert ask_cmd.run_chat(args, stdin=stdin, out=out) == 0
    text = out.getvalue()
    assert "1.2万项" in text and "jiangxi.txt" in text
    retriever = fake_assistant[0][1].retriever
    assert retriever.queries == ["甘肃省工会开展了多少项劳动竞赛？", "江西省工会开展了多少项劳动竞赛？"]


def test_chat_exit_command_and_errors_do_not_end_the_session(fake_assistant):
    args = cli.build_parser().parse_args(["chat"])
    stdin = io.StringIO("   \n" + "x" * 10 + "\n/exit\n甘肃省工会开展了多少项劳动竞赛？\n")
    out = io.StringIO()
    assert ask_cmd.run_chat(args, stdin=stdin, out=out) == 0
    assert "资料中没有找到相关信息。" in out.getvalue()
    assert fake_assistant[0][1].retriever.queries == ["x" * 10]  # stopped at /exit
