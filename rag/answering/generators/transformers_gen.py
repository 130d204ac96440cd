"""A local causal language model loaded with transformers.

``model`` is a model directory (config + weights + tokenizer) or a ``.gguf``
file (transformers dequantizes GGUF on load; needs the ``gguf`` and
``accelerate`` packages from the ``llm`` extra). Replies use the tokenizer's
chat template, greedy decoding and stream token by token through
``TextIteratorStreamer``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

from rag import config
from rag.errors import GeneratorError


class TransformersGenerator:
    """Chat with a local causal LM (directory or GGUF file) on the CPU."""

    name = "transformers"

    def __init__(self, model: str | os.PathLike | None = None, max_new_tokens: int = 256,
                 threads: int | None = None, **_ignored) -> None:
        model = model or config.llm_model()
        if not model:
            raise GeneratorError(
                "the transformers generator needs a model: --model PATH (a model directory or a "
                ".gguf file) or $RAG_LLM_MODEL")
        self.path = Path(model).expanduser()
        if not self.path.exists():
            raise GeneratorError(f"model not found: {self.path}")
        self.max_new_tokens = int(max_new_tokens)
        self.threads = threads
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the tokenizer and model (done on first use)."""
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if self.threads:
                torch.set_num_threads(int(self.threads))
            if self.path.is_file():
                if self.path.suffix.lower() != ".gguf":
                    raise GeneratorError(f"not a model directory or .gguf file: {self.path}")
                kwargs = {"gguf_file": self.path.name}
                where = str(self.path.parent)
            else:
                kwargs, where = {}, str(self.path)
            self._tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kwargs)
            model.eval()
            self._model = model
        except GeneratorError:
            raise
        except ImportError as exc:
            raise GeneratorError(
                f"cannot load {self.path}: missing package ({exc}); pip install -e '.[llm]'") from exc
        except Exception as exc:  # transformers raises many kinds on bad model files
            raise GeneratorError(f"cannot load the model {self.path}: {exc}") from exc

    def _prompt_ids(self, messages: list[dict]):
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            return ids["input_ids"], ids.get("attention_mask")
        # No chat template (plain LM): a simple role-tagged transcript.
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        enc = tok(text, return_tensors="pt")
        return enc["input_ids"], enc.get("attention_mask")

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Yield the reply token by token (greedy decoding)."""
        self.load()
        from transformers import TextIteratorStreamer

        with self._lock:  # one generation at a time per model
            input_ids, attention_mask = self._prompt_ids(messages)
            streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True,
                                            timeout=600)
            kwargs = dict(input_ids=input_ids, streamer=streamer, max_new_tokens=self.max_new_tokens,
                          do_sample=False)
            if attention_mask is not None:
                kwargs["attention_mask"] = attention_mask
            if self._tokenizer.pad_token_id is None:
                kwargs["pad_token_id"] = self._tokenizer.eos_token_id
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    self._model.generate(**kwargs)
                except BaseException as exc:  # surfaced to the caller below
                    errors.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            for piece in streamer:
                if piece:
                    yield piece
            worker.join()
            if errors:
                raise GeneratorError(f"generation failed with {self.path.name}: {errors[0]}")
