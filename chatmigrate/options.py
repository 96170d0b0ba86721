"""Extractor options (`-o KEY=VALUE`, a sync config's `options`): checked against what the extractor
declares before it is built, so a misspelt name (`scpoe`) or an ill-typed value (`max_line_bytes=lots`)
is a usage error naming the option, not a silent default or an internal error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatmigrate.errors import UsageError


def known_options(cls: Any) -> dict[str, str] | None:
    """The options an extractor class accepts (name → help), or None when it does not say (a third-party
    extractor written before `known_options`: everything is passed through, as before)."""
    known = getattr(cls, "known_options", None)
    return dict(known) if isinstance(known, Mapping) else None


def describe(known: Mapping[str, str]) -> str:
    return "; ".join(f"{name} ({text})" for name, text in known.items()) or "none"


def check_names(cls: Any, names: list[str], label: str = "-o ") -> None:
    """A usage error for the first name `cls` does not accept, listing the ones it does."""
    known = known_options(cls)
    if known is None:
        return
    for name in names:
        if name not in known:
            raise UsageError(f"{label}{name}: {cls.name} has no such option; it takes: {describe(known)}")


def build(cls: Any, location: str, options: Mapping[str, str], label: str = "-o ") -> Any:
    """`cls(location, options)`, with the value errors of its option parsing (int('lots')) turned into a
    usage error naming the option whose value the error quotes."""
    check_names(cls, list(options), label)
    try:
        return cls(location, dict(options))
    except (ValueError, TypeError) as exc:
        text = str(exc)
        culprit = next((name for name, value in options.items() if value and repr(value) in text), None)
        if culprit is None:  # not an option's value: a genuine bug, reported as such
            raise
        help_text = (known_options(cls) or {}).get(culprit)
        expected = f"expected {help_text}" if help_text else text
        raise UsageError(f"{label}{culprit}: {options[culprit]!r} is not a valid value ({expected})") from None
