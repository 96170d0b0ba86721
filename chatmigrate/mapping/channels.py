"""What becomes of each source channel under a mapping: left out (with the reason), renamed, merged
into another, or kept; and of each team: renamed or merged into one.

Channels are few and all come before the first message (DESIGN's stream order), so the mapping step
hands them here as one batch: a merge needs every channel of its group (their members) at once.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chatmigrate.ids import record_id
from chatmigrate.mapping.config import ChannelRules, TeamRules
from chatmigrate.model import Channel, Team

# The id namespace of records the mapping makes (a merged team or channel): deterministic from the
# names in the mapping, so two runs (two workspaces merged into one team) meet the same rows.
MAPPING_SOURCE = "chatmigrate-mapping"


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    """`action`: "kept", "renamed", "merged" (the record of a merged channel, built from its group),
    "merged-away" (a member of a group whose record is not handed on), "excluded"."""

    action: str
    record: Channel | None
    source: Channel
    reason: str | None = None


def _matches(channel: Channel, keys: Iterable[str]) -> str | None:
    """The first of `keys` naming `channel` (by id, source id or name; names compare without case)."""
    for key in keys:
        if key in (channel.id, channel.source_id) or key.lower() == channel.name.lower():
            return key
    return None


def _glob_matches(channel: Channel, patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(value.lower(), pattern.lower())
               for value in (channel.name, channel.id, channel.source_id)):
            return pattern
    return None


@dataclass
class TeamMapper:
    rules: TeamRules
    ids: dict[str, str] = field(default_factory=dict)  # source team id → mapped id (those that change)
    used_keys: set[str] = field(default_factory=set)
    _emitted: set[str] = field(default_factory=set)

    def map(self, team: Team) -> tuple[str, Team | None]:
        """("kept" | "renamed" | "merged" | "merged-away", the record to hand on)."""
        if self.rules.into is not None:
            merged_id = record_id(MAPPING_SOURCE, "", "team", self.rules.into)
            self.ids[team.id] = merged_id
            if merged_id in self._emitted:
                return "merged-away", None
            self._emitted.add(merged_id)
            return "merged", dataclasses.replace(team, id=merged_id, name=self.rules.into,
                                                 display_name=self.rules.into,
                                                 props={**team.props, "merged_from": [team.id]})
        key = next((k for k in self.rules.rename if k in (team.id, team.source_id) or k.lower() == team.name.lower()),
                   None)
        if key is None:
            return "kept", team
        self.used_keys.add(key)
        new_name = self.rules.rename[key]
        display = new_name if team.display_name in (None, team.name) else team.display_name
        return "renamed", dataclasses.replace(team, name=new_name, display_name=display,
                                              props={**team.props, "renamed_from": team.name})

    def team_of(self, team_id: str | None) -> str | None:
        if team_id is None:
            return None
        if self.rules.into is not None and team_id not in self.ids:
            # A channel whose team record never came (an export without team records): still merged.
            self.ids[team_id] = record_id(MAPPING_SOURCE, "", "team", self.rules.into)
        return self.ids.get(team_id, team_id)


@dataclass
class ChannelMapper:
    rules: ChannelRules
    team_of: Callable[[str | None], str | None]
    user_of: Callable[[str], str | None]  # mapped user id, None for a rejected user
    ids: dict[str, str] = field(default_factory=dict)  # source channel id → mapped id (merges)
    names: dict[str, str] = field(default_factory=dict)  # source name → new name, for ~links in text
    excluded: dict[str, str] = field(default_factory=dict)  # source channel id → reason
    used_keys: set[str] = field(default_factory=set)

    def map_all(self, channels: list[Channel]) -> list[ChannelOutcome]:
        outcomes: list[ChannelOutcome] = []
        groups: dict[str, list[Channel]] = {}
        for channel in channels:
            reason = self._exclusion(channel)
            if reason is not None:
                self.excluded[channel.id] = reason
                outcomes.append(ChannelOutcome("excluded", None, channel, reason))
                continue
            key = _matches(channel, self.rules.merge)
            if key is not None:
                self.used_keys.add(key)
                groups.setdefault(self.rules.merge[key], []).append(channel)
                continue
            outcomes.append(self._renamed_or_kept(channel))
        for into, members in groups.items():
            outcomes.extend(self._merged(into, members))
        return outcomes

    def _exclusion(self, channel: Channel) -> str | None:
        rules = self.rules
        if channel.kind == "direct" and not rules.direct:
            return "a direct conversation (channels.direct = false)"
        if channel.kind == "group" and not rules.group:
            return "a group conversation (channels.group = false)"
        if channel.archived_at is not None and not rules.archived:
            return "archived (channels.archived = false)"
        if rules.include and channel.kind in ("public", "private") and _glob_matches(channel, rules.include) is None:
            return f"not in channels.include ({', '.join(rules.include)})"
        pattern = _glob_matches(channel, rules.exclude)
        if pattern is not None:
            self.used_keys.add(pattern)
            return f"channels.exclude {pattern!r}"
        return None

    def _renamed_or_kept(self, channel: Channel) -> ChannelOutcome:
        mapped = self._with_people(channel)
        key = _matches(channel, self.rules.rename)
        if key is None:
            return ChannelOutcome("kept", mapped, channel)
        self.used_keys.add(key)
        new_name = self.rules.rename[key]
        self.names[channel.name] = new_name
        display = new_name if channel.display_name in (None, channel.name) else channel.display_name
        return ChannelOutcome("renamed", dataclasses.replace(mapped, name=new_name, display_name=display, props={
            **channel.props, "renamed_from": channel.name}), channel)

    def _merged(self, into: str, members: list[Channel]) -> list[ChannelOutcome]:
        first = members[0]
        team_id = self.team_of(first.team_id)
        merged_id = record_id(MAPPING_SOURCE, team_id or "", "channel", into)
        people: dict[str, None] = {}
        for member in members:
            self.ids[member.id] = merged_id
            self.names[member.name] = into
            people.update(dict.fromkeys(self._with_people(member).member_ids))
        created = [m.created_at for m in members if m.created_at is not None]
        archived = [m.archived_at for m in members]
        record = dataclasses.replace(
            self._with_people(first), id=merged_id, name=into, display_name=into, member_ids=tuple(people),
            created_at=min(created) if created else None,
            archived_at=max(a for a in archived if a is not None) if all(a is not None for a in archived) else None,
            props={**first.props, "merged_from": [m.id for m in members]})
        return [ChannelOutcome("merged", record, first),
                *(ChannelOutcome("merged-away", None, m, f"merged into {into}") for m in members[1:])]

    def _with_people(self, channel: Channel) -> Channel:
        """Team, members and creator as the mapping has them (merged users, rejected users left out)."""
        members = tuple(dict.fromkeys(m for m in (self.user_of(u) for u in channel.member_ids) if m is not None))
        creator = self.user_of(channel.creator_id) if channel.creator_id else None
        team_id = self.team_of(channel.team_id)
        if members == channel.member_ids and creator == channel.creator_id and team_id == channel.team_id:
            return channel
        return dataclasses.replace(channel, member_ids=members, creator_id=creator, team_id=team_id)
