"""Read throughput of the slack-api source against a loopback Slack Web API server holding N generated
messages: messages/s of a full read and the time of a sync pass that finds nothing new, with the number
of requests and the reader's peak RSS.

    python benchmarks/slack_api.py                       # 100,000 messages in 20 channels
    python benchmarks/slack_api.py --messages 5000 --channels 5       # quick check

The server runs in its own process (so its CPU is not the reader's) and answers in the Web API's format
(ok, messages newest first, response_metadata.next_cursor, has_more, oldest exclusive); every 10th
message is a thread root with 3 replies (conversations.replies). Every record goes through the real path:
HTTP, JSON, the shared Slack converter, canonical records.
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import resource
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatmigrate.extractors.slack_api import SlackApi
from chatmigrate.model import Checkpoint, Message

TOKEN = "xoxb-benchmark-token"
T0 = 1_700_000_000
USERS = 50


def _ts(n: int) -> str:
    return f"{T0 + n}.{n % 1_000_000:06d}"


def _channels(messages: int, channels: int) -> dict[str, list[dict[str, Any]]]:
    """Per channel, its messages ascending by ts: roots every 10th with 3 replies right after them."""
    out: dict[str, list[dict[str, Any]]] = {f"C{c:08d}": [] for c in range(channels)}
    names = list(out)
    n = 0
    while n < messages:
        channel = out[names[(n // 40) % channels]]
        text = f"message {n} for <@U{(n + 1) % USERS:08d}> with *bold* and a <https://example.com|link>"
        root = {"type": "message", "ts": _ts(n), "user": f"U{n % USERS:08d}", "text": text,
                "reactions": [{"name": "thumbsup", "users": [f"U{(n + 2) % USERS:08d}"], "count": 1}]}
        channel.append(root)
        n += 1
        if n % 10 == 1 and n + 3 <= messages:
            root.update(thread_ts=root["ts"], reply_count=3)
            for _ in range(3):
                channel.append({"type": "message", "ts": _ts(n), "user": f"U{n % USERS:08d}", "text": f"reply {n}",
                                "thread_ts": root["ts"]})
                n += 1
            root["latest_reply"] = channel[-1]["ts"]
    return out


def _serve(port_queue: multiprocessing.Queue, messages: int, channels: int) -> None:  # type: ignore[type-arg]
    data = _channels(messages, channels)
    history = {c: [m for m in ms if m.get("thread_ts") in (None, m["ts"])] for c, ms in data.items()}
    keys = {c: [float(m["ts"]) for m in ms] for c, ms in history.items()}
    threads = {m["ts"]: [m, *(r for r in ms if r.get("thread_ts") == m["ts"] and r is not m)]
               for ms in data.values() for m in ms if m.get("reply_count")}
    users = [{"id": f"U{u:08d}", "team_id": "TBENCH", "name": f"user{u}", "profile": {"real_name": f"User {u}"}}
             for u in range(USERS)]
    conversations = [{"id": c, "name": f"channel-{i}", "is_channel": True, "created": T0, "creator": "U00000000",
                      "members": [u["id"] for u in users[:10]]} for i, c in enumerate(data)]

    def page(items: list[Any], query: dict[str, str], key: str) -> dict[str, Any]:
        start = int(query.get("cursor") or 0)
        limit = int(query.get("limit") or 100)
        more = start + limit < len(items)
        return {"ok": True, key: items[start:start + limit], "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def answer(method: str, query: dict[str, str]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team_id": "TBENCH", "user_id": "U00000000"}
        if method == "users.list":
            return page(users, query, "members")
        if method == "conversations.list":
            return page(conversations, query, "channels")
        if method == "emoji.list":
            return {"ok": True, "emoji": {}}
        if method == "conversations.history":
            channel = query["channel"]
            start = bisect.bisect_right(keys[channel], float(query.get("oldest") or 0))
            return page(history[channel][start:][::-1], query, "messages")
        if method == "conversations.replies":
            return page(threads[query["ts"]], query, "messages")
        return {"ok": False, "error": "unknown_method"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Slack's own servers
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            body = json.dumps(answer(url.path.rsplit("/", 1)[-1],
                                     {k: v[0] for k, v in parse_qs(url.query).items()})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def _read(url: str, since: dict[str, str] | None) -> tuple[int, float, int, dict[str, str]]:
    source = SlackApi(url, {"token": TOKEN, "page_size": "200", "thread_lookback_days": "0"})
    started = time.perf_counter()
    messages = 0
    cursors: dict[str, str] = {}
    for item in source.records(since=since):
        if isinstance(item, Message):
            messages += 1
        elif isinstance(item, Checkpoint):
            cursors[item.channel_id] = item.cursor
    return messages, time.perf_counter() - started, source.http.requests_made, cursors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=20)
    args = parser.parse_args()
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_serve, args=(ports, args.messages, args.channels), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=120)}/api"
        messages, seconds, requests, cursors = _read(url, None)
        again, sync_seconds, sync_requests, _ = _read(url, cursors)
    finally:
        server.terminate()
    result = {"messages": messages, "channels": args.channels, "full_read_s": round(seconds, 2),
              "messages_per_s": round(messages / seconds), "requests": requests,
              "sync_nothing_new_s": round(sync_seconds, 2), "sync_messages": again, "sync_requests": sync_requests,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
