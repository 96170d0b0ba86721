"""The command line: a thin click layer, and the only place exceptions become messages and exit codes."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import sqlalchemy as sa

from chatmigrate import __version__, extractors, files, pipeline
from chatmigrate import sync as syncing
from chatmigrate.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, ChatmigrateError, UsageError
from chatmigrate.loaders import loader_for
from chatmigrate.mapping import load_file as load_mapping
from chatmigrate.options import build as build_extractor
from chatmigrate.options import known_options
from chatmigrate.redact import printable, redact
from chatmigrate.targets import DEFAULT_TARGET, target_for
from chatmigrate.validate import ValidationOptions, report
from chatmigrate.workers import default_workers, in_worker

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"chatmigrate: error: {printable(redact(message))}", err=True)
    sys.exit(code)


def _notice(message: str) -> None:
    """One line on stderr while the run goes on (e.g. a server being waited for)."""
    click.echo(f"chatmigrate: {printable(redact(message))}", err=True)


def speaks_errors(func: F) -> F:
    """Turn every failure into one redacted line on stderr and a meaningful exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ChatmigrateError as exc:
            _fail(str(exc), exc.exit_code)
        except sa.exc.OperationalError as exc:
            _fail(f"cannot reach or write the target database: {str(exc.orig).strip().splitlines()[0]}", EXIT_USAGE)
        except sa.exc.SQLAlchemyError as exc:
            _fail(f"the target database refused the data: {str(exc).splitlines()[0]}", EXIT_USAGE)
        except KeyboardInterrupt:
            _fail("interrupted; committed batches are kept, run the same command again to resume", 130)
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            if click.get_current_context().find_root().params.get("debug"):
                traceback.print_exc()
            _fail(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for details and "
                  "please report it)", 3)

    return wrapper  # type: ignore[return-value]


def _emit_json(data: dict[str, Any]) -> None:
    """The JSON document on stdout (the human summary and every message go to stderr)."""
    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    except TypeError:  # a lone surrogate read from the input, which orjson refuses: escape it instead
        text = json.dumps(data, indent=2, ensure_ascii=True, default=str)
    click.echo(text)


