"""The Gradio chat app: a thin front end over ``rag``'s public API.

``build_app(retriever_or_knowledge_bases, **settings)`` returns the ``gr.Blocks``:
a chat tab (with a knowledge-base selector when there are several) and a
documents tab (list, delete, re-index, upload). ``mount(server, app, auth=...)``
puts it on ``rag serve``'s FastAPI app next to the HTTP APIs; ``launch(app, ...)``
serves it alone. Both apply the project's theme, CSS and the small script that
makes ``[n]`` markers jump to their source cards. All retrieval, answering and
document management happens in ``rag`` (``rag.server``: ``ChatBackend``,
``KnowledgeBase``); this module only wires events and renders with ``ui.render``.

Endpoints (for ``gradio_client``):

* ``/ask``   question in, the finished answer as a JSON dict out
  (``rag.types.Answer.to_dict()``); streams partial text when submitted.
* ``/chat``  the chat window's own event (chat history in, HTML out).
* ``/add_documents``  upload files into the index.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.answering.endpoints import EndpointPolicy  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.server.backend import UPLOAD_TYPES, ChatBackend  # noqa: E402,F401  (ChatBackend: for callers of ui.app)
from rag.server.concurrency import Gates  # noqa: E402
from rag.server.knowledge_bases import KnowledgeBase, KnowledgeBases  # noqa: E402
from rag.types import Answer  # noqa: E402
from rag.uploads import DEFAULT_MAX_UPLOAD_MB, UploadResult  # noqa: E402
from ui import render  # noqa: E402

ASSETS = Path(__file__).parent

EXAMPLES = [
    "2024年12351热线受理了多少职工来电？",
    "全总本级的12351维权热线呼叫中心是几号正式启用的？",
    "甘肃省工会第十二次代表大会以来做了哪些主要工作？",
    "被称作“华夏第一炼钢工”的人是谁？",
    "中国工会第十八次全国代表大会在哪里召开？",
]

MODES = [("混合 hybrid", "hybrid"), ("向量 dense", "dense"), ("关键词 BM25", "bm25")]

#: Where ``rag serve`` answers with the index's copy of an original file:
#: ``/original/<knowledge base>/<document>`` (see ``serve_originals``).
ORIGINALS_ROUTE = "/original"
#: The name of the one knowledge base of ``build_app(retriever)``.
DEFAULT_KNOWLEDGE_BASE = "default"

#: How many chat events Gradio runs at once. The per-generator gates in
#: ``rag.server.concurrency`` do the real limiting; this only bounds worker use.
CHAT_CONCURRENCY = 16
#: Events without an explicit limit (clear, settings changes, ...).
DEFAULT_CONCURRENCY = 4
#: Requests allowed to wait in Gradio's queue before new ones are turned away.
QUEUE_MAX_SIZE = 64


def local_llm_available() -> bool:
    """True when the optional local LLM is installed: its module and all model parts."""
    try:
        from rag.answering import local_model
    except ImportError:
        return False
    try:
        local_model.part_paths()
    except Exception:  # missing parts or a broken optional install: not offered
        return False
    return True


def generator_choices(local_available: bool) -> list[tuple[str, str]]:
    """Generator options shown in the settings (label, value)."""
    choices = [("抽取式 extractive（无需模型，最快）", "extractive")]
    if local_available:
        choices.append(("本地模型 local LLM", "local"))
    choices.append(("OpenAI 兼容接口 endpoint", "openai"))
    return choices


# ------------------------------------------------------------------ the app


def discard_gradio_uploads(paths: Iterable[str | os.PathLike]) -> None:
    """Delete Gradio's temporary copies of uploaded files once they are handled.

    Only files inside Gradio's upload folder are touched (an API caller cannot make
    the server delete anything else), with their now empty per-upload folder.
    """
    from gradio.utils import get_upload_folder, is_in_or_equal

    root = Path(get_upload_folder()).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if path == root or not is_in_or_equal(path, root) or not path.is_file():
            continue
        path.unlink(missing_ok=True)
        try:
            if path.parent != root:
                path.parent.rmdir()
        except OSError:  # not empty: another upload still uses it
            pass


def _describe_added(result: UploadResult) -> tuple[str, str]:
    """(kind, message) for the upload panel from ``ChatBackend.add_documents``'s result."""
    parts = []
    if result.stored:
        names = [s.name if s.name == s.original else f"{s.name}（原名 {s.original}）" for s in result.stored]
        parts.append(f"新增：{'、'.join(names)}")
    if result.duplicates:
        same = [f"{original}（与 {doc} 相同）" for original, doc in result.duplicates]
        parts.append(f"内容已在索引中，跳过：{'、'.join(same)}")
    message = "；".join(parts) or "没有可加入的内容"
    summary = result.summary
    embedded = getattr(summary, "embedded", None)
    chunks = getattr(summary, "chunks", None)
    if embedded is not None and chunks is not None:
        message += f"（新向量 {embedded} 段，索引共 {chunks} 段）"
    files = [report.line() for report in getattr(summary, "files", None) or []]
    if files:  # per file: type, pages, pages OCR'd, headings, chunks
        message += "。" + "；".join(files)
    return ("ok", "✓ " + message) if result.stored else ("warn", message)


