"""``rag serve``: the chat UI in the browser (builds the index first when missing)."""
from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys
from pathlib import Path

from rag import config
from rag.commands.common import add_index_argument
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
        help="start the chat UI (Gradio) on the indexed documents",
        description=(
            "Start the chat UI. When the index does not exist yet it is built from --docs "
            "first (with a progress bar). Uploaded documents are kept in <index>-uploads/ "
            "and indexed again whenever the index is rebuilt."
        ),
    )
    add_index_argument(parser)
    parser.add_argument("--docs", metavar="DIR", nargs="+", default=["seeds"],
                        help="documents to index when the index is missing (default: seeds)")
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning ``rag serve`` prints when it listens beyond this machine, else None."""
    if is_loopback(host):
        return None
    bar = "!" * 78
    return (f"{bar}\n"
            f"WARNING: listening on {host}:{port}, reachable from other machines, WITHOUT ANY\n"
            "AUTHENTICATION: anyone who can reach this address can read the documents through\n"
            "the chat and the API, ask questions and add documents to the index.\n"
            "Listen on 127.0.0.1 (the default) unless this network is trusted, or put an\n"
            "authenticating reverse proxy in front of it.\n"
            f"{bar}")


def uploads_dir_for(index_dir: Path) -> Path:
    """Where uploaded documents are kept: next to the index, not inside it
    (the index directory is replaced atomically on every write)."""
    return index_dir.with_name(index_dir.name + "-uploads")


def limit_memory_growth() -> None:
    """Keep a long-running server's memory flat (call before torch is imported).

    oneDNN caches compiled kernels per input shape, and questions come in every
    length: with its default cache the server grew ~270 MB over its first 100
    questions; 8 entries halve that growth (bench/ and the closing note of the
    retrieval issue). glibc's per-thread malloc arenas are capped too, since
    Gradio answers on a pool of threads.
    """
    import ctypes
    import os

    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        pass


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
        return Retriever.build(docs, index_dir, **settings)


def reconcile_uploads(retriever, uploads: Path) -> None:
    """Bring the uploads folder and the index back in step (a crash between storing an
    upload and indexing it, or the reverse, leaves them apart) and say what was fixed."""
    from rag.uploads import UploadStore

    report = UploadStore(uploads).reconcile(retriever, show_progress=True)
    for line in report.lines():
        print(f"uploads: {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    limit_memory_growth()
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise RagError("the chat UI needs gradio: pip install -e '.[ui]'") from exc
    from rag.answering.assistant import check_k

    check_k(args.k)
    if args.max_upload_mb < 0:
        raise RagError(f"--max-upload-mb must be 0 (no limit) or more, not {args.max_upload_mb:g}")
    check_port_free(args.host, args.port)
    index_dir = config.index_dir(args.index)
    uploads = uploads_dir_for(index_dir)
    docs = [Path(d) for d in args.docs]
    missing = [str(d) for d in docs if not d.exists()]
    if missing:
        raise RagError(f"document folder not found: {', '.join(missing)}")
    if uploads.is_dir() and any(not p.name.startswith(".") for p in uploads.iterdir()):
        docs.append(uploads.resolve())  # absolute: the index records where each upload lives

    retriever = open_index(index_dir, docs)
    summary = getattr(retriever, "build_summary", None)
    if summary is not None:
        print(f"built the index at {index_dir}: {summary.documents} documents, {summary.chunks} chunks")
    reconcile_uploads(retriever, uploads)

    from ui.app import build_app, launch, local_llm_available

    if args.generator == "local" and not local_llm_available():
        raise RagError("the local LLM is not installed: pip install -e '.[llm]' "
                       "(or start with --generator extractive)")
    app = build_app(retriever, generator=args.generator, mode=args.mode, k=args.k,
                    base_url=args.base_url, model=args.model,
                    allow_user_endpoints=args.allow_user_endpoints, uploads_dir=uploads,
                    max_upload_mb=args.max_upload_mb or None)
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"chat UI: http://{args.host}:{args.port}  (Ctrl+C to stop)", flush=True)
    launch(app, host=args.host, port=args.port)
    return 0
