"""The Slack export extractor on samples/slack (folder and zip) and on crafted bad input."""

from __future__ import annotations

import json
import shutil
import tracemalloc
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from chatmigrate.errors import InputError
from chatmigrate.extractors.slack_export import SlackExport, parse_ts
from chatmigrate.model import Channel, Message, Unreadable, User

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "slack"


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target


def items(location: Path | str) -> list:
    return list(SlackExport(str(location)).records())


def by_source_id(records: list, cls: type) -> dict:
    return {r.source_id: r for r in records if isinstance(r, cls)}


def test_detect() -> None:
    assert SlackExport.detect(str(SAMPLE))
    assert not SlackExport.detect(str(SAMPLE / "users.json"))
    assert not SlackExport.detect(str(SAMPLE / "general"))
    assert not SlackExport.detect("/nonexistent/path")


def test_sample_counts_and_kinds() -> None:
    records = items(SAMPLE)
    kinds = Counter(type(r).__name__ for r in records)
    # 9 in users.json + 3 discovered from messages (Slack Connect profile, a webhook bot, Slackbot)
    assert kinds["User"] == 12
    assert kinds["Channel"] == 8  # 4 public, 1 private, 2 DMs, 1 group DM
    assert kinds["Message"] == 35
    assert kinds["Checkpoint"] == 7  # one per conversation folder; empty-channel has none
    assert kinds["Unreadable"] == 0
    channels = by_source_id(records, Channel)
    assert {c.kind for c in channels.values()} == {"public", "private", "direct", "group"}
    assert channels["D0CAROLSLF"].member_ids == (channels["D0CAROLSLF"].member_ids[0],)  # self-DM deduplicated
    assert channels["C0GENERAL"].topic == "Company-wide & announcements"


def test_users_roles_and_flags() -> None:
    users = by_source_id(items(SAMPLE), User)
    assert users["U0ALICE01"].role == "owner" and users["U0ALICE01"].email == "alice@example.com"
    assert users["U0CAROL03"].email is None and users["U0CAROL03"].role == "admin"
    assert users["U0DAVE004"].is_deleted
    assert users["U0ERIN005"].role == "guest" and users["U0FRANK06"].props["is_ultra_restricted"]
    assert users["U0DEPLOY7"].is_bot and users["U0WORKFL9"].is_bot
    assert users["W0GRID008"].props["enterprise_user"]["enterprise_id"] == "E0ENTERP1"
    assert users["U0EXTERN1"].username == "xavier.ext"  # from the message's user_profile snapshot
    assert users["B0HOOK001"].is_bot and users["B0HOOK001"].username == "CI Pipeline"
    assert users["USLACKBOT"].username == "slackbot"


def test_messages_threads_reactions_files() -> None:
    records = items(SAMPLE)
    messages = by_source_id(records, Message)
    root = messages["C0GENERAL/1709280120.000300"]
    replies = [m for m in messages.values() if m.thread_root_id == root.id]
    assert {m.source_id for m in replies} == {"C0GENERAL/1709280180.000500", "C0GENERAL/1709280240.000600",
                                              "C0GENERAL/1709366400.000100"}  # across two day files
    assert messages["C0GENERAL/1709280240.000600"].props["subtype"] == "thread_broadcast"
    assert root.text.startswith("Thread root: **bold**, _italic_, ~~strike~~")
    assert root.props["source_text"].startswith("Thread root: *bold*")
    assert [(r.emoji) for r in root.reactions] == ["thumbsup::skin-tone-2", "thumbsup::skin-tone-2", "tada",
                                                   "partyparrot"]
    assert root.props["reaction_counts"] == {"tada": 25}
    welcome = messages["C0GENERAL/1709280060.000200"]
    assert welcome.text == ("Welcome @bob and @carol! See ~releases & read "
                            "[the *handbook*](https://example.com/handbook?a=1&b=2). @here")
    assert messages["C0GENERAL/1709280180.000500"].edited_at is not None
    assert messages["C0GENERAL/1709287200.000400"].is_pinned
    assert messages["C0GENERAL/1709287260.000700"].kind == "me"
    assert messages["C0GENERAL/1709280000.000100"].kind == "system_join"
    bot = messages["C0GENERAL/1709290800.000900"]
    assert bot.kind == "bot" and bot.user_id is not None and bot.props["attachments"][0]["title"] == "Build 42"
    tombstone = messages["C0GENERAL/1709366460.000200"]
    assert tombstone.kind == "tombstone" and tombstone.deleted_at is not None
    assert messages["C0GENERAL/1709366520.000300"].thread_root_id == tombstone.id
    shared = messages["C0GENERAL/1709287320.000800"]
    diagram, gone = shared.files
    assert diagram.path == "__uploads/F0FILE001/diagram.png" and diagram.size == 70 and len(diagram.sha256) == 64
    assert "xoxe" not in diagram.source_url and "t=***" in diagram.source_url
    assert gone.props["deleted"] is True
    old_style = messages["C0GENERAL/1709366640.000500"]
    assert old_style.files[0].name == "notes.txt" and "xoxe" not in old_style.files[0].source_url


