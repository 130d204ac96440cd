"""The main embedder: any sentence-transformers model, by hub name or local path."""
from __future__ import annotations

import os
from typing import Callable, Sequence

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
    ) -> None:
        self.name = name or str(model_name_or_path)
        self.device = resolve_device(device)
        on_gpu = self.device != "cpu"
        self.batch_size = max(1, int(batch_size or texts_per_batch(on_gpu)))
        self.tokens_per_batch = int(tokens_per_batch or _TOKENS_OVERRIDE
                                    or (GPU_TOKENS_PER_BATCH if on_gpu else CPU_TOKENS_PER_BATCH))
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
        self.model.max_seq_length = min(limit, max_seq_length)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.query_prompt, self.passage_prompt = _prompts(self.name, dict(self.model.prompts or {}))

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
        Returns ``(passage vectors (n, dim), [span vectors (len(spans_per_text[i]), dim)])``.
        """
        texts = list(texts)
        if len(spans_per_text) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans_per_text)} span lists")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        views: list[np.ndarray] = [np.zeros((len(s), self.dim), dtype=np.float32) for s in spans_per_text]
        if not texts:
            return out, views
        from tqdm.auto import tqdm

        torch = _torch()
        prompt = self.passage_prompt
        lengths = self._token_lengths([prompt + t for t in texts])  # batched as in _encode
        self.model.eval()
        with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not show_progress) as bar:
            for idx in token_batches(lengths, self.tokens_per_batch, self.batch_size):
                batch = [texts[i] for i in idx]
                features = self.model.preprocess(batch, prompt=prompt or None)
                offsets = self._token_offsets([prompt + t for t in batch], features["input_ids"])
                mask = features["attention_mask"].numpy().astype(bool)
                features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
                with torch.inference_mode():
                    result = self.model(features)
                # normalised in the model's dtype first, exactly as ``encode`` does
                pooled = torch.nn.functional.normalize(result["sentence_embedding"], p=2, dim=1).float()
                out[idx] = pooled.cpu().numpy()
                tokens = result["token_embeddings"].float().cpu().numpy()
                for row, i in enumerate(idx):
                    views[i] = _span_means(tokens[row], offsets[row], mask[row],
                                           [(a + len(prompt), b + len(prompt)) for a, b in spans_per_text[i]])
                bar.update(len(idx))
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, views

    def _token_offsets(self, prompted: list[str], input_ids) -> np.ndarray:
        """Character offsets ``(batch, tokens, 2)`` of the tokens the model saw for ``prompted``."""
        tokenizer = self.model.tokenizer
        if not getattr(tokenizer, "is_fast", False):
            raise RagError(f"late-chunked sentence views need a fast tokenizer; {self.name} has a slow one")
        encoded = tokenizer(prompted, padding="max_length", truncation=True, max_length=int(input_ids.shape[1]),
                            return_offsets_mapping=True, return_tensors="np")
        if not np.array_equal(encoded["input_ids"], input_ids.numpy()):
            # the pooled vectors and the offsets must describe the same tokens
            raise RagError(f"tokenizer of {self.name} gives other tokens with offsets than without")
        return encoded["offset_mapping"]

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens (specials and prompt included, before truncation) for ``text``."""
        prompt = self.query_prompt if is_query else self.passage_prompt
        return len(self.model.tokenizer(prompt + text, truncation=False)["input_ids"])

    def _encode(self, texts: list[str], prompt: str, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
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
        """Tokens the model will see for each text (specials included, truncated)."""
        if len(prompted) == 1:
            return [1]
        encoded = self.model.tokenizer(prompted, truncation=True, max_length=int(self.model.max_seq_length),
                                       add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]


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
