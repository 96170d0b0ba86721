"""A Slack workspace served in the Web API's documented format (api.slack.com/web: `ok`, `error`,
`response_metadata.next_cursor`, `has_more`, HTTP 429 with `Retry-After`, `oldest`/`latest` exclusive),
holding the data of samples/slack: users.json → users.list, the four listings → conversations.list (+
conversations.members), the day files → conversations.history (roots and broadcasts, newest first) and
conversations.replies (root first). A reply whose root the export's date range cut off gets that root
back, as the live workspace still has it."""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.sources.servers import serving

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "slack"
TOKEN = "xoxb-0000000000-loopback-test-token"
TEAM = "T0SAMPLE1"
_LISTINGS = (("channels.json", {"is_channel": True, "is_private": False}),
             ("groups.json", {"is_channel": False, "is_group": True, "is_private": True}),
             ("mpims.json", {"is_mpim": True, "is_private": True}),
             ("dms.json", {"is_im": True, "is_private": True}))
EMOJI = {"partyparrot": "https://emoji.slack-edge.com/T0SAMPLE1/partyparrot/0a1b2c.gif",
         "parrot": "alias:partyparrot", "shipit": "https://emoji.slack-edge.com/T0SAMPLE1/shipit/3d4e5f.png"}


def _key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros.ljust(6, "0"))


def _read(name: str) -> Any:
    return json.loads((SAMPLE / name).read_text(encoding="utf-8"))


