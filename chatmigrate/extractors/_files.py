"""Reading export archives safely and in a streaming way: a zip or a folder behind one interface,
JSON arrays element by element with line numbers, JSON lines with line numbers."""

from __future__ import annotations

import bisect
import io
import json
import os
import re
import struct
import zipfile
from array import array
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson

from chatmigrate.errors import InputError
from chatmigrate.extractors._limits import READ_ERRORS, CappedReader, Limits

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first bytes: a member, or an empty archive


class _PackedInfos(dict):  # type: ignore[type-arg]
    """zipfile's name → ZipInfo map, holding each entry as 34 packed bytes instead of a ZipInfo.

    A big Slack export has one member per channel per day (hundreds of thousands); ZipInfo objects
    cost ~600 bytes each, which made memory grow with the size of the export. ZipFile fills this map
    while reading the central directory (each ZipInfo is dropped at once) and asks it for a ZipInfo
    when a member is opened; only the fields that reading a member needs are kept.
    """

    _LAYOUT = struct.Struct("<QQQIHHIH")

    def __init__(self) -> None:
        super().__init__()
        # Every entry's header offset, sorted once the directory is read: where each entry must end.
        self.offsets = array("q")

    def __setitem__(self, name: str, info: Any) -> None:
        try:
            packed = self._LAYOUT.pack(info.header_offset, info.compress_size, info.file_size, info.CRC,
                                       info.compress_type, info.flag_bits, info.external_attr, info._raw_time)
        except struct.error as exc:  # a negative offset or size: only a damaged directory says that
            raise zipfile.BadZipFile(f"corrupt central directory entry for {name!r}") from exc
        self.offsets.append(info.header_offset)
        if info.orig_filename != name:  # a name zipfile had to normalise: keep it whole (rare)
            super().__setitem__(name, info)
            return
        super().__setitem__(name, packed)

    def get(self, name: str, default: Any = None) -> Any:
        packed = super().get(name)
        return default if packed is None else self._info(name, packed)

    def __getitem__(self, name: str) -> Any:
        return self._info(name, super().__getitem__(name))

    def external_attr(self, name: str) -> int:
        packed = super().__getitem__(name)
        return packed.external_attr if isinstance(packed, zipfile.ZipInfo) else self._LAYOUT.unpack(packed)[6]

    def _info(self, name: str, packed: Any) -> zipfile.ZipInfo:
        if isinstance(packed, zipfile.ZipInfo):
            return packed
        info = zipfile.ZipInfo(name)
        (info.header_offset, info.compress_size, info.file_size, info.CRC, info.compress_type,
         info.flag_bits, info.external_attr, info._raw_time) = self._LAYOUT.unpack(packed)
        return info


class _Uncollected(list):  # type: ignore[type-arg]
    """zipfile's list of every ZipInfo: not kept (names and entries live in _PackedInfos)."""

    def append(self, _: Any) -> None:
        return None


class _CompactZipFile(zipfile.ZipFile):
    """A read-only ZipFile whose table of contents costs ~200 bytes a member, not ~800.

    Replacing zipfile's tables also bypasses the overlapping-entries check of recent CPython releases
    (gh-109858, which walks the full ZipInfo list; 3.11.7 has none): `overlaps` re-implements it on the
    packed table, for every Python version.
    """

    def _RealGetContents(self) -> None:
        self.filelist = _Uncollected()
        infos = _PackedInfos()
        self.NameToInfo = infos
        super()._RealGetContents()
        infos.offsets = array("q", sorted(infos.offsets))

    def overlaps(self, info: zipfile.ZipInfo) -> bool:
        """Whether `info`'s data runs into the next entry (or the central directory): entries that share
        bytes are how "overlapping" zip bombs make a small archive inflate to terabytes."""
        infos = self.NameToInfo
        assert isinstance(infos, _PackedInfos)
        offsets = infos.offsets
        first = bisect.bisect_left(offsets, info.header_offset)
        after = bisect.bisect_right(offsets, info.header_offset)
        if after - first > 1:
            return True  # two entries start at the same place
        end = offsets[after] if after < len(offsets) else self.start_dir
        # A local header is at least 30 bytes plus one per character of the name.
        return info.header_offset + 30 + len(info.filename) + info.compress_size > end


