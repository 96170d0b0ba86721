"""The default mapping data chatmigrate ships (mappings/): each file valid against its schema, and
the emoji names it maps to are names the target really has."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmigrate.errors import UsageError
from chatmigrate.mappings import name_set, table
from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets import _rc_rules as rc

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.mark.parametrize("name", sorted(p.stem for p in MAPPINGS.glob("*.toml")))
def test_every_data_file_matches_its_schema(name: str) -> None:
    assert table(name)  # raises UsageError naming the key when a file breaks its schema


def test_a_broken_data_file_is_refused_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatmigrate import mappings

    (tmp_path / "emoji.toml").write_text('[skin_tones.mattermost]\n"7" = "x"\n[to_mattermost]\n[to_rocketchat]\n')
    monkeypatch.setattr(mappings, "_CHECKOUT", tmp_path)
    table.cache_clear()
    try:
        with pytest.raises(UsageError, match=r"emoji\.toml: skin_tones"):
            table("emoji")
    finally:
        table.cache_clear()


def test_emoji_mapped_for_mattermost_are_its_system_emoji() -> None:
    system = name_set(mm.SYSTEM_EMOJI_FILE)
    emoji = table("emoji")
    assert set(emoji["to_mattermost"].values()) <= system
    toned = [f"thumbsup_{suffix}" for suffix in emoji["skin_tones"]["mattermost"].values()]
    assert set(toned) <= system


def test_rocketchat_reaction_keys() -> None:
    assert rc.reaction_key("+1") == ":thumbsup:"
    assert rc.reaction_key("thumbsup::skin-tone-2") == ":thumbsup_tone1:"
    assert rc.reaction_key("slightly_smiling_face") == ":slight_smile:"
    assert rc.reaction_key("party_parrot") == ":party_parrot:"
