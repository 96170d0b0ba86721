"""Target `rocketchat+mongodb://host:27017/rocketchat`: users, rooms and history written straight into
Rocket.Chat's MongoDB, as its own code writes them (research/targets.md §C), from any source.

Rocket.Chat's importers lose threads, reactions, edits, files or sub-second times; writing the
collections directly keeps them all. Every document gets a deterministic 17-character Meteor id
derived from its canonical id and a content hash (`_chatmigrateHash`): a re-run inserts nothing twice
and writes no document whose content is unchanged (its `_updatedAt` stays). The counters Rocket.Chat
keeps on its write path are computed from what the database holds (targets/_rc_ledger.py): room `msgs`,
`lm`, `lastMessage`, `usersCount`; thread `tcount`, `tlm`, `replies`; subscriptions read up to the
last message (`ls`, `unread = 0`, `alert = false`); `users.__rooms`.

A room's messages are spooled to a scratch file while the stream passes and written when the room
ends (its Checkpoint, or the next room), roots with their thread counters; then the room and its
subscriptions; then the room's cursor, in `chatmigrate_sync_state`: a cursor is never saved ahead of
its data. File bytes go into the GridFS bucket `rocketchat_uploads` with their `rocketchat_uploads`
records.

Credentials: in the URL (`rocketchat+mongodb://user@host/db`, password masked everywhere) or, better,
from the environment: CHATMIGRATE_MONGODB_USER / CHATMIGRATE_MONGODB_PASSWORD. Other query options
(`authSource`, `tls`, `replicaSet`, …) go to pymongo as they are.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pymongo
from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError, PyMongoError

from chatmigrate.errors import Locked, TransientError, UsageError
from chatmigrate.ids import record_id
from chatmigrate.model import EXISTING_USER_PROP, Channel, Checkpoint, Item, Message, Record, User
from chatmigrate.redact import redact, remember
from chatmigrate.targets import _rc_rules as rc
from chatmigrate.targets._rc_writer import HASH, STATE, Writer
from chatmigrate.targets.contract import Capabilities, ExistingUser, LoadStats, RunInfo, Stage, Target
from chatmigrate.validate.findings import Finding, FindingSink

SCHEME = "rocketchat+mongodb"
USER_ENV, PASSWORD_ENV = "CHATMIGRATE_MONGODB_USER", "CHATMIGRATE_MONGODB_PASSWORD"
RUNS, NAMES = "chatmigrate_runs", "chatmigrate_names"
_LOCK_ID = "lock"
_LOCK_TTL = timedelta(hours=2)
def parse_url(url: str) -> tuple[str, str, str]:
    """`rocketchat+mongodb://[user[:pw]@]host[:port][,host2…]/db?opts` → (the pymongo URI, the database,
    the URL with its password masked)."""
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not database or "/" in database:
        raise UsageError(f"--to {redact(url)!r}: name the server and the database, e.g. "
                         "rocketchat+mongodb://127.0.0.1:27017/rocketchat")
    user = unquote(parts.username) if parts.username else os.environ.get(USER_ENV)
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    hosts = parts.netloc.rpartition("@")[2]
    if password:
        remember(password)
    auth = ""
    if user:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    uri = f"mongodb://{auth}{hosts}/{quote(database)}" + (f"?{urlencode(query)}" if query else "")
    shown_auth = f"{quote(user, safe='')}{':***' if password else ''}@" if user else ""
    safe = f"{SCHEME}://{shown_auth}{hosts}/{database}" + (f"?{urlencode(query)}" if query else "")
    return uri, database, redact(safe)


class RocketChat(Target):
    scheme: ClassVar[str] = SCHEME
    capabilities: ClassVar[Capabilities] = Capabilities(
        transactions=False, cursors=True, lock=True, max_text=rc.MAX_MESSAGE, file_bytes=True,
        text_rules="usernames and room names sanitised to UTF8_Names_Validation [0-9a-zA-Z-_.] (collisions "
                   "numbered, kept across runs in chatmigrate_names, mentions follow); text over 5,000 characters "
                   "split into continuation replies; no transactions: each room's cursor is written after its data")

    def __init__(self, uri: str, database: str, safe: str) -> None:
        self._uri, self._database, self._safe = uri, database, safe
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        self.stats = LoadStats()
        self._run: RunInfo | None = None
        self._run_id: str | None = None
        self._book: rc.NameBook | None = None
        self._new_names: list[dict[str, Any]] = []
        self._summary: dict[str, Any] = {}
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cm_", options: dict[str, str] | None = None) -> RocketChat:
        return cls(*parse_url(url))

    # -- the contract --------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        return self._safe

    @property
    def database_name(self) -> str:
        return self._database

    @property
    def run_info(self) -> RunInfo | None:
        return self._run

    @property
    def db(self) -> Any:
        if self._client is None:
            self._client = pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
        return self._client[self._database]

    def prepare(self) -> None:
        try:
            self.db.command("ping")
        except PyMongoError as exc:
            raise TransientError(f"{self.safe_url}: cannot reach MongoDB ({redact(str(exc))[:300]})") from None

    def cursors(self, source: str, scope: str) -> dict[str, str]:
        rows = self.db[STATE].find({"kind": "cursor", "source": source, "scope": scope})
        return {row["channel_id"]: row["cursor"] for row in rows}

    def cursor_state(self) -> tuple[bool, str]:
        n = self.db[STATE].count_documents({"kind": "cursor"})
        return n > 0, f"{self.safe_url}: {n} saved cursor(s) in {STATE}" if n else f"{self.safe_url}: no cursors yet"

    def start_run(self, info: RunInfo) -> str | None:
        self._run = info
        self._run_id = uuid.uuid4().hex
        self.db[RUNS].insert_one({"_id": self._run_id, "command": info.command, "source": info.source,
                                  "location": redact(info.location), "target": self.safe_url,
                                  "started_at": datetime.now(UTC), "status": "running"})
        return self._run_id

    def existing_users(self) -> list[ExistingUser]:
        """The server's own users (documents of `users` chatmigrate did not write), for `--map`."""
        found = []
        for doc in self.db.users.find({HASH: {"$exists": False}, "username": {"$exists": True}},
                                      {"username": 1, "emails": 1, "name": 1}).sort("_id", 1):
            emails = [e.get("address") for e in doc.get("emails") or () if isinstance(e, dict)]
            email = next((e for e in emails if isinstance(e, str) and e), None)
            if isinstance(doc.get("username"), str):
                found.append(ExistingUser(id=record_id("rocketchat", "existing", "user", str(doc["_id"])),
                                          username=doc["username"], email=email, target_id=str(doc["_id"]),
                                          display_name=doc.get("name") if isinstance(doc.get("name"), str) else None))
        return found

    def checks(self, sink: FindingSink) -> Stage:
        return _Checks(self._names(), sink)

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        writer = Writer(self, self._names())
        try:
            for item in items:
                writer.add(item)
            writer.finish()
        finally:
            writer.close()
        self._save_names()
        self._summary = writer.summary()
        return self.stats

    def summary(self) -> dict[str, Any]:
        return dict(self._summary)

    def finish_run(self, status: str, counts: dict[str, Any]) -> None:
        if self._run_id is not None:
            self.db[RUNS].update_one({"_id": self._run_id}, {"$set": {
                "status": status, "finished_at": datetime.now(UTC), "counts": counts,
                "rocketchat": {k: v for k, v in self._summary.items() if k != "lines"}}})

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """A lock document with an owner and an expiry: a run that dies leaves it to expire (2 h), a
        live run renews it as rooms complete."""
        self._take_lock()
        try:
            yield
        finally:
            self.db[STATE].delete_one({"_id": _LOCK_ID, "owner": self._owner})

    def renew_lock(self) -> None:
        self.db[STATE].update_one({"_id": _LOCK_ID, "owner": self._owner},
                                  {"$set": {"expires": datetime.now(UTC) + _LOCK_TTL}})

    def _take_lock(self) -> None:
        now = datetime.now(UTC)
        try:
            self.db[STATE].find_one_and_update(
                {"_id": _LOCK_ID, "$or": [{"expires": {"$lt": now}}, {"owner": self._owner}]},
                {"$set": {"owner": self._owner, "expires": now + _LOCK_TTL, "kind": "lock"}}, upsert=True)
        except DuplicateKeyError:
            held = self.db[STATE].find_one({"_id": _LOCK_ID}) or {}
            raise Locked(f"another chatmigrate run ({held.get('owner')}, until {held.get('expires')}) holds the sync "
                         f"lock of {self.safe_url} ({STATE}._id={_LOCK_ID!r}); this run wrote nothing and exits, "
                         "the next scheduled run will continue") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- names -------------------------------------------------------------------------------------
    def _names(self) -> rc.NameBook:
        """Names given by earlier runs, plus every name the database already uses (its own users' and
        rooms'), reserved so that an imported record never takes one."""
        if self._book is None:
            taken: dict[tuple[str, str], str] = {}
            for row in self.db[NAMES].find({}):
                taken[(row["namespace"], row["record_id"])] = row["name"]
            ours = {name for name in taken.values()}
            for coll, namespace, key in (("users", "user", "username"), ("rocketchat_room", "room", "name")):
                for row in self.db[coll].find({key: {"$exists": True}}, {key: 1, HASH: 1}):
                    name = row.get(key)
                    if isinstance(name, str) and HASH not in row and name.lower() not in ours:
                        taken[(namespace, f"existing:{row['_id']}")] = name.lower()
            self._book = rc.NameBook(taken)
        return self._book

    def _save_names(self) -> None:
        book = self._book
        if book is None:
            return
        rows = [(ns, rid, name) for ns, rid, name in book.new if not rid.startswith("existing:")]
        book.new.clear()
        if rows:
            self.db[NAMES].bulk_write([UpdateOne({"_id": f"{ns}|{rid}"}, {"$set": {
                "namespace": ns, "record_id": rid, "name": name}}, upsert=True) for ns, rid, name in rows],
                ordered=False)


