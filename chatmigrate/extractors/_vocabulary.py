"""A source's own names (message subtypes, system codes, roles) → the canonical vocabularies of
contract.py, through the data files of mappings/ (read once per process: `mappings.table` is cached)."""

from __future__ import annotations

import functools
from collections.abc import Collection

from chatmigrate.mappings import table

BOT = "bot"  # the pseudo-name of mappings/roles.toml that stands for "the user is a bot"


@functools.cache
def _kinds(name: str) -> tuple[dict[str, str], str]:
    data = table(name)
    return dict(data["kinds"]), str(data["default"])


def message_kind(mapping: str, code: str | None) -> str:
    """The canonical kind of a source's message code in mappings/MAPPING.toml (its `default` if unlisted)."""
    kinds, default = _kinds(mapping)
    return kinds.get(code, default) if code else default


@functools.cache
def _roles(source: str) -> tuple[tuple[tuple[str, str], ...], str]:
    data = table("roles")[source]
    return tuple(data["names"].items()), str(data["default"])


def role(source: str, names: Collection[str], is_bot: bool) -> str:
    """The canonical role of a user holding `names` (roles or flags, as mappings/roles.toml lists them for
    `source`): the first listed name the user has, `bot` counting for a bot user."""
    order, default = _roles(source)
    for name, canonical in order:
        if (name == BOT and is_bot) or name in names:
            return canonical
    return default
