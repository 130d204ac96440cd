"""``rag ask "问题"``: one answer with numbered sources; ``rag chat``: a terminal chat."""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from rag.commands.common import TerminalWriter, add_index_argument, terminal_json
from rag.vocabulary import GENERATORS, MODES


def _add_answer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generator", "-g", choices=GENERATORS, default="extractive",
                        help="how to answer: extractive (default, quotes sentences, no LLM), "
                             "transformers (local model dir or .gguf, see --model), openai "
                             "(OpenAI-compatible endpoint, see --base-url), llamacpp, local")
    parser.add_argument("--model", metavar="PATH_OR_NAME", default=None,
                        help="model for the generator: a directory or .gguf file (transformers, "
                             "llamacpp) or a model name (openai; default $RAG_OPENAI_MODEL)")
    parser.add_argument("--base-url", metavar="URL", default=None,
                        help="OpenAI-compatible endpoint (default $RAG_OPENAI_BASE_URL or Ollama's)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help="longest generated answer in tokens (LLM generators)")
    parser.add_argument("--k", type=int, default=5, help="passages to retrieve (default 5)")
    parser.add_argument("--mode", choices=MODES, default="hybrid",
                        help="retrieval mode (default hybrid)")
    add_index_argument(parser)


def register(subparsers) -> None:
    ask = subparsers.add_parser("ask", help="answer one question with cited sources",
                                description="Answer a question from the indexed documents, "
                                            "with numbered sources (document, headings, quote).")
    ask.add_argument("question", help="the question, e.g. \"甘肃省工会开展了多少项劳动竞赛？\"")
    _add_answer_arguments(ask)
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.set_defaults(func=run)

    chat = subparsers.add_parser("chat", help="interactive chat in the terminal (with history)",
                                 description="Ask questions one per line; follow-ups such as "
                                             "“那江西呢？” use the previous turn. /exit or Ctrl-D ends.")
    _add_answer_arguments(chat)
    chat.set_defaults(func=run_chat)


def _assistant(args):
    from rag import Assistant, Retriever
    from rag.config import index_dir

    retriever = Retriever.load(index_dir(args.index))
    settings = {"model": args.model, "base_url": args.base_url, "max_new_tokens": args.max_new_tokens}
    if args.generator == "openai":
        settings.pop("max_new_tokens")
        settings["max_tokens"] = args.max_new_tokens
    return Assistant(retriever, generator=args.generator, k=args.k, mode=args.mode,
                     **{k: v for k, v in settings.items() if v is not None})


def format_answer(answer, out: TextIO) -> None:
    """Print the answer, its notices and its numbered sources (without terminal control
    sequences: the text comes from documents)."""
    out = TerminalWriter(out)
    for notice in answer.notices:
        print(f"注意：{notice}", file=out)
    print(answer.text, file=out)
    if answer.unsupported:
        print("\n未经资料证实的句子：", file=out)
        for sentence in answer.unsupported:
            print(f"  ? {sentence}", file=out)
    if answer.citations:
        print("\n来源：", file=out)
        for c in answer.citations:
            heading = " > ".join(c.heading_path) or "（无标题）"
            where = f"第{c.page}页 · p. {c.page}, " if c.page is not None else ""
            print(f"[{c.n}] {c.doc} · {heading} ({where}字符 {c.start}–{c.end})", file=out)
            print(f"    “{c.quote}”", file=out)
    elif answer.abstained and answer.hits:
        print("\n可能相关的段落：", file=out)
        for i, hit in enumerate(answer.hits[:3], start=1):
            heading = " > ".join(hit.heading_path) or "（无标题）"
            snippet = hit.text[:80] + ("…" if len(hit.text) > 80 else "")
            page = f" · 第{hit.page}页" if hit.page is not None else ""
            print(f"  - {hit.doc}{page} · {heading}\n    {snippet}", file=out)


def run(args) -> int:
    from rag.answering.assistant import check_k, validate_question

    validate_question(args.question)  # before loading the index or a model
    check_k(args.k)
    assistant = _assistant(args)
    answer = assistant.ask(args.question)
    if args.json:
        print(terminal_json(answer.to_dict()))
    else:
        format_answer(answer, sys.stdout)
    return 0


def run_chat(args, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Read questions line by line; keep the history for follow-ups."""
    from rag.errors import RagError

    from rag.answering.assistant import check_k

    stdin = stdin or sys.stdin
    out = TerminalWriter(out or sys.stdout)
    check_k(args.k)
    assistant = _assistant(args)
    history: list[dict] = []
    interactive = stdin.isatty()
    print("输入问题，/exit 退出。 (type a question; /exit to quit)", file=out)
    while True:
        if interactive:
            print("> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:  # EOF
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/exit", "/quit", "exit", "quit"):
            break
        try:
            answer = None
            for item in assistant.stream(question, history):
                if isinstance(item, str):
                    continue  # print the checked final text, not the raw stream
                answer = item
        except RagError as exc:
            print(f"错误：{exc}", file=out)
            continue
        format_answer(answer, out)
        print(file=out, flush=True)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
    return 0
