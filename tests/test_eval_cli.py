"""`rag eval` end to end: with fakes (fast), and on the real seeds as the CI quality gate (slow)."""
import json

import pytest

import rag
from eval import scorer
from rag.cli import main
from test_eval_scorer import SOURCES, FakeAssistant, FakeRetriever

QA = [
    {"id": "q1", "question": "驿站建了多少？", "answer": "超过16万个。", "must_contain": ["16万个"],
     "evidence": "全国已建成工会驿站超过16万个", "source": "a.txt", "type": "fact"},
    {"id": "q4", "question": "宁夏有多少驿站？", "answer": "资料中没有相关信息", "must_contain": [],
     "evidence": "", "source": "", "type": "unanswerable"},
]


class FakeRetrieverClass:
    built_from = None

    @classmethod
    def load_or_build(cls, index_dir, docs_paths, **settings):
        cls.built_from = (index_dir, list(docs_paths))
        return FakeRetriever()


@pytest.fixture
def fake_pipeline(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in SOURCES.items():
        (docs / name).write_text(text, encoding="utf-8")
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in QA), encoding="utf-8")
    monkeypatch.setattr(rag, "Retriever", FakeRetrieverClass, raising=False)
    monkeypatch.setattr(scorer, "default_assistant_factory", FakeAssistant)
    return tmp_path, docs, qa


def test_rag_eval_writes_reports_and_prints_a_table(fake_pipeline, capsys):
    tmp, docs, qa = fake_pipeline
    out = tmp / "out"
    code = main(["eval", "--qa", str(qa), "--docs", str(docs), "--index", str(tmp / "idx"),
                 "--modes", "bm25,hybrid", "--out", str(out), "--json", str(tmp / "m.json"), "--no-progress"])
    assert code == 0
    assert FakeRetrieverClass.built_from == (tmp / "idx", [docs])
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert list(data["retrieval"]) == ["bm25", "hybrid"]
    assert data["answer"]["extractive"]["key_fact_accuracy"] == 1.0
    assert data["meta"]["index"]["model"] == "fake-model" and data["meta"]["index"]["store"] == "local"
    assert (out / "report.md").exists() and (out / "chart.png").exists() and (tmp / "m.json").exists()
    assert "MRR@10" in capsys.readouterr().out


def test_rag_eval_check_gate_exit_codes(fake_pipeline, capsys):
    tmp, docs, qa = fake_pipeline
    baseline = tmp / "baseline.json"
    common = ["eval", "--qa", str(qa), "--docs", str(docs), "--index", str(tmp / "idx"),
              "--modes", "hybrid", "--out", str(tmp / "out"), "--no-progress", "--baseline", str(baseline)]
    assert main(common + ["--write-baseline"]) == 0
    assert main(common + ["--check"]) == 0
    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["metrics"]["retrieval.hybrid.R@1"] = 1.0 + 0.5      # an unreachable bar
    baseline.write_text(json.dumps(data), encoding="utf-8")
    assert main(common + ["--check"]) == 1
    assert "REGRESSION retrieval.hybrid.R@1" in capsys.readouterr().err


@pytest.mark.slow
def test_quality_gate_on_the_seeds_with_the_extractive_generator(seeds_index, tmp_path, capsys):
    """CI quality gate: `rag eval --check` on seeds/ with eval/qa.jsonl and eval/baseline.json."""
    code = main(["eval", "--check", "--generator", "extractive", "--index", str(seeds_index),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "quality gate passed" in captured.out
