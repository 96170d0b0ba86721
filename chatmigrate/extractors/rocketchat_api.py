"""Rocket.Chat REST API (`/api/v1`), for a first load from a live server and for incremental syncs.

`location` is the server's base URL (`https://chat.example.org`, with or without `/api/v1`).
Credentials: a personal access token and its user id, as options `token` / `user_id` or the
environment variables CHATMIGRATE_ROCKETCHAT_TOKEN / CHATMIGRATE_ROCKETCHAT_USER_ID (sent as the
X-Auth-Token / X-User-Id headers; never shown in a message). Other options: `scope` (default
"rocketchat", the same default as the dump form, so ids of a dump load and an API sync meet),
`page_size` (default 100, Rocket.Chat's default API_Upper_Count_Limit), `overlap_seconds` (default
300: how far before a saved cursor a sync looks again, to catch edits racing the last run).

Endpoints (research/formats.md §3.4): users.list, rooms.get, channels/groups/im.members,
emoji-custom.list, channels/groups/im.history (count/offset pages under a `latest` fixed at the
start of the run, so messages posted meanwhile cannot shift the offsets), and chat.syncMessages
(edits and deletions since a channel's saved cursor). Rate limits: 429 answers are retried after
Retry-After or X-RateLimit-Reset, bounded (see `_http.HttpClient`).

Documents go through the same conversions as the dump (`_rocketchat`), after their ISO dates are
turned back into datetimes. What the API cannot show, by design of the server: messages already
deleted (the trash) on a first load, `_hidden` edit-history copies, upload bytes (files carry size
and name, no sha256), and rooms the token's user has not joined (rooms.get lists the caller's rooms).
A deletion reported by chat.syncMessages carries only the message id and time: it is counted as a
Skipped message naming that id (the canonical model has no tombstone record yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from chatmigrate.errors import InputError, UsageError
from chatmigrate.extractors._download_options import DOWNLOAD_OPTIONS
from chatmigrate.extractors._http import HttpClient
from chatmigrate.extractors._rc_messages import (
    MessageContext,
    convert_message,
    file_from_entry,
    timeline,
    unresolved_reaction_items,
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
    jsonable,
    native_id,
    rid_of,
)
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.files import Downloads
from chatmigrate.files.download import host_of
from chatmigrate.model import Channel, Checkpoint, File, Item, Message, Origin, Skipped, User

TOKEN_ENV = "CHATMIGRATE_ROCKETCHAT_TOKEN"
USER_ID_ENV = "CHATMIGRATE_ROCKETCHAT_USER_ID"
# Date fields of Rocket.Chat documents; the REST API sends them as ISO strings (or EJSON {"$date": ms}).
_DATE_KEYS = {"ts", "_updatedAt", "editedAt", "_deletedAt", "tlm", "dlm", "createdAt", "pinnedAt", "lastLogin",
              "uploadedAt", "lm", "ls", "lr", "jitsiTimeout", "uploadDate"}
# Per room type: the history and members endpoints.
_ENDPOINTS = {"c": "channels", "p": "groups", "d": "im"}


def parse_time(value: Any) -> Any:
    """A wire date (ISO 8601 string or {"$date": ms}) as a UTC datetime; anything else unchanged."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, Mapping) and set(value) == {"$date"}:
        inner = value["$date"]
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return datetime.fromtimestamp(inner / 1000, UTC)
        return parse_time(inner)
    return value


