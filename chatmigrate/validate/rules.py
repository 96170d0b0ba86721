"""The rule catalogue: every finding chatmigrate can report, with a stable code, name and severity.

Codes never change meaning once released (admins grep for them in rejects files and reports).
- error: the record cannot be loaded as is; it goes to the rejects file.
- warning: the record is loaded with a repair, and the repair is recorded.
- info: counted only.
CM0xx come from extractors (input that cannot become a record); CM1xx from the validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str
    repair: str | None = None


RULES: tuple[Rule, ...] = (
    Rule("CM001", "unreadable-file", "error", "a file (or the rest of it) is not valid JSON/JSONL/BSON"),
    Rule("CM002", "unreadable-record", "error", "a record is not an object or lacks its id"),
    Rule("CM003", "unsafe-path", "error", "an archive entry or attachment path escapes the export folder"),
    Rule("CM004", "unreadable-timestamp", "error", "a timestamp cannot be read"),
    Rule("CM005", "unknown-container", "error", "messages whose conversation is not listed in the export"),
    Rule("CM006", "unknown-type", "error", "a record of a type chatmigrate does not know"),
    Rule("CM007", "skipped-by-design", "info", "a record deliberately not migrated (e.g. livechat)"),
    Rule("CM101", "message-unknown-channel", "error", "a message in a channel that is not in the export"),
    Rule("CM102", "unknown-author", "warning", "a message by a user missing from the export",
         "a placeholder user is created (props.placeholder = true)"),
    Rule("CM103", "thread-root-missing", "warning", "a reply whose thread root is not in the export",
         "loaded top-level; the root it pointed at is kept in props.orphan_of"),
    Rule("CM104", "thread-root-other-channel", "warning", "a reply whose root is in another channel",
         "loaded top-level; the root it pointed at is kept in props.orphan_of"),
    Rule("CM105", "duplicate-id-conflict", "error", "the same id read twice with different content"),
    Rule("CM106", "duplicate-identical", "info", "the same record read twice, identical: the copy is skipped"),
    Rule("CM107", "reaction-unknown-user", "warning", "a reaction by a user missing from the export",
         "a placeholder user is created (props.placeholder = true)"),
    Rule("CM108", "text-invalid-unicode", "warning", "text holding NUL characters or lone surrogates",
         "NUL removed, lone surrogates replaced by U+FFFD; the original, escaped, in props.source_text_escaped"),
    Rule("CM109", "text-too-long", "warning", "text longer than the configured maximum (--max-text)",
         "loaded whole; target chat servers may need to split it"),
    Rule("CM110", "timestamp-out-of-range", "warning", "a timestamp in the future or before 1990"),
    Rule("CM111", "edited-before-created", "warning", "an edit time earlier than the creation time",
         "edited_at cleared; the original kept in props.edited_at_original"),
    Rule("CM112", "empty-message", "info", "a message with neither text nor files"),
    Rule("CM113", "dm-member-count", "warning", "a direct conversation with other than 1-2 members, or a "
         "group conversation with fewer than 3"),
    Rule("CM114", "user-without-email", "info", "a user with no email address (an error with --require-email)"),
    Rule("CM115", "username-collision", "warning", "two users whose usernames differ only in letter case"),
    Rule("CM116", "email-collision", "warning", "two users whose emails differ only in letter case"),
    Rule("CM117", "required-field-missing", "error", "a record without a field the target requires"),
)
BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}


def rule(code: str) -> Rule:
    """The catalogue entry for `code`; an unknown code (a third-party extractor's) is an error rule."""
    return BY_CODE.get(code) or Rule(code, "extractor-defined", "error", "reported by the extractor")
