"""A killed run's cm_runs row does not stay `running` for ever (issue 12 #12): the next run marks it
`interrupted`, and never a run whose process is alive (a concurrent run, here or on another host)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatmigrate.loaders import Loader, RunInfo, loader_for
from chatmigrate.loaders._runs import host_identity

SERVERS = pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
# A run that starts, says its id, then waits to be killed (or to see its stdin close).
_RUN = """
import sys
from chatmigrate.loaders import RunInfo, loader_for
loader = loader_for(sys.argv[1])
loader.prepare()
print(loader.start_run(RunInfo("migrate", "slack-export", "export.zip")), flush=True)
sys.stdin.read()
"""
INFO = RunInfo("migrate", "slack-export", "export.zip")


@pytest.fixture
def live_run(db_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    child = subprocess.Popen([sys.executable, "-c", _RUN, db_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, "the child run did not start"
    try:
        yield child, run_id
    finally:
        child.kill()
        child.wait(timeout=30)


def _status(loader: Loader, run_id: str) -> str:
    runs = loader.table("runs")
    with loader.engine.connect() as conn:
        return str(conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar_one())


def _next_run(db_url: str) -> Loader:
    loader = loader_for(db_url)
    loader.prepare()
    loader.start_run(INFO)
    return loader


def test_a_killed_run_is_marked_interrupted_and_a_live_one_is_not(db_url: str,
                                                                  live_run: tuple[subprocess.Popen[str], str]) -> None:
    child, run_id = live_run
    concurrent = _next_run(db_url)
    assert _status(concurrent, run_id) == "running"  # its process is alive: a concurrent run
    concurrent.finish_run("ok", {})
    concurrent.close()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    later = _next_run(db_url)
    assert _status(later, run_id) == "interrupted"
    assert _status(later, str(later.run_id)) == "running"
    later.finish_run("ok", {})
    assert _status(later, str(later.run_id)) == "ok" and _status(later, run_id) == "interrupted"
    runs = later.table("runs")
    with later.engine.connect() as conn:
        host, pid = conn.execute(sa.select(runs.c.host, runs.c.pid).where(runs.c.id == later.run_id)).one()
    later.close()
    assert host == host_identity() and pid > 0


@SERVERS
def test_a_run_on_another_host_is_judged_by_its_server_lock(db_url: str,
                                                           live_run: tuple[subprocess.Popen[str], str]) -> None:
    """Rows written elsewhere carry a pid this host cannot check: the run's server-side lock answers."""
    _child, live_id = live_run
    loader = loader_for(db_url)
    runs = loader.table("runs")
    with loader.engine.begin() as conn:
        # The live child, as if it ran on another machine; and a row whose process died there.
        conn.execute(runs.update().where(runs.c.id == live_id).values(host="elsewhere", pid=1))
        conn.execute(runs.insert().values(id="dead-elsewhere", command="sync", source="slack-export", location="x",
                                          target="y", started_at=sa.func.now(), status="running", host="elsewhere",
                                          pid=1))
    loader.prepare()
    loader.start_run(INFO)
    assert _status(loader, live_id) == "running"
    assert _status(loader, "dead-elsewhere") == "interrupted"
    loader.finish_run("ok", {})
    loader.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_leaves_rows_of_other_hosts_alone(db_url: str) -> None:
    """SQLite has no server lock: a row from another host (a database file on a shared disk) is left as is."""
    loader = loader_for(db_url)
    loader.prepare()
    runs = loader.table("runs")
    with loader.engine.begin() as conn:
        conn.execute(runs.insert().values(id="other-host", command="sync", source="slack-export", location="x",
                                          target="y", started_at=sa.func.now(), status="running", host="elsewhere",
                                          pid=1))
    loader.start_run(INFO)
    assert _status(loader, "other-host") == "running"
    loader.close()


def test_a_schema_of_version_1_is_upgraded(db_url: str, tmp_path: Path) -> None:
    """cm_runs of version 1 had no host and pid: prepare adds them and records version 2."""
    loader = loader_for(db_url)
    with loader.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE cm_runs (id VARCHAR(36) PRIMARY KEY, command VARCHAR(32) NOT NULL, "
                             "source VARCHAR(64) NOT NULL, location TEXT NOT NULL, target TEXT NOT NULL, "
                             "started_at TIMESTAMP NULL, finished_at TIMESTAMP NULL, status VARCHAR(16) NOT NULL, "
                             "counts TEXT)")
        conn.exec_driver_sql("CREATE TABLE cm_schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NULL)")
        conn.exec_driver_sql("INSERT INTO cm_schema_version (version) VALUES (1)")
        conn.exec_driver_sql("INSERT INTO cm_runs (id, command, source, location, target, status) "
                             "VALUES ('old', 'migrate', 'slack-export', 'x', 'y', 'ok')")
    loader.prepare()
    columns = {c["name"] for c in sa.inspect(loader.engine).get_columns("cm_runs")}
    assert {"host", "pid"} <= columns
    versions = loader.table("schema_version")
    with loader.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(versions.c.version)).scalars()) == [1, 2]
    loader.start_run(INFO)
    loader.finish_run("ok", {})
    assert _status(loader, "old") == "ok" and _status(loader, str(loader.run_id)) == "ok"
    loader.close()
