"""`chatmigrate schema --to URL [--apply]` on each dialect, through the real CLI."""

from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate.cli import main


def test_schema_prints_the_ddl_and_apply_creates_it(db_url: str) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["schema", "--to", db_url])
    assert printed.exit_code == 0, printed.output
    assert "CREATE TABLE cm_messages (" in printed.output
    engine = sa.create_engine(db_url)
    assert not sa.inspect(engine).has_table("cm_messages")  # printing touched nothing

    applied = runner.invoke(main, ["schema", "--to", db_url, "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "schema ready in" in applied.output
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"cm_messages", "cm_reactions", "cm_sync_state", "cm_schema_version"} <= tables
    # Applying again is harmless.
    assert runner.invoke(main, ["schema", "--to", db_url, "--apply"]).exit_code == 0


def test_schema_apply_error_is_one_redacted_line() -> None:
    result = CliRunner().invoke(main, ["schema", "--to", "mysql+pymysql://root:s3cret-pw@127.0.0.1:1/x", "--apply",
                                       "--retry-for", "0.5"])
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.output
    # A server that refuses connections is retried, and said so at once; then one error line.
    notice, error = result.stderr.strip().splitlines()
    assert notice.startswith("chatmigrate: mysql+pymysql://root:***@127.0.0.1:1/x: creating the schema failed")
    assert "retrying for up to 0.5 s" in notice
    assert error.startswith("chatmigrate: error: mysql+pymysql://root:***@127.0.0.1:1/x")
