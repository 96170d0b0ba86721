"""Throughput and memory of chatmigrate, stage by stage, next to each database's bare fastest path.

    python benchmarks/run.py --messages 1000000          # the full run (README)
    python benchmarks/run.py --quick                     # 2,000 messages: proves the harness works
    python benchmarks/run.py --messages 1000000 --scale-to 5000000 --delete-large

For every source form whose extractor is registered (others are reported "not available yet") and
every reachable target, in ONE run (this machine is shared and noisy: only ratios measured side by
side mean something), each measurement in a fresh child process whose peak RSS is read with wait4:

- parse     extractor.records() drained (markup conversion happens inside it);
- markup    the form's markup function alone, timed over the export's raw message texts;
- validate  `chatmigrate validate` as a whole process (parse + validate, nothing written);
- load      `pipeline.run` with the loader, the loader's own time isolated: the time spent waiting
            for upstream items is subtracted; `flush` is the time the writer thread spent writing
            batches (it overlaps the reading, so it is not a share of the loader's own time);
- migrate   `chatmigrate migrate` as a whole process: the end-to-end figure;
- bare      the same rows (spooled once per form, already shaped by rows.py) through the database's
            fastest path: PostgreSQL binary COPY, MariaDB LOAD DATA LOCAL INFILE (TSV written inside
            the timing), SQLite executemany in one transaction;
- pandas    the same rows through `DataFrame.to_sql` (chunksize 10,000), the usual peer loader.

Every database run gets a fresh database (CREATE DATABASE cmbench_…, dropped afterwards). Results go
to benchmarks/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
FORMS = ("slack", "mattermost", "rocketchat")
TARGETS = ("sqlite", "postgresql", "mariadb")
PG_URL = os.environ.get("CHATMIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("CHATMIGRATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
QUICK_MESSAGES = 2_000
# Goals of issue 3, checked at the end of every run.
E2E_VS_COPY = 0.6
# Goals of issue 16 for the other two databases.
E2E_VS_LOAD_DATA = 0.5
E2E_VS_EXECUTEMANY = 0.7
OTHER_FORMS_VS_SLACK = 0.8
RSS_LIMIT_MB = 300
RSS_GROWTH = 0.20
VALIDATE_SPEEDUP = 3.0

sys.path.insert(0, str(HERE))
import generate  # noqa: E402  (benchmarks/ is not a package)

# ---------------------------------------------------------------------------------------------------
# Children: each measurement runs in its own process (`run.py --child JSON`), prints one JSON line.
# ---------------------------------------------------------------------------------------------------


def _timed_iter(items: Any, clock: dict[str, float]) -> Iterator[Any]:
    """Pass items on, adding the time spent waiting for each one to clock['upstream']."""
    pc = time.perf_counter
    it = iter(items)
    while True:
        t0 = pc()
        try:
            item = next(it)
        except StopIteration:
            clock["upstream"] += pc() - t0
            return
        clock["upstream"] += pc() - t0
        yield item


def _extractor(path: str) -> Any:
    from chatmigrate import extractors
    cls = extractors.detect(path)
    return cls(path, {})


def child_parse(path: str) -> dict[str, Any]:
    from chatmigrate.model import Message
    extractor = _extractor(path)
    t0 = time.perf_counter()
    messages = items = 0
    for item in extractor.records():
        items += 1
        messages += isinstance(item, Message)
    return {"seconds": time.perf_counter() - t0, "messages": messages, "items": items, "extractor": extractor.name}


def _slack_texts(path: str) -> Iterator[tuple[list[str], tuple[Any, ...]]]:
    import re

    import orjson

    from chatmigrate.extractors._files import ExportFiles
    from chatmigrate.markup.slack import to_markdown
    files = ExportFiles(path)
    users = {u["id"]: u.get("name") or u["id"] for u in orjson.loads(files.read_bytes("users.json"))}
    channels: dict[str, str] = {}
    for name in ("channels.json", "groups.json", "mpims.json", "dms.json"):
        if files.exists(name):
            channels.update({c["id"]: c.get("name") or c["id"] for c in orjson.loads(files.read_bytes(name))})
    day = re.compile(r"^[^/]+/\d{4}-\d{2}-\d{2}\.json$")
    for name in files.names():
        if day.match(name) and not name.startswith("__"):
            texts = [m["text"] for m in orjson.loads(files.read_bytes(name)) if isinstance(m.get("text"), str)]
            yield texts, (to_markdown, users, channels)


def _mattermost_texts(path: str) -> Iterator[tuple[list[str], tuple[Any, ...]]]:
    import orjson

    from chatmigrate.extractors._files import ExportFiles
    from chatmigrate.markup.mattermost import to_markdown
    files = ExportFiles(path)
    name = next(n for n in files.names() if n.endswith(".jsonl"))
    texts: list[str] = []
    with files.open(name) as handle:
        for raw in handle:
            line = orjson.loads(raw)
            post = line.get("post") or line.get("direct_post")
            if not post:
                continue
            texts.append(post.get("message") or "")
            texts.extend(r.get("message") or "" for r in post.get("replies") or ())
            if len(texts) >= 20_000:
                yield texts, (to_markdown,)
                texts = []
    yield texts, (to_markdown,)


def _rocketchat_texts(path: str) -> Iterator[tuple[list[str], tuple[Any, ...]]]:
    import bson

    from chatmigrate.markup.rocketchat import to_markdown
    found = list(Path(path).rglob("rocketchat_message.bson"))
    texts: list[tuple[str, list[str]]] = []
    with open(found[0], "rb") as handle:
        for doc in bson.decode_file_iter(handle):
            texts.append((doc.get("msg") or "", [c.get("name") for c in doc.get("channels") or ()]))
            if len(texts) >= 20_000:
                yield texts, (to_markdown,)  # type: ignore[misc]
                texts = []
    yield texts, (to_markdown,)  # type: ignore[misc]


def child_markup(path: str, form: str) -> dict[str, Any]:
    """Time only the markup function over every message text of the export (reading is not timed)."""
    reader = {"slack": _slack_texts, "mattermost": _mattermost_texts, "rocketchat": _rocketchat_texts}[form]
    pc = time.perf_counter
    seconds = 0.0
    count = 0
    for texts, (function, *context) in reader(path):
        if form == "rocketchat":
            t0 = pc()
            for text, linked in texts:  # type: ignore[misc]
                function(text, linked)
            seconds += pc() - t0
        else:
            t0 = pc()
            for text in texts:
                function(text, *context)
            seconds += pc() - t0
        count += len(texts)
    return {"seconds": seconds, "messages": count}


def child_load(path: str, url: str, rejects: str) -> dict[str, Any]:
    """pipeline.run with the loader; the loader's own time (rows, cleaning, batching, database) isolated."""
    from chatmigrate import pipeline
    from chatmigrate.loaders import loader_for
    extractor = _extractor(path)
    loader = loader_for(url)
    clock = {"upstream": 0.0, "load_call": 0.0, "flush": 0.0}
    pc = time.perf_counter
    real_load, real_flush = loader.load, loader._write_batch

    def load(items: Any) -> Any:
        t0 = pc()
        try:
            return real_load(_timed_iter(items, clock))
        finally:
            clock["load_call"] += pc() - t0

    def flush(*args: Any) -> Any:
        t0 = pc()
        try:
            return real_flush(*args)
        finally:
            clock["flush"] += pc() - t0

    loader.load = load  # type: ignore[method-assign]
    loader._write_batch = flush  # type: ignore[method-assign]
    options = pipeline.RunOptions("migrate", path, Path(rejects), progress=False)
    t0 = pc()
    result = pipeline.run(extractor, loader, options)
    total = pc() - t0
    loader.close()
    exclusive = clock["load_call"] - clock["upstream"]
    # With a writer thread the flushes overlap the reading thread and are not part of its own time.
    background = loader.background_writes()
    return {"seconds": exclusive, "total_seconds": total, "upstream_seconds": clock["upstream"],
            "flush_seconds": clock["flush"], "background_writes": background,
            "shaping_seconds": exclusive if background else exclusive - clock["flush"],
            "messages": result.counts["messages"]["loaded"], "rows_written": result.rows_written}


