"""The Gradio chat UI over ``rag`` (``ui.app.build_app``, ``ui.app.launch``)."""
