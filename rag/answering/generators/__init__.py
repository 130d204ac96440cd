"""Answer generators and the registry that builds them by name.

``extractive`` needs no language model and is handled by the Assistant itself;
the others are chat models behind the ``Generator`` protocol.
"""
from __future__ import annotations

from importlib import import_module

from rag.answering.generators.base import Generator, GeneratorError
from rag.vocabulary import GENERATORS

__all__ = ["GENERATOR_NAMES", "Generator", "GeneratorError", "make_generator"]

#: Names accepted by ``make_generator`` (and ``rag ask --generator``).
GENERATOR_NAMES = GENERATORS


def _transformers(**settings) -> Generator:
    from rag.answering.generators.transformers_gen import TransformersGenerator

    return TransformersGenerator(**settings)


def _openai(**settings) -> Generator:
    from rag.answering.generators.openai_compat import OpenAICompatGenerator

    return OpenAICompatGenerator(**settings)


def _llamacpp(**settings) -> Generator:
    try:
        module = import_module("rag.answering.generators.llamacpp")
    except ImportError as exc:
        raise GeneratorError(
            f"the llama.cpp generator is not available ({exc}); "
            "install the optional extra: pip install -e '.[llm]'"
        ) from exc
    return module.LlamaCppGenerator(**settings)


def _local(**settings) -> Generator:
    try:
        module = import_module("rag.answering.local_model")
        factory = module.default_local_generator
    except (ImportError, AttributeError) as exc:
        raise GeneratorError(
            f"the local model is not installed ({exc}); "
            "install the optional extra: pip install -e '.[llm]'"
        ) from exc
    return factory(**settings)


_FACTORIES = {
    "transformers": _transformers,
    "openai": _openai,
    "llamacpp": _llamacpp,
    "local": _local,
}


def make_generator(name: str, **settings) -> Generator | None:
    """Build the generator called ``name``.

    Returns ``None`` for ``"extractive"`` (the Assistant answers by itself).
    Raises ``GeneratorError`` for an unknown name or a generator that cannot
    be set up (missing model, missing optional package).
    """
    key = (name or "extractive").strip().lower()
    if key == "extractive":
        return None
    factory = _FACTORIES.get(key)
    if factory is None:
        raise GeneratorError(
            f"unknown generator {name!r}; choose one of: {', '.join(GENERATOR_NAMES)}"
        )
    settings = {k: v for k, v in settings.items() if v is not None}
    return factory(**settings)
