"""The rule catalogue: well-formed, every rule implemented and tested, README's table generated from it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatmigrate.validate.rules import (
    README_END,
    README_START,
    RULES,
    SEVERITIES,
    markdown_table,
    readme_block,
    rule,
    update_readme,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "chatmigrate"
CODE = re.compile(r"""["'](CM\d{3})["']""")


def _codes_in(paths: list[Path]) -> set[str]:
    return {code for path in paths for code in CODE.findall(path.read_text(encoding="utf-8"))}


def test_codes_and_names_are_unique_and_well_formed() -> None:
    codes = [r.code for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    assert codes == sorted(codes)
    for r in RULES:
        assert re.fullmatch(r"CM[0-5]\d\d", r.code), r.code
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", r.name), r.name
        assert r.severity in SEVERITIES and r.summary and r.repair


def test_unknown_codes_count_as_errors() -> None:
    assert rule("ACME42").severity == "error" and rule("CM101").name == "message-unknown-channel"


def test_every_code_the_package_uses_is_in_the_catalogue() -> None:
    used = _codes_in(sorted(PACKAGE.rglob("*.py")))
    assert used - {r.code for r in RULES} == set(), "codes used in chatmigrate/ but missing from rules.py"


def test_every_rule_is_implemented() -> None:
    """CM1xx are the validator's own; CM0xx are raised by at least one extractor (or the validator);
    CM2xx (Mattermost), CM3xx (Rocket.Chat) and CM5xx (蓝莺IM) by a chat-server target's checks; CM4xx
    by the mapping step."""
    validator = _codes_in([PACKAGE / "validate" / "__init__.py"])
    extractors = _codes_in(sorted((PACKAGE / "extractors").glob("*.py")))
    targets = _codes_in(sorted((PACKAGE / "targets").glob("*.py")))
    mapping = _codes_in(sorted((PACKAGE / "mapping").glob("*.py")))
    for r in RULES:
        where = {"CM1": validator, "CM2": targets, "CM3": targets, "CM4": mapping, "CM5": targets}.get(
            r.code[:3], validator | extractors)
        assert r.code in where, f"{r.code} {r.name} is in the catalogue but nothing reports it"


def test_every_rule_has_a_test() -> None:
    tests = Path(__file__).parent
    tested = _codes_in(sorted(tests.glob("test_*.py")) + sorted((tests.parent / "targets").glob("test_*.py"))
                       + sorted((tests.parent / "mapping").glob("test_*.py")))
    missing = [r.code for r in RULES if r.code not in tested and r.code != "CM003"]
    # CM003 (unsafe paths) is exercised where the archive reader lives: tests of extractors/_files.py.
    assert missing == []


def test_markdown_table_lists_every_rule() -> None:
    table = markdown_table()
    rows = [line for line in table.splitlines() if line.startswith("| CM")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [r.code for r in RULES]
    done = subprocess.run([sys.executable, "-m", "chatmigrate.validate", "--markdown"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout == table and done.stderr == ""


def test_update_readme_rewrites_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_START}\nstale\n{README_END}\nafter\n")
    assert update_readme(readme) is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{README_END}\nafter\n")
    assert readme_block(text) == "\n" + markdown_table()
    assert update_readme(readme) is False


def test_readme_rule_table_is_current() -> None:
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.fail("README.md is missing: it must carry the rule catalogue between "
                    f"{README_START} and {README_END}")
    block = readme_block(readme.read_text(encoding="utf-8"))
    assert block is not None, f"README.md has no {README_START} … {README_END} block for the rule table"
    assert block == "\n" + markdown_table(), (
        "README.md's rule table is stale: run `python -m chatmigrate.validate --update-readme README.md`")
