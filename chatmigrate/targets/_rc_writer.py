"""Writing one load into Rocket.Chat's MongoDB (see targets/rocketchat.py): records in, documents out,
each room's messages spooled and written when the room ends with the counters Rocket.Chat keeps."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import bson
import gridfs
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from chatmigrate.model import EXISTING_USER_PROP, Channel, Checkpoint, Emoji, File, Message, Record, Team, User
from chatmigrate.targets import _rc_docs as docs
from chatmigrate.targets import _rc_rules as rc
from chatmigrate.targets._filestore import FileStore
from chatmigrate.targets._rc_ledger import Ledger, from_ms, ms, thread_sig

if TYPE_CHECKING:
    from chatmigrate.targets.rocketchat import RocketChat

HASH = "_chatmigrateHash"
STATE = "chatmigrate_sync_state"
_BATCH = 1_000
# FerretDB 1.24 keeps every update's query open until the whole `update` command ends, on a pool of
# 100 SQLite connections: a command of ~100 updates waits for itself forever. A few dozen is safe.
_UPDATES_PER_COMMAND = 50
# The fields chatmigrate owns in each collection: a changed document gets them $set and, where they
# are gone, $unset; anything else (a user's login services, status, preferences) is left alone.
_OWNED = {
    "users": ("username", "name", "type", "roles", "active", "emails", "createdAt", "utcOffset"),
    "rocketchat_room": ("t", "uids", "usernames", "name", "fname", "u", "ts", "topic", "description", "archived",
                        "prid", "ro", "sysMes", "msgs", "usersCount", "lm", "lastMessage"),
    "rocketchat_subscription": ("rid", "u", "name", "fname", "t", "open", "alert", "unread", "userMentions",
                                "groupMentions", "ts", "ls", "lr", "roles", "archived"),
    "rocketchat_message": ("rid", "ts", "u", "msg", "t", "groupable", "bot", "tmid", "tshow", "mentions", "channels",
                           "editedAt", "editedBy", "pinned", "pinnedAt", "pinnedBy", "reactions", "file", "files",
                           "attachments", "__collection__", "_deletedAt", "tcount", "tlm", "replies"),
    "rocketchat_uploads": ("name", "size", "type", "rid", "userId", "store", "complete", "uploading", "extension",
                           "progress", "uploadedAt", "typeGroup", "path", "url", "chatmigrate_sha256"),
    "rocketchat_custom_emoji": ("name", "extension", "aliases"),
}
_OWNED["rocketchat__trash"] = _OWNED["rocketchat_message"]
_THREAD_FIELDS = ("tcount", "tlm", "replies")


def digest(doc: dict[str, Any]) -> str:
    """The content hash of a document as written (no `_updatedAt`, no hash, no thread counters)."""
    content = {k: v for k, v in doc.items() if k not in ("_updatedAt", HASH, *_THREAD_FIELDS)}
    return hashlib.md5(bson.encode(content), usedforsecurity=False).hexdigest()


class Writer:
    """One load: records in, documents out, counters computed at the end of each room."""

    def __init__(self, target: RocketChat, book: rc.NameBook) -> None:
        self.t, self.db, self.book = target, target.db, book
        self.stats = target.stats
        self.now = rc.to_ms(datetime.now(UTC))
        self.ledger = Ledger()
        self.dir = docs.Directory()
        self.channels: dict[str, Channel] = {}  # canonical id → channel (O(channels))
        # Channels with records not yet written: their room is (re)written when their records end; a
        # room whose messages come back later in the stream is simply written again (hashes decide).
        self.pending: set[str] = set()
        self.current: str | None = None
        self.scanned_messages = False
        self.opener = target.run_info.open_file if target.run_info is not None else None
        self.store = FileStore(self.ledger.folder / "files")
        self.bucket = gridfs.GridFSBucket(self.db, bucket_name="rocketchat_uploads")
        self.emoji_bucket = gridfs.GridFSBucket(self.db, bucket_name="custom_emoji")
        self.counts: dict[str, int] = {}
        self._scan_small()

    # -- reading what the database holds ---------------------------------------------------------
    def _scan_small(self) -> None:
        """Hashes of users, rooms, subscriptions, uploads and emoji (thousands, not millions)."""
        for coll in ("users", "rocketchat_room", "rocketchat_uploads", "rocketchat_custom_emoji"):
            self.ledger.add_docs(coll, ((d["_id"], d.get(HASH)) for d in self.db[coll].find({}, {HASH: 1})))
        subs = self.db.rocketchat_subscription.find({}, {HASH: 1, "rid": 1, "u._id": 1})
        rows = [(d["_id"], d.get(HASH), d.get("rid"), (d.get("u") or {}).get("_id")) for d in subs]
        self.ledger.add_docs("rocketchat_subscription", ((i, h) for i, h, _, _ in rows))
        self.ledger.add_subs((r, u) for _, _, r, u in rows if isinstance(r, str) and isinstance(u, str))
        users = self.db.users.find({}, {"__rooms": 1})
        self.ledger.add_user_rooms((d["_id"], " ".join(sorted(d.get("__rooms") or []))) for d in users)

    def _scan_messages(self) -> None:
        """Every message (live and trashed) of the rooms this run writes, read once, projected."""
        self.scanned_messages = True
        rooms = [self.dir.rooms[c].id for c in self.channels if c in self.dir.rooms]
        fields = {"rid": 1, "tmid": 1, "ts": 1, "u._id": 1, "tshow": 1, "_hidden": 1, HASH: 1, "tcount": 1,
                  "tlm": 1, "replies": 1}
        for coll, place in (("rocketchat_message", "m"), ("rocketchat__trash", "t")):
            query: dict[str, Any] = {"rid": {"$in": rooms}}
            if place == "t":
                query["__collection__"] = "message"
            batch: list[tuple[Any, ...]] = []
            for d in self.db[coll].find(query, fields, batch_size=5_000):
                if not isinstance(d.get("ts"), datetime):
                    continue
                live = place == "m" and not d.get("_hidden")
                visible = live and (not d.get("tmid") or bool(d.get("tshow")))
                batch.append((d["_id"], d["rid"], d.get("tmid"), ms(d["ts"]), (d.get("u") or {}).get("_id"),
                              int(live), int(visible), place, d.get(HASH),
                              thread_sig(d.get("tcount"), d.get("tlm"), d.get("replies"))))
                if len(batch) >= 5_000:
                    self.ledger.add_messages(batch)
                    batch = []
            self.ledger.add_messages(batch)

    # -- the stream --------------------------------------------------------------------------------
    def add(self, item: Record | Checkpoint) -> None:
        if isinstance(item, Checkpoint):
            self._room_done(item.channel_id)
            self._cursor(item)
            return
        self.stats.records += 1
        if isinstance(item, Message):
            if item.channel_id != self.current and self.current is not None:
                self._room_done(self.current)
            self.current = item.channel_id
            self._message(item)
        elif isinstance(item, User):
            self._user(item)
        elif isinstance(item, Channel):
            self._channel(item)
        elif isinstance(item, Emoji):
            self._emoji(item)
        elif isinstance(item, Team):
            self._bump("teams_not_carried")  # Rocket.Chat teams are not made: every room stands alone

    def finish(self) -> None:
        if self.current is not None:
            self._room_done(self.current)
        for channel_id in sorted(self.pending):
            self._room_done(channel_id)
        self._user_rooms()
        self.ledger.db.execute("COMMIT")
        self.ledger.db.execute("BEGIN")

    def close(self) -> None:
        self.ledger.close()

    def _bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    # -- users, rooms --------------------------------------------------------------------------------
    def _user(self, user: User) -> None:
        marker = user.props.get(EXISTING_USER_PROP)
        if isinstance(marker, dict) and isinstance(marker.get("target_id"), str):
            # A user the server holds (merged onto by --map): referred to, never written.
            person = docs.Person(marker["target_id"], user.username, user.display_name)
            self.dir.people[user.id] = person
            self.dir.by_username[user.username] = person
            self._bump("users_merged_onto_existing")
            return
        name, _ = rc.name_for(self.book, "user", user.id, user.username, rc.username(user.username))
        doc = docs.user_doc(user, name)
        person = docs.Person(doc["_id"], name, doc["name"])
        self.dir.people[user.id] = person
        self.dir.by_username[user.username] = person
        self._put("users", [doc])
        self.ledger.note_user(doc["_id"])

    def _channel(self, channel: Channel) -> None:
        name = None
        if channel.kind in ("public", "private"):
            name, _ = rc.name_for(self.book, "room", channel.id, channel.name, rc.room_name(channel.name))
        room = docs.room_of(channel, name)
        self.dir.rooms[channel.id] = room
        if name is not None:
            self.dir.by_room_name[channel.name] = room
        self.channels[channel.id] = channel
        self.pending.add(channel.id)

    def _room_done(self, channel_id: str) -> None:
        """Write the room's spooled messages, its thread counters, the room and its subscriptions."""
        if channel_id == self.current:
            self.current = None
        room = self.dir.rooms.get(channel_id)
        if room is None or channel_id not in self.pending:
            return
        self.pending.discard(channel_id)
        channel = self.channels.get(channel_id)
        self.ledger.count_threads(room.id)
        self._write_spool(room)
        self._write_stale_roots(room)
        if channel is not None:
            self._write_room(channel, room)
        self.ledger.clear_spool(room.id)
        self.t.renew_lock()

    def _write_room(self, channel: Channel, room: docs.Room) -> None:
        members = [self.dir.people[m] for m in dict.fromkeys(channel.member_ids) if m in self.dir.people]
        creator = self.dir.people.get(channel.creator_id) if channel.creator_id else None
        parent_id = channel.props.get("parent_channel_id")
        parent = self.dir.rooms.get(parent_id) if isinstance(parent_id, str) else None
        doc = docs.room_doc(channel, room, members, creator, parent)
        total, last_id, last_ms = self.ledger.room_counts(room.id)
        self.ledger.add_subs((room.id, p.id) for p in members)
        doc["msgs"] = total
        doc["usersCount"] = self.ledger.users_count(room.id)
        seen = doc.get("ts")
        if last_id is not None and last_ms is not None:
            doc["lm"] = from_ms(last_ms)
            seen = doc["lm"]
            last = self._message_doc(last_id)
            if last is not None:
                # The message as it is, without its own bookkeeping (which changes on every write).
                doc["lastMessage"] = {k: v for k, v in last.items() if k not in ("_updatedAt", HASH)}
        self._put("rocketchat_room", [doc])
        subs = [docs.subscription_doc(room, doc, p, members, creator is not None and p.id == creator.id, seen)
                for p in members]
        self._put("rocketchat_subscription", subs)

    def _message_doc(self, doc_id: str) -> dict[str, Any] | None:
        return self.ledger.spooled_doc(doc_id) or self.db.rocketchat_message.find_one({"_id": doc_id})

    def _user_rooms(self) -> None:
        """`users.__rooms` kept with the subscriptions (Rocket.Chat's directory queries read it)."""
        ops = [UpdateOne({"_id": uid}, {"$set": {"__rooms": rooms, "_updatedAt": self.now}})
               for uid, rooms in self.ledger.changed_user_rooms()]
        self._flush("users", ops)

    # -- messages ------------------------------------------------------------------------------------
    def _message(self, message: Message) -> None:
        room = self.dir.rooms.get(message.channel_id)
        if room is None:
            self._bump("messages_without_room")
            return
        if not self.scanned_messages:
            self._scan_messages()
        self.pending.add(message.channel_id)
        message = self._rethreaded(message, room)
        author = self.dir.person(message.user_id)
        uploads = [(self._file(file, message, room, author), file) for file in message.files]
        written = [(upload_id, file) for upload_id, file in uploads if upload_id is not None]
        pairs = [(file, upload_id) for upload_id, file in written]
        live = message.deleted_at is None and message.kind != "tombstone"
        for n, doc in enumerate(docs.message_docs(message, room, self.dir, pairs)):
            if not live:
                doc["__collection__"] = "message"
                doc["_deletedAt"] = rc.to_ms(message.deleted_at or message.created_at)
            if n:
                self._bump("continuation_messages")
            self.ledger.spool(doc, live)

    def _rethreaded(self, message: Message, room: docs.Room) -> Message:
        """A reply whose root was not in this run's stream (the validator loads it top-level, with
        `props.orphan_of`) goes back into its thread when the database holds that root in this room:
        a sync brings new replies to old threads."""
        orphan_of = message.props.get("orphan_of")
        if message.thread_root_id or not isinstance(orphan_of, str):
            return message
        if self.ledger.room_of_message(rc.meteor_id("message", orphan_of)) != room.id:
            return message
        self._bump("replies_rethreaded")
        return replace(message, thread_root_id=orphan_of)

    def _write_spool(self, room: docs.Room) -> None:
        batches: dict[str, list[Any]] = {"rocketchat_message": [], "rocketchat__trash": []}
        placed: list[tuple[str, str, str | None, str]] = []
        for doc, thread, old in self.ledger.spooled(room.id):
            live = "__collection__" not in doc
            coll, place = ("rocketchat_message", "m") if live else ("rocketchat__trash", "t")
            sig = None
            if thread is not None and live:
                n, tlm, replies, sig = thread
                doc.update(tcount=n, tlm=from_ms(tlm), replies=replies.split())
            digest_now = digest(doc)
            if old is not None and old[1] == digest_now and old[0] == place and old[2] == sig:
                continue
            if old is not None and old[0] != place:
                # Deleted since the last run (or restored): Rocket.Chat keeps deleted messages in its trash.
                other = "rocketchat__trash" if place == "m" else "rocketchat_message"
                self.db[other].delete_one({"_id": doc["_id"]})
                old = None
            placed.append((place, digest_now, sig, doc["_id"]))
            batches[coll].append(self._op(coll, doc, digest_now, exists=old is not None))
            if len(batches[coll]) >= _BATCH:
                self._flush(coll, batches[coll])
                self.ledger.placed(placed)
                placed.clear()
        for coll, ops in batches.items():
            self._flush(coll, ops)
        self.ledger.placed(placed)

    def _write_stale_roots(self, room: docs.Room) -> None:
        """Old thread roots (not passed this run) whose counters changed: new replies, or replies gone."""
        ops = []
        for doc_id, place, n, tlm, replies, sig in self.ledger.stale_roots(room.id):
            if place != "m":
                continue
            if n:
                update = {"$set": {"tcount": n, "tlm": from_ms(tlm), "replies": replies.split(),
                                   "_updatedAt": self.now}}
            else:
                update = {"$unset": {f: "" for f in _THREAD_FIELDS}, "$set": {"_updatedAt": self.now}}
            ops.append(UpdateOne({"_id": doc_id}, update))
            self.ledger.set_tsig(doc_id, sig or None)
        self._flush("rocketchat_message", ops)

    # -- files and emoji ---------------------------------------------------------------------------
    def _file(self, file: File, message: Message, room: docs.Room, author: docs.Person) -> str | None:
        """The upload id of a message's file; its bytes copied into GridFS when new or changed.

        One upload per message and file: Rocket.Chat's upload belongs to one room and one message
        (a file shared in two places is two uploads there)."""
        when = message.created_at
        upload_id = rc.meteor_id("upload", f"{message.id}|{file.id}")
        exists, old = self.ledger.doc_hash("rocketchat_uploads", upload_id)
        sha, size = file.sha256, file.size
        handle = None
        if exists and old is not None and sha and old.endswith(sha):
            return upload_id  # the same bytes are there already: not even read again
        if self.opener is not None:
            with contextlib.suppress(OSError, ValueError):
                handle = self.opener(file)
        if handle is not None:
            with handle:
                sha, size = self.store.put(handle)
        stored = handle is not None
        doc = docs.upload_doc(replace(file, sha256=sha, size=size), upload_id, room, author, when, stored)
        content = digest(doc) + (f":{sha}" if sha and stored else "")
        if exists and old == content:
            return upload_id
        if stored and sha is not None:
            if exists:  # changed bytes replace the old ones (a new upload has none to delete)
                with contextlib.suppress(gridfs.errors.NoFile):
                    self.bucket.delete(upload_id)
            with self.store.path(sha).open("rb") as data:
                self.bucket.upload_from_stream_with_id(upload_id, file.name, data,
                                                       metadata={"contentType": doc["type"]})
            self._bump("file_bytes_uploaded")
        else:
            self._bump("files_without_bytes")
        doc[HASH] = content
        doc["_updatedAt"] = self.now
        self._flush("rocketchat_uploads", [self._op("rocketchat_uploads", doc, content, exists=exists)])
        self.ledger.set_hash("rocketchat_uploads", upload_id, content)
        return upload_id

    def _emoji(self, emoji: Emoji) -> None:
        extension = emoji.file.name.rsplit(".", 1)[-1].lower() if emoji.file and "." in emoji.file.name else "png"
        doc = docs.emoji_doc(emoji, extension)
        exists, old = self.ledger.doc_hash("rocketchat_custom_emoji", doc["_id"])
        if exists and old == digest(doc):
            return
        handle = None
        if emoji.file is not None and self.opener is not None:
            with contextlib.suppress(OSError, ValueError):
                handle = self.opener(emoji.file)
        if handle is not None:
            filename = f"{emoji.name}.{extension}"
            with handle:
                for old_file in self.db["custom_emoji.files"].find({"filename": filename}, {"_id": 1}):
                    self.emoji_bucket.delete(old_file["_id"])
                self.emoji_bucket.upload_from_stream(filename, handle)
        self._put("rocketchat_custom_emoji", [doc])

    # -- writing -------------------------------------------------------------------------------------
    def _put(self, coll: str, batch: list[dict[str, Any]]) -> None:
        """Write the documents whose content differs from what the database holds."""
        ops = []
        for doc in batch:
            content = digest(doc)
            exists, old = self.ledger.doc_hash(coll, doc["_id"])
            if exists and old == content:
                continue
            ops.append(self._op(coll, doc, content, exists))
            self.ledger.set_hash(coll, doc["_id"], content)
        self._flush(coll, ops)

    def _op(self, coll: str, doc: dict[str, Any], content: str, exists: bool) -> Any:
        doc[HASH] = content
        doc["_updatedAt"] = self.now
        if not exists:
            return InsertOne(doc)
        # $set what chatmigrate owns, $unset what it owned and no longer writes; the rest stays.
        gone = {k: "" for k in _OWNED.get(coll, ()) if k not in doc}
        update: dict[str, Any] = {"$set": {k: v for k, v in doc.items() if k != "_id"}}
        if gone:
            update["$unset"] = gone
        return UpdateOne({"_id": doc["_id"]}, update, upsert=True)

    def _flush(self, coll: str, ops: list[Any]) -> None:
        """Unordered bulk writes: inserts in one command, updates a few dozen per command."""
        inserts = [op for op in ops if isinstance(op, InsertOne)]
        updates = [op for op in ops if not isinstance(op, InsertOne)]
        self._bulk(coll, inserts)
        for start in range(0, len(updates), _UPDATES_PER_COMMAND):
            self._bulk(coll, updates[start:start + _UPDATES_PER_COMMAND])
        ops.clear()

    def _bulk(self, coll: str, ops: list[Any]) -> None:
        """One unordered bulk write. An insert of a document someone else wrote meanwhile (a duplicate
        key) is repeated as an update of the fields chatmigrate owns."""
        if not ops:
            return
        try:
            result = self.db[coll].bulk_write(ops, ordered=False)
            self.stats.rows_written += result.inserted_count + result.modified_count + result.upserted_count
        except BulkWriteError as exc:
            details = exc.details
            self.stats.rows_written += details.get("nInserted", 0) + details.get("nModified", 0) + \
                details.get("nUpserted", 0)
            again = []
            for error in details.get("writeErrors", []):
                op = ops[error["index"]]
                if error.get("code") != 11000 or not isinstance(op, InsertOne):
                    raise
                doc = op._doc
                again.append(self._op(coll, doc, doc[HASH], exists=True))
            if again:
                self._flush(coll, again)
        self.stats.commits += 1

    def _cursor(self, checkpoint: Checkpoint) -> None:
        key = f"cursor|{checkpoint.source}|{checkpoint.scope}|{checkpoint.channel_id}"
        result = self.db[STATE].update_one(
            {"_id": key, "cursor": {"$ne": checkpoint.cursor}},
            {"$set": {"kind": "cursor", "source": checkpoint.source, "scope": checkpoint.scope,
                      "channel_id": checkpoint.channel_id, "cursor": checkpoint.cursor, "_updatedAt": self.now}})
        if result.matched_count == 0 and self.db[STATE].find_one({"_id": key}, {"_id": 1}) is None:
            self.db[STATE].insert_one({"_id": key, "kind": "cursor", "source": checkpoint.source,
                                       "scope": checkpoint.scope, "channel_id": checkpoint.channel_id,
                                       "cursor": checkpoint.cursor, "_updatedAt": self.now})

    def summary(self) -> dict[str, Any]:
        lines = [f"rocket.chat: {self.t.safe_url}: {self.stats.rows_written:,} document(s) written"]
        if self.counts:
            lines.append("  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(self.counts.items())))
        lines.append("  then: restart Rocket.Chat (it caches settings, rooms and users) — see README")
        return {"database": self.t.database_name, "documents_written": self.stats.rows_written, **self.counts,
                "lines": lines}
