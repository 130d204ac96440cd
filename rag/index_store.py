"""The index directory: what is in it, how it is written atomically and checked on load.

Layout (``FORMAT_VERSION`` 4)::

    manifest.json        format version, settings (rag.index.settings), the store, per-source and
                         per-file sha256, counts, generation and write id, and ``manifest_sha256``:
                         a checksum over all the rest
    sources/<sha>.txt    the text of each source document (decoded, or extracted from PDF/Word/HTML/scans);
                         chunk offsets and citations point into it
    originals/<sha><ext> a copy of each original file (the UI links a citation to its page in it);
                         the manifest's documents list its kind, page starts and this path
    ...                  the store's own files: for the local store chunks.jsonl, vectors, views,
                         dense.faiss and bm25/ (rag.index.stores.local); none for Milvus, whose
                         collection the manifest names (rag.index.stores.milvus)

Writes go to a temporary sibling directory which replaces the target only once
it is complete, so a crash mid-build leaves the previous index as it was; one
writer at a time (``IndexLock``). The replaced index is set aside as
``.<name>.old-*`` and renamed to ``.<name>.trash-*`` before it is deleted, so a
crash while deleting never leaves a half-deleted directory that looks like a
backup. When a crash hit between the two renames, the next reader restores the
newest backup that passes every check, and leftovers are removed once a good
index is in place. Loading verifies the manifest's own checksum, that it lists
every file in the directory, and every file's checksum before anything is served
(the store then checks its counts).

Fault injection for tests: ``RAG_FAULT=<step>`` makes a writer exit on the spot
(like kill -9) at ``<step>``, ``RAG_FAULT=<step>:stop`` stops it there (SIGSTOP).
Steps: ``locked`` (index lock taken), ``written`` (new index complete, not yet in
place), ``swap`` (between the two renames), ``discard`` (old index renamed to
trash, not yet deleted).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rag.errors import CorruptIndexError, IndexError_, IndexMismatchError, RagError

FORMAT_NAME = "rag-zh-index"
#: 2: sentence views (views.npy, view_offsets.npy) next to the chunk vectors.
#: 3: views may be late-chunked (manifest dense.view_method "late" or "separate").
#: 4: the manifest has a checksum of its own (``manifest_sha256``) and a generation.
FORMAT_VERSION = 4

MANIFEST = "manifest.json"
SOURCES_DIR = "sources"
ORIGINALS_DIR = "originals"
#: Longest suffix kept on a stored original (``.pdf``, ``.docx``...); anything else is dropped.
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,8}$")


#: The manifest field holding the sha256 of the rest of the manifest (see ``manifest_checksum``).
MANIFEST_CHECKSUM = "manifest_sha256"
#: How long a reader that must restore a backup waits for a writer to finish.
RECOVERY_WAIT = 60.0
#: See the module docstring.
FAULT_ENV = "RAG_FAULT"
FAULT_EXIT = 86


class IndexWriteError(RagError):
    """The index could not be written (disk full, no permission...); the previous one is intact."""


class IndexNotFoundError(IndexError_):
    """There is no index at the given directory."""


class IndexBusyError(RagError):
    """Another process (or thread) is writing the same index directory."""


class IndexLock:
    """Exclusive right to write the index at ``target``, across processes and threads.

    An ``flock`` on ``.<name>.lock`` beside the index (the index directory itself is
    replaced by renames, so it cannot hold the lock). The kernel releases the lock
    when its holder dies, so a crashed writer never blocks the next one; the file
    holds the writer's pid only to name it in the message. Waits up to ``wait``
    seconds, then raises ``IndexBusyError``. Use as a context manager.
    """

    def __init__(self, target: str | Path, wait: float = 0.0):
        self.target = Path(target)
        self.path = self.target.with_name(f".{self.target.name}.lock")
        self.wait = float(wait)
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        import fcntl

        self.target.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                if time.monotonic() >= deadline:
                    who = f"pid {holder}" if holder else "another process"
                    raise IndexBusyError(
                        f"the index at {self.target} is being built by {who}; wait until it has "
                        "finished, or write another index (--index)") from None
                time.sleep(0.05)
                continue
            # The previous holder removes the file when done: a lock taken on a file
            # that is no longer at self.path locks nothing, so take the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:  # only to name the holder in others' messages: a full disk must not stop us
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:
                pass
            self._fd = fd
            fault_point("locked")
            return self

    def __exit__(self, *exc) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(fd)


def fault_point(step: str) -> None:
    """Exit or stop here when ``RAG_FAULT`` names this step (see the module docstring)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, action = wanted.partition(":")
    if name != step:
        return
    if action == "stop":
        import signal

        os.kill(os.getpid(), signal.SIGSTOP)
    else:
        os._exit(FAULT_EXIT)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


