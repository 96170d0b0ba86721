"""Mattermost `create_at` times for the hub's messages (cm_mm_posts): unique per channel, since
Mattermost matches an existing post by channel, create_at and message, and kept across runs; a message
that becomes several posts (long text, many files) gets a time for each part."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets._mm_lines import ms


def _assign_times(conn: sa.Connection, t: dict[str, sa.Table]) -> None:
    """Give every message not yet in cm_mm_posts (or needing more parts) its Mattermost create_at:
    its own millisecond, moved forward by 1 ms while another post of the channel holds it."""
    m, p, f = t["messages"], t["mm_posts"], t["files"]
    file_count = sa.select(sa.func.count()).where(f.c.message_id == m.c.id).scalar_subquery()
    long_text = sa.case((sa.func.length(m.c.text) > mm.MAX_POST_RUNES, m.c.text), else_=None)
    created = sa.type_coerce(m.c.created_at, sa.String).label("created_at")  # parsed by ms(), cheaper
    query = (sa.select(m.c.id, m.c.channel_id, created, sa.func.length(m.c.text).label("n"),
                       long_text.label("long_text"), file_count.label("files"), p.c.parts, p.c.create_at,
                       p.c.part_times)
             .join(p, p.c.message_id == m.c.id, isouter=True)
             .where(sa.or_(p.c.message_id.is_(None), sa.func.length(m.c.text) > mm.MAX_POST_RUNES,
                           file_count > mm.MAX_FILES_PER_POST))
             .order_by(m.c.channel_id, m.c.created_at, m.c.id))
    channel: str | None = None
    used: set[int] = set()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in _stream(conn, query):
        needed = mm.part_count(row.n or 0, row.long_text, row.files or 0)
        if row.parts is not None and row.parts >= needed:
            continue
        if row.channel_id != channel:
            channel = row.channel_id
            used = _used_times(conn, p, channel)
        if row.parts is None:
            at = ms(row.created_at) or 0
            while at in used:
                at += 1
            used.add(at)
            extra = _next_times(used, at, needed - 1)
            inserts.append({"message_id": row.id, "channel_id": row.channel_id, "create_at": at,
                            "part_times": json.dumps(extra) if extra else None, "parts": needed,
                            "last_at": max([at, *extra])})
        else:
            known = json.loads(row.part_times) if row.part_times else []
            extra = known + _next_times(used, max([row.create_at, *known]), needed - 1 - len(known))
            updates.append({"mid": row.id, "pt": json.dumps(extra), "n": needed, "last": max([row.create_at, *extra])})
        if len(inserts) >= 10_000:
            conn.execute(p.insert(), inserts)
            inserts = []
    if inserts:
        conn.execute(p.insert(), inserts)
    if updates:
        conn.execute(p.update().where(p.c.message_id == sa.bindparam("mid"))
                     .values(part_times=sa.bindparam("pt"), parts=sa.bindparam("n"), last_at=sa.bindparam("last")),
                     updates)


def _stream(conn: sa.Connection, query: sa.Select) -> Iterator[Any]:
    # Read the whole result before writing to the same SQLite database in this transaction.
    with tempfile.TemporaryFile() as spool:
        for row in conn.execute(query):
            spool.write(orjson.dumps([row.id, row.channel_id, row.created_at, row.n, row.long_text, row.files,
                                      row.parts, row.create_at, row.part_times]) + b"\n")
        spool.seek(0)
        for line in spool:
            yield _Row(*orjson.loads(line))


@dataclass(slots=True)
class _Row:
    id: str
    channel_id: str
    created_at: str
    n: int
    long_text: str | None
    files: int
    parts: int | None
    create_at: int | None
    part_times: str | None


def _used_times(conn: sa.Connection, p: sa.Table, channel: str) -> set[int]:
    used: set[int] = set()
    query = sa.select(p.c.create_at, p.c.part_times).where(p.c.channel_id == channel)
    for create_at, part_times in conn.execute(query):
        used.add(create_at)
        if part_times:
            used.update(json.loads(part_times))
    return used


def _next_times(used: set[int], after: int, n: int) -> list[int]:
    times = []
    at = after
    for _ in range(max(n, 0)):
        at += 1
        while at in used:
            at += 1
        used.add(at)
        times.append(at)
    return times
