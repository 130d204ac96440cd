"""Metric functions on small hand-computed cases."""
import math

import pytest

from eval import metrics as M
from eval.qa import GoldSpan

GOLD = GoldSpan("a.txt", 100, 120)          # 20 characters of evidence
GOLD2 = GoldSpan("b.txt", 0, 30)


def test_covers_needs_same_file_and_half_the_evidence():
    assert M.covers(("a.txt", 90, 110), GOLD)          # 10 of 20 -> exactly half
    assert not M.covers(("a.txt", 90, 109), GOLD)      # 9 of 20 -> near miss
    assert not M.covers(("b.txt", 100, 120), GOLD)     # other file
    assert M.covers(("docs/sub/a.txt", 0, 500), GOLD)  # paths compare by file name


def test_adjacent_span_is_not_relevant():
    assert not M.covers(("a.txt", 120, 200), GOLD)
    assert not M.cites(("a.txt", 120, 200), GOLD)


def test_recall_mrr_on_a_ranking_with_gold_at_rank_three():
    ranking = [("a.txt", 0, 50), ("c.txt", 0, 50), ("a.txt", 95, 140), ("a.txt", 200, 300)]
    assert M.recall_at(ranking, [GOLD], 1) == 0.0
    assert M.recall_at(ranking, [GOLD], 3) == 1.0
    assert M.mrr_at(ranking, [GOLD]) == pytest.approx(1 / 3)
    assert M.ndcg_at(ranking, [GOLD]) == pytest.approx(1 / math.log2(4))


def test_no_hits_score_zero():
    scores = M.retrieval_scores([], [GOLD])
    assert all(v == 0.0 for v in scores.values())


def test_duplicate_hits_cannot_raise_ndcg():
    relevant = ("a.txt", 100, 120)
    once = M.ndcg_at([relevant, ("c.txt", 0, 5)], [GOLD])
    twice = M.ndcg_at([relevant, relevant], [GOLD])
    assert once == twice == 1.0
    # a duplicate of an irrelevant hit still takes a rank
    assert M.mrr_at([("c.txt", 0, 5), ("c.txt", 0, 5), relevant], [GOLD]) == pytest.approx(1 / 3)


def test_multi_either_evidence_counts_for_recall_but_both_needed_for_both_at_k():
    ranking = [("b.txt", 0, 30), ("x.txt", 0, 9), ("a.txt", 100, 120)]
    assert M.recall_at(ranking, [GOLD, GOLD2], 1) == 1.0
    assert M.all_found_at(ranking, [GOLD, GOLD2], 1) == 0.0
    assert M.all_found_at(ranking, [GOLD, GOLD2], 3) == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert M.ndcg_at(ranking, [GOLD, GOLD2]) == pytest.approx((1 + 1 / math.log2(4)) / ideal)


def test_key_facts_ignore_width_whitespace_and_markers():
    assert M.key_facts_present("共有１２００多项 成果[1]", ["1200多项"])
    assert not M.key_facts_present("共有1200项", ["1200多项"])
    assert not M.key_facts_present("", ["x"])
    assert not M.key_facts_present("anything", [])


def test_char_f1_hand_computed():
    # prediction 我爱北京 vs reference 北京天安门: common 北,京 -> P=2/4, R=2/5
    assert M.char_f1("我爱北京", "北京天安门") == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert M.char_f1("北京。", "北 京") == 1.0
    assert M.char_f1("", "北京") == 0.0
    assert M.char_f1("上海", "北京") == 0.0


def test_citation_hit_uses_half_of_the_shorter_span():
    assert M.citation_hits_gold([("a.txt", 105, 112)], [GOLD])        # sentence inside evidence
    assert M.citation_hits_gold([("a.txt", 50, 300)], [GOLD])         # long sentence containing it
    assert not M.citation_hits_gold([("a.txt", 115, 140)], [GOLD])    # 5 of 20 shared
    assert not M.citation_hits_gold([], [GOLD])


def test_citation_precision_hand_computed():
    # GOLD is a.txt 100..120. Citations: inside the evidence (yes), 5 of 20 shared
    # (no: half of the shorter span is 10), another file (no), covering it (yes) -> 2/4.
    cits = [("a.txt", 105, 112), ("a.txt", 115, 140), ("b.txt", 100, 120), ("a.txt", 90, 130)]
    assert M.citation_precision(cits, [GOLD]) == pytest.approx(2 / 4)
    assert M.citation_precision(cits[:1], [GOLD]) == 1.0
    assert M.citation_precision([("a.txt", 0, 50)], [GOLD]) == 0.0
    assert M.citation_precision([], [GOLD]) is None  # no citations: undefined, not 0


def test_grounded_requires_stated_facts_in_quotes():
    quotes = ["全国建成驿站18.61万个。"]
    assert M.is_grounded("建成驿站18.61万个[1]", "驿站有多少？", ["18.61万个"], quotes)
    assert not M.is_grounded("建成驿站20万个", "驿站有多少？", ["18.61万个"], quotes)   # invented number
    assert M.is_grounded("2024年建成驿站18.61万个", "2024年驿站有多少？", [], quotes)  # year from the question
    assert not M.is_grounded("18.61万个", "q", ["18.61万个"], [])                     # nothing cited


def test_abstention_scores_with_and_without_abstentions():
    abstained = [True, True, False, False]
    answerable = [False, True, False, True]
    scores = M.abstention_scores(abstained, answerable)
    assert scores == {"abstention_precision": 0.5, "abstention_recall": 0.5, "false_abstention_rate": 0.5}
    never = M.abstention_scores([False, False], [False, True])
    assert never["abstention_precision"] is None and never["abstention_recall"] == 0.0


def test_percentile_and_mean_edges():
    assert M.percentile([], 50) is None
    assert M.percentile([10.0], 95) == 10.0
    assert M.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert M.mean([None, 1.0, 0.0]) == 0.5
    assert M.mean([None]) is None
