"""Every record the extractors produce from samples/ validates against schemas/<kind>.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from chatmigrate import extractors
from chatmigrate.model import Channel, Emoji, Message, Team, User, to_json

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = {cls: REPO / "schemas" / f"{name}.schema.json"
           for cls, name in ((Team, "team"), (User, "user"), (Channel, "channel"), (Message, "message"),
                             (Emoji, "emoji"))}
# Each file-form extractor and the sample it ships.
SAMPLES = {
    "slack-export": REPO / "samples" / "slack",
    "mattermost-export": REPO / "samples" / "mattermost" / "export.zip",
    "rocketchat-dump": REPO / "samples" / "rocketchat" / "dump",
}


@pytest.fixture(scope="module")
def validators() -> dict[type, Draft202012Validator]:
    out = {}
    for cls, path in SCHEMAS.items():
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        out[cls] = Draft202012Validator(schema, format_checker=FormatChecker())
    return out


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_records_match_schemas(name: str, validators: dict) -> None:
    if name not in extractors.registered():
        pytest.fail(f"extractor {name} is not registered (pip install -e .)")
    path = SAMPLES[name]
    assert path.exists(), f"{path} is missing"
    extractor = extractors.load(name)(str(path))
    seen: dict[str, int] = {}
    for record in extractor.records():
        validator = validators.get(type(record))
        if validator is None:
            continue
        document = json.loads(json.dumps(to_json(record)))
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, f"{record.origin}: {errors[0].message} at {list(errors[0].path)}"
        seen[record.record_kind] = seen.get(record.record_kind, 0) + 1
    assert seen.get("users") and seen.get("channels") and seen.get("messages"), seen


def test_schema_rejects_a_bad_record(validators: dict) -> None:
    bad = {"record": "messages", "id": "not-a-uuid", "source": "slack", "source_id": "C/1", "props": {}}
    assert list(validators[Message].iter_errors(bad))
