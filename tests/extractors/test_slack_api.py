"""slack-api against a loopback server speaking the Slack Web API's documented format, built from the
data of samples/slack (tests/sources/servers/slack.py): the export and API forms give the same canonical
records and ids; cursor paging, 429 + Retry-After, invalid_auth and not_in_channel; what a sync sees
(new messages and replies, edits, tombstoned roots); and `chatmigrate sync` from it after a migrate from
the export, into every SQL target and into a Mattermost package. Stream order, checkpoints, schemas and
resuming are the conformance suite's (tests/sources/)."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from chatmigrate.cli import main
from chatmigrate.errors import UsageError
from chatmigrate.extractors import detect
from chatmigrate.extractors.slack_api import TOKEN_ENV, SlackApi
from chatmigrate.extractors.slack_export import SlackExport
from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, Emoji, File, Item, Message, Skipped, Team, User
from tests.sources.servers.slack import SAMPLE, TEAM, TOKEN, FakeSlack, slack_server
from tests.test_sync import table_rows

TOKEN_VAR = "CM_TEST_SLACK_TOKEN"
GENERAL = "C0GENERAL"
ROOT = "1709280120.000300"  # the sample's thread root in #general


@pytest.fixture
def server() -> Iterator[tuple[str, FakeSlack]]:
    with slack_server() as served:
        yield served


def api(url: str, **options: str) -> SlackApi:
    return SlackApi(url, {"token": TOKEN, "page_size": "2", **options})


def records(items: list[Item]) -> dict[str, Any]:
    """Records by id; a file's bytes facts (where they are: the export's __uploads/) left out."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Message):
            item = dataclasses.replace(item, files=tuple(_linked(f) for f in item.files))
        if isinstance(item, Team | User | Channel | Message | Emoji):
            out.setdefault(item.id, item)
    return out


def _linked(file: File) -> File:
    props = {k: v for k, v in file.props.items() if k not in ("missing", "missing_reason")}
    return dataclasses.replace(file, path=None, sha256=None, size=None, props=props)


def slack_id(kind: str, key: str) -> str:
    return record_id("slack", TEAM, kind, key)


def test_export_and_api_forms_give_the_same_records_and_ids(server: tuple[str, FakeSlack]) -> None:
    url, state = server
    from_api = records(list(api(url).records()))
    from_export = records(list(SlackExport(str(SAMPLE)).records()))
    assert {k: v for k, v in from_api.items() if k in from_export} == from_export
    extra = {type(v).__name__: v for k, v in from_api.items() if k not in from_export}
    # The API has what an export cannot: custom emoji, and the root the export's date range cut off.
    assert sorted(type(v).__name__ for k, v in from_api.items() if k not in from_export) == ["Emoji", "Emoji",
                                                                                           "Message"]
    assert extra["Message"].source_id == f"{GENERAL}/1709000000.000100"
    emoji = {v.name: v for v in from_api.values() if isinstance(v, Emoji)}
    assert emoji["partyparrot"].props == {"aliases": ["parrot"]} and emoji["shipit"].file.name == "shipit.png"
    # Paging: every list came in pages of two, following response_metadata.next_cursor.
    assert sum("cursor=" in entry for entry in state.log if entry.startswith("users.list")) >= 4
    assert any(entry.startswith("conversations.replies") and f"ts={ROOT}" in entry for entry in state.log)


def test_scope_is_the_workspace_and_ids_follow_the_export_keys(server: tuple[str, FakeSlack]) -> None:
    url, _state = server
    source = api(url)
    assert source.scope == TEAM == SlackExport(str(SAMPLE)).scope
    items = list(source.records())
    messages = {m.source_id: m for m in items if isinstance(m, Message)}
    reply = messages[f"{GENERAL}/1709280180.000500"]
    assert reply.id == slack_id("message", f"{GENERAL}/1709280180.000500")
    assert reply.thread_root_id == slack_id("message", f"{GENERAL}/{ROOT}")
    cursors = {c.channel_id: c.cursor for c in items if isinstance(c, Checkpoint)}
    assert cursors[slack_id("channel", GENERAL)] == "1709366940.001000"  # the newest ts read


def test_a_429_is_waited_for_as_retry_after_says(server: tuple[str, FakeSlack]) -> None:
    url, state = server
    state.rate_limit_once = {"conversations.history", "users.list"}
    state.limited_body_once = {"emoji.list"}
    source = api(url)
    items = list(source.records())
    assert source.http.waited >= 3.0  # Retry-After: 1, three times
    assert sum(e.startswith("emoji.list") for e in state.log) == 2
    assert sum(isinstance(m, Message) for m in items) == 35


