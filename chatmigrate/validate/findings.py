"""Findings and where they go: rejected records to rejects.jsonl (the record as read plus its
findings, so a corrected file can be fed back), every finding to counts and first examples.

A finding's location is `file:line` for text input and `file@offset` for binary dumps (BSON), where
`Origin.line` holds a byte offset.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from chatmigrate.errors import TooManyErrors
from chatmigrate.model import Origin
from chatmigrate.validate.rules import Severity, rule

EXAMPLES_PER_CODE = 5
# Files whose Origin.line is a byte offset, not a line number.
BINARY_SUFFIXES = (".bson", ".bson.gz")


def format_origin(origin: Origin | None) -> str | None:
    """`file:line`, or `file@offset` for a binary file, or just `file`; None when unknown."""
    if origin is None:
        return None
    if origin.line is not None and origin.file.lower().endswith(BINARY_SUFFIXES):
        return f"{origin.file}@{origin.line}"
    return str(origin)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    record_kind: str
    record_id: str | None = None
    origin: Origin | None = None
    repair: str | None = None

    @property
    def severity(self) -> Severity:
        return rule(self.code).severity

    @property
    def location(self) -> str | None:
        return format_origin(self.origin)

    @property
    def action(self) -> str:
        """The repair made (warnings) or what happened to the record (errors, info): never empty."""
        return self.repair or rule(self.code).repair

    def as_json(self) -> dict[str, Any]:
        entry = rule(self.code)
        return {"code": self.code, "rule": entry.name, "severity": entry.severity, "message": self.message,
                "kind": self.record_kind, "record_id": self.record_id, "location": self.location,
                "repair": self.action}


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_line(line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    except orjson.JSONEncodeError:
        # orjson refuses lone surrogates (an invalid escape in the export, kept as read); the stdlib
        # writes them back as the same \\udxxx escapes, so the rejects file still holds the record exactly.
        return json.dumps(_str_keys(line), default=_default, ensure_ascii=True).encode() + b"\n"


def _str_keys(value: Any) -> Any:
    """What orjson's OPT_NON_STR_KEYS does, for the stdlib: every key as text."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _str_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_str_keys(v) for v in value]
    return value


@dataclass
class FindingSink:
    """Collects findings; writes rejected records to `rejects_path` (opened on the first reject)."""

    rejects_path: Path | None = None
    max_errors: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Finding]] = field(default_factory=dict)
    rejected_records: int = 0
    _handle: IO[bytes] | None = None

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        shown = self.examples.setdefault(finding.code, [])
        if len(shown) < EXAMPLES_PER_CODE:
            shown.append(finding)

    def reject(self, raw: Any, findings: list[Finding]) -> None:
        for finding in findings:
            self.add(finding)
        self.rejected_records += 1
        if self.rejects_path is not None:
            if self._handle is None:
                self._handle = self.rejects_path.open("wb")
            line = {"kind": findings[0].record_kind, "location": findings[0].location,
                    "findings": [f.as_json() for f in findings], "record": raw}
            self._handle.write(_json_line(line))
        if self.max_errors is not None and self.rejected_records >= self.max_errors:
            self.close()
            raise TooManyErrors(f"stopped after {self.rejected_records} rejected records (--max-errors "
                                f"{self.max_errors}); see {self.rejects_path or 'the report'} and fix the input")

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.counts.items() if rule(code).severity == "error")

    @property
    def warnings(self) -> int:
        return sum(n for code, n in self.counts.items() if rule(code).severity == "warning")

    @property
    def wrote_rejects(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
