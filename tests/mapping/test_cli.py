"""`--map` from the command line: the plan in `validate`, errors that name the key or line, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.targets.conftest import Invoke

from . import synth

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
REPORT_SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_prints_the_plan_and_json_follows_the_report_schema(cli: Invoke, tmp_path: Path) -> None:
    spec = write(tmp_path / "acme.toml", synth.MERGE_RENAME_EXCLUDE)
    db = tmp_path / "t.db"
    code, data, _ = cli("validate", str(SAMPLE), "--to", f"sqlite:///{db}", "--map", str(spec), "--json", cwd=tmp_path)
    assert code == 0
    jsonschema.validate(data, REPORT_SCHEMA)
    plan = data["mapping"]
    assert plan["channels"] == {"excluded": 1, "renamed": 1, "kept": 6}
    assert plan["skipped"]["messages: channels.exclude 'random'"] >= 1
    assert not db.exists() or db.stat().st_size == 0  # a dry run writes nothing
    code, _, err = cli("validate", str(SAMPLE), "--map", str(spec), cwd=tmp_path)
    assert code == 0
    assert "mapping " in err and "left out, channels: channels.exclude 'random': 1" in err
    html = tmp_path / "r.html"
    assert cli("validate", str(SAMPLE), "--map", str(spec), "--report", str(html), cwd=tmp_path)[0] == 0
    assert '<ul id="mapping">' in html.read_text()


def test_validate_lists_every_merge(cli: Invoke, tmp_path: Path) -> None:
    """Dry-run shows every merge (research/peers.md, 17): the whole list in --json and the HTML report."""
    names = ["alice", "bob", "erin.guest", "frank", "grace", "carol"]
    write(tmp_path / "users.csv", "source,target\n" + "".join(f"{n},someone{i}\n" for i, n in enumerate(names)))
    spec = write(tmp_path / "m.toml", "[users]\ncsv = 'users.csv'\n")
    db = tmp_path / "t.db"
    # The target already holds someone0 … someone5: a first run of a directory export puts them there.
    import sqlite3

    cli("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "-q", cwd=tmp_path)
    with sqlite3.connect(db) as conn:
        for i, name in enumerate(names):
            conn.execute("UPDATE cm_users SET username = ?, source = 'directory', id = ? WHERE username = ?",
                         (f"someone{i}", f"dir-{i}", name))
    html = tmp_path / "r.html"
    code, data, _ = cli("validate", str(SAMPLE), "--to", f"sqlite:///{db}", "--map", str(spec), "--json",
                        "--report", str(html), cwd=tmp_path)
    assert code in (0, 1)
    assert sorted(m["target"] for m in data["mapping"]["merges"]) == [f"someone{i}" for i in range(len(names))]
    page = html.read_text()
    assert all(f"@someone{i}" in page for i in range(len(names)))


@pytest.mark.parametrize(("text", "expected"), [
    ("[users]\nmatch = 'mail'\n", "users.match: 'mail' is not one of"),
    ("[channels]\narchived = 'no'\n", "channels.archived: 'no' is not of type 'boolean'"),
    ("[chanels]\n", "Additional properties are not allowed ('chanels' was unexpected)"),
    ("[time]\nsince = 'last year'\n", "time.since: 'last year' is not an ISO 8601 date"),
    ("[teams]\ninto = 'a'\n[teams.rename]\nx = 'y'\n", "give either teams.into or teams.rename"),
    ("[users\n", "not valid TOML"),
])
def test_a_wrong_mapping_file_is_a_usage_error_naming_the_key(cli: Invoke, tmp_path: Path, text: str,
                                                               expected: str) -> None:
    spec = write(tmp_path / "bad.toml", text)
    code, _, err = cli("validate", str(SAMPLE), "--map", str(spec), cwd=tmp_path)
    assert code == 2
    assert expected in err and str(spec) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_users_csv_is_read_and_its_errors_name_the_line(cli: Invoke, tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "source,target\nalice,alice.w\nU0BOB0002,robert\n")
    spec = write(tmp_path / "m.toml", "[users]\ncsv = 'users.csv'\n")
    db = tmp_path / "t.db"
    code, data, _ = cli("migrate", str(SAMPLE), "--to", f"sqlite:///{db}", "--map", str(spec), "--json", "-q",
                        cwd=tmp_path)
    assert code in (0, 1)
    assert data["mapping"]["users"]["renamed"] == 2
    import sqlite3

    names = {r[0] for r in sqlite3.connect(db).execute("SELECT username FROM cm_users")}
    assert {"alice.w", "robert"} <= names and not {"alice", "bob"} & names
    write(tmp_path / "users.csv", "source,target\nalice,alice.w\nbob,\n")
    code, _, err = cli("validate", str(SAMPLE), "--map", str(spec), cwd=tmp_path)
    assert code == 2 and "users.csv:3: both source and target are needed" in err
    write(tmp_path / "users.csv", "from,to\n")
    code, _, err = cli("validate", str(SAMPLE), "--map", str(spec), cwd=tmp_path)
    assert code == 2 and "users.csv:1: the header must name the columns source,target" in err


def test_unmatched_users_as_errors_exit_1(cli: Invoke, tmp_path: Path) -> None:
    spec = write(tmp_path / "m.toml", "[users]\nmatch = 'email'\nunmatched = 'error'\n")
    rejects = tmp_path / "rejects.jsonl"
    code, data, _ = cli("validate", str(SAMPLE), "--map", str(spec), "--rejects", str(rejects), "--json",
                        cwd=tmp_path)
    assert code == 1
    assert data["findings"]["CM403"] == data["counts"]["users"]["rejected"] > 0
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert {f["code"] for line in lines for f in line["findings"]} >= {"CM403"}


def test_the_readme_example_mapping_is_valid_and_runs(cli: Invoke, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- mapping-example:start -->", 1)[1].split("<!-- mapping-example:end -->", 1)[0]
    example = block.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = write(tmp_path / "acme-mapping.toml", example)
    write(tmp_path / "users.csv", "source,target\ncarol,carol.c\n")
    code, data, err = cli("validate", str(SAMPLE), "--map", str(spec), "--json", cwd=tmp_path)
    assert code in (0, 1), err
    plan = data["mapping"]
    assert plan["teams"] == {"merged": 1} and plan["channels"]["renamed"] == 1  # general → town-square
    assert plan["users"]["renamed"] >= 1  # carol, from the CSV
