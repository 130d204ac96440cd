"""IndexSettings: validated on creation, and the manifest round trip."""
from __future__ import annotations

import dataclasses

import pytest

from rag.ingest.chunking import ChunkSettings
from rag.errors import InvalidArgumentError
from rag.index.settings import IndexSettings


def test_settings_survive_the_manifest_round_trip():
    settings = IndexSettings(model="fake/m", dim=64, chunking=ChunkSettings(max_chars=200), dense_kind="hnsw",
                             ef_search=99, views=True, view_method="late", view_header="title", fusion="minmax",
                             fusion_weights=(1.25, 1.0), bigrams=True)
    assert IndexSettings.from_manifest(settings.to_manifest(dense_kind="hnsw")) == settings
    milvus = IndexSettings(model="fake/m", dim=64, store="milvus", store_uri="/tmp/m.db", collection="kb")
    manifest = milvus.to_manifest()
    assert manifest["store"] == {"kind": "milvus", "uri": "/tmp/m.db", "collection": "kb"}
    assert IndexSettings.from_manifest(manifest) == milvus


def test_a_manifest_without_a_store_section_is_a_local_index():
    manifest = IndexSettings(model="fake/m", dim=8).to_manifest()
    del manifest["store"]
    assert IndexSettings.from_manifest(manifest).store == "local"


def test_an_index_that_did_not_record_its_view_header_has_the_whole_heading_path():
    manifest = IndexSettings(model="fake/m", dim=8, view_header="none").to_manifest()
    assert manifest["dense"]["view_header"] == "none"
    del manifest["dense"]["view_header"]  # as written before the setting existed
    assert IndexSettings.from_manifest(manifest).view_header == "path"


def test_the_manifest_records_the_resolved_dense_kind_and_no_view_method_without_views():
    manifest = IndexSettings(dense_kind="auto", views=False).to_manifest(dense_kind="flat")
    assert manifest["dense"]["kind"] == "flat" and manifest["dense"]["requested"] == "auto"
    assert manifest["dense"]["view_method"] is None and manifest["dense"]["sentence_views"] is False


@pytest.mark.parametrize("changes, message", [
    ({"dense_kind": "annoy"}, "unknown dense 'annoy'"),
    ({"fusion": "max"}, "unknown fusion 'max'"),
    ({"store": "chroma"}, "unknown store 'chroma'"),
    ({"view_method": "mean"}, "unknown view method 'mean'"),
    ({"view_header": "subject"}, "unknown view header 'subject'"),
    ({"fusion_weights": (1.0,)}, "fusion_weights"),
    ({"chunking": {"max_chars": 10}}, "invalid chunk settings"),
    ({"store": "milvus"}, "needs a URI"),
])
def test_bad_settings_are_clear_errors(changes, message):
    with pytest.raises(InvalidArgumentError, match=message):
        IndexSettings(**changes)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        IndexSettings().model = "other"  # type: ignore[misc]
