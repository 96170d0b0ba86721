"""A Mattermost server served in API v4's documented wire format (PostList pages newest first, `since`,
post metadata on half the posts, 429 with Retry-After), holding the data of samples/mattermost: ids are
allocated in file order, so post-id order is the order the bulk exporter writes (what both forms number
twin posts by)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.sources.servers import Answer, json_handler, serving

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "mattermost" / "export.jsonl"
TOKEN = "s3cr3t-pat-token-0123456789"
T0 = 1709287200000


def at(minutes: float) -> int:
    return T0 + int(minutes * 60_000)


class FakeServer:
    """The sample export's data as a Mattermost server would hold it: ids allocated in file order, so
    post-id order is the order the bulk exporter writes (what both forms number twin posts by)."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.counter = 0
        self.teams: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.reactions: dict[str, list[dict[str, Any]]] = {}
        self.emoji: list[dict[str, Any]] = []
        self.log: list[str] = []
        self.rate_limit_once: set[str] = set()
        self.lock = threading.Lock()
        for line in lines:
            kind = line["type"]
            getattr(self, f"_load_{kind}", lambda body: None)(line.get(kind))
        for emoji in self.emoji:  # emoji lines come before users in an export
            emoji["creator_id"] = self.user_id("alice")

    def new_id(self) -> str:
        self.counter += 1
        return f"{self.counter:026d}"

    def user_id(self, username: str) -> str:
        return next(u["id"] for u in self.users.values() if u["username"] == username)

    def team_id(self, name: str) -> str:
        return next(t["id"] for t in self.teams.values() if t["name"] == name)

    def _load_team(self, body: dict[str, Any]) -> None:
        tid = self.new_id()
        self.teams[tid] = {"id": tid, "name": body["name"], "display_name": body["display_name"],
                           "type": body["type"], "description": body.get("description", ""),
                           "allow_open_invite": body.get("allow_open_invite", False)}

    def _load_channel(self, body: dict[str, Any]) -> None:
        cid = self.new_id()
        self.channels[cid] = {"id": cid, "team_id": self.team_id(body["team"]), "name": body["name"],
                              "display_name": body["display_name"], "type": body["type"], "header": body["header"],
                              "purpose": body["purpose"], "delete_at": body.get("deleted_at") or 0,
                              "create_at": T0 - 10_000_000, "creator_id": ""}
        self.members[cid] = []

    def _load_user(self, body: dict[str, Any]) -> None:
        uid = self.new_id()
        self.users[uid] = {"id": uid, "username": body["username"], "email": body["email"],
                           "first_name": body["first_name"], "last_name": body["last_name"],
                           "nickname": body.get("nickname", ""), "position": "", "roles": body["roles"],
                           "locale": "en", "delete_at": body.get("delete_at", 0),
                           "auth_service": body.get("auth_service", ""), "is_bot": False,
                           "timezone": {"useAutomaticTimezone": "true", "automaticTimezone": "Europe/Berlin",
                                        "manualTimezone": ""}}
        for team in body["teams"]:
            for channel in team["channels"]:
                cid = next(c["id"] for c in self.channels.values()
                           if c["name"] == channel["name"] and c["team_id"] == self.team_id(team["name"]))
                self.members[cid].append(uid)

    def _load_bot(self, body: dict[str, Any]) -> None:
        uid = self.new_id()
        self.users[uid] = {"id": uid, "username": body["username"], "email": "", "first_name": "",
                           "last_name": "", "nickname": "", "roles": "system_user", "delete_at": 0, "is_bot": True,
                           "bot_description": body["description"]}

    def _direct(self, usernames: list[str]) -> str:
        ids = sorted({self.user_id(u) for u in usernames})
        for cid, members in self.members.items():
            if self.channels[cid]["type"] in "DG" and sorted(set(members)) == ids:
                return cid
        cid = self.new_id()
        kind = "G" if len(ids) > 2 else "D"
        name = "__".join(ids * 2 if len(ids) == 1 else ids) if kind == "D" else f"gm{cid}"
        self.channels[cid] = {"id": cid, "team_id": "", "name": name, "display_name": "", "type": kind,
                              "header": "", "purpose": "", "delete_at": 0, "create_at": T0, "creator_id": ""}
        self.members[cid] = ids
        return cid

    def _load_direct_channel(self, body: dict[str, Any]) -> None:
        names = body.get("members") or [p["username"] for p in body["participants"]]
        cid = self._direct(names)
        self.channels[cid]["header"] = body.get("header", "")

    def _load_emoji(self, body: dict[str, Any]) -> None:
        self.emoji.append({"id": self.new_id(), "creator_id": "", "name": body["name"],
                           "create_at": T0 - 5_000_000, "update_at": 0, "delete_at": 0})

    def _load_post(self, body: dict[str, Any], channel_id: str | None = None) -> None:
        if channel_id is None:
            channel_id = next(c["id"] for c in self.channels.values()
                              if c["name"] == body["channel"] and c["team_id"] == self.team_id(body["team"]))
        root = self._store(body, channel_id, "")
        # The exporter lists replies in post-id order: allocate their ids in list order.
        for reply in body.get("replies") or ():
            self._store(reply, channel_id, root)

    def _load_direct_post(self, body: dict[str, Any]) -> None:
        self._load_post(body, self._direct(body["channel_members"]))

    def _store(self, body: dict[str, Any], channel_id: str, root_id: str) -> str:
        pid = self.new_id()
        file_ids = []
        for attachment in body.get("attachments") or ():
            fid = self.new_id()
            name = attachment["path"].rsplit("/", 1)[-1]
            self.files[fid] = {"id": fid, "user_id": self.user_id(body["user"]), "post_id": pid,
                               "create_at": body["create_at"], "update_at": body["create_at"], "delete_at": 0,
                               "name": name, "extension": name.rsplit(".", 1)[-1], "size": 1234,
                               "mime_type": "application/octet-stream"}
            file_ids.append(fid)
        self.reactions[pid] = [{"user_id": self.user_id(r["user"]), "post_id": pid, "emoji_name": r["emoji_name"],
                                "create_at": r["create_at"]} for r in body.get("reactions") or ()]
        edit_at = body.get("edit_at") or 0
        post = {"id": pid, "create_at": body["create_at"], "update_at": max(body["create_at"], edit_at),
                "edit_at": edit_at, "delete_at": 0, "is_pinned": body.get("is_pinned", False),
                "user_id": self.user_id(body["user"]), "channel_id": channel_id, "root_id": root_id,
                "original_id": "", "message": body["message"], "type": body.get("type", ""),
                "props": body.get("props") or {}, "hashtags": "", "file_ids": file_ids, "pending_post_id": "",
                "has_reactions": bool(self.reactions[pid])}
        # Half the posts carry metadata (servers ≥ 5.x), half not: the client must then ask separately.
        if self.counter % 2 == 0:
            post["metadata"] = {"embeds": [], "emojis": [], "images": {}}
            if self.reactions[pid]:
                post["metadata"]["reactions"] = self.reactions[pid]
            if file_ids:
                post["metadata"]["files"] = [self.files[f] for f in file_ids]
        self.posts[pid] = post
        return pid

    # -- answering requests --------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.log.append(f"{path}?{'&'.join(f'{k}={v}' for k, v in sorted(query.items()))}")
            if path == "/api/v4/system/ping":
                return 200, {"ActiveSearchBackend": "database", "status": "OK"}, {}
            if auth != f"Bearer {TOKEN}":
                return 401, {"id": "api.context.session_expired.app_error", "message": "Invalid or expired session, "
                             "please login again.", "status_code": 401}, {}
            marker = f"{path}?page={query.get('page')}"
            if marker in self.rate_limit_once:
                self.rate_limit_once.discard(marker)
                return 429, {"message": "command rate limit exceeded", "status_code": 429}, {"Retry-After": "1"}
            return self._route(path.removeprefix("/api/v4").strip("/").split("/"), query)

    def _page(self, items: list[Any], query: dict[str, str]) -> list[Any]:
        page, per_page = int(query.get("page", 0)), min(int(query.get("per_page", 60)), 200)
        return items[page * per_page:(page + 1) * per_page]

    def _route(self, parts: list[str], query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        not_found = (404, {"id": "app.not_found", "message": "Unable to find the resource.", "status_code": 404}, {})
        match parts:
            case ["users", "me"]:
                return 200, self.users[self.user_id("alice")], {}
            case ["teams"]:
                return 200, self._page(list(self.teams.values()), query), {}
            case ["users"]:
                return 200, self._page(list(self.users.values()), query), {}
            case ["users", uid]:
                return (200, self.users[uid], {}) if uid in self.users else not_found
            case ["users", uid, "channels"]:
                return 200, [self.channels[c] for c, m in self.members.items() if uid in m], {}
            case ["emoji"]:
                return 200, self._page(self.emoji, query), {}
            case ["channels", cid, "posts"]:
                return 200, self._post_list(cid, query), {}
            case ["posts", pid]:
                return (200, self.posts[pid], {}) if pid in self.posts else not_found
            case ["posts", pid, "reactions"]:
                return 200, self.reactions.get(pid, []), {}
            case ["files", fid, "info"]:
                return (200, self.files[fid], {}) if fid in self.files else not_found
        return not_found

    def _post_list(self, channel_id: str, query: dict[str, str]) -> dict[str, Any]:
        posts = sorted((p for p in self.posts.values() if p["channel_id"] == channel_id),
                       key=lambda p: (p["create_at"], p["id"]), reverse=True)
        if "since" in query:
            chosen = [p for p in posts if p["update_at"] > int(query["since"])][:1000]
            has_next = False
        else:
            chosen = self._page(posts, query)
            has_next = len(posts) > (int(query.get("page", 0)) + 1) * int(query.get("per_page", 60))
        return {"order": [p["id"] for p in chosen], "posts": {p["id"]: p for p in chosen},
                "next_post_id": "", "prev_post_id": "", "has_next": has_next}


def handler_class(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    """The request handler on its own, for a test that extends the server (file downloads)."""
    return json_handler(_answer_of(server))


def _answer_of(server: FakeServer) -> Answer:
    return lambda path, query, headers: server.answer(path, query, headers.get("Authorization"))


@contextmanager
def mattermost_server() -> Iterator[tuple[str, FakeServer]]:
    lines = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    state = FakeServer(lines)
    with serving(_answer_of(state)) as url:
        yield url, state
