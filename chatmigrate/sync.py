"""Incremental sync (DESIGN §6): `chatmigrate sync CONFIG.toml`, the job cron runs until switch-off.

One run: read and check the TOML config (chatmigrate/schemas/sync-config.schema.json), take the target's sync lock
(`Loader.lock`: advisory lock / GET_LOCK / flock) so overlapping runs cannot collide, then run the
ordinary pipeline once per `[[source]]`. The pipeline reads each channel's cursor from cm_sync_state and
the loader advances it only in the transaction of the data; sync only moves each cursor back by the
source's overlap window (when its contract declares the `rewind` capability) before the extractor sees it, so edits
and deletions that raced the previous run are read again. Re-reading is harmless: ids are
deterministic and unchanged rows are not written.

Secrets never live in the config: an option `KEY_env = "VAR"` passes the value of $VAR as `KEY`, and
those values are masked in everything sync prints or raises.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from chatmigrate import extractors, pipeline
from chatmigrate import options as extractor_options
from chatmigrate.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, ChatmigrateError, UsageError
from chatmigrate.extractors.contract import capabilities_of
from chatmigrate.loaders import database_url
from chatmigrate.mapping import MappingSpec
from chatmigrate.mapping import from_table as mapping_table
from chatmigrate.mapping import load_file as load_mapping
from chatmigrate.redact import is_secret_name, redact
from chatmigrate.targets import TARGET_ENV, Target, target_for
from chatmigrate.validate import ValidationOptions

# Package data (chatmigrate/schemas/, which the top-level schemas/ links to), so a wheel install has it.
SCHEMA_PATH = files("chatmigrate") / "schemas" / "sync-config.schema.json"
DEFAULT_OVERLAP_MINUTES = 60.0
DEFAULT_REJECTS = "chatmigrate-rejects.jsonl"
ENV_SUFFIX = "_env"
# Environment-supplied values shorter than this are not masked: no credential is that short, and
# masking e.g. a scope "acme" everywhere would garble every line of output.
MIN_MASKED = 6
# Option keys that hold credentials: refused when written in the file (they belong in the environment).
_SECRET_WORDS = ("token", "password", "passwd", "secret", "api_key", "apikey", "credential")


@dataclass(frozen=True)
class SourceConfig:
    number: int  # 1-based position among the [[source]] tables, for messages
    name: str  # the extractor (`from`)
    location: str
    options: Mapping[str, str] = field(repr=False)  # resolved: may hold secrets from the environment
    option_origins: Mapping[str, str] = field(default_factory=dict)  # key -> "$VAR" for env-supplied values
    overlap_minutes: float = DEFAULT_OVERLAP_MINUTES
    schedule: str | None = None

    @property
    def label(self) -> str:
        return f"[[source]] #{self.number} ({self.name} {redact(self.location)})"


@dataclass(frozen=True)
class SyncConfig:
    path: Path
    target: str = field(repr=False)  # may hold a password when it came from CHATMIGRATE_TARGET_URL
    target_from_env: bool
    prefix: str
    rejects: Path
    sources: tuple[SourceConfig, ...]
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    mapping: MappingSpec | None = None  # [mapping]: applied to every source (README, Mappings)

    def hide(self, text: str) -> str:
        """`text` with every environment-supplied secret and URL password masked."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact(text)

    def rejects_for(self, source: SourceConfig) -> Path:
        """One rejects file per source when there are several: each run of a source rewrites its file."""
        if len(self.sources) == 1:
            return self.rejects
        return self.rejects.with_name(f"{self.rejects.stem}-{source.number}-{source.name}{self.rejects.suffix}")


# -- the config ------------------------------------------------------------------------------------
def _schema() -> dict[str, Any]:
    try:
        return orjson.loads(SCHEMA_PATH.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read the sync config schema {SCHEMA_PATH}: {exc.strerror}; reinstall "
                         "chatmigrate from its source tree") from None


