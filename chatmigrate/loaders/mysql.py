"""MySQL / MariaDB target (pymysql): `LOAD DATA LOCAL INFILE` into a temporary staging table, then one
`INSERT … SELECT … ON DUPLICATE KEY UPDATE` merge per table; utf8mb4 everywhere, strict SQL mode.

Why LOAD DATA: it is the fastest way in on this server (~41k rows/s against ~18k for pymysql's
executemany, research/load-baselines.md), and the staged merge keeps the row_hash rule of every
dialect. Where the server has `local_infile` off (or the URL says `?local_infile=0`), the loader says
so once on stderr and writes multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements sized under the
server's `max_allowed_packet` instead.

Why build the statement text here: pymysql escapes value by value in pure Python, which bounds it at
about 18k rows/s on this machine (research/load-baselines.md); a tuple-at-a-time literal writer that
only escapes what the server's default (backslash) escaping requires is several times cheaper, and the
server's own parsing is the same. The update clause leaves a row alone when its `row_hash` did not
change, so a re-run of an unchanged export writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pymysql
import sqlalchemy as sa
from pymysql.constants import CLIENT

from chatmigrate.errors import TargetError
from chatmigrate.loaders import Loader
from chatmigrate.loaders._batching import KEY_OF, Limits
from chatmigrate.loaders._clean import Cleaner, TextRules
from chatmigrate.loaders.rows import COLUMNS, Row, key_columns
from chatmigrate.model import Checkpoint, Record
from chatmigrate.targets.contract import LoadStats

# Strict: a value that does not fit is an error, never a silent truncation or a zero date.
SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
# Server errors after which the same transaction can succeed on a fresh try.
_TRANSIENT_CODES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # MariaDB: connection was killed
    2003,  # can't connect (refused)
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync (after a broken read)
    2055,  # lost connection (system error)
    4031,  # MySQL 8: disconnected by the server for inactivity
}
# Errors no retry can fix, with what to do: unknown database, refused credentials.
_CANNOT_SUCCEED = {
    1044: "this user may not use that database: GRANT it access or fix the database name in the URL",
    1045: "the server refused these credentials: check the user name and the password (~/.my.cnf, or "
          "CHATMIGRATE_TARGET_URL)",
    1049: "create the database first (CREATE DATABASE name CHARACTER SET utf8mb4 COLLATE utf8mb4_bin) or fix "
          "its name in the URL",
    1251: "the server wants an authentication method pymysql lacks: see the MySQL user's plugin",
    1698: "the server refused these credentials (the user may be allowed only local socket logins): check the "
          "user name and the password",
}
# Error 2003 also reports a host name that does not resolve (pymysql passes the resolver's words on).
_UNKNOWN_HOST = re.compile(r"Name or service not known|nodename nor servname|No address associated|\[Errno -[25]\]")
# The rows of one statement stay under this share of max_allowed_packet: row sizes are estimated
# before escaping, which can double a value made of quotes and backslashes.
_PACKET_SHARE = 0.45
_MAX_STATEMENT_ROWS = 5_000
MEDIUMTEXT_BYTES = (1 << 24) - 1
# Room a row leaves in a packet for the statement around it and the repair notes added to its props.
_ROW_MARGIN = 1 << 20
# Seconds a first run waits for another creating the schema (it takes well under one).
_SCHEMA_WAIT = 60
# With LOAD DATA the file is streamed, not one packet: a flush's table goes in one LOAD and one merge.
_LOAD_DATA_ROWS = 200_000
_NO_LOCAL_INFILE = ("{url}: the server has local_infile OFF (or the URL sets local_infile=0): writing with "
                    "multi-row INSERT, about half as fast as LOAD DATA (SET GLOBAL local_infile=1 to enable it)")


def _tsv(value: Any) -> str:
    """One value as a field of LOAD DATA's default format (tab-separated, backslash escapes, \\N)."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        if "\\" in value:
            value = value.replace("\\", "\\\\")
        if "\t" in value:
            value = value.replace("\t", "\\t")
        if "\n" in value:
            value = value.replace("\n", "\\n")
        if "\r" in value:
            value = value.replace("\r", "\\r")
        if "\x00" in value:
            value = value.replace("\x00", "\\0")
        return value
    if kind is bool:
        return "1" if value else "0"
    if kind is datetime:
        # DATETIME(6) has no zone: chatmigrate stores UTC. isoformat is ~5x cheaper than strftime.
        if value.tzinfo is not UTC and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return str(value)


