"""The ledger of the 蓝莺IM target: what has been created and sent, kept in the hub next to the `cm_`
tables (targets/lanying.py), so that a re-run, or a run after a crash, sends only what it lacks.

The API has no upsert by our ids: a user, a group or a message sent twice is there twice. So every
creation is written down as an intent first (committed), then made, then confirmed:

- `ly_users`: canonical user → the 蓝莺IM username reserved for it and, once registered, its user_id
  (or the user_id of an existing user a mapping merged it onto). A user reserved but not confirmed is
  looked up by its username on the next run (the name was free when it was reserved).
- `ly_convs`: canonical channel → 蓝莺IM group (or a direct conversation), its owner, whether
  history_visible was set; `state = creating` with the time of the intent until the group id is
  known; a group created but not confirmed is found among the owner's groups by name and time.
  `inflight = 1` while the conversation's messages are being sent.
- `ly_members`: who has been invited into which group.
- `ly_messages`: canonical message → how many of its parts (text, then one per file) were sent and
  their 蓝莺IM message ids, or why it was not sent.
- `ly_uploads`: a file's download URL once its bytes are uploaded (a re-run does not upload again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

SENT, SKIPPED, FAILED, PARTIAL = "sent", "skipped", "failed", "partial"


def ledger_tables(prefix: str) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(f"{prefix}ly_users", md,
             sa.Column("record_id", sa.String(36), primary_key=True),
             sa.Column("username", sa.String(80), nullable=False),
             sa.Column("ly_user_id", sa.BigInteger),
             # pending (name reserved) | registered | existing (a mapping's merge) | failed
             sa.Column("state", sa.String(16), nullable=False),
             sa.Column("profile_hash", sa.String(32)),
             sa.Column("reason", sa.Text))
    sa.Table(f"{prefix}ly_convs", md,
             sa.Column("channel_id", sa.String(36), primary_key=True),
             sa.Column("kind", sa.String(8), nullable=False),  # group | direct
             sa.Column("ly_group_id", sa.BigInteger),
             sa.Column("owner", sa.BigInteger),
             sa.Column("state", sa.String(16), nullable=False),  # creating | ready
             sa.Column("intent_ms", sa.BigInteger, nullable=False),
             sa.Column("history_visible", sa.Boolean, nullable=False, default=False),
             sa.Column("inflight", sa.Boolean, nullable=False, default=False))
    sa.Table(f"{prefix}ly_members", md,
             sa.Column("channel_id", sa.String(36), primary_key=True),
             sa.Column("ly_user_id", sa.BigInteger, primary_key=True))
    sa.Table(f"{prefix}ly_messages", md,
             sa.Column("message_id", sa.String(36), primary_key=True),
             sa.Column("channel_id", sa.String(36), nullable=False),
             sa.Column("state", sa.String(16), nullable=False),  # sent | partial | skipped | failed
             sa.Column("parts", sa.Integer, nullable=False),
             sa.Column("sent", sa.Integer, nullable=False),
             # 蓝莺IM msg_id of each part sent, space separated, in part order
             sa.Column("msg_ids", sa.Text, nullable=False, default=""),
             sa.Column("reason", sa.Text),
             sa.Index(f"ix_{prefix}ly_messages_channel", "channel_id"))
    sa.Table(f"{prefix}ly_uploads", md,
             sa.Column("file_key", sa.String(120), primary_key=True),
             sa.Column("url", sa.Text, nullable=False))
    return md


@dataclass(slots=True)
class Progress:
    """What the ledger holds of one message."""

    state: str
    parts: int
    sent: int
    msg_ids: list[int]


class Ledger:
    """Reads and writes of the ledger tables; writes are collected and committed by `commit`."""

    def __init__(self, engine: sa.Engine, prefix: str) -> None:
        self.engine = engine
        self.md = ledger_tables(prefix)
        self.md.create_all(engine)
        t = self.md.tables
        self.users, self.convs = t[f"{prefix}ly_users"], t[f"{prefix}ly_convs"]
        self.members, self.messages = t[f"{prefix}ly_members"], t[f"{prefix}ly_messages"]
        self.uploads = t[f"{prefix}ly_uploads"]
        self._pending: dict[str, Progress] = {}
        self._channel_of: dict[str, str] = {}
        self._reasons: dict[str, str | None] = {}
        self._known: set[str] = set()

    # -- users -------------------------------------------------------------------------------------
    def user_rows(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {row.record_id: dict(row._mapping) for row in conn.execute(sa.select(self.users))}

    def put_users(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert or update user rows (keyed by record_id), in one transaction."""
        rows = list(rows)
        if not rows:
            return
        with self.engine.begin() as conn:
            known = {r[0] for r in conn.execute(sa.select(self.users.c.record_id).where(
                self.users.c.record_id.in_([row["record_id"] for row in rows])))}
            for row in rows:
                if row["record_id"] in known:
                    conn.execute(self.users.update().where(self.users.c.record_id == row["record_id"])
                                 .values(**{k: v for k, v in row.items() if k != "record_id"}))
                else:
                    conn.execute(self.users.insert().values(**row))

    # -- conversations -----------------------------------------------------------------------------
    def conv(self, channel_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.convs).where(self.convs.c.channel_id == channel_id)).first()
        return None if row is None else dict(row._mapping)

    def put_conv(self, channel_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(self.convs.update().where(self.convs.c.channel_id == channel_id).values(**values))
            if done.rowcount == 0:
                conn.execute(self.convs.insert().values(channel_id=channel_id, **values))

    def invited(self, channel_id: str) -> set[int]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(self.members.c.ly_user_id)
                                               .where(self.members.c.channel_id == channel_id))}

    def add_members(self, channel_id: str, user_ids: Iterable[int]) -> None:
        rows = [{"channel_id": channel_id, "ly_user_id": uid} for uid in user_ids]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self.members.insert(), rows)

    # -- messages ----------------------------------------------------------------------------------
    def progress(self, message_ids: list[str]) -> dict[str, Progress]:
        """What the ledger holds of these messages (those it knows)."""
        out: dict[str, Progress] = {}
        if not message_ids:
            return out
        m = self.messages
        with self.engine.connect() as conn:
            for start in range(0, len(message_ids), 500):
                chunk = message_ids[start:start + 500]
                for row in conn.execute(sa.select(m.c.message_id, m.c.state, m.c.parts, m.c.sent, m.c.msg_ids)
                                        .where(m.c.message_id.in_(chunk))):
                    out[row[0]] = Progress(row[1], row[2], row[3], [int(x) for x in row[4].split()])
                    self._known.add(row[0])
        return out

    def record(self, message_id: str, channel_id: str, progress: Progress, reason: str | None = None) -> None:
        """Note a message's new state; written at the next `commit`."""
        self._pending[message_id] = progress
        self._channel_of[message_id] = channel_id
        self._reasons[message_id] = reason

    @property
    def uncommitted(self) -> int:
        return len(self._pending)

    def commit(self) -> None:
        if not self._pending:
            return
        m = self.messages
        new, old = [], []
        for message_id, p in self._pending.items():
            row = {"message_id": message_id, "channel_id": self._channel_of[message_id], "state": p.state,
                   "parts": p.parts, "sent": p.sent, "msg_ids": " ".join(str(i) for i in p.msg_ids),
                   "reason": self._reasons.get(message_id)}
            (old if message_id in self._known else new).append(row)
        with self.engine.begin() as conn:
            if new:
                conn.execute(m.insert(), new)
            if old:
                conn.execute(m.update().where(m.c.message_id == sa.bindparam("mid")).values(
                    state=sa.bindparam("st"), parts=sa.bindparam("np"), sent=sa.bindparam("ns"),
                    msg_ids=sa.bindparam("ids"), reason=sa.bindparam("why")),
                    [{"mid": r["message_id"], "st": r["state"], "np": r["parts"], "ns": r["sent"],
                      "ids": r["msg_ids"], "why": r["reason"]} for r in old])
        self._known.update(self._pending)
        self._pending.clear()
        self._channel_of.clear()
        self._reasons.clear()

    def first_msg_id(self, message_id: str) -> int | None:
        """The 蓝莺IM id of a message's first part (a thread root's), when it has been sent."""
        pending = self._pending.get(message_id)
        if pending is not None:
            return pending.msg_ids[0] if pending.msg_ids else None
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(self.messages.c.msg_ids)
                               .where(self.messages.c.message_id == message_id)).scalar()
        return int(ids.split()[0]) if ids else None

    def totals(self) -> dict[str, int]:
        """Messages by ledger state (all runs)."""
        m = self.messages
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(sa.select(m.c.state, sa.func.count()).group_by(m.c.state))}

    # -- uploads -----------------------------------------------------------------------------------
    def upload_url(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(self.uploads.c.url).where(self.uploads.c.file_key == key)).scalar()

    def put_upload(self, key: str, url: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.uploads.delete().where(self.uploads.c.file_key == key))
            conn.execute(self.uploads.insert().values(file_key=key, url=url))
