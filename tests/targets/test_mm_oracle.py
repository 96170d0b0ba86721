"""Mattermost's own bulk-import validator (the code behind `mmctl import validate`, built from
tests/oracles/mmvalidate) judges every package chatmigrate writes: the samples, every real export
in ../shared/realdata (Slack, Mattermost, Rocket.Chat), and a generated hostile stream."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatmigrate import pipeline
from chatmigrate.targets import target_for
from tests.conftest import REPO
from tests.loaders.synth import items
from tests.validate.test_realdata import REAL

from .conftest import ORACLES, Invoke
from .helpers import RecordSource, unzip_lines

Validate = Callable[[Path], dict[str, Any]]
SAMPLES = ["slack", "mattermost/export.zip", "mattermost/export.jsonl", "rocketchat/dump"]


def package_of(cli: Invoke, location: Path, tmp_path: Path, source: str | None = None) -> tuple[Path, Any]:
    out = tmp_path / "out.zip"
    args = ["migrate", str(location), "--to", f"mattermost-import://{out}", "--default-email-domain", "example.com",
            "--rejects", str(tmp_path / "rejects.jsonl"), "--json", "-q"]
    if source:
        args += ["--from", source]
    code, data, err = cli(*args, cwd=tmp_path)
    assert code in (0, 1), err
    assert out.is_file(), err
    return out, data


def assert_valid(verdict: dict[str, Any]) -> None:
    problems = [f"line {e['line']} {e.get('field', '')}: {e['error']}" for e in verdict["errors"]]
    assert verdict["ok"] and not problems, "\n".join(problems)


def test_the_oracle_judges_for_real(mmvalidate: Validate) -> None:
    """The validator refuses a broken package (so a pass below means something)."""
    verdict = mmvalidate(REPO / "tests" / "oracles" / "mmvalidate" / "testdata" / "bad.jsonl")
    assert not verdict["ok"]
    assert any("CreateAt" in e["error"] for e in verdict["errors"])
    assert_valid(mmvalidate(REPO / "tests" / "oracles" / "mmvalidate" / "testdata" / "good.jsonl"))


@pytest.mark.parametrize("relative", SAMPLES)
def test_every_sample_becomes_a_package_mattermost_accepts(relative: str, samples: Path, cli: Invoke,
                                                           mmvalidate: Validate, tmp_path: Path) -> None:
    package, data = package_of(cli, samples / relative, tmp_path)
    verdict = mmvalidate(package)
    assert_valid(verdict)
    lines = unzip_lines(package)
    posts = [line[line["type"]] for line in lines if line["type"] in ("post", "direct_post")]
    written = sum(1 + len(p.get("replies", ())) for p in posts)
    assert written >= data["counts"]["messages"]["loaded"] > 0
    assert verdict["counts"]["users"] == sum(line["type"] in ("user", "bot") for line in lines)


@pytest.mark.parametrize("relative", sorted(REAL))
def test_every_real_export_becomes_a_package_mattermost_accepts(relative: str, realdata: Path, cli: Invoke,
                                                                mmvalidate: Validate, tmp_path: Path) -> None:
    package, data = package_of(cli, realdata / relative, tmp_path, REAL[relative])
    assert_valid(mmvalidate(package))
    assert data["target_output"]["package"] == str(package)


def test_a_generated_hostile_stream_becomes_a_valid_package(mmvalidate: Validate, tmp_path: Path) -> None:
    """NUL, lone surrogates, over-long names, authorless system messages, threads, files, edits."""
    target = target_for(f"mattermost-import://{tmp_path}/synth.zip?default_email_domain=example.com")
    try:
        result = pipeline.run(RecordSource(lambda: items(3000, channels=6, users=40)), target,
                              pipeline.RunOptions("migrate", "synth", progress=False))
    finally:
        target.close()
    assert result.counts["messages"]["loaded"] == 3000
    assert_valid(mmvalidate(tmp_path / "synth.zip"))


def test_the_system_emoji_list_is_the_one_of_the_validated_mattermost(mmvalidate: Validate) -> None:
    names = subprocess.run([str(ORACLES / "mmvalidate"), "-system-emoji"], capture_output=True, text=True,
                           check=True).stdout
    assert (REPO / "mappings" / "mattermost-system-emoji.txt").read_text() == names
