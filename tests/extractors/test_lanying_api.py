"""The lanying-api source against the loopback 蓝莺IM server (tests/lanying_server.py): it reads back
what the lanying target sent (users, groups and members, DMs, every message part with its original
time, thread root and reactions from ext), pages the same at any page size, syncs incrementally by
msg_id cursor, and reports a business error or an expired token clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatmigrate import pipeline
from chatmigrate.errors import UsageError
from chatmigrate.extractors import detect
from chatmigrate.extractors.lanying_api import LanyingApi
from chatmigrate.model import Channel, Checkpoint, Message, User
from chatmigrate.targets import target_for
from tests.conftest import sql_rows
from tests.lanying_server import ADMIN_TOKEN, APP_ID, LanyingServer, running, target_url

SLACK = Path(__file__).resolve().parents[2] / "samples" / "slack"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LanyingServer, Path]]:
    """A server holding the Slack sample, sent by the lanying target; and the target's hub."""
    hub = tmp_path_factory.mktemp("lanying") / "hub.db"
    with pytest.MonkeyPatch.context() as patch, running() as server:
        patch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)
        target = target_for(target_url(server, hub))
        try:
            pipeline.run(detect(str(SLACK))(str(SLACK), {}), target,
                         pipeline.RunOptions("migrate", str(SLACK), progress=False))
        finally:
            target.close()
        yield server, hub


def source(server: LanyingServer, **options: str) -> LanyingApi:
    return LanyingApi(f"lanying+http://{server.url.split('://', 1)[1]}?app_id={APP_ID}", options)


def hub_query(hub: Path, query: str) -> list[Any]:
    return sql_rows(f"sqlite:///{hub}", query)


def test_it_reads_back_what_the_target_sent(filled: tuple[LanyingServer, Path]) -> None:
    server, hub = filled
    items = list(source(server).records())
    users = [i for i in items if isinstance(i, User)]
    channels = [i for i in items if isinstance(i, Channel)]
    messages = [i for i in items if isinstance(i, Message)]
    assert sorted(u.username for u in users) == sorted(u["username"] for u in server.state.users.values())
    groups = {c.source_id: c for c in channels if c.kind != "direct"}
    assert set(groups) == {str(g) for g in server.state.groups}
    for gid, group in server.state.groups.items():
        assert len(groups[str(gid)].member_ids) == len(group["members"])
    assert len(messages) == len(server.state.messages)
    # Stream order: channels before messages, each channel's messages ascending, then its checkpoint.
    kinds = [type(i).__name__ for i in items]
    assert kinds.index("Message") > max(i for i, k in enumerate(kinds) if k == "Channel")
    current: list[Message] = []
    for item in items:
        if isinstance(item, Message):
            current.append(item)
        elif isinstance(item, Checkpoint):
            assert [(m.created_at, m.id) for m in current] == sorted((m.created_at, m.id) for m in current)
            current = []
    # Each message against the hub row it came from (ext.chatmigrate.id): original time, text, thread.
    hub_messages = {r[0]: r[1:] for r in hub_query(hub, "SELECT id, created_at, text, thread_root_id FROM cm_messages")}
    by_msg_id = {m.source_id: m for m in messages}
    for message in messages:
        info = json.loads(message.props["lanying_ext"])["chatmigrate"]
        created, text, root = hub_messages[info["id"]]
        assert message.created_at.strftime("%Y-%m-%d %H:%M:%S.%f") == created  # the original time, not 蓝莺IM's
        if not info.get("part") and not message.files:
            assert message.text == text
        if root is not None and not info.get("part"):
            if info["thread_root"].get("msg_id") is None:  # a root that was not sent (deleted in the source)
                assert hub_query(hub, f"SELECT state FROM cm_ly_messages WHERE message_id = '{root}'") == [("skipped",)]
                assert message.thread_root_id is None
                continue
            parent = by_msg_id[str(info["thread_root"]["msg_id"])]
            assert json.loads(parent.props["lanying_ext"])["chatmigrate"]["id"] == root
            assert message.thread_root_id == parent.id
    reactions = sum(len(m.reactions) for m in messages)
    assert reactions == hub_query(hub, "SELECT COUNT(*) FROM cm_reactions")[0][0]
    files = [f for m in messages for f in m.files]
    assert files and all(f.source_url and f.size for f in files)


def test_small_pages_read_the_same(filled: tuple[LanyingServer, Path]) -> None:
    server, _ = filled
    wide = [i for i in source(server).records() if isinstance(i, User | Channel | Message)]
    narrow = [i for i in source(server, page_size="2").records() if isinstance(i, User | Channel | Message)]
    assert narrow == wide
    assert any(q.get("cursor") for q in server.routes("/group/member_list"))  # member pages were followed
    assert any(q["msg_id_start"] != "0" for q in server.routes("/message/conversation"))


def test_a_sync_reads_only_what_is_newer(filled: tuple[LanyingServer, Path], tmp_path: Path) -> None:
    server, _ = filled
    url = f"sqlite:///{tmp_path}/copy.db"
    first = _load(source(server), url)
    assert first.counts["messages"]["loaded"] == len(server.state.messages)
    again = _load(source(server), url)
    assert again.counts["messages"]["read"] == 0
    group = next(iter(server.state.groups.values()))
    server.answer("POST", "/message/send", {"app_id": APP_ID, "access-token": ADMIN_TOKEN}, {},
                  {"type": 2, "targets": [group["group_id"]], "content": "new since", "content_type": 0,
                   "from_user_id": group["owner_id"]})
    try:
        third = _load(source(server), url)
        assert third.counts["messages"]["read"] == 1
    finally:
        server.state.messages.pop()


def _load(extractor: LanyingApi, url: str) -> pipeline.RunResult:
    target = target_for(url)
    try:
        return pipeline.run(extractor, target, pipeline.RunOptions("migrate", "lanying", progress=False))
    finally:
        target.close()


def test_errors_are_said_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with running() as server:
        server.fail_next["/user/list"] = [20001]
        from chatmigrate.errors import InputError

        with pytest.raises(InputError, match="20001"):
            list(source(server).records())
        server.expire_token()
        with pytest.raises(UsageError, match="10008") as caught:
            list(source(server).records())
        assert ADMIN_TOKEN not in str(caught.value)
    monkeypatch.delenv("CHATMIGRATE_LANYING_TOKEN")
    with pytest.raises(UsageError, match="CHATMIGRATE_LANYING_TOKEN"):
        LanyingApi("lanying://api.example.com?app_id=a", {})
    with pytest.raises(UsageError, match="app_id"):
        LanyingApi("lanying://api.example.com", {})
    assert LanyingApi.detect("lanying://api.example.com?app_id=a") and not LanyingApi.detect("https://x.example.com")
