"""A 蓝莺IM (Lanying IM) server API on 127.0.0.1 for the tests, speaking the documented wire format
(maxim-top/im.gitbook zh-hans/reference/server-api/*.md and swagger/api-docs.json; research/targets.md §D):

- headers `app_id` (code 40000 when unknown) and `access-token` (10003 missing, 10008 invalid or
  expired), `user_id` to act as a user with the admin token; JSON bodies;
- answers HTTP 200 `{code, message, data}` (business errors in a 200: 10004 user exists, 20001 no
  such group, 20002 not a member, 10002 bad parameters);
- `/user/register/batch`, `/user/profile/batch`, `/user/list` (page_num/page_size), `/user/profile`,
  `/group/create`, `/group/settings/history_visible`, `/group/invite`, `/group/user_joined`,
  `/group/info`, `/group/member_list` (cursor/limit), `/message/send` (msg_ids when one target;
  transaction_id de-duplicated for `dedup_seconds`), `/message/conversation` (msg_id_start, newest
  first, next_msg_id/is_last), `/message/unread`, `/file/upload/chat` and an OSS-like upload host
  (POST form with oss_body_param fields and `file`, then GET of the download URL).

Everything received is kept (`requests`, and the state: users, groups, messages) for the tests to
check one by one. Faults can be injected: `fail_next` (HTTP status or business code answers for the
next calls of a route), `expire_token()`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

APP_ID = "cmtestapp"
ADMIN_TOKEN = "ly-admin-s3cret-pw-token-0123456789"


@dataclass
class Message:
    msg_id: int
    from_uid: int
    to_id: int
    to_type: int  # 1 user, 2 group
    ctype: int
    content: str
    attachment: str | None
    ext: str | None
    config: str | None
    timestamp: int


@dataclass
class State:
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    transactions: dict[int, float] = field(default_factory=dict)

    def user_by_name(self, name: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["username"] == name), None)


_CTYPES = {0: "TEXT", 1: "IMAGE", 2: "AUDIO", 3: "VIDEO", 4: "FILE", 5: "LOCATION", 6: "COMMAND", 7: "FORWARD"}


class LanyingServer:
    """The state and the HTTP server; `url` is its base (http://127.0.0.1:PORT)."""

    def __init__(self, dedup_seconds: float = 60.0) -> None:
        self.state = State()
        self.lock = threading.RLock()
        self.tokens = {ADMIN_TOKEN}
        self.dedup_seconds = dedup_seconds
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail_next: dict[str, list[int]] = {}
        # Called with the route of every request after it was served (a test may kill a run there).
        self.after_request: Any = None
        self._ids = itertools.count(2302128618880)
        self._msg_ids = itertools.count(900000000001)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> LanyingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def expire_token(self) -> None:
        self.tokens.clear()

    def routes(self, path: str) -> list[Any]:
        """Bodies (POST) or query parameters (GET) received on one route, in order."""
        return [body for _, route, _, body in self.requests if route == path]

    # -- serving -------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                if parts.path.startswith("/_oss/"):
                    status, body, kind = server.oss(method, parts.path, self)
                    self._answer(status, body, kind)
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    self._answer(200, {"code": 10002, "message": "请求参数不正确"})
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.requests.append((method, parts.path, headers, body if method == "POST" else query))
                status, answer = server.answer(method, parts.path, headers, query, body)
                if server.after_request is not None:
                    server.after_request(parts.path)
                self._answer(status, answer)

            def _answer(self, status: int, body: Any, kind: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def answer(self, method: str, path: str, headers: dict[str, str], query: dict[str, str],
               body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            injected = self.fail_next.get(path)
            if injected:
                code = injected.pop(0)
                if code < 1000:
                    return code, {"error": "injected"}
                return 200, {"code": code, "message": "injected business error", "data": None}
            if headers.get("app_id") != APP_ID:
                return 200, {"code": 40000, "message": "app_id不存在"}
            if "access-token" not in headers:
                return 200, {"code": 10003, "message": "header中缺少access-token参数"}
            if headers["access-token"] not in self.tokens:
                return 200, {"code": 10008, "message": "header中access-token无效"}
            handler = _ROUTES.get((method, path))
            if handler is None:
                return 404, {"error": "no such route"}
            as_user = int(headers["user_id"]) if headers.get("user_id", "").isdigit() else None
            if as_user is not None and as_user not in self.state.users:
                return 200, {"code": 10000, "message": "用户不存在"}
            try:
                return 200, handler(self, as_user, query, body or {})
            except _Business as exc:
                return 200, {"code": exc.code, "message": exc.message, "data": None}

    # -- OSS-like storage -----------------------------------------------------------------------------
    def oss(self, method: str, path: str, request: BaseHTTPRequestHandler) -> tuple[int, Any, str]:
        if method == "GET" and path.startswith("/_oss/files/"):
            data = self.state.files.get(path.removeprefix("/_oss/files/"))
            return (200, data, "application/octet-stream") if data is not None else (404, b"", "text/plain")
        if method != "POST" or path != "/_oss/upload":
            return 404, b"", "text/plain"
        if "access-token" in {k.lower() for k in request.headers}:
            return 400, b"the admin token must not be sent to the storage host", "text/plain"
        fields = _form(request)
        key = fields.get("key", b"").decode()
        if not key or fields.get("signature", b"").decode() != f"sig-{key}" or "file" not in fields:
            return 403, b"bad policy or signature", "text/plain"
        with self.lock:
            self.state.files[key] = fields["file"]
        return 200, b'{"status": "OK"}', "application/json"


def _form(request: BaseHTTPRequestHandler) -> dict[str, bytes]:
    """The fields of a multipart/form-data POST (name → bytes)."""
    length = int(request.headers.get("Content-Length") or 0)
    raw = b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n" + request.rfile.read(length)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True) or b""
    return fields


class _Business(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


def _ok(data: Any = True, **extra: Any) -> dict[str, Any]:
    return {"code": 200, "message": None, "data": data, **extra}


def _need_user(server: LanyingServer, as_user: int | None) -> int:
    if as_user is None:
        raise _Business(10002, "请求参数不正确: user_id header required")
    return as_user


def _group(server: LanyingServer, group_id: Any) -> dict[str, Any]:
    group = server.state.groups.get(group_id if isinstance(group_id, int) else int(group_id or 0))
    if group is None:
        raise _Business(20001, "群组不存在")
    return group


def _register(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    import re

    pattern = re.compile(r"^(?!mta|maxim)[a-zA-Z0-9_\u4e00-\u9fa5]*[a-zA-Z_\u4e00-\u9fa5]+[a-zA-Z0-9_\u4e00-\u9fa5]*$")
    out = []
    for item in body.get("list") or []:
        name, password = item.get("username"), item.get("password")
        if not isinstance(name, str) or not pattern.match(name) or not password:
            out.append({"success": False, "reason": "请求参数不正确", "username": name})
        elif server.state.user_by_name(name) is not None:
            out.append({"success": False, "reason": "user exists (用户已存在)", "username": name})
        else:
            uid = next(server._ids)
            server.state.users[uid] = {"user_id": uid, "username": name, "nick_name": "", "description": "",
                                       "private_info": "", "public_info": "", "status": 0}
            out.append({"success": True, "user_id": uid, "username": name})
    return _ok(out)


def _profiles(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    out = []
    for item in body.get("list") or []:
        user = server.state.users.get(item.get("user_id"))
        if user is None:
            out.append({"success": False, "reason": "用户不存在", "user_id": item.get("user_id")})
            continue
        for key in ("nick_name", "description", "private_info", "public_info"):
            if key in item:
                user[key] = item[key]
        out.append({"success": True, "user_id": user["user_id"]})
    return _ok(out)


def _user_list(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    page, size = int(query.get("page_num", 1)), int(query.get("page_size", 50))
    if page < 1:
        raise _Business(10002, "page_num must be greater than 0")
    users = sorted(server.state.users.values(), key=lambda u: u["user_id"])[(page - 1) * size:page * size]
    return _ok([{"user_id": u["user_id"], "username": u["username"], "status": u["status"]} for u in users])


def _profile(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    user = server.state.users[_need_user(server, as_user)]
    return _ok({k: user[k] for k in ("user_id", "username", "nick_name", "description", "private_info",
                                     "public_info")} | {"avatar": "", "email": "", "mobile": ""})


def _create(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    owner = _need_user(server, as_user)
    if not body.get("name"):
        raise _Business(10002, "请求参数不正确: name")
    gid = next(server._ids)
    now = int(time.time() * 1000)
    group = {"group_id": gid, "name": body["name"], "description": body.get("description") or "",
             "type": int(body.get("type") or 0), "owner_id": owner, "created_at": now, "updated_at": now,
             "history_visible": False, "members": {owner: now}}
    for uid in body.get("user_list") or []:
        group["members"][uid] = now
    server.state.groups[gid] = group
    return _ok({k: v for k, v in group.items() if k != "members"} | {"count": len(group["members"])})


def _history_visible(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    group = _group(server, body.get("group_id"))
    if _need_user(server, as_user) != group["owner_id"]:
        raise _Business(20012, "操作需要群管理员权限")
    group["history_visible"] = bool(body.get("value"))
    return _ok(True)


def _invite(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    group = _group(server, body.get("group_id"))
    if _need_user(server, as_user) not in group["members"]:
        raise _Business(20011, "操作需要群成员权限")
    out = []
    for uid in body.get("user_list") or []:
        if uid not in server.state.users:
            out.append({"user_id": uid, "result": "fail", "reason": "用户不存在"})
        elif uid in group["members"]:
            out.append({"user_id": uid, "result": "fail", "reason": "用户已经是群成员"})
        else:
            group["members"][uid] = int(time.time() * 1000)
            out.append({"user_id": uid, "result": "success"})
    return _ok(out)


def _joined(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    uid = _need_user(server, as_user)
    return _ok(sorted(g["group_id"] for g in server.state.groups.values() if uid in g["members"]))


def _info(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    group = _group(server, query.get("group_id"))
    return _ok({k: v for k, v in group.items() if k != "members"} | {"count": len(group["members"])})


def _member_list(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    group = _group(server, query.get("group_id"))
    members = sorted(group["members"].items())
    start = int(query.get("cursor") or 0)
    limit = int(query.get("limit") or 1000)
    page = members[start:start + limit]
    answer = _ok([{"user_id": uid, "join_time": at, "display_name": ""} for uid, at in page], version=1)
    if start + limit < len(members):
        answer["cursor"] = str(start + limit)
    return answer


def _send(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    targets, kind, ctype = body.get("targets"), body.get("type"), body.get("content_type")
    if not isinstance(targets, list) or not targets or kind not in (1, 2) or ctype not in _CTYPES or \
            not isinstance(body.get("content"), str):
        raise _Business(10002, "请求参数不正确")
    if ctype in (1, 2, 3, 4) and not body.get("attachment"):
        raise _Business(10002, "请求参数不正确: attachment")
    sender = body.get("from_user_id", 0)
    if sender and sender not in server.state.users:
        raise _Business(10000, "用户不存在")
    tx = body.get("transaction_id")
    now = time.time()
    if isinstance(tx, int) and now - server.state.transactions.get(tx, -1e18) < server.dedup_seconds:
        return _ok(True)  # "the second request will not be executed"
    ids = []
    for target in targets:
        if kind == 2:
            group = _group(server, target)
            if sender and sender not in group["members"]:
                raise _Business(20002, "用户不是群成员")
        elif target not in server.state.users:
            raise _Business(10000, "用户不存在")
        msg = Message(next(server._msg_ids), sender, target, kind, ctype, body["content"], body.get("attachment"),
                      body.get("ext"), body.get("config"), int(now * 1000))
        server.state.messages.append(msg)
        ids.append(msg.msg_id)
    if isinstance(tx, int):
        server.state.transactions[tx] = now
    return _ok(True, msg_ids=ids) if len(ids) == 1 else _ok(True)


def _conversation(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    uid = _need_user(server, as_user)
    other = int(query["opposite_id"])
    start, limit = int(query.get("msg_id_start", 0)), int(query.get("limit", 20))
    if other in server.state.groups:
        group = server.state.groups[other]
        if uid not in group["members"]:
            raise _Business(20002, "用户不是群成员")
        held = [m for m in server.state.messages if m.to_type == 2 and m.to_id == other]
    else:
        held = [m for m in server.state.messages if m.to_type == 1 and {m.from_uid, m.to_id} == {uid, other}]
    held.sort(key=lambda m: m.msg_id, reverse=True)
    if start:
        held = [m for m in held if m.msg_id <= start]
    page, rest = held[:limit], held[limit:]
    messages = [{"msg_id": m.msg_id, "from_xid": {"uid": m.from_uid, "device_sn": 0},
                 "to_xid": {"uid": m.to_id, "device_sn": 0}, "ctype": _CTYPES[m.ctype], "content": m.content,
                 "attachment": m.attachment or "", "ext": m.ext or "", "config": m.config or "",
                 "status": "DELIVERED", "timestamp": m.timestamp} for m in page]
    return _ok({"messages": messages, "is_last": not rest, "next_msg_id": rest[0].msg_id if rest else 0})


def _unread(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    uid = _need_user(server, as_user)
    seen: dict[int, None] = {}
    for m in server.state.messages:
        if m.to_type == 1 and uid in (m.from_uid, m.to_id):
            seen[m.to_id if m.from_uid == uid else m.from_uid] = None
        elif m.to_type == 2 and uid in server.state.groups[m.to_id]["members"]:
            seen[m.to_id] = None
    return _ok([{"conversation_id": {"uid": cid}, "num": 0} for cid in seen])


def _upload_ticket(server: LanyingServer, as_user: int | None, query: dict[str, str], body: Any) -> dict[str, Any]:
    if query.get("file_type") not in ("100", "101", "102", "103", "104") or not query.get("to_id"):
        raise _Business(10002, "请求参数不正确")
    key = f"chat/{query['to_id']}/{next(server._ids)}"
    return _ok({"upload_url": f"{server.url}/_oss/upload", "upload_method": "POST",
                "download_url": f"{server.url}/_oss/files/{key}",
                "oss_body_param": {"OSSAccessKeyId": "oss-test", "policy": "cG9saWN5", "key": key,
                                   "signature": f"sig-{key}", "callback": "Y2FsbGJhY2s="}})


_ROUTES = {
    ("POST", "/user/register/batch"): _register,
    ("POST", "/user/profile/batch"): _profiles,
    ("GET", "/user/list"): _user_list,
    ("GET", "/user/profile"): _profile,
    ("POST", "/group/create"): _create,
    ("POST", "/group/settings/history_visible"): _history_visible,
    ("POST", "/group/invite"): _invite,
    ("GET", "/group/user_joined"): _joined,
    ("GET", "/group/info"): _info,
    ("GET", "/group/member_list"): _member_list,
    ("POST", "/message/send"): _send,
    ("GET", "/message/conversation"): _conversation,
    ("GET", "/message/unread"): _unread,
    ("GET", "/file/upload/chat"): _upload_ticket,
}


@contextlib.contextmanager
def running(dedup_seconds: float = 60.0) -> Iterator[LanyingServer]:
    server = LanyingServer(dedup_seconds).start()
    try:
        yield server
    finally:
        server.stop()


def target_url(server: LanyingServer, hub: Any, **options: Any) -> str:
    """`lanying+http://127.0.0.1:PORT?app_id=…&rate=0&hub=sqlite:///HUB` (options added to the query)."""
    query = {"app_id": APP_ID, "rate": 0, "hub": f"sqlite:///{hub}", **options}
    return f"lanying+http://{server.url.split('://', 1)[1]}?" + "&".join(f"{k}={v}" for k, v in query.items())


def dump(server: LanyingServer) -> dict[str, Any]:
    """What the server holds (not the request log): for fingerprints of a target run."""
    with server.lock:
        state = server.state
        return {"users": sorted((u["username"], u["nick_name"], u["description"]) for u in state.users.values()),
                "groups": sorted((g["name"], g["history_visible"], len(g["members"])) for g in state.groups.values()),
                "messages": [(m.from_uid, m.to_id, m.ctype, m.content, m.ext) for m in state.messages],
                "files": sorted(state.files)}


__all__ = ["ADMIN_TOKEN", "APP_ID", "LanyingServer", "dump", "running", "target_url"]
