"""Fixtures of the loader tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatmigrate.loaders import Loader, loader_for


@pytest.fixture
def loader(db_url: str) -> Iterator[Loader]:
    """A prepared loader of the dialect under test (db_url: sqlite, postgresql, mariadb; real servers)."""
    loader = loader_for(db_url)
    loader.prepare()
    yield loader
    loader.close()