def _options_map(pairs: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE (e.g. --option scope=acme)")
        options[key.strip()] = value
    return options


def _extractor(location: str, source: str | None, option: tuple[str, ...], *, files_dir: Path | None = None,
               allow_hosts: tuple[str, ...] = (), target: str | None = None) -> extractors.Extractor:
    cls = extractors.load(source) if source else extractors.detect(location)
    options = files.with_cli_options(_options_map(option), files_dir=files_dir, allow_hosts=allow_hosts,
                                     target_url=target, accepted=known_options(cls))
    built: extractors.Extractor = build_extractor(cls, location, options)
    return built


def _progress(json_output: bool, quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


source_argument = click.argument("location", metavar="PATH_OR_URL")
from_option = click.option("--from", "source", metavar="NAME",
                           help="Source form (see `chatmigrate sources`); detected when omitted.")
extractor_options = click.option("--option", "-o", "option", multiple=True, metavar="KEY=VALUE",
                                 help="Extractor option, e.g. -o scope=acme (repeatable).")
json_option = click.option("--json", "json_output", is_flag=True, help="Print one JSON object for scripts.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
workers_option = click.option("--workers", type=click.IntRange(min=1), default=default_workers,
                              show_default="this machine's cores", metavar="N",
                              help="Processes: with 2 or more, a local export is parsed in a process of its own "
                              "while this one validates and writes (1: all in one process).")


def _files_options(func: F) -> F:
    func = click.option("--files-allow-host", "allow_hosts", multiple=True, metavar="HOST",
                        help="A host file downloads may contact (repeatable; default: the source's own file "
                        "hosts, e.g. files.slack.com).")(func)
    return click.option("--files-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                        help="File store for downloaded bytes (default: next to an SQLite or mattermost-import "
                        "target, <db>.files/).")(func)


def _validation_options(func: F) -> F:
    func = click.option("--map", "map_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.toml",
                        help="Mapping: merge onto the target's users, rename, filter (README, Mappings).")(func)
    func = click.option("--max-errors", type=click.IntRange(min=1), metavar="N",
                        help="Stop after N rejected records.")(func)
    func = click.option("--max-text", type=click.IntRange(min=1), default=16_383, show_default=True,
                        help="Warn about message text longer than this many characters.")(func)
    func = click.option("--require-email", is_flag=True,
                        help="Reject users without an email (for targets that need one).")(func)
    func = click.option("--default-email-domain", metavar="DOMAIN",
                        help="Chat-server targets: give users without an email USERNAME@DOMAIN instead of "
                        "rejecting them.")(func)
    func = click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
                        metavar="FILE.html", help="Also write a self-contained HTML report.")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatmigrate")
@click.option("--debug", is_flag=True, help="Show a traceback on internal errors.")
def main(debug: bool) -> None:
    """Move chat history out of Slack, Mattermost and Rocket.Chat into a SQL database you control.

    \b
    Example:
      chatmigrate migrate slack-export.zip                  # into ./chatmigrate.db
      chatmigrate validate slack-export.zip --json          # dry run, nothing written
    """


@main.command()
@json_option
@speaks_errors
def sources(json_output: bool) -> None:
    """List the installed source forms (extractors).

    \b
    Example:
      chatmigrate sources --json
    """
    found = []
    for name, entry in sorted(extractors.registered().items()):
        cls = entry.load()
        found.append({"name": name, "source": cls.source, "module": entry.value,
                      "doc": ((cls.__module__ and sys.modules[cls.__module__].__doc__) or "").strip().split("\n")[0],
                      "options": known_options(cls)})
    if json_output:
        _emit_json({"sources": found})
        return
    for item in found:
        click.echo(f"{item['name']:<20} {item['doc']}")


@main.command()
@json_option
@speaks_errors
def targets(json_output: bool) -> None:
    """List the installed targets (URL schemes for --to) and what each can do.

    \b
    Example:
      chatmigrate targets --json
    """
    from chatmigrate.targets import _factory, registered

    found = []
    for scheme, spec in sorted(registered().items()):
        factory = _factory(spec)
        cls = getattr(factory, "__self__", None) or factory
        capabilities = getattr(cls, "capabilities", None)
        if capabilities is None:  # the SQL factory: the loaders' shared declaration
            from chatmigrate.loaders import Loader

            capabilities = Loader.capabilities
        found.append({"scheme": scheme, "factory": spec, **dataclasses.asdict(capabilities)})
    if json_output:
        _emit_json({"targets": found})
        return
    for item in found:
        can = ", ".join(k for k in ("transactions", "cursors", "lock", "delta_output", "needs_email") if item[k])
        click.echo(f"{item['scheme']:<20} {can}")


@main.command()
@source_argument
@from_option
@extractor_options
@json_option
@quiet_option
@speaks_errors
def inspect(location: str, source: str | None, option: tuple[str, ...], json_output: bool, quiet: bool) -> None:
    """Show what an export holds: detected form, counts per kind, date range.

    \b
    Example:
      chatmigrate inspect samples/slack
    """
    extractor = _extractor(location, source, option)
    found = pipeline.inventory(extractor, location, _progress(json_output, quiet))
    if json_output:
        _emit_json(found.as_json())
        return
    click.echo(printable(f"{found.location}: {found.source} (scope {found.scope})"))
    for kind, n in found.counts.items():
        click.echo(f"  {kind:<12} {n:>10,}")
    if found.unreadable or found.skipped:
        click.echo(f"  unreadable {found.unreadable:,}, skipped {found.skipped:,} (run `validate` for details)")
    if found.first_at:
        click.echo(f"  messages from {found.first_at:%Y-%m-%d %H:%M} to {found.last_at:%Y-%m-%d %H:%M} UTC")


def _finish(result: pipeline.RunResult, json_output: bool, report_path: Path | None = None) -> None:
    code = EXIT_FINDINGS if result.errors else EXIT_OK
    if report_path is not None:
        report.write_html(result, code, report_path)
    if json_output:
        _emit_json(report.as_json(result, code, report_path))
    else:
        report.print_summary(result, functools.partial(click.echo, err=True))
        if report_path is not None:
            click.echo(f"  report: {report_path}", err=True)
    sys.exit(code)


@main.command()
@source_argument
@from_option
@extractor_options
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write rejected records (JSON lines) to this file.")
@click.option("--to", "target", metavar="URL",
              help="Also apply the rules of this target (e.g. mattermost-import:///srv/out.zip): what it would "
              "refuse or change is reported; nothing is written.")
@_validation_options
@json_option
@quiet_option
@workers_option
@speaks_errors
def validate(location: str, source: str | None, option: tuple[str, ...], rejects: Path | None, target: str | None,
             max_errors: int | None, max_text: int, require_email: bool, default_email_domain: str | None,
             report_path: Path | None, map_path: Path | None, json_output: bool, quiet: bool,
             workers: int) -> None:
    """Dry run: read and check everything, write nothing (exit 1 when records would be rejected).

    \b
    Example:
      chatmigrate validate export.zip --rejects rejects.jsonl --report report.html
      chatmigrate validate export.zip --to mattermost-import:///srv/import/acme.zip
      chatmigrate validate export.zip --to postgresql+psycopg://chat@db/chat --map acme.toml
    """
    mapping = load_mapping(map_path) if map_path else None
    extractor = in_worker(functools.partial(_extractor, location, source, option), location, workers)
    options = pipeline.RunOptions("validate", location, rejects, max_errors, _progress(json_output, quiet),
                                  ValidationOptions(max_text=max_text, require_email=require_email), mapping)
    checked = _target(target, "cm_", default_email_domain) if target else None
    try:
        result = pipeline.run(extractor, checked, options, dry_run=True)
    finally:
        if checked is not None:
            checked.close()
    _finish(result, json_output, report_path)


def _target(url: str, prefix: str, default_email_domain: str | None) -> Any:
    options = {"default_email_domain": default_email_domain} if default_email_domain else {}
    target = target_for(url, prefix=prefix, options=options)
    if hasattr(target, "notify"):
        target.notify = _notice
    return target


@main.command()
@source_argument
@from_option
@extractor_options
@click.option("--to", "target", envvar="CHATMIGRATE_TARGET_URL", default=DEFAULT_TARGET, show_default=True,
              metavar="URL", help="Target URL (or CHATMIGRATE_TARGET_URL): sqlite:///file.db, "
              "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db, "
              "mattermost-import:///path/out.zip (see `chatmigrate targets`).")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=Path("chatmigrate-rejects.jsonl"),
              show_default=True, help="Where rejected records go (written only when there are some).")
@click.option("--strict", is_flag=True, help="Validate first; write nothing if any record would be rejected.")
@click.option("--prefix", default="cm_", show_default=True, help="Table name prefix in the target.")
@click.option("--retry-for", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="How long to retry a lost database connection before giving up (the run resumes on re-run).")
@_validation_options
@_files_options
@json_option
@quiet_option
@workers_option
@speaks_errors
def migrate(location: str, source: str | None, option: tuple[str, ...], target: str, rejects: Path,
            strict: bool, prefix: str, retry_for: float, max_errors: int | None, max_text: int, require_email: bool,
            default_email_domain: str | None, report_path: Path | None, map_path: Path | None, files_dir: Path | None,
            allow_hosts: tuple[str, ...], json_output: bool, quiet: bool, workers: int) -> None:
    """Migrate an export (or live server) into the target database; safe to re-run.

    Loads every valid record, writes rejected ones to the rejects file, exits 1 if any were rejected.

    \b
    Example:
      chatmigrate migrate export.zip --to postgresql+psycopg://chat@db/chat
      chatmigrate migrate export.zip --to mattermost-import:///srv/import/acme.zip --map acme.toml
    """
    mapping = load_mapping(map_path) if map_path else None
    validation = ValidationOptions(max_text=max_text, require_email=require_email)
    progress = _progress(json_output, quiet)
    writer = _target(target, prefix, default_email_domain)
    writer.retry_seconds = retry_for
    # A target that copies file bytes reads them through the source's open_file, which works from the
    # state of the source's own records() pass (an attachment index, GridFS): one process then.
    parse_workers = 1 if writer.capabilities.file_bytes else workers
    source_of = functools.partial(in_worker, functools.partial(
        _extractor, location, source, option, files_dir=files_dir, allow_hosts=allow_hosts, target=target),
        location, parse_workers)
    try:
        if strict:
            check = pipeline.run(source_of(), writer,
                                 pipeline.RunOptions("validate", location, rejects, max_errors, progress, validation,
                                                     mapping), dry_run=True)
            if check.errors:
                _finish(check, json_output, report_path)
        options = pipeline.RunOptions("migrate", location, rejects, max_errors, progress, validation, mapping)
        result = pipeline.run(source_of(), writer, options)
    finally:
        writer.close()
    _finish(result, json_output, report_path)


@main.command("files")
@click.argument("location", metavar="PATH", required=False)
@from_option
@extractor_options
@click.option("--hub", metavar="URL", help="Summarise (and --fetch into) the cm_files rows of this hub instead.")
@click.option("--fetch", is_flag=True, help="Download what is missing or failed into the file store.")
@click.option("--token-env", metavar="VAR", help="Environment variable holding the download token (--hub).")
@click.option("--prefix", default="cm_", show_default=True, help="Table name prefix in the hub.")
@_files_options
@json_option
@quiet_option
@speaks_errors
def files_command(location: str | None, source: str | None, option: tuple[str, ...], hub: str | None, fetch: bool,
                  token_env: str | None, prefix: str, files_dir: Path | None, allow_hosts: tuple[str, ...],
                  json_output: bool, quiet: bool) -> None:
    """Say which attachments are present, still to fetch, missing, refused or failed; --fetch gets them.

    \b
    Example:
      SLACK_TOKEN=xoxb-… chatmigrate files export.zip -o token_env=SLACK_TOKEN --files-dir store --fetch
      chatmigrate files --hub sqlite:///chat.db --fetch --token-env SLACK_TOKEN
    """
    from chatmigrate.files import report as files_report

    progress = _progress(json_output, quiet)
    if (location is None) == (hub is None):
        raise UsageError("give an export PATH or --hub URL (one of them)")
    if hub is not None:
        token = files.env_token(token_env) if fetch else None
        result = files_report.hub_files(hub, prefix=prefix, files_dir=files_dir, fetch=fetch, token=token,
                                        allow_hosts=files.parse_hosts(list(allow_hosts)), progress=progress)
    else:
        pairs = option + (("download=true",) if fetch else ())
        extractor = _extractor(location or "", source, pairs, files_dir=files_dir, allow_hosts=allow_hosts)
        result = files_report.export_files(extractor, progress)
    if json_output:
        _emit_json({"command": "files", **result})
    else:
        files_report.echo_lines(result, click.echo)


@main.command()
@click.option("--to", "target", envvar="CHATMIGRATE_TARGET_URL", default=DEFAULT_TARGET, show_default=True,
              metavar="URL", help="Target database URL (or CHATMIGRATE_TARGET_URL).")
@click.option("--prefix", default="cm_", show_default=True, help="Table name prefix in the target.")
@click.option("--apply", "apply_", is_flag=True, help="Create the tables in the target instead of printing them.")
@click.option("--retry-for", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="How long to retry a lost database connection before giving up.")
@speaks_errors
def schema(target: str, prefix: str, apply_: bool, retry_for: float) -> None:
    """Print the target schema's DDL for the database of --to, or create it there with --apply.

    \b
    Example:
      chatmigrate schema --to mysql+pymysql://chat@db/chat > schema.sql
    """
    loader = loader_for(target, prefix=prefix)
    loader.retry_seconds = retry_for
    loader.notify = _notice
    try:
        if not apply_:
            click.echo(loader.ddl(), nl=False)
            return
        loader.prepare()
        click.echo(f"schema ready in {loader.safe_url}")
    finally:
        loader.close()


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path), metavar="CONFIG.toml")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (sources, target, saved cursors, schedule hints); lock, read and write nothing.")
@click.option("--retry-for", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="How long to retry a lost database connection before giving up (the next run resumes).")
@json_option
@quiet_option
@speaks_errors
def sync(config: Path, dry_run: bool, retry_for: float, json_output: bool, quiet: bool) -> None:
    """Bring the target up to date from every [[source]] of a TOML config; run it from cron.

    Takes the target's sync lock first: while another run holds it, exits 75 at once and writes
    nothing. Exit codes: 0 clean, 1 records rejected, 2 config or source errors, 75 locked.

    \b
    Example:
      chatmigrate sync sync.toml --dry-run
      */15 * * * *  chatmigrate sync /etc/chatmigrate/sync.toml --quiet   # crontab line
    """
    settings = syncing.load_config(config)
    if dry_run:
        plan = syncing.plan_sync(settings)
        if json_output:
            _emit_json(plan.as_json())
        else:
            for line in plan.lines():
                click.echo(printable(line))
        sys.exit(plan.exit_code)
    outcome = syncing.run_sync(settings, progress=_progress(json_output, quiet), retry_seconds=retry_for,
                               notify=_notice)
    if json_output:
        _emit_json({"command": "sync", "config": str(config), "target": outcome.target, "dry_run": False,
                    "exit_code": outcome.exit_code,
                    "sources": [report.as_json(o.result, o.exit_code) if o.result is not None else
                                {"from": o.source.name, "location": redact(o.source.location), "error": o.error,
                                 "exit_code": o.exit_code} for o in outcome.outcomes]})
    else:
        for o in outcome.outcomes:
            if o.result is not None:
                report.print_summary(o.result, functools.partial(click.echo, err=True))
            else:
                click.echo(f"chatmigrate: error: {printable(o.error or '')}", err=True)
    sys.exit(outcome.exit_code)
