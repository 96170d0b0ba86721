"""`validate` and `migrate` through the CLI on crafted Slack exports: findings, rejects, exit codes,
and proof that `validate` writes nothing but the report files."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

Invoke = Callable[..., tuple[int, Any, str]]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root` → (sha256, mtime_ns): equal snapshots mean nothing was written."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def balanced(counts: dict[str, dict[str, int]]) -> bool:
    return all(c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"] for c in counts.values())


def test_crafted_export_reports_every_rule_in_one_pass(crafted: Path, crafted_codes: set[str], cli: Invoke,
                                                       tmp_path: Path) -> None:
    code, data, _ = cli("validate", str(crafted), "--max-text", "50", "--rejects", "rejects.jsonl", "--json",
                        cwd=tmp_path)
    assert code == 1
    assert set(data["findings"]) == crafted_codes
    assert balanced(data["counts"])
    assert data["counts"]["messages"]["rejected"] == 3  # CM004, CM105, CM005
    assert data["counts"]["users"]["added"] == 2  # placeholders for the ghost author and reactor
    lines = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    where = {line["findings"][0]["code"]: line["location"] for line in lines}
    assert where == {"CM004": "general/2024-01-15.json:8", "CM105": "general/2024-01-15.json:20",
                     "CM005": "ghost-channel/2024-01-01.json:2"}  # each unplaceable message, at its line
    for rule_row in data["rules"]:
        for example in rule_row["examples"]:
            assert example["location"] and example["repair"] and example["severity"] == rule_row["severity"]


def test_require_email_is_an_error(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    code, data, _ = cli("validate", str(crafted), "--require-email", "--json", cwd=tmp_path)
    assert code == 1 and data["findings"]["CM119"] == 1 and data["counts"]["users"]["rejected"] == 1


def test_validate_touches_nothing_but_its_report_files(cli: Invoke, slack_export: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    """Target database (given by CHATMIGRATE_TARGET_URL), export and cwd are byte-for-byte unchanged."""
    export = slack_export(tmp_path / "export")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "db").mkdir()
    db = tmp_path / "db" / "target.db"
    code, _, _ = cli("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "--json", cwd=tmp_path)
    assert code == 0 and db.exists()
    (work / "notes.txt").write_text("the admin's own file")
    before = {"export": snapshot(export), "work": snapshot(work), "db": snapshot(db.parent)}
    env = {"CHATMIGRATE_TARGET_URL": f"sqlite:///{db}"}
    code, data, _ = cli("validate", str(export), "--report", "report.html", "--rejects", "rejects.jsonl", "--json",
                        cwd=work, env=env)
    assert code == 1 and data["dry_run"] is True and data["target"] is None and data["rows_written"] == 0
    after_work = snapshot(work)
    assert set(after_work) - set(before["work"]) == {"report.html", "rejects.jsonl"}
    assert {k: v for k, v in after_work.items() if k in before["work"]} == before["work"]
    assert snapshot(export) == before["export"]
    assert snapshot(db.parent) == before["db"]  # includes target.db (and no -wal/-journal appeared)
    # and with a target that does not exist yet, validate does not create it
    env = {"CHATMIGRATE_TARGET_URL": f"sqlite:///{tmp_path / 'never.db'}"}
    cli("validate", str(export), "--quiet", cwd=work, env=env)
    assert not (tmp_path / "never.db").exists()


def test_plain_migrate_loads_valid_records_and_rejects_the_rest(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code, data, _ = cli("migrate", str(crafted), "--to", f"sqlite:///{db}", "--rejects", "r.jsonl", "--report",
                        "r.html", "--json", cwd=tmp_path)
    assert code == 1 and balanced(data["counts"])
    with sqlite3.connect(db) as conn:
        loaded = conn.execute("select count(*) from cm_messages").fetchone()[0]
        missing = conn.execute("select props from cm_files").fetchone()[0]
    assert loaded == data["counts"]["messages"]["loaded"] == 13
    assert json.loads(missing)["missing"] is True  # CM118's repair reaches the target
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == data["rejected_records"] == 3
    assert data["report_file"] == "r.html" and (tmp_path / "r.html").stat().st_size > 0


def test_strict_migrate_writes_nothing_when_errors_exist(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "existing.db"
    cli("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "--quiet", cwd=tmp_path)
    before = snapshot(tmp_path / "existing.db")
    code, data, _ = cli("migrate", str(crafted), "--to", f"sqlite:///{db}", "--strict", "--report", "s.html",
                        "--json", cwd=tmp_path)
    assert code == 1 and data["command"] == "validate" and data["rows_written"] == 0
    assert snapshot(tmp_path / "existing.db") == before
    assert "CM105" in (tmp_path / "s.html").read_text()
    fresh = tmp_path / "fresh.db"
    code, _, _ = cli("migrate", str(crafted), "--to", f"sqlite:///{fresh}", "--strict", "--quiet", cwd=tmp_path)
    assert code == 1 and not fresh.exists()


def test_strict_migrate_of_a_clean_export_loads(cli: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code, data, _ = cli("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "--strict", "--json", cwd=tmp_path)
    assert code == 0 and data["command"] == "migrate" and data["rows_written"] > 0


def test_max_errors_stops_early_with_a_clear_message(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    code, _, err = cli("validate", str(crafted), "--max-errors", "1", "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1
    assert err.strip().splitlines() == [err.strip()], err  # one line, no traceback
    assert "stopped after 1 rejected records (--max-errors 1)" in err and "r.jsonl" in err
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1
    code, _, _ = cli("validate", str(crafted), "--max-errors", "10", "--quiet", cwd=tmp_path)
    assert code == 1  # more room than errors: runs to the end, same verdict


def test_exit_codes(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    assert cli("validate", str(SAMPLE), "--quiet", cwd=tmp_path)[0] == 0
    assert cli("validate", str(crafted), "--quiet", cwd=tmp_path)[0] == 1
    assert cli("validate", str(crafted), "--max-errors", "0", cwd=tmp_path)[0] == 2  # usage
    code, _, err = cli("validate", str(tmp_path / "no-such-export"), cwd=tmp_path)  # unreadable input
    assert code == 2 and err.startswith("chatmigrate: error:")
    code, _, err = cli("validate", "--from", "slack-export", str(tmp_path / "no-such-export"), cwd=tmp_path)
    assert code == 2 and "Traceback" not in err


def test_terminal_summary_lists_rules_with_examples(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    code, _, err = cli("validate", str(crafted), "--max-text", "50", "--report", "r.html", cwd=tmp_path)
    assert code == 1
    assert "findings: 3 errors," in err
    assert "CM105 duplicate-id-conflict (error): 1 — the first copy is loaded, the second rejected" in err
    assert "general/2024-01-15.json:20" in err  # the first example, with its place
    assert "rejected records were not written (use --rejects FILE to keep them)" in err
    assert err.rstrip().endswith("report: r.html")
