"""Every mapping kind into the chat-server targets (a Mattermost package, Rocket.Chat on FerretDB):
a team merged, channels merged, renamed and left out (by name, archived, direct), a time window."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo

from chatmigrate import pipeline
from tests.targets.helpers import unzip_lines

from . import synth

EVERY_KIND = """
[teams]
into = "company"
[channels]
exclude = ["random"]
archived = false
direct = false
[channels.rename]
general = "lobby"
[channels.merge]
ops = ["dev-ops", "ops-alerts"]
[time]
since = 2022-01-01
until = 2024-01-01
"""
# 200-day steps from 2021-06-01: messages 2, 3 and 4 of each channel fall in the window.
IN_WINDOW = 3


def migrate(url: str) -> pipeline.RunResult:
    return synth.migrate(url, EVERY_KIND)


def test_every_kind_into_a_mattermost_package(tmp_path: Path, mmvalidate: Callable[..., dict[str, Any]]) -> None:
    out = tmp_path / "out.zip"
    result = migrate(f"mattermost-import://{out}?default_email_domain=example.com")
    lines = unzip_lines(out)
    assert [line["team"]["name"] for line in lines if line["type"] == "team"] == ["company"]
    channels = {line["channel"]["name"]: line["channel"] for line in lines if line["type"] == "channel"}
    assert set(channels) == {"lobby", "ops"} and {c["team"] for c in channels.values()} == {"company"}
    posts = Counter(line["post"]["channel"] for line in lines if line["type"] == "post")
    replies = sum(len(line["post"].get("replies") or ()) for line in lines if line["type"] == "post")
    assert sum(posts.values()) + replies == IN_WINDOW * 3  # lobby and the two merged into ops
    assert posts["ops"] + sum(len(line["post"].get("replies") or ()) for line in lines
                              if line["type"] == "post" and line["post"]["channel"] == "ops") == IN_WINDOW * 2
    directs = [line for line in lines if line["type"] in ("direct_channel", "direct_post")]
    assert {tuple(sorted(line["direct_channel"]["members"])) for line in directs if line["type"] == "direct_channel"
            } == {("ann", "bob", "cat")}  # the group stays, the direct conversation is left out
    assert all("~general" not in line["post"]["message"] for line in lines if line["type"] == "post")
    assert result.counts["channels"]["skipped"] == 4  # random, old-project, dm-ann-bob, ops-alerts
    assert mmvalidate(out)["errors"] == []


def test_every_kind_into_rocketchat(ferretdb: str) -> None:
    database = f"cmtest_{uuid.uuid4().hex[:12]}"
    client = pymongo.MongoClient(f"{ferretdb}/")
    try:
        result = migrate(f"rocketchat+mongodb://{ferretdb.removeprefix('mongodb://')}/{database}")
        db = client[database]
        rooms = {r["_id"]: r for r in db.rocketchat_room.find({})}
        named = {r["name"]: r for r in rooms.values() if r.get("name")}
        assert set(named) == {"lobby", "ops"}
        assert [r["t"] for r in rooms.values() if not r.get("name")] == ["d"]  # the group conversation only
        per_room = Counter(m["rid"] for m in db.rocketchat_message.find({}))
        assert per_room[named["ops"]["_id"]] == IN_WINDOW * 2 and per_room[named["lobby"]["_id"]] == IN_WINDOW
        assert sum(per_room.values()) == IN_WINDOW * 4
        assert result.counts["messages"]["skipped"] == 6 * 7 - IN_WINDOW * 4
        assert migrate(f"rocketchat+mongodb://{ferretdb.removeprefix('mongodb://')}/{database}").rows_written == 0
    finally:
        client.drop_database(database)
        client.close()


def test_every_kind_into_lanying(tmp_path: Path, monkeypatch: Any) -> None:
    from tests.lanying_server import ADMIN_TOKEN, running, target_url

    monkeypatch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)
    with running(dedup_seconds=0) as server:
        url = target_url(server, tmp_path / "hub.db")
        result = migrate(url)
        groups = {g["group_id"]: g for g in server.state.groups.values()}
        by_name = {g["name"]: g for g in groups.values()}
        assert {"lobby", "ops"} <= set(by_name) and not {"general", "random", "dev-ops", "old-project"} & set(by_name)
        per_group = Counter(m.to_id for m in server.state.messages)
        assert per_group[by_name["ops"]["group_id"]] == IN_WINDOW * 2
        assert per_group[by_name["lobby"]["group_id"]] == IN_WINDOW
        assert len(server.state.messages) == IN_WINDOW * 4  # and the group conversation's; no direct one
        assert result.counts["messages"]["skipped"] == 6 * 7 - IN_WINDOW * 4
        assert migrate(url).rows_written == 0 and len(server.state.messages) == IN_WINDOW * 4