def _literal(value: Any) -> str:
    """One value as SQL text, for the server's default (backslash) escaping, which SQL_MODE keeps."""
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is str:
        if "\\" in value:
            value = value.replace("\\", "\\\\")
        if "'" in value:
            value = value.replace("'", "\\'")
        if "\x00" in value:
            value = value.replace("\x00", "\\0")
        return f"'{value}'"
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if kind is datetime:
        # DATETIME(6) has no zone: chatmigrate stores UTC (and the session's time_zone is UTC).
        if value.tzinfo is not UTC and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return (f"'{value.year:04}-{value.month:02}-{value.day:02} "
                f"{value.hour:02}:{value.minute:02}:{value.second:02}.{value.microsecond:06}'")
    if kind is date or kind is float:
        return f"'{value}'"
    raise TypeError(f"no SQL literal for {kind.__name__}")


class MysqlLoader(Loader):
    # Lengths are enforced (strict mode). LongText is MEDIUMTEXT, which holds 16 MiB; a row must also fit
    # one statement, whose size the server caps at max_allowed_packet (4 MiB on MySQL 5.7, 16 MiB on
    # MariaDB, 64 MiB on MySQL 8): read at connect (`_server_rules`), so text is stored whole whenever
    # the server can take it, and cut (reported as a repair) only beyond.
    text_rules: ClassVar[TextRules] = TextRules(nul_allowed=True, max_text_bytes=MEDIUMTEXT_BYTES)

    def __init__(self, url: str, *, prefix: str = "cm_") -> None:
        super().__init__(url, prefix=prefix)
        for table in self.metadata.tables.values():
            # utf8mb4 so 4-byte characters (emoji) survive; _bin so keys compare exactly: the
            # general collations treat "Smile" and "smile", or even two different emoji, as equal.
            table.dialect_kwargs.update(mysql_engine="InnoDB", mysql_charset="utf8mb4",
                                        mysql_collate="utf8mb4_bin")
        self._sql: dict[str, tuple[str, str]] = {}
        self._merge: dict[str, str] = {}
        self._limits: Limits | None = None
        self._load_data = False
        self._spool: Path | None = None

    def create_engine(self, url: str) -> sa.Engine:
        connect_args: dict[str, Any] = {
            "charset": "utf8mb4",
            "init_command": f"SET SESSION sql_mode='{SQL_MODE}', time_zone='+00:00'",
        }
        parsed = sa.engine.make_url(url)
        option_file = Path("~/.my.cnf").expanduser()
        if "local_infile" not in parsed.query:
            # The client side of LOAD DATA LOCAL; a URL may turn it off (?local_infile=0): pymysql sends
            # whatever file the server names, so a database one does not trust should not get it.
            connect_args["local_infile"] = True
        if parsed.password is None and "read_default_file" not in parsed.query and option_file.is_file():
            # Like the mysql client: a password-less URL takes the password from ~/.my.cnf [client].
            connect_args.update(read_default_file=str(option_file), read_default_group="client")
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)

        @sa.event.listens_for(engine, "do_connect")
        def _affected_not_found(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            # SQLAlchemy asks for FOUND_ROWS; we want affected rows, so an unchanged row counts 0.
            cparams["client_flag"] = cparams.get("client_flag", 0) & ~CLIENT.FOUND_ROWS

        return engine

    @property  # type: ignore[override]
    def limits(self) -> Limits:
        """Statement size follows this server's max_allowed_packet, read once."""
        if self._limits is None:
            with self.engine.connect() as conn:
                packet, server_infile = conn.exec_driver_sql("SELECT @@max_allowed_packet, @@local_infile").one()
                client_infile = bool(conn.connection.driver_connection.client_flag & CLIENT.LOCAL_FILES)
            packet = int(packet or 4 << 20)
            self._load_data = bool(int(server_infile or 0)) and client_infile
            if self._load_data:
                self._limits = Limits(max_rows=_LOAD_DATA_ROWS)
            else:
                print(_NO_LOCAL_INFILE.format(url=self.safe_url), file=sys.stderr)
                self._limits = Limits(max_rows=_MAX_STATEMENT_ROWS, max_bytes=int(packet * _PACKET_SHARE))
            # The same row rules on both paths: a row stays within one packet, so a target that turns
            # local_infile off later stores the same text.
            self.cleaner = Cleaner({name: self.table(name) for name in COLUMNS}, _server_rules(packet))
        return self._limits

    def prepare(self) -> None:
        super().prepare()
        self._retrying("reading max_allowed_packet", lambda: self.limits)

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        self._retrying("reading max_allowed_packet", lambda: self.limits)  # the cleaner must know it first
        return super().load(items)

    def transient_driver_error(self, exc: BaseException) -> bool:
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError) and exc.args:
            return exc.args[0] in _TRANSIENT_CODES
        # (0, '') from pymysql: the socket is already closed.
        return isinstance(exc, pymysql.err.InterfaceError)

    def cannot_succeed(self, exc: BaseException) -> str | None:
        if not isinstance(exc, pymysql.err.OperationalError) or not exc.args:
            return None
        code = exc.args[0]
        if code == 2003 and _UNKNOWN_HOST.search(str(exc.args[-1])):
            return "the host name does not resolve: check it in the URL"
        return _CANNOT_SUCCEED.get(code)

    @contextlib.contextmanager
    def schema_lock(self, conn: sa.Connection) -> Iterator[None]:
        """A named lock on the schema's own connection (DDL commits implicitly, so a transaction cannot
        serialise it): a concurrent first run waits until the tables exist, then finds them."""
        name = lock_name(self.engine.url.database or "", f"schema:{self.prefix}")
        if not conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": _SCHEMA_WAIT}).scalar():
            raise TargetError(f"{self.safe_url}: another chatmigrate has been creating the schema for over "
                              f"{_SCHEMA_WAIT} s (GET_LOCK('{name}')); run again when it is done")
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})

    @contextlib.contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        name = _run_lock_name(run_id)
        with self.session_lock("SELECT GET_LOCK(:name, 0) = 1", "SELECT RELEASE_LOCK(:name)", {"name": name},
                               f"GET_LOCK('{name}')"):
            yield

    def run_lock_free(self, conn: sa.Connection, run_id: str) -> bool | None:
        return conn.execute(sa.text("SELECT IS_FREE_LOCK(:name)"), {"name": _run_lock_name(run_id)}).scalar() == 1

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """A named lock (`GET_LOCK`, timeout 0) on a connection of its own held for the block. Names are
        server-wide, so the name holds the database and the table prefix; the server releases it if
        this process dies."""
        name = lock_name(self.engine.url.database or "", self.prefix)
        with self.session_lock("SELECT GET_LOCK(:name, 0) = 1", "SELECT RELEASE_LOCK(:name)", {"name": name},
                               f"GET_LOCK('{name}')"):
            yield

    def _statement(self, table: str) -> tuple[str, str]:
        if table not in self._sql:
            cols = COLUMNS[table]
            keys = key_columns(table)
            name = self.table(table).name
            # MySQL applies assignments left to right: row_hash goes last, so every IF still sees the
            # old hash; an unchanged row gets its own values back and counts as 0 affected rows.
            updates = [f"`{c}` = IF(`row_hash` <=> VALUES(`row_hash`), `{c}`, VALUES(`{c}`))"
                       for c in cols if c not in keys and c != "row_hash"]
            updates.append("`row_hash` = VALUES(`row_hash`)")
            self._sql[table] = (
                f"INSERT INTO `{name}` ({', '.join(f'`{c}`' for c in cols)}) VALUES ",
                f" ON DUPLICATE KEY UPDATE {', '.join(updates)}",
            )
        return self._sql[table]

    def upsert(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        return self._load_and_merge(conn, table, rows) if self._load_data else self._insert(conn, table, rows)

    def _merge_sql(self, table: str) -> str:
        if table not in self._merge:
            cols = COLUMNS[table]
            keys = key_columns(table)
            name = self.table(table).name
            listed = ", ".join(f"`{c}`" for c in cols)
            # Target columns qualified: the SELECT's staging table has the same names. row_hash goes
            # last, so every IF still sees the old hash (assignments apply left to right).
            updates = [f"`{name}`.`{c}` = IF(`{name}`.`row_hash` <=> VALUES(`row_hash`), `{name}`.`{c}`, "
                       f"VALUES(`{c}`))" for c in cols if c not in keys and c != "row_hash"]
            updates.append(f"`{name}`.`row_hash` = VALUES(`row_hash`)")
            # WHERE TRUE ends the SELECT before ON DUPLICATE KEY, which the parser could otherwise take
            # for a join condition. Staged rows are unique by key (unique_by_key).
            self._merge[table] = (f"INSERT INTO `{name}` ({listed}) SELECT {listed} FROM `_cm_stage_{table}` "
                                  f"WHERE TRUE ON DUPLICATE KEY UPDATE {', '.join(updates)}")
        return self._merge[table]

    def _spool_path(self) -> Path:
        if self._spool is None:
            handle, name = tempfile.mkstemp(prefix="chatmigrate-", suffix=".tsv")
            os.close(handle)
            self._spool = Path(name)
        return self._spool

    def _load_and_merge(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """LOAD DATA LOCAL the rows into this session's staging table, then merge by row_hash.

        The staging table is TEMPORARY (no implicit commit, gone with the session, never seen by
        another) and has no index: it is read once, whole, by the merge."""
        stage = f"_cm_stage_{table}"
        cols = ", ".join(f"`{c}`" for c in COLUMNS[table])
        driver = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS `{stage}`")
            cursor.execute(f"CREATE TEMPORARY TABLE `{stage}` SELECT {cols} FROM `{self.table(table).name}` LIMIT 0")
            self._load_into(cursor, stage, table, rows)
            affected = cursor.execute(self._merge_sql(table))
        finally:
            cursor.close()
        duplicates = _duplicates(driver)
        return max(affected - (duplicates or 0), 0)

    def insert_new(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        """LOAD DATA LOCAL straight into the (empty at the start of the load) table, when the server
        allows LOCAL; a key met twice is a duplicate-entry warning (LOCAL skips such rows), which
        `_load_into` raises as a key conflict."""
        if not self._load_data:
            return self.upsert(conn, table, rows)  # the multi-row INSERT path has no plainer form
        cursor = conn.connection.driver_connection.cursor()
        try:
            self._load_into(cursor, self.table(table).name, table, rows)
        finally:
            cursor.close()
        return len(rows)

    def is_key_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, _DuplicateKey)

    def _load_into(self, cursor: Any, into: str, table: str, rows: list[Row]) -> None:
        spool = self._spool_path()
        with spool.open("w", encoding="utf-8", newline="\n") as out:
            # In primary-key order: InnoDB then inserts into its clustered index page after page instead
            # of at random (uuid keys), and the merge reads the staging table in that order.
            out.writelines("\t".join(map(_tsv, row)) + "\n" for row in sorted(rows, key=KEY_OF[table]))
        cols = ", ".join(f"`{c}`" for c in COLUMNS[table])
        path = str(spool).replace("\\", "\\\\").replace("'", "\\'")
        loaded = cursor.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{into}` CHARACTER SET utf8mb4 ({cols})")
        # LOCAL turns a refused value into a warning (the server cannot stop the client's stream):
        # any warning is an error here, so nothing is ever stored cut or converted silently.
        if getattr(cursor.connection._result, "warning_count", 0) or loaded != len(rows):
            cursor.execute("SHOW WARNINGS LIMIT 1")
            first = cursor.fetchone()
            if first and first[1] == _ER_DUP_ENTRY:
                raise _DuplicateKey(first[2])
            raise TargetError(f"{self.safe_url}: LOAD DATA into {into} took {loaded} of {len(rows)} rows"
                              + (f": {first[2]}" if first else ""))

    def close(self) -> None:
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)
            self._spool = None
        super().close()

    def _insert(self, conn: sa.Connection, table: str, rows: list[Row]) -> int:
        head, tail = self._statement(table)
        values = ",".join(f"({','.join(map(_literal, row))})" for row in rows)
        cursor = conn.connection.driver_connection.cursor()
        try:
            affected = cursor.execute(head + values + tail)
        finally:
            cursor.close()
        # affected = inserted + 2 × updated (unchanged rows count 0). A multi-row statement's info line
        # counts the updated rows as "Duplicates"; a single-row statement sends none.
        duplicates = _duplicates(conn.connection.driver_connection)
        if duplicates is None:
            return min(affected, len(rows)) if len(rows) == 1 else affected
        return max(affected - duplicates, 0)


def _server_rules(packet: int) -> TextRules:
    """What this server takes: NUL, text values up to MEDIUMTEXT's 16 MiB, rows up to one packet
    (the literal writer escapes backslash, quote and NUL with one byte more)."""
    return TextRules(nul_allowed=True, max_text_bytes=MEDIUMTEXT_BYTES,
                     max_row_bytes=max(packet - _ROW_MARGIN, 1 << 20), escaped_chars="\\'\x00",
                     row_limit_name=f"max_allowed_packet {packet} bytes")


_ER_DUP_ENTRY = 1062


class _DuplicateKey(Exception):
    """LOAD DATA LOCAL skipped a row whose key the table already holds (a warning, not an error)."""


_DUPLICATES = re.compile(rb"Duplicates:\s*(\d+)")


def _duplicates(driver: Any) -> int | None:
    """b'Records: 3  Duplicates: 1  Warnings: 0' → 1; None when the server sent no info line."""
    message = getattr(getattr(driver, "_result", None), "message", None) or b""
    found = _DUPLICATES.search(message if isinstance(message, bytes) else str(message).encode())
    return int(found.group(1)) if found else None


def _run_lock_name(run_id: str) -> str:
    """Lock names are server-wide; a run id (a uuid4) is unique on its own."""
    return f"chatmigrate:run:{run_id}"


def lock_name(database: str, prefix: str) -> str:
    """`chatmigrate:<database>:<prefix>`, hashed when longer than MySQL's 64-character limit."""
    name = f"chatmigrate:{database}:{prefix}"
    return name if len(name) <= 64 else "chatmigrate:" + hashlib.sha256(name.encode()).hexdigest()[:40]
