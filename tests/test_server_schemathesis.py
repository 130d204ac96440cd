"""A bounded schemathesis run against the HTTP API's own OpenAPI schema.

The app is the one `rag serve` runs (``rag.server.api.create_app``) with an API
key, over the small corpus with the fake embedder, called in-process through
ASGI. Every operation gets up to ``MAX_EXAMPLES`` generated requests, valid and
invalid, derandomized so a run is repeatable; the checks are schemathesis's
defaults: no server errors, status codes, content types, headers and bodies as
the schema says, invalid input rejected, schema-valid input accepted, and
requests without the key refused.

schemathesis.pytest.from_fixture does not work with pytest 9 (it reads a
removed ``_nodeid``), so the app is built when the module is collected.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, settings  # noqa: E402

from conftest import SMALL_DOCS, FakeEmbedder  # noqa: E402

API_KEY = "schemathesis-test-key-0123"
MAX_EXAMPLES = 30


def make_app():
    from rag import Retriever
    from rag.server.api import ServeSettings, create_app
    from rag.server.auth import AccessPolicy
    from rag.server.backend import ChatBackend
    from rag.server.concurrency import Gates
    from rag.server.knowledge_bases import KnowledgeBase, KnowledgeBases

    root = Path(tempfile.mkdtemp(prefix="rag-schemathesis-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    (root / "docs").mkdir()
    for name, text in SMALL_DOCS.items():
        (root / "docs" / name).write_text(text, encoding="utf-8")
    retriever = Retriever.build([root / "docs"], root / "index", embedder=FakeEmbedder(), cache=None,
                                show_progress=False)
    gates = Gates()
    base = KnowledgeBase("small", retriever, uploads_dir=root / "uploads",
                         backend_factory=lambda r, u: ChatBackend(r, gates=gates, uploads_dir=u,
                                                                    generators=["extractive"]))
    return create_app(KnowledgeBases([base]), policy=AccessPolicy(api_keys=(API_KEY,)),
                      settings=ServeSettings(generators=("extractive",)))


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"})
