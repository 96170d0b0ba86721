"""The first pass over a Mattermost bulk export (mattermost_export.py): reading its lines, locating its
posts per channel (byte offset and line number, 16 bytes a post) and keeping everything else, which is
O(users + channels + memberships); the second pass (_mm_reader.py) reads the posts channel by channel."""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson

from chatmigrate.errors import InputError
from chatmigrate.extractors._fields import UNREADABLE, ListOf, Spec, checked, either, is_number, is_text
from chatmigrate.extractors._files import ExportFiles
from chatmigrate.extractors._mattermost import DirectChannelNames, channel_key, direct_names, name_key
from chatmigrate.model import ChannelKind, Origin, Skipped, Unreadable

# Mattermost's bulk importer refuses longer lines (app/import.go maxScanTokenSize, MM-22314).
MAX_LINE_BYTES = 16 * 1024 * 1024
RAW_EXCERPT = 300  # bytes of an oversized or broken line kept in its reject
# Fast paths for the first pass: the exporter writes these fields first, so the channel of a post is
# known without decoding the whole line. Anything else (other key order, escapes) is fully decoded.
TYPE_FAST = re.compile(rb'^\s*\{"type":"([a-z_]+)"')
_POST_FAST = re.compile(rb'^\{"type":"post","post":\{"team":"([^"\\]*)","channel":"([^"\\]*)"')
_DIRECT_POST_FAST = re.compile(rb'^\{"type":"direct_post","direct_post":\{"channel_members":\[([^\]\\]*)\]')
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



# -- reading the export ---------------------------------------------------------------------------
def read_line(handle: IO[bytes], limit: int) -> tuple[bytes, int, bool]:
    """(line, bytes consumed, too long). An oversized line is consumed in chunks, only its start kept."""
    raw = handle.readline(limit + 1)
    if len(raw) <= limit or raw.endswith(b"\n"):
        return raw, len(raw), False
    consumed = len(raw)
    while True:
        chunk = handle.readline(1 << 20)
        consumed += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return raw[:RAW_EXCERPT], consumed, True


class Tee(io.RawIOBase):
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
def temporary_copy() -> Iterator[IO[bytes]]:
    """An anonymous temp file (removed on close, even after a crash on POSIX)."""
    with tempfile.TemporaryFile(prefix="chatmigrate-mm-") as copy:
        yield copy


def first_line_is_version(handle: IO[bytes]) -> bool:
    raw = handle.readline(65536)
    try:
        doc = orjson.loads(raw.lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("type") == "version"


def file_starts_with_version(path: Path) -> bool:
    with path.open("rb") as handle:
        return first_line_is_version(handle)


def root_jsonl(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if "/" not in n and n.lower().endswith((".jsonl", ".json")))


class Attachments:
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
class Chan:
    key: str
    id: str
    kind: ChannelKind
    raw: dict[str, Any] | None
    origin: Origin | None
    names: DirectChannelNames | None = None
    members: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Lines:
    """Byte offsets and line numbers of a set of lines, compact (two machine-word arrays)."""

    offsets: array = field(default_factory=lambda: array("q"))
    numbers: array = field(default_factory=lambda: array("q"))

    def add(self, offset: int, number: int) -> None:
        self.offsets.append(offset)
        self.numbers.append(number)

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(slots=True)
class Index:
    """What the first pass learnt: everything but the posts, which are only located."""

    teams: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    channels: dict[str, Chan] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    bots: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    emoji: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    memberships: dict[str, list[str]] = field(default_factory=dict)
    user_teams: dict[str, list[str]] = field(default_factory=dict)
    posts: dict[str, Lines] = field(default_factory=dict)
    # Lines re-read and reported in the second pass: skipped kinds, broken or superseded lines.
    other: Lines = field(default_factory=Lines)
    superseded: list[Skipped] = field(default_factory=list)
    version_line: int = 0
    broken: Unreadable | None = None  # the rest of the file, when it could not be read to the end


class Indexer:
    """The first pass over the JSONL: keeps everything but the posts, which it only locates."""

    def __init__(self, id_of: Callable[[str, str], str], max_line_bytes: int) -> None:
        self._id = id_of
        self.max_line_bytes = max_line_bytes

    def scan(self, handle: IO[bytes], where: str) -> Index:
        return self._scan(handle, where)

    def _scan(self, handle: IO[bytes], where: str) -> Index:
        index = Index()
        offset = 0
        number = 0
        while True:
            try:
                raw, consumed, too_long = read_line(handle, self.max_line_bytes)
            except InputError as exc:  # a folder's file that fails (a zip member ends early: Tee)
                index.broken = _broken_rest(exc, where, number, offset)
                break
            if not consumed:
                tee = getattr(handle, "raw", None)
                if isinstance(tee, Tee) and tee.error is not None:
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

    def _index_line(self, raw: bytes, offset: int, origin: Origin, index: Index) -> None:
        fast = TYPE_FAST.match(raw)
        kind = fast.group(1).decode() if fast else None
        if kind == "post":
            match = _POST_FAST.match(raw)
            key = _channel_of(match) if match else None
            if key is not None:
                index.posts.setdefault(key, Lines()).add(offset, origin.line or 0)
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

    def _index_direct_post(self, members: list[str], offset: int, origin: Origin, index: Index) -> None:
        names = direct_names(members)
        if names.key not in index.channels:
            # Mattermost's importer creates a DM on its first direct_post; so do we (recorded in props).
            index.channels[names.key] = Chan(names.key, self._id("channel", names.key), names.kind, None, origin,
                                              names)
        index.posts.setdefault(names.key, Lines()).add(offset, origin.line or 0)

    def _index_record(self, kind: str, body: dict[str, Any], offset: int, origin: Origin, index: Index) -> bool:
        """Store a non-post line, or say False to have it reported in the second pass."""
        if kind == "post":
            if not isinstance(body.get("team"), str) or not isinstance(body.get("channel"), str):
                return False
            key = channel_key(body["team"], body["channel"])
            index.posts.setdefault(key, Lines()).add(offset, origin.line or 0)
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
            index.channels[key] = Chan(key, self._id("channel", key), chan_kind, body, origin)
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
              origin: Origin, record_kind: str, index: Index) -> bool:
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
    def _index_memberships(body: dict[str, Any], index: Index) -> None:
        username = name_key(body["username"])
        for team in body.get("teams") or ():
            if not isinstance(team, dict) or not isinstance(team.get("name"), str):
                continue
            index.user_teams.setdefault(username, []).append(name_key(team["name"]))
            for channel in team.get("channels") or ():
                if isinstance(channel, dict) and isinstance(channel.get("name"), str):
                    index.memberships.setdefault(channel_key(team["name"], channel["name"]), []).append(username)

    def _index_direct_channel(self, body: dict[str, Any], origin: Origin, index: Index) -> bool:
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
        index.channels[names.key] = Chan(names.key, self._id("channel", names.key), names.kind, body, origin, names)
        return True



KNOWN_KINDS = {"version", "role", "scheme", "team", "channel", "user", "bot", "post", "direct_channel",
                "direct_post", "emoji"}
_KIND_OF_LINE = {"team": "teams", "channel": "channels", "direct_channel": "channels", "user": "users",
                 "bot": "users", "post": "messages", "direct_post": "messages", "emoji": "emoji"}


def record_kind(line_type: str) -> str:
    return _KIND_OF_LINE.get(line_type, line_type)


def shape_problem(kind: str, body: Any) -> str:
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
