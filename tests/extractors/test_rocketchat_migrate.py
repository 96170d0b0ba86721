"""`chatmigrate migrate` end to end on Rocket.Chat dumps: every record accounted for, the rows it
writes, no credential in the target, and a second run that changes no row (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "rocketchat" / "dump"
REAL = {
    "TFC": "TFC/dump",
    "local-dev-env": "local-dev-env/dumps/mongodb/dump",
    "mse1h2025-rocket0": "mse1h2025-rocket0/dump",
}


def migrate(location: Path, target: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["migrate", str(location), "--to", target, "--json", "-q"],
                                    catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, json.loads(result.stdout)


def balanced(counts: dict[str, dict[str, int]]) -> None:
    for kind, c in counts.items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind


def test_migrate_sample_accounts_for_every_record(db_url: str, tmp_path: Path) -> None:
    code, data = migrate(SAMPLE, db_url, tmp_path)
    assert code == 0, data
    counts = data["counts"]
    balanced(counts)
    assert counts["messages"] == {"read": 31, "added": 0, "loaded": 30, "rejected": 0, "skipped": 1}
    # `ghost`, who left the server, gets a placeholder user.
    assert counts["users"] == {"read": 7, "added": 1, "loaded": 8, "rejected": 0, "skipped": 0}
    assert counts["channels"] == {"read": 10, "added": 0, "loaded": 9, "rejected": 0, "skipped": 1}
    assert counts["reactions"] == {"read": 7, "added": 0, "loaded": 6, "rejected": 0, "skipped": 1}
    assert counts["files"] == {"read": 4, "added": 0, "loaded": 3, "rejected": 0, "skipped": 1}
    assert counts["emoji"]["loaded"] == 1 and counts["other"]["skipped"] == 1
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        def one(sql: str) -> Any:
            return conn.exec_driver_sql(sql).scalar()
        assert one("select count(*) from cm_messages") == 30
        assert one("select count(*) from cm_messages where thread_root_id is not null") == 4
        assert one("select count(*) from cm_messages where deleted_at is not null") == 2
        assert one("select count(*) from cm_reactions") == 6
        assert one("select count(*) from cm_files where sha256 is not null") == 2  # the upload and the emoji
        assert one("select count(*) from cm_channels where kind = 'group'") == 1
        assert one("select count(*) from cm_channel_members") == 19
        users = conn.exec_driver_sql("select username, props from cm_users").fetchall()
        everything = json.dumps([list(r) for r in users], default=str)
        assert "bcrypt" not in everything and "$2b$" not in everything and "c2VjcmV0" not in everything
    engine.dispose()
    code, again = migrate(SAMPLE, db_url, tmp_path)
    assert code == 0 and again["rows_written"] == 0
    assert again["counts"] == counts


def test_sample_target_file_holds_no_credential(tmp_path: Path) -> None:
    db = tmp_path / "rc.db"
    code, _data = migrate(SAMPLE, f"sqlite:///{db}", tmp_path)
    assert code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    raw = db.read_bytes()
    for secret in (b"$2b$10$", b"c2VjcmV0LXRva2Vu", b"visitor-token"):
        assert secret not in raw


@pytest.mark.parametrize(("name", "messages", "users", "channels"), [
    ("TFC", 39, 4, 2),
    ("local-dev-env", 3, 4, 1),
    ("mse1h2025-rocket0", 23, 7, 7),
])
def test_migrate_real_dumps(realdata: Path, tmp_path: Path, name: str, messages: int, users: int,
                            channels: int) -> None:
    db = tmp_path / "rc.db"
    code, data = migrate(realdata / "rocketchat" / REAL[name], f"sqlite:///{db}", tmp_path)
    assert code == 0, data
    counts = data["counts"]
    balanced(counts)
    assert counts["messages"]["loaded"] == counts["messages"]["read"] == messages
    assert counts["users"]["read"] == users and counts["channels"]["loaded"] == channels
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from cm_messages").fetchone()[0] == messages
        if name == "TFC":  # all of its history is in the trash: every row is a deleted message
            assert conn.execute("select count(*) from cm_messages where deleted_at is null").fetchone()[0] == 0
    code, again = migrate(realdata / "rocketchat" / REAL[name], f"sqlite:///{db}", tmp_path)
    assert code == 0 and again["rows_written"] == 0
