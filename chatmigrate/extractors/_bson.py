"""Streaming reader for mongodump `.bson` files: one document at a time, each with its byte offset.

A `.bson` file is a bare concatenation of BSON documents, each starting with its own int32
little-endian length (no header, no index). We read the length, then exactly that many bytes, and
decode only that slice, so memory is one document however large the collection is. The offsets let
a caller index a collection in a first pass and come back to single documents with `seek`.

Gzipped dumps (`mongodump --gzip`, `.bson.gz`) cannot seek cheaply (a backward seek re-inflates
from the start), so `open_seekable` inflates them once into a temporary file. Inflating is capped
(`Limits.inflated`): a gzip bomb stops at the cap instead of filling the disk.

A file that breaks part-way (cut off by a full disk or an interrupted copy, a corrupt gzip stream, a
length field that makes no sense) does not stop the run: `iter_raw` yields the documents before the
break, then one `Broken` saying where the readable part ends; the caller reports the rest of the file
as unreadable (CM001, with its byte offset) and goes on with everything it could read.
"""

from __future__ import annotations

import gzip
import io
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from chatmigrate.errors import InputError
from chatmigrate.extractors._limits import READ_ERRORS, CappedReader, Limits

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


@dataclass(frozen=True, slots=True)
class Broken:
    """Where a file stops being readable. `rest`: everything from `offset` on is lost (the framing is
    gone), else only the one document at `offset` (an over-long JSON line); `excerpt` its first bytes."""

    reason: str
    rest: bool = True
    excerpt: bytes = b""


def iter_raw(handle: IO[bytes], where: str, start: int = 0) -> Iterator[tuple[int, bytes | Broken]]:
    """Yield (byte offset, raw document bytes) for each document, from `start` to the end of the file.

    A file that ends inside a document, whose length field is impossible, or that cannot be read on
    (a corrupt gzip stream, the inflating cap) ends with one (offset, Broken) for the broken document.
    """
    offset = start
    try:
        handle.seek(start)
        while True:
            head = handle.read(4)
            if not head:
                return
            if len(head) < 4:
                yield offset, Broken(f"truncated BSON: the file ends {len(head)} byte(s) into a document length "
                                     "field; the dump is incomplete (re-run mongodump)")
                return
            (length,) = _LENGTH.unpack(head)
            if length < _MIN_DOCUMENT or length > MAX_DOCUMENT:
                yield offset, Broken(f"not a BSON document (length field says {length} bytes); the file is corrupt "
                                     "or not a mongodump .bson file from here on")
                return
            body = handle.read(length - 4)
            if len(body) < length - 4:
                yield offset, Broken(f"truncated BSON: a {length}-byte document has only {len(body) + 4} bytes "
                                     "before the end of the file; the dump is incomplete (re-run mongodump)")
                return
            yield offset, head + body
            offset += length
    except InputError as exc:  # from CappedReader: a corrupt gzip stream, or the inflating cap
        yield offset, Broken(exc.detail)
    except READ_ERRORS as exc:
        yield offset, Broken(f"cannot read ({type(exc).__name__}: {exc}); the file is truncated or corrupt")


def read_raw_at(handle: IO[bytes], where: str, offset: int) -> bytes:
    """The raw document that starts at `offset` (an offset `iter_raw` yielded a document for earlier)."""
    for _offset, raw in iter_raw(handle, where, offset):
        if isinstance(raw, Broken):
            raise InputError(f"the document read here before is now unreadable ({raw.reason}); was the dump "
                             "changed during the run?", location=f"{where}:{offset}")
        return raw
    raise InputError("expected a BSON document here but the file ends", location=f"{where}:{offset}")


def decode(raw: bytes) -> dict[str, Any]:
    """Decode one document; content that does not decode raises BadDocument (framing was fine)."""
    try:
        return bson.decode(raw, CODEC)
    except (BSONError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise BadDocument(f"the document does not decode as BSON ({exc})", raw) from exc


def open_seekable(path: Path, scratch: Path | None, where: str | None = None,
                  limits: Limits | None = None) -> IO[bytes]:
    """Open a `.bson` file for random access; a `.bson.gz` is first inflated into `scratch`.

    Inflating stops where the stream breaks or reaches the cap, without an error: the forward scan
    (`open_stream`) stops at the same byte and has reported it, and only offsets before it are read.
    """
    if path.suffix != ".gz":
        return path.open("rb")
    if scratch is None:
        raise ValueError("a scratch folder is needed to seek in a gzipped collection")
    target = Path(tempfile.mkstemp(prefix=path.name.removesuffix(".gz") + ".", dir=scratch)[1])
    with open_stream(path, where, limits) as source, target.open("wb") as sink:
        try:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                sink.write(chunk)
        except InputError:
            pass  # reported by the scan (see above)
    return target.open("rb")


def open_stream(path: Path, where: str | None = None, limits: Limits | None = None) -> IO[bytes]:
    """Open a `.bson` or `.bson.gz` file for one forward pass; a gzip stream inflates to at most
    `Limits.inflated` of its size, and fails only with InputError (naming `where`)."""
    if path.suffix != ".gz":
        return path.open("rb")
    limits = limits or Limits()
    limit = limits.inflated(path.stat().st_size)
    option = "max_ratio" if limit < limits.member_bytes else "max_member_bytes"
    return io.BufferedReader(CappedReader(gzip.open(path, "rb"), where or str(path), limit, option), 1 << 16)
