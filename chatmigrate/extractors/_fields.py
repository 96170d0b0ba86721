"""Fields of the wrong JSON type: set aside and reported, never a crash and never a silent default.

Exports are hand-edited, produced by third-party tools, or damaged; a `members` that is a number or a
`subtype` that is an object must not crash a run, and a `user` that is a number must not quietly
make a message authorless. Each extractor declares, per kind of document, the type of every field
it reads (`Spec`). `checked` returns the document without the fields of the wrong type, so the
extractor's usual "absent" handling applies to them, plus those fields as read; the extractor puts
them in the record's `props["unreadable_fields"]` (`UNREADABLE`), where the raw value is kept and
the validator reports them (CM120 field-wrong-type, a warning: the record loads without them).

Ids are stricter than text: an id holding a lone surrogate (an invalid `\\ud800` escape) can match no
real record, so it counts as of the wrong type too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatmigrate.model import UNREADABLE_FIELDS

UNREADABLE = UNREADABLE_FIELDS  # the props key (model.py); re-exported for the extractors
_SURROGATE = re.compile("[\ud800-\udfff]")

Check = Callable[[Any], bool]


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_id(value: Any) -> bool:
    return isinstance(value, str) and (value.isascii() or _SURROGATE.search(value) is None)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_list(value: Any) -> bool:
    return isinstance(value, list)


def is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_time(value: Any) -> bool:
    """A BSON date (or, from an API, a datetime already parsed)."""
    return isinstance(value, datetime)


# The exact types each check accepts outright, and whether it accepts ASCII text (an id): this runs for
# every field of every message, so the common case is one `type(value) in …` test instead of a call.
_FAST: dict[Check, tuple[frozenset[type], bool]] = {
    is_text: (frozenset({str}), False), is_id: (frozenset(), True), is_number: (frozenset({int, float}), False),
    is_bool: (frozenset({bool}), False), is_list: (frozenset({list}), False), is_object: (frozenset({dict}), False),
    is_time: (frozenset({datetime}), False),
}


def either(*checks: Check) -> Check:
    def check(value: Any) -> bool:
        return any(one(value) for one in checks)

    fast = [_FAST.get(one, (frozenset(), False)) for one in checks]
    _FAST[check] = (frozenset().union(*(types for types, _ in fast)), any(ascii_ok for _, ascii_ok in fast))
    return check


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list whose items must pass `item`; a wrong item is set aside as `name[index]`."""

    item: Check | Spec


class Spec:
    """The expected type of each field a document may have; absent and null fields always pass."""

    __slots__ = ("_table", "fields")

    def __init__(self, **fields: Check | ListOf | Spec) -> None:
        self.fields: Mapping[str, Check | ListOf | Spec] = fields
        # (name, types accepted outright, ASCII text accepted outright, the full check)
        self._table = tuple((name, *_FAST.get(kind, (frozenset(), False)), kind)  # type: ignore[arg-type]
                            for name, kind in fields.items())


def checked(raw: Mapping[str, Any], spec: Spec) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """`raw` without its fields of the wrong type (nested objects and list items cleaned the same way),
    and those fields as read, by dotted path (`profile.email`, `members[3]`). `raw` itself is returned
    untouched when nothing is wrong (the common case: one pass of cheap type checks)."""
    bad: dict[str, Any] = {}
    clean = _clean(raw, spec, "", bad)
    return clean, bad


def _clean(raw: Mapping[str, Any], spec: Spec, prefix: str, bad: dict[str, Any]) -> Mapping[str, Any]:
    changed: dict[str, Any] | None = None
    get = raw.get
    for name, fast, ascii_ok, kind in spec._table:
        value = get(name)
        if value is None:
            continue
        kind_of = type(value)
        if kind_of in fast or (ascii_ok and kind_of is str and value.isascii()):
            continue
        path = prefix + name
        if isinstance(kind, Spec):
            new: Any = _clean(value, kind, path + ".", bad) if isinstance(value, Mapping) else _DROP
        elif isinstance(kind, ListOf):
            new = _clean_list(value, kind.item, path, bad) if isinstance(value, list) else _DROP
        else:
            new = value if kind(value) else _DROP
        if new is _DROP:
            bad[path] = value
        if new is not value:
            if changed is None:
                changed = dict(raw)
            if new is _DROP:
                del changed[name]
            else:
                changed[name] = new
    return raw if changed is None else changed


def _clean_list(items: list[Any], item: Check | Spec, path: str, bad: dict[str, Any]) -> list[Any]:
    kept: list[Any] = []
    changed = False
    fast, ascii_ok = (frozenset(), False) if isinstance(item, Spec) else _FAST.get(item, (frozenset(), False))
    for index, value in enumerate(items):
        kind_of = type(value)
        if kind_of in fast or (ascii_ok and kind_of is str and value.isascii()):
            kept.append(value)
            continue
        if isinstance(item, Spec):
            new = _clean(value, item, f"{path}[{index}].", bad) if isinstance(value, Mapping) else _DROP
        else:
            new = value if item(value) else _DROP
        if new is _DROP:
            bad[f"{path}[{index}]"] = value
            changed = True
            continue
        changed = changed or new is not value
        kept.append(new)
    return kept if changed else items


class _Drop:
    """Marks a field to remove (None cannot: a null field is simply absent)."""


_DROP = _Drop()
