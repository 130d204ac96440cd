"""The Gradio chat app: a thin front end over ``rag``'s public API.

``build_app(retriever, **settings)`` returns the ``gr.Blocks``; ``launch(app, ...)``
serves it with the project's theme, CSS and the small script that makes
``[n]`` markers jump to their source cards. All retrieval and answering happens
in ``rag`` (``Assistant.stream``, ``Retriever.add``); this module only wires
events, gates concurrency and renders results with ``ui.render``.

Endpoints (for ``gradio_client``):

* ``/ask``   question in, the finished answer as a JSON dict out
  (``rag.types.Answer.to_dict()``); streams partial text when submitted.
* ``/chat``  the chat window's own event (chat history in, HTML out).
* ``/add_documents``  upload files into the index.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.answering.assistant import check_k  # noqa: E402
from rag.answering.endpoints import EndpointPolicy  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.types import Answer  # noqa: E402
from rag.uploads import DEFAULT_MAX_UPLOAD_MB, UploadResult, UploadStore  # noqa: E402
from ui import render  # noqa: E402
from rag.server.concurrency import Gates, IndexWorker  # noqa: E402

ASSETS = Path(__file__).parent

EXAMPLES = [
    "2024年12351热线受理了多少职工来电？",
    "全总本级的12351维权热线呼叫中心是几号正式启用的？",
    "甘肃省工会第十二次代表大会以来做了哪些主要工作？",
    "被称作“华夏第一炼钢工”的人是谁？",
    "中国工会第十八次全国代表大会在哪里召开？",
]

MODES = [("混合 hybrid", "hybrid"), ("向量 dense", "dense"), ("关键词 BM25", "bm25")]
MODE_VALUES = tuple(value for _, value in MODES)


def upload_types() -> tuple[str, ...]:
    """Every suffix the ingestion loaders read: what the upload accepts."""
    from rag.ingest.loaders import supported_suffixes

    return supported_suffixes()


UPLOAD_TYPES = upload_types()
#: Where ``rag serve`` answers with the index's copy of an original file (see ``serve_originals``).
ORIGINALS_ROUTE = "/original"

#: How many chat events Gradio runs at once. The per-generator gates in
#: ``ui.concurrency`` do the real limiting; this only bounds worker use.
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


class LRUCache:
    """A dict that keeps at most ``size`` entries, dropping the least recently used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be at least 1, got {size}")
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        return key in self._items


