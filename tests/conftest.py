"""Shared fixtures: sample and real-data paths, and the three target databases (real servers, no mocks)."""

from __future__ import annotations

import os
import socketserver
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
REALDATA = REPO.parent / "shared" / "realdata"
IN_CI = os.environ.get("CI", "").lower() == "true"

PG_URL = os.environ.get("CHATMIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("CHATMIGRATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


_report_server_error = socketserver.BaseServer.handle_error


def _quiet_when_the_client_left(self: socketserver.BaseServer, request: Any, client_address: Any) -> None:
    """The tests' loopback HTTP servers print a traceback to sys.stderr when a client drops its connection
    (a test that ended, a run stopped early). Their request threads outlive the test that started them, and
    the traceback then lands in whichever test captures stderr at that moment: a CLI test that asserts no
    traceback failed on another test's server (tests/test_fuzz.py, seen in CI). A client leaving is not an
    error of the server; anything else is still reported."""
    if isinstance(sys.exc_info()[1], ConnectionError):
        return
    _report_server_error(self, request, client_address)


socketserver.BaseServer.handle_error = _quiet_when_the_client_left  # type: ignore[method-assign]


def unavailable(reason: str) -> None:
    """Skip with a reason locally; under CI=true a missing dependency is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: tests must not pass by skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        unavailable(f"{REALDATA} is absent: the real third-party exports live beside the repo in ../shared")
    return REALDATA


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def _server_reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any driver error means "not reachable" here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty target per test: a SQLite file, or a uniquely prefixed set of tables on a server."""
    yield from _target_url(request.param, tmp_path)


def _target_url(dialect: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    url = PG_URL if dialect == "postgresql" else MYSQL_URL
    problem = _server_reachable(url)
    if problem:
        unavailable(f"{dialect} test server at {sa.engine.make_url(url).render_as_string(hide_password=True)} "
                    f"is unreachable ({problem}); start it or set CHATMIGRATE_TEST_"
                    f"{'PG' if dialect == 'postgresql' else 'MYSQL'}_URL")
    # A private database per test keeps parallel tests and leftovers apart.
    name = f"cmtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                                                           if dialect == "mariadb" else ""))
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


def sql_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """The rows a SQL query gives on the database at `url` (a target or a hub), as tuples."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()
