"""The CLI end to end on samples/slack: exact counts, idempotent re-runs, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "slack"


def invoke(*args: str, cwd: Path | None = None) -> tuple[int, dict | None, str]:
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        result = runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.exit_code, data, result.stderr


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"select count(*) from cm_{t}").fetchone()[0]
                for t in ("teams", "users", "channels", "channel_members", "messages", "reactions", "files")}


def test_migrate_sample_accounts_for_everything(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    code, data, _ = invoke("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "--json", cwd=tmp_path)
    assert code == 0
    counts = data["counts"]
    for kind, c in counts.items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind
    assert counts["messages"] == {"read": 35, "added": 0, "loaded": 34, "rejected": 0, "skipped": 1}
    assert counts["users"] == {"read": 12, "added": 2, "loaded": 14, "rejected": 0, "skipped": 0}
    assert counts["channels"]["loaded"] == 8
    assert counts["reactions"]["loaded"] == 7
    assert counts["files"]["loaded"] == 4
    # CM007 ×3: integration logs, README, and F0OLDFILE's bytes only linked from files.slack.com (a download).
    assert data["findings"] == {"CM007": 3, "CM102": 1, "CM103": 1, "CM106": 1, "CM107": 1, "CM114": 7, "CM118": 2}
    assert counts["export_files"] == {"read": 2, "added": 0, "loaded": 0, "rejected": 0, "skipped": 2}  # logs, README
    tables = table_counts(db)
    # F0OLDFILE is shared by two messages: one file row
    assert tables == {"teams": 1, "users": 14, "channels": 8, "channel_members": 22, "messages": 34,
                      "reactions": 7, "files": 3}
    with sqlite3.connect(db) as conn:
        replies = conn.execute("select count(*) from cm_messages where thread_root_id is not null").fetchone()[0]
        assert replies == 4
        orphan = conn.execute("select props from cm_messages where text like 'Reply whose root%'").fetchone()[0]
        assert "orphan_of" in json.loads(orphan)
        texts = {row[0] for row in conn.execute("select text from cm_messages")}
        assert "Thanks for adding me, @alice" in texts
        assert not any("xoxe-" in (row[0] or "") for row in conn.execute("select source_url from cm_files"))
        run = conn.execute("select command, status, counts from cm_runs").fetchone()
        assert run[0] == "migrate" and run[1] == "ok" and json.loads(run[2])["messages"]["loaded"] == 34
        cursors = conn.execute("select count(*) from cm_sync_state").fetchone()[0]
        assert cursors == 7


def test_second_migrate_changes_no_row(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    target = f"sqlite:///{db}"
    invoke("migrate", str(SAMPLE), "--to", target, "--json", cwd=tmp_path)
    with sqlite3.connect(db) as conn:
        before = {t: conn.execute(f"select * from cm_{t} order by 1, 2").fetchall()
                  for t in ("users", "channels", "channel_members", "messages", "reactions", "files")}
    code, data, _ = invoke("migrate", str(SAMPLE), "--to", target, "--json", cwd=tmp_path)
    assert code == 0 and data["rows_written"] == 0
    with sqlite3.connect(db) as conn:
        after = {t: conn.execute(f"select * from cm_{t} order by 1, 2").fetchall() for t in before}
        assert conn.execute("select count(*) from cm_runs").fetchone()[0] == 2
    assert before == after


def test_validate_writes_nothing(tmp_path: Path) -> None:
    code, data, _ = invoke("validate", str(SAMPLE), "--json", cwd=tmp_path)
    assert code == 0 and data["dry_run"] is True and data["counts"]["messages"]["loaded"] == 34
    assert list(tmp_path.iterdir()) == []


def test_inspect(tmp_path: Path) -> None:
    code, data, _ = invoke("inspect", str(SAMPLE), "--json")
    assert code == 0
    assert data["source"] == "slack-export" and data["scope"] == "T0SAMPLE1"
    assert data["counts"]["messages"]["read"] == 35
    assert data["first_message_at"].startswith("2024-02-10") and data["last_message_at"].startswith("2024-03-02")


def test_sources_lists_slack() -> None:
    code, data, _ = invoke("sources", "--json")
    assert code == 0 and "slack-export" in {s["name"] for s in data["sources"]}


def _export_with(tmp_path: Path, day: list | str) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    text = day if isinstance(day, str) else json.dumps(day, indent=4)
    (folder / "random" / "2024-02-11.json").write_text(text)
    return folder


def test_rejects_file_and_exit_1(tmp_path: Path) -> None:
    folder = _export_with(tmp_path, [{"type": "message", "user": "U0BOB0002", "ts": "not-a-ts", "text": "x"},
                                     {"type": "message", "user": "U0BOB0002", "ts": "1707652800.000100",
                                      "text": "fine"}])
    rejects = tmp_path / "rejects.jsonl"
    code, data, _ = invoke("migrate", str(folder), "--to", f"sqlite:///{tmp_path / 'c.db'}", "--rejects",
                           str(rejects), "--json", cwd=tmp_path)
    assert code == 1
    assert data["counts"]["messages"]["rejected"] == 1 and data["counts"]["messages"]["loaded"] == 35
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["location"] == "random/2024-02-11.json:2"
    assert lines[0]["findings"][0]["code"] == "CM004" and lines[0]["record"]["ts"] == "not-a-ts"


def test_strict_writes_nothing_when_errors(tmp_path: Path) -> None:
    folder = _export_with(tmp_path, [{"type": "message", "user": "U0BOB0002", "ts": "bad", "text": "x"}])
    db = tmp_path / "c.db"
    code, _, _ = invoke("migrate", str(folder), "--to", f"sqlite:///{db}", "--strict", "--json", cwd=tmp_path)
    assert code == 1 and not db.exists()


def test_bad_text_is_repaired_and_recorded(tmp_path: Path) -> None:
    long_text = "long " * 8000  # 40,000 characters
    folder = _export_with(tmp_path, '[{"type": "message", "user": "U0BOB0002", "ts": "1707652800.000100", '
                                    '"text": "nul\\u0000 and lone \\ud800 surrogate"},'
                                    f'{{"type": "message", "user": "U0BOB0002", "ts": "1707652801.000100", '
                                    f'"text": "{long_text}"}}]')
    db = tmp_path / "c.db"
    code, data, _ = invoke("migrate", str(folder), "--to", f"sqlite:///{db}", "--json", cwd=tmp_path)
    assert code == 0 and data["findings"]["CM108"] == 1 and data["findings"]["CM109"] == 1
    with sqlite3.connect(db) as conn:
        text, props = conn.execute("select text, props from cm_messages where text like 'nul%'").fetchone()
        assert text == "nul and lone \ufffd surrogate"
        assert "\\x00" in json.loads(props)["source_text_escaped"] or "\\u0000" in props
        assert conn.execute("select length(text) from cm_messages where text like 'long%'").fetchone()[0] == 40000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # issue 12 #15: a missing path is named as missing, not as an unknown form
        (["migrate", "/no/such/export.zip"], "chatmigrate: error: /no/such/export.zip: no such file or folder"),
        (["migrate", "--from", "nope", "x"], "chatmigrate: error: unknown source 'nope'; known:"),
        (["migrate", str(SAMPLE), "--to", "notaurl"], "chatmigrate: error: --to 'notaurl' is not a target URL"),
        # --retry-for 0: no retry, so no "retrying" notice before the one error line.
        (["migrate", str(SAMPLE), "--to", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "--retry-for", "0"],
         "chatmigrate: error: postgresql+psycopg://u:***@127.0.0.1:1/db: creating the schema failed"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = invoke(*args, cwd=tmp_path)
    assert code == 2
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "s3cret" not in err


def test_corrupt_zip_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    code, _, err = invoke("migrate", "--from", "slack-export", str(bad), cwd=tmp_path)
    assert code == 2 and err.startswith("chatmigrate: error:") and "Traceback" not in err


def test_console_script_default_target(tmp_path: Path) -> None:
    """The README's first command: installed script, default ./chatmigrate.db."""
    exe = shutil.which("chatmigrate") or pytest.fail("the chatmigrate console script is not installed")
    done = subprocess.run([exe, "migrate", str(SAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "messages" in done.stderr and (tmp_path / "chatmigrate.db").exists()
    assert table_counts(tmp_path / "chatmigrate.db")["messages"] == 34
    module = subprocess.run([sys.executable, "-m", "chatmigrate", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and "chatmigrate" in module.stdout


def test_target_repairs_are_reported(db_url: str, tmp_path: Path) -> None:
    """A value the database cannot hold (a 300-character channel name in a VARCHAR(255)) is repaired by
    the loader, and the run says so in --json and cm_runs; SQLite holds it whole."""
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    channels = json.loads((folder / "channels.json").read_text())
    channels[1]["name"] = "n" * 300
    (folder / "channels.json").write_text(json.dumps(channels))
    shutil.move(folder / "random", folder / "C0RANDOM1")  # a 300-byte folder name is impossible; by id works
    code, data, _ = invoke("migrate", "--from", "slack-export", str(folder), "--to", db_url, "--json", cwd=tmp_path)
    assert code == 0, data
    repairs = data["load"]["repairs"]
    if db_url.startswith("sqlite"):
        assert repairs == {}
    else:
        assert any(key.startswith("channels.name") for key in repairs), repairs
