"""The files of a Rocket.Chat mongodump (rocketchat_dump.py): finding the database folder, reading a
collection document by document (BSON or mongoexport JSON lines, plain or gzipped) with offsets to come
back to, and GridFS buckets (file metadata and the chunks of their bytes)."""

from __future__ import annotations

import bisect
import hashlib
import io
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC
from pathlib import Path
from typing import IO, Any

import bson.errors
from bson import json_util

from chatmigrate.errors import InputError
from chatmigrate.extractors import _bson
from chatmigrate.extractors._limits import READ_ERRORS, Limits
from chatmigrate.extractors._rocketchat import native_id
from chatmigrate.model import Origin, Unreadable

# The collection that tells a Rocket.Chat database apart from any other mongodump.
MARKER = "rocketchat_room"
PREFERRED_DATABASES = ("rocketchat", "meteor", "parties")
# mongodump writes BSON (gzipped with --gzip); mongoexport writes Extended JSON, one document a line.
_SUFFIXES = (".bson", ".bson.gz", ".json", ".json.gz")
_JSON_OPTIONS = json_util.JSONOptions(tz_aware=True, tzinfo=UTC)
# A JSON-lines collection remembers the line of every this-many-th document, to cite lines cheaply.
_LINE_STRIDE = 16
# `__collection__` of trashed documents → the record kind they would have been.
TRASH_KINDS = {"message": "messages", "room": "channels", "users": "users", "custom_emoji": "emoji",
                "uploads": "files"}


def collection_file(folder: Path, name: str) -> Path | None:
    for suffix in _SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def find_database(location: Path) -> list[Path]:
    """The folders under `location` (itself, or one level down) that hold Rocket.Chat collections."""
    if collection_file(location, MARKER):
        return [location]
    if not location.is_dir():
        return []
    try:
        children = sorted(p for p in location.iterdir() if p.is_dir())
    except OSError:
        return []
    return [child for child in children if collection_file(child, MARKER)]


