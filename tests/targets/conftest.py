"""Fixtures of the target tests: Mattermost's own bulk-import validator (a Go oracle built from
tests/oracles/mmvalidate through the Go module proxy), FerretDB as a real MongoDB server for the
Rocket.Chat target (tests/oracles/ferretdb), a CLI runner, and a tiny extractor over canonical records."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main
from tests.conftest import REPO, unavailable

ORACLES = REPO / ".cache" / "oracles"
Invoke = Callable[..., tuple[int, Any, str]]


@pytest.fixture(scope="session")
def mmvalidate() -> Callable[..., dict[str, Any]]:
    """Run Mattermost's validator on a package (and flags, e.g. `-server-users FILE`): its JSON summary
    (`ok`, `errors`, `counts`)."""
    binary = ORACLES / "mmvalidate"
    if not binary.exists():
        if shutil.which("go") is None:
            unavailable("Go is not installed: the Mattermost validator oracle (tests/oracles) cannot be built")
        build = subprocess.run(["bash", str(REPO / "tests" / "oracles" / "build.sh")], capture_output=True,
                               text=True, timeout=900)
        if build.returncode != 0 or not binary.exists():
            unavailable(f"building the Mattermost validator oracle failed: {build.stderr.strip()[-400:]}")

    def validate(package: Path, *flags: str) -> dict[str, Any]:
        run = subprocess.run([str(binary), *flags, str(package)], capture_output=True, text=True, timeout=600)
        assert run.returncode in (0, 1), run.stderr
        return json.loads(run.stdout)

    return validate


def _oracle(name: str, what: str) -> Path:
    """An oracle binary from .cache/oracles, built by tests/oracles/build.sh when missing."""
    binary = ORACLES / name
    if not binary.exists():
        if shutil.which("go") is None:
            unavailable(f"Go is not installed: {what} (tests/oracles/{name}) cannot be built")
        build = subprocess.run(["bash", str(REPO / "tests" / "oracles" / "build.sh")], capture_output=True,
                               text=True, timeout=900)
        if build.returncode != 0 or not binary.exists():
            unavailable(f"building {what} failed: {build.stderr.strip()[-400:]}")
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def ferretdb() -> Iterator[str]:
    """A FerretDB 1.24 server (SQLite backend) on a free port of 127.0.0.1: its mongodb:// URI base
    (`mongodb://127.0.0.1:PORT`); each test uses a database of its own."""
    import pymongo

    binary = _oracle("ferretdb", "FerretDB, the MongoDB server of the Rocket.Chat tests")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ferretdb-") as state:
        log = Path(state) / "ferretdb.log"
        with log.open("wb") as out:
            server = subprocess.Popen([str(binary), "-port", str(port), "-state", str(Path(state) / "data")],
                                      stdout=out, stderr=subprocess.STDOUT)
        try:
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.admin.command("ping")
                    break
                except pymongo.errors.PyMongoError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        unavailable(f"FerretDB did not start: {log.read_text(errors='replace')[-400:]}")
                    time.sleep(0.2)
            client.close()
            yield f"mongodb://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run the CLI in-process from `cwd`: (exit code, parsed --json stdout or None, stderr)."""

    def invoke(*args: str, cwd: Path) -> tuple[int, Any, str]:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
        return result.exit_code, data, result.stderr

    return invoke
