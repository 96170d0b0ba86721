"""Shared by the loader tests: read a whole target back, table by table, for row-by-row comparison."""

from __future__ import annotations

import json
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
