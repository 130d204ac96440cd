"""Pure formatting helpers: turn ``rag`` answers into HTML for the chat UI.

Nothing here retrieves or answers; every function takes data from ``rag``
(``Answer``, ``Citation``, ``Hit``) and returns a string, so it is easy to test.

Ids: each answer gets a ``turn`` number; source cards are ``src-{turn}-{n}``
and the ``[n]`` markers of that answer link to them, so markers of older
answers still find their own sources.
"""
from __future__ import annotations

import html
import re
from typing import Callable, Iterable, Sequence
from urllib.parse import quote

from rag.types import Answer, Citation, Hit

#: ``[3]``, ``[1][2]`` and ``[1, 2]`` / ``[1，2]`` style markers.
MARKER_RE = re.compile(r"\[(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\]")

#: Characters of passage text shown on each side of the highlighted sentence.
CONTEXT_CHARS = 160
#: Characters shown of each "may be related" passage.
RELATED_CHARS = 140

GENERATOR_LABELS = {
    "extractive": "抽取式",
    "local": "本地模型",
    "llamacpp": "本地模型",
    "openai": "OpenAI 兼容接口",
    "transformers": "Transformers",
}

MODE_LABELS = {"hybrid": "混合检索", "dense": "向量检索", "keyword": "关键词检索", "bm25": "关键词检索"}


def esc(text: str) -> str:
    """HTML-escape text (quotes too, so it is safe inside attributes)."""
    return html.escape(text or "", quote=True)


def text_html(text: str) -> str:
    """Plain text as HTML: escaped, line breaks kept.

    The chat window renders messages as HTML, not Markdown (``render_markdown=False``
    in ``ui.app``), so ``![p](http://…)`` in a question or a document stays text and
    the browser never fetches it.
    """
    return esc(text).replace("\n", "<br>")


def user_html(question: str) -> str:
    """The user's own chat message: exactly the text typed, nothing rendered from it."""
    return f'<span class="user-text">{text_html(question)}</span>'


def heading_label(heading_path: Sequence[str]) -> str:
    """``A › B › C``, or a placeholder for passages before the first heading."""
    parts = [p.strip() for p in heading_path if p and p.strip()]
    return " › ".join(parts) if parts else "（正文）"


def card_id(turn: int, n: int) -> str:
    """DOM id of the source card that marker ``[n]`` of answer ``turn`` points to."""
    return f"src-{turn}-{n}"


def marker_title(citation: Citation) -> str:
    """Tooltip text of a marker: where the passage comes from and the quoted sentence."""
    page = f" · 第{citation.page}页" if citation.page is not None else ""
    return f"{citation.doc}{page} · {heading_label(citation.heading_path)}\n{citation.quote.strip()}"


def _marker_link(n: int, turn: int, citation: Citation | None) -> str:
    if citation is None:
        return f'<span class="cite cite-missing">[{n}]</span>'
    return (
        f'<a class="cite" href="#{card_id(turn, n)}" data-target="{card_id(turn, n)}" '
        f'title="{esc(marker_title(citation))}">[{n}]</a>'
    )


def link_markers(text: str, citations: Iterable[Citation], turn: int) -> str:
    """Escape ``text`` and turn its ``[n]`` markers into links to source cards.

    A marker with several numbers (``[1, 2]``) becomes one link per number.
    Markers without a matching citation stay visible but are not links.
    """
    by_n = {c.n: c for c in citations}
    out: list[str] = []
    pos = 0
    for match in MARKER_RE.finditer(text):
        out.append(text_html(text[pos:match.start()]))
        numbers = [int(x) for x in re.split(r"\s*[,，、]\s*", match.group(1))]
        out.append("".join(_marker_link(n, turn, by_n.get(n)) for n in numbers))
        pos = match.end()
    out.append(text_html(text[pos:]))
    return "".join(out)


def _notices_html(notices: Sequence[str]) -> str:
    if not notices:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notices)
    return f'<ul class="notices">{items}</ul>'


def answer_html(answer: Answer, turn: int) -> str:
    """The assistant's chat message for a finished answer."""
    body = link_markers(answer.text.strip(), answer.citations, turn)
    if answer.abstained:
        related = ('<div class="abstain-hint">可能相关的段落列在右侧来源栏 · '
                   "possibly related passages are in the sources panel</div>") if answer.hits else ""
        body = (
            '<div class="abstain"><span class="abstain-badge">未找到答案 · Not in the documents</span>'
            f"<div>{body}</div>{related}</div>"
        )
    if answer.unsupported:
        body += (
            '<div class="unsupported">以下内容在资料中找不到依据：'
            + "；".join(esc(s) for s in answer.unsupported)
            + "</div>"
        )
    return body + _notices_html(answer.notices)