class Collection:
    """One collection file (BSON, or mongoexport JSON lines), read forward or at remembered offsets.

    Positions are byte offsets in both formats; origins cite the byte offset of a BSON document and
    the line number of a JSON one.
    """

    def __init__(self, path: Path, where: str, scratch: Path | None, stack: ExitStack,
                 limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits
        self.where = where
        self.is_json = path.name.removesuffix(".gz").endswith(".json")
        self._scratch = scratch
        self._stack = stack
        self._seekable: IO[bytes] | None = None
        self._marks = array("q")  # JSON: offset, line, offset, line… of every _LINE_STRIDE-th document
        self._last = (-1, 0)
        self._count = 0

    def scan(self) -> Iterator[tuple[int, bytes | _bson.Broken]]:
        """(offset, raw document) for every document, in file order; where the file breaks, a Broken."""
        with _bson.open_stream(self.path, self.where, self.limits) as handle:
            if not self.is_json:
                yield from _bson.iter_raw(handle, self.where)
                return
            yield from self._scan_lines(handle)

    def _scan_lines(self, handle: IO[bytes]) -> Iterator[tuple[int, bytes | _bson.Broken]]:
        self._marks = array("q")
        self._count = 0
        offset = 0
        line = 0
        try:
            while True:
                # Lines are read with a cap: a "line" of gigabytes (no newline in a damaged file) must not be
                # held whole. MongoDB documents are at most 16 MiB; their Extended JSON a few times that.
                raw = handle.readline(_bson.MAX_DOCUMENT + 1)
                if not raw:
                    return
                line += 1
                start = offset
                offset += len(raw)
                if len(raw) > _bson.MAX_DOCUMENT and not raw.endswith(b"\n"):
                    excerpt = raw[:300]
                    while raw and not raw.endswith(b"\n"):
                        raw = handle.readline(1 << 20)
                        offset += len(raw)
                    self._remember(start, line)
                    yield start, _bson.Broken(f"a line longer than {_bson.MAX_DOCUMENT:,} bytes, more than any "
                                              "MongoDB document; not read", rest=False, excerpt=excerpt)
                    continue
                if raw.strip():
                    if line == 1 and raw.lstrip().startswith(b"["):
                        raise InputError("a JSON array (mongoexport --jsonArray); export one document a line "
                                         "(mongoexport without --jsonArray)", location=f"{self.where}:1")
                    self._remember(start, line)
                    yield start, raw
        except InputError as exc:
            if exc.location == f"{self.where}:1":
                raise
            self._remember(offset, line + 1)
            yield offset, _bson.Broken(exc.detail)  # a corrupt gzip stream, or the inflating cap
        except READ_ERRORS as exc:
            self._remember(offset, line + 1)
            yield offset, _bson.Broken(f"cannot read ({type(exc).__name__}: {exc}); the file is truncated or "
                                       "corrupt")

    def _remember(self, offset: int, line: int) -> None:
        self._last = (offset, line)
        self._note(offset, line)

    def _note(self, offset: int, line: int) -> None:
        if self._count % _LINE_STRIDE == 0:
            self._marks.extend((offset, line))
        self._count += 1

    def at(self, offset: int) -> bytes:
        if self._seekable is None:
            self._seekable = self._stack.enter_context(_bson.open_seekable(self.path, self._scratch, self.where,
                                                                                 self.limits))
        if not self.is_json:
            return _bson.read_raw_at(self._seekable, self.where, offset)
        self._seekable.seek(offset)
        return self._seekable.readline()

    def decode(self, raw: bytes) -> dict[str, Any]:
        """One document; content that does not decode raises BadDocument."""
        if not self.is_json:
            return _bson.decode(raw)
        try:
            document = json_util.loads(raw, json_options=_JSON_OPTIONS)
        except (ValueError, TypeError, KeyError, OverflowError, bson.errors.BSONError) as exc:
            raise _bson.BadDocument(f"not a valid Extended JSON document ({exc})", raw) from exc
        if not isinstance(document, dict):
            raise _bson.BadDocument("a JSON line that is not a document (object)", raw)
        return document

    def read(self, offset: int) -> dict[str, Any]:
        return self.decode(self.at(offset))

    def show(self, raw: bytes) -> str:
        """A broken document as it can be shown in a rejects file."""
        return raw.decode("utf-8", "replace")[:2000] if self.is_json else raw.hex()[:2000]

    def broken(self, offset: int, broken: _bson.Broken, kind: str) -> Unreadable:
        """The unreadable part of the file: the rest of it (counted as one unreadable file, since how many
        documents it held cannot be known), or one over-long document (counted as a record of `kind`)."""
        origin = self.origin(offset)
        if broken.rest:
            return Unreadable("export_files", "CM001", f"{broken.reason}; the rest of {self.where}, from byte "
                              f"{offset:,}, is not read", {"file": self.where, "offset": offset}, origin)
        return Unreadable(kind, "CM001", broken.reason, self.show(broken.excerpt), origin)

    def origin(self, offset: int) -> Origin:
        if not self.is_json:
            return Origin(self.where, offset)
        if offset == self._last[0]:
            return Origin(self.where, self._last[1])
        return Origin(self.where, self._line_of(offset))

    def _line_of(self, offset: int) -> int:
        """The line a document starts on: from the nearest remembered line, counting newlines."""
        marks = self._marks
        offsets = marks[0::2]
        i = bisect.bisect_right(offsets, offset) - 1
        if i < 0:
            return 0
        start, line = marks[2 * i], marks[2 * i + 1]
        if start == offset:
            return line
        self.at(start)  # opens the seekable copy if needed
        assert self._seekable is not None
        self._seekable.seek(start)
        return line + self._seekable.read(offset - start).count(b"\n")


class GridFs:
    """A GridFS bucket in the dump (`<bucket>.files` + `<bucket>.chunks`): sizes and sha256 of its files.

    Only chunk offsets are kept; bytes are hashed a chunk at a time when a file is asked for.
    """

    def __init__(self, files: Collection | None, chunks: Collection | None) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.by_name: dict[str, str] = {}
        self.chunks: dict[str, list[tuple[int, int]]] = {}
        self._chunks = chunks
        self.problems: list[Unreadable] = []
        if files is None:
            return
        for offset, raw in files.scan():
            if isinstance(raw, _bson.Broken):
                self.problems.append(files.broken(offset, raw, "files"))
                continue
            try:
                doc = files.decode(raw)
            except _bson.BadDocument as exc:
                self.problems.append(Unreadable("files", "CM001", exc.reason, files.show(raw), files.origin(offset)))
                continue
            native = native_id(doc.get("_id"))
            if native is None:
                continue
            self.files[native] = {"length": doc.get("length"), "filename": doc.get("filename")}
            if isinstance(doc.get("filename"), str):
                self.by_name.setdefault(doc["filename"], native)
        if chunks is None:
            return
        for offset, raw in chunks.scan():
            if isinstance(raw, _bson.Broken):
                self.problems.append(chunks.broken(offset, raw, "files"))
                continue
            try:
                doc = chunks.decode(raw)
            except _bson.BadDocument as exc:
                self.problems.append(Unreadable("files", "CM001", exc.reason, chunks.show(raw),
                                                chunks.origin(offset)))
                continue
            owner = native_id(doc.get("files_id"))
            if owner is not None and isinstance(doc.get("n"), int):
                self.chunks.setdefault(owner, []).append((doc["n"], offset))

    def digest(self, native: str) -> tuple[int | None, str | None, str]:
        """(size, sha256, note) of a stored file; sha256 None with the reason in `note` when incomplete."""
        meta = self.files.get(native)
        if meta is None:
            return None, None, "not in the dump"
        parts = sorted(self.chunks.get(native, []))
        if [n for n, _ in parts] != list(range(len(parts))) or self._chunks is None:
            return None, None, "GridFS chunks missing or duplicated in the dump: bytes not verifiable"
        sha = hashlib.sha256()
        size = 0
        for _n, offset in parts:
            data = self._chunks.read(offset).get("data")
            if not isinstance(data, bytes):
                return None, None, "a GridFS chunk holds no data: bytes not verifiable"
            sha.update(data)
            size += len(data)
        if isinstance(meta.get("length"), int) and meta["length"] != size:
            return size, None, f"GridFS chunks hold {size} bytes, the file says {meta['length']}: truncated"
        return size, sha.hexdigest(), "in the dump (GridFS)"

    def open(self, native: str) -> IO[bytes] | None:
        """The bytes of a stored file, read a chunk at a time; None when its chunks are incomplete."""
        parts = sorted(self.chunks.get(native, []))
        if native not in self.files or self._chunks is None or [n for n, _ in parts] != list(range(len(parts))):
            return None
        return io.BufferedReader(_ChunkReader(self._chunks, [offset for _, offset in parts]))


class _ChunkReader(io.RawIOBase):
    """A GridFS file as a stream: its chunk documents decoded one by one as they are read."""

    def __init__(self, chunks: Collection, offsets: list[int]) -> None:
        self._chunks, self._offsets, self._buffer = chunks, iter(offsets), b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            offset = next(self._offsets, None)
            if offset is None:
                return 0
            data = self._chunks.read(offset).get("data")
            self._buffer = data if isinstance(data, bytes) else b""
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
