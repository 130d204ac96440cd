"""Images (.png, .jpg, .tif, ...): a photographed or scanned page, read by OCR.

Each image (each frame of a multi-page TIFF) is one page. Pillow (MIT-CMU) opens
the file; ``rag.ingest.ocr`` reads it; ``rag.ingest.layout`` puts the lines in
reading order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.errors import DocumentError
from rag.ingest import layout, ocr
from rag.ingest.documents import Document
from rag.ingest.loaders import page_bar
from rag.text import normalize

#: Images are scaled down to at most this many pixels on their longer side before OCR.
MAX_SIDE = 4000


class ImageLoader:
    """Scanned pages and photos of text."""

    kind = "image"
    #: What was extracted is cached under this version (OCR is slow; see rag.ingest.documents):
    #: bump it whenever this loader, rag.ingest.layout or rag.ingest.ocr change their output.
    extraction_version = 2
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

    def load(self, path: Path, name: str) -> list[Document]:
        return [read_image(path, name)]


def read_image(path: Path, name: str) -> Document:
    from PIL import Image, UnidentifiedImageError

    if not ocr.available():
        raise ocr.OcrUnavailableError(f"{path}: an image can only be read by OCR, which is not installed: "
                                      "pip install 'rag-zh[ocr]'; skipped")
    try:
        image = Image.open(path)
        frames = getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise DocumentError(f"{path}: not a readable image ({exc}); skipped") from exc
    pages, parts, starts = [], [], []
    offset = 0
    with image, page_bar(frames, name) as bar:
        for index in range(frames):
            image.seek(index)
            frame = image.convert("RGB")
            scale = 1.0
            if max(frame.size) > MAX_SIDE:
                scale = max(frame.size) / MAX_SIDE
                frame = frame.resize((round(frame.width / scale), round(frame.height / scale)))
            words = ocr.ocr_words(np.asarray(frame), scale=scale)
            lines = layout.page_lines(words, frame.width * scale)
            pages.append(lines)
            text = "\n".join(line.text for line in lines)
            if index:
                parts.append("\n\n")
                offset += 2
            starts.append(offset)
            parts.append(text)
            offset += len(text)
            bar.update(1)
    text = "".join(parts)
    if not normalize(text):
        raise DocumentError(f"{path}: no text found in the image (OCR read nothing); skipped")
    return Document(name=name, path=path, text=text, encoding="ocr", kind="image", page_starts=starts,
                    ocr_pages=list(range(1, frames + 1)))
