"""Serving ``rag`` over HTTP: one process, one port for the chat UI and the APIs.

* ``knowledge_bases``  the indexes served (``--index NAME=DIR``), each with its
  uploads folder, answering backend and document management;
* ``concurrency``      admission gates shared by the UI and the API;
* ``auth``             API keys, UI logins and the refusal to listen unprotected;
* ``openai_compat``    the OpenAI chat-completions protocol (messages, SSE chunks);
* ``api``              the FastAPI application: ``/v1`` (OpenAI-compatible) and
  ``/api`` (REST, documented at ``/docs``), with the Gradio UI mounted at ``/``.

Importing ``rag.server`` is light; FastAPI is imported by ``rag.server.api`` only.
"""
