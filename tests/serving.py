"""Starting the product's servers in tests, the way a user or operator does.

`rag serve` runs as a real child process on a free loopback port; the in-process
Gradio app is launched on one as well. One place for the start/wait/stop dance so
every server test waits and fails the same way (with the server's log).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """The test process's environment, offline, without credentials a developer may have set."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("RAG_API_KEY", "RAG_UI_AUTH"):
        env.pop(name, None)
    env.update(extra)
    return env


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Wait until ``url`` gives any HTTP answer (a 401 counts: the server is up and wants a key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"rag serve did not answer at {url} within {timeout:.0f} s:\n{_log_tail(log)}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def rag_serve(args: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
              program: Sequence[str] = (sys.executable, "-m", "rag.cli"), ready_path: str = "/",
              timeout: float = 300) -> Iterator[str]:
    """Run ``rag serve ARGS --host 127.0.0.1 --port P`` until the block ends; yields its base URL.

    ``program`` is what stands for ``rag`` (e.g. a script that installs a fake model);
    ``ready_path`` is polled until it answers.
    """
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([*program, "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env or server_env(), cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + ready_path, proc, log, timeout)
        yield base
    finally:
        stop(proc)


@contextmanager
def launched_apps(retriever, **defaults) -> Iterator[Callable[..., object]]:
    """A factory ``start(**settings) -> gradio_client.Client`` for in-process chat apps on free
    ports (``build_app(retriever, k=3, local_available=False, **defaults, **settings)``); all are
    closed when the block ends."""
    from gradio_client import Client

    from ui.app import build_app, launch

    apps = []

    def start(**settings):
        app = build_app(retriever, k=3, local_available=False, **{**defaults, **settings})
        port = free_port()
        launch(app, port=port, block=False, quiet=True)
        apps.append(app)
        return Client(f"http://127.0.0.1:{port}/", verbose=False)

    try:
        yield start
    finally:
        for app in apps:
            app.close()


class SlowGenerator:
    """A stand-in LLM that streams ``chunks`` only after ``release`` is set (no sleeps)."""

    name = "slow-llm"

    def __init__(self, *chunks: str) -> None:
        self.chunks = chunks or ("热线于2023年12月29日全面建成运行 [1]。",)
        self.started = threading.Event()
        self.release = threading.Event()

    def stream(self, messages):
        self.started.set()
        if not self.release.wait(60):
            raise RuntimeError("test never released the slow generator")
        yield from self.chunks