@dataclass
class SourceRecord:
    """One indexed source document."""

    doc: str          # the name chunks refer to (Chunk.doc)
    path: str         # where it was read from
    sha256: str       # of the source file's bytes: tells whether the file changed
    text: str = field(repr=False, default="")  # decoded text; offsets of chunks point into it
    chars: int = 0
    added: str | None = None  # when this version entered the index (ISO 8601); None: not recorded
    kind: str = "txt"                # format of the original (txt, md, pdf, docx, html, image, ...)
    page_starts: list[int] = field(default_factory=list, repr=False)  # text offset of each page
    #: Where the original's bytes are copied from when the index is written (None: not kept).
    original_from: Path | None = field(default=None, repr=False, compare=False)
    original: str = ""               # the stored copy, relative to the index root ("" = none)

    def meta(self) -> dict[str, Any]:
        meta = {"doc": self.doc, "path": self.path, "sha256": self.sha256,
                "chars": self.chars or len(self.text), "file": self.text_file, "kind": self.kind}
        if self.added:
            meta["added"] = self.added
        if self.page_starts:
            meta["page_starts"] = list(self.page_starts)
        if self.original:
            meta["original"] = self.original
        return meta

    @property
    def text_file(self) -> str:
        return f"{SOURCES_DIR}/{self.sha256}.txt"

    def original_file(self, suffix: str) -> str:
        """Where the copy of the original goes: ``originals/<sha256><suffix>``."""
        suffix = suffix.lower()
        return f"{ORIGINALS_DIR}/{self.sha256}{suffix if _SUFFIX_RE.match(suffix) else ''}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: From this many files on, a new index is flushed to disk by one ``syncfs(2)`` of its
#: filesystem instead of one fsync per file. Every fsync on ext4 commits the journal and
#: flushes the disk's cache (~11 ms each here): a one-document-per-line build of news-63k
#: has 63,668 source texts, and fsyncing them one by one took 4-5 minutes (3,000 small
#: files: 34.6 s against 0.11 s for one syncfs, same folder, same minutes). syncfs writes
#: back every dirty file of the filesystem, so it makes at least the same files durable;
#: below this count the per-file fsyncs cost little and do not wait for other programs'
#: writes on the same disk.
SYNCFS_MIN_FILES = 64


def _fsync_tree(root: Path, fs_fd: int | None = None) -> None:
    """Make every file under ``root`` durable: ``syncfs`` on the filesystem that ``fs_fd``
    (a descriptor opened before the files were written) is on when there are
    ``SYNCFS_MIN_FILES`` or more and the kernel reports writeback errors to it, else an
    fsync per file. A write error raises OSError either way."""
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    if fs_fd is not None and len(files) >= SYNCFS_MIN_FILES and syncfs(fs_fd):
        return
    for path in files:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def syncfs(fd: int) -> bool:
    """``syncfs(2)`` on the filesystem holding ``fd``: True once done, False where it is not
    available or cannot be trusted (not Linux, or a kernel before 5.8, whose syncfs did not
    report writeback errors): then the caller fsyncs file by file. OSError when it fails."""
    libc_syncfs = _libc_syncfs()
    if libc_syncfs is None:
        return False
    if libc_syncfs(fd) != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return True


@functools.lru_cache(maxsize=1)
def _libc_syncfs():
    """libc's ``syncfs`` where it reports writeback errors (Linux 5.8+), else None."""
    try:
        import ctypes
        import platform

        major, minor = (int(x) for x in re.findall(r"\d+", platform.release())[:2])
        if platform.system() != "Linux" or (major, minor) < (5, 8):
            return None
        function = ctypes.CDLL(None, use_errno=True).syncfs
        function.argtypes = [ctypes.c_int]
        return function
    except (OSError, AttributeError, ValueError):
        return None


# --------------------------------------------------------------------------- writing

