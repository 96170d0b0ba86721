"""What becomes of each source user under a mapping: kept, renamed, merged onto a user the target
already holds, or rejected (users.unmatched = "error")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatmigrate.mapping.config import UserRules
from chatmigrate.model import EXISTING_USER_PROP, User
from chatmigrate.targets.contract import ExistingUser


@dataclass(frozen=True, slots=True)
class UserOutcome:
    """`action`: "kept", "renamed", "merged", "merged-again" (a second source user onto the same target
    user: its record is not handed on), "rejected". `record` is what goes to the target (None when
    nothing does); `key` the mapping entry that decided it (None for match rules and defaults)."""

    action: str
    record: User | None
    target: ExistingUser | None = None
    key: str | None = None
    first_of_target: str | None = None  # merged-again: the source user that merged first


@dataclass
class UserResolver:
    rules: UserRules
    existing: Iterable[ExistingUser]
    # explicit keys (as written) that matched some source user, for CM406 at the end
    used_keys: set[str] = field(default_factory=set)
    _by_username: dict[str, ExistingUser] = field(default_factory=dict)
    _by_email: dict[str, ExistingUser] = field(default_factory=dict)
    _explicit: dict[str, str] = field(default_factory=dict)  # lower-cased key → key as written
    _claimed: dict[str, str] = field(default_factory=dict)  # existing id → first source user id merged

    def __post_init__(self) -> None:
        for user in self.existing:
            self._by_username.setdefault(user.username.lower(), user)
            if user.email:
                self._by_email.setdefault(user.email.lower(), user)
        for key in self.rules.explicit:
            self._explicit.setdefault(key.lower(), key)

    @property
    def existing_count(self) -> int:
        return len({u.id for u in self._by_username.values()})

    def resolve(self, user: User) -> UserOutcome:
        key = self._explicit_key(user)
        if key is not None:
            self.used_keys.add(key)
            wanted = self.rules.explicit[key]
            found = self._find(wanted)
            if found is not None:
                return self._merge(user, found, key)
            return UserOutcome("renamed", _renamed(user, wanted), key=key)
        found = self._matched(user)
        if found is not None:
            return self._merge(user, found, None)
        if self.rules.unmatched == "error" and not user.props.get("placeholder"):
            return UserOutcome("rejected", None)
        return UserOutcome("kept", user)

    def _explicit_key(self, user: User) -> str | None:
        for candidate in (user.id, user.source_id, user.username, user.email):
            if candidate and candidate.lower() in self._explicit:
                return self._explicit[candidate.lower()]
        return None

    def _find(self, wanted: str) -> ExistingUser | None:
        table = self._by_email if "@" in wanted else self._by_username
        return table.get(wanted.lower())

    def _matched(self, user: User) -> ExistingUser | None:
        if self.rules.match == "email" and user.email:
            return self._by_email.get(user.email.lower())
        if self.rules.match == "username":
            return self._by_username.get(user.username.lower())
        return None

    def _merge(self, user: User, target: ExistingUser, key: str | None) -> UserOutcome:
        if target.id == user.id:
            # The target's user is this very record, written by an earlier run: it stays the source's.
            return UserOutcome("kept", user, key=key)
        first = self._claimed.setdefault(target.id, user.id)
        if first != user.id:
            return UserOutcome("merged-again", None, target, key, first)
        return UserOutcome("merged", existing_record(user, target), target, key)


def existing_record(user: User, target: ExistingUser) -> User:
    """The record handed to the target for a source user merged onto `target`: the target's own record
    unchanged when it has one (a SQL hub), else one that names the existing user (EXISTING_USER_PROP)."""
    if target.record is not None:
        return target.record
    marker = {"target_id": target.target_id, "username": target.username, "email": target.email,
              "merged_from": [user.id], **({"extra": target.extra} if target.extra else {})}
    return User(id=target.id, source=user.source, source_id=target.target_id or target.id, username=target.username,
                email=target.email, display_name=target.display_name, is_bot=user.is_bot, role=user.role,
                props={EXISTING_USER_PROP: marker}, origin=user.origin)


def _renamed(user: User, wanted: str) -> User:
    """A source user the mapping renames (a target user name the target does not hold yet)."""
    previous = {"username": user.username, "email": user.email}
    if "@" in wanted:
        return dataclasses.replace(user, email=wanted, props={**user.props, "renamed_from": previous})
    return dataclasses.replace(user, username=wanted, props={**user.props, "renamed_from": previous})