def _history_messages(turns: list[dict]) -> list[dict]:
    """Earlier turns as plain chat messages for ``Assistant.stream``."""
    messages: list[dict] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn["question"]})
        messages.append({"role": "assistant", "content": turn["answer"]})
    return messages


def _document_rows(base: KnowledgeBase) -> list[list[Any]]:
    """The documents table: name, type, pages, chunks, added, uploaded."""
    return [[d.name, d.type, d.pages if d.pages is not None else "", d.chunks, (d.added or "")[:19].replace("T", " "),
             "✓" if d.uploaded else ""] for d in base.documents()]


def _document_choices(names: list[str], chosen: str | None) -> dict[str, Any]:
    """The document picker after a refresh: new choices, and the pick cleared only when its
    document is gone. A refresh that lands after the user picked (the page's load, a re-index)
    must not undo the pick, or the next button press acts on nothing."""
    if chosen and chosen not in names:
        return gr.update(choices=names, value=None)
    return gr.update(choices=names)


def _describe_change(result: Any, verb: str) -> str:
    names = (getattr(result, "removed", None) or getattr(result, "replaced", None)
             or getattr(result, "added", None) or [])
    return (f"✓ {verb}：{'、'.join(names)}（索引现有 {result.documents} 篇文档 · {result.chunks} 段）"
            if names else f"{verb}：没有变化 (nothing changed)")


