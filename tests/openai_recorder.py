"""A real OpenAI-compatible chat endpoint on 127.0.0.1 that records every request.

(No tests here.) ``recording_endpoint()`` starts one in a thread; ``.requests``
lists each call's path, headers and JSON body, so a test can see exactly which
Authorization header, and which passages, reached which address.
"""
from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class RecordingEndpoint:
    reply: str
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str | None]:
        """The Authorization header of each request (None where there was none)."""
        return [r.headers.get("authorization") for r in self.requests]


@contextlib.contextmanager
def recording_endpoint(reply: str = "热线于2023年12月29日全面建成运行 [1]。") -> Iterator[RecordingEndpoint]:
    """Serve ``/v1/chat/completions`` (streamed ``reply``) and ``/v1/models`` until the block ends."""
    state = RecordingEndpoint(reply=reply)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _record(self, body: dict) -> None:
            state.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))

        def do_GET(self):
            self._record({})
            body = json.dumps({"object": "list", "data": [{"id": "recorder", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"raw": raw.decode("utf-8", "replace")}
            self._record(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i in range(0, len(state.reply), 4):
                event = {"choices": [{"index": 0, "delta": {"content": state.reply[i:i + 4]}}]}
                self.wfile.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
