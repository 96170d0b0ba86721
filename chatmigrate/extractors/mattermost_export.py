"""Mattermost bulk export: the JSON-lines file `mmctl export create` writes (plain `.jsonl`, or a zip
holding it and a `data/` folder of attachments, or that zip unpacked into a folder).

Format facts (research/formats.md §2): one `{"type": kind, kind: {...}}` object per line; `version`
first; then role, scheme, emoji, team, channel, user (carrying its team and channel memberships),
bot, post (with nested replies, reactions and attachments), direct_channel (old `members`, v11
`participants`), direct_post. Posts carry no ids and are written in post-id order, not by channel.

Identity (DESIGN §2): the native keys are computed in _mattermost.py, shared with the live-API form
(mattermost_api.py) so both produce the same ids: names, channel/author/create_at for posts,
numbered in post-id order (= file order) when two posts share a key.

Streaming: a first pass reads the file line by line and keeps teams, channels, users, emoji and
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

import hashlib
import io
import mimetypes
import re
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import orjson

from chatmigrate.errors import InputError
from chatmigrate.extractors._fields import (
    UNREADABLE,
    ListOf,
    Spec,
    checked,
    either,
    is_bool,
    is_number,
    is_object,
    is_text,
)
from chatmigrate.extractors._files import ExportFiles, looks_like_zip
from chatmigrate.extractors._limits import OPTIONS as LIMIT_OPTIONS
from chatmigrate.extractors._limits import Limits
from chatmigrate.extractors._mattermost import (
    DEFAULT_SCOPE,
    EPOCH,
    SOURCE,
    DirectChannelNames,
    Sequencer,
    channel_key,
    direct_names,
    emoji_file_key,
    file_key,
    message_kind,
    ms_to_datetime,
    ms_value,
    name_key,
    post_key,
    stream_key,
    user_role,
)
from chatmigrate.ids import record_id
from chatmigrate.markup.mattermost import to_markdown
from chatmigrate.model import (
    Channel,
    ChannelKind,
    Checkpoint,
    Emoji,
    File,
    Item,
    Message,
    Origin,
    Reaction,
    Skipped,
    Team,
    Unreadable,
    User,
)

# Mattermost's bulk importer refuses longer lines (app/import.go maxScanTokenSize, MM-22314).
MAX_LINE_BYTES = 16 * 1024 * 1024
_RAW_EXCERPT = 300  # bytes of an oversized or broken line kept in its reject
# Fast paths for the first pass: the exporter writes these fields first, so the channel of a post is
# known without decoding the whole line. Anything else (other key order, escapes) is fully decoded.
_TYPE_FAST = re.compile(rb'^\s*\{"type":"([a-z_]+)"')
_POST_FAST = re.compile(rb'^\{"type":"post","post":\{"team":"([^"\\]*)","channel":"([^"\\]*)"')
_DIRECT_POST_FAST = re.compile(rb'^\{"type":"direct_post","direct_post":\{"channel_members":\[([^\]\\]*)\]')

# Post fields that become canonical columns; every other field is kept verbatim in props.
_CONSUMED = {"team", "channel", "user", "message", "create_at", "edit_at", "is_pinned", "reactions",
             "replies", "attachments", "type", "channel_members"}
# User fields kept in props (display preferences, notify settings and passwords are not migrated).
_USER_PROPS = ("nickname", "position", "locale", "roles", "auth_service", "auth_data", "profile_image")
_SKIPPED_KINDS = {"role": "roles", "scheme": "schemes"}
# The type of every field read (see _fields.py): a field of another type is left out and reported.
_MS = either(is_number, is_text)  # ms_to_datetime also reads digits in a string
_BODY_SPECS = {
    "team": Spec(name=is_text, display_name=is_text, description=is_text),
    "channel": Spec(team=is_text, name=is_text, type=is_text, display_name=is_text, header=is_text, purpose=is_text,
                    deleted_at=_MS),
    "user": Spec(username=is_text, email=is_text, first_name=is_text, last_name=is_text, nickname=is_text,
                 roles=is_text, delete_at=_MS,
                 teams=ListOf(Spec(name=is_text, channels=ListOf(Spec(name=is_text))))),
    "bot": Spec(username=is_text, display_name=is_text, delete_at=_MS),
    "direct_channel": Spec(members=ListOf(is_text), participants=ListOf(Spec(username=is_text)), header=is_text),
    "emoji": Spec(name=is_text, image=is_text),
}
# Reactions, replies and attachments of the wrong shape are already rejected one by one (CM002).
_POST = Spec(message=is_text, type=is_text, props=is_object, edit_at=_MS, is_pinned=is_bool)


# -- reading the export ---------------------------------------------------------------------------
def _read_line(handle: IO[bytes], limit: int) -> tuple[bytes, int, bool]:
    """(line, bytes consumed, too long). An oversized line is consumed in chunks, only its start kept."""
    raw = handle.readline(limit + 1)
    if len(raw) <= limit or raw.endswith(b"\n"):
        return raw, len(raw), False
    consumed = len(raw)
    while True:
        chunk = handle.readline(1 << 20)
        consumed += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return raw[:_RAW_EXCERPT], consumed, True


class _Tee(io.RawIOBase):
    """Reads a stream and writes what it read to `copy` (the zip member → temp file copy).

    A member that cannot be read to its end (corrupt, over a limit) ends early instead of failing:
    the scan keeps every line before the damage, and `error` says what happened.
    """

    def __init__(self, source: IO[bytes], copy: IO[bytes]) -> None:
        self._source, self._copy = source, copy
        self.error: InputError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        try:
            # read1: one read of the member at a time, so a failure loses only that read's bytes.
            data = self._source.read1(len(buffer))  # type: ignore[attr-defined]
        except InputError as exc:
            self.error = exc
            return 0
        buffer[:len(data)] = data
        self._copy.write(data)
        return len(data)


@contextmanager
def _temporary_copy() -> Iterator[IO[bytes]]:
    """An anonymous temp file (removed on close, even after a crash on POSIX)."""
    with tempfile.TemporaryFile(prefix="chatmigrate-mm-") as copy:
        yield copy


def _first_line_is_version(handle: IO[bytes]) -> bool:
    raw = handle.readline(65536)
    try:
        doc = orjson.loads(raw.lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("type") == "version"


def _file_starts_with_version(path: Path) -> bool:
    with path.open("rb") as handle:
        return _first_line_is_version(handle)


def _root_jsonl(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if "/" not in n and n.lower().endswith((".jsonl", ".json")))


class _Attachments:
    """Attachment and emoji image bytes: `data/<path>` inside the zip or folder, or next to a plain file."""

    def __init__(self, files: ExportFiles | None, folder: Path | None, where: str) -> None:
        self._files, self._folder, self.where = files, folder, where

    def locate(self, path: str) -> str | None:
        member = f"data/{path}"
        if self._files is not None:
            return member if self._files.exists(member) else None
        assert self._folder is not None
        full = self._folder / member
        data_root = (self._folder / "data").resolve()
        if full.is_file() and full.resolve().is_relative_to(data_root):
            return member
        return None

    def open(self, member: str) -> IO[bytes]:
        return self._files.open(member) if self._files is not None else (self._folder / member).open("rb")

    def measure(self, member: str) -> tuple[int, str]:
        """(size, sha256) of a member; InputError naming it when it cannot be read."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self.open(member) as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:  # a file next to a plain .jsonl (zip members fail as InputError already)
            raise InputError(f"cannot read ({exc})", location=member) from exc
        return size, digest.hexdigest()