def build_app(
    source: Any,
    *,
    generator: str = "extractive",
    mode: str = "hybrid",
    k: int = 5,
    base_url: str | None = None,
    model: str | None = None,
    allow_user_endpoints: bool = False,
    endpoint_policy: EndpointPolicy | None = None,
    uploads_dir: str | os.PathLike | None = None,
    max_upload_mb: float | None = DEFAULT_MAX_UPLOAD_MB,
    assistant_factory: Callable[..., Any] | None = None,
    generator_factory: Callable[..., Any] | None = None,
    local_available: bool | None = None,
    gate_limits: dict[str, int] | None = None,
    title: str = "中文文档问答",
    **assistant_settings: Any,
) -> gr.Blocks:
    """The chat app over ``source``: a ``Retriever`` (one knowledge base) or the
    ``KnowledgeBases`` of a server (a selector picks one; their backends are used as given).

    ``generator``/``mode``/``k`` are the initial settings (users can change
    them in the settings accordion). ``base_url``/``model`` are the server's
    OpenAI-compatible endpoint (default: ``RAG_OPENAI_BASE_URL``/``OPENAI_BASE_URL``…,
    key from ``RAG_OPENAI_API_KEY``/``OPENAI_API_KEY``); users may name another
    endpoint only with ``allow_user_endpoints``, and it never gets the server's key
    (``endpoint_policy`` replaces all three). Uploaded documents are stored in
    ``uploads_dir`` (default: ``<index>-uploads``; see ``rag.uploads``) so they
    survive restarts and rebuilds; each may be at most ``max_upload_mb`` MB (None:
    no limit; ``launch``/``mount`` make Gradio refuse bigger uploads before they are
    even stored).
    ``assistant_factory`` (default ``rag.Assistant``) and ``generator_factory``
    (default ``rag.answering.generators.make_generator``) can be replaced, e.g. in
    tests; further keyword arguments go to the Assistant.
    """
    if local_available is None:
        local_available = local_llm_available()
    gen_choices = generator_choices(local_available)
    if generator not in [v for _, v in gen_choices]:
        gen_choices.append((generator, generator))
    if isinstance(source, KnowledgeBases):
        bases = source
        endpoint_policy = bases.default.backend.endpoint_policy
    else:
        if endpoint_policy is None:
            endpoint_policy = EndpointPolicy.from_operator(base_url, model,
                                                           allow_user_endpoints=allow_user_endpoints)
        gates = Gates(gate_limits)

        def make_backend(retriever: Any, uploads: Path) -> ChatBackend:
            return ChatBackend(retriever, assistant_factory=assistant_factory,
                               generator_factory=generator_factory, gates=gates, uploads_dir=uploads,
                               assistant_settings=assistant_settings, endpoint_policy=endpoint_policy,
                               generators=[v for _, v in gen_choices],
                               max_upload_bytes=None if max_upload_mb is None else int(max_upload_mb * 1e6))

        bases = KnowledgeBases([KnowledgeBase(DEFAULT_KNOWLEDGE_BASE, source, uploads_dir=uploads_dir,
                                              backend_factory=make_backend)])
    user_endpoints = endpoint_policy.allow_user_endpoints

    def base_of(name: str | None) -> KnowledgeBase:
        try:
            return bases.get(name) if name else bases.default
        except RagError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def original_url_for(base: KnowledgeBase) -> Callable[[str, int | None], str | None]:
        def original_url(doc: str, page: int | None = None) -> str | None:
            original_file = getattr(base.retriever, "original_file", None)
            if original_file is None or original_file(doc) is None:
                return None
            return render.original_href(doc, page, f"{ORIGINALS_ROUTE}/{base.name}")
        return original_url

    def respond(message: str, history: list, turns: list, views: list, gen: str,
                mode_: str, k_: int, url: str, model_: str, key: str = "", kb: str = ""):
        question = (message or "").strip()
        history = [{"role": m["role"], "content": _content_text(m)} for m in history or []]
        if not question:
            yield history, render.sources_panel(views), render.status_html("请输入问题 · type a question", "error"), turns, views, message
            return
        base = base_of(kb)
        turn = len(turns) + 1
        history = history + [{"role": "user", "content": render.user_html(question)},
                             {"role": "assistant", "content": render.streaming_html("")}]
        yield (history, render.SEARCHING_SOURCES + render.sources_panel(views),
               render.status_html("检索中… searching", "busy"), turns, views, "")
        text = ""
        answer: Answer | None = None
        try:
            for piece in base.backend.stream(question, _history_messages(turns), gen, mode_, k_,
                                             url or None, model_ or None, key or None):
                if isinstance(piece, Answer):
                    answer = piece
                elif isinstance(piece, int):
                    wait = f"排队中：前面还有 {piece} 个请求 · queued, {piece} ahead"
                    yield history, gr.skip(), render.status_html(wait, "busy"), turns, views, gr.skip()
                else:
                    text += piece
                    history[-1]["content"] = render.streaming_html(text)
                    yield history, gr.skip(), render.status_html("回答中… answering", "busy"), turns, views, gr.skip()
        except RagError as exc:
            history[-1]["content"] = render.error_html(str(exc))
            yield history, render.sources_panel(views), render.status_html(str(exc), "error"), turns, views, gr.skip()
            return
        if answer is None:  # the contract says the stream ends with an Answer
            history[-1]["content"] = render.error_html("没有得到回答 (no answer was produced)")
            yield history, render.sources_panel(views), render.status_html("no answer", "error"), turns, views, gr.skip()
            return
        history[-1]["content"] = render.answer_html(answer, turn)
        turns = turns + [{"question": question, "answer": answer.text}]
        views = views + [render.sources_html(answer, turn, original_url_for(base))]
        yield (history, render.sources_panel(views), render.status_html(render.status_text(answer)),
               turns, views, gr.skip())

    def ask(question: str, generator: str = generator, mode: str = mode, k: int = k,
            base_url: str = "", model: str = "", api_key: str = "",
            knowledge_base: str = "") -> Iterator[dict]:
        """Answer one question from the documents.

        Yields {"text": partial answer, "done": false} while the answer streams,
        then the finished answer as a dict (text, citations with doc, heading_path,
        quote, start, end; abstained; hits; timings; notices) with "done": true.
        k: passages to retrieve (1-50). base_url/model/api_key: for generator
        "openai"; empty means the server's own endpoint (another base URL only
        where the server allows user endpoints; it never gets the server's key).
        knowledge_base: which one to ask (empty: the server's first).
        """
        text = ""
        try:
            for piece in base_of(knowledge_base).backend.stream(question, [], generator, mode, k,
                                                                base_url or None, model or None,
                                                                api_key or None):
                if isinstance(piece, Answer):
                    yield {**piece.to_dict(), "done": True}
                    return
                if isinstance(piece, str):
                    text += piece
                    yield {"text": text, "done": False}
        except RagError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def header_html(kb: str = "") -> str:
        retriever = base_of(kb).retriever
        docs = getattr(retriever, "documents", None)
        try:
            badge = render.index_badge(len(docs) if docs is not None else None, len(retriever))
        except TypeError:  # a retriever without sizes: no badge
            badge = ""
        return (
            f'<div class="topbar"><div class="brand"><div class="logo">问</div><div>'
            f"<h1>{render.esc(title)}</h1>"
            "<p>只根据你的文档回答，每句话都标出出处 · answers from your documents, with cited sources</p>"
            f"</div></div>{badge}</div>"
        )

    def add_documents(files: list | None, kb: str = "", progress=gr.Progress(track_tqdm=True)):
        if not files:
            return render.status_html("请先选择文件 · choose files first", "error"), None
        paths = [Path(f if isinstance(f, (str, os.PathLike)) else f.name) for f in files]
        progress(0, desc="切分、向量化、写入索引… chunking, embedding, indexing")
        try:
            result = base_of(kb).backend.add_documents([(p, p.name) for p in paths])
        except (RagError, OSError) as exc:
            status = render.status_html(f"未添加，索引保持不变 (nothing added, index unchanged)：{exc}", "error")
        else:
            kind, message = _describe_added(result)
            status = render.status_html(message, kind)
        finally:
            discard_gradio_uploads(paths)  # the uploads folder holds what was kept
        return status, None

    def documents_view(kb: str = "", chosen: str | None = None):
        base = base_of(kb)
        return _document_rows(base), _document_choices([d.name for d in base.documents()], chosen)

    def documents_of_new_base(kb: str = ""):
        base = base_of(kb)
        return _document_rows(base), gr.update(choices=[d.name for d in base.documents()], value=None)

    def delete_document(kb: str, doc: str | None):
        if not doc:
            return render.status_html("请先选择文档 · choose a document first", "error")
        try:
            result = base_of(kb).delete(doc)
        except RagError as exc:
            return render.status_html(f"未删除 (not deleted)：{exc}", "error")
        return render.status_html(_describe_change(result, "已删除 deleted"))

    def reindex_document(kb: str, doc: str | None, progress=gr.Progress(track_tqdm=True)):
        if not doc:
            return render.status_html("请先选择文档 · choose a document first", "error")
        progress(0, desc="重新切分、向量化… chunking, embedding")
        try:
            result = base_of(kb).reindex(doc)
        except RagError as exc:
            return render.status_html(f"未重新索引，索引保持不变 (not re-indexed)：{exc}", "error")
        return render.status_html(_describe_change(result, "已重新索引 re-indexed"))

    def pick_row(evt: gr.SelectData):
        row = evt.row_value if evt.row_value is not None else None
        return gr.update(value=row[0]) if row else gr.skip()

    def clear():
        return [], render.EMPTY_SOURCES, render.status_html("就绪 · ready"), [], [], ""

    def toggle_endpoint(gen: str):
        return gr.update(visible=gen == "openai")

    # delete_cache: uploads that were never submitted leave Gradio's temp folder within two hours
    with gr.Blocks(title=title, fill_width=True, delete_cache=(3600, 3600)) as app:
        turns_state = gr.State([])
        views_state = gr.State([])
        header = gr.HTML(header_html(), elem_id="topbar")
        # The selected knowledge base lives in a State, so API callers of /chat and
        # /add_documents keep their signatures (and get the first knowledge base).
        kb_state = gr.State(bases.default.name)
        kb_pick = gr.Dropdown(bases.names, value=bases.default.name, label="知识库 · knowledge base",
                              elem_id="kb", visible=len(bases) > 1, interactive=True)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("问答 Chat", id="chat-tab", elem_id="chat-tab"):
                with gr.Row(elem_id="main", equal_height=False):
                    with gr.Column(scale=3, min_width=420, elem_id="chat-col"):
                        chatbot = gr.Chatbot(
                            elem_id="chat", height=560, show_label=False, layout="bubble",
                            buttons=["copy"], feedback_options=None,
                            # messages are HTML built by ui.render from escaped text: no Markdown or
                            # LaTeX rendering, so a ![](url) in a question or a passage is never fetched
                            render_markdown=False, latex_delimiters=[],
                            placeholder=('<div class="chat-empty"><b>向文档提问</b><br>'
                                         '回答里的 [n] 可悬停或点击查看出处<br>'
                                         '<span class="hint">Ask about the documents; hover or click [n] to see its source.</span></div>'),
                        )
                        with gr.Row(elem_id="ask-row"):
                            msg = gr.Textbox(
                                show_label=False, placeholder="输入问题，回车发送 · type a question and press Enter",
                                scale=8, lines=1, max_lines=4, autofocus=True, elem_id="question",
                                max_length=4000,
                            )
                            send = gr.Button("发送 Ask", variant="primary", scale=1, min_width=96, elem_id="send")
                        gr.Examples(EXAMPLES, inputs=msg, label="示例问题 · examples", elem_id="examples")
                        status = gr.HTML(render.status_html("就绪 · ready"), elem_id="status")
                    with gr.Column(scale=2, min_width=340, elem_id="sources-col"):
                        gr.HTML('<div class="panel-title">来源 <span class="hint">Sources</span></div>')
                        sources = gr.HTML(render.EMPTY_SOURCES, elem_id="sources", padding=False)
                with gr.Accordion("设置 Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        gen_radio = gr.Radio(gen_choices, value=generator, label="回答方式 · generator",
                                             elem_id="generator")
                        mode_radio = gr.Radio(MODES, value=mode, label="检索方式 · retrieval mode",
                                              elem_id="mode")
                        k_slider = gr.Slider(1, 10, value=k, step=1, label="检索段落数 · k passages",
                                             elem_id="k")
                    with gr.Row(visible=generator == "openai") as endpoint_row:
                        url_box = gr.Textbox(endpoint_policy.base_url, label="Base URL（OpenAI 兼容）",
                                             placeholder="http://127.0.0.1:8000/v1", interactive=user_endpoints,
                                             info=None if user_endpoints else
                                             "服务器配置的接口 · the server's configured endpoint")
                        model_box = gr.Textbox(endpoint_policy.model, label="模型 model",
                                               placeholder="qwen2.5-1.5b-instruct",
                                               interactive=user_endpoints)
                        key_box = gr.Textbox("", label="API key（仅用于你填写的接口 · only sent to the URL above）",
                                             type="password", visible=user_endpoints)
            with gr.Tab("文档 Documents", id="docs-tab", elem_id="docs-tab"):
                doc_table = gr.Dataframe(
                    headers=["文档 document", "类型 type", "页数 pages", "段数 chunks", "加入时间 added",
                             "上传 uploaded"],
                    value=_document_rows(bases.default), interactive=False, wrap=True,
                    elem_id="doc-table", show_label=False)
                with gr.Row(equal_height=True):
                    doc_pick = gr.Dropdown([d.name for d in bases.default.documents()], value=None,
                                           label="选择文档 · document", elem_id="doc-pick", scale=4,
                                           interactive=True, filterable=True)
                    reindex_btn = gr.Button("重新索引 Re-index", elem_id="doc-reindex", scale=1)
                    delete_btn = gr.Button("删除 Delete", variant="stop", elem_id="doc-delete", scale=1)
                doc_status = gr.HTML("", elem_id="doc-status")
                gr.HTML('<div class="upload-help">删除会同时移除上传的文件；文档文件夹中的原文件不会被删除，'
                        '重建索引时会重新加入。重新索引会从原文件重新切分并替换该文档的所有段落，'
                        '过程中检索照常进行。<br><span class="hint">Delete removes the document from the index '
                        "(and its uploaded file); files in the documents folder stay on disk. Re-index reads "
                        "the file again and replaces its passages atomically.</span></div>")
                with gr.Accordion("添加文档 Add documents", open=False, elem_id="upload"):
                    with gr.Row(equal_height=False):
                        files = gr.File(file_count="multiple", file_types=list(UPLOAD_TYPES), type="filepath",
                                        label="上传文档（PDF、Word、网页、图片、文本…）· upload documents",
                                        elem_id="files", scale=3)
                        with gr.Column(scale=2, min_width=240):
                            limit = (f"每个文件最多 {max_upload_mb:g} MB。" if max_upload_mb else "")
                            limit_en = (f" At most {max_upload_mb:g} MB per file." if max_upload_mb else "")
                            gr.HTML('<div class="upload-help">文件会被切分、向量化并加入现有索引，重启和重建索引后仍在。'
                                    f'与已有文档同名的文件另存为“名称 (2)”，不会替换原文档；{limit}'
                                    '无法读取的文件不会改动索引。<br><span class="hint">'
                                    "Files are chunked, embedded and added to the index; they persist "
                                    "across restarts and rebuilds. A file named like an indexed document is "
                                    f"added as “name (2)”, never replacing it.{limit_en} A bad file leaves "
                                    "the index unchanged.</span></div>")
                            add_btn = gr.Button("加入索引 Add to index", variant="primary", elem_id="add")
                            upload_status = gr.HTML("", elem_id="upload-status")

        chat_inputs = [msg, chatbot, turns_state, views_state, gen_radio, mode_radio, k_slider,
                       url_box, model_box, key_box, kb_state]
        chat_outputs = [chatbot, sources, status, turns_state, views_state, msg]
        gr.on(
            triggers=[msg.submit, send.click], fn=respond, inputs=chat_inputs, outputs=chat_outputs,
            api_name="chat", api_visibility="undocumented",
            concurrency_id="chat", concurrency_limit=CHAT_CONCURRENCY,
            show_progress="hidden",
        )
        gr.api(ask, api_name="ask", concurrency_id="chat", concurrency_limit=CHAT_CONCURRENCY)
        private = {"api_visibility": "private"}
        refresh = [doc_table, doc_pick]
        add_btn.click(add_documents, inputs=[files, kb_state], outputs=[upload_status, files],
                      api_name="add_documents",
                      concurrency_id="index", concurrency_limit=1,
                      ).then(header_html, kb_state, header, queue=False, **private
                      ).then(documents_view, [kb_state, doc_pick], refresh, queue=False, **private)
        for button, action in ((delete_btn, delete_document), (reindex_btn, reindex_document)):
            button.click(action, inputs=[kb_state, doc_pick], outputs=doc_status, concurrency_id="index",
                         concurrency_limit=1, **private
                         ).then(header_html, kb_state, header, queue=False, **private
                         ).then(documents_view, [kb_state, doc_pick], refresh, queue=False, **private)
        doc_table.select(pick_row, None, doc_pick, queue=False, **private)
        kb_pick.change(lambda name: name, kb_pick, kb_state, queue=False, **private
                       ).then(header_html, kb_state, header, queue=False, **private
                       ).then(documents_of_new_base, kb_state, refresh, queue=False, **private
                       ).then(clear, outputs=chat_outputs, queue=False, **private)
        app.load(header_html, kb_state, header, queue=False, show_progress="hidden", **private
                 ).then(documents_view, [kb_state, doc_pick], refresh, queue=False, show_progress="hidden",
                        **private)
        chatbot.clear(clear, outputs=chat_outputs, queue=False, **private)
        gen_radio.change(toggle_endpoint, gen_radio, endpoint_row, queue=False, **private)
    app.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    app.rag_knowledge_bases = bases  # for serve_originals once the server exists
    app.rag_max_upload_mb = max_upload_mb  # for launch()/mount(): Gradio's own limit on the upload route
    return app