def write_index(
    index_dir: str | Path,
    *,
    store,
    sources: list[SourceRecord],
    manifest_extra: dict[str, Any],
    locked: bool = False,
    staged_sources: Path | None = None,
) -> dict[str, Any]:
    """Write a complete index to ``index_dir`` atomically; return its manifest.

    ``store`` (see rag.index.stores) writes its own files, if it keeps any here, and
    names itself in the manifest's ``store`` section; ``manifest_extra`` carries the
    model and settings sections (``IndexSettings.to_manifest``). The previous index
    at ``index_dir``, if any, stays untouched until the new one is fully written and
    flushed, and is then replaced by two renames.
    ``locked``: the caller holds ``IndexLock(index_dir)``; otherwise it is taken
    here (``IndexBusyError`` when another writer has it). ``staged_sources``: a folder
    (on the same filesystem) already holding the sources' texts as ``<sha256>.txt``,
    moved in as the index's ``sources/`` (a streaming build writes them as it reads;
    its records carry no text). The manifest's
    ``generation`` is one more than the replaced index's, and ``write_id`` is new
    for every write, so a process holding an older copy can tell (``manifest_identity``).
    """
    target = Path(index_dir)
    if not locked:
        with IndexLock(target):
            return write_index(target, store=store, sources=sources, manifest_extra=manifest_extra, locked=True,
                               staged_sources=staged_sources)
    _check_replaceable(target)
    manifest_extra = {**manifest_extra, "generation": _generation_on_disk(target) + 1,
                      "write_id": uuid.uuid4().hex}
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        _restore_backup(target, locked=True)  # a crash between two renames: put the index back first
    _remove_leftovers(target)
    tmp = fs_fd = None
    try:
        # opened before anything is written: syncfs reports writeback errors from then on
        fs_fd = os.open(target.parent, os.O_RDONLY)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))
        manifest = _write_components(tmp, store=store, sources=sources, manifest_extra=manifest_extra,
                                     staged_sources=staged_sources)
        _fsync_tree(tmp, fs_fd)
        fault_point("written")
        _swap_into_place(tmp, target)
    except OSError as exc:  # disk full, quota, permissions: say so, keep the previous index
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise IndexWriteError(f"cannot write the index at {target}: {_os_reason(exc)}; "
                              "the previous index, if any, is unchanged") from exc
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fs_fd is not None:
            os.close(fs_fd)
    return manifest


@contextlib.contextmanager
def writing_into(target: str | Path) -> Iterator[None]:
    """Inside this block an OSError (disk full, file too large, no permission) while writing
    files for the index at ``target`` becomes ``write_index``'s ``IndexWriteError``."""
    try:
        yield
    except OSError as exc:
        raise IndexWriteError(f"cannot write the index at {target}: {_os_reason(exc)}; "
                              "the previous index, if any, is unchanged") from exc


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full (no space left on device)"
    if exc.errno == errno.EFBIG:
        return "a file would exceed the file size limit (file too large)"
    return exc.strerror or str(exc)


def _write_components(root: Path, *, store, sources, manifest_extra, staged_sources: Path | None = None) -> dict:
    section = store.save(root)
    if staged_sources is not None:
        os.rename(staged_sources, root / SOURCES_DIR)
    else:
        (root / SOURCES_DIR).mkdir()
    for source in sources:
        path = root / source.text_file
        if not path.exists():
            path.write_text(source.text, encoding="utf-8")
    _copy_originals(root, sources)
    files = {
        p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(root.rglob("*")) if p.is_file()
    }
    info = store.describe()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **manifest_extra,
        "store": {**manifest_extra.get("store", {}), **section},
        "documents": [s.meta() for s in sources],
        "counts": {"documents": len(sources), "chunks": len(store), "views": int(info.get("views", 0))},
        "files": files,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest = json.loads(json.dumps(manifest, ensure_ascii=False))  # exactly what a reader will see
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    tmp_manifest = root / (MANIFEST + ".part")
    tmp_manifest.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp_manifest, root / MANIFEST)
    return manifest


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest without its ``manifest_sha256`` field, as canonical JSON
    (sorted keys, no spaces, UTF-8): an edit of any setting, count or file entry changes it."""
    body = {key: value for key, value in manifest.items() if key != MANIFEST_CHECKSUM}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_identity(manifest: dict[str, Any]) -> tuple[int, str | None]:
    """``(generation, write_id)``: differs between any two writes of an index."""
    return IndexInfo.from_manifest(manifest).identity


def _generation_on_disk(target: Path) -> int:
    manifest = peek_manifest(target)
    try:
        return manifest_identity(manifest)[0] if manifest is not None else 0
    except RagError:
        return 0


def _copy_originals(root: Path, sources: list[SourceRecord]) -> None:
    """Copy each source's original file into the index, so citations can open it at its page.

    A source whose original cannot be read any more (a deleted upload) keeps no copy
    rather than failing the write: its text and citations are still complete.
    """
    for source in sources:
        source.original = ""
        origin = source.original_from
        if origin is None:
            continue
        rel = source.original_file(Path(source.path or origin).suffix)
        target = root / rel
        try:
            target.parent.mkdir(exist_ok=True)
            if not target.exists():
                shutil.copyfile(origin, target)
        except OSError:
            target.unlink(missing_ok=True)
            continue
        source.original = rel


def staging_dir(target: str | Path) -> Path:
    """A fresh folder beside ``target`` for a build to write into before ``write_index``
    (same filesystem, so its files are moved in by renames). Named like ``write_index``'s
    own temporary folders: if the build's process dies, the next writer removes it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))


