"""Parsing in a worker process (`--workers`, chatmigrate/workers.py): the same stream, the same errors,
the same rows, and nothing left running when the run stops early or is killed."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate import extractors
from chatmigrate.cli import main
from chatmigrate.errors import InputError
from chatmigrate.model import Origin, Skipped, Unreadable
from chatmigrate.workers import BATCH_ITEMS, dumps, in_worker
from tests.loaders import synth
from tests.loaders.helpers import assert_same, dump

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"


class _Synth:
    """A file-like source whose stream is the synth records, optionally failing after `fail_after`."""

    name: ClassVar[str] = "synth"
    source: ClassVar[str] = "synth"
    scope = synth.SCOPE

    def __init__(self, messages: int, fail_after: int | None = None) -> None:
        self.messages = messages
        self.fail_after = fail_after
        self.built_in = os.getpid()

    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Any]:
        for n, item in enumerate(synth.items(self.messages)):
            if n == self.fail_after:
                raise InputError("day file is cut short; re-export it", location="general/2020-01-01.json:7")
            yield item
        yield Unreadable("messages", "CM001", "not JSON", b"\xff{", Origin("x.json", 3))
        yield Skipped("channels", "livechat room", {"t": "l"}, Origin("rooms.bson"))


def test_batches_give_back_equal_items_of_every_kind() -> None:
    items = [*synth.items(300), Unreadable("users", "CM120", "bad", {"a": [1]}, Origin("u.json", 1)),
             Skipped("channels", "why", None)]
    back = pickle.loads(dumps(items))
    assert back == items
    # Equality leaves the origin out: check it travelled too.
    assert [getattr(i, "origin", None) for i in back] == [getattr(i, "origin", None) for i in items]


def test_the_worker_stream_equals_the_in_process_stream() -> None:
    factory = lambda: _Synth(BATCH_ITEMS * 3 + 17)  # noqa: E731 - several whole batches and a partial one
    wrapped = in_worker(factory, "synth.zip", 2)
    assert wrapped.name == "synth" and wrapped.scope == synth.SCOPE
    got = list(wrapped.records())
    assert got == list(factory().records())


def test_the_extractor_runs_in_another_process() -> None:
    class WhereAmI(_Synth):
        def records(self, since: Mapping[str, str] | None = None) -> Iterator[Any]:
            yield Skipped("channels", str(os.getpid()), dict(since or {}))

    got = list(in_worker(lambda: WhereAmI(0), "x.zip", 2).records(since={"C1": "5"}))
    assert int(got[0].reason) != os.getpid() and got[0].raw == {"C1": "5"}
    # One worker, or a server source, stays here.
    for location, workers in (("x.zip", 1), ("https://chat.example.com", 4)):
        here = next(iter(in_worker(lambda: WhereAmI(0), location, workers).records()))
        assert here.reason == str(os.getpid())


def test_an_extractor_error_arrives_after_the_items_before_it_and_as_itself() -> None:
    stream = in_worker(lambda: _Synth(2000, fail_after=1234), "x.zip", 2).records()
    got = []
    with pytest.raises(InputError) as raised:
        for item in stream:
            got.append(item)
    assert len(got) == 1234
    assert raised.value.location == "general/2020-01-01.json:7"
    assert str(raised.value) == "general/2020-01-01.json:7: day file is cut short; re-export it"


def test_this_process_builds_the_extractor_only_when_a_method_needs_it() -> None:
    built: list[int] = []

    class Counted(_Synth):
        def __init__(self) -> None:
            super().__init__(10)
            built.append(os.getpid())  # lands in this process's list only when built here

        def open_file(self, file: Any) -> int:
            return os.getpid()

    wrapped = in_worker(Counted, "x.zip", 2)
    assert len(list(wrapped.records())) > 10 and wrapped.scope == synth.SCOPE and wrapped.source == "synth"
    opener = wrapped.open_file
    assert built == []
    assert opener(None) == os.getpid() and built == [os.getpid()]
    assert wrapped.fail_after is None  # any other attribute: from the extractor built here


def test_an_error_building_the_extractor_is_raised_here_as_itself() -> None:
    def broken() -> _Synth:
        raise InputError("not a Slack export: users.json is missing", location="export.zip")

    with pytest.raises(InputError) as raised:
        in_worker(broken, "export.zip", 2)
    assert str(raised.value) == "export.zip: not a Slack export: users.json is missing"


def test_stopping_early_ends_the_worker() -> None:
    stream = in_worker(lambda: _Synth(50_000), "x.zip", 2).records()
    next(stream)
    children = _children(os.getpid())
    assert children
    stream.close()  # type: ignore[attr-defined]
    assert not set(children) & set(_children(os.getpid()))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def test_migrate_with_workers_writes_what_one_process_writes(tmp_path: Path) -> None:
    runs = {}
    for n in (1, 2):
        url = f"sqlite:///{tmp_path / f'w{n}.db'}"
        result = CliRunner().invoke(main, ["migrate", str(SAMPLE), "--to", url, "--workers", str(n), "--json",
                                           "--rejects", str(tmp_path / f"rejects{n}.jsonl")])
        assert result.exit_code in (0, 1), result.output
        runs[n] = (json.loads(result.stdout)["counts"], dump(url))
    assert runs[1][0] == runs[2][0]
    assert_same(runs[2][1], runs[1][1])
    validated = CliRunner().invoke(main, ["validate", str(SAMPLE), "--workers", "2", "--json"])
    assert json.loads(validated.stdout)["counts"] == runs[1][0]


@pytest.mark.slow
def test_kill_9_of_a_migrate_with_workers_leaves_no_worker_and_resumes(tmp_path: Path) -> None:
    export = tmp_path / "slack.zip"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "generate.py"), "--form", "slack", "--messages",
                    "40000", "--seed", "3", "--out", str(export)], check=True, capture_output=True)
    url, reference = f"sqlite:///{tmp_path / 'killed.db'}", f"sqlite:///{tmp_path / 'clean.db'}"
    command = [sys.executable, "-m", "chatmigrate", "migrate", str(export), "--to", url, "--workers", "2", "-q",
               "--rejects", str(tmp_path / "rejects.jsonl")]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while _messages(url) < 5000 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _children(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert workers, "the run had no parsing process"
    time.sleep(1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]], "a worker outlived its parent"
    assert 0 < _messages(url) < 40000
    for target in (url, reference):
        rerun = subprocess.run([*command[:6], target, *command[7:]], capture_output=True, text=True, cwd=tmp_path,
                               timeout=600, check=False)
        assert rerun.returncode in (0, 1), rerun.stderr[-2000:]
    assert_same(dump(url), dump(reference))


def _messages(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("cm_messages"):
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM cm_messages")).scalar() or 0)
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def test_slack_sample_is_detected_for_the_cli_test() -> None:
    assert extractors.detect(str(SAMPLE)).name == "slack-export"
