"""The Rocket.Chat REST API extractor against a loopback HTTP server that speaks the documented wire
format (developer.rocket.chat: users.list, rooms.get, *.members, *.history, chat.syncMessages,
emoji-custom.list; count/offset paging; 429 with x-ratelimit-reset), serving the same data as
samples/rocketchat. The dump and the API forms must give the same ids."""

from __future__ import annotations

import copy
import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId

from chatmigrate.errors import UsageError
from chatmigrate.extractors.rocketchat_api import RocketchatApi
from chatmigrate.extractors.rocketchat_dump import RocketchatDump
from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Skipped, User

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "rocketchat"
TOKEN = "pat-Secret-Token-0123456789abcdef"
USER_ID = "aDm1nUser0000001a"
UPPER_COUNT_LIMIT = 4  # the server's API_Upper_Count_Limit: it caps `count` below our page size


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rc_make_sample_api", SAMPLES / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def wire(value: Any) -> Any:
    """A Mongo document as Rocket.Chat's REST API serialises it: ISO dates, ObjectIds as hex."""
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items() if k not in ("services", "__collection__")}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def _id(doc: dict[str, Any]) -> str:
    return str(doc["_id"])


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeRocketChat:
    """The server's state (the sample's collections) and request log."""

    def __init__(self) -> None:
        docs = gen.collections()
        self.users = docs["users"]
        self.rooms = docs["rocketchat_room"]
        self.subscriptions = docs["rocketchat_subscription"]
        self.messages = [m for m in docs["rocketchat_message"] if not m.get("_hidden")]
        self.trash = [d for d in docs["rocketchat__trash"] if d.get("__collection__") == "message"]
        self.emoji = docs["rocketchat_custom_emoji"]
        self.log: list[tuple[str, dict[str, str]]] = []
        self.rate_limit_next: set[str] = {"users.list"}
        self.limited_at: float | None = None
        self.resumed_at: float | None = None

    def answer(self, endpoint: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        self.log.append((endpoint, query))
        if endpoint in self.rate_limit_next:
            self.rate_limit_next.discard(endpoint)
            self.limited_at = time.monotonic()
            reset_ms = int(time.time() * 1000) + 300
            return 429, {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0",
                         "x-ratelimit-reset": str(reset_ms)}, {
                "success": False, "error": "Error, too many requests. Please slow down. You must wait 1 seconds "
                "before trying this endpoint again. [error-too-many-requests]"}
        if endpoint == "users.list" and self.limited_at is not None and self.resumed_at is None:
            self.resumed_at = time.monotonic()
        count = min(int(query.get("count", 50)), UPPER_COUNT_LIMIT)
        offset = int(query.get("offset", 0))

        def page(key: str, items: list[Any], total: bool = True) -> dict[str, Any]:
            chunk = items[offset:offset + count]
            body = {key: wire(chunk), "count": len(chunk), "offset": offset, "success": True}
            if total:
                body["total"] = len(items)
            return body

        if endpoint == "users.list":
            return 200, {}, page("users", self.users)
        if endpoint == "rooms.get":
            return 200, {}, {"update": wire(self.rooms), "remove": [], "success": True}
        if endpoint == "emoji-custom.list":
            return 200, {}, {"emojis": {"update": wire(self.emoji), "remove": []}, "success": True}
        kind, _, action = endpoint.partition(".")
        room = next((r for r in self.rooms if _id(r) == query.get("roomId")), None)
        if endpoint == "chat.syncMessages":
            if room is None or "lastUpdate" not in query:
                return 400, {}, {"success": False,
                                  "error": "The required \"roomId\" or \"lastUpdate\" param is missing"}
            since = _when(query["lastUpdate"])
            updated = [m for m in self.messages if m["rid"] == _id(room) and m["_updatedAt"] > since]
            deleted = [{"_id": _id(m), "_deletedAt": m["_deletedAt"]} for m in self.trash
                       if m["rid"] == _id(room) and m["_deletedAt"] > since]
            return 200, {}, {"result": {"updated": wire(updated), "deleted": wire(deleted)}, "success": True}
        if room is None or {"channels": "c", "groups": "p", "im": "d"}.get(kind) != room["t"]:
            return 400, {}, {"success": False, "error": "The required \"roomId\" or \"roomName\" param provided does "
                             "not match any channel [error-room-not-found]"}
        if action == "members":
            members = [next(u for u in self.users if u["_id"] == s["u"]["_id"]) for s in self.subscriptions
                       if s["rid"] == _id(room)]
            return 200, {}, page("members", [{"_id": u["_id"], "username": u["username"], "name": u.get("name")}
                                             for u in members])
        if action == "history":
            latest = _when(query["latest"]) if "latest" in query else datetime.max.replace(tzinfo=UTC)
            in_room = [m for m in self.messages if m["rid"] == _id(room) and m["ts"] < latest]
            in_room.sort(key=lambda m: m["ts"], reverse=True)  # newest first, as the server answers
            return 200, {}, page("messages", in_room, total=False)
        return 404, {}, {"success": False, "error": f"unknown endpoint {endpoint}"}


@pytest.fixture
def server() -> Iterator[tuple[str, FakeRocketChat]]:
    state = FakeRocketChat()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if self.headers.get("X-Auth-Token") != TOKEN or self.headers.get("X-User-Id") != USER_ID:
                self._send(401, {}, {"status": "error", "message": "You must be logged in to do this."})
                return
            if not parts.path.startswith("/api/v1/"):
                self._send(404, {}, {"success": False})
                return
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            status, headers, body = state.answer(parts.path.removeprefix("/api/v1/"), query)
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def api(url: str, **options: str) -> RocketchatApi:
    return RocketchatApi(url, {"token": TOKEN, "user_id": USER_ID, **options})


def dump_items() -> list[Item]:
    return list(RocketchatDump(str(SAMPLES / "dump")).records())


def ids(items: list[Item], kind: type) -> set[str]:
    return {i.id for i in items if isinstance(i, kind)}


def test_api_and_dump_give_the_same_ids(server: tuple[str, FakeRocketChat]) -> None:
    url, _state = server
    from_api = list(api(url).records())
    from_dump = dump_items()
    assert ids(from_api, User) == ids(from_dump, User)
    assert ids(from_api, Emoji) == ids(from_dump, Emoji)
    deleted_room = record_id("rocketchat", "rocketchat", "channel", "GoneRoom000000001")
    assert ids(from_api, Channel) == ids(from_dump, Channel) - {deleted_room}
    # The API cannot list what is already deleted (the trash); everything else meets on the same id.
    trashed = {m.id for m in from_dump if isinstance(m, Message) and m.deleted_at is not None}
    assert len(trashed) == 2
    assert ids(from_api, Message) == ids(from_dump, Message) - trashed
    api_messages = {m.id: m for m in from_api if isinstance(m, Message)}
    for message in from_dump:
        if isinstance(message, Message) and message.id in api_messages:
            other = api_messages[message.id]
            assert (other.channel_id, other.user_id, other.created_at, other.kind, other.text, other.thread_root_id,
                    other.edited_at, other.is_pinned, set(other.reactions), [f.id for f in other.files]) == (
                message.channel_id, message.user_id, message.created_at, message.kind, message.text,
                message.thread_root_id, message.edited_at, message.is_pinned, set(message.reactions),
                [f.id for f in message.files]), message.source_id
    api_channels = {c.id: c for c in from_api if isinstance(c, Channel)}
    for channel in from_dump:
        if isinstance(channel, Channel) and channel.id in api_channels:
            other = api_channels[channel.id]
            assert (other.kind, other.name, set(other.member_ids), other.props.get("parent_channel_id")) == (
                channel.kind, channel.name, set(channel.member_ids), channel.props.get("parent_channel_id"))
    assert [s.record_kind for s in from_api if isinstance(s, Skipped)] == ["channels", "reactions"]


def test_paging_rate_limit_and_checkpoints(server: tuple[str, FakeRocketChat]) -> None:
    url, state = server
    items = list(api(url, page_size="3").records())
    # 429 with only x-ratelimit-reset: the client waited for the reset, then asked again.
    assert state.limited_at is not None and state.resumed_at is not None
    assert state.resumed_at - state.limited_at >= 0.2
    user_pages = [q["offset"] for e, q in state.log if e == "users.list"]
    assert user_pages == ["0", "0", "3", "6"]  # 7 users, 3 a page (total ends it), the first try refused
    general_pages = [q for e, q in state.log if e == "channels.history" and q["roomId"] == "GENERAL"]
    in_general = sum(1 for m in state.messages if m["rid"] == "GENERAL")
    # History has no `total`: pages of 3 until an empty one.
    assert [int(q["offset"]) for q in general_pages] == [*range(0, in_general, 3), in_general]
    assert len({q["latest"] for q in general_pages}) == 1  # one fixed `latest` for the whole run
    general = [m for m in items if isinstance(m, Message) and m.channel_id == record_id(
        "rocketchat", "rocketchat", "channel", "GENERAL")]
    assert len(general) == in_general == 17
    assert [m.created_at for m in general] == sorted(m.created_at for m in general)
    checkpoints = [c for c in items if isinstance(c, Checkpoint)]
    assert len(checkpoints) == len([c for c in items if isinstance(c, Channel)]) == 8
    assert next(c for c in checkpoints if c.channel_id == general[0].channel_id).cursor == "2024-03-01T12:10:00.000Z"


def test_page_size_above_the_server_cap_still_reads_everything(server: tuple[str, FakeRocketChat]) -> None:
    url, _state = server
    items = list(api(url, page_size="100").records())  # the server returns at most 4 a page
    assert len([m for m in items if isinstance(m, Message)]) == 28
    assert len([u for u in items if isinstance(u, User)]) == 7


def test_sync_reads_only_changes_and_reports_deletions(server: tuple[str, FakeRocketChat]) -> None:
    url, state = server
    first = list(api(url).records())
    cursors = {c.channel_id: c.cursor for c in first if isinstance(c, Checkpoint)}
    later = gen.at(2000)
    # A new message, an edit and a deletion after the first run.
    state.messages.append({"_id": "NewMsg00000000001", "rid": "GENERAL", "msg": "new *after* sync", "ts": later,
                           "u": {"_id": "B0bUser0000000002", "username": "bob"}, "_updatedAt": later})
    edited = next(m for m in state.messages if m["_id"] == "DevMsg00000000002")
    edited.update(msg="On it, done", editedAt=later, editedBy={"_id": "B0bUser0000000002", "username": "bob"},
                  _updatedAt=later)
    gone = next(m for m in state.messages if m["_id"] == "DmMsg000000000002")
    state.messages.remove(gone)
    state.trash.append({**copy.deepcopy(gone), "_deletedAt": later, "__collection__": "message"})
    state.log.clear()
    second = list(api(url, overlap_seconds="0").records(since=cursors))
    assert not [q for e, q in state.log if e.endswith(".history")]  # every room had a cursor
    changed = {m.source_id: m for m in second if isinstance(m, Message)}
    assert set(changed) == {"NewMsg00000000001", "DevMsg00000000002"}
    assert changed["NewMsg00000000001"].text == "new **after** sync"
    assert changed["DevMsg00000000002"].edited_at == later
    assert changed["DevMsg00000000002"].id == record_id("rocketchat", "rocketchat", "message", "DevMsg00000000002")
    (deletion,) = [s for s in second if isinstance(s, Skipped) and s.record_kind == "messages"]
    assert "DmMsg000000000002" in deletion.reason
    assert record_id("rocketchat", "rocketchat", "message", "DmMsg000000000002") in deletion.reason
    new_cursors = {c.channel_id: c.cursor for c in second if isinstance(c, Checkpoint)}
    general = record_id("rocketchat", "rocketchat", "channel", "GENERAL")
    assert new_cursors[general] == "2024-03-02T18:20:00.000Z" > cursors[general]
    unchanged = record_id("rocketchat", "rocketchat", "channel", "OldRoom0000000001")
    assert new_cursors[unchanged] == cursors[unchanged]  # a cursor never moves back


def test_bad_credentials_are_a_usage_error_without_the_token(server: tuple[str, FakeRocketChat]) -> None:
    url, _state = server
    extractor = RocketchatApi(url, {"token": "wrong-token-value", "user_id": USER_ID})
    with pytest.raises(UsageError) as caught:
        list(extractor.records())
    assert "401" in str(caught.value) and "wrong-token-value" not in str(caught.value)


def test_credentials_from_the_environment_and_missing(monkeypatch: pytest.MonkeyPatch,
                                                      server: tuple[str, FakeRocketChat]) -> None:
    url, _state = server
    monkeypatch.delenv("CHATMIGRATE_ROCKETCHAT_TOKEN", raising=False)
    monkeypatch.delenv("CHATMIGRATE_ROCKETCHAT_USER_ID", raising=False)
    with pytest.raises(UsageError, match="CHATMIGRATE_ROCKETCHAT_TOKEN"):
        RocketchatApi(url, {})
    monkeypatch.setenv("CHATMIGRATE_ROCKETCHAT_TOKEN", TOKEN)
    monkeypatch.setenv("CHATMIGRATE_ROCKETCHAT_USER_ID", USER_ID)
    extractor = RocketchatApi(url + "/api/v1/", {})
    assert extractor.base_url == url
    assert len([u for u in extractor.records() if isinstance(u, User)]) == 7


def test_detect_claims_only_explicit_api_urls() -> None:
    assert RocketchatApi.detect("https://chat.example.org/api/v1")
    assert not RocketchatApi.detect("https://chat.example.org")
    assert not RocketchatApi.detect(str(SAMPLES / "dump"))


def test_sync_after_a_dump_load_starts_from_the_dump_cursors(server: tuple[str, FakeRocketChat]) -> None:
    url, state = server
    cursors = {c.channel_id: c.cursor for c in dump_items() if isinstance(c, Checkpoint)}
    items = list(api(url, overlap_seconds="0").records(since=cursors))
    assert not [e for e, _q in state.log if e.endswith(".history")]
    assert not [m for m in items if isinstance(m, Message)]  # nothing changed since the dump
    # The deletion the dump already holds (Deleted0000000001, from its trash) is behind the dump's
    # cursor for GENERAL, so syncMessages does not report it again.
    assert not [s for s in items if isinstance(s, Skipped) and s.record_kind == "messages"]
    assert {c.channel_id for c in items if isinstance(c, Checkpoint)} <= set(cursors)
