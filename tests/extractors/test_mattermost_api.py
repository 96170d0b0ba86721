"""Mattermost API v4 over real loopback HTTP: a small server holding the same data as samples/mattermost
answers in the documented v4 wire format (PostList pages newest first, `since`, metadata, 429 with
Retry-After), and the API form must produce exactly the ids of the export form."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chatmigrate.errors import InputError, TransientError, UsageError
from chatmigrate.extractors import registered
from chatmigrate.extractors._http import HttpClient, paged, parse_retry_after
from chatmigrate.extractors.mattermost_api import MattermostApi
from chatmigrate.extractors.mattermost_export import MattermostExport
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Team, Unreadable, User
from tests.sources.servers.mattermost import SAMPLE, TOKEN, FakeServer, at, mattermost_server


@pytest.fixture
def server() -> Iterator[tuple[str, FakeServer]]:
    with mattermost_server() as served:
        yield served


def api(url: str, **options: str) -> MattermostApi:
    return MattermostApi(url, {"token": TOKEN, "per_page": "2", **options})


def identity(items: list[Item]) -> dict[str, Any]:
    """Everything that must agree between the two forms: ids and the links between them."""
    messages = [i for i in items if isinstance(i, Message)]
    return {
        "teams": sorted(i.id for i in items if isinstance(i, Team)),
        "users": sorted((i.id, i.username, i.is_bot, i.is_deleted, i.role) for i in items if isinstance(i, User)),
        "channels": sorted((i.id, i.kind, i.name, i.team_id, tuple(sorted(i.member_ids)))
                           for i in items if isinstance(i, Channel)),
        "emoji": sorted((i.id, i.file.id if i.file else None) for i in items if isinstance(i, Emoji)),
        "messages": sorted((m.id, m.channel_id, m.user_id, m.created_at, m.thread_root_id, m.kind, m.text,
                            m.is_pinned, m.edited_at) for m in messages),
        "reactions": sorted((m.id, r.emoji, r.user_id, r.created_at) for m in messages for r in m.reactions),
        "files": sorted((m.id, f.id, f.name) for m in messages for f in m.files),
        "checkpoints": sorted(i.channel_id for i in items if isinstance(i, Checkpoint)),
    }


def test_registered_and_detect(server: tuple[str, FakeServer], tmp_path: Path) -> None:
    url, _ = server
    assert registered()["mattermost-api"].load() is MattermostApi
    assert MattermostApi.detect(url)
    assert MattermostApi.detect(url + "/")
    assert not MattermostApi.detect(url + "/not-mattermost")  # ping answers 404 there
    assert not MattermostApi.detect(str(SAMPLE))
    assert not MattermostApi.detect(str(tmp_path))
    assert not MattermostApi.detect("http://127.0.0.1:9")  # nothing listens: False, no exception
    assert not MattermostExport.detect(url)


def test_api_and_export_forms_produce_the_same_ids(server: tuple[str, FakeServer]) -> None:
    url, state = server
    state.rate_limit_once.add("/api/v4/users?page=1")
    extractor = api(url)
    from_api = list(extractor.records())
    from_export = list(MattermostExport(str(SAMPLE)).records())
    assert not [i for i in from_api if isinstance(i, Unreadable)]
    got, expected = identity(from_api), identity(from_export)
    for part in expected:
        assert got[part] == expected[part], part
    assert len(got["messages"]) == 19 and len(got["reactions"]) == 3 and len(got["files"]) == 3
    # The rate-limited page was waited for (Retry-After: 1) and asked again.
    assert state.log.count("/api/v4/users?page=1&per_page=2") == 2
    assert extractor.http.waited >= 1
    # Pagination really happened: several pages of town-square's 11 posts, 2 per page.
    town = next(c["id"] for c in state.channels.values() if c["name"] == "town-square")
    pages = [entry for entry in state.log if entry.startswith(f"/api/v4/channels/{town}/posts?")]
    assert len(pages) == 6
    # Posts without metadata made the client ask for reactions and file infos separately.
    assert any("/reactions?" in entry for entry in state.log)
    assert any("/info?" in entry for entry in state.log)


def test_api_records_carry_server_details(server: tuple[str, FakeServer]) -> None:
    url, _ = server
    items = list(api(url).records())
    users = {u.username: u for u in items if isinstance(u, User)}
    assert users["alice"].timezone == "Europe/Berlin"
    messages = {m.text: m for m in items if isinstance(m, Message)}
    [png] = [f for f in messages[""].files if f.name == "diagram.png"]
    assert png.source_url and png.source_url.startswith(url + "/api/v4/files/")
    assert messages["Plan A: @alice please review ~town-square"].props["source_text"].startswith("Plan A: @Alice")
    order = [type(i).__name__ for i in items]
    assert order.index("Message") > order.index("Emoji") > order.index("Channel") > order.index("User")


def test_since_reads_only_changes_and_keeps_ids(server: tuple[str, FakeServer]) -> None:
    url, state = server
    full = {m.id: m for m in api(url).records() if isinstance(m, Message)}
    town = next(c for c in api(url).records() if isinstance(c, Channel) and c.name == "town-square")
    state.log.clear()
    items = list(api(url).records(since={town.id: str(at(7))}))
    town_messages = [m for m in items if isinstance(m, Message) and m.channel_id == town.id]
    assert {m.text for m in town_messages} == {"Second reply", "Pinned, edited and flagged", "eve joined the channel.",
                                               "Same millisecond, first", "Same millisecond, second",
                                               "Build #42 passed ✅", ""}
    # Same ids as the full read; the reply's root (not changed, so not in the answer) was fetched.
    assert all(full[m.id] == m for m in town_messages)
    reply = next(m for m in town_messages if m.text == "Second reply")
    assert full[reply.thread_root_id].text.startswith("Thread root")
    assert any(entry.startswith("/api/v4/posts/") and "/" not in entry.split("/api/v4/posts/")[1].split("?")[0]
               for entry in state.log)
    assert any("since=" in entry for entry in state.log)
    checkpoint = next(i for i in items if isinstance(i, Checkpoint) and i.channel_id == town.id)
    assert int(checkpoint.cursor) == at(21)


def test_bad_token_is_a_clear_error_without_the_token(server: tuple[str, FakeServer]) -> None:
    url, _ = server
    wrong = "wrong-token-abcdef123456"
    with pytest.raises(UsageError) as info:
        list(MattermostApi(url, {"token": wrong}).records())
    assert "HTTP 401" in str(info.value) and "Invalid or expired session" in str(info.value)
    assert wrong not in str(info.value)


def test_missing_token_and_wrong_location(monkeypatch: pytest.MonkeyPatch, server: tuple[str, FakeServer]) -> None:
    url, _ = server
    monkeypatch.delenv("CHATMIGRATE_MATTERMOST_TOKEN", raising=False)
    with pytest.raises(UsageError, match="CHATMIGRATE_MATTERMOST_TOKEN"):
        MattermostApi(url, {})
    with pytest.raises(UsageError, match="give its URL"):
        MattermostApi(str(SAMPLE), {"token": TOKEN})
    monkeypatch.setenv("CHATMIGRATE_MATTERMOST_TOKEN", TOKEN)
    assert sum(isinstance(i, Team) for i in MattermostApi(url).records()) == 2
    with pytest.raises(InputError, match="HTTP 404"):
        list(MattermostApi(url + "/wrong-prefix").records())


# -- the shared HTTP helper ------------------------------------------------------------------------
def test_http_client_gives_up_on_an_unbounded_retry_after() -> None:
    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        client = HttpClient(f"http://127.0.0.1:{httpd.server_address[1]}", headers={"Authorization": "Bearer x"},
                            secrets=["x"], max_wait=2)
        started = time.monotonic()
        with pytest.raises(TransientError) as info:
            client.get_json("/api/v4/users")
        assert time.monotonic() - started < 2
        assert info.value.retry_after == 3600
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_helpers() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    calls: Counter[int] = Counter()

    def fetch(page: int) -> list[int]:
        calls[page] += 1
        return [page * 3 + i for i in range(3 if page < 2 else 1)]
    assert list(paged(fetch, 3)) == [0, 1, 2, 3, 4, 5, 6]
    assert calls == {0: 1, 1: 1, 2: 1}
    client = HttpClient("https://user:pw@chat.example.com", secrets=["tok123"])
    assert client.hide("GET https://user:pw@chat.example.com/x?token=abc tok123") == (
        "GET https://user:***@chat.example.com/x?token=*** ***")


def test_bad_posts_from_the_server_are_recorded(server: tuple[str, FakeServer]) -> None:
    url, state = server
    town = next(c["id"] for c in state.channels.values() if c["name"] == "town-square")
    secret = next(c["id"] for c in state.channels.values() if c["name"] == "secret-plans")
    root = next(p for p in state.posts.values() if p["message"].startswith("Thread root"))
    alice = state.user_id("alice")
    base = {"update_at": at(40), "edit_at": 0, "delete_at": 0, "is_pinned": False, "original_id": "", "type": "",
            "props": {}, "hashtags": "", "file_ids": [], "pending_post_id": "", "metadata": {}}
    # A reply filed in another channel than its root, a post without an author, a reply to nothing.
    state.posts["x1"] = {**base, "id": "x1", "create_at": at(40), "user_id": alice, "channel_id": secret,
                         "root_id": root["id"], "message": "misfiled reply"}
    state.posts["x2"] = {**base, "id": "x2", "create_at": at(41), "user_id": "", "channel_id": town, "root_id": "",
                         "message": "no author"}
    state.posts["x3"] = {**base, "id": "x3", "create_at": at(42), "user_id": alice, "channel_id": town,
                         "root_id": "gone", "message": "reply to a deleted root"}
    items = list(api(url).records())
    messages = {m.text: m for m in items if isinstance(m, Message)}
    misfiled = messages["misfiled reply"]
    # Its id and root link are what they would be in the root's channel; the validator reports CM104.
    assert misfiled.thread_root_id == messages["Thread root: what should we build?"].id
    assert misfiled.channel_id != messages["Thread root: what should we build?"].channel_id
    assert misfiled.source_id.startswith("acme/town-square/bob/")
    rejects = {i.raw["message"]: i for i in items if isinstance(i, Unreadable)}
    assert set(rejects) == {"no author", "reply to a deleted root"}
    assert all(r.code == "CM002" and r.origin is not None and "/api/v4/posts/" in r.origin.file
               for r in rejects.values())


def test_fields_of_the_wrong_type_from_the_server_are_kept_and_never_crash(server: tuple[str, FakeServer]) -> None:
    """Issue 12 #4: any field of the wrong JSON type is set aside in props.unreadable_fields (CM120)."""
    url, state = server
    alice = state.user_id("alice")
    state.users[alice]["email"] = 12
    town = next(c for c in state.channels.values() if c["name"] == "town-square")
    town["header"] = {"text": "x"}
    post = next(p for p in state.posts.values() if p["message"].startswith("Thread root"))
    post["message"], post["is_pinned"] = 99, "yes"
    items = list(api(url).records())
    user = next(u for u in items if isinstance(u, User) and u.username == "alice")
    channel = next(c for c in items if isinstance(c, Channel) and c.name == "town-square")
    message = next(m for m in items if isinstance(m, Message) and m.props.get("mm_id") == post["id"])
    assert user.email is None and user.props["unreadable_fields"] == {"email": 12}
    assert channel.topic is None and channel.props["unreadable_fields"] == {"header": {"text": "x"}}
    assert message.text == "" and message.props["unreadable_fields"] == {"message": 99, "is_pinned": "yes"}
