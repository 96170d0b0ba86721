"""The mapping step on the SQL targets (real SQLite, PostgreSQL and MariaDB): every mapping kind,
checked in the rows, re-runs changing nothing and a changed mapping changing only what it touches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from chatmigrate import pipeline
from chatmigrate.ids import record_id
from chatmigrate.mapping import MappingSpec
from chatmigrate.model import Item
from chatmigrate.targets import target_for
from tests.conftest import sql_rows
from tests.targets.helpers import RecordSource

from . import synth
from .synth import rid


def run(url: str, make: Callable[[], Iterator[Item]], spec: MappingSpec | None = None,
        dry_run: bool = False) -> pipeline.RunResult:
    target = target_for(url)
    try:
        return pipeline.run(RecordSource(make), target,
                            pipeline.RunOptions("migrate", "synth", progress=False, mapping=spec), dry_run=dry_run)
    finally:
        target.close()


def rows(url: str, query: str) -> list[Any]:
    return sql_rows(url, query)


MERGE = """
[users]
match = "email"
[channels.rename]
general = "town-square"
"""


def test_users_merge_by_email_onto_existing_rows(db_url: str) -> None:
    run(db_url, synth.existing_records)
    before = rows(db_url, "SELECT id, username, email, display_name, props, row_hash FROM cm_users ORDER BY id")
    result = run(db_url, synth.records, synth.mapping(MERGE))
    ann, dan = record_id("ldap", "corp", "user", "asmith"), record_id("ldap", "corp", "user", "dlee")
    plan = result.mapping_plan
    assert plan is not None and plan["existing_users"] == 3
    assert plan["users"] == {"merged": 2, "kept": 2}
    assert result.sink.counts["CM401"] == 2
    # The existing rows are untouched, and no row was made for the two merged source users.
    after = rows(db_url, "SELECT id, username, email, display_name, props, row_hash FROM cm_users ORDER BY id")
    assert [r for r in after if r[0] in (ann, dan)] == [r for r in before if r[0] in (ann, dan)]
    assert {r[1] for r in after} == {"ann.smith", "dan.lee", "zed", "bob", "cat"}
    # Authors, reactions, members, creators and mentions moved to the existing users.
    authors = dict(rows(db_url, "SELECT source_id, user_id FROM cm_messages"))
    assert authors["general-0"] == ann and authors["general-3"] == dan and authors["general-1"] == rid("user", "bob")
    assert rows(db_url, f"SELECT user_id FROM cm_reactions WHERE message_id = '{rid('message', 'general-1')}'") == [
        (dan,)]
    members = {r[0] for r in rows(db_url, f"SELECT user_id FROM cm_channel_members WHERE channel_id = "
                                          f"'{rid('channel', 'general')}'")}
    assert members == {ann, dan, rid("user", "bob"), rid("user", "cat")}
    assert rows(db_url, f"SELECT creator_id, name FROM cm_channels WHERE id = '{rid('channel', 'general')}'") == [
        (ann, "town-square")]
    texts = dict(rows(db_url, "SELECT source_id, text FROM cm_messages"))
    assert texts["random-0"] == "msg 0 in ~random for @ann.smith"
    assert texts["random-1"] == "see ~town-square, @bob here"
    assert texts["general-3"] == "see ~town-square, @dan.lee here"
    # Every record accounted for: 4 users read, 2 loaded as themselves and 2 as the existing ones.
    assert result.counts["users"] == {"read": 4, "added": 0, "loaded": 4, "rejected": 0, "skipped": 0}
    again = run(db_url, synth.records, synth.mapping(MERGE))
    assert again.rows_written == 0


def test_filters_skip_with_reasons_and_leave_no_cursor(db_url: str) -> None:
    spec = synth.mapping("""