def from_wire(value: Any) -> Any:
    """A JSON document from the API with its date fields turned back into datetimes (recursively)."""
    if isinstance(value, dict):
        return {k: parse_time(v) if k in _DATE_KEYS else from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


class RocketchatApi(Source):
    name: ClassVar[str] = "rocketchat-api"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "token": Option("personal access token (better: $CHATMIGRATE_ROCKETCHAT_TOKEN)"),
        "user_id": Option("the token's user id (better: $CHATMIGRATE_ROCKETCHAT_USER_ID)"),
        "scope": Option("server the ids are scoped to (default: rocketchat)"),
        "page_size": Option("items per API page", int, minimum=1),
        "overlap_seconds": Option("how far back each sync re-reads a channel, in seconds", float, minimum=0),
        # File bytes (/file-upload/<id>/<name>) are fetched with the same token and user id.
        **{k: v for k, v in DOWNLOAD_OPTIONS.items() if k != "token_env"},
    }
    capabilities: ClassVar[Capabilities] = Capabilities(incremental=True, rewind=True, files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        # A bare server URL could be any chat server; only an explicit /api/v1 URL is claimed without
        # --from (reading nothing, so detection stays offline and cheap).
        parts = urlsplit(location)
        return parts.scheme in ("http", "https") and parts.path.rstrip("/").endswith("/api/v1")

    def __init__(self, location: str, options: Mapping[str, str] | None = None,
                 *, sleep: Callable[[float], None] | None = None) -> None:
        self.options = dict(options or {})
        parts = urlsplit(location)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"{location!r}: the Rocket.Chat API form needs the server URL, e.g. "
                             "https://chat.example.org")
        base = location.rstrip("/")
        self.base_url = base[: -len("/api/v1")] if base.endswith("/api/v1") else base
        self.location = self.base_url
        token = self.options.get("token") or os.environ.get(TOKEN_ENV)
        user_id = self.options.get("user_id") or os.environ.get(USER_ID_ENV)
        if not token or not user_id:
            raise UsageError(f"the Rocket.Chat API needs a personal access token and its user id: set {TOKEN_ENV} "
                             f"and {USER_ID_ENV} (or -o token=… -o user_id=…)")
        self._scope = self.option("scope", DEFAULT_SCOPE)
        try:
            self.page_size = int(self.option("page_size", 100))
            self.overlap = timedelta(seconds=float(self.option("overlap_seconds", 300)))
        except ValueError as exc:
            raise UsageError(f"page_size and overlap_seconds must be numbers ({exc})") from None
        if self.page_size < 1:
            raise UsageError("page_size must be at least 1")
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        auth = {"X-Auth-Token": token, "X-User-Id": user_id}
        self.http = HttpClient(self.base_url, headers=auth, secrets=(token,), **extra)
        # Uploads live on the server itself: its host is the default (and only) file host.
        self.downloads = Downloads(self.options, [host_of(self.base_url)], self.base_url, headers=auth,
                                   announce=False)

    @property
    def scope(self) -> str:
        return self._scope

    def rewind(self, cursor: str, seconds: float) -> str:
        """The ISO cursor `seconds` earlier (sync's overlap window, on top of `overlap_seconds`)."""
        saved = parse_time(cursor)
        return cursor_text(saved - timedelta(seconds=seconds)) if isinstance(saved, datetime) else cursor

    # -- wire ---------------------------------------------------------------------------------------
    def _get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        body = self.http.get_json(f"/api/v1/{endpoint}", params)
        if not isinstance(body, dict) or body.get("success") is False:
            detail = body.get("error") or body.get("message") if isinstance(body, dict) else str(body)[:200]
            raise InputError(self.http.hide(f"{self.base_url}/api/v1/{endpoint}: the server answered "
                                            f"unsuccessfully ({detail})"))
        return body

    def _pages(self, endpoint: str, key: str, **params: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, document) over every count/offset page of `endpoint`'s list `key`.

        Paging stops at an empty page, or when `total` (where the endpoint gives one) is reached. A
        short page does not end it: the server caps `count` at its API_Upper_Count_Limit, which may be
        below our page size, so a short page can be a full one.
        """
        offset = 0
        for _page in range(1_000_000):
            body = self._get(endpoint, count=self.page_size, offset=offset, **params)
            items = body.get(key)
            if not isinstance(items, list):
                raise InputError(self.http.hide(f"{self.base_url}/api/v1/{endpoint}: the answer has no {key!r} list"))
            for i, doc in enumerate(items):
                if isinstance(doc, dict):
                    yield offset + i, from_wire(doc)
            offset += len(items)
            total = body.get("total")
            if not items or (isinstance(total, int) and offset >= total):
                return
        raise InputError(f"{self.base_url}/api/v1/{endpoint}: the server kept returning pages; stopping")

    def _origin(self, endpoint: str, index: int) -> Origin:
        return Origin(f"{self.base_url}/api/v1/{endpoint}", index)

    # -- the stream ---------------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        since = since or {}
        started = datetime.now(UTC)
        usernames: dict[str, str] = {}
        for index, doc in self._pages("users.list", "users"):
            user = convert_user(doc, self.scope, self._origin("users.list", index))
            if isinstance(user, User):
                usernames[user.username] = user.id
            yield user

        rooms: list[tuple[dict[str, Any], Channel]] = []
        body = self._get("rooms.get")
        for index, raw in enumerate(body.get("update") or []):
            doc = from_wire(raw)
            origin = self._origin("rooms.get", index)
            members = self._members(doc) if doc.get("t") in _ENDPOINTS else []
            for member in members:
                usernames.setdefault(*member)
            room = convert_room(doc, self.scope, [m[1] for m in members], origin)
            if isinstance(room, Channel):
                rooms.append((doc, room))
            yield room

        body = self._get("emoji-custom.list")
        emojis = body.get("emojis")
        updates = emojis.get("update") if isinstance(emojis, dict) else emojis
        for index, raw in enumerate(updates or []):
            doc = from_wire(raw)
            yield convert_emoji(doc, self.scope, emoji_file(doc, self.scope), self._origin("emoji-custom.list", index))

        yield from self.downloads.stage(self._messages(rooms, since, cursor_text(started), usernames),
                                        self._file_url)

    def _messages(self, rooms: list[tuple[dict[str, Any], Channel]], since: Mapping[str, str], latest: Any,
                  usernames: dict[str, str]) -> Iterator[Item]:
        for doc, channel in rooms:
            cursor = since.get(channel.id)
            if cursor:
                yield from self._sync(doc, channel, cursor, usernames)
            else:
                yield from self._history(doc, channel, latest, usernames)

    def _file_url(self, file: File) -> str | None:
        """Where an upload's bytes are: its `/file-upload/…` path on this server."""
        if not file.source_url:
            return None
        return self.base_url + file.source_url if file.source_url.startswith("/") else file.source_url

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of an upload downloaded into the store (-o download=true), else None."""
        return self.downloads.open(file)

    def _members(self, room: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(username, canonical user id) of a room's members."""
        endpoint = f"{_ENDPOINTS[room['t']]}.members"
        members = []
        for _index, doc in self._pages(endpoint, "members", roomId=native_id(room.get("_id"))):
            native = native_id(doc.get("_id"))
            if native is not None:
                members.append((str(doc.get("username") or native), rid_of("user", self.scope, native)))
        return members

    def _context(self, usernames: dict[str, str]) -> MessageContext:
        def file_for(entry: Mapping[str, Any]) -> File | None:
            return file_from_entry(entry, self.scope, None, bytes_note="on the server (not downloaded)")
        return MessageContext(self.scope, usernames.get, file_for)

    def _emit_room(self, channel: Channel, docs: list[tuple[int, dict[str, Any]]], endpoint: str,
                   usernames: dict[str, str], latest: datetime | None) -> Iterator[Item]:
        # Authors of this room name users the users list may no longer hold (as in the dump form).
        for _index, doc in docs:
            author = doc.get("u") if isinstance(doc.get("u"), Mapping) else {}
            if native_id(author.get("_id")) and isinstance(author.get("username"), str):
                usernames.setdefault(author["username"], rid_of("user", self.scope, native_id(author["_id"]) or ""))
        ctx = self._context(usernames)
        built: list[Message] = []
        for index, doc in docs:
            for key in ("_updatedAt", "ts"):
                when = as_time(doc.get(key))
                if when is not None and (latest is None or when > latest):
                    latest = when
            result = convert_message(doc, ctx, self._origin(endpoint, index))
            if isinstance(result, Message):
                built.append(result)
            else:
                yield result
        for message in timeline(built):
            yield from unresolved_reaction_items(message)
            yield message
        yield Checkpoint(SOURCE, self.scope, channel.id, cursor_text(latest) if latest else "")

    def _history(self, room: Mapping[str, Any], channel: Channel, latest: str,
                 usernames: dict[str, str]) -> Iterator[Item]:
        endpoint = f"{_ENDPOINTS[room['t']]}.history"
        seen: set[str] = set()
        docs: list[tuple[int, dict[str, Any]]] = []
        for index, doc in self._pages(endpoint, "messages", roomId=native_id(room.get("_id")), latest=latest):
            native = native_id(doc.get("_id"))
            # A deletion between two pages shifts later pages by one: the same message can come twice.
            if native is not None and native in seen:
                continue
            if native is not None:
                seen.add(native)
            if doc.get("_hidden"):
                continue
            docs.append((index, doc))
        yield from self._emit_room(channel, docs, endpoint, usernames, as_time(room.get("ts")))

    def _sync(self, room: Mapping[str, Any], channel: Channel, cursor: str,
              usernames: dict[str, str]) -> Iterator[Item]:
        saved = parse_time(cursor)
        if not isinstance(saved, datetime):
            raise InputError(f"the saved sync cursor {cursor!r} of channel {channel.name!r} is not a time; "
                             "re-run a full load", location="cm_sync_state")
        body = self._get("chat.syncMessages", roomId=native_id(room.get("_id")),
                         lastUpdate=cursor_text(saved - self.overlap))
        result = body.get("result") if isinstance(body.get("result"), dict) else {}
        updated = [(i, from_wire(d)) for i, d in enumerate(result.get("updated") or []) if isinstance(d, dict)]
        for index, raw in enumerate(result.get("deleted") or []):
            doc = from_wire(raw)
            native = native_id(doc.get("_id")) if isinstance(doc, dict) else None
            deleted_at = as_time(doc.get("_deletedAt")) if isinstance(doc, dict) else None
            if deleted_at is not None and deleted_at > saved:
                saved = deleted_at
            yield Skipped("messages", f"message {native} was deleted on the server at "
                          f"{deleted_at.isoformat() if deleted_at else 'an unknown time'}; the API reports only its "
                          f"id (canonical id {rid_of('message', self.scope, native or '')}), so the copy already "
                          "in the target is left as it is", jsonable(doc), self._origin("chat.syncMessages", index))
        docs = [(i, d) for i, d in updated if not d.get("_hidden")]
        yield from self._emit_room(channel, docs, "chat.syncMessages", usernames, saved)