class _Checks:
    """Rocket.Chat's rules applied to the stream: names given (and remembered) as records pass, and
    what the server would refuse reported as findings at the record's location."""

    def __init__(self, book: rc.NameBook, sink: FindingSink) -> None:
        self.book, self.sink = book, sink

    def __call__(self, items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, User):
                if EXISTING_USER_PROP not in item.props:  # a user the server holds keeps its own name
                    self._name(item, "user", item.username, rc.username(item.username), "username")
            elif isinstance(item, Channel) and item.kind in ("public", "private"):
                self._name(item, "room", item.name, rc.room_name(item.name), "room name")
            elif isinstance(item, Message):
                self._message(item)
            yield item

    def _name(self, record: User | Channel, namespace: str, wanted: str, valid: str, what: str) -> None:
        name, why = rc.name_for(self.book, namespace, record.id, wanted, valid)
        if why == "collision":
            self._warn("CM302", record, f"{what} {wanted!r} would collide with another: becomes {name!r}")
        elif why == "changed":
            self._warn("CM301", record, f"{what} {wanted!r} is not valid in Rocket.Chat "
                       f"(UTF8_Names_Validation [0-9a-zA-Z-_.]): becomes {name!r}")

    def _message(self, message: Message) -> None:
        if len(message.text) > rc.MAX_MESSAGE:
            self._warn("CM303", message, f"text of {len(message.text):,} characters (Message_MaxAllowedSize "
                       f"{rc.MAX_MESSAGE:,}) is split into {len(rc.split_message(message.text))} messages")
        for file in message.files:
            if file.props.get("missing"):
                self._warn("CM304", message, f"file {file.name!r} has no bytes in the source: its record is "
                           "written incomplete (Rocket.Chat lists it, cannot open it)")

    def _warn(self, code: str, record: Any, text: str) -> None:
        self.sink.add(Finding(code, text, record.record_kind, record.id, record.origin))
