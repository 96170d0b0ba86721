"""MariaDB's two write paths (LOAD DATA LOCAL into a staging table, and the multi-row INSERT used when
local_infile is off) store the same rows, both write nothing on a re-run, and the slower one says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmigrate.loaders import loader_for
from tests.conftest import _target_url
from tests.loaders.helpers import assert_same, dump
from tests.loaders.synth import items


@pytest.fixture
def mysql_url(tmp_path: Path) -> Iterator[str]:
    yield from _target_url("mariadb", tmp_path)


def _load(url: str, prefix: str) -> tuple[bool, int]:
    """(used LOAD DATA, rows written) for one load of the synthetic stream."""
    loader = loader_for(url, prefix=prefix)
    try:
        loader.prepare()
        stats = loader.load(items(1500, channels=4))
        return loader._load_data, stats.rows_written  # type: ignore[attr-defined]
    finally:
        loader.close()


def test_load_data_and_insert_paths_store_the_same_rows(mysql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fast, written = _load(mysql_url, "cm_")
    assert fast and written > 1500
    assert _load(mysql_url, "cm_") == (True, 0)
    assert "local_infile" not in capsys.readouterr().err
    fallback = f"{mysql_url}{'&' if '?' in mysql_url else '?'}local_infile=0"
    slow, slow_written = _load(fallback, "ins_")
    assert not slow and slow_written == written
    assert _load(fallback, "ins_") == (False, 0)
    assert capsys.readouterr().err.count("local_infile OFF") == 2  # once per run
    assert_same(dump(mysql_url, prefix="ins_"), dump(mysql_url))
