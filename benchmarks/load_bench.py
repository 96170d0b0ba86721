"""Loader speed against each database's bare fastest path, on the same generated records.

    python3 benchmarks/load_bench.py --messages 200000 [--dialects sqlite,postgresql,mariadb]

For each dialect, every phase runs in a fresh child process (so peak RSS is per phase) on a fresh
database, and consumes the same deterministic stream (tests/loaders/synth.py: threads, reactions, files,
edits, props), turned into rows by chatmigrate.loaders.rows.rows_of:
  gen     only generate records and shape rows: the cost every other phase shares
  loader  chatmigrate's loader (batches, text checks, upserts, a commit per batch and checkpoint)
  rerun   the loader again on the same stream: must write 0 rows
  bare_*  the same rows written the plainest fast way into the same (empty, same-schema) tables:
          PostgreSQL binary COPY; MariaDB LOAD DATA LOCAL INFILE and pymysql executemany INSERT;
          SQLite executemany INSERT; one transaction.
It prints rows/s (wall time, generation included, as a real run has it), the write-side rows/s with
the generation time of the `gen` phase taken out, ratios to the bare path, and peak RSS.
No assertions on time: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatmigrate.loaders import loader_for  # noqa: E402
from chatmigrate.loaders.rows import COLUMNS, TABLE_ORDER, rows_of  # noqa: E402
from chatmigrate.model import Checkpoint  # noqa: E402
from tests.loaders.synth import items  # noqa: E402

PG_URL = os.environ.get("CHATMIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("CHATMIGRATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
CHUNK = 100_000


def _stream(n: int) -> Iterator[Any]:
    # hostile=False: the bare paths cannot repair NUL or surrogates; the loader still checks every value.
    return items(n, channels=200, users=2000, hostile=False)


def _rows(n: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for item in _stream(n):
        if not isinstance(item, Checkpoint):
            yield from rows_of(item)


def _chunks(n: int) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Rows grouped per table in chunks, as a bulk writer wants them, streaming."""
    pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLE_ORDER}
    count = 0
    for table, row in _rows(n):
        pending[table].append(row)
        count += 1
        if count >= CHUNK:
            for t in TABLE_ORDER:
                if pending[t]:
                    yield t, pending[t]
                    pending[t] = []
            count = 0
    for t in TABLE_ORDER:
        if pending[t]:
            yield t, pending[t]


# -- phases (run in a child process) -----------------------------------------------------------------
def phase_gen(url: str, n: int) -> int:
    return sum(1 for _ in _rows(n))


def phase_loader(url: str, n: int) -> int:
    loader = loader_for(url)
    loader.prepare()
    stats = loader.load(_stream(n))
    loader.close()
    return stats.rows_written


def _bare_tables(url: str) -> Any:
    loader = loader_for(url, prefix="bare_")
    loader.prepare()  # same schema and indexes, under another prefix, emptied for each bare phase
    with loader.engine.begin() as conn:
        for table in COLUMNS:
            conn.execute(loader.table(table).delete())
    return loader