def streaming_html(partial_text: str) -> str:
    """The assistant's chat message while the answer is still arriving."""
    body = MARKER_RE.sub(lambda m: f'<span class="cite cite-pending">{m.group(0)}</span>',
                         text_html(partial_text))
    return f'{body}<span class="cursor">▍</span>'


def error_html(message: str) -> str:
    """A chat message for a request that failed with a user-facing error."""
    return f'<div class="error-msg">⚠️ {esc(message)}</div>'


# --------------------------------------------------------------------- sources


def _fuzzy_find(needle: str, haystack: str) -> tuple[int, int] | None:
    """Span of ``needle`` in ``haystack`` ignoring whitespace differences."""
    chars = [c for c in needle if not c.isspace()]
    if not chars:
        return None
    pattern = r"\s*".join(re.escape(c) for c in chars)
    match = re.search(pattern, haystack)
    return (match.start(), match.end()) if match else None


def highlight_span(passage: str, quote: str) -> tuple[int, int] | None:
    """Where the supporting sentence ``quote`` sits in ``passage``, or None."""
    quote = (quote or "").strip()
    if not quote:
        return None
    idx = passage.find(quote)
    if idx >= 0:
        return idx, idx + len(quote)
    return _fuzzy_find(quote, passage)


def highlighted_passage(passage: str, quote: str, context: int = CONTEXT_CHARS) -> str:
    """HTML of ``passage`` with ``quote`` in ``<mark>``, trimmed around it.

    When the quote cannot be found in the passage, the passage is shown
    (trimmed) followed by the quote, still highlighted, so the reader always
    sees the exact supporting sentence.
    """
    passage = passage.strip()
    span = highlight_span(passage, quote)
    if span is None:
        shown = passage[: 2 * context] + ("…" if len(passage) > 2 * context else "")
        if not quote.strip():
            return esc(shown)
        return f'{esc(shown)}<div class="quote-line"><mark>{esc(quote.strip())}</mark></div>'
    start, end = span
    lo = max(0, start - context)
    hi = min(len(passage), end + context)
    before = ("…" if lo > 0 else "") + passage[lo:start]
    after = passage[end:hi] + ("…" if hi < len(passage) else "")
    return f"{esc(before)}<mark>{esc(passage[start:end])}</mark>{esc(after)}"


def _trimmed(text: str, limit: int = 2 * CONTEXT_CHARS) -> str:
    text = text.strip()
    return esc(text[:limit] + ("…" if len(text) > limit else ""))


def _score_html(score: float | None) -> str:
    if score is None:
        return ""
    return f'<span class="score" title="检索得分 retrieval score">{score:.3f}</span>'


#: ``original_url(doc, page)``: the URL that opens a document's original at a page, or None.
OriginalUrl = Callable[[str, "int | None"], "str | None"]


def page_label(page: int | None) -> str:
    """``第12页 · p. 12`` (empty for formats without pages)."""
    return f"第{page}页 · p. {page}" if page is not None else ""


def original_href(doc: str, page: int | None = None, base: str = "/original") -> str:
    """``/original/<doc, url-quoted>#page=12``: what ``rag serve`` answers with the index's copy."""
    return f"{base}/{quote(doc, safe='')}" + (f"#page={page}" if page is not None else "")


def _doc_html(doc: str, heading_path: Sequence[str], page: int | None = None,
              original_url: OriginalUrl | None = None) -> str:
    label = page_label(page)
    page_html = f' <span class="src-page">{esc(label)}</span>' if label else ""
    url = original_url(doc, page) if original_url is not None else None
    name = esc(doc)
    if url:
        title = "打开原文件" + (f"第{page}页" if page is not None else "") + " · open the original"
        name = f'<a class="src-open" href="{esc(url)}" target="_blank" rel="noopener" title="{esc(title)}">{name}</a>'
    return (
        f'<div class="src-doc">{name}{page_html}</div>'
        f'<div class="src-path">{esc(heading_label(heading_path))}</div>'
    )