def safe_relative(path: str) -> bool:
    """An attachment path may not leave data/: no absolute paths, drive letters or `..`."""
    if not path or path.startswith(("/", "\\")) or "\\" in path or "\x00" in path:
        return False
    parts = PurePosixPath(path).parts
    return ".." not in parts and not (parts and ":" in parts[0])


@dataclass(slots=True)
class _Chan:
    key: str
    id: str
    kind: ChannelKind
    raw: dict[str, Any] | None
    origin: Origin | None
    names: DirectChannelNames | None = None
    members: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Lines:
    """Byte offsets and line numbers of a set of lines, compact (two machine-word arrays)."""

    offsets: array = field(default_factory=lambda: array("q"))
    numbers: array = field(default_factory=lambda: array("q"))

    def add(self, offset: int, number: int) -> None:
        self.offsets.append(offset)
        self.numbers.append(number)

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(slots=True)
class _Index:
    """What the first pass learnt: everything but the posts, which are only located."""

    teams: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    channels: dict[str, _Chan] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    bots: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    emoji: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    memberships: dict[str, list[str]] = field(default_factory=dict)
    user_teams: dict[str, list[str]] = field(default_factory=dict)
    posts: dict[str, _Lines] = field(default_factory=dict)
    # Lines re-read and reported in the second pass: skipped kinds, broken or superseded lines.
    other: _Lines = field(default_factory=_Lines)
    superseded: list[Skipped] = field(default_factory=list)
    version_line: int = 0
    broken: Unreadable | None = None  # the rest of the file, when it could not be read to the end


