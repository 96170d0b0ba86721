"""The mattermost-import target: everything Mattermost would refuse is handled before writing,
deterministically, reported as a finding with its location, and the result passes Mattermost's own
validator. Records are built here so that each rule is hit on purpose."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatmigrate import pipeline
from chatmigrate.errors import UsageError
from chatmigrate.markup.canonical import rewrite_names
from chatmigrate.model import Channel, Checkpoint, Emoji, File, Item, Message, Origin, Reaction, Team, User
from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets import target_for
from chatmigrate.validate.findings import FindingSink

from .conftest import Invoke
from .helpers import RecordSource, unzip_lines

T0 = datetime(2023, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# The smallest valid GIF (1×1, one colour): Mattermost's validator decodes emoji images.
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
Validate = Callable[[Path], dict[str, Any]]


def _user(n: int, name: str, **kw: Any) -> User:
    kw.setdefault("email", f"{name.lower().replace(' ', '')}@example.com")
    return User(id=f"u{n}", source="t", source_id=f"U{n}", username=name, origin=Origin("users.json", n), **kw)


def _msg(n: int, channel: str = "c1", user: str = "u1", at: datetime | None = None, **kw: Any) -> Message:
    return Message(id=f"m{n}", source="t", source_id=f"{channel}/{n}", channel_id=channel, user_id=user,
                   created_at=at or T0 + timedelta(minutes=n), text=kw.pop("text", f"message {n}"),
                   origin=Origin(f"{channel}.json", n), **kw)


def _world(extra_users: tuple[User, ...] = (), channels: tuple[Channel, ...] = (),
           messages: tuple[Item, ...] = ()) -> Callable[[], Iterator[Item]]:
    def make() -> Iterator[Item]:
        yield Team(id="t1", source="t", source_id="T1", name="Acme Corp")
        yield _user(1, "ann")
        yield _user(2, "bob")
        yield from extra_users
        yield Channel(id="c1", source="t", source_id="C1", team_id="t1", name="general", kind="public",
                      member_ids=("u1", "u2", *(u.id for u in extra_users)))
        yield from channels
        yield from messages
        yield Checkpoint("synth", "W1", "c1", "end")
    return make


def _migrate(tmp_path: Path, make: Callable[[], Iterator[Item]], query: str = "default_email_domain=example.com",
             files: dict[str, bytes] | None = None) -> tuple[pipeline.RunResult, list[dict[str, Any]]]:
    target = target_for(f"mattermost-import://{tmp_path}/out.zip?{query}")
    try:
        result = pipeline.run(RecordSource(make, file_bytes=files), target,
                              pipeline.RunOptions("migrate", "synth", progress=False))
    finally:
        target.close()
    return result, unzip_lines(tmp_path / "out.zip")


def _of(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line[kind] for line in lines if line["type"] == kind]


def _codes(result: pipeline.RunResult) -> dict[str, int]:
    return dict(result.sink.counts)


# -- pure rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    ("Ann", "ann"), ("John Doe", "john_doe"), ("josé", "jose"), ("1direction", "u1direction"), ("all", "all_user"),
    ("陈", "user"), ("a" * 80, "a" * 64), (".dot.", "dot"),
])
def test_usernames_follow_mattermosts_rules(raw: str, expected: str) -> None:
    assert mm.username(raw) == expected
    assert mm.is_valid_username(mm.username(raw))


@pytest.mark.parametrize("raw", ["General", "x", "Ünïcode Room", "a--b", "_private_", "日本", "a" * 90])
def test_channel_names_follow_mattermosts_rules(raw: str) -> None:
    assert mm.is_valid_channel_name(mm.channel_name(raw))


@pytest.mark.parametrize("raw", ["Acme Corp", "api-team", "a", "admins", "x" * 80, "T0SAMPLE1"])
def test_team_names_follow_mattermosts_rules(raw: str) -> None:
    assert mm.is_valid_team_name(mm.team_name(raw))


def test_emoji_names_lose_skin_tones_and_refused_characters() -> None:
    assert mm.emoji_name("thumbsup::skin-tone-2") == "thumbsup"
    assert mm.emoji_name(":white check:") == "white_check"
    assert mm.is_valid_emoji_name(mm.emoji_name("+1"))


def test_reactions_keep_skin_tones_mattermost_has_and_take_its_names() -> None:
    # Slack skin-tone-2..6 are Mattermost's light … dark toned emoji, where Mattermost has them.
    assert mm.reaction_name("thumbsup::skin-tone-2") == "thumbsup_light_skin_tone"
    assert mm.reaction_name("+1::skin-tone-6") == "+1_dark_skin_tone"
    assert mm.reaction_name("party_parrot::skin-tone-3") == "party_parrot"  # no toned form: the tone goes
    # Rocket.Chat's JoyPixels names and Slack's own become the names Mattermost knows.
    assert mm.reaction_name(":slight_smile:") == "slightly_smiling_face"
    assert mm.reaction_name("simple_smile") == "slightly_smiling_face"
    assert mm.reaction_name("white check") == "white_check"


def test_long_text_splits_at_boundaries_and_joins_back() -> None:
    text = ("word " * 3000 + "\n") * 3
    parts = mm.split_text(text)
    assert "".join(parts) == text
    assert all(len(p) <= mm.MAX_POST_RUNES for p in parts) and len(parts) == 3
    assert all(p.endswith("\n") for p in parts)  # cut at line breaks, each line fits
    words = mm.split_text("word " * 8000)
    assert len(words) == 3 and all(p.endswith(" ") for p in words[:-1])
    assert mm.split_text("x" * 40_000) == ["x" * 16_383, "x" * 16_383, "x" * 7234]


def test_mentions_follow_renamed_users_and_channels_exactly() -> None:
    users, channels = {"John Doe": "john_doe", "ANN": "ann-2"}, {"Dev Ops": "dev-ops"}
    assert rewrite_names("hi @ANN and @ann, see ~general", users, channels) == "hi @ann-2 and @ann, see ~general"
    assert rewrite_names("mail ann@ANN.com", users, channels) == "mail ann@ANN.com"


def test_names_once_given_never_change() -> None:
    book = mm.NameBook()
    assert book.assign("user", "u1", "ann", "ann") == ("ann", None)
    assert book.assign("user", "u2", "ANN", "ann") == ("ann-2", "collision")
    again = mm.NameBook(dict(book.items()))
    assert again.assign("user", "u3", "ann", "ann") == ("ann-3", "collision")
    assert again.assign("user", "u2", "ANN", "ann") == ("ann-2", "changed")


# -- the package, judged by Mattermost's validator ------------------------------------------------
def test_renamed_and_colliding_users_are_reported_and_mentions_follow(tmp_path: Path, mmvalidate: Validate) -> None:
    make = _world(extra_users=(_user(3, "Ann"), _user(4, "John Doe")),
                  messages=(_msg(1, text="hello @Ann and @ann, ping @John Doe"),))
    result, lines = _migrate(tmp_path, make)
    codes = _codes(result)
    assert codes["CM202"] == 1 and codes["CM201"] >= 2  # Ann → ann-2; John Doe → john_doe; team name
    names = {u["username"] for u in _of(lines, "user")}
    assert {"ann", "ann-2", "john_doe", "bob"} <= names
    assert _of(lines, "post")[0]["message"] == "hello @ann-2 and @ann, ping @John Doe"
    renames = json.loads((tmp_path / "out.zip.names.json").read_text())
    assert renames["users"] == {"Ann": "ann-2", "John Doe": "john_doe"}
    example = result.sink.examples["CM202"][0]
    assert example.location == "users.json:3"
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_text_over_the_limit_becomes_continuation_replies(tmp_path: Path, mmvalidate: Validate) -> None:
    long = "lorem ipsum " * 4000  # 48,000 characters
    make = _world(messages=(_msg(1, text=long), _msg(2, text="reply", thread_root_id="m1")))
    result, lines = _migrate(tmp_path, make)
    assert _codes(result)["CM203"] == 1
    post = _of(lines, "post")[0]
    texts = [post["message"], *(r["message"] for r in post["replies"])]
    assert "".join(texts[:-1]) == long and texts[-1] == "reply"
    times = [post["create_at"], *(r["create_at"] for r in post["replies"])]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_users_without_email_are_refused_with_their_messages_unless_a_domain_is_given(
        tmp_path: Path, mmvalidate: Validate) -> None:
    nomail = User(id="u3", source="t", source_id="U3", username="carol", origin=Origin("users.json", 3))
    messages = (_msg(1, user="u3"), _msg(2, reactions=(Reaction("tada", "u3"), Reaction("tada", "u1"))))
    make = _world(extra_users=(nomail,), messages=messages)
    (tmp_path / "a").mkdir()
    result, lines = _migrate(tmp_path / "a", make, query="")
    assert _codes(result)["CM204"] == 3  # the user, the message, the reaction
    assert result.counts["users"]["rejected"] == 1 and result.counts["messages"]["rejected"] == 1
    assert result.counts["reactions"]["rejected"] == 1 and result.counts["reactions"]["loaded"] == 1
    assert "carol" not in {u["username"] for u in _of(lines, "user")}
    assert mmvalidate(tmp_path / "a" / "out.zip")["ok"]
    (tmp_path / "b").mkdir()
    result, lines = _migrate(tmp_path / "b", make, query="default_email_domain=corp.example")
    assert "CM204" not in _codes(result) and _codes(result)["CM205"] == 1
    assert {"username": "carol", "email": "carol@corp.example"}.items() <= next(
        u for u in _of(lines, "user") if u["username"] == "carol").items()


def test_groups_over_eight_become_private_channels_and_small_ones_direct(tmp_path: Path,
                                                                         mmvalidate: Validate) -> None:
    people = tuple(_user(n, f"person{n}") for n in range(3, 13))
    big = Channel(id="g1", source="t", source_id="G1", team_id=None, name="mpdm-everyone", kind="group",
                  member_ids=tuple(u.id for u in people), origin=Origin("mpims.json", 1))
    small = Channel(id="g2", source="t", source_id="G2", team_id=None, name="mpdm-three", kind="group",
                    member_ids=("u1", "u2", "u3"))
    solo = Channel(id="d1", source="t", source_id="D1", team_id=None, name="D1", kind="direct", member_ids=("u1",))
    make = _world(extra_users=people, channels=(big, small, solo),
                  messages=(_msg(1, channel="g1", user="u3"), _msg(2, channel="g2"), _msg(3, channel="d1")))
    result, lines = _migrate(tmp_path, make)
    codes = _codes(result)
    assert codes["CM206"] == 1 and codes["CM210"] == 1
    private = next(c for c in _of(lines, "channel") if c["name"] == "mpdm-everyone")
    assert private["type"] == "P"
    members = [u for u in _of(lines, "user") if any(ch["name"] == "mpdm-everyone" for t in u.get("teams", ())
                                                        for ch in t.get("channels", ()))]
    assert len(members) == 10
    directs = sorted(sorted(d["members"]) for d in _of(lines, "direct_channel"))
    assert directs == [["ann", "ann"], ["ann", "bob", "person3"]]
    assert len(_of(lines, "direct_post")) == 2
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_many_attachments_ride_in_continuation_posts_and_bytes_are_stored_once(tmp_path: Path,
                                                                               mmvalidate: Validate) -> None:
    files = tuple(File(id=f"f{i}", source="t", source_id=f"F{i}", name=f"pic {i}.png", path=f"__uploads/F{i}")
                  for i in range(7))
    same = b"\x89PNG same picture"
    make = _world(messages=(_msg(1, files=files),))
    result, lines = _migrate(tmp_path, make, files={f.id: same for f in files})
    assert _codes(result)["CM207"] == 1
    post = _of(lines, "post")[0]
    assert len(post["attachments"]) == 5 and len(post["replies"][0]["attachments"]) == 2
    stored = [p for p in (tmp_path / "out.zip.files").rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [hashlib.sha256(same).hexdigest()]
    verdict = mmvalidate(tmp_path / "out.zip")
    # The validator tracks root posts' attachments only and lists replies' as unused; Mattermost's
    # importer uploads both (import_functions.go importReplies → uploadAttachments).
    assert verdict["ok"] and len(verdict["attachments_used"]) + len(verdict["unused_attachments"]) == 7


def test_reactions_emoji_and_times(tmp_path: Path, mmvalidate: Validate) -> None:
    early = T0 - timedelta(days=1)
    smile = Emoji(id="e1", source="t", source_id="smile", name="smile",
                  file=File(id="fe1", source="t", source_id="FE1", name="smile.png", path="emoji/smile.png"))
    party = Emoji(id="e2", source="t", source_id="party", name="party time",
                  file=File(id="fe2", source="t", source_id="FE2", name="party.gif", path="emoji/party.gif"))
    reactions = (Reaction("thumbsup::skin-tone-2", "u2", early), Reaction("party time", "u1"))
    make = _world(channels=(), messages=(smile, party, _msg(1, reactions=reactions)))
    result, lines = _migrate(tmp_path, make, files={"fe1": GIF, "fe2": GIF})
    codes = _codes(result)
    assert codes["CM211"] == 1 and codes["CM208"] >= 2
    assert [e["name"] for e in _of(lines, "emoji")] == ["party_time"]
    post = _of(lines, "post")[0]
    assert sorted((r["emoji_name"], r["user"]) for r in post["reactions"]) == [
        ("party_time", "ann"), ("thumbsup_light_skin_tone", "bob")]
    assert all(r["create_at"] >= post["create_at"] for r in post["reactions"])
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_same_millisecond_posts_get_unique_times_that_stay_on_later_runs(tmp_path: Path) -> None:
    at = T0
    first = (_msg(1, at=at), _msg(2, at=at))
    result, lines = _migrate(tmp_path, _world(messages=first))
    assert _codes(result)["CM209"] == 1
    times = {p["message"]: p["create_at"] for p in _of(lines, "post")}
    assert times["message 2"] == times["message 1"] + 1
    # A message that arrives later in the same millisecond does not move the two already exported.
    _, lines = _migrate(tmp_path, _world(messages=(_msg(0, at=at), *first)))
    again = {p["message"]: p["create_at"] for p in _of(lines, "post")}
    assert again["message 1"] == times["message 1"] and again["message 2"] == times["message 2"]
    assert len(set(again.values())) == 3


def test_threads_nest_with_read_state_pins_edits_and_followers(tmp_path: Path, mmvalidate: Validate) -> None:
    messages = (_msg(1, is_pinned=True, edited_at=T0 + timedelta(hours=1)),
                _msg(2, user="u2", thread_root_id="m1"), _msg(3, thread_root_id="m1"), _msg(4))
    _, lines = _migrate(tmp_path, _world(messages=messages))
    root, other = _of(lines, "post")
    assert root["is_pinned"] is True and root["edit_at"] > root["create_at"]
    assert [r["message"] for r in root["replies"]] == ["message 2", "message 3"]
    assert {f["user"] for f in root["thread_followers"]} == {"ann", "bob"}
    membership = next(u for u in _of(lines, "user") if u["username"] == "bob")["teams"][0]["channels"][0]
    assert membership["msg_count"] == 4 and membership["msg_count_root"] == 2
    assert membership["last_viewed_at"] == other["create_at"]
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_a_guest_in_no_channel_is_imported_deactivated(tmp_path: Path, mmvalidate: Validate) -> None:
    guest = _user(3, "gina", role="guest")
    make = _world(channels=(), messages=())

    def with_guest() -> Iterator[Item]:
        for item in make():
            yield item
            if isinstance(item, User) and item.id == "u2":
                yield guest

    result, lines = _migrate(tmp_path, with_guest)
    assert _codes(result)["CM212"] == 1
    gina = next(u for u in _of(lines, "user") if u["username"] == "gina")
    assert gina["delete_at"] > 0 and "teams" not in gina and gina["roles"] == "system_user"
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_delta_packages_hold_only_what_changed(tmp_path: Path, mmvalidate: Validate) -> None:
    query = "default_email_domain=example.com&delta=true"
    base = (_msg(1), _msg(2), _msg(3, thread_root_id="m1"))
    first, lines = _migrate(tmp_path, _world(messages=base), query=query)
    assert first.target_summary["number"] == 1 and len(_of(lines, "post")) == 2
    unchanged, _ = _migrate(tmp_path, _world(messages=base), query=query)
    assert unchanged.target_summary["package"] is None and unchanged.target_summary["status"].startswith("unchanged")
    assert not (tmp_path / "out-0002.zip").exists()
    grown = (*base, _msg(4, thread_root_id="m1"), _msg(5))
    third, _ = _migrate(tmp_path, _world(messages=grown), query=query)
    assert third.target_summary["package"] == str(tmp_path / "out-0002.zip")
    delta = unzip_lines(tmp_path / "out-0002.zip")
    posts = _of(delta, "post")
    assert sorted(p["message"] for p in posts) == ["message 1", "message 5"]  # m1's thread grew; m2 unchanged
    assert [r["message"] for r in posts[0]["replies"]] == ["message 3", "message 4"]
    assert {u["username"] for u in _of(delta, "user")} == {"ann", "bob"}  # referenced users always ride along
    assert mmvalidate(tmp_path / "out-0002.zip")["ok"]


def test_validate_to_mattermost_reports_findings_and_writes_nothing(samples: Path, cli: Invoke,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "pkg" / "acme.zip"
    out.parent.mkdir()
    code, data, err = cli("validate", str(samples / "slack"), "--to", f"mattermost-import://{out}", "--json",
                          cwd=tmp_path)
    assert code == 1, err  # users without email and no --default-email-domain: errors
    assert data["findings"]["CM204"] >= 1 and data["findings"]["CM208"] >= 1
    rule = next(r for r in data["rules"] if r["code"] == "CM204")
    assert rule["examples"][0]["location"].startswith("users.json:")
    assert list(out.parent.iterdir()) == []
    code, data, _ = cli("validate", str(samples / "slack"), "--to", f"mattermost-import://{out}", "--json",
                        "--default-email-domain", "example.com", cwd=tmp_path)
    assert code == 0 and "CM204" not in data["findings"] and data["findings"]["CM205"] >= 1


@pytest.mark.parametrize(("url", "message"), [
    ("mattermost-import://host/x.zip", "names a local file"),
    ("mattermost-import:///tmp/", "name the package file"),
    ("mattermost-import:///tmp/x.zip?colour=red", "unknown option 'colour'"),
    ("mattermost-import:///tmp/x.zip?max_file_bytes=lots", "max_file_bytes='lots'"),
    ("mattermost-import:///tmp/x.zip?default_email_domain=nodot", "give a domain"),
])
def test_bad_target_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_for(url)


def test_a_missing_output_folder_is_a_usage_error(tmp_path: Path) -> None:
    target = target_for(f"mattermost-import://{tmp_path}/nope/out.zip")
    with pytest.raises(UsageError, match="does not exist"):
        target.prepare()


def test_the_checks_stage_alone_writes_nothing(tmp_path: Path) -> None:
    target = target_for(f"mattermost-import://{tmp_path}/out.zip")
    stage = target.checks(FindingSink())
    assert stage is not None
    assert len(list(stage(_world(messages=(_msg(1),))()))) == 6  # team, 2 users, channel, message, checkpoint
    assert list(tmp_path.iterdir()) == []


def test_an_emoji_image_mattermost_cannot_decode_is_left_out(tmp_path: Path, mmvalidate: Validate) -> None:
    broken = Emoji(id="e1", source="t", source_id="blob", name="blob", origin=Origin("emoji.json", 4),
                   file=File(id="fe1", source="t", source_id="FE1", name="blob.gif", path="emoji/blob.gif"))
    fine = Emoji(id="e2", source="t", source_id="ok", name="okay_blob",
                 file=File(id="fe2", source="t", source_id="FE2", name="ok.gif", path="emoji/ok.gif"))
    result, lines = _migrate(tmp_path, _world(messages=(broken, fine, _msg(1))), files={"fe1": GIF[:20], "fe2": GIF})
    assert _codes(result)["CM213"] == 1
    assert result.sink.examples["CM213"][0].location == "emoji.json:4"
    assert [e["name"] for e in _of(lines, "emoji")] == ["okay_blob"]
    assert mmvalidate(tmp_path / "out.zip")["ok"]


def test_bots_get_an_owner_that_exists_or_stay_users(tmp_path: Path, mmvalidate: Validate) -> None:
    bot = _user(3, "CI Bot", is_bot=True, role="bot")
    make = _world(extra_users=(bot,), messages=(_msg(1, user="u3"),))
    (tmp_path / "a").mkdir()
    _, lines = _migrate(tmp_path / "a", make, query="default_email_domain=example.com&bot_owner=ann")
    assert [b["username"] for b in _of(lines, "bot")] == ["ci_bot"] and _of(lines, "bot")[0]["owner"] == "ann"
    assert mmvalidate(tmp_path / "a" / "out.zip")["ok"]
    (tmp_path / "b").mkdir()
    result, lines = _migrate(tmp_path / "b", make, query="default_email_domain=example.com&bot_owner=nobody")
    assert _of(lines, "bot") == [] and "ci_bot" in {u["username"] for u in _of(lines, "user")}
    assert "not a user of this package" in result.target_summary["notes"][0]
