"""Child-process jobs for the benchmarks (run with their own environment).

``python -m bench.worker build DOCS INDEX`` builds an index and prints one JSON line:
import time, build time, chunk counts and how many chunks were embedded vs cached.
"""
from __future__ import annotations

import json
import sys
import time


def build(docs: str, index: str) -> dict:
    t0 = time.perf_counter()
    from rag import Retriever

    t1 = time.perf_counter()
    retriever = Retriever.build([docs], index, show_progress=False)
    t2 = time.perf_counter()
    s = retriever.build_summary
    return {"import_s": t1 - t0, "build_s": t2 - t1, "chunks": s.chunks, "embedded": s.embedded,
            "cached": s.cached, "documents": s.documents, "dense_kind": s.dense_kind}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "build":
        print(json.dumps(build(argv[1], argv[2])))
        return 0
    print("usage: python -m bench.worker build DOCS INDEX", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
