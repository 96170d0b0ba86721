"""Issue 12: inputs a hostile (or unlucky) user gives, one regression test per numbered item at least.

Corrupt zip members (1), lone surrogates in ids (2), invalid UTF-8 (3), fields of the wrong JSON type in
every file form (4, 8), zip and gzip bombs and overlapping zip entries (6), honest accounting of
unreadable files (10), truncated Rocket.Chat collections (11), and what detection says about a path
that is missing or an archive that is unreadable (15). Every run goes through the CLI in-process: no
exit 3, every count balances, and what could not be read is a located finding.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import tracemalloc
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util
from click.testing import CliRunner

from chatmigrate.cli import main
from chatmigrate.errors import InputError
from chatmigrate.extractors import _bson, detect
from chatmigrate.extractors._limits import CappedReader
from chatmigrate.extractors.slack_export import SlackExport
from chatmigrate.ids import CHATMIGRATE_NAMESPACE, record_id
from chatmigrate.model import Message

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SLACK = SAMPLES / "slack"
MM = SAMPLES / "mattermost"
RC = SAMPLES / "rocketchat" / "dump"


# -- helpers -----------------------------------------------------------------------------------------
def run(*args: str, cwd: Path) -> tuple[int, dict[str, Any] | None, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code != 3 and "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout) if result.stdout.strip() else None
    if data is not None:
        for kind, c in data["counts"].items():
            assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], (kind, c)
    return result.exit_code, data, result.stderr


def rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def slack_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "slack"
    shutil.copytree(SLACK, folder)
    return folder


def edit_json(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=4))  # ensure_ascii: lone surrogates written as \\udxxx


def zip_folder(folder: Path, target: Path, level: int | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def member_data_offset(archive: Path, name: str) -> int:
    """Where a member's compressed bytes start (after its local header)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    data = archive.read_bytes()
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def poke(path: Path, offset: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(value)] = value
    path.write_bytes(bytes(data))


