"""Loaders: write canonical records into a target database, idempotently, one dialect per module.

`Loader` holds what every dialect shares (schema creation, batching, checkpoints, the run record);
a dialect module declares its `Limits` and implements `upsert`, its fastest correct write path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa

from chatmigrate.errors import TargetError, UsageError
from chatmigrate.loaders._batching import Limits, PendingRows, statements
from chatmigrate.loaders.rows import Row, rows_of
from chatmigrate.loaders.schema import SCHEMA_VERSION, build_metadata
from chatmigrate.model import Checkpoint, Record
from chatmigrate.redact import redact

DEFAULT_TARGET = "sqlite:///chatmigrate.db"


@dataclass(slots=True)
class LoadStats:
    """What a load did: records handed over, rows actually inserted or changed, commits made."""

    records: int = 0
    rows_written: int = 0
    commits: int = 0


@dataclass(frozen=True, slots=True)
class RunInfo:
    command: str
    source: str
    location: str


class Loader:
    """Base of every dialect loader; subclasses set `limits` and implement `upsert`."""

    limits: ClassVar[Limits]
    # Rows buffered before a commit: large enough to amortise a transaction, small enough for memory.
    flush_rows: ClassVar[int] = 20_000

    def __init__(self, url: str, *, prefix: str = "cm_") -> None:
        self.url = url
        self.prefix = prefix
        self.metadata = build_metadata(prefix)
        self.engine = self.create_engine(url)
        self.stats = LoadStats()
        self.run_id: str | None = None

    # -- dialect hooks -------------------------------------------------------------------------
    def create_engine(self, url: str) -> sa.Engine:
        return sa.create_engine(url)

    def upsert(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """Insert or update `rows` of cm_<table> by key; return how many rows changed."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------
    def table(self, name: str) -> sa.Table:
        return self.metadata.tables[f"{self.prefix}{name}"]

    @property
    def safe_url(self) -> str:
        return redact(self.engine.url.render_as_string(hide_password=True))

    def prepare(self) -> None:
        """Create the schema on first use; refuse a schema written by a newer chatmigrate."""
        with self.engine.begin() as conn:
            version_table = self.table("schema_version")
            if sa.inspect(conn).has_table(version_table.name):
                found = conn.execute(sa.select(sa.func.max(version_table.c.version))).scalar()
                if found is not None and found > SCHEMA_VERSION:
                    raise TargetError(
                        f"{self.safe_url} holds chatmigrate schema version {found}, newer than this "
                        f"chatmigrate understands ({SCHEMA_VERSION}); upgrade chatmigrate")
            self.metadata.create_all(conn)
            if not conn.execute(sa.select(version_table.c.version)
                                .where(version_table.c.version == SCHEMA_VERSION)).first():
                conn.execute(version_table.insert().values(version=SCHEMA_VERSION, applied_at=_now()))

    def start_run(self, info: RunInfo) -> str:
        self.run_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(self.table("runs").insert().values(
                id=self.run_id, command=info.command, source=info.source, location=redact(info.location),
                target=self.safe_url, started_at=_now(), status="running"))
        return self.run_id

    def finish_run(self, status: str, counts: dict[str, Any]) -> None:
        if self.run_id is None:
            return
        runs = self.table("runs")
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == self.run_id)
                         .values(finished_at=_now(), status=status, counts=counts))

    def cursors(self, source: str, scope: str) -> dict[str, str]:
        """The saved sync cursor of every channel of one source and scope."""
        state = self.table("sync_state")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(state.c.channel_id, state.c.cursor)
                                .where(state.c.source == source, state.c.scope == scope))
            return {channel_id: cursor for channel_id, cursor in rows}

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        """Consume the stream; commit every `flush_rows` rows and at every checkpoint, with its cursor."""
        pending = PendingRows(self.flush_rows)
        for item in items:
            if isinstance(item, Checkpoint):
                self._flush(pending, item)
                continue
            self.stats.records += 1
            for table, row in rows_of(item):
                pending.add(table, row)
            if pending.full:
                self._flush(pending, None)
        self._flush(pending, None)
        return self.stats

    def _flush(self, pending: PendingRows, checkpoint: Checkpoint | None) -> None:
        if not pending.count and checkpoint is None:
            return
        with self.engine.begin() as conn:
            for table, rows in pending.drain():
                for chunk in statements(rows, table, self.limits):
                    self.stats.rows_written += self.upsert(conn, table, chunk)
            if checkpoint is not None:
                self._save_cursor(conn, checkpoint)
        self.stats.commits += 1

    def _save_cursor(self, conn: sa.Connection, checkpoint: Checkpoint) -> None:
        state = self.table("sync_state")
        conn.execute(state.delete().where(state.c.source == checkpoint.source, state.c.scope == checkpoint.scope,
                                          state.c.channel_id == checkpoint.channel_id))
        conn.execute(state.insert().values(source=checkpoint.source, scope=checkpoint.scope,
                                           channel_id=checkpoint.channel_id, cursor=checkpoint.cursor,
                                           updated_at=_now()))

    def close(self) -> None:
        self.engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def loader_for(url: str, *, prefix: str = "cm_") -> Loader:
    """Pick the dialect module by the URL's scheme (sqlite, postgresql, mysql/mariadb)."""
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"--to {redact(url)!r} is not a database URL (e.g. sqlite:///chat.db, "
                         "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db)") from exc
    if backend == "sqlite":
        from chatmigrate.loaders.sqlite import SqliteLoader
        return SqliteLoader(url, prefix=prefix)
    if backend == "postgresql":
        from chatmigrate.loaders.postgresql import PostgresqlLoader
        return PostgresqlLoader(url, prefix=prefix)
    if backend in ("mysql", "mariadb"):
        from chatmigrate.loaders.mysql import MysqlLoader
        return MysqlLoader(url, prefix=prefix)
    raise UsageError(f"--to: unsupported database {backend!r}; use sqlite, postgresql or mysql/mariadb")
