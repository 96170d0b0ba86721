"""Crash safety and connection loss, for real: a load killed with SIGKILL and re-run, and a load whose
server connection is killed from a second connection, each compared row by row with a clean load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatmigrate.errors import TransientError
from chatmigrate.loaders import loader_for
from chatmigrate.model import Item, Message

from .helpers import assert_same, dump
from .synth import items

SYNTH = Path(__file__).with_name("synth.py")
SERVERS = pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)


def _reference(url: str, messages: int, channels: int) -> None:
    """The uninterrupted load everything is compared with, into tables prefixed ref_."""
    loader = loader_for(url, prefix="ref_")
    loader.prepare()
    loader.load(items(messages, channels=channels))
    loader.close()


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_kill_9_part_way_then_rerun_equals_an_uninterrupted_load(db_url: str) -> None:
    messages, channels = 6000, 6
    _reference(db_url, messages, channels)
    command = [sys.executable, str(SYNTH), db_url, "--messages", str(messages), "--channels", str(channels),
               "--flush-rows", "900"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    # Kill it while it is busy: after it has produced a bit over half of the messages.
    for line in child.stdout:
        if line.startswith("progress") and int(line.split()[1]) >= messages * 0.7:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    loaded = _count(db_url, "cm_messages")
    assert 0 < loaded < messages, f"the kill was not part-way: {loaded} of {messages} messages loaded"
    # State never ran ahead of data: every channel with a saved cursor has all of its messages.
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        per_channel = dict(conn.execute(sa.text(
            "SELECT s.channel_id, count(m.id) FROM cm_sync_state s LEFT JOIN cm_messages m "
            "ON m.channel_id = s.channel_id GROUP BY s.channel_id")).all())
    engine.dispose()
    assert per_channel and all(count == messages // channels for count in per_channel.values()), per_channel

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_same(dump(db_url), dump(db_url, prefix="ref_"))


class _Killer(threading.Thread):
    """From a second connection, kill the loader's server session while it is inside a transaction."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.killed = 0
        self.start_at = threading.Event()

    def _victims(self, conn: sa.Connection) -> list[int]:
        if self.engine.dialect.name == "postgresql":
            return list(conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state IN ('active', 'idle in transaction')")).scalars())
        return list(conn.execute(sa.text(
            "SELECT p.id FROM information_schema.processlist p WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() "
            "AND (p.command = 'Query' OR p.id IN (SELECT trx_mysql_thread_id FROM information_schema.innodb_trx))"
        )).scalars())

    def _kill(self, conn: sa.Connection, victim: int) -> None:
        if self.engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        else:
            conn.exec_driver_sql(f"KILL CONNECTION {int(victim)}")

    def run(self) -> None:
        self.start_at.wait()
        deadline = time.monotonic() + 30
        with self.engine.connect() as conn:
            while not self.killed and time.monotonic() < deadline:
                for victim in self._victims(conn):
                    self._kill(conn, victim)
                    self.killed += 1
                time.sleep(0.002)
        self.engine.dispose()


@SERVERS
def test_connection_killed_during_a_batch_is_retried_and_nothing_half_written(db_url: str) -> None:
    messages, channels = 4000, 4
    _reference(db_url, messages, channels)
    killer = _Killer(db_url)
    killer.start()

    def stream() -> Iterator[Item]:
        for n, item in enumerate(items(messages, channels=channels)):
            if isinstance(item, Message) and n == messages // 3:
                killer.start_at.set()  # from here on, the next batch's session gets killed mid-transaction
            yield item

    loader = loader_for(db_url)
    loader.flush_rows = 3000
    loader.prepare()
    stats = loader.load(stream())
    loader.close()
    killer.join(timeout=60)
    assert killer.killed >= 1, "the killer never saw the loader inside a transaction"
    assert stats.retries >= 1
    assert_same(dump(db_url), dump(db_url, prefix="ref_"))


@SERVERS
def test_unreachable_server_gives_a_clear_error_after_bounded_retries(db_url: str) -> None:
    # Same dialect, a port where nothing listens, and a password that must not leak.
    url = sa.engine.make_url(db_url).set(port=1, password="s3cret-pw").render_as_string(hide_password=False)
    loader = loader_for(url)
    loader.retry_seconds = 1.5
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        loader.prepare()
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert ":1/" in message and "times over 1.5 s" in message and "Run the same command again" in message
    assert loader.stats.retries >= 2
    assert elapsed < 10
