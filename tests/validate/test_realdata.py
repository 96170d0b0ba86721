"""`validate` over every sample and every real third-party export: one pass, a full report, no crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())
Invoke = Callable[..., tuple[int, Any, str]]

SAMPLES = ["slack", "mattermost/export.jsonl", "mattermost/export.zip", "rocketchat/dump"]
ZULIP_MM = "mattermost/zulip/zerver/tests/fixtures"
# Every export under ../shared/realdata, with the source form when detection cannot tell (a fragment).
REAL: dict[str, str | None] = {
    "slack/awat/test/dummy-slack-workspace-archive.zip": None,
    "slack/slack-export-viewer/tests/testarchive.zip": None,
    "slack/slackdump/internal/fixtures/assets/export": None,
    "slack/slackdump/internal/fixtures/assets/source_export.zip": None,
    # Zulip's importer fixtures: channel lists and one day file, no users.json
    "slack/zulip/zerver/tests/fixtures/slack_fixtures": "slack-export",
    "mattermost/awat/test/dummy-mattermost-workspace-archive.zip": None,
    f"{ZULIP_MM}/mattermost_fixtures/export.json": None,
    f"{ZULIP_MM}/mattermost_fixtures/guestExport.json": None,
    f"{ZULIP_MM}/mattermost_fixtures/direct_channel/export.json": None,
    f"{ZULIP_MM}/mattermost_v11.1.0_fixtures/raw_mmctl_output/import.jsonl": None,
    "rocketchat/TFC/dump/rocketchat": None,
    "rocketchat/local-dev-env/dumps/mongodb/dump/rocketchat": None,
    "rocketchat/mse1h2025-rocket0/dump/rocketchat": None,
}
# What a person checked by hand in these exports, so the test pins real findings, not just "no crash".
KNOWN: dict[str, dict[str, int]] = {
    # a post in channel slytherin-quidditch-team filed under team gryffindor (export.json:33)
    f"{ZULIP_MM}/mattermost_fixtures/export.json": {"CM005": 1},
    # three attachments listed in the mmctl export whose bytes were not exported
    f"{ZULIP_MM}/mattermost_v11.1.0_fixtures/raw_mmctl_output/import.jsonl": {"CM118": 3},
}


def check_run(cli: Invoke, location: Path, source: str | None, tmp_path: Path) -> dict[str, Any]:
    args = ["validate", str(location), "--report", "report.html", "--rejects", "rejects.jsonl", "--json"]
    if source:
        args += ["--from", source]
    code, data, err = cli(*args, cwd=tmp_path)
    assert code in (0, 1), err
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert code == (1 if data["severity_totals"]["error"] else 0)
    for kind, c in data["counts"].items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind
    page = (tmp_path / "report.html").read_text()
    assert all(f'data-code="{code}"' in page for code in data["findings"])
    rejects = tmp_path / "rejects.jsonl"
    assert (rejects.exists() and len(rejects.read_text().splitlines()) == data["rejected_records"]) or \
        data["rejected_records"] == 0
    return data


@pytest.mark.parametrize("relative", SAMPLES)
def test_validate_every_sample(relative: str, samples: Path, cli: Invoke, tmp_path: Path) -> None:
    location = samples / relative
    if not location.exists():
        pytest.fail(f"samples/{relative} is missing")
    data = check_run(cli, location, None, tmp_path)
    assert data["counts"]["messages"]["loaded"] > 0


@pytest.mark.parametrize("relative", sorted(REAL))
def test_validate_every_real_export(relative: str, realdata: Path, cli: Invoke, tmp_path: Path) -> None:
    data = check_run(cli, realdata / relative, REAL[relative], tmp_path)
    for code, n in KNOWN.get(relative, {}).items():
        assert data["findings"].get(code) == n, data["findings"]


# Files that are not exports (a single message fixture).
NOT_EXPORTS = {"slack/slackdump/internal/fixtures/assets/messages/bot_message.json"}


def test_every_real_export_is_listed(realdata: Path) -> None:
    """New files in ../shared/realdata must be added above, or they would escape validation."""
    covered = [realdata / r for r in (*REAL, *NOT_EXPORTS)]
    for path in sorted(realdata.rglob("*")):
        if path.is_file() and path.name != "PROVENANCE.md":
            assert any(path == c or c in path.parents for c in covered), f"{path} is in no listed export"