def _key(path: Iterator[Any] | Any) -> str:
    """A JSON Schema error path as the config key a person edits: `[[source]] #2 options.token_env`."""
    parts = list(path)
    words: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "source" and i + 1 < len(parts) and isinstance(parts[i + 1], int):
            words.append(f"[[source]] #{parts[i + 1] + 1}")
            i += 2
            continue
        words.append(str(parts[i]))
        i += 1
    if words and words[0].startswith("[[source]]"):
        return words[0] + (" " + ".".join(words[1:]) if len(words) > 1 else "")
    return ".".join(words) or "(top level)"


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = _key(error.absolute_path)
    if error.validator == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
        what = f"[[source]] #{error.absolute_path[-1] + 1}" if list(error.absolute_path)[:1] == ["source"] else where
        return f"{what}: missing key {', '.join(missing)}" if where != "(top level)" else (
            f"missing key {', '.join(missing)}" + (" (add at least one [[source]] table)" if "source" in missing
                                                   else ""))
    if error.validator == "additionalProperties":
        known = ", ".join(sorted(error.schema.get("properties", {})))
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        keys = ", ".join(k if where == "(top level)" else f"{where}{' ' if where[-1].isdigit() else '.'}{k}"
                         for k in extra)
        return f"unknown key {keys} (known keys here: {known})"
    if error.validator == "propertyNames":
        return f"{where}: option name {error.instance!r} is not a plain identifier"
    return f"{where}: {error.message}"


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _resolve_path(value: str, base: Path) -> str:
    """Paths in the file are relative to the file (cron's working directory is rarely the config's)."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _url_passwords(url: str) -> list[str]:
    """The credentials a database target URL holds: its password, and query parameters such as
    `?password=` or `?sslpassword=` that the drivers accept as well (a package target holds none)."""
    if url.startswith("mattermost-import:"):
        return []
    parsed = database_url(url, where="target")
    found = [] if parsed.password is None else [str(parsed.password)]
    for key, value in parsed.query.items():
        if is_secret_name(key):
            found.extend([value] if isinstance(value, str) else value)
    return found


def _resolve_package(raw: str, base: Path) -> str:
    """A relative package path (`mattermost-import:out/acme.zip`) is relative to the config file."""
    rest = raw.removeprefix("mattermost-import:")
    if rest.startswith("//"):
        return raw
    path, sep, query = rest.partition("?")
    absolute = Path(path) if Path(path).is_absolute() else base / path
    return f"mattermost-import://{absolute}{sep}{query}"


def _resolve_target(raw: str, base: Path, where: str) -> str:
    if raw.startswith("mattermost-import:"):
        return _resolve_package(raw, base)
    url = database_url(raw, where=f"{where}:")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:") and not Path(url.database).is_absolute():
        url = url.set(database=str(base / url.database))
    return url.render_as_string(hide_password=False)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> SyncConfig:
    """Read, check and resolve a sync config; every problem is one UsageError naming the key."""
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the sync config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the sync config is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise UsageError(f"{path}: {_schema_message(errors[0])}")
    base = path.resolve().parent
    secrets: set[str] = set()

    if "target" in data:
        target, from_env = _resolve_target(data["target"], base, f"{path}: target"), False
        if _url_passwords(target):
            raise UsageError(f"{path}: target: the URL holds a password; keep it out of the file (use ~/.pgpass, "
                             f"~/.my.cnf, or set {TARGET_ENV} in the job's environment and drop target)")
    elif environ.get(TARGET_ENV):
        target, from_env = _resolve_target(environ[TARGET_ENV], Path.cwd(), f"{TARGET_ENV}"), True
        secrets.update(p for p in _url_passwords(target) if p)
    else:
        raise UsageError(f"{path}: target: missing; add target = \"URL\" to the file or set {TARGET_ENV}")

    sources = []
    for index, raw in enumerate(data["source"]):
        number = index + 1
        where = f"[[source]] #{number}"
        name = raw["from"]
        if name not in extractors.registered():
            known = ", ".join(sorted(extractors.registered()))
            raise UsageError(f"{path}: {where} from: unknown source {name!r}; known: {known}")
        cls = extractors.load(name)
        extractor_options.check_names(cls, [key.removesuffix(ENV_SUFFIX) if key.endswith(ENV_SUFFIX) else key
                                            for key in raw.get("options") or {}], f"{path}: {where} options.")
        options: dict[str, str] = {}
        origins: dict[str, str] = {}
        for key, value in (raw.get("options") or {}).items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if key.endswith(ENV_SUFFIX) and len(key) > len(ENV_SUFFIX):
                target_key = key[: -len(ENV_SUFFIX)]
                if target_key in raw["options"]:
                    raise UsageError(f"{path}: {where} options.{key}: {target_key} is also set directly; keep one")
                if not environ.get(text):
                    raise UsageError(f"{path}: {where} options.{key}: the environment variable {text} is not set "
                                     "(set it in the job's environment)")
                options[target_key] = environ[text]
                origins[target_key] = f"${text}"
                secrets.add(environ[text])
            elif _is_secret_key(key):
                raise UsageError(f"{path}: {where} options.{key}: secrets must not be written in the config file; "
                                 f"use {key}{ENV_SUFFIX} = \"ENV_VAR\" and set ENV_VAR in the job's environment")
            else:
                options[key] = text
        sources.append(SourceConfig(number, name, _resolve_path(raw["location"], base), options, origins,
                                    float(raw.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES)), raw.get("schedule")))
    return SyncConfig(path, target, from_env, data.get("prefix", "cm_"),
                      Path(_resolve_path(data.get("rejects", DEFAULT_REJECTS), base)), tuple(sources),
                      frozenset(s for s in secrets if len(s) >= MIN_MASKED), _mapping(data.get("mapping"), path, base))


def _mapping(value: dict[str, Any] | str | None, path: Path, base: Path) -> MappingSpec | None:
    """`[mapping]` (a table, checked like a --map file) or `mapping = "FILE.toml"` (relative to the config)."""
    if value is None:
        return None
    if isinstance(value, str):
        return load_mapping(Path(_resolve_path(value, base)))
    return mapping_table(value, f"{path}: mapping", base)


# -- a run -----------------------------------------------------------------------------------------
@dataclass
class SourceOutcome:
    source: SourceConfig
    result: pipeline.RunResult | None = None
    error: str | None = None  # one line, secrets masked
    exit_code: int = EXIT_OK


@dataclass
class SyncOutcome:
    config: SyncConfig
    target: str  # redacted
    outcomes: list[SourceOutcome]

    @property
    def exit_code(self) -> int:
        """0 all clean, 1 some records rejected, 2 a source could not be read (others still ran)."""
        return max((o.exit_code for o in self.outcomes), default=EXIT_OK)


def _adjuster(extractor: Any, overlap_minutes: float) -> Callable[[str], str] | None:
    """The overlap window as a cursor map, for a source whose contract declares `rewind`."""
    if not capabilities_of(extractor).rewind or overlap_minutes <= 0:
        return None
    seconds = overlap_minutes * 60

    def adjust(cursor: str) -> str:
        return str(extractor.rewind(cursor, seconds))
    return adjust


def _extractor(config: SyncConfig, source: SourceConfig) -> Any:
    return extractor_options.build(extractors.load(source.name), source.location, source.options,
                                   f"{source.label} options.")


@contextmanager
def _masked(config: SyncConfig) -> Iterator[None]:
    """Errors leave with the environment's secrets masked, whatever layer raised them."""
    try:
        yield
    except ChatmigrateError as exc:
        masked = config.hide(str(exc))
        if masked == str(exc):
            raise
        clean = ChatmigrateError(masked)
        clean.exit_code = exc.exit_code
        raise clean from None


