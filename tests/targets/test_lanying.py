"""The 蓝莺IM target (`lanying://`) against a loopback server speaking the documented API
(tests/lanying_server.py): the samples of the three other sources go in with every message accounted
for and checked one by one on the server; a run killed half-way and run again sends nothing twice;
business errors in a 200, transient failures and an expired token; users a mapping merged onto
existing 蓝莺IM users; `validate --to lanying://` says what is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatmigrate import pipeline
from chatmigrate.extractors import detect
from chatmigrate.ids import record_id
from chatmigrate.model import EXISTING_USER_PROP, Channel, Item, Message, Reaction, User
from chatmigrate.targets import target_for
from chatmigrate.targets._lanying_api import Pacer
from chatmigrate.targets._lanying_rules import transaction_id, username
from tests.conftest import sql_rows
from tests.lanying_server import ADMIN_TOKEN, APP_ID, LanyingServer, running, target_url

from .helpers import RecordSource

REPO = Path(__file__).resolve().parents[2]
SAMPLES = {"slack": REPO / "samples" / "slack", "mattermost": REPO / "samples" / "mattermost" / "export.zip",
           "rocketchat": REPO / "samples" / "rocketchat" / "dump"}
T0 = datetime(2023, 4, 5, 6, 7, 8, tzinfo=UTC)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)


@pytest.fixture
def server() -> Iterator[LanyingServer]:
    # No server-side de-duplication: what must not be sent twice is the ledger's business.
    with running(dedup_seconds=0) as srv:
        yield srv


def migrate(url: str, location: Path | None = None, source: Any = None) -> pipeline.RunResult:
    target = target_for(url)
    extractor = source if source is not None else detect(str(location))(str(location), {})
    try:
        return pipeline.run(extractor, target, pipeline.RunOptions("migrate", str(location or "records"),
                                                                   progress=False))
    finally:
        target.close()


def hub_rows(hub: Path, query: str) -> list[Any]:
    return sql_rows(f"sqlite:///{hub}", query)


def sent_parts(server: LanyingServer) -> dict[tuple[str, int], Any]:
    """Every message the server holds by (canonical id, part) from its ext; a duplicate fails here."""
    out: dict[tuple[str, int], Any] = {}
    for message in server.state.messages:
        info = json.loads(message.ext)["chatmigrate"]
        key = (info["id"], int(info.get("part") or 0))
        assert key not in out, f"sent twice: {key}"
        out[key] = message
    return out


def check_one_by_one(server: LanyingServer, hub: Path) -> None:
    """Each hub message against what the server received: its parts, sender, conversation and text."""
    users = dict(hub_rows(hub, "SELECT record_id, ly_user_id FROM cm_ly_users"))
    groups = dict(hub_rows(hub, "SELECT channel_id, ly_group_id FROM cm_ly_convs WHERE kind = 'group'"))
    ledger = {r[0]: r[1:] for r in hub_rows(hub, "SELECT message_id, state, parts, sent, msg_ids FROM cm_ly_messages")}
    parts = sent_parts(server)
    messages = hub_rows(hub, "SELECT id, channel_id, user_id, text, deleted_at, kind FROM cm_messages")
    for mid, channel, author, text, deleted, kind in messages:
        state, nparts, nsent, msg_ids = ledger[mid]  # every message is accounted for in the ledger
        if state == "skipped":
            assert deleted is not None or kind == "tombstone" or not text.strip()
            assert (mid, 0) not in parts
            continue
        assert state == "sent" and nsent == nparts >= 1, (mid, state)
        held = [parts[(mid, i)] for i in range(nparts)]
        assert [m.msg_id for m in held] == [int(x) for x in msg_ids.split()]
        for m in held:
            assert m.from_uid == (users.get(author) or 0)
            assert m.to_id == groups[channel] if channel in groups else m.to_type == 1
        if text.strip():
            assert held[0].content == text and held[0].ctype == 0
    assert len(parts) == sum(r[2] for r in ledger.values())


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_sample_goes_in_with_every_message_accounted_for(server: LanyingServer, tmp_path: Path,
                                                              sample: str) -> None:
    hub = tmp_path / "hub.db"
    url = target_url(server, hub)
    result = migrate(url, SAMPLES[sample])
    counts = result.counts["messages"]
    assert counts["read"] + counts["added"] == counts["loaded"] + counts["rejected"] + counts["skipped"]
    summary = result.target_summary
    ledger = summary["ledger"]
    assert ledger.get("sent", 0) + ledger.get("skipped", 0) == counts["loaded"]
    assert summary["messages_sent"] == ledger["sent"] and "failed" not in ledger
    check_one_by_one(server, hub)
    for group in server.state.groups.values():
        assert group["history_visible"]  # set before the history was sent
    # The history_visible call of each group precedes the first message sent into it.
    order = [(route, body) for _, route, _, body in server.requests if route in (
        "/group/settings/history_visible", "/message/send")]
    visible: set[int] = set()
    for route, body in order:
        if route == "/group/settings/history_visible":
            visible.add(body["group_id"])
        elif body["type"] == 2:
            assert body["targets"][0] in visible
    before = len(server.requests)
    again = migrate(url, SAMPLES[sample])
    posts = [r for r in server.requests[before:] if r[0] == "POST"]
    assert posts == [] and again.target_summary.get("messages_sent", 0) == 0 and again.rows_written == 0


def test_files_are_uploaded_and_sent_as_file_messages(server: LanyingServer, tmp_path: Path) -> None:
    migrate(target_url(server, tmp_path / "hub.db"), SAMPLES["slack"])
    uploaded = [m for m in server.state.messages if m.ctype in (1, 4)]
    assert uploaded, "the Slack sample holds a file with bytes"
    for message in uploaded:
        attachment = json.loads(message.attachment)
        key = attachment["url"].split("/_oss/files/", 1)[1]
        assert len(server.state.files[key]) == attachment["fLen"]
        assert json.loads(message.ext)["chatmigrate"]["file"]["sha256"]
    # The token is never sent to the storage host (the server refuses such an upload with 400).
    assert all(attachment for attachment in server.state.files.values())


def _run_cli_killed_after(server: LanyingServer, url: str, cwd: Path, sends: int) -> int:
    """Run `chatmigrate migrate` in a child process; SIGKILL it once the server stored `sends` messages."""
    env = {**os.environ, "CHATMIGRATE_LANYING_TOKEN": ADMIN_TOKEN}
    child = subprocess.Popen([sys.executable, "-m", "chatmigrate", "migrate", str(SAMPLES["slack"]), "--to", url,
                              "--quiet"], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(route: str) -> None:
        if route == "/message/send" and len(server.state.messages) == sends:
            os.kill(child.pid, signal.SIGKILL)
            time.sleep(0.2)  # the answer may never reach a dead client

    server.after_request = kill
    try:
        return child.wait(timeout=120)
    finally:
        server.after_request = None


def test_a_run_killed_half_way_and_run_again_sends_nothing_twice(server: LanyingServer, tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    url = target_url(server, hub)
    code = _run_cli_killed_after(server, url, tmp_path, sends=12)
    assert code == -signal.SIGKILL
    assert len(server.state.messages) == 12
    recorded = hub_rows(hub, "SELECT COALESCE(SUM(sent), 0) FROM cm_ly_messages")[0][0]
    assert recorded < 12  # the ledger had not caught up: the read-back must find the rest
    result = migrate(url, SAMPLES["slack"])
    assert result.target_summary.get("parts_found_after_crash", 0) == 12 - recorded
    check_one_by_one(server, hub)  # also fails on any part sent twice


def test_transient_failures_are_retried_and_a_business_error_fails_only_its_message(
        server: LanyingServer, tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    url = target_url(server, hub)
    # A 503, then 服务器数据库异常 (code 20000 in a 200): both retried; then 10002 (bad parameters): refused.
    server.fail_next["/message/send"] = [503, 20000, 10002]
    result = migrate(url, SAMPLES["slack"])
    summary = result.target_summary
    assert summary["ledger"]["failed"] == 1 and summary["messages_failed"] == 1
    reason = hub_rows(hub, "SELECT reason FROM cm_ly_messages WHERE state = 'failed'")[0][0]
    assert "10002" in reason
    again = migrate(url, SAMPLES["slack"])  # the next run sends the failed message, nothing else
    assert again.target_summary["messages_sent"] == 1 and "failed" not in again.target_summary["ledger"]
    check_one_by_one(server, hub)


def test_an_expired_token_stops_the_run_saying_what_to_do(server: LanyingServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chatmigrate.cli import main

    server.expire_token()
    result = CliRunner().invoke(main, ["migrate", str(SAMPLES["slack"]), "--to", target_url(server, tmp_path / "h.db"),
                                       "--quiet", "--rejects", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2
    assert "10008" in result.stderr and "Token管理" in result.stderr
    assert ADMIN_TOKEN not in result.stderr + result.stdout
    assert server.state.messages == []


def test_a_missing_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, server: LanyingServer,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv("CHATMIGRATE_LANYING_TOKEN")
    from chatmigrate.errors import UsageError

    with pytest.raises(UsageError, match="CHATMIGRATE_LANYING_TOKEN"):
        migrate(target_url(server, tmp_path / "hub.db"), SAMPLES["slack"])


def _records(existing_uid: int) -> Iterator[Item]:
    merged = User(id="u-merged", source="t", source_id="U1", username="ann.smith", email="ann@example.com",
                  props={EXISTING_USER_PROP: {"target_id": str(existing_uid), "username": "ann_lanying",
                                              "email": "ann@example.com"}})
    yield merged
    yield User(id="u-new", source="t", source_id="U2", username="12345")
    yield Channel(id="c1", source="t", source_id="C1", team_id=None, name="general", kind="public",
                  member_ids=("u-merged", "u-new"))
    yield Channel(id="d1", source="t", source_id="D1", team_id=None, name="dm", kind="direct",
                  member_ids=("u-merged", "u-new"))
    yield Message(id="m1", source="t", source_id="C1/1", channel_id="c1", user_id="u-merged", created_at=T0,
                  text="root", reactions=(Reaction("tada", "u-new", T0),), is_pinned=True)
    yield Message(id="m2", source="t", source_id="C1/2", channel_id="c1", user_id="u-new",
                  created_at=T0 + timedelta(seconds=1), text="reply", thread_root_id="m1",
                  edited_at=T0 + timedelta(seconds=5))
    yield Message(id="m3", source="t", source_id="D1/1", channel_id="d1", user_id="u-new",
                  created_at=T0 + timedelta(seconds=2), text="hello ann")


def test_a_user_merged_onto_an_existing_user_is_not_registered(server: LanyingServer, tmp_path: Path) -> None:
    server.answer("POST", "/user/register/batch", {"app_id": APP_ID, "access-token": ADMIN_TOKEN}, {},
                  {"list": [{"username": "ann_lanying", "password": "pw-of-ann"}]})
    existing = server.state.user_by_name("ann_lanying")
    assert existing is not None
    url = target_url(server, tmp_path / "hub.db")
    target = target_for(url)
    try:
        found = list(target.existing_users())
    finally:
        target.close()
    assert [(u.username, u.target_id, u.id) for u in found] == [
        ("ann_lanying", str(existing["user_id"]), record_id("lanying", APP_ID, "user", str(existing["user_id"])))]
    migrate(url, source=RecordSource(lambda: _records(existing["user_id"])))
    registered = [item["username"] for body in server.routes("/user/register/batch") for item in body["list"]]
    assert registered == [username("12345")]  # the merged user is not registered (the test made ann_lanying)
    assert username("12345") == "u_12345"
    profiles = [item["user_id"] for body in server.routes("/user/profile/batch") for item in body["list"]]
    assert existing["user_id"] not in profiles  # an existing user's profile is left alone
    by_content = {m.content: m for m in server.state.messages}
    assert by_content["root"].from_uid == existing["user_id"]
    root_ext = json.loads(by_content["root"].ext)["chatmigrate"]
    assert root_ext["pinned"] is True and root_ext["reactions"][0]["emoji"] == "tada"
    assert root_ext["ts"] == "2023-04-05T06:07:08Z"
    reply_ext = json.loads(by_content["reply"].ext)["chatmigrate"]
    assert reply_ext["thread_root"] == {"id": "m1", "msg_id": by_content["root"].msg_id}
    assert reply_ext["edited_at"] == "2023-04-05T06:07:13Z"
    dm = by_content["hello ann"]
    assert dm.to_type == 1 and dm.to_id == existing["user_id"]
    assert [b["transaction_id"] for b in server.routes("/message/send")] == [
        transaction_id(m, 0) for m in ("m3", "m1", "m2")]  # conversations by name ("dm", "general"), each in order


def test_validate_says_what_lanying_cannot_carry(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chatmigrate.cli import main

    # Offline: a dry run reads nothing from the server (there is none at this address).
    result = CliRunner().invoke(main, ["validate", str(SAMPLES["slack"]), "--to",
                                       f"lanying+http://127.0.0.1:9?app_id={APP_ID}&hub=sqlite:///{tmp_path}/h.db",
                                       "--json"])
    assert result.exit_code == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    for code in ("CM501", "CM502", "CM503", "CM504", "CM508"):
        assert findings.get(code), code
    assert not (tmp_path / "h.db").exists()


def test_pacing_keeps_the_rate_and_slows_down_on_errors() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = Pacer(10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        pacer.wait()
    assert now[0] == pytest.approx(1.0)
    pacer.failed()
    pacer.wait()
    pacer.wait()
    assert waits[-1] == pytest.approx(0.2)
    for _ in range(20):
        pacer.succeeded()
    assert pacer.factor == 1.0


def test_url_options_are_checked() -> None:
    from chatmigrate.errors import UsageError

    for url, words in (("lanying://api.example.com", "app_id"), ("lanying://api.example.com?app_id=a&speed=3", "speed"),
                       ("lanying://api.example.com?app_id=a&rate=fast", "rate"),
                       ("lanying://admin:tok@api.example.com?app_id=a", "environment")):
        with pytest.raises(UsageError, match=words):
            target_for(url)
    target = target_for("lanying://api.example.com?app_id=a")
    assert target.safe_url == "lanying://api.example.com?app_id=a"
    assert target.base_url == "https://api.example.com"  # type: ignore[attr-defined]


def test_checks_report_names_files_and_what_has_no_place(tmp_path: Path) -> None:
    from chatmigrate.model import Emoji, File, Team

    def records() -> Iterator[Item]:
        yield Team(id="t1", source="t", source_id="T1", name="acme")
        yield User(id="u1", source="t", source_id="U1", username="jane.doe")
        yield User(id="u2", source="t", source_id="U2", username="jane_doe")
        yield Emoji(id="e1", source="t", source_id="party", name="party")
        yield Channel(id="c1", source="t", source_id="C1", team_id="t1", name="general", kind="public",
                      member_ids=("u1", "u2"))
        yield Message(id="m1", source="t", source_id="C1/1", channel_id="c1", user_id="u1", created_at=T0,
                      text="see file", files=(File(id="f1", source="t", source_id="F1", name="plan.pdf",
                                                   props={"missing": True}),))

    target = target_for(f"lanying+http://127.0.0.1:9?app_id={APP_ID}&hub=sqlite:///{tmp_path}/h.db")
    try:
        result = pipeline.run(RecordSource(records), target, pipeline.RunOptions("validate", "records", progress=False),
                              dry_run=True)
    finally:
        target.close()
    counts = result.sink.counts
    assert counts["CM505"] == 2  # jane.doe is changed; jane_doe then collides with it
    assert counts["CM506"] == 1 and counts["CM507"] == 2
