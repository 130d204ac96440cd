"""A build killed mid-way and run again embeds only what it had not committed yet.

A real ``rag index`` process (real model, real SQLite cache) is killed with SIGKILL
once the cache holds its first committed batch, then run again to completion.
"""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.index.embedding_cache import CACHE_FILENAME

ROOT = Path(__file__).resolve().parents[1]
SMALL_SEED = ROOT / "seeds" / "000_13023a24b223fec4.txt"
COMMIT_EVERY = 4


def _cached_rows(cache_file: Path) -> int:
    if not cache_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache_file}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "RAG_CACHE_DIR": str(cache_dir), "RAG_EMBED_COMMIT_EVERY": str(COMMIT_EVERY),
            "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.mark.slow
def test_build_killed_midway_resumes_from_the_cache(tmp_path):
    from embeddings.materialize import materialize

    model_dir = materialize()  # the shared materialised model, linked into a private cache dir
    cache_dir = tmp_path / "cache"
    (cache_dir / "models").mkdir(parents=True)
    (cache_dir / "models" / model_dir.name).symlink_to(model_dir, target_is_directory=True)
    cache_file = cache_dir / CACHE_FILENAME
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / SMALL_SEED.name).write_bytes(SMALL_SEED.read_bytes())
    command = [sys.executable, "-m", "rag.cli", "index", str(docs), "--index", str(tmp_path / "index"), "--quiet"]

    build = subprocess.Popen(command, env=_env(cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while _cached_rows(cache_file) < COMMIT_EVERY and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build.poll() is None, f"the build ended before it could be killed: {build.communicate()}"
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert build.returncode == -signal.SIGKILL
    committed = _cached_rows(cache_file)
    assert committed >= COMMIT_EVERY
    assert not (tmp_path / "index" / "manifest.json").exists()  # killed before the index was written

    rerun = subprocess.run(command, env=_env(cache_dir), capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = re.search(r"embedded (\d+) passages, (\d+) from the cache; (\d+) sentence views \((\d+) embedded",
                        rerun.stdout)
    assert summary, rerun.stdout
    embedded, cached, _views, views_embedded = map(int, summary.groups())
    total = _cached_rows(cache_file)
    assert committed < embedded + cached  # killed while the chunks themselves were being embedded
    # nothing committed before the kill was embedded again, and nothing is missing now
    assert embedded + views_embedded == total - committed
    assert cached == min(committed, embedded + cached) > 0  # chunks are embedded (and committed) first


def test_vectors_committed_before_a_failure_are_not_embedded_again(tmp_path, fake_embedder):
    """The model failing on the third batch keeps the first two batches in the cache."""
    from rag.index.embedding_cache import EmbeddingCache, embed_passages

    texts = [f"第{i}段：" + "文本" * (i + 1) for i in range(10)]

    class FailsOnThirdBatch:
        name, dim = fake_embedder.name, fake_embedder.dim

        def __init__(self):
            self.calls = 0

        def encode_passages(self, batch, show_progress=False):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("out of memory")
            return fake_embedder.encode_passages(batch)

    with EmbeddingCache(tmp_path / "cache.sqlite3") as cache:
        with pytest.raises(RuntimeError):
            embed_passages(FailsOnThirdBatch(), texts, cache=cache, commit_every=3)
        assert cache.count() == 6
        before = fake_embedder.passages_encoded
        result = embed_passages(fake_embedder, texts, cache=cache, commit_every=3)
    assert (result.embedded, result.cached) == (4, 6)
    assert fake_embedder.passages_encoded - before == 4
