"""Streaming reader for mongodump `.bson` files: one document at a time, each with its byte offset.

A `.bson` file is a bare concatenation of BSON documents, each starting with its own int32
little-endian length (no header, no index). We read the length, then exactly that many bytes, and
decode only that slice, so memory is one document however large the collection is. The offsets let
a caller index a collection in a first pass and come back to single documents with `seek`.

Gzipped dumps (`mongodump --gzip`, `.bson.gz`) cannot seek cheaply (a backward seek re-inflates
from the start), so `open_seekable` inflates them once into a temporary file.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import IO, Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from chatmigrate.errors import InputError

# Dates come back tz-aware in UTC; dates outside datetime's range come back as DatetimeMS instead of
# raising, so one odd value makes one unreadable record, not a crash.
CODEC = CodecOptions(tz_aware=True, tzinfo=UTC, datetime_conversion=DatetimeConversion.DATETIME_AUTO)

# MongoDB refuses documents over 16 MiB; mongodump cannot write larger ones. A length field far
# beyond that means the framing is lost (a corrupt or non-BSON file), not a big document.
MAX_DOCUMENT = 48 * 1024 * 1024
_MIN_DOCUMENT = 5  # int32 length + the terminating NUL of an empty document
_LENGTH = struct.Struct("<i")


class BadDocument(Exception):
    """A document whose framing is intact but whose content does not decode (the stream can go on)."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


def iter_raw(handle: IO[bytes], where: str, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (byte offset, raw document bytes) for each document, from `start` to the end of the file.

    A file that ends inside a document, or whose length field is impossible, raises InputError
    naming `where` and the byte offset of the broken document.
    """
    offset = start
    handle.seek(start)
    while True:
        head = _read(handle, 4, where, offset)
        if not head:
            return
        if len(head) < 4:
            raise InputError(f"truncated BSON: the file ends {len(head)} byte(s) into a document length "
                             "field; the dump is incomplete (re-run mongodump)", location=f"{where}:{offset}")
        (length,) = _LENGTH.unpack(head)
        if length < _MIN_DOCUMENT or length > MAX_DOCUMENT:
            raise InputError(f"not a BSON document (length field says {length} bytes); the file is corrupt "
                             "or not a mongodump .bson file", location=f"{where}:{offset}")
        body = _read(handle, length - 4, where, offset)
        if len(body) < length - 4:
            raise InputError(f"truncated BSON: a {length}-byte document has only {len(body) + 4} bytes "
                             "before the end of the file; the dump is incomplete (re-run mongodump)",
                             location=f"{where}:{offset}")
        yield offset, head + body
        offset += length


def read_raw_at(handle: IO[bytes], where: str, offset: int) -> bytes:
    """The raw document that starts at `offset` (an offset `iter_raw` yielded earlier)."""
    for _offset, raw in iter_raw(handle, where, offset):
        return raw
    raise InputError("expected a BSON document here but the file ends", location=f"{where}:{offset}")


def decode(raw: bytes) -> dict[str, Any]:
    """Decode one document; content that does not decode raises BadDocument (framing was fine)."""
    try:
        return bson.decode(raw, CODEC)
    except (BSONError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise BadDocument(f"the document does not decode as BSON ({exc})", raw) from exc


def _read(handle: IO[bytes], size: int, where: str, offset: int) -> bytes:
    try:
        return handle.read(size)
    except (OSError, EOFError, zlib.error) as exc:  # gzip stream cut short or corrupt
        raise InputError(f"cannot read ({exc}); the file is truncated or corrupt",
                         location=f"{where}:{offset}") from exc


def open_seekable(path: Path, scratch: Path | None) -> IO[bytes]:
    """Open a `.bson` file for random access; a `.bson.gz` is first inflated into `scratch`."""
    if path.suffix != ".gz":
        return path.open("rb")
    if scratch is None:
        raise ValueError("a scratch folder is needed to seek in a gzipped collection")
    target = Path(tempfile.mkstemp(prefix=path.name.removesuffix(".gz") + ".", dir=scratch)[1])
    try:
        with gzip.open(path, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot inflate ({exc}); the gzip file is truncated or corrupt",
                         location=str(path)) from exc
    return target.open("rb")


def open_stream(path: Path) -> IO[bytes]:
    """Open a `.bson` or `.bson.gz` file for one forward pass."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
