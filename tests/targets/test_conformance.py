"""The target contract (chatmigrate/targets/contract.py), one suite that every target gets for free:
the SQL targets on real servers (SQLite, PostgreSQL, MariaDB), the Mattermost package target and the
Rocket.Chat target (its MongoDB, on FerretDB).

Each target kind says how to take a fingerprint of everything it wrote; the rules are the same."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatmigrate import pipeline
from chatmigrate.model import Channel, Checkpoint, Item, Message, Team, User
from chatmigrate.targets import Target, registered, target_for
from chatmigrate.validate import report
from tests.conftest import _target_url
from tests.lanying_server import ADMIN_TOKEN, LanyingServer
from tests.lanying_server import dump as lanying_dump
from tests.lanying_server import target_url as lanying_url
from tests.loaders.helpers import dump_loader
from tests.loaders.synth import items

from .helpers import RecordSource, unzip_lines

KINDS = ["sqlite", "postgresql", "mariadb", "mattermost-import", "rocketchat", "lanying"]
# The loopback 蓝莺IM server of each lanying target URL (its state is the target's fingerprint).
LANYING: dict[str, LanyingServer] = {}
T0 = datetime(2022, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture(params=KINDS)
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "mattermost-import":
        yield f"mattermost-import://{tmp_path}/out.zip?default_email_domain=example.com"
        return
    if request.param == "rocketchat":
        # A fresh database per test on the session's FerretDB server.
        base = request.getfixturevalue("ferretdb")
        yield f"rocketchat+mongodb://{base.removeprefix('mongodb://')}/cmtest_{uuid.uuid4().hex[:12]}"
        return
    if request.param == "lanying":
        # A fresh loopback 蓝莺IM server per test; its admin token holds the secret the secrets test looks for.
        request.getfixturevalue("monkeypatch").setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)
        server = LanyingServer().start()
        url = lanying_url(server, tmp_path / "hub.db")
        LANYING[url] = server
        try:
            yield url
        finally:
            LANYING.pop(url)
            server.stop()
        return
    yield from _target_url(request.param, tmp_path)


def _run(url: str, make: Callable[[], Iterator[Item]], location: str = "synth") -> pipeline.RunResult:
    target = target_for(url)
    try:
        return pipeline.run(RecordSource(make), target, pipeline.RunOptions("migrate", location, progress=False))
    finally:
        target.close()


def mongo_documents(target: Any) -> dict[str, list[Any]]:
    """Every document of a Rocket.Chat target's database by collection, `_id` order; the run records
    (one per run, by design) left out."""
    db = target.db
    return {name: list(db[name].find({}).sort("_id", 1))
            for name in sorted(db.list_collection_names()) if name != "chatmigrate_runs"}


def fingerprint(url: str) -> Any:
    """Everything the target holds: its tables, the package bytes and the hub's tables, or the documents."""
    target = target_for(url)
    try:
        if url.startswith("rocketchat+"):
            return mongo_documents(target)
        if url.startswith("lanying"):
            return lanying_dump(LANYING[url]), dump_loader(target.hub)  # type: ignore[attr-defined]
        if url.startswith("mattermost-import:"):
            package = target.options.out  # type: ignore[attr-defined]
            return hashlib.sha256(package.read_bytes()).hexdigest(), dump_loader(target.hub)  # type: ignore[attr-defined]
        return dump_loader(target)  # type: ignore[arg-type]
    finally:
        target.close()


def test_every_builtin_target_is_registered() -> None:
    builtin = {"sqlite", "postgresql", "mysql", "mariadb", "mattermost-import", "rocketchat", "lanying"}
    assert builtin <= set(registered())


def test_a_second_identical_run_changes_nothing(target_url: str) -> None:
    first = _run(target_url, lambda: items(300, channels=3, users=12))
    assert first.rows_written > 300
    before = fingerprint(target_url)
    second = _run(target_url, lambda: items(300, channels=3, users=12))
    assert second.rows_written == 0
    assert fingerprint(target_url) == before


