"""The HTTP API of ``rag serve``: OpenAI-compatible ``/v1`` and REST ``/api``.

``create_app(knowledge_bases, policy=..., settings=...)`` returns a FastAPI app;
``rag serve`` mounts the Gradio UI on it at ``/``, so one process on one port
serves the UI, both APIs, the OpenAPI schema (``/openapi.json``) and its docs
(``/docs``).

* ``GET  /v1/models``                 knowledge bases (and knowledge_base:generator) as models
* ``POST /v1/chat/completions``       answers with [n] markers; citations in the ``rag`` field
* ``GET  /api/knowledge-bases``       every knowledge base with its index status
* ``GET  /api/knowledge-bases/{kb}``  one knowledge base's index status
* ``POST /api/knowledge-bases/{kb}/search``  passages for a query
* ``POST /api/knowledge-bases/{kb}/ask``     an answer with citations
* ``GET  /api/knowledge-bases/{kb}/documents``            the indexed documents
* ``POST /api/knowledge-bases/{kb}/documents``            add documents (multipart ``files``)
* ``DELETE /api/knowledge-bases/{kb}/documents/{name}``   delete one
* ``POST /api/knowledge-bases/{kb}/reindex/{name}``      index one again from its file

Every ``/v1`` and ``/api`` call needs ``Authorization: Bearer <key>`` when the
server has credentials (``rag.server.auth``). Answering passes through the same
per-generator gates as the UI; when too many requests already wait, the API
answers 429 at once (``Retry-After``) instead of queueing without bound.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Iterator

from fastapi import Depends, FastAPI, File, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from rag.errors import DocumentNotFoundError, EmptyQueryError, RagError
from rag.server import openai_compat as oa
from rag.server import schemas
from rag.server.auth import AccessPolicy
from rag.server.concurrency import QueueFullError
from rag.server.knowledge_bases import DocumentConflictError, KnowledgeBaseNotFoundError, KnowledgeBases
from rag.uploads import UploadTooLargeError
from rag.types import Answer

#: Files one upload request may carry.
MAX_UPLOAD_FILES = 20
#: Requests that may wait for each answering gate before the API answers 429.
DEFAULT_MAX_WAITING = 16
#: Seconds a client is asked to wait after a 429.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ServeSettings:
    """How the API answers when a request does not say: the server's defaults."""

    generator: str = "extractive"
    mode: str = "hybrid"
    k: int = 5
    #: Generators a request may choose (``model`` = ``kb:generator``, or ``generator`` in /ask).
    generators: tuple[str, ...] = ("extractive",)
    max_waiting: int = DEFAULT_MAX_WAITING


class AuthenticationError(RagError):
    """Missing or wrong credentials (HTTP 401)."""


class PayloadTooLargeError(RagError):
    """An upload is over the size limit (HTTP 413)."""


#: Status code per error class (the first match wins, so subclasses come first).
_STATUS = [
    (AuthenticationError, 401, "invalid_api_key", "authentication_error"),
    (KnowledgeBaseNotFoundError, 404, "model_not_found", "invalid_request_error"),
    (DocumentNotFoundError, 404, "not_found", "invalid_request_error"),
    (DocumentConflictError, 409, "conflict", "invalid_request_error"),
    (PayloadTooLargeError, 413, "payload_too_large", "invalid_request_error"),
    (UploadTooLargeError, 413, "payload_too_large", "invalid_request_error"),
    (QueueFullError, 429, "rate_limit_exceeded", "rate_limit_error"),
    (EmptyQueryError, 400, None, "invalid_request_error"),
    (RagError, 400, None, "invalid_request_error"),
]

_OPENAI_ERRORS = {code: {"model": schemas.OpenAIError} for code in (400, 401, 404, 429)}
_REST_ERRORS = {code: {"model": schemas.Problem} for code in (400, 401, 404, 429)}


def _status_of(exc: RagError) -> tuple[int, str | None, str]:
    for cls, status, code, kind in _STATUS:
        if isinstance(exc, cls):
            return status, code, kind
    return 400, None, "invalid_request_error"


