"""The evaluator, reports and gate, driven by small fake retrievers and assistants."""
import json

import pytest

from eval import gate
from eval.qa import QAItem
from eval.report import console_table, to_markdown, write_outputs
from eval.scorer import ANSWER_KEYS, RETRIEVAL_KEYS, RagEvaluator
from rag.errors import RagError
from rag.index.settings import IndexSettings
from rag.types import Answer, Citation, Hit

DOC_A = "第一段没有用的话。全国已建成工会驿站超过16万个，覆盖服务职工群众超1亿人。后面还有一些别的内容。"
DOC_B = "乙文件开头。中挪海员集体协商始于1999年，以两国工会组织联合与船东组织进行谈判。"
SOURCES = {"a.txt": DOC_A, "b.txt": DOC_B}
EV_A = "全国已建成工会驿站超过16万个"
EV_B = "中挪海员集体协商始于1999年"


def span_of(doc, evidence):
    start = SOURCES[doc].find(evidence)
    return start, start + len(evidence)


ITEMS = [
    QAItem("q1", "驿站建了多少？", "超过16万个。", ["16万个"], EV_A, "a.txt", "fact"),
    QAItem("q2", "海员协商哪年开始？", "1999年。", ["1999年"], EV_B, "b.txt", "number"),
    QAItem("q3", "驿站数和协商年份？", "16万个；1999年。", ["16万个", "1999年"], EV_A, "a.txt", "multi",
           evidence2=EV_B, source2="b.txt"),
    QAItem("q4", "宁夏有多少驿站？", "资料中没有相关信息", [], "", "", "unanswerable"),
]


def hit(doc, evidence, score=1.0):
    start, end = span_of(doc, evidence)
    return Hit(f"{doc}#{start}", doc, ["h"], evidence, start, end, score)


MISS = Hit("a.txt#0", "a.txt", [], "第一段没有用的话。", 0, 9, 0.1)


class FakeRetriever:
    """q1: gold first; q2: gold third; q3: only evidence2 at rank 2; q4: anything."""

    def __init__(self):
        self.queries = []
        #: what `rag eval` records about the index it scored
        self.settings = IndexSettings(model="fake-model")

    def search(self, query, k=10, mode="hybrid"):
        self.queries.append((query, k, mode))
        if mode == "dense":
            return []
        table = {
            "驿站建了多少？": [hit("a.txt", EV_A)],
            "海员协商哪年开始？": [MISS, MISS, hit("b.txt", EV_B)],
            "驿站数和协商年份？": [MISS, hit("b.txt", EV_B)],
        }
        return table.get(query, [MISS])[:k]


class FakeAssistant:
    """Answers q1 right with a citation, q2 with an invented number, abstains on q3 and q4."""

    def __init__(self, retriever, generator):
        self.generator = generator
        self.asked = []

    def ask(self, question):
        self.asked.append(question)
        if question == "驿站建了多少？":
            s, e = span_of("a.txt", EV_A)
            cit = Citation(1, "c", "a.txt", [], EV_A + "，", s, e + 1)
            return Answer(question, "全国已建成工会驿站超过16万个[1]", [cit], False, [hit("a.txt", EV_A)])
        if question == "海员协商哪年开始？":
            cit = Citation(1, "c", "a.txt", [], "第一段没有用的话。", 0, 9)
            return Answer(question, "始于1998年[1]", [cit], False, [MISS])
        return Answer(question, "资料中没有相关信息", [], True, [])


@pytest.fixture
def result():
    evaluator = RagEvaluator(ITEMS, SOURCES, modes=["dense", "hybrid"], generators=["extractive"],
                             show_progress=False, name="fake.jsonl")
    return evaluator(FakeRetriever(), FakeAssistant)


