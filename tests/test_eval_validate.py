"""The Q&A validator: the shipped set passes, a broken set reports each violation."""
import json

import pytest

from eval.qa import DEFAULT_DOCS_DIR, DEFAULT_QA_FILE
from eval.validate import longest_common_run, statistics, validate_file
from rag.cli import main

SOURCE = "甲乙丙丁戊己庚辛壬癸。全国已建成工会驿站超过16万个，覆盖服务职工群众超1亿人。这个重复的句子在这里一共出现了两次。这个重复的句子在这里一共出现了两次。"


def write_qa(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")


def good(qid, **changes):
    record = {"id": qid, "question": "工会服务站有多少？", "answer": "超过16万个。", "must_contain": ["16万个"],
              "evidence": "全国已建成工会驿站超过16万个", "source": "doc.txt", "type": "fact"}
    record.update(changes)
    return record


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "doc.txt").write_text(SOURCE, encoding="utf-8")
    return folder


def test_shipped_qa_set_is_valid():
    assert validate_file(DEFAULT_QA_FILE, DEFAULT_DOCS_DIR) == []


def test_shipped_qa_set_meets_the_issue_counts():
    stats = statistics(DEFAULT_QA_FILE)
    assert stats["questions"] >= 80
    assert stats["per_type"]["unanswerable"] >= 8
    assert stats["per_type"]["multi"] >= 5
    assert stats["per_type"]["paraphrase"] >= 10
    assert stats["no_long_overlap_share"] >= 1 / 3
    assert len(stats["per_source"]) == 5


def test_longest_common_run():
    assert longest_common_run("abcdef", "xxcdey") == 3
    assert longest_common_run("", "abc") == 0


def test_a_valid_small_file_passes_without_minimums(tmp_path, docs):
    qa = tmp_path / "qa.jsonl"
    write_qa(qa, [good("a1", question="驿站数量？")])
    assert validate_file(qa, docs, minimums=None) == []


def test_broken_file_reports_every_violation_with_its_id(tmp_path, docs):
    qa = tmp_path / "qa.jsonl"
    write_qa(qa, [
        good("ok", question="服务站点的总数？"),
        good("ok", question="再问一次？"),                                      # duplicate id
        good("short", evidence="驿站超过16万个"),                                # < 15 characters
        good("absent", evidence="全国已建成工会驿站超过17万个了吗"),              # not verbatim
        good("twice", evidence="这个重复的句子在这里一共出现了两次。", must_contain=["重复"], answer="重复"),
        good("fact", must_contain=["18万个"], answer="18万个"),                 # key fact not in evidence
        good("ans", answer="很多。"),                                            # key fact not in answer
        good("kind", type="opinion"),                                           # unknown type
        good("nosrc", source="missing.txt"),                                    # unknown source file
        {"id": "u1", "question": "宁夏呢？", "answer": "不知道", "must_contain": ["x"],
         "evidence": "全国已建成工会驿站超过16万个", "source": "doc.txt", "type": "unanswerable"},
        good("m1", type="multi"),                                               # multi without evidence2
        good("e2", evidence2="覆盖服务职工群众超1亿人。这个重复的", source2="doc.txt"),  # evidence2 on a fact
        {"id": "schema", "question": 5, "answer": "a", "evidence": "", "source": "", "type": "fact"},
    ])
    messages = [str(v) for v in validate_file(qa, docs, minimums=None)]
    expected = [
        "ok: duplicate id",
        "short: evidence: evidence is 8 characters",
        "absent: evidence: evidence is not a verbatim substring",
        "twice: evidence: evidence occurs 2 times",
        "fact: must_contain '18万个' is not in the evidence",
        "ans: must_contain '16万个' is not in the reference answer",
        "kind: unknown type 'opinion'",
        "nosrc: evidence: source file 'missing.txt' is not in the corpus",
        "u1: unanswerable: answer must be",
        "u1: unanswerable: must_contain must be empty",
        "u1: unanswerable: evidence and source must be empty",
        "m1: evidence2: evidence and source are required",
        "e2: evidence2/source2 are only for multi questions",
        "schema: missing key 'must_contain'",
        "schema: 'question' must be a string",
    ]
    for text in expected:
        assert any(m.startswith(text) for m in messages), (text, messages)


def test_set_rules_counts_coverage_and_overlap(tmp_path, docs):
    (docs / "other.txt").write_text("另一个文件，没有问题问到它。", encoding="utf-8")
    qa = tmp_path / "qa.jsonl"
    # the question copies its evidence: it shares a 14-character run
    write_qa(qa, [good("copy", question="全国已建成工会驿站超过16万个吗？")])
    messages = [str(v) for v in validate_file(qa, docs)]
    assert any("1 questions (need at least 80)" in m for m in messages)
    assert any("0 'unanswerable' questions" in m for m in messages)
    assert any("other.txt is not covered" in m for m in messages)
    assert any("share no run of more than 6 characters" in m for m in messages)


def test_rag_eval_validate_exits_nonzero_and_lists_violations(tmp_path, docs, capsys):
    qa = tmp_path / "qa.jsonl"
    write_qa(qa, [good("short", evidence="驿站超过16万个")])
    assert main(["eval", "--validate", str(qa), "--docs", str(docs), "--no-minimums"]) == 1
    assert "short: evidence: evidence is 8 characters" in capsys.readouterr().out
    write_qa(qa, [good("fine", question="驿站数量？")])
    assert main(["eval", "--validate", str(qa), "--docs", str(docs), "--no-minimums"]) == 0


def test_bad_json_line_is_a_clear_error(tmp_path, docs, capsys):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "a"\n', encoding="utf-8")
    assert main(["eval", "--validate", str(qa), "--docs", str(docs)]) == 1
    assert "qa.jsonl:1: not valid JSON" in capsys.readouterr().err
