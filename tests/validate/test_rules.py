"""Every validator rule: a case that triggers it and a clean case that does not, on canonical records.

Each case is a small stream in DESIGN §2 order (team, users, channels, messages grouped by channel,
a Checkpoint after each channel). The same clean world is used everywhere, so a rule that fires on
clean data shows up as a failure of every clean case.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatmigrate.ids import record_id
from chatmigrate.model import (
    Channel,
    Checkpoint,
    Emoji,
    File,
    Item,
    Message,
    Origin,
    Reaction,
    Skipped,
    Team,
    Unreadable,
    User,
)
from chatmigrate.validate import Accounting, FindingSink, ValidationOptions, Validator
from chatmigrate.validate.rules import rule

SRC, SCOPE = "test", "T1"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def rid(kind: str, key: str) -> str:
    return record_id(SRC, SCOPE, kind, key)


def team() -> Team:
    return Team(rid("team", SCOPE), SRC, SCOPE, "acme", origin=Origin("team.json", 1))


def user(name: str, line: int = 1, **kw: Any) -> User:
    fields: dict[str, Any] = {"username": name, "email": f"{name}@example.org"}
    fields.update(kw)
    return User(rid("user", name), SRC, name, origin=Origin("users.json", line), **fields)


def channel(name: str, kind: str = "public", members: tuple[str, ...] = ("alice", "bob"), **kw: Any) -> Channel:
    return Channel(rid("channel", name), SRC, name, rid("team", SCOPE), name, kind,  # type: ignore[arg-type]
                   member_ids=tuple(rid("user", m) for m in members), origin=Origin("channels.json", 1), **kw)


def msg(chan: str, n: int, author: str | None = "alice", line: int | None = None, **kw: Any) -> Message:
    fields: dict[str, Any] = {"text": f"message {n}", "created_at": T0 + timedelta(minutes=n)}
    fields.update(kw)
    return Message(rid("message", f"{chan}/{n}"), SRC, f"{chan}/{n}", rid("channel", chan),
                   rid("user", author) if author else None, origin=Origin(f"{chan}/2024-03-01.json", line or n),
                   **fields)


def checkpoint(chan: str) -> Checkpoint:
    return Checkpoint(SRC, SCOPE, rid("channel", chan), "x")


def world(*messages: Item, users: tuple[User, ...] | None = None, channels: tuple[Channel, ...] | None = None,
          ) -> list[Item]:
    """A clean workspace plus `messages` (grouped by channel, checkpoint after each channel)."""
    items: list[Item] = [team()]
    items += users if users is not None else [user("alice", 1), user("bob", 2), user("carol", 3)]
    items += channels if channels is not None else [channel("general"), channel("random"),
                                                    channel("alice-bob", "direct"),
                                                    channel("trio", "group", ("alice", "bob", "carol"))]
    last: str | None = None
    for item in messages:
        chan = item.channel_id if isinstance(item, Message) else None
        if last is not None and chan != last:
            items.append(Checkpoint(SRC, SCOPE, last, "x"))
        items.append(item)
        last = chan
    if last is not None:
        items.append(Checkpoint(SRC, SCOPE, last, "x"))
    return items


@dataclasses.dataclass
class Run:
    out: list[Item]
    sink: FindingSink
    accounting: Accounting

    def findings(self, code: str) -> list[Any]:
        return self.sink.examples.get(code, [])

    def messages(self) -> dict[str, Message]:
        return {m.id: m for m in self.out if isinstance(m, Message)}

    def users(self) -> dict[str, User]:
        return {u.id: u for u in self.out if isinstance(u, User)}


def run(items: list[Item], tmp_path: Path | None = None, **options: Any) -> Run:
    sink = FindingSink(tmp_path / "rejects.jsonl" if tmp_path else None)
    accounting = Accounting()
    out = list(Validator(sink, ValidationOptions(**options), accounting)(iter(items)))
    sink.close()
    return Run(out, sink, accounting)


def clean_world() -> list[Item]:
    return world(msg("general", 1), msg("general", 2, "bob", thread_root_id=rid("message", "general/1")),
                 msg("random", 3, "carol", reactions=(Reaction("tada", rid("user", "alice")),)),
                 msg("alice-bob", 4))


# -- the cases: code → (bad stream, clean stream, extra options) -------------------------------------
def _file(name: str, **kw: Any) -> File:
    return File(rid("file", name), SRC, name, name, **kw)


CASES: dict[str, Callable[[], tuple[list[Item], list[Item], dict[str, Any]]]] = {
    "CM004": lambda: (world(msg("general", 1, created_at=datetime(2024, 3, 1, 12))),  # naive: no time zone
                      world(msg("general", 1)), {}),
    "CM006": lambda: (world(channels=(channel("general", "voice"),)), world(channels=(channel("general"),)), {}),
    "CM007": lambda: (world(Skipped("messages", "livechat room", {"t": "l"}, Origin("rooms.json", 3))),
                      world(), {}),
    "CM101": lambda: (world(msg("nowhere", 1)), world(msg("general", 1)), {}),
    "CM102": lambda: (world(msg("general", 1, "mallory")), world(msg("general", 1, "alice")), {}),
    "CM103": lambda: (world(msg("general", 2, thread_root_id=rid("message", "general/1"))),
                      world(msg("general", 1), msg("general", 2, thread_root_id=rid("message", "general/1"))), {}),
    # root in an earlier channel (found by the Bloom filter) and in a later one (pending orphan)
    "CM104": lambda: (world(msg("general", 1), msg("random", 2, thread_root_id=rid("message", "general/1")),
                            msg("alice-bob", 3, thread_root_id=rid("message", "trio/4")), msg("trio", 4)),
                      world(msg("general", 1), msg("general", 2, thread_root_id=rid("message", "general/1")),
                            msg("random", 3)), {}),
    "CM105": lambda: (world(msg("general", 1), msg("general", 1, text="changed")),
                      world(msg("general", 1), msg("general", 2)), {}),
    "CM106": lambda: (world(msg("general", 1), msg("general", 1, line=99)),
                      world(msg("general", 1), msg("general", 2)), {}),
    "CM107": lambda: (world(msg("general", 1, reactions=(Reaction("+1", rid("user", "mallory")),))),
                      world(msg("general", 1, reactions=(Reaction("+1", rid("user", "bob")),))), {}),
    "CM108": lambda: (world(msg("general", 1, text="nul\x00 and \ud800 lone")),
                      world(msg("general", 1, text="ok ✓ 😀")), {}),
    "CM109": lambda: (world(msg("general", 1, text="x" * 101)), world(msg("general", 1, text="x" * 100)),
                      {"max_text": 100}),
    "CM110": lambda: (world(msg("general", 1, created_at=datetime(1989, 12, 31, tzinfo=UTC)),
                            msg("random", 2, created_at=datetime.now(UTC) + timedelta(days=30))),
                      world(msg("general", 1, created_at=datetime(1990, 1, 2, tzinfo=UTC))), {}),
    "CM111": lambda: (world(msg("general", 1, edited_at=T0 - timedelta(days=1))),
                      world(msg("general", 1, edited_at=T0 + timedelta(days=1))), {}),
    "CM112": lambda: (world(msg("general", 1, text="")),
                      world(msg("general", 1, text="", files=(_file("a.png", source_url="https://x/a.png"),)),
                            msg("general", 2, text="", deleted_at=T0)), {}),
    "CM113": lambda: (world(channels=(channel("dm", "direct", ("alice", "bob", "carol")),
                                      channel("grp", "group", ("alice", "bob")))),
                      world(channels=(channel("dm", "direct", ("alice", "bob")), channel("self", "direct", ("alice",)),
                                      channel("grp", "group", ("alice", "bob", "carol")))), {}),
    "CM114": lambda: (world(users=(user("alice", email=None),)), world(users=(user("alice"),)), {}),
    "CM115": lambda: (world(users=(user("alice"), user("Alice2", username="ALICE"))),
                      world(users=(user("alice"), user("alicia"))), {}),
    "CM116": lambda: (world(users=(user("alice"), user("bob", email="Alice@Example.org"))),
                      world(users=(user("alice"), user("bob"))), {}),
    "CM117": lambda: (world(users=(user("alice", username=""),)), world(users=(user("alice"),)), {}),
    "CM118": lambda: (world(msg("general", 1, files=(_file("gone.pdf", source_url="https://x/gone.pdf",
                                                             props={"missing": True}),)),
                            msg("general", 2, files=(_file("nowhere.txt"),))),
                      world(msg("general", 1, files=(_file("here.pdf", path="__uploads/F1/here.pdf"),)),
                            msg("general", 2, files=(_file("remote.pdf", source_url="https://x/r.pdf"),)),
                            msg("general", 3, files=(_file("deleted.pdf", props={"deleted": True}),))), {}),
    "CM119": lambda: (world(users=(user("alice", email=None),)),
                      world(users=(user("alice"), user("bot", email=None, is_bot=True))), {"require_email": True}),
    # The extractor left a number `user` out and kept it (extractors/_fields.py); a file's own field too.
    "CM120": lambda: (world(msg("general", 1, None, props={"unreadable_fields": {"user": 12}}),
                            msg("general", 2, files=(_file("a.pdf", source_url="https://x/a.pdf",
                                                           props={"unreadable_fields": {"size": "big"}}),))),
                      world(msg("general", 1, props={"unrelated": {"user": 12}})), {}),
}


def test_every_validator_rule_has_a_case() -> None:
    from chatmigrate.validate.rules import RULES

    validator_rules = {r.code for r in RULES if r.code.startswith("CM1")}
    assert validator_rules <= set(CASES), f"rules without a test case: {sorted(validator_rules - set(CASES))}"


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_triggers_with_everything_an_admin_needs(code: str, tmp_path: Path) -> None:
    bad, _, options = CASES[code]()
    result = run(bad, tmp_path, **options)
    assert result.sink.counts[code] >= 1, dict(result.sink.counts)
    entry = rule(code)
    for finding in result.findings(code):
        assert finding.severity == entry.severity
        assert finding.location, "every finding names where in the export it comes from"
        assert finding.action, "every finding says what was done"
        if code != "CM007":
            assert finding.record_id, "every finding on a record names the record"
        as_json = finding.as_json()
        assert {"code", "severity", "record_id", "location", "repair", "message"} <= set(as_json)
    # Errors reject: the record is in the rejects file and not in the stream.
    rejects = tmp_path / "rejects.jsonl"
    if entry.severity == "error":
        lines = [json.loads(line) for line in rejects.read_text().splitlines()]
        assert any(f["code"] == code for line in lines for f in line["findings"])
        rejected_ids = {f["record_id"] for line in lines for f in line["findings"] if f["code"] == code}
        passed = {getattr(item, "id", None) for item in result.out}
        if code != "CM105":  # a conflicting duplicate shares its id with the first copy, which loads
            assert not rejected_ids & passed
    else:
        assert not rejects.exists()


@pytest.mark.parametrize("code", sorted(CASES))
def test_clean_case_does_not_trigger(code: str) -> None:
    _, clean, options = CASES[code]()
    result = run(clean, **options)
    assert code not in result.sink.counts, result.findings(code)
    assert result.sink.errors == 0


def test_clean_world_is_clean() -> None:
    items = clean_world()
    result = run(items)
    assert dict(result.sink.counts) == {}
    assert result.out == items  # nothing changed, nothing added, nothing dropped


@pytest.mark.parametrize("code", ["CM001", "CM002", "CM003", "CM004", "CM005", "CM006", "X9001"])
def test_unreadable_items_become_rejects_with_their_code(code: str, tmp_path: Path) -> None:
    raw = {"ts": "garbage", "text": "kept as read"}
    where = Origin("dump/rocketchat_message.bson", 4096)
    items = [*world(), Unreadable("messages", code, "cannot read it", raw, where)]
    result = run(items, tmp_path)
    assert result.sink.counts == {code: 1}
    assert result.accounting.rejected == {"messages": 1}
    line = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert line["record"] == raw  # the record as read: nothing lost
    assert line["findings"][0]["location"] == "dump/rocketchat_message.bson@4096"  # binary: file@offset
    assert line["findings"][0]["severity"] == "error"


# -- the repairs, one by one ------------------------------------------------------------------------
def test_placeholders_for_unknown_author_and_reactor() -> None:
    result = run(world(msg("general", 1, "mallory", reactions=(Reaction("+1", rid("user", "eve")),)),
                       msg("general", 2, "mallory")))
    users = result.users()
    for name in ("mallory", "eve"):
        placeholder = users[rid("user", name)]
        assert placeholder.props == {"placeholder": True} and placeholder.username.startswith("unknown-")
    assert result.accounting.added == {"users": 2}
    # the placeholder is emitted before the message that needs it, and only once
    ids = [getattr(i, "id", None) for i in result.out]
    assert ids.index(rid("user", "mallory")) < ids.index(rid("message", "general/1"))
    assert result.sink.counts["CM102"] == 1


def test_real_user_after_placeholder_is_not_a_conflict() -> None:
    late = user("mallory", 9)
    result = run([*world(msg("general", 1, "mallory")), late])
    assert "CM105" not in result.sink.counts and late in result.out


def test_orphan_reply_is_loaded_top_level_with_link_in_props() -> None:
    root = rid("message", "general/1")
    result = run(world(msg("general", 2, thread_root_id=root)))
    reply = result.messages()[rid("message", "general/2")]
    assert reply.thread_root_id is None and reply.props["orphan_of"] == root


def test_root_in_other_channel_both_directions() -> None:
    earlier, later = rid("message", "general/1"), rid("message", "trio/4")
    result = run(world(msg("general", 1), msg("random", 2, thread_root_id=earlier),
                       msg("alice-bob", 3, thread_root_id=later), msg("trio", 4)))
    assert result.sink.counts["CM104"] == 2 and "CM103" not in result.sink.counts
    messages = result.messages()
    assert messages[rid("message", "random/2")].props["orphan_of"] == earlier
    assert messages[rid("message", "alice-bob/3")].props["orphan_of"] == later
    assert messages[rid("message", "alice-bob/3")].thread_root_id is None
    texts = [f.message for f in result.findings("CM104")]
    assert any("'trio'" in t for t in texts)  # the later root's channel is named


def test_reply_before_its_root_in_the_same_channel_is_cm103() -> None:
    result = run(world(msg("general", 2, thread_root_id=rid("message", "general/1")), msg("general", 1)))
    assert result.sink.counts["CM103"] == 1 and "before its thread root" in result.findings("CM103")[0].message


def test_bloom_filter_has_no_false_negatives_and_few_false_positives() -> None:
    from chatmigrate.validate import _SeenIds

    seen = _SeenIds(size_bytes=1 << 16)
    keys = [rid("message", f"c/{i}") for i in range(20_000)]
    for key in keys:
        seen.add(key)
    assert all(key in seen for key in keys)
    false = sum(rid("message", f"other/{i}") in seen for i in range(20_000))
    assert false < 200  # ~0.3 % expected with 4 hashes, 26 bits per key


def test_text_repair_keeps_the_original() -> None:
    bad = "nul\x00 and \ud800 lone"
    result = run(world(msg("general", 1, text=bad, props={"source_text": "<b>nul\x00</b>"})))
    repaired = result.messages()[rid("message", "general/1")]
    assert repaired.text == "nul and \ufffd lone"
    assert repaired.props["source_text"] == "<b>nul</b>"
    escaped = repaired.props["source_text_escaped"]
    assert escaped.isascii() and "\\x00" in escaped and "\\ud800" in escaped


def test_user_and_channel_fields_with_nul_are_repaired() -> None:
    result = run(world(users=(user("alice", display_name="Al\x00ice"),),
                       channels=(channel("general", topic="top\ud800ic"),)))
    assert result.sink.counts["CM108"] == 2
    alice = result.users()[rid("user", "alice")]
    assert alice.display_name == "Alice" and alice.props["source_escaped"]["display_name"] == "Al\\x00ice"
    general = next(c for c in result.out if isinstance(c, Channel))
    assert general.topic == "top\ufffdic"


def test_edited_before_created_is_cleared_and_kept() -> None:
    edited = T0 - timedelta(hours=1)
    result = run(world(msg("general", 1, edited_at=edited)))
    m = result.messages()[rid("message", "general/1")]
    assert m.edited_at is None and m.props["edited_at_original"] == edited.isoformat()


def test_missing_file_is_marked_in_props() -> None:
    result = run(world(msg("general", 1, files=(_file("nowhere.txt"),))))
    file = result.messages()[rid("message", "general/1")].files[0]
    assert file.props["missing"] is True
    finding = result.findings("CM118")[0]
    assert finding.record_id == file.id and "nowhere.txt" in finding.message


def test_duplicates_of_every_kind_are_counted_and_balanced(tmp_path: Path) -> None:
    emoji = Emoji(rid("emoji", "parrot"), SRC, "parrot", "parrot", file=_file("parrot.gif", path="emoji/p.gif"))
    items = world(msg("general", 1, reactions=(Reaction("+1", rid("user", "bob")),)),
                  msg("general", 1, reactions=(Reaction("+1", rid("user", "bob")),)))
    items[1:1] = [team()]  # identical team twice
    items += [emoji, emoji, dataclasses.replace(emoji, name="parrot2"), user("alice", 50),
              user("alice", 51, email="other@example.org")]
    result = run(items, tmp_path)
    assert result.accounting.skipped == {"teams": 1, "messages": 1, "reactions": 1, "emoji": 1, "files": 1,
                                         "users": 1}
    assert result.accounting.rejected == {"emoji": 1, "files": 1, "users": 1}
    assert result.sink.counts["CM106"] == 4 and result.sink.counts["CM105"] == 2


def test_require_email_rejects_people_not_bots(tmp_path: Path) -> None:
    result = run(world(users=(user("alice", email=None), user("ci", email=None, is_bot=True))), tmp_path,
                 require_email=True)
    assert result.sink.counts["CM119"] == 1 and result.sink.counts["CM114"] == 1  # the bot: info only
    assert rid("user", "alice") not in result.users() and rid("user", "ci") in result.users()
    assert result.sink.errors == 1


def test_state_stays_per_channel() -> None:
    """Only the current channel's ids are held exactly (DESIGN §2: O(largest channel))."""
    sink = FindingSink()
    validator = Validator(sink)
    items = world(*(msg("general", i) for i in range(500)), *(msg("random", i) for i in range(500, 510)))
    sizes = []
    for item in validator(iter(items)):
        if isinstance(item, Message):
            sizes.append(len(validator.channel_messages))
    assert max(sizes) == 500 and sizes[-1] == 10