def child_spool(path: str, spool: str) -> dict[str, Any]:
    """The rows chatmigrate would write for this export (validated, shaped by rows.py, cleaned, one
    row per key), pickled table by table in chunks, for the bare and peer paths to load."""
    from chatmigrate.loaders._batching import KEY_OF
    from chatmigrate.loaders._clean import Cleaner, TextRules
    from chatmigrate.loaders.rows import COLUMNS, rows_of
    from chatmigrate.loaders.schema import build_metadata
    from chatmigrate.model import Checkpoint
    from chatmigrate.validate import Accounting, ValidationOptions, Validator
    from chatmigrate.validate.findings import FindingSink
    metadata = build_metadata()
    cleaner = Cleaner({name: metadata.tables[f"cm_{name}"] for name in COLUMNS}, TextRules(nul_allowed=False))
    seen: dict[str, set[Any]] = {table: set() for table in COLUMNS}
    pending: dict[str, list[Any]] = {table: [] for table in COLUMNS}
    counts = dict.fromkeys(COLUMNS, 0)
    sink = FindingSink(None)
    with open(spool, "wb") as out:
        for item in Validator(sink, ValidationOptions(), Accounting())(_extractor(path).records()):
            if isinstance(item, Checkpoint):
                continue
            for table, row in rows_of(item):
                key = KEY_OF[table](row)
                if key in seen[table]:
                    continue  # a placeholder user later met for real: the loader upserts, COPY cannot
                seen[table].add(key)
                pending[table].append(cleaner.clean(table, row))
                counts[table] += 1
                if len(pending[table]) >= 50_000:
                    pickle.dump((table, pending[table]), out, protocol=pickle.HIGHEST_PROTOCOL)
                    pending[table] = []
        for table, rows in pending.items():
            if rows:
                pickle.dump((table, rows), out, protocol=pickle.HIGHEST_PROTOCOL)
    return {"rows": counts, "messages": counts["messages"]}


def _read_spool(spool: str) -> dict[str, list[Any]]:
    from chatmigrate.loaders.rows import TABLE_ORDER
    tables: dict[str, list[Any]] = {t: [] for t in TABLE_ORDER}
    with open(spool, "rb") as handle:
        while True:
            try:
                table, rows = pickle.load(handle)
            except EOFError:
                break
            tables[table].extend(rows)
    return tables


