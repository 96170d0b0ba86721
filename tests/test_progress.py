"""The progress bar knows the total (percentage, ETA) once a run has counted the export."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatmigrate import pipeline, progress
from tests.loaders import synth


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHATMIGRATE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "totals.json"


def _run(export: str | None, capsys: pytest.CaptureFixture[str], enabled: bool = True) -> str:
    for _ in pipeline._with_progress(synth.items(300), enabled, "migrate synth", export):
        pass
    return capsys.readouterr().err


def test_a_counted_export_shows_percentage_and_eta_next_time(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.zip"
    export.write_bytes(b"PK")
    key = progress.export_key(str(export), "synth")
    first = _run(key, capsys)
    assert "%" not in first and "300 msg" in first.replace("300  msg", "300 msg")
    assert progress.known_total(key) == 300
    second = _run(key, capsys)
    assert "100%" in second and "300/300" in second
    # A changed export (size or time) is a new key: counted again, no stale percentage.
    export.write_bytes(b"PK changed")
    os.utime(export, ns=(1, 1))
    assert progress.known_total(progress.export_key(str(export), "synth")) is None


def test_scripts_and_urls_leave_no_cache(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.zip"
    export.write_bytes(b"PK")
    _run(progress.export_key(str(export), "synth"), capsys, enabled=False)
    assert not cache.exists()
    assert progress.export_key("https://user:secret@chat.example.com", "mattermost-api") is None


def test_a_broken_cache_is_ignored_and_replaced(tmp_path: Path, cache: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    export = tmp_path / "export"
    export.mkdir()
    (export / "users.json").write_text("[]")
    key = progress.export_key(str(export), "synth")
    assert progress.known_total(key) is None
    _run(key, capsys)
    assert progress.known_total(key) == 300
