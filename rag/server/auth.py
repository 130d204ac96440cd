"""Who may use a `rag serve`: API keys, UI logins, and the refusal to listen unprotected.

* **API keys** (``--api-key``, repeatable, or ``RAG_API_KEY``, several separated by
  commas or whitespace): every ``/v1`` and ``/api`` call must send
  ``Authorization: Bearer <key>``.
* **UI logins** (``--auth USER:PASSWORD``, repeatable, or ``RAG_UI_AUTH``, several
  separated by commas): the chat UI asks for one (Gradio's login page).

Either kind opens both doors, so one is enough: the UI accepts any user name with
an API key as the password, and the API accepts a login as the bearer token
``USER:PASSWORD`` (so clients that only let you set an "API key" still work).
Secrets are compared with ``hmac.compare_digest`` against every configured
secret, so neither the answer nor its timing says how much of a guess was right.

On loopback (127.0.0.0/8, ::1, localhost) a server without credentials is open,
as before. On any other address ``check_listen`` refuses to start without
credentials unless ``--insecure-no-auth`` says so explicitly.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Iterable

from rag.errors import RagError

#: Shortest API key or password accepted: a shorter one is guessable over the network.
MIN_SECRET_CHARS = 8

API_KEY_ENV = "RAG_API_KEY"
UI_AUTH_ENV = "RAG_UI_AUTH"


class InsecureListenError(RagError):
    """``rag serve`` was asked to listen beyond this machine without any credentials."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    A host name other than ``localhost`` counts as reachable: it may resolve to anything.
    """
    host = host.strip()
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(value: str | None, separators: str) -> list[str]:
    return [part.strip() for part in re.split(separators, value or "") if part.strip()]


def parse_login(value: str) -> tuple[str, str]:
    """``"USER:PASSWORD"`` -> ``(user, password)``, with a clear error for anything else."""
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise RagError(f"a UI login must look like USER:PASSWORD, got {value[:2]!r}… "
                       "(check --auth / $RAG_UI_AUTH)")
    if len(password) < MIN_SECRET_CHARS:
        raise RagError(f"the password of UI user {user.strip()!r} is shorter than {MIN_SECRET_CHARS} characters")
    return user.strip(), password


def _check_key(key: str) -> str:
    if len(key) < MIN_SECRET_CHARS:
        raise RagError(f"an API key must have at least {MIN_SECRET_CHARS} characters "
                       f"(got one of {len(key)}; check --api-key / ${API_KEY_ENV})")
    return key


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class AccessPolicy:
    """The credentials of one server (empty: open, which only loopback allows by default)."""

    api_keys: tuple[str, ...] = ()
    logins: tuple[tuple[str, str], ...] = ()
    insecure_no_auth: bool = False

    @classmethod
    def from_settings(cls, api_keys: Iterable[str] = (), logins: Iterable[str] = (),
                      insecure_no_auth: bool = False, environ: dict[str, str] | None = None) -> "AccessPolicy":
        """Credentials from command-line values plus ``$RAG_API_KEY`` and ``$RAG_UI_AUTH``."""
        environ = os.environ if environ is None else environ
        keys = [_check_key(k.strip()) for k in [*api_keys, *_split(environ.get(API_KEY_ENV), r"[,\s]+")]
                if k.strip()]
        pairs = [parse_login(v) for v in [*logins, *_split(environ.get(UI_AUTH_ENV), r",")]]
        return cls(tuple(dict.fromkeys(keys)), tuple(dict.fromkeys(pairs)), insecure_no_auth)

    @property
    def enabled(self) -> bool:
        """Whether any credential is required."""
        return bool(self.api_keys or self.logins)

    def check_listen(self, host: str) -> None:
        """Refuse (``InsecureListenError``) to listen on a non-loopback ``host`` unprotected."""
        if self.enabled or self.insecure_no_auth or is_loopback(host):
            return
        raise InsecureListenError(
            f"refusing to listen on {host}, which other machines can reach, without credentials: "
            f"anyone there could read the documents, ask questions and add or delete documents.\n"
            f"  set an API key:  --api-key KEY  (or ${API_KEY_ENV}=KEY; clients send "
            "'Authorization: Bearer KEY', the UI accepts it as the password)\n"
            f"  or a UI login:   --auth USER:PASSWORD  (or ${UI_AUTH_ENV}=USER:PASSWORD)\n"
            "  or, on a network you trust completely: --insecure-no-auth\n"
            "(listening on 127.0.0.1, the default, needs none of these)")

    def accepts_token(self, token: str | None) -> bool:
        """Whether a bearer ``token`` is an API key or a ``USER:PASSWORD`` login.

        Every configured secret is compared (no early exit), each in constant time.
        """
        if not self.enabled:
            return True
        if not token:
            return False
        ok = False
        for key in self.api_keys:
            ok |= _equal(token, key)
        for user, password in self.logins:
            ok |= _equal(token, f"{user}:{password}")
        return ok

    def accepts_authorization(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value carries an accepted bearer token."""
        if not self.enabled:
            return True
        scheme, _, token = (header or "").strip().partition(" ")
        return scheme.lower() == "bearer" and self.accepts_token(token.strip())

    def accepts_login(self, username: str, password: str) -> bool:
        """The UI's login check (Gradio ``auth``): a configured login, or any user name with an API key."""
        username, password = username or "", password or ""
        ok = False
        for user, secret in self.logins:
            ok |= _equal(username, user) & _equal(password, secret)
        for key in self.api_keys:
            ok |= _equal(password, key)
        return ok

    def describe(self) -> str:
        """One line for the startup banner (never the secrets themselves)."""
        if not self.enabled:
            return "no credentials: open to anyone who can reach the address"
        parts = []
        if self.api_keys:
            parts.append(f"{len(self.api_keys)} API key(s)")
        if self.logins:
            parts.append(f"UI login(s) for {', '.join(user for user, _ in self.logins)}")
        return "access needs " + " or ".join(parts)
