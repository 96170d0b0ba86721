"""A long message is stored whole wherever the database can hold it, and a cut is reported as a cut
(issue 12 #9): MariaDB once stored a 5 MB message cut at 1 MiB with exit 0 while CM109 said "loaded
whole"."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from chatmigrate.cli import main
from chatmigrate.loaders._clean import REPAIRS_KEY, Cleaner
from chatmigrate.loaders.mysql import MEDIUMTEXT_BYTES, _server_rules
from chatmigrate.loaders.rows import COLUMNS, rows_of
from chatmigrate.loaders.schema import build_metadata
from chatmigrate.model import Message, Origin
from chatmigrate.validate.rules import rule

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "slack"
# 5 MB with quotes and backslashes, which the MySQL literal writer escapes (the row grows on the wire).
LONG = ("it's a \\ long line " * 263_158)[:5_000_000]


def test_a_5_mb_message_is_stored_whole(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    day = [{"type": "message", "user": "U0BOB0002", "ts": "1707652800.000100", "text": LONG}]
    (folder / "random" / "2024-02-11.json").write_text(json.dumps(day))
    result = CliRunner().invoke(main, ["migrate", str(folder), "--to", db_url, "--json", "--rejects",
                                       str(tmp_path / "r.jsonl")], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["findings"]["CM109"] == 1 and data["load"]["repairs"] == {}
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT text FROM cm_messages WHERE text LIKE 'it''s a %'")).scalar_one()
    engine.dispose()
    assert len(stored) == len(LONG) and hashlib.sha256(stored.encode()).digest() == hashlib.sha256(
        LONG.encode()).digest()


def _message(text: str) -> Message:
    from datetime import UTC, datetime

    return Message(id="m1", source="slack", source_id="1.0", channel_id="c1", user_id=None,
                   created_at=datetime(2024, 1, 1, tzinfo=UTC), kind="normal", text=text,
                   origin=Origin("x.json", 1))


def test_beyond_the_packet_a_message_is_cut_and_the_cut_is_reported() -> None:
    """On a server whose max_allowed_packet is 4 MiB (MySQL 5.7's default) the 5 MB text cannot travel
    whole: it is cut to fit, counted as a repair naming the limit, and its size and SHA-256 are kept."""
    metadata = build_metadata("cm_")
    cleaner = Cleaner({name: metadata.tables[f"cm_{name}"] for name in COLUMNS}, _server_rules(4 << 20))
    [(table, row)] = [(t, r) for t, r in rows_of(_message(LONG)) if t == "messages"]
    cleaned = cleaner.clean(table, row)
    text = cleaned[COLUMNS["messages"].index("text")]
    assert 2_000_000 < len(text.encode()) < 3 << 20 and LONG.startswith(text)
    [(repair, count)] = cleaner.repairs.items()
    assert repair == "messages.text: cut to fit one statement (max_allowed_packet 4194304 bytes)" and count == 1
    note = json.loads(cleaned[COLUMNS["messages"].index("props")])[REPAIRS_KEY][0]
    assert note["original_chars"] == len(LONG)
    assert note["original_sha256"] == hashlib.sha256(LONG.encode()).hexdigest()
    # A message the packet holds is not touched, and MEDIUMTEXT's own limit stays the outer bound.
    roomy = Cleaner({name: metadata.tables[f"cm_{name}"] for name in COLUMNS}, _server_rules(64 << 20))
    assert roomy.clean(table, row) is row
    assert _server_rules(64 << 20).max_text_bytes == MEDIUMTEXT_BYTES


def test_cm109_says_what_each_target_does() -> None:
    repair = rule("CM109").repair
    assert "MySQL/MariaDB" in repair and "max_allowed_packet" in repair and "CM203" in repair
    assert not repair.startswith("loaded whole;")
