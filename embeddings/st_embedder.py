"""The main embedder: any sentence-transformers model, by hub name or local path."""
from __future__ import annotations

import os
import threading
import time
from contextlib import closing
from dataclasses import dataclass, fields
from itertools import chain
from queue import Full, Queue
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from rag.errors import RagError

#: Tokens per input; longer texts are truncated (multilingual-e5 was trained with 512).
MAX_SEQ_LENGTH = 512
#: Most texts in one forward pass (``RAG_EMBED_BATCH`` overrides both); batches are cut
#: by padded tokens first (``tokens_per_batch``), so on a CPU this only bounds very short
#: texts. On a GPU 128 texts bound every batch: 128 sentence views of ~67 tokens are 8,600
#: tokens, a fraction of the 65,536 a pass should hold, and a build of 10,000 news articles
#: ran at 0.27 M tokens/s on an H200 (1.5% of its bf16 matmul rate, `rag bench --only gpu`).
DEFAULT_BATCH_SIZE = 128
GPU_BATCH_SIZE = 8192
_BATCH_OVERRIDE = os.environ.get("RAG_EMBED_BATCH")
#: Padded tokens (texts x longest text) per forward pass, on CPU and on a GPU
#: (``RAG_EMBED_BATCH_TOKENS`` overrides both). A fixed 16 texts per batch left
#: sentence views (~70 tokens) at 16 x 70 = 1,100 tokens a pass, too little work per
#: matmul: on the 2-core build machine, same run, views went from 12 to 21 GFLOP/s
#: with 4,096-token batches (chunks ~220 tokens: 22 either way; 2,048 was slower,
#: 8,192 no faster). A GPU wants far larger batches to fill its cores.
CPU_TOKENS_PER_BATCH = 4096
GPU_TOKENS_PER_BATCH = 65536
_TOKENS_OVERRIDE = os.environ.get("RAG_EMBED_BATCH_TOKENS")
#: Weights/activations: "auto" (default), "fp32", "bf16", "fp16" (GPU only) or "int8"
#: (CPU only, the default model only: ONNX Runtime with int8 weights, see
#: embeddings.onnx_engine). "auto": on a GPU bf16 where supported, else fp16; on a CPU
#: bf16 where it computes bfloat16 natively, else int8 where the caller allows it
#: (``embeddings.loading``: the default model with onnxruntime installed), else fp32.
#: Measured on the 2-core build machine, same run: bf16 1.5-2.2x faster than fp32 at
#: min cosine 0.998 (same rankings as fp32 on eval/qa.jsonl); ONNX int8 (7-bit weights)
#: ~2x fp32 at min cosine 0.995, hybrid R@1/MRR within 0.01 of fp32 on both full
#: evaluation sets but dense-only R@1 0.017-0.021 lower (README); bf16 emulated on a
#: CPU without it is slower than fp32. torch's own dynamic int8 (min cosine 0.972) is gone.
DEFAULT_PRECISION = os.environ.get("RAG_EMBED_PRECISION", "auto")
#: CPU threads for a question's embedding. A question is ~20 tokens: too little work
#: to share, and OpenMP threads that wait for each other are ruinous on a busy
#: machine: on the 2-core build machine at load 24, p50 4,878 ms with 2 threads
#: against 316 ms with 1 (same run). Until now FAISS's one-thread search setting
#: leaked into torch and did this by accident (see rag.index.stores.faiss_dense).
QUERY_THREADS = 1
#: Texts tokenized per tokenizer call on a GPU. Each text is tokenized once (ids, and
#: character offsets for late-chunked views): its length sorts it into a batch and the
#: same ids are padded into that batch. On a CPU a call's texts are tokenized together
#: (batches then are exactly the length-sorted ones of a single global sort); on a GPU
#: they go in windows of this many texts, tokenized on a second thread while the model
#: runs on the previous window (``PREFETCH_WINDOWS`` ahead), so the GPU does not wait
#: for the CPU to tokenize everything first. Before this, every text was tokenized twice
#: (for its length, then inside ``SentenceTransformer.encode``): 8.2 s of 38.7 s on an
#: H200 for the 10,000-article news slice (``rag bench --only gpu``). With this, the same
#: H200 embedded the slice at 1.1-1.7 M tokens/s (was 0.27) and all of news-63k in 40-56 s;
#: 8,192 sentence views (~67 tokens) fill ~8 batches of ``GPU_TOKENS_PER_BATCH``.
GPU_TEXTS_PER_WINDOW = 8192
PREFETCH_WINDOWS = 1
#: Texts a build hands the embedder per call on a GPU (``texts_per_call``; the embedding
#: cache commits after each call): the CPU default, 256 texts (``COMMIT_EVERY``), is a
#: fraction of one GPU batch. 65,536 texts are a few seconds of GPU work to lose on a kill.
GPU_TEXTS_PER_CALL = 65536
#: "auto" (default: CUDA when torch sees a GPU, else CPU), or any torch device name.
DEFAULT_DEVICE = os.environ.get("RAG_EMBED_DEVICE", "auto")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