def test_a_refused_token_is_a_usage_error_without_the_token(server: tuple[str, FakeSlack]) -> None:
    url, _state = server
    wrong = "xoxb-wrong-token-that-must-not-show"
    with pytest.raises(UsageError) as caught:
        list(SlackApi(url, {"token": wrong}).records())
    assert "invalid_auth" in str(caught.value) and wrong not in str(caught.value)


def test_a_conversation_closed_to_the_token_is_skipped_the_rest_read(server: tuple[str, FakeSlack]) -> None:
    url, state = server
    state.closed = {"G0SECRET1"}
    items = list(api(url).records())
    [skipped] = [i for i in items if isinstance(i, Skipped) and i.record_kind == "channel_history"]
    assert "not_in_channel" in skipped.reason and "secret-plans" in skipped.reason
    checkpointed = {c.channel_id for c in items if isinstance(c, Checkpoint)}
    assert slack_id("channel", "G0SECRET1") not in checkpointed and slack_id("channel", GENERAL) in checkpointed
    assert not [m for m in items if isinstance(m, Message) and m.channel_id == slack_id("channel", "G0SECRET1")]


def test_token_from_the_environment_and_detection(monkeypatch: pytest.MonkeyPatch,
                                                  server: tuple[str, FakeSlack]) -> None:
    url, _state = server
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(UsageError, match=TOKEN_ENV):
        SlackApi(url, {})
    monkeypatch.setenv("MY_SLACK", TOKEN)
    assert SlackApi(url, {"token_env": "MY_SLACK"}).scope == TEAM
    assert SlackApi.detect("https://slack.com/api") and SlackApi.detect("https://acme.slack.com/api/")
    assert not SlackApi.detect(url) and not SlackApi.detect("https://slack.com") and not SlackApi.detect(str(SAMPLE))
    assert detect(str(SAMPLE)) is SlackExport


def test_a_sync_sees_new_messages_replies_edits_and_tombstones(server: tuple[str, FakeSlack]) -> None:
    url, state = server
    first = list(api(url).records())
    cursors = {c.channel_id: c.cursor for c in first if isinstance(c, Checkpoint)}
    state.post(GENERAL, {"type": "message", "ts": "1709370000.000100", "user": "U0BOB0002", "text": "New"})
    state.post(GENERAL, {"type": "message", "ts": "1709370060.000200", "user": "U0CAROL03", "text": "Late reply",
                         "thread_ts": ROOT})
    state.edit(GENERAL, "1709287200.000400", "Pinned: the rules, edited", "1709370120.000000")
    state.delete(GENERAL, "1709287320.000800")  # no replies: gone, which the Web API cannot show
    state.delete(GENERAL, ROOT)  # has replies: kept as a tombstone
    source = api(url)
    state.log.clear()
    handed = {c: source.rewind(v, 0) for c, v in cursors.items()}
    again = list(source.records(since=handed))
    changed = {m.source_id.split("/")[1]: m for m in again if isinstance(m, Message)}
    # The sample's older tombstone, within the lookback, comes again: a deletion cannot say when it
    # happened, so every tombstone of the window is news (unchanged, it writes nothing).
    assert set(changed) == {"1709370000.000100", "1709370060.000200", "1709287200.000400", ROOT,
                            "1709366460.000200"}
    assert changed["1709287200.000400"].text == "Pinned: the rules, edited"
    assert changed[ROOT].kind == "tombstone" and changed[ROOT].deleted_at is not None
    assert changed["1709370060.000200"].thread_root_id == slack_id("message", f"{GENERAL}/{ROOT}")
    after = {c.channel_id: c.cursor for c in again if isinstance(c, Checkpoint)}
    assert after[slack_id("channel", GENERAL)] == "1709370060.000200"
    assert after[slack_id("channel", "C0RANDOM1")] == cursors[slack_id("channel", "C0RANDOM1")]  # nothing newer
    # Each history was asked from its cursor minus the 7-day lookback, never whole (but the channel
    # without messages, whose cursor is empty).
    history = [e for e in state.log if e.startswith("conversations.history") and "C0NOFOLDR" not in e]
    assert history and all("oldest=" in e for e in history)
    assert any(f"channel={GENERAL}" in e and "oldest=1708762140.001000" in e for e in history)


def test_rewind_keeps_the_ts_format() -> None:
    source = SlackApi("https://slack.com/api", {"token": TOKEN})
    assert source.rewind("1709366940.001000", 3600) == "1709363340.001000"
    assert source.rewind("1709366940.001000", 0.5) == "1709366939.501000"
    assert source.rewind("", 60) == "" and source.rewind("garbage", 60) == "garbage"


# -- chatmigrate sync from the API, after a migrate from the export --------------------------------------
def cli(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, env={TOKEN_VAR: TOKEN, TOKEN_ENV: None})


