"""Access control of `rag serve`: which credentials open which door, and when it refuses to start."""
from __future__ import annotations

import hmac

import pytest

from rag.errors import RagError
from rag.server import auth
from rag.server.auth import AccessPolicy, InsecureListenError, is_loopback

KEY_A, KEY_B = "key-aaaaaaaaaaaa", "key-bbbbbbbbbbbb"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.1", False),
    ("myhost.example", False),
])
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_listening_beyond_loopback_needs_credentials_or_the_explicit_flag():
    with pytest.raises(InsecureListenError, match="--api-key") as refused:
        AccessPolicy().check_listen("0.0.0.0")
    assert "--auth" in str(refused.value) and "--insecure-no-auth" in str(refused.value)
    AccessPolicy().check_listen("127.0.0.1")
    AccessPolicy(api_keys=(KEY_A,)).check_listen("0.0.0.0")
    AccessPolicy(logins=(("ann", "password-1"),)).check_listen("0.0.0.0")
    AccessPolicy(insecure_no_auth=True).check_listen("0.0.0.0")


def test_credentials_come_from_flags_and_the_environment():
    policy = AccessPolicy.from_settings([KEY_A], ["ann:password-1"],
                                        environ={"RAG_API_KEY": f"{KEY_B}, {KEY_A}",
                                                 "RAG_UI_AUTH": "bob:password-2,ann:password-1"})
    assert policy.api_keys == (KEY_A, KEY_B)
    assert policy.logins == (("ann", "password-1"), ("bob", "password-2"))
    assert AccessPolicy.from_settings(environ={}).enabled is False
    with pytest.raises(RagError, match="at least 8"):
        AccessPolicy.from_settings(["short"], environ={})
    with pytest.raises(RagError, match="USER:PASSWORD"):
        AccessPolicy.from_settings(logins=["no-colon"], environ={})
    with pytest.raises(RagError, match="shorter than 8"):
        AccessPolicy.from_settings(logins=["ann:pw"], environ={})
    assert "ann" in policy.describe() and KEY_A not in policy.describe()


def test_either_kind_of_credential_opens_both_doors():
    policy = AccessPolicy(api_keys=(KEY_A,), logins=(("ann", "password-1"),))
    assert policy.accepts_authorization(f"Bearer {KEY_A}")
    assert policy.accepts_authorization(f"bearer {KEY_A}")
    assert policy.accepts_authorization("Bearer ann:password-1")
    assert not policy.accepts_authorization(KEY_A)  # no scheme
    assert not policy.accepts_authorization(f"Basic {KEY_A}")
    assert not policy.accepts_authorization("Bearer ann:password-2")
    assert not policy.accepts_authorization(None)
    assert policy.accepts_login("ann", "password-1")
    assert policy.accepts_login("anyone", KEY_A)  # an API key works as the UI password
    assert not policy.accepts_login("bob", "password-1")
    assert AccessPolicy().accepts_authorization(None)  # no credentials configured: open


def test_every_secret_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def compare_digest(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare_digest)
    policy = AccessPolicy(api_keys=(KEY_A, KEY_B), logins=(("ann", "password-1"),))
    assert policy.accepts_token(KEY_A)
    # no early exit on the first match: both keys and the login were compared
    assert len(calls) == 3 and all(isinstance(a, bytes) for a, _ in calls)
