"""chatmigrate vs mmetl, side by side: a generated Slack export turned into a Mattermost bulk-import package.

    python3 benchmarks/mmetl_compare.py --messages 100000 1000000
    python3 benchmarks/mmetl_compare.py --tables          # print the tables of the saved results only

For every N: the Slack export zip comes from benchmarks/generate.py (cached under benchmarks/data/);
`chatmigrate migrate EXPORT --to mattermost-import:///…/cm.zip` and `mmetl transform slack` each run as
a child process (wall time, user+sys CPU and peak RSS from os.wait4); Mattermost's own validator
(`mmvalidate`, tests/oracles) judges both outputs; a streaming JSONL counter tells which features each
output kept. Results: benchmarks/results/mmetl/slack-N.json; tables: latest.md next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results" / "mmetl"
ORACLES = REPO / ".cache" / "oracles"
EMAIL_DOMAIN = "example.com"
TEAM = "myteam"
# Features counted in each package, in table order: (key, label).
FEATURES = (
    ("posts", "posts (roots + replies, channels and DMs)"),
    ("threads", "threads (roots with replies)"),
    ("replies", "replies"),
    ("edited", "posts with edit_at"),
    ("pinned", "posts with is_pinned"),
    ("reactions", "reactions"),
    ("duplicate_reactions", "reactions repeating a user + emoji of the same post"),
    ("attachments", "file attachments"),
    ("message_attachments", "posts with props.attachments (Slack message attachments)"),
    ("dm_channels", "direct_channel lines, 2 members (DMs)"),
    ("group_channels", "direct_channel lines, 3+ members (group DMs)"),
    ("dm_posts", "direct_post lines in DMs"),
    ("group_posts", "direct_post lines in group DMs"),
    ("users", "user lines"),
    ("deactivated", "users with delete_at (deactivated)"),
    ("bots", "bot lines"),
    ("emoji", "emoji lines"),
)

sys.path.insert(0, str(HERE))
import generate  # noqa: E402  (benchmarks/ is not a package)


@dataclass(slots=True)
class Run:
    """One child process: exit code, wall and CPU seconds, peak RSS, captured output."""

    code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    loadavg_before: float
    stdout: str
    stderr: str


# -- children ------------------------------------------------------------------------------------------


def spawn(argv: list[str], cwd: Path) -> Run:
    """Run argv to the end; its resource usage comes from wait4 (that child only, not its siblings)."""
    load = os.getloadavg()[0]
    out_path, err_path = cwd / ".stdout", cwd / ".stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    return Run(proc.returncode, round(wall, 2), round(usage.ru_utime + usage.ru_stime, 2),
               round(usage.ru_maxrss / 1024, 1), round(load, 2), stdout, stderr)


def oracle(name: str) -> Path:
    """Path of a Go oracle binary, built by tests/oracles/build.sh when missing."""
    path = ORACLES / name
    if not path.exists():
        subprocess.run(["bash", str(REPO / "tests" / "oracles" / "build.sh")], check=True)
    return path


def chatmigrate_argv() -> list[str]:
    exe = shutil.which("chatmigrate")
    return [exe] if exe else [sys.executable, "-m", "chatmigrate"]


def export_zip(messages: int, seed: int) -> Path:
    """The generated Slack export (a zip: what mmetl reads), made once and cached under benchmarks/data/."""
    path = DATA / generate.default_name("slack", messages, seed)
    if not path.exists():
        generate.generate("slack", messages, seed, path)
    return path


def bot_owner(export: Path) -> str:
    """mmetl needs an owner for the bots it creates: the first active human of users.json."""
    with zipfile.ZipFile(export) as archive:
        users = orjson.loads(archive.read("users.json"))
    return next(u["name"] for u in users if not u.get("is_bot") and not u.get("deleted"))


def run_chatmigrate(export: Path, work: Path, owner: str) -> tuple[Run, Path]:
    out = work / "cm"
    out.mkdir(parents=True)
    package = out / "cm.zip"
    # bot_owner: the same owner mmetl gets, so that both write bot lines (without it bots become users).
    argv = [*chatmigrate_argv(), "migrate", str(export), "--to", f"mattermost-import://{package}?bot_owner={owner}",
            "--default-email-domain", EMAIL_DOMAIN, "--rejects", str(out / "rejects.jsonl"), "-q", "--json"]
    return spawn(argv, out), package


def run_mmetl(export: Path, work: Path, owner: str) -> tuple[Run, Path]:
    out = work / "mmetl"
    out.mkdir(parents=True)
    jsonl = out / "out.jsonl"
    argv = [str(oracle("mmetl")), "transform", "slack", "--team", TEAM, "--file", str(export), "--output", str(jsonl),
            "--default-email-domain", EMAIL_DOMAIN, "--bot-owner", owner]
    return spawn(argv, out), jsonl


def validate(path: Path) -> dict[str, Any]:
    """Mattermost's bulk-import validator on a package (.zip, or .jsonl with data/ beside it)."""
    run = spawn([str(oracle("mmvalidate")), str(path)], path.parent)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        return {"ok": False, "errors": None, "fatal": (run.stderr or run.stdout)[-500:], "wall_s": run.wall_s}
    errors = report.get("errors") or []
    kinds = Counter(f"{e.get('field', '')}: {e.get('error_id') or e.get('error', '')}" for e in errors)
    return {"ok": bool(report.get("ok")), "errors": len(errors), "fatal": report.get("fatal"),
            "error_kinds": dict(kinds.most_common(10)), "first_errors": errors[:3], "lines": report.get("lines"),
            "wall_s": run.wall_s}


