"""What cannot succeed fails at once with what to do; what may succeed later is retried, and said so at
once on stderr (issue 12 #14). Real servers: an unknown database, user or host, and a closed port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
SERVERS = pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)


def _migrate_fails_fast(url: sa.URL) -> str:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["migrate", str(SAMPLE), "--to", url.render_as_string(hide_password=False),
                                       "--retry-for", "60"], catch_exceptions=False)
    assert time.monotonic() - started < 15, "a failure no retry can fix was retried"
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatmigrate: error:"), result.stderr
    assert "when the server is back" not in lines[0] and "retrying" not in lines[0]
    return lines[0]


@SERVERS
def test_a_missing_database_is_reported_at_once(db_url: str) -> None:
    url = sa.engine.make_url(db_url).set(database=f"cm_missing_{uuid.uuid4().hex[:8]}")
    line = _migrate_fails_fast(url)
    assert "create the database first" in line and url.database in line


@SERVERS
def test_refused_credentials_are_reported_at_once(db_url: str) -> None:
    url = sa.engine.make_url(db_url).set(username=f"cm_nobody_{uuid.uuid4().hex[:6]}")
    assert "the server refused these credentials" in _migrate_fails_fast(url)


@SERVERS
def test_a_host_name_that_does_not_resolve_is_reported_at_once(db_url: str) -> None:
    url = sa.engine.make_url(db_url).set(host="no-such-host.invalid")
    assert "the host name does not resolve" in _migrate_fails_fast(url)


@SERVERS
def test_a_server_that_is_down_is_retried_and_said_so_at_once(db_url: str, tmp_path: Path) -> None:
    url = sa.engine.make_url(db_url).set(port=1)  # nothing listens there: refused, as by a server that is down
    command = [sys.executable, "-m", "chatmigrate", "migrate", str(SAMPLE), "--to",
               url.render_as_string(hide_password=False), "--retry-for", "60"]
    child = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert child.stderr is not None
        started = time.monotonic()
        first = child.stderr.readline()
        assert time.monotonic() - started < 20 and child.poll() is None, "no word while waiting"
        assert first.startswith(f"chatmigrate: {url.render_as_string(hide_password=True)}: creating the schema "
                                "failed ("), first
        assert "retrying for up to 60 s (--retry-for SECONDS)" in first
    finally:
        child.kill()
        child.wait(timeout=30)
