"""``rag serve``: the chat UI, the OpenAI-compatible API and the REST API on one port.

Builds the index first when it is missing; serves one or several knowledge
bases (``--index NAME=DIR``, ``--indexes FOLDER``); refuses to listen beyond
loopback without credentials (``rag.server.auth``).
"""
from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from typing import Any

from rag import config
from rag.errors import RagError
from rag.uploads import DEFAULT_MAX_UPLOAD_MB
from rag.vocabulary import MODES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


class PortInUseError(RagError):
    """The port the UI should listen on is taken by another program."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="start the chat UI and the HTTP APIs (OpenAI-compatible and REST) on the indexed documents",
        description=(
            "Start the chat UI, the OpenAI-compatible API (/v1) and the REST API (/api, documented "
            "at /docs) on one port. Each --index is one knowledge base, chosen in the UI and by "
            "`model` in the API. When the (only) index does not exist yet it is built from --docs "
            "first (with a progress bar). Uploaded documents are kept in <index>-uploads/ and "
            "indexed again whenever the index is rebuilt. On any address other than loopback an "
            "API key or a UI login is required (or --insecure-no-auth)."
        ),
    )
    parser.add_argument("--index", metavar="[NAME=]DIR", action="append", default=None,
                        help="an index to serve as knowledge base NAME (default name: the folder's "
                             "name); repeat for several (default: $RAG_INDEX or "
                             f"{config.DEFAULT_INDEX_DIR})")
    parser.add_argument("--indexes", metavar="FOLDER", default=None,
                        help="serve every index folder inside FOLDER, each named after its folder")
    parser.add_argument("--docs", metavar="DIR", nargs="+", default=["seeds"],
                        help="documents to index when a single index is missing (default: seeds)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; "
                             "0.0.0.0 exposes the UI to the network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default: {DEFAULT_PORT})")
    parser.add_argument("--generator", default="extractive",
                        help="initial answer generator: extractive (default), local, openai")
    parser.add_argument("--mode", default="hybrid", choices=MODES,
                        help="initial retrieval mode (default: hybrid)")
    parser.add_argument("-k", type=int, default=5, help="passages retrieved per question (default: 5)")
    parser.add_argument("--base-url", default=None,
                        help="the server's OpenAI-compatible endpoint for the openai generator "
                             "(default $RAG_OPENAI_BASE_URL or $OPENAI_BASE_URL); its key comes from "
                             "$RAG_OPENAI_API_KEY or $OPENAI_API_KEY and is sent to this endpoint only")
    parser.add_argument("--model", default=None,
                        help="model name at that endpoint (default $RAG_OPENAI_MODEL or $OPENAI_MODEL)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                        help=f"largest document a user may upload, per file (default {DEFAULT_MAX_UPLOAD_MB:g}; "
                             "0 for no limit)")
    parser.add_argument("--api-key", action="append", default=[], metavar="KEY",
                        help="an API key clients must send as 'Authorization: Bearer KEY' (repeat for "
                             "several; or $RAG_API_KEY, comma-separated); the UI accepts it as password")
    parser.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD",
                        help="a UI login (repeat for several; or $RAG_UI_AUTH, comma-separated); "
                             "also accepted by the API as the bearer token USER:PASSWORD")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="listen beyond loopback without any credentials (only on a network "
                             "you trust completely)")
    parser.add_argument("--allow-user-endpoints", action="store_true",
                        help="let users name another OpenAI-compatible endpoint in the UI or /ask "
                             "(called without the server's key; off by default, since the server "
                             "would call any address a user types)")
    parser.set_defaults(func=run)


def check_port_free(host: str, port: int) -> None:
    """Raise ``PortInUseError`` when ``host:port`` cannot be bound.

    SO_REUSEADDR matches what the web server does, so a port left in TIME_WAIT
    by a previous run counts as free while a listening program does not.
    """
    if not 0 < port < 65536:
        raise RagError(f"port {port} is out of range: choose a port between 1 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use (another `rag serve` or program is "
                    f"listening there); stop it or choose another port, e.g. --port {port + 1}"
                ) from exc
            if exc.errno == errno.EACCES:
                raise PortInUseError(
                    f"no permission to listen on port {port}; use a port above 1023, e.g. --port 7860"
                ) from exc
            raise RagError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def uploads_dir_for(index_dir: Path) -> Path:
    """Where uploaded documents are kept: next to the index, not inside it
    (the index directory is replaced atomically on every write)."""
    from rag.server.knowledge_bases import uploads_dir_for as for_index

    return for_index(index_dir)


def open_index(index_dir: Path, docs: list[Path], **settings):
    """The index for the UI: loaded, built when missing, or rebuilt from ``docs``
    when it was made by an older format or another model (it is derived data and
    the embedding cache makes the rebuild cheap). A corrupt index stays an error."""
    from rag import Retriever
    from rag.errors import IndexMismatchError

    try:
        return Retriever.load_or_build(index_dir, docs, **settings)
    except IndexMismatchError as exc:
        print(f"{exc}\nrebuilding it from {', '.join(str(d) for d in docs)}", file=sys.stderr)
        return Retriever.rebuild(docs, index_dir, **settings)


def reconcile_uploads(base) -> None:
    """Bring a knowledge base's uploads folder and index back in step (a crash between
    storing an upload and indexing it, or in the middle of a deletion, leaves them apart)
    and say what was fixed."""
    from rag.uploads import UploadStore

    lines = base.reconcile()  # interrupted deletions first: their files are hidden
    lines += UploadStore(base.uploads_dir).reconcile(base.retriever, show_progress=True).lines()
    for line in lines:
        print(f"{base.name}: uploads: {line}", file=sys.stderr, flush=True)


def open_knowledge_bases(args: argparse.Namespace, make_backend) -> Any:
    """The knowledge bases named by ``--index``/``--indexes``, each loaded (or built from
    ``--docs`` when it is the only one and missing) with its uploads folder in step."""
    from rag.server.knowledge_bases import KnowledgeBase, KnowledgeBases, parse_index_specs

    values = args.index or ([] if args.indexes else [str(config.index_dir(None))])
    specs = parse_index_specs(values, args.indexes)
    docs = [Path(d) for d in args.docs]
    bases = []
    for name, index_dir in specs:
        uploads = uploads_dir_for(index_dir)
        if len(specs) == 1:
            missing = [str(d) for d in docs if not d.exists()]
            if missing:
                raise RagError(f"document folder not found: {', '.join(missing)}")
            kept = uploads.is_dir() and any(not p.name.startswith(".") for p in uploads.iterdir())
            # absolute: the index records where each upload lives
            sources = docs + ([uploads.resolve()] if kept else [])
            retriever = open_index(index_dir, sources)
        else:  # several: each must exist already (which --docs would belong to which?)
            from rag import Retriever

            retriever = Retriever.load(index_dir)
        summary = getattr(retriever, "build_summary", None)
        if summary is not None:
            print(f"built the index at {index_dir}: {summary.documents} documents, {summary.chunks} chunks")
            for report in getattr(summary, "files", []):
                print(f"  {report.line()}")
            for problem in getattr(summary, "problems", []):
                print(f"  not indexed: {problem}", file=sys.stderr)
        base = KnowledgeBase(name, retriever, uploads_dir=uploads, backend_factory=make_backend)
        reconcile_uploads(base)
        bases.append(base)
    return KnowledgeBases(bases)


def run(args: argparse.Namespace) -> int:
    from rag.memory import limit_memory_growth

    limit_memory_growth()
    try:
        import gradio  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise RagError("rag serve needs gradio and uvicorn: pip install -e '.[ui]'") from exc
    from rag.answering.assistant import check_k
    from rag.answering.endpoints import EndpointPolicy
    from rag.commands.common import prepare_judge
    from rag.server.api import ServeSettings, create_app
    from rag.server.auth import AccessPolicy
    from rag.server.backend import ChatBackend
    from rag.server.concurrency import Gates, IndexWorker

    policy = AccessPolicy.from_settings(args.api_key, args.auth, args.insecure_no_auth)
    policy.check_listen(args.host)  # before anything is loaded or built
    check_k(args.k)
    if args.max_upload_mb < 0:
        raise RagError(f"--max-upload-mb must be 0 (no limit) or more, not {args.max_upload_mb:g}")
    max_upload_bytes = int(args.max_upload_mb * 1e6) or None
    check_port_free(args.host, args.port)

    from ui.app import build_app, generator_choices, local_llm_available, mount

    if args.generator == "local" and not local_llm_available():
        raise RagError("the local LLM is not installed: pip install -e '.[llm]' "
                       "(or start with --generator extractive)")
    generators = [value for _, value in generator_choices(local_llm_available())]
    if args.generator not in generators:
        generators.append(args.generator)
    endpoint_policy = EndpointPolicy.from_operator(args.base_url, args.model,
                                                   allow_user_endpoints=args.allow_user_endpoints)
    gates = Gates()  # one set for every knowledge base and both doors (UI and API)
    index_worker = IndexWorker()  # one index writer thread for the whole server

    def make_backend(retriever, uploads):
        return ChatBackend(retriever, gates=gates, uploads_dir=uploads, endpoint_policy=endpoint_policy,
                           generators=generators, max_upload_bytes=max_upload_bytes, index_worker=index_worker)

    bases = open_knowledge_bases(args, make_backend)
    for engine in {b.retriever.settings.embedding_engine for b in bases if hasattr(b.retriever, "settings")}:
        prepare_judge(engine)  # once per machine beside a torch-free engine, before the first question
    settings = ServeSettings(generator=args.generator, mode=args.mode, k=args.k, generators=tuple(generators))
    server = create_app(bases, policy=policy, settings=settings)
    ui = build_app(bases, generator=args.generator, mode=args.mode, k=args.k,
                   max_upload_mb=args.max_upload_mb or None)
    mount(server, ui, auth=policy.accepts_login if policy.enabled else None)

    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    print(f"knowledge bases: {', '.join(bases.names)}; {policy.describe()}")
    if policy.insecure_no_auth and not policy.enabled:
        print("WARNING: --insecure-no-auth: anyone who can reach this address can read the documents, "
              "ask questions and add or delete documents", file=sys.stderr, flush=True)
    print(f"chat UI: {url}   OpenAI-compatible API: {url}/v1   REST API docs: {url}/docs   "
          "(Ctrl+C to stop)", flush=True)
    uvicorn.run(server, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0
