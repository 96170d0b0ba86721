"""The Rocket.Chat mongodump extractor on samples/rocketchat, on bad dumps built from the same data, and
on the real third-party dumps in ../shared/realdata/rocketchat."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import bson
import orjson
import pytest
from bson import ObjectId, json_util
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmigrate.errors import InputError
from chatmigrate.extractors.rocketchat_dump import RocketchatDump
from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Skipped, Unreadable, User

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "rocketchat"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rc_make_sample", SAMPLES / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def rid(kind: str, native: str) -> str:
    return record_id("rocketchat", "rocketchat", kind, native)


def read(location: Path | str, **options: str) -> list[Item]:
    return list(RocketchatDump(str(location), options).records())


def by_type(items: list[Item]) -> Counter[str]:
    return Counter(type(i).__name__ for i in items)


def messages(items: list[Item]) -> dict[str, Message]:
    return {m.source_id: m for m in items if isinstance(m, Message)}


@pytest.fixture(scope="module")
def sample() -> list[Item]:
    return read(SAMPLES / "dump")


def test_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    gen.write_dump(tmp_path, gen.collections())
    for path in sorted((SAMPLES / "dump" / "rocketchat").iterdir()):
        assert (tmp_path / "rocketchat" / path.name).read_bytes() == path.read_bytes(), path.name


def test_detects_the_dump_folder_and_the_database_folder(samples: Path) -> None:
    assert RocketchatDump.detect(str(samples / "rocketchat" / "dump"))
    assert RocketchatDump.detect(str(samples / "rocketchat" / "dump" / "rocketchat"))
    assert not RocketchatDump.detect(str(samples / "rocketchat"))  # two levels up: not a dump
    assert not RocketchatDump.detect(str(samples / "slack"))
    assert not RocketchatDump.detect("/no/such/place")
    # Both ways of pointing at it read the same records.
    assert read(samples / "rocketchat" / "dump" / "rocketchat") == read(samples / "rocketchat" / "dump")


def test_sample_counts_per_kind(sample: list[Item]) -> None:
    docs = gen.collections()
    live = [m for m in docs["rocketchat_message"] if not m.get("_hidden")]
    livechat = [m for m in live if m["rid"] == "LiveChat000000001"]
    trashed = [d for d in docs["rocketchat__trash"] if d["__collection__"] == "message"]
    counts = by_type(sample)
    assert counts["User"] == len(docs["users"]) == 7
    # Every room but livechat, plus the deleted room from the trash.
    assert counts["Channel"] == len(docs["rocketchat_room"]) - 1 + 1 == 9
    assert counts["Emoji"] == 1
    assert counts["Message"] == len(live) - len(livechat) + len(trashed) == 30
    assert counts["Checkpoint"] == counts["Channel"]
    assert counts["Unreadable"] == 0
    skipped = Counter(s.record_kind for s in sample if isinstance(s, Skipped))
    # livechat room + its message, an upload no message carries, the reaction by an unknown username,
    # the trashed subscription.
    assert skipped == {"channels": 1, "messages": 1, "files": 1, "reactions": 1, "other": 1}
    reasons = " ".join(s.reason for s in sample if isinstance(s, Skipped))
    assert "livechat" in reasons and "UpL0adOrphan00004" in reasons and "'subscription'" in reasons


def test_cursors_are_iso_times_of_the_newest_change(sample: list[Item]) -> None:
    # Stream order and one checkpoint per channel: tests/sources/test_conformance.py. Here: the cursor
    # is the time form the REST API's chat.syncMessages takes, so an API sync continues from a dump load.
    newest: dict[str, Any] = {}
    for item in sample:
        if isinstance(item, Message):
            newest[item.channel_id] = max(newest.get(item.channel_id, item.created_at), item.created_at)
    for checkpoint in (c for c in sample if isinstance(c, Checkpoint) and c.channel_id in newest):
        assert checkpoint.cursor >= newest[checkpoint.channel_id].strftime("%Y-%m-%dT%H:%M:%S")
        assert checkpoint.cursor.endswith("Z")


def test_users_bots_deactivated_emails_and_no_credentials(sample: list[Item]) -> None:
    users = {u.username: u for u in sample if isinstance(u, User)}
    assert users["rocket.cat"].is_bot and users["helper.bot"].is_bot and not users["bob"].is_bot
    assert users["dave"].is_deleted and not users["bob"].is_deleted
    assert users["carol"].email is None and users["admin"].email == "ada@example.org"
    assert users["admin"].role == "admin" and users["eve"].role == "guest" and users["bob"].role == "member"
    assert users["admin"].props["roles"] == ["user", "admin"]
    assert users["admin"].props["login_services"] == ["password", "resume"]
    # The ObjectId user id is its 24-hex text in the id.
    assert users["eve"].source_id == "65e1a0b0c0ffee0000000e0e"
    assert users["eve"].id == rid("user", "65e1a0b0c0ffee0000000e0e")
    everything = orjson.dumps([getattr(i, "props", None) for i in sample], default=str).decode()
    for secret in ("$2b$10$", "c2VjcmV0LXRva2Vu", "bcrypt", "hashedToken", "loginTokens"):
        assert secret not in everything


def test_channel_kinds_members_and_discussions(sample: list[Item]) -> None:
    channels = {c.source_id: c for c in sample if isinstance(c, Channel)}
    assert channels["GENERAL"].kind == "public" and channels["DevRoom0000000001"].kind == "private"
    dm = channels["B0bUser0000000002aDm1nUser0000001a"]
    assert dm.kind == "direct" and set(dm.member_ids) == {rid("user", "aDm1nUser0000001a"),
                                                           rid("user", "B0bUser0000000002")}
    group = channels["GroupDm0000000001"]
    assert group.kind == "group" and len(group.member_ids) == 3
    assert len(channels["GENERAL"].member_ids) == 5
    assert rid("user", "65e1a0b0c0ffee0000000e0e") in channels["GENERAL"].member_ids
    discussion = channels["Discuss0000000001"]
    assert discussion.props["parent_channel_id"] == channels["GENERAL"].id and discussion.props["discussion"]
    assert discussion.display_name == "Release plan" and discussion.name == "release-plan"
    assert channels["OldRoom0000000001"].archived_at is not None
    assert channels["E2eRoom0000000001"].props["encrypted"] is True
    assert channels["65e1a0b0c0ffee00000000aa"].id == rid("channel", "65e1a0b0c0ffee00000000aa")
    assert channels["GoneRoom000000001"].props["deleted_at"].isoformat() == "2024-03-01T10:35:00+00:00"
    assert "LiveChat000000001" not in channels
    started = messages(sample)["DiscStart00000001"]
    assert started.kind == "system_discussion_created"
    assert started.props["discussion_channel_id"] == discussion.id


def test_threads_root_first_tshow_and_replies(sample: list[Item]) -> None:
    msgs = messages(sample)
    root = msgs["ThreadRoot0000001"]
    replies = [msgs[f"ThreadReply00000{n}"] for n in (1, 2, 3)]
    assert all(r.thread_root_id == root.id for r in replies)
    assert root.thread_root_id is None and root.props["thread_reply_count"] == 3
    assert replies[1].props["tshow"] is True and "tshow" not in replies[0].props
    order = [m.source_id for m in sample if isinstance(m, Message)]
    assert order.index("ThreadRoot0000001") < order.index("ThreadReply000001")
    # The reply by a deleted user keeps its author id (the validator makes a placeholder user).
    assert replies[2].user_id == rid("user", "Gh0stUser00000009")
    assert msgs["DiscMsg0000000002"].thread_root_id == msgs["DiscMsg0000000001"].id


def test_reactions_resolved_by_username_and_unresolved_kept(sample: list[Item]) -> None:
    root = messages(sample)["ThreadRoot0000001"]
    pairs = {(r.emoji, r.user_id) for r in root.reactions}
    assert pairs == {("thumbsup", rid("user", "B0bUser0000000002")), ("thumbsup", rid("user", "CaroLUser00000003")),
                     # ghost is gone from `users` but authored a message: resolved through that.
                     ("thumbsup", rid("user", "Gh0stUser00000009"))}
    assert root.props["unresolved_reactions"] == [{"emoji": "tada", "username": "vanished"}]
    skipped = [s for s in sample if isinstance(s, Skipped) and s.record_kind == "reactions"]
    assert len(skipped) == 1 and "vanished" in skipped[0].reason and skipped[0].raw["message_id"] == root.id
    assert {r.emoji for r in messages(sample)["DevMsg00000000002"].reactions} == {"+1"}


def test_edit_history_folded_into_the_current_message(sample: list[Item]) -> None:
    msgs = messages(sample)
    assert "HiddenRev00000001" not in msgs and "HiddenRev00000002" not in msgs
    edited = msgs["EditedMsg00000001"]
    assert edited.edited_at is not None and edited.props["edited_by"] == rid("user", "B0bUser0000000002")
    history = edited.props["edit_history"]
    assert [h["text"] for h in history] == ["Meeting at 9:00", "Meeting at 10:00"]
    assert [h["source_id"] for h in history] == ["HiddenRev00000001", "HiddenRev00000002"]
    assert edited.text == "Meeting at **11:00** (final)"
    assert edited.props["source_text"] == "Meeting at *11:00* (final)"


def test_deletions_from_the_trash(sample: list[Item]) -> None:
    msgs = messages(sample)
    deleted = msgs["Deleted0000000001"]
    assert deleted.deleted_at is not None and deleted.deleted_at.isoformat() == "2024-03-01T10:46:00+00:00"
    assert deleted.channel_id == rid("channel", "GENERAL") and deleted.props["deleted_from"] == "rocketchat__trash"
    assert msgs["GoneMsg0000000001"].channel_id == rid("channel", "GoneRoom000000001")
    assert [m for m in msgs.values() if m.deleted_at] == [deleted, msgs["GoneMsg0000000001"]]


def test_system_messages_ids_and_kinds(sample: list[Item]) -> None:
    msgs = messages(sample)
    kinds = {m.kind for m in msgs.values()}
    assert {"system_join", "system_add", "system_remove", "system_leave", "system_topic",
            "system_pin", "bot", "encrypted", "normal"} <= kinds
    assert msgs["65e1a0b0c0ffee0000000103"].text == "Release week"
    # A real ObjectId _id becomes its hex text, so the id is the one a string id would give.
    oid = msgs[str(ObjectId("65e1a0b0c0ffee0000000107"))]
    assert oid.id == rid("message", "65e1a0b0c0ffee0000000107") and oid.text == "hello from @eve to @all and @here"
    assert "source_text" not in oid.props
    e2e = msgs["E2eMsg00000000001"]
    assert e2e.text == "" and e2e.props["e2e_ciphertext"].startswith("kEy-1")
    bot = msgs["BotPost0000000001"]
    assert bot.props["alias"] == "CI" and bot.text == "Build **green** [build 17](https://ci.example.org/b/17)"
    assert msgs["ThreadRoot0000001"].is_pinned and msgs["ThreadRoot0000001"].props["pinned_by"] == rid(
        "user", "aDm1nUser0000001a")
    assert msgs["ThreadRoot0000001"].text.startswith("Shall we release on **Friday**? See ~dev and ~~not strike~~")


def test_files_with_and_without_bytes(sample: list[Item]) -> None:
    msgs = messages(sample)
    (report,) = msgs["FileMsg0000000001"].files
    assert report.id == rid("file", "UpL0adGridFs00001") and report.name == "report.txt"
    assert report.size == len(gen.REPORT_BYTES) and report.sha256 == hashlib.sha256(gen.REPORT_BYTES).hexdigest()
    assert report.mime_type == "text/plain" and report.props["store"] == "GridFS:Uploads"
    assert msgs["FileMsg0000000001"].props["thumbnail_file_ids"] == [rid("file", "UpL0adThumb000003")]
    (photo,) = msgs["FileMsg0000000002"].files
    assert photo.sha256 is None and photo.size == 2048 and "FileSystem:Uploads" in photo.props["bytes"]
    (emoji,) = [e for e in sample if isinstance(e, Emoji)]
    assert emoji.name == "party_parrot" and emoji.props["aliases"] == ["parrot"]
    assert emoji.file is not None and emoji.file.sha256 == hashlib.sha256(gen.EMOJI_BYTES).hexdigest()


def test_scope_option_changes_every_id(samples: Path) -> None:
    items = read(samples / "rocketchat" / "dump", scope="acme")
    user = next(u for u in items if isinstance(u, User) and u.username == "bob")
    assert user.id == record_id("rocketchat", "acme", "user", "B0bUser0000000002")
    assert all(c.scope == "acme" for c in items if isinstance(c, Checkpoint))


def test_gzipped_dump_reads_the_same(tmp_path: Path, sample: list[Item]) -> None:
    database = tmp_path / "dump" / "rocketchat"
    database.mkdir(parents=True)
    for path in (SAMPLES / "dump" / "rocketchat").iterdir():
        if path.suffix == ".bson":
            (database / (path.name + ".gz")).write_bytes(gzip.compress(path.read_bytes()))
        else:
            shutil.copy(path, database / path.name)
    items = read(tmp_path / "dump")
    assert items == sample
    assert [str(i.origin).replace(".gz", "") for i in items if isinstance(i, Message)] == [
        str(i.origin) for i in sample if isinstance(i, Message)]


# -------------------------------------------------------------------------------- bad input

def write_variant(tmp_path: Path, change: Any) -> Path:
    docs = gen.collections()
    change(docs)
    gen.write_dump(tmp_path / "dump", docs)
    return tmp_path / "dump"


def _rest_unreadable(items: list[Item]) -> Unreadable:
    """The one "rest of the file" reject of a broken collection (an export file, not a record)."""
    (rest,) = [u for u in items if isinstance(u, Unreadable) and u.record_kind == "export_files"]
    assert rest.code == "CM001"
    return rest


def test_truncated_bson_loads_what_is_readable_and_rejects_the_rest_at_its_offset(tmp_path: Path) -> None:
    dump = write_variant(tmp_path, lambda docs: None)
    path = dump / "rocketchat" / "rocketchat_message.bson"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    items = read(dump)  # no InputError: users, rooms and every whole message still come
    # The last document starts at the offset reported.
    last = data.rfind(gen.bson.encode(gen.collections()["rocketchat_message"][-1]))
    rest = _rest_unreadable(items)
    assert str(rest.origin) == f"rocketchat/rocketchat_message.bson:{last}" and "truncated" in rest.reason
    assert rest.raw == {"file": "rocketchat/rocketchat_message.bson", "offset": last}
    assert by_type(items)["Message"] == by_type(read(SAMPLES / "dump"))["Message"] - 1
    assert by_type(items)["Checkpoint"] == by_type(items)["Channel"]


def test_impossible_length_field_rejects_the_rest_of_the_file(tmp_path: Path) -> None:
    dump = write_variant(tmp_path, lambda docs: None)
    path = dump / "rocketchat" / "users.bson"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"\xff\xff\xff\x7f garbage")
    items = read(dump)
    rest = _rest_unreadable(items)
    assert str(rest.origin) == f"rocketchat/users.bson:{size}" and "not a BSON document" in rest.reason
    assert by_type(items)["User"] == by_type(read(SAMPLES / "dump"))["User"]


def test_truncated_gzip_rejects_the_rest_and_keeps_what_inflates(tmp_path: Path) -> None:
    dump = write_variant(tmp_path, lambda docs: None)
    path = dump / "rocketchat" / "rocketchat_message.bson"
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes())[:-40])
    path.unlink()
    items = read(dump)
    rest = _rest_unreadable(items)
    assert rest.origin is not None and rest.origin.file == "rocketchat/rocketchat_message.bson.gz"
    assert by_type(items)["Message"] > 0


def test_undecodable_document_with_intact_framing_is_unreadable(tmp_path: Path) -> None:
    dump = write_variant(tmp_path, lambda docs: None)
    path = dump / "rocketchat" / "rocketchat_message.bson"
    # A 12-byte "document" whose element type 0x77 does not exist.
    path.write_bytes(path.read_bytes() + b"\x0c\x00\x00\x00\x77ab\x00\x01\x00\x00\x00")
    items = read(dump)
    (bad,) = [u for u in items if isinstance(u, Unreadable)]
    assert bad.code == "CM001" and bad.record_kind == "messages"
    assert str(bad.origin).startswith("rocketchat/rocketchat_message.bson:")
    assert by_type(items)["Message"] == 30


def test_message_in_unknown_room_and_missing_ids_are_unreadable(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        base = gen.collections()["rocketchat_message"][0]
        docs["rocketchat_message"].append({**base, "_id": "Nowhere0000000001", "rid": "NoSuchRoom0000001"})
        docs["rocketchat_message"].append({k: v for k, v in base.items() if k != "_id"})
        docs["rocketchat_message"].append({k: v for k, v in base.items() if k != "rid"} | {"_id": "NoRid000000000001"})
        docs["rocketchat_message"].append({**base, "_id": "NoTime00000000001", "ts": "yesterday"})
        docs["users"].append({"username": "noid", "services": {"password": {"bcrypt": "$2b$10$secret"}}})
        docs["rocketchat_room"].append({"t": "c", "name": "noid-room"})

    items = read(write_variant(tmp_path, change))
    bad = {(u.record_kind, u.code): u for u in items if isinstance(u, Unreadable)}
    assert set(bad) == {("messages", "CM005"), ("messages", "CM002"), ("messages", "CM004"),
                        ("users", "CM002"), ("channels", "CM002")}
    unknown = [u for u in items if isinstance(u, Unreadable) and u.code == "CM005"]
    assert {u.raw.get("_id") for u in unknown} == {"Nowhere0000000001", "NoRid000000000001"}
    assert "NoSuchRoom0000001" in " ".join(u.reason for u in unknown)
    assert "bcrypt" not in json.dumps(bad[("users", "CM002")].raw)
    assert by_type(items)["Message"] == 30


def test_unknown_room_type_is_unreadable_with_its_messages(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        docs["rocketchat_room"].append({"_id": "Weird000000000001", "t": "x", "name": "weird"})
        docs["rocketchat_message"].append({**docs["rocketchat_message"][0], "_id": "WeirdMsg000000001",
                                           "rid": "Weird000000000001"})

    items = read(write_variant(tmp_path, change))
    bad = [u for u in items if isinstance(u, Unreadable)]
    assert [(u.record_kind, u.code) for u in bad] == [("channels", "CM006"), ("messages", "CM005")]
    assert "t='x'" in bad[0].reason and "Weird000000000001" in bad[1].reason


def test_reply_whose_root_is_missing_keeps_the_computed_root_id(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        docs["rocketchat_message"].append({**docs["rocketchat_message"][0], "_id": "Orphan00000000001",
                                           "t": None, "msg": "reply to nothing", "tmid": "MissingRoot000001"})

    msgs = messages(read(write_variant(tmp_path, change)))
    assert msgs["Orphan00000000001"].thread_root_id == rid("message", "MissingRoot000001")


def test_reply_older_than_its_root_still_follows_it(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        for doc in docs["rocketchat_message"]:
            if doc["_id"] == "ThreadReply000001":
                doc["ts"] = gen.at(50)  # an hour before its root (clock skew, imports)

    order = [m.source_id for m in read(write_variant(tmp_path, change)) if isinstance(m, Message)]
    assert order.index("ThreadRoot0000001") < order.index("ThreadReply000001")


def test_orphan_edit_history_copy_is_unreadable(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        docs["rocketchat_message"].append({**docs["rocketchat_message"][0], "_id": "OrphanRev00000001",
                                           "_hidden": True, "parent": "NeverExisted00001"})

    items = read(write_variant(tmp_path, change))
    (bad,) = [u for u in items if isinstance(u, Unreadable)]
    assert bad.code == "CM005" and "NeverExisted00001" in bad.reason


def test_gridfs_gap_is_recorded_not_hashed(tmp_path: Path) -> None:
    def change(docs: dict[str, list[dict[str, Any]]]) -> None:
        docs["rocketchat_uploads.chunks"] = [c for c in docs["rocketchat_uploads.chunks"] if c["n"] != 1]

    (report,) = messages(read(write_variant(tmp_path, change)))["FileMsg0000000001"].files
    assert report.sha256 is None and "missing" in report.props["bytes"]


def test_not_a_dump_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no Rocket\.Chat collections"):
        RocketchatDump(str(tmp_path))
    with pytest.raises(InputError, match="no such file"):
        RocketchatDump(str(tmp_path / "absent"))


# -------------------------------------------------------------------------------- real dumps

REAL = {
    "TFC": "TFC/dump",
    "local-dev-env": "local-dev-env/dumps/mongodb/dump",
    "mse1h2025-rocket0": "mse1h2025-rocket0/dump",
}


def real(realdata: Path, name: str) -> list[Item]:
    return read(realdata / "rocketchat" / REAL[name])


@pytest.mark.parametrize(("name", "expected"), [
    ("TFC", {"User": 4, "Channel": 2, "Message": 39, "Checkpoint": 2}),
    ("local-dev-env", {"User": 4, "Channel": 1, "Message": 3, "Checkpoint": 1}),
    ("mse1h2025-rocket0", {"User": 7, "Channel": 7, "Message": 23, "Checkpoint": 7}),
])
def test_real_dump_counts(realdata: Path, name: str, expected: dict[str, int]) -> None:
    assert dict(by_type(real(realdata, name))) == expected


def test_real_tfc_history_only_in_the_trash(realdata: Path) -> None:
    items = real(realdata, "TFC")
    msgs = [m for m in items if isinstance(m, Message)]
    assert all(m.deleted_at is not None and m.props["deleted_from"] == "rocketchat__trash" for m in msgs)
    assert Counter(m.kind for m in msgs)["system_join"] == 3
    dm = next(c for c in items if isinstance(c, Channel) and c.kind == "direct")
    assert {m.channel_id for m in msgs} <= {c.id for c in items if isinstance(c, Channel)}
    assert dm.name == "rasa_bot__root"
    users = {u.username: u for u in items if isinstance(u, User)}
    assert users["rocket.cat"].is_bot and users["rasa_bot"].is_bot and not users["root"].is_bot
    written = orjson.dumps([u.props for u in users.values()], default=str).decode()
    # PROVENANCE: the credential values were replaced by "REDACTED" (structure kept); none may come through.
    assert "REDACTED" not in written and "hashedToken" not in written and "bcrypt" not in written


def test_real_mse_threads_reactions_edits_and_trash(realdata: Path) -> None:
    items = real(realdata, "mse1h2025-rocket0")
    msgs = messages(items)
    root = msgs["a9YnbrxD8wKG2ZYN5"]
    assert msgs["8aNNrNJutRaoMkE8u"].thread_root_id == root.id
    assert msgs["u69XABMSozqkwo7Wd"].thread_root_id == root.id
    assert {r.emoji for r in root.reactions} == {"no_mouth", "worried"}
    raw = list(bson.decode_file_iter((realdata / "rocketchat" / REAL["mse1h2025-rocket0"] / "rocketchat" /
                                      "rocketchat_message.bson").open("rb")))
    given = sum(len(v["usernames"]) for doc in raw for v in doc.get("reactions", {}).values())
    assert sum(len(m.reactions) for m in msgs.values()) == given == 8
    assert sum(1 for m in msgs.values() if m.edited_at) == 6
    assert sum(1 for m in msgs.values() if m.deleted_at) == 4  # the trashed `au` messages
    assert all(not m.props.get("unresolved_reactions") for m in msgs.values())
    kinds = {c.source_id: c.kind for c in items if isinstance(c, Channel)}
    assert kinds["GENERAL"] == "private" and Counter(kinds.values()) == {"private": 3, "public": 2, "direct": 2}
    # 24-hex string ids (system messages) and 17-char ids live side by side.
    assert msgs["67c71c0d27b45fa333960cc7"].kind == "system_join"
    assert msgs["ThikAYhyG54Cz3oCP"].text.startswith("**Update your Rocket.Chat**")


def test_real_local_dev_env_joins(realdata: Path) -> None:
    msgs = messages(real(realdata, "local-dev-env"))
    assert {m.kind for m in msgs.values()} == {"system_join"}
    assert all(m.channel_id == rid("channel", "GENERAL") for m in msgs.values())


# -------------------------------------------------------------------------------- mongoexport JSON

def write_export(folder: Path, docs: dict[str, list[dict[str, Any]]], options: Any) -> Path:
    """What `mongoexport --collection=<name> --out=<name>.json` writes: Extended JSON, one document a line."""
    database = folder / "rocketchat"
    database.mkdir(parents=True)
    for name, documents in docs.items():
        (database / f"{name}.json").write_text(
            "".join(json_util.dumps(d, json_options=options) + "\n" for d in documents))
    return folder


@pytest.mark.parametrize("options", [json_util.RELAXED_JSON_OPTIONS, json_util.CANONICAL_JSON_OPTIONS],
                         ids=["relaxed", "canonical"])
def test_mongoexport_json_reads_like_the_dump(tmp_path: Path, sample: list[Item], options: Any) -> None:
    export = write_export(tmp_path, gen.collections(), options)
    assert RocketchatDump.detect(str(export))
    assert read(export) == sample


def test_mongoexport_origins_are_line_numbers(tmp_path: Path) -> None:
    docs = gen.collections()
    base = docs["rocketchat_message"][-1]
    docs["rocketchat_message"] += [{**base, "_id": f"Extra{n:012d}", "ts": gen.at(300 + n)} for n in range(60)]
    export = write_export(tmp_path, docs, json_util.RELAXED_JSON_OPTIONS)
    lines = (export / "rocketchat" / "rocketchat_message.json").read_text().splitlines()
    where = {str(json_util.loads(line)["_id"]): n for n, line in enumerate(lines, start=1)}
    msgs = [m for m in read(export) if isinstance(m, Message) and m.props.get("deleted_from") is None]
    assert len(msgs) == 28 + 60
    for message in msgs:
        assert message.origin is not None and message.origin.file == "rocketchat/rocketchat_message.json"
        assert message.origin.line == where[message.source_id], message.source_id


def test_mongoexport_bad_line_is_unreadable_and_arrays_are_refused(tmp_path: Path) -> None:
    export = write_export(tmp_path / "a", gen.collections(), json_util.RELAXED_JSON_OPTIONS)
    path = export / "rocketchat" / "rocketchat_message.json"
    path.write_text(path.read_text() + '{"_id": "Cut", "rid": "GENERAL", "ts": {"$da\n')
    bad = [u for u in read(export) if isinstance(u, Unreadable)]
    assert len(bad) == 1 and bad[0].code == "CM001"
    last_line = len(gen.collections()["rocketchat_message"]) + 1
    assert str(bad[0].origin) == f"rocketchat/rocketchat_message.json:{last_line}"
    export = write_export(tmp_path / "b", gen.collections(), json_util.RELAXED_JSON_OPTIONS)
    users = export / "rocketchat" / "users.json"
    users.write_text("[" + ",".join(users.read_text().splitlines()) + "]\n")
    with pytest.raises(InputError, match=r"users\.json:1: a JSON array"):
        read(export)


# -------------------------------------------------------------------------------- malformed input, at random

MESSAGE_BYTES = (SAMPLES / "dump" / "rocketchat" / "rocketchat_message.bson").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(MESSAGE_BYTES)),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=len(MESSAGE_BYTES) - 1),
                                st.integers(min_value=0, max_value=255)), max_size=4))
def test_damaged_message_file_gives_an_error_or_records_never_a_crash(
        tmp_path_factory: pytest.TempPathFactory, cut: int, flips: list[tuple[int, int]]) -> None:
    dump = tmp_path_factory.mktemp("damaged") / "dump"
    shutil.copytree(SAMPLES / "dump", dump)
    data = bytearray(MESSAGE_BYTES)
    for position, value in flips:
        data[position] = value
    (dump / "rocketchat" / "rocketchat_message.bson").write_bytes(bytes(data[:cut]))
    try:
        items = read(dump)
    except InputError as exc:
        assert exc.location is not None and exc.location.startswith("rocketchat/rocketchat_message.bson:")
        return
    # Whatever was read is accounted for: every message document became a record, a reject or a skip.
    kinds = Counter(type(i).__name__ for i in items)
    assert kinds["Checkpoint"] == kinds["Channel"]
    for item in items:
        if isinstance(item, Unreadable):
            assert item.origin is not None and item.reason
