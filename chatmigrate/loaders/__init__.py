"""Loaders: write canonical records into a target database, idempotently, one dialect per module.

`Loader` holds what every dialect shares (schema creation, batching, checkpoints, the run record);
a dialect module declares its `Limits` and implements `upsert`, its fastest correct write path.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import orjson
import sqlalchemy as sa

from chatmigrate.errors import Locked, TargetError, TransientError, UsageError
from chatmigrate.loaders._batching import Limits, PendingRows, statements
from chatmigrate.loaders._clean import Cleaner, TextRules
from chatmigrate.loaders._runs import INTERRUPTED, RUNNING, host_identity, owner_gone
from chatmigrate.loaders.rows import COLUMNS, Row, rows_of
from chatmigrate.loaders.schema import SCHEMA_VERSION, build_metadata
from chatmigrate.model import Checkpoint, Record, User
from chatmigrate.redact import is_secret_name, redact, remember
from chatmigrate.targets.contract import Capabilities, ExistingUser, LoadStats, RunInfo, Target

__all__ = ["DEFAULT_TARGET", "TARGET_ENV", "Capabilities", "LoadStats", "Loader", "RunInfo", "Target",
           "database_url", "ddl_for", "loader_for", "resolve_target_url"]

DEFAULT_TARGET = "sqlite:///chatmigrate.db"
TARGET_ENV = "CHATMIGRATE_TARGET_URL"
T = TypeVar("T")


def resolve_target_url(cli_value: str | None) -> str:
    """The target: `--to` if given, else $CHATMIGRATE_TARGET_URL (keeps passwords out of shell
    history and `ps`), else the default SQLite file. Passwords may also come from the drivers' own
    files: ~/.pgpass for PostgreSQL, a MySQL option file (~/.my.cnf, or `?read_default_file=PATH`)."""
    return cli_value or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


class Loader(Target):
    """Base of every dialect loader (the SQL targets); subclasses set `limits` and implement `upsert`."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        transactions=True, cursors=True, lock=True,
        text_rules="NUL and lone surrogates repaired where the database refuses them; values over a column's "
                   "length cut, the original kept in props (see README)")

    limits: Limits
    text_rules: ClassVar[TextRules] = TextRules()
    # Rows buffered before a commit: large enough to amortise a transaction, small enough for memory.
    flush_rows: int = 20_000
    # How long a transient failure (lost connection, server restart) is retried before giving up.
    retry_seconds: float = 60.0
    # Told, in one line, when a transient failure starts being retried (the CLI prints it on stderr), so
    # a run waiting for a server that is down says so at once instead of hanging silently.
    notify: Callable[[str], None] | None = None

    def __init__(self, url: str, *, prefix: str = "cm_") -> None:
        parsed = database_url(url)
        # A driver may echo a password in a form no pattern recognises: mask the value itself too.
        remember(None if parsed.password is None else str(parsed.password))
        for key, value in parsed.query.items():
            if is_secret_name(key):
                for one in (value,) if isinstance(value, str) else value:
                    remember(one)
        self.url = url
        self.prefix = prefix
        self.metadata = build_metadata(prefix)
        self.engine = self.create_engine(url)
        self.stats = LoadStats()
        self.run_id: str | None = None
        # Tables empty when the current load began, written by insert_new (see _empty_tables).
        self._fresh: set[str] = set()
        self._run_lock: contextlib.ExitStack | None = None
        self.cleaner = Cleaner({name: self.table(name) for name in COLUMNS}, self.text_rules)

    # -- dialect hooks -------------------------------------------------------------------------
    def create_engine(self, url: str) -> sa.Engine:
        return sa.create_engine(url)

    def upsert(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """Insert or update `rows` of cm_<table> by key; return how many rows changed."""
        raise NotImplementedError

    def insert_new(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """Insert `rows` into cm_<table>, which held no rows when this load began: the dialect's plain
        bulk path (no staging, no merge). A row whose key is already there must fail the statement
        (`is_key_conflict`); the batch is then written again through `upsert`. Returns len(rows)."""
        return self.upsert(conn, table, rows)

    def is_key_conflict(self, exc: BaseException) -> bool:
        """Is this driver error of `insert_new` a duplicate primary key?"""
        return False

    def is_transient(self, exc: BaseException) -> bool:
        """Is this driver error worth retrying (connection lost, server going away, deadlock)?

        SQLAlchemy already knows some disconnect errors of each dialect; `transient_driver_error`
        of the dialect module adds the rest (it sees the driver's own exception)."""
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig
        return self.transient_driver_error(exc)

    def transient_driver_error(self, exc: BaseException) -> bool:
        return False

    def cannot_succeed(self, exc: BaseException) -> str | None:
        """What to do about a driver error that no retry can fix (unknown database, refused credentials,
        a host name that does not resolve), or None. Checked before `is_transient`: such errors come as
        connection failures, which look transient."""
        return None

    @contextlib.contextmanager
    def schema_lock(self, conn: sa.Connection) -> Iterator[None]:
        """Serialise schema creation between processes for the block (two first runs into an empty
        database would both see no tables and both create them). Each dialect overrides this."""
        yield

    @contextlib.contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        """A server-side lock held while run `run_id` lives, so another host can tell a live run from a
        killed one (`run_lock_free`). Dialects without server locks hold none."""
        yield

    def run_lock_free(self, conn: sa.Connection, run_id: str) -> bool | None:
        """Is the run lock of `run_id` free (its process is gone)? None: this dialect cannot tell."""
        return None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this target's sync lock (per database and table prefix) for the block, so overlapping
        cron runs cannot collide; raise `Locked` at once, without waiting, if another run holds it.
        Each dialect overrides this; the server or kernel releases the lock if the process dies."""
        raise UsageError(f"{self.safe_url}: chatmigrate cannot lock this kind of database for a sync")
        yield  # pragma: no cover - makes this a generator

    @contextlib.contextmanager
    def session_lock(self, acquire: str, release: str, params: dict[str, Any], how: str) -> Iterator[None]:
        """A server-side lock held by one dedicated session: `acquire` must answer true at once or the
        run is `Locked`; `release` runs at the end. Shared by the PostgreSQL and MySQL dialects."""
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if not conn.execute(sa.text(acquire), params).scalar():
                raise self.locked(how)
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text(release), params)
                except sa.exc.DBAPIError:
                    conn.invalidate()  # a lost session holds no lock; never pool a doubtful one
        finally:
            conn.close()

    def locked(self, how: str) -> Locked:
        return Locked(f"another chatmigrate run holds the sync lock of {self.safe_url} (tables {self.prefix}*, "
                      f"{how}); this run wrote nothing and exits, the next scheduled run will continue")

    # -- shared machinery ---------------------------------------------------------------------
    def table(self, name: str) -> sa.Table:
        return self.metadata.tables[f"{self.prefix}{name}"]

    @property
    def safe_url(self) -> str:
        return redact(self.engine.url.render_as_string(hide_password=True))

    def ddl(self) -> str:
        """The CREATE statements `prepare` runs on an empty target, as SQL text for this dialect."""
        dialect = self.engine.dialect
        parts = []
        for table in self.metadata.sorted_tables:
            parts.append(str(sa.schema.CreateTable(table).compile(dialect=dialect)).strip())
            parts.extend(str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip()
                         for index in sorted(table.indexes, key=lambda i: i.name or ""))
        return ";\n\n".join(parts) + ";\n"

    def prepare(self) -> None:
        """Create the schema on first use; refuse a schema written by a newer chatmigrate."""
        self._retrying("creating the schema", self._prepare)

    def _prepare(self) -> None:
        # Under the schema lock, a second process that started at the same moment waits, then finds
        # the tables the first one created instead of failing on the catalog's duplicate. The commit
        # happens inside the lock: a lock released before it (MySQL's GET_LOCK is not transactional)
        # let a second process miss the uncommitted schema_version row and insert it again.
        with self.engine.connect() as conn, self.schema_lock(conn):
            version_table = self.table("schema_version")
            if sa.inspect(conn).has_table(version_table.name):
                found = conn.execute(sa.select(sa.func.max(version_table.c.version))).scalar()
                if found is not None and found > SCHEMA_VERSION:
                    raise TargetError(
                        f"{self.safe_url} holds chatmigrate schema version {found}, newer than this "
                        f"chatmigrate understands ({SCHEMA_VERSION}); upgrade chatmigrate")
            self.metadata.create_all(conn)
            self._add_missing_columns(conn)
            if not conn.execute(sa.select(version_table.c.version)
                                .where(version_table.c.version == SCHEMA_VERSION)).first():
                conn.execute(version_table.insert().values(version=SCHEMA_VERSION, applied_at=_now()))
            conn.commit()

    def _add_missing_columns(self, conn: sa.Connection) -> None:
        """Upgrade a schema of an earlier version: every column added since is nullable, so ALTER TABLE
        ADD COLUMN brings an existing table up to date (version 2 added cm_runs.host and .pid)."""
        inspector = sa.inspect(conn)
        quote = conn.dialect.identifier_preparer.quote
        for table in self.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=conn.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}")

    @property
    def file_missing(self) -> bool:
        """An SQLite database whose file does not exist yet: connecting would create it, which a dry run
        or a read must not."""
        database = self.engine.url.database
        return (self.engine.url.get_backend_name() == "sqlite" and bool(database) and database != ":memory:"
                and not Path(str(database)).exists())

    def cursor_state(self) -> tuple[bool, str]:
        if self.file_missing:
            return False, "the database file does not exist yet (the first sync creates it)"
        try:
            exists = sa.inspect(self.engine).has_table(self.table("sync_state").name)
        except sa.exc.SQLAlchemyError as exc:
            raise UsageError(f"cannot reach the target {self.safe_url}: "
                             f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}") from None
        return exists, "reachable, cursors read" if exists else "reachable, no chatmigrate tables yet"

    def existing_users(self) -> Iterator[ExistingUser]:
        """The users cm_users already holds, each with its whole record: a mapping that merges a source
        user onto one hands that record back unchanged, so its row (row_hash equal) is not rewritten."""
        users = self.table("users")
        if self.file_missing:
            return
        try:
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table(users.name):
                    return
                for row in conn.execute(sa.select(users).order_by(users.c.id)):
                    yield ExistingUser(row.id, row.username, row.email, row.id, row.display_name, _user_of_row(row))
        except sa.exc.OperationalError as exc:
            raise UsageError(f"cannot read the existing users of {self.safe_url}: "
                             f"{str(exc.orig).strip().splitlines()[0]}") from None

    def start_run(self, info: RunInfo) -> str:
        """Record a new run (`running`, with this process's host and pid), after marking `interrupted`
        the runs left `running` by processes that are gone (killed, or their machine lost)."""
        run_id = str(uuid.uuid4())
        runs = self.table("runs")
        # The run lock is taken before the row exists: no other process may see the row unlocked.
        self._release_run_lock()
        stack = contextlib.ExitStack()
        stack.enter_context(self.run_lock(run_id))
        self._run_lock = stack

        def insert() -> None:
            with self.engine.begin() as conn:
                self._mark_interrupted(conn)
                conn.execute(runs.insert().values(
                    id=run_id, command=info.command, source=info.source, location=redact(info.location),
                    target=self.safe_url, started_at=_now(), status=RUNNING, host=host_identity(),
                    pid=os.getpid()))

        try:
            self._retrying("recording the run", insert)
        except BaseException:
            self._release_run_lock()
            raise
        self.run_id = run_id
        return run_id

    def _mark_interrupted(self, conn: sa.Connection) -> None:
        runs = self.table("runs")
        stale = [row.id for row in conn.execute(sa.select(runs.c.id, runs.c.host, runs.c.pid)
                                                .where(runs.c.status == RUNNING))
                 if owner_gone(row.host, row.pid, self.run_lock_free(conn, row.id))]
        if stale:
            conn.execute(runs.update().where(runs.c.id.in_(stale), runs.c.status == RUNNING)
                         .values(status=INTERRUPTED))

    def finish_run(self, status: str, counts: dict[str, Any]) -> None:
        if self.run_id is None:
            return
        runs = self.table("runs")

        def update() -> None:
            with self.engine.begin() as conn:
                conn.execute(runs.update().where(runs.c.id == self.run_id)
                             .values(finished_at=_now(), status=status, counts=counts))

        try:
            self._retrying("recording the run", update)
        finally:
            self._release_run_lock()

    def _release_run_lock(self) -> None:
        if self._run_lock is not None:
            stack, self._run_lock = self._run_lock, None
            stack.close()

    def cursors(self, source: str, scope: str) -> dict[str, str]:
        """The saved sync cursor of every channel of one source and scope."""
        state = self.table("sync_state")

        def read() -> dict[str, str]:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(state.c.channel_id, state.c.cursor)
                                    .where(state.c.source == source, state.c.scope == scope))
                return {channel_id: cursor for channel_id, cursor in rows}

        return self._retrying("reading sync cursors", read)

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        """Consume the stream; commit every `flush_rows` rows, each time with the cursors of the
        checkpoints seen so far, and at the end.

        A checkpoint's cursor is committed in the transaction that writes (or follows) the last of its
        channel's rows, never before them: state cannot run ahead of data. Holding cursors until the
        next flush instead of committing at each one keeps an export of many small channels from
        paying one transaction per channel. If the source itself fails, what was read is still
        written (with the cursors of the channels it completed) before the error goes on.

        Batches are written by one background thread (`_BatchWriter`) while this thread reads and
        shapes the next: the drivers release the GIL during database I/O, so on two cores the run
        takes about max(read, write) instead of their sum. At most one batch waits for the writer."""
        self._fresh = self._retrying("looking for empty tables", self._empty_tables)
        pending = PendingRows(self.flush_rows)
        checkpoints: dict[tuple[str, str, str], Checkpoint] = {}
        clean = self.cleaner.clean
        iterator = iter(items)
        writer = _BatchWriter(self._write_batch, background=self.background_writes())
        try:
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except Exception:
                    self._flush(pending, checkpoints, writer)
                    writer.finish()
                    raise
                if isinstance(item, Checkpoint):
                    checkpoints[(item.source, item.scope, item.channel_id)] = item
                    continue
                self.stats.records += 1
                for table, row in rows_of(item):
                    pending.add(table, clean(table, row))
                if pending.full:
                    self._flush(pending, checkpoints, writer)
            self._flush(pending, checkpoints, writer)
            writer.finish()
        finally:
            writer.close()
        return self.stats

    def _empty_tables(self) -> set[str]:
        """The tables holding no row yet: this load writes them by `insert_new`, the fast path of a first
        migration (about what a bare bulk load costs the server, instead of staging plus a merge).

        Sound because nothing else writes them meanwhile except a concurrent run, whose rows then
        conflict like any row met twice: a conflict sends that table back to `upsert` for the rest of
        this load, and the failed batch is written again. A resumed run finds its tables non-empty."""
        with self.engine.connect() as conn:
            return {name for name in COLUMNS
                    if conn.execute(sa.select(sa.literal(1)).select_from(self.table(name)).limit(1)).first() is None}

    def background_writes(self) -> bool:
        """May batches be written from another thread? Not where the pool gives each thread its own
        connection (SQLite :memory:, SingletonThreadPool): the writer would see another database."""
        return not isinstance(self.engine.pool, sa.pool.SingletonThreadPool)

    def _flush(self, pending: PendingRows, checkpoints: dict[tuple[str, str, str], Checkpoint],
               writer: _BatchWriter) -> None:
        """Hand what is pending and the held cursors to the writer, as ONE transaction (`_write_batch`)."""
        if not pending.count and not checkpoints:
            return
        batch = list(pending.drain())
        cursors = list(checkpoints.values())
        checkpoints.clear()
        # Copied here, on the thread that counts repairs, so the writer never reads a changing Counter.
        self.stats.repairs = dict(self.cleaner.repairs)
        writer.submit(batch, cursors)

    def _write_batch(self, batch: list[tuple[str, list[Row]]], cursors: list[Checkpoint]) -> None:
        """Write one batch and its cursors in ONE transaction: the unit of retry.

        A failure rolls the whole batch back, so a retry (or a re-run after a crash) repeats it from
        scratch; deterministic ids make the repeat harmless."""

        def write() -> int:
            written = 0
            with self.engine.begin() as conn:
                for table, rows in batch:
                    for chunk in statements(rows, table, self.limits):
                        written += self._write_rows(conn, table, chunk)
                for checkpoint in cursors:
                    self._save_cursor(conn, checkpoint)
            return written

        while True:
            try:
                self.stats.rows_written += self._retrying("writing a batch", write)
                break
            except _FreshConflict as conflict:  # rolled back: the same batch again, that table merged
                self._fresh.discard(conflict.table)
        self.stats.commits += 1

    def _write_rows(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        if table not in self._fresh:
            return self.upsert(conn, table, rows)
        try:
            return self.insert_new(conn, table, rows)
        except Exception as exc:
            if self.is_key_conflict(getattr(exc, "orig", None) or exc):
                raise _FreshConflict(table) from None
            raise

    def _retrying(self, what: str, action: Callable[[], T]) -> T:
        """Run one transaction; repeat it with exponential backoff while failures are transient,
        for at most `retry_seconds`. Driver errors leave as TransientError/TargetError, redacted."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.25
        attempts = 0
        while True:
            attempts += 1
            try:
                return action()
            except (sa.exc.SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error, OSError) as exc:
                cause = _driver_message(exc)
                advice = self.cannot_succeed(getattr(exc, "orig", None) or exc)
                if advice is not None:
                    raise TargetError(f"{self.safe_url}: {what} failed: {cause}; {advice}") from None
                if not self.is_transient(exc):
                    raise TargetError(f"{self.safe_url}: {what} failed: {cause}") from None
                if time.monotonic() + delay > deadline:
                    raise TransientError(
                        f"{self.safe_url}: {what} failed {attempts} times over {self.retry_seconds:g} s "
                        f"(connection lost or server unavailable); the last error was: {cause}. "
                        "Run the same command again when the server is back: it resumes.") from None
                if attempts == 1 and self.notify is not None:
                    self.notify(f"{self.safe_url}: {what} failed ({cause}); retrying for up to "
                                f"{self.retry_seconds:g} s (--retry-for SECONDS)")
            # A dead connection may still sit in the pool: drop them all and reconnect fresh.
            self.engine.dispose()
            self.stats.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    def _save_cursor(self, conn: sa.Connection, checkpoint: Checkpoint) -> None:
        state = self.table("sync_state")
        conn.execute(state.delete().where(state.c.source == checkpoint.source, state.c.scope == checkpoint.scope,
                                          state.c.channel_id == checkpoint.channel_id))
        conn.execute(state.insert().values(source=checkpoint.source, scope=checkpoint.scope,
                                           channel_id=checkpoint.channel_id, cursor=checkpoint.cursor,
                                           updated_at=_now()))

    def close(self) -> None:
        self._release_run_lock()
        self.engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


class _FreshConflict(Exception):
    """`insert_new` met a key already in its table (a row seen twice, or a concurrent run's)."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


_Batch = tuple[list[tuple[str, list[Row]]], list[Checkpoint]]


class _BatchWriter:
    """Writes batches in order on one background thread, fed through a queue of one batch.

    The queue bound keeps memory flat: the batch being read, one waiting, one being written. The first
    failure of a write stops the writer and is raised on the reading thread at its next submit (or at
    `finish`); batches after a failed one are never written, so no cursor passes data that failed."""

    def __init__(self, write: Callable[[list[tuple[str, list[Row]]], list[Checkpoint]], None], *,
                 background: bool) -> None:
        self._write = write
        self._failure: BaseException | None = None
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="chatmigrate-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._write(*batch)
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._failure = exc

    def _raise_failure(self) -> None:
        # Never cleared: the writer must keep skipping every batch queued after the failed one.
        if self._failure is not None:
            raise self._failure

    def submit(self, batch: list[tuple[str, list[Row]]], cursors: list[Checkpoint]) -> None:
        self._raise_failure()
        if self._thread is None:
            self._write(batch, cursors)
            return
        self._queue.put((batch, cursors))

    def finish(self) -> None:
        """Wait until every submitted batch is written; raise the failure if one failed."""
        self.close()
        self._raise_failure()

    def close(self) -> None:
        """Stop the thread after the batches already queued (also on the way out of an error)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, first line only (SQLAlchemy appends the SQL and every bound value),
    with secrets hidden."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines() or [type(orig).__name__]
    return redact(lines[0])[:500]


def ddl_for(url: str, *, prefix: str = "cm_") -> str:
    """The schema DDL chatmigrate would create in the database of `url` (no connection is made)."""
    loader = loader_for(url, prefix=prefix)
    try:
        return loader.ddl()
    finally:
        loader.close()


def database_url(url: str, *, where: str = "--to") -> sa.URL:
    """`url` parsed, or a usage error saying what is wrong with it (never the password)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(f"{where} {redact(url)!r} is not a database URL (e.g. sqlite:///chat.db, "
                         "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db)") from None
    except ValueError:  # SQLAlchemy converts the port with int() and lets its ValueError out
        raise UsageError(f"{where} {redact(url)!r}: the port after the host must be a number "
                         "(e.g. postgresql+psycopg://user@db.internal:5432/chat)") from None
    if parsed.host and "@" in parsed.host:
        # The URL's password (or user name) holds an unencoded '@': the driver would take its tail for the
        # host, fail to resolve it, and print that tail in its error.
        raise UsageError(f"{where} {redact(url)!r}: the user name or password holds an '@'; write it as %40 "
                         "(or keep the password in ~/.pgpass, ~/.my.cnf or CHATMIGRATE_TARGET_URL)")
    return parsed


def loader_for(url: str, *, prefix: str = "cm_") -> Loader:
    """Pick the dialect module by the URL's scheme (sqlite, postgresql, mysql/mariadb)."""
    backend = database_url(url).get_backend_name()
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


def sql_target(url: str, *, prefix: str = "cm_", options: dict[str, str] | None = None) -> Loader:
    """The `chatmigrate.targets` factory of the SQL targets: the `cm_` tables in SQLite, PostgreSQL or
    MySQL/MariaDB. They take no target options: everything is in the URL."""
    if options:
        raise UsageError(f"--to {redact(url)!r}: a SQL target takes no target options (got "
                         f"{', '.join(sorted(options))})")
    return loader_for(url, prefix=prefix)


def _user_of_row(row: Any) -> User:
    """A cm_users row as the canonical User it was written from (the inverse of rows.rows_of)."""
    # PostgreSQL hands JSONB back parsed; the other dialects keep JSON as text.
    props = row.props if isinstance(row.props, dict) else orjson.loads(row.props) if row.props else {}
    return User(id=row.id, source=row.source, source_id=row.source_id, username=row.username, email=row.email,
                display_name=row.display_name, first_name=row.first_name, last_name=row.last_name,
                is_bot=bool(row.is_bot), is_deleted=bool(row.is_deleted), role=row.role, timezone=row.timezone,
                props=props)