# -- 1: a corrupt member inside a zip --------------------------------------------------------------------
def test_corrupt_slack_zip_member_is_one_unreadable_file_and_the_rest_loads(tmp_path: Path) -> None:
    archive = zip_folder(SLACK, tmp_path / "slack.zip")
    # 0xFF opens a deflate block of the reserved type 3: zlib fails at once ("invalid block type").
    poke(archive, member_data_offset(archive, "general/2024-03-01.json"), b"\xff")
    db = tmp_path / "out.db"
    code, data, _ = run("migrate", str(archive), "--to", f"sqlite:///{db}", "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    assert data["findings"]["CM001"] == 1
    assert data["counts"]["export_files"]["rejected"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM001"]
    assert line["location"] == "slack.zip:general/2024-03-01.json" and "corrupt" in line["findings"][0]["message"]
    assert line["record"] == {"file": "slack.zip:general/2024-03-01.json"}
    with sqlite3.connect(db) as conn:
        texts = {row[0] for row in conn.execute("select text from cm_messages")}
        status = conn.execute("select status from cm_runs").fetchone()[0]
    assert "Reply on the next day, @devs @channel" in texts  # general's other day file loaded
    assert data["counts"]["messages"]["loaded"] == 21 and status == "rejects"  # the whole run, not a partial one


def test_corrupt_mattermost_attachment_member_leaves_its_message_and_marks_the_file(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    shutil.copy(MM / "export.zip", archive)
    with zipfile.ZipFile(archive) as zf:
        name = next(n for n in zf.namelist() if n.endswith("notes.txt"))
    poke(archive, member_data_offset(archive, name), b"\xff")
    code, data, _ = run("validate", str(archive), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    assert data["findings"]["CM001"] == 1 and data["counts"]["export_files"]["rejected"] == 1
    clean = run("validate", str(MM / "export.zip"), cwd=tmp_path)[1]
    assert clean is not None and data["counts"]["messages"] == clean["counts"]["messages"]
    assert data["counts"]["files"] == clean["counts"]["files"]  # the file's metadata still loads (missing)
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM001"]
    assert line["location"] == f"export.zip:{name}"


def test_mattermost_jsonl_member_corrupt_part_way_keeps_the_lines_before(tmp_path: Path) -> None:
    lines = (MM / "export.jsonl").read_bytes().splitlines()
    post = json.loads(next(line for line in lines if line.startswith(b'{"type":"post"')))
    extra = []
    for n in range(1500):  # enough lines for several stored deflate blocks
        body = {k: v for k, v in post["post"].items() if k not in ("replies", "reactions", "attachments")}
        extra.append(json.dumps({"type": "post", "post": {**body, "create_at": body["create_at"] + n + 1,
                                                          "message": f"filler {n:05d} " + "x" * 40}}).encode())
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=0) as zf:
        zf.writestr("import.jsonl", b"\n".join(lines + extra) + b"\n")
    # Level 0 writes stored blocks (1 header byte, LEN, NLEN, data): a wrong NLEN in the second block
    # makes zlib fail there ("invalid stored block lengths"), after the first block was read.
    start = member_data_offset(archive, "import.jsonl")
    (first_len,) = struct.unpack("<H", archive.read_bytes()[start + 1:start + 3])
    poke(archive, start + 5 + first_len + 3, b"\x00\x00")
    code, data, err = run("validate", str(archive), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None, err
    assert data["counts"]["export_files"] == {"read": 1, "added": 0, "loaded": 0, "rejected": 1, "skipped": 0}
    assert 0 < data["counts"]["messages"]["loaded"] < len(extra)
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["kind"] == "export_files"]
    assert line["location"].startswith("big.zip:import.jsonl:") and "the rest of the file" in \
        line["findings"][0]["message"]


# -- 2: lone surrogates in id fields --------------------------------------------------------------------
def test_record_id_of_a_lone_surrogate_is_deterministic() -> None:
    """uuid5 computed by hand (uuid.uuid5 cannot encode the key), over the surrogatepass bytes."""
    key = "C0GENERAL/\ud800"
    digest = bytearray(hashlib.sha1(CHATMIGRATE_NAMESPACE.bytes + f"slack|T|message|{key}".encode(
        "utf-8", "surrogatepass")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    expected = uuid.UUID(bytes=bytes(digest))
    assert record_id("slack", "T", "message", key) == str(expected) == record_id("slack", "T", "message", key)


def test_lone_surrogates_in_slack_ids_are_findings_not_a_crash(tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)

    def day(doc: list[dict[str, Any]]) -> None:
        doc[1]["user"] = "U0ALICE01\ud800"
        doc[2]["thread_ts"] = "\ud800"
        doc[3]["ts"] = "1709280180.000400\udfff"  # CM004: a reject holding a lone surrogate

    edit_json(folder / "general" / "2024-03-01.json", day)
    edit_json(folder / "channels.json", lambda doc: doc[0]["members"].append("U0BOB\ud800"))
    code, data, _ = run("validate", str(folder), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    assert data["findings"]["CM120"] == 3  # user, thread_ts (messages), members[7] (channel)
    assert data["findings"]["CM004"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM004"]
    assert line["record"]["ts"] == "1709280180.000400\udfff"  # kept exactly, as a \\udfff escape
    assert "\\udfff" in (tmp_path / "r.jsonl").read_text()


# -- 3: invalid UTF-8 in a Mattermost line ----------------------------------------------------------------
def test_invalid_utf8_in_a_mattermost_channel_field_rejects_that_line(tmp_path: Path) -> None:
    lines = (MM / "export.jsonl").read_bytes().split(b"\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(b'{"type":"post","post":{"team"'))
    lines[at] = lines[at].replace(b'"channel":"', b'"channel":"\xff\xfe', 1)
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"\n".join(lines))
    code, data, _ = run("validate", str(export), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None and data["findings"]["CM001"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM001"]
    assert line["location"] == f"export.jsonl:{at + 1}" and "UTF-8" in line["findings"][0]["message"]
    clean = run("validate", str(MM / "export.jsonl"), cwd=tmp_path)[1]
    assert clean is not None
    assert data["counts"]["messages"]["loaded"] == clean["counts"]["messages"]["loaded"] - 1


# -- 4 and 8: fields of the wrong JSON type, in every file form ----------------------------------------------
def test_slack_members_a_number_and_subtype_an_object(tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)
    edit_json(folder / "channels.json", lambda doc: doc[0].update(members=5))
    edit_json(folder / "general" / "2024-03-01.json", lambda doc: doc[0].update(subtype={"a": 1}))
    db = tmp_path / "out.db"
    code, data, _ = run("migrate", str(folder), "--to", f"sqlite:///{db}", cwd=tmp_path)
    assert code == 0 and data is not None and data["findings"]["CM120"] == 2
    with sqlite3.connect(db) as conn:
        props = [json.loads(p) for (p,) in conn.execute("select props from cm_channels where name = 'general'")]
        kinds = {k for (k,) in conn.execute("select kind from cm_messages where source_id = ?",
                                            ("C0GENERAL/1709280000.000100",))}
    assert props[0]["unreadable_fields"] == {"members": 5}
    assert kinds == {"normal"}  # the subtype was unreadable: no system kind invented


@pytest.mark.parametrize("user", [12, {"id": "U0ALICE01"}, ["U0ALICE01"], True])
def test_slack_message_user_of_the_wrong_type_is_a_finding_and_kept(user: Any, tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)
    edit_json(folder / "general" / "2024-03-01.json", lambda doc: doc[1].update(user=user))
    code, data, _ = run("validate", str(folder), cwd=tmp_path)
    assert code == 0 and data is not None and data["findings"]["CM120"] == 1
    message = next(m for m in SlackExport(str(folder)).records()
                   if isinstance(m, Message) and m.source_id == "C0GENERAL/1709280060.000200")
    assert message.user_id is None and message.props["unreadable_fields"] == {"user": user}


# (file, how to reach the record, field, wrong value): one per record kind and file form.
SLACK_CASES = [
    ("users.json", lambda d: d[0], "name", 42), ("users.json", lambda d: d[0]["profile"], "email", ["a@b"]),
    ("users.json", lambda d: d[0], "deleted", "yes"), ("channels.json", lambda d: d[0], "topic", "plain"),
    ("channels.json", lambda d: d[0], "name", {"n": 1}), ("dms.json", lambda d: d[0], "members", {"U0": 1}),
    ("general/2024-03-01.json", lambda d: d[1], "text", 7),
    ("general/2024-03-01.json", lambda d: d[1], "thread_ts", 1709280060),
    ("general/2024-03-01.json", lambda d: d[1], "edited", "yesterday"),
    ("general/2024-03-01.json", lambda d: d[1], "reactions", {"name": "tada"}),
    ("general/2024-03-01.json", lambda d: d[1], "files", [{"id": "F1", "size": "big", "name": 3}]),
]


@pytest.mark.parametrize(("file", "where", "field", "value"), SLACK_CASES)
def test_any_slack_field_of_the_wrong_type_is_a_finding(file: str, where: Any, field: str, value: Any,
                                                        tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)
    edit_json(folder / file, lambda doc: where(doc).update({field: value}))
    code, data, _ = run("migrate", str(folder), "--to", f"sqlite:///{tmp_path / 'o.db'}", cwd=tmp_path)
    assert code in (0, 1) and data is not None
    assert data["findings"].get("CM120", 0) >= 1, data["findings"]


MM_CASES = [
    ("user", "teams", 5), ("user", "roles", ["system_admin"]), ("user", "email", 12),
    ("channel", "display_name", {"x": 1}), ("channel", "header", 3), ("team", "display_name", []),
    ("direct_channel", "members", 7), ("post", "message", 99), ("post", "props", "text"),
    ("post", "is_pinned", "true"), ("emoji", "image", 1),
]


@pytest.mark.parametrize(("line_type", "field", "value"), MM_CASES)
def test_any_mattermost_field_of_the_wrong_type_is_a_finding(line_type: str, field: str, value: Any,
                                                             tmp_path: Path) -> None:
    lines = [json.loads(line) for line in (MM / "export.jsonl").read_text().splitlines() if line.strip()]
    target = next(doc for doc in lines if doc["type"] == line_type)
    target[line_type][field] = value
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(json.dumps(doc) for doc in lines) + "\n")
    shutil.copytree(MM / "data", tmp_path / "data")
    code, data, _ = run("migrate", str(export), "--to", f"sqlite:///{tmp_path / 'o.db'}", cwd=tmp_path)
    assert code in (0, 1) and data is not None
    # A record left without what it cannot do without (a DM without members) is rejected instead (CM002).
    assert data["findings"].get("CM120", 0) + data["findings"].get("CM002", 0) >= 1, data["findings"]


RC_CASES = [
    ("users", "name", 12), ("users", "emails", "a@b.c"), ("users", "roles", "admin"),
    ("rocketchat_room", "topic", bson.Int64(5)), ("rocketchat_room", "usernames", 3),
    ("rocketchat_message", "msg", 12), ("rocketchat_message", "u", "alice"),
    ("rocketchat_message", "editedAt", "yesterday"), ("rocketchat_message", "files", {"_id": "x"}),
]


@pytest.mark.parametrize(("collection", "field", "value"), RC_CASES)
def test_any_rocketchat_field_of_the_wrong_type_is_a_finding(collection: str, field: str, value: Any,
                                                             tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(RC, dump)
    path = dump / "rocketchat" / f"{collection}.bson"
    docs = bson.decode_all(path.read_bytes())
    index = next(i for i, d in enumerate(docs) if collection != "rocketchat_message" or d.get("msg"))
    docs[index][field] = value
    path.write_bytes(b"".join(bson.encode(d) for d in docs))
    code, data, _ = run("migrate", str(dump), "--to", f"sqlite:///{tmp_path / 'o.db'}", cwd=tmp_path)
    assert code in (0, 1) and data is not None
    assert data["findings"].get("CM120", 0) >= 1, data["findings"]


# -- 6: zip bombs, overlapping entries, gzip bombs ----------------------------------------------------------
def test_zip_bomb_member_is_refused_before_it_is_read(tmp_path: Path) -> None:
    archive = zip_folder(SLACK, tmp_path / "bomb.zip")
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("random/2024-02-12.json", "w") as out:
        chunk = b" " * (1 << 20)
        for _ in range(96):  # 96 MiB of spaces: a ~100 KB member, ~1000x
            out.write(chunk)
    assert archive.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        code, data, _ = run("validate", str(archive), "--rejects", "r.jsonl", cwd=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20, f"peak {peak:,} bytes: the member was read"
    assert code == 1 and data is not None and data["counts"]["export_files"]["rejected"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["kind"] == "export_files"]
    assert line["location"] == "bomb.zip:random/2024-02-12.json"
    assert "zip bomb" in line["findings"][0]["message"] and "-o max_ratio" in line["findings"][0]["message"]


def test_member_over_the_document_limit_names_the_option_that_lifts_it(tmp_path: Path) -> None:
    archive = zip_folder(SLACK, tmp_path / "slack.zip")
    code, data, _ = run("validate", str(archive), "-o", "max_document_bytes=4000", "--rejects", "r.jsonl",
                        cwd=tmp_path)
    assert code == 1 and data is not None
    big = {r["location"]: r["findings"][0]["message"] for r in rejects(tmp_path / "r.jsonl")
           if r["kind"] == "export_files"}
    assert "slack.zip:users.json" in big and "-o max_document_bytes=N" in big["slack.zip:users.json"]
    assert run("validate", str(archive), "-o", "max_document_bytes=lots", cwd=tmp_path)[0] == 2


def test_overlapping_zip_entries_are_refused(tmp_path: Path) -> None:
    """CPython 3.12+ refuses entries whose data runs into the next one; the compact reader keeps that."""
    archive = zip_folder(SLACK, tmp_path / "overlap.zip")
    name = b"general/2024-03-01.json"
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    (size,) = struct.unpack("<I", data[central + 20:central + 24])
    data[central + 20:central + 24] = struct.pack("<I", size + 200)  # its data now covers the next header
    archive.write_bytes(bytes(data))
    code, data_json, _ = run("validate", str(archive), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data_json is not None
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["kind"] == "export_files"]
    assert line["location"] == "overlap.zip:general/2024-03-01.json" and "overlaps" in line["findings"][0]["message"]


def test_reading_stops_at_the_cap_whatever_the_stream_declares() -> None:
    reader = io.BufferedReader(CappedReader(io.BytesIO(b"x" * 10_000), "m.json", 4096, "max_document_bytes"))
    with pytest.raises(InputError, match=r"m\.json: more than 4,096 bytes uncompressed.*max_document_bytes"):
        reader.read()
    broken = io.BufferedReader(CappedReader(io.BytesIO(b""), "z.json", 4096, "max_member_bytes"))
    broken.raw._inner = _Failing()  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"z\.json: cannot read \(error: boom\)"):
        broken.read()


class _Failing(io.RawIOBase):
    def read(self, n: int = -1) -> bytes:
        raise zlib.error("boom")


def test_gzip_bomb_inflates_only_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "rocketchat_message.bson.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(80):
            out.write(bytes(1 << 20))  # 80 MiB of zeros: ~80 KB of gzip
    inflated = 0
    with pytest.raises(InputError, match="gzip bomb"), _bson.open_stream(path, "x.bson.gz") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            inflated += len(chunk)
    assert inflated <= 64 << 20


def test_gzipped_collection_over_the_limit_is_cut_with_a_finding(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(RC, dump)
    path = dump / "rocketchat" / "rocketchat_message.bson"
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    code, data, _ = run("validate", str(dump), "-o", "max_member_bytes=4096", "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None and data["counts"]["export_files"]["rejected"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["kind"] == "export_files"]
    assert "-o max_member_bytes=N" in line["findings"][0]["message"]
    assert data["counts"]["messages"]["loaded"] > 0


def test_overlong_mongoexport_line_is_one_rejected_document(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A JSON-lines collection is read with a line cap: a "line" of gigabytes is never held whole."""
    monkeypatch.setattr(_bson, "MAX_DOCUMENT", 2000)
    database = tmp_path / "dump" / "rocketchat"
    database.mkdir(parents=True)
    for path in sorted((RC / "rocketchat").glob("*.bson")):
        docs = bson.decode_all(path.read_bytes())
        lines = [json_util.dumps(d) for d in docs]
        if path.stem == "rocketchat_message":
            lines.insert(1, json.dumps({"_id": "Huge", "rid": "GENERAL", "msg": "x" * 5000}))
        (database / f"{path.stem}.json").write_text("\n".join(lines) + "\n")
    code, data, _ = run("validate", str(tmp_path / "dump"), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM001"]
    assert line["kind"] == "messages" and line["location"] == "rocketchat/rocketchat_message.json:2"
    assert "longer than 2,000 bytes" in line["findings"][0]["message"]


# -- 10: unreadable files are counted as files, never as fake messages ---------------------------------------
def test_unreadable_day_file_is_an_unreadable_file_not_a_message(tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)
    (folder / "random" / "2024-02-11.json").write_text('[\n    {"type": "message", "ts": "1707652800.000100", '
                                                        '"text": "kept"},\n    {"type": \n')
    code, data, _ = run("validate", str(folder), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    assert data["counts"]["messages"]["rejected"] == 0
    assert data["counts"]["export_files"]["rejected"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["findings"][0]["code"] == "CM001"]
    assert line["kind"] == "export_files" and line["record"] == {"file": "random/2024-02-11.json"}
    assert line["location"] == "random/2024-02-11.json:4"  # where the JSON breaks off


@pytest.mark.parametrize("content", ["", "   \n", '{"id": "C0GENERAL"}', "[{"])
def test_unreadable_channels_json_is_cm001_and_its_messages_are_each_rejected(content: str, tmp_path: Path) -> None:
    folder = slack_copy(tmp_path)
    (folder / "channels.json").write_text(content)
    code, data, _ = run("validate", str(folder), "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and data is not None
    assert data["findings"]["CM001"] == 1
    by_code = {}
    for line in rejects(tmp_path / "r.jsonl"):
        by_code.setdefault(line["findings"][0]["code"], []).append(line)
    assert by_code["CM001"][0]["location"].startswith("channels.json")
    public = sum(len(json.loads(p.read_text())) for name in ("general", "random", "releases")
                 for p in (folder / name).glob("*.json"))
    assert data["counts"]["messages"]["rejected"] == public == len(by_code["CM005"])
    assert all(line["record"] and "channels.json could not be read" in line["findings"][0]["message"]
               for line in by_code["CM005"])


# -- 11: a truncated Rocket.Chat collection ------------------------------------------------------------------
def test_truncated_rocketchat_bson_loads_what_is_readable(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(RC, dump)
    path = dump / "rocketchat" / "rocketchat_message.bson"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    db = tmp_path / "out.db"
    code, result, _ = run("migrate", str(dump), "--to", f"sqlite:///{db}", "--rejects", "r.jsonl", cwd=tmp_path)
    assert code == 1 and result is not None
    assert result["counts"]["messages"]["loaded"] > 0 and result["counts"]["export_files"]["rejected"] == 1
    (line,) = [r for r in rejects(tmp_path / "r.jsonl") if r["kind"] == "export_files"]
    assert line["location"].startswith("rocketchat/rocketchat_message.bson@")
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from cm_messages").fetchone()[0] == result["counts"]["messages"]["loaded"]


# -- 15: what detection says --------------------------------------------------------------------------------
def test_detection_names_a_missing_path_and_an_unreadable_archive(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        detect(str(tmp_path / "nope.zip"))
    archive = zip_folder(SLACK, tmp_path / "cut.zip")
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    with pytest.raises(InputError, match="zip archive is unreadable"):
        detect(str(archive))
    broken = tmp_path / "broken.zip"  # detection reads import.jsonl, which is corrupt from its start
    shutil.copy(MM / "export.zip", broken)
    poke(broken, member_data_offset(broken, "import.jsonl"), b"\xff")
    with pytest.raises(InputError, match=r"broken\.zip:import\.jsonl: cannot read"):
        detect(str(broken))
    code, _, err = run("validate", str(archive), cwd=tmp_path)
    assert code == 2 and "unreadable" in err and "--from" not in err