def phase_bare_pg(url: str, n: int) -> int:
    from chatmigrate.loaders.postgresql import _pg_type

    loader = _bare_tables(url)
    types = {t: [_pg_type(loader.table(t).c[c]) for c in cols] for t, cols in COLUMNS.items()}
    written = 0
    with loader.engine.begin() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cur:
            for table, rows in _chunks(n):
                cols = ", ".join(COLUMNS[table])
                with cur.copy(f"COPY bare_{table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types[table])
                    for row in rows:
                        copy.write_row(row)
                written += len(rows)
    loader.close()
    return written


def _mysql_literal_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # pymysql writes tz-aware datetimes with their offset; DATETIME(6) wants plain UTC.
    return [tuple(v.astimezone(UTC).replace(tzinfo=None) if hasattr(v, "tzinfo") and v.tzinfo else v
                  for v in row) for row in rows]


def phase_bare_mysql_insert(url: str, n: int) -> int:
    loader = _bare_tables(url)
    written = 0
    with loader.engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        for table, rows in _chunks(n):
            cols = COLUMNS[table]
            sql = f"INSERT INTO bare_{table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
            cur.executemany(sql, _mysql_literal_rows(rows))
            written += len(rows)
        cur.close()
    loader.close()
    return written


def _tsv(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "1" if value else "0"
    if hasattr(value, "tzinfo"):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    text = str(value)
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\x00", "\\0"))


def phase_bare_mysql_load_data(url: str, n: int) -> int:
    loader = _bare_tables(url)
    engine = sa.create_engine(url, connect_args={"local_infile": True, "charset": "utf8mb4",
                                                 "init_command": "SET time_zone='+00:00'"})
    written = 0
    with tempfile.TemporaryDirectory() as tmp, engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        for table, rows in _chunks(n):
            path = Path(tmp) / f"{table}.tsv"
            with path.open("w", encoding="utf-8", newline="\n") as out:
                for row in rows:
                    out.write("\t".join(map(_tsv, row)) + "\n")
            cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE bare_{table} CHARACTER SET utf8mb4 "
                        f"({', '.join(COLUMNS[table])})")
            written += len(rows)
        cur.close()
    engine.dispose()
    loader.close()
    return written


def phase_bare_sqlite(url: str, n: int) -> int:
    from chatmigrate.loaders.sqlite import _adapt

    loader = _bare_tables(url)  # same engine set-up: WAL, synchronous=NORMAL
    written = 0
    times = {t: [i for i, c in enumerate(cols) if c.endswith("_at")] for t, cols in COLUMNS.items()}
    with loader.engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        for table, rows in _chunks(n):
            cols = COLUMNS[table]
            cur.executemany(f"INSERT INTO bare_{table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [_adapt(row, times[table]) for row in rows])
            written += len(rows)
        cur.close()
    loader.close()
    return written


PHASES: dict[str, Callable[[str, int], int]] = {
    "gen": phase_gen, "loader": phase_loader, "rerun": phase_loader, "bare_pg_copy": phase_bare_pg,
    "bare_mysql_insert": phase_bare_mysql_insert, "bare_mysql_load_data": phase_bare_mysql_load_data,
    "bare_sqlite_executemany": phase_bare_sqlite,
}
PLAN = {
    "sqlite": ["gen", "loader", "rerun", "bare_sqlite_executemany"],
    "postgresql": ["gen", "loader", "rerun", "bare_pg_copy"],
    "mariadb": ["gen", "loader", "rerun", "bare_mysql_load_data", "bare_mysql_insert"],
}


def child(phase: str, url: str, n: int) -> None:
    started = time.perf_counter()
    rows = PHASES[phase](url, n)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "rows": rows, "seconds": seconds, "peak_rss_mib": peak_mib}))


# -- the parent: fresh databases, one child per phase, the table -------------------------------------
def _fresh_database(dialect: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    if dialect == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: [p.unlink(missing_ok=True) for p in tmp.glob(path.name + "*")]
    base = PG_URL if dialect == "postgresql" else MYSQL_URL
    name = f"cm_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                                                           if dialect == "mariadb" else ""))

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if dialect == "postgresql"
                                                                      else ""))
        admin.dispose()

    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False), drop


def run_phase(phase: str, url: str, n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", phase, "--url", url, "--messages", str(n)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--dialects", default="sqlite,postgresql,mariadb")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.messages)
        return
    print(f"# {args.messages:,} messages; rows = messages + reactions + files + users/channels/members; "
          f"write-side = rows / (seconds − gen seconds)")
    header = (f"{'dialect':<11}{'phase':<25}{'rows':>10}{'s':>8}{'rows/s':>10}{'write rows/s':>14}"
              f"{'× bare':>8}{'× bare (write)':>16}{'peak RSS MiB':>14}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in args.dialects.split(","):
            url, drop = _fresh_database(dialect, Path(tmp))
            try:
                results = {phase: run_phase(phase, url, args.messages) for phase in PLAN[dialect]}
            finally:
                drop()
            gen = results["gen"]
            total_rows = gen["rows"]
            bare = [r for p, r in results.items() if p.startswith("bare_")]
            best = max(bare, key=lambda r: total_rows / r["seconds"])
            for phase, r in results.items():
                rate = total_rows / r["seconds"]
                write = total_rows / max(r["seconds"] - gen["seconds"], 1e-9) if phase != "gen" else float("nan")
                best_rate = total_rows / best["seconds"]
                best_write = total_rows / max(best["seconds"] - gen["seconds"], 1e-9)
                ratio = f"{rate / best_rate:.2f}" if phase in ("loader", "rerun") or phase.startswith("bare") else ""
                wratio = f"{write / best_write:.2f}" if ratio else ""
                print(f"{dialect:<11}{phase:<25}{r['rows']:>10,}{r['seconds']:>8.1f}{rate:>10,.0f}"
                      f"{write:>14,.0f}{ratio:>8}{wratio:>16}{r['peak_rss_mib']:>14.0f}")
            print(f"{dialect:<11}re-run wrote {results['rerun']['rows']} rows "
                  f"({'OK' if results['rerun']['rows'] == 0 else 'NOT IDEMPOTENT'}); bare reference = {best['phase']}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
