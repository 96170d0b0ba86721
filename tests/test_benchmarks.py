"""The benchmark harness works: generated exports are deterministic and realistic, and a tiny run of
benchmarks/run.py measures every stage and writes its results. No timing is asserted: this machine is
shared and noisy; the numbers live in benchmarks/results/, not in tests."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import bson
import pytest

from tests.conftest import IN_CI, REPO, unavailable

sys.path.insert(0, str(REPO / "benchmarks"))
import generate
import run

DAY_FILE = re.compile(r"^([^/]+)/\d{4}-\d{2}-\d{2}\.json$")


def _sha(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("form", generate.FORMS)
def test_same_seed_same_bytes_other_seed_other_bytes(form: str, tmp_path: Path) -> None:
    suffix = "" if form == "rocketchat" else ".zip"
    a, b, c = (tmp_path / f"{n}{suffix}" for n in "abc")
    for path, seed in ((a, 7), (b, 7), (c, 8)):
        generate.generate(form, 400, seed, path)
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


def test_slack_export_has_what_real_exports_have(tmp_path: Path) -> None:
    path = tmp_path / "slack.zip"
    assert generate.generate("slack", 5_000, 3, path) == 5_000
    messages: list[dict] = []
    per_folder: dict[str, int] = {}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        for top in ("users.json", "channels.json", "groups.json", "dms.json", "mpims.json"):
            assert top in names
        users = json.loads(zf.read("users.json"))
        dms, mpims = json.loads(zf.read("dms.json")), json.loads(zf.read("mpims.json"))
        for name in names:
            match = DAY_FILE.match(name)
            if match:
                day = json.loads(zf.read(name))
                per_folder[match.group(1)] = per_folder.get(match.group(1), 0) + len(day)
                messages.extend(day)
    assert len(messages) == 5_000
    assert dms and mpims and any(u["deleted"] for u in users) and any(u["is_bot"] for u in users)
    assert {d["id"] for d in dms} & set(per_folder) and {m["name"] for m in mpims} & set(per_folder)
    sizes = sorted(per_folder.values())
    assert sizes[-1] > 10 * sizes[len(sizes) // 2]  # a few huge conversations, many small ones
    replies = [m for m in messages if m.get("thread_ts") and m["thread_ts"] != m["ts"]]
    assert 0.12 < len(replies) / len(messages) < 0.28
    # Some replies are posted on a later day than their root (they sit in another day file).
    assert any(int(float(m["ts"])) // 86_400 > int(float(m["thread_ts"])) // 86_400 for m in replies)
    text = " ".join(m.get("text", "") for m in messages)
    for marker in ("<@U", "<#C", "<https://", "&amp;", "*", "`"):
        assert marker in text
    assert re.search("[\u4e00-\u9fff]", text) and re.search("[\U0001F300-\U0001FAFF]", text)
    assert any(m.get("reactions") for m in messages) and any(m.get("edited") for m in messages)
    assert any(m.get("files") for m in messages) and any(m.get("subtype") == "bot_message" for m in messages)
    # Bots only known from their messages' bot_id are not in users.json.
    listed = {u["id"] for u in users}
    assert any(m.get("subtype") == "bot_message" and "user" not in m for m in messages)
    assert all(m["user"] in listed for m in messages if m.get("user"))


def test_mattermost_and_rocketchat_exports_hold_threads_files_and_reactions(tmp_path: Path) -> None:
    mm = tmp_path / "mm.zip"
    generate.generate("mattermost", 2_000, 1, mm)
    with zipfile.ZipFile(mm) as zf:
        lines = [json.loads(line) for line in zf.read("export.jsonl").splitlines()]
        data_files = [n for n in zf.namelist() if n.startswith("data/")]
    kinds = [line["type"] for line in lines]
    order = list(dict.fromkeys(kinds))
    assert order == ["version", "team", "channel", "user", "bot", "post", "direct_channel", "direct_post"]
    posts = [line.get("post") or line.get("direct_post") for line in lines if line["type"].endswith("post")]
    total = len(posts) + sum(len(p["replies"] or ()) for p in posts)
    assert total == 2_000
    attachments = [a["path"] for p in posts for a in (p["attachments"] or ())]
    assert attachments and all(f"data/{a}" in data_files for a in attachments)

    rc = tmp_path / "rc"
    generate.generate("rocketchat", 2_000, 1, rc)
    docs = bson.decode_all((rc / "rocketchat" / "rocketchat_message.bson").read_bytes())
    assert len(docs) == 2_000
    assert sum("tmid" in d for d in docs) > 200 and any(d.get("reactions") for d in docs)
    # Dump order is time order across rooms: rooms interleave, as in a real server's collection.
    switches = sum(a["rid"] != b["rid"] for a, b in itertools.pairwise(docs))
    assert switches > 100
    assert [d["ts"] for d in docs] == sorted(d["ts"] for d in docs)


def _targets() -> list[str]:
    """SQLite always; the servers when they are up (and always under CI, where they must be)."""
    targets = ["sqlite"]
    for dialect in ("postgresql", "mariadb"):
        problem = run.server_problem(dialect)
        if problem is None:
            targets.append(dialect)
        elif IN_CI:
            unavailable(f"{dialect} is unreachable under CI=true: {problem}")
    return targets


def test_harness_measures_every_stage_at_a_tiny_size(tmp_path: Path) -> None:
    targets = _targets()
    results_dir = tmp_path / "results"
    cmd = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--messages", "300", "--forms",
           "slack,mattermost,rocketchat", "--targets", ",".join(targets), "--data", str(tmp_path / "data"),
           "--results", str(results_dir), "--scale-to", "600", "--scale-targets", ",".join(targets)]
    if IN_CI:
        cmd.append("--require-servers")
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1_500)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((results_dir / "latest.json").read_text())
    assert results["meta"]["messages"] == 300
    for form in ("slack", "mattermost", "rocketchat"):
        data = results["forms"][form]
        assert data["available"], data
        for stage in ("parse", "markup", "validate"):
            assert data["stages"][stage]["messages"] == 300, (form, stage, data["stages"][stage])
            assert data["stages"][stage]["msgs_per_s"] > 0
        assert data["stages"]["validate"]["peak_rss_mb"] > 10
        assert set(data["targets"]) == set(targets)
        for dialect, measured in data["targets"].items():
            for stage in ("load", "migrate", "bare", "pandas"):
                assert "error" not in measured[stage], (form, dialect, stage, measured[stage])
                assert measured[stage]["messages"] == 300, (form, dialect, stage)
            assert measured["ratios"]["migrate_vs_bare"] > 0
            assert measured["migrate"]["peak_rss_mb"] > 10
    [scale] = results["scaling"]
    assert scale["messages"] == 600 and set(scale["targets"]) == set(targets)
    for dialect, entry in scale["targets"].items():
        assert entry["migrate"]["messages"] == 600, (dialect, entry)
        assert entry["base_messages"] == 300 and isinstance(entry["rss_growth"], float)
    goals = {check["goal"] for check in results["checks"]}
    assert any("validate" in goal for goal in goals) and any("peak RSS" in goal for goal in goals)
    assert sum("peak RSS growth" in goal for goal in goals) == len(targets)
    table = (results_dir / "latest.md").read_text()
    assert "| slack → sqlite |" in table and "## Goals" in table and "| sqlite | 600 |" in table
    # The cached exports were made inside --data, never in the repository's benchmarks/data/.
    assert (tmp_path / "data" / generate.default_name("slack", 300, 1)).exists()


def test_a_form_without_extractor_is_reported_not_available(tmp_path: Path) -> None:
    results = {"meta": {"messages": 1, "command": "x", "started": "t", "commit": "c", "cpus": 2, "python": "3",
                        "loadavg": [0]},
               "forms": {"slack": {"available": False, "reason": "not available yet (no extractor registered)"}},
               "checks": run.check_targets({"forms": {}, "scaling": []})}
    table = run.markdown(results)
    assert "| slack | not available yet (no extractor registered) |" in table
    assert all(check["met"] is None for check in results["checks"])
