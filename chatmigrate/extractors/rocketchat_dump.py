"""Rocket.Chat `mongodump` of its database: a folder of `.bson` (or `.bson.gz`) collection files.

`location` is the dump folder (`mongodump --out=DIR` → `DIR/rocketchat/*.bson`; any database name
works when one sub-folder holds the Rocket.Chat collections) or that database folder itself. A folder
of mongoexport files works the same way: `<collection>.json` (or `.json.gz`), Extended JSON (relaxed
or canonical), one document a line (`mongoexport --collection=rocketchat_message
--out=rocketchat_message.json`; not `--jsonArray`); origins then cite line numbers.
Option `scope` (default "rocketchat") names the server in the ids; the API form uses the same
default, so a dump load and a later API sync of the same server meet on the same ids.

Documents are read one at a time (see `_bson`). Messages are not ordered in a dump, so a first pass
indexes the byte offsets of every message (and trashed message) per room, then rooms are read one
by one: memory is O(users + rooms + uploads + the largest room), never O(messages).

What becomes what (research/formats.md §3):
- `users` → User (bots by type/roles, deactivated → is_deleted; `services` — password hashes and
  login tokens — is never copied, only its key names); users found only in the trash → deleted users.
- `rocketchat_room` → Channel (c public, p private, d direct or group by member count, discussions
  with `props.parent_channel_id`); livechat/VoIP rooms → Skipped; unknown types → Unreadable.
- `rocketchat_subscription` → Channel.member_ids.
- `rocketchat_message` → Message; `_hidden` edit-history copies → `props.edit_history` of the
  current message; `rocketchat__trash` messages → Message with `deleted_at`.
- `rocketchat_custom_emoji` (+ GridFS bucket `custom_emoji`) → Emoji.
- `rocketchat_uploads` metadata (+ GridFS bucket `rocketchat_uploads` bytes: size and sha256) → the
  File records of the messages that carry them; an upload no message carries → Skipped.
A dump is a full snapshot: `since` is ignored (every run re-reads it; ids make that idempotent).
"""

from __future__ import annotations

import dataclasses
import tempfile
from array import array
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, ClassVar

from chatmigrate.errors import InputError, UsageError
from chatmigrate.extractors import _bson
from chatmigrate.extractors._limits import LIMIT_OPTIONS, Limits
from chatmigrate.extractors._rc_dumpfiles import (
    MARKER,
    PREFERRED_DATABASES,
    TRASH_KINDS,
    Collection,
    GridFs,
    collection_file,
    find_database,
)
from chatmigrate.extractors._rc_messages import (
    MessageContext,
    convert_message,
    file_from_entry,
    revision,
    timeline,
    unresolved_reaction_items,
    with_history,
)
from chatmigrate.extractors._rocketchat import (
    DEFAULT_SCOPE,
    SOURCE,
    as_time,
    convert_emoji,
    convert_room,
    convert_user,
    cursor_text,
    emoji_file,
    emoji_file_name,
    jsonable,
    native_id,
    rid_of,
)
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.model import Channel, Checkpoint, File, Item, Message, Origin, Skipped, Unreadable, User


