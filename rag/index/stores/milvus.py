"""The Milvus store: chunks, vectors and BM25 in a Milvus collection (Lite or a server).

``uri`` is a file path (Milvus Lite, embedded in this process) or ``http(s)://host:port``
(a Milvus server or cluster; ``token`` is ``user:password`` or an API key, from
``$RAG_MILVUS_TOKEN``). One index is one collection ``NAME`` (chunks: id, document,
heading path, page, offsets, text, passage text, dense vector, and a BM25 sparse
vector that Milvus computes from the passage text with its jieba analyzer) plus
``NAME_views`` (one row per sentence view: its chunk and its vector). Views live in a
collection of their own because a chunk has any number of them, and as rows of the
chunk collection they would count as BM25 documents and skew its statistics.

Snapshots without transactions: every write inserts its rows under a new
*generation* (``gen``), invisible to searches until the index directory's manifest
names that generation. Searches filter on the generations and documents the
manifest lists, so an interrupted add leaves only invisible rows, and the rows of
a replaced or deleted document disappear from searches the moment the new manifest
is in place; ``commit`` then deletes them (and any orphans of earlier failures).
Searches use Strong consistency, so a search right after an add sees it.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag import config
from rag.errors import IndexError_, IndexMismatchError, RagError
from rag.index.stores.base import NewChunks, Scored
from rag.types import Chunk

#: Recorded in the collection's properties; bumped when the schema changes.
SCHEMA_VERSION = "2"  # 2: the BM25 field holds tokenize_zh tokens
#: Analyzer of the BM25 field: jieba (Milvus Lite and servers >= 2.5 both have it).
ANALYZER = {"tokenizer": "jieba"}
#: What the BM25 field holds: the passage as the local store's tokens (rag.tokenize_zh:
#: numbers kept whole and with their unit, stop words and punctuation dropped) joined by
#: spaces, which Milvus's jieba analyzer keeps apart; queries are sent the same way. On
#: eval/qa.jsonl raw passage text through Milvus's jieba gave hybrid R@1 0.86 against the
#: local store's 0.91 (see README, "Storing the index in Milvus").
KEYWORD_TEXT = "tokenize_zh"
#: BM25 parameters, as in the local store (Lucene defaults).
BM25_K1, BM25_B = 1.5, 0.75
#: VARCHAR limits (Milvus needs them): a chunk is at most a few thousand characters.
MAX_TEXT = 16_384
MAX_NAME = 1_024
#: Rows per insert call (gRPC messages stay well under Milvus's 64 MB limit).
INSERT_BATCH = 512
#: Seconds to wait for a server before saying it is unreachable.
CONNECT_TIMEOUT = 10.0
CONSISTENCY = "Strong"
#: Milvus answers at most this many rows per query or search (offset + limit).
QUERY_WINDOW = 16_384

CHUNK_FIELDS = ["chunk_id", "doc", "heading_path", "page", "start", "end", "text"]
#: First-stage results remembered per query (for the exact scores of its fusion pool).
REMEMBERED_QUERIES = 16


class MilvusStoreError(IndexError_):
    """The Milvus server is unreachable, refuses us, or holds something else."""


@dataclass(frozen=True)
class _DenseFirstStage:
    """What one query vector's two dense searches established: the exact cosine of each
    listed chunk's own vector and the best cosine of each chunk with a listed view.
    No unlisted chunk (view) scores above ``chunk_floor`` (``view_floor``); -inf when
    the search returned every row there is."""

    chunk_ip: dict[str, float]
    view_best: dict[str, float]
    chunk_floor: float
    view_floor: float


@dataclass(frozen=True)
class _KeywordFirstStage:
    """One query's BM25 search: the listed scores; ``complete`` when every chunk with a
    positive score is listed (so every other one scores 0)."""

    scores: dict[str, float]
    complete: bool


def _quiet_pymilvus() -> None:
    # pymilvus logs every failed call at ERROR with a traceback; we raise clear errors instead.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def normalize_uri(uri: str) -> str:
    """A server URI as given; a Milvus Lite file path made absolute (the manifest must
    find the same file from any working directory)."""
    if is_server_uri(uri):
        return uri
    return str(Path(uri).expanduser().resolve())


def default_collection(index_dir: Path) -> str:
    """A collection name from the index directory's name (letters, digits, underscores)."""
    name = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in Path(index_dir).resolve().name)
    name = f"rag_{name}".strip("_")
    return name[:200]