class SentenceTransformerEmbedder:
    """``Embedder`` over ``sentence_transformers.SentenceTransformer`` (engine "torch").

    e5 models get the ``query: `` / ``passage: `` prefixes; other models get the
    prompts saved in their configuration (``query`` and ``passage`` or
    ``document``), or none. Vectors are L2-normalised float32.
    """

    engine = "torch"
    #: Whether the process runs torch for it (another torch model beside it costs no torch import).
    uses_torch = True

    def __init__(
        self,
        model_name_or_path: str,
        name: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        max_seq_length: int = MAX_SEQ_LENGTH,
        threads: int | None = None,
        precision: str = DEFAULT_PRECISION,
        tokens_per_batch: int | None = None,
        int8_ok: bool = False,
        prefetch: bool | None = None,
        texts_per_window: int | None = None,
    ) -> None:
        self.name = name or str(model_name_or_path)
        self.device = resolve_device(device)
        on_gpu = self.device != "cpu"
        self.batch_size = max(1, int(batch_size or texts_per_batch(on_gpu)))
        self.tokens_per_batch = int(tokens_per_batch or _TOKENS_OVERRIDE
                                    or (GPU_TOKENS_PER_BATCH if on_gpu else CPU_TOKENS_PER_BATCH))
        #: tokenize on a second thread while the model runs (default: on a GPU only; on the
        #: 2-core CPU the model already uses every core)
        self.prefetch = on_gpu if prefetch is None else bool(prefetch)
        #: texts per tokenizer call (None: all of a call's texts at once; see GPU_TEXTS_PER_WINDOW)
        self.texts_per_window = texts_per_window or (GPU_TEXTS_PER_WINDOW if on_gpu else None)
        #: texts a build should pass per ``encode_passages`` call (None: its own default)
        self.texts_per_call = GPU_TEXTS_PER_CALL if on_gpu else None
        self.model = _load_sentence_transformer(str(model_name_or_path), self.name, self.device)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.precision = resolve_precision(precision, self.device, int8_ok=int8_ok)
        if self.precision == "int8":
            raise RagError("int8 embedding runs on ONNX Runtime, not in sentence-transformers: "
                           "load the model with embeddings.load_embedder(precision='int8')")
        if self.precision == "bf16":
            self.model = self.model.to(_torch().bfloat16)
        elif self.precision == "fp16":
            self.model = self.model.to(_torch().float16)
        limit = getattr(self.model, "max_seq_length", None) or max_seq_length
        try:
            self.model.max_seq_length = min(limit, max_seq_length)
        except AttributeError:  # a first module without a length to set (static embeddings)
            pass
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.query_prompt, self.passage_prompt = _prompts(self.name, dict(self.model.prompts or {}))
        self._tokenizer = _TokenizeOnce.for_model(self.model)
        #: what ``model.preprocess`` adds besides the token tensors (modality, prompt length),
        #: per prompt, once our tokens were found equal to its own (see ``_check_tokens``)
        self._checked: dict[str, dict] = {}
        #: where the time of direct calls went, summed (``rag bench --only gpu`` reports it)
        self.timings = EmbedTimings()

    @property
    def tokenizes_once(self) -> bool:
        """Whether texts are tokenized once and fed to the model directly (a fast tokenizer
        and a plain Transformer first module, checked against the model's own preprocessing);
        otherwise they go through ``SentenceTransformer.encode``."""
        return self._tokenizer is not None

    def shared_encoder(self) -> "SharedEncoder | None":
        """The transformers encoder under the sentence-transformers pipeline (a ``BertModel`` for e5) and a
        thread-safe way to tokenize pairs with its tokenizer, for another model that runs its layers
        (``rag.answering.judge`` reuses e5-small's instead of loading a second copy, ~550 MB with the
        tokenizer); None where texts do not go through the model's own Rust tokenizer here. Read-only."""
        model = getattr(self.model[0] if len(self.model) else None, "auto_model", None)
        if model is None or self._tokenizer is None:
            return None
        return SharedEncoder(model, self._tokenizer.encode_pairs, self._tokenizer.pad_id)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions, L2-normalised float32 of shape (n, dim), on ``QUERY_THREADS`` CPU
        threads (this thread only; builds and uploads on other threads keep theirs)."""
        if self.device != "cpu":
            return self._encode(list(texts), self.query_prompt, show_progress=False)
        torch = _torch()
        before = torch.get_num_threads()
        torch.set_num_threads(min(QUERY_THREADS, before))
        try:
            return self._encode(list(texts), self.query_prompt, show_progress=False)
        finally:
            torch.set_num_threads(before)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed passages in length-sorted batches, with a tqdm bar if ``show_progress``."""
        return self._encode(list(texts), self.passage_prompt, show_progress=show_progress)

    def encode_passages_with_spans(
        self, texts: Sequence[str], spans_per_text: Sequence[Sequence[tuple[int, int]]],
        show_progress: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus "late-chunked" span vectors, from one forward pass per text.

        ``spans_per_text[i]`` holds ``(start, end)`` character spans of ``texts[i]``
        (prompt not counted). A span's vector is the mean of the contextual token
        embeddings whose character midpoint lies inside the span, L2-normalised in
        float32; a span with no such token (cut off by ``max_seq_length``) gets a
        row of NaN, for the caller to embed some other way. The passage vectors
        are the model's usual pooled output, equal to ``encode_passages(texts)``.
        Each text is tokenized once, its ids and character offsets together.
        Returns ``(passage vectors (n, dim), [span vectors (len(spans_per_text[i]), dim)])``.
        """
        texts = list(texts)
        if len(spans_per_text) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans_per_text)} span lists")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        views: list[np.ndarray] = [np.zeros((len(s), self.dim), dtype=np.float32) for s in spans_per_text]
        if not texts:
            return out, views
        if self._tokenizer is None:
            raise RagError(f"late-chunked sentence views need a fast tokenizer whose tokens feed the model directly; "
                           f"{self.name} has {'a slow one' if not self._has_fast_tokenizer() else 'another kind of model'}")
        from tqdm.auto import tqdm

        torch = _torch()
        prompt = self.passage_prompt
        started = time.perf_counter()
        self.model.eval()
        with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not show_progress) as bar, \
                closing(self._batches(texts, prompt, offsets=True)) as batches:
            for batch in batches:
                with torch.inference_mode():
                    result = self.model(self._on_device(batch.features))
                # normalised in the model's dtype first, exactly as ``encode`` does
                pooled = torch.nn.functional.normalize(result["sentence_embedding"], p=2, dim=1).float()
                out[batch.idx] = pooled.cpu().numpy()
                tokens = result["token_embeddings"].float().cpu().numpy()
                for row, i in enumerate(batch.idx):
                    views[i] = _span_means(tokens[row], batch.offsets[row], batch.mask[row],
                                           [(a + len(prompt), b + len(prompt)) for a, b in spans_per_text[i]])
                bar.update(len(batch.idx))
        if self._tokenizer is None:  # our tokens differed from the model's own: raises the error above
            return self.encode_passages_with_spans(texts, spans_per_text, show_progress)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self.timings.calls += 1
        self.timings.total_s += time.perf_counter() - started
        return out, views

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens (specials and prompt included, before truncation) for ``text``."""
        prompt = self.query_prompt if is_query else self.passage_prompt
        return len(self.model.tokenizer(prompt + text, truncation=False)["input_ids"])

    def _encode(self, texts: list[str], prompt: str, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if self._tokenizer is None:
            return self._encode_with_sentence_transformers(texts, prompt, show_progress)
        from tqdm.auto import tqdm

        torch = _torch()
        started = time.perf_counter()
        self.model.eval()
        pending: list[tuple[list[int], object]] = []  # on a GPU: vectors copied back at the end
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not show_progress) as bar, \
                closing(self._batches(texts, prompt, offsets=False)) as batches, torch.inference_mode():
            for batch in batches:
                result = self.model(self._on_device(batch.features))
                # as ``encode(normalize_embeddings=True)``: normalised in the model's dtype
                vectors = torch.nn.functional.normalize(result["sentence_embedding"], p=2, dim=1)
                if self.device == "cpu":
                    out[batch.idx] = vectors.float().numpy()
                else:  # no copy (and wait) per batch: the CPU queues the next batch meanwhile
                    pending.append((batch.idx, vectors))
                bar.update(len(batch.idx))
            for idx, vectors in pending:
                out[idx] = vectors.float().cpu().numpy()
        if self._tokenizer is None:  # the token check failed on the first batch: embed as encode does
            return self._encode_with_sentence_transformers(texts, prompt, show_progress)
        if self.precision != "fp32":  # normalised in low precision: renormalise in float32
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self.timings.calls += 1
        self.timings.total_s += time.perf_counter() - started
        return out

    def _batches(self, texts: list[str], prompt: str, offsets: bool) -> Iterator[_Batch]:
        """``texts`` tokenized once and cut into padded batches, longest first; windows of
        ``texts_per_window`` texts, prepared on a second thread when ``prefetch``."""
        windows: Iterator[list[_Batch]] = self._windows(texts, prompt, offsets)
        if self.prefetch and len(texts) > (self.texts_per_window or len(texts)):  # one window: nothing to overlap
            windows = prefetched(windows, PREFETCH_WINDOWS)
        with closing(windows):
            while True:
                waited = time.perf_counter()
                window = next(windows, None)
                self.timings.wait_s += time.perf_counter() - waited
                if window is None:
                    return
                yield from window

    def _windows(self, texts: list[str], prompt: str, offsets: bool) -> Iterator[list[_Batch]]:
        step = int(self.texts_per_window or len(texts)) or 1
        for start in range(0, len(texts), step):
            tokenizer = self._tokenizer
            if tokenizer is None:  # the first window's check failed (another thread may read this)
                return
            part = texts[start:start + step]
            began = time.perf_counter()
            encoded = tokenizer.encode([prompt + t for t in part], offsets=offsets)
            if prompt not in self._checked and not self._check_tokens(part, prompt, encoded):
                return
            extras = self._checked[prompt]
            lengths = [len(ids) for ids in encoded.ids]
            window = [encoded.batch(rows, start, extras)
                      for rows in token_batches(lengths, self.tokens_per_batch, self.batch_size)]
            timings = self.timings
            timings.tokenize_s += time.perf_counter() - began
            timings.texts += len(part)
            timings.tokens += sum(lengths)
            timings.batches += len(window)
            timings.padded_tokens += sum(b.mask.size for b in window)
            yield window

    def _check_tokens(self, texts: list[str], prompt: str, encoded: _Encoded) -> bool:
        """Whether our tokens equal those ``model.preprocess`` makes (shortest and longest
        text, and a text past the length limit); remembers what else it adds for ``prompt``.
        If they differ, this embedder goes through ``SentenceTransformer.encode`` from now on."""
        lengths = [len(ids) for ids in encoded.ids]
        shortest, longest = int(np.argmin(lengths)), int(np.argmax(lengths))
        rows = sorted({shortest, longest})
        sample = [texts[i] for i in rows]
        repeat = self._tokenizer.max_length // max(lengths[longest] - 2, 1) + 2
        sample.append(" ".join([texts[longest]] * repeat))  # exercises truncation when long enough
        probe = self._tokenizer.encode([prompt + t for t in sample], offsets=False)
        ours = probe.batch(list(range(len(sample))), 0, {}).features
        theirs = self.model.preprocess(sample, prompt=prompt or None)
        tensors = {k: v for k, v in theirs.items() if isinstance(v, _torch().Tensor)}
        same = (set(tensors) == set(ours)
                and all(v.dtype == ours[k].dtype and _torch().equal(v, ours[k]) for k, v in tensors.items())
                and all(probe.ids[j] == encoded.ids[i] for j, i in enumerate(rows)))
        if not same:
            import logging

            logging.getLogger(__name__).warning(
                "%s: tokens made directly differ from sentence-transformers' own; embedding through "
                "SentenceTransformer.encode (each text tokenized twice)", self.name)
            self._tokenizer = None
            return False
        self._checked[prompt] = {k: v for k, v in theirs.items() if k not in tensors}
        return True

    def _on_device(self, features: dict) -> dict:
        if self.device == "cpu":
            return features
        return {k: v.to(self.device, non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()}

    def _has_fast_tokenizer(self) -> bool:
        return bool(getattr(getattr(self.model, "tokenizer", None), "is_fast", False))

    def _encode_with_sentence_transformers(self, texts: list[str], prompt: str, show_progress: bool) -> np.ndarray:
        """Through ``SentenceTransformer.encode``, for models that cannot be fed directly (each
        text tokenized twice: for its length here, then inside ``encode``)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        from tqdm.auto import tqdm

        # longest first, cut by padded tokens: similar lengths share a batch (little
        # padding), short texts go many to a pass, and the bar's rate only speeds up
        lengths = self._token_lengths([prompt + t for t in texts])
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not show_progress) as bar:
            for idx in token_batches(lengths, self.tokens_per_batch, self.batch_size):
                vectors = self.model.encode(
                    [texts[i] for i in idx], prompt=prompt or None, batch_size=len(idx),
                    convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
                )
                out[idx] = vectors
                bar.update(len(idx))
        if self.precision != "fp32":  # normalised in low precision: renormalise in float32
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _token_lengths(self, prompted: list[str]) -> list[int]:
        """Tokens the model will see for each text (specials included, truncated); characters
        for a first module whose tokenizer is not a transformers one."""
        tokenizer = getattr(self.model, "tokenizer", None)
        if len(prompted) == 1:
            return [1]
        if not callable(tokenizer):
            return [len(t) for t in prompted]
        encoded = tokenizer(prompted, truncation=True, max_length=int(self.model.max_seq_length),
                            add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]


@dataclass
class EmbedTimings:
    """Where an embedder's time went, summed over its calls that fed the model directly."""

    calls: int = 0
    texts: int = 0
    batches: int = 0
    tokens: int = 0  #: tokens fed to the model (specials and prompt included, truncated)
    padded_tokens: int = 0  #: the same with padding: the batches' rows x their widths
    tokenize_s: float = 0.0  #: tokenizer calls and padding (on the second thread when prefetching)
    wait_s: float = 0.0  #: the model's loop waiting for tokenized batches
    total_s: float = 0.0  #: whole calls: tokenizing (unless overlapped), the model, copying back

    @property
    def model_s(self) -> float:
        """Time of the calls not spent waiting for tokens: the model (and copying back)."""
        return self.total_s - self.wait_s

    def since(self, earlier: "EmbedTimings") -> "EmbedTimings":
        """What was added after ``earlier`` (a copy taken with ``dataclasses.replace``)."""
        return EmbedTimings(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


@dataclass
class _Batch:
    """Padded model inputs for the texts at ``idx`` (positions in the caller's list)."""

    idx: list[int]
    features: dict
    mask: np.ndarray  # (texts, width) bool: real tokens
    offsets: np.ndarray | None  # (texts, width, 2) character offsets of each token, for spans


@dataclass
class _Encoded:
    """One tokenizer call's output for a window of texts, as Python lists per text."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    offsets: list[list[tuple[int, int]]] | None
    pad_id: int
    pad_type_id: int

    def batch(self, rows: list[int], start: int, extras: dict) -> _Batch:
        """Rows ``rows`` of this window padded (right) to the longest; ``start``: the window's
        first position in the caller's list; ``extras``: non-tensor features to add."""
        torch = _torch()
        lengths = np.fromiter((len(self.ids[r]) for r in rows), dtype=np.int64, count=len(rows))
        width = int(lengths.max()) if len(rows) else 0
        mask = np.arange(width)[None, :] < lengths[:, None]
        features = {"input_ids": torch.from_numpy(_pad([self.ids[r] for r in rows], mask, self.pad_id)),
                    "attention_mask": torch.from_numpy(mask.astype(np.int64))}
        if self.type_ids is not None:
            features["token_type_ids"] = torch.from_numpy(
                _pad([self.type_ids[r] for r in rows], mask, self.pad_type_id))
        offsets = None
        if self.offsets is not None:
            offsets = np.zeros((len(rows), width, 2), dtype=np.int64)
            flat = [pair for r in rows for pair in self.offsets[r]]
            offsets[mask] = np.asarray(flat, dtype=np.int64).reshape(-1, 2)
        return _Batch([start + r for r in rows], {**features, **extras}, mask, offsets)


def _pad(rows: list[list[int]], mask: np.ndarray, fill: int) -> np.ndarray:
    """``rows`` right-padded with ``fill`` into ``mask``'s shape (True where a row has a token)."""
    out = np.full(mask.shape, fill, dtype=np.int64)
    out[mask] = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(mask.sum()))
    return out


@dataclass(frozen=True)
class SharedEncoder:
    """An embedder's encoder lent to another model: the transformers ``model``; ``encode_pairs(pairs)``, the
    token ids of each (first, second) text pair with the model's special tokens (truncated at the model's
    limit), safe beside the embedder's own tokenizing; ``pad_id``."""

    model: Any
    encode_pairs: Callable[[Sequence[tuple[str, str]]], list[list[int]]]
    pad_id: int


class _TokenizeOnce:
    """The model's fast tokenizer called as ``SentenceTransformer.preprocess`` calls it (specials,
    truncation to ``max_seq_length``, no padding), in one call per window of texts.

    It is the model's own Rust tokenizer, not a copy (a copy of e5's held ~300 MB more). Its
    truncation and padding settings are shared with transformers, which changes them only when
    a call needs others; they are set here, under a lock, only when they differ (changing them
    while another thread tokenizes fails in the tokenizers library), then left alone.
    """

    def __init__(self, hf_tokenizer, input_names: Sequence[str]) -> None:
        self.max_length = int(hf_tokenizer.model_max_length)
        self._tokenizer = hf_tokenizer.backend_tokenizer
        self._truncation = {"max_length": self.max_length, "stride": 0, "strategy": "longest_first",
                            "direction": hf_tokenizer.truncation_side}
        self._lock = threading.Lock()
        self._types = "token_type_ids" in input_names
        self._pad_id = int(hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0)
        self._pad_type_id = int(getattr(hf_tokenizer, "pad_token_type_id", 0) or 0)

    @classmethod
    def for_model(cls, model) -> "_TokenizeOnce | None":
        """For a model whose first module is a plain ``Transformer`` over text with a fast
        tokenizer, padding on the right and no per-module tokenizer settings; else None."""
        try:
            from sentence_transformers.base.modules import Transformer
        except ImportError:  # sentence-transformers < 6
            from sentence_transformers.models import Transformer
        first = model[0] if len(model) else None
        hf = getattr(first, "tokenizer", None)
        if (type(first) is not Transformer or not getattr(hf, "is_fast", False)
                or not hasattr(hf, "backend_tokenizer") or getattr(hf, "padding_side", "right") != "right"
                or getattr(first, "processing_kwargs", None) or getattr(first, "can_flatten_inputs", False)
                or getattr(first, "query_expansion", None) is not None
                or set(getattr(first, "modality_config", None) or {"text": None}) != {"text"}
                or not isinstance(getattr(hf, "model_max_length", None), int)):
            return None
        return cls(hf, list(getattr(hf, "model_input_names", ["input_ids", "attention_mask"])))

    @property
    def pad_id(self) -> int:
        return self._pad_id

    def _settled(self):
        """The Rust tokenizer with this class's settings (call under ``_lock``)."""
        tokenizer = self._tokenizer
        current = tokenizer.truncation
        if current is None or {k: current.get(k) for k in self._truncation} != self._truncation:
            tokenizer.enable_truncation(**self._truncation)
        if tokenizer.padding is not None:
            tokenizer.no_padding()
        return tokenizer

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of text pairs (specials added, truncated at the model's limit), under the same lock."""
        with self._lock:
            encodings = self._settled().encode_batch([tuple(p) for p in pairs])
        return [e.ids for e in encodings]

    def encode(self, prompted: list[str], offsets: bool) -> _Encoded:
        with self._lock:
            encodings = self._settled().encode_batch(prompted)
        return _Encoded(ids=[e.ids for e in encodings],
                        type_ids=[e.type_ids for e in encodings] if self._types else None,
                        offsets=[e.offsets for e in encodings] if offsets else None,
                        pad_id=self._pad_id, pad_type_id=self._pad_type_id)


T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 1, name: str = "rag-embed-prefetch") -> Iterator[T]:
    """``items``, produced on a second thread at most ``depth`` ahead of the consumer.

    An exception raised while producing is raised here, at the item it replaced. When the
    consumer stops early (an error, ``close()``), the producer is told to stop and joined
    before this returns: no thread is left behind (it finishes the item it is making).
    """
    queue: Queue = Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = queue.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def texts_per_batch(on_gpu: bool) -> int:
    """Most texts in one forward pass unless the caller says: ``RAG_EMBED_BATCH``, else
    ``GPU_BATCH_SIZE`` on a GPU (the token budget decides there), else ``DEFAULT_BATCH_SIZE``."""
    return int(_BATCH_OVERRIDE or (GPU_BATCH_SIZE if on_gpu else DEFAULT_BATCH_SIZE))


def token_batches(lengths: Sequence[int], max_tokens: int, max_texts: int) -> list[list[int]]:
    """Indices into ``lengths`` grouped into batches, longest first.

    A batch is padded to its first (longest) text, so it holds as many texts as fit
    ``max_tokens`` padded tokens, and at most ``max_texts``; a text longer than
    ``max_tokens`` goes alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if current and len(current) < max_texts and (len(current) + 1) * max(lengths[current[0]], 1) <= max_tokens:
            current.append(i)
        else:
            batches.append([i])
    return batches


def _span_means(tokens: np.ndarray, offsets: np.ndarray, mask: np.ndarray,
                spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """L2-normalised mean of the token vectors whose character midpoint lies in each span
    (NaN row for a span without tokens). Special tokens (empty offsets) never count."""
    real = mask & (offsets[:, 1] > offsets[:, 0])
    middle = (offsets[:, 0] + offsets[:, 1]) / 2.0
    out = np.full((len(spans), tokens.shape[1]), np.nan, dtype=np.float32)
    for j, (a, b) in enumerate(spans):
        inside = real & (middle >= a) & (middle < b)
        if inside.any():
            mean = tokens[inside].mean(axis=0, dtype=np.float32)
            out[j] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def _prompts(name: str, configured: dict[str, str | None]) -> tuple[str, str]:
    """(query prompt, passage prompt) for a model."""
    query = configured.get("query") or ""
    passage = configured.get("passage") or configured.get("document") or ""
    if "e5" in name.lower().rsplit("/", 1)[-1] and not (query or passage):
        return "query: ", "passage: "
    return query, passage


def resolve_precision(precision: str | None, device: str = "cpu",
                      gpu_bf16: Callable[[], bool] | None = None, int8_ok: bool = False) -> str:
    """``precision`` with "auto" resolved for ``device`` (see ``DEFAULT_PRECISION``).

    ``gpu_bf16`` answers whether the GPU computes bfloat16 (default: ask torch);
    ``int8_ok``: whether the int8 engine can run this model here (onnxruntime
    installed, default model), which makes int8 the CPU default without native bf16.
    """
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise RagError(f"unknown embedding precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    on_gpu = device != "cpu"
    if precision == "auto":
        if on_gpu:
            return "bf16" if (gpu_bf16 or _cuda_bf16_supported)() else "fp16"
        if cpu_has_native_bf16():
            return "bf16"
        return "int8" if int8_ok else "fp32"
    if precision == "int8" and on_gpu:
        raise RagError("int8 embedding runs on the CPU only; use RAG_EMBED_PRECISION=auto on a GPU")
    if precision == "fp16" and not on_gpu:
        raise RagError("fp16 embedding needs a GPU; on a CPU use bf16 or fp32")
    return precision


def resolve_device(requested: str | None = None, cuda_available: Callable[[], bool] | None = None) -> str:
    """The torch device to embed on: ``requested`` (or ``$RAG_EMBED_DEVICE``) unless it
    is "auto"; then "cuda" when torch sees a GPU (``cuda_available``, default: ask
    torch), else "cpu". No setting is needed to use a GPU."""
    requested = (requested or DEFAULT_DEVICE or "auto").strip().lower()
    if requested != "auto":
        return requested
    return "cuda" if (cuda_available or _cuda_available)() else "cpu"


def _cuda_available() -> bool:
    return bool(_torch().cuda.is_available())


def _cuda_bf16_supported() -> bool:
    return bool(_torch().cuda.is_bf16_supported())


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX) and torch's
    oneDNN may use it; elsewhere bf16 is emulated and slower than fp32.

    ``ONEDNN_MAX_CPU_ISA=AVX2`` (how an AVX2-only server is imitated on a newer CPU) caps
    oneDNN below its bf16 kernels: bf16 then runs ~500x slower than fp32, so it must not
    be chosen even though /proc/cpuinfo still lists the flag.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
            else:
                return False
    except OSError:
        return False
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    try:
        return bool(_torch().ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: trust the flags
        return True


def _torch():
    import torch

    return torch


def _load_sentence_transformer(path: str, name: str, device: str):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # hub/network/format errors come in many types
        hint = (
            f"it is not a local model directory and it cannot be downloaded ({type(exc).__name__}: {exc})"
            if not os.path.isdir(path) else f"the directory is not a sentence-transformers model ({exc})"
        )
        raise RagError(
            f"cannot load embedding model {name!r}: {hint}. Point RAG_MODEL (or --model) at a local "
            f"sentence-transformers directory, or run once with network access so the model is cached."
        ) from exc
