"""The rule catalogue: every finding chatmigrate can report, with a stable code, name and severity.

Codes never change meaning once released (admins grep for them in rejects files and reports).
- error: the record cannot be loaded as is; it goes to the rejects file.
- warning: the record is loaded with a repair, and the repair is recorded.
- info: counted only.
CM0xx come from extractors (input that cannot become a record); CM1xx from the validator; CM2xx
from a chat-server target's own checks (`validate --to mattermost-import:…`, targets/: CM2xx Mattermost,
CM3xx Rocket.Chat, CM5xx 蓝莺IM); CM4xx from the mapping step (`--map`, chatmigrate/mapping/).

`python -m chatmigrate.validate --markdown` prints the catalogue as the Markdown table that
README.md carries between `<!-- rules:start -->` and `<!-- rules:end -->` (a test keeps them equal);
`--update-readme README.md` rewrites that block in place.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# What happens to every record an error rule hits; the rejects file keeps it as read.
REJECTED = "rejected: written to the rejects file with its findings; fix it in the export and re-run"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str
    repair: str = REJECTED


RULES: tuple[Rule, ...] = (
    Rule("CM001", "unreadable-file", "error", "a file (or the rest of it) is not valid JSON/JSONL/BSON"),
    Rule("CM002", "unreadable-record", "error", "a record is not an object, or lacks its id or a required field"),
    Rule("CM003", "unsafe-path", "error", "an archive entry or attachment path escapes the export folder",
         "refused: the entry is never read"),
    Rule("CM004", "unreadable-timestamp", "error", "a timestamp cannot be read (or has no time zone)"),
    Rule("CM005", "unknown-container", "error", "messages whose conversation is not listed in the export"),
    Rule("CM006", "unknown-type", "error", "a record of a type chatmigrate does not know"),
    Rule("CM007", "skipped-by-design", "info", "a record deliberately not migrated (e.g. livechat)",
         "skipped and counted"),
    Rule("CM101", "message-unknown-channel", "error", "a message in a channel that is not in the export"),
    Rule("CM102", "unknown-author", "warning", "a message by a user missing from the export",
         "a placeholder user is created (props.placeholder = true)"),
    Rule("CM103", "thread-root-missing", "warning", "a reply whose thread root is not in the export",
         "loaded top-level; the root it pointed at is kept in props.orphan_of"),
    Rule("CM104", "thread-root-other-channel", "warning", "a reply whose root is in another channel",
         "loaded top-level; the root it pointed at is kept in props.orphan_of"),
    Rule("CM105", "duplicate-id-conflict", "error", "the same id read twice with different content",
         "the first copy is loaded, the second rejected"),
    Rule("CM106", "duplicate-identical", "info", "the same record read twice, identical",
         "the copy is skipped and counted"),
    Rule("CM107", "reaction-unknown-user", "warning", "a reaction by a user missing from the export",
         "a placeholder user is created (props.placeholder = true)"),
    Rule("CM108", "text-invalid-unicode", "warning", "text holding NUL characters or lone surrogates",
         "NUL removed, lone surrogates replaced by U+FFFD; the original, escaped, in props.source_text_escaped "
         "(messages) or props.source_escaped (users, channels)"),
    Rule("CM109", "text-too-long", "warning", "text longer than the configured maximum (--max-text)",
         "loaded whole into SQLite and PostgreSQL; into MySQL/MariaDB whole up to 16 MiB and one "
         "max_allowed_packet, beyond that cut and reported as a target repair (the original's size and SHA-256 "
         "in props.cm_repairs); split into replies in a Mattermost package (CM203)"),
    Rule("CM110", "timestamp-out-of-range", "warning", "a timestamp in the future or before 1990",
         "loaded as is; check the export's clock"),
    Rule("CM111", "edited-before-created", "warning", "an edit time earlier than the creation time",
         "edited_at cleared; the original kept in props.edited_at_original"),
    Rule("CM112", "empty-message", "info", "a message with neither text nor files (and not deleted)",
         "loaded as is"),
    Rule("CM113", "dm-member-count", "warning", "a direct conversation with other than 1-2 members, or a "
         "group conversation with fewer than 3", "loaded as is"),
    Rule("CM114", "user-without-email", "info", "a user with no email address", "loaded as is"),
    Rule("CM115", "username-collision", "warning", "two users whose usernames differ only in letter case",
         "loaded as is; rename one before importing into a case-insensitive chat server"),
    Rule("CM116", "email-collision", "warning", "two users whose emails differ only in letter case",
         "loaded as is; the second user cannot sign in with that email on most chat servers"),
    Rule("CM117", "required-field-missing", "error", "a record without a field the target requires "
         "(id, source id, username, channel name, message channel…)"),
    Rule("CM118", "file-missing", "warning", "a file the export refers to but does not hold (marked "
         "props.missing by the extractor, or with neither a path nor a URL)",
         "the message and the file's metadata are loaded; file.props.missing = true"),
    Rule("CM119", "email-required", "error", "a user without an email while --require-email says the target "
         "needs one (bots excepted)"),
    Rule("CM120", "field-wrong-type", "warning", "a field of the wrong JSON type (a number or an object where "
         "an id, text or list belongs), or an id holding a lone surrogate",
         "loaded without that field (e.g. with no author, or not in a thread); the value as read is kept in "
         "props.unreadable_fields"),
    Rule("CM201", "mm-name-changed", "warning", "a username, team, channel or emoji name Mattermost refuses "
         "(characters, length, reserved word)", "renamed to a valid name; old → new in the package's "
         "`.names.json`, mentions and channel links follow"),
    Rule("CM202", "mm-name-collision", "warning", "two records that would get the same Mattermost name",
         "the later one gets a numbered suffix; old → new in the package's `.names.json`"),
    Rule("CM203", "mm-text-split", "warning", "message text longer than Mattermost's 16,383 characters",
         "split at line or word boundaries into continuation replies of the same thread"),
    Rule("CM204", "mm-email-missing", "error", "a user without an email (Mattermost requires one) and no "
         "--default-email-domain; their messages and reactions are refused with them",
         "rejected: written to the rejects file; give --default-email-domain or add the email and re-run"),
    Rule("CM205", "mm-email-generated", "warning", "a user without an email while --default-email-domain is "
         "given", "imported with USERNAME@DOMAIN"),
    Rule("CM206", "mm-group-too-large", "warning", "a group conversation with more than 8 members "
         "(Mattermost's limit)", "imported as a private channel holding the same members and history"),
    Rule("CM207", "mm-too-many-files", "info", "a message with more than 5 attachments",
         "the rest ride in continuation replies, 5 each"),
    Rule("CM208", "mm-emoji-name", "warning", "a reaction or emoji name Mattermost refuses (a skin-tone "
         "suffix, characters outside a-z 0-9 + - _)", "the base name, or the name with refused characters "
         "replaced by _"),
    Rule("CM209", "mm-same-millisecond", "info", "two messages of one channel in the same millisecond "
         "(Mattermost tells posts apart by channel, time and text)",
         "the later one moved forward by 1 ms until unique; kept on later runs"),
    Rule("CM210", "mm-direct-members", "warning", "a direct conversation with fewer than two known members",
         "with one member: imported as that user's conversation with themself; with none: left out"),
    Rule("CM211", "mm-emoji-system-name", "warning", "a custom emoji with the name of one of Mattermost's "
         "system emoji (Mattermost refuses it)", "left out of the package; reactions of that name show "
         "Mattermost's own emoji"),
    Rule("CM212", "mm-guest-without-channels", "warning", "a guest who is a member of no channel (Mattermost "
         "cannot hold a guest outside every channel)", "imported deactivated, without team, as a regular "
         "account: reactivate and make them a guest by hand if they still need access"),
    Rule("CM213", "mm-emoji-image-unreadable", "warning", "a custom emoji whose image is not a whole PNG, GIF, "
         "JPEG or SVG (Mattermost decodes it and refuses the package otherwise)",
         "the emoji is left out of the package; its image stays in the file store"),
    Rule("CM301", "rc-name-changed", "warning", "a username or room name Rocket.Chat refuses (its default "
         "UTF8_Names_Validation allows only 0-9 a-z A-Z - _ .; `all` and `here` are mentions)",
         "renamed to a valid name, kept in chatmigrate_names for later runs; mentions and channel links follow"),
    Rule("CM302", "rc-name-collision", "warning", "two records that would get the same Rocket.Chat name (names "
         "compare without regard to case), or a name the server already uses",
         "the later one gets a numbered suffix, kept in chatmigrate_names"),
    Rule("CM303", "rc-text-split", "warning", "message text longer than Rocket.Chat's Message_MaxAllowedSize "
         "(5,000 characters)", "split at line or word boundaries into continuation replies of the same thread"),
    Rule("CM304", "rc-file-without-bytes", "info", "a file the source lists without its bytes",
         "its upload record is written incomplete (complete: false) with the message; nothing in GridFS"),
    Rule("CM401", "map-user-merged", "info", "a source user merged onto a user the target already holds "
         "(`--map`: users.match or users.map)", "the existing user is kept as it is; the source user's messages, "
         "reactions, memberships and mentions move to it"),
    Rule("CM402", "map-users-onto-one", "warning", "two source users merged onto the same target user",
         "both merged: their messages share one author; check users.map if that is not meant"),
    Rule("CM403", "map-user-unmatched", "error", "a source user matched to no existing user while users.unmatched "
         "= \"error\""),
    Rule("CM404", "map-author-unmatched", "error", "a message (or a reaction) by a source user rejected under "
         "CM403", "rejected with the user: map the user and re-run"),
    Rule("CM405", "map-channel-collision", "warning", "two channels that end up with the same name in one team "
         "(a rename onto a name in use), where channels.merge does not say to merge them",
         "both kept; the target's own rule for clashing names applies (a numbered suffix)"),
    Rule("CM406", "map-entry-unused", "warning", "a mapping entry that matched nothing in the source (a typo?)",
         "ignored"),
    Rule("CM407", "map-filtered-out", "info", "a channel or message left out by the mapping (channels.exclude, "
         "include, archived, direct, group; time.since or until)", "skipped and counted, with the reason"),
    Rule("CM408", "map-reply-root-filtered", "info", "a reply whose thread root the mapping left out",
         "kept as a top-level message; the root's id in props.thread_root_filtered"),
    Rule("CM501", "ly-time-not-kept", "info", "a conversation sent into 蓝莺IM, whose API cannot set a message's "
         "time (reported on its first message)", "every message gets 蓝莺IM's send time; the original time and "
         "author are kept in the message's ext JSON (README: Into 蓝莺IM)"),
    Rule("CM502", "ly-thread-flattened", "info", "a reply in a thread (蓝莺IM has no threads)",
         "sent in conversation order as a plain message; its thread root's id in ext.chatmigrate.thread_root"),
    Rule("CM503", "ly-only-in-ext", "info", "reactions, a pin or an edit time (蓝莺IM's API cannot set them)",
         "kept only in the message's ext JSON: a client shows them only if it reads ext"),
    Rule("CM504", "ly-not-sent", "info", "a deleted message, or one with neither text nor files",
         "not sent (蓝莺IM would show it as a live message); counted in the ledger as skipped"),
    Rule("CM505", "ly-username-changed", "warning", "a username 蓝莺IM refuses (only letters, digits, _ and CJK; "
         "not all digits; not starting with mta or maxim) or that another user takes",
         "registered under a valid name (numbered on collision), kept in the hub's ly_users for later runs"),
    Rule("CM506", "ly-file-without-bytes", "warning", "a file the source lists without its bytes",
         "sent as a text message naming the file; nothing uploaded"),
    Rule("CM507", "ly-not-carried", "info", "a team or a custom emoji (蓝莺IM has neither)",
         "not sent; reactions with that emoji keep its name in ext"),
    Rule("CM508", "ly-conversation-as-group", "info", "a direct conversation with more than two people, or a "
         "group conversation", "becomes a private 蓝莺IM group of the same people"),
)
BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}


def rule(code: str) -> Rule:
    """The catalogue entry for `code`; an unknown code (a third-party extractor's) is an error rule."""
    return BY_CODE.get(code) or Rule(code, "extractor-defined", "error", "reported by the extractor")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(rules: tuple[Rule, ...] = RULES) -> str:
    """The catalogue as the Markdown table README.md carries (generated, never edited by hand)."""
    lines = ["| code | name | severity | what it finds | what chatmigrate does |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.code} | `{r.name}` | {r.severity} | {_cell(r.summary)} | {_cell(r.repair)} |" for r in rules]
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- rules:start -->", "<!-- rules:end -->"


def readme_block(readme: str) -> str | None:
    """The text between the rule markers of a README, or None when the markers are missing."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        return None
    return readme[start + len(README_START):end]


def update_readme(path: Path) -> bool:
    """Rewrite the block between the markers with the current table; True when something changed."""
    text = path.read_text(encoding="utf-8")
    if readme_block(text) is None:
        raise SystemExit(f"{path}: no {README_START} … {README_END} markers; add them where the table belongs")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    new = text[:start] + "\n" + markdown_table() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmigrate.validate",
                                     description="Print the validation rule catalogue.")
    parser.add_argument("--markdown", action="store_true", help="as the Markdown table of README.md")
    parser.add_argument("--update-readme", type=Path, metavar="README.md",
                        help="replace the table between the rules markers of this file")
    args = parser.parse_args(argv)
    if args.update_readme:
        changed = update_readme(args.update_readme)
        sys.stdout.write(f"{args.update_readme}: {'updated' if changed else 'already up to date'}\n")
    elif args.markdown:
        sys.stdout.write(markdown_table())
    else:
        for r in RULES:
            sys.stdout.write(f"{r.code} {r.name:<28} {r.severity:<8} {r.summary}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
