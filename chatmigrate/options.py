"""Extractor options (`-o KEY=VALUE`, a sync config's `options`): checked against what the extractor
declares before it is built, so a misspelt name (`scpoe`) or an ill-typed value (`max_line_bytes=lots`)
is a usage error naming the option, not a silent default or an internal error.

An extractor declares them in `known_options` (name → `Option`, see extractors/contract.py). A plain help
string instead of an `Option` (third-party extractors written before typed options) declares a text
option: its name is checked, its value passed through as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatmigrate.errors import UsageError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_TYPE_WORDS = {str: "a text", int: "an integer", float: "a number", bool: "true or false"}


@dataclass(frozen=True, slots=True)
class Option:
    """One declared option: its help text, the type its value must have and the range it must lie in."""

    help: str
    type: type = str
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, text: str) -> Any:
        """The value as its declared type; ValueError saying what was expected when it is not one."""
        value: Any
        if self.type is bool:
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError(self.expected())
            return word in _TRUE
        try:
            value = self.type(text.strip()) if self.type in (int, float) else text
        except ValueError:
            raise ValueError(self.expected()) from None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(self.expected())
        return value

    def expected(self) -> str:
        bounds = ""
        if self.minimum is not None and self.maximum is not None:
            bounds = f" from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            bounds = f" of at least {self.minimum:g}"
        word = _TYPE_WORDS.get(self.type, self.type.__name__)
        return f"{self.help}; {word}{bounds}" if self.type is not str else self.help


def typed(helps: Mapping[str, str], **types: type | Option) -> dict[str, Option]:
    """Help-text declarations (`{"max_file_bytes": "largest file…"}`) as typed Options: `types` names the
    type of the ones that are not text (`max_file_bytes=int`), or gives their whole Option."""
    out: dict[str, Option] = {}
    for name, text in helps.items():
        spec = types.get(name, str)
        out[name] = spec if isinstance(spec, Option) else Option(text, spec)
    return out


def declared(cls: Any) -> dict[str, Option] | None:
    """The options an extractor class declares as Options (help strings become text options), or None
    when it declares none (everything is passed through, as before)."""
    known = getattr(cls, "known_options", None)
    if not isinstance(known, Mapping):
        return None
    return {name: spec if isinstance(spec, Option) else Option(str(spec)) for name, spec in known.items()}


def known_options(cls: Any) -> dict[str, str] | None:
    """The options an extractor class accepts (name → help), or None when it does not say."""
    options = declared(cls)
    return None if options is None else {name: spec.help for name, spec in options.items()}


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


def check_values(cls: Any, options: Mapping[str, str], label: str = "-o ") -> dict[str, Any]:
    """Every option's value parsed as its declared type (name → value); a usage error naming the first
    option whose value is not of its type or out of its range."""
    specs = declared(cls) or {}
    values: dict[str, Any] = {}
    for name, text in options.items():
        spec = specs.get(name)
        if spec is None:
            values[name] = text
            continue
        try:
            values[name] = spec.parse(text)
        except ValueError as exc:
            raise UsageError(f"{label}{name}: {text!r} is not a valid value (expected {exc})") from None
    return values


def build(cls: Any, location: str, options: Mapping[str, str], label: str = "-o ") -> Any:
    """`cls(location, options)` after every name and value was checked against the declarations; a value
    error the constructor still raises about an option (a rule the type alone cannot say) becomes a usage
    error naming it."""
    check_names(cls, list(options), label)
    check_values(cls, options, label)
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