def _create_schema(url: str) -> None:
    import sqlalchemy as sa

    from chatmigrate.loaders.schema import build_metadata
    engine = sa.create_engine(url)
    build_metadata().create_all(engine)
    engine.dispose()


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _bare_sqlite(url: str, tables: dict[str, list[Any]]) -> None:
    import sqlite3

    import sqlalchemy as sa

    from chatmigrate.loaders.rows import COLUMNS
    conn = sqlite3.connect(sa.engine.make_url(url).database)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    # The fastest executemany of research/load-baselines.md (13v, 1.4-1.5x): a 256 MiB page cache, so
    # the random uuid primary key does not thrash the default 2 MiB one.
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("BEGIN")
    for table, rows in tables.items():
        cols = COLUMNS[table]
        times = [i for i, c in enumerate(cols) if c.endswith("_at")]

        def shaped(rows: list[Any] = rows, times: list[int] = times) -> Iterator[Any]:
            # The loader's text form of a time ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), by the cheapest
            # route: canonical times are UTC already, and isoformat is ~5x cheaper than strftime.
            for row in rows:
                if times:
                    row = list(row)
                    for i in times:
                        if row[i] is not None:
                            row[i] = row[i].astimezone(UTC).isoformat(" ", "microseconds")[:26]
                yield row

        conn.executemany(f"INSERT INTO cm_{table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         shaped())
    conn.commit()
    conn.close()


def _pg_conninfo(url: str) -> str:
    import sqlalchemy as sa
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _bare_postgresql(url: str, tables: dict[str, list[Any]]) -> None:
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    from chatmigrate.loaders.postgresql import _pg_type as pg_type
    from chatmigrate.loaders.rows import COLUMNS
    from chatmigrate.loaders.schema import build_metadata

    class JsonbText(Dumper):  # props are JSON text already: jsonb's binary form is b"\x01" + text
        format = Format.BINARY
        oid = 3802

        def dump(self, obj: Any) -> bytes:
            return b"\x01" + obj.encode()

    metadata = build_metadata()
    with psycopg.connect(_pg_conninfo(url)) as conn:
        conn.adapters.register_dumper(None, JsonbText)
        with conn.cursor() as cur:
            for table, rows in tables.items():
                cols = COLUMNS[table]
                types = [pg_type(metadata.tables[f"cm_{table}"].c[c]) for c in cols]
                with cur.copy(f"COPY cm_{table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
        conn.commit()


def _mysql_connect(url: str, **extra: Any) -> Any:
    import pymysql
    import sqlalchemy as sa
    u = sa.engine.make_url(url)
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.database, charset="utf8mb4", **extra)


def _tsv(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, datetime):
        # Canonical times are UTC already; isoformat is ~5x cheaper than strftime.
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
    if isinstance(value, str):
        return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
                .replace("\x00", "\\0"))
    return str(value)


