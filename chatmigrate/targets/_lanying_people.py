"""Users and conversations of the 蓝莺IM target (targets/lanying.py), from the hub, through the ledger.

Users: `/user/register/batch` (100 a call) with a random password nobody keeps (users get theirs from
the admin: `/user/change_password_admin`, or sign in through the app's own login), then
`/user/profile/batch` (nick_name, description, private_info with the email). A user a mapping merged
onto an existing 蓝莺IM user (props[EXISTING_USER_PROP]) is never registered nor changed: its
user_id is only referred to.

Conversations: a direct conversation of two people (or one, with themself) is a user-to-user
conversation; every other channel becomes a group: `/group/create` as its owner (the creator, else
its first member or author), `/group/settings/history_visible` true (old messages visible to members),
then `/group/invite` of its members and of every author of its messages (a sender must be a member).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from chatmigrate.model import EXISTING_USER_PROP
from chatmigrate.targets import _lanying_rules as ly
from chatmigrate.targets._lanying_api import ALREADY_MEMBER, LanyingClient, LanyingError

if TYPE_CHECKING:
    from chatmigrate.loaders import Loader
    from chatmigrate.targets._lanying_ledger import Ledger

_BATCH = 100
# A group created by a run that died before writing its id down is recognised among its owner's groups
# by name and by a creation time after the intent (this much clock skew between us and the server allowed).
_SKEW_MS = 120_000


@dataclass(slots=True)
class Conversation:
    channel_id: str
    name: str
    kind: str  # group | direct
    group_id: int | None = None
    owner: int | None = None
    people: list[int] = field(default_factory=list)  # direct: the one or two members' user ids


@dataclass(slots=True)
class Counts:
    values: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self.values[key] = self.values.get(key, 0) + n


def _props(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str | bytes) and raw:
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else {}
    return {}


class People:
    """Users and conversations made to exist in 蓝莺IM, and the maps from canonical ids to theirs."""

    def __init__(self, hub: Loader, ledger: Ledger, client: LanyingClient, counts: Counts,
                 app_users: dict[str, int]) -> None:
        self.hub, self.ledger, self.client, self.counts = hub, ledger, client, counts
        self.app_users = app_users  # lower-case username → user_id, as the app holds them
        self.user_ids: dict[str, int] = {}  # canonical user id → 蓝莺IM user_id
        self.usernames: dict[str, str] = {}  # canonical user id → the source's username

    # -- users -------------------------------------------------------------------------------------
    def sync_users(self) -> None:
        rows = self.ledger.user_rows()
        users = self._hub_users()
        self.usernames = {u["id"]: u["username"] for u in users}
        self._reserve(users, rows)
        for _ in range(3):  # a name someone else took meanwhile is renamed and registered again
            if not self._register(self.ledger.user_rows()):
                break
        rows = self.ledger.user_rows()
        self.user_ids = {rid: int(row["ly_user_id"]) for rid, row in rows.items()
                         if row["ly_user_id"] is not None and row["state"] in ("registered", "existing")}
        self._profiles(users, rows)

    def _hub_users(self) -> list[dict[str, Any]]:
        u = self.hub.table("users")
        with self.hub.engine.connect() as conn:
            rows = conn.execute(sa.select(u.c.id, u.c.username, u.c.display_name, u.c.first_name, u.c.last_name,
                                          u.c.email, u.c.is_bot, u.c.props).order_by(u.c.username, u.c.id))
            return [dict(r._mapping) for r in rows]

    def _reserve(self, users: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> None:
        """A ledger row for every user not in it yet: a merged user with its existing user_id, any
        other with a free username, reserved before anything is registered."""
        ours = {row["username"].lower() for row in rows.values() if row["state"] != "existing"}
        taken = ours | set(self.app_users)
        new = []
        for user in users:
            if user["id"] in rows:
                continue
            existing = _props(user["props"]).get(EXISTING_USER_PROP)
            if isinstance(existing, dict):
                new.append(self._existing_row(user, existing))
                continue
            base = ly.username(user["username"])
            name, n = base, 1
            while name.lower() in taken:
                n += 1
                name = ly.numbered(base, n)
            taken.add(name.lower())
            new.append({"record_id": user["id"], "username": name, "state": "pending"})
        self.ledger.put_users(new)

    def _existing_row(self, user: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
        target = existing.get("target_id")
        name = str(existing.get("username") or user["username"])
        if target is None:
            target = self.app_users.get(name.lower())
        if target is None or not str(target).isdigit():
            self.counts.add("existing_users_not_found")
            return {"record_id": user["id"], "username": name, "state": "failed",
                    "reason": "merged onto an existing user the app does not hold"}
        self.counts.add("users_existing")
        return {"record_id": user["id"], "username": name, "state": "existing", "ly_user_id": int(target)}

    def _register(self, rows: dict[str, dict[str, Any]]) -> bool:
        """Register the reserved users; True when some must be renamed and tried again."""
        pending = [row for row in rows.values() if row["state"] == "pending"]
        adopted = [{**row, "state": "registered", "ly_user_id": self.app_users[row["username"].lower()]}
                   for row in pending if row["username"].lower() in self.app_users]
        self.ledger.put_users(adopted)
        self.counts.add("users_recovered", len(adopted))
        pending = [row for row in pending if row["username"].lower() not in self.app_users]
        again = False
        for start in range(0, len(pending), _BATCH):
            batch = pending[start:start + _BATCH]
            body = {"list": [{"username": row["username"], "password": secrets.token_urlsafe(18)} for row in batch]}
            answers = self.client.data("POST", "/user/register/batch", body=body) or []
            by_name = {str(a.get("username")): a for a in answers if isinstance(a, dict)}
            updates = []
            for row in batch:
                answer = by_name.get(row["username"], {})
                if answer.get("success") and isinstance(answer.get("user_id"), int):
                    updates.append({**row, "state": "registered", "ly_user_id": answer["user_id"]})
                    self.app_users[row["username"].lower()] = answer["user_id"]
                    self.counts.add("users_registered")
                elif "exist" in str(answer.get("reason", "")).lower():
                    updates.append({**row, "username": self._free_name(row["username"])})
                    again = True
                else:
                    reason = str(answer.get("reason") or "no answer for this user")[:300]
                    updates.append({**row, "state": "failed", "reason": reason})
                    self.counts.add("users_failed")
            self.ledger.put_users(updates)
        return again

    def _free_name(self, name: str) -> str:
        known = {row["username"].lower() for row in self.ledger.user_rows().values()} | set(self.app_users)
        n = 2
        while ly.numbered(name, n).lower() in known:
            n += 1
        return ly.numbered(name, n)

    def _profiles(self, users: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> None:
        """nick_name, description (the full name) and private_info (the email, visible only to the
        user) of every registered user whose profile changed since it was last sent."""
        changed = []
        for user in users:
            row = rows.get(user["id"])
            if row is None or row["state"] != "registered":
                continue
            profile = _profile(user, row["ly_user_id"])
            digest = hashlib.md5(orjson.dumps(profile, option=orjson.OPT_SORT_KEYS), usedforsecurity=False).hexdigest()
            if digest != row["profile_hash"]:
                changed.append((row, profile, digest))
        for start in range(0, len(changed), _BATCH):
            batch = changed[start:start + _BATCH]
            answers = self.client.data("POST", "/user/profile/batch", body={"list": [p for _, p, _ in batch]}) or []
            ok = {a.get("user_id") for a in answers if isinstance(a, dict) and a.get("success")}
            done = [{"record_id": row["record_id"], "profile_hash": digest} for row, profile, digest in batch
                    if profile["user_id"] in ok]
            self.ledger.put_users(done)
            self.counts.add("profiles_updated", len(done))
            self.counts.add("profiles_refused", len(batch) - len(done))

    # -- conversations -----------------------------------------------------------------------------
    def channels(self) -> Iterator[tuple[dict[str, Any], list[str]]]:
        """Every hub channel (by name) with its people: members, then authors who are not members."""
        c, cm, m = self.hub.table("channels"), self.hub.table("channel_members"), self.hub.table("messages")
        with self.hub.engine.connect() as conn:
            channels = [dict(r._mapping) for r in conn.execute(
                sa.select(c.c.id, c.c.name, c.c.display_name, c.c.kind, c.c.topic, c.c.purpose, c.c.creator_id)
                .order_by(c.c.name, c.c.id))]
        for channel in channels:
            with self.hub.engine.connect() as conn:
                members = [r[0] for r in conn.execute(sa.select(cm.c.user_id).where(cm.c.channel_id == channel["id"])
                                                      .order_by(cm.c.user_id))]
                authors = [r[0] for r in conn.execute(sa.select(m.c.user_id).where(
                    m.c.channel_id == channel["id"], m.c.user_id.is_not(None)).distinct().order_by(m.c.user_id))]
            yield channel, list(dict.fromkeys(members + authors))

    def conversation(self, channel: dict[str, Any], people: list[str]) -> Conversation | None:
        """The channel's 蓝莺IM conversation, created (and its members invited) as needed; None when
        nobody in it exists in 蓝莺IM."""
        ids = list(dict.fromkeys(self.user_ids[p] for p in people if p in self.user_ids))
        name = str(channel["display_name"] or channel["name"])[:100]
        if channel["kind"] == "direct" and 1 <= len(ids) <= 2 and len(ids) == len(people):
            if self.ledger.conv(channel["id"]) is None:
                self.ledger.put_conv(channel["id"], kind="direct", state="ready", intent_ms=_now_ms())
            return Conversation(channel["id"], name, "direct", people=ids)
        creator = self.user_ids.get(channel["creator_id"] or "")
        owner = creator if creator is not None else (ids[0] if ids else None)
        row = self.ledger.conv(channel["id"])
        if row is not None and row["state"] == "ready" and row["ly_group_id"] is not None:
            conv = Conversation(channel["id"], name, "group", int(row["ly_group_id"]), int(row["owner"]))
        elif owner is None:
            return None
        else:
            conv = self._group(channel, name, owner, row)
        if row is None or not row["history_visible"]:
            # Before anyone is invited and before the history is sent (new members see old messages).
            self.client.call("POST", "/group/settings/history_visible", body={"group_id": conv.group_id, "value": True},
                             as_user=conv.owner)
            self.ledger.put_conv(channel["id"], history_visible=True)
        self._invite(conv, [i for i in ids if i != conv.owner])
        return conv

    def _group(self, channel: dict[str, Any], name: str, owner: int, row: dict[str, Any] | None) -> Conversation:
        if row is not None and row["state"] == "creating":
            found = self._find_group(name, owner, int(row["intent_ms"]))
            if found is not None:
                self.counts.add("groups_recovered")
                self.ledger.put_conv(channel["id"], ly_group_id=found, owner=owner, state="ready")
                return Conversation(channel["id"], name, "group", found, owner)
        self.ledger.put_conv(channel["id"], kind="group", state="creating", intent_ms=_now_ms(), owner=owner,
                             history_visible=False, inflight=False)
        description = str(channel["purpose"] or channel["topic"] or "")[:500]
        data = self.client.data("POST", "/group/create", body={"name": name, "description": description, "type": 0,
                                                               "user_list": []}, as_user=owner)
        group_id = data.get("group_id") if isinstance(data, dict) else None
        if not isinstance(group_id, int):
            raise LanyingError("/group/create", None, f"no group_id in the answer for channel {channel['name']!r}")
        self.ledger.put_conv(channel["id"], ly_group_id=group_id, state="ready")
        self.counts.add("groups_created")
        return Conversation(channel["id"], name, "group", group_id, owner)

    def _find_group(self, name: str, owner: int, intent_ms: int) -> int | None:
        """A group of `owner` named `name` created after `intent_ms` (a run died before noting its id)."""
        for group_id in self.client.data("GET", "/group/user_joined", as_user=owner) or []:
            info = self.client.data("GET", "/group/info", params={"group_id": group_id}, as_user=owner) or {}
            if (info.get("name") == name and info.get("owner_id") == owner
                    and int(info.get("created_at") or 0) >= intent_ms - _SKEW_MS):
                return int(group_id)
        return None

    def _invite(self, conv: Conversation, wanted: list[int]) -> None:
        assert conv.group_id is not None
        invited = self.ledger.invited(conv.channel_id)
        missing = [uid for uid in wanted if uid not in invited]
        for start in range(0, len(missing), _BATCH):
            batch = missing[start:start + _BATCH]
            try:
                answers = self.client.data("POST", "/group/invite", body={
                    "group_id": conv.group_id, "user_list": batch, "reason": "chatmigrate: history import"},
                    as_user=conv.owner) or []
            except LanyingError as exc:
                if exc.code != ALREADY_MEMBER:
                    raise
                answers = [{"user_id": uid, "result": "success"} for uid in batch]
            joined = [a.get("user_id") for a in answers if isinstance(a, dict)
                      and (a.get("result") == "success" or "member" in str(a.get("reason", "")).lower())]
            self.ledger.add_members(conv.channel_id, [uid for uid in batch if uid in joined])
            self.counts.add("members_invited", len(joined))
            self.counts.add("members_refused", len(batch) - len([u for u in batch if u in joined]))


def _profile(user: dict[str, Any], user_id: int) -> dict[str, Any]:
    full = " ".join(p for p in (user["first_name"], user["last_name"]) if p)
    private = {"email": user["email"]} if user["email"] else {}
    return {"user_id": int(user_id), "nick_name": str(user["display_name"] or full or user["username"])[:100],
            "description": full, "private_info": orjson.dumps(private).decode() if private else ""}


def _now_ms() -> int:
    return int(time.time() * 1000)
