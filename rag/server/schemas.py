"""The HTTP API's request and response bodies (pydantic models: they are the OpenAPI schema)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag import config

Mode = Literal["hybrid", "dense", "bm25"]

#: The most passages one request may retrieve (the same bound as the UI and the CLI).
MAX_K = getattr(config, "MAX_K", 50)


# ------------------------------------------------------------------ answers


class CitationModel(BaseModel):
    """One numbered source: the ``[n]`` in the answer text quotes this sentence."""

    n: int = Field(description="the number of the [n] marker in the answer text")
    chunk_id: str
    doc: str = Field(description="document name")
    heading_path: list[str] = Field(description="headings above the passage, outermost first")
    page: int | None = Field(default=None, description="page in a paged document (PDF); null where there are none")
    quote: str = Field(description="the cited sentence(s), verbatim")
    start: int = Field(description="character offset of the quote in the document's text")
    end: int


class HitModel(BaseModel):
    """A retrieved passage with its score (higher is better)."""

    chunk_id: str
    doc: str
    heading_path: list[str]
    page: int | None = None
    text: str
    start: int
    end: int
    score: float


class AnswerModel(BaseModel):
    """An answer with its evidence. When ``abstained`` the text says the documents do not
    hold the answer and ``hits`` are passages that may be related."""

    question: str
    text: str = Field(description="the answer, with [n] markers")
    citations: list[CitationModel]
    abstained: bool
    hits: list[HitModel]
    generator: str
    search_query: str = Field(description="what was searched (a follow-up resolved against the history)")
    unsupported: list[str] = Field(description="sentences of a generated answer no passage supports")
    notices: list[str]
    timings: dict[str, float]


class RagExtra(BaseModel):
    """The extra ``rag`` field of a chat completion (and of the last stream chunk)."""

    knowledge_base: str
    citations: list[CitationModel]
    abstained: bool
    hits: list[HitModel]
    generator: str
    search_query: str
    unsupported: list[str]
    notices: list[str]
    timings: dict[str, float]


# ------------------------------------------------------------------ OpenAI-compatible


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion`` object plus the ``rag`` field."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    rag: RagExtra


class ModelCard(BaseModel):
    id: str = Field(description="a knowledge base, or knowledge_base:generator")
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error body."""

    error: OpenAIErrorDetail


# ------------------------------------------------------------------ REST


class Problem(BaseModel):
    """An error of the REST API."""

    detail: str


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=20_000, examples=["12351热线什么时候全面建成？"])
    k: int = Field(default=5, ge=1, le=MAX_K)
    mode: Mode = "hybrid"


class SearchResponse(BaseModel):
    hits: list[HitModel]
    notices: list[str]


class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(max_length=100_000)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=20_000, examples=["甘肃省有多少家企业参加了劳动竞赛？"])
    history: list[HistoryMessage] = Field(default_factory=list, max_length=200,
                                          description="earlier turns, oldest first, for follow-ups")
    generator: str | None = Field(default=None, max_length=64,
                                  description="extractive, local or openai (default: the server's)")
    mode: Mode | None = None
    k: int | None = Field(default=None, ge=1, le=MAX_K)


class DocumentModel(BaseModel):
    name: str
    type: str = Field(description="file type by suffix (txt, md, pdf, ...)")
    chunks: int
    chars: int
    pages: int | None = Field(default=None, description="pages of a paged document; null where there are none")
    added: str | None = Field(default=None, description="when this version entered the index (ISO 8601)")
    uploaded: bool = Field(description="kept in the uploads folder (else read from a documents folder)")


class ChangeResult(BaseModel):
    """What an add, delete or re-index did."""

    knowledge_base: str
    added: list[str]
    replaced: list[str]
    unchanged: list[str]
    removed: list[str]
    problems: list[str]
    documents: int = Field(description="documents in the index now")
    chunks: int = Field(description="chunks in the index now")
    seconds: float


class KnowledgeBaseStatus(BaseModel):
    name: str
    documents: int
    chunks: int
    sentence_views: int
    model: str | None
    dimension: int | None
    dense_index: str | None
    store: str
    format_version: int | None
    updated: str | None = Field(description="when the index was last written")
    writing: bool = Field(description="a document is being added, deleted or re-indexed now")
