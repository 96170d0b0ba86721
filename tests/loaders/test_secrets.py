"""A password given in any form the drivers accept never reaches an output (issue 12 #7): `--json`, the
HTML report, error lines, cm_runs; and a password holding an unencoded '@' is refused before a driver
can print its tail as a host name."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate.cli import main

from .helpers import password_account

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
SERVERS = pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
SECRET = "Qz" + uuid.uuid4().hex[:10]


@pytest.fixture
def account(db_url: str) -> Iterator[sa.URL]:
    """A user with the password SECRET allowed into the test database; its URL carries no password."""
    with password_account(db_url, SECRET) as url:
        yield url


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@SERVERS
def test_a_query_password_is_in_no_output(account: sa.URL, tmp_path: Path) -> None:
    url = account.update_query_dict({"password": SECRET}).render_as_string(hide_password=False)
    assert SECRET in url
    report = tmp_path / "report.html"
    code, out, err = _invoke("migrate", str(SAMPLE), "--to", url, "--json", "--report", str(report),
                             "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 0, err
    assert json.loads(out)["target"].endswith("password=***")
    assert SECRET not in out + err + report.read_text()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT location, target FROM cm_runs")).all()
    engine.dispose()
    assert rows and all(SECRET not in location + target for location, target in rows)
    # The same credentials in an error line: a database that does not exist makes the run fail.
    missing = account.set(database=f"cm_missing_{uuid.uuid4().hex[:8]}").update_query_dict(
        {"password": SECRET, "sslpassword": SECRET} if account.get_backend_name() == "postgresql"
        else {"password": SECRET})
    code, out, err = _invoke("migrate", str(SAMPLE), "--to", missing.render_as_string(hide_password=False),
                             "--json", "--retry-for", "0")
    assert code == 2 and out == "" and "password=***" in err
    assert SECRET not in err


@SERVERS
def test_an_unencoded_at_in_the_password_is_refused_whole(db_url: str, tmp_path: Path) -> None:
    url = sa.engine.make_url(db_url)
    raw = f"{url.drivername}://{url.username}:p@ss{SECRET}@word@{url.host}:{url.port or ''}/{url.database}"
    code, out, err = _invoke("migrate", str(SAMPLE), "--to", raw, "--json", "--retry-for", "0")
    assert code == 2 and out == ""
    assert "holds an '@'; write it as %40" in err
    assert SECRET not in err and "@word" not in err and f"{url.username}:***@{url.host}" in err