def _feed_fifo(fifo: Path, rows: list[Any], failed: list[BaseException]) -> None:
    """Write `rows` as TSV into the FIFO the server reads from, so encoding overlaps the load."""
    try:
        with open(fifo, "w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                out.write("\t".join(map(_tsv, row)) + "\n")
    except BaseException as exc:  # reported by the caller, which otherwise counts a short load as done
        failed.append(exc)


def _bare_mariadb(url: str, tables: dict[str, list[Any]]) -> None:
    """LOAD DATA LOCAL INFILE of each table whole, from a FIFO fed by a writer thread: the fastest
    LOAD DATA method in research/load-baselines.md (11v, ~51k rows/s against ~41k for a file written
    first), so TSV encoding overlaps the server's work. One statement into each empty table, with
    unique_checks off, lets MariaDB's bulk insert into an empty table apply. Rows come in primary-key
    order (`_key_sorted`, outside the timing), the order a clustered index loads fastest in and the
    order a reload of a table's own rows has (issue 16's reference). The old path (100k-row files
    written first, strftime times, a commit per file) measured 7.4k rows/s at 1M; see README.md."""
    import threading

    from chatmigrate.loaders.rows import COLUMNS
    conn = _mysql_connect(url, local_infile=True)
    with tempfile.TemporaryDirectory() as tmp, conn.cursor() as cur:
        cur.execute("SET unique_checks=0, foreign_key_checks=0")
        for table, rows in tables.items():
            if not rows:
                continue
            fifo = Path(tmp, f"{table}.tsv")
            os.mkfifo(fifo)
            failed: list[BaseException] = []
            writer = threading.Thread(target=_feed_fifo, args=(fifo, rows, failed))
            writer.start()
            try:
                cur.execute(f"LOAD DATA LOCAL INFILE '{fifo}' INTO TABLE cm_{table} CHARACTER SET utf8mb4 "
                            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                            f"({', '.join(COLUMNS[table])})")
            finally:
                writer.join()
            if failed:
                raise failed[0]
        conn.commit()
    conn.close()


def _key_sorted(tables: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Each table's rows in primary-key order, the order a bulk load into a clustered index wants."""
    from chatmigrate.loaders._batching import KEY_OF
    return {table: sorted(rows, key=KEY_OF[table]) for table, rows in tables.items()}


def child_bare(spool: str, url: str, dialect: str) -> dict[str, Any]:
    tables = _read_spool(spool)
    if dialect == "mariadb":
        tables = _key_sorted(tables)
    _create_schema(url)
    bare = {"sqlite": _bare_sqlite, "postgresql": _bare_postgresql, "mariadb": _bare_mariadb}[dialect]
    t0 = time.perf_counter()
    bare(url, tables)
    seconds = time.perf_counter() - t0
    _verify(url, tables)
    return {"seconds": seconds, "messages": len(tables["messages"]), "rows": sum(map(len, tables.values()))}


def _verify(url: str, tables: dict[str, list[Any]]) -> None:
    """Every row arrived (LOAD DATA LOCAL turns refused rows into mere warnings)."""
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table, rows in tables.items():
            found = conn.exec_driver_sql(f"SELECT COUNT(*) FROM cm_{table}").scalar()
            if found != len(rows):
                raise SystemExit(f"cm_{table}: {found} rows in the database, {len(rows)} loaded")
    engine.dispose()


def child_pandas(spool: str, url: str) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy as sa

    from chatmigrate.loaders.rows import COLUMNS
    tables = _read_spool(spool)
    _create_schema(url)
    from chatmigrate.loaders.schema import build_metadata
    engine = sa.create_engine(url)
    metadata = build_metadata()
    is_pg = engine.dialect.name == "postgresql"
    if is_pg:
        import orjson
        # psycopg sends a str as varchar, which jsonb refuses: give pandas the props as the dicts a
        # pandas user would hold (not timed) and let SQLAlchemy's JSONB type serialise them (timed).
        for table, rows in tables.items():
            if "props" in COLUMNS[table]:
                i = COLUMNS[table].index("props")
                tables[table] = [(*r[:i], orjson.loads(r[i]) if r[i] else None, *r[i + 1:]) for r in rows]
    t0 = time.perf_counter()
    for table, rows in tables.items():
        if not rows:
            continue
        frame = pd.DataFrame(rows, columns=list(COLUMNS[table]))
        # The column types, as a pandas user would pass them: an all-NULL column has no dtype to guess from.
        columns = metadata.tables[f"cm_{table}"].c
        dtype = {c: (columns[c].type if c != "props" or is_pg else sa.Text()) for c in COLUMNS[table]}
        frame.to_sql(f"cm_{table}", engine, if_exists="append", index=False, chunksize=10_000, dtype=dtype)
    seconds = time.perf_counter() - t0
    engine.dispose()
    _verify(url, tables)
    return {"seconds": seconds, "messages": len(tables["messages"]), "rows": sum(map(len, tables.values()))}


CHILDREN = {"parse": child_parse, "markup": child_markup, "load": child_load, "spool": child_spool,
            "bare": child_bare, "pandas": child_pandas}


def child_main(spec: str) -> int:
    args = json.loads(spec)
    stage = args.pop("stage")
    result = CHILDREN[stage](**args)
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------------
# The parent: generates exports, makes databases, runs children, writes results.
# ---------------------------------------------------------------------------------------------------


def _spawn(argv: list[str], cwd: Path | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run one child process; return its exit code, wall time, peak RSS (wait4) and stdout/stderr."""
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env={**os.environ, "PYTHONHASHSEED": "0"})
        deadline = None if timeout is None else time.monotonic() + timeout
        tree_peak_kb = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree_peak_kb = max(tree_peak_kb, _tree_rss_kb(proc.pid))
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    # wait4's ru_maxrss is the largest single process of the tree (Linux), not the tree's sum: a run
    # with a parsing worker uses both at once, so the tree's sampled PSS sum is reported beside it.
    return {"code": proc.returncode, "wall": wall, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "tree_peak_rss_mb": round(max(tree_peak_kb, usage.ru_maxrss) / 1024, 1),
            "loadavg_after": round(os.getloadavg()[0], 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "loadavg_before": round(load_before, 2),
            "stdout": stdout, "stderr": stderr}


def _tree_rss_kb(pid: int) -> int:
    """Memory of a process and all its descendants now, in KB: the sum of their PSS (a page shared
    between a forked worker and its parent counts half in each, so it is not counted twice)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_child(stage: str, **kwargs: Any) -> dict[str, Any]:
    spawned = _spawn([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps({"stage": stage, **kwargs})],
                     cwd=REPO)
    if spawned["code"] != 0:
        return _failed(spawned)
    result = json.loads(spawned["stdout"].strip().splitlines()[-1])
    result.update(peak_rss_mb=spawned["peak_rss_mb"], cpu_seconds=spawned["cpu_seconds"],
                  loadavg_before=spawned["loadavg_before"], loadavg_after=spawned["loadavg_after"])
    return _with_rate(result)


def run_cli(args: list[str], messages: int) -> dict[str, Any]:
    """`chatmigrate …` as a whole process: wall time and peak RSS of the real command."""
    with tempfile.TemporaryDirectory() as tmp:
        spawned = _spawn([sys.executable, "-m", "chatmigrate", *args, "--json", "--quiet"], cwd=Path(tmp))
    if spawned["code"] not in (0, 1):  # 1 = ran, with rejects
        return _failed(spawned)
    report = json.loads(spawned["stdout"])
    loaded = report["counts"]["messages"]["loaded"]
    return _with_rate({"seconds": spawned["wall"], "messages": loaded, "expected_messages": messages,
                       "peak_rss_mb": spawned["peak_rss_mb"], "tree_peak_rss_mb": spawned["tree_peak_rss_mb"],
                       "cpu_seconds": spawned["cpu_seconds"], "loadavg_before": spawned["loadavg_before"],
                       "loadavg_after": spawned["loadavg_after"], "rows_written": report.get("rows_written"),
                       "command": "chatmigrate " + " ".join(args)})


def _failed(spawned: dict[str, Any]) -> dict[str, Any]:
    return {"error": _last_line(spawned["stderr"]) or f"exit {spawned['code']}", "peak_rss_mb": spawned["peak_rss_mb"]}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("(Background")]
    return lines[-1][:500] if lines else ""


def _with_rate(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("seconds") and result.get("messages"):
        result["msgs_per_s"] = round(result["messages"] / result["seconds"])
        result["seconds"] = round(result["seconds"], 3)
    return result


# -- databases ----------------------------------------------------------------------------------------

def server_problem(dialect: str) -> str | None:
    if dialect == "sqlite":
        return None
    import sqlalchemy as sa
    try:
        engine = sa.create_engine(PG_URL if dialect == "postgresql" else MYSQL_URL)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any driver error means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


class FreshDatabase:
    """A new, empty database for one run: a SQLite file, or CREATE DATABASE cmbench_… on a server."""

    def __init__(self, dialect: str, workdir: Path) -> None:
        import sqlalchemy as sa
        self.dialect = dialect
        self.name = f"cmbench_{uuid.uuid4().hex[:10]}"
        if dialect == "sqlite":
            self.file = workdir / f"{self.name}.db"
            self.url = f"sqlite:///{self.file}"
            return
        base = PG_URL if dialect == "postgresql" else MYSQL_URL
        self.admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {self.name}" + (
                " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if dialect == "mariadb" else ""))
            if dialect == "mariadb":
                conn.exec_driver_sql("SET GLOBAL local_infile=1")  # for the LOAD DATA LOCAL bare path
            else:
                conn.exec_driver_sql("CHECKPOINT")  # start every run from the same WAL state
        self.url = sa.engine.make_url(base).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> FreshDatabase:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.dialect == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.file}{suffix}").unlink(missing_ok=True)
            return
        with self.admin.connect() as conn:
            force = " WITH (FORCE)" if self.dialect == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.name}{force}")
        self.admin.dispose()


# -- the run --------------------------------------------------------------------------------------------

def available_forms() -> dict[str, str]:
    """form → extractor name, for forms whose file extractor is registered."""
    from chatmigrate import extractors
    found: dict[str, str] = {}
    for name, entry in sorted(extractors.registered().items()):
        try:
            cls = entry.load()
        except Exception:  # a half-written plugin must not stop the benchmark
            continue
        source = getattr(cls, "source", None)
        # File forms only (the API extractors share the source name): by their entry-point names.
        if source in FORMS and not name.endswith("-api"):
            found.setdefault(source, name)
    return found


def export_path(form: str, messages: int, seed: int) -> Path:
    return DATA / generate.default_name(form, messages, seed)


def ensure_export(form: str, messages: int, seed: int, log: Any) -> dict[str, Any]:
    path = export_path(form, messages, seed)
    info: dict[str, Any] = {"path": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)}
    if not path.exists():
        log(f"generating {form} export of {messages:,} messages → {path}")
        t0 = time.perf_counter()
        generate.generate(form, messages, seed, path)
        info["generate_seconds"] = round(time.perf_counter() - t0, 1)
    info["bytes"] = _size(path)
    return info


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def bench_form(form: str, extractor: str, messages: int, seed: int, targets: list[str], peers: bool,
               log: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"available": True, "extractor": extractor}
    result["export"] = ensure_export(form, messages, seed, log)
    path = str(export_path(form, messages, seed))
    stages: dict[str, Any] = {}
    log(f"{form}: parse")
    stages["parse"] = run_child("parse", path=path)
    log(f"{form}: markup")
    stages["markup"] = run_child("markup", path=path, form=form)
    log(f"{form}: validate (chatmigrate validate, default --workers)")
    stages["validate"] = run_cli(["validate", path], messages)
    log(f"{form}: validate --workers 1")
    stages["validate_w1"] = run_cli(["validate", path, "--workers", "1"], messages)
    result["stages"] = stages
    spool = DATA / f"rows-{form}-{messages}-s{seed}.pickle"
    if not spool.exists():
        log(f"{form}: spooling the rows for the bare and peer paths")
        spooled = run_child("spool", path=path, spool=str(spool))
        result["rows"] = spooled.get("rows", spooled)
    else:
        result["rows"] = "cached"
    result["targets"] = {}
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        work = Path(tmp)
        for dialect in targets:
            measured: dict[str, Any] = {}
            log(f"{form} → {dialect}: bare path")
            with FreshDatabase(dialect, work) as db:
                measured["bare"] = run_child("bare", spool=str(spool), url=db.url, dialect=dialect)
            log(f"{form} → {dialect}: load (pipeline, loader time isolated)")
            with FreshDatabase(dialect, work) as db:
                measured["load"] = run_child("load", path=path, url=db.url, rejects=str(work / "rejects.jsonl"))
            log(f"{form} → {dialect}: migrate (chatmigrate migrate, default --workers)")
            with FreshDatabase(dialect, work) as db:
                measured["migrate"] = run_cli(["migrate", path, "--to", db.url], messages)
            log(f"{form} → {dialect}: migrate --workers 1 (all in one process)")
            with FreshDatabase(dialect, work) as db:
                measured["migrate_w1"] = run_cli(["migrate", path, "--to", db.url, "--workers", "1"], messages)
            if peers:
                log(f"{form} → {dialect}: pandas to_sql")
                with FreshDatabase(dialect, work) as db:
                    measured["pandas"] = run_child("pandas", spool=str(spool), url=db.url)
            measured["ratios"] = ratios(measured, stages)
            measured["shares"] = stage_shares(stages, measured)
            result["targets"][dialect] = measured
    return result


