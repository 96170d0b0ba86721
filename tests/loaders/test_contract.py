"""The loader contract, one suite for every dialect (db_url: sqlite, postgresql, mariadb; real servers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from chatmigrate.errors import TargetError
from chatmigrate.loaders import Loader, ddl_for, loader_for, resolve_target_url
from chatmigrate.loaders._clean import REPAIRS_KEY
from chatmigrate.loaders.schema import SCHEMA_VERSION
from chatmigrate.model import Channel, Checkpoint, Item, Message, Reaction, User

from .helpers import dump_loader
from .synth import items

T0 = datetime(2021, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def _base() -> list[Item]:
    return [User(id="u1", source="t", source_id="U1", username="ann"),
            User(id="u2", source="t", source_id="U2", username="bob"),
            Channel(id="c1", source="t", source_id="C1", team_id=None, name="general", kind="public",
                    member_ids=("u1", "u2", "u1"))]


def _message(n: int, text: str, **kw: object) -> Message:
    return Message(id=f"m{n}", source="t", source_id=f"C1/{n}", channel_id="c1", user_id="u1",
                   created_at=T0 + timedelta(seconds=n), text=text, **kw)  # type: ignore[arg-type]


def _stored(loader: Loader, table: str, column: str, key: str) -> tuple[object, dict]:
    t = loader.table(table)
    with loader.engine.connect() as conn:
        value, props = conn.execute(sa.select(t.c[column], t.c.props).where(t.c.id == key)).one()
    if isinstance(props, str):
        props = json.loads(props)
    return value, props or {}


def test_second_load_of_the_same_records_writes_nothing(loader: Loader) -> None:
    first = loader.load(items(600, channels=4)).rows_written
    before = dump_loader(loader)
    assert first > 600  # messages + reactions + files + users + channels + members
    loader.stats.rows_written = 0
    assert loader.load(items(600, channels=4)).rows_written == 0
    assert dump_loader(loader) == before


def test_changed_records_are_updated_and_only_they_are_written(loader: Loader) -> None:
    loader.load(items(600, channels=4))
    loader.stats.rows_written = 0
    # The "edited export" changes the text of every 7th message of each channel, nothing else.
    changed = sum(len(range(0, 150, 7)) for _ in range(4))
    assert loader.load(items(600, channels=4, variant="edited")).rows_written == changed
    t = loader.table("messages")
    with loader.engine.connect() as conn:
        edited = conn.execute(sa.select(sa.func.count()).where(t.c.text.like("edited: %"))).scalar()
        total = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
    assert (edited, total) == (changed, 600)


def test_four_byte_characters_and_case_distinct_keys_survive(loader: Loader) -> None:
    text = "party 🎉 thumbs 👍🏽 family 👨‍👩‍👧 math 𝔸 CJK 𠀋 and ñ"
    reactions = tuple(Reaction(name, "u2", T0) for name in ("smile", "Smile", "😀", "😃", "👍🏽"))
    loader.load([*_base(), _message(1, text, reactions=reactions)])
    assert _stored(loader, "messages", "text", "m1")[0] == text
    t = loader.table("reactions")
    with loader.engine.connect() as conn:
        names = sorted(conn.execute(sa.select(t.c.emoji).where(t.c.message_id == "m1")).scalars())
    # utf8mb4_bin on MariaDB: a general collation would call "smile" = "Smile" and 😀 = 😃.
    assert names == sorted(r.emoji for r in reactions)


def test_channel_members_and_times_round_trip(loader: Loader) -> None:
    loader.load([*_base(), _message(1, "hi", edited_at=T0 + timedelta(hours=1))])
    m = loader.table("messages")
    members = loader.table("channel_members")
    with loader.engine.connect() as conn:
        created, edited = conn.execute(sa.select(m.c.created_at, m.c.edited_at)).one()
        member_ids = sorted(conn.execute(sa.select(members.c.user_id)).scalars())
    # Stored in UTC with microseconds; MySQL/SQLite hand back naive UTC, PostgreSQL aware.
    assert created.replace(tzinfo=UTC) == T0 + timedelta(seconds=1)
    assert edited.replace(tzinfo=UTC) == T0 + timedelta(hours=1)
    assert member_ids == ["u1", "u2"]


@pytest.mark.parametrize(("text", "props"), [
    ("before\x00after", {}),
    ("lone \ud800 high and \udfff low, a pair \ud83d\ude00 joined", {}),
    ("plain", {"nested": ["nul \x00", {"k": "surrogate \udc80"}]}),
    ("x" * 70_000 + " long text is fine", {}),
], ids=["nul", "surrogates", "props", "long-text"])
def test_text_databases_refuse_is_repaired_and_recorded_never_lost(loader: Loader, text: str, props: dict) -> None:
    loader.load([*_base(), _message(1, text, props=props)])
    stored, stored_props = _stored(loader, "messages", "text", "m1")
    notes = {note["column"]: note for note in stored_props.get(REPAIRS_KEY, [])}
    # Either the value went in as it was, or it was repaired and its original is kept exactly.
    if stored != text:
        # (JSON reads an escaped surrogate pair back as the one character it encodes.)
        assert json.loads(notes["text"]["original"]) == json.loads(json.dumps(text))
        assert "\x00" not in stored or "NUL removed" not in notes["text"]["repairs"]
        assert any(key.startswith("messages.text: ") for key in loader.stats.repairs)
    else:
        assert "text" not in notes
    if props:
        kept = {k: v for k, v in stored_props.items() if k != REPAIRS_KEY}
        if kept != props:
            assert json.loads(json.loads(notes["props"]["original"])) == props
            assert any(key.startswith("messages.props: ") for key in loader.stats.repairs)
    # And every dialect can always encode what it stored: no lone surrogate made it in.
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in stored)


def test_huge_text_is_stored_whole_or_cut_to_the_dialect_limit_with_its_checksum(loader: Loader) -> None:
    text = "🎉 big " * 200_000  # 1.4 M characters, 2.2 MB of UTF-8
    loader.load([*_base(), _message(1, text)])
    stored, props = _stored(loader, "messages", "text", "m1")
    if stored != text:  # MySQL: one value must fit a packet after escaping
        assert isinstance(stored, str) and text.startswith(stored) and len(stored.encode()) <= 1 << 20
        note = props[REPAIRS_KEY][0]
        assert note["original_chars"] == len(text)
        assert note["original_sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_values_over_the_column_length_are_cut_with_the_original_kept(loader: Loader) -> None:
    long_name = "channel-" + "é" * 300
    loader.load([*_base()[:2], Channel(id="c1", source="t", source_id="C1", team_id=None, name=long_name,
                                       kind="public")])
    stored, props = _stored(loader, "channels", "name", "c1")
    if stored != long_name:  # the dialect enforces VARCHAR(255)
        assert stored == long_name[:255]
        note = props[REPAIRS_KEY][0]
        assert (note["column"], json.loads(note["original"])) == ("name", long_name)
        assert loader.stats.repairs == {"channels.name: cut to 255 characters": 1}


def test_hostile_generated_stream_loads_and_reloads_unchanged(loader: Loader) -> None:
    loader.load(items(1500, channels=3))
    assert loader.stats.repairs  # the stream mixes in NUL, surrogates and over-long names
    before = dump_loader(loader)
    loader.stats.rows_written = 0
    assert loader.load(items(1500, channels=3)).rows_written == 0
    assert dump_loader(loader) == before


def test_failing_source_keeps_what_was_read_and_only_the_cursors_of_finished_channels(loader: Loader) -> None:
    def stream() -> Iterator[Item]:
        yield from _base()
        yield _message(1, "one")
        yield _message(2, "two")
        yield Checkpoint("t", "W", "c1", "C1/2")
        yield _message(3, "three, never committed")
        raise RuntimeError("the extractor died")

    with pytest.raises(RuntimeError):
        loader.load(stream())
    assert loader.cursors("t", "W") == {"c1": "C1/2"}
    data = dump_loader(loader)
    # m3 is kept (harmless: the next run upserts it again); no cursor claims it.
    assert [row[0] for row in data["messages"]] == ["m1", "m2", "m3"]


def test_duplicate_keys_inside_one_batch_keep_the_last(loader: Loader) -> None:
    loader.load([*_base(), _message(1, "first"), _message(1, "second")])
    assert _stored(loader, "messages", "text", "m1")[0] == "second"


def test_schema_is_created_once_and_a_newer_schema_is_refused(db_url: str) -> None:
    loader = loader_for(db_url)
    loader.prepare()
    loader.prepare()  # idempotent
    versions = loader.table("schema_version")
    with loader.engine.begin() as conn:
        assert conn.execute(sa.select(versions.c.version)).scalars().all() == [SCHEMA_VERSION]
        conn.execute(versions.insert().values(version=SCHEMA_VERSION + 1, applied_at=T0))
    with pytest.raises(TargetError, match="newer than this chatmigrate understands"):
        loader.prepare()
    loader.close()


def test_run_record_hides_the_password(db_url: str) -> None:
    from chatmigrate.loaders import RunInfo

    url = sa.engine.make_url(db_url)
    secret_url = url.set(password="s3cret-pw") if url.host else url
    loader = loader_for(db_url)
    loader.prepare()
    loader.start_run(RunInfo("migrate", "slack-export", "https://u:s3cret-pw@example.com/export.zip"))
    loader.finish_run("ok", {"messages": 0})
    runs = loader.table("runs")
    with loader.engine.connect() as conn:
        location, target = conn.execute(sa.select(runs.c.location, runs.c.target)).one()
    loader.close()
    assert "s3cret-pw" not in location + target
    assert "s3cret-pw" not in loader_for(secret_url.render_as_string(hide_password=False)).safe_url


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql+psycopg://u:pw@db/chat",
                                 "mysql+pymysql://u:pw@db/chat"])
def test_schema_ddl_renders_without_a_connection(url: str) -> None:
    ddl = ddl_for(url)
    for table in ("messages", "users", "channels", "channel_members", "reactions", "files", "emoji", "runs",
                  "sync_state", "schema_version"):
        assert f"CREATE TABLE cm_{table} (" in ddl
    assert "ix_cm_messages_channel_id_created_at" in ddl
    if url.startswith("mysql"):
        assert ddl.count("CHARSET=utf8mb4 COLLATE utf8mb4_bin") == 11
    if url.startswith("postgresql"):
        assert "JSONB" in ddl


def test_target_url_comes_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMIGRATE_TARGET_URL", "postgresql+psycopg://env@db/chat")
    assert resolve_target_url("sqlite:///cli.db") == "sqlite:///cli.db"
    assert resolve_target_url(None) == "postgresql+psycopg://env@db/chat"
    monkeypatch.delenv("CHATMIGRATE_TARGET_URL")
    assert resolve_target_url(None).startswith("sqlite:///")
