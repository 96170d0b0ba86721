"""The Rocket.Chat target's own checks that the round-trip tests do not hit on purpose: names that
collide once made valid (CM302) and files listed without bytes (CM304), reported at their location."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chatmigrate import pipeline
from chatmigrate.model import Channel, File, Message, Origin, User
from chatmigrate.targets import target_for

from .helpers import RecordSource

T0 = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_colliding_names_and_files_without_bytes_are_reported(ferretdb: str) -> None:
    url = f"rocketchat+mongodb://{ferretdb.removeprefix('mongodb://')}/rc_{uuid.uuid4().hex[:12]}"
    missing = File(id="f1", source="t", source_id="F1", name="lost.pdf", props={"missing": True})
    records = [User(id="u1", source="t", source_id="1", username="Zoe", email="a@example.com"),
               User(id="u2", source="t", source_id="2", username="Zoë", email="b@example.com",
                    origin=Origin("users.json", 2)),
               Channel(id="c1", source="t", source_id="C", team_id=None, name="general", kind="public",
                       member_ids=("u1", "u2")),
               Message(id="m1", source="t", source_id="m1", channel_id="c1", user_id="u1", created_at=T0,
                       text="see attached", files=(missing,), origin=Origin("general.json", 7))]
    target = target_for(url)
    try:
        result = pipeline.run(RecordSource(lambda: iter(records)), target,
                              pipeline.RunOptions("migrate", "synth", progress=False))
        db = target.db  # type: ignore[attr-defined]
        names = sorted(u["username"] for u in db.users.find({}))
    finally:
        target.close()
    assert result.sink.counts["CM302"] == 1 and result.sink.examples["CM302"][0].location == "users.json:2"
    assert result.sink.counts["CM304"] == 1 and result.sink.examples["CM304"][0].location == "general.json:7"
    assert names == ["Zoe", "zoe-2"]  # usernames are unique regardless of case in Rocket.Chat