def test_pending_orphans_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_PENDING_ORPHANS, orphans are counted at once (CM103) instead of waiting for a later root."""
    import chatmigrate.validate as validate

    monkeypatch.setattr(validate, "MAX_PENDING_ORPHANS", 2)
    sink = FindingSink()
    validator = Validator(sink)
    replies = [msg("general", i, thread_root_id=rid("message", f"gone/{i}")) for i in range(5)]
    peak = 0
    for _ in validator(iter(world(*replies))):
        peak = max(peak, validator.pending_count)
    assert peak == 2 and sink.counts == {"CM103": 5} and validator.pending_orphans == {}


def test_long_channel_memory_is_bounded_and_old_roots_still_link(monkeypatch) -> None:
    """A channel longer than the window forgets its oldest ids (memory stays bounded), yet a reply to
    a forgotten root keeps its link (the Bloom filter remembers the root was read)."""
    from datetime import UTC, datetime, timedelta

    import chatmigrate.validate as validate_module
    from chatmigrate.model import Channel, Checkpoint, Message, User
    from chatmigrate.validate import Validator
    from chatmigrate.validate.findings import FindingSink

    monkeypatch.setattr(validate_module, "CHANNEL_WINDOW", 50)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    user = User("u", "t", "u", "alice", email="a@x.org")
    channel = Channel("c", "t", "c", None, "general", "public", member_ids=("u",))
    messages = [Message(f"m{i}", "t", f"m{i}", "c", "u", base + timedelta(seconds=i), text="x") for i in range(200)]
    reply = Message("r", "t", "r", "c", "u", base + timedelta(seconds=500), text="late reply", thread_root_id="m0")
    orphan = Message("o", "t", "o", "c", "u", base + timedelta(seconds=501), text="orphan", thread_root_id="nope")
    sink = FindingSink()
    validator = Validator(sink)
    out = list(validator(iter([user, channel, *messages, reply, orphan, Checkpoint("t", "s", "c", "x")])))
    assert len(validator.channel_messages) == 0  # cleared at the checkpoint
    loaded = {m.id: m for m in out if isinstance(m, Message)}
    assert loaded["r"].thread_root_id == "m0"
    assert loaded["o"].thread_root_id is None and sink.counts["CM103"] == 1
