"""Reports: --json against its JSON Schema, and the HTML page as a person sees it in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from chatmigrate.validate.report import month_series

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())

Invoke = Callable[..., tuple[int, Any, str]]


def validate_against_schema(data: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(data)


@pytest.mark.parametrize("command", ["validate", "migrate"])
def test_json_output_matches_its_schema(command: str, crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    extra = ["--to", f"sqlite:///{tmp_path / 'c.db'}"] if command == "migrate" else []
    for export in (SAMPLE, crafted):
        code, data, _ = cli(command, str(export), *extra, "--rejects", "r.jsonl", "--report", "r.html", "--json",
                            cwd=tmp_path)
        validate_against_schema(data)
        assert data["exit_code"] == code
        assert sum(r["count"] for r in data["rules"]) == sum(data["findings"].values())
        assert sum(c["messages"] for c in data["per_channel"]) == data["counts"]["messages"]["loaded"]
        assert sum(data["per_month"].values()) == data["counts"]["messages"]["loaded"]


def test_schema_rejects_what_it_should() -> None:
    """The schema is not a blank cheque: a wrong shape fails it."""
    good = {"command": "validate", "source": "x", "location": "x", "target": None, "dry_run": True,
            "counts": {k: {"read": 0, "added": 0, "loaded": 0, "rejected": 0, "skipped": 0}
                       for k in ("teams", "users", "channels", "emoji", "messages", "reactions", "files")},
            "rows_written": 0, "load": {"retries": 0, "repairs": {}}, "findings": {}, "rejects_file": None,
            "first_message_at": None,
            "last_message_at": None, "exit_code": 0, "severity_totals": {"error": 0, "warning": 0, "info": 0},
            "rejected_records": 0, "rules": [], "per_channel": [], "per_month": {}, "report_file": None}
    validate_against_schema(good)
    for bad in ({**good, "exit_code": 2}, {**good, "per_month": {"2024-13": 1}}, {**good, "surprise": 1},
                {**good, "rules": [{"code": "CM101", "name": "x", "severity": "fatal", "count": 1, "summary": "",
                                    "repair": "", "examples": []}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate_against_schema(bad)


def test_month_series_fills_the_gaps() -> None:
    assert month_series({"2023-11": 2, "2024-02": 5}) == [("2023-11", 2), ("2023-12", 0), ("2024-01", 0),
                                                          ("2024-02", 5)]
    assert month_series({}) == []


class _Assets(HTMLParser):
    """Collects every reference the page could fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.refs += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "data")]


def test_html_report_is_self_contained(crafted: Path, cli: Invoke, tmp_path: Path) -> None:
    cli("validate", str(crafted), "--report", "r.html", "--quiet", cwd=tmp_path)
    page = (tmp_path / "r.html").read_text()
    parser = _Assets()
    parser.feed(page)
    assert parser.refs == [] and parser.scripts == 0
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", page)


def _dom(chromium: str, page: Path, tmp_path: Path) -> str:
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _text(dom: str) -> str:
    """What a reader sees: the DOM's text with tags dropped and white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_html_report_in_headless_chromium(chromium: str, crafted: Path, crafted_codes: set[str], cli: Invoke,
                                          tmp_path: Path) -> None:
    code, data, _ = cli("validate", str(crafted), "--max-text", "50", "--report", "report.html", "--json",
                        cwd=tmp_path)
    assert code == 1
    page = tmp_path / "report.html"
    dom = _dom(chromium, page, tmp_path)
    text = _text(dom)
    # the verdict and the totals
    assert "3 errors: 3 records would not load as they are." in text
    assert f"{data['severity_totals']['warning']} warnings" in text
    # every rule that fired, with its count and first example's place
    for row in data["rules"]:
        assert re.search(rf'<tr class="rule" data-code="{row["code"]}"><td><b>{row["code"]}</b></td><td>'
                         rf'{row["name"]}</td>.*?<td class="n">{row["count"]}</td>', dom), row["code"]
        assert row["examples"][0]["location"] in text
    assert {row["code"] for row in data["rules"]} == crafted_codes
    # the per-kind table shows the message counts
    messages = data["counts"]["messages"]
    assert re.search(rf'<tr data-kind="messages"><td>messages</td><td class="n">{messages["read"]}</td>'
                     rf'<td class="n">0</td><td class="n">{messages["loaded"]}</td><td class="n">'
                     rf'{messages["rejected"]}</td>', dom)
    # per-channel counts with names
    for channel in data["per_channel"]:
        assert re.search(rf"<td>{re.escape(channel['name'])}</td>.*?<td class=\"n\">{channel['messages']}</td>", dom)
    # the month chart: one bar per calendar month from the first to the last message, the right heights
    bars = re.findall(r'<rect class="month" data-month="(\d{4}-\d\d)" data-count="(\d+)"', dom)
    series = month_series(data["per_month"])
    assert [(m, int(n)) for m, n in bars] == series
    assert series[0] == ("1989-01", 1) and series[-1] == ("2024-03", 1) and len(series) == 35 * 12 + 3
    assert "2024-01: 11 messages" in dom  # the bar's tooltip: 14 lines in general, less CM004, CM105, CM106
    # and it renders to pixels: a screenshot that is not blank
    shot = tmp_path / "report.png"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]


def test_clean_report_says_so(chromium: str, cli: Invoke, tmp_path: Path) -> None:
    code, _, _ = cli("migrate", str(SAMPLE), "--to", f"sqlite:///{tmp_path / 'c.db'}", "--report", "ok.html", "--quiet",
                     cwd=tmp_path)
    assert code == 0
    text = _text(_dom(chromium, tmp_path / "ok.html", tmp_path))
    assert "No errors: every record can be loaded." in text and "0 errors" in text
    assert "loaded" in text and "sqlite:///" in text