class MattermostExport:
    """Reads a Mattermost bulk export (see the module docstring for format, identity and streaming)."""

    name: ClassVar[str] = "mattermost-export"
    source: ClassVar[str] = SOURCE
    # The -o options it accepts (name → help); the CLI and sync refuse any other name.
    known_options: ClassVar[dict[str, str]] = {
        "scope": "server the ids are scoped to (default: mattermost)",
        "max_line_bytes": "longest JSONL line read, in bytes (an integer)",
        "max_member_bytes": LIMIT_OPTIONS["max_member_bytes"],
        "max_ratio": LIMIT_OPTIONS["max_ratio"],
    }

    @classmethod
    def detect(cls, location: str) -> bool:
        path = Path(location)
        try:
            if path.is_dir():
                entries = list(path.iterdir())
                if len(entries) == 1 and entries[0].is_dir():  # an unpacked zip's single top folder
                    entries = list(entries[0].iterdir())
                candidates = [p for p in entries if p.is_file() and p.suffix.lower() in (".jsonl", ".json")]
                return any(_file_starts_with_version(p) for p in candidates[:20])
            if not path.is_file():
                return False
            if looks_like_zip(path):
                files = ExportFiles(location)
                try:
                    return any(cls._is_bulk(files, member) for member in _root_jsonl(files.names())[:20])
                finally:
                    files.close()
            return _file_starts_with_version(path)
        except (OSError, InputError, ValueError):
            return False

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        self.location = location
        self.options = dict(options or {})
        self._scope = self.options.get("scope") or DEFAULT_SCOPE
        self.max_line_bytes = int(self.options.get("max_line_bytes") or MAX_LINE_BYTES)
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
    def _open(self, stack: ExitStack) -> tuple[IO[bytes], IO[bytes], str, _Attachments]:
        """(handle to scan, handle to seek in afterwards, how to cite the file, attachments)."""
        path = Path(self.location)
        if not path.exists():
            raise InputError("no such file or folder", location=self.location)
        if not (path.is_dir() or looks_like_zip(path)):
            handle = stack.enter_context(path.open("rb"))
            return handle, handle, path.name, _Attachments(None, path.parent, self.location)
        files = ExportFiles(self.location, self._limits)
        stack.callback(files.close)
        members = [m for m in _root_jsonl(files.names()) if self._is_bulk(files, m)]
        if not members:
            raise InputError("no bulk-export JSONL file (a .jsonl whose first line is "
                             '{"type":"version",…}) at the top of this export; is it a Mattermost export?',
                             location=self.location)
        if len(members) > 1:
            raise InputError(f"several bulk-export JSONL files ({', '.join(members)}); unpack the export and "
                             "point chatmigrate at one of them", location=self.location)
        member = members[0]
        attachments = _Attachments(files, None, self.location)
        if path.is_dir():
            handle = stack.enter_context(files.open(member))
            return handle, handle, files.describe(member), attachments
        # A deflated member has no random access: copy it while scanning, then seek in the copy.
        copy = stack.enter_context(_temporary_copy())
        member_handle = stack.enter_context(files.open(member))
        scan = stack.enter_context(io.BufferedReader(_Tee(member_handle, copy), 1 << 20))
        return scan, copy, files.describe(member), attachments

    @staticmethod
    def _is_bulk(files: ExportFiles, member: str) -> bool:
        with files.open(member) as handle:
            return _first_line_is_version(handle)

    # -- the stream ---------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        with ExitStack() as stack:
            scan, seekable, where, attachments = self._open(stack)
            self._attachments = attachments
            stack.callback(setattr, self, "_attachments", None)
            index = self._scan(scan, where)
            seekable.flush()
            yield from _Reader(self, seekable, where, attachments, index).items()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of an attachment this export holds (`data/<path>`), while `records` runs; else None."""
        attachments = getattr(self, "_attachments", None)
        if attachments is None or not file.path or not file.path.startswith("data/"):
            return None
        member = attachments.locate(file.path.removeprefix("data/"))
        if member is None or member in self._unreadable_members:
            return None
        return attachments.open(member)

    # -- first pass -------------------------------------------------------------------------------
    def _scan(self, handle: IO[bytes], where: str) -> _Index:
        index = _Index()
        offset = 0
        number = 0
        while True:
            try:
                raw, consumed, too_long = _read_line(handle, self.max_line_bytes)
            except InputError as exc:  # a folder's file that fails (a zip member ends early: _Tee)
                index.broken = _broken_rest(exc, where, number, offset)
                break
            if not consumed:
                tee = getattr(handle, "raw", None)
                if isinstance(tee, _Tee) and tee.error is not None:
                    index.broken = _broken_rest(tee.error, where, number, offset)
                break
            number += 1
            start, offset = offset, offset + consumed
            if not too_long and not raw.strip():
                continue
            if not index.version_line:
                self._check_version(raw, too_long, Origin(where, number))
                index.version_line = number
                continue
            if too_long:
                index.other.add(start, number)
                continue
            self._index_line(raw, start, Origin(where, number), index)
        if not index.version_line:
            raise InputError("empty file: a Mattermost bulk export starts with a version line", location=where)
        return index

    @staticmethod
    def _check_version(raw: bytes, too_long: bool, origin: Origin) -> None:
        doc: Any = None
        if not too_long:
            try:
                doc = orjson.loads(raw.lstrip(b"\xef\xbb\xbf"))
            except orjson.JSONDecodeError:
                doc = None
        if not isinstance(doc, dict) or doc.get("type") != "version":
            raise InputError('the first line must be the version line {"type":"version","version":1}; '
                             "this is not a Mattermost bulk export, or its start is missing", location=str(origin))
        if doc.get("version") != 1:
            raise InputError(f"bulk format version {doc.get('version')!r} is not supported (chatmigrate reads "
                             "version 1, which every Mattermost release so far writes)", location=str(origin))

    def _index_line(self, raw: bytes, offset: int, origin: Origin, index: _Index) -> None:
        fast = _TYPE_FAST.match(raw)
        kind = fast.group(1).decode() if fast else None
        if kind == "post":
            match = _POST_FAST.match(raw)
            key = _channel_of(match) if match else None
            if key is not None:
                index.posts.setdefault(key, _Lines()).add(offset, origin.line or 0)
                return
        if kind == "direct_post":
            match = _DIRECT_POST_FAST.match(raw)
            if match:
                try:
                    members = orjson.loads(b"[" + match.group(1) + b"]")
                except orjson.JSONDecodeError:
                    members = None
                if members and all(isinstance(m, str) for m in members):
                    self._index_direct_post(members, offset, origin, index)
                    return
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            index.other.add(offset, origin.line or 0)
            return
        kind = doc.get("type") if isinstance(doc, dict) else None
        body = doc.get(kind) if isinstance(kind, str) else None
        if isinstance(body, dict) and kind in _BODY_SPECS:
            clean, bad = checked(body, _BODY_SPECS[kind])
            body = {**clean, UNREADABLE: bad} if bad else body
        if not isinstance(body, dict) or not self._index_record(kind, body, offset, origin, index):
            index.other.add(offset, origin.line or 0)

    def _index_direct_post(self, members: list[str], offset: int, origin: Origin, index: _Index) -> None:
        names = direct_names(members)
        if names.key not in index.channels:
            # Mattermost's importer creates a DM on its first direct_post; so do we (recorded in props).
            index.channels[names.key] = _Chan(names.key, self._id("channel", names.key), names.kind, None, origin,
                                              names)
        index.posts.setdefault(names.key, _Lines()).add(offset, origin.line or 0)

    def _index_record(self, kind: str, body: dict[str, Any], offset: int, origin: Origin, index: _Index) -> bool:
        """Store a non-post line, or say False to have it reported in the second pass."""
        if kind == "post":
            if not isinstance(body.get("team"), str) or not isinstance(body.get("channel"), str):
                return False
            key = channel_key(body["team"], body["channel"])
            index.posts.setdefault(key, _Lines()).add(offset, origin.line or 0)
        elif kind == "direct_post":
            members = body.get("channel_members")
            if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
                return False
            self._index_direct_post(members, offset, origin, index)
        elif kind == "team":
            return self._keep(index.teams, body.get("name"), body, origin, "teams", index)
        elif kind == "channel":
            if not isinstance(body.get("team"), str) or not isinstance(body.get("name"), str):
                return False
            key = channel_key(body["team"], body["name"])
            chan_kind: ChannelKind = "private" if body.get("type") == "P" else "public"
            previous = index.channels.get(key)
            if previous is not None and previous.raw is not None:
                index.superseded.append(self._superseded("channels", previous.raw, previous.origin, origin))
            index.channels[key] = _Chan(key, self._id("channel", key), chan_kind, body, origin)
        elif kind == "user":
            if not self._keep(index.users, body.get("username"), body, origin, "users", index):
                return False
            self._index_memberships(body, index)
        elif kind == "bot":
            return self._keep(index.bots, body.get("username"), body, origin, "users", index)
        elif kind == "direct_channel":
            return self._index_direct_channel(body, origin, index)
        elif kind == "emoji":
            return self._keep(index.emoji, body.get("name"), body, origin, "emoji", index)
        else:
            return False  # role, scheme, a second version line, unknown kinds: reported later
        return True

    def _keep(self, table: dict[str, tuple[dict[str, Any], Origin]], name: Any, body: dict[str, Any],
              origin: Origin, record_kind: str, index: _Index) -> bool:
        if not isinstance(name, str) or not name.strip():
            return False
        key = name_key(name)
        if key in table:
            # Mattermost's importer upserts by name, so the last line wins; the earlier one is reported.
            old_body, old_origin = table[key]
            index.superseded.append(self._superseded(record_kind, old_body, old_origin, origin))
        table[key] = (body, origin)
        return True

    @staticmethod
    def _superseded(record_kind: str, raw: Any, old: Origin | None, new: Origin) -> Skipped:
        return Skipped(record_kind, f"superseded by line {new.line}, which has the same name (Mattermost's importer "
                       "also keeps the last one)", raw, old)

    @staticmethod
    def _index_memberships(body: dict[str, Any], index: _Index) -> None:
        username = name_key(body["username"])
        for team in body.get("teams") or ():
            if not isinstance(team, dict) or not isinstance(team.get("name"), str):
                continue
            index.user_teams.setdefault(username, []).append(name_key(team["name"]))
            for channel in team.get("channels") or ():
                if isinstance(channel, dict) and isinstance(channel.get("name"), str):
                    index.memberships.setdefault(channel_key(team["name"], channel["name"]), []).append(username)

    def _index_direct_channel(self, body: dict[str, Any], origin: Origin, index: _Index) -> bool:
        members: list[str] = []
        for entry in body.get("members") or body.get("participants") or ():
            # Old exports list usernames in `members`; Mattermost 11 lists objects in `participants`.
            name = entry.get("username") if isinstance(entry, dict) else entry
            if isinstance(name, str) and name.strip():
                members.append(name)
        if not members:
            return False
        names = direct_names(members)
        previous = index.channels.get(names.key)
        if previous is not None and previous.raw is not None:
            index.superseded.append(self._superseded("channels", previous.raw, previous.origin, origin))
        index.channels[names.key] = _Chan(names.key, self._id("channel", names.key), names.kind, body, origin, names)
        return True


class _Reader:
    """The second pass: everything in DESIGN's stream order, messages channel by channel."""

    def __init__(self, export: MattermostExport, handle: IO[bytes], where: str, attachments: _Attachments,
                 index: _Index) -> None:
        self.x, self.handle, self.where, self.attachments, self.index = export, handle, where, attachments, index
        self.known_users = set(index.users) | set(index.bots)

    def _read(self, offset: int) -> tuple[bytes, bool]:
        self.handle.seek(offset)
        raw, _consumed, too_long = _read_line(self.handle, self.x.max_line_bytes)
        return raw, too_long

    def items(self) -> Iterator[Item]:
        if self.index.broken is not None:
            yield self.index.broken
        yield from self._other_lines()
        yield from self.index.superseded
        yield from self._teams()
        yield from self._users()
        yield from self._channels()
        yield from self._emoji()
        for chan in self.index.channels.values():
            lines = self.index.posts.get(chan.key)
            if lines:
                yield from self._channel_messages(chan, lines)
        yield from self._undeclared()

    # -- lines that are not records ------------------------------------------------------------
    def _other_lines(self) -> Iterator[Item]:
        other = self.index.other
        for offset, number in zip(other.offsets, other.numbers, strict=True):
            raw, too_long = self._read(offset)
            yield self._other_item(raw, too_long, Origin(self.where, number))

    def _other_item(self, raw: bytes, too_long: bool, origin: Origin) -> Item:
        fast = _TYPE_FAST.match(raw)
        guessed = fast.group(1).decode() if fast else "unknown"
        record_kind = _record_kind(guessed)
        if too_long:
            return Unreadable(record_kind, "CM001", f"line longer than {self.x.max_line_bytes} bytes, the limit of "
                              "Mattermost's bulk format; only its start is kept here",
                              raw.decode("utf-8", "replace"), origin)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Unreadable(record_kind, "CM001", f"line is not valid JSON ({exc})",
                              raw[:_RAW_EXCERPT].decode("utf-8", "replace"), origin)
        kind = doc.get("type") if isinstance(doc, dict) else None
        if not isinstance(kind, str):
            return Unreadable("unknown", "CM002", 'line has no "type"', doc, origin)
        if kind in _SKIPPED_KINDS:
            return Skipped(_SKIPPED_KINDS[kind], f"{kind} definitions (permissions) are not migrated", doc, origin)
        if kind == "version":
            return Skipped("version", f"repeated version line (the first is line {self.index.version_line})",
                           doc, origin)
        if kind not in _KNOWN_KINDS:
            return Skipped(_record_kind(kind), f"unknown line type {kind!r} (not part of the bulk format "
                           "chatmigrate knows; plugins add their own)", doc, origin)
        body = doc.get(kind)
        return Unreadable(_record_kind(kind), "CM002", _shape_problem(kind, body), doc, origin)

    # -- teams, users, channels, emoji -------------------------------------------------------------
    def _teams(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.teams.items():
            props = {k: raw[k] for k in ("type", "allow_open_invite", "scheme", UNREADABLE) if raw.get(k) is not None}
            yield Team(self.x._id("team", key), SOURCE, key, key, display_name=_text(raw.get("display_name")),
                       description=_text(raw.get("description")), props=props, origin=origin)

    def _users(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.users.items():
            bot = self.index.bots.get(key)
            yield self._user(key, raw, origin, bot[0] if bot else None)
        for key, (raw, origin) in self.index.bots.items():
            if key not in self.index.users:
                yield self._user(key, {}, origin, raw)

    def _user(self, key: str, raw: dict[str, Any], origin: Origin, bot: dict[str, Any] | None) -> User:
        props: dict[str, Any] = {k: raw[k] for k in _USER_PROPS if raw.get(k) not in (None, "")}
        teams = self.index.user_teams.get(key)
        if teams:
            props["teams"] = teams
        delete_at = ms_to_datetime(raw.get("delete_at"))
        if bot is not None:
            props.update({f"bot_{k}": bot[k] for k in ("owner", "description", "profile_image") if bot.get(k)})
            delete_at = delete_at or ms_to_datetime(bot.get("delete_at"))
        if delete_at is not None:
            props["deleted_at"] = delete_at.isoformat()
        _keep_unreadable(props, raw, bot)
        first, last = _text(raw.get("first_name")), _text(raw.get("last_name"))
        display = _text(raw.get("nickname")) or " ".join(p for p in (first, last) if p) or None
        if bot is not None and not display:
            display = _text(bot.get("display_name"))
        return User(self.x._id("user", key), SOURCE, key, key, email=_text(raw.get("email")), display_name=display,
                    first_name=first, last_name=last, is_bot=bot is not None, is_deleted=delete_at is not None,
                    role=user_role(str(raw.get("roles") or ""), bot is not None), props=props, origin=origin)

    def _channels(self) -> Iterator[Item]:
        for chan in self.index.channels.values():
            if chan.names is None:
                yield self._team_channel(chan)
            else:
                yield self._direct_channel(chan)

    def _team_channel(self, chan: _Chan) -> Channel:
        raw = chan.raw or {}
        team, name = chan.key.split("/", 1)
        members = tuple(dict.fromkeys(self.x._id("user", u) for u in self.index.memberships.get(chan.key, ())))
        props = {k: raw[k] for k in ("type", "scheme", UNREADABLE) if raw.get(k)}
        if team not in self.index.teams:
            props["undeclared_team"] = team
        return Channel(chan.id, SOURCE, chan.key, self.x._id("team", team), name, chan.kind,
                       display_name=_text(raw.get("display_name")) or name, topic=_text(raw.get("header")),
                       purpose=_text(raw.get("purpose")), archived_at=ms_to_datetime(raw.get("deleted_at")),
                       member_ids=members, props=props, origin=chan.origin)

    def _direct_channel(self, chan: _Chan) -> Channel:
        assert chan.names is not None
        raw = chan.raw
        props: dict[str, Any] = {}
        if raw is None:
            props["created_from"] = "direct_post"  # no direct_channel line: made from its first post
        else:
            props.update({k: raw[k] for k in ("favorited_by", "shown_by", UNREADABLE) if raw.get(k)})
        members = tuple(self.x._id("user", u) for u in chan.names.usernames)
        return Channel(chan.id, SOURCE, chan.key, None, chan.names.name, chan.kind,
                       display_name=chan.names.display_name, topic=_text((raw or {}).get("header")),
                       member_ids=members, props=props, origin=chan.origin)

    def _emoji(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.emoji.items():
            image = raw.get("image")
            file: File | None = None
            if isinstance(image, str) and image:
                problems: list[Item] = []
                result = self._file(emoji_file_key(key), image, None, problems, origin)
                yield from problems
                file = result if isinstance(result, File) else None
                if isinstance(result, Unreadable):
                    yield result
            props = {UNREADABLE: raw[UNREADABLE]} if raw.get(UNREADABLE) else {}
            yield Emoji(self.x._id("emoji", key), SOURCE, key, key, file=file, props=props, origin=origin)

    # -- messages ------------------------------------------------------------------------------
    def _channel_messages(self, chan: _Chan, lines: _Lines) -> Iterator[Item]:
        built: list[tuple[tuple[datetime, int, str], Message]] = []
        sequence = Sequencer()
        for offset, number in zip(lines.offsets, lines.numbers, strict=True):
            origin = Origin(self.where, number)
            raw, too_long = self._read(offset)
            if too_long:  # the first pass sends these elsewhere; kept for a file changed in between
                yield self._other_item(raw, too_long, origin)
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Unreadable("messages", "CM001", f"line is not valid JSON ({exc})",
                                 raw[:_RAW_EXCERPT].decode("utf-8", "replace"), origin)
                continue
            kind = doc.get("type") if isinstance(doc, dict) else None
            post = doc.get(kind) if isinstance(kind, str) else None
            if not isinstance(post, dict):
                yield Unreadable("messages", "CM002", _shape_problem(str(kind), post), doc, origin)
                continue
            for item in self._post(post, chan, sequence, origin):
                if isinstance(item, tuple):
                    built.append(item)
                else:
                    yield item
        built.sort(key=lambda pair: pair[0])
        cursor = 0
        for _, message in built:
            yield message
            cursor = max(cursor, _ms(message.created_at), _ms(message.edited_at))
        if built:
            # The cursor is a millisecond time the API form can pass as `since` to continue from here.
            yield Checkpoint(SOURCE, self.x.scope, chan.id, str(cursor))

    def _post(self, post: dict[str, Any], chan: _Chan, sequence: Sequencer, origin: Origin,
              ) -> Iterator[Item | tuple[tuple[datetime, int, str], Message]]:
        root = self._message(post, chan, chan.key, sequence, None, origin)
        replies = post.get("replies")
        if replies is None:
            replies = []
        elif not isinstance(replies, list):
            replies = []
            yield Unreadable("messages", "CM002", '"replies" is not a list', post.get("replies"), origin)
        if isinstance(root, Unreadable):
            yield root
            for reply in replies:
                yield Unreadable("messages", "CM002", f"reply to a post that could not be read ({root.reason})",
                                 reply, origin)
            return
        message, problems = root
        yield from problems
        yield stream_key(message, None), message
        reply_sequence = Sequencer()
        for reply in replies:
            if not isinstance(reply, dict):
                yield Unreadable("messages", "CM002", "reply is not a JSON object", reply, origin)
                continue
            result = self._message(reply, chan, message.source_id, reply_sequence, message, origin)
            if isinstance(result, Unreadable):
                yield result
                continue
            reply_message, problems = result
            yield from problems
            yield stream_key(reply_message, message.created_at), reply_message

    def _message(self, original: dict[str, Any], chan: _Chan, parent_key: str, sequence: Sequencer,
                 root: Message | None, origin: Origin) -> tuple[Message, list[Item]] | Unreadable:
        what = "reply" if root is not None else "post"
        post, bad = checked(original, _POST)
        author = post.get("user")
        if not isinstance(author, str) or not author.strip():
            return Unreadable("messages", "CM002", f"{what} without a user", original, origin)
        created = ms_value(post.get("create_at"))
        if created is None:
            return Unreadable("messages", "CM004", f"{what} create_at {post.get('create_at')!r} is not a positive "
                              "millisecond time", original, origin)
        key = post_key(parent_key, author, created, sequence(post_key(parent_key, author, created, 0)))
        message_id = self.x._id("message", key)
        problems: list[Item] = []
        text_source = post.get("message") or ""
        text = to_markdown(text_source)
        post_type = post.get("type") or ""
        mm_props = post.get("props") or {}
        props: dict[str, Any] = {k: v for k, v in post.items() if k not in _CONSUMED and v not in (None, [], {}, "")}
        if bad:
            props[UNREADABLE] = bad
        if post_type:
            props["type"] = post_type
        if text != text_source:
            props["source_text"] = text_source
        if name_key(author) not in self.known_users:
            props["username"] = author  # no user line: the validator makes a placeholder from this
        reactions = self._reactions(post.get("reactions"), origin, problems)
        created_at = ms_to_datetime(created) or EPOCH  # never None: ms_value checked it
        files = self._files(key, post.get("attachments"), created_at, origin, problems)
        message = Message(
            id=message_id, source=SOURCE, source_id=key, channel_id=chan.id, user_id=self.x._user_id(author),
            created_at=created_at, kind=message_kind(post_type, mm_props), text=text,
            thread_root_id=root.id if root is not None else None, edited_at=ms_to_datetime(post.get("edit_at")),
            is_pinned=post.get("is_pinned") is True, reactions=reactions, files=files, props=props, origin=origin)
        return message, problems

    def _reactions(self, raw: Any, origin: Origin, problems: list[Item]) -> tuple[Reaction, ...]:
        reactions: dict[tuple[str, str], Reaction] = {}
        for entry in raw if isinstance(raw, list) else ():
            user = entry.get("user") if isinstance(entry, dict) else None
            emoji = entry.get("emoji_name") if isinstance(entry, dict) else None
            if not isinstance(user, str) or not user or not isinstance(emoji, str) or not emoji.strip(":"):
                problems.append(Unreadable("reactions", "CM002", "reaction without user or emoji_name", entry, origin))
                continue
            reaction = Reaction(emoji.strip(":"), self.x._user_id(user), ms_to_datetime(entry.get("create_at")))
            # One user, one emoji, one reaction (the target's key): a repeat is the same reaction.
            reactions.setdefault((reaction.emoji, reaction.user_id), reaction)
        return tuple(reactions.values())

    def _files(self, message_key: str, raw: Any, created_at: datetime | None, origin: Origin,
               problems: list[Item]) -> tuple[File, ...]:
        files: list[File] = []
        sequence = Sequencer()
        for entry in raw if isinstance(raw, list) else ():
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str) or not path:
                problems.append(Unreadable("files", "CM002", "attachment without a path", entry, origin))
                continue
            name = PurePosixPath(path.replace("\\", "/")).name or path
            key = file_key(message_key, name, sequence(file_key(message_key, name, 0)))
            result = self._file(key, path, created_at, problems, origin)
            if isinstance(result, Unreadable):
                problems.append(result)
            else:
                files.append(result)
        return tuple(files)

    def _file(self, key: str, path: str, created_at: datetime | None, problems: list[Item],
              origin: Origin | None = None) -> File | Unreadable:
        name = PurePosixPath(path.replace("\\", "/")).name or path
        if not safe_relative(path):
            return Unreadable("files", "CM003", f"attachment path {path!r} escapes data/ (absolute, drive or ..); "
                              "refused", {"path": path}, origin)
        props: dict[str, Any] = {}
        member = self.attachments.locate(path)
        size = sha256 = None
        if member is None:
            props["missing"] = True  # exported without attachments, or lost: the record stays
        else:
            try:
                size, sha256 = self.attachments.measure(member)
            except InputError as exc:
                # A corrupt member: the file's metadata stays (marked missing), the member is reported.
                self.x._unreadable_members.add(member)
                props["missing"] = True
                props["missing_reason"] = f"{member} is in the export but cannot be read (see its CM001)"
                problems.append(Unreadable("export_files", "CM001", f"{member}: {exc.detail}",
                                           {"file": exc.location}, Origin(exc.location or member)))
        return File(self.x._id("file", key), SOURCE, key, name, mime_type=mimetypes.guess_type(name)[0],
                    size=size, sha256=sha256, path=f"data/{path}", created_at=created_at, props=props)

    def _undeclared(self) -> Iterator[Item]:
        """Posts whose team/channel has no channel line: they cannot be placed, each is rejected."""
        by_name: dict[str, list[str]] = {}
        for key, chan in self.index.channels.items():
            if chan.names is None:
                by_name.setdefault(key.split("/", 1)[1], []).append(key.split("/", 1)[0])
        for key, lines in self.index.posts.items():
            if key in self.index.channels:
                continue
            team, name = key.split("/", 1)
            elsewhere = by_name.get(name)
            hint = f" (a channel of that name is in team {', '.join(elsewhere)})" if elsewhere else ""
            reason = f"channel {name!r} of team {team!r} is not declared in the export{hint}"
            for offset, number in zip(lines.offsets, lines.numbers, strict=True):
                origin = Origin(self.where, number)
                raw, _too_long = self._read(offset)
                try:
                    post = orjson.loads(raw).get("post")
                except (orjson.JSONDecodeError, AttributeError):
                    post = raw[:_RAW_EXCERPT].decode("utf-8", "replace")
                yield Unreadable("messages", "CM005", reason, post, origin)
                for reply in (post.get("replies") or ()) if isinstance(post, dict) else ():
                    yield Unreadable("messages", "CM005", f"reply in a post whose {reason}", reply, origin)


_KNOWN_KINDS = {"version", "role", "scheme", "team", "channel", "user", "bot", "post", "direct_channel",
                "direct_post", "emoji"}
_KIND_OF_LINE = {"team": "teams", "channel": "channels", "direct_channel": "channels", "user": "users",
                 "bot": "users", "post": "messages", "direct_post": "messages", "emoji": "emoji"}


def _record_kind(line_type: str) -> str:
    return _KIND_OF_LINE.get(line_type, line_type)


def _shape_problem(kind: str, body: Any) -> str:
    if not isinstance(body, dict):
        return f'"{kind}" line without a "{kind}" object'
    required = {"team": "name", "channel": "team and name", "user": "username", "bot": "username",
                "post": "team and channel", "direct_post": "channel_members (usernames)",
                "direct_channel": "members or participants", "emoji": "name"}
    return f"{kind} without {required.get(kind, 'its required fields')}"


def _broken_rest(exc: InputError, where: str, lines: int, offset: int) -> Unreadable:
    """The part of the JSONL that could not be read: one unreadable file (how many records it held
    cannot be known); the lines before it are kept."""
    return Unreadable("export_files", "CM001", f"{exc.detail}; the rest of the file, from byte {offset:,} (after "
                      f"line {lines}), could not be read", {"file": where, "offset": offset}, Origin(where, lines + 1))


def _channel_of(match: re.Match[bytes]) -> str | None:
    """The channel key the fast path read, or None when its bytes are not UTF-8 (the full decode
    then reports the line)."""
    try:
        return channel_key(match.group(1).decode(), match.group(2).decode())
    except UnicodeDecodeError:
        return None


def _keep_unreadable(props: dict[str, Any], raw: Mapping[str, Any], bot: Mapping[str, Any] | None) -> None:
    """A user's (and its bot line's) fields of the wrong type, as read (see _fields.py)."""
    bad = {**(raw.get(UNREADABLE) or {}), **{f"bot.{k}": v for k, v in ((bot or {}).get(UNREADABLE) or {}).items()}}
    if bad:
        props[UNREADABLE] = bad


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ms(value: datetime | None) -> int:
    if value is None:
        return 0
    return (value - EPOCH) // timedelta(milliseconds=1)


__all__ = ["MattermostExport"]
