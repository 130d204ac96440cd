"""The `rag` command line as a whole."""


def test_every_documented_subcommand_is_registered():
    from rag.cli import build_parser

    help_text = build_parser().format_help()
    for command in ("chunks", "index", "search", "ask", "chat", "eval", "serve", "bench"):
        assert command in help_text
