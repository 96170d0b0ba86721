"""What chatmigrate prints (issue 12 #15): control characters from the input are escaped in every
summary line, report and error; counts are pluralised; the human summary goes to stderr and `--json`
alone to stdout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "slack"
EVIL = "ev\x1b[2Jil\tname"  # a terminal escape (clear screen) and a tab, in a channel's name
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # what must never reach the terminal (\n ends lines)


@pytest.fixture
def evil_export(tmp_path: Path) -> Path:
    """The sample with one channel renamed EVIL, holding one message with an unreadable timestamp."""
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    channels = json.loads((folder / "channels.json").read_text())
    random = next(c for c in channels if c["name"] == "random")
    random["name"] = EVIL
    (folder / "channels.json").write_text(json.dumps(channels))
    shutil.move(folder / "random", folder / EVIL)
    (folder / EVIL / "2024-02-11.json").write_text(json.dumps([{"type": "message", "user": "U0BOB0002",
                                                                "ts": "not-a-ts", "text": "x"}]))
    return folder


def test_control_characters_from_the_input_are_escaped_everywhere(evil_export: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["validate", str(evil_export), "--report", str(report)],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert "ev\\x1b[2Jil\\tname/2024-02-11.json:1: unreadable ts" in result.stderr
    assert not RAW_CONTROL.search(result.stderr) and not RAW_CONTROL.search(result.stdout)
    assert not RAW_CONTROL.search(report.read_text(encoding="utf-8"))
    # An error line quoting a path given on the command line.
    code_result = CliRunner().invoke(main, ["migrate", str(tmp_path / "no\x1b[31mpe.zip")],
                                     catch_exceptions=False)
    assert code_result.exit_code == 2 and "no\\x1b[31mpe.zip" in code_result.stderr
    assert not RAW_CONTROL.search(code_result.stderr)


def test_counts_are_pluralised(evil_export: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["validate", str(evil_export), "--report", str(report)],
                                catch_exceptions=False)
    findings = next(line for line in result.stderr.splitlines() if line.startswith("  findings:"))
    assert re.fullmatch(r"  findings: 1 error, \d+ warnings, \d+ info", findings), findings
    page = report.read_text(encoding="utf-8")
    assert "1 error:" in page and "1 errors" not in page and ">1 error · " in page


def test_summary_on_stderr_and_json_alone_on_stdout(tmp_path: Path) -> None:
    """Real processes, so the two streams are really apart: stdout stays free for --json and pipes."""
    command = [sys.executable, "-m", "chatmigrate", "migrate", str(SAMPLE), "--to", f"sqlite:///{tmp_path / 'c.db'}"]
    human = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert human.returncode == 0 and human.stdout == ""
    assert human.stderr.startswith(f"migrate: {SAMPLE} (slack-export)") and "rows inserted or changed" in human.stderr
    machine = subprocess.run([*command, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert machine.returncode == 0 and machine.stderr == ""
    assert json.loads(machine.stdout)["counts"]["messages"]["loaded"] == 34