def connect(uri: str, token: str | None = None):
    """A ``MilvusClient`` for ``uri``, with the failures people meet named clearly."""
    _quiet_pymilvus()
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise RagError("the Milvus store needs pymilvus and milvus-lite: pip install -e '.[milvus]'") from exc
    if not is_server_uri(uri):
        folder = Path(uri).parent
        if not folder.is_dir():
            raise MilvusStoreError(f"cannot open Milvus Lite file {uri}: folder {folder} does not exist")
    token = token if token is not None else config.milvus_token()
    try:
        client = MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT)
        client.list_collections(timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # pymilvus raises several types for the same problems
        raise _connection_error(uri, exc) from exc
    return client


def _connection_error(uri: str, exc: Exception) -> MilvusStoreError:
    text = str(exc)
    lowered = text.lower()
    if any(word in lowered for word in ("auth", "credential", "password", "token", "permission", "denied")):
        return MilvusStoreError(f"Milvus at {uri} refused the credentials ({text.strip()[:200]}); "
                                "set RAG_MILVUS_TOKEN to user:password or an API key")
    if is_server_uri(uri):
        return MilvusStoreError(f"cannot reach the Milvus server at {uri} ({type(exc).__name__}: "
                                f"{text.strip()[:200]}); is it running, and is the URI right?")
    return MilvusStoreError(f"cannot open Milvus Lite at {uri} ({type(exc).__name__}: {text.strip()[:200]}); "
                            "Milvus Lite lets one process use a file at a time: is `rag serve` or another "
                            "rag command using it? For several processes, run a Milvus server")


def keyword_text(text: str) -> str:
    """``text`` as the BM25 field holds it (see ``KEYWORD_TEXT``)."""
    from rag.tokenize_zh import tokenize

    return " ".join(tokenize(text))


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _in(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(_quote(v) for v in values)}]"


