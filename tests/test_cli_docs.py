"""Every command has --help text with an example and is documented in the README; the README's two
set-up commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(main.commands))
def test_command_has_help_with_example_and_is_in_readme(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`chatmigrate {command} --help` has no example"
    assert f"chatmigrate {command}" in README, f"README does not document `chatmigrate {command}`"


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    assert "python3 -m pip install -e . && chatmigrate migrate samples/slack" in README
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest -q" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in ci and "pip install" in ci and "-e '.[test]'" in ci
