"""Uploaded documents: kept in a folder next to the index, always in step with it.

``rag serve`` indexes the uploads folder together with ``--docs`` whenever it
builds or rebuilds the index, so what users uploaded survives a rebuild. That
only works when the folder and the index agree, so ``UploadStore``:

* stores each upload under a safe, visible name before indexing it: no leading
  dot (a rebuild skips hidden files), no path separators or ``..``, no control
  characters, NFC-normalised, and distinct from every indexed document
  (``报告.txt`` becomes ``报告 (2).txt`` when that name is taken), so an upload
  never replaces a document it happens to share a name with;
* writes it under a hidden temporary name in the folder, flushes it to disk and
  renames it into place, then indexes it; when indexing fails the file is
  removed again;
* refuses files over ``max_bytes`` before storing anything;
* ``reconcile`` (run when the server starts) repairs what a crash can leave:
  stored uploads the index lacks are indexed, indexed uploads whose file is gone
  are written back from the index's own copy of their text, temporary files are
  removed, and files no rebuild would index are reported.

Indexing goes through ``Retriever.add`` (atomic, all or nothing), so a crash
at any moment leaves a state ``reconcile`` brings back in step.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from rag.errors import RagError

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "ReconcileReport", "StoredUpload", "UploadResult", "UploadStore",
           "UploadTooLargeError", "safe_name"]

#: Largest upload accepted by default, per file (``rag serve --max-upload-mb``).
DEFAULT_MAX_UPLOAD_MB = 50.0

#: Temporary files in the uploads folder (hidden, so no rebuild ever indexes one).
_TEMP_PREFIX = ".upload-"
_TEMP_SUFFIX = ".part"
#: Where reconcile moves stored files that cannot be indexed (hidden, kept for the operator).
REJECTED_DIR = ".rejected"

_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
#: Longest stored name in UTF-8 bytes, leaving room for " (NN)" and the temp prefix.
_MAX_NAME_BYTES = 200


class UploadTooLargeError(RagError):
    """An uploaded file is larger than the server accepts."""


@dataclass
class StoredUpload:
    """One upload as stored: ``name`` in the folder and the index, ``original`` as given."""

    original: str
    name: str
    path: Path


@dataclass
class UploadResult:
    """What ``UploadStore.add`` did.

    ``stored``: the uploads now in the folder and the index; ``duplicates``:
    ``(original name, indexed document)`` pairs skipped because that document
    already has exactly this content; ``summary``: ``Retriever.add``'s
    BuildSummary (None when nothing was new).
    """

    stored: list[StoredUpload] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    summary: Any = None


@dataclass
class ReconcileReport:
    """What ``UploadStore.reconcile`` found and fixed."""

    indexed: list[str] = field(default_factory=list)   # stored uploads the index lacked, now indexed
    restored: list[str] = field(default_factory=list)  # indexed uploads whose file was gone, written back
    removed: list[str] = field(default_factory=list)   # temporary files left by a crash
    rejected: list[str] = field(default_factory=list)  # stored files that cannot be indexed (moved aside)
    problems: list[str] = field(default_factory=list)  # disagreements left for the operator

    def lines(self) -> list[str]:
        """One human-readable line per finding (empty: folder and index agreed)."""
        out = [f"indexed upload missing from the index: {n}" for n in self.indexed]
        out += [f"restored upload missing from the folder (from the index's copy): {n}" for n in self.restored]
        out += [f"removed temporary file left by an interrupted upload: {n}" for n in self.removed]
        out += [f"cannot index stored upload, moved to {REJECTED_DIR}/: {n}" for n in self.rejected]
        return out + list(self.problems)


def safe_name(original: str) -> str:
    """A file name for an upload that every rebuild indexes under the same name.

    The last path component only (``/`` and ``\\`` both separate), NFC, without
    control or format characters, Windows-forbidden characters as ``_``, no
    ``..`` and no leading dot or blank; an empty stem becomes ``upload``.
    """
    name = unicodedata.normalize("NFC", str(original or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)
    name = re.sub(r"\s+", " ", name).strip()
    stem, suffix = os.path.splitext(name)
    if not suffix and stem.startswith(".") and stem.count(".") == 1:  # ".txt": a suffix alone
        stem, suffix = "", stem
    stem = stem.lstrip(". ").rstrip(" .")
    if not stem:
        stem = "upload"
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    suffix = suffix.lower()
    budget = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    while len(stem.encode("utf-8")) > budget:
        stem = stem[:-1]
    return stem + suffix


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _numbered(name: str, n: int) -> str:
    stem, suffix = os.path.splitext(name)
    return f"{stem} ({n}){suffix}"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


class UploadStore:
    """The uploads folder of one index (see the module docstring).

    ``max_bytes``: largest file accepted (None: no limit). One instance per
    folder and process; its methods may be called from several threads.
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    # ------------------------------------------------------------- adding

    def check_sizes(self, files: Iterable[tuple[Path, str]]) -> None:
        """``UploadTooLargeError`` naming every file over ``max_bytes`` (nothing is stored)."""
        if self.max_bytes is None:
            return
        big = []
        for path, original in files:
            size = Path(path).stat().st_size
            if size > self.max_bytes:
                big.append(f"{original} ({_size(size)})")
        if big:
            raise UploadTooLargeError(
                f"文件过大，每个文件最多 {self.max_bytes / 1e6:g} MB (file too large: at most "
                f"{self.max_bytes / 1e6:g} MB per file): {', '.join(big)}")

    def add(self, retriever, files: Sequence[Path | tuple[Path, str]],
            show_progress: bool = False) -> UploadResult:
        """Store ``files`` (paths, or ``(path, original name)``) and index them.

        All or nothing: a file over ``max_bytes`` or one the retriever cannot read
        raises (``UploadTooLargeError``, ``DocumentError``…) and leaves the folder
        and the index as they were. A file with exactly the content of an indexed
        document is skipped (``UploadResult.duplicates``).
        """
        pairs = [(Path(f[0]), str(f[1])) if isinstance(f, tuple) else (Path(f), Path(f).name) for f in files]
        self.check_sizes(pairs)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            result = UploadResult()
            indexed_sha = {s.sha256: s.doc for s in retriever.sources}
            taken = self._taken_names(retriever)
            batch_sha: dict[str, str] = {}
            todo: list[tuple[Path, str, str]] = []  # (source, original, stored name)
            for path, original in pairs:
                digest = _sha256(path)
                same = indexed_sha.get(digest) or batch_sha.get(digest)
                if same is not None:
                    result.duplicates.append((original, same))
                    continue
                name = self._free_name(safe_name(original), taken)
                taken.add(name.casefold())
                batch_sha[digest] = name
                todo.append((path, original, name))
            if not todo:
                return result
            stored: list[StoredUpload] = []
            try:
                for path, original, name in todo:
                    stored.append(StoredUpload(original, name, self._store(path, name)))
                result.summary = retriever.add([s.path for s in stored], show_progress=show_progress)
            except BaseException:
                self._discard([s.path for s in stored])
                raise
            result.stored = stored
            return result

    def _taken_names(self, retriever) -> set[str]:
        """Casefolded names an upload may not get: indexed documents and files in the folder."""
        taken = {doc.casefold() for doc in retriever.documents}
        if self.directory.is_dir():
            taken |= {p.name.casefold() for p in self.directory.iterdir()}
        return taken

    @staticmethod
    def _free_name(name: str, taken: set[str]) -> str:
        def clashes(candidate: str) -> bool:
            folded = candidate.casefold()
            # a loader that makes several documents of one file names them "name#n"
            return folded in taken or any(t.startswith(folded + "#") for t in taken)

        candidate, n = name, 1
        while clashes(candidate):
            n += 1
            candidate = _numbered(name, n)
        return candidate

    def _store(self, source: Path, name: str) -> Path:
        """Copy ``source`` to ``name`` in the folder: temporary file, fsync, rename, fsync folder."""
        target = self.directory / name
        tmp = self.directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            if target.exists():  # checked under the lock; never overwrite a stored upload
                raise RagError(f"{name} already exists in {self.directory}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        return target.resolve()

    def _discard(self, paths: Iterable[Path]) -> None:
        for path in paths:
            Path(path).unlink(missing_ok=True)
        _fsync_dir(self.directory)

    # ------------------------------------------------------------- reconciling

    def reconcile(self, retriever, show_progress: bool = False) -> ReconcileReport:
        """Bring the folder and the index back in step after a crash (see the module docstring)."""
        report = ReconcileReport()
        with self._lock:
            if not self.directory.is_dir():
                return report
            folder = self.directory.resolve()
            for entry in sorted(folder.iterdir()):
                if entry.is_file() and _is_temp(entry.name):
                    entry.unlink(missing_ok=True)
                    report.removed.append(entry.name)
            sources = retriever.sources
            files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
            self._restore_missing_files(retriever, sources, folder, files, report)
            self._index_missing_documents(retriever, sources, folder, files, report, show_progress)
            for entry in sorted(folder.iterdir()):
                if entry.is_file() and entry.name.startswith(".") and not _is_temp(entry.name):
                    report.problems.append(
                        f"hidden file in the uploads folder, which no rebuild indexes: {entry.name} "
                        f"(rename it without the leading dot)")
            if report.removed or report.restored or report.rejected:
                _fsync_dir(folder)
        return report

    def _restore_missing_files(self, retriever, sources, folder: Path, files: dict[str, Path],
                               report: ReconcileReport) -> None:
        """Indexed uploads whose file is gone: written back from the index's copy of the text."""
        for source in sources:
            recorded = Path(source.path) if source.path else None
            if recorded is None or recorded.resolve().parent != folder or recorded.exists():
                continue
            name = recorded.name
            if name != safe_name(name):
                report.problems.append(f"indexed upload {source.doc} has a name no rebuild keeps ({name}); "
                                       "it is not restored")
                continue
            if name in files:
                continue
            try:
                self._write_back(retriever, source.doc, folder / name)
            except (RagError, KeyError, OSError) as exc:
                report.problems.append(f"indexed upload {source.doc} is missing from the folder and cannot "
                                       f"be restored from the index: {exc}")
                continue
            files[name] = folder / name
            report.restored.append(name)

    @staticmethod
    def _write_back(retriever, doc: str, target: Path) -> None:
        """Write ``doc``'s file from the index: its copy of the original bytes where it keeps
        one, else (plain text formats) the decoded text the index stores."""
        original = getattr(retriever, "original_file", lambda _: None)(doc)
        tmp = target.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        try:
            if original is not None:
                shutil.copyfile(original, tmp)
            elif target.suffix.lower() in (".txt", ".md"):
                tmp.write_text(retriever.source_text(doc), encoding="utf-8", newline="")
            else:
                raise RagError("the index keeps no copy of the original file")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _index_missing_documents(self, retriever, sources, folder: Path, files: dict[str, Path],
                                 report: ReconcileReport, show_progress: bool) -> None:
        """Stored uploads the index lacks (a crash between storing and indexing): indexed now."""
        from rag.ingest.loaders import loader_for

        by_path = {Path(s.path).resolve() for s in sources if s.path}

        def indexed(path: Path) -> bool:
            if path in by_path:
                return True
            digest = _sha256(path)
            return any(s.sha256 == digest and (s.doc == path.name or s.doc.endswith("/" + path.name)
                                               or s.doc.startswith(path.name + "#")) for s in sources)

        missing = [p for p in files.values() if loader_for(p) is not None and not indexed(p)]
        if not missing:
            return
        taken = {doc.casefold() for doc in retriever.documents} | {n.casefold() for n in files}
        ready: list[Path] = []
        for path in missing:
            if path.name.casefold() in {d.casefold() for d in retriever.documents}:
                # an indexed document from elsewhere has this name: give the upload its own
                new_name = self._free_name(path.name, taken)
                taken.add(new_name.casefold())
                os.replace(path, folder / new_name)
                path = folder / new_name
            ready.append(path)
        try:
            retriever.add(ready, show_progress=show_progress)
            report.indexed.extend(p.name for p in ready)
            return
        except RagError:
            pass
        for path in ready:  # one of them cannot be indexed: find it, keep the rest
            try:
                retriever.add([path], show_progress=show_progress)
                report.indexed.append(path.name)
            except RagError as exc:
                rejected = folder / REJECTED_DIR
                rejected.mkdir(exist_ok=True)
                os.replace(path, rejected / path.name)
                report.rejected.append(f"{path.name} ({exc})")
