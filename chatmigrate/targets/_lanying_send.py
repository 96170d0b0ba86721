"""Sending the history into 蓝莺IM (targets/lanying.py): each conversation's messages from the hub in
order (created_at, id), `/message/send` as their author, each part once.

A message is sent as parts: its text (content_type TEXT), then one message per file (IMAGE or FILE,
the bytes uploaded through `GET /file/upload/chat` first); each part carries the `ext` JSON
(_lanying_rules.ext_json) and `transaction_id` = a hash of its canonical id and part number. The
ledger notes every part sent; it is committed every few dozen parts and at the end of each
conversation, and the conversation is marked `inflight` while it is sent. A run that died mid-way
left an inflight conversation: the next run first reads that conversation back from 蓝莺IM
(`/message/conversation`, newest first) and takes every part whose `ext` names one of our ids as
sent — so nothing the server holds is sent again. See README "Exactly once" for the window that stays.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from tqdm import tqdm

from chatmigrate.targets import _lanying_rules as ly
from chatmigrate.targets._filestore import FileStore
from chatmigrate.targets._lanying_api import LanyingClient, LanyingError
from chatmigrate.targets._lanying_ledger import FAILED, PARTIAL, SENT, SKIPPED, Ledger, Progress
from chatmigrate.targets._lanying_people import Conversation, Counts, People, _props

if TYPE_CHECKING:
    from chatmigrate.loaders import Loader

_CHUNK = 500  # messages read from the hub at a time
_COMMIT_PARTS = 50  # parts sent between two ledger commits (and at most read back after a crash)
_COMMIT_SECONDS = 2.0
_READ_BACK = 4 * _COMMIT_PARTS  # newest messages of an inflight conversation compared after a crash
_PAGE = 50


class Sender:
    def __init__(self, hub: Loader, ledger: Ledger, client: LanyingClient, people: People, store: FileStore,
                 counts: Counts, progress: bool, notify: Callable[[str], None] | None = None) -> None:
        self.hub, self.ledger, self.client, self.people = hub, ledger, client, people
        self.store, self.counts = store, counts
        self.progress = progress
        self.notify = notify
        self._last_commit = time.monotonic()
        self._bar: Any = None

    # -- the whole history ---------------------------------------------------------------------------
    def send_all(self) -> None:
        total = self._pending_total()
        self.counts.add("messages_pending_at_start", total)
        self._bar = tqdm(total=total, desc="蓝莺IM send", unit=" msg", file=sys.stderr, disable=not self.progress,
                         mininterval=0.5, smoothing=0.1)
        try:
            for channel, people in self.people.channels():
                if not self._has_work(channel["id"], people):
                    continue
                conv = self.people.conversation(channel, people)
                if conv is None:
                    self._skip_channel(channel["id"], "nobody in this conversation exists in 蓝莺IM")
                    continue
                self._send_conversation(conv)
        finally:
            self.ledger.commit()
            self._bar.close()

    def _pending_total(self) -> int:
        m, lm = self.hub.table("messages"), self.ledger.messages
        with self.hub.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(m.outerjoin(lm, lm.c.message_id == m.c.id))
                                    .where(_unsent(lm))).scalar())

    def _has_work(self, channel_id: str, people: list[str]) -> bool:
        """A conversation needs a visit when it is new, has unsent messages or new people."""
        row = self.ledger.conv(channel_id)
        if row is None or row["state"] != "ready" or row["inflight"]:
            return True
        if next(self._pending(channel_id), None) is not None:
            return True
        if row["kind"] == "group":
            invited = self.ledger.invited(channel_id) | {row["owner"]}
            return any(self.people.user_ids.get(p) not in invited for p in people if p in self.people.user_ids)
        return False

    def _pending(self, channel_id: str) -> Iterator[list[dict[str, Any]]]:
        """The channel's messages the ledger has not seen through, in order, a chunk at a time."""
        m, lm = self.hub.table("messages"), self.ledger.messages
        after: tuple[Any, str] | None = None
        while True:
            query = (sa.select(m.c.id, m.c.user_id, m.c.created_at, m.c.kind, m.c.text, m.c.thread_root_id,
                               m.c.edited_at, m.c.deleted_at, m.c.is_pinned, m.c.source, m.c.source_id, m.c.props)
                     .select_from(m.outerjoin(lm, lm.c.message_id == m.c.id))
                     .where(m.c.channel_id == channel_id, _unsent(lm))
                     .order_by(m.c.created_at, m.c.id).limit(_CHUNK))
            if after is not None:
                query = query.where(sa.or_(m.c.created_at > after[0],
                                           sa.and_(m.c.created_at == after[0], m.c.id > after[1])))
            with self.hub.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
            if not rows:
                return
            yield rows
            after = (rows[-1]["created_at"], rows[-1]["id"])

    def _skip_channel(self, channel_id: str, reason: str) -> None:
        for chunk in self._pending(channel_id):
            known = self.ledger.progress([r["id"] for r in chunk])
            for row in chunk:
                old = known.get(row["id"])
                self.ledger.record(row["id"], channel_id, Progress(FAILED, old.parts if old else 0,
                                                                    old.sent if old else 0, old.msg_ids if old else []),
                                   reason)
                self.counts.add("messages_failed")
                self._bar.update(1)
        self.ledger.commit()

    # -- one conversation ----------------------------------------------------------------------------
    def _send_conversation(self, conv: Conversation) -> None:
        row = self.ledger.conv(conv.channel_id)
        if row is not None and row["inflight"]:
            self._read_back(conv)
        self.ledger.put_conv(conv.channel_id, inflight=True)
        for chunk in self._pending(conv.channel_id):
            known = self.ledger.progress([r["id"] for r in chunk])
            reactions, files = self._extras([r["id"] for r in chunk])
            for message in chunk:
                self._send_message(conv, message, known.get(message["id"]), reactions.get(message["id"], []),
                                   files.get(message["id"], []))
                self._bar.update(1)
        self.ledger.commit()
        self.ledger.put_conv(conv.channel_id, inflight=False)

    def _read_back(self, conv: Conversation) -> None:
        """After a crash: the parts 蓝莺IM holds that the ledger had not committed, taken as sent."""
        reader, opposite = (conv.owner, conv.group_id) if conv.kind == "group" else (conv.people[0], conv.people[-1])
        found: dict[str, dict[int, int]] = {}
        totals: dict[str, int] = {}
        seen, start = 0, 0
        while seen < _READ_BACK:
            data = self.client.data("GET", "/message/conversation", params={
                "opposite_id": opposite, "msg_id_start": start, "limit": _PAGE}, as_user=reader) or {}
            messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
            for message in messages:
                info = ly.ext_of(message.get("ext"))
                if info and isinstance(info.get("id"), str) and isinstance(message.get("msg_id"), int):
                    found.setdefault(info["id"], {})[int(info.get("part") or 0)] = message["msg_id"]
                    totals[info["id"]] = int(info.get("parts") or 1)
            seen += len(messages)
            nxt = data.get("next_msg_id")
            if data.get("is_last") or not messages or not isinstance(nxt, int) or nxt == start:
                break
            start = nxt
        known = self.ledger.progress(list(found))
        for message_id, parts in found.items():
            old = known.get(message_id) or Progress(PARTIAL, totals[message_id], 0, [])
            if old.state in (SENT, SKIPPED):
                continue
            sent, ids = old.sent, list(old.msg_ids)
            while sent in parts:
                ids.append(parts[sent])
                sent += 1
            if sent > old.sent:
                self.counts.add("parts_found_after_crash", sent - old.sent)
                self.ledger.record(message_id, conv.channel_id,
                                   Progress(SENT if sent >= old.parts else PARTIAL, old.parts, sent, ids))
        self.ledger.commit()

    def _extras(self, ids: list[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        r, f = self.hub.table("reactions"), self.hub.table("files")
        reactions: dict[str, list[dict[str, Any]]] = {}
        files: dict[str, list[dict[str, Any]]] = {}
        with self.hub.engine.connect() as conn:
            query = (sa.select(r.c.message_id, r.c.emoji, r.c.user_id, r.c.created_at).where(r.c.message_id.in_(ids))
                     .order_by(r.c.message_id, r.c.created_at, r.c.emoji))
            for row in conn.execute(query):
                reactions.setdefault(row[0], []).append(dict(row._mapping))
            for row in conn.execute(sa.select(f.c.message_id, f.c.id, f.c.name, f.c.mime_type, f.c.size, f.c.sha256)
                                    .where(f.c.message_id.in_(ids)).order_by(f.c.message_id, f.c.id)):
                files.setdefault(row[0], []).append(dict(row._mapping))
        return reactions, files

    def _send_message(self, conv: Conversation, message: dict[str, Any], old: Progress | None,
                      reactions: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
        text = message["text"] or ""
        if message["deleted_at"] is not None or message["kind"] == "tombstone":
            self._record(conv, message["id"], Progress(SKIPPED, 0, 0, []), "deleted in the source", "messages_deleted")
            return
        parts = ([("text", None)] if text.strip() else []) + [("file", f) for f in files]
        if not parts:
            self._record(conv, message["id"], Progress(SKIPPED, 0, 0, []), "no text and no file", "messages_empty")
            return
        progress = old if old is not None and old.parts == len(parts) else Progress(PARTIAL, len(parts), 0, [])
        if old is not None and old.parts != len(parts):
            progress = Progress(PARTIAL, len(parts), min(old.sent, len(parts)), old.msg_ids[:len(parts)])
        author = self.people.user_ids.get(message["user_id"] or "")
        if conv.kind == "direct" and author is None and message["user_id"] is not None:
            self._record(conv, message["id"], progress, "its author does not exist in 蓝莺IM", "messages_failed",
                         state=FAILED)
            return
        base = self._ext_base(message, reactions, len(parts))
        for index in range(progress.sent, len(parts)):
            kind, file = parts[index]
            try:
                body = self._body(conv, message, author, base, index, text if kind == "text" else None, file)
                answer = self.client.call("POST", "/message/send", body=body, paced=True)
            except LanyingError as exc:
                self._record(conv, message["id"], progress, str(exc)[:300], "messages_failed", state=FAILED)
                return
            ids = answer.get("msg_ids")
            progress.msg_ids.append(int(ids[0]) if isinstance(ids, list) and ids and isinstance(ids[0], int) else 0)
            progress.sent = index + 1
            self.counts.add("parts_sent")
            self.ledger.record(message["id"], conv.channel_id, progress)
            self._maybe_commit()
        progress.state = SENT
        self._record(conv, message["id"], progress, None, "messages_sent")

    def _record(self, conv: Conversation, message_id: str, progress: Progress, reason: str | None, counter: str,
                state: str | None = None) -> None:
        if state is not None:
            progress.state = state
        self.ledger.record(message_id, conv.channel_id, progress, reason)
        self.counts.add(counter)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        now = time.monotonic()
        if self.ledger.uncommitted >= _COMMIT_PARTS or now - self._last_commit >= _COMMIT_SECONDS:
            self.ledger.commit()
            self._last_commit = now

    # -- bodies --------------------------------------------------------------------------------------
    def _ext_base(self, message: dict[str, Any], reactions: list[dict[str, Any]], parts: int) -> dict[str, Any]:
        root = message["thread_root_id"]
        props = _props(message["props"])
        author = message["user_id"]
        return {
            "id": message["id"], "source": message["source"], "source_id": message["source_id"],
            "ts": ly.iso(message["created_at"]), "parts": parts if parts > 1 else None,
            "author": {"id": author, "username": self.people.usernames.get(author), "user_id":
                       self.people.user_ids.get(author)} if author else None,
            "kind": message["kind"] if message["kind"] != "normal" else None,
            "thread_root": _present({"id": root, "msg_id": self.ledger.first_msg_id(root)}) if root else None,
            "orphan_of": props.get("orphan_of"),
            "edited_at": ly.iso(message["edited_at"]), "pinned": bool(message["is_pinned"]),
            "reactions": [_present({"emoji": r["emoji"], "username": self.people.usernames.get(r["user_id"]),
                                    "user_id": self.people.user_ids.get(r["user_id"]), "ts": ly.iso(r["created_at"])})
                          for r in reactions],
        }

    def _body(self, conv: Conversation, message: dict[str, Any], author: int | None, base: dict[str, Any],
              index: int, text: str | None, file: dict[str, Any] | None) -> dict[str, Any]:
        if conv.kind == "group":
            target, to_type = conv.group_id, ly.TO_GROUP
        else:
            others = [p for p in conv.people if p != author]
            target, to_type = (others[0] if others else conv.people[0]), ly.TO_USER
        info = {**base, "part": index} if index == 0 else {
            k: base[k] for k in ("id", "source", "source_id", "ts", "author", "thread_root", "parts")} | {"part": index}
        body: dict[str, Any] = {"type": to_type, "targets": [target], "transaction_id": ly.transaction_id(
            message["id"], index)}
        if author is not None:
            body["from_user_id"] = author
        if file is None:
            body.update(content=text or "", content_type=ly.TEXT)
        else:
            body.update(self._file_part(file, target, to_type, author))
            info["file"] = {"id": file["id"], "name": file["name"], "sha256": file["sha256"], "size": file["size"]}
        body["ext"] = ly.ext_json(info)
        return body

    def _file_part(self, file: dict[str, Any], target: int | None, to_type: int, author: int | None) -> dict[str, Any]:
        """The content of a file's message: uploaded bytes as IMAGE/FILE, or a text naming a file whose
        bytes the source did not hold."""
        name = str(file["name"] or "file")
        sha = file["sha256"]
        if not sha or not self.store.has(sha):
            self.counts.add("files_without_bytes")
            return {"content": f"[file: {name} — not migrated: the source held no bytes for it]",
                    "content_type": ly.TEXT}
        upload_type, content_type = ly.upload_type(file["mime_type"], name)
        key = f"{file['id']}|{to_type}|{target}"
        url = self.ledger.upload_url(key)
        path = self.store.path(sha)
        if url is None:
            ticket = self.client.data("GET", "/file/upload/chat", params={
                "file_type": upload_type, "to_id": target, "to_type": to_type}, as_user=author)
            if not isinstance(ticket, dict) or not ticket.get("download_url"):
                raise LanyingError("/file/upload/chat", None, "the answer names no download_url")
            with path.open("rb") as handle:
                self.client.upload(ticket, name, handle, file["mime_type"] or "application/octet-stream")
            url = str(ticket["download_url"])
            self.ledger.put_upload(key, url)
            self.counts.add("files_uploaded")
        dimensions = None
        if content_type == ly.IMAGE:
            with suppress(OSError):
                dimensions = ly.image_size(path)
        return {"content": name, "content_type": content_type,
                "attachment": ly.attachment(url, name, file["size"] or path.stat().st_size, dimensions)}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _unsent(ledger_messages: sa.Table) -> Any:
    """Messages the ledger does not hold as sent or skipped (new ones, failed ones, half-sent ones)."""
    state = ledger_messages.c.state
    return sa.or_(state.is_(None), state.in_((FAILED, PARTIAL)))