def citation_card(citation: Citation, hit: Hit | None, turn: int,
                  original_url: OriginalUrl | None = None) -> str:
    """One source card: number, document (linked to its original at the page), page,
    heading path, highlighted passage, score."""
    passage = hit.text if hit is not None else citation.quote
    score = hit.score if hit is not None else None
    page = citation.page if citation.page is not None else (hit.page if hit is not None else None)
    return (
        f'<div class="src-card" id="{card_id(turn, citation.n)}">'
        f'<div class="src-head"><span class="src-n">{citation.n}</span>'
        f'<div class="src-meta">{_doc_html(citation.doc, citation.heading_path, page, original_url)}</div>'
        f"{_score_html(score)}</div>"
        f'<div class="src-text">{highlighted_passage(passage, citation.quote)}</div>'
        "</div>"
    )


def related_card(hit: Hit, rank: int, original_url: OriginalUrl | None = None) -> str:
    """A "may be related" passage shown when the assistant abstains."""
    return (
        '<div class="src-card related">'
        f'<div class="src-head"><span class="src-n muted">{rank}</span>'
        f'<div class="src-meta">{_doc_html(hit.doc, hit.heading_path, hit.page, original_url)}</div>'
        f"{_score_html(hit.score)}</div>"
        f'<div class="src-text">{_trimmed(hit.text, RELATED_CHARS)}</div>'
        "</div>"
    )


def sources_html(answer: Answer, turn: int, original_url: OriginalUrl | None = None) -> str:
    """The sources panel for one answer.

    A cited answer lists one card per citation (in marker order); an
    abstention says so and lists the retrieved passages as "may be related".
    """
    question = f'<div class="src-question">问：{esc(answer.question)}</div>'
    if answer.abstained or not answer.citations:
        title = ("资料中没有找到答案" if answer.abstained else "这个回答没有引用来源")
        if answer.hits:
            cards = "".join(related_card(h, i, original_url) for i, h in enumerate(answer.hits, 1))
            related = f'<div class="src-sub">可能相关的段落 · may be related</div>{cards}'
        else:
            related = '<div class="src-empty">没有检索到相关段落。</div>'
        return (f'<div class="sources" data-turn="{turn}">{question}'
                f'<div class="src-abstain">{title}</div>{related}</div>')
    hits = {h.chunk_id: h for h in answer.hits}
    cards = "".join(citation_card(c, hits.get(c.chunk_id), turn, original_url)
                    for c in sorted(answer.citations, key=lambda c: c.n))
    return f'<div class="sources" data-turn="{turn}">{question}{cards}</div>'


def sources_panel(turns: Sequence[str]) -> str:
    """The whole panel: the newest answer's sources, older ones folded below."""
    if not turns:
        return EMPTY_SOURCES
    newest, older = turns[-1], list(reversed(turns[:-1]))
    folded = "".join(
        f'<details class="older"><summary>更早的回答 · earlier answer</summary>{t}</details>'
        for t in older
    )
    return newest + folded


EMPTY_SOURCES = (
    '<div class="src-placeholder">回答中的 <b>[n]</b> 标记对应这里的出处：'
    "文档、章节路径和原文段落（依据句高亮）。<br>"
    '<span class="hint">Sources of each answer appear here.</span></div>'
)

SEARCHING_SOURCES = '<div class="src-placeholder">正在检索… <span class="hint">searching</span></div>'


def status_text(answer: Answer) -> str:
    """The short status line: timings, generator, mode, number of passages."""
    t = answer.timings or {}
    parts = []
    if "retrieve" in t:
        parts.append(f"检索 {t['retrieve']:.2f} s")
    if "answer" in t:
        parts.append(f"回答 {t['answer']:.2f} s")
    if "total" in t:
        parts.append(f"合计 {t['total']:.2f} s")
    parts.append(GENERATOR_LABELS.get(answer.generator, answer.generator))
    if answer.hits:
        parts.append(f"{len(answer.hits)} 段候选")
    if answer.citations:
        parts.append(f"{len(answer.citations)} 处引用")
    elif answer.abstained:
        parts.append("未找到答案")
    return " · ".join(parts)


def index_badge(documents: int | None, chunks: int | None) -> str:
    """The header badge saying how much is indexed."""
    if documents is None or chunks is None:
        return ""
    return (f'<div class="index-badge" title="indexed documents · passages">'
            f"已索引 <b>{documents}</b> 篇文档 · <b>{chunks}</b> 段</div>")


def status_html(text: str, kind: str = "ok") -> str:
    """Wrap a status text for the status line (kind: ok, busy, warn, error)."""
    return f'<div class="status status-{kind}">{esc(text)}</div>'
