"""How much chatmigrate reads from one archive member or compressed file, and a reader that holds to it.

A small archive can inflate to an enormous member (a "zip bomb": 2 MB of zip, 2 GiB of day file), and
a corrupt one fails deep inside zlib. Every member and gzip stream is therefore read through
`CappedReader`, which
- refuses to go past a byte limit (checked while reading: declared sizes can lie),
- turns every decompression or I/O failure into an InputError that names the member,
so one bad member becomes one unreadable file (CM001) instead of a crash, a full disk or no memory.
Before a zip member is opened, its declared size and compression ratio are checked (`Limits.check`).

The limits default to the constants below; the file extractors take them as options (`-o
max_document_bytes=N`, `max_member_bytes`, `max_ratio`: `LIMIT_OPTIONS`), and every refusal names the option
that lifts it.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from chatmigrate.errors import InputError
from chatmigrate.options import Option

MiB = 1 << 20
GiB = 1 << 30
# Members read whole into memory (Slack's JSON documents): memory is a few times this.
MAX_DOCUMENT_BYTES = 512 * MiB
# Members streamed (a Mattermost JSONL copied to a temp file, attachments hashed, a gzipped
# collection inflated to a scratch file): disk and time.
MAX_MEMBER_BYTES = 64 * GiB
# Chat exports compress 5-20x; deflate's own maximum is ~1032x, which only crafted or degenerate data
# reaches. Beyond this ratio (for members over RATIO_FLOOR, below which size does not matter) a member
# is refused as a likely bomb.
MAX_RATIO = 100
RATIO_FLOOR = 64 * MiB
# Bytes asked of the inner stream at a time. A corrupt deflate stream loses what one read was
# decompressing when it fails, so small reads keep nearly everything before the damage.
_CHUNK = 16 * 1024

# What a damaged member raises while it is opened or read: bad headers and CRCs (BadZipFile), bad
# deflate/LZMA/bzip2 streams (zlib.error, LZMAError, OSError), a stream that ends early (EOFError),
# an unknown compression method (NotImplementedError), an encrypted member (RuntimeError).
READ_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError,
                                                EOFError, NotImplementedError, RuntimeError)

LIMIT_OPTIONS = {
    "max_document_bytes": Option(f"largest JSON document read whole, in bytes (default {MAX_DOCUMENT_BYTES})", int,
                                 minimum=1),
    "max_member_bytes": Option(f"largest archive member or inflated file streamed, in bytes (default "
                               f"{MAX_MEMBER_BYTES})", int, minimum=1),
    "max_ratio": Option(f"largest compression ratio of a member over {RATIO_FLOOR} bytes (default {MAX_RATIO})", int,
                        minimum=1),
}


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.1f} MiB" if n >= MiB else f"{n:,} bytes"


@dataclass(frozen=True, slots=True)
class Limits:
    document_bytes: int = MAX_DOCUMENT_BYTES
    member_bytes: int = MAX_MEMBER_BYTES
    ratio: int = MAX_RATIO

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Limits:
        """The limits an extractor's options set (ValueError on a value that is not a positive integer)."""
        values = {field: _positive(options.get(name)) for field, name in
                  (("document_bytes", "max_document_bytes"), ("member_bytes", "max_member_bytes"),
                   ("ratio", "max_ratio"))}
        return cls(**{k: v for k, v in values.items() if v is not None})

    def check(self, where: str, size: int, compressed: int | None, limit: int, option: str) -> None:
        """Refuse a member before reading it when its declared size or compression ratio is too large."""
        if size > limit:
            raise InputError(f"{_size(size)} uncompressed, over the limit of {_size(limit)} for one member; not "
                             f"read (-o {option}=N raises the limit)", location=where)
        if compressed is not None and size > RATIO_FLOOR and size > self.ratio * max(compressed, 1):
            raise InputError(f"inflates {compressed:,} bytes to {_size(size)} ({size // max(compressed, 1)}x, over "
                             f"the limit of {self.ratio}x): refused as a likely zip bomb; not read (-o max_ratio=N "
                             "raises the limit)", location=where)

    def inflated(self, compressed: int) -> int:
        """The most a compressed file of `compressed` bytes may inflate to (gzip declares no size)."""
        return min(self.member_bytes, max(RATIO_FLOOR, self.ratio * compressed))


def _positive(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    number = int(str(value).replace("_", ""))
    if number <= 0:
        raise ValueError(f"invalid value {value!r}: a positive integer is needed")
    return number


class CappedReader(io.RawIOBase):
    """A binary stream that never yields more than `limit` bytes and fails only with InputError.

    `option` names in the error the option that lifts the limit (e.g. "max_document_bytes"). Seeking is
    passed through when the inner stream can seek (a folder's file, the second pass of a scan).
    """

    def __init__(self, inner: IO[bytes], where: str, limit: int, option: str) -> None:
        self._inner, self.where, self.limit, self._option = inner, where, limit, option
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._guard(self._inner.seekable)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._guard(lambda: self._inner.seek(offset, whence))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # One byte past the limit is asked for, so a stream that goes on is told apart from one that ends.
        want = min(len(view), _CHUNK, self.limit + 1 - self._pos)
        if want <= 0:
            self._over()
        data = self._guard(lambda: self._inner.read(want))
        n = len(data)
        view[:n] = data
        self._pos += n
        if self._pos > self.limit:
            self._over()
        return n

    def _over(self) -> None:
        raise InputError(f"more than {_size(self.limit)} uncompressed: refused as a likely zip or gzip bomb; the "
                         f"rest is not read (-o {self._option}=N raises the limit)", location=self.where)

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except InputError:
            raise
        except READ_ERRORS as exc:
            raise InputError(f"cannot read ({type(exc).__name__}: {exc}); the archive or file is truncated or "
                             "corrupt", location=self.where) from exc

    def close(self) -> None:
        # Closing a broken stream must not hide the error that brought us here.
        with contextlib.suppress(*READ_ERRORS):
            self._inner.close()
        super().close()
