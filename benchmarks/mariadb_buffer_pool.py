"""Diagnostic for issue 16: is a Slack → MariaDB migration bound by the server's buffer pool?

Sets the server's `innodb_buffer_pool_size` to SIZE_MB (a dynamic variable since MariaDB 10.2), runs the
harness's bare path and `chatmigrate migrate` on the 1M Slack export, each into a new database, and sets the
buffer pool back to RESTORE_MB (default 128, the test server's) whatever happens. It needs what `run.py --messages
1M --targets mariadb` leaves in benchmarks/data/: the export and its row spool.

    python benchmarks/mariadb_buffer_pool.py 4096 [--restore-mb 128] [--out results/issue16-quiet/x.json]

Run it on a server of your own only: it changes a global setting while it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # benchmarks/ is not a package: found through the path above

MESSAGES = 1_000_000


def _set_buffer_pool(admin: object, size_mb: int) -> float:
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {int(size_mb) * 1048576}")
        return float(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size / 1048576").scalar())


def main() -> int:
    import sqlalchemy as sa

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size_mb", type=int)
    parser.add_argument("--restore-mb", type=int, default=128)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    export = run.export_path("slack", MESSAGES, 1)
    spool = run.DATA / "rows-slack-1000000-s1.pickle"
    if not export.exists() or not spool.exists():
        raise SystemExit(f"needs {export} and {spool}: run `python benchmarks/run.py --messages 1M "
                         "--targets mariadb --forms slack --no-peers` first")
    admin = sa.create_engine(run.MYSQL_URL, isolation_level="AUTOCOMMIT")
    out: dict[str, object] = {"buffer_pool_mb": _set_buffer_pool(admin, args.size_mb)}
    try:
        with run.FreshDatabase("mariadb", run.DATA) as db:
            out["bare"] = run.run_child("bare", spool=str(spool), url=db.url, dialect="mariadb")
        with run.FreshDatabase("mariadb", run.DATA) as db:
            out["migrate"] = run.run_cli(["migrate", str(export), "--to", db.url], MESSAGES)
    finally:
        _set_buffer_pool(admin, args.restore_mb)
        admin.dispose()
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
