"""The mapping step: a stream stage between validation and the target (issue 13, README "Mappings").

It applies one mapping the same way for every target: users merged onto the target's existing users
(`Target.existing_users()`), renamed or rejected; teams renamed or merged into one; channels renamed,
merged or left out; messages outside `time.since`/`until` left out. References follow every change:
message authors, reactions, channel members and creators, emoji creators, `props.edited_by` and
`pinned_by`, `@mentions` and `~channel` links in text, thread roots.

Accounting: what the mapping leaves out is counted as skipped (CM407), with what rides on it
(reactions, files); a second source user merged onto the same target user is skipped too (its record
is not handed on, the first one's is); rejected users (CM403) and their messages (CM404) are counted
as rejected. So read + added = loaded + rejected + skipped still holds.

Ids stay deterministic: a merged user takes the existing user's id, a merged team or channel an id
derived from its name in the mapping, so a re-run with the same mapping changes nothing and a changed
mapping changes exactly the records it touches.

Memory: users and channels (few) are kept; messages stream. Messages left out by `time.since` are
remembered per channel, the most recent `ROOT_WINDOW` ids, to detach replies to them (CM408).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chatmigrate.mapping.channels import ChannelMapper, ChannelOutcome, TeamMapper
from chatmigrate.mapping.config import MappingSpec
from chatmigrate.mapping.users import UserOutcome, UserResolver
from chatmigrate.markup.canonical import rewrite_names
from chatmigrate.model import Channel, Checkpoint, Emoji, Item, Message, Team, User, nested_counts, to_json
from chatmigrate.targets.contract import ExistingUser
from chatmigrate.validate import Accounting
from chatmigrate.validate.findings import Finding, FindingSink

ROOT_WINDOW = 200_000
_USER_PROPS = ("edited_by", "pinned_by")


@dataclass
class MappingPlan:
    """What the mapping did (or, in a dry run, would do): shown by `validate` before anything is written."""

    mapping: str
    existing_users: int = 0
    users: dict[str, int] = field(default_factory=dict)  # action → count
    teams: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # "kind: reason" → count
    merges: list[dict[str, str]] = field(default_factory=list)  # every merge: source → target user

    def as_json(self) -> dict[str, Any]:
        return {"mapping": self.mapping, "existing_users": self.existing_users, "users": dict(self.users),
                "teams": dict(self.teams), "channels": dict(self.channels), "skipped": dict(self.skipped),
                "merges": self.merges}


def _bump(table: dict[str, int], key: str, n: int = 1) -> None:
    table[key] = table.get(key, 0) + n


class MappingStep:
    def __init__(self, mapping: MappingSpec, existing: Iterable[ExistingUser], sink: FindingSink,
                 accounting: Accounting) -> None:
        self.mapping = mapping
        self.sink = sink
        self.accounting = accounting
        self.users = UserResolver(mapping.users, list(existing))
        self.teams = TeamMapper(mapping.teams)
        self.user_ids: dict[str, str] = {}  # source user id → the id the target gets (only changes)
        self.rejected_users: set[str] = set()
        self.user_names: dict[str, str] = {}  # source username → new username, for @mentions
        self.channels = ChannelMapper(mapping.channels, self.teams.team_of, self._user_of)
        self.pending_channels: list[Channel] = []
        self.filtered_roots: OrderedDict[str, None] = OrderedDict()
        self.plan = MappingPlan(mapping.origin, self.users.existing_count)

    def __call__(self, items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Channel):
                self.pending_channels.append(item)
                continue
            if self.pending_channels:
                yield from self._flush_channels()
            if isinstance(item, Message):
                message = self._message(item)
                if message is not None:
                    yield message
            elif isinstance(item, User):
                yield from self._user(item)
            elif isinstance(item, Team):
                yield from self._team(item)
            elif isinstance(item, Emoji):
                creator = self._user_of(item.creator_id) if item.creator_id else None
                yield item if creator == item.creator_id else dataclasses.replace(item, creator_id=creator)
            elif isinstance(item, Checkpoint):
                # A left-out channel keeps no cursor: a later mapping that includes it reads it whole.
                if item.channel_id not in self.channels.excluded:
                    yield item
            else:
                yield item
        if self.pending_channels:
            yield from self._flush_channels()
        self._report_unused()

    # -- users and teams ---------------------------------------------------------------------------
    def _user_of(self, user_id: str) -> str | None:
        if user_id in self.rejected_users:
            return None
        return self.user_ids.get(user_id, user_id)

    def _user(self, user: User) -> Iterator[User]:
        outcome = self.users.resolve(user)
        _bump(self.plan.users, outcome.action)
        if outcome.action == "rejected":
            self.rejected_users.add(user.id)
            self._reject(user, Finding("CM403", f"user @{user.username} ({user.email or 'no email'}) matches no "
                                       f"user of the target (users.match = {self.mapping.users.match!r}); add it "
                                       "to users.map or set users.unmatched = \"create\"", "users", user.id,
                                       user.origin))
            return
        record = outcome.record
        if outcome.target is not None:
            self._merged(user, outcome)
        elif record is not None and record.username != user.username:
            self.user_names[user.username] = record.username
        if record is None:
            self._skip(user, f"merged onto the existing user @{outcome.target.username if outcome.target else '?'}")
            return
        yield record

    def _merged(self, user: User, outcome: UserOutcome) -> None:
        target = outcome.target
        assert target is not None
        self.user_ids[user.id] = target.id
        if user.username != target.username:
            self.user_names[user.username] = target.username
        # Every merge, not examples: users are few, and an admin checks each one before the cut-over.
        self.plan.merges.append({"source": user.username, "source_email": user.email or "",
                                 "target": target.username, "how": outcome.key or self.mapping.users.match})
        if outcome.action == "merged-again":
            self.sink.add(Finding("CM402", f"@{user.username} merges onto @{target.username}, as another source "
                                  f"user ({outcome.first_of_target}) already does", "users", user.id, user.origin))
        else:
            self.sink.add(Finding("CM401", f"@{user.username} merged onto the existing user @{target.username}",
                                  "users", user.id, user.origin, repair=f"merged onto @{target.username}"))

    def _team(self, team: Team) -> Iterator[Team]:
        action, record = self.teams.map(team)
        _bump(self.plan.teams, action)
        if record is None:
            self._skip(team, f"merged into team {self.mapping.teams.into}")
            return
        yield record

    # -- channels ----------------------------------------------------------------------------------
    def _flush_channels(self) -> Iterator[Channel]:
        outcomes = self.channels.map_all(self.pending_channels)
        self.pending_channels = []
        names: dict[tuple[str | None, str], ChannelOutcome] = {}
        for outcome in outcomes:
            _bump(self.plan.channels, outcome.action)
            if outcome.record is None:
                self._skip(outcome.source, outcome.reason or "left out by the mapping")
                continue
            self._check_collision(outcome, names)
            yield outcome.record

    def _check_collision(self, outcome: ChannelOutcome, names: dict[tuple[str | None, str], ChannelOutcome]) -> None:
        record = outcome.record
        assert record is not None
        if record.kind in ("direct", "group"):
            return
        key = (record.team_id, record.name.lower())
        other = names.setdefault(key, outcome)
        if other is not outcome:
            self.sink.add(Finding("CM405", f"channel {outcome.source.name!r} ends up named {record.name!r}, as "
                                  f"{other.source.name!r} does; list both under channels.merge to merge them",
                                  "channels", record.id, record.origin))

    # -- messages ----------------------------------------------------------------------------------
    def _message(self, message: Message) -> Message | None:
        reason = self.channels.excluded.get(message.channel_id)
        if reason is None:
            reason = self._outside_time(message)
        if reason is not None:
            self._skip(message, reason)
            return None
        if message.user_id is not None and message.user_id in self.rejected_users:
            self._reject(message, Finding("CM404", f"message by a user rejected under CM403 ({message.user_id})",
                                          "messages", message.id, message.origin))
            return None
        return self._mapped(message)

    def _outside_time(self, message: Message) -> str | None:
        since, until = self.mapping.since, self.mapping.until
        if since is not None and message.created_at < since:
            self.filtered_roots[message.id] = None
            if len(self.filtered_roots) > ROOT_WINDOW:
                self.filtered_roots.popitem(last=False)
            return f"before time.since ({since.isoformat()})"
        if until is not None and message.created_at >= until:
            return f"at or after time.until ({until.isoformat()})"
        return None

    def _mapped(self, message: Message) -> Message:
        changes: dict[str, Any] = {}
        user_ids, rejected = self.user_ids, self.rejected_users
        if message.user_id in user_ids:
            changes["user_id"] = user_ids[message.user_id]
        if message.channel_id in self.channels.ids:
            changes["channel_id"] = self.channels.ids[message.channel_id]
        if message.reactions and (user_ids or rejected):
            changes.update(self._reactions(message))
        if message.text and (self.user_names or self.channels.names):
            text = rewrite_names(message.text, self.user_names, self.channels.names)
            if text != message.text:
                changes["text"] = text
        props = self._props(message)
        if message.thread_root_id is not None and message.thread_root_id in self.filtered_roots:
            self.sink.add(Finding("CM408", f"reply to {message.thread_root_id}, which time.since leaves out",
                                  "messages", message.id, message.origin))
            changes["thread_root_id"] = None
            props = {**(props or message.props), "thread_root_filtered": message.thread_root_id}
        if props is not None:
            changes["props"] = props
        return dataclasses.replace(message, **changes) if changes else message

    def _reactions(self, message: Message) -> dict[str, Any]:
        kept = []
        for reaction in message.reactions:
            user = self._user_of(reaction.user_id)
            if user is None:
                self.accounting.bump(self.accounting.rejected, "reactions")
                self.sink.add(Finding("CM404", f"reaction :{reaction.emoji}: by a user rejected under CM403",
                                      "reactions", message.id, message.origin))
                continue
            kept.append(reaction if user == reaction.user_id else dataclasses.replace(reaction, user_id=user))
        return {"reactions": tuple(kept)} if tuple(kept) != message.reactions else {}

    def _props(self, message: Message) -> dict[str, Any] | None:
        if not self.user_ids:
            return None
        changed = {key: self.user_ids[message.props[key]] for key in _USER_PROPS
                   if isinstance(message.props.get(key), str) and message.props[key] in self.user_ids}
        return {**message.props, **changed} if changed else None

    # -- accounting --------------------------------------------------------------------------------
    def _skip(self, record: Any, reason: str) -> None:
        kind = record.record_kind
        self.accounting.bump(self.accounting.skipped, kind)
        for nested, n in nested_counts(record).items():
            self.accounting.bump(self.accounting.skipped, nested, n)
        _bump(self.plan.skipped, f"{kind}: {reason}")
        self.sink.add(Finding("CM407", f"{kind[:-1] if kind.endswith('s') else kind} left out: {reason}", kind,
                              record.id, getattr(record, "origin", None), repair=f"skipped: {reason}"))

    def _reject(self, record: Any, finding: Finding) -> None:
        kind = record.record_kind
        self.accounting.bump(self.accounting.rejected, kind)
        for nested, n in nested_counts(record).items():
            self.accounting.bump(self.accounting.rejected, nested, n)
        self.sink.reject(to_json(record), [finding])

    def _report_unused(self) -> None:
        """CM406 for every entry of the mapping that matched nothing: most likely a typo."""
        rules = self.mapping
        unused = [("users.map", k) for k in rules.users.explicit if k not in self.users.used_keys]
        unused += [("teams.rename", k) for k in rules.teams.rename if k not in self.teams.used_keys]
        unused += [("channels.rename", k) for k in rules.channels.rename if k not in self.channels.used_keys]
        unused += [("channels.merge", k) for k in rules.channels.merge if k not in self.channels.used_keys]
        unused += [("channels.exclude", k) for k in rules.channels.exclude if k not in self.channels.used_keys]
        for where, key in unused:
            self.sink.add(Finding("CM406", f"{where} {key!r} matched nothing in the source", "mapping"))