def _is_openai_path(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def create_app(knowledge_bases: KnowledgeBases, *, policy: AccessPolicy | None = None,
               settings: ServeSettings | None = None, title: str = "rag-zh") -> FastAPI:
    """The FastAPI app serving ``knowledge_bases`` (see the module docstring)."""
    policy = policy or AccessPolicy()
    settings = settings or ServeSettings()
    started = int(time.time())
    app = FastAPI(
        title=f"{title} API",
        version=_version(),
        description=(
            "Question answering over Chinese documents with cited sources.\n\n"
            "* `/v1`: OpenAI-compatible chat completions; `model` names a knowledge base "
            "(`seeds`, or `seeds:local` for another generator); citations travel in the extra "
            "field `rag`.\n"
            "* `/api`: search, ask, and manage the documents of each knowledge base.\n\n"
            "Send `Authorization: Bearer <API key>` when the server has credentials."),
        openapi_tags=[{"name": "openai", "description": "OpenAI-compatible chat API"},
                      {"name": "knowledge bases", "description": "index status, search and answers"},
                      {"name": "documents", "description": "list, add, delete and re-index documents"}],
    )
    bearer = HTTPBearer(auto_error=False, description="an API key (or USER:PASSWORD of a UI login)")

    # A default, not Annotated: the annotation is a string here and ``bearer`` is local.
    def authorize(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
        if policy.enabled and (credentials is None or not policy.accepts_token(credentials.credentials)):
            raise AuthenticationError("missing or invalid API key: send 'Authorization: Bearer <key>'")

    auth = [Depends(authorize)]

    @app.exception_handler(RagError)
    def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status, code, kind = _status_of(exc)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 429:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if _is_openai_path(request):
            body = oa.error_body(str(exc), type=kind, code=code, param=getattr(exc, "param", None))
        else:
            body = {"detail": str(exc)}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if _is_openai_path(request):
            kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
            return JSONResponse(oa.error_body(message, type=kind), status_code=exc.status_code,
                                headers=exc.headers)
        return JSONResponse({"detail": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not _is_openai_path(request):  # REST keeps FastAPI's 422 with the details
            return JSONResponse({"detail": _plain(exc.errors())}, status_code=422)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = f"{first.get('msg', 'invalid request')}" + (f" ({where})" if where else "")
        return JSONResponse(oa.error_body(message, param=where), status_code=400)

    # ---------------------------------------------------------------- OpenAI-compatible

    def model_names() -> list[str]:
        names = []
        for base in knowledge_bases:
            names.append(base.name)
            names.extend(f"{base.name}{oa.MODEL_SEPARATOR}{g}" for g in settings.generators)
        return names

    @app.get("/v1/models", response_model=schemas.ModelList, tags=["openai"], dependencies=auth,
             responses=_OPENAI_ERRORS, summary="the knowledge bases, as models")
    def list_models() -> dict[str, Any]:
        return oa.models_list(model_names(), started)

    @app.get("/v1/models/{model}", response_model=schemas.ModelCard, tags=["openai"], dependencies=auth,
             responses=_OPENAI_ERRORS, summary="one model")
    def get_model(model: str) -> dict[str, Any]:
        if model not in model_names():
            raise KnowledgeBaseNotFoundError(f"no model {model!r}; this server has: {', '.join(model_names())}")
        return oa.models_list([model], started)["data"][0]

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=auth,
              response_model=schemas.ChatCompletion, summary="answer the last user message",
              responses={**_OPENAI_ERRORS, 200: {
                  "description": "a chat completion, or with `stream: true` server-sent events "
                                 "(`chat.completion.chunk` objects, then `data: [DONE]`)",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    def chat_completions(body: oa.ChatCompletionRequest) -> Any:
        name, generator = oa.split_model(body.model)
        base = knowledge_bases.get(name)
        generator = _choose_generator(generator, settings)
        question, history = oa.conversation(body.messages)
        pieces = base.backend.stream(question, history, generator, settings.mode, settings.k,
                                     max_waiting=settings.max_waiting)
        if not body.stream:
            return oa.completion(_finish(pieces), model=body.model, knowledge_base=base.name)
        first = next(pieces)  # settings errors and a full queue are HTTP errors, before the stream
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = oa.stream_events(chain([first], pieces), model=body.model, knowledge_base=base.name,
                                  live_content=generator == "extractive", include_usage=include_usage)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ---------------------------------------------------------------- knowledge bases

    @app.get("/api/knowledge-bases", response_model=list[schemas.KnowledgeBaseStatus],
             tags=["knowledge bases"], dependencies=auth, responses=_REST_ERRORS,
             summary="every knowledge base with its index status")
    def list_knowledge_bases() -> list[dict[str, Any]]:
        return [base.status() for base in knowledge_bases]

    @app.get("/api/knowledge-bases/{kb}", response_model=schemas.KnowledgeBaseStatus,
             tags=["knowledge bases"], dependencies=auth, responses=_REST_ERRORS, summary="index status")
    def knowledge_base_status(kb: str) -> dict[str, Any]:
        return knowledge_bases.get(kb).status()

    @app.post("/api/knowledge-bases/{kb}/search", response_model=schemas.SearchResponse,
              tags=["knowledge bases"], dependencies=auth, responses=_REST_ERRORS,
              summary="the passages that best match a query")
    def search(kb: str, body: schemas.SearchRequest) -> dict[str, Any]:
        base = knowledge_bases.get(kb)
        hits, notices = base.retriever.search_with_notices(body.query, k=body.k, mode=body.mode)
        return {"hits": [oa.hit_dict(h) for h in hits], "notices": notices}

    @app.post("/api/knowledge-bases/{kb}/ask", response_model=schemas.AnswerModel,
              tags=["knowledge bases"], dependencies=auth, responses=_REST_ERRORS,
              summary="an answer with [n] markers and its citations")
    def ask(kb: str, body: schemas.AskRequest) -> dict[str, Any]:
        base = knowledge_bases.get(kb)
        generator = _choose_generator(body.generator, settings)
        history = [m.model_dump() for m in body.history]
        pieces = base.backend.stream(body.question, history, generator, body.mode or settings.mode,
                                     body.k or settings.k, max_waiting=settings.max_waiting)
        return oa.answer_dict(_finish(pieces))

    # ---------------------------------------------------------------- documents

    @app.get("/api/knowledge-bases/{kb}/documents", response_model=list[schemas.DocumentModel],
             tags=["documents"], dependencies=auth, responses=_REST_ERRORS, summary="the indexed documents")
    def list_documents(kb: str) -> list[dict[str, Any]]:
        return [d.to_dict() for d in knowledge_bases.get(kb).documents()]

    @app.post("/api/knowledge-bases/{kb}/documents", response_model=schemas.ChangeResult,
              tags=["documents"], dependencies=auth,
              responses={**_REST_ERRORS, 409: {"model": schemas.Problem}, 413: {"model": schemas.Problem}},
              summary="add documents (a file with an uploaded document's name replaces it)")
    def add_documents(kb: str, request: Request,
                      files: Annotated[list[UploadFile], File(min_length=1, description="the documents")]) -> dict[str, Any]:
        base = knowledge_bases.get(kb)
        limit = base.backend.uploads.max_bytes
        declared = int(request.headers.get("content-length") or 0)
        if len(files) > MAX_UPLOAD_FILES or (limit and declared > limit * MAX_UPLOAD_FILES):
            raise PayloadTooLargeError(f"at most {MAX_UPLOAD_FILES} files"
                                       + (f" of {limit / 1e6:g} MB each" if limit else "") + " per request")
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
            saved = [(upload.filename or "", _save_upload(upload, Path(tmp) / str(i), limit))
                     for i, upload in enumerate(files)]
            return base.add_files(saved).to_dict()

    @app.delete("/api/knowledge-bases/{kb}/documents/{name:path}", response_model=schemas.ChangeResult,
                tags=["documents"], dependencies=auth, responses={**_REST_ERRORS, 409: {"model": schemas.Problem}},
                summary="delete a document (and its uploaded file)")
    def delete_document(kb: str, name: str) -> dict[str, Any]:
        return knowledge_bases.get(kb).delete(name).to_dict()

    @app.post("/api/knowledge-bases/{kb}/reindex/{name:path}", response_model=schemas.ChangeResult,
              tags=["documents"], dependencies=auth, responses={**_REST_ERRORS, 409: {"model": schemas.Problem}},
              summary="read a document again from its file and replace its chunks")
    def reindex_document(kb: str, name: str) -> dict[str, Any]:
        return knowledge_bases.get(kb).reindex(name).to_dict()

    # Under /api and /v1, a path that exists with other methods is a 405 naming all of them,
    # anything else a 404: these routes come before the UI mounted at "/", which would
    # otherwise answer every such request itself.
    def not_routed(request: Request) -> None:
        allowed = sorted({method for route in app.router.routes
                          if isinstance(route, APIRoute) and route.include_in_schema
                          and route.matches(request.scope)[0] == Match.PARTIAL
                          for method in route.methods or ()})
        if allowed:
            raise StarletteHTTPException(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})
        raise StarletteHTTPException(404, f"no such endpoint: {request.url.path}")

    for prefix in ("/api", "/v1"):
        app.api_route(prefix + "/{rest:path}", include_in_schema=False,
                      methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])(not_routed)

    app.state.knowledge_bases = knowledge_bases
    app.state.policy = policy
    app.state.settings = settings
    return app


def _choose_generator(requested: str | None, settings: ServeSettings) -> str:
    generator = (requested or settings.generator).strip().lower()
    if generator not in settings.generators:
        raise RagError(f"this server does not offer the generator {generator!r}; "
                       f"choose one of: {', '.join(settings.generators)}")
    return generator


def _finish(pieces: Iterator[int | str | Answer]) -> Answer:
    """Run an answer stream to its end and return the ``Answer``."""
    answer = None
    for piece in pieces:
        if isinstance(piece, Answer):
            answer = piece
    if answer is None:
        raise RagError("no answer was produced")
    return answer


def _save_upload(upload: UploadFile, path: Path, limit: int | None) -> Path:
    """Copy an uploaded file to ``path``, refusing it as soon as it passes ``limit`` bytes."""
    size = 0
    with path.open("wb") as out:
        while block := upload.file.read(1 << 20):
            size += len(block)
            if limit and size > limit:
                raise PayloadTooLargeError(f"文件过大 (file too large): {upload.filename} is over the "
                                           f"{limit / 1e6:g} MB limit (rag serve --max-upload-mb)")
            out.write(block)
    return path


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as JSON-safe dicts (pydantic may put exceptions in ``ctx``)."""
    return [{k: (v if k != "ctx" else {c: str(x) for c, x in v.items()}) for k, v in e.items()
             if k in ("type", "loc", "msg", "ctx")} for e in errors]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rag-zh")
    except PackageNotFoundError:
        return "0"
