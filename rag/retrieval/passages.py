"""The texts an index embeds and keyword-indexes for a chunk.

``passage_text``: heading path header, newline, chunk text (a table-of-contents
entry written out as ``标题 第N页``; a scraped article's ``2023-07-31，正文：`` header
left out). ``sentence_views``: the chunk's sentences, each with a header
(``view_header``: the heading path, its first level, or none), embedded too, so one
sentence that answers a question is not drowned by the rest of a 400-character chunk;
``view_spans`` locates them inside the passage text for late chunking.
"""
from __future__ import annotations

from rag.text import body_start, sentence_spans
from rag.types import Chunk
from rag.vocabulary import VIEW_HEADERS, check_choice

#: Separator between the heading path levels in the embedded text.
HEADING_SEPARATOR = " > "
#: A sentence shorter than this is joined with the next one into one sentence view.
MIN_VIEW_CHARS = 20
#: The header of sentence views in a new index (``view_header``; an index records its own).
#: Measured with the int8 engine (README "Index and search"): on seeds, "title" and "none"
#: cost 0.91 and 0.82 of the tokens a build embeds but lose 0.017 hybrid R@1 (dense
#: 0.03-0.05); crud-dev has no headings (no change). Outside the 0.01 rule: "path" stays.
DEFAULT_VIEW_HEADER = "path"


def passage_text(chunk: Chunk) -> str:
    """The text embedded and keyword-indexed for a chunk: heading path header, then body.

    Many section bodies never repeat their subject ("会议指出……"), so the heading
    path carries it into both indexes.
    """
    header = HEADING_SEPARATOR.join(h for h in chunk.heading_path if h)
    body = toc_entry_text(chunk) or chunk.text[body_start(chunk.text):]
    return f"{header}\n{body}" if header else body


def _view_groups(chunk: Chunk) -> list[tuple[int, int]]:
    """Spans in ``chunk.text`` of its sentence views (see ``sentence_views``); an article
    header (``2023-07-31，正文：``) is left out of the first."""
    groups: list[list[int]] = []
    body = body_start(chunk.text)
    for start, end in sentence_spans(chunk.text):
        start = max(start, body)
        if start >= end:
            continue
        if groups and groups[-1][1] - groups[-1][0] < MIN_VIEW_CHARS:
            groups[-1][1] = end
        else:
            groups.append([start, end])
    return [(a, b) for a, b in groups] if len(groups) >= 2 else []


def view_header(chunk: Chunk, header: str = DEFAULT_VIEW_HEADER) -> str:
    """What each sentence view of ``chunk`` carries in front of its sentence (see
    ``VIEW_HEADERS`` in rag.vocabulary): "path" the whole heading path (as
    ``passage_text``), "title" its first level only (a document's title), "none" nothing."""
    check_choice("view header", header, VIEW_HEADERS)
    levels = [h for h in chunk.heading_path if h]
    if header == "none" or not levels:
        return ""
    return levels[0] if header == "title" else HEADING_SEPARATOR.join(levels)


def sentence_views(chunk: Chunk, header: str = DEFAULT_VIEW_HEADER) -> list[str]:
    """Texts of a chunk's sentence views: header (see ``view_header``), newline, one sentence.

    A sentence shorter than ``MIN_VIEW_CHARS`` is joined with the next. A chunk
    of a single view has none: its own vector already says the same.
    """
    prefix = view_header(chunk, header)
    return [f"{prefix}\n{chunk.text[a:b]}" if prefix else chunk.text[a:b] for a, b in _view_groups(chunk)]


def view_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """Character spans, inside ``passage_text(chunk)``, of the sentences of ``sentence_views(chunk)``.

    Used by late chunking: the view is the mean of the passage's contextual token
    vectors inside its span. A table-of-contents entry (its passage text is
    rewritten, see ``toc_entry_text``) has none.
    """
    if toc_entry_text(chunk) is not None:
        return []
    header = HEADING_SEPARATOR.join(h for h in chunk.heading_path if h)
    shift = (len(header) + 1 if header else 0) - body_start(chunk.text)
    return [(a + shift, b + shift) for a, b in _view_groups(chunk)]


def toc_entry_text(chunk: Chunk) -> str | None:
    """``标题 第N页`` for a one-line table-of-contents chunk (see rag.ingest.chunking.toc_entry_chunks), else None.

    Written out, the bare trailing number reads as the page it is, for the
    embedding model and for keyword search ("从第几页开始", "页码").
    """
    from rag.ingest.headings import is_toc_title, parse_toc_entry

    if not chunk.heading_path or not is_toc_title(chunk.heading_path[0]) or "\n" in chunk.text:
        return None
    entry = parse_toc_entry(chunk.text)
    return f"{entry.title} 第{entry.page}页" if entry else None
