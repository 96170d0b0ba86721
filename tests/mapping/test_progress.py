"""The progress bar counts messages as read: a mapping that leaves messages out changes neither the
total a run remembers for the export nor how far the bar gets (100 %)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmigrate import pipeline, progress
from tests.targets.helpers import RecordSource

from . import synth


def test_a_filtering_mapping_keeps_the_exports_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHATMIGRATE_CACHE_DIR", str(tmp_path / "cache"))
    export = tmp_path / "export.zip"
    export.write_bytes(b"PK")
    key = progress.export_key(str(export), RecordSource.name)
    spec = synth.mapping('[channels]\nexclude = ["random", "general"]\n[time]\nsince = 2022-06-01\n')
    for _ in range(2):
        result = pipeline.run(RecordSource(synth.records), None, pipeline.RunOptions(
            "validate", str(export), progress=True, mapping=spec), dry_run=True)
    assert result.counts["messages"]["skipped"] > 0
    total = len(synth.CHANNELS) * synth.PER_CHANNEL
    assert progress.known_total(key) == total
    assert f"{total}/{total}" in capsys.readouterr().err  # the second run's bar reached the end