def sync_config(tmp_path: Path, url: str, target: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(f"""target = "{target}"
rejects = "rejects.jsonl"

[[source]]
from = "slack-api"
location = "{url}"
overlap_minutes = 60
options = {{ token_env = "{TOKEN_VAR}", page_size = 3 }}
""", encoding="utf-8")
    return path


def change_the_workspace(state: FakeSlack) -> None:
    """What happens in Slack after the export: a new message, a new reply to an old thread, an edit."""
    state.post(GENERAL, {"type": "message", "ts": "1709370000.000100", "user": "U0BOB0002", "text": "After the export"})
    state.post(GENERAL, {"type": "message", "ts": "1709370060.000200", "user": "U0CAROL03", "text": "Late reply",
                         "thread_ts": ROOT})
    state.edit(GENERAL, "1709366820.000800", "日本語のテキスト, edited", "1709370120.000000")


def test_migrate_from_the_export_then_sync_from_the_api_meets_the_same_rows(
        server: tuple[str, FakeSlack], db_url: str, tmp_path: Path) -> None:
    url, state = server
    first = cli(["migrate", str(SAMPLE), "--to", db_url, "-q", "--rejects", str(tmp_path / "r.jsonl")])
    assert first.exit_code in (0, 1), first.output + first.stderr
    before = {r["id"]: r for r in table_rows(db_url, "cm_messages")}
    users_before = len(table_rows(db_url, "cm_users"))
    change_the_workspace(state)
    state.log.clear()
    synced = cli(["sync", str(sync_config(tmp_path, url, db_url)), "--json"])
    assert synced.exit_code in (0, 1), synced.output + synced.stderr
    after = {r["id"]: r for r in table_rows(db_url, "cm_messages")}
    # Everything the export held is met by id (no duplicate); new: the 2 messages posted since (a sync reads
    # what changed after each cursor, so the older root the export's date range cut off stays out).
    assert set(before) <= set(after) and len(after) == len(before) + 2
    edited = after[slack_id("message", f"{GENERAL}/1709366820.000800")]
    assert edited["text"] == "日本語のテキスト, edited" and edited["edited_at"] is not None
    late = after[slack_id("message", f"{GENERAL}/1709370060.000200")]
    assert late["thread_root_id"] == slack_id("message", f"{GENERAL}/{ROOT}")
    assert len(table_rows(db_url, "cm_users")) == users_before  # the API's users are the export's rows
    state_rows = {r["channel_id"]: r["cursor"] for r in table_rows(db_url, "cm_sync_state") if r["source"] == "slack"}
    assert state_rows[slack_id("channel", GENERAL)] == "1709370060.000200"
    # The overlap window went to the server: #general's history asked from its cursor (1709366940.001000
    # after the migrate) minus 60 minutes minus the 7-day lookback; a second sync writes nothing.
    assert any(f"channel={GENERAL}" in e and "oldest=1708758540.001000" in e for e in state.log)
    again = cli(["sync", str(sync_config(tmp_path, url, db_url)), "--json"])
    assert again.exit_code in (0, 1), again.stderr
    assert json.loads(again.output)["sources"][0]["rows_written"] == 0
    for text in (synced.output, synced.stderr, again.output, json.dumps(table_rows(db_url, "cm_runs"), default=str)):
        assert TOKEN not in text


def test_sync_from_the_api_writes_a_mattermost_delta_package(server: tuple[str, FakeSlack], tmp_path: Path) -> None:
    url, state = server
    (tmp_path / "pkg").mkdir()
    package = f"mattermost-import://{tmp_path}/pkg/acme.zip?delta=true&default_email_domain=example.com"
    first = cli(["migrate", str(SAMPLE), "--to", package, "-q", "--json", "--rejects", str(tmp_path / "r.jsonl")])
    assert first.exit_code in (0, 1), first.output + first.stderr
    assert json.loads(first.output)["target_output"]["number"] == 1
    change_the_workspace(state)
    synced = cli(["sync", str(sync_config(tmp_path, url, package)), "--json"])
    assert synced.exit_code in (0, 1), synced.output + synced.stderr
    delta = tmp_path / "pkg" / "acme-0002.zip"
    assert json.loads(synced.output)["sources"][0]["target_output"]["package"] == str(delta)
    with zipfile.ZipFile(delta) as archive:
        lines = [json.loads(line) for line in archive.read("mattermost_import.jsonl").splitlines()]
    posts = [line["post"] for line in lines if line["type"] == "post"]
    texts = {p["message"] for p in posts}
    replies = {r["message"] for p in posts for r in p.get("replies", ())}
    assert "After the export" in texts and "Late reply" in replies and "日本語のテキスト, edited" in texts


def test_the_readme_example_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatmigrate.sync import load_config
    section = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split(
        "## Slack Web API", 1)[1]
    path = tmp_path / "sync.toml"
    path.write_text(section.split("```toml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-example")
    [source] = load_config(path).sources
    assert source.name == "slack-api" and source.options["token"] == "xoxb-example"
