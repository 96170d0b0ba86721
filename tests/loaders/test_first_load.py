"""A first load into empty tables takes each dialect's plain bulk path (insert_new); a key met twice sends
that table back to the staged merge, with the batch written again. Real servers (db_url: every dialect)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from chatmigrate.loaders import Loader, loader_for
from chatmigrate.model import Channel, Checkpoint, Item, Message, Record, User

from .helpers import assert_same, dump, dump_loader
from .synth import items

T0 = datetime(2022, 5, 6, 7, 8, 9, tzinfo=UTC)


def _calls(loader: Loader) -> dict[str, list[str]]:
    """Which write path each table took (observed on the real loader, nothing replaced)."""
    seen: dict[str, list[str]] = {"insert_new": [], "upsert": []}
    for name in seen:
        original = getattr(loader, name)

        def spy(conn, table, rows, _original=original, _name=name):  # type: ignore[no-untyped-def]
            seen[_name].append(table)
            return _original(conn, table, rows)

        setattr(loader, name, spy)
    return seen


def test_a_first_load_uses_the_bulk_path_and_a_second_the_merge(loader: Loader, db_url: str) -> None:
    calls = _calls(loader)
    first = loader.load(items(300, channels=3)).rows_written
    assert set(calls["insert_new"]) >= {"users", "channels", "channel_members", "messages", "reactions"}
    assert calls["upsert"] == []
    stored = dump_loader(loader)
    assert first == sum(len(rows) for table, rows in stored.items() if table != "sync_state")

    loader.stats.rows_written = 0
    calls["insert_new"].clear()
    assert loader.load(items(300, channels=3)).rows_written == 0  # non-empty now: merged, nothing changed
    assert calls["insert_new"] == []
    assert dump_loader(loader) == stored


def _user(name: str) -> User:
    return User(id="u1", source="t", source_id="U1", username=name)


def _stream(messages: int) -> list[Item]:
    channel = Channel(id="c1", source="t", source_id="C1", team_id=None, name="general", kind="public",
                      member_ids=("u1",))
    out: list[Item] = [_user("placeholder"), channel]
    for n in range(messages):
        out.append(Message(id=f"m{n}", source="t", source_id=f"C1/{n}", channel_id="c1", user_id="u1",
                           created_at=T0 + timedelta(seconds=n), text=f"message {n}"))
        if n == messages // 2:
            out.append(_user("ann"))  # met for real after its placeholder, several batches later
    out.append(Checkpoint("t", "s", "c1", str(messages)))
    return out


def test_a_key_met_again_in_a_later_batch_is_merged_and_the_last_version_kept(loader: Loader, db_url: str) -> None:
    loader.flush_rows = 4
    calls = _calls(loader)
    stats = loader.load(_stream(20))
    stored = dump_loader(loader)
    assert [row[3] for row in stored["users"]] == ["ann"]
    assert len(stored["messages"]) == 20
    assert stored["sync_state"] == [("t", "s", "c1", "20")]
    # users went back to the merge after the conflict; messages kept the bulk path throughout
    assert "users" in calls["upsert"] and "messages" not in calls["upsert"]
    assert calls["insert_new"].count("users") == 2  # the first batch, and the failed try of the conflicting one
    # 1 user + 1 channel + 1 member + 20 messages inserted, then the user row changed once
    assert stats.rows_written == 24


def test_a_concurrent_first_run_that_committed_first_is_merged_onto(db_url: str) -> None:
    """Run A finds empty tables, run B loads everything before A writes: A's bulk inserts conflict,
    its batches are merged instead, and the target ends as one load leaves it."""
    records = list(items(200, channels=2))
    first, second = loader_for(db_url), loader_for(db_url)
    first.prepare()

    snapshot: dict[str, list[tuple[object, ...]]] = {}

    def after_the_other_run() -> Iterator[Record | Checkpoint]:
        second.load(records)
        snapshot.update(dump_loader(second))
        yield from records  # type: ignore[misc]

    try:
        stats = first.load(after_the_other_run())
        assert stats.rows_written == 0  # every row already there, unchanged
        assert len(snapshot["messages"]) == 200
        assert_same(dump(db_url), snapshot)
    finally:
        first.close()
        second.close()
