"""Typed failures. Library code raises these; only cli.py turns them into messages and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
# sysexits.h EX_TEMPFAIL: another run holds the target's lock; try again later (cron will).
EXIT_LOCKED = 75


class ChatmigrateError(Exception):
    """Base of every error chatmigrate raises on purpose."""

    exit_code = EXIT_USAGE


class UsageError(ChatmigrateError):
    """The command line or configuration asks for something impossible."""


class InputError(ChatmigrateError):
    """The input cannot be read: names the file (and line or offset) and what to do."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        self.detail = message
        super().__init__(f"{location}: {message}" if location else message)


class TransientError(ChatmigrateError):
    """A network or database hiccup that is worth retrying with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class TargetError(ChatmigrateError):
    """The target database refused the schema or the data in a way retrying will not fix."""


class TooManyErrors(ChatmigrateError):
    """The run stopped early because --max-errors was reached."""

    exit_code = EXIT_FINDINGS


class Locked(ChatmigrateError):
    """Another chatmigrate run holds the target's sync lock; this one wrote nothing."""

    exit_code = EXIT_LOCKED