def run_sync(config: SyncConfig, *, progress: bool = False, retry_seconds: float = 60.0,
             notify: Callable[[str], None] | None = None) -> SyncOutcome:
    """Hold the target's lock and sync every source in turn; a failing source does not stop the others.
    `notify` hears, in one line, when the target starts retrying a failure (a server that is down)."""
    with _masked(config):
        loader = target_for(config.target, prefix=config.prefix)
    loader.retry_seconds = retry_seconds
    if notify is not None and hasattr(loader, "notify"):
        loader.notify = lambda line: notify(config.hide(line))
    outcomes: list[SourceOutcome] = []
    try:
        with _masked(config), loader.lock():
            for source in config.sources:
                outcomes.append(_sync_one(config, source, loader, progress))
        return SyncOutcome(config, loader.safe_url, outcomes)
    finally:
        loader.close()


def _sync_one(config: SyncConfig, source: SourceConfig, loader: Target, progress: bool) -> SourceOutcome:
    outcome = SourceOutcome(source)
    try:
        extractor = _extractor(config, source)
        options = pipeline.RunOptions("sync", redact(source.location), config.rejects_for(source),
                                      progress=progress, validation=ValidationOptions(incremental=True),
                                      mapping=config.mapping)
        outcome.result = pipeline.run(extractor, loader, options, _adjuster(extractor, source.overlap_minutes))
        outcome.exit_code = EXIT_FINDINGS if outcome.result.errors else EXIT_OK
    except ChatmigrateError as exc:
        outcome.error = config.hide(f"{source.label}: {exc}")
        outcome.exit_code = exc.exit_code
    return outcome