class RocketchatDump(Source):
    name: ClassVar[str] = "rocketchat-dump"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "scope": Option("server the ids are scoped to (default: rocketchat)"),
        "max_member_bytes": LIMIT_OPTIONS["max_member_bytes"],  # a gzipped collection, inflated
        "max_ratio": LIMIT_OPTIONS["max_ratio"],
    }
    # A dump is a snapshot: `since` is ignored; GridFS bytes are given by open_file.
    capabilities: ClassVar[Capabilities] = Capabilities(files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        try:
            return bool(find_database(Path(location)))
        except OSError:
            return False

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(location, options)
        self._scope = self.option("scope", DEFAULT_SCOPE)
        self._limits = Limits.from_options(self.options)
        root = Path(location)
        if not root.exists():
            raise InputError("no such file or folder", location=location)
        found = find_database(root)
        if not found:
            raise InputError(f"no Rocket.Chat collections here (expected {MARKER}.bson, as `mongodump --out` "
                             f"writes it, or {MARKER}.json from mongoexport, in this folder or one sub-folder)",
                             location=location)
        if len(found) > 1:
            preferred = [f for f in found if f.name in PREFERRED_DATABASES]
            if len(preferred) != 1:
                names = ", ".join(f.name for f in found)
                raise UsageError(f"{location}: several databases hold Rocket.Chat collections ({names}); "
                                 "point at the one to migrate")
            found = preferred
        self.database = found[0]
        self._root = root if root.is_dir() else root.parent

    @property
    def scope(self) -> str:
        return self._scope

    # -- plumbing -----------------------------------------------------------------------------------
    def _open(self, name: str, scratch: Path | None, stack: ExitStack) -> Collection | None:
        path = collection_file(self.database, name)
        if path is None:
            return None
        try:
            where = path.relative_to(self._root).as_posix()
        except ValueError:
            where = str(path)
        return Collection(path, where, scratch, stack, self._limits)

    @staticmethod
    def _decoded(collection: Collection, kind: str) -> Iterator[tuple[int, dict[str, Any] | Unreadable]]:
        for offset, raw in collection.scan():
            if isinstance(raw, _bson.Broken):
                yield offset, collection.broken(offset, raw, kind)
                continue
            try:
                yield offset, collection.decode(raw)
            except _bson.BadDocument as exc:
                yield offset, Unreadable(kind, "CM001", exc.reason, collection.show(raw), collection.origin(offset))

    # -- the stream ---------------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        with ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatmigrate-rc-")))
            self._run = _Run(self, scratch, stack)
            stack.callback(setattr, self, "_run", None)
            yield from self._run.items()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of an upload or custom emoji image held in the dump's GridFS, while `records` runs."""
        run = getattr(self, "_run", None)
        if run is None:
            return None
        emoji_native = run.emoji_files.get(file.id)
        if emoji_native is not None:
            return run.emoji_bucket.open(emoji_native) if run.emoji_bucket is not None else None
        return run.gridfs.open(file.source_id)


class _Run:
    """One pass over a dump; holds the per-run indexes (users, rooms, offsets per room)."""

    def __init__(self, dump: RocketchatDump, scratch: Path, stack: ExitStack) -> None:
        self.dump = dump
        self.scope = dump.scope
        self.open = lambda name: dump._open(name, scratch, stack)
        self.user_by_name: dict[str, str] = {}  # username → canonical user id
        self.live_users: set[str] = set()
        self.rooms: dict[str, Channel | Skipped | Unreadable] = {}  # native room id → outcome
        self.room_time: dict[str, Any] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.used_files: set[str] = set()
        self.trash = self.open("rocketchat__trash")
        self.messages = self.open("rocketchat_message")
        # room id → offsets in rocketchat_message / rocketchat__trash (array: 8 bytes per message)
        self.message_offsets: dict[str, array[int]] = {}
        self.trash_offsets: dict[str, array[int]] = {}
        self.trash_other: dict[str, list[int]] = {}
        self.deferred: list[Unreadable] = []  # problems found while indexing, emitted with the messages
        self.gridfs = GridFs(None, None)  # the uploads bucket, indexed with the uploads
        # Custom emoji images: file id → GridFS id in the `custom_emoji` bucket (for open_file).
        self.emoji_bucket: GridFs | None = None
        self.emoji_files: dict[str, str] = {}

    def items(self) -> Iterator[Item]:
        self._index_trash()
        yield from self._users()
        yield from self._rooms()
        yield from self._emoji()
        self._index_messages()
        self._index_uploads()
        yield from self._messages()
        yield from self._leftovers()

    # -- indexes ----------------------------------------------------------------------------------
    def _index_trash(self) -> None:
        if self.trash is None:
            return
        for offset, doc in self.dump._decoded(self.trash, "messages"):
            if isinstance(doc, Unreadable):
                self.deferred.append(doc)
                continue
            collection = doc.get("__collection__")
            if collection == "message":
                self._index_message(doc, offset, self.trash, self.trash_offsets)
            else:
                self.trash_other.setdefault(str(collection), []).append(offset)

    def _index_messages(self) -> None:
        if self.messages is None:
            return
        for offset, doc in self.dump._decoded(self.messages, "messages"):
            if isinstance(doc, Unreadable):
                self.deferred.append(doc)
                continue
            self._index_message(doc, offset, self.messages, self.message_offsets)

    def _index_message(self, doc: Mapping[str, Any], offset: int, collection: Collection,
                       index: dict[str, array[int]]) -> None:
        room = native_id(doc.get("rid"))
        if native_id(doc.get("_id")) is None or room is None:
            # Such a message cannot be placed in a room; keep the reason convert_message gives.
            result = convert_message(doc, self._context(), collection.origin(offset))
            self.deferred.append(result if isinstance(result, Unreadable) else
                                 Unreadable("messages", "CM002", "message without _id or rid", jsonable(doc),
                                            collection.origin(offset)))
            return
        index.setdefault(room, array("q")).append(offset)
        # Authors name gone users too: a reaction by a deleted user's username can still be resolved.
        author = doc.get("u") if isinstance(doc.get("u"), Mapping) else {}
        author_id, username = native_id(author.get("_id")), author.get("username")
        if author_id and isinstance(username, str):
            self.user_by_name.setdefault(username, rid_of("user", self.scope, author_id))

    def _index_uploads(self) -> None:
        uploads = self.open("rocketchat_uploads")
        if uploads is not None:
            for offset, doc in self.dump._decoded(uploads, "files"):
                if isinstance(doc, Unreadable):
                    self.deferred.append(doc)
                    continue
                native = native_id(doc.get("_id"))
                if native is None:
                    self.deferred.append(Unreadable("files", "CM002", "upload document without an _id",
                                                    jsonable(doc), uploads.origin(offset)))
                    continue
                keep = ("name", "size", "type", "store", "complete", "uploadedAt", "typeGroup", "description", "rid")
                self.uploads[native] = {k: doc[k] for k in keep if k in doc} | {"_offset": offset}
        self.gridfs = GridFs(self.open("rocketchat_uploads.files"), self.open("rocketchat_uploads.chunks"))
        self.deferred.extend(self.gridfs.problems)

    # -- users, rooms, emoji ----------------------------------------------------------------------
    def _users(self) -> Iterator[Item]:
        users = self.open("users")
        if users is not None:
            for offset, doc in self.dump._decoded(users, "users"):
                if isinstance(doc, Unreadable):
                    yield doc
                    continue
                user = convert_user(doc, self.scope, users.origin(offset))
                if isinstance(user, User):
                    self.live_users.add(user.source_id)
                    self.user_by_name[user.username] = user.id
                yield user
        # Users deleted from the server, whose documents survive in the trash.
        for offset in self.trash_other.pop("users", []):
            assert self.trash is not None
            doc = self.trash.read(offset)
            if native_id(doc.get("_id")) in self.live_users:
                yield Skipped("users", "a trashed copy of a user who still exists; the live one is kept",
                              _safe(doc), self.trash.origin(offset))
                continue
            user = convert_user(doc, self.scope, self.trash.origin(offset), deleted_at=as_time(doc.get("_deletedAt")))
            if isinstance(user, User):
                self.user_by_name.setdefault(user.username, user.id)
            yield user

    def _members(self) -> dict[str, list[str]]:
        """Room id → canonical user ids, from the subscriptions (the authoritative membership)."""
        members: dict[str, list[str]] = {}
        subscriptions = self.open("rocketchat_subscription")
        if subscriptions is None:
            return members
        for offset, doc in self.dump._decoded(subscriptions, "channels"):
            if isinstance(doc, Unreadable):
                self.deferred.append(doc)
                continue
            room = native_id(doc.get("rid"))
            user = native_id(doc.get("u", {}).get("_id")) if isinstance(doc.get("u"), Mapping) else None
            if room is None or user is None:
                self.deferred.append(Unreadable("channels", "CM002", "subscription (membership) without a room id "
                                                "or a user id", jsonable(doc), subscriptions.origin(offset)))
                continue
            members.setdefault(room, []).append(rid_of("user", self.scope, user))
            username = doc["u"].get("username")
            if isinstance(username, str):
                self.user_by_name.setdefault(username, rid_of("user", self.scope, user))
        return members

    def _rooms(self) -> Iterator[Item]:
        members = self._members()
        rooms = self.open("rocketchat_room")
        assert rooms is not None  # find_database guarantees it
        for offset, doc in self.dump._decoded(rooms, "channels"):
            if isinstance(doc, Unreadable):
                yield doc
                continue
            native = native_id(doc.get("_id"))
            result = convert_room(doc, self.scope, members.get(native or "", ()), rooms.origin(offset))
            if native is not None:
                self.rooms[native] = result
                self.room_time[native] = as_time(doc.get("ts"))
            yield result
        for offset in self.trash_other.pop("room", []):
            assert self.trash is not None
            doc = self.trash.read(offset)
            native = native_id(doc.get("_id"))
            origin = self.trash.origin(offset)
            if native in self.rooms:
                yield Skipped("channels", "a trashed copy of a room that still exists; the live one is kept",
                              jsonable(doc), origin)
                continue
            # A deleted room: kept as a channel so its deleted messages (also in the trash) have a home.
            result = convert_room(doc, self.scope, members.get(native or "", ()), origin,
                                  deleted_at=as_time(doc.get("_deletedAt")))
            if native is not None:
                self.rooms[native] = result
                self.room_time[native] = as_time(doc.get("ts"))
            yield result

    def _emoji(self) -> Iterator[Item]:
        emoji = self.open("rocketchat_custom_emoji")
        if emoji is None:
            return
        bucket = GridFs(self.open("custom_emoji.files"), self.open("custom_emoji.chunks"))
        self.emoji_bucket = bucket
        yield from bucket.problems
        for offset, doc in self.dump._decoded(emoji, "emoji"):
            if isinstance(doc, Unreadable):
                yield doc
                continue
            stored = bucket.by_name.get(emoji_file_name(doc))
            size, sha, note = bucket.digest(stored) if stored else (None, None, "not in the dump")
            file = emoji_file(doc, self.scope, size=size, sha256=sha, note=note)
            if stored and file is not None:
                self.emoji_files[file.id] = stored
            yield convert_emoji(doc, self.scope, file, emoji.origin(offset))

    # -- messages ---------------------------------------------------------------------------------
    def _context(self) -> MessageContext:
        return MessageContext(self.scope, self.user_by_name.get, self._file_for, self.used_files)

    def _file_for(self, entry: Mapping[str, Any]) -> File | None:
        native = native_id(entry.get("_id"))
        if native is None:
            return None
        upload = self.uploads.get(native)
        size, sha, note = self.gridfs.digest(native)
        if sha is None and upload is not None and note == "not in the dump":
            note = f"not in the dump (stored in {upload.get('store') or 'an unknown store'})"
        file = file_from_entry(entry, self.scope, upload, sha256=sha, bytes_note=note)
        if file is not None and size is not None:
            file = dataclasses.replace(file, size=size)
        return file

    def _messages(self) -> Iterator[Item]:
        ctx = self._context()
        for native, outcome in self.rooms.items():
            live = self.message_offsets.pop(native, array("q"))
            trashed = self.trash_offsets.pop(native, array("q"))
            if isinstance(outcome, Channel):
                yield from self._room_messages(outcome, native, live, trashed, ctx)
            else:
                why = outcome.reason if isinstance(outcome, Skipped) else f"its room is unreadable ({outcome.reason})"
                for collection, offsets in ((self.messages, live), (self.trash, trashed)):
                    for offset in offsets:
                        assert collection is not None
                        raw = jsonable(collection.read(offset))
                        if isinstance(outcome, Skipped):
                            yield Skipped("messages", f"in a room that is not migrated ({why})", raw,
                                          collection.origin(offset))
                        else:
                            yield Unreadable("messages", "CM005", f"in room {native}: {why}", raw,
                                             collection.origin(offset))
        # Messages whose room is in neither the rooms nor the trash.
        for index, collection in ((self.message_offsets, self.messages), (self.trash_offsets, self.trash)):
            for room, offsets in index.items():
                for offset in offsets:
                    assert collection is not None
                    yield Unreadable("messages", "CM005", f"message in room {room}, which is not in the dump",
                                     jsonable(collection.read(offset)), collection.origin(offset))

    def _room_messages(self, channel: Channel, native: str, live: array[int], trashed: array[int],
                       ctx: MessageContext) -> Iterator[Item]:
        # Documents are converted as they are read and not kept: the room's buffer is its Messages.
        built: list[Message] = []
        history: dict[str, list[dict[str, Any]]] = {}
        hidden: list[tuple[str, Collection, int]] = []
        latest = self.room_time.get(native)
        live_ids: set[str] = set()
        problems: list[Item] = []
        for collection, offsets in ((self.messages, live), (self.trash, trashed)):
            for offset in offsets:
                assert collection is not None
                doc = collection.read(offset)
                origin = collection.origin(offset)
                for key in ("_updatedAt", "_deletedAt", "ts"):
                    when = as_time(doc.get(key))
                    if when is not None and (latest is None or when > latest):
                        latest = when
                if doc.get("_hidden"):
                    parent = native_id(doc.get("parent"))
                    if parent is None:
                        problems.append(Unreadable("messages", "CM002", "a hidden edit-history copy without the id "
                                                   "of its message (parent)", jsonable(doc), origin))
                    else:
                        history.setdefault(parent, []).append(revision(doc, self.scope))
                        hidden.append((parent, collection, offset))
                    continue
                native_message = native_id(doc.get("_id"))
                if collection is self.trash and native_message in live_ids:
                    problems.append(Skipped("messages", f"a trashed copy of message {native_message}, which is still "
                                            "live; the live one is kept", jsonable(doc), origin))
                    continue
                if collection is self.messages and native_message:
                    live_ids.add(native_message)
                result = convert_message(doc, ctx, origin)
                if isinstance(result, Message):
                    built.append(result)
                else:
                    problems.append(result)
        if history:
            built = [with_history(m, history.pop(m.source_id)) if m.source_id in history else m for m in built]
        # Revisions of a message that is neither live nor in the trash: nothing to attach them to.
        for parent, collection, offset in hidden:
            if parent in history:
                problems.append(Unreadable("messages", "CM005", f"edit-history copy of message {parent}, which is not "
                                           "in the dump", jsonable(collection.read(offset)),
                                           collection.origin(offset)))
        yield from problems
        for message in timeline(built):
            yield from unresolved_reaction_items(message)
            yield message
        yield Checkpoint(SOURCE, self.scope, channel.id, cursor_text(latest) if latest else "")

    def _leftovers(self) -> Iterator[Item]:
        yield from self.deferred
        uploads = self.open("rocketchat_uploads")
        uploads_where = uploads.where if uploads is not None else "rocketchat_uploads.bson"
        for native, upload in self.uploads.items():
            if native in self.used_files:
                continue
            reason = f"upload {native} ({upload.get('name')!r}) is attached to no message in the dump"
            if upload.get("typeGroup") == "thumb":
                reason = f"upload {native} is a generated thumbnail no message lists"
            raw = jsonable({k: v for k, v in upload.items() if k != "_offset"} | {"_id": native})
            yield Skipped("files", reason, raw, Origin(uploads_where, upload["_offset"]))
        for collection, offsets in self.trash_other.items():
            assert self.trash is not None
            kind = TRASH_KINDS.get(collection, "other")
            for offset in offsets:
                doc = self.trash.read(offset)
                yield Skipped(kind, f"a deleted {collection!r} document in rocketchat__trash: not migrated",
                              _safe(doc), self.trash.origin(offset))


def _safe(doc: Mapping[str, Any]) -> Any:
    """A document for a rejects file: never with `services` (credentials)."""
    return jsonable({k: v for k, v in doc.items() if k != "services"})
