"""``IndexSettings``: everything an index is built with, typed, and its manifest form.

The manifest (see rag.index_store) records these settings so that loading,
searching and adding use exactly what the index was built with;
``IndexSettings.from_manifest`` is the one place that reads them back.

    settings = IndexSettings(model="intfloat/multilingual-e5-small", dense_kind="hnsw")
    Retriever.build(["seeds/"], ".rag/index", settings)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from rag import config
from rag.ingest.chunking import ChunkSettings
from rag.errors import InvalidArgumentError
from rag.index.embedding import DEFAULT_VIEW_METHOD
from rag.retrieval.passages import DEFAULT_VIEW_HEADER
from rag.index.stores.faiss_dense import HNSW_EF_SEARCH, IVF_NPROBE
from rag.retrieval.fusion import DEFAULT_FUSION, DEFAULT_FUSION_WEIGHTS
from rag.tokenize_zh import TOKENIZER_VERSION
from rag.vocabulary import DENSE_KINDS, FUSION_METHODS, STORES, VIEW_HEADERS, VIEW_METHODS, check_choice

#: How the passage text is made (recorded for people reading a manifest).
PASSAGE_TEXT = "heading path joined by ' > ', newline, chunk text (a scraped article's date/正文： header left out)"


def _default_model() -> str:
    return config.DEFAULT_MODEL


@dataclass(frozen=True)
class IndexSettings:
    """The settings of one index (validated on creation; ``dataclasses.replace`` to vary).

    ``model``/``dim``: the embedding model (``dim`` is filled in by the build);
    ``embedding_engine``: what computed its vectors ("torch" or "onnx-int8", filled in
    by the build; None: the default engine here, or "torch" for an index of a version
    that did not record it); questions are embedded by the same engine.
    ``chunking``: how documents are cut. ``store``: where vectors and keywords live
    (``local``: FAISS + bm25s files in the index directory; ``milvus``: a collection
    at ``store_uri``, named ``collection``). ``dense_kind`` with ``ef_search``/``nprobe``:
    the local FAISS index (``auto``: exact below ``AUTO_APPROX_MIN`` vectors, ``ivf`` above;
    ``nprobe`` 0: the lists ``ivf_nprobe`` chooses). ``views``/``view_method``/``view_header``: sentence views,
    how they are embedded and what heading each carries (see
    ``rag.retrieval.passages.view_header``; an index of a version that did not record
    it has "path"). ``fusion``/``fusion_weights``: how hybrid search combines its two
    lists. ``bigrams``/``tokenizer``: the BM25 tokens.
    """

    model: str = field(default_factory=_default_model)
    dim: int | None = None
    embedding_engine: str | None = None
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    store: str = "local"
    store_uri: str | None = None
    collection: str | None = None
    dense_kind: str = "auto"
    ef_search: int = HNSW_EF_SEARCH
    nprobe: int = IVF_NPROBE
    views: bool = True
    view_method: str | None = DEFAULT_VIEW_METHOD
    view_header: str = DEFAULT_VIEW_HEADER
    fusion: str = DEFAULT_FUSION
    fusion_weights: tuple[float, float] = DEFAULT_FUSION_WEIGHTS
    bigrams: bool = False
    tokenizer: str = TOKENIZER_VERSION

    def __post_init__(self) -> None:
        check_choice("store", self.store, STORES)
        check_choice("dense", self.dense_kind, DENSE_KINDS)
        check_choice("fusion", self.fusion, FUSION_METHODS)
        if self.views:
            check_choice("view method", self.view_method, VIEW_METHODS)
        check_choice("view header", self.view_header, VIEW_HEADERS)
        if isinstance(self.chunking, Mapping):
            object.__setattr__(self, "chunking", _chunk_settings(self.chunking))
        weights = tuple(float(w) for w in self.fusion_weights)
        if len(weights) != 2:
            raise InvalidArgumentError(f"fusion_weights are (dense, bm25), got {self.fusion_weights!r}")
        object.__setattr__(self, "fusion_weights", weights)
        if self.store == "milvus" and not self.store_uri:
            raise InvalidArgumentError("the milvus store needs a URI: --milvus-uri or $RAG_MILVUS_URI "
                                       "(a file path for Milvus Lite, or http(s)://host:port)")

    def replace(self, **changes: Any) -> "IndexSettings":
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_options(cls, base: "IndexSettings | None" = None, **options: Any) -> "IndexSettings":
        """``base`` (default: all defaults) with keyword options: the field names, plus the
        short names of ``Retriever.build`` and the CLI: ``dense`` (dense_kind),
        ``chunk_settings`` (chunking, a ChunkSettings or dict), ``max_chars`` and
        ``plain_max_chars`` (of the chunking; ``max_chars`` alone sets both), ``milvus_uri``
        (store_uri). None means "keep"."""
        aliases = {"dense": "dense_kind", "chunk_settings": "chunking", "milvus_uri": "store_uri"}
        changes = {aliases.get(k, k): v for k, v in options.items() if v is not None}
        max_chars = changes.pop("max_chars", None)
        plain_max_chars = changes.pop("plain_max_chars", None)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise InvalidArgumentError(f"unknown index setting {', '.join(map(repr, unknown))}")
        settings = dataclasses.replace(base or cls(), **changes)
        if max_chars is not None or plain_max_chars is not None:
            # --max-chars alone caps every chunk, plain texts' too
            budget = {"max_chars": int(max_chars)} if max_chars is not None else {}
            budget["plain_max_chars"] = int(plain_max_chars) if plain_max_chars is not None else None
            try:
                chunking = dataclasses.replace(settings.chunking, **budget)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(f"invalid chunk settings: {exc}") from exc
            settings = dataclasses.replace(settings, chunking=chunking)
        return settings

    # ------------------------------------------------------------------ manifest

    def to_manifest(self, dense_kind: str | None = None, dense_index: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The manifest sections of these settings. ``dense_kind``: the FAISS kind the
        build actually made (``auto`` resolves to ``flat`` or ``ivf``); ``dense_index``: that
        index's own parameters (``DenseIndex.describe``: lists and lists probed of an ``ivf``
        index, which ``nprobe`` 0 lets the build choose), recorded as ``dense.index``."""
        store: dict[str, Any] = {"kind": self.store}
        if self.store != "local":
            store.update(uri=self.store_uri, collection=self.collection)
        model: dict[str, Any] = {"name": self.model, "dim": self.dim}
        if self.embedding_engine:  # embedders that do not say (test stand-ins) record none
            model["engine"] = self.embedding_engine
        return {
            "model": model,
            "chunking": dataclasses.asdict(self.chunking),
            "passage_text": PASSAGE_TEXT,
            "store": store,
            "dense": {"kind": dense_kind or self.dense_kind, "requested": self.dense_kind,
                      "ef_search": self.ef_search, "nprobe": self.nprobe,
                      "sentence_views": self.views, "view_method": self.view_method if self.views else None,
                      "view_header": self.view_header if self.views else None,
                      **({"index": dict(dense_index)} if dense_index else {})},
            "bm25": {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75,
                     "tokenizer": self.tokenizer, "bigrams": self.bigrams},
            "retrieval": {"fusion": self.fusion, "fusion_weights": list(self.fusion_weights)},
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "IndexSettings":
        """The settings recorded in ``manifest`` (an index without a ``store`` section is local)."""
        model = manifest.get("model", {})
        dense = manifest.get("dense", {})
        bm25 = manifest.get("bm25", {})
        retrieval = manifest.get("retrieval", {})
        store = manifest.get("store", {})
        views = bool(dense.get("sentence_views", True))
        return cls(
            model=model.get("name") or config.DEFAULT_MODEL,
            dim=int(model["dim"]) if model.get("dim") is not None else None,
            embedding_engine=model.get("engine"),
            chunking=_chunk_settings({"plain_max_chars": None, **(manifest.get("chunking") or {})}),
            store=store.get("kind", "local"),
            store_uri=store.get("uri"),
            collection=store.get("collection"),
            dense_kind=dense.get("requested") or dense.get("kind") or "flat",
            ef_search=int(dense.get("ef_search", HNSW_EF_SEARCH)),
            nprobe=int(dense.get("nprobe", IVF_NPROBE)),
            views=views,
            view_method=(dense.get("view_method") or "separate") if views else None,
            view_header=dense.get("view_header") or "path",
            fusion=retrieval.get("fusion", DEFAULT_FUSION),
            fusion_weights=tuple(retrieval.get("fusion_weights", DEFAULT_FUSION_WEIGHTS)),
            bigrams=bool(bm25.get("bigrams", False)),
            tokenizer=bm25.get("tokenizer") or "",
        )


def _chunk_settings(values: Mapping[str, Any] | ChunkSettings | None) -> ChunkSettings:
    if isinstance(values, ChunkSettings):
        return values
    try:
        return ChunkSettings(**dict(values or {}))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"invalid chunk settings: {exc}") from exc