# -- features kept: one pass over a package's JSONL, memory flat ------------------------------------------


def jsonl_lines(path: Path) -> Iterator[bytes]:
    """The lines of a .jsonl file, or of the .jsonl member of a package zip, read as a stream."""
    if path.suffix != ".zip":
        with open(path, "rb") as handle:
            yield from handle
        return
    with zipfile.ZipFile(path) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".jsonl"))
        with archive.open(member) as stream:
            yield from stream


def count_post(post: dict[str, Any], counts: Counter[str]) -> None:
    """A root post (or direct post) with its nested replies."""
    replies = post.get("replies") or []
    counts["threads"] += bool(replies)
    counts["replies"] += len(replies)
    for item in (post, *replies):
        counts["posts"] += 1
        counts["edited"] += bool(item.get("edit_at"))
        counts["pinned"] += bool(item.get("is_pinned"))
        reactions = item.get("reactions") or ()
        counts["reactions"] += len(reactions)
        counts["duplicate_reactions"] += len(reactions) - len({(r.get("user"), r.get("emoji_name")) for r in reactions})
        counts["attachments"] += len(item.get("attachments") or ())
        counts["message_attachments"] += bool((item.get("props") or {}).get("attachments"))


def count_line(line: dict[str, Any], counts: Counter[str]) -> None:
    kind = line.get("type", "")
    body = line.get(kind) or {}
    counts[f"lines:{kind}"] += 1
    if kind == "post":
        count_post(body, counts)
    elif kind == "direct_post":
        count_post(body, counts)
        counts["group_posts" if len(body.get("channel_members") or ()) >= 3 else "dm_posts"] += 1
    elif kind == "direct_channel":
        counts["group_channels" if len(body.get("members") or ()) >= 3 else "dm_channels"] += 1
    elif kind == "user":
        counts["users"] += 1
        counts["deactivated"] += bool(body.get("delete_at"))
    elif kind == "bot":
        counts["bots"] += 1
    elif kind == "emoji":
        counts["emoji"] += 1


def count_features(lines: Iterable[bytes]) -> dict[str, int]:
    counts: Counter[str] = Counter({key: 0 for key, _label in FEATURES})
    for raw in lines:
        if raw.strip():
            count_line(orjson.loads(raw), counts)
    return dict(counts)


# -- one size --------------------------------------------------------------------------------------------


def tool_report(stdout: str) -> dict[str, Any] | None:
    """What `chatmigrate --json` said about the package (findings, what was left out); None for mmetl."""
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    target = {k: v for k, v in (report.get("target_output") or {}).items() if k != "lines"}
    return {"exit_code": report.get("exit_code"), "findings": report.get("findings"), "target_output": target}