def check_replaceable(target: str | Path) -> None:
    """Raise ``RagError`` now if ``write_index`` would refuse to replace ``target`` (a build
    that takes hours checks this before it starts)."""
    _check_replaceable(Path(target))


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a directory that is neither missing, empty nor an index."""
    if target.exists() and not target.is_dir():
        raise RagError(f"{target} exists and is not a directory; choose another --index")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).exists():
        raise RagError(f"{target} exists, is not empty and holds no rag index ({MANIFEST} missing); "
                       "refusing to overwrite it: choose another --index")


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, backup)
    fault_point("swap")
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    _discard(backup, target)


def _discard(directory: Path, target: Path) -> None:
    """Delete a replaced index: renamed to ``.<name>.trash-*`` first, so a crash half-way
    through the deletion never leaves something recovery could take for a backup."""
    trash = target.with_name(f".{target.name}.trash-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(directory, trash)
    except OSError:
        return  # already gone (another process tidied up)
    fault_point("discard")
    shutil.rmtree(trash, ignore_errors=True)


_TEMP_RE = re.compile(r"\.(?P<name>.+)\.building-(?P<pid>\d+)-")


def _leftovers(target: Path) -> list[Path]:
    """What crashed writes left beside ``target``: backups, trash and half-written
    build directories of processes that are gone."""
    if not target.parent.is_dir():
        return []
    found = [p for pattern in (f".{target.name}.old-*", f".{target.name}.trash-*")
             for p in target.parent.glob(pattern)]
    for entry in target.parent.glob(f".{target.name}.building-*"):
        match = _TEMP_RE.match(entry.name)
        if match and match["name"] == target.name:
            pid = int(match["pid"])
            if pid != os.getpid() and not _pid_alive(pid):
                found.append(entry)
    return found


def _remove_leftovers(target: Path) -> None:
    """Delete ``_leftovers`` once a good index is in place (the caller holds the lock)."""
    for entry in _leftovers(target):
        if entry.name.startswith(f".{target.name}.old-"):
            _discard(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _tidy(target: Path) -> None:
    """Remove leftovers beside a loadable index, unless a writer is busy (it tidies itself)."""
    if not _leftovers(target):
        return
    try:
        with IndexLock(target):
            if (target / MANIFEST).is_file():
                _remove_leftovers(target)
    except (IndexBusyError, OSError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _restore_backup(target: Path, locked: bool = False) -> bool:
    """If a crash hit between the two renames of a swap, put the previous index back.

    Only a backup that passes every check (manifest checksum, complete file list,
    file checksums) is a candidate; of those, the newest generation wins. Waits for
    a writer that holds the lock (it may be between its two renames right now).
    """
    if not locked:
        if not list(target.parent.glob(f".{target.name}.old-*")):
            return False
        try:
            with IndexLock(target, wait=RECOVERY_WAIT):
                return _restore_backup(target, locked=True)
        except OSError:  # a read-only folder: nothing can be restored here
            return False
    if target.exists():
        return False
    candidates = []
    for backup in target.parent.glob(f".{target.name}.old-*"):
        try:
            manifest = _read_manifest_file(backup)
            verify_files(backup, manifest)
        except (IndexError_, OSError):
            continue  # incomplete or damaged: never served
        candidates.append((manifest_identity(manifest)[0], backup.stat().st_mtime, backup))
    if not candidates:
        return False
    os.rename(max(candidates)[2], target)
    _remove_leftovers(target)
    return True


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class IndexInfo:
    """What a manifest records about the index as written, besides its settings
    (those are ``rag.index.settings.IndexSettings.from_manifest``): format version, when
    and by which write it was made, counts, the dense index kind the build made (``auto``
    resolved), and the store's own section (e.g. Milvus's collection and generations).

    With ``IndexSettings.from_manifest`` this is the one place a manifest's fields are read.
    """

    format_version: int | None = None
    created: str | None = None
    generation: int = 0
    write_id: str | None = None
    documents: int = 0
    chunks: int | None = None
    views: int = 0
    dense_built: str = "flat"
    store_section: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[int, str | None]:
        """``(generation, write_id)``: differs between any two writes of an index."""
        return self.generation, self.write_id

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "IndexInfo":
        counts = manifest.get("counts") or {}
        dense = manifest.get("dense") or {}
        store = manifest.get("store")
        chunks = counts.get("chunks")
        try:
            return cls(format_version=manifest.get("format_version"), created=manifest.get("created"),
                       generation=int(manifest.get("generation") or 0), write_id=manifest.get("write_id"),
                       documents=int(counts.get("documents") or 0),
                       chunks=None if chunks is None else int(chunks), views=int(counts.get("views") or 0),
                       dense_built=str(dense.get("kind") or "flat"),
                       store_section=dict(store) if isinstance(store, dict) else {})
        except (TypeError, ValueError) as exc:
            raise CorruptIndexError(f"the index manifest has a malformed count or generation ({exc}); "
                                    "rebuild the index with `rag index`") from exc


@dataclass
class StoredIndex:
    """The verified index directory: its manifest and document records (the store's
    own data is read by the store)."""

    root: Path
    manifest: dict[str, Any]
    sources: dict[str, SourceRecord]

    @property
    def info(self) -> IndexInfo:
        return IndexInfo.from_manifest(self.manifest)


def read_manifest(index_dir: str | Path, locked: bool = False) -> dict[str, Any]:
    """The manifest of the index at ``index_dir`` (format version and its own checksum
    checked), after restoring a backup if a crash left no index in place. ``locked``:
    the caller holds ``IndexLock(index_dir)``."""
    root = Path(index_dir)
    if not root.exists():
        _restore_backup(root, locked=locked)
    if not root.exists():
        raise IndexNotFoundError(f"no index at {root}: run `rag index PATH --index {root}` first")
    manifest = _read_manifest_file(root)
    if locked:
        _remove_leftovers(root)
    else:
        _tidy(root)
    return manifest


def peek_manifest(index_dir: str | Path) -> dict[str, Any] | None:
    """The manifest at ``index_dir`` as written, without any check (an older format, a
    damaged index): None when there is none or it is not JSON. For callers that only
    want to know what an index was built with, e.g. to rebuild it the same way."""
    try:
        return _parse_manifest_file(Path(index_dir))
    except RagError:
        return None


def _parse_manifest_file(root: Path) -> dict[str, Any]:
    """The one function that reads ``manifest.json``: parsed, not yet checked."""
    path = root / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"{root} holds no index ({MANIFEST} missing): "
                                 f"run `rag index PATH --index {root}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(f"{path} is unreadable ({exc}); rebuild the index with `rag index`") from exc
    if not isinstance(manifest, dict):
        raise CorruptIndexError(f"{path} is not a rag index manifest; rebuild the index with `rag index`")
    return manifest


def _read_manifest_file(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    manifest = _parse_manifest_file(root)
    if manifest.get("format") != FORMAT_NAME:
        raise CorruptIndexError(f"{path} is not a rag index manifest; rebuild the index with `rag index`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {root} has format version {version}, but this program reads format version "
            f"{FORMAT_VERSION}; rebuild it with `rag index PATH --index {root}`"
        )
    if manifest.get(MANIFEST_CHECKSUM) != manifest_checksum(manifest):
        raise CorruptIndexError(f"{path} does not match its own checksum (edited or damaged); "
                                "rebuild the index with `rag index`")
    return manifest


def check_model(settings, model: str | None = None, dim: int | None = None, where: str = "the index") -> None:
    """Raise ``IndexMismatchError`` if ``model``/``dim`` differ from what the index was
    built with (``settings``: its ``rag.index.settings.IndexSettings``)."""
    built_model, built_dim = settings.model, settings.dim
    if model is not None and model != built_model:
        raise IndexMismatchError(
            f"{where} was built with embedding model {built_model!r} "
            f"but the model in use is {model!r}; rebuild it with `rag index PATH --model {model}` "
            f"or use model {built_model!r}"
        )
    if dim is not None and (built_dim is None or int(dim) != int(built_dim)):
        raise IndexMismatchError(
            f"{where} holds vectors of dimension {built_dim} (model {built_model!r}) "
            f"but the model in use makes vectors of dimension {dim}; rebuild the index with `rag index`"
        )


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Check that the manifest lists every file in the index directory and each document's
    text, and that each listed file exists with its size and sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CorruptIndexError(f"{root / MANIFEST} lists no files; rebuild the index with `rag index`")
    unlisted = sorted(expected_files(root, manifest) - set(files))
    if unlisted:
        raise CorruptIndexError(
            f"{root / MANIFEST} does not list {', '.join(unlisted)} (so no checksum covers it); "
            "rebuild the index with `rag index`")
    for rel, meta in files.items():
        path = root / rel
        if not path.is_file():
            raise CorruptIndexError(f"index file {path} is missing; rebuild the index with `rag index`")
        size = path.stat().st_size
        if size != meta.get("bytes"):
            raise CorruptIndexError(
                f"index file {path} has {size} bytes, the manifest says {meta.get('bytes')} "
                "(truncated or overwritten); rebuild the index with `rag index`")
        if sha256_file(path) != meta.get("sha256"):
            raise CorruptIndexError(
                f"index file {path} does not match its checksum (corrupted); rebuild the index with `rag index`")


def expected_files(root: Path, manifest: dict[str, Any]) -> set[str]:
    """Files (relative to ``root``) the manifest must list and checksum: every file in
    the directory but the manifest, and each document's text and original."""
    expected = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    for meta in manifest.get("documents") or []:
        if isinstance(meta, dict):
            expected |= {meta[key] for key in ("file", "original") if isinstance(meta.get(key), str) and meta[key]}
            if isinstance(meta.get("sha256"), str):
                expected.add(f"{SOURCES_DIR}/{meta['sha256']}.txt")
    return expected


