"""Bad `--to` URLs and extractor options are usage errors naming what is wrong, never an internal error
or a silent default (issue 12 #5): on the command line and in a sync config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate import extractors
from chatmigrate.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "slack"


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a run that went ahead would write ./chatmigrate.db: never in the checkout


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["migrate", str(SAMPLE), "--to", "postgresql+psycopg://u@host:notaport/db"], None,
         "chatmigrate: error: --to 'postgresql+psycopg://u@host:notaport/db': the port after the host must be a "
         "number"),
        (["migrate", str(SAMPLE), "-o", "scpoe=acme"], None,
         "chatmigrate: error: -o scpoe: slack-export has no such option; it takes: scope ("),
        (["inspect", str(SAMPLE), "--from", "mattermost-export", "-o", "max_line_bytes=lots"], None,
         "chatmigrate: error: -o max_line_bytes: 'lots' is not a valid value (expected longest JSONL line read"),
        (["inspect", "https://chat.example.com", "--from", "mattermost-api", "-o", "per_page=many"],
         {"CHATMIGRATE_MATTERMOST_TOKEN": "t0ken-for-the-test"},
         "chatmigrate: error: -o per_page: 'many' is not a valid value (expected items per API page"),
        (["validate", str(SAMPLE), "-o", "scope=acme", "-o", "max_wait=1"], None,
         "chatmigrate: error: -o max_wait: slack-export has no such option"),
    ],
)
def test_bad_urls_and_options_are_usage_errors(args: list[str], env: dict[str, str] | None, expected: str) -> None:
    code, err = _invoke(*args, env=env)
    assert code == 2, err
    assert err.startswith(expected), err
    assert len(err.strip().splitlines()) == 1


def test_every_extractor_declares_the_options_it_reads() -> None:
    """The names each built-in extractor reads from its options are the ones it declares."""
    for name, entry in extractors.registered().items():
        cls = entry.load()
        declared = getattr(cls, "known_options", None)
        assert isinstance(declared, dict) and declared, f"{name} declares no known_options"
        source = Path(cls.__module__.replace(".", "/") + ".py")
        text = (REPO / source).read_text(encoding="utf-8")
        read = set(re.findall(r"options\.get\(\s*\"(\w+)\"", text))
        assert read <= set(declared), f"{name} reads undeclared options {sorted(read - set(declared))}"


def _config(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(f"""target = "sqlite:///chat.db"
[[source]]
from = "mattermost-export"
location = "{SAMPLE}"
options = {{ {options} }}
""")
    return path


def test_sync_refuses_an_unknown_option_naming_the_key(tmp_path: Path) -> None:
    code, err = _invoke("sync", str(_config(tmp_path, 'scpoe = "acme"')), "--dry-run")
    assert code == 2
    assert err.startswith(f"chatmigrate: error: {tmp_path / 'sync.toml'}: [[source]] #1 options.scpoe: "
                          "mattermost-export has no such option; it takes: scope ("), err


def test_sync_reports_an_ill_typed_option_for_its_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sync", str(_config(tmp_path, 'max_line_bytes = "lots"')), "--dry-run"],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "options.max_line_bytes: 'lots' is not a valid value" in result.stdout, result.output
    assert "internal error" not in result.output