[channels]
exclude = ["rand*"]
archived = false
direct = false
[time]
since = 2022-01-01
until = "2024-01-01T00:00:00Z"
""")
    result = run(db_url, synth.records, spec)
    names = {r[0] for r in rows(db_url, "SELECT name FROM cm_channels")}
    assert names == {"general", "dev-ops", "ops-alerts", "group-abc"}
    kept = {r[0] for r in rows(db_url, "SELECT source_id FROM cm_messages")}
    # 200-day steps from 2021-06-01: messages 2, 3 and 4 fall in [2022-01-01, 2024-01-01).
    assert kept == {f"{c}-{i}" for c in names for i in (2, 3, 4)}
    skipped = result.mapping_plan["skipped"]
    assert skipped["channels: channels.exclude 'rand*'"] == 1
    assert skipped["channels: archived (channels.archived = false)"] == 1
    assert skipped["channels: a direct conversation (channels.direct = false)"] == 1
    assert skipped["messages: channels.exclude 'rand*'"] == 6
    assert skipped["messages: before time.since (2022-01-01T00:00:00+00:00)"] == 8
    assert skipped["messages: at or after time.until (2024-01-01T00:00:00+00:00)"] == 4
    assert result.counts["messages"]["skipped"] == 6 * 3 + 8 + 4
    assert result.counts["reactions"]["skipped"] == 3 + 4  # message 1 of every channel had one
    assert result.sink.counts["CM407"] == 3 + result.counts["messages"]["skipped"]  # one finding per record
    # The reply whose root (message 0) time.since left out is kept at the top level, saying so.
    reply = rows(db_url, "SELECT thread_root_id, props FROM cm_messages WHERE source_id = 'general-3'")[0]
    props = reply[1] if isinstance(reply[1], dict) else json.loads(reply[1])  # JSONB comes back parsed
    assert reply[0] is None and props["thread_root_filtered"] == rid("message", "general-0")
    assert result.sink.counts["CM408"] == 4
    cursors = {r[0] for r in rows(db_url, "SELECT channel_id FROM cm_sync_state")}
    assert rid("channel", "random") not in cursors and rid("channel", "general") in cursors


def test_merged_channels_and_teams(db_url: str) -> None:
    spec = synth.mapping("""
[teams]
into = "company"
[channels.merge]
ops = ["dev-ops", "C-ops-alerts"]
""")
    result = run(db_url, synth.records, spec)
    team = record_id("chatmigrate-mapping", "", "team", "company")
    assert rows(db_url, "SELECT id, name FROM cm_teams") == [(team, "company")]
    ops = record_id("chatmigrate-mapping", team, "channel", "ops")
    channels = dict(rows(db_url, "SELECT name, id FROM cm_channels"))
    assert channels["ops"] == ops and "dev-ops" not in channels and "ops-alerts" not in channels
    assert {r[0] for r in rows(db_url, "SELECT DISTINCT team_id FROM cm_channels")} == {team}
    members = {r[0] for r in rows(db_url, f"SELECT user_id FROM cm_channel_members WHERE channel_id = '{ops}'")}
    assert members == {rid("user", "ann"), rid("user", "bob"), rid("user", "dan")}
    assert rows(db_url, f"SELECT COUNT(*) FROM cm_messages WHERE channel_id = '{ops}'") == [(12,)]
    assert result.mapping_plan["channels"]["merged"] == 1 and result.mapping_plan["channels"]["merged-away"] == 1
    assert result.counts["channels"]["skipped"] == 1  # the second of the merged pair: its record is not loaded


def test_changed_mapping_changes_exactly_what_it_touches(db_url: str) -> None:
    run(db_url, synth.records, synth.mapping('[channels.rename]\n"dev-ops" = "devops"\n'))
    result = run(db_url, synth.records, synth.mapping('[channels.rename]\n"dev-ops" = "platform"\n'))
    # The channel row only: no message mentions ~dev-ops outside it, and those in it do (3 of 6).
    assert rows(db_url, f"SELECT name FROM cm_channels WHERE id = '{rid('channel', 'dev-ops')}'") == [("platform",)]
    assert result.rows_written == 1 + 3
    assert run(db_url, synth.records, synth.mapping('[channels.rename]\n"dev-ops" = "platform"\n')).rows_written == 0


def test_collisions_unused_entries_and_unmatched_users(db_url: str) -> None:
    run(db_url, synth.existing_records)
    spec = synth.mapping("""