def _seconds(entry: dict[str, Any] | None) -> float | None:
    return entry.get("seconds") if entry and "error" not in entry else None


def ratios(measured: dict[str, Any], stages: dict[str, Any]) -> dict[str, float | None]:
    """Throughput fractions: e2e/bare = bare seconds / migrate seconds for the same rows, etc."""
    def frac(fast: float | None, slow: float | None) -> float | None:
        return round(fast / slow, 3) if fast and slow else None

    migrate, bare = _seconds(measured.get("migrate")), _seconds(measured.get("bare"))
    return {"migrate_vs_bare": frac(bare, migrate),
            "migrate_w1_vs_bare": frac(bare, _seconds(measured.get("migrate_w1"))),
            "load_vs_bare": frac(bare, _seconds(measured.get("load"))),
            "migrate_vs_pandas": frac(_seconds(measured.get("pandas")), migrate),
            "pandas_vs_bare": frac(bare, _seconds(measured.get("pandas"))),
            "validate_speedup": frac(migrate, _seconds(stages.get("validate"))),
            "validate_w1_speedup": frac(_seconds(measured.get("migrate_w1")), _seconds(stages.get("validate_w1")))}


def scaling_run(messages: int, seed: int, bases: dict[str, dict[str, Any]], targets: list[str], delete: bool,
                log: Any) -> dict[str, Any]:
    """Slack → each of `targets` at a larger size: does peak RSS stay flat? `bases` holds each target's
    migrate at the run's own size, the reference of the growth."""
    info = ensure_export("slack", messages, seed, log)
    path = export_path("slack", messages, seed)
    out: dict[str, Any] = {"messages": messages, "export": info, "targets": {}}
    for dialect in targets:
        with tempfile.TemporaryDirectory(dir=DATA) as tmp, FreshDatabase(dialect, Path(tmp)) as db:
            log(f"scaling: chatmigrate migrate slack {messages:,} → {dialect}")
            migrate = run_cli(["migrate", str(path), "--to", db.url], messages)
        entry: dict[str, Any] = {"migrate": migrate}
        base = bases.get(dialect) or {}
        if "error" not in migrate and "peak_rss_mb" in migrate and base.get("peak_rss_mb"):
            entry["rss_growth"] = round(migrate["peak_rss_mb"] / base["peak_rss_mb"] - 1, 3)
            if migrate.get("tree_peak_rss_mb") and base.get("tree_peak_rss_mb"):
                entry["tree_rss_growth"] = round(migrate["tree_peak_rss_mb"] / base["tree_peak_rss_mb"] - 1, 3)
            entry["base_messages"] = base.get("expected_messages")
        out["targets"][dialect] = entry
    if delete:
        path.unlink(missing_ok=True)
        info["deleted_after"] = True
    return out


