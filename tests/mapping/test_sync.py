"""The [mapping] table of a sync config: applied to every run of `chatmigrate sync`, the same way as
`--map` (a loopback Mattermost API server as the source, SQLite as the target)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main
from chatmigrate.sync import load_config
from tests.sources.servers.mattermost import TOKEN, FakeServer, mattermost_server

TOKEN_VAR = "CM_TEST_MAP_SYNC_TOKEN"


@pytest.fixture
def mm_server() -> Iterator[tuple[str, FakeServer]]:
    with mattermost_server() as served:
        yield served


def config(tmp_path: Path, url: str, mapping: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(f"""target = "sqlite:///{tmp_path / 'chat.db'}"
rejects = "rejects.jsonl"
{mapping}
[[source]]
from = "mattermost-api"
location = "{url}"
options = {{ token_env = "{TOKEN_VAR}" }}
""", encoding="utf-8")
    return path


def test_sync_applies_the_mapping_table(mm_server: tuple[str, FakeServer], tmp_path: Path) -> None:
    url, _ = mm_server
    path = config(tmp_path, url, """[mapping.channels]
exclude = ["old-experiments"]
[mapping.channels.rename]
town-square = "lobby"
""")
    for _ in range(2):  # the second run changes nothing
        done = CliRunner().invoke(main, ["sync", str(path), "--json"], env={TOKEN_VAR: TOKEN})
        assert done.exit_code == 0, done.output
    db = sqlite3.connect(tmp_path / "chat.db")
    names = {r[0] for r in db.execute("SELECT name FROM cm_channels WHERE kind IN ('public', 'private')")}
    assert "lobby" in names and "town-square" not in names and "old-experiments" not in names
    assert db.execute("SELECT COUNT(*) FROM cm_messages WHERE text LIKE '%~town-square%'").fetchone() == (0,)
    excluded_cursors = db.execute("SELECT COUNT(*) FROM cm_sync_state s JOIN cm_channels c ON c.id = s.channel_id "
                                  "WHERE c.name = 'old-experiments'").fetchone()
    assert excluded_cursors == (0,)


def test_a_mapping_file_named_in_the_config_and_its_errors(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text("[channels]\narchived = false\n")
    spec = load_config(config(tmp_path, "http://127.0.0.1:9", 'mapping = "acme.toml"'), {TOKEN_VAR: TOKEN}).mapping
    assert spec is not None and spec.channels.archived is False
    bad = config(tmp_path, "http://127.0.0.1:9", "[mapping.users]\nmatch = 'mail'\n")
    done = CliRunner().invoke(main, ["sync", str(bad)], env={TOKEN_VAR: TOKEN})
    assert done.exit_code == 2
    assert "sync.toml: mapping: users.match: 'mail' is not one of" in done.output
