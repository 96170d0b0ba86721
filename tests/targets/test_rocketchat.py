"""The Rocket.Chat target on a real MongoDB wire server (FerretDB 1.24, tests/oracles/ferretdb).

Round trip: every sample and every real export is loaded into a database; its collections are read
back with pymongo, written out as a mongodump folder (`<collection>.bson`, GridFS buckets included)
and read by chatmigrate's own `rocketchat-dump` source. What was loaded must come back: users, rooms,
members, messages with their times, threads, reactions, edits, pins, deletions and file bytes. The
invariants Rocket.Chat keeps on its write path are checked by queries, and a re-run changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import bson
import pytest

from chatmigrate import extractors, pipeline
from chatmigrate.errors import Locked
from chatmigrate.model import Channel, Message, Record, User
from chatmigrate.targets import _rc_rules as rc
from chatmigrate.targets import target_for
from chatmigrate.targets.rocketchat import RocketChat, parse_url
from tests.conftest import REALDATA, REPO
from tests.validate.test_realdata import REAL

from .test_conformance import mongo_documents

SAMPLES = {"slack": None, "mattermost/export.zip": None, "rocketchat/dump": None}
DUMPED = ("users", "rocketchat_room", "rocketchat_subscription", "rocketchat_message", "rocketchat__trash",
          "rocketchat_uploads", "rocketchat_uploads.files", "rocketchat_uploads.chunks", "rocketchat_custom_emoji",
          "custom_emoji.files", "custom_emoji.chunks")


@pytest.fixture
def rc_url(ferretdb: str) -> str:
    return f"rocketchat+mongodb://{ferretdb.removeprefix('mongodb://')}/rt_{uuid.uuid4().hex[:12]}"


def _migrate(location: Path, url: str, form: str | None = None) -> tuple[pipeline.RunResult, list[Record]]:
    """Load `location` into the target; return the run and every record the target was handed."""
    extractor_cls = extractors.load(form) if form else extractors.detect(str(location))
    extractor = extractor_cls(str(location), {})
    target = target_for(url)
    loaded: list[Record] = []
    original = target.load

    def load(items: Iterable[Any]) -> Any:
        def tee() -> Iterator[Any]:
            for item in items:
                if isinstance(item, User | Channel | Message):
                    loaded.append(item)
                yield item
        return original(tee())

    target.load = load  # type: ignore[method-assign]
    try:
        options = pipeline.RunOptions("migrate", str(location), progress=False)
        return pipeline.run(extractor, target, options), loaded
    finally:
        target.close()


def _dump(url: str, out: Path) -> Path:
    """The database as `mongodump --out` writes it: `<out>/<db>/<collection>.bson`."""
    target = target_for(url)
    try:
        folder = out / target.db.name  # type: ignore[attr-defined]
        folder.mkdir(parents=True)
        for name in DUMPED:
            with (folder / f"{name}.bson").open("wb") as handle:
                for doc in target.db[name].find({}):  # type: ignore[attr-defined]
                    handle.write(bson.encode(doc))
        return folder
    finally:
        target.close()


def _read_back(folder: Path) -> dict[str, dict[str, Any]]:
    """The dump read by chatmigrate's own rocketchat-dump source, by Rocket.Chat id."""
    source = extractors.load("rocketchat-dump")(str(folder), {})
    out: dict[str, dict[str, Any]] = {"users": {}, "channels": {}, "messages": {}, "bytes": {}}
    for item in source.records():
        if isinstance(item, User):
            out["users"][item.source_id] = item
        elif isinstance(item, Channel):
            out["channels"][item.source_id] = item
        elif isinstance(item, Message):
            out["messages"][item.source_id] = item
            for file in item.files:
                handle = source.open_file(file)
                if handle is not None:
                    with handle:
                        out["bytes"][file.source_id] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _ms(value: Any) -> int | None:
    return None if value is None else int(rc.to_ms(value).timestamp() * 1000)


