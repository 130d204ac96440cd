"""The real model on the shipped corpus: evidence of known questions lands in the top 5."""
from __future__ import annotations

import pytest

from conftest import SEEDS
from rag import config
from rag.retrieval.retriever import Retriever

pytestmark = pytest.mark.slow

# (question, file, a sentence of the evidence as it is in the file)
QUESTIONS = [
    ("12351工会服务职工热线是哪天宣布全面建成运行的？", "001_bb0aca97bad15d0f.txt",
     "12351工会服务职工热线全面建成运行"),
    ("全国工会建成的户外劳动者服务站点有多少个？", "000_13023a24b223fec4.txt",
     "全国工会建成各类工会户外劳动者服务站点13.08万个"),
    ("被称作“华夏第一炼钢工”的人叫什么？", "000_13023a24b223fec4.txt",
     "河钢集团唐钢公司首席操作专家郑久强"),
    ("廖泽萌是哪天站上重庆微宣讲决赛舞台的？", "000_13023a24b223fec4.txt",
     "站在重庆微宣讲决赛舞台上的外卖骑手廖泽萌"),
]


def _evidence_span(file: str, sentence: str) -> tuple[int, int]:
    text = (SEEDS / file).read_text(encoding="utf-8-sig")
    start = text.find(sentence)
    assert start >= 0, f"evidence not in {file}"
    return start, start + len(sentence)


def _found(hits, file: str, span: tuple[int, int]) -> bool:
    """Some hit of ``file`` overlaps at least half of the evidence (the eval set's rule)."""
    length = span[1] - span[0]
    return any(h.doc.endswith(file) and 2 * (min(h.end, span[1]) - max(h.start, span[0])) >= length
               for h in hits)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("question, file, sentence", QUESTIONS)
def test_evidence_of_known_questions_is_in_the_top_five(seeds_retriever, mode, question, file, sentence):
    hits = seeds_retriever.search(question, k=5, mode=mode)
    assert _found(hits, file, _evidence_span(file, sentence)), [(h.doc, h.text[:40]) for h in hits]


def test_seeds_index_uses_the_default_model_and_every_seed_file(seeds_retriever):
    assert seeds_retriever.model_name == config.DEFAULT_MODEL
    assert sorted(seeds_retriever.documents) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert seeds_retriever.embedder.dim == seeds_retriever.manifest["model"]["dim"]


def test_english_question_finds_the_hotline_passage(seeds_retriever):
    hits = seeds_retriever.search("When was the 12351 trade union hotline fully completed?", k=5)
    assert any("12351" in h.text for h in hits)


def test_numbers_match_exactly_with_the_real_index(seeds_retriever):
    assert "13.08万个" in seeds_retriever.search("13.08万", k=1, mode="bm25")[0].text
    assert "12351" in seeds_retriever.search("12351", k=1, mode="hybrid")[0].text


def test_hit_offsets_point_into_the_original_file(seeds_retriever):
    for hit in seeds_retriever.search("工会服务站点双15工程", k=5):
        source = seeds_retriever.source_text(hit.doc)
        assert source == (SEEDS / hit.doc).read_text(encoding="utf-8-sig")
        window = "".join(source[hit.start:hit.end].split())
        assert "".join(hit.text.split())[:20] in window


def test_rebuilding_the_seeds_index_embeds_nothing_new(seeds_index, tmp_path):
    rebuilt = Retriever.build([SEEDS], tmp_path / "again", show_progress=False)
    assert rebuilt.build_summary.embedded == 0 and rebuilt.build_summary.cached > 0