class ChatBackend:
    """Calls ``rag`` for the app: generators and Assistants per settings, gates.

    Holds no retrieval or answering logic of its own. One generator object is
    shared by all Assistants that use it (a local model is loaded once, not
    once per retrieval mode or k). Both caches are bounded (least recently used
    entries go first), since the settings come from requests.

    ``generators`` are the generator names requests may choose (default: all);
    ``endpoint_policy`` decides which OpenAI-compatible endpoint, and key, a
    request's base URL gets (default: the operator's endpoint from the
    environment, user-typed URLs refused; see ``rag.answering.endpoints``).
    Uploads are kept in ``uploads_dir`` (default: a temporary folder) and may be
    at most ``max_upload_bytes`` each (None: no limit).
    """

    #: Assistants kept (one per generator, endpoint, mode and k in use).
    MAX_ASSISTANTS = 32
    #: Generators kept (one per generator name and endpoint in use; a cached Assistant
    #: keeps its own generator alive too).
    MAX_GENERATORS = 8

    def __init__(
        self,
        retriever: Any,
        *,
        assistant_factory: Callable[..., Any] | None = None,
        generator_factory: Callable[..., Any] | None = None,
        gates: Gates | None = None,
        uploads_dir: Path | None = None,
        assistant_settings: dict[str, Any] | None = None,
        endpoint_policy: EndpointPolicy | None = None,
        generators: Iterable[str] | None = None,
        max_upload_bytes: int | None = int(DEFAULT_MAX_UPLOAD_MB * 1e6),
        index_worker: IndexWorker | None = None,
    ) -> None:
        self.retriever = retriever
        if assistant_factory is None:
            from rag import Assistant

            assistant_factory = Assistant
        if generator_factory is None:
            from rag.answering.generators import make_generator

            generator_factory = make_generator
        self.assistant_factory = assistant_factory
        self.generator_factory = generator_factory
        self.gates = gates or Gates()
        if uploads_dir is None:  # uploads are not kept past this process
            self._uploads_tmp = tempfile.TemporaryDirectory(prefix="rag-uploads-")
            uploads_dir = Path(self._uploads_tmp.name)
        self.uploads = UploadStore(uploads_dir, max_bytes=max_upload_bytes)
        self.index_worker = index_worker or IndexWorker()
        self.assistant_settings = dict(assistant_settings or {})
        self.endpoint_policy = endpoint_policy or EndpointPolicy.from_operator()
        self.generators = None if generators is None else frozenset(generators)
        self._generators = LRUCache(self.MAX_GENERATORS)
        self._assistants = LRUCache(self.MAX_ASSISTANTS)
        self._lock = threading.Lock()

    def assistant(self, generator: str, mode: str, k: int,
                  base_url: str | None = None, model: str | None = None,
                  api_key: str | None = None) -> Any:
        """The (cached) Assistant for these settings; may raise ``RagError``.

        ``base_url``/``model``/``api_key`` matter for the ``openai`` generator only
        and pass through ``endpoint_policy``.
        """
        if self.generators is not None and generator not in self.generators:
            raise RagError(f"此服务器不提供回答方式 {generator!r} (this server does not offer the "
                           f"generator {generator!r}; choose one of: {', '.join(sorted(self.generators))})")
        if mode not in MODE_VALUES:
            raise RagError(f"未知的检索方式 {mode!r} (unknown retrieval mode; choose one of: "
                           f"{', '.join(MODE_VALUES)})")
        k = check_k(k)
        extra: dict[str, Any] = {}
        if generator == "openai":
            extra = self.endpoint_policy.settings_for(base_url, model, api_key)
        gen_key = (generator, tuple(sorted(extra.items())))
        key = (gen_key, mode, k)
        with self._lock:  # also serialises model loading
            gen = self._generators.get_or_make(gen_key, lambda: self.generator_factory(generator, **extra))
            return self._assistants.get_or_make(key, lambda: self.assistant_factory(
                self.retriever, generator=gen, k=k, mode=mode, **self.assistant_settings))

    def stream(self, question: str, history: list[dict], generator: str, mode: str, k: int,
               base_url: str | None = None, model: str | None = None, api_key: str | None = None,
               ) -> Iterator[str | int | Answer]:
        """Yield ``int`` (requests ahead while waiting), then text pieces, then the Answer."""
        assistant = self.assistant(generator, mode, k, base_url, model, api_key)  # bad settings fail first
        gate = self.gates.for_generator(generator)
        for ahead in gate.wait_turns():
            yield ahead
        try:
            yield from assistant.stream(question, history)
        finally:
            gate.leave()

    def add_documents(self, files: Sequence[Path | tuple[Path, str]]) -> UploadResult:
        """Store uploads in the uploads folder and add them to the index.

        ``files``: paths, or ``(path, original name)`` where the path is a temporary
        copy. Each is stored under a safe name no indexed document has (``a (2).txt``
        when ``a.txt`` exists; see ``rag.uploads``) before it is indexed, so the
        uploads folder and the index always agree. Uploads are indexed one at a time
        on the index worker, below the priority of answering. Files of the wrong
        type or over the size limit are refused before anything is queued; a file
        the retriever cannot read leaves the folder and the index unchanged.
        """
        pairs = [(Path(f[0]), str(f[1])) if isinstance(f, tuple) else (Path(f), Path(f).name) for f in files]
        bad = [original for _, original in pairs if Path(original).suffix.lower() not in UPLOAD_TYPES]
        if bad:
            raise RagError(f"不支持的文件类型 (unsupported file type): {', '.join(bad)}；"
                           f"支持 (supported): {' '.join(UPLOAD_TYPES)}")
        try:
            self.uploads.check_sizes(pairs)
            return self.index_worker.run(self.uploads.add, self.retriever, pairs, show_progress=True)
        except RagError as exc:
            message = self._user_paths(str(exc), pairs)
            if message == str(exc):
                raise
            raise type(exc)(message) from exc

    def _user_paths(self, message: str, pairs: list[tuple[Path, str]]) -> str:
        """Uploads by name in messages: no temporary or server folders shown to users."""
        for path, original in pairs:
            message = message.replace(str(path), original)
        folder = str(self.uploads.directory.resolve())
        return message.replace(folder + os.sep, "").replace(folder, "")

    def original_url(self, doc: str, page: int | None = None) -> str | None:
        """Link that opens ``doc``'s original (at ``page``), when the index keeps a copy."""
        original_file = getattr(self.retriever, "original_file", None)
        if original_file is None or original_file(doc) is None:
            return None
        return render.original_href(doc, page, ORIGINALS_ROUTE)


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