def test_retrieval_metrics_hand_computed(result):
    hybrid = result["retrieval"]["hybrid"]
    # answerable: q1 rank 1, q2 rank 3, q3 rank 2 (either evidence counts)
    assert hybrid["R@1"] == pytest.approx(1 / 3)
    assert hybrid["R@3"] == 1.0
    assert hybrid["MRR@10"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert set(hybrid) == set(RETRIEVAL_KEYS)
    assert result["multi_both"]["hybrid"] == {"questions": 1, "both@5": 0.0, "both@10": 0.0}


def test_a_retriever_with_no_hits_scores_zero(result):
    assert all(v == 0.0 for v in result["retrieval"]["dense"].values())


def test_answer_metrics_hand_computed(result):
    ans = result["answer"]["extractive"]
    assert set(ans) == set(ANSWER_KEYS)
    assert ans["key_fact_accuracy"] == pytest.approx(1 / 3)      # only q1
    assert ans["citation_hit"] == pytest.approx(1 / 2)           # q1 yes, q2 cites the wrong place
    assert ans["citation_precision"] == pytest.approx(1 / 2)     # q1 1/1, q2 0/1; q3 abstained
    assert ans["grounded"] == pytest.approx(1 / 2)               # q2 states 1998, not in its quote
    assert ans["abstention_precision"] == pytest.approx(1 / 2)   # abstained on q3 (wrong) and q4 (right)
    assert ans["abstention_recall"] == 1.0
    assert ans["false_abstention_rate"] == pytest.approx(1 / 3)


def test_per_type_breakdown_and_failures(result):
    assert result["by_type"]["unanswerable"]["answer"]["extractive"]["abstention_recall"] == 1.0
    assert "retrieval" not in result["by_type"]["unanswerable"]
    assert result["by_type"]["fact"]["retrieval"]["hybrid"]["R@1"] == 1.0
    failed = {f["id"]: f for f in result["failures"]}
    assert set(failed) == {"q2", "q3"}
    assert "gold evidence not cited" in failed["q2"]["reasons"]
    assert "false abstention" in failed["q3"]["reasons"]
    assert failed["q2"]["got"]["text"] == "始于1998年[1]"


def test_pipeline_only_sees_question_strings():
    retriever = FakeRetriever()
    assistants = []

    def factory(r, g):
        assistants.append(FakeAssistant(r, g))
        return assistants[-1]

    RagEvaluator(ITEMS, SOURCES, modes=["hybrid"], show_progress=False)(retriever, factory)
    questions = [item.question for item in ITEMS]
    assert [q for q, _, _ in retriever.queries] == questions
    assert assistants[0].asked == questions


def test_generator_failing_everywhere_is_an_error():
    class Broken:
        def ask(self, question):
            raise RuntimeError("model missing")

    evaluator = RagEvaluator(ITEMS, SOURCES, modes=["hybrid"], show_progress=False)
    with pytest.raises(RagError, match="model missing"):
        evaluator(FakeRetriever(), lambda r, g: Broken())


def test_missing_evidence_is_refused_before_running():
    bad = [QAItem("x", "q", "a", ["a"], "不在文件里的证据文字一二三四五六", "a.txt", "fact")]
    with pytest.raises(RagError, match="x"):
        RagEvaluator(bad, SOURCES)


def test_outputs_json_markdown_chart(result, tmp_path):
    paths = write_outputs(result, tmp_path / "out", tmp_path / "m.json")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert {"retrieval", "answer", "latency", "by_type", "failures"} <= set(data)
    assert set(data["latency"]["retrieval"]["hybrid"]) == {"p50_ms", "p95_ms"}
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "m.json").exists()
    md = to_markdown(result)
    assert "| hybrid |" in md and "q2" in md
    assert "R@1" in console_table(result)


def test_gate_passes_within_tolerance_and_fails_beyond():
    baseline = {"tolerance": 0.03, "metrics": {"retrieval.hybrid.R@1": 0.60,
                                               "answer.extractive.false_abstention_rate": 0.10}}
    ok = {"retrieval": {"hybrid": {"R@1": 0.58}}, "answer": {"extractive": {"false_abstention_rate": 0.12}}}
    assert gate.check(ok, baseline) == []
    bad = {"retrieval": {"hybrid": {"R@1": 0.56}}, "answer": {"extractive": {"false_abstention_rate": 0.14}}}
    problems = gate.check(bad, baseline)
    assert len(problems) == 2
    assert problems[0].startswith("retrieval.hybrid.R@1: 0.560 fell below")
    assert "rose above" in problems[1]


def test_a_per_metric_tolerance_overrides_the_default():
    baseline = {"tolerance": 0.03, "tolerances": {"answer.extractive.abstention_recall": 0.12},
                "metrics": {"answer.extractive.abstention_recall": 0.78, "retrieval.hybrid.R@1": 0.91}}
    one_question_less = {"answer": {"extractive": {"abstention_recall": 0.67}}, "retrieval": {"hybrid": {"R@1": 0.90}}}
    assert gate.check(one_question_less, baseline) == []
    two_less = {"answer": {"extractive": {"abstention_recall": 0.56}}, "retrieval": {"hybrid": {"R@1": 0.87}}}
    problems = gate.check(two_less, baseline)
    assert [p.split(":")[0] for p in problems] == ["answer.extractive.abstention_recall", "retrieval.hybrid.R@1"]


def test_new_baselines_carry_the_abstention_tolerances():
    run = {"answer": {"extractive": {"abstention_recall": 0.78, "key_fact_accuracy": 0.86}}}
    base = gate.make_baseline(run)
    assert base["tolerances"] == {"answer.extractive.abstention_recall": 0.05}


def test_gate_fails_on_missing_or_undefined_metric():
    baseline = {"tolerance": 0.03, "metrics": {"answer.extractive.abstention_precision": 0.8,
                                               "retrieval.hybrid.R@5": 0.5}}
    run = {"answer": {"extractive": {"abstention_precision": None}}, "retrieval": {}}
    problems = gate.check(run, baseline)
    assert len(problems) == 2 and all("missing" in p for p in problems)


def test_make_baseline_keeps_only_headline_metrics_present(result):
    base = gate.make_baseline(result)
    assert base["metrics"]["retrieval.hybrid.R@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert gate.check(result, base) == []


def test_load_baseline_errors(tmp_path):
    with pytest.raises(RagError, match="not found"):
        gate.load_baseline(tmp_path / "none.json")
    (tmp_path / "b.json").write_text('{"tolerance": 0.03}', encoding="utf-8")
    with pytest.raises(RagError, match="no 'metrics'"):
        gate.load_baseline(tmp_path / "b.json")
