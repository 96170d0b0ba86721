"""The source contract (chatmigrate/extractors/contract.py), checked on every installed source by reading
the sample it names in samples.py: the stream order, one checkpoint per channel after its messages, the
same records and ids on two reads, every record valid against schemas/, detection that never raises on
random bytes, declared options and capabilities, and resuming from each checkpoint gives the rest (and,
for an incremental source, nothing else)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from chatmigrate import extractors
from chatmigrate.extractors.contract import CHANNEL_KINDS, MESSAGE_KINDS, ROLES, capabilities_of
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Team, User, to_json
from chatmigrate.options import Option
from tests.sources.samples import REPO, SAMPLE_OF

NAMES = sorted(extractors.registered())
_PHASE = {Team: 0, User: 1, Channel: 2, Emoji: 3, Message: 4}
_SCHEMAS = {Team: "team", User: "user", Channel: "channel", Message: "message", Emoji: "emoji"}


@dataclass
class Reading:
    """Two full reads of a source's sample and, per checkpoint, a read resumed from it."""

    name: str
    cls: Any
    scope: str
    first: list[Item]
    second: list[Item]
    resumed: list[tuple[dict[str, str], list[Item]]] = field(default_factory=list)
    rewound: dict[str, tuple[str, str]] = field(default_factory=dict)  # cursor → (rewound by 0 s, by 1 h)


def _read(name: str, tmp: Path) -> Reading:
    if name not in SAMPLE_OF:
        pytest.fail(f"source {name} names no sample: add it to tests/sources/samples.py SAMPLE_OF")
    cls = extractors.load(name)
    with SAMPLE_OF[name](tmp) as (location, options):
        source = cls(location, dict(options))
        first = list(source.records())
        second = list(cls(location, dict(options)).records())
        reading = Reading(name, cls, source.scope, first, second)
        checkpoints = [item for item in first if isinstance(item, Checkpoint)]
        for upto in range(len(checkpoints)):
            since = {c.channel_id: c.cursor for c in checkpoints[:upto + 1]}
            reading.resumed.append((since, list(cls(location, dict(options)).records(since=since))))
        if capabilities_of(cls).rewind:
            reading.rewound = {c.cursor: (source.rewind(c.cursor, 0), source.rewind(c.cursor, 3600))
                               for c in checkpoints if c.cursor}
    return reading


@pytest.fixture(scope="module", params=NAMES)
def reading(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Reading:
    return _read(request.param, tmp_path_factory.mktemp(request.param))


def _messages(items: list[Item]) -> list[Message]:
    return [item for item in items if isinstance(item, Message)]


def test_every_source_names_its_sample() -> None:
    assert set(NAMES) <= set(SAMPLE_OF), f"sources without a sample: {sorted(set(NAMES) - set(SAMPLE_OF))}"


def test_the_sample_holds_every_kind_of_record(reading: Reading) -> None:
    kinds = {type(item) for item in reading.first}
    assert {User, Channel, Message} <= kinds, f"{reading.name}: the sample lacks {({User, Channel, Message} - kinds)}"
    assert all(r.source == reading.cls.source for r in reading.first if type(r) in _PHASE)


def test_stream_order(reading: Reading) -> None:
    """Teams, users, channels, emoji, then messages by channel; users a message names may come just before."""
    phase = 0
    for item in reading.first:
        kind = type(item)
        if kind not in _PHASE or (kind is User and phase == _PHASE[Message]):
            continue
        assert _PHASE[kind] >= phase, f"{reading.name}: a {kind.__name__} after the {_phase_name(phase)} phase"
        phase = _PHASE[kind]


def _phase_name(phase: int) -> str:
    return next(k.__name__ for k, v in _PHASE.items() if v == phase)


def test_messages_come_channel_by_channel_in_time_order(reading: Reading) -> None:
    finished: set[str] = set()
    current: str | None = None
    last: tuple[datetime, str] | None = None
    placed: dict[str, Message] = {}
    for message in _messages(reading.first):
        if message.channel_id != current:
            assert message.channel_id not in finished, f"{reading.name}: channel {message.channel_id} comes back"
            if current is not None:
                finished.add(current)
            current, last = message.channel_id, None
        root = placed.get(message.thread_root_id or "")
        early_reply = root is not None and message.created_at <= root.created_at
        if not early_reply:  # a reply stamped before its root is placed right after the root
            key = (message.created_at, message.id)
            assert last is None or key >= last, f"{reading.name}: {message.source_id} out of time order"
            last = key
        placed[message.id] = message
    in_stream = {m.id: m for m in _messages(reading.first)}
    seen: set[str] = set()
    for message in _messages(reading.first):
        root = in_stream.get(message.thread_root_id or "")
        if root is not None and root.channel_id == message.channel_id:
            assert root.id in seen, f"{reading.name}: reply {message.source_id} before its root"
        seen.add(message.id)


def test_a_checkpoint_per_channel_after_its_messages(reading: Reading) -> None:
    checkpointed: dict[str, int] = {}
    last_message: dict[str, int] = {}
    for index, item in enumerate(reading.first):
        if isinstance(item, Checkpoint):
            assert (item.source, item.scope) == (reading.cls.source, reading.scope)
            assert item.channel_id not in checkpointed, f"{reading.name}: two checkpoints for {item.channel_id}"
            assert len(item.cursor) <= 255
            checkpointed[item.channel_id] = index
        elif isinstance(item, Message):
            assert item.channel_id not in checkpointed, f"{reading.name}: {item.source_id} after its checkpoint"
            last_message[item.channel_id] = index
    missing = set(last_message) - set(checkpointed)
    assert not missing, f"{reading.name}: channels with messages but no checkpoint: {missing}"


def test_two_reads_give_the_same_records_and_ids(reading: Reading) -> None:
    def records(items: list[Item]) -> list[Any]:
        return [item for item in items if type(item) in _PHASE or isinstance(item, Checkpoint)]
    assert records(reading.first) == records(reading.second)


@pytest.fixture(scope="module")
def validators() -> dict[type, Draft202012Validator]:
    out = {}
    for cls, name in _SCHEMAS.items():
        schema = json.loads((REPO / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        out[cls] = Draft202012Validator(schema, format_checker=FormatChecker())
    return out


def test_every_record_is_valid_against_the_schemas(reading: Reading, validators: dict) -> None:
    for item in reading.first:
        validator = validators.get(type(item))
        if validator is None:
            continue
        document = json.loads(json.dumps(to_json(item), default=str))
        error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.path))), None)
        assert error is None, f"{reading.name} {item.origin}: {error.message} at {list(error.path)}"


