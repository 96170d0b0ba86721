"""Mattermost bulk export: samples/mattermost in all three forms, every real export in ../shared/realdata,
identity rules, stream order, and every kind of bad input (a recorded reject or a clear error, never a drop)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from chatmigrate.errors import InputError
from chatmigrate.extractors import detect
from chatmigrate.extractors._mattermost import direct_names, post_key
from chatmigrate.extractors.mattermost_export import MattermostExport
from chatmigrate.ids import record_id
from chatmigrate.model import (
    Channel,
    Checkpoint,
    Emoji,
    Item,
    Message,
    Skipped,
    Team,
    Unreadable,
    User,
)

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "samples" / "mattermost"
ZIP, PLAIN = SAMPLE_DIR / "export.zip", SAMPLE_DIR / "export.jsonl"
REAL = "mattermost"
AWAT = "awat/test/dummy-mattermost-workspace-archive.zip"
ZULIP = "zulip/zerver/tests/fixtures"
V11 = f"{ZULIP}/mattermost_v11.1.0_fixtures/raw_mmctl_output/import.jsonl"
ZULIP_EXPORT = f"{ZULIP}/mattermost_fixtures/export.json"
ZULIP_GUEST = f"{ZULIP}/mattermost_fixtures/guestExport.json"
ZULIP_DIRECT = f"{ZULIP}/mattermost_fixtures/direct_channel/export.json"


def read(location: Path | str, **options: str) -> list[Item]:
    return list(MattermostExport(str(location), options).records())


def of(items: Iterable[Item], kind: type) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


def counts(items: list[Item]) -> dict[str, int]:
    """Records per kind, nested reactions/files included, plus rejects and skips."""
    result: Counter[str] = Counter()
    for item in items:
        if isinstance(item, (Team, User, Channel, Emoji, Message)):
            result[item.record_kind] += 1
        if isinstance(item, Message):
            result["reactions"] += len(item.reactions)
            result["files"] += len(item.files)
            result["replies"] += item.thread_root_id is not None
        if isinstance(item, Emoji) and item.file is not None:
            result["files"] += 1
        if isinstance(item, Unreadable):
            result[f"unreadable:{item.code}"] += 1
        if isinstance(item, Skipped):
            result[f"skipped:{item.record_kind}"] += 1
        if isinstance(item, Checkpoint):
            result["checkpoints"] += 1
    return dict(result)


def write_export(tmp_path: Path, lines: list[Any], name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


VERSION = {"type": "version", "version": 1}
TEAM = {"type": "team", "team": {"name": "t", "display_name": "T", "type": "O"}}
CHANNEL = {"type": "channel", "channel": {"team": "t", "name": "general", "display_name": "General", "type": "O"}}
USER = {"type": "user", "user": {"username": "ann", "email": "ann@example.test",
                                 "teams": [{"name": "t", "channels": [{"name": "general"}]}]}}


def post(message: str, create_at: int, user: str = "ann", **extra: Any) -> dict[str, Any]:
    return {"type": "post", "post": {"team": "t", "channel": "general", "user": user, "message": message,
                                     "create_at": create_at, **extra}}


# -- the sample ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample() -> list[Item]:
    return read(ZIP)


def test_detect_sample_forms_and_rejects_others(tmp_path: Path, samples: Path) -> None:
    assert MattermostExport.detect(str(ZIP))
    assert MattermostExport.detect(str(PLAIN))
    assert MattermostExport.detect(str(SAMPLE_DIR))
    assert detect(str(ZIP)) is MattermostExport
    assert not MattermostExport.detect(str(samples / "slack"))
    assert not MattermostExport.detect(str(tmp_path / "absent.jsonl"))
    (tmp_path / "array.json").write_text('[{"type": "version"}]')
    assert not MattermostExport.detect(str(tmp_path / "array.json"))
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 10)
    assert not MattermostExport.detect(str(tmp_path / "binary.bin"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("users.json", "[]")
    assert not MattermostExport.detect(str(tmp_path / "other.zip"))


def test_sample_counts(sample: list[Item]) -> None:
    assert counts(sample) == {
        "teams": 2, "users": 6, "channels": 7, "emoji": 2, "messages": 19, "replies": 4, "reactions": 3,
        # 3 message attachments + 2 emoji images
        "files": 5, "skipped:roles": 1, "skipped:schemes": 1, "checkpoints": 7,
    }


def test_plain_zip_and_folder_forms_give_the_same_records(sample: list[Item]) -> None:
    plain, folder = read(PLAIN), read(SAMPLE_DIR)
    kinds = (Team, User, Channel, Emoji, Message)
    records = [i for i in sample if isinstance(i, kinds)]
    assert [i for i in plain if isinstance(i, kinds)] == records
    assert [i for i in folder if isinstance(i, kinds)] == records
    assert [i for i in plain if isinstance(i, Checkpoint)] == [i for i in sample if isinstance(i, Checkpoint)]


def test_ids_follow_the_documented_keys(sample: list[Item]) -> None:
    messages = {m.source_id: m for m in of(sample, Message)}
    key = "acme/town-square/alice/1709287200000"
    assert messages[key].id == record_id("mattermost", "mattermost", "message", key)
    users = {u.username: u for u in of(sample, User)}
    assert users["alice"].id == record_id("mattermost", "mattermost", "user", "alice")
    assert all(m.user_id in {u.id for u in users.values()} for m in messages.values())


def test_scope_option_changes_every_id() -> None:
    default = {i.source_id: i.id for i in read(PLAIN) if isinstance(i, Message)}
    scoped = {i.source_id: i.id for i in read(PLAIN, scope="chat.example.com") if isinstance(i, Message)}
    assert default.keys() == scoped.keys()
    assert not set(default.values()) & set(scoped.values())


def test_threads_sorted_and_linked(sample: list[Item]) -> None:
    town = [m for m in of(sample, Message) if m.source_id.startswith("acme/town-square/")]
    root = next(m for m in town if m.text.startswith("Thread root"))
    replies = [m for m in town if m.thread_root_id == root.id]
    assert [r.text for r in replies] == ["Reply stamped before its root (clock skew)", "First reply (guest)",
                                         "Second reply"]
    position = {m.id: n for n, m in enumerate(town)}
    assert all(position[r.id] > position[root.id] for r in replies), "a reply came before its root"
    # Apart from the early-stamped reply, the channel is ascending by (created_at, id).
    rest = [m for m in town if not m.text.startswith("Reply stamped")]
    assert [(m.created_at, m.id) for m in rest] == sorted((m.created_at, m.id) for m in rest)
    assert all(r.source_id.startswith(root.source_id + "/") for r in replies)
    dm_reply = next(m for m in of(sample, Message) if m.text == "Hi Alice, a DM reply")
    assert dm_reply.thread_root_id == next(m.id for m in of(sample, Message) if m.text == "Hi Bob, a DM")


def test_same_key_posts_get_distinct_stable_ids(sample: list[Item]) -> None:
    twins = {m.text: m for m in of(sample, Message) if m.text.startswith("Same millisecond")}
    first, second = twins["Same millisecond, first"], twins["Same millisecond, second"]
    assert first.id != second.id
    assert first.source_id == "acme/town-square/bob/1709288400000"
    assert second.source_id == "acme/town-square/bob/1709288400000#1"
    assert post_key("acme/town-square", "Bob", 1709288400000, 1) == second.source_id


def test_reactions(sample: list[Item]) -> None:
    hello = next(m for m in of(sample, Message) if m.text.startswith("Hello"))
    users = {u.id: u.username for u in of(sample, User)}
    assert sorted((r.emoji, users[r.user_id]) for r in hello.reactions) == [("+1", "bob"), ("parrot", "carol")]
    assert all(r.created_at is not None and r.created_at > hello.created_at for r in hello.reactions)
    group = next(m for m in of(sample, Message) if m.text.startswith("Group hello"))
    assert [(r.emoji, users[r.user_id]) for r in group.reactions] == [("heart", "alice")]


def test_direct_and_group_channels(sample: list[Item]) -> None:
    users = {u.id: u.username for u in of(sample, User)}
    channels = {c.source_id: c for c in of(sample, Channel)}
    members = {key: sorted(users[m] for m in c.member_ids) for key, c in channels.items()}
    assert channels["direct:alice,bob"].kind == "direct"
    assert channels["direct:alice,bob"].topic == "old members shape"
    assert channels["direct:alice,bob,carol"].kind == "group"
    assert members["direct:alice,bob,carol"] == ["alice", "bob", "carol"]
    assert channels["direct:dave"].kind == "direct" and members["direct:dave"] == ["dave"]
    assert channels["direct:dave"].name == "dave__dave"
    assert channels["direct:bob,eve"].props == {"created_from": "direct_post"}
    assert all(channels[k].team_id is None for k in channels if k.startswith("direct:"))
    assert members["acme/town-square"] == ["alice", "bob", "carol", "eve"]
    assert members["acme/secret-plans"] == ["alice", "bob"]
    assert channels["acme/secret-plans"].kind == "private"
    assert channels["lab/old-experiments"].archived_at is not None
    assert direct_names(["Bob", "alice", "bob"]).key == "direct:alice,bob"


def test_attachments_read_from_the_zip(sample: list[Item]) -> None:
    post_files = next(m for m in of(sample, Message) if m.files).files
    by_name = {f.name: f for f in post_files}
    assert set(by_name) == {"diagram.png", "notes.txt", "lost-in-export.pdf"}
    with zipfile.ZipFile(ZIP) as archive:
        for name in ("diagram.png", "notes.txt"):
            data = archive.read(by_name[name].path)
            assert by_name[name].size == len(data)
            assert by_name[name].sha256 == hashlib.sha256(data).hexdigest()
    assert by_name["diagram.png"].mime_type == "image/png"
    assert by_name["lost-in-export.pdf"].props == {"missing": True}
    assert by_name["lost-in-export.pdf"].size is None and by_name["lost-in-export.pdf"].sha256 is None
    emoji = {e.name: e for e in of(sample, Emoji)}
    assert emoji["parrot"].file is not None and emoji["parrot"].file.size == 69
    assert emoji["ghost-emoji"].file is not None and emoji["ghost-emoji"].file.props == {"missing": True}


def test_flags_users_and_kinds(sample: list[Item]) -> None:
    users = {u.username: u for u in of(sample, User)}
    assert users["alice"].role == "admin"
    assert users["carol"].role == "guest"
    assert users["dave"].is_deleted and users["dave"].props["deleted_at"].startswith("2024-03-01T09:30")
    assert users["eve"].props["auth_service"] == "gitlab" and users["eve"].props["auth_data"] == "4242"
    assert users["buildbot"].is_bot and users["buildbot"].props["bot_owner"] == "alice"
    assert users["bob"].display_name == "bobby"
    assert all("password" not in u.props for u in users.values())
    messages = {m.text: m for m in of(sample, Message)}
    flagged = messages["Pinned, edited and flagged"]
    assert flagged.is_pinned and flagged.edited_at is not None and flagged.edited_at > flagged.created_at
    assert flagged.props["flagged_by"] == ["bob", "carol"]
    assert messages["eve joined the channel."].kind == "system_join"
    assert messages["eve joined the channel."].props["type"] == "system_join_channel"
    assert messages["/me whispers"].kind == "me"
    bot_post = messages["Build #42 passed ✅"]
    assert bot_post.kind == "bot" and bot_post.props["props"]["attachments"][0]["text"] == "all green"
    assert messages["Hello **world**! Grüße 👋 日本語 🎉"].created_at.isoformat() == "2024-03-01T10:00:00+00:00"


def test_markup_normalised_with_original_kept(sample: list[Item]) -> None:
    plan = next(m for m in of(sample, Message) if m.text.startswith("Plan A"))
    assert plan.text == "Plan A: @alice please review ~town-square"
    assert plan.props["source_text"] == "Plan A: @Alice please review ~Town-Square"
    untouched = [m for m in of(sample, Message) if m is not plan]
    assert all("source_text" not in m.props for m in untouched)


def test_every_line_is_accounted_for(sample: list[Item]) -> None:
    """Each non-blank line except the version line is the origin of at least one item."""
    lines = PLAIN.read_text(encoding="utf-8").splitlines()
    cited = {i.origin.line for i in sample if getattr(i, "origin", None) is not None}
    assert {n for n, line in enumerate(lines, 1) if line.strip()} - cited == {1}
    assert all(i.origin is not None for i in sample if not isinstance(i, Checkpoint))


# -- real exports ----------------------------------------------------------------------------------
EXPECTED_REAL = {
    # awat (older server, ~v5/6): 2000 posts + 914 replies; 24 channels; 25 direct_channel lines of which
    # two describe the same self-DM (user-1 twice): the earlier is reported as superseded.
    AWAT: {"teams": 2, "users": 20, "channels": 48, "messages": 2914, "replies": 914, "reactions": 712,
           "skipped:channels": 1, "checkpoints": 20},
    # Mattermost 11.1: 50 posts + 50 direct posts + 22 replies; 17 users + 3 bots; 4 channels + 79 DMs/GMs;
    # 23 role lines; 3 attachments, none of whose bytes were copied (missing).
    V11: {"teams": 1, "users": 20, "channels": 83, "messages": 122, "replies": 22, "reactions": 11, "files": 3,
          "skipped:roles": 23, "checkpoints": 31},
    # Zulip's hand-edited fixtures: JSONL despite the .json name. export.json holds a post whose channel
    # belongs to another team (gryffindor/slytherin-quidditch-team): rejected as CM005.
    ZULIP_EXPORT: {"teams": 2, "users": 5, "channels": 5, "emoji": 2, "files": 2, "messages": 20, "replies": 1,
                   "reactions": 9, "unreadable:CM005": 1, "checkpoints": 5},
    ZULIP_GUEST: {"teams": 2, "users": 6, "channels": 5, "emoji": 2, "files": 2, "messages": 21, "replies": 1,
                  "reactions": 9, "checkpoints": 5},
    ZULIP_DIRECT: {"teams": 1, "users": 4, "channels": 6, "messages": 11, "reactions": 1, "files": 2,
                   "checkpoints": 5},
}


@pytest.mark.parametrize("relative", list(EXPECTED_REAL))
def test_real_exports(realdata: Path, relative: str) -> None:
    path = realdata / REAL / relative
    assert MattermostExport.detect(str(path))
    items = read(path)
    got = {k: v for k, v in counts(items).items() if v}
    assert {k: got.get(k, 0) for k in EXPECTED_REAL[relative]} == EXPECTED_REAL[relative]
    # Nothing else was rejected or skipped.
    assert {k for k in got if k.startswith(("unreadable:", "skipped:"))} == {
        k for k in EXPECTED_REAL[relative] if k.startswith(("unreadable:", "skipped:"))}
    # Every line accounted for (the zip holds one JSONL member).
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read("import.jsonl").decode()
    else:
        text = path.read_text(encoding="utf-8")
    cited = {i.origin.line for i in items if getattr(i, "origin", None) is not None}
    assert {n for n, line in enumerate(text.splitlines(), 1) if line.strip()} - cited == {1}


def test_real_v11_shapes(realdata: Path) -> None:
    items = read(realdata / REAL / V11)
    channels = of(items, Channel)
    kinds = Counter(c.kind for c in channels)
    assert kinds == {"direct": 49, "group": 30, "public": 3, "private": 1}
    assert max(len(c.member_ids) for c in channels if c.kind == "group") == 5
    self_dms = [c for c in channels if c.kind == "direct" and len(c.member_ids) == 1]
    assert self_dms, "v11 export holds self-DMs (participants: the same user twice)"
    users = {u.username: u for u in of(items, User)}
    assert sum(u.is_bot for u in users.values()) == 3
    assert any(u.is_deleted and u.role == "guest" for u in users.values())
    messages = of(items, Message)
    assert sum(bool(m.props.get("flagged_by")) for m in messages) == 9
    assert {m.kind for m in messages} >= {"system_add", "system_join"}
    attached = [f for m in messages for f in m.files]
    assert len(attached) == 3 and all(f.props == {"missing": True} for f in attached)
    # Replies were exported unsorted; every reply follows its root in the stream.
    seen: set[str] = set()
    for message in messages:
        assert message.thread_root_id is None or message.thread_root_id in seen
        seen.add(message.id)


def test_real_zulip_undeclared_channel_names_the_other_team(realdata: Path) -> None:
    items = read(realdata / REAL / ZULIP_EXPORT)
    [reject] = of(items, Unreadable)
    assert reject.code == "CM005" and "slytherin" in reject.reason and reject.origin is not None
    assert reject.origin.line == 33
    guest = {u.username: u for u in of(read(realdata / REAL / ZULIP_GUEST), User)}
    assert any(u.role == "guest" for u in guest.values())


# -- bad input -------------------------------------------------------------------------------------
def test_missing_version_line_is_an_input_error(tmp_path: Path) -> None:
    path = write_export(tmp_path, [TEAM, VERSION])
    with pytest.raises(InputError, match=r"export\.jsonl:1: the first line must be the version line"):
        read(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="empty file"):
        read(empty)
    future = write_export(tmp_path, [{"type": "version", "version": 2}], "v2.jsonl")
    with pytest.raises(InputError, match="version 2 is not supported"):
        read(future)


def test_zip_without_a_bulk_file_is_an_input_error(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        archive.writestr("notes.jsonl", '{"type":"team"}\n')
    with pytest.raises(InputError, match="no bulk-export JSONL file"):
        read(tmp_path / "x.zip")


def test_broken_lines_are_rejected_and_the_run_goes_on(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        VERSION, TEAM, CHANNEL, USER,
        '{"type":"post","post":{"team":"t","channel":"general"',        # line 5: truncated JSON
        "not json at all",                                              # line 6
        {"type": "wiki_page", "wiki_page": {"title": "x"}},             # line 7: unknown type
        {"no_type": True},                                              # line 8
        {"type": "user", "user": {"email": "x@example.test"}},          # line 9: no username
        post("fine", 1700000000000),                                    # line 10
        {"type": "version", "version": 1},                              # line 11: repeated
    ])
    items = read(path)
    problems = {i.origin.line: i for i in items if isinstance(i, (Unreadable, Skipped))}
    assert problems[5].code == "CM001" and problems[5].record_kind == "messages"
    assert str(problems[5].origin) == "export.jsonl:5"
    assert problems[6].code == "CM001"
    assert isinstance(problems[7], Skipped) and "unknown line type 'wiki_page'" in problems[7].reason
    assert problems[8].code == "CM002"
    assert problems[9].code == "CM002" and problems[9].record_kind == "users"
    assert isinstance(problems[11], Skipped) and problems[11].record_kind == "version"
    assert [m.text for m in of(items, Message)] == ["fine"]


def test_posts_that_cannot_be_placed(tmp_path: Path) -> None:
    path = write_export(tmp_path, [
        VERSION, TEAM, CHANNEL, USER,
        {"type": "post", "post": {"team": "t", "channel": "nowhere", "user": "ann", "message": "lost",
                                  "create_at": 1700000000000, "replies": [{"user": "ann", "message": "r",
                                                                           "create_at": 1700000000001}]}},
        post("no time", 0, replies=[{"user": "ann", "message": "orphan", "create_at": 1700000000002}]),
        post("no user", 1700000000003, user=""),
        post("by a stranger", 1700000000004, user="ghost",
             reactions=[{"user": "ann", "emoji_name": ":smile:", "create_at": 1700000000005},
                        {"emoji_name": "x"}],
             attachments=[{"path": "../../etc/passwd"}, {"path": "/abs/file"}, {"path": "ok/file.txt"}, {}]),
    ])
    items = read(path)
    rejects = [(i.origin.line, i.code, i.record_kind) for i in of(items, Unreadable)]
    assert sorted(rejects) == sorted([
        (5, "CM005", "messages"), (5, "CM005", "messages"),      # the post and its reply
        (6, "CM004", "messages"), (6, "CM002", "messages"),      # bad create_at, and its reply
        (7, "CM002", "messages"),                                # no user
        (8, "CM002", "reactions"), (8, "CM003", "files"), (8, "CM003", "files"), (8, "CM002", "files"),
    ])
    [stranger] = of(items, Message)
    # Unknown author: the id is computed from the username, so the validator can make a placeholder.
    assert stranger.user_id == record_id("mattermost", "mattermost", "user", "ghost")
    assert stranger.props["username"] == "ghost"
    assert [r.emoji for r in stranger.reactions] == ["smile"]
    assert [(f.name, f.props) for f in stranger.files] == [("file.txt", {"missing": True})]


def test_oversized_line_is_rejected_without_reading_it_whole(tmp_path: Path) -> None:
    big = post("x" * 5000, 1700000000000)
    path = write_export(tmp_path, [VERSION, TEAM, CHANNEL, USER, big, post("after", 1700000000001)])
    items = read(path, max_line_bytes="1000")
    [reject] = of(items, Unreadable)
    assert reject.code == "CM001" and "longer than 1000 bytes" in reject.reason and reject.origin.line == 5
    assert len(reject.raw) <= 300
    assert [m.text for m in of(items, Message)] == ["after"]


def test_duplicate_names_last_line_wins_and_the_first_is_reported(tmp_path: Path) -> None:
    renamed = {"type": "user", "user": {**USER["user"], "first_name": "Annie"}}
    path = write_export(tmp_path, [VERSION, TEAM, CHANNEL, USER, renamed])
    items = read(path)
    [user] = of(items, User)
    assert user.first_name == "Annie" and user.origin.line == 5
    [skipped] = of(items, Skipped)
    assert skipped.origin.line == 4 and "superseded by line 5" in skipped.reason


def test_unpacked_export_folder_with_one_top_folder(tmp_path: Path) -> None:
    with zipfile.ZipFile(ZIP) as archive:
        archive.extractall(tmp_path / "unpacked" / "mattermost-export")
    folder = tmp_path / "unpacked"
    assert MattermostExport.detect(str(folder))
    items = read(folder)
    assert counts(items) == counts(read(ZIP))
    assert all(f.sha256 for m in of(items, Message) for f in m.files if not f.props.get("missing"))


def test_attachment_bytes_beside_a_plain_file_and_symlinks_refused(tmp_path: Path) -> None:
    (tmp_path / "data" / "in").mkdir(parents=True)
    (tmp_path / "data" / "in" / "a.txt").write_bytes(b"hello")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (tmp_path / "data" / "in" / "link.txt").symlink_to(tmp_path / "secret.txt")
    path = write_export(tmp_path, [VERSION, TEAM, CHANNEL, USER,
                                   post("files", 1700000000000, attachments=[{"path": "in/a.txt"},
                                                                             {"path": "in/link.txt"}])])
    [message] = of(read(path), Message)
    a, link = message.files
    assert (a.size, a.sha256, a.path) == (5, hashlib.sha256(b"hello").hexdigest(), "data/in/a.txt")
    assert link.props == {"missing": True} and link.sha256 is None


def test_zip_member_is_indexed_once_and_read_by_seeking(tmp_path: Path) -> None:
    """Posts of many channels interleaved in a zip: grouped by channel on output, nothing lost."""
    channels = [{"type": "channel", "channel": {"team": "t", "name": f"c{n}", "type": "O"}} for n in range(5)]
    posts = [{"type": "post", "post": {"team": "t", "channel": f"c{n % 5}", "user": "ann", "message": f"m{n}",
                                       "create_at": 1700000000000 + n}} for n in range(200)]
    lines = [VERSION, TEAM, *channels, USER, *posts]
    with zipfile.ZipFile(tmp_path / "e.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("import.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    items = read(tmp_path / "e.zip")
    messages = of(items, Message)
    assert len(messages) == 200
    groups = [m.channel_id for m in messages]
    assert sum(1 for a, b in pairwise(groups) if a != b) == 4
    assert len(of(items, Checkpoint)) == 5


# -- end to end through the CLI --------------------------------------------------------------------
def migrate(location: Path, target: str, cwd: Path) -> dict[str, Any]:
    from click.testing import CliRunner

    from chatmigrate.cli import main
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=cwd):
        result = runner.invoke(main, ["migrate", str(location), "--to", target, "--json", "--quiet"],
                               catch_exceptions=False)
    assert result.exit_code in (0, 1), result.stderr
    data = json.loads(result.stdout)
    data["exit_code"] = result.exit_code
    return data


def balanced(data: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    """(read, loaded, rejected, skipped) per kind, after checking the accounting identity."""
    for kind, c in data["counts"].items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind
    return {k: (c["read"], c["loaded"], c["rejected"], c["skipped"]) for k, c in data["counts"].items()
            if c["read"] or c["added"]}


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: sorted(tuple(map(str, r)) for r in conn.execute(sa.text(f"select * from cm_{t}")))
                    for t in ("teams", "users", "channels", "channel_members", "messages", "reactions", "files",
                              "emoji")}
    finally:
        engine.dispose()


def test_migrate_sample_end_to_end_and_rerun_changes_nothing(tmp_path: Path, db_url: str) -> None:
    first = migrate(ZIP, db_url, tmp_path)
    assert first["exit_code"] == 0
    assert balanced(first) == {
        "teams": (2, 2, 0, 0), "users": (6, 6, 0, 0), "channels": (7, 7, 0, 0), "emoji": (2, 2, 0, 0),
        "messages": (19, 19, 0, 0), "reactions": (3, 3, 0, 0), "files": (5, 5, 0, 0),
        "roles": (1, 0, 0, 1), "schemes": (1, 0, 0, 1)}
    assert first["findings"] == {"CM007": 2, "CM114": 1, "CM118": 1}
    rows = table_rows(db_url)
    assert {t: len(r) for t, r in rows.items()} == {
        "teams": 2, "users": 6, "channels": 7, "channel_members": 16, "messages": 19, "reactions": 3, "files": 5,
        "emoji": 2}
    import sqlalchemy as sa
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        def one(sql: str) -> Any:
            return conn.execute(sa.text(sql)).scalar_one()
        assert one("select count(*) from cm_messages where thread_root_id is not null") == 4
        assert one("select count(*) from cm_messages m join cm_messages r on r.id = m.thread_root_id "
                   "where r.channel_id = m.channel_id") == 4
        kinds = dict(conn.execute(sa.text("select kind, count(*) from cm_channels group by kind")).all())
        assert kinds == {"public": 2, "private": 1, "direct": 3, "group": 1}
        assert one("select count(*) from cm_messages where is_pinned") == 1
        assert one("select count(*) from cm_messages where edited_at is not null") == 1
        assert one("select count(*) from cm_users where is_deleted") == 1
        assert one("select count(*) from cm_users where is_bot") == 1
        assert one("select count(*) from cm_files where sha256 is not null") == 3  # 2 attachments + 1 emoji
        props = conn.execute(sa.text("select props from cm_messages")).scalars().all()
        assert sum("flagged_by" in str(p) for p in props) == 1  # JSON, jsonb or text, per dialect
        assert one("select text from cm_messages where text like 'Hello%'") == "Hello **world**! Grüße 👋 日本語 🎉"
    engine.dispose()
    second = migrate(ZIP, db_url, tmp_path)
    assert second["exit_code"] == 0 and second["rows_written"] == 0
    assert table_rows(db_url) == rows


REAL_LOADED = {
    AWAT: {"teams": (2, 2, 0, 0), "users": (20, 20, 0, 0), "channels": (49, 48, 0, 1),
           "messages": (2914, 2914, 0, 0), "reactions": (712, 712, 0, 0)},
    V11: {"teams": (1, 1, 0, 0), "users": (20, 20, 0, 0), "channels": (83, 83, 0, 0), "messages": (122, 122, 0, 0),
          "reactions": (11, 11, 0, 0), "files": (3, 3, 0, 0), "roles": (23, 0, 0, 23)},
    ZULIP_EXPORT: {"teams": (2, 2, 0, 0), "users": (5, 5, 0, 0), "channels": (5, 5, 0, 0), "emoji": (2, 2, 0, 0),
                   "messages": (21, 20, 1, 0), "reactions": (9, 9, 0, 0), "files": (2, 2, 0, 0)},
    ZULIP_GUEST: {"teams": (2, 2, 0, 0), "users": (6, 6, 0, 0), "channels": (5, 5, 0, 0), "emoji": (2, 2, 0, 0),
                  "messages": (21, 21, 0, 0), "reactions": (9, 9, 0, 0), "files": (2, 2, 0, 0)},
    ZULIP_DIRECT: {"teams": (1, 1, 0, 0), "users": (4, 4, 0, 0), "channels": (6, 6, 0, 0),
                   "messages": (11, 11, 0, 0), "reactions": (1, 1, 0, 0), "files": (2, 2, 0, 0)},
}


@pytest.mark.parametrize("relative", list(REAL_LOADED))
def test_migrate_real_exports(realdata: Path, tmp_path: Path, relative: str) -> None:
    target = f"sqlite:///{tmp_path / 'real.db'}"
    first = migrate(realdata / REAL / relative, target, tmp_path)
    assert balanced(first) == REAL_LOADED[relative]
    # Only the known reject (zulip export.json: a post in another team's channel) makes the exit code 1.
    assert first["exit_code"] == (1 if relative == ZULIP_EXPORT else 0)
    rows = table_rows(target)
    assert len(rows["messages"]) == REAL_LOADED[relative]["messages"][1]
    second = migrate(realdata / REAL / relative, target, tmp_path)
    assert second["rows_written"] == 0 and table_rows(target) == rows
