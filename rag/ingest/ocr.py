"""Offline Chinese OCR for scanned pages and images: RapidOCR (PP-OCRv4) on onnxruntime.

The PyPI package ``rapidocr-onnxruntime`` (Apache-2.0) ships the PP-OCRv4 Chinese
detection and recognition models inside its wheel, so nothing is downloaded at
run time. It is optional (extra ``ocr``): without it, a page with no usable text
layer is reported instead of read (``OcrUnavailableError``).
"""
from __future__ import annotations

import threading

import numpy as np

from rag.errors import DocumentError
from rag.ingest.layout import Word, fix_text

#: Resolution PDF pages are rendered at for OCR (dots per inch).
OCR_DPI = 200
#: Recognised lines with a lower confidence are dropped (stray marks, noise).
MIN_SCORE = 0.5


class OcrUnavailableError(DocumentError):
    """Text must be read by OCR, but the OCR package is not installed."""


_engine = None
_lock = threading.Lock()


def available() -> bool:
    """Whether the OCR package can be imported."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def engine():
    """The shared RapidOCR engine (models load once, from the installed wheel)."""
    global _engine
    with _lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise OcrUnavailableError(
                    "OCR is not installed: pip install 'rag-zh[ocr]' (rapidocr-onnxruntime)") from exc
            # No angle classifier: scanned pages are upright, and on long lines it flipped some
            # by 180 degrees, which then failed recognition and were lost.
            _engine = RapidOCR(use_cls=False)
        return _engine


def ocr_words(image: np.ndarray, scale: float = 1.0) -> list[Word]:
    """The text lines OCR finds in ``image`` (H x W x 3 uint8 RGB, or H x W gray) as ``Word``s.

    Boxes are multiplied by ``scale`` (e.g. 72 / dpi to get PDF points). The font
    size of a line is taken as its box height.
    """
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3][..., ::-1])  # RGB -> BGR, as OpenCV expects
    ocr = engine()
    with _lock:  # one recognition at a time: onnxruntime already uses every core
        result, _ = ocr(image)
    words: list[Word] = []
    for box, text, score in result or []:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        xs = [p[0] for p in box]
        ys = [p[1] for p in box]
        top, bottom = min(ys) * scale, max(ys) * scale
        words.append(Word(text=fix_text(str(text).strip()), x0=min(xs) * scale, x1=max(xs) * scale,
                          top=top, bottom=bottom, size=(bottom - top) * 0.8))
    return words
