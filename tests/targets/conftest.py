"""Fixtures of the target tests: Mattermost's own bulk-import validator (a Go oracle built from
tests/oracles/mmvalidate through the Go module proxy), a CLI runner, and a tiny extractor over
canonical records."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main
from tests.conftest import REPO, unavailable

ORACLES = REPO / ".cache" / "oracles"
Invoke = Callable[..., tuple[int, Any, str]]


@pytest.fixture(scope="session")
def mmvalidate() -> Callable[[Path], dict[str, Any]]:
    """Run Mattermost's validator on a package: its JSON summary (`ok`, `errors`, `counts`)."""
    binary = ORACLES / "mmvalidate"
    if not binary.exists():
        if shutil.which("go") is None:
            unavailable("Go is not installed: the Mattermost validator oracle (tests/oracles) cannot be built")
        build = subprocess.run(["bash", str(REPO / "tests" / "oracles" / "build.sh")], capture_output=True,
                               text=True, timeout=900)
        if build.returncode != 0 or not binary.exists():
            unavailable(f"building the Mattermost validator oracle failed: {build.stderr.strip()[-400:]}")

    def validate(package: Path) -> dict[str, Any]:
        run = subprocess.run([str(binary), str(package)], capture_output=True, text=True, timeout=600)
        assert run.returncode in (0, 1), run.stderr
        return json.loads(run.stdout)

    return validate


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run the CLI in-process from `cwd`: (exit code, parsed --json stdout or None, stderr)."""

    def invoke(*args: str, cwd: Path) -> tuple[int, Any, str]:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
        return result.exit_code, data, result.stderr

    return invoke
