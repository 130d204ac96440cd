"""A build reads, embeds and writes a collection in batches, holding one batch at a time.

Real builds (real files, the real ingest pipeline, SQLite cache, FAISS and bm25s);
only the model is the fast fake embedder, which also watches what is alive when it
is asked to embed.
"""
from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest

from rag.index.stores.bm25_keyword import KeywordIndex, KeywordIndexBuilder
from rag.retrieval import retriever as retriever_module
from rag.retrieval.retriever import Retriever
from rag.tokenize_zh import tokenize_many

from conftest import FakeEmbedder

TOPICS = ["高速铁路", "大熊猫", "龙井茶", "职工热线", "长江航运", "稀土产业", "新能源汽车", "粮食安全"]
DOCUMENTS = 96
BATCH_CHUNKS = 10


def _write_collection(folder):
    """Many small articles, one file each (each one or two chunks)."""
    folder.mkdir()
    for i in range(DOCUMENTS):
        topic = TOPICS[i % len(TOPICS)]
        body = (f"第{i}号报道：{topic}的最新进展。据统计，{2000 + i}年相关投资达到{i * 3 + 7}亿元，"
                f"覆盖{i % 30 + 2}个省份。专家表示，{topic}将继续保持增长。")
        (folder / f"{i:03d}.txt").write_text(f"{topic}报道{i}\n\n{body}\n", encoding="utf-8")
    return folder


class WatchingEmbedder(FakeEmbedder):
    """The fake model, noting at each call how many ingested documents are still alive."""

    def __init__(self, alive: list[weakref.ref]):
        super().__init__()
        self.alive = alive
        self.alive_at_call: list[int] = []

    def encode_passages(self, texts, show_progress: bool = False):
        gc.collect()
        self.alive_at_call.append(sum(1 for ref in self.alive if ref() is not None))
        return super().encode_passages(texts, show_progress)


def _build(tmp_path, monkeypatch, docs, name: str, batch_chunks: int):
    import rag.ingest.pipeline as pipeline

    alive: list[weakref.ref] = []  # every document analysed; dead once nothing holds it
    analyse = pipeline.analyse

    def watched(document):
        alive.append(weakref.ref(document))
        return analyse(document)

    monkeypatch.setattr(pipeline, "analyse", watched)
    monkeypatch.setattr(retriever_module, "BUILD_BATCH_CHUNKS", batch_chunks)
    embedder = WatchingEmbedder(alive)
    built = Retriever.build([docs], tmp_path / name, embedder=embedder, cache=tmp_path / f"{name}.sqlite3",
                            show_progress=False)
    return built, embedder


