"""蓝莺IM (Lanying IM) server API, as a source: a 蓝莺IM app migrated or synced into the other targets.

`location`: the app's API endpoint, `lanying://HOST?app_id=APP` (HTTPS; `lanying+http://HOST:PORT` for
plain HTTP) or `https://HOST` with `-o app_id=APP`. The admin token comes from the environment
(CHATMIGRATE_LANYING_TOKEN, or the variable `-o token_env=VAR` names), sent as the `access-token`
header with `app_id`; `user_id` makes a call act as that user (research/targets.md §D.1).

What it reads (maxim-top/im.gitbook zh-hans/reference/server-api, swagger api-docs.json):
- users: `GET /user/list` (page_num/page_size pages) and each user's `GET /user/profile` (nick name,
  description; `-o profiles=false` skips them);
- groups: the union of every user's `GET /group/user_joined`, `GET /group/info` of each, members by
  `GET /group/member_list` (cursor pages); type 0 (private group) → private, other types → public;
- direct conversations: each user's `GET /message/unread` (the recent-conversation list) names the
  users they talk with; a conversation missing from every list is not found (the API lists no other);
- messages: `GET /message/conversation` per conversation, as one of its members, paging backwards from
  msg_id_start=0 with next_msg_id until is_last (or until the channel's saved cursor, the newest msg_id
  read by the previous run: incremental), sorted into the stream order.

A message chatmigrate sent into 蓝莺IM carries its original in `ext.chatmigrate` (targets/lanying.py):
with `-o original_times=true` (the default) its original time, thread root, edit time, pin and
reactions come back from there, and 蓝莺IM's own send time stays in props.lanying_timestamp. Attachments
(IMAGE/FILE/AUDIO/VIDEO) come as files with their URL and size; their bytes are not downloaded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from chatmigrate.errors import InputError, TransientError, UsageError
from chatmigrate.extractors._http import HttpClient
from chatmigrate.extractors.contract import Capabilities, Source
from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, File, Item, Message, Origin, Reaction, Unreadable, User
from chatmigrate.options import Option

SOURCE = "lanying"
TOKEN_ENV = "CHATMIGRATE_LANYING_TOKEN"
_TOKEN_CODES = {10003, 10008, 40000}  # token missing / invalid or expired / unknown app_id
_RETRY_CODES = {20000}  # 服务器数据库异常
_FILE_TYPES = {"IMAGE", "AUDIO", "VIDEO", "FILE"}
_EXT_KEY = "chatmigrate"


def _time_ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value / 1000, UTC)
    return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(raw: Any) -> Any:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class LanyingApi(Source):
    name: ClassVar[str] = "lanying-api"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "app_id": Option("the app's id (the console's 应用信息 page), unless the URL has ?app_id="),
        "token_env": Option("environment variable holding the admin token (default CHATMIGRATE_LANYING_TOKEN)"),
        "scope": Option("what the ids are scoped to (default: the app_id)"),
        "page_size": Option("users and messages per API page", int, 1, 1000),
        "profiles": Option("read each user's profile for the display name (default true)", bool),
        "original_times": Option("restore the original time, thread and reactions chatmigrate kept in ext "
                                 "(default true)", bool),
    }
    # Incremental by msg_id cursor; a msg_id cannot be moved back by seconds (no rewind); bytes not fetched.
    capabilities: ClassVar[Capabilities] = Capabilities(incremental=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        return urlsplit(location).scheme.lower() in ("lanying", "lanying+http", "lanying+https")

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(location, options)
        parts = urlsplit(location)
        scheme = parts.scheme.lower()
        query = dict(parse_qsl(parts.query))
        if scheme not in ("lanying", "lanying+http", "lanying+https", "http", "https") or not parts.netloc:
            raise UsageError(f"{location!r}: the 蓝莺IM source needs the API endpoint, e.g. "
                             "lanying://s-1-3-api.maximtop.cn?app_id=APP")
        http = "http" if scheme in ("lanying+http", "http") else "https"
        self.base_url = f"{http}://{parts.netloc}{parts.path.rstrip('/')}"
        self.location = self.base_url
        self.app_id = self.options.get("app_id") or query.get("app_id") or ""
        if not self.app_id:
            raise UsageError("the 蓝莺IM source needs the app's id: ?app_id=APP in the URL or -o app_id=APP")
        token_env = self.options.get("token_env") or TOKEN_ENV
        token = os.environ.get(token_env)
        if not token:
            raise UsageError(f"the 蓝莺IM source needs the app's admin token in the environment variable {token_env}")
        self._scope = self.options.get("scope") or self.app_id
        self.page_size = int(self.option("page_size", 50))
        self.profiles = bool(self.option("profiles", True))
        self.original_times = bool(self.option("original_times", True))
        self.http = HttpClient(self.base_url, headers={"app_id": self.app_id, "access-token": token}, secrets=(token,))
        self._retry_sleep = time.sleep

    @property
    def scope(self) -> str:
        return self._scope

    def _id(self, kind: str, native: Any) -> str:
        return record_id(SOURCE, self.scope, kind, str(native))

    # -- wire -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _acting_as(self, user_id: int | None) -> Iterator[None]:
        """The admin token acting as a user (`user_id` header) for the calls inside the block."""
        headers = self.http.session.headers
        if user_id is None:
            headers.pop("user_id", None)
        else:
            headers["user_id"] = str(user_id)
        try:
            yield
        finally:
            headers.pop("user_id", None)

    def _answer(self, route: str, params: Mapping[str, Any] | None = None,
                as_user: int | None = None) -> dict[str, Any]:
        for attempt in range(4):
            with self._acting_as(as_user):
                body = self.http.get_json(route, params)
            if not isinstance(body, dict):
                raise InputError(f"{self.base_url}{route}: not a 蓝莺IM answer (no {{code, data}} object)")
            code = body.get("code")
            if code == 200:
                return body
            message = self.http.hide(str(body.get("message") or ""))[:200]
            if code in _TOKEN_CODES:
                raise UsageError(f"{self.base_url}{route}: 蓝莺IM answered code {code} ({message}): the app_id or the "
                                 "admin token is not valid (expired?); create a token in the console (Token管理)")
            if code in _RETRY_CODES and attempt < 3:
                self._retry_sleep(2.0 ** attempt)
                continue
            if code in _RETRY_CODES:
                raise TransientError(f"{self.base_url}{route}: 蓝莺IM answered code {code} ({message}) four times")
            raise InputError(f"{self.base_url}{route}: 蓝莺IM answered code {code} ({message})")
        raise AssertionError("unreachable")

    def _origin(self, route: str, index: int | None = None) -> Origin:
        return Origin(f"{self.base_url}{route}", index)

    # -- the stream -----------------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        since = since or {}
        users: dict[int, str] = {}
        for item in self._users():
            if isinstance(item, User):
                users[int(item.source_id)] = item.username
            yield item
        conversations: list[tuple[Channel, int, int]] = []
        for channel, reader, opposite in self._groups(users):
            conversations.append((channel, reader, opposite))
            yield channel
        for channel, reader, opposite in self._directs(users, {c.source_id for c, _, _ in conversations}):
            conversations.append((channel, reader, opposite))
            yield channel
        for channel, reader, opposite in conversations:
            yield from self._history(channel, reader, opposite, since.get(channel.id))

    def _users(self) -> Iterator[Item]:
        page = 1
        while True:
            route = "/user/list"
            data = self._answer(route, {"page_num": page, "page_size": self.page_size}).get("data") or []
            for index, raw in enumerate(data):
                origin = self._origin(f"{route}?page_num={page}", index)
                if not isinstance(raw, dict) or not isinstance(raw.get("user_id"), int) or not raw.get("username"):
                    yield Unreadable("users", "CM002", "a user without user_id or username", raw, origin)
                    continue
                yield self._user(raw, origin)
            if len(data) < self.page_size:
                return
            page += 1

    def _user(self, raw: dict[str, Any], origin: Origin) -> User:
        uid = raw["user_id"]
        profile = self._answer("/user/profile", as_user=uid).get("data") if self.profiles else None
        profile = profile if isinstance(profile, dict) else {}
        private = _json(profile.get("private_info"))
        email = profile.get("email") or (private.get("email") if isinstance(private, dict) else None)
        props = {k: profile[k] for k in ("description", "public_info", "mobile") if profile.get(k)}
        if raw.get("status") == 1:
            props["banned"] = True
        return User(id=self._id("user", uid), source=SOURCE, source_id=str(uid), username=str(raw["username"]),
                    email=email if isinstance(email, str) and email else None,
                    display_name=profile.get("nick_name") or None, props=props, origin=origin)

    def _groups(self, users: dict[int, str]) -> Iterator[tuple[Channel, int, int]]:
        group_ids: set[int] = set()
        for uid in users:
            group_ids.update(g for g in self._answer("/group/user_joined", as_user=uid).get("data") or []
                             if isinstance(g, int))
        for gid in sorted(group_ids):
            info = self._answer("/group/info", {"group_id": gid}).get("data") or {}
            members = self._members(gid)
            owner = info.get("owner_id") if isinstance(info.get("owner_id"), int) else None
            reader = owner if owner in members else (members[0] if members else None)
            if reader is None:
                continue
            name = str(info.get("name") or gid)
            yield Channel(id=self._id("channel", gid), source=SOURCE, source_id=str(gid), team_id=None, name=name,
                          kind="private" if info.get("type", 0) == 0 else "public", display_name=name,
                          purpose=info.get("description") or None, created_at=_time_ms(info.get("created_at")),
                          creator_id=self._id("user", owner) if owner is not None else None,
                          member_ids=tuple(self._id("user", m) for m in members),
                          props={"lanying_group_type": info.get("type", 0)},
                          origin=self._origin(f"/group/info?group_id={gid}")), reader, gid

    def _members(self, gid: int) -> list[int]:
        members: list[int] = []
        cursor: str | None = None
        for _ in range(1_000_000):
            params: dict[str, Any] = {"group_id": gid, "limit": self.page_size}
            if cursor:
                params["cursor"] = cursor
            body = self._answer("/group/member_list", params)
            members += [m["user_id"] for m in body.get("data") or [] if isinstance(m, dict)
                        and isinstance(m.get("user_id"), int) and m["user_id"] not in members]
            cursor = body.get("cursor") or None
            if not cursor or not body.get("data"):
                return members
        raise InputError(f"{self.base_url}/group/member_list: the server kept returning pages; stopping")

    def _directs(self, users: dict[int, str], groups: set[str]) -> Iterator[tuple[Channel, int, int]]:
        pairs: set[tuple[int, int]] = set()
        for uid in users:
            for item in self._answer("/message/unread", as_user=uid).get("data") or []:
                other = (item.get("conversation_id") or {}).get("uid") if isinstance(item, dict) else None
                if isinstance(other, int) and other in users and str(other) not in groups:
                    pairs.add((min(uid, other), max(uid, other)))
        for a, b in sorted(pairs):
            key = f"{a}-{b}"
            yield Channel(id=self._id("direct", key), source=SOURCE, source_id=key, team_id=None,
                          name=f"{users[a]}--{users[b]}" if a != b else users[a], kind="direct",
                          member_ids=tuple(dict.fromkeys((self._id("user", a), self._id("user", b)))),
                          origin=self._origin("/message/unread")), a, b

    def _history(self, channel: Channel, reader: int, opposite: int, cursor: str | None) -> Iterator[Item]:
        """The conversation's messages newer than `cursor` (a msg_id), oldest first, then its Checkpoint."""
        after = int(cursor) if cursor and cursor.isdigit() else 0
        seen: dict[int, dict[str, Any]] = {}
        start = 0
        route = "/message/conversation"
        for _ in range(10_000_000):
            params = {"opposite_id": opposite, "msg_id_start": start, "limit": self.page_size}
            data = self._answer(route, params, as_user=reader).get("data") or {}
            page = [m for m in data.get("messages") or [] if isinstance(m, dict)]
            for raw in page:
                if isinstance(raw.get("msg_id"), int) and raw["msg_id"] > after:
                    seen.setdefault(raw["msg_id"], raw)
            nxt = data.get("next_msg_id")
            older = [m["msg_id"] for m in page if isinstance(m.get("msg_id"), int)]
            if data.get("is_last") or not page or not isinstance(nxt, int) or nxt in (0, start) or \
                    (older and min(older) <= after):
                break
            start = nxt
        built = [self._message(raw, channel, self._origin(f"{route}?opposite_id={opposite}", raw["msg_id"]))
                 for raw in seen.values()]
        built.sort(key=lambda m: (m.created_at, m.id))
        yield from built
        newest = max(seen, default=after)
        yield Checkpoint(SOURCE, self.scope, channel.id, str(newest) if newest else (cursor or ""))

    def _message(self, raw: dict[str, Any], channel: Channel, origin: Origin) -> Message:
        msg_id = raw["msg_id"]
        sent_at = _time_ms(raw.get("timestamp")) or datetime.fromtimestamp(0, UTC)
        sender = (raw.get("from_xid") or {}).get("uid") if isinstance(raw.get("from_xid"), dict) else None
        ctype = str(raw.get("ctype") or "TEXT")
        props: dict[str, Any] = {"lanying_ctype": ctype, "lanying_timestamp": raw.get("timestamp")}
        if raw.get("ext"):
            props["lanying_ext"] = raw["ext"]
        files: tuple[File, ...] = ()
        text = str(raw.get("content") or "")
        if ctype in _FILE_TYPES:
            files, text = self._files(raw, msg_id, text)
        fields: dict[str, Any] = {}
        info = (_json(raw.get("ext")) or {}).get(_EXT_KEY) if isinstance(_json(raw.get("ext")), dict) else None
        if self.original_times and isinstance(info, dict):
            fields = self._original(info)
        return Message(id=self._id("message", msg_id), source=SOURCE, source_id=str(msg_id), channel_id=channel.id,
                       user_id=self._id("user", sender) if isinstance(sender, int) and sender else None,
                       created_at=fields.pop("created_at", None) or sent_at, text=text, files=files,
                       props=props, origin=origin, **fields)

    def _files(self, raw: dict[str, Any], msg_id: int, text: str) -> tuple[tuple[File, ...], str]:
        attachment = _json(raw.get("attachment"))
        attachment = attachment if isinstance(attachment, dict) else {}
        name = str(attachment.get("dName") or text or "file")
        size = attachment.get("fLen") if isinstance(attachment.get("fLen"), int) else None
        file = File(id=self._id("file", msg_id), source=SOURCE, source_id=str(msg_id), name=name, size=size,
                    source_url=attachment.get("url") if isinstance(attachment.get("url"), str) else None,
                    props={"missing": True, "missing_reason": "on the 蓝莺IM server (not downloaded)"})
        return (file,), ("" if text == name else text)

    def _original(self, info: dict[str, Any]) -> dict[str, Any]:
        """What chatmigrate kept in ext when it sent the message: time, thread, edit, pin, reactions."""
        out: dict[str, Any] = {}
        created = _iso(info.get("ts"))
        if created is not None:
            out["created_at"] = created
        root = info.get("thread_root")
        if isinstance(root, dict) and isinstance(root.get("msg_id"), int):
            out["thread_root_id"] = self._id("message", root["msg_id"])
        if _iso(info.get("edited_at")) is not None:
            out["edited_at"] = _iso(info.get("edited_at"))
        if info.get("pinned") is True:
            out["is_pinned"] = True
        if isinstance(info.get("kind"), str):
            out["kind"] = info["kind"]
        reactions = []
        for r in info.get("reactions") or []:
            if isinstance(r, dict) and isinstance(r.get("emoji"), str) and isinstance(r.get("user_id"), int):
                reactions.append(Reaction(r["emoji"], self._id("user", r["user_id"]), _iso(r.get("ts"))))
        if reactions:
            out["reactions"] = tuple(dict.fromkeys(reactions))
        return out
