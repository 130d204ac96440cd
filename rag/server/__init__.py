"""Serving ``rag`` over HTTP: one process, one port for the chat UI and the APIs.

* ``knowledge_bases``  the indexes served (``--index NAME=DIR``), each with its
  uploads folder, answering backend and document management;
* ``backend``          ``ChatBackend``: Assistants per settings and uploads, per
  knowledge base, shared by the UI and the API;
* ``concurrency``      admission gates (and the index worker) shared by the UI and the API;
* ``auth``             API keys, UI logins and the refusal to listen unprotected;
* ``openai_compat``    the OpenAI chat-completions protocol (messages, SSE chunks);
* ``api``              the FastAPI application: ``/v1`` (OpenAI-compatible) and
  ``/api`` (REST, documented at ``/docs``); ``rag serve`` mounts the Gradio UI at ``/``;
* ``schemas``          the request and response models (the OpenAPI schema);
* ``memory``           what a question freed, given back to the system after it.

Importing ``rag.server`` is light; FastAPI is imported by ``rag.server.api`` only.
"""
