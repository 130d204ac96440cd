"""Which OpenAI-compatible endpoint a server may call for a request, and with which key.

A server (``rag serve``) is configured by whoever starts it: the endpoint's base
URL, model and API key come from its command line or environment. People using
the server (the chat UI's settings, the ``/ask`` API) may type another base URL.
Sending the server's key, or the retrieved passages, to an address a user typed
would leak the key and let anyone make the server call internal addresses, so:

* the server's key only ever goes to the server's own endpoint;
* a user-typed endpoint is refused, unless the operator allowed user endpoints
  (``rag serve --allow-user-endpoints``); then it is called without the server's
  key (with the key the user typed, if any).

``EndpointPolicy.settings_for`` turns a request's endpoint fields into the
settings for ``make_generator("openai", **settings)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rag.answering.generators.openai_compat import DEFAULT_BASE_URL, DEFAULT_MODEL
from rag.config import env as _env
from rag.errors import RagError

__all__ = ["EndpointNotAllowedError", "EndpointPolicy", "normalize_base_url"]


class EndpointNotAllowedError(RagError):
    """A request asked for an endpoint this server is not allowed to call."""


def normalize_base_url(url: str) -> str:
    """``url`` without surrounding blanks and trailing slashes (how it is compared)."""
    return (url or "").strip().rstrip("/")


def _check_user_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointNotAllowedError(
            f"不是有效的接口地址 (not a valid endpoint URL): {url[:200]!r}; "
            "expected e.g. http://127.0.0.1:8000/v1")
    if parts.username or parts.password:
        raise EndpointNotAllowedError("接口地址中不能包含用户名或密码 (no credentials in the URL)")
    return url


@dataclass(frozen=True)
class EndpointPolicy:
    """The server's own endpoint (``base_url``, ``model``, ``api_key``) and whether users may
    name other endpoints (``allow_user_endpoints``). Build it with ``from_operator``."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    allow_user_endpoints: bool = False

    @classmethod
    def from_operator(cls, base_url: str | None = None, model: str | None = None,
                      api_key: str | None = None, allow_user_endpoints: bool = False) -> "EndpointPolicy":
        """The policy for settings given by the person starting the server: arguments first,
        then ``RAG_OPENAI_BASE_URL``/``OPENAI_BASE_URL``, ``RAG_OPENAI_MODEL``/``OPENAI_MODEL``,
        ``RAG_OPENAI_API_KEY``/``OPENAI_API_KEY``, then the generator's defaults."""
        url = normalize_base_url(base_url or _env("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        return cls(base_url=url,
                   model=model or _env("RAG_OPENAI_MODEL", "OPENAI_MODEL") or DEFAULT_MODEL,
                   api_key=api_key or _env("RAG_OPENAI_API_KEY", "OPENAI_API_KEY"),
                   allow_user_endpoints=bool(allow_user_endpoints))

    def is_own(self, base_url: str | None) -> bool:
        """Whether ``base_url`` (empty: the default) is the server's own endpoint."""
        url = normalize_base_url(base_url or "")
        return not url or url == self.base_url

    def settings_for(self, base_url: str | None = None, model: str | None = None,
                     api_key: str | None = None) -> dict[str, str]:
        """Settings for the ``openai`` generator serving a request that named ``base_url``,
        ``model`` and ``api_key`` (each may be empty).

        The server's own endpoint gets the server's key (a key the user typed is
        ignored there) and the server's model (a user may pick another one only where
        user endpoints are allowed: on a paid account, the model is the cost). Any
        other URL raises ``EndpointNotAllowedError`` unless user endpoints are
        allowed; then it gets the user's key or none, never the server's
        (``api_key=""`` tells the generator not to read the environment).
        """
        model = ((model or "").strip() if self.allow_user_endpoints else "") or self.model
        if self.is_own(base_url):
            return {"base_url": self.base_url, "model": model, "api_key": self.api_key or ""}
        url = normalize_base_url(base_url or "")
        if not self.allow_user_endpoints:
            raise EndpointNotAllowedError(
                "此服务器只使用启动时配置的接口，不接受其他 Base URL "
                f"(this server only calls its configured endpoint {self.base_url}; "
                "other endpoints are disabled: the operator can allow them with "
                "`rag serve --allow-user-endpoints`)")
        return {"base_url": _check_user_url(url), "model": model, "api_key": (api_key or "").strip()}