def test_every_record_is_accounted_for(target_url: str) -> None:
    result = _run(target_url, lambda: items(200, channels=2, users=10))
    for kind, c in result.counts.items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], kind
    assert result.counts["messages"]["loaded"] == 200
    target = target_for(target_url)
    try:
        if target_url.startswith("mattermost-import:"):
            lines = unzip_lines(target.options.out)  # type: ignore[attr-defined]
            posts = [line[line["type"]] for line in lines if line["type"] in ("post", "direct_post")]
            written = sum(1 + len(p.get("replies", ())) for p in posts)
            assert written >= 200  # long texts may become several posts, never fewer
            reactions = sum(len(p.get("reactions", ())) + sum(len(r.get("reactions", ())) for r in p.get("replies", ()))
                            for p in posts)
            assert reactions == result.counts["reactions"]["loaded"]
        elif target_url.startswith("rocketchat+"):
            db = target.db  # type: ignore[attr-defined]
            live = db.rocketchat_message.count_documents({})
            trashed = db.rocketchat__trash.count_documents({})
            assert live + trashed >= 200  # long texts may become several messages, never fewer
        elif target_url.startswith("lanying"):
            sent = lanying_dump(LANYING[target_url])["messages"]
            held = {json.loads(m[4])["chatmigrate"]["id"] for m in sent}
            assert len(held) == len(dump_loader(target.hub)["messages"]) == 200  # type: ignore[attr-defined]
        else:
            assert dump_loader(target)["messages"].__len__() == 200  # type: ignore[arg-type]
    finally:
        target.close()


def _base() -> list[Item]:
    return [Team(id="t1", source="t", source_id="T1", name="acme"),
            User(id="u1", source="t", source_id="U1", username="ann", email="ann@example.com"),
            Channel(id="c1", source="t", source_id="C1", team_id="t1", name="general", kind="public",
                    member_ids=("u1",)),
            Channel(id="c2", source="t", source_id="C2", team_id="t1", name="random", kind="public",
                    member_ids=("u1",))]


def _message(n: int, channel: str) -> Message:
    return Message(id=f"m{n}", source="t", source_id=f"{channel}/{n}", channel_id=channel, user_id="u1",
                   created_at=T0 + timedelta(seconds=n), text=f"message {n}")


def test_a_cursor_is_never_saved_ahead_of_its_data(target_url: str) -> None:
    def failing() -> Iterator[Item]:
        yield from _base()
        yield _message(1, "c1")
        yield _message(2, "c1")
        yield Checkpoint("synth", "W1", "c1", "C1/2")
        yield _message(3, "c2")
        raise RuntimeError("the source died")

    with pytest.raises(RuntimeError):
        _run(target_url, failing)
    target = target_for(target_url)
    try:
        assert target.cursors("synth", "W1") == {"c1": "C1/2"}
    finally:
        target.close()

    def complete() -> Iterator[Item]:
        yield from _base()
        for n, channel in ((1, "c1"), (2, "c1"), (3, "c2"), (4, "c2")):
            yield _message(n, channel)
        yield Checkpoint("synth", "W1", "c1", "C1/2")
        yield Checkpoint("synth", "W1", "c2", "C2/4")

    result = _run(target_url, complete)
    assert result.counts["messages"]["loaded"] == 4
    target = target_for(target_url)
    try:
        assert target.cursors("synth", "W1") == {"c1": "C1/2", "c2": "C2/4"}
        if target_url.startswith("mattermost-import:"):
            texts = {line["post"]["message"] for line in unzip_lines(target.options.out)  # type: ignore[attr-defined]
                     if line["type"] == "post"}
            assert texts == {"message 1", "message 2", "message 3", "message 4"}
    finally:
        target.close()


def _secret_url(url: str) -> str:
    """The target URL with a password where the target takes one (PostgreSQL trust accepts any)."""
    if url.startswith("postgresql"):
        return sa.engine.make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)
    if url.startswith("rocketchat+"):
        # FerretDB 1.24 without authentication accepts any user and password through PLAIN.
        return url.replace("://", "://chat:s3cret-pw@", 1) + "?authMechanism=PLAIN"
    return url


def test_secrets_never_appear_in_output_or_stored_data(target_url: str, tmp_path: Path) -> None:
    url = _secret_url(target_url)
    location = "https://admin:s3cret-pw@chat.example.com/export.zip?token=s3cret-pw"
    result = _run(url, lambda: items(50, channels=1, users=5), location=location)
    output = json.dumps(report.as_json(result, 0), default=str) + "\n".join(report.summary_lines(result))
    target: Target = target_for(url)
    try:
        output += target.safe_url + json.dumps(target.summary(), default=str)
        if url.startswith("rocketchat+"):
            output += json.dumps(list(target.db.chatmigrate_runs.find({})), default=str)  # type: ignore[attr-defined]
        else:
            sql = getattr(target, "hub", target)
            runs = sql.table("runs")
            with sql.engine.connect() as conn:
                output += json.dumps([list(row) for row in conn.execute(sa.select(runs))], default=str)
        stored = fingerprint(url)
    finally:
        target.close()
    assert "s3cret-pw" not in output
    assert "s3cret-pw" not in json.dumps(stored, default=str)
    if url.startswith("mattermost-import:"):
        package = Path(url.removeprefix("mattermost-import://").split("?")[0])
        assert b"s3cret-pw" not in package.read_bytes()