def test_ids_stable_and_zip_equals_folder(tmp_path: Path) -> None:
    folder = items(SAMPLE)
    archive = items(zip_folder(SAMPLE, tmp_path / "export.zip"))
    assert [getattr(r, "id", r) for r in folder] == [getattr(r, "id", r) for r in archive]
    assert folder == archive  # origins differ (zip member names) but are excluded from equality
    assert all(r.origin is not None for r in folder if hasattr(r, "origin"))


def test_zip_with_top_folder(tmp_path: Path) -> None:
    target = tmp_path / "export.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(SAMPLE.rglob("*")):
            if path.is_file():
                archive.write(path, "My Workspace Slack export/" + path.relative_to(SAMPLE).as_posix())
    assert SlackExport.detect(str(target))
    assert len([r for r in items(target) if isinstance(r, Message)]) == 35


def test_parse_ts_keeps_microseconds() -> None:
    assert parse_ts("1595859977.000300").microsecond == 300
    assert parse_ts("1595859977.9").microsecond == 900000
    assert parse_ts("1595859977").second == 17
    assert parse_ts("not-a-ts") is None and parse_ts(None) is None and parse_ts("1.2.3") is None


def _broken_export(tmp_path: Path, day_file: str | bytes) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    data = day_file.encode() if isinstance(day_file, str) else day_file
    (folder / "random" / "2024-02-11.json").write_bytes(data)
    return folder


def test_day_file_not_json_is_a_located_reject(tmp_path: Path) -> None:
    folder = _broken_export(tmp_path, '[\n    {"type": "message", "ts": "1707652800.000100", "text": "ok"},\n'
                                      '    {"type": "message", "ts": \n')
    records = items(folder)
    bad = [r for r in records if isinstance(r, Unreadable)]
    assert len(bad) == 1 and bad[0].code == "CM001"
    assert str(bad[0].origin).startswith("random/2024-02-11.json:")
    # the readable part of the file is kept
    assert any(isinstance(r, Message) and r.source_id == "C0RANDOM1/1707652800.000100" for r in records)


def test_unreadable_ts_and_non_object(tmp_path: Path) -> None:
    folder = _broken_export(tmp_path, json.dumps([{"type": "message", "ts": "yesterday", "text": "x"}, 42], indent=4))
    bad = [r for r in items(folder) if isinstance(r, Unreadable)]
    assert sorted(r.code for r in bad) == ["CM002", "CM004"]
    assert {str(r.origin) for r in bad} == {"random/2024-02-11.json:2", "random/2024-02-11.json:7"}


def test_unsafe_zip_entries_are_refused(tmp_path: Path) -> None:
    archive = zip_folder(SAMPLE, tmp_path / "evil.zip", {"../escape.json": b"[]", "/etc/passwd.json": b"[]"})
    bad = [r for r in items(archive) if isinstance(r, Unreadable)]
    assert sorted(r.raw for r in bad) == ["../escape.json", "/etc/passwd.json"]
    assert all(r.code == "CM003" for r in bad)


def test_symlink_out_of_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    secret = tmp_path / "secret.json"
    secret.write_text("[]")
    (folder / "random" / "2024-02-12.json").symlink_to(secret)
    bad = [r for r in items(folder) if isinstance(r, Unreadable)]
    assert [r.raw for r in bad] == ["random/2024-02-12.json"]


def test_truncated_zip_is_an_input_error(tmp_path: Path) -> None:
    archive = zip_folder(SAMPLE, tmp_path / "export.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(InputError):
        list(SlackExport(str(truncated)).records())


def test_folder_without_listing_is_rejected_not_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    (folder / "ghost-channel").mkdir()
    (folder / "ghost-channel" / "2024-01-01.json").write_text('[{"type": "message", "ts": "1704067200.0"}]')
    bad = [r for r in items(folder) if isinstance(r, Unreadable)]
    assert [r.code for r in bad] == ["CM005"]


def test_memory_does_not_grow_with_day_files(tmp_path: Path) -> None:
    """Stream one day file at a time: peak memory for 40 days ≈ peak for 400 days."""

    def build(days: int) -> Path:
        folder = tmp_path / f"export{days}"
        folder.mkdir()
        (folder / "users.json").write_text(json.dumps([{"id": "U1", "name": "a", "team_id": "T1"}]))
        (folder / "channels.json").write_text(json.dumps([{"id": "C1", "name": "big", "members": ["U1"]}]))
        (folder / "big").mkdir()
        for day in range(days):
            base = 1600000000 + day * 86400
            msgs = [{"type": "message", "user": "U1", "ts": f"{base + i}.000000", "text": "x" * 200}
                    for i in range(100)]
            (folder / "big" / f"2020-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}-{day}.json").write_text(
                json.dumps(msgs))
        return folder

    def peak(folder: Path) -> int:
        tracemalloc.start()
        for _ in SlackExport(str(folder)).records():
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(build(40)), peak(build(400))
    assert large < small * 1.5 + 200_000, (small, large)