[users]
match = "username"
unmatched = "error"
[users.map]
"ann@old.example" = "zed"
"U-bob" = "zed"
"nobody" = "x"
[channels.rename]
random = "general"
generl = "typo"
""")
    result = run(db_url, synth.records, spec)
    assert result.sink.counts["CM402"] == 1  # bob onto zed, after ann
    assert result.sink.counts["CM405"] == 1  # random renamed onto general
    assert result.sink.counts["CM406"] == 2  # "nobody", "generl"
    assert result.sink.counts["CM403"] == 2  # cat and dan: no user named so in the target
    assert result.counts["users"] == {"read": 4, "added": 0, "loaded": 1, "rejected": 2, "skipped": 1}
    by_cat_or_dan = [m for c, (_, members, _) in synth.CHANNELS.items() for i, m in
                     ((i, members[i % len(members)]) for i in range(synth.PER_CHANNEL)) if m in ("cat", "dan")]
    assert result.counts["messages"]["rejected"] == len(by_cat_or_dan)
    # CM404 for each of their messages, and for each of their reactions on the messages that stay.
    assert result.sink.counts["CM404"] == len(by_cat_or_dan) + result.counts["reactions"]["rejected"] - sum(
        1 for c, (_, members, _) in synth.CHANNELS.items() if members[1 % len(members)] in ("cat", "dan"))
    zed = record_id("ldap", "corp", "user", "zed")
    assert rows(db_url, f"SELECT COUNT(*) FROM cm_messages WHERE user_id = '{zed}'")[0][0] > 0
    assert rows(db_url, "SELECT COUNT(*) FROM cm_users WHERE source = 'synth'") == [(0,)]


def test_validate_shows_the_plan_and_writes_nothing(db_url: str) -> None:
    run(db_url, synth.existing_records)
    before = rows(db_url, "SELECT COUNT(*) FROM cm_messages")
    result = run(db_url, synth.records, synth.mapping(MERGE), dry_run=True)
    assert result.mapping_plan["users"] == {"merged": 2, "kept": 2}
    assert rows(db_url, "SELECT COUNT(*) FROM cm_messages") == before == [(0,)]


def test_two_workspaces_merged_into_one_team_by_two_runs(db_url: str) -> None:
    from dataclasses import replace

    from chatmigrate.model import Channel, Message, Team

    def workspace(scope: str) -> Callable[[], Iterator[Item]]:
        def make() -> Iterator[Item]:
            for item in synth.records():
                if isinstance(item, (Team, Channel, Message)) or hasattr(item, "username"):
                    # Another workspace: other ids for the same names.
                    yield replace(item, id=f"{scope}-{item.id}", **(
                        {"team_id": f"{scope}-{item.team_id}", "member_ids": ()} if isinstance(item, Channel) else
                        {"channel_id": f"{scope}-{item.channel_id}", "user_id": None, "reactions": (),
                         "thread_root_id": None} if isinstance(item, Message) else {}))
        return make

    spec = synth.mapping('[teams]\ninto = "acme"\n[channels.merge]\ngeneral = ["general"]\n')
    run(db_url, workspace("W1"), spec)
    run(db_url, workspace("W2"), spec)
    assert rows(db_url, "SELECT name FROM cm_teams") == [("acme",)]
    generals = rows(db_url, "SELECT id FROM cm_channels WHERE name = 'general'")
    assert len(generals) == 1
    assert rows(db_url, f"SELECT COUNT(*) FROM cm_messages WHERE channel_id = '{generals[0][0]}'") == [
        (2 * synth.PER_CHANNEL,)]
    # Channels not merged keep one row per workspace, both in the one team (channels.merge joins them).
    assert rows(db_url, "SELECT COUNT(*) FROM cm_channels WHERE name = 'random'") == [(2,)]