class FakeSlack:
    """The workspace's state, request log and the failures a test asks for."""

    def __init__(self) -> None:
        self.users: list[dict[str, Any]] = _read("users.json")
        self.conversations: list[dict[str, Any]] = []
        self.members: dict[str, list[str]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # conversation id → ts → message
        for listing, flags in _LISTINGS:
            for raw in _read(listing):
                conversation = {**raw, **flags}
                self.members[raw["id"]] = conversation.pop("members", [])
                if flags.get("is_im"):
                    conversation["user"] = next((m for m in self.members[raw["id"]] if m != "U0ALICE01"), "U0ALICE01")
                self.conversations.append(conversation)
                self.messages[raw["id"]] = self._day_messages(SAMPLE / (raw.get("name") or raw["id"]))
        self.log: list[str] = []
        self.rate_limit_once: set[str] = set()  # methods answered once with 429 + Retry-After
        self.limited_body_once: set[str] = set()  # … once with HTTP 200 and error ratelimited (older edges)
        self.closed: set[str] = set()  # conversations answering not_in_channel
        self.lock = threading.Lock()

    @staticmethod
    def _day_messages(folder: Path) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for day in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            for message in json.loads(day.read_text(encoding="utf-8")):
                found.setdefault(message["ts"], message)  # the export's identical copy is one message
        for message in list(found.values()):
            root = message.get("thread_ts")
            if root and root not in found:  # cut off by the export's date range; the server has it
                found[root] = {"type": "message", "ts": root, "user": message["user"], "text": "An older root",
                               "thread_ts": root, "reply_count": 1, "latest_reply": message["ts"]}
        return found

    # -- changes a test makes, as people would in Slack -------------------------------------------
    def post(self, channel: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.messages[channel][message["ts"]] = message
            root = message.get("thread_ts")
            if root and root != message["ts"]:
                parent = self.messages[channel][root]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = max(parent.get("latest_reply", root), message["ts"], key=_key)

    def edit(self, channel: str, ts: str, text: str, when: str) -> None:
        with self.lock:
            self.messages[channel][ts].update(text=text, edited={"user": "U0ALICE01", "ts": when})

    def delete(self, channel: str, ts: str) -> None:
        """Slack's deletion: a root with replies becomes a tombstone, any other message disappears."""
        with self.lock:
            message = self.messages[channel][ts]
            if message.get("reply_count"):
                message.update(subtype="tombstone", user="USLACKBOT", text="This message was deleted.", hidden=True)
                for key in ("files", "reactions", "edited", "attachments", "blocks"):
                    message.pop(key, None)
            else:
                del self.messages[channel][ts]

    # -- the wire ----------------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        method = path.rsplit("/", 1)[-1]
        with self.lock:
            self.log.append(f"{method}?{'&'.join(f'{k}={v}' for k, v in sorted(query.items()))}")
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            if method in self.rate_limit_once:
                self.rate_limit_once.discard(method)
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            if method in self.limited_body_once:
                self.limited_body_once.discard(method)
                return 200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            return 200, {"ok": True, **copy.deepcopy(handler(query))}, {}

    @staticmethod
    def _page(items: list[Any], query: dict[str, str], key: str) -> dict[str, Any]:
        start = int(base64.b64decode(query["cursor"]).decode().removeprefix("offset:")) if query.get("cursor") else 0
        limit = min(int(query.get("limit") or 100), 1000)
        chosen = items[start:start + limit]
        more = start + limit < len(items)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {key: chosen, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    def _auth_test(self, query: dict[str, str]) -> dict[str, Any]:
        return {"url": "https://sample.slack.com/", "team": "Sample", "user": "migrator", "team_id": TEAM,
                "user_id": "U0ALICE01", "bot_id": "B0MIGRATE"}

    def _users_list(self, query: dict[str, str]) -> dict[str, Any]:
        return self._page(self.users, query, "members")

    def _conversations_list(self, query: dict[str, str]) -> dict[str, Any]:
        return self._page(self.conversations, query, "channels")

    def _conversations_members(self, query: dict[str, str]) -> dict[str, Any]:
        return self._page(self.members[query["channel"]], query, "members")

    def _emoji_list(self, query: dict[str, str]) -> dict[str, Any]:
        return {"emoji": EMOJI, "cache_ts": "1709280000.000000"}

    def _window(self, channel: str, query: dict[str, str]) -> list[dict[str, Any]] | dict[str, Any]:
        if channel not in self.messages:
            return {"error": "channel_not_found"}
        if channel in self.closed:
            return {"error": "not_in_channel"}
        oldest, latest = _key(query.get("oldest") or "0"), _key(query.get("latest") or "9999999999")
        inclusive = query.get("inclusive") in ("true", "1")
        return [m for ts, m in self.messages[channel].items()
                if (oldest <= _key(ts) <= latest if inclusive else oldest < _key(ts) < latest)]

    def _conversations_history(self, query: dict[str, str]) -> dict[str, Any]:
        window = self._window(query["channel"], query)
        if isinstance(window, dict):
            return window
        shown = [m for m in window if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"]
        return self._page(sorted(shown, key=lambda m: _key(m["ts"]), reverse=True), query, "messages")

    def _conversations_replies(self, query: dict[str, str]) -> dict[str, Any]:
        root = query["ts"]
        messages = self.messages.get(query["channel"], {})
        if root not in messages:
            return {"error": "thread_not_found"}
        thread = [messages[root], *sorted((m for m in messages.values() if m.get("thread_ts") == root
                                           and m["ts"] != root), key=lambda m: _key(m["ts"]))]
        return self._page(thread, query, "messages")

    def _files_info(self, query: dict[str, str]) -> dict[str, Any]:
        for messages in self.messages.values():
            for message in messages.values():
                for file in message.get("files") or ():
                    if file.get("id") == query.get("file"):
                        return {"file": {k: v for k, v in file.items() if k != "file_access"}}
        return {"error": "file_not_found"}


def _fix_errors(answer: tuple[int, Any, dict[str, str]]) -> tuple[int, Any, dict[str, str]]:
    """A handler that returned {"error": …} is an `ok: false` answer."""
    status, body, headers = answer
    if isinstance(body, dict) and "error" in body and body.get("ok"):
        return status, {"ok": False, "error": body["error"]}, headers
    return answer


@contextmanager
def slack_server() -> Iterator[tuple[str, FakeSlack]]:
    """(the Web API base URL, the server's state) for as long as the block runs."""
    state = FakeSlack()
    with serving(lambda path, query, headers: _fix_errors(state.answer(path, query, headers))) as url:
        yield f"{url}/api", state