class MilvusStore:
    """A snapshot of an index in Milvus: the generation of each live document."""

    kind = "milvus"

    def __init__(self, client, uri: str, collection: str, dim: int, model: str,
                 doc_gens: dict[str, str], with_views: bool, tombstones: Sequence[str] = ()):
        self.client = client
        self.uri = uri
        self.collection = collection
        self.views_collection = f"{collection}_views"
        self.dim = dim
        self.model = model
        self.doc_gens = dict(doc_gens)       # document -> generation of its live rows
        self.with_views = with_views
        self.tombstones = tuple(tombstones)  # "doc@gen" of rows to delete (and never show)
        self._count: int | None = None
        self._chunk_cache: dict[str, Chunk] = {}
        self._vectors: dict[str, np.ndarray] = {}  # chunk vectors that came with search hits
        # Hybrid search asks for candidates, then for exact scores of their pool: what the
        # candidate searches already established is remembered per query, so only the
        # unknown scores cost a call (see dense_scores, keyword_scores).
        self._first_stage: OrderedDict[Any, Any] = OrderedDict()
        self._first_stage_lock = threading.Lock()

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, uri: str, collection: str, dim: int, model: str, with_views: bool,
               token: str | None = None) -> "MilvusStore":
        """An empty snapshot over ``collection`` (created if missing; an existing one must
        hold the same model and dimension). Rows it already has stay until ``commit``."""
        client = connect(uri, token)
        if client.has_collection(collection):
            _check_collection(client, uri, collection, model, dim)
        else:
            _create_collections(client, collection, dim, model)
        return cls(client, uri, collection, dim, model, {}, with_views)

    @classmethod
    def open(cls, section: dict[str, Any], model: str, dim: int, with_views: bool,
             token: str | None = None) -> "MilvusStore":
        """The snapshot a manifest's ``store`` section names."""
        uri, collection = section["uri"], section["collection"]
        client = connect(uri, token)
        if not client.has_collection(collection) or not client.has_collection(f"{collection}_views"):
            raise MilvusStoreError(
                f"the index names Milvus collection {collection!r} at {uri}, but it does not exist "
                f"there (dropped, or another server?); rebuild it with `rag index PATH --store milvus`")
        _check_collection(client, uri, collection, model, dim)
        client.load_collection(collection)
        client.load_collection(f"{collection}_views")
        return cls(client, uri, collection, dim, model, section.get("generations", {}), with_views,
                   section.get("tombstones", ()))

    # ------------------------------------------------------------------ reading

    def _visible(self) -> str:
        gens = sorted(set(self.doc_gens.values()))
        if not gens:
            return 'gen == "-"'  # matches nothing: an empty index
        expr = _in("gen", gens)
        if self.tombstones:
            expr += f" and not ({_in('docgen', self.tombstones)})"
        return expr

    def __len__(self) -> int:
        if self._count is None:
            rows = self.client.query(self.collection, filter=self._visible(), output_fields=["count(*)"],
                                     consistency_level=CONSISTENCY)
            self._count = int(rows[0]["count(*)"]) if rows else 0
        return self._count

    def chunks(self) -> list[Chunk]:
        count = len(self)
        fields = CHUNK_FIELDS + ["seq"]
        if count <= QUERY_WINDOW:  # one query (Milvus caps offset + limit at this window)
            rows = self.client.query(self.collection, filter=self._visible(), output_fields=fields,
                                     limit=max(count, 1), consistency_level=CONSISTENCY)
        else:
            rows = []
            iterator = self.client.query_iterator(self.collection, batch_size=1000, filter=self._visible(),
                                                  output_fields=fields, consistency_level=CONSISTENCY)
            while batch := iterator.next():
                rows.extend(batch)
            iterator.close()
        rows.sort(key=lambda r: r["seq"])
        return [_chunk(r) for r in rows]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        if chunk_id in self._chunk_cache:
            return self._chunk_cache[chunk_id]
        found = self._fetch_chunks([chunk_id])
        return found.get(chunk_id)

    def _fetch_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        missing = [i for i in dict.fromkeys(ids) if i not in self._chunk_cache]
        if missing:
            rows = self.client.query(self.collection, filter=f"{self._visible()} and {_in('chunk_id', missing)}",
                                     output_fields=CHUNK_FIELDS + ["dense"], consistency_level=CONSISTENCY)
            for row in rows:
                self._remember_row(row)
        return {i: self._chunk_cache[i] for i in ids if i in self._chunk_cache}

    def _remember(self, chunk: Chunk) -> Chunk:
        if len(self._chunk_cache) > 20_000:
            self._chunk_cache.clear()
        self._chunk_cache[chunk.id] = chunk
        return chunk

    def _remember_row(self, row: dict) -> Chunk:
        """The chunk of a row with CHUNK_FIELDS, remembering its vector when it has one."""
        chunk = self._remember(_chunk(row))
        if row.get("dense") is not None:
            if len(self._vectors) > 20_000:
                self._vectors.clear()
            self._vectors[chunk.id] = np.asarray(row["dense"], dtype=np.float32)
        return chunk

    def _recall(self, key) -> Any:
        with self._first_stage_lock:
            return self._first_stage.get(key)

    def _keep(self, key, value) -> None:
        with self._first_stage_lock:
            self._first_stage[key] = value
            self._first_stage.move_to_end(key)
            while len(self._first_stage) > REMEMBERED_QUERIES:
                self._first_stage.popitem(last=False)

    def _search(self, collection: str, data, field: str, depth: int, metric: str, expr: str,
                output: list[str]) -> list[dict]:
        if depth <= 0:
            return []
        result = self.client.search(collection, data=[data], anns_field=field, limit=min(depth, QUERY_WINDOW),
                                    filter=expr, output_fields=output, search_params={"metric_type": metric},
                                    consistency_level=CONSISTENCY)
        return list(result[0]) if result else []

    def dense_candidates(self, query_vector: np.ndarray, depth: int) -> list[Scored]:
        qvec = np.asarray(query_vector, dtype=np.float32)
        limit = min(depth, QUERY_WINDOW)
        hits = self._search(self.collection, qvec.tolist(), "dense", limit, "IP", self._visible(), CHUNK_FIELDS)
        chunk_ip = {self._remember(_chunk(h["entity"])).id: float(h["distance"]) for h in hits}
        chunk_floor = min(chunk_ip.values()) if len(hits) >= limit > 0 else -np.inf
        view_best: dict[str, float] = {}
        view_floor = -np.inf
        if self.with_views:
            # Views crowd the list (a chunk may place several), so ask for more.
            view_limit = min(depth * 4, QUERY_WINDOW)
            view_hits = self._search(self.views_collection, qvec.tolist(), "dense", view_limit, "IP",
                                     self._visible(), ["chunk_id"])
            for hit in view_hits:
                cid, score = hit["entity"]["chunk_id"], float(hit["distance"])
                if score > view_best.get(cid, -np.inf):
                    view_best[cid] = score
            if len(view_hits) >= view_limit > 0:
                view_floor = min(float(h["distance"]) for h in view_hits)
        self._keep(qvec.tobytes(), _DenseFirstStage(chunk_ip, view_best, chunk_floor, view_floor))
        best = dict(chunk_ip)
        for cid, score in view_best.items():
            if score > best.get(cid, -np.inf):
                best[cid] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]
        chunks = self._fetch_chunks([cid for cid, _ in ranked])
        return [(chunks[cid], score) for cid, score in ranked if cid in chunks]

    def dense_scores(self, chunk_ids: Sequence[str], query_vector: np.ndarray) -> dict[str, float]:
        """Exact, as the local store's. A chunk's score is the best of its own and its views'
        cosine; what the candidate searches of this query vector listed (and the vectors that
        came with hits) settles most of the pool: an unlisted part can only matter when its
        list's floor is above what is known of the chunk. Only those parts are fetched."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        qvec = np.asarray(query_vector, dtype=np.float32)
        known = self._recall(qvec.tobytes())
        unbounded = np.inf
        own: dict[str, float] = {}     # chunk's own cosine, where known
        views: dict[str, float] = {}   # best view cosine, where known (-inf: no views)
        for cid in ids:
            if known is not None and cid in known.chunk_ip:
                own[cid] = known.chunk_ip[cid]
            elif cid in self._vectors:
                own[cid] = float(self._vectors[cid] @ qvec)
            if not self.with_views:
                views[cid] = -np.inf
            elif known is not None and cid in known.view_best:
                views[cid] = known.view_best[cid]

        def lower(cid: str) -> float:
            return max(own.get(cid, -np.inf), views.get(cid, -np.inf))

        chunk_floor = known.chunk_floor if known is not None else unbounded
        need_own = [cid for cid in ids if cid not in own and chunk_floor > lower(cid)]
        if need_own:
            rows = self.client.query(self.collection, filter=f"{self._visible()} and {_in('chunk_id', need_own)}",
                                     output_fields=["chunk_id", "dense"], consistency_level=CONSISTENCY)
            for row in rows:
                own[row["chunk_id"]] = float(np.asarray(row["dense"], dtype=np.float32) @ qvec)
        view_floor = known.view_floor if known is not None else unbounded
        need_views = [cid for cid in ids if cid not in views and cid in own and view_floor > own[cid]]
        if need_views:
            rows = self.client.query(self.views_collection,
                                     filter=f"{self._visible()} and {_in('chunk_id', need_views)}",
                                     output_fields=["chunk_id", "dense"], consistency_level=CONSISTENCY)
            for cid in need_views:
                views[cid] = -np.inf
            if rows:
                values = np.asarray([r["dense"] for r in rows], dtype=np.float32) @ qvec
                for row, value in zip(rows, values.tolist()):
                    views[row["chunk_id"]] = max(views[row["chunk_id"]], value)
        return {cid: lower(cid) for cid in ids if cid in own or views.get(cid, -np.inf) > -np.inf}

    def keyword_candidates(self, query: str, depth: int) -> list[Scored]:
        text = keyword_text(query)
        if not text:
            return []
        limit = min(depth, QUERY_WINDOW)
        # The vectors come along: hybrid search needs these chunks' dense scores next.
        hits = self._search(self.collection, text, "sparse", limit, "BM25", self._visible(),
                            CHUNK_FIELDS + ["dense"])
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score.
        out = [(self._remember_row(h["entity"]), abs(float(h["distance"]))) for h in hits]
        positive = [(c, s) for c, s in out if s > 0]
        self._keep(("bm25", query), _KeywordFirstStage({c.id: s for c, s in positive},
                                                       complete=len(hits) < limit or len(positive) < len(out)))
        return positive

    def keyword_scores(self, chunk_ids: Sequence[str], query: str) -> dict[str, float]:
        """Exact BM25 scores: those the candidate search of ``query`` listed, 0 for the rest
        when it listed every match, else fetched by one filtered search."""
        ids = list(dict.fromkeys(chunk_ids))
        scores = dict.fromkeys(ids, 0.0)
        text = keyword_text(query)
        if not ids or not text:
            return scores
        known = self._recall(("bm25", query))
        if known is not None:
            scores.update((cid, known.scores[cid]) for cid in ids if cid in known.scores)
            ids = [] if known.complete else [cid for cid in ids if cid not in known.scores]
            if not ids:
                return scores
        expr = f"{self._visible()} and {_in('chunk_id', ids)}"
        for hit in self._search(self.collection, text, "sparse", len(ids), "BM25", expr, ["chunk_id"]):
            scores[hit["entity"]["chunk_id"]] = abs(float(hit["distance"]))
        return scores

    # ------------------------------------------------------------------ writing

    def updated(self, remove_docs: Iterable[str], new: NewChunks | None) -> "MilvusStore":
        remove = set(remove_docs)
        if new is not None:
            remove |= {c.doc for c in new.chunks}
        doc_gens = {d: g for d, g in self.doc_gens.items() if d not in remove}
        tombstones = list(self.tombstones) + [f"{d}@{self.doc_gens[d]}" for d in sorted(remove)
                                              if d in self.doc_gens]
        if new is not None and len(new.chunks):
            gen = uuid.uuid4().hex[:12]
            self._insert(gen, new)
            self._seal()
            doc_gens.update({c.doc: gen for c in new.chunks})
        return MilvusStore(self.client, self.uri, self.collection, self.dim, self.model, doc_gens,
                           self.with_views, tombstones)

    def _insert(self, gen: str, new: NewChunks) -> None:
        vectors = np.asarray(new.vectors, dtype=np.float32)
        if vectors.shape[1:] != (self.dim,):
            raise IndexMismatchError(f"vectors of dimension {vectors.shape[1]} for Milvus collection "
                                     f"{self.collection!r} of dimension {self.dim}")
        seq0 = int(uuid.uuid4().int % 1_000_000) * 1_000_000  # keeps index order within a generation
        rows = []
        for i, (chunk, text) in enumerate(zip(new.chunks, new.keyword_texts)):
            rows.append({
                "pk": f"{gen}:{chunk.id}", "chunk_id": chunk.id, "doc": chunk.doc, "gen": gen,
                "docgen": f"{chunk.doc}@{gen}", "seq": seq0 + i,
                "heading_path": json.dumps(chunk.heading_path, ensure_ascii=False),
                "page": -1 if chunk.page is None else int(chunk.page),
                "start": int(chunk.start), "end": int(chunk.end),
                "text": chunk.text[:MAX_TEXT], "passage": keyword_text(text)[:MAX_TEXT],
                "dense": vectors[i].tolist(),
            })
        self._insert_rows(self.collection, rows)
        if self.with_views and len(new.views):
            views = np.asarray(new.views, dtype=np.float32)
            rows = []
            for i, chunk in enumerate(new.chunks):
                for j in range(int(new.view_offsets[i]), int(new.view_offsets[i + 1])):
                    rows.append({"pk": f"{gen}:{chunk.id}#{j}", "chunk_id": chunk.id, "doc": chunk.doc,
                                 "gen": gen, "docgen": f"{chunk.doc}@{gen}", "dense": views[j].tolist()})
            self._insert_rows(self.views_collection, rows)

    def _insert_rows(self, collection: str, rows: list[dict]) -> None:
        for start in range(0, len(rows), INSERT_BATCH):
            try:
                self.client.insert(collection, rows[start:start + INSERT_BATCH])
            except Exception as exc:
                raise MilvusStoreError(f"writing to Milvus collection {collection!r} at {self.uri} failed "
                                       f"({type(exc).__name__}: {str(exc)[:200]}); the index is unchanged") from exc

    def save(self, directory: Path) -> dict[str, Any]:
        return {"kind": "milvus", "uri": self.uri, "collection": self.collection,
                "generations": dict(sorted(self.doc_gens.items())), "tombstones": list(self.tombstones)}

    def commit(self) -> None:
        """Delete rows no live document uses: replaced or deleted documents' rows and
        orphans of interrupted writes. A failure here only leaves invisible rows."""
        gens = sorted(set(self.doc_gens.values()))
        expr = f"not ({_in('gen', gens)})" if gens else 'gen != ""'
        if self.tombstones:
            expr = f"({expr}) or {_in('docgen', self.tombstones)}"
        try:
            for collection in (self.collection, self.views_collection):
                self.client.delete(collection, filter=expr)
        except Exception as exc:  # invisible leftovers; the next write retries
            logging.getLogger(__name__).warning("Milvus cleanup failed (%s); left for the next write", exc)
            return
        self.tombstones = ()
        self._seal()

    def _seal(self) -> None:
        """Flush both collections after a write, so the written rows move into sealed
        segments. Milvus Lite keeps unflushed rows (up to 128 MB) in an in-memory table
        that every search scans row by row, rebuilding its BM25 index each time; sealed
        segments keep their indexes between searches. Only a speed-up: a failure (e.g. a
        server's flush rate limit) is logged, never raised."""
        for collection in (self.collection, self.views_collection):
            try:
                self.client.flush(collection)
            except Exception as exc:
                logging.getLogger(__name__).info("Milvus flush of %s skipped (%s)", collection, exc)

    def view_count(self) -> int:
        if not self.with_views or not self.doc_gens:
            return 0
        rows = self.client.query(self.views_collection, filter=self._visible(), output_fields=["count(*)"],
                                 consistency_level=CONSISTENCY)
        return int(rows[0]["count(*)"]) if rows else 0

    def describe(self) -> dict[str, Any]:
        return {"kind": "milvus", "dense_kind": "milvus-flat", "uri": self.uri, "collection": self.collection,
                "chunks": len(self), "views": self.view_count()}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass


# ---------------------------------------------------------------------- schema

def _create_collections(client, collection: str, dim: int, model: str) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    def base_schema():
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=MAX_NAME + 64)
        schema.add_field("chunk_id", DataType.VARCHAR, max_length=MAX_NAME + 32)
        schema.add_field("doc", DataType.VARCHAR, max_length=MAX_NAME)
        schema.add_field("gen", DataType.VARCHAR, max_length=32)
        schema.add_field("docgen", DataType.VARCHAR, max_length=MAX_NAME + 33)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        return schema

    chunks = base_schema()
    chunks.add_field("seq", DataType.INT64)
    chunks.add_field("heading_path", DataType.VARCHAR, max_length=MAX_TEXT)
    chunks.add_field("page", DataType.INT64)
    chunks.add_field("start", DataType.INT64)
    chunks.add_field("end", DataType.INT64)
    chunks.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    chunks.add_field("passage", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    chunks.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["passage"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    views_index = client.prepare_index_params()
    views_index.add_index("dense", index_type="FLAT", metric_type="IP")
    properties = {"rag.model": model, "rag.dim": str(dim), "rag.schema": SCHEMA_VERSION,
                  "rag.keywords": KEYWORD_TEXT}
    try:
        client.create_collection(collection, schema=chunks, index_params=index, consistency_level=CONSISTENCY)
        client.create_collection(f"{collection}_views", schema=base_schema(), index_params=views_index,
                                 consistency_level=CONSISTENCY)
        for name in (collection, f"{collection}_views"):
            client.alter_collection_properties(name, properties=properties)
    except Exception as exc:
        for name in (collection, f"{collection}_views"):  # nothing half-made stays behind
            try:
                client.drop_collection(name)
            except Exception:
                pass
        raise MilvusStoreError(f"cannot create Milvus collection {collection!r}: {str(exc)[:300]}") from exc


def _check_collection(client, uri: str, collection: str, model: str, dim: int) -> None:
    """Refuse a collection made for another model or dimension (or not by us)."""
    described = client.describe_collection(collection)
    props = described.get("properties") or {}
    have_model, have_dim = props.get("rag.model"), props.get("rag.dim")
    if have_model is None:
        fields = {f["name"] for f in described.get("fields", [])}
        raise MilvusStoreError(f"Milvus collection {collection!r} at {uri} was not made by rag (fields: "
                               f"{', '.join(sorted(fields))}); choose another --collection")
    if props.get("rag.schema") != SCHEMA_VERSION:
        raise IndexMismatchError(f"Milvus collection {collection!r} at {uri} has schema version "
                                 f"{props.get('rag.schema')}, this program writes {SCHEMA_VERSION}; "
                                 "drop it or choose another --collection")
    if have_model != model or int(have_dim) != int(dim):
        raise IndexMismatchError(
            f"Milvus collection {collection!r} at {uri} holds vectors of model {have_model!r} "
            f"(dimension {have_dim}), but this index uses model {model!r} (dimension {dim}); "
            "choose another --collection, or drop that one to rebuild it")


def _chunk(row: dict) -> Chunk:
    page = row.get("page")
    return Chunk(id=row["chunk_id"], doc=row["doc"], heading_path=list(json.loads(row["heading_path"])),
                 text=row["text"], start=int(row["start"]), end=int(row["end"]),
                 page=None if page is None or int(page) < 0 else int(page))
