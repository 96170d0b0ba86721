"""What the Rocket.Chat database holds, mirrored in a scratch SQLite file for the length of a run, and
the writes that keep it and the database in step (see targets/rocketchat.py).

Why a local mirror: the writer must know, for every document, whether the database already holds it
with the same content (a re-run writes nothing), and the counters Rocket.Chat keeps (room `msgs`,
`lm`; thread `tcount`, `tlm`, `replies`; `usersCount`; `users.__rooms`) must be computed over what
the database holds after the run, not only over what this run passes. Asking MongoDB per document
(`$in` look-ups, per-thread aggregations) is not an option on every server: FerretDB 1.24 runs a
filter other than `{_id: …}` as a full scan and has no `$max`/`$push`/`$addToSet` accumulators, and
its updates cost time in proportion to the collection. So the database is read once per run (one
projected scan), the counters are computed here in SQL, and each document is written once, with its
counters, by an insert when it is new. Memory stays flat: the mirror and the spool are on disk.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson

_SCHEMA = """
CREATE TABLE docs (coll TEXT NOT NULL, id TEXT NOT NULL, hash TEXT, PRIMARY KEY (coll, id)) WITHOUT ROWID;
CREATE TABLE msgs (id TEXT PRIMARY KEY, rid TEXT NOT NULL, tmid TEXT, ts INTEGER NOT NULL, uid TEXT,
                   live INTEGER NOT NULL, visible INTEGER NOT NULL, place TEXT NOT NULL, hash TEXT, tsig TEXT)
                   WITHOUT ROWID;
CREATE INDEX msgs_rid ON msgs (rid, live, visible, ts);
CREATE TABLE subs (rid TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY (rid, uid)) WITHOUT ROWID;
CREATE TABLE urooms (uid TEXT PRIMARY KEY, sig TEXT) WITHOUT ROWID;
CREATE TABLE spool (seq INTEGER PRIMARY KEY, rid TEXT NOT NULL, id TEXT NOT NULL, doc BLOB NOT NULL);
CREATE TABLE threads (tmid TEXT PRIMARY KEY, n INTEGER NOT NULL, tlm INTEGER NOT NULL, replies TEXT NOT NULL,
                      sig TEXT NOT NULL) WITHOUT ROWID;