def _check_round_trip(loaded: list[Record], back: dict[str, dict[str, Any]]) -> None:
    users = {u.id: u for u in loaded if isinstance(u, User)}
    rc_user = {uid: rc.meteor_id("user", uid) for uid in users}
    for user in users.values():
        got = back["users"][rc_user[user.id]]
        assert got.email == user.email
        assert got.is_bot == user.is_bot
        assert got.is_deleted == user.is_deleted
        assert rc.NAME_OK.match(got.username), got.username
        if rc.NAME_OK.match(user.username) and user.username.lower() not in rc.RESERVED_USERNAMES:
            # Valid names are kept, but for a numbered suffix when two differ only in case.
            assert got.username.lower().startswith(user.username.lower())
        # Rocket.Chat roles read back in the closed vocabulary (issue 17): bot, admin, guest, else member.
        assert got.role == ("bot" if user.is_bot else user.role if user.role in ("admin", "guest") else "member")
    for channel in (c for c in loaded if isinstance(c, Channel)):
        got = back["channels"][rc.meteor_id("room", channel.id)]
        # Rocket.Chat has one type for direct and group conversations, told apart by member count.
        kinds = {"direct", "group"} if channel.kind in ("direct", "group") else {channel.kind}
        assert got.kind in kinds
        known = {rc_user[m] for m in channel.member_ids if m in rc_user}
        assert {m for m in got.member_ids} == {
            back["users"][r].id for r in known}, channel.name
        assert got.topic == (channel.topic or None)
        assert got.purpose == (channel.purpose or None)
        assert (got.archived_at is not None) == (channel.archived_at is not None)
        parent = channel.props.get("parent_channel_id")
        if parent:
            assert got.props.get("parent_channel_id") == back["channels"][rc.meteor_id("room", parent)].id
    by_rc_message = {rc.meteor_id("message", m.id): m for m in loaded if isinstance(m, Message)}
    for rc_id, message in by_rc_message.items():
        got = back["messages"][rc_id]
        assert _ms(got.created_at) == _ms(message.created_at)
        assert (got.deleted_at is not None) == (message.deleted_at is not None or message.kind == "tombstone")
        assert got.user_id == (back["users"][rc_user[message.user_id]].id if message.user_id in rc_user else
                               got.user_id)
        if message.thread_root_id:
            root = back["messages"][rc.meteor_id("message", message.thread_root_id)]
            assert got.thread_root_id == root.id
        else:
            assert got.thread_root_id is None
        assert _ms(got.edited_at) == _ms(message.edited_at)
        assert got.is_pinned == message.is_pinned
        assert _text(got.text) == _text(message.text, len(message.text) > rc.MAX_MESSAGE) or "@" in message.text \
            or "~" in message.text, (got.text, message.text)
        reactions = {(r.emoji, r.user_id) for r in message.reactions if r.user_id in rc_user}
        assert {(r.emoji, r.user_id) for r in got.reactions} == {
            (rc.reaction_key(e).strip(":"), back["users"][rc_user[u]].id) for e, u in reactions}
        assert [(f.name, f.size if f.sha256 else None) for f in got.files] == [
            (f.name, f.size if f.sha256 else None) for f in message.files]
        for file, original in zip(got.files, message.files, strict=True):
            if original.sha256 and file.source_id in back["bytes"]:
                assert back["bytes"][file.source_id] == original.sha256


