"""The index directory: round trip, manifest checks, corruption detection, atomic writes."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from rag.errors import CorruptIndexError, IndexMismatchError, RagError
from rag.index_store import (
    FORMAT_VERSION, MANIFEST, MANIFEST_CHECKSUM, IndexNotFoundError, manifest_checksum, sha256_file,
)
from rag.retrieval.retriever import Retriever

QUERIES = ["12351热线什么时候建成", "大熊猫吃什么", "京沪高铁有多长", "龙井茶产地"]


def _results(retriever, mode):
    return [[(h.chunk_id, round(h.score, 5)) for h in retriever.search(q, k=3, mode=mode)] for q in QUERIES]


# --------------------------------------------------------------------------- round trip

def test_loaded_index_gives_the_same_results_as_the_built_one(small_retriever, fake_embedder):
    loaded = Retriever.load(small_retriever.index_dir, embedder=fake_embedder)
    assert len(loaded) == len(small_retriever) > 0
    assert loaded.chunks == small_retriever.chunks
    for mode in ("dense", "bm25", "hybrid"):
        assert _results(loaded, mode) == _results(small_retriever, mode)


def test_source_text_is_the_original_file_text(small_retriever, small_corpus):
    for doc in small_retriever.documents:
        original = (small_corpus / Path(doc).name).read_text(encoding="utf-8")
        assert small_retriever.source_text(doc) == original
    chunk = small_retriever.chunks[0]
    text = small_retriever.source_text(chunk.doc)
    assert 0 <= chunk.start < chunk.end <= len(text)


def test_manifest_records_model_settings_sources_and_file_checksums(small_retriever, small_corpus):
    manifest = json.loads((small_retriever.index_dir / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == {"name": "fake/char-bigram", "dim": 64}
    assert manifest["chunking"] and manifest["created"]
    assert manifest["counts"] == {"documents": 4, "chunks": len(small_retriever),
                                  "views": len(small_retriever.store.views)}
    for meta in manifest["documents"]:
        raw = (small_corpus / Path(meta["doc"]).name).read_bytes()
        assert meta["sha256"] == hashlib.sha256(raw).hexdigest()
    for rel, meta in manifest["files"].items():
        assert sha256_file(small_retriever.index_dir / rel) == meta["sha256"]
    assert {"chunks.jsonl", "vectors.npy", "dense.faiss"} <= set(manifest["files"])


def test_missing_index_says_to_run_rag_index_first(tmp_path):
    with pytest.raises(IndexNotFoundError, match="rag index"):
        Retriever.load(tmp_path / "nowhere")


# --------------------------------------------------------------------------- mismatches

def test_loading_with_another_model_name_names_both_models(small_retriever):
    with pytest.raises(IndexMismatchError) as err:
        Retriever.load(small_retriever.index_dir, model="BAAI/bge-m3")
    assert "fake/char-bigram" in str(err.value) and "BAAI/bge-m3" in str(err.value)


def test_loading_with_an_embedder_of_another_dimension_names_both_dimensions(small_retriever):
    with pytest.raises(IndexMismatchError) as err:
        Retriever.load(small_retriever.index_dir, embedder=FakeEmbedder(dim=32))
    assert "64" in str(err.value) and "32" in str(err.value)


def test_lazily_loaded_model_that_differs_from_the_index_is_refused(small_retriever, monkeypatch):
    import rag.index.embedding as embedding_module

    monkeypatch.setattr(embedding_module, "load_embedder", lambda name, engine=None: FakeEmbedder(name="other/model"))
    loaded = Retriever.load(small_retriever.index_dir)
    assert loaded.search("熊猫", mode="bm25")  # no model needed
    with pytest.raises(IndexMismatchError, match="other/model"):
        loaded.search("熊猫", mode="dense")


def test_index_of_an_older_format_version_is_refused_with_both_versions(small_retriever):
    path = small_retriever.index_dir / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["format_version"] = FORMAT_VERSION - 1
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatchError) as err:
        Retriever.load(small_retriever.index_dir)
    assert f"version {FORMAT_VERSION - 1}" in str(err.value) and f"version {FORMAT_VERSION}" in str(err.value)


# --------------------------------------------------------------------------- corruption

def _index_files(index_dir: Path) -> list[str]:
    return sorted(json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))["files"])


def test_every_index_file_is_checksummed(small_retriever):
    files = _index_files(small_retriever.index_dir)
    assert any(f.startswith("bm25/") for f in files) and any(f.startswith("sources/") for f in files)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_index_file_is_reported_not_served(make_retriever, small_corpus, tmp_path, damage):
    built = make_retriever([small_corpus], tmp_path / "index")
    for rel in _index_files(built.index_dir):
        target = tmp_path / f"copy-{damage}"
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built.index_dir, target)
        path = target / rel
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "flip":
            middle = len(data) // 2
            path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1:])
        else:
            path.unlink()
        with pytest.raises(CorruptIndexError, match=rel.split("/")[-1]):
            Retriever.load(target)


def test_unparsable_manifest_is_reported_as_corrupt(small_retriever):
    (small_retriever.index_dir / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="manifest"):
        Retriever.load(small_retriever.index_dir)


def test_counts_that_disagree_are_reported_even_with_valid_checksums(small_retriever):
    index_dir = small_retriever.index_dir
    chunks = index_dir / "chunks.jsonl"
    lines = chunks.read_text(encoding="utf-8").splitlines(keepends=True)
    chunks.write_text("".join(lines[:-1]), encoding="utf-8")
    manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"]["chunks.jsonl"] = {"sha256": sha256_file(chunks), "bytes": chunks.stat().st_size}
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)  # a consistent forgery
    (index_dir / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="inconsistent"):
        Retriever.load(index_dir)


# --------------------------------------------------------------------------- atomic writes

@pytest.mark.parametrize("step", ["rag.index.stores.faiss_dense.DenseIndex.save", "rag.index.stores.bm25_keyword.KeywordIndex.save",
                                  "rag.index_store._fsync_tree"])
def test_crash_mid_build_leaves_the_previous_index_loadable(make_retriever, small_corpus, tmp_path,
                                                             monkeypatch, step):
    index_dir = tmp_path / "index"
    first = make_retriever([small_corpus], index_dir)
    before = _results(first, "bm25")
    (small_corpus / "extra.md").write_text("# 新文档\n\n这是新增的内容，关于月球探测。", encoding="utf-8")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(step, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        make_retriever([small_corpus], index_dir)
    monkeypatch.undo()
    reloaded = Retriever.load(index_dir)
    assert len(reloaded) == len(first)
    assert _results(reloaded, "bm25") == before
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]


def test_crash_between_the_two_renames_is_recovered_on_load(small_retriever):
    index_dir = small_retriever.index_dir
    backup = index_dir.with_name(f".{index_dir.name}.old-deadbeef")
    os.rename(index_dir, backup)
    assert len(Retriever.load(index_dir)) == len(small_retriever)


def test_rebuild_replaces_the_index_in_place(make_retriever, small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    make_retriever([small_corpus / "panda.md"], index_dir)
    rebuilt = make_retriever([small_corpus], index_dir)
    assert len(Retriever.load(index_dir)) == len(rebuilt)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".index")) == []


def test_refuses_to_overwrite_a_folder_that_is_not_an_index(make_retriever, small_corpus, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete", encoding="utf-8")
    with pytest.raises(RagError, match="refusing to overwrite"):
        make_retriever([small_corpus], precious)
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "do not delete"
