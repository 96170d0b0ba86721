"""A Rocket.Chat server served in its REST API's documented wire format (developer.rocket.chat:
users.list, rooms.get, *.members, *.history, chat.syncMessages, emoji-custom.list; count/offset paging
capped at API_Upper_Count_Limit; 429 with x-ratelimit-reset), holding the data of samples/rocketchat."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bson import ObjectId

from tests.sources.servers import serving

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "rocketchat"
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




def _answer(state: FakeRocketChat, path: str, query: dict[str, str], headers: dict[str, str],
            ) -> tuple[int, Any, dict[str, str]]:
    if headers.get("X-Auth-Token") != TOKEN or headers.get("X-User-Id") != USER_ID:
        return 401, {"status": "error", "message": "You must be logged in to do this."}, {}
    if not path.startswith("/api/v1/"):
        return 404, {"success": False}, {}
    status, response_headers, body = state.answer(path.removeprefix("/api/v1/"), query)
    return status, body, response_headers


@contextmanager
def rocketchat_server() -> Iterator[tuple[str, FakeRocketChat]]:
    state = FakeRocketChat()
    with serving(lambda path, query, headers: _answer(state, path, query, headers)) as url:
        yield url, state
