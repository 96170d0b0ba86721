"""Reading a user's mapping file (`--map FILE.toml`, or the [mapping] table of a sync config).

The file is checked against chatmigrate/schemas/mapping.schema.json; a mistake is a usage error (exit
2) naming the key, e.g. `acme.toml: channels.archived: 'no' is not of type 'boolean'`.
"""

from __future__ import annotations

import csv
import datetime as dt
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from chatmigrate.errors import UsageError

SCHEMA_PATH = files("chatmigrate") / "schemas" / "mapping.schema.json"


@dataclass(frozen=True)
class UserRules:
    match: str = "none"  # "email" | "username" | "none"
    unmatched: str = "create"  # "create" | "error"
    # Source user (id, username or email, as written) → target user (username or email).
    explicit: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TeamRules:
    into: str | None = None
    rename: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelRules:
    rename: dict[str, str] = field(default_factory=dict)
    # source channel (id or name) → the target channel name it merges into
    merge: dict[str, str] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    archived: bool = True
    direct: bool = True
    group: bool = True


@dataclass(frozen=True)
class MappingSpec:
    """What a mapping file says, resolved (CSV read, times parsed). `MappingSpec()` maps nothing."""

    origin: str = "(no mapping)"
    users: UserRules = field(default_factory=UserRules)
    teams: TeamRules = field(default_factory=TeamRules)
    channels: ChannelRules = field(default_factory=ChannelRules)
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def is_empty(self) -> bool:
        return self == MappingSpec(origin=self.origin)


def load_file(path: Path) -> MappingSpec:
    """The mapping in `path` (TOML), checked; a UsageError naming the file and key when it is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--map {path}: cannot read it ({exc.strerror}); check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"--map {path}: not UTF-8 text; save the mapping file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}; fix the file") from None
    return from_table(data, str(path), path.parent)


def from_table(data: dict[str, Any], origin: str, base: Path) -> MappingSpec:
    """A mapping from its TOML table (`origin` names it in messages; relative paths are under `base`)."""
    data = _iso_times(data)
    _check(data, origin)
    users = data.get("users", {})
    explicit = dict(users.get("map", {}))
    if "csv" in users:
        explicit.update(_read_csv(base / users["csv"], origin))
    teams = data.get("teams", {})
    channels = data.get("channels", {})
    merge = {source: into for into, sources in channels.get("merge", {}).items() for source in sources}
    time = data.get("time", {})
    return MappingSpec(
        origin=origin,
        users=UserRules(users.get("match", "none"), users.get("unmatched", "create"), explicit),
        teams=TeamRules(teams.get("into"), dict(teams.get("rename", {}))),
        channels=ChannelRules(dict(channels.get("rename", {})), merge, tuple(channels.get("include", ())),
                              tuple(channels.get("exclude", ())), channels.get("archived", True),
                              channels.get("direct", True), channels.get("group", True)),
        since=_time(time.get("since"), origin, "time.since"),
        until=_time(time.get("until"), origin, "time.until"))


def _iso_times(value: Any) -> Any:
    """TOML dates and times written without quotes (`since = 2024-01-01`) as the ISO text the schema wants."""
    if isinstance(value, dict):
        return {k: _iso_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _check(data: dict[str, Any], origin: str) -> None:
    schema = orjson.loads(SCHEMA_PATH.read_bytes())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is None:
        return
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "additionalProperties":
        message += " (see README, Mappings, for the keys a mapping file may hold)"
    if error.validator == "not" and list(error.absolute_path) == ["teams"]:
        message = "give either teams.into or teams.rename, not both"
    raise UsageError(f"{origin}: {key}: {message}")


def _read_csv(path: Path, origin: str) -> dict[str, str]:
    """A `source,target` CSV (header required) as a dict; errors name the file and line."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"{origin}: users.csv: cannot read {path} ({exc.strerror}); check the path") from None
    pairs: dict[str, str] = {}
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"source", "target"} <= {f.strip() for f in reader.fieldnames}:
            raise UsageError(f"{path}:1: the header must name the columns source,target (got "
                             f"{','.join(reader.fieldnames or []) or 'nothing'})")
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not row["source"] or not row["target"]:
                raise UsageError(f"{path}:{reader.line_num}: both source and target are needed; fix the line")
            if row["source"] in pairs and pairs[row["source"]] != row["target"]:
                raise UsageError(f"{path}:{reader.line_num}: {row['source']!r} is mapped twice (to "
                                 f"{pairs[row['source']]!r} and {row['target']!r}); keep one line")
            pairs[row["source"]] = row["target"]
    return pairs


def _time(text: str | None, origin: str, key: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{origin}: {key}: {text!r} is not an ISO 8601 date or date-time (e.g. 2024-01-01 "
                         "or 2024-01-01T09:00:00+01:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