"""


def ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def thread_sig(tcount: Any, tlm: Any, replies: Any) -> str | None:
    """The thread counters of a root as one comparable text (None: the message is no thread root)."""
    if not tcount:
        return None
    when = ms(tlm) if isinstance(tlm, datetime) else 0
    people = " ".join(r for r in replies or [] if isinstance(r, str))
    return f"{int(tcount)}|{when}|{people}"


class Ledger:
    """The scratch mirror: document hashes by collection, message placement, subscriptions, the spool
    of the current room's messages, and the thread counters computed from them."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="chatmigrate-rc-")
        self.db = sqlite3.connect(Path(self._dir.name) / "ledger.db", isolation_level=None)
        # Scratch data, rebuilt from the database every run: durability is not wanted, speed is.
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE; "
                              "PRAGMA cache_size=-32768;" + _SCHEMA)
        self.db.execute("BEGIN")

    @property
    def folder(self) -> Path:
        return Path(self._dir.name)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # -- documents ---------------------------------------------------------------------------------
    def add_docs(self, coll: str, rows: Iterable[tuple[str, str | None]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", ((coll, i, h) for i, h in rows))

    def doc_hash(self, coll: str, doc_id: str) -> tuple[bool, str | None]:
        """(whether the database holds the document, the content hash chatmigrate wrote there)."""
        row = self.db.execute("SELECT hash FROM docs WHERE coll = ? AND id = ?", (coll, doc_id)).fetchone()
        return (False, None) if row is None else (True, row[0])

    def set_hash(self, coll: str, doc_id: str, digest: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (coll, doc_id, digest))

    # -- messages ----------------------------------------------------------------------------------
    def add_messages(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (id, rid, tmid, ts ms, uid, live, visible, place, hash, tsig) read from the database."""
        self.db.executemany("INSERT OR REPLACE INTO msgs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def message(self, doc_id: str) -> tuple[str, str | None, str | None] | None:
        """(place, hash, thread signature) of a message the database holds, or None."""
        row = self.db.execute("SELECT place, hash, tsig FROM msgs WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def room_of_message(self, doc_id: str) -> str | None:
        """The room of a live message the database holds (or this run wrote), or None."""
        row = self.db.execute("SELECT rid FROM msgs WHERE id = ? AND live = 1", (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def spool(self, doc: dict[str, Any], live: bool) -> None:
        """Hold one message document of the current room; its placement counts from now on."""
        visible = live and ("tmid" not in doc or bool(doc.get("tshow")))
        # A new row's place is where it will go; a known row keeps where the database has it (and its
        # hash), so the writer can tell new, changed, moved and unchanged documents apart.
        self.db.execute(
            "INSERT INTO msgs VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT (id) DO UPDATE SET "
            "rid = excluded.rid, tmid = excluded.tmid, ts = excluded.ts, uid = excluded.uid, live = excluded.live, "
            "visible = excluded.visible",
            (doc["_id"], doc["rid"], doc.get("tmid"), ms(doc["ts"]), doc["u"]["_id"], int(live), int(visible),
             "m" if live else "t"))
        self.db.execute("INSERT INTO spool (rid, id, doc) VALUES (?, ?, ?)", (doc["rid"], doc["_id"], bson.encode(doc)))

    def placed(self, rows: list[tuple[str, str, str | None, str]]) -> None:
        """Rows of (place, hash, thread signature, id) of documents just written."""
        self.db.executemany("UPDATE msgs SET place = ?, hash = ?, tsig = ? WHERE id = ?", rows)

    def set_tsig(self, doc_id: str, tsig: str | None) -> None:
        self.db.execute("UPDATE msgs SET tsig = ? WHERE id = ?", (tsig, doc_id))

    def count_threads(self, rid: str) -> None:
        """The thread counters of every root of room `rid`, over what the database will hold."""
        self.db.execute("DELETE FROM threads")
        self.db.execute(
            "INSERT INTO threads SELECT tmid, SUM(n), MAX(last), group_concat(uid, ' '), '' FROM ("
            "  SELECT tmid, uid, COUNT(*) AS n, MIN(ts) AS first, MAX(ts) AS last FROM msgs"
            "  WHERE rid = ? AND tmid IS NOT NULL AND live = 1 GROUP BY tmid, uid ORDER BY tmid, first, uid"
            ") GROUP BY tmid", (rid,))
        self.db.execute("UPDATE threads SET sig = n || '|' || tlm || '|' || replies")

    def spooled(self, rid: str) -> Iterator[tuple[dict[str, Any], tuple[int, int, str, str] | None,
                                                  tuple[str, str | None, str | None] | None]]:
        """The spooled documents of room `rid` in stream order, each with its thread counters
        (count, last reply ms, repliers, signature) when it is a thread root, and what the database
        holds of it (place, hash, thread signature; None when it holds nothing)."""
        rows = self.db.execute("SELECT s.doc, t.n, t.tlm, t.replies, t.sig, m.place, m.hash, m.tsig FROM spool s "
                               "LEFT JOIN threads t ON t.tmid = s.id JOIN msgs m ON m.id = s.id "
                               "WHERE s.rid = ? ORDER BY s.seq", (rid,))
        for raw, n, tlm, replies, sig, place, digest, tsig in rows:
            yield (bson.decode(raw), None if n is None else (n, tlm, replies, sig),
                   None if digest is None else (place, digest, tsig))

    def stale_roots(self, rid: str) -> list[tuple[str, str, int, int, str, str]]:
        """Roots of `rid` outside the spool whose counters in the database differ from the computed ones
        (new replies to an old thread, or replies gone): (id, place, n, tlm, replies, sig); n = 0 when the
        message is no longer a root."""
        changed = self.db.execute(
            # CROSS JOIN fixes the loop order: the room's threads outside, messages by key (the planner
            # would otherwise scan every message of the run once per room).
            "SELECT m.id, m.place, t.n, t.tlm, t.replies, t.sig FROM threads t CROSS JOIN msgs m ON m.id = t.tmid "
            "WHERE m.live = 1 AND m.tsig IS NOT t.sig AND m.id NOT IN (SELECT id FROM spool WHERE rid = ?)",
            (rid,)).fetchall()
        gone = self.db.execute(
            "SELECT id, place, 0, 0, '', '' FROM msgs WHERE rid = ? AND tsig IS NOT NULL AND live = 1 "
            "AND id NOT IN (SELECT tmid FROM threads) AND id NOT IN (SELECT id FROM spool WHERE rid = ?)",
            (rid, rid)).fetchall()
        return changed + gone

    def room_counts(self, rid: str) -> tuple[int, str | None, int | None]:
        """(messages in the room, id and ms of its newest visible message) as the database will hold them."""
        total = self.db.execute("SELECT COUNT(*) FROM msgs WHERE rid = ? AND live = 1", (rid,)).fetchone()[0]
        last = self.db.execute("SELECT id, ts FROM msgs WHERE rid = ? AND live = 1 AND visible = 1 "
                               "ORDER BY ts DESC, id DESC LIMIT 1", (rid,)).fetchone()
        return total, (last[0] if last else None), (last[1] if last else None)

    def spooled_doc(self, doc_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT doc FROM spool WHERE id = ? ORDER BY seq DESC LIMIT 1", (doc_id,)).fetchone()
        return None if row is None else bson.decode(row[0])

    def clear_spool(self, rid: str) -> None:
        self.db.execute("DELETE FROM spool WHERE rid = ?", (rid,))
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    # -- memberships -------------------------------------------------------------------------------
    def add_subs(self, rows: Iterable[tuple[str, str]]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO subs VALUES (?, ?)", rows)

    def users_count(self, rid: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM subs WHERE rid = ?", (rid,)).fetchone()[0])

    def add_user_rooms(self, rows: Iterable[tuple[str, str]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO urooms VALUES (?, ?)", rows)

    def note_user(self, uid: str) -> None:
        """A user this run writes: a new one holds no `__rooms` yet."""
        self.db.execute("INSERT OR IGNORE INTO urooms VALUES (?, '')", (uid,))

    def changed_user_rooms(self) -> Iterator[tuple[str, list[str]]]:
        """Users whose `__rooms` in the database differ from their subscriptions: (user id, room ids)."""
        rows = self.db.execute(
            "SELECT u.uid, s.rooms FROM urooms u LEFT JOIN (SELECT uid, group_concat(rid, ' ') AS rooms FROM "
            "(SELECT uid, rid FROM subs ORDER BY uid, rid) GROUP BY uid) s ON s.uid = u.uid "
            "WHERE IFNULL(s.rooms, '') IS NOT IFNULL(u.sig, '')").fetchall()
        for uid, rooms in rows:
            yield uid, (rooms or "").split()
