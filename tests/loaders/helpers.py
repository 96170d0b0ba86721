"""Shared by the loader tests: read a whole target back, table by table, for row-by-row comparison."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from chatmigrate.loaders import Loader, loader_for
from chatmigrate.loaders.rows import COLUMNS, key_columns

SYNC_COLUMNS = ("source", "scope", "channel_id", "cursor")


def _plain(value: Any) -> Any:
    # props come back as dicts (jsonb) or text (MySQL/SQLite JSON): compare them as parsed JSON.
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dump(url: str, prefix: str = "cm_") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table plus the sync cursors, ordered by key."""
    loader = loader_for(url, prefix=prefix)
    try:
        return dump_loader(loader)
    finally:
        loader.close()


def dump_loader(loader: Loader) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with loader.engine.connect() as conn:
        for name, cols in COLUMNS.items():
            table = loader.table(name)
            query = sa.select(*(table.c[c] for c in cols)).order_by(*(table.c[k] for k in key_columns(name)))
            out[name] = [tuple(_plain(v) for v in row) for row in conn.execute(query)]
        state = loader.table("sync_state")
        query = sa.select(*(state.c[c] for c in SYNC_COLUMNS)).order_by(state.c.channel_id)
        out["sync_state"] = [tuple(row) for row in conn.execute(query)]
    return out


def assert_same(actual: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]) -> None:
    """Row-by-row equality, table by table, with a readable first difference."""
    assert actual.keys() == expected.keys()
    for table in expected:
        got, want = actual[table], expected[table]
        assert len(got) == len(want), f"{table}: {len(got)} rows, expected {len(want)}"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert a == b, f"{table} row {i} differs:\n  got      {a!r}\n  expected {b!r}"


@contextlib.contextmanager
def password_account(db_url: str, password: str) -> Iterator[sa.URL]:
    """A user with `password`, allowed only into the test database of `db_url` (PostgreSQL or
    MariaDB), dropped afterwards; the URL given carries no password."""
    url = sa.engine.make_url(db_url)
    user = f"cm_{uuid.uuid4().hex[:10]}"
    postgres = url.get_backend_name() == "postgresql"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if postgres:
            conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON DATABASE {url.database} TO {user}")
            conn.exec_driver_sql(f"ALTER DATABASE {url.database} OWNER TO {user}")
        else:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%%'")
    try:
        yield url.set(username=user, password=None)
    finally:
        with admin.connect() as conn:
            if postgres:
                conn.exec_driver_sql(f"ALTER DATABASE {url.database} OWNER TO {url.username}")
                conn.exec_driver_sql(f"DROP OWNED BY {user}")
                conn.exec_driver_sql(f"DROP ROLE {user}")
            else:
                conn.exec_driver_sql(f"DROP USER '{user}'@'%%'")
        admin.dispose()
