"""PostgreSQL target (psycopg 3): binary COPY into a temporary staging table, then one
`INSERT … SELECT … ON CONFLICT (key) DO UPDATE … WHERE row_hash IS DISTINCT FROM …` per table.

Why this path: COPY is the fastest way in, binary COPY moves the parsing of timestamps and numbers
from the (single) server backend into the client, and the staged merge writes only rows whose content
changed, so a re-run of an unchanged export writes nothing (see research/load-baselines.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import sqlalchemy as sa
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from chatmigrate.loaders import Loader
from chatmigrate.loaders._batching import Limits
from chatmigrate.loaders._clean import TextRules
from chatmigrate.loaders.rows import COLUMNS, Row, key_columns

_JSONB_OID = 3802
# Errors after which the same transaction can succeed on a fresh try: lost connections, shutdowns,
# serialization failures and deadlocks.
_TRANSIENT = (
    pg_errors.ConnectionException,  # class 08
    pg_errors.AdminShutdown,  # 57P01: pg_terminate_backend, fast shutdown
    pg_errors.CrashShutdown,
    pg_errors.CannotConnectNow,  # 57P03: the server is starting up or shutting down
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)
# Connection failures no retry can fix, with what to do. libpq reports them with no SQLSTATE (the
# server refuses before a session exists), like a server that is down, so only their words tell them
# apart; anything not listed is retried as before.
_CANNOT_SUCCEED = (
    (re.compile(r'database "[^"]*" does not exist'),
     "create the database first (createdb NAME, or CREATE DATABASE NAME) or fix its name in the URL"),
    (re.compile(r'role "[^"]*" does not exist|authentication failed|no pg_hba\.conf entry|no password supplied'
                r"|permission denied for database", re.I),
     "the server refused these credentials: check the user name and the password (~/.pgpass, PGPASSWORD, "
     "or CHATMIGRATE_TARGET_URL)"),
    (re.compile(r"failed to resolve host|could not translate host name"),
     "the host name does not resolve: check it in the URL"),
)
# A resolver that could not answer now (EAI_AGAIN) may answer later: that one is retried.
_RESOLVER_BUSY = re.compile(r"Temporary failure in name resolution|\[Errno -3\]")


class _JsonbFromText(Dumper):
    """Binary COPY of props, which rows.py already holds as JSON text: jsonb's wire format is a
    version byte and the text (the stock jsonb dumper would wrap a str as a JSON string)."""

    format = Format.BINARY
    oid = _JSONB_OID

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj.encode()


def _pg_type(column: sa.Column[Any]) -> str:
    """The psycopg type name of a column, for Copy.set_types (binary COPY needs typed values)."""
    type_ = column.type
    if isinstance(type_, sa.JSON):
        return "jsonb"
    if isinstance(type_, sa.DateTime):
        return "timestamptz"
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.BigInteger):
        return "int8"
    if isinstance(type_, sa.Integer):
        return "int4"
    if isinstance(type_, sa.String) and type_.length is not None:
        return "varchar"
    return "text"


class PostgresqlLoader(Loader):
    # One COPY + merge per table and flush: the whole pending batch is one statement.
    limits: ClassVar[Limits] = Limits(max_rows=200_000)
    # PostgreSQL refuses NUL in text and \u0000 in jsonb; it enforces varchar(n).
    text_rules: ClassVar[TextRules] = TextRules(nul_allowed=False)

    def __init__(self, url: str, *, prefix: str = "cm_") -> None:
        super().__init__(url, prefix=prefix)
        self._types = {t: [_pg_type(self.table(t).c[c]) for c in cols] for t, cols in COLUMNS.items()}
        self._merge: dict[str, sql.Composed] = {}

    def create_engine(self, url: str) -> sa.Engine:
        engine = sa.create_engine(url, pool_pre_ping=True)

        @sa.event.listens_for(engine, "connect")
        def _register(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.adapters.register_dumper(None, _JsonbFromText)

        return engine

    def transient_driver_error(self, exc: BaseException) -> bool:
        if isinstance(exc, _TRANSIENT):
            return True
        # Client-side failures (refused, reset, "server closed the connection") carry no SQLSTATE.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and exc.sqlstate is None

    def cannot_succeed(self, exc: BaseException) -> str | None:
        if not isinstance(exc, psycopg.OperationalError) or exc.sqlstate is not None:
            return None
        text = str(exc)
        if _RESOLVER_BUSY.search(text):
            return None
        return next((advice for pattern, advice in _CANNOT_SUCCEED if pattern.search(text)), None)

    @contextlib.contextmanager
    def schema_lock(self, conn: sa.Connection) -> Iterator[None]:
        """A transaction advisory lock: a concurrent first run waits here until this transaction has
        committed the tables, then finds them."""
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(f"schema:{self.prefix}")})
        yield

    @contextlib.contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        key = advisory_key(f"run:{run_id}")
        with self.session_lock("SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)", {"key": key},
                               f"pg_try_advisory_lock({key})"):
            yield

    def run_lock_free(self, conn: sa.Connection, run_id: str) -> bool | None:
        # Taken until this transaction ends when free: harmless, its owner is gone.
        return bool(conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": advisory_key(f"run:{run_id}")}).scalar())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """A session advisory lock, keyed by the table prefix (advisory locks are per database), on a
        connection of its own held for the block: the server releases it if this process dies."""
        key = advisory_key(self.prefix)
        with self.session_lock("SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)", {"key": key},
                               f"pg_try_advisory_lock({key})"):
            yield

    def _merge_sql(self, table: str, stage: sql.Identifier) -> sql.Composed:
        cols = COLUMNS[table]
        keys = key_columns(table)
        target = sql.Identifier(self.table(table).name)
        col_list = sql.SQL(", ").join(map(sql.Identifier, cols))
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in cols if c not in keys)
        return sql.SQL(
            "INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} "
            "ON CONFLICT ({keys}) DO UPDATE SET {updates} "
            "WHERE t.row_hash IS DISTINCT FROM excluded.row_hash"
        ).format(target=target, cols=col_list, stage=stage, updates=updates,
                 keys=sql.SQL(", ").join(map(sql.Identifier, keys)))

    def upsert(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        stage = sql.Identifier(f"_cm_stage_{table}")
        # One staging table per table and session, emptied by every commit or rollback: creating one
        # per batch would cost catalog writes on every commit. Nothing survives a crash (TEMP).
        info = conn.connection.info
        if info.get("cm_stage_tx") is not conn.get_transaction():
            info["cm_stage_tx"], info["cm_stage_used"] = conn.get_transaction(), set()
        used: set[str] = info["cm_stage_used"]
        with driver.cursor() as cur:
            if table in used:  # a second chunk of this table in the same transaction
                cur.execute(sql.SQL("TRUNCATE {stage}").format(stage=stage))
            else:
                cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS")
                            .format(stage=stage, target=sql.Identifier(self.table(table).name)))
                used.add(table)
            self._copy(cur, stage, table, rows)
            cur.execute(self._merge_sql(table, stage))
            return max(cur.rowcount, 0)

    def insert_new(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """Binary COPY straight into the (empty at the start of the load) table: a key met twice fails
        the COPY with a unique violation (is_key_conflict)."""
        driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        with driver.cursor() as cur:
            self._copy(cur, sql.Identifier(self.table(table).name), table, rows)
        return len(rows)

    def is_key_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def _copy(self, cur: psycopg.Cursor[Any], into: sql.Identifier, table: str, rows: list[Row]) -> None:
        cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
        with cur.copy(sql.SQL("COPY {into} ({cols}) FROM STDIN (FORMAT BINARY)").format(into=into, cols=cols)) as copy:
            copy.set_types(self._types[table])
            for row in rows:
                copy.write_row(row)


def advisory_key(prefix: str) -> int:
    """A stable signed 64-bit advisory-lock key for a table prefix (the same in every process); the
    schema and run locks use `schema:<prefix>` and `run:<run id>`."""
    return int.from_bytes(hashlib.sha256(f"chatmigrate:{prefix}".encode()).digest()[:8], "big", signed=True)