def test_a_build_embeds_and_writes_in_batches_and_releases_each_batchs_documents(tmp_path, monkeypatch):
    docs = _write_collection(tmp_path / "docs")
    streamed, embedder = _build(tmp_path, monkeypatch, docs, "streamed", BATCH_CHUNKS)
    assert len(streamed.documents) == DOCUMENTS
    chunks = len(streamed)
    # each batch is embedded on its own: chunk texts, then view texts, batch after batch
    assert len(embedder.passage_calls) >= 2 * (chunks // (BATCH_CHUNKS + 2))
    assert max(len(call) for call in embedder.passage_calls[::2]) < BATCH_CHUNKS + 3
    # while a batch is embedded, only its own documents are in memory: earlier batches'
    # documents were released and later files are not read yet
    assert max(embedder.alive_at_call) <= BATCH_CHUNKS
    assert min(embedder.alive_at_call) >= 1

    whole, _ = _build(tmp_path, monkeypatch, docs, "whole", 10 ** 9)
    assert [c.id for c in streamed.chunks] == [c.id for c in whole.chunks]
    for name in ("chunks.jsonl", "vectors.npy", "views.npy", "view_offsets.npy"):
        assert (streamed.index_dir / name).read_bytes() == (whole.index_dir / name).read_bytes(), name
    for query in ("大熊猫 投资", "2037年", "新能源汽车增长", "第5号报道"):
        for mode in ("bm25", "dense", "hybrid"):
            got = [(h.chunk_id, round(h.score, 5)) for h in streamed.search(query, k=5, mode=mode)]
            assert got == [(h.chunk_id, round(h.score, 5)) for h in whole.search(query, k=5, mode=mode)]
    manifest = json.loads((streamed.index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"] == json.loads((whole.index_dir / "manifest.json").read_text())["counts"]
    # the staged files all moved into the index; nothing is left beside it
    assert not [p.name for p in tmp_path.iterdir() if ".building-" in p.name]
    reloaded = Retriever.load(streamed.index_dir)
    assert [h.chunk_id for h in reloaded.search("龙井茶", k=3, mode="bm25")] == \
        [h.chunk_id for h in streamed.search("龙井茶", k=3, mode="bm25")]
    assert reloaded.source_text(streamed.documents[7]).startswith(TOPICS[7])


def test_a_build_that_fails_mid_stream_leaves_the_previous_index_and_no_staging(tmp_path, monkeypatch):
    docs = _write_collection(tmp_path / "docs")
    first, _ = _build(tmp_path, monkeypatch, docs, "index", BATCH_CHUNKS)
    before = [h.chunk_id for h in first.search("粮食安全", k=3, mode="bm25")]

    class FailsOnFifthCall(FakeEmbedder):
        calls = 0

        def encode_passages(self, texts, show_progress=False):
            FailsOnFifthCall.calls += 1
            if FailsOnFifthCall.calls == 5:
                raise RuntimeError("the model failed")
            return super().encode_passages(texts, show_progress)

    (docs / "new.txt").write_text("新的报道\n\n量子计算取得突破。", encoding="utf-8")
    with pytest.raises(RuntimeError, match="the model failed"):
        Retriever.build([docs], tmp_path / "index", embedder=FailsOnFifthCall(), cache=None, show_progress=False)
    assert [h.chunk_id for h in Retriever.load(tmp_path / "index").search("粮食安全", k=3, mode="bm25")] == before
    assert not [p.name for p in tmp_path.iterdir() if ".building-" in p.name]


def test_keyword_ids_built_batch_by_batch_score_like_bm25s_on_the_token_lists(tmp_path):
    texts = [f"{topic}第{i}期：投资{i * 7}亿元，{TOPICS[(i + 3) % 8]}同步推进。" for i, topic in
             enumerate(TOPICS * 5)] + [""]
    tokens = tokenize_many(texts)
    reference = KeywordIndex.build(texts, tokens=tokens)
    builder = KeywordIndexBuilder()
    for start in range(0, len(tokens), 7):
        builder.add(tokens[start:start + 7])
    assert len(builder) == len(texts) and builder.tokens == sum(max(len(t), 1) for t in tokens)
    built = builder.build()
    built.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path, num_docs=len(texts))
    for query in ("大熊猫 投资", "21亿元", "稀土产业同步推进", "没有这个词"):
        expected = reference.scores(query)
        np.testing.assert_allclose(built.scores(query), expected, rtol=1e-6)
        np.testing.assert_allclose(loaded.scores(query), expected, rtol=1e-6)
    assert built.indexed_docs == reference.indexed_docs == len(texts)


def _stream(paths, batch_chunks=2):
    from rag.ingest import IngestStream

    stream = IngestStream(paths, batch_chunks=batch_chunks)
    batches = list(stream)
    return batches, stream.problems


def test_record_files_are_read_line_by_line_into_the_same_documents_chunks_and_notes(tmp_path):
    from rag.ingest import ingest
    from rag.ingest.records import one_doc_per_line

    from test_ingest_records import _write_jsonl

    records = _write_jsonl(tmp_path / "news.jsonl")
    lines = tmp_path / "lines.txt"
    lines.write_bytes("\ufeff2023-08-01，正文：第一篇\r\n\r\nA1\t第二篇\u2028同一行的后半\n第三篇\rA1\t重复的编号\n".encode())
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("第一篇：京沪高铁\n第二篇：大熊猫\n".encode("gb18030"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02" * 50)
    paths = [records, lines, gbk, binary]
    with one_doc_per_line():
        whole = ingest(paths, keep_structures=False)
        batches, problems = _stream(paths)
    assert len(batches) > 2
    streamed_docs = [d for b in batches for d in b.documents]
    assert [(d.name, d.text, str(d.path), d.sha256) for d in streamed_docs] == \
        [(d.name, d.text, str(d.path), d.sha256) for d in whole.documents]
    assert [c.to_dict() for b in batches for c in b.chunks] == [c.to_dict() for c in whole.chunks]
    reports = [r for b in batches for r in b.reports]
    assert [(r.line(), r.notes) for r in reports] == [(r.line(), r.notes) for r in whole.reports]
    assert any("line 4: the id 'rail-1' was used" in n for n in reports[0].notes)
    assert any("the id 'A1' was used by an earlier line" in n for r in reports for n in r.notes)
    assert [str(p) for p in problems] == [str(p) for p in whole.problems] and "binary" in str(problems[0])


def test_a_builds_progress_bar_counts_a_record_files_documents_up_front(tmp_path, monkeypatch):
    """A big one-document-per-line file is read one batch ahead of the embedding: the bar's
    total must be the whole file's documents from the first batch on (or its ETA is nonsense,
    and it shows a 4-hour build as nearly done), and end exactly at the documents indexed."""
    import tqdm.auto

    from rag.ingest.records import one_doc_per_line

    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [f"第{i}篇：{TOPICS[i % len(TOPICS)]}的报道，{2000 + i}年投资{i + 7}亿元。" for i in range(40)]
    (docs / "news.txt").write_text("\n".join(lines[:20]) + "\n\n   \n" + "\n".join(lines[20:]) + "\n",
                                   encoding="utf-8")
    (docs / "more.jsonl").write_text('{"text": "大熊猫基地新增幼崽三只。"}\nnot json\n', encoding="utf-8")
    (docs / "notes.md").write_text("# 龙井茶\n\n今年春茶产量增长一成。\n", encoding="utf-8")
    seen: list[tuple[int, int | None]] = []
    closed: list[tuple[int, int | None]] = []

    class RecordingBar(tqdm.auto.tqdm):
        def update(self, n=1):
            out = super().update(n)
            if getattr(self, "desc", "").startswith("indexing"):  # not the bars of each batch's embedding
                seen.append((self.n, self.total))
            return out

        def close(self):
            if getattr(self, "desc", "").startswith("indexing") and not self.disable:
                closed.append((self.n, self.total))
            return super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    monkeypatch.setattr(retriever_module, "BUILD_BATCH_CHUNKS", 8)
    with one_doc_per_line():
        built = Retriever.build([docs], tmp_path / "index", embedder=FakeEmbedder(), cache=None,
                                show_progress=True)
    assert len(built.documents) == 42  # 40 lines, one good JSON line, the Markdown file
    assert len(seen) >= 4
    first_done, first_total = seen[0]
    # blank lines are no documents; the bad JSON line is counted until the end corrects it
    assert first_done < 42 and first_total == 43
    assert all(total == 43 for _, total in seen)
    assert seen[-1][0] == 42 and closed == [(42, 42)]  # ends at 100%, not 42/43


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_a_dense_index_filled_part_by_part_answers_like_one_built_at_once(kind):
    from rag.index.stores.faiss_dense import DenseIndex

    vectors = np.random.default_rng(1).standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    whole = DenseIndex.build(vectors, kind)
    parts = DenseIndex.build_in_parts(lambda: iter([vectors[:1000], vectors[1000:2500], vectors[2500:]]),
                                      len(vectors), 32, kind)
    assert parts.ntotal == whole.ntotal == 3000 and parts.kind == kind
    # ivf: trained on the same sample of rows both ways; a streaming build's index reads its exact
    # rows from the written files once loaded (LocalStore), here from the same array
    parts.attach_rows(whole.rows)
    for row in (5, 1700, 2999):
        got, expected = parts.search(vectors[row], 5), whole.search(vectors[row], 5)
        assert [i for i, _ in got] == [i for i, _ in expected]
        # the same rows; a score may differ in its last float bit between the two builds (seen on an AVX2-only CPU)
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)


def test_an_ivf_built_part_by_part_keeps_no_part_alive_for_its_training_sample(monkeypatch):
    """The k-means sample is every step-th row copied out, not strided views that keep each
    whole part alive (news-63k: 1.3 GB of parts held through the training)."""
    import tracemalloc

    from rag.index.stores import faiss_dense
    from rag.index.stores.faiss_dense import DenseIndex

    monkeypatch.setattr(faiss_dense, "ivf_nlist", lambda n: 16)  # step 40,000 // (64 * 16) = 39
    rows, dim, count = 5000, 32, 8
    part_bytes = rows * dim * 4

    rng = np.random.default_rng(3)
    unit = rng.standard_normal((2, rows, dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=2, keepdims=True)

    def parts():  # a new array each time, as a file read gives
        for i in range(count):
            yield unit[i % 2].copy()

    import faiss  # noqa: F401  (its import's allocations are not the build's)

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        index = DenseIndex.build_in_parts(parts, rows * count, dim, "ivf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert index.ntotal == rows * count
    # the part being read and the next one being made, not all eight (5.1 MB)
    grown = peak - before
    assert grown < 3 * part_bytes, f"{grown:,} bytes more at the peak, parts of {part_bytes:,}"