# -- the plan (--dry-run) --------------------------------------------------------------------------
@dataclass
class SourcePlan:
    source: SourceConfig
    extractor_source: str | None = None
    scope: str | None = None
    cursors: dict[str, str] = field(default_factory=dict)
    rewinds: bool = False  # the source's capabilities include `rewind`, so overlap_minutes applies
    error: str | None = None

    def as_json(self, config: SyncConfig) -> dict[str, Any]:
        s = self.source
        newest = max(self.cursors.values(), key=lambda c: (len(c), c)) if self.cursors else None
        return {"number": s.number, "from": s.name, "location": redact(s.location),
                "options": {k: s.option_origins.get(k, config.hide(v)) for k, v in sorted(s.options.items())},
                "overlap_minutes": s.overlap_minutes if self.rewinds else None,
                "schedule": s.schedule, "source": self.extractor_source,
                "scope": self.scope, "cursors": len(self.cursors), "newest_cursor": newest,
                "rejects": str(config.rejects_for(s)), "error": self.error}


@dataclass
class SyncPlan:
    config: SyncConfig
    target: str  # redacted
    target_note: str
    sources: list[SourcePlan]

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if any(p.error for p in self.sources) else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {"command": "sync", "dry_run": True, "config": str(self.config.path), "target": self.target,
                "target_from": TARGET_ENV if self.config.target_from_env else "config",
                "target_note": self.target_note, "prefix": self.config.prefix,
                "sources": [p.as_json(self.config) for p in self.sources], "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        origin = f" (from {TARGET_ENV})" if self.config.target_from_env else ""
        out = [f"sync plan for {self.config.path} (dry run: nothing is locked, read from a server or written)",
               f"  target: {self.target}{origin}, tables {self.config.prefix}*: {self.target_note}"]
        for plan in self.sources:
            data = plan.as_json(self.config)
            out.append(f"  {plan.source.label}")
            if data["options"]:
                out.append("    options: " + ", ".join(f"{k}={v}" for k, v in data["options"].items()))
            overlap = (f"{plan.source.overlap_minutes:g} min" if plan.rewinds or plan.error
                       else "none (this source is read whole each time)")
            out.append(f"    overlap: {overlap}; schedule hint: {plan.source.schedule or 'none'} "
                       "(informational: cron runs the job)")
            if plan.error:
                out.append(f"    error: {plan.error}")
            elif plan.cursors:
                how = ("reads only what changed since, minus the overlap" if plan.rewinds
                       else "the extractor decides what it re-reads; unchanged rows are not written")
                out.append(f"    {len(plan.cursors)} channel cursors for {plan.extractor_source}/{plan.scope} "
                           f"(newest {data['newest_cursor']}): {how}")
            else:
                out.append(f"    no cursors for {plan.extractor_source}/{plan.scope}: the first sync reads everything")
        return out


def plan_sync(config: SyncConfig) -> SyncPlan:
    """What a sync would do, reading only the saved cursors: no lock, no server, no write, no new file."""
    with _masked(config):
        loader = target_for(config.target, prefix=config.prefix)
    try:
        with _masked(config):
            exists, note = loader.cursor_state()
        plans = []
        for source in config.sources:
            plan = SourcePlan(source)
            try:
                extractor = _extractor(config, source)
                plan.extractor_source, plan.scope = extractor.source, extractor.scope
                plan.rewinds = capabilities_of(extractor).rewind
                plan.cursors = loader.cursors(extractor.source, extractor.scope) if exists else {}
            except ChatmigrateError as exc:
                plan.error = config.hide(str(exc))
            plans.append(plan)
        return SyncPlan(config, loader.safe_url, note, plans)
    finally:
        loader.close()
