"""The mapping step into 蓝莺IM (the loopback server of tests/lanying_server.py): a source user merged
onto an app user is never registered and writes as that user; a re-run matching by username finds the
users the first run registered as themselves; renames and filters follow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lanying_server import ADMIN_TOKEN, APP_ID, LanyingServer, running, target_url

from . import synth


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LanyingServer]:
    monkeypatch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)
    with running(dedup_seconds=0) as srv:
        yield srv


def registered(server: LanyingServer) -> list[str]:
    return [item["username"] for body in server.routes("/user/register/batch") for item in body["list"]]


def test_merge_rename_and_filter_into_lanying(server: LanyingServer, tmp_path: Path) -> None:
    server.answer("POST", "/user/register/batch", {"app_id": APP_ID, "access-token": ADMIN_TOKEN}, {},
                  {"list": [{"username": "ann_smith", "password": "pw-of-ann"}]})
    ann = server.state.user_by_name("ann_smith")
    assert ann is not None
    url = target_url(server, tmp_path / "hub.db")
    mapping = synth.MERGE_RENAME_EXCLUDE.replace('match = "email"',
                                                 'match = "username"\n[users.map]\nann = "ann_smith"')
    first = synth.migrate(url, mapping)
    assert first.mapping_plan["users"] == {"merged": 1, "kept": 3}
    assert sorted(registered(server)) == ["bob", "cat", "dan"]  # not ann: merged onto ann_smith
    groups = {g["name"] for g in server.state.groups.values()}
    assert "town-square" in groups and "random" not in groups and "general" not in groups
    by_ann = [m for m in server.state.messages if m.from_uid == ann["user_id"]]
    assert by_ann and {json.loads(m.ext)["chatmigrate"]["author"]["username"] for m in by_ann} == {"ann_smith"}
    assert not any("@ann " in m.content or m.content.endswith("@ann") for m in server.state.messages)
    sent = len(server.state.messages)
    # Again, matching by username: bob, cat and dan are the users this target registered, not merges.
    again = synth.migrate(url, mapping)
    assert again.mapping_plan["users"] == {"merged": 1, "kept": 3}
    assert len(registered(server)) == 3 and len(server.state.messages) == sent