def _content_text(message: dict) -> str:
    """The text of a chat message as Gradio hands it back (str or list of parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def theme() -> gr.themes.Base:
    """A calm theme with system CJK fonts (no web fonts: the app works offline)."""
    fonts = ["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "system-ui", "sans-serif"]
    return gr.themes.Soft(
        primary_hue="teal", secondary_hue="amber", neutral_hue="slate",
        radius_size="lg", font=fonts, font_mono=["ui-monospace", "monospace"],
    )


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and script for ``Blocks.launch`` (Gradio 6 takes them there)."""
    return {
        "theme": theme(),
        "css": (ASSETS / "style.css").read_text(encoding="utf-8"),
        "head": "<script>" + (ASSETS / "cite.js").read_text(encoding="utf-8") + "</script>",
    }


def launch(app: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Serve ``app`` alone on ``host:port``; with ``block=False`` return once it is up.

    Gradio refuses uploads over the app's ``max_upload_mb`` (see ``build_app``)
    while they arrive (HTTP 413), before anything is stored or indexed.
    """
    app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False,
        prevent_thread_lock=True, quiet=quiet, show_error=True, footer_links=["api"],
        max_file_size=_max_file_size(app), **launch_kwargs(),
    )
    bases = getattr(app, "rag_knowledge_bases", None)
    if bases is not None:
        serve_originals(app.server_app, bases)
        # Gradio mounts its own routes first; ours must be matched before any catch-all.
        app.server_app.router.routes.insert(0, app.server_app.router.routes.pop())
    if block:
        app.block_thread()
    return app


def mount(server: Any, app: gr.Blocks, *, auth: Callable[[str, str], bool] | None = None,
          path: str = "/") -> Any:
    """Mount ``app`` on the FastAPI ``server`` at ``path`` (``rag serve`` does this, so the UI
    and the HTTP API share one port). ``auth(user, password)``: the login check (Gradio's
    login page); None: no login."""
    bases = getattr(app, "rag_knowledge_bases", None)
    if bases is not None:
        serve_originals(server, bases)
    return gr.mount_gradio_app(server, app, path=path, auth=auth, ssr_mode=False, show_error=True,
                               footer_links=["api"], auth_message="请登录 · please sign in",
                               max_file_size=_max_file_size(app), **launch_kwargs())


def _max_file_size(app: gr.Blocks) -> int | None:
    max_mb = getattr(app, "rag_max_upload_mb", None)
    return None if max_mb is None else int(max_mb * 1e6)


def serve_originals(server: Any, bases: KnowledgeBases) -> None:
    """``GET /original/<kb>/<doc>``: the index's own copy of a document's original file.

    Citations link here with ``#page=N`` so the browser's PDF viewer opens the
    cited page. The names only select a knowledge base and an entry of its
    index's manifest (never a file path), so no request can reach a file outside
    the index.
    """
    import mimetypes
    from urllib.parse import quote

    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    def original(kb: str, doc: str):
        try:
            retriever = bases.get(kb).retriever
        except RagError:
            raise HTTPException(status_code=404, detail="no such knowledge base") from None
        path = retriever.original_file(doc) if hasattr(retriever, "original_file") else None
        if path is None:
            raise HTTPException(status_code=404, detail="no such document in the index")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        headers = {"Content-Disposition": f"inline; filename*=UTF-8''{quote(Path(doc).name)}",
                   "X-Content-Type-Options": "nosniff"}
        if "html" in media or "svg" in media:  # an uploaded page must not run scripts in the app's origin
            headers["Content-Security-Policy"] = "sandbox"
        return FileResponse(path, media_type=media, headers=headers)

    server.add_api_route(ORIGINALS_ROUTE + "/{kb}/{doc:path}", original, methods=["GET"],
                         include_in_schema=False)
