"""A real Slack export (Mattermost's awat test workspace, ../shared/realdata) merged onto a target that
already holds some of its users (matched by email), two channels renamed and one left out; the result
checked row by row against a migration of the same export without the mapping."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatmigrate import pipeline
from chatmigrate.extractors import detect
from chatmigrate.ids import record_id
from chatmigrate.model import User
from chatmigrate.targets import target_for
from tests.loaders.helpers import _plain as json_plain
from tests.targets.helpers import RecordSource

from . import synth

AWAT = Path("slack") / "awat" / "test" / "dummy-slack-workspace-archive.zip"
RENAMED = {"testing": "qa-testing", "shared-channel": "partners"}
EXCLUDED = "leads"
MERGED_USERS = 10


def migrate(url: str, export: Path, mapping_text: str | None = None) -> pipeline.RunResult:
    extractor = detect(str(export))(str(export), {})
    target = target_for(url)
    try:
        spec = synth.mapping(mapping_text) if mapping_text is not None else None
        return pipeline.run(extractor, target, pipeline.RunOptions("migrate", str(export), progress=False,
                                                                   mapping=spec))
    finally:
        target.close()


def table(url: str, name: str, order: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM cm_{name} ORDER BY {order}"))]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def reference(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The export migrated without a mapping (SQLite): what the mapped run is compared with."""
    export = realdata / AWAT
    if not export.exists():
        pytest.skip(f"{export} is missing from ../shared/realdata")
    url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'ref.db'}"
    migrate(url, export)
    return {name: table(url, name, order) for name, order in (
        ("users", "id"), ("channels", "id"), ("messages", "id"), ("reactions", "message_id, emoji, user_id"),
        ("channel_members", "channel_id, user_id"), ("files", "id"))}


def directory_users(reference: dict[str, list[dict[str, Any]]]) -> list[User]:
    """What the target held before: ten of the export's people, from the company directory, their
    emails in other letter case, other usernames."""
    people = [u for u in reference["users"] if u["email"] and not u["is_bot"]][:MERGED_USERS]
    return [User(id=record_id("ldap", "corp", "user", u["username"]), source="ldap", source_id=u["username"],
                 username=f"corp.{u['username']}", email=u["email"].upper(), display_name="From the directory")
            for u in people]


_TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def _plain(value: Any) -> Any:
    """A value as every dialect can be compared: times without zone (UTC), booleans as 0/1, JSON
    (text in SQLite and MariaDB, parsed JSONB in PostgreSQL) as its parsed form."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _TIME.match(value):  # SQLite keeps times as text
        return _plain(datetime.fromisoformat(value))
    return json_plain(value)


def _no_time_zone(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


def test_awat_merged_renamed_and_filtered_row_by_row(realdata: Path, db_url: str,
                                                    reference: dict[str, list[dict[str, Any]]]) -> None:
    export = realdata / AWAT
    existing = directory_users(reference)
    pipeline.run(RecordSource(lambda: iter(existing)), target_for(db_url),
                 pipeline.RunOptions("migrate", "directory", progress=False))
    before = {r["id"]: r for r in table(db_url, "users", "id")}
    mapping = f"""
[users]
match = "email"
[channels]
exclude = ["{EXCLUDED}"]
[channels.rename]
{chr(10).join(f'"{old}" = "{new}"' for old, new in RENAMED.items())}
"""
    result = migrate(db_url, export, mapping)
    by_email = {u.email.lower(): u for u in existing}
    merged = {u["id"]: by_email[u["email"].lower()] for u in reference["users"]
              if u["email"] and u["email"].lower() in by_email}
    assert len(merged) == MERGED_USERS
    assert result.mapping_plan["users"]["merged"] == MERGED_USERS
    channels = {c["id"]: c for c in reference["channels"]}
    excluded = {c["id"] for c in reference["channels"] if c["name"] == EXCLUDED}
    assert len(excluded) == 1

    # users: the directory's rows untouched, no row for a merged source user, every other one as before
    users = {r["id"]: r for r in table(db_url, "users", "id")}
    assert {i: _no_time_zone(users[i]) for i in before} == {i: _no_time_zone(r) for i, r in before.items()}
    assert not set(merged) & set(users)
    for user in reference["users"]:
        if user["id"] not in merged:
            assert _no_time_zone(users[user["id"]]) == _no_time_zone(user)

    # channels: renamed ones under their new names, the excluded one absent, members following merges
    got = {r["id"]: r for r in table(db_url, "channels", "id")}
    assert set(got) == set(channels) - excluded
    for channel_id, row in got.items():
        old = channels[channel_id]["name"]
        assert row["name"] == RENAMED.get(old, old)
    members = {(m["channel_id"], m["user_id"]) for m in table(db_url, "channel_members", "channel_id, user_id")}
    assert members == {(m["channel_id"], merged[m["user_id"]].id if m["user_id"] in merged else m["user_id"])
                       for m in reference["channel_members"] if m["channel_id"] not in excluded}

    # messages: every one outside the excluded channel, its author merged, its text the same once the
    # new names are read back as the old ones; none left with a merged user's old @name
    new_to_old_user = {u.username: ref["username"] for ref in reference["users"] if ref["id"] in merged
                       for u in [merged[ref["id"]]]}
    new_to_old_channel = {new: old for old, new in RENAMED.items()}
    back = re.compile(r"([@~])(" + "|".join(re.escape(n) for n in [*new_to_old_user, *new_to_old_channel]) + r")\b")
    messages = {r["id"]: r for r in table(db_url, "messages", "id")}
    expected = [m for m in reference["messages"] if m["channel_id"] not in excluded]
    assert set(messages) == {m["id"] for m in expected}
    moved = 0
    for ref in expected:
        row = messages[ref["id"]]
        author = merged[ref["user_id"]].id if ref["user_id"] in merged else ref["user_id"]
        restored = back.sub(lambda m: m.group(1) + (new_to_old_user.get(m.group(2)) if m.group(1) == "@"
                                                     else new_to_old_channel.get(m.group(2), m.group(2))
                                                     ) or m.group(0), row["text"])
        assert (row["user_id"], restored) == (author, ref["text"]), ref["source_id"]
        assert _no_time_zone({k: v for k, v in row.items() if k not in ("user_id", "text", "row_hash")}) == \
            _no_time_zone({k: v for k, v in ref.items() if k not in ("user_id", "text", "row_hash")})
        moved += row["text"] != ref["text"]
    assert moved > 0  # some mentions really moved to the directory's names
    reactions = {(r["message_id"], r["emoji"], r["user_id"]) for r in table(db_url, "reactions", "message_id")}
    assert reactions == {(r["message_id"], r["emoji"], merged[r["user_id"]].id if r["user_id"] in merged
                          else r["user_id"]) for r in reference["reactions"] if r["message_id"] in messages}

    # accounting: what the mapping left out is counted as skipped, the rest loaded
    skipped = sum(1 for m in reference["messages"] if m["channel_id"] in excluded)
    assert result.mapping_plan["skipped"][f"messages: channels.exclude '{EXCLUDED}'"] == skipped
    assert result.counts["messages"]["loaded"] == len(expected)
    assert migrate(db_url, export, mapping).rows_written == 0
