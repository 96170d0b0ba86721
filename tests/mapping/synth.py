"""A small workspace for the mapping tests: users to merge, channels to rename, merge and leave out,
messages across three years with mentions, channel links, replies and reactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatmigrate import pipeline
from chatmigrate.ids import record_id
from chatmigrate.mapping import MappingSpec, from_table
from chatmigrate.model import Channel, Checkpoint, Item, Message, Reaction, Team, User
from chatmigrate.targets import target_for

SOURCE, SCOPE = "synth", "W1"
T0 = datetime(2021, 6, 1, 9, 0, tzinfo=UTC)


def rid(kind: str, key: str) -> str:
    return record_id(SOURCE, SCOPE, kind, key)


USERS = {  # username → email
    "ann": "Ann@Old.Example", "bob": "bob@x.example", "cat": None, "dan": "dan@x.example",
}
CHANNELS = {  # name → (kind, members, archived)
    "general": ("public", ("ann", "bob", "cat", "dan"), False),
    "random": ("public", ("ann", "bob"), False),
    "dev-ops": ("public", ("ann", "dan"), False),
    "ops-alerts": ("private", ("bob", "dan"), False),
    "old-project": ("public", ("ann",), True),
    "dm-ann-bob": ("direct", ("ann", "bob"), False),
    "group-abc": ("group", ("ann", "bob", "cat"), False),
}
PER_CHANNEL = 6  # messages per channel: one every 200 days from T0, so they span 2021-2024


def users() -> list[User]:
    return [User(id=rid("user", name), source=SOURCE, source_id=f"U-{name}", username=name, email=email,
                 display_name=name.title()) for name, email in USERS.items()]


def channels() -> list[Channel]:
    return [Channel(id=rid("channel", name), source=SOURCE, source_id=f"C-{name}", team_id=rid("team", "T1"),
                    name=name, kind=kind, member_ids=tuple(rid("user", m) for m in members),
                    creator_id=rid("user", members[0]), archived_at=T0 if archived else None, created_at=T0)
            for name, (kind, members, archived) in CHANNELS.items()]


def messages(channel: str) -> list[Message]:
    _, members, _ = CHANNELS[channel]
    out = []
    for i in range(PER_CHANNEL):
        author = members[i % len(members)]
        text = f"msg {i} in ~{channel} for @ann" if i % 2 == 0 else f"see ~general, @{author} here"
        root = rid("message", f"{channel}-0") if i == 3 else None
        reactions = (Reaction("thumbsup", rid("user", members[-1])),) if i == 1 else ()
        out.append(Message(id=rid("message", f"{channel}-{i}"), source=SOURCE, source_id=f"{channel}-{i}",
                           channel_id=rid("channel", channel), user_id=rid("user", author),
                           created_at=T0 + timedelta(days=200 * i), text=text, thread_root_id=root,
                           reactions=reactions))
    return out


def records() -> Iterator[Item]:
    yield Team(id=rid("team", "T1"), source=SOURCE, source_id="T1", name="acme", display_name="Acme")
    yield from users()
    chans = channels()
    yield from chans
    for channel in chans:
        yield from messages(channel.name)
        yield Checkpoint(SOURCE, SCOPE, channel.id, "9999")


def existing_records() -> Iterator[Item]:
    """What the target held before: users from the directory (another source), one of them Ann."""
    yield User(id=record_id("ldap", "corp", "user", "asmith"), source="ldap", source_id="asmith",
               username="ann.smith", email="ann@old.example", display_name="Ann Smith", first_name="Ann")
    yield User(id=record_id("ldap", "corp", "user", "dlee"), source="ldap", source_id="dlee",
               username="dan.lee", email="DAN@x.example", display_name="Dan Lee")
    yield User(id=record_id("ldap", "corp", "user", "zed"), source="ldap", source_id="zed",
               username="zed", email="zed@x.example")


# The mapping most target tests use: users merged by email, a channel renamed and one left out.
MERGE_RENAME_EXCLUDE = """
[users]
match = "email"
[channels]
exclude = ["random"]
[channels.rename]
general = "town-square"
"""


def mapping(text: str, tmp: Path | None = None) -> MappingSpec:
    import tomllib

    return from_table(tomllib.loads(text), "test.toml", tmp or Path("."))


def migrate(url: str, mapping_text: str | None, make: Callable[[], Iterator[Item]] = records,
            dry_run: bool = False) -> pipeline.RunResult:
    """One run of `make`'s records into the target at `url`, under the mapping written in `mapping_text`."""
    from tests.targets.helpers import RecordSource

    target = target_for(url)
    try:
        spec = mapping(mapping_text) if mapping_text is not None else None
        return pipeline.run(RecordSource(make), target,
                            pipeline.RunOptions("migrate", "synth", progress=False, mapping=spec), dry_run=dry_run)
    finally:
        target.close()