# ------------------------------------------------------------------ the app


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
    return ("ok", "✓ " + message) if result.stored else ("warn", message)


def _history_messages(turns: list[dict]) -> list[dict]:
    """Earlier turns as plain chat messages for ``Assistant.stream``."""
    messages: list[dict] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn["question"]})
        messages.append({"role": "assistant", "content": turn["answer"]})
    return messages


def build_app(
    retriever: Any,
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
    """The chat app over ``retriever``.

    ``generator``/``mode``/``k`` are the initial settings (users can change
    them in the settings accordion). ``base_url``/``model`` are the server's
    OpenAI-compatible endpoint (default: ``RAG_OPENAI_BASE_URL``/``OPENAI_BASE_URL``…,
    key from ``RAG_OPENAI_API_KEY``/``OPENAI_API_KEY``); users may name another
    endpoint only with ``allow_user_endpoints``, and it never gets the server's key
    (``endpoint_policy`` replaces all three). Uploaded documents are stored in
    ``uploads_dir`` (see ``rag.uploads``) so they survive restarts and rebuilds;
    each may be at most ``max_upload_mb`` MB (None: no limit; ``launch`` makes
    Gradio refuse bigger uploads before they are even stored). ``assistant_factory``
    (default ``rag.Assistant``) and ``generator_factory`` (default
    ``rag.answering.generators.make_generator``) can be replaced, e.g. in
    tests; further keyword arguments go to the Assistant.
    """
    if local_available is None:
        local_available = local_llm_available()
    if endpoint_policy is None:
        endpoint_policy = EndpointPolicy.from_operator(base_url, model,
                                                       allow_user_endpoints=allow_user_endpoints)
    gen_choices = generator_choices(local_available)
    if generator not in [v for _, v in gen_choices]:
        gen_choices.append((generator, generator))
    backend = ChatBackend(
        retriever,
        assistant_factory=assistant_factory,
        generator_factory=generator_factory,
        gates=Gates(gate_limits),
        uploads_dir=Path(uploads_dir) if uploads_dir else None,
        assistant_settings=assistant_settings,
        endpoint_policy=endpoint_policy,
        generators=[v for _, v in gen_choices],
        max_upload_bytes=None if max_upload_mb is None else int(max_upload_mb * 1e6),
    )
    user_endpoints = endpoint_policy.allow_user_endpoints

    def respond(message: str, history: list, turns: list, views: list, gen: str,
                mode_: str, k_: int, url: str, model_: str, key: str = ""):
        question = (message or "").strip()
        history = [{"role": m["role"], "content": _content_text(m)} for m in history or []]
        if not question:
            yield history, render.sources_panel(views), render.status_html("请输入问题 · type a question", "error"), turns, views, message
            return
        turn = len(turns) + 1
        history = history + [{"role": "user", "content": render.user_html(question)},
                             {"role": "assistant", "content": render.streaming_html("")}]
        yield (history, render.SEARCHING_SOURCES + render.sources_panel(views),
               render.status_html("检索中… searching", "busy"), turns, views, "")
        text = ""
        answer: Answer | None = None
        try:
            for piece in backend.stream(question, _history_messages(turns), gen, mode_, k_,
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
        views = views + [render.sources_html(answer, turn, backend.original_url)]
        yield (history, render.sources_panel(views), render.status_html(render.status_text(answer)),
               turns, views, gr.skip())

    def ask(question: str, generator: str = generator, mode: str = mode, k: int = k,
            base_url: str = "", model: str = "", api_key: str = "") -> Iterator[dict]:
        """Answer one question from the documents.

        Yields {"text": partial answer, "done": false} while the answer streams,
        then the finished answer as a dict (text, citations with doc, heading_path,
        quote, start, end; abstained; hits; timings; notices) with "done": true.
        k: passages to retrieve (1-50). base_url/model/api_key: for generator
        "openai"; empty means the server's own endpoint (another base URL only
        where the server allows user endpoints; it never gets the server's key).
        """
        text = ""
        try:
            for piece in backend.stream(question, [], generator, mode, k,
                                        base_url or None, model or None, api_key or None):
                if isinstance(piece, Answer):
                    yield {**piece.to_dict(), "done": True}
                    return
                if isinstance(piece, str):
                    text += piece
                    yield {"text": text, "done": False}
        except RagError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def header_html() -> str:
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

    def add_documents(files: list | None, progress=gr.Progress(track_tqdm=True)):
        if not files:
            return render.status_html("请先选择文件 · choose files first", "error"), None
        paths = [Path(f if isinstance(f, (str, os.PathLike)) else f.name) for f in files]
        progress(0, desc="切分、向量化、写入索引… chunking, embedding, indexing")
        try:
            result = backend.add_documents([(p, p.name) for p in paths])
        except (RagError, OSError) as exc:
            status = render.status_html(f"未添加，索引保持不变 (nothing added, index unchanged)：{exc}", "error")
        else:
            kind, message = _describe_added(result)
            status = render.status_html(message, kind)
        finally:
            discard_gradio_uploads(paths)  # the uploads folder holds what was kept
        return status, None

    def clear():
        return [], render.EMPTY_SOURCES, render.status_html("就绪 · ready"), [], [], ""

    def toggle_endpoint(gen: str):
        return gr.update(visible=gen == "openai")

    with gr.Blocks(title=title, fill_width=True) as app:
        turns_state = gr.State([])
        views_state = gr.State([])
        header = gr.HTML(header_html(), elem_id="topbar")
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
                                       placeholder="qwen2.5-1.5b-instruct")
                key_box = gr.Textbox("", label="API key（仅用于你填写的接口 · only sent to the URL above）",
                                     type="password", visible=user_endpoints)
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
                       url_box, model_box, key_box]
        chat_outputs = [chatbot, sources, status, turns_state, views_state, msg]
        gr.on(
            triggers=[msg.submit, send.click], fn=respond, inputs=chat_inputs, outputs=chat_outputs,
            api_name="chat", api_visibility="undocumented",
            concurrency_id="chat", concurrency_limit=CHAT_CONCURRENCY,
            show_progress="hidden",
        )
        gr.api(ask, api_name="ask", concurrency_id="chat", concurrency_limit=CHAT_CONCURRENCY)
        add_btn.click(add_documents, inputs=files, outputs=[upload_status, files], api_name="add_documents",
                      concurrency_id="index", concurrency_limit=1,
                      ).then(header_html, outputs=header, api_visibility="private", queue=False)
        app.load(header_html, outputs=header, api_visibility="private", queue=False,
                 show_progress="hidden")
        chatbot.clear(clear, outputs=chat_outputs, api_visibility="private", queue=False)
        gen_radio.change(toggle_endpoint, gen_radio, endpoint_row, api_visibility="private",
                         queue=False)
    app.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    app.rag_retriever = retriever  # for serve_originals once the server exists
    app.rag_max_upload_mb = max_upload_mb  # for launch(): Gradio's own limit on the upload route
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
    """Serve ``app`` on ``host:port``; with ``block=False`` return once it is up.

    Gradio refuses uploads over the app's ``max_upload_mb`` (see ``build_app``)
    while they arrive (HTTP 413), before anything is stored or indexed.
    """
    max_mb = getattr(app, "rag_max_upload_mb", None)
    app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False,
        prevent_thread_lock=True, quiet=quiet, show_error=True, footer_links=["api"],
        max_file_size=None if max_mb is None else int(max_mb * 1e6),
        **launch_kwargs(),
    )
    retriever = getattr(app, "rag_retriever", None)
    if retriever is not None:
        serve_originals(app.server_app, retriever)
    if block:
        app.block_thread()
    return app


def serve_originals(server: Any, retriever: Any) -> None:
    """``GET /original/<doc>``: the index's own copy of a document's original file.

    Citations link here with ``#page=N`` so the browser's PDF viewer opens the
    cited page. The document name only selects an entry of the index's manifest
    (never a file path), so no request can reach a file outside the index.
    """
    import mimetypes
    from urllib.parse import quote

    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    def original(doc: str):
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

    server.add_api_route(ORIGINALS_ROUTE + "/{doc:path}", original, methods=["GET"])
    # Gradio mounts its own routes first; ours must be matched before any catch-all.
    server.router.routes.insert(0, server.router.routes.pop())