def test_the_schemas_hold_the_contract_vocabularies() -> None:
    def schema(name: str) -> dict[str, Any]:
        return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert schema("user")["properties"]["role"]["enum"] == [*ROLES, None]
    assert schema("message")["properties"]["kind"]["enum"] == list(MESSAGE_KINDS)
    assert schema("channel")["properties"]["kind"]["enum"] == list(CHANNEL_KINDS)
    for mapping in ("slack-subtypes", "rocketchat-message-types"):
        kinds = schema(f"mapping-{mapping}")["properties"]
        assert kinds["default"]["enum"] == kinds["kinds"]["additionalProperties"]["enum"] == list(MESSAGE_KINDS)
    roles = schema("mapping-roles")["additionalProperties"]["properties"]
    assert roles["default"]["enum"] == list(ROLES)


def test_resuming_from_each_checkpoint_gives_the_rest(reading: Reading) -> None:
    """Every message of a channel without a cursor comes again; an incremental source gives nothing of the
    channels whose cursor it was handed (nothing changed since), any other source at most re-reads them."""
    full = _messages(reading.first)
    incremental = capabilities_of(reading.cls).incremental
    for since, items in reading.resumed:
        got = {m.id for m in _messages(items)}
        rest = {m.id for m in full if m.channel_id not in since}
        assert rest <= got, f"{reading.name}: resumed after {len(since)} channels, {len(rest - got)} messages lost"
        if incremental:
            assert got == rest, f"{reading.name}: resumed after {len(since)} channels, {len(got - rest)} re-read"
        else:
            assert got <= {m.id for m in full}


def test_rewind_moves_a_cursor_back_in_its_own_format(reading: Reading) -> None:
    if not capabilities_of(reading.cls).rewind:
        assert not reading.rewound  # sync hands such a source its cursors unchanged (it re-reads them)
        return
    assert reading.rewound, f"{reading.name}: no cursor to rewind"
    for cursor, (by_nothing, by_an_hour) in reading.rewound.items():
        assert by_nothing == cursor and by_an_hour != cursor and len(by_an_hour) <= 255


def test_options_are_declared_with_types() -> None:
    for name in NAMES:
        cls = extractors.load(name)
        declared = getattr(cls, "known_options", None)
        assert isinstance(declared, dict) and declared, f"{name} declares no options"
        if cls.__module__.startswith("chatmigrate.extractors.") and issubclass(cls, extractors.Source):
            untyped = [key for key, spec in declared.items() if not isinstance(spec, Option)]
            assert not untyped, f"{name}: options declared without a type: {untyped}"


def _random_inputs(tmp: Path, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    blob = rng.randbytes(rng.randint(0, 4096))
    for name, prefix in (("export.zip", b"PK\x03\x04"), ("export.jsonl", b'{"type":"version"'), ("x.bson", b""),
                         ("x.json.gz", b"\x1f\x8b"), ("noise", b"")):
        path = tmp / f"{seed}-{name}"
        path.write_bytes(prefix + blob)
        yield str(path)
    folder = tmp / f"{seed}-folder"
    (folder / "rocketchat").mkdir(parents=True)
    for name in ("users.json", "channels.json", "import.jsonl", "rocketchat/rocketchat_room.bson"):
        (folder / name).write_bytes(rng.randbytes(rng.randint(0, 512)))
    yield str(folder)
    yield "http://127.0.0.1:9/" + blob[:20].hex()  # the discard port: refused at once


@pytest.mark.parametrize("name", NAMES)
def test_detect_never_raises_on_random_bytes(name: str, tmp_path: Path) -> None:
    cls = extractors.load(name)
    for seed in range(8):
        for location in _random_inputs(tmp_path, seed):
            assert cls.detect(location) in (True, False)