def load_index(index_dir: str | Path) -> StoredIndex:
    """Read and verify the index directory: manifest (format version), every file's
    size and checksum, and the document records. The store reads its own files
    (see rag.index.stores.open_store) and checks its counts against the manifest."""
    root = Path(index_dir)
    manifest = read_manifest(root)
    verify_files(root, manifest)
    try:
        sources = {
            meta["doc"]: SourceRecord(doc=meta["doc"], path=meta.get("path", ""), sha256=meta["sha256"],
                                      chars=int(meta.get("chars", 0)), added=meta.get("added"),
                                      kind=meta.get("kind", "txt"),
                                      page_starts=[int(x) for x in meta.get("page_starts", [])],
                                      original=_safe_original(meta.get("original", "")))
            for meta in manifest.get("documents", [])
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptIndexError(f"{root / MANIFEST} lists a document without its name or checksum ({exc}); "
                                "rebuild the index with `rag index`") from exc
    return StoredIndex(root=root, manifest=manifest, sources=sources)


def read_source_text(root: Path, record: SourceRecord) -> str:
    """The stored decoded text of one source document."""
    path = root / record.text_file
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorruptIndexError(f"source text {path} of {record.doc} is missing; rebuild the index") from exc


def _safe_original(rel: str) -> str:
    """The manifest's path of a stored original, if it is one this module could have written."""
    if not isinstance(rel, str) or not re.fullmatch(rf"{ORIGINALS_DIR}/[0-9a-f]{{64}}(\.[a-z0-9]{{1,8}})?", rel):
        return ""
    return rel


def original_path(root: Path, record: SourceRecord) -> Path | None:
    """The stored copy of ``record``'s original file inside the index, or None when there is none."""
    if not record.original:
        return None
    path = root / record.original
    return path if path.is_file() else None
