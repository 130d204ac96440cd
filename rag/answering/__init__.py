"""Answering: turn retrieved passages into an answer with checked citations.

``Assistant`` (assistant.py) is the entry point; generators live in
``rag.answering.generators``.
"""
