"""Several processes at once into one fresh database (issue 12 #13): schema creation is serialised, so
every first run finds or creates the same schema, and every run loads the same rows. Real processes on
every dialect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from chatmigrate.loaders.schema import SCHEMA_VERSION
from tests.conftest import sql_rows

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
PROCESSES = 6
# Each child sleeps until this many seconds after the test started it, then prepares: the children
# meet the empty database at the same moment however long their imports take.
_PREPARE = """
import sys, time
from chatmigrate.loaders import loader_for
start = float(sys.argv[2])
loader = loader_for(sys.argv[1])
time.sleep(max(start - time.time(), 0))
loader.prepare()
loader.close()
print("ok")
"""


def _rows(url: str, sql: str) -> list[tuple]:
    return sql_rows(url, sql)


def test_first_runs_at_the_same_moment_create_one_schema(db_url: str, tmp_path: Path) -> None:
    start = time.time() + 4
    children = [subprocess.Popen([sys.executable, "-c", _PREPARE, db_url, str(start)], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
    outcomes = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, [err for _, err in outcomes]
    assert _rows(db_url, "SELECT version FROM cm_schema_version") == [(SCHEMA_VERSION,)]


def test_concurrent_migrations_into_an_empty_database_all_succeed(db_url: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "chatmigrate", "migrate", str(SAMPLE), "--to", db_url, "--json", "--quiet"]
    children = []
    for i in range(3):
        folder = tmp_path / str(i)  # each its own rejects file
        folder.mkdir()
        children.append(subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    outcomes = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], [err for _, err in outcomes]
    for out, _ in outcomes:
        assert json.loads(out)["counts"]["messages"]["loaded"] == 34
    assert _rows(db_url, "SELECT count(*) FROM cm_messages") == [(34,)]
    assert sorted(_rows(db_url, "SELECT status FROM cm_runs")) == [("ok",)] * 3
