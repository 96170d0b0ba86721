"""Credentials from the drivers' own files, on a real MariaDB account that requires a password."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatmigrate.errors import TargetError
from chatmigrate.loaders import loader_for

from .helpers import password_account

PASSWORD = "s3cret-" + uuid.uuid4().hex[:8]


@pytest.fixture
def account(db_url: str) -> Iterator[sa.URL]:
    """A user allowed only into the test database, with a password; its URL carries no password."""
    with password_account(db_url, PASSWORD) as url:
        yield url


def _option_file(path: Path) -> Path:
    path.write_text(f"[client]\npassword = {PASSWORD}\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
def test_password_from_an_option_file_named_in_the_url(account: sa.URL, tmp_path: Path) -> None:
    option_file = _option_file(tmp_path / "chat.cnf")
    url = account.update_query_dict({"read_default_file": str(option_file)})
    loader = loader_for(url.render_as_string(hide_password=False))
    loader.prepare()
    assert PASSWORD not in loader.safe_url
    loader.close()


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
def test_password_from_home_my_cnf_and_refusal_without_it(account: sa.URL, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    url = account.render_as_string(hide_password=False)
    with pytest.raises(TargetError, match="Access denied"):
        loader_for(url).prepare()
    _option_file(tmp_path / ".my.cnf")
    loader = loader_for(url)
    loader.prepare()
    loader.close()
