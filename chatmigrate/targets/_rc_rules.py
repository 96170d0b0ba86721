"""Rocket.Chat's rules for what it holds, as pure functions (facts and sources in
../shared/research/targets.md §C; RocketChat/Rocket.Chat packages/core-typings, packages/random).

Every function is deterministic: the same canonical record gives the same Rocket.Chat id and name on
every run, which is what makes a re-run upsert instead of duplicate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache

from chatmigrate.mappings import table
from chatmigrate.targets._mm_rules import NameBook, split_text

# Meteor's Random.id(): 17 characters of UNMISTAKABLE_CHARS (packages/random).
ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
ID_LENGTH = 17
# Message_MaxAllowedSize (default 5000 characters): the server refuses a longer message.
MAX_MESSAGE = 5000
# UTF8_Names_Validation's default: what a username or room name may hold.
NAME_OK = re.compile(r"^[0-9a-zA-Z\-_.]+$")
NAME_MAX = 64  # usernames and room names are cut here (the UI and the API refuse nothing shorter)
RESERVED_USERNAMES = frozenset({"all", "here"})  # mentions of everyone: Rocket.Chat refuses these names

__all__ = [
    "ID_ALPHABET",
    "MAX_MESSAGE",
    "NameBook",
    "meteor_id",
    "name_for",
    "reaction_key",
    "room_name",
    "split_text",
    "to_ms",
    "username",
]


# Byte → id character: a byte modulo 55 (the 36 first characters a little more likely: still ~97 bits
# of hash in 17 characters, far from any collision among a server's documents).
_TO_ID = bytes(ord(ID_ALPHABET[b % len(ID_ALPHABET)]) for b in range(256))


@lru_cache(maxsize=1 << 16)
def meteor_id(kind: str, key: str) -> str:
    """A 17-character Meteor id for a canonical key, from SHA-256 of `kind|key`.

    `kind` keeps ids of different collections apart (a subscription is keyed by room and user).
    Cached: user and room ids repeat on every message."""
    digest = hashlib.sha256(f"{kind}|{key}".encode("utf-8", "surrogatepass")).digest()
    return digest[:ID_LENGTH].translate(_TO_ID).decode("ascii")


def _fold(text: str) -> str:
    """Letters with accents to their base letter (é → e); other non-ASCII characters dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _valid(raw: str, fallback: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z\-_.]+", "_", _fold(raw)).strip("_")
    return (name or fallback)[:NAME_MAX]


def username(raw: str) -> str:
    """A username Rocket.Chat accepts for `raw` (UTF8_Names_Validation default, not `all`/`here`)."""
    name = _valid(raw, "user")
    return f"{name}_user" if name.lower() in RESERVED_USERNAMES else name


def room_name(raw: str) -> str:
    """A room name Rocket.Chat accepts for `raw` (the same default rule as usernames)."""
    return _valid(raw, "room")


def name_for(book: NameBook, namespace: str, record_id: str, wanted: str, valid: str) -> tuple[str, str | None]:
    """Give `record_id` a unique name in `namespace`, first come first served, kept across runs.

    Rocket.Chat tells names apart without regard to case (its look-ups are case-insensitive), so the
    book holds the lower-case form; the name keeps its case unless a suffix was needed."""
    lower, why = book.assign(namespace, record_id, wanted.lower(), valid.lower())
    if lower == valid.lower():
        return valid, (None if valid == wanted else "changed")
    return lower, why or "collision"


@lru_cache(maxsize=8192)
def reaction_key(emoji: str) -> str:
    """A canonical emoji short name as Rocket.Chat's reaction key: `:name:`, in the JoyPixels name
    Rocket.Chat uses (mappings/emoji.toml: `+1` → `:thumbsup:`); Slack's skin tones
    (`thumbsup::skin-tone-2`) become Rocket.Chat's `:thumbsup_tone1:`."""
    names = table("emoji")
    base, _, tone = emoji.strip(":").partition("::skin-tone-")
    base = names["to_rocketchat"].get(base, base)
    suffix = names["skin_tones"]["rocketchat"].get(tone)
    return f":{base}_{suffix}:" if suffix else f":{base}:"


def to_ms(value: datetime) -> datetime:
    """A time as Mongo stores it: UTC, whole milliseconds (BSON dates have no microseconds)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def split_message(text: str) -> list[str]:
    """`text` in parts Rocket.Chat accepts (at most MAX_MESSAGE characters each, cut at line or word
    boundaries where one lies in the second half of a window); joined, they give `text` back."""
    return split_text(text, MAX_MESSAGE)