def _text(text: str, split: bool = False) -> str:
    """Text as compared: Rocket.Chat's `*bold*`/`~strike~` readings turn canonical text back only
    approximately, and a split message keeps its first part in its own document (by design)."""
    text = text.replace("**", "*").replace("~~", "~")
    return text[: rc.MAX_MESSAGE // 2] if split else text


def _invariants(url: str) -> None:
    """Room msgs, lm and usersCount, thread tcount/tlm/replies, subscriptions and __rooms, by query."""
    target = target_for(url)
    try:
        db = target.db  # type: ignore[attr-defined]
        # Read once, grouped here: FerretDB runs every filter but `_id` as a full scan.
        by_room: dict[str, list[dict[str, Any]]] = {}
        for m in db.rocketchat_message.find({}):
            by_room.setdefault(m["rid"], []).append(m)
        subs_by_room: dict[str, list[dict[str, Any]]] = {}
        for sub in db.rocketchat_subscription.find({}):
            subs_by_room.setdefault(sub["rid"], []).append(sub)
        users = {u["_id"]: u for u in db.users.find({})}
        for room in db.rocketchat_room.find({}):
            messages = by_room.get(room["_id"], [])
            assert room.get("msgs", 0) == len(messages), room.get("name")
            visible = [m for m in messages if not m.get("tmid") or m.get("tshow")]
            if visible:
                newest = max(visible, key=lambda m: (m["ts"], m["_id"]))
                assert room["lm"] == newest["ts"] and room["lastMessage"]["_id"] == newest["_id"]
            subs = subs_by_room.get(room["_id"], [])
            assert room["usersCount"] == len(subs)
            for sub in subs:
                assert sub["unread"] == 0 and sub["alert"] is False
                if "lm" in room:
                    assert sub["ls"] >= room["lm"]
                user = users.get(sub["u"]["_id"])
                assert user is not None and room["_id"] in user.get("__rooms", [])
            replies: dict[str, list[dict[str, Any]]] = {}
            for m in messages:
                if m.get("tmid"):
                    replies.setdefault(m["tmid"], []).append(m)
            for m in messages:
                got = replies.get(m["_id"], [])
                assert m.get("tcount", 0) == len(got)
                if got:
                    assert m["tlm"] == max(r["ts"] for r in got)
                    assert set(m["replies"]) == {r["u"]["_id"] for r in got}
        for doc_coll in ("users", "rocketchat_room", "rocketchat_subscription", "rocketchat_message"):
            assert db[doc_coll].count_documents({"_updatedAt": {"$exists": False}}) == 0
    finally:
        target.close()


def _cases() -> list[Any]:
    cases = [pytest.param(REPO / "samples" / name, form, id=f"sample:{name}") for name, form in SAMPLES.items()]
    cases += [pytest.param(REALDATA / name, form, id=f"real:{name}") for name, form in REAL.items()]
    return cases


@pytest.mark.parametrize(("location", "form"), _cases())
def test_round_trip_through_rocketchat_dump(location: Path, form: str | None, rc_url: str, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    if str(location).startswith(str(REALDATA)):
        request.getfixturevalue("realdata")
    first, loaded = _migrate(location, rc_url, form)
    assert first.counts["messages"]["loaded"] == sum(isinstance(r, Message) for r in loaded)
    _invariants(rc_url)
    before = _snapshot(rc_url)
    second, _ = _migrate(location, rc_url, form)
    assert second.rows_written == 0
    assert _snapshot(rc_url) == before
    _check_round_trip(loaded, _read_back(_dump(rc_url, tmp_path / "dump")))


def _snapshot(url: str) -> Any:
    target = target_for(url)
    try:
        return mongo_documents(target)
    finally:
        target.close()


def test_url_password_is_masked_and_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    uri, database, safe = parse_url("rocketchat+mongodb://chat:pa%40ss@db1:27017,db2/rocketchat?authSource=admin")
    assert database == "rocketchat" and "pa%40ss" in uri and "pa" not in safe.split("@")[0].split(":")[-1]
    assert safe.startswith("rocketchat+mongodb://chat:***@db1:27017,db2/rocketchat?authSource=")
    monkeypatch.setenv("CHATMIGRATE_MONGODB_USER", "svc")
    monkeypatch.setenv("CHATMIGRATE_MONGODB_PASSWORD", "from-env")
    uri, _, safe = parse_url("rocketchat+mongodb://db1/rocketchat")
    assert uri == "mongodb://svc:from-env@db1/rocketchat" and "from-env" not in safe


def test_ids_are_meteor_ids_and_stable() -> None:
    ids = {rc.meteor_id("message", f"m{n}") for n in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 17 and set(i) <= set(rc.ID_ALPHABET) for i in ids)
    assert rc.meteor_id("user", "x") == rc.meteor_id("user", "x") != rc.meteor_id("room", "x")


def test_names_rocketchat_refuses_are_renamed_without_collisions() -> None:
    book = rc.NameBook()
    assert rc.name_for(book, "user", "1", "josé", rc.username("josé")) == ("jose", "changed")
    assert rc.name_for(book, "user", "2", "Jose", rc.username("Jose")) == ("jose-2", "collision")
    assert rc.name_for(book, "user", "3", "all", rc.username("all")) == ("all_user", "changed")
    assert rc.name_for(book, "user", "1", "josé", rc.username("josé")) == ("jose", "changed")
    assert rc.username("a b/c") == "a_b_c" and rc.NAME_OK.match(rc.room_name("Ünïcode räum"))
    assert rc.reaction_key("thumbsup::skin-tone-3") == ":thumbsup_tone2:"


def test_the_lock_keeps_a_second_run_out(rc_url: str) -> None:
    first, second = target_for(rc_url), target_for(rc_url)
    try:
        assert isinstance(first, RocketChat)
        with first.lock(), pytest.raises(Locked), second.lock():
            pass
        with second.lock():
            pass
    finally:
        first.close()
        second.close()


def test_long_text_is_split_and_checks_report_names(rc_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.targets.helpers import RecordSource

    t0 = datetime(2023, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    text = ("word " * 2_400).strip()  # 11,999 characters: three parts
    records = [User(id="u1", source="t", source_id="1", username="Zoë Smith", email="z@example.com"),
               Channel(id="c1", source="t", source_id="C", team_id=None, name="Général", kind="public",
                       member_ids=("u1",)),
               Message(id="m1", source="t", source_id="m1", channel_id="c1", user_id="u1", created_at=t0, text=text)]
    target = target_for(rc_url)
    try:
        result = pipeline.run(RecordSource(lambda: iter(records)), target,
                              pipeline.RunOptions("migrate", "synth", progress=False))
        db = target.db  # type: ignore[attr-defined]
        parts = list(db.rocketchat_message.find({}).sort("ts", 1))
        assert [len(p["msg"]) <= rc.MAX_MESSAGE for p in parts] == [True, True, True]
        assert "".join(p["msg"] for p in parts) == text
        assert parts[0]["tcount"] == 2 and all(p["tmid"] == parts[0]["_id"] for p in parts[1:])
        assert db.users.find_one({})["username"] == "Zoe_Smith"
        assert db.rocketchat_room.find_one({})["name"] == "General"
    finally:
        target.close()
    assert {"CM301", "CM303"} <= set(result.sink.counts)


@pytest.mark.timeout(180)
def test_a_later_run_updates_many_documents_and_old_threads(rc_url: str) -> None:
    """More updates than FerretDB can hold in one command (it deadlocks at ~100), and a reply that
    arrives in a later run (as a sync brings it) without its root: the validator loads it top-level
    with props.orphan_of, the target puts it back in its thread and counts it on the old root."""
    from datetime import UTC, datetime, timedelta

    from tests.targets.helpers import RecordSource

    t0 = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    people = [f"u{n}" for n in range(130)]

    def users(label: str) -> list[Any]:
        return [User(id=u, source="t", source_id=u, username=u, display_name=f"{label} {u}") for u in people]

    channel = Channel(id="c1", source="t", source_id="C", team_id=None, name="general", kind="public",
                      member_ids=tuple(people))
    root = Message(id="m1", source="t", source_id="m1", channel_id="c1", user_id="u1", created_at=t0, text="root")
    reply = Message(id="m2", source="t", source_id="m2", channel_id="c1", user_id="u2",
                    created_at=t0 + timedelta(minutes=1), text="first reply", thread_root_id="m1")
    later = Message(id="m3", source="t", source_id="m3", channel_id="c1", user_id="u3",
                    created_at=t0 + timedelta(minutes=2), text="later reply", thread_root_id="m1")

    def run(records: list[Any]) -> pipeline.RunResult:
        target = target_for(rc_url)
        try:
            return pipeline.run(RecordSource(lambda: iter(records)), target,
                                pipeline.RunOptions("migrate", "synth", progress=False))
        finally:
            target.close()

    run([*users("Old"), channel, root, reply])
    second = run([*users("New"), channel, later])
    assert second.rows_written >= 130
    target = target_for(rc_url)
    try:
        db = target.db  # type: ignore[attr-defined]
        assert db.users.count_documents({"name": {"$regex": "^New "}}) == 130
        top = db.rocketchat_message.find_one({"_id": rc.meteor_id("message", "m1")})
        assert top["tcount"] == 2 and top["tlm"] == later.created_at
        assert set(top["replies"]) == {rc.meteor_id("user", "u2"), rc.meteor_id("user", "u3")}
        room = db.rocketchat_room.find_one({})
        assert room["msgs"] == 3 and room["lastMessage"]["_id"] == rc.meteor_id("message", "m1")
    finally:
        target.close()
    _invariants(rc_url)


def test_a_room_whose_messages_come_back_later_in_the_stream(rc_url: str) -> None:
    """A source that does not group messages by channel (c1, c2, then c1 again): nothing is lost and
    the counters cover both groups."""
    from datetime import UTC, datetime, timedelta

    from tests.targets.helpers import RecordSource

    t0 = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    records: list[Any] = [User(id="u1", source="t", source_id="u1", username="ann"),
                          *(Channel(id=c, source="t", source_id=c, team_id=None, name=c, kind="public",
                                    member_ids=("u1",)) for c in ("c1", "c2"))]
    for n, channel in enumerate(("c1", "c2", "c1", "c1")):
        records.append(Message(id=f"m{n}", source="t", source_id=f"m{n}", channel_id=channel, user_id="u1",
                               created_at=t0 + timedelta(minutes=n), text=f"message {n}"))
    target = target_for(rc_url)
    try:
        pipeline.run(RecordSource(lambda: iter(records)), target, pipeline.RunOptions("migrate", "s", progress=False))
        db = target.db  # type: ignore[attr-defined]
        assert db.rocketchat_message.count_documents({}) == 4
        room = db.rocketchat_room.find_one({"name": "c1"})
        assert room["msgs"] == 3 and room["lastMessage"]["msg"] == "message 3"
    finally:
        target.close()
    _invariants(rc_url)
