"""Mattermost bulk export: the JSON-lines file `mmctl export create` writes (plain `.jsonl`, or a zip
holding it and a `data/` folder of attachments, or that zip unpacked into a folder).

Format facts (research/formats.md §2): one `{"type": kind, kind: {...}}` object per line; `version`
first; then role, scheme, emoji, team, channel, user (carrying its team and channel memberships),
bot, post (with nested replies, reactions and attachments), direct_channel (old `members`, v11
`participants`), direct_post. Posts carry no ids and are written in post-id order, not by channel.

Identity (DESIGN §2): the native keys are computed in _mattermost.py, shared with the live-API form
(mattermost_api.py) so both produce the same ids: names, channel/author/create_at for posts,
numbered in post-id order (= file order) when two posts share a key.

Streaming (the first pass in _mm_index.py, the second in _mm_reader.py): a first pass reads the file
line by line and keeps teams, channels, users, emoji and
memberships (O(users + channels + memberships)) plus, per channel, the byte offsets and line numbers
of its post lines (16 bytes a post, never the posts). The second pass emits in DESIGN order and reads
messages channel by channel by seeking to those offsets, so at most one channel's messages are held
(they must be sorted: exported replies are not in time order). A zip member cannot seek cheaply
(deflate has no random access), so the JSONL is copied to an anonymous temp file during the first
pass; a plain file or a folder is read in place.

Bad input never vanishes: a line that is not JSON, over Mattermost's 16 MiB line limit
(`maxScanTokenSize` of its importer), of an unknown type, or describing something that cannot be placed
becomes an `Unreadable` (a reject naming file:line) or a `Skipped` (with its reason). A file whose
first line is not a version line is not a bulk export: InputError. `since` is ignored: an export is a
full snapshot, and re-loading it is idempotent.

Unreadable codes (validate/rules.py): CM001 a line that is not JSON or is over the size limit; CM002 a
record without a required field or of the wrong shape (also a reply whose root post is unreadable, a
reaction without user or emoji); CM003 an attachment path that escapes data/; CM004 an unreadable
create_at; CM005 a post in a channel the export does not declare. Role and scheme lines, unknown line
types, a repeated version line and lines superseded by a later one of the same name are `Skipped`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, ClassVar

from chatmigrate.errors import InputError
from chatmigrate.extractors._files import ExportFiles, looks_like_zip
from chatmigrate.extractors._limits import LIMIT_OPTIONS, Limits
from chatmigrate.extractors._mattermost import DEFAULT_SCOPE, SOURCE, name_key
from chatmigrate.extractors._mm_index import (
    MAX_LINE_BYTES,
    Attachments,
    Indexer,
    Tee,
    file_starts_with_version,
    first_line_is_version,
    root_jsonl,
    temporary_copy,
)
from chatmigrate.extractors._mm_reader import Reader
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.ids import record_id
from chatmigrate.model import File, Item

__all__ = ["MattermostExport"]


class MattermostExport(Source):
    """Reads a Mattermost bulk export (see the module docstring for format, identity and streaming)."""

    name: ClassVar[str] = "mattermost-export"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "scope": Option("server the ids are scoped to (default: mattermost)"),
        "max_line_bytes": Option("longest JSONL line read, in bytes", int, minimum=1),
        "max_member_bytes": LIMIT_OPTIONS["max_member_bytes"],
        "max_ratio": LIMIT_OPTIONS["max_ratio"],
    }
    # An export is a snapshot: `since` is ignored, and re-loading it is idempotent.
    capabilities: ClassVar[Capabilities] = Capabilities(files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        path = Path(location)
        try:
            if path.is_dir():
                entries = list(path.iterdir())
                if len(entries) == 1 and entries[0].is_dir():  # an unpacked zip's single top folder
                    entries = list(entries[0].iterdir())
                candidates = [p for p in entries if p.is_file() and p.suffix.lower() in (".jsonl", ".json")]
                return any(file_starts_with_version(p) for p in candidates[:20])
            if not path.is_file():
                return False
            if looks_like_zip(path):
                files = ExportFiles(location)
                try:
                    return any(cls._is_bulk(files, member) for member in root_jsonl(files.names())[:20])
                finally:
                    files.close()
            return file_starts_with_version(path)
        except (OSError, InputError, ValueError):
            return False

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(location, options)
        self._scope = self.option("scope", DEFAULT_SCOPE)
        self.max_line_bytes = self.option("max_line_bytes", MAX_LINE_BYTES)
        self._limits = Limits.from_options(self.options)
        self._user_ids: dict[str, str] = {}
        # Attachment members that could not be read: open_file must not hand them to a target.
        self._unreadable_members: set[str] = set()

    @property
    def scope(self) -> str:
        return self._scope

    def _id(self, kind: str, native_key: str) -> str:
        return record_id(SOURCE, self.scope, kind, native_key)

    def _user_id(self, username: str) -> str:
        # Cached: every message and reaction needs its author's id, and users are few.
        user_id = self._user_ids.get(username)
        if user_id is None:
            user_id = self._user_ids[username] = self._id("user", name_key(username))
        return user_id

    # -- opening --------------------------------------------------------------------------------
    def _open(self, stack: ExitStack) -> tuple[IO[bytes], IO[bytes], str, Attachments]:
        """(handle to scan, handle to seek in afterwards, how to cite the file, attachments)."""
        path = Path(self.location)
        if not path.exists():
            raise InputError("no such file or folder", location=self.location)
        if not (path.is_dir() or looks_like_zip(path)):
            handle = stack.enter_context(path.open("rb"))
            return handle, handle, path.name, Attachments(None, path.parent, self.location)
        files = ExportFiles(self.location, self._limits)
        stack.callback(files.close)
        members = [m for m in root_jsonl(files.names()) if self._is_bulk(files, m)]
        if not members:
            raise InputError("no bulk-export JSONL file (a .jsonl whose first line is "
                             '{"type":"version",…}) at the top of this export; is it a Mattermost export?',
                             location=self.location)
        if len(members) > 1:
            raise InputError(f"several bulk-export JSONL files ({', '.join(members)}); unpack the export and "
                             "point chatmigrate at one of them", location=self.location)
        member = members[0]
        attachments = Attachments(files, None, self.location)
        if path.is_dir():
            handle = stack.enter_context(files.open(member))
            return handle, handle, files.describe(member), attachments
        # A deflated member has no random access: copy it while scanning, then seek in the copy.
        copy = stack.enter_context(temporary_copy())
        member_handle = stack.enter_context(files.open(member))
        scan = stack.enter_context(io.BufferedReader(Tee(member_handle, copy), 1 << 20))
        return scan, copy, files.describe(member), attachments

    @staticmethod
    def _is_bulk(files: ExportFiles, member: str) -> bool:
        with files.open(member) as handle:
            return first_line_is_version(handle)

    # -- the stream ---------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        with ExitStack() as stack:
            scan, seekable, where, attachments = self._open(stack)
            self._attachments = attachments
            stack.callback(setattr, self, "_attachments", None)
            index = Indexer(self._id, self.max_line_bytes).scan(scan, where)
            seekable.flush()
            yield from Reader(self, seekable, where, attachments, index).items()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of an attachment this export holds (`data/<path>`), while `records` runs; else None."""
        attachments = getattr(self, "_attachments", None)
        if attachments is None or not file.path or not file.path.startswith("data/"):
            return None
        member = attachments.locate(file.path.removeprefix("data/"))
        if member is None or member in self._unreadable_members:
            return None
        return attachments.open(member)