class ExportFiles:
    """The members of an export, whether it is a zip (read in place, never unpacked) or a folder.

    Member names are POSIX paths relative to the export root. Members that would escape the root
    (`..`, absolute paths, symlinks out of a folder) are refused with InputError when opened and
    listed in `unsafe` so the caller can report them. What is read from one member is bounded by
    `limits` (see _limits.py).
    """

    def __init__(self, location: str, limits: Limits | None = None) -> None:
        self.location = location
        self.limits = limits or Limits()
        self.path = Path(location)
        self.unsafe: list[str] = []
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if self.path.is_dir():
            self._names = self._folder_names()
        elif zipfile.is_zipfile(self.path):
            try:
                self._zip = _CompactZipFile(self.path)
                self._names = self._zip_names()
            except READ_ERRORS as exc:
                raise InputError(f"cannot read the zip archive ({exc}); is the download complete?",
                                 location=location) from exc
        elif looks_like_zip(self.path):
            raise InputError("the zip archive is unreadable (truncated or corrupt: its table of contents at the "
                             "end is missing); is the download complete?", location=location)
        elif self.path.exists():
            raise InputError("neither a folder nor a zip archive", location=location)
        else:
            raise InputError("no such file or folder", location=location)
        self._strip_common_root()

    def _folder_names(self) -> list[str]:
        root = self.path.resolve()
        names: list[str] = []
        for dirpath, _dirs, files in os.walk(self.path, followlinks=False):
            for file in files:
                full = Path(dirpath, file)
                rel = full.relative_to(self.path).as_posix()
                if full.is_symlink() and not full.resolve().is_relative_to(root):
                    self.unsafe.append(rel)
                    continue
                names.append(rel)
        return sorted(names)

    def _zip_names(self) -> list[str]:
        assert self._zip is not None
        infos = self._zip.NameToInfo
        assert isinstance(infos, _PackedInfos)
        names: list[str] = []
        for name in infos:
            if name.endswith("/"):
                continue
            parts = PurePosixPath(name).parts
            is_symlink = (infos.external_attr(name) >> 16) & 0o170000 == 0o120000
            if name.startswith(("/", "\\")) or ".." in parts or ":" in (parts[0] if parts else "") or is_symlink:
                self.unsafe.append(name)
                continue
            names.append(name)
        return names

    def _strip_common_root(self) -> None:
        # Zips made by "compress folder" hold everything under one top folder; look inside it.
        tops = {n.split("/", 1)[0] for n in self._names}
        if len(tops) == 1 and all("/" in n for n in self._names):
            self._prefix = tops.pop() + "/"
            self._names = [n[len(self._prefix):] for n in self._names]

    def names(self) -> list[str]:
        return self._names

    def exists(self, name: str) -> bool:
        if self._zip is not None:
            # The zip's own index answers without a second set of every name.
            return (self._prefix + name) in self._zip.NameToInfo and name not in self._unsafe_set
        return name in self._name_set

    @property
    def _unsafe_set(self) -> set[str]:
        cached = getattr(self, "_unsafe_cache", None)
        if cached is None:
            cached = {n[len(self._prefix):] if n.startswith(self._prefix) else n for n in self.unsafe}
            self._unsafe_cache = cached
        return cached

    @property
    def _name_set(self) -> set[str]:
        cached = getattr(self, "_names_cache", None)
        if cached is None:
            cached = set(self._names)
            self._names_cache = cached
        return cached

    def describe(self, name: str) -> str:
        """How a member is cited in messages: `export.zip:general/2019-01-03.json`."""
        return f"{self.path.name}:{name}" if self._zip else name

    def size(self, name: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._prefix + name).file_size
        return (self.path / (self._prefix + name)).stat().st_size

    def open(self, name: str, limit: int | None = None, option: str = "max_member_bytes") -> IO[bytes]:
        """A member as a binary stream. Every failure to read it, now or while reading, is an InputError
        naming it. A zip member is refused before reading when its declared size is over `limit`
        (default: limits.member_bytes, lifted by the extractor `option`) or its compression ratio over
        limits.ratio, and is cut off at `limit` whatever it declared; a folder's file (no bomb possible)
        is limited only when a `limit` is given."""
        where = self.describe(name)
        if not self.exists(name):
            raise InputError("not found in the export, or refused because its path escapes the export",
                             location=where)
        try:
            if self._zip is not None:
                assert isinstance(self._zip, _CompactZipFile)
                info = self._zip.getinfo(self._prefix + name)
                limit = self.limits.member_bytes if limit is None else limit
                self.limits.check(where, info.file_size, info.compress_size if info.compress_type else None,
                                  limit, option)
                if self._zip.overlaps(info):
                    raise InputError("its data overlaps another entry of the zip (a zip bomb's construction); "
                                     "not read", location=where)
                inner: IO[bytes] = self._zip.open(self._prefix + name)
            else:
                path = self.path / (self._prefix + name)
                if limit is not None:
                    self.limits.check(where, path.stat().st_size, None, limit, option)
                inner = path.open("rb")
        except READ_ERRORS as exc:
            raise InputError(f"cannot read ({type(exc).__name__}: {exc}); the archive may be truncated or corrupt",
                             location=where) from exc
        return io.BufferedReader(CappedReader(inner, where, limit if limit is not None else 1 << 62, option),
                                 1 << 16)

    def read_bytes(self, name: str) -> bytes:
        """A member read whole (a JSON document), at most limits.document_bytes."""
        with self.open(name, self.limits.document_bytes, "max_document_bytes") as handle:
            return handle.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def looks_like_zip(path: Path) -> bool:
    """A file that starts like a zip (whether or not the rest of it can be read)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) in ZIP_MAGIC
    except OSError:
        return False


_decoder = json.JSONDecoder()


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def _fast_elements(data: bytes) -> list[tuple[int, Any]] | None:
    """The whole array decoded by orjson in one C call (4x faster than element by element), with each
    element's line read off the pretty-printer's layout: Slack writes one element per line start at a
    fixed indentation. None whenever that layout cannot be trusted; the exact path then runs."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # invalid JSON, lone surrogates, NaN…: the exact path reports or decodes them
    if not isinstance(document, list):
        return None
    if not document or b"\n" not in data:
        return [(1, element) for element in document]
    opening = data.find(b"[") + 1
    first = _LEADING_SPACE.match(data, opening).end()  # type: ignore[union-attr]
    newline = data.rfind(b"\n", opening, first)
    if newline < 0 or newline + 1 == first:
        return None  # first element on the "[" line, or at column 0: no layout to rely on
    indent = re.escape(data[newline + 1:first])
    starts = [m.start() for m in re.finditer(b"\n" + indent + rb"(?=[^ \t\r\n\]}])", data)]
    if len(starts) != len(document) or starts[0] != newline:
        return None
    lines: list[tuple[int, Any]] = []
    line, counted_to = 1, 0
    for start, element in zip(starts, document, strict=True):
        line += data.count(b"\n", counted_to, start + 1)
        counted_to = start + 1
        lines.append((line, element))
    return lines