def measure(tool: str, run: Run, output: Path, messages: int) -> dict[str, Any]:
    result: dict[str, Any] = {"tool": tool, "messages": messages, **asdict(run), "output": str(output)}
    result["msgs_per_s"] = round(messages / run.wall_s) if run.wall_s else None
    result["report"] = tool_report(run.stdout)
    result["stdout"], result["stderr"] = run.stdout[-2000:], run.stderr[-2000:]
    if run.code not in (0, 1) or not output.exists():
        result.update(validator={"ok": False, "errors": None, "fatal": "no output"}, features=None)
        return result
    result["output_mb"] = round(output.stat().st_size / 1e6, 1)
    # chatmigrate: its hub (SQLite) beside the package; mmetl: data/ and its log.
    side = sum(p.stat().st_size for p in output.parent.rglob("*") if p.is_file() and p != output)
    result["side_files_mb"] = round(side / 1e6, 1)
    result["validator"] = validate(output)
    result["features"] = count_features(jsonl_lines(output))
    return result


def compare(messages: int, seed: int, work: Path) -> dict[str, Any]:
    export = export_zip(messages, seed)
    here = work / f"slack-{messages}"
    shutil.rmtree(here, ignore_errors=True)
    print(f"{messages:,} messages: {export}", file=sys.stderr)
    owner = bot_owner(export)
    results = []
    for tool, runner in (("chatmigrate", run_chatmigrate), ("mmetl", run_mmetl)):
        run, output = runner(export, here, owner)
        print(f"  {tool}: exit {run.code}, {run.wall_s} s wall, {run.cpu_s} s CPU, {run.peak_rss_mb} MB",
              file=sys.stderr)
        results.append(measure(tool, run, output, messages))
    return {"messages": messages, "seed": seed, "export": str(export), "bot_owner": owner,
            "export_mb": round(export.stat().st_size / 1e6, 1),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(),
            "cpus": os.cpu_count(), "results": results}


def git_commit() -> str:
    """HEAD's short hash, with `+dirty` when chatmigrate/ has uncommitted changes (they are what ran)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "chatmigrate") else "")


# -- tables -------------------------------------------------------------------------------------------------


def validator_cell(v: dict[str, Any]) -> str:
    if v.get("errors") is None:
        return f"failed: {v.get('fatal')}"
    return f"{'ok' if v['ok'] else 'invalid'} / {v['errors']:,} errors"


def speed_table(sizes: list[dict[str, Any]]) -> str:
    rows = ["| tool | N | exit | wall s | msg/s | CPU s | peak RSS MB | validator ok / errors |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for size in sizes:
        for r in size["results"]:
            rows.append(f"| {r['tool']} | {r['messages']:,} | {r['code']} | {r['wall_s']:,.1f} "
                        f"| {r['msgs_per_s'] or 0:,} | {r['cpu_s']:,.1f} | {r['peak_rss_mb']:,.0f} "
                        f"| {validator_cell(r['validator'])} |")
    return "\n".join(rows)


def features_table(sizes: list[dict[str, Any]]) -> str:
    columns = [(size["messages"], r["tool"], r["features"] or {}) for size in sizes for r in size["results"]]
    head = "| feature | " + " | ".join(f"{tool} {n:,}" for n, tool, _f in columns) + " |"
    rows = [head, "|---|" + "---:|" * len(columns)]
    for key, label in FEATURES:
        rows.append(f"| {label} | " + " | ".join(f"{f.get(key, 0):,}" if f else "–" for _n, _t, f in columns) + " |")
    return "\n".join(rows)


def saved_results() -> list[dict[str, Any]]:
    sizes = [json.loads(p.read_text()) for p in RESULTS.glob("slack-*.json")]
    return sorted(sizes, key=lambda s: s["messages"])


def write_tables() -> str:
    text = speed_table(saved_results()) + "\n\n" + features_table(saved_results()) + "\n"
    (RESULTS / "latest.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=generate.parse_count, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/chatmigrate-mmetl-compare"),
                        help="where the packages are written (each size's folder is replaced)")
    parser.add_argument("--tables", action="store_true", help="only print the tables of the saved results")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.tables:
        for messages in args.messages:
            size = compare(messages, args.seed, args.work)
            (RESULTS / f"slack-{messages}.json").write_text(json.dumps(size, indent=1, ensure_ascii=False) + "\n")
    print(write_tables())
    return 0


if __name__ == "__main__":
    sys.exit(main())
