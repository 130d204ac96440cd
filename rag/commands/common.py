"""Arguments and terminal output shared by several subcommands."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any, TextIO

from rag import config

#: Terminal control sequences: CSI (``ESC [ … final``), the string controls OSC, DCS,
#: SOS, PM and APC up to their terminator (BEL or ST), other ``ESC x`` sequences,
#: and the 8-bit C1 forms of all of these.
_ESCAPE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
#: Other control characters (tab and newline stay; a carriage return could overwrite a line).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1_RE = re.compile(r"[\x7f-\x9f]")


def terminal_safe(text: Any) -> str:
    """``text`` without terminal escape sequences or control characters.

    Documents are untrusted: an ``ESC ] … BEL`` in a passage would otherwise retitle
    the terminal, rewrite the screen or worse when ``rag ask``/``search``/``chat``
    print it.
    """
    return _CONTROL_RE.sub("", _ESCAPE_RE.sub("", str(text)))


def terminal_json(data: Any) -> str:
    """``json.dumps`` for a terminal: readable Chinese, but no raw C1 or DEL characters
    (JSON escapes the C0 ones itself; these are valid only inside strings, so escaping
    them keeps the same JSON value)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return _C1_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class TerminalWriter:
    """A text stream that passes everything through ``terminal_safe`` on its way out."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(terminal_safe(text))

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()


def add_index_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        metavar="DIR",
        default=None,
        help=f"index directory (default: $RAG_INDEX or {config.DEFAULT_INDEX_DIR})",
    )


def prepare_judge(engine: str | None) -> None:
    """Export the sentence judge for ONNX Runtime once, when questions on an index of ``engine`` run without
    torch, so the first question does not wait for it (``rag.answering.judge_onnx``; `rag index` after a build,
    `rag serve` before it listens). A failure is a note, not an error: answering goes on without the judge."""
    from embeddings.onnx_engine import ENGINE as ONNX_ENGINE
    from rag.answering import judge

    if engine != ONNX_ENGINE or not judge.enabled():
        return
    from embeddings.materialize import model_dir
    from rag.answering import judge_onnx

    try:
        if judge_onnx.is_exported(judge_onnx.exported_dir(model_dir())):
            return
        print("  exporting the sentence judge for ONNX Runtime (once per machine, under a minute) ...",
              flush=True)
        started = time.perf_counter()
        folder = judge_onnx.ensure_exported()
    except judge.JudgeError as exc:
        print(f"note: the sentence judge is not ready ({exc}); answers go on without it", file=sys.stderr)
        return
    print(f"  sentence judge exported in {time.perf_counter() - started:.0f} s to {folder}")