def iter_json_array(data: bytes, where: str) -> Iterator[tuple[int, Any]]:
    """Yield (line, element) for each element of a JSON array document, failing with file:line.

    Each element keeps the line it starts on (for rejects and errors): from the layout when orjson
    can decode the file (`_fast_elements`), else by decoding element by element.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    fast = _fast_elements(data)
    if fast is not None:
        yield from fast
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}); re-export the file", location=where) from exc
    pos = _skip_space(text, 0)
    if pos == len(text):
        # Slack writes "[]" for nothing: an empty file is a cut-off download or a failed write.
        raise InputError("empty file; expected a JSON array (at least [])", location=where)
    if text[pos] != "[":
        raise InputError("expected a JSON array", location=f"{where}:{_line_at(text, pos)}")
    pos = _skip_space(text, pos + 1)
    line, line_pos = 1, 0
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            element, end = _decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", location=f"{where}:{exc.lineno}") from exc
        except RecursionError as exc:  # thousands of nested brackets: no export writes that
            raise InputError("JSON nested too deeply to read", location=f"{where}:{_line_at(text, pos)}") from exc
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        yield line, element
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise InputError("invalid JSON (expected ',' or ']' between array elements; truncated file?)",
                         location=f"{where}:{_line_at(text, pos)}")


def iter_json_lines(handle: IO[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw line) of a JSON-lines stream, skipping blank lines."""
    for number, raw in enumerate(handle, start=1):
        if raw.strip():
            yield number, raw
