"""Fixtures for validation tests: a small crafted Slack export that trips many rules, the CLI, Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

IN_CI = os.environ.get("CI", "").lower() == "true"
APT_TIMEOUT = 900  # seconds for `apt-get update && apt-get install chromium chromium-driver`


def _ts(day: str, n: int) -> str:
    """A Slack ts on `day` (YYYY-MM-DD, 12:00 UTC) plus n seconds."""
    from datetime import UTC, datetime

    base = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC).timestamp()
    return f"{int(base) + n}.{n:06d}"


def write_slack_export(folder: Path, *, extra_general: list[Any] | None = None) -> Path:
    """A Slack export whose every message line is known, tripping the rules listed in CRAFTED_CODES."""
    folder.mkdir(parents=True)

    def dump(name: str, data: Any) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False))

    profile = {"team": "T0CRAFT01"}
    dump("users.json", [
        {"id": "U0ALICE01", "team_id": "T0CRAFT01", "name": "alice", "profile": {**profile, "email": "alice@x.org"}},
        {"id": "U0BOB0001", "team_id": "T0CRAFT01", "name": "bob", "profile": {**profile, "email": "bob@x.org"}},
        {"id": "U0ALICE02", "team_id": "T0CRAFT01", "name": "Alice", "profile": {**profile, "email": "ALICE@x.org"}},
        {"id": "U0CAROL01", "team_id": "T0CRAFT01", "name": "carol", "profile": profile},
    ])
    dump("channels.json", [
        {"id": "C0GENERAL", "name": "general", "created": 1700000000, "members": ["U0ALICE01", "U0BOB0001"]},
        {"id": "C0RANDOM1", "name": "random", "created": 1700000000, "members": ["U0ALICE01"]},
    ])
    dump("mpims.json", [{"id": "G0TWO0001", "name": "mpdm-alice--bob-1", "created": 1700000000,
                         "members": ["U0ALICE01", "U0BOB0001"]}])
    day = "2024-01-15"
    t = lambda n: _ts(day, n)  # noqa: E731
    general = [
        {"type": "message", "user": "U0ALICE01", "ts": t(1), "text": "hello"},
        {"type": "message", "user": "U0ALICE01", "ts": "not-a-ts", "text": "CM004"},
        {"type": "message", "user": "U0BOB0001", "ts": t(3), "text": "first copy"},
        {"type": "message", "user": "U0BOB0001", "ts": t(3), "text": "CM105: same ts, other text"},
        {"type": "message", "user": "U0BOB0001", "ts": t(5), "text": "CM106 twice"},
        {"type": "message", "user": "U0BOB0001", "ts": t(5), "text": "CM106 twice"},
        {"type": "message", "user": "U0ALICE01", "ts": t(7), "thread_ts": t(0), "text": "CM103 orphan"},
        {"type": "message", "user": "U0GHOST01", "ts": t(8), "text": "CM102 by a ghost"},
        {"type": "message", "user": "U0ALICE01", "ts": t(9), "text": "CM107",
         "reactions": [{"name": "tada", "users": ["U0GHOST02"], "count": 1}]},
        {"type": "message", "user": "U0ALICE01", "ts": t(10), "text": "CM108 nul\u0000"},
        {"type": "message", "user": "U0ALICE01", "ts": t(11), "text": "CM109 " + "long " * 20},
        {"type": "message", "user": "U0ALICE01", "ts": t(12), "text": "CM111", "edited": {"ts": t(2)}},
        {"type": "message", "user": "U0ALICE01", "ts": t(13), "text": ""},
        {"type": "message", "user": "U0ALICE01", "ts": t(14), "text": "CM118",
         "files": [{"id": "F0GONE001", "name": "gone.pdf", "mimetype": "application/pdf"}]},
        *(extra_general or []),
    ]
    dump(f"general/{day}.json", general)
    dump("random/2024-03-02.json", [
        {"type": "message", "user": "U0ALICE01", "ts": _ts("2024-03-02", 1), "text": "march"},
        {"type": "message", "user": "U0ALICE01", "ts": "599616000.000100", "text": "CM110: in 1989"},
    ])
    dump("ghost-channel/2024-01-01.json", [{"type": "message", "user": "U0ALICE01", "ts": t(1), "text": "CM005"}])
    return folder


# Codes the crafted export trips with --max-text 50 (CM102/CM107 carry no error; CM005/CM004/CM105 do).
CRAFTED_CODES = {"CM004", "CM005", "CM102", "CM103", "CM105", "CM106", "CM107", "CM108", "CM109", "CM110",
                 "CM111", "CM112", "CM113", "CM114", "CM115", "CM116", "CM118"}


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    return write_slack_export(tmp_path / "crafted-export")


@pytest.fixture
def crafted_codes() -> set[str]:
    return set(CRAFTED_CODES)


@pytest.fixture
def slack_export() -> Callable[..., Path]:
    """The crafted export's writer, for tests that need it somewhere else or with extra messages."""
    return write_slack_export


Invoke = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run the CLI in-process from `cwd`: (exit code, parsed --json stdout or None, stderr)."""

    def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)
        data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
        return result.exit_code, data, result.stderr

    return invoke


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: tests must not pass by skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser; installed with apt-get (bounded time) when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if not shutil.which("apt-get"):
        _unavailable("chromium is not installed and apt-get is not available to install it")
    try:
        done = subprocess.run(["bash", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive "
                               "apt-get install -y -q chromium chromium-driver"],
                              capture_output=True, text=True, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        _unavailable(f"installing chromium with apt-get took more than {APT_TIMEOUT} s")
    else:
        if done.returncode != 0:
            _unavailable(f"apt-get install chromium chromium-driver failed: {done.stderr.strip()[-300:]}")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _unavailable("apt-get installed chromium but no `chromium` is on PATH")
    return found  # type: ignore[return-value]
