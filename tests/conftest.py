"""Shared fixtures.

Fast (no model):
  fake_embedder      a deterministic, counting stand-in for the embedding model
                     (hashed character uni/bigrams; similar texts get similar vectors)
  small_corpus       a folder of four short Chinese documents (tmp_path)
  small_retriever    a Retriever built over small_corpus with fake_embedder and a private cache
  make_retriever     factory: make_retriever(paths, index_dir=None, **settings)

Slow (real model, built once per test session; mark tests @pytest.mark.slow):
  seeds_index        path of an index of seeds/ built with the default model
  seeds_retriever    Retriever.load(seeds_index): share it, don't mutate it (no add())
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class FakeEmbedder:
    """Bag of hashed character unigrams and bigrams, L2-normalised.

    Deterministic and fast; texts sharing characters get a high cosine, so search
    behaves sensibly. Counts what it is asked to embed (``passages_encoded``).
    """

    def __init__(self, name: str = "fake/char-bigram", dim: int = 64):
        self.name = name
        self.dim = dim
        self.passage_calls: list[list[str]] = []
        self.query_calls: list[list[str]] = []

    @property
    def passages_encoded(self) -> int:
        return sum(len(batch) for batch in self.passage_calls)

    def _vector(self, text: str) -> np.ndarray:
        text = unicodedata.normalize("NFKC", text).lower()
        vec = np.zeros(self.dim, dtype=np.float32)
        grams = list(text) + [text[i:i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            if gram.isspace():
                continue
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            vec[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def encode_queries(self, texts):
        self.query_calls.append(list(texts))
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def encode_passages(self, texts, show_progress: bool = False):
        self.passage_calls.append(list(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


SMALL_DOCS = {
    "hotline.md": """# 职工服务热线

## 热线建设

2023年12月29日，全国总工会宣布：12351工会服务职工热线全面建成运行。热线以接听来电的方式，“7×24小时”受理职工维权服务需求。

## 服务站点

全国工会建成各类工会户外劳动者服务站点13.08万个，投入运营“司机之家”1335家。
""",
    "panda.md": """# 大熊猫保护

## 栖息地

大熊猫主要生活在四川、陕西和甘肃的山区竹林中，以竹子为主要食物。

## 繁育研究

成都大熊猫繁育研究基地成立于1987年，目前已繁育大熊猫二百多只。
""",
    "tea.txt": """龙井茶简介

西湖龙井是绿茶的一种，产于浙江省杭州市西湖周围的群山之中，已有一千二百多年历史。

明前龙井在清明节前采摘，品质最佳，价格也最高。
""",
    "rail.md": """# 高速铁路

京沪高速铁路全长1318公里，设计时速350公里，2011年6月30日正式开通运营。

沿线设有北京南、天津南、济南西、南京南、上海虹桥等24个车站。
""",
}


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in SMALL_DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def make_retriever(tmp_path, fake_embedder):
    """Build a Retriever with the fake embedder and a private embedding cache."""
    from rag.retrieval.retriever import Retriever

    def make(paths, index_dir=None, **settings):
        settings.setdefault("embedder", fake_embedder)
        settings.setdefault("cache", tmp_path / "cache.sqlite3")
        settings.setdefault("show_progress", False)
        return Retriever.build(paths, index_dir or tmp_path / "index", **settings)

    return make


@pytest.fixture
def small_retriever(make_retriever, small_corpus):
    return make_retriever([small_corpus])


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory) -> Path:
    """An index of seeds/ with the default (real) model, built once per session."""
    from rag.retrieval.retriever import Retriever

    index_dir = tmp_path_factory.mktemp("seeds") / "index"
    Retriever.build([SEEDS], index_dir, show_progress=False)
    return index_dir


@pytest.fixture(scope="session")
def seeds_retriever(seeds_index):
    """The seeds/ index loaded once per session (real model; read-only: don't call add())."""
    from rag.retrieval.retriever import Retriever

    return Retriever.load(seeds_index)


# --- CI: a skipped test is a failure ------------------------------------------
# CI installs every extra and Debian's chromium, so a skip there means something
# the suite should exercise (the local LLM, the browser, the C tokenizer check)
# silently did not run. Locally, skips stay skips.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every optional part is installed: {reason}"
