"""The Slack extractor on real exports written by other projects (../shared/realdata/slack)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

# path under realdata/slack → expected counts per kind: (read, added, loaded, rejected, skipped)
EXPECTED = {
    "awat/test/dummy-slack-workspace-archive.zip": {
        # 77 in users.json + 5 authors discovered in messages (Slack Connect profiles, bots); one
        # shared-channel author has no profile at all → one placeholder
        "users": (82, 1, 83, 0, 0), "channels": (25, 0, 25, 0, 0), "messages": (6131, 0, 6131, 0, 0),
        "files": (11, 0, 11, 0, 0), "reactions": (0, 0, 0, 0, 0), "export_files": (1, 0, 0, 0, 1),
    },
    "slack-export-viewer/tests/testarchive.zip": {
        "users": (7, 0, 7, 0, 0), "channels": (2, 0, 2, 0, 0), "messages": (158, 0, 158, 0, 0),
        "reactions": (1, 0, 1, 0, 0), "files": (4, 0, 4, 0, 0),
    },
    "slackdump/internal/fixtures/assets/source_export.zip": {
        "users": (10, 0, 10, 0, 0), "channels": (1, 0, 1, 0, 0), "messages": (16, 0, 16, 0, 0),
        "files": (2, 0, 2, 0, 0),
    },
    "slackdump/internal/fixtures/assets/export": {
        "users": (8, 0, 8, 0, 0), "channels": (12, 0, 12, 0, 0), "messages": (0, 0, 0, 0, 0),
        "export_files": (1, 0, 0, 0, 1),
    },
    "zulip/zerver/tests/fixtures/slack_fixtures": {
        # fixture files only (no users.json); the day file sits two folders deep, outside the export
        # layout, so it is reported as a skipped export member rather than read
        "channels": (11, 0, 11, 0, 0), "messages": (0, 0, 0, 0, 0), "export_files": (1, 0, 0, 0, 1),
    },
}


def migrate(location: Path, db: Path) -> dict:
    result = CliRunner().invoke(main, ["migrate", "--from", "slack-export", str(location), "--to", f"sqlite:///{db}",
                                       "--json", "--rejects", str(db.with_suffix(".rejects.jsonl"))])
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_real_export_fully_accounted(relative: str, realdata: Path, tmp_path: Path) -> None:
    data = migrate(realdata / "slack" / relative, tmp_path / "t.db")
    for kind, c in data["counts"].items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind
    for kind, expected in EXPECTED[relative].items():
        got = data["counts"][kind]
        assert (got["read"], got["added"], got["loaded"], got["rejected"], got["skipped"]) == expected, kind
    again = migrate(realdata / "slack" / relative, tmp_path / "t.db")
    assert again["rows_written"] == 0


def test_awat_threads_mentions_and_tokens(realdata: Path, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    migrate(realdata / "slack" / "awat/test/dummy-slack-workspace-archive.zip", db)
    with sqlite3.connect(db) as conn:
        # 4 threads, 28 messages carry thread_ts → 24 replies, each linked to a root in the same channel
        assert conn.execute("select count(*) from cm_messages where thread_root_id is not null").fetchone()[0] == 24
        linked = conn.execute("select count(*) from cm_messages r join cm_messages p on p.id = r.thread_root_id "
                              "and p.channel_id = r.channel_id").fetchone()[0]
        assert linked == 24
        assert conn.execute("select count(*) from cm_messages where text like '%<@U%'").fetchone()[0] == 0
        assert conn.execute("select count(*) from cm_messages where edited_at is not null").fetchone()[0] == 3
        assert conn.execute("select count(*) from cm_users where is_deleted").fetchone()[0] >= 26
        dump = "\n".join(str(row) for table in ("messages", "files", "users", "runs")
                         for row in conn.execute(f"select * from cm_{table}"))
        assert "xoxe-" not in dump


def test_slack_export_viewer_reactions_and_old_files(realdata: Path, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    migrate(realdata / "slack" / "slack-export-viewer/tests/testarchive.zip", db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from cm_reactions").fetchone()[0] == 1
        names = {row[0] for row in conn.execute("select name from cm_files")}
        assert names and all(names)