def _scaled(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A scaling entry's measurements per target (results written before --scale-targets held SQLite only)."""
    if "targets" in scale:
        return scale["targets"]
    return {"sqlite": {"migrate": scale.get("migrate_sqlite", {}), "rss_growth": scale.get("rss_growth"),
                       "base_messages": scale.get("base_messages")}}


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    forms = results["forms"]

    def add(goal: str, value: Any, met: bool | None) -> None:
        checks.append({"goal": goal, "value": value, "met": met})

    slack_pg = forms.get("slack", {}).get("targets", {}).get("postgresql", {})
    for dialect, goal, path in (("postgresql", E2E_VS_COPY, "binary COPY"), ("mariadb", E2E_VS_LOAD_DATA, "LOAD DATA"),
                                ("sqlite", E2E_VS_EXECUTEMANY, "executemany")):
        r = forms.get("slack", {}).get("targets", {}).get(dialect, {}).get("ratios", {}).get("migrate_vs_bare")
        add(f"Slack → {dialect} end to end ≥ {goal} of bare {path}", r, None if r is None else r >= goal)
    slack_rate = slack_pg.get("migrate", {}).get("msgs_per_s")
    for form in ("mattermost", "rocketchat"):
        rate = forms.get(form, {}).get("targets", {}).get("postgresql", {}).get("migrate", {}).get("msgs_per_s")
        value = round(rate / slack_rate, 3) if rate and slack_rate else None
        add(f"{form} → PostgreSQL ≥ {OTHER_FORMS_VS_SLACK} of Slack's msgs/s", value,
            None if value is None else value >= OTHER_FORMS_VS_SLACK)
    for form, data in forms.items():
        for dialect, measured in data.get("targets", {}).items():
            rss = measured.get("migrate", {}).get("peak_rss_mb")
            add(f"{form} → {dialect} migrate peak RSS < {RSS_LIMIT_MB} MB", rss,
                None if rss is None else rss < RSS_LIMIT_MB)
            speedup = measured.get("ratios", {}).get("validate_speedup")
            add(f"{form} → {dialect}: validate ≥ {VALIDATE_SPEEDUP}× faster than migrate", speedup,
                None if speedup is None else speedup >= VALIDATE_SPEEDUP)
    for scale in results.get("scaling", []):
        for dialect, entry in _scaled(scale).items():
            growth = entry.get("rss_growth")
            add(f"Slack → {dialect} peak RSS growth {entry.get('base_messages')} → {scale['messages']} messages "
                f"< {RSS_GROWTH:.0%} (largest process)", growth, None if growth is None else growth < RSS_GROWTH)
    return checks


# -- report --------------------------------------------------------------------------------------------

def _rate(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    if "error" in entry:
        return "error"
    rate = entry.get("msgs_per_s")
    return f"{rate:,}" if rate else "–"


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"# chatmigrate benchmark: {meta['messages']:,} messages per source form",
             "", f"`{meta['command']}` — {meta['started']}, commit {meta['commit']}, {meta['cpus']} CPUs, "
             f"Python {meta['python']}, load average at start {meta['loadavg']}.",
             "", "Messages per second (higher is better). Ratios are throughput fractions measured in this same "
             "run (e.g. `migrate/bare` = bare-path seconds ÷ `chatmigrate migrate` seconds for the same rows).",
             "", "## Stages per source form", "",
             "| form | extractor | export MB | parse | markup only | validate (CLI) | validate --workers 1 "
             "| markup share of parse | parse CPU s | validate CPU s | validate peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for form, data in results["forms"].items():
        if not data.get("available"):
            lines.append(f"| {form} | {data.get('reason', 'not available yet')} | | | | | | | | | |")
            continue
        st = data["stages"]
        share = None
        if _seconds(st.get("markup")) and _seconds(st.get("parse")):
            share = st["markup"]["seconds"] / st["parse"]["seconds"]
        lines.append(f"| {form} | {data['extractor']} | {data['export']['bytes'] / 1e6:,.0f} "
                     f"| {_rate(st.get('parse'))} | {_rate(st.get('markup'))} | {_rate(st.get('validate'))} "
                     f"| {_rate(st.get('validate_w1'))} "
                     f"| {_num(share, '{:.0%}')} | {_num(st.get('parse', {}).get('cpu_seconds'), '{:.1f}')} "
                     f"| {_num(st.get('validate', {}).get('cpu_seconds'), '{:.1f}')} "
                     f"| {_num(st.get('validate', {}).get('peak_rss_mb'), '{:.0f}')} |")
    lines += ["", "## Loading, per source form and target", "",
              "| form → target | load (loader only) | of which DB flush s | migrate e2e | migrate --workers 1 "
              "| bare path | pandas to_sql | migrate/bare | migrate --workers 1/bare | load/bare | migrate/pandas "
              "| validate speed-up | same, --workers 1 | migrate CPU s | migrate peak RSS MB (largest process / "
              "process tree PSS) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for form, data in results["forms"].items():
        for dialect, m in (data.get("targets") or {}).items():
            r = m.get("ratios", {})
            flush = m.get("load", {}).get("flush_seconds")
            mig = m.get("migrate", {})
            rss = f"{_num(mig.get('peak_rss_mb'), '{:.0f}')} / {_num(mig.get('tree_peak_rss_mb'), '{:.0f}')}"
            lines.append(
                f"| {form} → {dialect} | {_rate(m.get('load'))} | {_num(flush, '{:.1f}')} "
                f"| {_rate(mig)} | {_rate(m.get('migrate_w1'))} | {_rate(m.get('bare'))} | {_rate(m.get('pandas'))} "
                f"| {_num(r.get('migrate_vs_bare'))} | {_num(r.get('migrate_w1_vs_bare'))} "
                f"| {_num(r.get('load_vs_bare'))} | {_num(r.get('migrate_vs_pandas'))} "
                f"| {_num(r.get('validate_speedup'), '{:.1f}×')} | {_num(r.get('validate_w1_speedup'), '{:.1f}×')} "
                f"| {_num(mig.get('cpu_seconds'), '{:.1f}')} | {rss} |")
    lines += _shares(results)
    if results.get("scaling"):
        lines += ["", "## Memory as the export grows (Slack → each database, `chatmigrate migrate`)", "",
                  "| target | messages | msgs/s | CPU s | peak RSS MB (largest process) | process tree PSS MB "
                  "| growth vs base: largest process / tree | load avg |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        dialects = dict.fromkeys(d for scale in results["scaling"] for d in _scaled(scale))
        for dialect in dialects:
            base = results["forms"].get("slack", {}).get("targets", {}).get(dialect, {}).get("migrate")
            if base:
                lines.append(f"| {dialect} | {meta['messages']:,} | {_rate(base)} | "
                             f"{_num(base.get('cpu_seconds'), '{:.1f}')} | {_num(base.get('peak_rss_mb'), '{:.0f}')} "
                             f"| {_num(base.get('tree_peak_rss_mb'), '{:.0f}')} | – | {_load(base)} |")
            for scale in results["scaling"]:
                entry = _scaled(scale).get(dialect)
                if entry is None:
                    continue
                m = entry["migrate"]
                lines.append(f"| {dialect} | {scale['messages']:,} | {_rate(m)} "
                             f"| {_num(m.get('cpu_seconds'), '{:.1f}')} | {_num(m.get('peak_rss_mb'), '{:.0f}')} "
                             f"| {_num(m.get('tree_peak_rss_mb'), '{:.0f}')} "
                             f"| {_num(entry.get('rss_growth'), '{:+.1%}')} / "
                             f"{_num(entry.get('tree_rss_growth'), '{:+.1%}')} | {_load(m)} |")
    lines += ["", "## Goals", "", "| goal | measured | met |", "|---|---:|---|"]
    for check in results["checks"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[check["met"]]
        lines.append(f"| {check['goal']} | {_num(check['value'], '{}')} | {met} |")
    errors = [(f"{form} {where}", entry["error"]) for form, data in results["forms"].items()
              for where, entry in _entries(data) if isinstance(entry, dict) and "error" in entry]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {where}: `{error}`" for where, error in errors]
    return "\n".join(lines) + "\n"


def stage_shares(stages: dict[str, Any], measured: dict[str, Any]) -> dict[str, float] | None:
    """Seconds of each stage of one migration, measured apart (parse; validation and accounting =
    `validate --workers 1` − parse; the loader's own shaping; the writer's database time), and each
    one's share of their sum, which is what the run would take with nothing overlapped."""
    parse = _seconds(stages.get("parse"))
    validate = _seconds(stages.get("validate_w1"))
    load = measured.get("load") or {}
    if not parse or not validate or "error" in load or "flush_seconds" not in load:
        return None
    parts = {"parse": parse, "validate": max(validate - parse, 0.0),
             "shaping": max(load["shaping_seconds"], 0.0), "db": load["flush_seconds"]}
    total = sum(parts.values())
    return {**{k: round(v, 2) for k, v in parts.items()}, "serial": round(total, 2),
            **{f"{k}_share": round(v / total, 3) for k, v in parts.items()}}


def _shares(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Where the time of a migration goes", "",
             "Stages measured apart, in seconds and as shares of their sum (the run with nothing overlapped). "
             "`validate` = `validate --workers 1` − parse (validation and accounting); `shaping` = the loader's "
             "own time (rows, hashes, text checks, batching); `db` = the time the writer spent in the database. "
             "`migrate` runs them overlapped: parsing in a worker process (default `--workers`), or all in one "
             "process (`--workers 1`).", "",
             "| form → target | parse | validate | shaping | db | serial sum | migrate (default) | "
             "migrate --workers 1 | load avg during migrate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for form, data in results["forms"].items():
        for dialect, m in (data.get("targets") or {}).items():
            shares = m.get("shares")
            if not shares:
                continue
            cells = " | ".join(f"{shares[k]:.1f} s ({shares[k + '_share']:.0%})"
                               for k in ("parse", "validate", "shaping", "db"))
            mig, w1 = m.get("migrate", {}), m.get("migrate_w1", {})
            lines.append(f"| {form} → {dialect} | {cells} | {shares['serial']:.1f} s "
                         f"| {_num(_seconds(mig), '{:.1f} s')} | {_num(_seconds(w1), '{:.1f} s')} | {_load(mig)} |")
    return lines


def _load(entry: dict[str, Any]) -> str:
    return f"{_num(entry.get('loadavg_before'), '{}')} → {_num(entry.get('loadavg_after'), '{}')}"


def _entries(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for stage, entry in (data.get("stages") or {}).items():
        yield stage, entry
    for dialect, measured in (data.get("targets") or {}).items():
        for stage, entry in measured.items():
            yield f"{dialect} {stage}", entry


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=generate.parse_count, default=1_000_000,
                        help="messages per source form (default 1,000,000; accepts 1M, 300k)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MESSAGES:,} messages: checks the harness")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--no-peers", action="store_true", help="skip pandas to_sql")
    parser.add_argument("--require-servers", action="store_true",
                        help="fail when PostgreSQL or MariaDB is unreachable (default: report and go on)")
    parser.add_argument("--scale-to", type=generate.parse_count, action="append", default=[],
                        help="also run Slack → each --scale-targets migrate at this size, for peak RSS growth "
                             "(repeatable)")
    parser.add_argument("--scale-targets", default="sqlite",
                        help="the databases of the --scale-to runs (default sqlite; e.g. postgresql,mariadb,sqlite)")
    parser.add_argument("--delete-large", action="store_true", help="delete --scale-to exports after use")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.json / latest.md go")
    parser.add_argument("--data", type=Path, default=DATA, help="where exports and row spools are cached")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the Markdown of a results JSON")
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.render:
        results = json.loads(args.render.read_text())
        for data in results["forms"].values():
            for measured in (data.get("targets") or {}).values():
                measured["ratios"] = ratios(measured, data["stages"])
                measured["shares"] = stage_shares(data["stages"], measured)
        results["checks"] = check_targets(results)
        args.render.with_suffix(".md").write_text(markdown(results))
        return 0
    messages = QUICK_MESSAGES if args.quick else args.messages
    DATA = args.data.resolve()

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    DATA.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(DATA).free
    log(f"{free / 1e9:.0f} GB free under {DATA}")
    targets: list[str] = []
    skipped_targets: dict[str, str] = {}
    for dialect in args.targets.split(","):
        problem = server_problem(dialect)
        if problem and args.require_servers:
            raise SystemExit(f"{dialect} is unreachable ({problem}); start it or drop --require-servers")
        if problem:
            skipped_targets[dialect] = problem
            log(f"{dialect}: unreachable ({problem}); skipped")
        else:
            targets.append(dialect)
    results: dict[str, Any] = {"meta": {
        "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "messages": messages, "seed": args.seed, "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()], "targets_skipped": skipped_targets},
        "forms": {}}
    forms = available_forms()
    for form in args.forms.split(","):
        if form not in forms:
            results["forms"][form] = {"available": False, "reason": "not available yet (no extractor registered)"}
            log(f"{form}: not available yet")
            continue
        results["forms"][form] = bench_form(form, forms[form], messages, args.seed, targets, not args.no_peers, log)
    bases = {dialect: measured.get("migrate") or {}
             for dialect, measured in results["forms"].get("slack", {}).get("targets", {}).items()}
    scale_targets = [d for d in args.scale_targets.split(",") if d in targets]
    results["scaling"] = [scaling_run(size, args.seed, bases, scale_targets, args.delete_large, log)
                          for size in args.scale_to]
    results["checks"] = check_targets(results)
    results["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    report = markdown(results)
    (args.results / "latest.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
