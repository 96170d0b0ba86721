"""The Rocket.Chat REST API extractor against a loopback HTTP server that speaks the documented wire
format (developer.rocket.chat: users.list, rooms.get, *.members, *.history, chat.syncMessages,
emoji-custom.list; count/offset paging; 429 with x-ratelimit-reset), serving the same data as
samples/rocketchat. The dump and the API forms must give the same ids."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from chatmigrate.errors import UsageError
from chatmigrate.extractors.rocketchat_api import RocketchatApi
from chatmigrate.extractors.rocketchat_dump import RocketchatDump
from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Skipped, User
from tests.sources.servers.rocketchat import (
    SAMPLES,
    TOKEN,
    USER_ID,
    FakeRocketChat,
    gen,
    rocketchat_server,
)


@pytest.fixture
def server() -> Iterator[tuple[str, FakeRocketChat]]:
    with rocketchat_server() as served:
        yield served


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
