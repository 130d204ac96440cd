"""eval.abstention_checks: which check alone declines which question."""
from __future__ import annotations

import json

import pytest

from eval import abstention_checks
from eval.calibrate import Case
from eval.fit_abstention import save_cases
from rag.answering.abstention import AbstentionPolicy, Evidence


def part(**kw) -> Evidence:
    """A part whose best sentence states the asked number and names the attribute next to it, unless
    ``kw`` says otherwise."""
    base = dict(question="甘肃省工会开展了多少项劳动竞赛？", missing=[], kind="number", typed=True, attribute=True,
                coverage=0.85, cosine=0.93, named=True, passage=0, best_coverage=0.85, best_cosine=0.93,
                best_score=1.6, top_score=2.5, margin=0.8, entities=1)
    base.update(kw)
    return Evidence(**base)


def cases() -> list[Case]:
    return [
        Case("other-period", False, [part(relation="other_period")]),          # only the relation check declines
        Case("attribute", True, [part(attribute=False, coverage=0.5)]),       # attribute unnamed, coverage < 0.8
        Case("two-objections", False, [part(typed=False, missing=["2019年"])]),  # no single check owns it
        Case("answered", True, [part()]),
        Case("one-part-answered", False, [part(), part(relation="other_period")]),
        Case("no-passages", False, []),
    ]


def test_each_decline_is_owned_by_the_only_check_that_makes_it():
    assert [abstention_checks.without_check("relation", AbstentionPolicy())(c) for c in cases()] == [
        False, True, True, False, False, True]
    result = abstention_checks.check_report(cases())
    assert (result["answerable"], result["unanswerable"], result["right"], result["false"]) == (2, 4, 3, 1)
    checks = result["checks"]
    assert checks["relation"] == {"right": 1, "false": 0, "ids": ["other-period"]}
    # the unnamed attribute and the coverage cut-off it falls below each alone decline the same question
    assert checks["attribute_unnamed"] == {"right": 0, "false": 1, "ids": ["attribute"]}
    assert checks["coverage_without_attribute"] == {"right": 0, "false": 1, "ids": ["attribute"]}
    # two objections at once: neither check alone decides it; nothing else owns a decline
    assert checks["missing"]["ids"] == checks["no_span"]["ids"] == []
    owners = {name for name, c in checks.items() if c["ids"]}
    assert owners == {"relation", "attribute_unnamed", "coverage_without_attribute"}


def test_an_unknown_check_is_refused():
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        abstention_checks.without_check("nope", AbstentionPolicy())


def test_the_command_reads_saved_evidence_and_pools_the_sets(tmp_path, capsys):
    saved = tmp_path / "cases.json"
    save_cases({"a.jsonl": cases()[:3], "b.jsonl": cases()[3:]}, saved)
    out = tmp_path / "report.json"
    assert abstention_checks.main(["--cases", str(saved), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| check | a.jsonl | b.jsonl | all |" in table
    assert "| relation | 1 / 0 | 0 / 0 | 1 / 0 |" in table
    assert "| attribute_unnamed | 0 / 1 | 0 / 0 | 0 / 1 |" in table
    assert "| missing |" not in table  # owns no decline anywhere
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["all"]["checks"]["relation"]["ids"] == ["other-period"]
    assert report["b.jsonl"]["right"] == 1 and report["b.jsonl"]["false"] == 0  # only the no-passages question
