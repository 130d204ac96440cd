"""What `rag ask`, `rag search` and `rag chat` print comes from documents: no terminal
control sequences reach the terminal (issue 10, smaller items), and `rag ask ""` fails
before an index or a model is loaded.

The commands run for real on an index built with the fake embedder; the CLI loads
that embedder where it would load the model.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import cli

ROOT = Path(__file__).resolve().parents[1]
#: A document that tries to retitle the terminal (OSC), clear the screen (CSI), set a
#: hyperlink (OSC 8), overwrite its own line (CR) and use the 8-bit CSI form.
HOSTILE = ("# 海豚\x1b]0;pwned\x07救助\x1b[2J热线\n\n海豚救助热线\x1b]0;pwned\x07全天服务，\x1b[2J\x1b[31m救助电话是95580。\x1b[0m"
           "详见\x1b]8;;http://evil.example\x1b\\海豚官网\x1b]8;;\x1b\\，\r伪造的一行\x9b1m。\n")
#: Enough ordinary text that the file is not taken for binary data (under 1% control characters).
PADDING = "".join(f"\n\n## 第{i}次救助\n\n志愿者在第{i}次行动中把搁浅的海豚送回了大海，整个过程持续了数个小时。"
                  for i in range(1, 40))
CONTROL = ("\x1b", "\x07", "\x9b", "\r")


@pytest.fixture
def hostile_index(make_retriever, small_corpus, fake_embedder, monkeypatch):
    (small_corpus / "hostile.md").write_text(HOSTILE + PADDING, encoding="utf-8")
    retriever = make_retriever([small_corpus])
    import rag.index.embedding

    monkeypatch.setattr(rag.index.embedding, "load_embedder", lambda name, engine=None: fake_embedder)
    return retriever.index_dir


def _clean(text: str) -> None:
    assert not [c for c in CONTROL if c in text], repr(text)


QUESTION = "海豚救助热线的救助电话是多少？"


def test_rag_ask_prints_no_control_sequences_from_documents(hostile_index, capsys):
    assert cli.main(["ask", QUESTION, "--index", str(hostile_index)]) == 0
    out = capsys.readouterr().out
    assert "hostile.md · 海豚救助热线" in out  # the hostile passage was shown ...
    _clean(out)                                   # ... without its control sequences
    assert "pwned" not in out and "evil.example" not in out


def test_rag_ask_json_escapes_control_characters(hostile_index, capsys):
    assert cli.main(["ask", QUESTION, "--json", "--index", str(hostile_index)]) == 0
    raw = capsys.readouterr().out
    _clean(raw)
    answer = json.loads(raw)
    assert any("\x1b" in h["text"] for h in answer["hits"])  # the data itself is unchanged


def test_rag_search_prints_no_control_sequences(hostile_index, capsys):
    for extra in ([], ["--json"]):
        assert cli.main(["search", "海豚救助热线", "--mode", "bm25", "--index", str(hostile_index), *extra]) == 0
        out = capsys.readouterr().out
        assert "hostile.md" in out
        _clean(out)


def test_rag_chat_prints_no_control_sequences(hostile_index):
    from rag.commands import ask as ask_cmd

    args = cli.build_parser().parse_args(["chat", "--index", str(hostile_index)])
    out = io.StringIO()
    assert ask_cmd.run_chat(args, stdin=io.StringIO(QUESTION + "\n"), out=out) == 0
    assert "hostile.md" in out.getvalue()
    _clean(out.getvalue())


def test_rag_ask_k_is_bounded(capsys):
    assert cli.main(["ask", QUESTION, "--k", "100000", "--index", "/nonexistent"]) == 1
    assert "1 to 50" in capsys.readouterr().err


def test_empty_question_fails_before_the_index_or_the_model_is_loaded(make_retriever, small_corpus):
    index = make_retriever([small_corpus]).index_dir
    probe = ("import sys\n"
             "from rag.cli import main\n"
             f"code = main(['ask', '  ', '--index', {str(index)!r}])\n"
             "print(code, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert run.stdout.split() == ["1", "False", "False"], run.stdout + run.stderr
    assert "question is empty" in run.stderr
